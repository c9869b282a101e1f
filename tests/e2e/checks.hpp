// doctest helpers the e2e cases share: wait for a `rill` process that must end cleanly,
// then read its stats line.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "process.hpp"
#include "streams.hpp"

namespace rill::e2e {

inline std::string str(std::uint64_t v) {
  return std::to_string(v);
}

/// Lines `p` has written to stdout so far (its stdout is block-buffered: they come in bursts).
inline std::size_t line_count(const Process& p) {
  const auto out = p.out();
  return static_cast<std::size_t>(std::count(out.begin(), out.end(), '\n'));
}

/// Waits for a process that must end by itself with exit 0; a timeout, a crash or
/// another exit code stops the test case here, with its command line and stderr.
inline ExitStatus expect_clean_exit(Process& p, std::string_view who, std::chrono::milliseconds timeout = 60s) {
  const auto e = p.wait(timeout);
  INFO(who << ": " << p.command_line());
  INFO(who << " stderr: " << p.err().substr(0, 2000));
  REQUIRE_MESSAGE(e.ok(), who << " ended with " << e.describe());
  return e;
}

/// How a `rill pub` ended and its final stats line (stderr).
struct PubRun {
  ExitStatus exit;
  Stats stats;
};

inline PubRun finish_pub(Process& pub, std::string_view who = "pub") {
  PubRun r{expect_clean_exit(pub, who), parse_stats(pub.err())};
  REQUIRE_MESSAGE(r.stats.found, "no stats line from " << who << ": " << pub.err().substr(0, 2000));
  return r;
}

/// Waits for a `rill sub` and returns its final stats line (stdout).
inline Stats finish_sub(Process& sub, std::string_view who = "sub") {
  expect_clean_exit(sub, who);
  auto s = parse_stats(sub.out());
  REQUIRE_MESSAGE(s.found, "no stats line from " << who);
  return s;
}

/// A subscriber present from the first message to the last, whose own policy dropped
/// some: every message is received or counted in gaps, every gap was its policy's
/// choice, and what it printed is the received messages in increasing order.
inline void check_policy_losses(const Stats& s, const TextMessages& m, std::uint64_t n) {
  CHECK(s["received"] + s["gaps"] == n);
  CHECK(s["dropped"] == s["gaps"]);
  CHECK(s["dropped"] > 0);
  CHECK(m.bad == 0);
  CHECK(m.seqs.size() == s["received"]);
  CHECK(first_not_increasing(m.seqs) == m.seqs.size());
}

}  // namespace rill::e2e
