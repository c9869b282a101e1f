# Durability over shm. shm_durable_test: shm-specific cases (the slot's request and ack
# words, history paced by a small ring). shm_history_test and shm_durable_sub_test: the
# in-process durability cases of history_test.cpp and durable_sub_test.cpp again, with
# fresh_endpoint() handing out shm endpoints (consumer groups included). Left out: the
# subscriber-side suites that script a tcp publisher by hand. shm_group_test: consumer
# groups over shm (split, late member, durable redelivery and position). shm_topics_test:
# topics_test.cpp over shm (several publishers on one endpoint, one added later, one
# leaving, four publishing threads).
rill_unit_test(shm_durable_test)
rill_unit_test(shm_group_test)
function(rill_shm_rerun name source)
  add_executable(${name} ${source})
  add_dependencies(${name} rill_test_gen)
  target_compile_definitions(${name} PRIVATE RILL_TEST_SHM_ENDPOINTS=1)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/tests ${RILL_TEST_GEN})
  target_compile_options(${name} PRIVATE -Wall -Wextra -Wpedantic)
  target_link_libraries(${name} PRIVATE rill::rill doctest::doctest cppzmq)
endfunction()
rill_shm_rerun(shm_history_test history_test.cpp)
add_test(NAME shm_history_test COMMAND shm_history_test)
rill_shm_rerun(shm_durable_sub_test durable_sub_test.cpp)
# Several topics (publishers) on one shm endpoint: the four cases of topics_test.cpp.
rill_shm_rerun(shm_topics_test topics_test.cpp)
add_test(NAME shm_topics_test COMMAND shm_topics_test)
add_test(NAME shm_durable_sub_test COMMAND shm_durable_sub_test "--test-suite=with the tcp publisher")
# Threads meet in the first two (a publishing thread, a reading thread): TSan runs them.
set_tests_properties(shm_durable_test shm_history_test PROPERTIES TIMEOUT 300 LABELS "unit;tsan"
                                                             ENVIRONMENT "RILL_LOG=error")
set_tests_properties(shm_durable_sub_test PROPERTIES TIMEOUT 300 LABELS unit ENVIRONMENT "RILL_LOG=error")
set_tests_properties(shm_topics_test PROPERTIES TIMEOUT 300 LABELS "unit;tsan" ENVIRONMENT "RILL_LOG=error")
set_tests_properties(shm_group_test PROPERTIES TIMEOUT 300 LABELS "unit;tsan" ENVIRONMENT "RILL_LOG=error")
