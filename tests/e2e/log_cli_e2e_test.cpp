// End-to-end: `rill log` on a log this test writes through the library: list, inspect,
// replay to a live `rill sub`, dead letters listed and re-driven, damage reported.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "process.hpp"
#include "rill/rill.hpp"

namespace rill::e2e {

namespace {

constexpr std::uint64_t pub_id = 0xabcdef0123456789ull;

// 50 envelopes on md/log ("msg N", header k=vN) in several segments, an ack, two dead letters.
void write_log(const std::filesystem::path& dir) {
  auto log = Log::open(dir, {.fsync = FsyncPolicy::always(), .segment_bytes = 4096, .publisher_id = pub_id});
  REQUIRE(log.has_value());
  MessageBuilder mb;
  for (std::uint64_t seq = 1; seq <= 50; ++seq) {
    const std::string payload = "msg " + std::to_string(seq);
    std::string value = std::to_string(seq);  // (GCC 12 warns falsely on "v" + std::string)
    value.insert(value.begin(), 'v');
    const HeaderKV h[] = {{"k", value}};
    mb.reset();
    const auto env = mb.finish_raw(std::as_bytes(std::span(payload.data(), payload.size())),
                                   {.topic = "md/log",
                                    .publisher_id = pub_id,
                                    .sequence = seq,
                                    .timestamp_ns = 1'700'000'000'000'000'000 + static_cast<std::int64_t>(seq),
                                    .headers = h});
    auto r = log->append(
        env, {.timestamp_ns = 1'700'000'000'000'000'000 + static_cast<std::int64_t>(seq), .expect_sequence = seq});
    REQUIRE(r.has_value());
  }
  REQUIRE(log->close().has_value());
  auto acks = AckStore::open(dir / "acks");
  REQUIRE(acks.has_value());
  REQUIRE(acks->ack("billing", 20).has_value());
  auto dlq = DeadLetterLog::open(dir / "dead-letters");
  REQUIRE(dlq.has_value());
  for (std::uint64_t seq : {7u, 9u}) {
    const std::string payload = "poison " + std::to_string(seq);
    mb.reset();
    const auto env =
        mb.finish_raw(std::as_bytes(std::span(payload.data(), payload.size())),
                      {.topic = "md/log", .publisher_id = pub_id, .sequence = seq, .timestamp_ns = 1, .headers = {}});
    REQUIRE(dlq->add(env, "handler threw \"bad\"", 3, pub_id, seq).has_value());
  }
}

std::string run_ok(const TempDir& dir, const std::string& name, std::vector<std::string> args) {
  auto p = spawn_rill(dir, name, std::move(args));
  const auto e = p->wait(30s);
  INFO(p->command_line() << "\nstderr: " << p->err());
  REQUIRE(e.ok());
  return p->out();
}

}  // namespace

TEST_CASE("rill log list shows the log, its segments, acks and dead letters") {
  TempDir dir;
  write_log(dir / "log");
  const auto out = run_ok(dir, "list", {"log", "list", (dir / "log").string(), "--verify"});
  const auto all = lines(out);
  REQUIRE(all.size() >= 5);
  INFO(out);
  CHECK(all[0].starts_with("{\"log\":"));
  CHECK(json_str(all[0], "publisher") == "abcdef0123456789");
  CHECK(json_u64(all[0], "first_seq") == 1u);
  CHECK(json_u64(all[0], "last_seq") == 50u);
  CHECK(json_u64(all[0], "records_checked") == 50u);  // --verify read every record
  const auto segments = json_u64(all[0], "segments").value_or(0);
  CHECK(segments >= 2);
  std::uint64_t records = 0;
  for (std::size_t i = 1; i <= segments; ++i) {
    CHECK(all[i].starts_with("{\"segment\":"));
    records += json_u64(all[i], "records").value_or(0);
  }
  CHECK(records == 50);
  CHECK(all[segments + 1] == R"({"ack":{"name":"billing","seq":20,"behind":30}})");
  CHECK(all[segments + 2].starts_with(R"({"dead_letters":{"count":2,)"));
}

TEST_CASE("rill log inspect dumps a range as rill sub json lines; damage is reported with segment and offset") {
  TempDir dir;
  write_log(dir / "log");
  const auto out = run_ok(dir, "inspect", {"log", "inspect", (dir / "log").string(), "--from", "10", "--to", "12"});
  const auto all = lines(out);
  REQUIRE(all.size() == 3);
  for (std::uint64_t i = 0; i < 3; ++i) {
    CHECK(all[i] == R"({"topic":"md/log","publisher":"abcdef0123456789","seq":)" + std::to_string(10 + i) +
                        R"(,"ts_ns":)" + std::to_string(1'700'000'000'000'000'000 + 10 + i) +
                        R"(,"size":6,"payload":"msg )" + std::to_string(10 + i) + "\"}");
  }
  // By time: the first record at or after ts of record 40.
  const auto by_time = run_ok(dir, "since",
                              {"log", "inspect", (dir / "log").string(), "--since-ns",
                               std::to_string(1'700'000'000'000'000'040), "--count", "1", "--format", "text"});
  CHECK(by_time == "md/log 40 msg 40\n");

  // Flip a byte inside record 3's body (first segment): inspect stops there with the location.
  const auto seg = dir / "log" / "00000000000000000001.log";
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(48 + 2 * 0 + 300);
    f.put('X');
  }
  auto p = spawn_rill(dir, "damaged", {"log", "inspect", (dir / "log").string()});
  const auto e = p->wait(30s);
  CHECK(e.describe() == "exit 1");
  const auto err = p->err();
  INFO(err);
  CHECK(err.find("corrupt: segment 00000000000000000001.log at offset ") != std::string::npos);
  const auto printed = p->out();
  CHECK(lines(printed).size() >= 1);  // the records before it were printed
}

TEST_CASE("rill log replay re-publishes a range to a live subscriber; dead letters are listed and re-driven") {
  TempDir dir;
  write_log(dir / "log");
  const auto ep = tcp_endpoint(free_port());
  auto sub = spawn_rill(dir, "sub", {"sub", ep, "md/", "--count", "5", "--idle-exit-ms", "20000", "--format", "text"});
  auto rp = spawn_rill(dir, "replay",
                       {"log", "replay", (dir / "log").string(), ep, "--from", "21", "--to", "25", "--wait-subs", "1"});
  const auto re = rp->wait(30s);
  INFO("replay stderr: " << rp->err());
  REQUIRE(re.ok());
  REQUIRE(sub->wait(30s).ok());
  const auto sub_out = sub->out();
  const auto got = lines(sub_out);
  REQUIRE(got.size() == 6);  // five messages and the stats line
  for (std::uint64_t i = 0; i < 5; ++i) {
    // The replaying publisher numbers its messages from 1; the payloads are records 21..25.
    CHECK(got[i] == "md/log " + std::to_string(i + 1) + " msg " + std::to_string(21 + i));
  }
  CHECK(parse_stats(rp->err())["sent"] == 5);

  const auto listed = run_ok(dir, "dlq", {"log", "dlq", (dir / "log").string(), "list"});
  auto dl = lines(listed);
  REQUIRE(dl.size() == 2);
  CHECK(dl[0].find(R"("seq":7,"attempts":3,)") != std::string::npos);
  CHECK(dl[0].find(
            R"("reason":"handler threw \"bad\"","redriven":false,"topic":"md/log","size":8,"payload":"poison 7")") !=
        std::string::npos);

  auto sub2 =
      spawn_rill(dir, "sub2", {"sub", ep, "md/", "--count", "2", "--idle-exit-ms", "20000", "--format", "text"});
  auto rd = spawn_rill(dir, "redrive", {"log", "dlq", (dir / "log").string(), "redrive", ep, "--wait-subs", "1"});
  INFO("redrive stderr: " << rd->err());
  REQUIRE(rd->wait(30s).ok());
  REQUIRE(sub2->wait(30s).ok());
  const auto sub2_out = sub2->out();
  const auto got2 = lines(sub2_out);
  REQUIRE(got2.size() == 3);
  CHECK(got2[0] == "md/log 1 poison 7");
  CHECK(got2[1] == "md/log 2 poison 9");
  const auto after = run_ok(dir, "dlq2", {"log", "dlq", (dir / "log").string(), "list"});
  CHECK(after.find("\"redriven\":false") == std::string::npos);
  // Nothing left to re-drive: no publisher is even started.
  const auto again = run_ok(dir, "redrive2", {"log", "dlq", (dir / "log").string(), "redrive", ep});
  CHECK(again.empty());
}

TEST_CASE("rill log usage errors exit 2 with one line") {
  TempDir dir;
  for (const auto& args : std::vector<std::vector<std::string>>{{"log"},
                                                                {"log", "list"},
                                                                {"log", "frob", "x"},
                                                                {"log", "inspect", "d", "--format", "xml"},
                                                                {"log", "replay", "d"},
                                                                {"log", "list", (dir / "nope").string()}}) {
    auto p = spawn_rill(dir, "usage", args);
    const auto e = p->wait(10s);
    INFO(p->command_line() << " -> " << p->err());
    CHECK(e.describe() == "exit 2");
    CHECK(p->err().starts_with("rill: "));
  }
}

}  // namespace rill::e2e
