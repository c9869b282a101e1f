// Consumer groups on the udp publisher (PROTOCOL.md 10.12): subscriptions sharing a group
// name split the messages, each message to one member (round-robin among those with
// room). A member does not take the multicast: its share goes to it alone, by unicast, on
// a stream of its own (stream sequences 1, 2, 3...; the envelopes inside keep the
// publisher's id and sequence), so NAKs, reordering and tail heartbeats work as on the
// multicast. A durable group (persistent publisher, persistent request) keeps what each
// member has not acknowledged; when a member leaves or dies, that goes to the other
// members, read back from the log, and the group's position is stored as "group:NAME".
#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "base/logging.hpp"
#include "udp_publisher.hpp"

namespace rill::detail::udp {

namespace {

// A member's retransmit window, and what may be in flight to it (sent, not reported
// received): in flight always fits the window (so every NAK can be answered), its
// subscriber's control socket buffer and its reorder ring.
constexpr std::size_t member_window_bytes = 8u << 20;
constexpr std::size_t member_window_records = 16384;
constexpr std::size_t member_flight_bytes = 2u << 20;
constexpr std::uint64_t member_flight_min = 16;
constexpr std::uint64_t member_flight_max = 8192;

}  // namespace

UdpPublisher::Member::Member(std::string g) : group(std::move(g)), window(member_window_bytes, member_window_records) {}

UdpPublisher::Group* UdpPublisher::group_of(const Receiver& r) noexcept {
  if (!r.member) return nullptr;
  const auto it =
      std::find_if(m_groups.begin(), m_groups.end(), [&](const Group& g) { return g.name == r.member->group; });
  return it == m_groups.end() ? nullptr : &*it;
}

bool UdpPublisher::join_group(Receiver& r, const Status& s, const DurableRequest* q, const sockaddr_in& from) {
  if (!m_options.reliable) {
    // The subscriber refuses a group over best effort when it is created; one that asks
    // anyway is not served (a share with losses nobody redelivers is not a group).
    if (!m_group_refused_logged) {
      m_group_refused_logged = true;
      log().warn("publisher {:016x}: consumer group members need reliable=1; subscription {:016x} ignored",
                 m_config.publisher_id, s.subscription_id);
    }
    return false;
  }
  const auto offered = m_history != nullptr ? m_history->offered() : DurabilityKind::volatile_;
  if (q != nullptr) {
    const auto requested = static_cast<DurabilityKind>(q->kind);
    if (requested > offered) {
      reject(s, *q, offered, "the publisher offers less durability than requested", from);
      return false;
    }
    r.durability = requested;
    r.durable_name = std::string(q->name);
  }
  r.member = std::make_unique<Member>(std::string(s.group));
  r.join_seq = 1;  // its own stream
  r.consumed = r.received = 0;
  if (group_of(r) != nullptr) return true;
  Group& g = m_groups.emplace_back();
  g.name = r.member->group;
  g.durable = m_history != nullptr && offered == DurabilityKind::persistent && q != nullptr &&
              q->kind == static_cast<std::uint8_t>(DurabilityKind::persistent);
  g.acked = m_next_seq - 1;
  if (g.durable) {
    const auto start = start_durable_group(*m_history, static_cast<StartFrom>(q->from), g.name, m_next_seq, g.resend);
    if (!g.resend.empty()) ++m_group_resend;
    g.acked = start.acked;
    if (start.lost > 0) {
      log().warn("publisher {:016x}: group '{}' starts at {}: {} messages it had not handled were deleted by retention",
                 m_config.publisher_id, g.name, start.acked + 1, start.lost);
    }
  }
  log().info("publisher {:016x}: consumer group '{}' formed ({}; {} messages to catch up)", m_config.publisher_id,
             g.name, g.durable ? "durable" : "volatile", g.resend.empty() ? 0 : m_next_seq - g.resend.front().first);
  return true;
}

bool UdpPublisher::member_room(const Receiver& r) const noexcept {
  // (Not waiting for its STATUS to say it has the WELCOME: that went to the same socket
  // first; data it drops before the WELCOME shows as a gap at the next tail heartbeat.)
  if (!r.matches) return false;
  const auto& m = *r.member;
  const auto flight = std::clamp<std::uint64_t>(member_flight_bytes / std::max<std::size_t>(m.avg_bytes, 1),
                                                member_flight_min, member_flight_max);
  if (m.next - 1 - r.received >= flight) return false;
  return r.policy != PolicyKind::backpressure || m.next <= r.consumed + r.window;
}

UdpPublisher::Receiver* UdpPublisher::pick_member(Group& g) {
  const auto n = m_receivers.size();
  for (std::size_t i = 0; i < n; ++i) {
    const auto at = (g.next_member + i) % n;
    auto& r = m_receivers[at];
    if (!r.member || r.member->group != g.name || !member_room(r)) continue;
    g.next_member = at + 1;
    return &r;
  }
  return nullptr;
}

const UdpPublisher::Receiver* UdpPublisher::blocking_group() const noexcept {
  // A volatile group with a backpressure member holds publish() while none of its
  // members has room (a durable group never does: what no member can take now is read
  // back from the log later; a volatile one without backpressure drops it, counted).
  for (const auto& g : m_groups) {
    if (g.durable) continue;
    const Receiver* full = nullptr;
    bool room = false;
    for (const auto& r : m_receivers) {
      if (!r.member || r.member->group != g.name || !r.matches) continue;
      if (member_room(r)) {
        room = true;
        break;
      }
      if (r.policy == PolicyKind::backpressure) full = &r;
    }
    if (!room && full != nullptr) return full;
  }
  return nullptr;
}

void UdpPublisher::send_to_groups(std::span<const std::byte> envelope, std::uint64_t seq) {
  for (auto& g : m_groups) {
    if (Receiver* r = pick_member(g)) {
      member_append(*r, envelope, seq);
    } else if (g.durable) {
      if (g.resend.empty()) ++m_group_resend;
      add_range(g.resend, seq, seq);  // read back from the log when a member has room
    } else {
      ++m_stats.peer_drops;  // a volatile group with no member able to take it
    }
  }
}

void UdpPublisher::member_send(Receiver& r, std::span<std::byte> dgram) {
  mark_group(dgram);
  if (!m_sock.send_to(dgram, r.addr) && (errno == EAGAIN || errno == ENOBUFS)) {
    pollfd p{m_sock.fd(), POLLOUT, 0};
    ::poll(&p, 1, 5);
    m_sock.send_to(dgram, r.addr);  // a lost one is NAKed back from the member's window
  }
  ++m_counters.group_datagrams;
}

void UdpPublisher::member_close(Receiver& r) {
  auto& m = *r.member;
  if (m.open_count == 0) return;
  encode_data_header(m.open, m_config.publisher_id, m.open_first, m.open_count);
  m.window.commit(m.open_len, m.open_first, m.open_count, false, 0);
  m.open_count = 0;
  auto& rec = m.window.at(m.window.size() - 1);
  member_send(r, rec.bytes());
}

void UdpPublisher::member_append(Receiver& r, std::span<const std::byte> envelope, std::uint64_t seq) {
  auto& m = *r.member;
  m.avg_bytes = (m.avg_bytes * 7 + envelope.size()) / 8;
  if (m.in_flight.empty() && m.open_count == 0 && m.next == 1) {
    log().debug("publisher {:016x}: group '{}' member {:016x} gets its first message", m_config.publisher_id, m.group,
                r.subscription_id);
  }
  if (auto* g = group_of(r); g != nullptr && g->durable) append_range(m.in_flight, seq, seq);
  const auto max = m_options.max_datagram();
  const auto need = entry_bytes(envelope.size());
  const auto stream_seq = m.next++;
  if (data_header_bytes + need > max) {
    member_close(r);
    fragment_into(m.window, envelope, stream_seq, [&](std::span<std::byte> datagram) { member_send(r, datagram); });
    return;
  }
  if (m.open_count > 0 && m.open_len + need > max) member_close(r);
  if (m.open_count == 0) {
    m.open = m.window.open(max);
    m.open_len = data_header_bytes;
    m.open_first = stream_seq;
  }
  m.open_len = append_entry(m.open, m.open_len, envelope);
  if (++m.open_count >= m_config.batch_messages || m.open_len >= m_config.batch_bytes) member_close(r);
}

void UdpPublisher::flush_members() {
  for (auto& r : m_receivers) {
    if (r.member) member_close(r);
  }
}

void UdpPublisher::member_acked(Receiver& r, std::uint64_t seq) {
  // The last message it handled (any change is news: it may be a lower sequence than
  // before, a departed member's message given to it). Everything sent to it up to and
  // including that one, in send order, is acknowledged.
  if (seq == 0 || seq == r.acked) return;
  if (seq > last_sent()) {
    ++m_stats.bad_control;
    return;
  }
  r.acked = seq;
  ++m_stats.acks;
  auto& runs = r.member->in_flight;
  const auto hit =
      std::find_if(runs.begin(), runs.end(), [&](const SeqRange& x) { return seq >= x.first && seq <= x.last; });
  if (hit == runs.end()) return;  // not (or no longer) in flight to it: a late, repeated STATUS
  if (seq == hit->last) {
    runs.erase(runs.begin(), std::next(hit));
  } else {
    hit->first = seq + 1;
    runs.erase(runs.begin(), hit);
  }
  if (auto* g = group_of(r)) advance_group_ack(*g);
}

void UdpPublisher::member_left(Receiver& r) {
  auto* g = group_of(r);
  if (g == nullptr) return;
  std::uint64_t pending = 0;
  if (!r.member->in_flight.empty() && g->resend.empty()) ++m_group_resend;
  for (const auto& x : r.member->in_flight) {
    add_range(g->resend, x.first, x.last);
    pending += x.last - x.first + 1;
  }
  r.member->in_flight.clear();
  if (pending > 0) {
    log().info(
        "publisher {:016x}: group '{}' member {:016x} left with {} unacknowledged messages; they go to another member",
        m_config.publisher_id, g->name, r.subscription_id, pending);
  }
  const bool others = std::any_of(m_receivers.begin(), m_receivers.end(), [&](const Receiver& x) {
    return &x != &r && x.member && x.member->group == g->name;
  });
  if (!others && !g->durable) {
    m_groups.erase(m_groups.begin() + (g - m_groups.data()));  // a durable group keeps its place
  }
}

void UdpPublisher::member_nak(Receiver& r, const Nak& n, clock::time_point now) {
  auto& m = *r.member;
  member_close(r);  // a NAK may ask for what is still batched
  const auto oldest = m.window.oldest_seq(m.next);
  bool unavailable = false;
  for (std::uint16_t i = 0; i < n.count; ++i) {
    auto range = n.ranges[i];
    if (range.first < oldest) {
      unavailable = true;
      m_counters.unavailable += std::min(range.last + 1, oldest) - range.first;
      range.first = oldest;
    }
    range.last = std::min(range.last, m.next - 1);
    if (range.first > range.last) continue;
    m.window.find(range.first, range.last, range.frag_first, range.frag_last, [&](RetransmitWindow::Record& rec) {
      if (now - rec.last_resent < std::chrono::microseconds(1500)) return;
      rec.last_resent = now;
      mark_retransmit(rec.bytes());
      mark_group(rec.bytes());
      if (m_sock.send_to(rec.bytes(), r.addr)) ++m_counters.group_retransmits;
    });
  }
  if (unavailable) {
    // Its stream's window moved on (it fell too far behind): it gives those up.
    std::array<std::byte, 32> buf;
    const auto len = encode_heartbeat(buf, Type::heartbeat, m_config.publisher_id, flag_reliable | flag_group,
                                      {m.next, std::max<std::uint64_t>(1, std::min(m.next, oldest))});
    m_sock.send_to(std::span(buf).first(len), r.addr);
  }
}

void UdpPublisher::member_heartbeats(Type type, bool all) {
  // Each member's stream has its own tail: a member that lost the last datagram sent to
  // it learns it here (`all`: BYE to every member; otherwise only those behind).
  std::array<std::byte, 32> buf;
  for (auto& r : m_receivers) {
    if (!r.member) continue;
    auto& m = *r.member;
    if (!all && r.received + 1 >= m.next) continue;
    const auto oldest = m.window.oldest_seq(m.next);
    const auto len = encode_heartbeat(buf, type, m_config.publisher_id, flag_reliable | flag_group,
                                      {m.next, std::max<std::uint64_t>(1, std::min(m.next, oldest))});
    m_sock.send_to(std::span(buf).first(len), r.addr);
  }
}

void UdpPublisher::advance_group_ack(Group& g) {
  auto low = m_next_seq;
  if (!g.resend.empty()) low = std::min(low, g.resend.front().first);
  for (const auto& r : m_receivers) {
    if (!r.member || r.member->group != g.name) continue;
    for (const auto& x : r.member->in_flight) low = std::min(low, x.first);
  }
  if (advance_group_position(g.acked, low, g.durable ? m_history : nullptr, g.name) && g.durable) {
    m_acks_pending = true;  // stored by the next service(), not on the receive path
  }
}

void UdpPublisher::pump_groups(unsigned budget) {
  for (auto& g : m_groups) {
    if (!g.durable || g.resend.empty()) continue;
    unsigned sent = 0;
    while (sent < budget && !g.resend.empty()) {
      auto& run = g.resend.front();
      Receiver* r = pick_member(g);
      if (r == nullptr) break;
      if (!g.cursor || g.cursor->position() != run.first) {
        auto cursor = m_history->cursor(run.first);
        if (!cursor) {
          log().error("publisher {:016x}: group '{}' cannot read the log at {}: {}", m_config.publisher_id, g.name,
                      run.first, cursor.error().message());
          break;
        }
        g.cursor = std::move(*cursor);
      }
      // One member takes a run of messages while it has room (fewer datagrams).
      bool progressed = false;
      while (sent < budget && run.first <= run.last && member_room(*r)) {
        auto next = g.cursor->next(run.last + 1);
        if (!next) {
          log().error("publisher {:016x}: group '{}': {}", m_config.publisher_id, g.name, next.error().message());
          g.cursor.reset();
          break;
        }
        if (!*next) {
          // Deleted by retention meanwhile: nothing left of this run; otherwise not written yet.
          if (g.cursor->position() > run.last) run.first = run.last + 1;
          break;
        }
        const auto seq = g.cursor->position() - 1;
        member_append(*r, **next, seq);
        ++m_stats.redelivered;
        ++sent;
        progressed = true;
        run.first = seq + 1;
      }
      if (run.first > run.last) {
        g.resend.pop_front();
        continue;
      }
      if (!progressed || !g.cursor) break;
    }
    if (g.resend.empty()) --m_group_resend;
    flush_members();
    advance_group_ack(g);
  }
}

bool UdpPublisher::groups_settled() const noexcept {
  // At close: nothing left to hand a member, nothing a durable member has not acknowledged.
  // (What waits for a group with no member left stays in the log for its next members.)
  for (const auto& g : m_groups) {
    if (!g.durable || g.resend.empty()) continue;
    if (std::any_of(m_receivers.begin(), m_receivers.end(),
                    [&](const Receiver& r) { return r.member && r.member->group == g.name; })) {
      return false;
    }
  }
  return std::all_of(m_receivers.begin(), m_receivers.end(),
                     [](const Receiver& r) { return !r.member || r.member->in_flight.empty(); });
}

}  // namespace rill::detail::udp
