// End-to-end faults: a publisher killed and restarted under a running subscriber, and
// raw ZeroMQ peers feeding garbage to a `rill pub` and to a `rill sub` while each
// keeps serving a legitimate peer.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "checks.hpp"
#include "process.hpp"
#include "rill/message_builder.hpp"
#include "streams.hpp"
#include "transport/tcp/tcp_wire.hpp"

namespace rill::e2e {
namespace {

namespace wire = rill::detail::tcp;

// A valid envelope, as a rill publisher would send it.
std::string envelope(std::string_view topic, std::uint64_t publisher_id, std::uint64_t seq, std::string_view payload) {
  MessageBuilder b;
  const auto bytes = b.finish_raw(
      std::as_bytes(std::span(payload.data(), payload.size())),
      {.topic = topic, .publisher_id = publisher_id, .sequence = seq, .timestamp_ns = wall_clock_ns(), .headers = {}});
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

template <class F>
std::string control(F encode) {
  std::string buf(wire::max_control_bytes, '\0');
  const auto n = encode(std::as_writable_bytes(std::span(buf.data(), buf.size())));
  buf.resize(n);
  return buf;
}

void put_u32(std::string& s, std::size_t at, std::uint32_t v) {
  std::memcpy(s.data() + at, &v, sizeof v);
}
std::uint32_t get_u32(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  std::memcpy(&v, s.data() + at, sizeof v);
  return v;
}

}  // namespace

TEST_CASE("publisher killed and restarted on its endpoint: the subscriber follows and counts what it missed") {
  constexpr std::uint64_t n_new = 3000;
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  auto sub = spawn_rill(dir, "sub", {"sub", ep, "md/", "--idle-exit-ms", "2000"});
  auto old_pub =
      spawn_rill(dir, "pub-old", {"pub", ep, "md/x", "--count", "1000000", "--rate", "2000", "--wait-subs", "1"});
  REQUIRE_MESSAGE(wait_until([&] { return line_count(*sub) >= 200; }, 20s),
                  "the first publisher's messages never arrived");
  old_pub->kill(SIGKILL);
  const auto killed = old_pub->wait(10s);
  REQUIRE(killed.signaled);
  REQUIRE(killed.signal == SIGKILL);
  // No --wait-subs: it starts publishing at once, before the subscriber has found it.
  auto new_pub = spawn_rill(dir, "pub-new", {"pub", ep, "md/x", "--count", str(n_new), "--rate", "3000"});
  const auto np = finish_pub(*new_pub, "new pub").stats;
  const auto s = finish_sub(*sub);
  MESSAGE("restart: " << s.line);

  const auto msgs = parse_json(sub->out());
  CHECK(msgs.bad == 0);
  REQUIRE(!msgs.all.empty());
  // Two publisher instances, the old one's messages all before the new one's.
  const std::string old_id = msgs.all.front().publisher;
  std::vector<std::uint64_t> from_old;
  std::vector<std::uint64_t> from_new;
  std::set<std::string> new_ids;
  for (const auto& m : msgs.all) {
    if (m.publisher == old_id && from_new.empty()) {
      from_old.push_back(m.seq);
    } else {
      from_new.push_back(m.seq);
      new_ids.insert(m.publisher);
    }
  }
  REQUIRE(new_ids.size() == 1);
  CHECK(*new_ids.begin() != old_id);
  CHECK(np["sent"] == n_new);
  CHECK(s["publisher_restarts"] == 1);
  CHECK(s["dropped"] == 0);
  CHECK(s["received"] == msgs.all.size());
  // Up to the kill the stream was whole (what was in flight is unknowable to the subscriber).
  CHECK(from_old.size() >= 200);
  CHECK(is_run_from(from_old, 1));
  // From the re-attach on the new stream is whole, to its last message; everything
  // before the re-attach is a gap: received + gaps == sent for the new instance.
  REQUIRE(!from_new.empty());
  CHECK(is_run_from(from_new, from_new.front()));
  CHECK(from_new.back() == n_new);
  CHECK(s["gaps"] == from_new.front() - 1);
  CHECK(from_new.size() + s["gaps"] == n_new);
  CHECK(s["gaps"] > 0);  // it published from the first millisecond; reconnecting takes longer
}

TEST_CASE("garbage sent to a publisher: it keeps serving its real subscriber") {
  constexpr std::uint64_t n = 20000;
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  auto sub =
      spawn_rill(dir, "sub", {"sub", ep, "md/", "--count", str(n), "--idle-exit-ms", "3000", "--format", "text"});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--rate", "10000", "--wait-subs", "1"});
  REQUIRE_MESSAGE(wait_until([&] { return line_count(*sub) > 0; }, 20s), "publishing never started");

  zmq::context_t ctx;
  {
    zmq::socket_t raw(ctx, zmq::socket_type::dealer);
    raw.set(zmq::sockopt::linger, 2000);  // everything below reaches the publisher before we close
    raw.connect(ep);
    const auto send = [&](const std::string& frame, zmq::send_flags flags = zmq::send_flags::none) {
      REQUIRE(raw.send(zmq::buffer(frame), flags).has_value());
    };
    const auto subscribe = control([](auto out) {
      return wire::encode_subscribe(out, {.subscription_id = 7, .policy = 1, .window = 0, .prefix = "md/"});
    });
    send(std::string(64, '\xab'));    // junk bytes
    send(std::string());              // empty frame
    send(std::string("RLC\x01", 4));  // magic, nothing else
    send(subscribe.substr(0, 20));    // truncated subscribe
    std::string bad_len = subscribe;
    bad_len[18] = '\xff';  // prefix length past the frame
    send(bad_len);
    std::string bad_policy = subscribe;
    bad_policy[16] = '\x09';  // no such policy
    send(bad_policy);
    std::string unknown = subscribe.substr(0, 8);
    unknown[4] = '\x7f';  // no such control type
    send(unknown);
    send(control([](auto out) { return wire::encode_credit(out, {99, 1, 0xffffffffu}); }));  // credit for nobody
    send(control([](auto out) { return wire::encode_welcome(out, {1, 1, 1}); }));            // wrong direction
    send(control([](auto out) { return wire::encode_unsubscribe(out, 12345); }));            // never subscribed
    send(envelope("md/x", 1, 1, "data to a publisher"));                                     // data, wrong direction
    send("junk part 1", zmq::send_flags::sndmore);                                           // multi-part junk
    send("junk part 2", zmq::send_flags::sndmore);
    send("junk part 3");
    send(std::string(2u << 20, 'x'));  // 2 MiB: past the publisher's 1 MiB control limit
  }
  CHECK_MESSAGE(pub->running(), "the attack should overlap the publishing; make the publisher run longer");

  const auto ps = finish_pub(*pub).stats;
  const auto s = finish_sub(*sub);
  MESSAGE("publisher under attack: " << ps.line << "; its subscriber: " << s.line);
  // Its one log line about bad control frames shows the garbage was read, not left queued.
  CHECK(pub->err().find("malformed control frame") != std::string::npos);
  CHECK(ps["sent"] == n);
  CHECK(s["received"] == n);
  CHECK(s["gaps"] == 0);
  CHECK(s["malformed"] == 0);
  const auto msgs = parse_text(sub->out(), "md/x");
  CHECK(msgs.bad == 0);
  CHECK(is_run_from(msgs.seqs, 1));
  CHECK(msgs.seqs.size() == n);
}

TEST_CASE("garbage sent to a subscriber: each bad frame is counted, real streams around it are intact") {
  constexpr std::uint64_t n = 5000;
  constexpr std::uint64_t raw_id = 0x1122334455667788;
  TempDir dir;
  const auto raw_ep = tcp_endpoint(free_port());
  const auto pub_ep = tcp_endpoint(free_port());
  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::router);
  raw.set(zmq::sockopt::linger, 5000);
  raw.set(zmq::sockopt::rcvtimeo, 10000);
  raw.set(zmq::sockopt::sndtimeo, 10000);
  raw.bind(raw_ep);

  // One subscriber fed by a fake publisher (us) and a real one at once.
  auto sub = spawn_rill(dir, "sub", {"sub", raw_ep, pub_ep, "md/", "--idle-exit-ms", "2000"});
  auto pub =
      spawn_rill(dir, "pub", {"pub", pub_ep, "md/legit", "--count", str(n), "--rate", "5000", "--wait-subs", "1"});

  // Its SUBSCRIBE tells us its routing id and subscription id.
  zmq::message_t rid;
  zmq::message_t frame;
  REQUIRE(raw.recv(rid).has_value());
  REQUIRE(rid.more());
  REQUIRE(raw.recv(frame).has_value());
  const auto ctl = wire::decode_control({static_cast<const std::byte*>(frame.data()), frame.size()});
  REQUIRE(ctl.has_value());
  REQUIRE(ctl->type == wire::ControlType::subscribe);
  const auto sid = ctl->subscribe.subscription_id;
  CHECK(ctl->subscribe.prefix == "md/");
  const std::string to(static_cast<const char*>(rid.data()), rid.size());

  std::size_t bad = 0;
  const auto send = [&](const std::string& f, bool counts_as_bad, zmq::send_flags flags = zmq::send_flags::none) {
    REQUIRE(raw.send(zmq::buffer(to), zmq::send_flags::sndmore).has_value());
    REQUIRE(raw.send(zmq::buffer(f), flags).has_value());
    if (counts_as_bad) ++bad;
  };
  const auto send_more = [&](const std::string& f, zmq::send_flags flags) {
    REQUIRE(raw.send(zmq::buffer(f), flags).has_value());
  };
  const std::string payload = "PAYLOAD-0123456789-abcdefghijklmnopqrstuvwxyz";
  const std::string good1 = envelope("md/raw", raw_id, 1, payload);
  REQUIRE(good1.substr(4, 4) == "RILL");
  REQUIRE(good1.find(payload) != std::string::npos);

  const auto welcome = control([&](auto out) { return wire::encode_welcome(out, {raw_id, 1, sid}); });
  const auto bye = control([&](auto out) { return wire::encode_bye(out, {raw_id, 2}); });
  const auto subscribe = control([&](auto out) {
    return wire::encode_subscribe(out, {.subscription_id = 1, .policy = 1, .window = 0, .prefix = "md/"});
  });
  std::string bad_root = good1;
  put_u32(bad_root, 0, 0x7ffffff0u);  // "RILL" id, root offset far past the end
  std::string bad_vtable = good1;
  put_u32(bad_vtable, get_u32(good1, 0), 0x40000000u);  // root table's vtable offset out of range
  std::string unknown(8, '\0');
  std::memcpy(unknown.data(), "RLC\x01", 4);
  unknown[4] = '\x55';  // no such control type

  send(welcome, false);
  send(good1, false);
  send(std::string(64, '\xab'), true);                                    // junk bytes
  send(std::string(), true);                                              // empty frame
  send(std::string("RLC\x01", 4), true);                                  // magic alone: too short for a control frame
  send(good1.substr(0, good1.size() / 2), true);                          // truncated envelope
  send(good1.substr(0, good1.find(payload) + payload.size() / 2), true);  // cut inside the payload
  send(bad_root, true);
  send(bad_vtable, true);
  send(welcome.substr(0, welcome.size() - 4), true);  // cut welcome
  send(bye + "xx", true);                             // long bye
  send(unknown, true);
  send(subscribe, true);                                // publisher-bound: no business arriving here
  send("junk part 1", true, zmq::send_flags::sndmore);  // multi-part junk: one bad message
  send_more("junk part 2", zmq::send_flags::sndmore);
  send_more("junk part 3", zmq::send_flags::none);
  // One byte past the default 64 MiB limit: refused before the verifier looks at it.
  zmq::message_t huge((64u << 20) + 1);
  std::memset(huge.data(), 0xab, huge.size());
  REQUIRE(raw.send(zmq::buffer(to), zmq::send_flags::sndmore).has_value());
  REQUIRE(raw.send(std::move(huge), zmq::send_flags::none).has_value());
  send(envelope("md/raw", raw_id, 2, payload), false);
  send(control([&](auto out) { return wire::encode_bye(out, {raw_id, 2}); }), false);

  finish_pub(*pub);
  const auto s = finish_sub(*sub);
  MESSAGE("attacked subscriber (" << bad << " bad frames sent): " << s.line);
  CHECK(s["malformed"] == bad);
  CHECK(s["oversize"] == 1);
  CHECK(s["received"] == n + 2);
  CHECK(s["gaps"] == 0);
  CHECK(s["dropped"] == 0);

  const auto msgs = parse_json(sub->out());
  CHECK(msgs.bad == 0);
  std::map<std::string, std::vector<std::uint64_t>> by_topic;
  for (const auto& m : msgs.all) by_topic[m.topic].push_back(m.seq);
  CHECK(by_topic.size() == 2);
  CHECK(by_topic["md/raw"] == std::vector<std::uint64_t>{1, 2});
  CHECK(by_topic["md/legit"].size() == n);
  CHECK(is_run_from(by_topic["md/legit"], 1));
}

}  // namespace rill::e2e
