// End-to-end: real `rill pub` / `rill sub` processes on loopback, one per policy.
// The numbers asserted follow from each policy's contract (DESIGN.md, "Slow-consumer
// policies"), not from timing luck: where an outcome depends on speed, the test makes
// the subscriber so much slower than the publisher that the outcome is forced.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "checks.hpp"
#include "process.hpp"
#include "streams.hpp"

namespace rill::e2e {

TEST_CASE("backpressure: a 10x slower subscriber gets all 100000 in order and holds the publisher back") {
  constexpr std::uint64_t n = 100000;
  constexpr std::uint64_t work_us = 20;  // the publisher alone sends > 200k msg/s: this consumer is > 10x slower
  TempDir dir;

  // Publishes n messages to one backpressure:64 subscriber spending `work` per message.
  const auto run = [&](const std::string& tag, std::uint64_t work) {
    const auto ep = tcp_endpoint(free_port());
    auto sub = spawn_rill(dir, tag + "-sub",
                          {"sub", ep, "md/", "--count", str(n), "--idle-exit-ms", "3000", "--policy", "backpressure:64",
                           "--work-us", str(work), "--format", "text"});
    // A generous publish deadline: waiting is what is measured, a timeout would be a failure.
    auto pub = spawn_rill(dir, tag + "-pub",
                          {"pub", ep, "md/x", "--count", str(n), "--wait-subs", "1", "--timeout-ms", "20000"});
    const auto p = finish_pub(*pub);
    const auto s = finish_sub(*sub);
    return std::make_tuple(p, s, sub->out());
  };

  const auto [slow_pub, slow_stats, slow_out] = run("slow", work_us);
  const auto [fast_pub, fast_stats, fast_out] = run("fast", 0);
  const double floor_s = 0.9 * n * work_us / 1e6;  // the last send needs credit for n-64 handled messages
  MESSAGE("backpressure: publisher wall " << slow_pub.exit.seconds() << " s with a " << work_us
                                          << " us/msg subscriber (blocked " << slow_pub.stats["blocked_ns"] / 1e9
                                          << " s), " << fast_pub.exit.seconds() << " s with a 0 us/msg one");

  // Nothing lost, nothing reordered.
  CHECK(slow_pub.stats["sent"] == n);
  CHECK(slow_pub.stats["timeouts"] == 0);
  CHECK(slow_stats["received"] == n);
  CHECK(slow_stats["gaps"] == 0);
  CHECK(slow_stats["dropped"] == 0);
  const auto msgs = parse_text(slow_out, "md/x");
  CHECK(msgs.bad == 0);
  CHECK(msgs.seqs.size() == n);
  CHECK(is_run_from(msgs.seqs, 1));

  // The publisher went at the subscriber's pace, and said so.
  CHECK(slow_pub.stats["blocked_ns"] > 0);
  CHECK(slow_pub.stats["blocked_ns"] >= static_cast<std::uint64_t>(0.5 * n * work_us * 1000));
  CHECK(slow_pub.exit.seconds() >= floor_s);

  // The same publish to a subscriber that keeps up is far quicker.
  CHECK(fast_stats["received"] == n);
  CHECK(fast_stats["gaps"] == 0);
  CHECK(is_run_from(parse_text(fast_out, "md/x").seqs, 1));
  CHECK(fast_pub.exit.seconds() * 2 < slow_pub.exit.seconds());
}

TEST_CASE("drop-oldest keeps the newest and drop-newest keeps the oldest; every loss is counted") {
  constexpr std::uint64_t n = 20000;
  constexpr std::uint64_t queue = 100;
  // 5 ms per message: the subscriber handles ~200 msg/s while 20000 arrive in well
  // under a second, so its queue is full from the second message to the end of the
  // stream whatever the machine's load. That makes which messages survive certain.
  constexpr std::uint64_t work_us = 5000;
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  const auto sub_args = [&](const std::string& policy) {
    std::vector<std::string> args{"sub", ep, "md/", "--idle-exit-ms", "1500", "--format", "text"};
    args.insert(args.end(), {"--policy", policy + ":" + str(queue), "--work-us", str(work_us)});
    return args;
  };
  auto oldest = spawn_rill(dir, "drop-oldest", sub_args("drop-oldest"));
  auto newest = spawn_rill(dir, "drop-newest", sub_args("drop-newest"));
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--wait-subs", "2"});
  const auto p = finish_pub(*pub);
  const auto so = finish_sub(*oldest, "drop-oldest sub");
  const auto sn = finish_sub(*newest, "drop-newest sub");
  const auto mo = parse_text(oldest->out(), "md/x");
  const auto mn = parse_text(newest->out(), "md/x");
  MESSAGE("drop-oldest: " << so.line);
  MESSAGE("drop-newest: " << sn.line);

  REQUIRE(p.stats["sent"] == n);
  // The transport delivered everything, so every missing message is the policy's doing.
  REQUIRE(p.stats["peer_drops"] == 0);
  for (const auto* s : {&so, &sn}) {
    CHECK((*s)["received"] + (*s)["gaps"] == n);
    CHECK((*s)["dropped"] == (*s)["gaps"]);
    CHECK((*s)["dropped"] > 0);
  }
  CHECK(mo.bad == 0);
  CHECK(mn.bad == 0);
  CHECK(mo.seqs.size() == so["received"]);
  CHECK(mn.seqs.size() == sn["received"]);
  CHECK(first_not_increasing(mo.seqs) == mo.seqs.size());
  CHECK(first_not_increasing(mn.seqs) == mn.seqs.size());

  // drop-oldest: each discard removed the oldest queued message, so the queue the
  // last discard left behind (the `queue` messages up to it) and everything after it
  // reached the handler: the last `queue` received are n-queue+1 .. n.
  REQUIRE(mo.seqs.size() >= queue);
  CHECK(mo.seqs.back() == n);
  CHECK(is_run_from(tail(mo.seqs, queue), n - queue + 1));
  // ...and the oldest messages were overwritten while the handler slept on the first.
  CHECK(count_in(mo.seqs, 1, queue) <= queue / 2);

  // drop-newest: nothing is discarded before the queue holds `queue` messages, and
  // queued messages are never discarded, so 1..queue all reached the handler.
  REQUIRE(mn.seqs.size() >= queue);
  CHECK(is_run_from(head(mn.seqs, queue), 1));
  // ...and the newest arrivals found the queue full: the tail is mostly gone.
  CHECK(count_in(mn.seqs, n - queue + 1, n) <= queue / 2);
}

TEST_CASE("drop-oldest under a long fast stream: its own queue does the dropping, the newest survive") {
  // 400k messages at 200k/s: 1000x faster than the 200 us handler, but slow enough
  // that the subscriber's process can still read its socket (on 2 cores, a publisher
  // at full speed outruns the receiving process itself; then the publisher skips it and
  // counts peer_drops, seen as gaps: not what this case tests). drop_oldest(100) promises a
  // queue of 100 where the oldest make room for the newest: the backlog must sit in
  // that queue, not in the sockets (where only the newest could be dropped).
  constexpr std::uint64_t n = 400000;
  constexpr std::uint64_t queue = 100;
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  auto sub = spawn_rill(dir, "sub",
                        {"sub", ep, "md/", "--idle-exit-ms", "1500", "--policy", "drop-oldest:" + str(queue),
                         "--work-us", "200", "--format", "text"});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--rate", "200000", "--wait-subs", "1"});
  const auto p = finish_pub(*pub);
  const auto s = finish_sub(*sub);
  const auto m = parse_text(sub->out(), "md/x");
  MESSAGE("long stream, drop-oldest:" << queue << ": pub " << p.stats.line << "; sub " << s.line);

  CHECK(p.stats["sent"] == n);
  CHECK(p.stats["blocked_ns"] == 0);
  CHECK(s["received"] + s["gaps"] == n);  // the contract for a subscriber present throughout
  CHECK(p.stats["peer_drops"] == 0);      // the transport never had to drop for it
  CHECK(s["dropped"] == s["gaps"]);       // every loss was its own policy's choice
  CHECK(m.bad == 0);
  REQUIRE(m.seqs.size() >= queue);
  CHECK(is_run_from(tail(m.seqs, queue), n - queue + 1));
}

TEST_CASE("buffer: the queue grows to its byte limit, overflows once, then drops oldest") {
  constexpr std::uint64_t n = 20000;
  constexpr std::uint64_t limit = 65536;
  constexpr std::uint64_t size = 512;
  // An envelope is the payload plus < 512 bytes of header: at least limit/1024 fit.
  constexpr std::uint64_t fit = limit / 1024;
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  auto sub = spawn_rill(dir, "sub",
                        {"sub", ep, "md/", "--idle-exit-ms", "1500", "--policy", "buffer:" + str(limit), "--work-us",
                         "2000", "--format", "text"});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--size", str(size), "--wait-subs", "1"});
  const auto p = finish_pub(*pub);
  const auto s = finish_sub(*sub);
  const auto m = parse_text(sub->out(), "md/x");
  MESSAGE("buffer:" << limit << ": " << s.line);

  REQUIRE(p.stats["sent"] == n);
  REQUIRE(p.stats["peer_drops"] == 0);
  CHECK(s["overflow_events"] == 1);
  CHECK(s["queue_high_water_bytes"] <= limit);
  CHECK(s["queue_high_water_bytes"] + 1024 > limit);  // it did fill up to the limit
  check_policy_losses(s, m, n);
  // Past the limit it behaves as drop-oldest: the newest messages survive.
  REQUIRE(m.seqs.size() >= fit);
  CHECK(is_run_from(tail(m.seqs, fit), n - fit + 1));
}

TEST_CASE("at full speed a slow drop subscriber drops while a fast one gets everything; rates reported") {
  constexpr std::uint64_t n = 200000;
  TempDir dir;
  struct Run {
    double rate = 0;     // publish rate seen by the fast subscriber (envelope timestamps)
    double pub_cpu = 0;  // CPU seconds of each process
    double fast_cpu = 0;
    double other_cpu = 0;
  };
  // `extra`: "" (the fast subscriber alone), "slow" (plus a drop-oldest:100 subscriber
  // spending 200 us per message), or "fast2" (plus a second subscriber that keeps up:
  // what any second subscriber costs this machine, for comparison).
  const auto run = [&](const std::string& tag, const std::string& extra) {
    const auto ep = tcp_endpoint(free_port());
    auto fast =
        spawn_rill(dir, tag + "-fast",
                   {"sub", ep, "md/", "--count", str(n), "--idle-exit-ms", "3000", "--policy", "backpressure:1024"});
    std::unique_ptr<Process> other;
    if (extra == "slow") {
      other = spawn_rill(dir, tag + "-slow",
                         {"sub", ep, "md/", "--idle-exit-ms", "500", "--policy", "drop-oldest:100", "--work-us", "200",
                          "--format", "text"});
    } else if (extra == "fast2") {
      other =
          spawn_rill(dir, tag + "-fast2",
                     {"sub", ep, "md/", "--idle-exit-ms", "500", "--policy", "drop-oldest:1024", "--format", "text"});
    }
    auto pub =
        spawn_rill(dir, tag + "-pub",
                   {"pub", ep, "md/x", "--count", str(n), "--wait-subs", other ? "2" : "1", "--timeout-ms", "20000"});
    const auto p = finish_pub(*pub);
    const auto fast_exit = expect_clean_exit(*fast, "fast sub");
    const auto fs = parse_stats(fast->out());
    CHECK(p.stats["sent"] == n);
    CHECK(p.stats["timeouts"] == 0);
    CHECK(fs["received"] == n);
    CHECK(fs["gaps"] == 0);
    const auto msgs = parse_json(fast->out());
    std::filesystem::remove(fast->out_path());  // ~30 MB of json per run
    REQUIRE(msgs.all.size() == n);
    CHECK(msgs.bad == 0);
    Run r{.pub_cpu = p.exit.cpu_seconds, .fast_cpu = fast_exit.cpu_seconds};
    if (other) {
      r.other_cpu = expect_clean_exit(*other, extra + " sub").cpu_seconds;
      const auto os = parse_stats(other->out());
      CHECK(os["received"] + os["gaps"] == n);
      // It handles at most 1e6/200 = 5000 msg/s: that it dropped shows the publisher ran
      // ahead of it instead of waiting (the paced case below checks no send ever waited).
      if (extra == "slow") CHECK(os["dropped"] > 0);
    }
    const double span_s = static_cast<double>(msgs.all.back().ts_ns - msgs.all.front().ts_ns) / 1e9;
    r.rate = static_cast<double>(n - 1) / span_s;
    return r;
  };
  Run alone;
  Run with_slow;
  Run with_fast2;
  const auto keep_best = [](Run& best, const Run& r) {
    if (r.rate > best.rate) best = r;
  };
  // Interleaved, best of three: the machine's noise hits each configuration alike.
  for (int i = 0; i < 3; ++i) {
    keep_best(alone, run("alone" + str(i), ""));
    keep_best(with_slow, run("slow" + str(i), "slow"));
    keep_best(with_fast2, run("fast2-" + str(i), "fast2"));
  }
  const auto show = [](const Run& r) {
    std::ostringstream s;
    s << static_cast<std::uint64_t>(r.rate) << " msg/s (cpu s: pub " << r.pub_cpu << ", fast " << r.fast_cpu
      << ", other " << r.other_cpu << ")";
    return s.str();
  };
  // Figures, not verdicts: at full speed on 2 cores any second subscriber process takes CPU
  // from the publisher and the fast subscriber (the fast2 figure), and best-of-three still
  // varies by more than 15%. The aim is a slow drop subscriber within 10% of the fast one
  // alone and costing no more than a second fast one.
  MESSAGE("publish rate with the fast subscriber alone: " << show(alone));
  MESSAGE("  plus a slow drop subscriber: " << show(with_slow) << " = " << 100 * with_slow.rate / alone.rate << "%");
  MESSAGE("  plus a second fast subscriber: " << show(with_fast2) << " = " << 100 * with_fast2.rate / alone.rate
                                              << "%");
}

TEST_CASE("a slow drop or buffer subscriber never makes the publisher wait, and the fast one gets everything") {
  // The promise, checked by counts rather than timing: with a slow subscriber whose policy
  // drops (drop-oldest, or buffer past its byte limit) beside a fast one, not one send
  // waited (blocked_ns, timeouts), none was skipped (peer_drops), the fast subscriber got
  // every message in order, and the slow one accounts for every message as received or
  // lost, having dropped some. Paced at 100k msg/s so that the fast subscriber can keep up
  // without backpressure (any blocking would then be a bug). Under the sanitizers its own
  // work is several times dearer and, on a busy host, could not keep that pace (its drop
  // queue overflowed in one CI run): 30k. The rates are reported, not compared: --rate
  // caps every run, so a comparison could not fail.
  constexpr std::uint64_t n = 150000;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  const std::string pace = "30000";
#else
  const std::string pace = "100000";
#endif
  TempDir dir;
  // `slow_policy`: "" for the fast subscriber alone (the figure to compare with).
  const auto run = [&](const std::string& tag, const std::string& slow_policy) {
    const auto ep = tcp_endpoint(free_port());
    // No backpressure subscriber at all (the fast one has a deep drop queue instead), so
    // any blocking of the publisher would be a bug; under ctest -j a descheduled
    // backpressure subscriber could otherwise hold it for a moment, legitimately.
    auto fast = spawn_rill(
        dir, tag + "-fast",
        {"sub", ep, "md/", "--count", str(n), "--idle-exit-ms", "3000", "--policy", "drop-oldest:65536"});
    std::unique_ptr<Process> slow;
    if (!slow_policy.empty()) {
      slow = spawn_rill(dir, tag + "-slow",
                        {"sub", ep, "md/", "--idle-exit-ms", "500", "--policy", slow_policy, "--work-us", "200",
                         "--format", "text"});
    }
    auto pub = spawn_rill(dir, tag + "-pub",
                          {"pub", ep, "md/x", "--count", str(n), "--rate", pace, "--wait-subs", slow ? "2" : "1"});
    const auto p = finish_pub(*pub);
    expect_clean_exit(*fast, "fast sub");
    const auto fs = parse_stats(fast->out());
    CHECK(p.stats["sent"] == n);
    CHECK(p.stats["blocked_ns"] == 0);
    CHECK(p.stats["timeouts"] == 0);
    CHECK(p.stats["peer_drops"] == 0);
    CHECK(fs["received"] == n);
    CHECK(fs["gaps"] == 0);
    if (slow) {
      expect_clean_exit(*slow, "slow sub");
      const auto ss = parse_stats(slow->out());
      INFO("slow subscriber " << slow_policy << ": " << ss.line);
      CHECK(ss["received"] + ss["gaps"] == n);
      CHECK(ss["dropped"] > 0);
      CHECK(ss["received"] < n);
    }
    const auto msgs = parse_json(fast->out());
    std::filesystem::remove(fast->out_path());
    REQUIRE(msgs.all.size() == n);
    CHECK(msgs.bad == 0);
    std::vector<std::uint64_t> seqs;
    for (const auto& m : msgs.all) seqs.push_back(m.seq);
    CHECK(is_run_from(seqs, 1));
    return static_cast<double>(n - 1) * 1e9 / static_cast<double>(msgs.all.back().ts_ns - msgs.all.front().ts_ns);
  };
  const double alone = run("paced-alone", "");
  const double with_drop = run("paced-drop", "drop-oldest:100");
  const double with_buffer = run("paced-buffer", "buffer:65536");
  MESSAGE("paced at " << pace << " msg/s: alone " << static_cast<std::uint64_t>(alone)
                      << " msg/s, with a slow drop-oldest subscriber " << static_cast<std::uint64_t>(with_drop)
                      << " msg/s, with a slow buffer subscriber " << static_cast<std::uint64_t>(with_buffer)
                      << " msg/s");
}

}  // namespace rill::e2e

namespace rill::e2e {

TEST_CASE("rill pub with several topics: one endpoint, each topic its own publisher and gap-free sequence") {
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  auto sub = spawn_rill(dir, "sub", {"sub", ep, "md/", "--count", "300", "--idle-exit-ms", "10000", "--format", "json"});
  auto news = spawn_rill(dir, "news", {"sub", ep, "news/", "--idle-exit-ms", "1500", "--format", "json"});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/a", "md/b", "news/c", "--count", "100", "--wait-subs", "1"});
  const auto p = expect_clean_exit(*pub, "pub");
  const auto s = finish_sub(*sub);
  const auto n = finish_sub(*news, "news");
  const auto msgs = parse_json(sub->out());
  REQUIRE(msgs.all.size() == 200);
  std::map<std::string, std::vector<std::uint64_t>> seqs;
  std::map<std::string, std::set<std::string>> ids;
  for (const auto& m : msgs.all) {
    seqs[m.topic].push_back(m.seq);
    ids[m.topic].insert(m.publisher);
  }
  std::vector<std::uint64_t> want(100);
  for (std::uint64_t i = 0; i < want.size(); ++i) want[i] = i + 1;
  CHECK(seqs["md/a"] == want);
  CHECK(seqs["md/b"] == want);
  CHECK(seqs.count("news/c") == 0);  // filtered at the publisher
  CHECK(ids["md/a"].size() == 1);
  CHECK(ids["md/a"] != ids["md/b"]);
  CHECK(s["gaps"] == 0);
  CHECK(s["publishers"] == 2);
  CHECK(n["received"] == 100);
  CHECK(n["gaps"] == 0);
  // One stats line per topic, each naming its topic.
  const auto err = pub->err();
  for (const std::string t : {"md/a", "md/b", "news/c"}) {
    CHECK(err.find("{\"stats\":{\"topic\":\"" + t + "\",\"sent\":100,") != std::string::npos);
  }
}

}  // namespace rill::e2e
