// End-to-end: batching (`rill pub --batch N`). A batch frame carries up to N envelopes
// (transport/tcp/tcp_wire.hpp); the subscriber splits it so policies, credit and gaps
// stay per message. These cases hold batching to the contracts the unbatched cases
// prove (ordering, each policy, peer death, late joiners), and look at the frames
// themselves through raw ZeroMQ peers: their layout, and that a batch never takes
// more than a backpressure window.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "checks.hpp"
#include "process.hpp"
#include "rill/codec.hpp"
#include "rill/policy.hpp"
#include "streams.hpp"
#include "transport/tcp/tcp_wire.hpp"

namespace rill::e2e {
namespace {

namespace wire = rill::detail::tcp;

std::uint32_t get_u32(std::span<const std::byte> s, std::size_t at) {
  std::uint32_t v = 0;
  std::memcpy(&v, s.data() + at, sizeof v);
  return v;
}

std::span<const std::byte> bytes_of(const zmq::message_t& m) {
  return {static_cast<const std::byte*>(m.data()), m.size()};
}

/// A raw ZeroMQ subscriber: a DEALER that speaks the control protocol itself, so the
/// test sees every frame exactly as the publisher sent it.
class RawSubscriber {
 public:
  RawSubscriber(zmq::context_t& ctx, const std::string& endpoint, std::uint8_t policy, std::uint32_t window)
      : m_sock(ctx, zmq::socket_type::dealer) {
    m_sock.set(zmq::sockopt::linger, 0);
    m_sock.set(zmq::sockopt::rcvhwm, 0);
    m_sock.connect(endpoint);
    const auto n =
        wire::encode_subscribe(m_buf, {.subscription_id = m_id, .policy = policy, .window = window, .prefix = "md/"});
    m_subscribe.assign(reinterpret_cast<const char*>(m_buf), n);
  }

  /// (Re)sends the SUBSCRIBE; it is also the keepalive.
  void subscribe() { REQUIRE(m_sock.send(zmq::buffer(m_subscribe), zmq::send_flags::dontwait).has_value()); }

  /// UNSUBSCRIBE: "I am leaving", also the answer to a BYE.
  void unsubscribe() {
    const auto len = wire::encode_unsubscribe(m_buf, m_id);
    REQUIRE(m_sock.send(zmq::buffer(m_buf, len), zmq::send_flags::dontwait).has_value());
  }

  /// Returns `n` window slots to the publisher that welcomed us.
  void credit(std::uint32_t n) {
    const auto len = wire::encode_credit(m_buf, {.subscription_id = m_id, .publisher_id = m_publisher, .credits = n});
    REQUIRE(m_sock.send(zmq::buffer(m_buf, len), zmq::send_flags::dontwait).has_value());
  }

  /// The next frame that is not a WELCOME or a ping (those are handled here); empty
  /// optional after `timeout` of silence. Keeps the subscription alive meanwhile.
  std::optional<zmq::message_t> next(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return std::nullopt;
      if (now >= m_next_keepalive) {
        subscribe();
        m_next_keepalive = now + (m_publisher == 0 ? 10ms : 200ms);
      }
      zmq::pollitem_t item{m_sock.handle(), 0, ZMQ_POLLIN, 0};
      const auto wait = std::min(deadline, m_next_keepalive) - now;
      zmq::poll(&item, 1, std::max(1ms, std::chrono::ceil<std::chrono::milliseconds>(wait)));
      zmq::message_t m;
      while (m_sock.recv(m, zmq::recv_flags::dontwait)) {
        const auto b = bytes_of(m);
        if (wire::is_control(b)) {
          const auto c = wire::decode_control(b);
          REQUIRE_MESSAGE(c.has_value(), "undecodable control frame from the publisher");
          if (c->type == wire::ControlType::welcome) {
            CHECK(c->welcome.subscription_id == m_id);
            m_publisher = c->welcome.publisher_id;
            m_welcome_seq = c->welcome.next_seq;
            continue;
          }
          if (c->type == wire::ControlType::ping) continue;
        }
        return m;
      }
    }
  }

  [[nodiscard]] std::uint64_t publisher() const noexcept { return m_publisher; }
  [[nodiscard]] std::uint64_t welcome_seq() const noexcept { return m_welcome_seq; }

 private:
  zmq::socket_t m_sock;
  std::uint64_t m_id = 0x5eed0000b47c4001;
  std::byte m_buf[wire::max_control_bytes];
  std::string m_subscribe;
  std::uint64_t m_publisher = 0;
  std::uint64_t m_welcome_seq = 0;
  std::chrono::steady_clock::time_point m_next_keepalive{};
};

/// What a batch frame held, checked against the documented layout: every envelope
/// 8-aligned relative to the frame, its 4 reserved bytes and its padding zero, and
/// each one passing the verifier (read from an 8-aligned copy).
struct BatchContents {
  bool layout_ok = true;
  std::vector<std::uint64_t> seqs;
  std::uint64_t publisher = 0;
};

BatchContents open_batch(std::span<const std::byte> frame) {
  BatchContents out;
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  const bool walked = wire::for_each_in_batch(frame, [&](std::size_t o, std::size_t l) { spans.emplace_back(o, l); });
  if (!walked || !wire::is_batch(frame)) {
    out.layout_ok = false;
    return out;
  }
  std::vector<std::uint64_t> aligned;
  for (const auto& [offset, length] : spans) {
    const auto padded = (length + 7) & ~std::size_t{7};
    const bool reserved_zero = get_u32(frame, offset - 4) == 0;
    const bool padding_zero =
        std::all_of(frame.begin() + static_cast<std::ptrdiff_t>(offset + length),
                    frame.begin() + static_cast<std::ptrdiff_t>(std::min(frame.size(), offset + padded)),
                    [](std::byte b) { return b == std::byte{0}; });
    aligned.assign((length + 7) / 8, 0);
    std::memcpy(aligned.data(), frame.data() + offset, length);
    const auto env = verify_envelope(std::as_bytes(std::span(aligned)).first(length));
    if (offset % 8 != 0 || !reserved_zero || !padding_zero || !env) {
      out.layout_ok = false;
      continue;
    }
    out.seqs.push_back((*env)->sequence());
    out.publisher = (*env)->publisher_id();
  }
  return out;
}

}  // namespace

TEST_CASE("batching under backpressure: a window smaller than the batch delivers all 20000 in order") {
  // --batch 64 with a window of 16: a batch may never take more than the window, so
  // the publisher must send short batches and wait; nothing may be lost or time out.
  constexpr std::uint64_t n = 20000;
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  auto sub = spawn_rill(dir, "sub",
                        {"sub", ep, "md/", "--count", str(n), "--idle-exit-ms", "3000", "--policy", "backpressure:16",
                         "--work-us", "20", "--format", "text"});
  auto pub = spawn_rill(
      dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--batch", "64", "--wait-subs", "1", "--timeout-ms", "20000"});
  const auto p = finish_pub(*pub);
  const auto s = finish_sub(*sub);
  MESSAGE("batch 64, backpressure:16, 20 us/msg: pub " << p.stats.line << " in " << p.exit.seconds() << " s; sub "
                                                       << s.line);
  CHECK(p.stats["sent"] == n);
  CHECK(p.stats["timeouts"] == 0);
  CHECK(s["received"] == n);
  CHECK(s["gaps"] == 0);
  CHECK(s["dropped"] == 0);
  const auto msgs = parse_text(sub->out(), "md/x");
  CHECK(msgs.bad == 0);
  CHECK(msgs.seqs.size() == n);
  CHECK(is_run_from(msgs.seqs, 1));
}

TEST_CASE("batching with drop-oldest under a long fast stream: every loss is the policy's, the newest survive") {
  // As the unbatched long-stream case: 200 us per message against 200k msg/s. Batches
  // are split before the policy queue, so drop-oldest still drops single messages.
  constexpr std::uint64_t n = 200000;
  constexpr std::uint64_t queue = 100;
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  auto sub = spawn_rill(dir, "sub",
                        {"sub", ep, "md/", "--idle-exit-ms", "1500", "--policy", "drop-oldest:" + str(queue),
                         "--work-us", "200", "--format", "text"});
  auto pub = spawn_rill(
      dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--rate", "200000", "--batch", "64", "--wait-subs", "1"});
  const auto p = finish_pub(*pub);
  const auto s = finish_sub(*sub);
  const auto m = parse_text(sub->out(), "md/x");
  MESSAGE("batch 64, drop-oldest:" << queue << ": pub " << p.stats.line << "; sub " << s.line);

  REQUIRE(p.stats["sent"] == n);
  CHECK(p.stats["peer_drops"] == 0);  // the transport never dropped a batch for it
  check_policy_losses(s, m, n);
  REQUIRE(m.seqs.size() >= queue);
  CHECK(is_run_from(tail(m.seqs, queue), n - queue + 1));
}

TEST_CASE("batching: --format hex prints one envelope per line (never a batch) that flatc decodes") {
  constexpr std::uint64_t n = 100;  // 3 full batches of 32, then 4 sent by the final flush
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  auto sub = spawn_rill(dir, "sub", {"sub", ep, "md/", "--count", str(n), "--idle-exit-ms", "5000", "--format", "hex"});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/hex", "--count", str(n), "--batch", "32", "--wait-subs", "1"});
  const auto p = finish_pub(*pub);
  const auto s = finish_sub(*sub);
  CHECK(p.stats["sent"] == n);
  CHECK(s["received"] == n);
  CHECK(s["gaps"] == 0);
  CHECK(s["malformed"] == 0);

  const auto out = sub->out();
  const auto all = lines(out);
  REQUIRE(all.size() == n + 1);  // n envelopes, then the stats line
  std::vector<std::string> args{RILL_FLATC_PATH,
                                "--json",
                                "--strict-json",
                                "--raw-binary",
                                "-o",
                                dir.path().string(),
                                std::string(RILL_SOURCE_DIR) + "/codec/envelope.fbs",
                                "--"};
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto hex = all[i];
    INFO("line " << i + 1 << ": " << hex.substr(0, 80));
    REQUIRE(hex.size() % 2 == 0);
    REQUIRE(std::all_of(hex.begin(), hex.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }));
    const auto bytes = hex_to_bytes(hex);
    REQUIRE(bytes.size() >= 8);
    CHECK(bytes.substr(0, 4) != std::string("RLB\x01", 4));  // a batch was printed whole
    CHECK(bytes.substr(4, 4) == "RILL");                     // the envelope's file identifier
    const auto bin = dir / ("env" + str(i + 1) + ".bin");
    std::ofstream(bin, std::ios::binary) << bytes;
    args.push_back(bin.string());
  }
  // One flatc run decodes every file into <name>.json.
  Process flatc(args, dir.path(), "flatc");
  const auto fe = flatc.wait(60s);
  REQUIRE_MESSAGE(fe.ok(), "flatc " << fe.describe() << ": " << flatc.err());

  for (std::uint64_t seq = 1; seq <= n; ++seq) {
    const auto json = without_spaces(read_file(dir / ("env" + str(seq) + ".json")));
    INFO("line " << seq << " decoded by flatc: " << json);
    CHECK(json.find("\"topic\":\"md/hex\"") != std::string::npos);
    const auto seq_field = "\"sequence\":" + str(seq);
    CHECK((json.find(seq_field + ",") != std::string::npos || json.find(seq_field + "}") != std::string::npos));
    const std::string payload = "rill " + str(seq);
    std::string payload_json = "\"payload\":[";
    for (std::size_t i = 0; i < payload.size(); ++i) {
      if (i > 0) payload_json += ',';
      payload_json += str(static_cast<unsigned char>(payload[i]));
    }
    CHECK(json.find(payload_json + "]") != std::string::npos);
  }
}

TEST_CASE(
    "a backpressure subscriber killed while it holds the publisher: publishing goes on, a new subscriber gets it") {
  // --batch 1 here: the dead peer is noticed by the publisher's probe while it waits
  // for credit, and that must release it whether or not it batches.
  constexpr std::uint64_t n = 100000;  // 5 s at 20000 msg/s: plenty left after the kill
  constexpr std::uint64_t second_count = 1000;
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  auto slow = spawn_rill(dir, "slow",
                         {"sub", ep, "md/", "--idle-exit-ms", "20000", "--policy", "backpressure:8", "--work-us",
                          "1000", "--format", "text"});
  auto pub = spawn_rill(dir, "pub",
                        {"pub", ep, "md/x", "--count", str(n), "--rate", "20000", "--batch", "1", "--timeout-ms", "500",
                         "--wait-subs", "1"});
  // It handles ~1000 msg/s, the publisher wants 20x that: from here on it is held back.
  wait_until([&] { return line_count(*slow) > 0 || !slow->running(); }, 20s);
  REQUIRE_MESSAGE(line_count(*slow) > 0, "the slow subscriber never got a message: " << slow->err());
  REQUIRE_MESSAGE(pub->running(), "the publisher finished before the kill: " << pub->err());
  slow->kill(SIGKILL);
  const auto killed = slow->wait(10s);
  REQUIRE(killed.signaled);
  const auto before = parse_text(slow->out(), "md/x").seqs;
  REQUIRE(!before.empty());
  CHECK(is_run_from(before, 1));

  auto second = spawn_rill(
      dir, "second", {"sub", ep, "md/", "--count", str(second_count), "--idle-exit-ms", "5000", "--format", "json"});
  const auto s2 = finish_sub(*second, "second sub");
  const auto p = finish_pub(*pub);
  MESSAGE("slow subscriber killed after seq " << before.back() << "; pub " << p.stats.line << " in " << p.exit.seconds()
                                              << " s; second sub " << s2.line);
  // Not stuck: every message went out, in about the paced time, and at most a few
  // 500 ms deadlines passed before the death was noticed (a probe sees it within
  // ~50 ms; the 3 s keepalive expiry is the fallback).
  CHECK(p.stats["sent"] == n);
  CHECK(p.stats["timeouts"] <= 6);
  CHECK(p.stats["blocked_ns"] > 0);  // it was held back before the kill
  CHECK(p.exit.seconds() < 20.0);
  // The new subscriber got live messages, all after what the dead one saw.
  CHECK(s2["received"] == second_count);
  const auto msgs = parse_json(second->out());
  CHECK(msgs.bad == 0);
  REQUIRE(msgs.all.size() == second_count);
  CHECK(msgs.all.front().seq > before.back());
  std::vector<std::uint64_t> seqs;
  for (const auto& m : msgs.all) seqs.push_back(m.seq);
  CHECK(first_not_increasing(seqs) == seqs.size());
  CHECK(seqs.size() + s2["gaps"] == seqs.back() - seqs.front() + 1);
}

TEST_CASE("batching: a drop subscriber killed and restarted is welcomed anew and counts only what it missed since") {
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  // A queue that never fills in this test: any gap would be the transport's or the join's.
  const std::vector<std::string> sub_args{"sub", ep, "md/", "--policy", "drop-oldest:50000", "--format", "json"};
  auto first_args = sub_args;
  first_args.insert(first_args.end(), {"--idle-exit-ms", "20000"});
  auto first = spawn_rill(dir, "first", first_args);
  // Runs until told to stop; paced, so its batches are flushed (and held) often.
  auto pub = spawn_rill(
      dir, "pub", {"pub", ep, "md/x", "--count", "100000000", "--rate", "50000", "--batch", "64", "--wait-subs", "1"});
  wait_until([&] { return line_count(*first) > 0 || !first->running(); }, 20s);
  REQUIRE_MESSAGE(line_count(*first) > 0, "the first subscriber never got a message: " << first->err());
  first->kill(SIGKILL);
  REQUIRE(first->wait(10s).signaled);
  const auto before = parse_json(first->out());
  REQUIRE(!before.all.empty());

  constexpr std::uint64_t count = 2000;
  auto again_args = sub_args;
  again_args.insert(again_args.end(), {"--count", str(count), "--idle-exit-ms", "5000"});
  auto again = spawn_rill(dir, "restarted", again_args);
  const auto s = finish_sub(*again, "restarted sub");
  REQUIRE_MESSAGE(pub->running(), "the publisher stopped early: " << pub->err());
  pub->kill(SIGTERM);
  const auto p = finish_pub(*pub);
  MESSAGE("restarted after seq " << before.all.back().seq << ": " << s.line << "; pub " << p.stats.line);

  const auto msgs = parse_json(again->out());
  CHECK(msgs.bad == 0);
  REQUIRE(msgs.all.size() == count);
  std::vector<std::uint64_t> seqs;
  for (const auto& m : msgs.all) {
    CHECK(m.publisher == before.all.front().publisher);
    seqs.push_back(m.seq);
  }
  const auto first_seq = seqs.front();
  const auto last_seq = seqs.back();
  CHECK(first_seq > 1);
  CHECK(first_seq > before.all.back().seq);
  CHECK(s["received"] == count);
  // Gaps count from its own WELCOME, not from the publisher's first message.
  CHECK(s["received"] + s["gaps"] == last_seq - first_seq + 1);
  CHECK(s["gaps"] == 0);
  CHECK(s["dropped"] == 0);
  CHECK(s["publisher_restarts"] == 0);
  CHECK(is_run_from(seqs, first_seq));
  CHECK(p.stats["peer_drops"] == 0);
}

TEST_CASE("batching: a backpressure subscriber that joins while a batch is held gets no more than its window") {
  // A publisher batching 500 at full speed (no subscriber yet) holds a partly filled
  // batch nearly all the time, and a joiner is welcomed at that batch's first sequence.
  // What it is then sent must still fit its window of 4, or its queue (sized to the
  // window) has to refuse messages: loss on a backpressure subscription. Three joiners
  // one after another, each at a different point of the publisher's batch.
  constexpr std::uint64_t count = 1000;
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  auto pub =
      spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", "1000000000", "--batch", "500", "--timeout-ms", "20000"});
  // The stream runs before the first joiner comes: one message received proves it (on a
  // loaded machine the publisher may otherwise not have sent its first batch yet).
  auto warm = spawn_rill(dir, "warm", {"sub", ep, "md/", "--count", "1", "--format", "json"});
  const auto warm_stats = finish_sub(*warm);
  REQUIRE(warm_stats["received"] == 1);
  const auto warm_msgs = parse_json(warm->out());
  REQUIRE(warm_msgs.all.size() == 1);
  const std::uint64_t running_at = warm_msgs.all.front().seq;
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    auto sub = spawn_rill(dir, "sub" + str(i),
                          {"sub", ep, "md/", "--count", str(count), "--idle-exit-ms", "3000", "--policy",
                           "backpressure:4", "--format", "json"});
    const auto s = finish_sub(*sub);
    MESSAGE("backpressure:4 joiner " << i << " of a --batch 500 publisher: " << s.line);
    CHECK(s["dropped"] == 0);  // refused by a queue sized to the window: sent past it
    CHECK(s["gaps"] == 0);
    CHECK(s["received"] == count);
    const auto msgs = parse_json(sub->out());
    CHECK(msgs.bad == 0);
    REQUIRE(msgs.all.size() == count);
    std::vector<std::uint64_t> seqs;
    for (const auto& m : msgs.all) seqs.push_back(m.seq);
    CHECK(seqs.front() > running_at);  // it joined a running stream
    CHECK(is_run_from(seqs, seqs.front()));
  }
  REQUIRE_MESSAGE(pub->running(), "the publisher stopped early: " << pub->err());
  pub->kill(SIGTERM);
  const auto p = finish_pub(*pub);
  MESSAGE("publisher: " << p.stats.line);
  CHECK(p.stats["timeouts"] == 0);
}

TEST_CASE("batch frames on the wire: --batch 64 sends full batches in the documented layout") {
  constexpr std::uint64_t n = 6400;
  constexpr std::uint64_t batch = 64;
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  zmq::context_t ctx;
  RawSubscriber raw(ctx, ep, static_cast<std::uint8_t>(PolicyKind::drop_oldest), 0);
  raw.subscribe();
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--batch", str(batch), "--wait-subs", "1"});

  std::vector<std::uint64_t> seqs;
  std::vector<std::size_t> sizes;
  std::size_t bad_layout = 0;
  bool bye = false;
  while (!bye) {
    auto f = raw.next(20s);
    REQUIRE_MESSAGE(f.has_value(), "no frame for 20 s after " << seqs.size() << " envelopes");
    const auto b = bytes_of(*f);
    if (wire::is_control(b)) {
      const auto c = wire::decode_control(b);
      REQUIRE(c.has_value());
      REQUIRE(c->type == wire::ControlType::bye);
      CHECK(c->bye.last_seq == n);
      bye = true;
      continue;
    }
    REQUIRE_MESSAGE(wire::is_batch(b), "a --batch " << batch << " publisher sent a bare frame");
    const auto contents = open_batch(b);
    if (!contents.layout_ok) ++bad_layout;
    CHECK(contents.publisher == raw.publisher());
    sizes.push_back(contents.seqs.size());
    seqs.insert(seqs.end(), contents.seqs.begin(), contents.seqs.end());
  }
  const auto p = finish_pub(*pub);
  MESSAGE("raw peer: " << sizes.size() << " batch frames for " << seqs.size() << " envelopes; pub " << p.stats.line);
  CHECK(bad_layout == 0);
  CHECK(raw.welcome_seq() == 1);
  CHECK(seqs.size() == n);
  CHECK(is_run_from(seqs, 1));
  // Nothing flushes a batch early here (no pacing, no backpressure peer): all are full.
  CHECK(sizes.size() == n / batch);
  CHECK(std::all_of(sizes.begin(), sizes.end(), [&](std::size_t k) { return k == batch; }));
}

TEST_CASE("batch frames on the wire: a batch never takes more than the backpressure window") {
  // A raw backpressure peer with a window of 16 returns credit in fours as it "handles"
  // messages, as rill's subscriber does. Envelopes sent but not yet credited must never
  // exceed 16, though the publisher may batch 64.
  constexpr std::uint64_t n = 3000;
  constexpr std::uint32_t window = 16;
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  zmq::context_t ctx;
  RawSubscriber raw(ctx, ep, static_cast<std::uint8_t>(PolicyKind::backpressure), window);
  raw.subscribe();
  auto pub = spawn_rill(
      dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--batch", "64", "--wait-subs", "1", "--timeout-ms", "20000"});

  std::vector<std::uint64_t> seqs;
  std::size_t frames = 0;
  std::size_t largest = 0;
  std::uint64_t outstanding = 0;  // sent to us, not yet credited back
  std::uint64_t most_outstanding = 0;
  std::uint32_t handled = 0;
  bool bye = false;
  while (!bye) {
    auto f = raw.next(20s);
    REQUIRE_MESSAGE(f.has_value(), "no frame for 20 s after " << seqs.size() << " envelopes");
    const auto b = bytes_of(*f);
    if (wire::is_control(b)) {
      const auto c = wire::decode_control(b);
      REQUIRE(c.has_value());
      REQUIRE(c->type == wire::ControlType::bye);
      bye = true;
      continue;
    }
    REQUIRE(wire::is_batch(b));
    const auto contents = open_batch(b);
    REQUIRE(contents.layout_ok);
    ++frames;
    largest = std::max(largest, contents.seqs.size());
    outstanding += contents.seqs.size();
    most_outstanding = std::max(most_outstanding, outstanding);
    seqs.insert(seqs.end(), contents.seqs.begin(), contents.seqs.end());
    for (std::size_t i = 0; i < contents.seqs.size(); ++i) {
      if (++handled == window / 4) {
        raw.credit(handled);
        outstanding -= handled;
        handled = 0;
      }
    }
  }
  const auto p = finish_pub(*pub);
  MESSAGE("raw backpressure peer, window " << window << ": " << frames << " frames, largest " << largest
                                           << ", most outstanding " << most_outstanding << "; pub " << p.stats.line);
  CHECK(most_outstanding <= window);
  CHECK(largest <= window);
  CHECK(largest > 1);  // it did batch under backpressure
  CHECK(seqs.size() == n);
  CHECK(is_run_from(seqs, 1));
  CHECK(p.stats["sent"] == n);
  CHECK(p.stats["timeouts"] == 0);
}

// A closing publisher keeps its socket open and polled until each subscriber answered its
// BYE (the tail before the BYE is then known to have arrived), and no longer than the linger.
TEST_CASE("closing: the publisher waits for its subscribers to answer BYE, at most the linger time") {
  for (const bool answer : {true, false}) {
    INFO("the subscriber answers BYE: " << answer);
    TempDir dir;
    const auto ep = tcp_endpoint(free_port());
    zmq::context_t ctx;
    RawSubscriber raw(ctx, ep, static_cast<std::uint8_t>(PolicyKind::drop_oldest), 0);
    raw.subscribe();
    auto pub = spawn_rill(dir, answer ? "pub_a" : "pub_n", {"pub", ep, "md/x", "--count", "100", "--wait-subs", "1"});
    std::uint64_t got = 0;
    for (;;) {
      auto f = raw.next(20s);
      REQUIRE_MESSAGE(f.has_value(), "no frame for 20 s after " << got << " messages");
      const auto b = bytes_of(*f);
      if (!wire::is_control(b)) {
        ++got;
        continue;
      }
      const auto c = wire::decode_control(b);
      REQUIRE(c.has_value());
      REQUIRE(c->type == wire::ControlType::bye);
      CHECK(c->bye.last_seq == 100);
      break;
    }
    const auto bye_at = std::chrono::steady_clock::now();
    CHECK(got == 100);
    CHECK(pub->running());  // it has not closed: it waits for the answer
    std::this_thread::sleep_for(200ms);
    CHECK(pub->running());
    if (answer) raw.unsubscribe();
    const auto e = pub->wait(10s);
    const auto after_bye = std::chrono::duration<double>(std::chrono::steady_clock::now() - bye_at).count();
    CHECK(e.describe() == "exit 0");
    MESSAGE("publisher exited " << after_bye << " s after its BYE");
    if (answer) {
      CHECK(after_bye < 1.5);  // the answer ended the wait, not the 2 s linger
    } else {
      CHECK(after_bye >= 1.5);  // waited out the linger (2 s from before the BYE) ...
      CHECK(after_bye < 6.0);   // ... and no longer
    }
  }
}

}  // namespace rill::e2e
