#include "tcp_subscriber.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <new>

#include <zmq.h>

#include "base/logging.hpp"
#include "transport/node_core.hpp"
#include "tcp_options.hpp"
#include "tcp_security.hpp"
#include "tcp_wire.hpp"

namespace rill::detail::tcp {

namespace {

using clock = std::chrono::steady_clock;

// A Frame holding a zmq_msg_t and the span of it that is one envelope: a whole
// single-envelope message, or one envelope of a batch (whose zmq_msg_t then shares
// the batch's reference-counted body). Moving it is zmq_msg_move: no byte is copied.
struct Held {
  zmq_msg_t msg;
  std::uint32_t offset;
  std::uint32_t length;
};

Held* held(void* storage) noexcept { return static_cast<Held*>(storage); }
zmq_msg_t* msg_of(void* storage) noexcept { return &held(storage)->msg; }

const FrameOps zmq_frame_ops{
    .release = [](void* s) noexcept { zmq_msg_close(msg_of(s)); },
    // zmq_msg_t holds no pointer into itself (libzmq's own zmq_msg_move copies the
    // struct), so a Frame relocates it with memcpy: a queue push or pop is two copies
    // of 80 bytes, not three library calls.
    .move = nullptr,
    .bytes =
        [](const void* s) noexcept {
          auto* h = held(const_cast<void*>(s));
          return std::span<const std::byte>(static_cast<const std::byte*>(zmq_msg_data(&h->msg)) + h->offset, h->length);
        },
};

static_assert(sizeof(Held) <= Frame::storage_size);

constexpr int handshake_events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
// Connections closed mid-handshake before we call it a failure: one or two may be a publisher
// restarting, or a proxy in between that accepted before it could reach the publisher.
constexpr int closed_handshakes_before_report = 3;

// Watches `sock`'s handshakes through a PAIR socket (libzmq's socket monitor).
zmq::socket_t monitor_handshakes(zmq::context_t& ctx, zmq::socket_t& sock) {
  static std::atomic<std::uint64_t> next{0};
  const auto address = "inproc://rill-curve-monitor-" + std::to_string(next++);
  if (zmq_socket_monitor(sock.handle(), address.c_str(), handshake_events) != 0) throw zmq::error_t();
  zmq::socket_t pair(ctx, zmq::socket_type::pair);
  pair.set(zmq::sockopt::linger, 0);
  pair.connect(address);
  return pair;
}

std::string why_handshake_failed(std::uint16_t event, std::uint32_t value) {
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
    return "the publisher refused our CURVE key (ZAP status " + std::to_string(value) +
           "): its curve_allow file does not list our public key";
  }
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
    return "the publisher does not speak CURVE (its endpoint has no curve_key)";
  }
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
    return "the CURVE handshake failed to decrypt: curve_server is not this publisher's public key";
  }
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    return "the CURVE handshake broke the protocol (ZeroMQ error 0x" + fmt::format("{:x}", value) + ")";
  }
  return "the publisher closed the connection during the CURVE handshake, " +
         std::to_string(closed_handshakes_before_report) +
         " times: curve_server is not its public key, or it does not use CURVE (or a proxy in between cannot reach it)";
}

}  // namespace

Result<std::unique_ptr<SubscriberTransport>> TcpSubscriber::create(NodeCore& node, std::span<const Endpoint> eps,
                                                                   const SubscriberConfig& config) {
  if (config.prefix.size() > max_prefix_bytes) return fail(Errc::invalid_argument, "topic prefix longer than 1024 bytes");
  if (config.durable_name.size() > max_name_bytes || config.group.size() > max_name_bytes) {
    return fail(Errc::invalid_argument, "durable and group names are at most 255 bytes");
  }
  std::unique_ptr<TcpSubscriber> sub(new TcpSubscriber(config));
  try {
    for (const auto& ep : eps) {
      zmq::socket_t sock(node.zmq(), zmq::socket_type::dealer);
      sock.set(zmq::sockopt::rcvhwm, pipe_high_water);
      sock.set(zmq::sockopt::sndhwm, 1024);
      // ZMQ_IMMEDIATE=1 intermittently left the first pipe unread here (libzmq 4.3.4), so
      // keepalives may queue while the publisher is away; they are idempotent and few.  // no stale subscriptions queued while the publisher is away
      sock.set(zmq::sockopt::linger, 200);   // lets the unsubscribe out on close
      sock.set(zmq::sockopt::reconnect_ivl, 50);
      sock.set(zmq::sockopt::reconnect_ivl_max, 500);
      set_keepalive(sock);
      // Frames up to twice the limit reach us and are counted as oversize; beyond that
      // ZeroMQ drops the connection before buffering them.
      sock.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(config.max_message_bytes) * 2 + 4096);
      auto sec = parse_security(ep, Side::subscriber);
      if (!sec) return std::unexpected(sec.error());
      zmq::socket_t monitor;
      if (sec->curve()) {
        make_curve_client(sock, *sec);
        monitor = monitor_handshakes(node.zmq(), sock);
      }
      const auto address = "tcp://" + ep.host + ":" + std::to_string(ep.port);
      sock.connect(address);
      sub->m_conns.push_back(Connection{.sock = std::move(sock), .monitor = std::move(monitor), .address = address});
    }
  } catch (const zmq::error_t& e) {
    return fail(Errc::io_error, "cannot connect", e.num());
  }
  for (auto& c : sub->m_conns) sub->m_items.push_back({c.sock.handle(), 0, ZMQ_POLLIN, 0});
  sub->service(clock::now());
  return std::unique_ptr<SubscriberTransport>(std::move(sub));
}

TcpSubscriber::~TcpSubscriber() {
  std::array<std::byte, 32> buf;
  const auto n = encode_unsubscribe(buf, m_config.subscription_id);
  for (auto& c : m_conns) {
    zmq_send(c.sock.handle(), buf.data(), n, ZMQ_DONTWAIT);
    if (c.monitor) zmq_socket_monitor(c.sock.handle(), nullptr, 0);  // stop the events before their reader goes
  }
}

void TcpSubscriber::handle_control(std::uint32_t index, std::span<const std::byte> frame, FrameSink& sink) {
  const auto control = decode_control(frame);
  if (!control) {
    sink.on_bad_frame(index, Errc::malformed, frame.size());
    return;
  }
  switch (control->type) {
    case ControlType::welcome:
      if (control->welcome.subscription_id != m_config.subscription_id) return;  // meant for an earlier us
      m_conns[index].welcomed = true;
      m_conns[index].rejected = false;
      sink.on_welcome(index, control->welcome.publisher_id, control->welcome.next_seq, control->welcome.lost,
                      control->welcome.instance);
      break;
    case ControlType::reject: {
      const auto& r = control->reject;
      if (r.subscription_id != m_config.subscription_id) return;
      // Asked again now and then, so a publisher restarted with more durability takes us.
      m_conns[index].rejected = true;
      m_conns[index].next_subscribe = clock::now() + std::chrono::milliseconds(reject_retry_ms);
      sink.on_reject(index, r.publisher_id, static_cast<DurabilityKind>(r.offered),
                     static_cast<DurabilityKind>(r.requested), r.reason);
      break;
    }
    case ControlType::bye: {
      sink.on_bye(index, control->bye.publisher_id, control->bye.last_seq);
      // Answer it: the publisher stays until we have everything it sent. (The other
      // publishers on the endpoint keep serving this subscription.)
      std::array<std::byte, 32> buf;
      const auto n = encode_bye_seen(buf, {m_config.subscription_id, control->bye.publisher_id, control->bye.last_seq});
      zmq_send(m_conns[index].sock.handle(), buf.data(), n, ZMQ_DONTWAIT);
      break;
    }
    case ControlType::ping:
      break;
    default:
      sink.on_bad_frame(index, Errc::malformed, frame.size());
      break;
  }
}

std::size_t TcpSubscriber::drain_one(std::uint32_t index, FrameSink& sink, std::size_t max) {
  void* sock = m_conns[index].sock.handle();
  std::size_t delivered = 0;
  while (delivered < max) {
    Frame frame(&zmq_frame_ops, index);
    zmq_msg_init(msg_of(frame.storage()));
    if (zmq_msg_recv(msg_of(frame.storage()), sock, ZMQ_DONTWAIT) < 0) break;  // EAGAIN: nothing more now
    held(frame.storage())->offset = 0;
    held(frame.storage())->length = static_cast<std::uint32_t>(zmq_msg_size(msg_of(frame.storage())));
    if (zmq_msg_more(msg_of(frame.storage()))) {
      // rill frames are single-part: swallow the rest of a multi-part message.
      const auto size = frame.bytes().size();
      while (zmq_msg_more(msg_of(frame.storage())) && zmq_msg_recv(msg_of(frame.storage()), sock, ZMQ_DONTWAIT) >= 0) {
      }
      sink.on_bad_frame(index, Errc::malformed, size);
      continue;
    }
    const auto bytes = frame.bytes();
    if (is_control(bytes)) {
      handle_control(index, bytes, sink);
      continue;
    }
    if (is_batch(bytes)) {
      delivered += split_batch(index, frame, sink);
      continue;
    }
    if (bytes.size() > m_config.max_message_bytes) {
      sink.on_bad_frame(index, Errc::too_large, bytes.size());
      continue;
    }
    sink.on_data(std::move(frame));
    ++delivered;
  }
  return delivered;
}

std::size_t TcpSubscriber::split_batch(std::uint32_t index, Frame& batch, FrameSink& sink) {
  // Each envelope becomes a Frame of its own sharing the batch's body, so policies,
  // credit and gaps stay per message.
  std::size_t delivered = 0;
  const auto bytes = batch.bytes();
  const bool ok = for_each_in_batch(bytes, [&](std::size_t offset, std::size_t length) {
    if (length > m_config.max_message_bytes) {
      sink.on_bad_frame(index, Errc::too_large, length);
      return;
    }
    Frame one(&zmq_frame_ops, index);
    zmq_msg_init(msg_of(one.storage()));
    zmq_msg_copy(msg_of(one.storage()), msg_of(batch.storage()));
    held(one.storage())->offset = static_cast<std::uint32_t>(offset);
    held(one.storage())->length = static_cast<std::uint32_t>(length);
    sink.on_data(std::move(one));
    ++delivered;
  });
  if (!ok) sink.on_bad_frame(index, Errc::malformed, bytes.size());
  return delivered;
}

void TcpSubscriber::read_handshake_events(std::uint32_t index, FrameSink& sink) {
  auto& c = m_conns[index];
  zmq::message_t event;
  zmq::message_t address;
  while (c.monitor.recv(event, zmq::recv_flags::dontwait)) {
    // Two frames: 16-bit event and 32-bit value (host order), then the peer's address.
    if (event.more()) (void)c.monitor.recv(address, zmq::recv_flags::dontwait);
    if (event.size() < 6) continue;
    std::uint16_t id = 0;
    std::uint32_t value = 0;
    std::memcpy(&id, event.data(), sizeof id);
    std::memcpy(&value, static_cast<const char*>(event.data()) + sizeof id, sizeof value);
    bool failed = false;
    switch (id) {
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        c.secured = true;
        c.reported = false;
        c.dropped_in_handshake = 0;
        break;
      case ZMQ_EVENT_DISCONNECTED:
        c.secured = false;  // the next handshake decides again
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        // The peer closed mid-handshake: what a CURVE server does with a HELLO it cannot
        // decrypt (a wrong curve_server key), and what a plain one does with CURVE.
        failed = ++c.dropped_in_handshake >= closed_handshakes_before_report;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:  // the publisher's ZAP handler said no
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        failed = true;
        c.reconnect_at = clock::now() + std::chrono::milliseconds(reject_retry_ms);
        break;
      default:
        break;
    }
    if (failed && !c.reported) {
      c.reported = true;
      sink.on_security_error(index, why_handshake_failed(id, value));
    }
  }
}

std::size_t TcpSubscriber::drain(FrameSink& sink, std::size_t max) {
  std::size_t delivered = 0;
  const auto n = static_cast<std::uint32_t>(m_conns.size());
  for (std::uint32_t i = 0; i < n && delivered < max; ++i) {
    const auto index = (m_next_conn + i) % n;
    const auto got = drain_one(index, sink, max - delivered);
    // Only a quiet connection is looked at: a failed handshake is why one stays quiet.
    if (got == 0 && m_conns[index].monitor) read_handshake_events(index, sink);
    delivered += got;
  }
  if (n > 1) m_next_conn = (m_next_conn + 1) % n;
  return delivered;
}

void TcpSubscriber::wait(std::chrono::nanoseconds timeout) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
  zmq_poll(m_items.data(), static_cast<int>(m_items.size()), static_cast<long>(ms));
}

bool TcpSubscriber::ack(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t seq) {
  std::array<std::byte, 32> buf;
  const auto len = encode_ack(buf, {m_config.subscription_id, publisher_id, seq});
  return zmq_send(m_conns[source].sock.handle(), buf.data(), len, ZMQ_DONTWAIT) >= 0;
}

bool TcpSubscriber::consumed(std::uint32_t source, std::uint64_t publisher_id, std::uint32_t n) {
  std::array<std::byte, 32> buf;
  const auto len = encode_credit(buf, {m_config.subscription_id, publisher_id, n});
  return zmq_send(m_conns[source].sock.handle(), buf.data(), len, ZMQ_DONTWAIT) >= 0;
}

void TcpSubscriber::service(clock::time_point now) {
  for (auto& c : m_conns) {
    if (now < c.reconnect_at) continue;
    c.reconnect_at = clock::time_point::max();
    zmq_disconnect(c.sock.handle(), c.address.c_str());  // ENOENT when libzmq dropped it already
    zmq_connect(c.sock.handle(), c.address.c_str());
  }
  if (std::none_of(m_conns.begin(), m_conns.end(), [&](const Connection& c) { return now >= c.next_subscribe; })) return;
  std::array<std::byte, max_control_bytes> buf;
  const auto n = encode_subscribe(
      buf, {.subscription_id = m_config.subscription_id,
            .policy = static_cast<std::uint8_t>(m_config.policy.kind),
            .durability = static_cast<std::uint8_t>(m_config.durability.kind),
            .window = m_config.policy.kind == PolicyKind::backpressure
                          ? static_cast<std::uint32_t>(m_config.policy.capacity)
                          : 0,
            .from = static_cast<std::uint8_t>(m_config.from),
            .history = static_cast<std::uint32_t>(std::min<std::size_t>(m_config.durability.history, UINT32_MAX)),
            .prefix = m_config.prefix,
            .durable_name = m_config.durable_name,
            .group = m_config.group});
  for (auto& c : m_conns) {
    if (now < c.next_subscribe) continue;
    // The subscription is idempotent: re-sending it is the keepalive, and it is how
    // a restarted publisher learns about us again.
    zmq_send(c.sock.handle(), buf.data(), n, ZMQ_DONTWAIT);
    c.next_subscribe =
        now + std::chrono::milliseconds(c.rejected ? reject_retry_ms : c.welcomed ? keepalive_ms : subscribe_retry_ms);
  }
}

}  // namespace rill::detail::tcp
