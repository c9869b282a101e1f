#include "rill/publisher.hpp"

#include "../transport/transport.hpp"
#include "node_core.hpp"

namespace rill {

Publisher::Publisher(std::shared_ptr<detail::NodeCore> node, std::unique_ptr<detail::PublisherTransport> transport,
                     const PublisherOptions& options, std::uint64_t id)
    : m_node(std::move(node)),
      m_transport(std::move(transport)),
      m_topic(options.topic),
      m_id(id),
      m_timeout(options.publish_timeout),
      m_max_bytes(options.max_message_bytes) {}

Publisher::Publisher(Publisher&&) noexcept = default;
Publisher& Publisher::operator=(Publisher&&) noexcept = default;

Publisher::~Publisher() {
  if (m_transport) m_transport->close(m_next_seq - 1);
  m_transport.reset();  // before the node core, whose context the socket needs
}

EnvelopeFields Publisher::stamp(std::span<const HeaderKV> headers) const noexcept {
  return {.topic = m_topic, .publisher_id = m_id, .sequence = m_next_seq, .timestamp_ns = wall_clock_ns(), .headers = headers};
}

Result<void> Publisher::send_built(std::span<const std::byte> envelope) {
  if (envelope.size() > m_max_bytes) return fail(Errc::too_large, "envelope larger than max_message_bytes");
  auto sent = m_transport->send(envelope, m_next_seq, m_timeout);
  if (sent) ++m_next_seq;  // a timed-out message was not published: its number is reused
  return sent;
}

Result<void> Publisher::publish_bytes(std::span<const std::byte> payload, std::span<const HeaderKV> headers) {
  m_builder.reset();
  return send_built(m_builder.finish_raw(payload, stamp(headers)));
}

void Publisher::flush() { m_transport->flush(); }

std::size_t Publisher::service() { return m_transport->service(); }

Result<std::size_t> Publisher::wait_for_subscribers(std::size_t n, std::chrono::milliseconds timeout) {
  return m_transport->wait_for_subscribers(n, std::chrono::steady_clock::now() + timeout);
}

const PublisherStats& Publisher::stats() const noexcept { return m_transport->stats(); }

}  // namespace rill
