// The durability headline: a persistent publisher (fsync always) killed with SIGKILL at 200
// random points of a 100,000-message run and restarted each time, and a durable subscriber
// killed at random points too: at the end the subscriber's output holds every sequence
// 1..100000 exactly once, in order, all from the log's publisher id, and every publisher
// incarnation continued the log where the previous one died.
#include <doctest/doctest.h>
#include <unistd.h>

#include <optional>
#include <random>
#include <thread>

#include "durable_util.hpp"
#include "rill/rill.hpp"
#include "../test_seed.hpp"

namespace rill::e2e {

namespace {

struct CrashRun {
  std::uint64_t messages = 100'000;
  int publisher_kills = 200;
  // Most publishers are killed 0..max_publish_ms after they started publishing (their
  // start line), paced at `rate` (at most 900 messages each, about 350 on average: the
  // kills spread over most of the run and all land before its end). One in five is killed
  // 0..max_startup_ms after its spawn instead: inside process start or log recovery.
  int max_publish_ms = 60;
  int max_startup_ms = 15;
  int rate = 15000;
  bool shm = false;  // shm://NAME instead of tcp
  bool udp = false;  // reliable udp multicast on loopback instead of tcp
  // Each subscriber incarnation is killed min_sub_life_ms + 0..sub_life_spread_ms after its spawn.
  int min_sub_life_ms = 50;
  int sub_life_spread_ms = 400;
};

// The log's next sequence, read as a restarted publisher will see it (torn tail excluded);
// 1 when no segment exists yet, nullopt when a read-only open cannot tell (a publisher
// killed while creating its first segment leaves one that only a writer's recovery removes).
std::optional<std::uint64_t> log_next_seq(const std::filesystem::path& dir) {
  std::error_code ec;
  bool any_segment = false;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) any_segment |= e.path().extension() == ".log";
  if (!any_segment) return 1;
  auto log = Log::open(dir, {.read_only = true});
  if (!log) {
    MESSAGE("opening the log read-only: " << log.error().message());
    return std::nullopt;
  }
  return log->next_sequence();
}

void run_crash(const CrashRun& cfg) {
  auto dir = shm_temp_dir();
  const auto log_dir = dir / "log";
  const auto out = dir / "sub.out";
  std::filesystem::create_directories(dir / "state");
  const auto ep = cfg.shm   ? "shm://rill-crash-" + std::to_string(::getpid())
                  : cfg.udp ? udp_endpoint()
                            : tcp_endpoint(free_port());
  const std::string until = std::to_string(cfg.messages);
  std::mt19937_64 rng(rilltest::test_seed());  // printed on stderr; RILL_TEST_SEED replays it
  INFO("seed " << rilltest::test_seed() << "; work dir " << dir.path());

  auto pub_args = [&](bool paced) {
    std::vector<std::string> a{"pub",
                               ep,
                               "dur/crash",
                               "--durability",
                               "persistent:" + log_dir.string(),
                               "--fsync",
                               "always",
                               "--segment-bytes",
                               "1048576",
                               "--until-seq",
                               until,
                               "--linger-ms",
                               "600000"};
    if (paced) a.insert(a.end(), {"--rate", std::to_string(cfg.rate)});
    return a;
  };
  const std::vector<std::string> sub_args{"sub",
                                          ep,
                                          "dur/",
                                          "--durable",
                                          "crash",
                                          "--durability",
                                          "persistent",
                                          "--from",
                                          "last-ack",
                                          "--state-dir",
                                          (dir / "state").string(),
                                          "--policy",
                                          "backpressure:1024",
                                          "--idle-exit-ms",
                                          "4000"};

  int sub_spawns = 0;
  int sub_kills = 0;
  std::unique_ptr<Process> sub = spawn_rill_appending(dir, "sub-0", sub_args, out);
  auto sub_deadline = std::chrono::steady_clock::now() +
                      std::chrono::milliseconds(cfg.min_sub_life_ms + rng() % (cfg.sub_life_spread_ms + 1));
  // Keeps the subscriber alive, and kills it with SIGKILL at its deadline while `killing`.
  auto tend_subscriber = [&](bool killing) {
    if (killing && std::chrono::steady_clock::now() >= sub_deadline) {
      sub->kill(SIGKILL);
      (void)sub->wait(10s);
      ++sub_kills;
    }
    if (!sub->running()) {
      sub = spawn_rill_appending(dir, "sub-" + std::to_string(++sub_spawns), sub_args, out);
      sub_deadline = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(cfg.min_sub_life_ms + rng() % (cfg.sub_life_spread_ms + 1));
    }
  };

  std::string publisher_id;
  int kills = 0;
  int continued_checked = 0;
  std::optional<std::uint64_t> expect_next = 1;  // the log's next sequence before this incarnation
  std::uint64_t final_start = 0;                 // ... before the last one
  for (int round = 0;; ++round) {
    const bool final_round = kills >= cfg.publisher_kills;
    auto pub = spawn_rill(dir, "pub-" + std::to_string(round), pub_args(!final_round));
    const auto spawned = std::chrono::steady_clock::now();
    const auto started = [&] { return pub->err().find("{\"persistent\":") != std::string::npos; };
    // A restarted publisher may find the port not free yet: spawn it again (not a kill).
    const auto port_busy = [&] { return pub->err().find("address_in_use") != std::string::npos; };
    if (!final_round) {
      std::chrono::steady_clock::time_point kill_at;
      if (rng() % 5 == 0) {
        kill_at = spawned + std::chrono::milliseconds(rng() % (cfg.max_startup_ms + 1));
      } else {
        while (!started() && pub->running() && std::chrono::steady_clock::now() - spawned < 60s) {
          tend_subscriber(true);
          std::this_thread::sleep_for(200us);
        }
        kill_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(rng() % (cfg.max_publish_ms + 1));
      }
      while (std::chrono::steady_clock::now() < kill_at && pub->running()) {
        tend_subscriber(true);
        std::this_thread::sleep_for(200us);
      }
      if (!pub->running()) {  // it finished or failed before its kill point
        const auto e = pub->wait(1s);
        if (port_busy()) continue;
        INFO("publisher " << round << " ended on its own: " << e.describe() << "\n" << pub->err());
        FAIL_CHECK("a paced publisher reached the end before 200 kills, or failed");
        break;
      }
      pub->kill(SIGKILL);
      (void)pub->wait(10s);
      ++kills;
    } else {
      // The last incarnation publishes what is left, then lingers serving catch-up.
      REQUIRE(wait_until([&] { return started() || !pub->running(); }, 60s));
      if (!pub->running() && port_busy()) continue;
      INFO("final publisher: " << pub->err());
      REQUIRE(pub->running());
    }
    // Did it continue the log? Its start line (absent when killed before opening the log).
    const auto start = first_line_with(pub->err(), "{\"persistent\":");
    if (!start.empty()) {
      const auto id = json_str(start, "publisher");
      REQUIRE(id.has_value());
      if (publisher_id.empty()) publisher_id = std::string(*id);
      CHECK(*id == publisher_id);
      if (expect_next) {
        CHECK(json_u64(start, "next_seq") == *expect_next);
        ++continued_checked;
      }
    }
    if (final_round) {
      final_start = expect_next.value_or(0);
      // Let the subscriber finish: it exits after 4 s with nothing new.
      const auto sub_done = [&] {
        if (sub->running()) return false;
        return parse_delivered(read_file(out)).messages.size() >= cfg.messages;
      };
      const auto end_by = std::chrono::steady_clock::now() + 240s;
      while (!sub_done() && std::chrono::steady_clock::now() < end_by) {
        tend_subscriber(false);
        std::this_thread::sleep_for(20ms);
      }
      pub->kill(SIGTERM);
      const auto e = pub->wait(30s);
      INFO("final publisher: " << pub->err());
      CHECK(e.ok());
      const auto st = parse_stats(pub->err());
      REQUIRE(st.found);
      CHECK(json_u64(st.line, "last_seq") == (st["sent"] > 0 ? cfg.messages : 0));
      break;
    }
    expect_next = log_next_seq(log_dir);
  }
  CHECK(kills == cfg.publisher_kills);
  MESSAGE("published under kills: " << final_start - 1 << " of " << cfg.messages << "; publisher kills " << kills
                                    << " (" << continued_checked
                                    << " incarnations checked for continuity), subscriber kills " << sub_kills);
  REQUIRE(log_next_seq(log_dir) == std::optional<std::uint64_t>(cfg.messages + 1));

  const auto got = parse_delivered(read_file(out));
  CHECK(got.bad == 0);  // every line was written whole (one write(2) each), even under SIGKILL
  REQUIRE_FALSE(publisher_id.empty());
  std::uint64_t expect = 1;
  std::size_t wrong_id = 0;
  std::size_t out_of_order = 0;
  for (const auto& m : got.messages) {
    wrong_id += m.publisher != publisher_id;
    if (m.seq != expect) {
      if (out_of_order++ < 5) MESSAGE("expected seq " << expect << ", got " << m.seq);
    }
    expect = m.seq + 1;
  }
  CHECK(wrong_id == 0);
  CHECK(out_of_order == 0);  // each sequence once, in order: no gap, no duplicate
  CHECK(got.messages.size() == cfg.messages);
  if (!got.messages.empty()) CHECK(got.messages.back().seq == cfg.messages);
}

}  // namespace

TEST_CASE("crash: persistent publisher and durable subscriber killed at random points lose and repeat nothing") {
  run_crash({});
}

// Over shm (smaller, to keep ctest short): a killed subscriber's slot is reclaimed by the
// publisher, a killed publisher's segment is replaced by the next one's, and the durable
// subscription resumes from its acked position in the new segment.
TEST_CASE("shm crash: persistent publisher and durable subscriber killed at random points lose and repeat nothing") {
  run_crash({.messages = 20'000,
             .publisher_kills = 50,
             .max_publish_ms = 40,
             .shm = true,
             .min_sub_life_ms = 20,
             .sub_life_spread_ms = 100});
}

TEST_CASE(
    "udp crash: persistent publisher and durable subscriber over udp killed at random points lose and repeat "
    "nothing") {
  run_crash({.messages = 20'000, .publisher_kills = 30, .udp = true, .min_sub_life_ms = 20, .sub_life_spread_ms = 100});
}

}  // namespace rill::e2e
