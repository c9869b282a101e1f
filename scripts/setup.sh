#!/usr/bin/env bash
# Installs what rill needs to build and test, from Debian 12's archive. Idempotent:
# packages already present are skipped, and apt-get update runs only if one is missing.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config ccache
  cppzmq-dev libzmq3-dev            # tcp transport
  libsodium-dev                     # udp auth_key_file: keyed BLAKE2b MACs
  libflatbuffers-dev flatbuffers-compiler  # codec
  liburing-dev libspdlog-dev libssl-dev
  doctest-dev                       # tests
  xxd                               # tests: hex envelopes back to bytes
  iproute2 nftables                 # tests: udp across network namespaces with injected loss
  libfuse3-dev fuse3                # tests: lazyfs, power loss under the log (log_powerloss)
  libboost-dev libcurl4-openssl-dev # http: Beast request parser, webhook delivery client
  curl openssl wrk nginx-light      # http: e2e clients and signatures, perf load and baseline
  libpq-dev postgresql              # cdc: libpq replication client; tests run a real PostgreSQL 15
  libsimdjson-dev                   # stream: JSON payload fields (event time, key, value)
  libnats-dev nats-server           # jetstream transport (nats.c client); tests: a real 3-node cluster
  tao-pegtl-dev                     # query: the streaming SQL grammar (PEGTL, header-only)
  clang-19 libclang-rt-19-dev       # fuzz smoke (scripts/fuzz.sh): libFuzzer with ASan+UBSan
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
