#include "rill/publisher.hpp"

#include <vector>

#include "transport/transport.hpp"
#include "policies/durability/history.hpp"
#include "idle_service.hpp"
#include "loan_state.hpp"
#include "base/logging.hpp"
#include "transport/node_core.hpp"

namespace rill {

Publisher::Publisher(std::shared_ptr<detail::NodeCore> node, std::unique_ptr<detail::History> history,
                     std::unique_ptr<detail::PublisherTransport> transport, const PublisherOptions& options,
                     std::uint64_t id)
    : m_node(std::move(node)),
      m_history(std::move(history)),
      m_transport(std::move(transport)),
      m_topic(options.topic),
      m_id(id),
      m_timeout(options.publish_timeout),
      m_max_bytes(options.max_message_bytes) {
  if (m_history) m_next_seq = m_history->next_sequence();  // persistent: continues from the log
  // A durable publisher serves catch-ups and acks, and a reliable udp one answers NAKs and
  // sends heartbeats, while the application publishes nothing: the helper calls service().
  if ((m_history || m_transport->needs_idle_service()) && options.idle_service.count() > 0) {
    m_idle = std::make_unique<detail::IdleService>([t = m_transport.get()] { t->service(); }, options.idle_service);
  }
}

Publisher::Publisher(Publisher&&) noexcept = default;
Publisher& Publisher::operator=(Publisher&&) noexcept = default;

Publisher::~Publisher() {
  m_idle.reset();  // first: it calls into the transport
  m_spare_loan.reset();
  if (m_transport) m_transport->close(m_next_seq - 1);
  m_transport.reset();  // before the node core, whose context the socket needs
  if (m_history) {
    if (auto closed = m_history->close(); !closed) {
      detail::log().error("publisher {:016x}: closing its log: {}", m_id, closed.error().message());
    }
  }
}

EnvelopeFields Publisher::stamp(std::span<const HeaderKV> headers) const noexcept {
  m_stamp_ns = wall_clock_ns();  // kept for the log record (one clock read per message)
  return {
      .topic = m_topic, .publisher_id = m_id, .sequence = m_next_seq, .timestamp_ns = m_stamp_ns, .headers = headers};
}

Result<void> Publisher::send_built(std::span<const std::byte> envelope) {
  if (envelope.size() > m_max_bytes) return fail(Errc::too_large, "envelope larger than max_message_bytes");
  detail::IdleServiceEntry entry(m_idle.get());  // a no-op without a helper
  if (m_history) return send_kept(envelope);
  auto sent = m_transport->send(envelope, m_next_seq, m_timeout);
  if (sent) ++m_next_seq;  // a timed-out message was not published: its number is reused
  return sent;
}

Result<void> Publisher::send_kept(std::span<const std::byte> envelope) {
  // Room first (backpressure), so a message that is kept is also sent to everyone live;
  // then kept (persistent: in the log, durably under fsync always), then sent.
  if (auto room = m_transport->reserve(m_timeout); !room) return room;
  if (auto kept = m_history->record(envelope, m_next_seq, m_stamp_ns); !kept) return kept;
  auto sent = m_transport->send(envelope, m_next_seq, m_timeout);
  ++m_next_seq;  // kept: published, whatever the send did (late joiners read it from the history)
  return sent;
}

Result<void> Publisher::publish_bytes(std::span<const std::byte> payload, std::span<const HeaderKV> headers) {
  m_builder.reset();
  return send_built(m_builder.finish_raw(payload, stamp(headers)));
}

Result<Loan> Publisher::loan(std::size_t payload_bytes) {
  auto state = m_spare_loan ? std::move(m_spare_loan) : std::make_unique<detail::LoanState>();
  state->transport = m_transport.get();
  if (m_history) {
    // A durable publisher copies what it keeps anyway, and a chunk lent by the transport
    // could be given back while the idle helper is inside it: build on the heap.
    state->heap_only = true;
    state->initial = payload_bytes + m_topic.size() + 256;
    return Loan(std::move(state));
  }
  state->transport_topic_bytes = m_topic.size();
  // Room for the envelope around the payload: topic, fixed fields, alignment, a few headers.
  const std::size_t want = payload_bytes + m_topic.size() + 256;
  std::size_t initial = want;
  // A transport with an idle helper lends no chunks (caps: only shm has zero-copy loans, and
  // its publishers have a helper only when durable, which builds on the heap above).
  detail::IdleServiceEntry entry(m_idle.get());
  if (auto chunk = m_transport->loan(want)) {
    state->chunk = *chunk;
    state->have_chunk = true;
    initial = chunk->capacity;
  } else if (chunk.error().code != Errc::unsupported) {
    return std::unexpected(chunk.error());
  }
  state->initial = initial;
  return Loan(std::move(state));
}

Result<void> Publisher::publish_loan(Loan&& loan, flatbuffers::uoffset_t root, std::span<const HeaderKV> headers) {
  auto state = std::move(loan.m_state);
  if (!state) return fail(Errc::invalid_argument, "publish() of a moved-from loan");
  const auto fields = stamp(headers);
  std::span<const std::byte> envelope;
  if (state->direct_data != nullptr && headers.empty()) {
    // The payload vector already sits right after room for the head: write the head.
    std::byte* vec = state->direct_data - 4;
    std::byte* start = state->chunk.data;
    const auto head = static_cast<std::size_t>(vec - start);
    write_envelope_head(start, head, head, fields);
    const auto size = flatbuffers::ReadScalar<flatbuffers::uoffset_t>(vec);
    envelope = {start, head + 4 + size};
    state->chunk_given = true;
  } else if (state->direct_data != nullptr) {
    // Headers need the generic builder: move the payload into one (a copy, rare).
    const auto size = flatbuffers::ReadScalar<flatbuffers::uoffset_t>(state->direct_data - 4);
    std::vector<std::byte> copy(state->direct_data, state->direct_data + size);
    state->direct_data = nullptr;
    auto& b = state->make_builder();
    envelope = b.finish_raw(std::span(copy.data(), size), fields);
  } else if (state->raw_used) {
    auto& b = state->make_builder();
    envelope = b.finish_vector(flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>>(state->raw_vector), fields);
  } else if (root != 0) {
    envelope = state->make_builder().finish_nested(root, fields);
  } else {
    envelope = state->make_builder().finish_raw({}, fields);
  }
  detail::IdleServiceEntry entry(m_idle.get());  // a no-op without a helper
  Result<void> sent;
  if (envelope.size() > m_max_bytes) {
    sent = fail(Errc::too_large, "envelope larger than max_message_bytes");
  } else if (m_history) {
    sent = send_kept(envelope);  // tcp copies anyway; clear() below gives the loan back
    state->clear();
    m_spare_loan = std::move(state);
    return sent;
  } else if (state->have_chunk && state->chunk_given && state->holds(state->chunk, envelope.data())) {
    state->consumed = true;  // the transport owns the chunk now, whatever the outcome
    sent = m_transport->send_loan(state->chunk.handle, envelope, m_next_seq, m_timeout);
  } else {
    sent = m_transport->send(envelope, m_next_seq, m_timeout);  // built on the heap: one copy
  }
  if (sent) ++m_next_seq;
  state->clear();
  m_spare_loan = std::move(state);
  return sent;
}

void Publisher::flush() {
  detail::IdleServiceEntry entry(m_idle.get());
  m_transport->flush();
}

std::size_t Publisher::service() {
  detail::IdleServiceEntry entry(m_idle.get());
  return m_transport->service();
}

Result<std::size_t> Publisher::wait_for_subscribers(std::size_t n, std::chrono::milliseconds timeout) {
  detail::IdleServiceEntry entry(m_idle.get());
  return m_transport->wait_for_subscribers(n, std::chrono::steady_clock::now() + timeout);
}

const PublisherStats& Publisher::stats() const noexcept {
  if (!m_idle) return m_transport->stats();
  detail::IdleServiceEntry entry(m_idle.get());
  m_stats_copy = m_transport->stats();  // the helper may be counting: a copy taken while it is not
  return m_stats_copy;
}

DurabilityKind Publisher::durability() const noexcept {
  return m_history ? m_history->offered() : DurabilityKind::volatile_;
}

const Log* Publisher::log() const noexcept {
  return m_history ? m_history->log() : nullptr;
}

Result<void> Publisher::sync() {
  flush();
  const Log* l = log();
  if (l == nullptr) return {};
  // The history owns a non-const Log; log() hands it out const so readers cannot append.
  return const_cast<Log*>(l)->sync();
}

}  // namespace rill

namespace rill {

Loan::Loan(std::unique_ptr<detail::LoanState> state) noexcept : m_state(std::move(state)) {}
Loan::Loan(Loan&&) noexcept = default;
Loan& Loan::operator=(Loan&&) noexcept = default;
Loan::~Loan() = default;

flatbuffers::FlatBufferBuilder& Loan::fbb() noexcept {
  return m_state->make_builder().fbb();
}

std::span<std::byte> Loan::raw(std::size_t size) {
  auto& st = *m_state;
  // Where the payload starts when the envelope's head (64 bytes, the topic string, the
  // vector length) goes in front of it at the chunk's start, 8-aligned.
  const std::size_t data_at =
      (plain_head_bytes + 4 + st.transport_topic_bytes + 1 + 4 + envelope_alignment - 1) & ~(envelope_alignment - 1);
  if (!st.builder && !st.raw_used && st.have_chunk && data_at + size <= st.chunk.capacity) {
    // No builder needed: the envelope starts at the chunk's data, next to its header line
    // (a reader fetches them together); publish() writes the head in front of the payload.
    st.direct_data = st.chunk.data + data_at;
    flatbuffers::WriteScalar<flatbuffers::uoffset_t>(st.direct_data - 4, static_cast<flatbuffers::uoffset_t>(size));
    st.raw_used = true;
    return {st.direct_data, size};
  }
  auto& fbb = st.make_builder().fbb();
  fbb.ForceVectorAlignment(size, 1, envelope_alignment);
  std::uint8_t* data = nullptr;
  m_state->raw_vector = fbb.CreateUninitializedVector(size, 1, &data);
  m_state->raw_used = true;
  return {reinterpret_cast<std::byte*>(data), size};
}

bool Loan::zero_copy() const noexcept {
  return m_state && m_state->have_chunk;
}

}  // namespace rill
