// End-to-end: the compatible subscriber printed in PROTOCOL.md section 8, compiled from the
// document by CMake (libzmq and flatc output only), against a real `rill pub`.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "process.hpp"

namespace rill::e2e {
namespace {

using namespace std::chrono_literals;

// Runs `rill pub` (2000 messages of 100 bytes, waiting for one subscriber) against the
// section 8 program with WINDOW and WORK_US; returns both outputs.
struct Run {
  std::string subscriber;  // its one line: "received R gaps G bye LAST"
  Stats pub;
};

Run run(const TempDir& dir, const std::string& name, const std::string& window, const std::string& work_us) {
  const auto ep = tcp_endpoint(free_port());
  auto pub = spawn_rill(dir, name + "_pub", {"pub", ep, "md/x", "--count", "2000", "--size", "100", "--wait-subs", "1"});
  Process sub({RILL_SECTION8_PATH, ep, "md/", window, work_us}, dir.path(), name + "_sub");
  const auto se = sub.wait(90s);
  const auto pe = pub->wait(30s);
  INFO("subscriber: " << sub.out() << sub.err());
  INFO("publisher: " << pub->err());
  CHECK(se.describe() == "exit 0");
  CHECK(pe.describe() == "exit 0");
  return {sub.out(), parse_stats(pub->err())};
}

}  // namespace

TEST_CASE("section 8's subscriber under backpressure gets every message, and the publisher waited for it") {
  TempDir dir;
  const Run r = run(dir, "bp", "64", "200");
  CHECK(r.subscriber == "received 2000 gaps 0 bye 2000\n");
  REQUIRE(r.pub.found);
  CHECK(r.pub["sent"] == 2000);
  CHECK(r.pub["timeouts"] == 0);
  CHECK(r.pub["blocked_ns"] > 0);  // the window really held it back: the credit path was used
}

TEST_CASE("section 8's subscriber under drop-oldest accounts for every message, the tail and BYE included") {
  TempDir dir;
  const Run r = run(dir, "drop", "0", "0");
  unsigned long long received = 0, gaps = 0, bye = 0;
  REQUIRE(std::sscanf(r.subscriber.c_str(), "received %llu gaps %llu bye %llu", &received, &gaps, &bye) == 3);
  CHECK(received + gaps == 2000);
  CHECK(received > 0);
  CHECK(bye == 2000);  // it answers BYE, so the publisher kept its socket open until the tail arrived
  REQUIRE(r.pub.found);
  CHECK(r.pub["blocked_ns"] == 0);
}

}  // namespace rill::e2e
