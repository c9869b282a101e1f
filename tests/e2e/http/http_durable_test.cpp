// End-to-end: durability over http. `rill serve --durability persistent:DIR --fsync always`
// killed (-9) and restarted under a stream of POSTs; a durable webhook `rill sub` killed and
// restarted while it delivers to a receiver in this process; disk full under the ingress.
#include <doctest/doctest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "../process.hpp"
#include "http_util.hpp"
#include "receiver.hpp"
#include "tests/skip.hpp"
#include "tests/test_seed.hpp"

namespace rill::e2e::http {

namespace {

std::mt19937_64& rng() {
  static std::mt19937_64 r{rilltest::test_seed()};  // printed on stderr; RILL_TEST_SEED replays it
  return r;
}

// `rill serve` on ports the test chose, so a restart listens and publishes where the last
// run did (what a client and a subscriber rely on).
std::unique_ptr<Process> start_serve(const TempDir& dir, const std::string& name, int http_port, int publish_port,
                                     const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"serve", "--http", "127.0.0.1:" + std::to_string(http_port), "--publish",
                                   tcp_endpoint(publish_port)};
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = spawn_rill(dir, name, args);
  REQUIRE_MESSAGE(wait_until([&] { return p->err().find("listening on") != std::string::npos || !p->running(); }, 20s),
                  "rill serve did not start: " << p->err());
  REQUIRE_MESSAGE(p->running(), "rill serve exited: " << p->err());
  return p;
}

std::string post_request(std::string_view topic, std::string_view body) {
  return "POST /topics/" + std::string(topic) +
         " HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + std::string(body);
}

double metric_of(int http_port, std::string_view sample) {
  const auto text = get(http_port, "/metrics");
  for (const auto line : lines(text)) {
    if (line.size() > sample.size() && line.starts_with(sample) && line[sample.size()] == ' ') {
      return std::stod(std::string(line.substr(sample.size() + 1)));
    }
  }
  return -1;
}

// The message lines of a `rill sub --format json` output (not the stats line).
struct Received {
  std::uint64_t seq = 0;
  std::string publisher;
  std::string payload;
};
std::vector<Received> received(std::string_view out) {
  std::vector<Received> r;
  for (const auto line : lines(out)) {
    if (!line.starts_with("{\"topic\":")) continue;
    r.push_back({json_u64(line, "seq").value_or(0), std::string(json_str(line, "publisher").value_or("")),
                 std::string(json_str(line, "payload").value_or(""))});
  }
  return r;
}

std::size_t message_lines(std::string_view out) {
  const auto all = lines(out);
  return static_cast<std::size_t>(
      std::count_if(all.begin(), all.end(), [](std::string_view l) { return l.starts_with("{\"topic\":"); }));
}

}  // namespace

TEST_CASE(
    "durable http ingress: kill -9 of rill serve under POSTs; every 202 is in the log and reaches a durable sub") {
  TempDir dir;
  const int http_port = free_port();
  const int publish_port = free_port();
  const std::string topic = "orders/new";  // a '/' in the topic: its log is DIR/orders%2Fnew
  const std::vector<std::string> durable = {"--durability", "persistent:" + (dir / "log").string(), "--fsync",
                                            "always"};
  auto serve = start_serve(dir, "serve0", http_port, publish_port, durable);
  // Creates the topic (and its publisher) before the subscriber connects to its port.
  REQUIRE(raw_exchange(http_port, post_request(topic, "msg-0"), 5s, false).status == 202);
  auto sub = spawn_rill(dir, "sub",
                        {"sub", tcp_endpoint(publish_port), "orders", "--durable", "ingest", "--from", "start",
                         "--state-dir", dir.path().string()});

  // What each request's answer says about its body: 202 (must be in the log), unknown
  // (killed while it was being handled: may be), never (killed before the body was whole).
  enum class Outcome { accepted, unknown, never };
  std::map<std::string, Outcome> sent = {{"msg-0", Outcome::accepted}};
  constexpr int total = 240;
  std::set<int> kill_at;
  while (kill_at.size() < 4) kill_at.insert(std::uniform_int_distribution<int>(10, total - 10)(rng()));
  int restarts = 0;
  auto conn = std::make_unique<Conn>(http_port);
  for (int i = 1; i <= total; ++i) {
    const auto body = "msg-" + std::to_string(i);
    const auto req = post_request(topic, body);
    if (kill_at.contains(i)) {
      const int mode = std::uniform_int_distribution<int>(0, 2)(rng());
      if (mode == 0) {
        // The whole request is out; the process dies before, while or after it publishes.
        conn->send(req);
        std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 3000)(rng())));
        serve->kill(SIGKILL);
        sent[body] = Outcome::unknown;
      } else if (mode == 1) {
        // Only part of the body arrived: it can never be published.
        conn->send(std::string_view(req).substr(0, req.size() - 2));
        std::this_thread::sleep_for(5ms);
        serve->kill(SIGKILL);
        sent[body] = Outcome::never;
      } else {
        // Between requests: the last 202 must survive.
        conn->send(req);
        const auto r = conn->read_response(10s);
        REQUIRE(r.status == 202);
        sent[body] = Outcome::accepted;
        serve->kill(SIGKILL);
      }
      REQUIRE(serve->wait(10s).signaled);
      // A client closes on the server's FIN; until it does, the dead server's side of the
      // connection holds the port (only TIME_WAIT is exempt from the bind check).
      conn.reset();
      serve = start_serve(dir, "serve" + std::to_string(++restarts), http_port, publish_port, durable);
      conn = std::make_unique<Conn>(http_port);
      continue;
    }
    REQUIRE(conn->send(req));
    const auto r = conn->read_response(10s);
    REQUIRE_MESSAGE(r.status == 202, r.bytes);
    sent[body] = Outcome::accepted;
  }
  // Everything the log holds, by its own count.
  const auto next_seq = metric_of(http_port, "rill_log_next_sequence{topic=\"orders/new\"}");
  REQUIRE(next_seq >= total - 4 + 1);
  const auto in_log = static_cast<std::size_t>(next_seq) - 1;
  REQUIRE_MESSAGE(wait_until([&] { return message_lines(sub->out()) >= in_log; }, 60s),
                  "the durable sub got " << message_lines(sub->out()) << " of " << in_log);
  sub->kill(SIGTERM);
  REQUIRE(sub->wait(20s).ok());
  const auto got = received(sub->out());
  REQUIRE(got.size() == in_log);  // exactly once into the handler, across the publisher's restarts
  std::set<std::string> publishers;
  std::set<std::string> payloads;
  for (std::size_t k = 0; k < got.size(); ++k) {
    CHECK(got[k].seq == k + 1);  // sequences continue after each restart: none reused, none skipped
    publishers.insert(got[k].publisher);
    CHECK(payloads.insert(got[k].payload).second);
  }
  CHECK(publishers.size() == 1);  // the id continues from the log
  int unknown_in_log = 0;
  for (const auto& [body, outcome] : sent) {
    INFO(body);
    if (outcome == Outcome::accepted) CHECK(payloads.contains(body));
    if (outcome == Outcome::never) CHECK_FALSE(payloads.contains(body));
    if (outcome == Outcome::unknown) unknown_in_log += payloads.contains(body) ? 1 : 0;
  }
  for (const auto& p : payloads) CHECK(sent.contains(p));  // nothing else
  const auto stats = parse_stats(sub->out());
  CHECK(stats["gaps"] == 0);
  MESSAGE("4 kills of rill serve in " << total << " POSTs; log holds " << in_log << " (" << unknown_in_log
                                      << " of the in-flight ones)");
}

TEST_CASE(
    "durable http webhooks: rill sub --durable killed at random points; each message arrives, duplicates bounded") {
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  constexpr std::uint64_t total = 400;
  constexpr int window = 8;
  // Answers arrive out of order (0-3 ms each, 8 at a time), and one message in ten is
  // refused once (503) so retries are in flight when a kill lands.
  Receiver rx([](const Hit& h) {
    const auto seq = std::stoull(h.headers.at("rill-sequence"));
    if (seq % 10 == 3 && h.headers.at("rill-attempt") == "1") return Reply{.status = 503};
    return Reply{.status = 200, .delay = std::chrono::milliseconds(seq % 4)};
  });
  auto pub = spawn_rill(dir, "pub",
                        {"pub", ep, "orders", "--count", std::to_string(total), "--rate", "500", "--durability",
                         "persistent:" + (dir / "log").string(), "--linger-ms", "120000"});
  const std::vector<std::string> sub_args = {"sub",
                                             ep,
                                             rx.url(),
                                             "orders",
                                             "--durable",
                                             "hooks",
                                             "--from",
                                             "start",
                                             "--state-dir",
                                             dir.path().string(),
                                             "--window",
                                             std::to_string(window),
                                             "--retry-schedule",
                                             "0,20ms,40ms,80ms,160ms,320ms,640ms,1s",
                                             "--retry-jitter",
                                             "0",
                                             "--dead-letter",
                                             (dir / "dlq.jsonl").string()};
  // What the receiver answered 2xx, by webhook-id.
  const auto accepted = [&] {
    std::map<std::string, int> ids;
    for (const auto& h : rx.hits()) {
      if (!(std::stoull(h.headers.at("rill-sequence")) % 10 == 3 && h.headers.at("rill-attempt") == "1")) {
        ++ids[h.headers.at("webhook-id")];
      }
    }
    return ids;
  };
  std::set<std::size_t> kill_at;
  while (kill_at.size() < 4) kill_at.insert(std::uniform_int_distribution<std::size_t>(20, total - 40)(rng()));
  int run = 0;
  for (const auto at : kill_at) {
    auto sub = spawn_rill(dir, "sub" + std::to_string(run++), sub_args);
    REQUIRE_MESSAGE(wait_until([&] { return rx.hits().size() >= at || !sub->running(); }, 60s), sub->err());
    REQUIRE(sub->running());
    sub->kill(SIGKILL);
    REQUIRE(sub->wait(10s).signaled);
  }
  // The last run ends once nothing is left to do (it exits only with an empty window).
  auto idle_args = sub_args;
  idle_args.insert(idle_args.end(), {"--idle-exit-ms", "1000"});
  auto last = spawn_rill(dir, "sub" + std::to_string(run), idle_args);
  REQUIRE_MESSAGE(wait_until([&] { return accepted().size() >= total || !last->running(); }, 90s),
                  "the receiver accepted " << accepted().size() << " of " << total << "; " << last->err());
  REQUIRE(last->wait(30s).ok());
  // Everything is acknowledged: one more run has nothing to send.
  const auto hits_before = rx.hits().size();
  auto again = spawn_rill(dir, "again", idle_args);
  REQUIRE(again->wait(30s).ok());
  CHECK(parse_stats(again->out())["received"] == 0);
  CHECK(rx.hits().size() == hits_before);
  pub->kill(SIGTERM);
  CHECK(pub->wait(20s).ok());

  const auto ids = accepted();
  std::string publisher;
  std::uint64_t duplicates = 0;
  for (const auto& h : rx.hits()) {
    const auto seq = std::stoull(h.headers.at("rill-sequence"));
    if (publisher.empty()) publisher = h.headers.at("rill-publisher");
    CHECK(h.headers.at("rill-publisher") == publisher);
    CHECK(h.headers.at("webhook-id") == "rill_" + publisher + "_" + std::to_string(seq));
    CHECK(h.body.starts_with("rill " + std::to_string(seq)));
  }
  // After de-duplicating by webhook-id exactly the published set arrived.
  REQUIRE(ids.size() == total);
  for (std::uint64_t seq = 1; seq <= total; ++seq) {
    const auto it = ids.find("rill_" + publisher + "_" + std::to_string(seq));
    REQUIRE_MESSAGE(it != ids.end(), "seq " << seq << " never reached the receiver");
    duplicates += static_cast<std::uint64_t>(it->second - 1);
  }
  // A kill can only lose the answers to what was in the window: that much is sent again.
  CHECK(duplicates <= kill_at.size() * window);
  CHECK(read_file(dir / "dlq.jsonl").empty());
  const auto stats = parse_stats(last->out());
  CHECK(stats["dead_lettered"] == 0);
  CHECK(stats["left_unfinished"] == 0);
  MESSAGE(kill_at.size() << " kills of the durable webhook sub: " << total << " messages, " << duplicates
                         << " delivered twice (bound " << kill_at.size() * window << ")");
}

TEST_CASE("durable http ingress: disk full answers 503 with Retry-After, nothing damaged, 202 again once freed") {
  if (::geteuid() != 0) {
    rilltest::skip("mounting a tmpfs needs root; the disk-full checks did not run");
    return;
  }
  TempDir dir;
  const auto mnt = dir / "mnt";
  std::filesystem::create_directories(mnt);
  REQUIRE_MESSAGE(::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") == 0, std::strerror(errno));
  struct Unmount {
    std::filesystem::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  const int http_port = free_port();
  const int publish_port = free_port();
  const std::vector<std::string> durable = {"--durability",    "persistent:" + (mnt / "log").string(),
                                            "--fsync",         "always",
                                            "--segment-bytes", "65536",
                                            "--topics",        "t"};
  auto serve = start_serve(dir, "serve", http_port, publish_port, durable);
  write_file(mnt / "filler", std::string(640u << 10, 'f'));  // room to free later

  std::vector<std::string> accepted;
  int refused = 0;
  std::optional<Conn> conn_holder;
  conn_holder.emplace(http_port);
  auto& conn = *conn_holder;
  const auto post = [&](int i) {
    std::string body = std::to_string(i);
    body.append(":").append(2000, 'x');
    REQUIRE(conn.send(post_request("t", body)));
    auto r = conn.read_response(10s);
    if (r.status == 202) accepted.push_back(std::move(body));
    return r;
  };
  int i = 0;
  RawReply full;
  while (i < 600) {
    full = post(i++);
    if (full.status != 202) break;
  }
  REQUIRE_MESSAGE(full.status == 503, full.bytes);
  CHECK(full.bytes.find("Retry-After: ") != std::string::npos);
  CHECK(full.bytes.find("disk full") != std::string::npos);
  for (int k = 0; k < 3; ++k) {
    const auto r = post(i++);
    CHECK(r.status == 503);
    refused += r.status == 503 ? 1 : 0;
  }
  CHECK(metric_of(http_port, "rill_http_publish_drops_total{reason=\"no_space\"}") >= 4);
  CHECK(metric_of(http_port, "rill_log_no_space_errors_total{topic=\"t\"}") >= 1);
  const auto before_free = accepted.size();
  REQUIRE(before_free > 10);
  std::filesystem::remove(mnt / "filler");
  for (int k = 0; k < 20; ++k) {
    const auto r = post(i++);
    REQUIRE_MESSAGE(r.status == 202, r.bytes);
  }
  // Recovery from what the disk-full run left, then every accepted body, in order, once.
  conn_holder.reset();
  serve->kill(SIGKILL);
  REQUIRE(serve->wait(10s).signaled);
  serve = start_serve(dir, "serve2", http_port, publish_port, durable);
  auto sub = spawn_rill(dir, "sub",
                        {"sub", tcp_endpoint(publish_port), "t", "--durable", "check", "--from", "start", "--state-dir",
                         dir.path().string(), "--count", std::to_string(accepted.size())});
  const auto e = sub->wait(60s);
  REQUIRE_MESSAGE(e.ok(), e.describe() << ": " << sub->err());
  const auto got = received(sub->out());
  REQUIRE(got.size() == accepted.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    CHECK(got[k].seq == k + 1);
    CHECK(got[k].payload == accepted[k]);
  }
  CHECK(serve->err().find("torn") == std::string::npos);
  MESSAGE("disk full after " << before_free << " accepted POSTs; " << refused + 1 << " answered 503; "
                             << accepted.size() << " in the log after space was freed");
}

TEST_CASE("durable http usage: combinations that make no sense exit 2 with one 'rill: ' line") {
  TempDir dir;
  const auto pub = tcp_endpoint(free_port());
  const std::string url = "http://127.0.0.1:1/x";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"sub", pub, url, "t", "--format", "json"}, "--format does not apply to webhook delivery"},
      {{"sub", pub, url, "t", "--max-attempts", "3"}, "--max-attempts does not apply to webhook delivery"},
      {{"sub", pub, url, "t", "--from", "start"}, "--from needs --durable NAME"},
      {{"sub", pub, url, "t", "--state-dir", "."}, "--state-dir needs --durable NAME"},
      {{"sub", pub, url, "t", "--durable", "d", "--group", "g"}, "does not combine with --group"},
      {{"sub", pub, url, "t", "--durable", "d", "--durability", "transient-local"}, "durable_name needs persistent"},
      {{"serve", "--http", "127.0.0.1:0", "--publish", pub, "--fsync", "always"}, "--fsync needs --durability"},
      {{"serve", "--http", "127.0.0.1:0", "--publish", pub, "--durability", "persistent"}, "needs :DIR"},
      {{"serve", "--http", "127.0.0.1:0", "--publish", pub, "--durability", "transient-local:0"}, "transient-local needs a positive"},
      {{"serve", "--http", "127.0.0.1:0", "--publish", pub, "--durability", "persistent:x", "--fsync", "sometimes"},
       "fsync"},
  };
  int i = 0;
  for (const auto& [args, reason] : cases) {
    auto p = spawn_rill(dir, "usage" + std::to_string(i++), args);
    const auto e = p->wait(10s);
    const auto err = p->err();
    INFO(p->command_line());
    INFO("stderr: " << err);
    CHECK(e.describe() == "exit 2");
    CHECK(err.starts_with("rill: "));
    CHECK(err.find(reason) != std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
  // A durable delivery from a publisher that offers less: exit 1 naming both.
  auto volatile_pub = spawn_rill(dir, "vpub", {"pub", pub, "t", "--count", "1", "--linger-ms", "20000"});
  auto sub = spawn_rill(dir, "vsub", {"sub", pub, url, "t", "--durable", "d", "--state-dir", dir.path().string()});
  const auto e = sub->wait(20s);
  CHECK(e.describe() == "exit 1");
  CHECK(sub->err().find("refused the subscription") != std::string::npos);
}

}  // namespace rill::e2e::http
