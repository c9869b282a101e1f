// Durability between real processes: incompatible requests refused, dead letters, and a
// durable subscriber told what retention deleted while it was away.
#include <doctest/doctest.h>

#include <fstream>
#include <set>

#include "durable_util.hpp"

namespace rill::e2e {

namespace {

// A publisher that stays up (slow pace, long run) until the test stops it.
std::unique_ptr<Process> steady_publisher(const TempDir& dir, const std::string& name, const std::string& ep,
                                          const std::string& durability) {
  return spawn_rill(dir, name,
                    {"pub", ep, "dur/t", "--durability", durability, "--count", "100000000", "--rate", "200"});
}

// A subscription that must be refused: exit 1 with one line naming both modes.
void expect_refused(const TempDir& dir, const std::string& name, std::vector<std::string> args,
                    std::string_view offered, std::string_view requested) {
  auto sub = spawn_rill(dir, name, std::move(args));
  const auto e = sub->wait(30s);
  const auto err = sub->err();
  INFO(sub->command_line() << "\nstderr: " << err << "\nstdout: " << sub->out());
  CHECK(e.code == 1);
  CHECK_FALSE(e.signaled);
  REQUIRE(lines(err).size() == 1);
  CHECK(err.find(offered) != std::string::npos);
  CHECK(err.find(requested) != std::string::npos);
  CHECK(parse_delivered(sub->out()).messages.empty());
}

}  // namespace

TEST_CASE("incompatible: more durability than offered is refused with both modes named; less is served live") {
  auto dir = shm_temp_dir();
  std::filesystem::create_directories(dir / "state");
  SUBCASE("volatile publisher, durable subscriber") {
    const auto ep = tcp_endpoint(free_port());
    auto pub = steady_publisher(dir, "pub", ep, "volatile");
    expect_refused(dir, "sub", {"sub", ep, "dur/", "--durable", "x", "--idle-exit-ms", "20000"}, "volatile",
                   "persistent");
    CHECK(pub->running());  // a refused subscriber does not hurt the publisher
    pub->kill(SIGTERM);
    const auto e = pub->wait(30s);
    CHECK(e.ok());
    CHECK(json_u64(parse_stats(pub->err()).line, "incompatible") == 1u);
  }
  SUBCASE("transient-local publisher, persistent request") {
    const auto ep = tcp_endpoint(free_port());
    auto pub = steady_publisher(dir, "pub", ep, "transient-local:100");
    expect_refused(dir, "sub",
                   {"sub", ep, "dur/", "--durability", "persistent", "--durable", "y", "--state-dir",
                    (dir / "state").string(), "--idle-exit-ms", "20000"},
                   "transient-local", "persistent");
    CHECK(pub->running());
    pub->kill(SIGTERM);
    CHECK(pub->wait(30s).ok());
  }
  SUBCASE("persistent publisher, volatile subscriber: live messages only") {
    const auto ep = tcp_endpoint(free_port());
    const auto log = "persistent:" + (dir / "log").string();
    // 1000 messages in the log before the subscriber exists ...
    auto first = spawn_rill(dir, "pub1", {"pub", ep, "dur/t", "--durability", log, "--count", "1000"});
    REQUIRE(first->wait(60s).ok());
    // ... then a publisher continuing the log, and a plain subscriber: it sees 1001.. only.
    auto pub = spawn_rill(
        dir, "pub2",
        {"pub", ep, "dur/t", "--durability", log, "--count", "100", "--wait-subs", "1", "--linger-ms", "500"});
    auto sub = spawn_rill(dir, "sub", {"sub", ep, "dur/", "--count", "100", "--policy", "backpressure:64"});
    const auto se = sub->wait(60s);
    INFO("sub: " << sub->err() << "\npub: " << pub->err());
    REQUIRE(se.ok());
    REQUIRE(pub->wait(60s).ok());
    const auto got = parse_delivered(sub->out());
    REQUIRE(got.messages.size() == 100);
    for (std::size_t i = 0; i < got.messages.size(); ++i) CHECK(got.messages[i].seq == 1001 + i);
    CHECK(parse_stats(sub->out())["gaps"] == 0);
  }
}

TEST_CASE(
    "dead letters: a message failed max-attempts times is dead-lettered with its attempts; the rest arrive in order") {
  auto dir = shm_temp_dir();
  const auto ep = tcp_endpoint(free_port());
  const auto input = dir / "input.txt";
  std::set<std::uint64_t> bad_seqs;
  {
    std::ofstream in(input);
    for (std::uint64_t seq = 1; seq <= 200; ++seq) {
      const bool bad = seq % 37 == 0 || seq == 1 || seq == 200;
      if (bad) bad_seqs.insert(seq);
      in << (bad ? "BAD " : "ok ") << seq << "\n";
    }
  }
  const auto dlq = dir / "dead-letters";
  auto sub = spawn_rill(dir, "sub",
                        {"sub", ep, "dur/", "--max-attempts", "3", "--backoff-ms", "1", "--dead-letter", dlq.string(),
                         "--fail-if", "BAD", "--policy", "backpressure:64", "--idle-exit-ms", "2000"});
  auto pub =
      spawn_rill_stdin(dir, "pub", {"pub", ep, "dur/dl", "--stdin", "--wait-subs", "1", "--linger-ms", "200"}, input);
  REQUIRE(pub->wait(60s).ok());
  const auto se = sub->wait(60s);
  INFO("sub: " << sub->err() << "\npub: " << pub->err());
  REQUIRE(se.ok());

  const auto got = parse_delivered(sub->out());
  CHECK(got.bad == 0);
  std::uint64_t expect = 1;
  std::size_t wrong = 0;
  for (const auto& m : got.messages) {
    while (bad_seqs.contains(expect)) ++expect;
    wrong += m.seq != expect || m.payload != "ok " + std::to_string(expect);
    ++expect;
  }
  CHECK(wrong == 0);
  CHECK(got.messages.size() == 200 - bad_seqs.size());

  // `rill log dlq DIR` lists them (DIR is the parent of dead-letters/ or the log dir itself).
  auto list = spawn_rill(dir, "dlq", {"log", "dlq", dlq.string()});
  auto le = list->wait(30s);
  if (!le.ok() || list->out().find("\"dlq_seq\"") == std::string::npos) {
    // --dead-letter may name the dead-letter log itself: list its parent's view.
    list = spawn_rill(dir, "dlq2", {"log", "dlq", dlq.parent_path().string()});
    le = list->wait(30s);
  }
  INFO("dlq: " << list->out() << list->err());
  REQUIRE(le.ok());
  std::set<std::uint64_t> listed;
  const auto listing = list->out();  // (lines() views into it: keep it alive)
  for (auto line : lines(listing)) {
    if (!line.starts_with("{\"dlq_seq\":")) continue;
    listed.insert(json_u64(line, "seq").value_or(0));
    CHECK(json_u64(line, "attempts") == 3u);
    CHECK(line.find("BAD") != std::string::npos);  // the payload is kept
  }
  const auto show = [](const std::set<std::uint64_t>& v) {
    std::string t;
    for (auto x : v) t += std::to_string(x) + " ";
    return t;
  };
  CHECK(show(listed) == show(bad_seqs));
}

TEST_CASE("retention: a durable subscriber away while old segments were deleted is told the lost range as a gap") {
  auto dir = shm_temp_dir();
  const auto ep = tcp_endpoint(free_port());
  const auto log_dir = dir / "log";
  std::filesystem::create_directories(dir / "state");
  const std::vector<std::string> pub_base{"pub",
                                          ep,
                                          "dur/r",
                                          "--durability",
                                          "persistent:" + log_dir.string(),
                                          "--segment-bytes",
                                          "4096",
                                          "--retention-bytes",
                                          "16384",
                                          "--size",
                                          "100"};
  const std::vector<std::string> sub_args{"sub",
                                          ep,
                                          "dur/",
                                          "--durable",
                                          "ret",
                                          "--durability",
                                          "persistent",
                                          "--from",
                                          "last-ack",
                                          "--state-dir",
                                          (dir / "state").string(),
                                          "--policy",
                                          "backpressure:64",
                                          "--idle-exit-ms",
                                          "2000"};
  auto with = [](std::vector<std::string> a, std::initializer_list<std::string> more) {
    a.insert(a.end(), more);
    return a;
  };
  // 1. The subscriber takes and acknowledges the first 100.
  {
    auto pub = spawn_rill(dir, "pub1", with(pub_base, {"--count", "100", "--wait-subs", "1", "--linger-ms", "60000"}));
    auto sub = spawn_rill(dir, "sub1", sub_args);
    const auto se = sub->wait(60s);
    INFO("sub1: " << sub->err());
    REQUIRE(se.ok());
    CHECK(parse_delivered(sub->out()).messages.size() == 100);
    pub->kill(SIGTERM);
    REQUIRE(pub->wait(30s).ok());
  }
  // 2. While it is away: 2000 more, and retention deletes the oldest segments.
  {
    auto pub = spawn_rill(dir, "pub2", with(pub_base, {"--count", "2000"}));
    REQUIRE(pub->wait(60s).ok());
  }
  // 3. It comes back: a gap of exactly what was deleted past its ack, then the rest.
  auto pub = spawn_rill(dir, "pub3", with(pub_base, {"--count", "0", "--linger-ms", "60000"}));
  REQUIRE(wait_until([&] { return pub->err().find("{\"persistent\":") != std::string::npos || !pub->running(); }, 30s));
  // What is retained now (the publisher applies retention again when it opens the log).
  auto list = spawn_rill(dir, "list", {"log", "list", log_dir.string()});
  REQUIRE(list->wait(30s).ok());
  const auto head = first_line_with(list->out(), "{\"log\":");
  const auto first_kept = json_u64(head, "first_seq").value_or(0);
  INFO("log list: " << list->out());
  REQUIRE(json_u64(head, "last_seq") == 2100u);
  REQUIRE(first_kept > 101);  // retention really deleted some of what the subscriber had not seen
  const auto acked = [&]() -> std::uint64_t {
    const auto listing = list->out();
    for (auto line : lines(listing)) {
      if (line.find("\"ret\"") != std::string::npos)
        return json_u64(line, "seq").value_or(json_u64(line, "acked").value_or(0));
    }
    return 0;
  }();
  CHECK(acked == 100);
  auto sub = spawn_rill(dir, "sub2", sub_args);
  const auto se = sub->wait(60s);
  INFO("sub2: " << sub->err() << "\n" << sub->out().substr(0, 400));
  REQUIRE(se.ok());
  pub->kill(SIGTERM);
  CHECK(pub->wait(30s).ok());
  const auto got = parse_delivered(sub->out());
  REQUIRE_FALSE(got.messages.empty());
  CHECK(got.messages.front().seq == first_kept);
  CHECK(got.messages.back().seq == 2100);
  CHECK(got.messages.size() == 2100 - first_kept + 1);
  const auto st = parse_stats(sub->out());
  CHECK(st["gaps"] == first_kept - 1 - 100);
  CHECK(st["received"] == got.messages.size());
}

}  // namespace rill::e2e
