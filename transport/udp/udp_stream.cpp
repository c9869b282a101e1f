#include "udp_stream.hpp"

#include <algorithm>
#include <cstring>

namespace rill::detail::udp {

namespace {

// The first NAK for a new gap waits a random part of this, so that receivers that
// lost the same datagram do not all ask at once (the publisher answers the first ask
// by multicast and ignores repeats for a moment), and a datagram that was only
// reordered has time to turn up.
constexpr auto nak_backoff = std::chrono::microseconds(2000);
// Repeats while the gap stays open, stretched by up to 2x at random.
constexpr auto nak_retry = std::chrono::microseconds(8000);
// Partially received messages held at once per stream.
constexpr std::size_t max_partials = 64;

}  // namespace

PublisherStream::PublisherStream(std::uint64_t publisher_id, std::uint32_t source, const sockaddr_in& from,
                                 const StreamLimits& limits, std::size_t& reassembly_in_use, StreamCounters& counters)
    : m_id(publisher_id),
      m_source(source),
      m_from(from),
      m_limits(limits),
      m_reassembly_in_use(reassembly_in_use),
      m_counters(counters),
      m_ring(ring_size) {
  m_partials.reserve(max_partials);
}

PublisherStream::~PublisherStream() {
  while (!m_partials.empty()) drop_partial(m_partials.size() - 1, false);
}

void PublisherStream::welcome(std::uint64_t next_seq, std::uint64_t lost, FrameSink& sink) {
  if (m_welcomed) return;  // a repeated WELCOME (ours was re-sent) changes nothing
  if (!m_limits.durable && !m_limits.group && m_first_heard > 0 && next_seq > m_first_heard) {
    // We asked to start where we first heard it, and its window no longer held that:
    // what lies between is lost to us (a gap, not a silent late start).
    lost = std::max(lost, next_seq - m_first_heard);
  }
  m_welcomed = true;
  m_baseline = m_next = next_seq;
  m_oldest = std::max(m_oldest, next_seq);
  m_give_up = next_seq;
  if (m_highest < next_seq - 1) m_highest = next_seq - 1;
  if (m_bye) m_highest = std::max(m_highest, m_bye_last);
  // Independent processes may publish into one group: no endpoint instance to compare.
  sink.on_welcome(m_source, m_id, next_seq, lost, 0);
}

bool PublisherStream::accept_seq(std::uint64_t seq) {
  // Before the WELCOME we do not know where this subscription starts; what arrives
  // then is asked for again (reliable) or counted as a gap (best effort) later. The
  // first sequence heard is where we ask to start.
  if (!m_welcomed) {
    note_heard(seq);
    return false;
  }
  if (seq < m_next || (m_bye && seq > m_bye_last)) {
    ++m_counters.duplicates;
    return false;
  }
  if (seq - m_next >= ring_size) {
    ++m_counters.beyond_window;
    return false;
  }
  if (!slot(seq).frame.empty()) {
    ++m_counters.duplicates;
    return false;
  }
  return true;
}

void PublisherStream::store(std::uint64_t seq, Frame&& frame, std::size_t bytes) {
  m_stored_bytes += bytes;
  slot(seq).frame = std::move(frame);
  ++m_present;
  if (seq > m_highest) m_highest = seq;
}

void PublisherStream::on_envelope(std::uint64_t seq, Buffer* buffer, std::size_t offset, std::size_t length) {
  if (!accept_seq(seq)) return;
  store(seq, make_frame(buffer, offset, length, m_source), length);
}

PublisherStream::Partial* PublisherStream::partial_for(const Frag& f) {
  for (auto& p : m_partials) {
    if (p.seq != f.seq) continue;
    // Every fragment of one message must describe the same geometry.
    if (p.msg_len != f.msg_len || p.frag_size != f.frag_size || p.count != f.count) return nullptr;
    return &p;
  }
  if (!m_limits.reliable) {
    // Best effort sends a message's fragments back to back: an older unfinished one
    // will not be completed any more.
    for (std::size_t i = m_partials.size(); i-- > 0;) {
      if (m_partials[i].seq < f.seq) drop_partial(i, true);
    }
  }
  const bool head = f.seq == m_next;
  while (m_reassembly_in_use + f.msg_len > m_limits.reassembly_bytes || m_partials.size() >= max_partials) {
    // Only the message delivery waits for may push others out (they are asked for
    // again later); anything else waits until memory is free.
    if (!head || m_partials.empty()) {
      ++m_counters.reassembly_refused;
      return nullptr;
    }
    const auto newest = std::max_element(m_partials.begin(), m_partials.end(),
                                         [](const Partial& a, const Partial& b) { return a.seq < b.seq; });
    drop_partial(static_cast<std::size_t>(newest - m_partials.begin()), false);
  }
  Buffer* b = allocate_buffer(f.msg_len);
  if (b == nullptr) {
    ++m_counters.reassembly_refused;
    return nullptr;
  }
  m_reassembly_in_use += f.msg_len;
  auto& p = m_partials.emplace_back();
  p.seq = f.seq;
  p.msg_len = f.msg_len;
  p.frag_size = f.frag_size;
  p.count = f.count;
  p.bitmap.assign((f.count + 63) / 64, 0);
  p.buffer = b;
  return &p;
}

void PublisherStream::drop_partial(std::size_t index, bool count_incomplete) {
  auto& p = m_partials[index];
  release(p.buffer);
  m_reassembly_in_use -= p.msg_len;
  if (count_incomplete) ++m_counters.incomplete;
  m_partials.erase(m_partials.begin() + static_cast<std::ptrdiff_t>(index));
}

void PublisherStream::on_fragment(const Frag& f) {
  if (!accept_seq(f.seq)) return;
  // Reliable: the message exists, so anything missing below it is a gap to ask for.
  // (Best effort must not: it would skip the message while its fragments still come.)
  if (m_limits.reliable && f.seq > m_highest) m_highest = f.seq;
  Partial* p = partial_for(f);
  if (p == nullptr) return;
  auto& word = p->bitmap[f.index / 64];
  const std::uint64_t bit = std::uint64_t{1} << (f.index % 64);
  if ((word & bit) != 0) {
    ++m_counters.duplicates;
    return;
  }
  word |= bit;
  std::memcpy(p->buffer->data() + f.offset, f.bytes.data(), f.bytes.size());
  if (++p->received < p->count) return;
  // Complete: the frame takes the partial's reference to the buffer.
  Frame frame(&buffer_frame_ops, m_source);
  new (frame.storage()) HeldSpan{p->buffer, 0, p->msg_len};
  m_reassembly_in_use -= p->msg_len;
  const auto seq = p->seq;
  const auto bytes = p->msg_len;
  m_partials.erase(m_partials.begin() + (p - m_partials.data()));
  store(seq, std::move(frame), bytes);
}

void PublisherStream::on_heartbeat(const Heartbeat& h, bool bye, clock::time_point now, bool unicast) {
  m_last_heard = now;
  if (bye && !m_bye) {
    m_bye = true;
    m_bye_last = h.next_seq - 1;
  }
  if (!m_welcomed) {
    if (!bye) note_heard(h.next_seq);  // everything from next_seq on is still to come
    return;
  }
  if (m_limits.reliable) {
    m_highest = std::max(m_highest, h.next_seq - 1);  // a lost tail becomes a visible gap
    if (m_limits.durable && !unicast) return;         // its history may still have them
    m_oldest = std::max(m_oldest, h.oldest_seq);
    m_give_up = std::max(m_give_up, m_oldest);
  } else if (m_bye) {
    m_highest = std::max(m_highest, m_bye_last);  // what never came of the tail is lost
  }
}

void PublisherStream::expire(clock::time_point now, std::chrono::milliseconds silence) {
  if (gap_pending() && now - m_last_heard > silence) {
    m_give_up = std::max(m_give_up, m_highest + 1);  // the publisher vanished: stop waiting
  }
}

bool PublisherStream::ready() const noexcept {
  if (!m_welcomed || m_next > m_highest) return m_bye && !m_bye_reported && m_welcomed && m_next > m_bye_last;
  return !slot(m_next).frame.empty() || !m_limits.reliable || m_next < m_give_up;
}

std::size_t PublisherStream::deliver(FrameSink& sink, std::size_t budget) {
  if (!m_welcomed) return 0;
  std::size_t n = 0;
  while (n < budget && m_next <= m_highest) {
    auto& s = slot(m_next);
    if (s.frame.empty()) {
      // Best effort never waits for a missing message; reliable waits until the
      // publisher no longer has it (or is gone), then the core counts the gap.
      if (m_limits.reliable && m_next >= m_give_up) break;
      const auto target = m_limits.reliable ? std::min(m_give_up, m_highest + 1) : m_highest + 1;
      // Nothing held at all: jump over the whole run at once (a heartbeat may announce
      // a tail far ahead; stepping through it one by one would never end).
      const auto to = m_present == 0 ? target : m_next + 1;
      if (m_limits.reliable) m_counters.unrecoverable += to - m_next;
      for (std::size_t i = m_partials.size(); i-- > 0;) {
        if (m_partials[i].seq >= m_next && m_partials[i].seq < to) drop_partial(i, true);
      }
      m_skipped += to - m_next;
      m_next = to;
      continue;
    }
    Frame f = std::move(s.frame);
    --m_present;
    ++m_next;
    m_nak_attempts = 0;
    sink.on_data(std::move(f));
    ++n;
  }
  if (m_next > m_highest) m_nak_due = clock::time_point::max();  // nothing missing now
  if (m_bye && !m_bye_reported && m_next > m_bye_last) {
    m_bye_reported = true;
    sink.on_bye(m_source, m_id, m_limits.group ? 0 : m_bye_last);
  }
  return n;
}

bool PublisherStream::take_nak(clock::time_point now, Nak& out, double jitter) {
  if (!m_limits.reliable || !gap_pending()) {
    m_nak_due = clock::time_point::max();
    return false;
  }
  if (m_nak_due == clock::time_point::max()) {
    m_nak_due = now + std::chrono::duration_cast<clock::duration>(nak_backoff * jitter);
    return false;
  }
  if (now < m_nak_due) return false;
  out.count = 0;
  const auto end = std::min(m_highest, m_next + ring_size - 1);
  for (std::uint64_t s = m_next; s <= end && out.count < max_nak_ranges; ++s) {
    if (!slot(s).frame.empty()) continue;
    const auto partial =
        std::find_if(m_partials.begin(), m_partials.end(), [&](const Partial& p) { return p.seq == s; });
    if (partial != m_partials.end()) {
      // Ask only for the fragments still missing, in runs.
      for (std::uint32_t i = 0; i < partial->count && out.count < max_nak_ranges; ++i) {
        if ((partial->bitmap[i / 64] >> (i % 64) & 1) != 0) continue;
        std::uint32_t j = i;
        while (j + 1 < partial->count && (partial->bitmap[(j + 1) / 64] >> ((j + 1) % 64) & 1) == 0) ++j;
        out.ranges[out.count++] = {s, s, i, j};
        i = j;
      }
      continue;
    }
    auto last = s;
    while (last < end && slot(last + 1).frame.empty() &&
           std::none_of(m_partials.begin(), m_partials.end(), [&](const Partial& p) { return p.seq == last + 1; })) {
      ++last;
    }
    out.ranges[out.count++] = {s, last, 0, all_fragments};
    s = last;
  }
  if (out.count == 0) {
    m_nak_due = clock::time_point::max();
    return false;
  }
  ++m_counters.naks_sent;
  ++m_nak_attempts;
  m_nak_due = now + std::chrono::duration_cast<clock::duration>(nak_retry * (1.0 + jitter));
  return true;
}

std::uint64_t PublisherStream::consumed_seq() const noexcept {
  // Messages given up hold no window slot at the publisher any more.
  return m_welcomed ? m_baseline - 1 + m_consumed + m_skipped : 0;
}

}  // namespace rill::detail::udp
