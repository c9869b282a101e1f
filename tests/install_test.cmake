# install_test.cmake: proves that an installed rill works for a user's project.
#
#   cmake -DRILL_SOURCE=<rill source> -DRILL_BINARY=<rill build> -DWORK=<scratch dir>
#         [-DPORT=N] [-DCOUNT=N] -P install_test.cmake
#
# (a) installs RILL_BINARY into WORK/prefix, (b) configures examples/ as an outside
# project with find_package(rill) into WORK/build, (c) builds it, (d) runs
# tcp_publisher against tcp_subscriber (and against callback_subscriber) as separate
# processes and checks that every quote arrived with no gap. The publisher waits
# for its subscriber (wait_for_subscribers), so nothing depends on start-up timing.
cmake_minimum_required(VERSION 3.25)

foreach(var RILL_SOURCE RILL_BINARY WORK)
  if(NOT ${var})
    message(FATAL_ERROR "install_test: pass -D${var}=...")
  endif()
endforeach()
if(NOT EXISTS "${RILL_BINARY}/CMakeCache.txt")
  message(FATAL_ERROR "install_test: RILL_BINARY='${RILL_BINARY}' is not a configured rill build tree")
endif()
if(NOT EXISTS "${RILL_SOURCE}/examples/CMakeLists.txt")
  message(FATAL_ERROR "install_test: RILL_SOURCE='${RILL_SOURCE}' has no examples/CMakeLists.txt")
endif()
if(NOT COUNT)
  set(COUNT 1000)
endif()
set(port_given FALSE)
if(PORT)
  set(port_given TRUE)
endif()

set(prefix "${WORK}/prefix")
set(build "${WORK}/build")
# Start clean so a stale install or cache cannot hide a broken one (only our own subfolders).
file(REMOVE_RECURSE "${prefix}" "${build}")

# Build the examples with the same compiler and generator as rill itself.
load_cache("${RILL_BINARY}" READ_WITH_PREFIX RILL_ CMAKE_CXX_COMPILER CMAKE_GENERATOR CMAKE_MAKE_PROGRAM)

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_test: ${what} failed (${rc}):\n${out}")
  endif()
  message(STATUS "install_test: ${what}: ok")
endfunction()

# (a) install
run_step("cmake --install" ${CMAKE_COMMAND} --install "${RILL_BINARY}" --prefix "${prefix}")
# An installed package must not point back into the tree it was built from.
file(GLOB_RECURSE package_files "${prefix}/*.cmake")
if(NOT package_files)
  message(FATAL_ERROR "install_test: no CMake package files installed under ${prefix}")
endif()
foreach(f IN LISTS package_files)
  file(READ "${f}" text)
  foreach(tree "${RILL_BINARY}" "${RILL_SOURCE}")
    string(FIND "${text}" "${tree}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "install_test: ${f} refers to the build/source tree '${tree}': the install is not relocatable")
    endif()
  endforeach()
endforeach()

# (b) configure examples/ as a user's project would, (c) build it
set(generator_args)
if(RILL_CMAKE_GENERATOR)
  list(APPEND generator_args -G "${RILL_CMAKE_GENERATOR}")
  if(RILL_CMAKE_MAKE_PROGRAM)
    list(APPEND generator_args "-DCMAKE_MAKE_PROGRAM=${RILL_CMAKE_MAKE_PROGRAM}")
  endif()
endif()
run_step("configure examples with find_package(rill)"
  ${CMAKE_COMMAND} -S "${RILL_SOURCE}/examples" -B "${build}" ${generator_args}
  "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_COMPILER=${RILL_CMAKE_CXX_COMPILER}")
run_step("build examples" ${CMAKE_COMMAND} --build "${build}")

# (d) publisher and subscriber as two processes, started together as one pipeline
# (the publisher's stdout, which is empty, feeds the subscriber's unused stdin).
# Sets run_out, run_err, run_pub_rc, run_sub_rc in the caller.
function(run_pair subscriber port)
  set(endpoint "tcp://127.0.0.1:${port}")
  set(publisher tcp_publisher)
  if(subscriber MATCHES "^shm_")
    set(endpoint "shm://rill-install-test-${port}")
    set(publisher shm_publisher)
  endif()
  execute_process(
    COMMAND "${build}/${publisher}" "${endpoint}" ${COUNT}
    COMMAND "${build}/${subscriber}" "${endpoint}" ${COUNT}
    RESULTS_VARIABLE rcs OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
  list(LENGTH rcs n)
  if(NOT n EQUAL 2)  # the pipeline itself failed (timeout, missing binary)
    set(rcs "${rcs};${rcs}")
  endif()
  list(GET rcs 0 pub_rc)
  list(GET rcs 1 sub_rc)
  set(run_out "${out}" PARENT_SCOPE)
  set(run_err "${err}" PARENT_SCOPE)
  set(run_pub_rc "${pub_rc}" PARENT_SCOPE)
  set(run_sub_rc "${sub_rc}" PARENT_SCOPE)
endfunction()

function(check_pair subscriber)
  # A default port that happens to be taken is retried on another; a given one is not.
  if(port_given)
    set(ports ${PORT})
  else()
    string(RANDOM LENGTH 4 ALPHABET 0123456789 r1)
    string(RANDOM LENGTH 4 ALPHABET 0123456789 r2)
    string(RANDOM LENGTH 4 ALPHABET 0123456789 r3)
    math(EXPR p1 "20000 + ${r1}")
    math(EXPR p2 "30000 + ${r2}")
    math(EXPR p3 "40000 + ${r3}")
    set(ports ${p1} ${p2} ${p3})
  endif()
  foreach(port IN LISTS ports)
    set(used_port ${port})
    run_pair(${subscriber} ${port})
    if(port_given OR NOT run_err MATCHES "address_in_use")
      break()
    endif()
    message(STATUS "install_test: port ${port} is in use, trying another")
  endforeach()
  set(what "publisher -> ${subscriber} (${used_port}), ${COUNT} quotes")
  set(report "publisher exit: ${run_pub_rc}\nsubscriber exit: ${run_sub_rc}\nstderr:\n${run_err}\nsubscriber stdout (tail):\n")
  string(LENGTH "${run_out}" len)
  if(len GREATER 2000)
    math(EXPR from "${len} - 2000")
    string(SUBSTRING "${run_out}" ${from} -1 tail)
    string(APPEND report "...${tail}")
  else()
    string(APPEND report "${run_out}")
  endif()
  if(NOT run_pub_rc EQUAL 0 OR NOT run_sub_rc EQUAL 0)
    message(FATAL_ERROR "install_test: ${what}: a process failed\n${report}")
  endif()
  if(NOT run_out MATCHES "{\"stats\":{\"received\":([0-9]+),\"quotes\":([0-9]+),\"gaps\":([0-9]+),\"dropped\":([0-9]+)}}")
    message(FATAL_ERROR "install_test: ${what}: no final stats line\n${report}")
  endif()
  set(received ${CMAKE_MATCH_1})
  set(quotes ${CMAKE_MATCH_2})
  set(gaps ${CMAKE_MATCH_3})
  if(NOT received EQUAL COUNT OR NOT quotes EQUAL COUNT OR NOT gaps EQUAL 0)
    message(FATAL_ERROR "install_test: ${what}: expected ${COUNT} quotes and 0 gaps, "
                        "got received=${received} quotes=${quotes} gaps=${gaps}\n${report}")
  endif()
  # Every quote was printed, decoded from the typed payload, in sequence order.
  string(REGEX MATCHALL "seq=[0-9]+ ACME" lines "${run_out}")
  list(LENGTH lines printed)
  set(last "")
  if(printed GREATER 0)
    list(GET lines -1 last)
  endif()
  if(NOT printed EQUAL COUNT OR NOT last STREQUAL "seq=${COUNT} ACME")
    message(FATAL_ERROR "install_test: ${what}: printed ${printed} quotes, last '${last}'\n${report}")
  endif()
  message(STATUS "install_test: ${what}: received=${received} gaps=${gaps}: ok")
endfunction()

check_pair(tcp_subscriber)
check_pair(callback_subscriber)
check_pair(shm_subscriber)
# rill::http from the installed package: a signed webhook verifies, a tampered one does not.
if(EXISTS "${build}/webhook_verify")
  run_step("webhook_verify (rill::http)" "${build}/webhook_verify")
else()
  file(STRINGS "${RILL_BINARY}/CMakeCache.txt" http_on REGEX "^RILL_WITH_HTTP:BOOL=ON")
  if(http_on)
    message(FATAL_ERROR "install_test: rill was built with http but the examples found no rill::http")
  endif()
endif()
# rill::stream from the installed package: a windowed job over shm, rows read back.
if(EXISTS "${build}/stream_rolling_average")
  string(RANDOM LENGTH 6 ALPHABET 0123456789 r)
  run_step("stream_rolling_average (rill::stream)" "${build}/stream_rolling_average" "shm://rill-install-stream-${r}" 50)
  run_step("stream_join_orders (rill::stream joins)" "${build}/stream_join_orders" "shm://rill-install-join-${r}" 40)
else()
  message(FATAL_ERROR "install_test: the examples found no rill::stream")
endif()
# CEP from the installed package: V shapes in price ticks over shm.
if(EXISTS "${build}/cep_v_shape")
  string(RANDOM LENGTH 6 ALPHABET 0123456789 r)
  run_step("cep_v_shape (rill::stream cep)" "${build}/cep_v_shape" "shm://rill-install-cep-${r}")
endif()
message(STATUS "install_test: passed")
