// End-to-end: `rill sub --durable` as a real process, killed with SIGKILL at random points
// and restarted, against a scripted publisher (a raw ZeroMQ ROUTER speaking the wire
// protocol) that keeps the subscription's ACK position and resends from it, like a
// persistent publisher. Also: REJECT makes `rill sub` exit 1 with one line, and
// --fail-if / --max-attempts / --dead-letter put the failing messages in a dead-letter log.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <random>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "process.hpp"
#include "tests/test_seed.hpp"
#include "rill/rill.hpp"
#include "transport/tcp/tcp_wire.hpp"

namespace rill::e2e {

namespace {

namespace wire = rill::detail::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// Serves sequences 1..total to whichever subscription subscribed last, from just after the
// last position it acknowledged; at most `window` unacknowledged ones in flight.
class ResendingPublisher {
 public:
  static constexpr std::uint64_t id = 0x0123456789abcdefull;

  ResendingPublisher(const std::string& ep, std::uint64_t total, bool refuse = false)
      : m_total(total), m_refuse(refuse) {
    m_sock.set(zmq::sockopt::linger, 0);
    m_sock.bind(ep);
  }

  // One round: take in control frames, send what the window allows.
  void step() {
    for (;;) {
      zmq::message_t peer, frame;
      if (!m_sock.recv(peer, zmq::recv_flags::dontwait)) break;
      if (!m_sock.recv(frame, zmq::recv_flags::dontwait)) break;
      const auto c = wire::decode_control({static_cast<const std::byte*>(frame.data()), frame.size()});
      if (!c) continue;
      if (c->type == wire::ControlType::subscribe && c->subscribe.subscription_id != m_subscription) {
        m_subscription = c->subscribe.subscription_id;
        m_peer.assign(static_cast<const char*>(peer.data()), peer.size());
        ++subscribes;
        if (m_refuse) {
          std::array<std::byte, wire::max_control_bytes> buf;
          send({buf.data(), wire::encode_reject(buf, {.publisher_id = id,
                                                      .subscription_id = m_subscription,
                                                      .offered = 0,
                                                      .requested = c->subscribe.durability,
                                                      .reason = "offers volatile"})});
          continue;
        }
        m_next = acked + 1;  // resume after the stored position, as a persistent publisher does
        std::array<std::byte, wire::max_control_bytes> buf;
        send({buf.data(), wire::encode_welcome(buf, {.publisher_id = id,
                                                     .next_seq = m_next,
                                                     .subscription_id = m_subscription,
                                                     .lost = 0,
                                                     .offered = 2})});
      } else if (c->type == wire::ControlType::ack && c->ack.subscription_id == m_subscription) {
        // Cumulative, and never past what was sent.
        CHECK(c->ack.seq < m_next);
        acked = std::max(acked, c->ack.seq);
      }
    }
    if (m_peer.empty() || m_refuse) return;
    while (m_next <= m_total && m_next <= acked + window) {
      const auto text = "msg " + std::to_string(m_next);
      m_builder.reset();
      send(m_builder.finish_raw(
          std::as_bytes(std::span(text.data(), text.size())),
          {.topic = "d/t", .publisher_id = id, .sequence = m_next, .timestamp_ns = 1, .headers = {}}));
      ++m_next;
    }
  }

  static constexpr std::uint64_t window = 256;
  std::uint64_t acked = 0;
  int subscribes = 0;

 private:
  void send(std::span<const std::byte> frame) {
    m_sock.send(zmq::buffer(m_peer), zmq::send_flags::sndmore);
    m_sock.send(zmq::buffer(frame.data(), frame.size()));
  }

  zmq::context_t m_ctx;
  zmq::socket_t m_sock{m_ctx, zmq::socket_type::router};
  std::string m_peer;
  std::uint64_t m_subscription = 0;
  std::uint64_t m_next = 1;
  std::uint64_t m_total;
  bool m_refuse;
  MessageBuilder m_builder;
};

// `rill sub` with its stdout appended to `out` (as a user's `>> FILE`).
std::unique_ptr<Process> spawn_sub_appending(const TempDir& dir, const std::string& name,
                                             const std::filesystem::path& out, const std::string& args) {
  return std::make_unique<Process>(
      std::vector<std::string>{"/bin/sh", "-c", "exec '" + rill_cli() + "' sub " + args + " >> '" + out.string() + "'"},
      dir.path(), name);
}

// Sequences of the message lines in `text`, in order (the stats lines skipped).
std::vector<std::uint64_t> seqs_of(const std::string& text) {
  std::vector<std::uint64_t> out;
  for (const auto line : lines(text)) {
    if (line.starts_with("{\"stats\"")) continue;
    const auto seq = json_u64(line, "seq");
    REQUIRE_MESSAGE(seq.has_value(), "not a message line: ", std::string(line));
    out.push_back(*seq);
  }
  return out;
}

}  // namespace

TEST_CASE("rill sub --durable killed with SIGKILL at random points: every message exactly once, in order") {
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  constexpr std::uint64_t total = 3000;
  ResendingPublisher pub(ep, total);
  const auto out = dir.path() / "handled.jsonl";
  const auto base_args = ep + " d/ --durable e2e --state-dir '" + dir.path().string() + "'";
  // First, one kill known to land inside the handler: this run's handler sleeps 30 s after
  // writing its line (lines go straight to the file), so once a whole line is in the file
  // the process is between the write and the handler's return. The next run must find that
  // message in doubt and resolve it as handled from the file's last line.
  {
    auto slow = spawn_sub_appending(dir, "in_handler", out, base_args + " --work-us 30000000");
    const auto by = clock_type::now() + 20s;
    std::string text;
    while ((text = read_file(out)).empty() || text.back() != '\n') {
      REQUIRE_MESSAGE(clock_type::now() < by, "the slow run printed no line");
      pub.step();
      std::this_thread::sleep_for(1ms);
    }
    REQUIRE(slow->running());
    slow->kill(SIGKILL);
    (void)slow->wait(5s);
    CHECK(seqs_of(text) == std::vector<std::uint64_t>{1});
    CHECK(pub.acked == 0);  // its handler never returned
  }
  // --work-us after each printed line keeps the process inside the handler most of the
  // time, so many kills land between the line's write and the handler's return (in doubt).
  const auto args = base_args + " --work-us 300";
  // 15 kills at random points of the stream (by acknowledged position), each at least
  // 20 ms after the previous start, so some land during start-up and most mid-stream.
  std::mt19937_64 rng(rilltest::test_seed());
  std::uniform_int_distribution<std::uint64_t> point(20, total - 100);
  std::vector<std::uint64_t> kill_at(15);
  for (auto& k : kill_at) k = point(rng);
  std::sort(kill_at.begin(), kill_at.end());
  std::size_t kills = 0;
  auto sub = spawn_sub_appending(dir, "sub0", out, args);
  auto started = clock_type::now();
  const auto deadline = clock_type::now() + 120s;
  while (pub.acked < total && clock_type::now() < deadline) {
    pub.step();
    if (kills < kill_at.size() && pub.acked >= kill_at[kills] && clock_type::now() - started >= 20ms) {
      sub->kill(SIGKILL);
      (void)sub->wait(5s);
      ++kills;
      sub = spawn_sub_appending(dir, "sub" + std::to_string(kills), out, args);
      started = clock_type::now();
    }
    std::this_thread::sleep_for(200us);
  }
  REQUIRE(pub.acked == total);
  sub->kill(SIGTERM);
  const auto status = sub->wait(10s);
  CHECK(status.code == 0);
  CHECK(kills == kill_at.size());
  CHECK(pub.subscribes >= 2);
  const auto seqs = seqs_of(read_file(out));
  std::vector<std::uint64_t> want(total);
  for (std::uint64_t i = 0; i < total; ++i) want[i] = i + 1;
  CHECK(seqs.size() == total);
  CHECK(seqs == want);
  // The run after the kill inside the handler found seq 1 in doubt and resolved it as handled
  // (so seq 1 is in the file once, above).
  const auto first_err = read_file(dir.path() / "sub0.err");
  CAPTURE(first_err);
  CHECK(first_err.find("seq 1 was in the handler when the last run died; the application says it was handled") !=
        std::string::npos);
  // Where the random kills landed is luck: reported, not checked.
  int resolved = 0;
  for (std::size_t k = 1; k <= kills; ++k) {
    if (read_file(dir.path() / ("sub" + std::to_string(k) + ".err")).find("the application says it was handled") !=
        std::string::npos) {
      ++resolved;
    }
  }
  MESSAGE("random kills that landed inside the handler (in doubt, resolved as handled): ", resolved, " of ", kills);
}

TEST_CASE("rill sub: a publisher's REJECT is one line on stderr and exit code 1") {
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  ResendingPublisher pub(ep, 10, true);
  auto sub = spawn_rill(dir, "sub", {"sub", ep, "d/", "--durable", "r", "--state-dir", dir.path().string()});
  const auto deadline = clock_type::now() + 20s;
  while (sub->running() && clock_type::now() < deadline) {
    pub.step();
    std::this_thread::sleep_for(1ms);
  }
  const auto status = sub->wait(5s);
  CHECK(status.code == 1);
  const auto err = sub->err();
  CAPTURE(err);
  CHECK(lines(err).size() == 1);
  CHECK(err.find("refused the subscription: it offers volatile, this subscription asks for persistent") !=
        std::string::npos);
  CHECK(sub->out().empty());
}

TEST_CASE("rill sub --fail-if --max-attempts --dead-letter: failing messages go to the dead-letter log") {
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  const auto dlq = dir.path() / "dlq";
  // Generated payloads are "rill N": "rill 1" fails seq 1 and 10..19, 11 of 50.
  auto sub = spawn_rill(dir, "sub",
                        {"sub", ep, "d/", "--fail-if", "rill 1", "--max-attempts", "2", "--backoff-ms", "5",
                         "--dead-letter", dlq.string(), "--count", "39", "--format", "text"});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "d/t", "--count", "50", "--wait-subs", "1"});
  CHECK(pub->wait(30s).code == 0);
  CHECK(sub->wait(30s).code == 0);
  const auto stats = parse_stats(sub->out());
  REQUIRE(stats.found);
  CHECK(stats["received"] == 50);
  CHECK(stats["dead_lettered"] == 11);
  CHECK(stats["gaps"] == 0);
  std::vector<std::uint64_t> dead;
  auto log = DeadLetterLog::open(dlq, true);
  REQUIRE(log.has_value());
  REQUIRE(log->for_each(0, [&](const DeadLetter& d) {
    dead.push_back(d.sequence);
    CHECK(d.attempts == 2);
    CHECK(d.reason.find("--fail-if") != std::string_view::npos);
    return true;
  }));
  CHECK(dead == std::vector<std::uint64_t>{1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19});
}

}  // namespace rill::e2e
