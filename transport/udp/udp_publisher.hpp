// The udp sending side: multicast data to the group from one socket whose unicast
// address is also where subscribers send STATUS and NAKs.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "policies/durability/admission.hpp"
#include "policies/durability/history.hpp"
#include "policies/durability/seq_ranges.hpp"
#include "transport/transport.hpp"
#include "udp_fault.hpp"
#include "udp_options.hpp"
#include "udp_socket.hpp"
#include "udp_window.hpp"
#include "udp_wire.hpp"

namespace rill::detail::udp {

/// Counters beyond PublisherStats, logged when the publisher closes.
struct PublisherCounters {
  std::uint64_t datagrams = 0;
  std::uint64_t naks = 0;
  std::uint64_t retransmits = 0;
  std::uint64_t unavailable = 0;        ///< NAKed sequences already gone from the window
  std::uint64_t history_datagrams = 0;  // sent by unicast from the history (catch-up and NAK answers)
  std::uint64_t history_naked = 0;      // messages answered from the history for a NAK
  std::uint64_t group_datagrams = 0;    // sent by unicast to consumer group members (first sends)
  std::uint64_t group_retransmits = 0;  // member datagrams sent again for a NAK
};

/// See PublisherTransport for the threading rule: one publishing thread.
/// A STATUS's durable request as the delivery core's admission sees it (policies/durability/admission.hpp).
[[nodiscard]] AdmissionRequest admission_request(const Status& s, const DurableRequest& q);

class UdpPublisher final : public PublisherTransport {
 public:
  static Result<std::unique_ptr<PublisherTransport>> create(NodeCore& node, const Endpoint& ep,
                                                            const PublisherConfig& config);
  ~UdpPublisher() override;

  Result<void> send(std::span<const std::byte> envelope, std::uint64_t seq, std::chrono::nanoseconds timeout) override;
  [[nodiscard]] Result<void> reserve(std::chrono::nanoseconds timeout) override;
  void flush() override;
  std::size_t service() override;
  [[nodiscard]] bool needs_idle_service() const noexcept override { return m_options.reliable; }
  Result<std::size_t> wait_for_subscribers(std::size_t n, std::chrono::steady_clock::time_point deadline) override;
  void close(std::uint64_t last_seq) override;
  [[nodiscard]] const PublisherStats& stats() const override { return m_stats; }
  [[nodiscard]] const PublisherCounters& counters() const noexcept { return m_counters; }

 private:
  using clock = std::chrono::steady_clock;
  /// A consumer group member's own stream: its share of the messages goes to it alone
  /// (unicast) under stream sequences 1, 2, 3... of its own, so its NAKs, reordering and
  /// tail detection work as on the multicast; the envelopes keep the publisher's sequence.
  struct Member {
    explicit Member(std::string g);
    std::string group;
    RetransmitWindow window;  // its datagrams, by stream sequence, for its NAKs
    std::uint64_t next = 1;   // next stream sequence
    std::size_t avg_bytes = 256;
    std::deque<SeqRange> in_flight;  // durable group: publisher sequences sent, not acked (send order)
    // The DATA datagram being filled (batching), open in `window`.
    std::span<std::byte> open;
    std::size_t open_len = 0;
    std::uint64_t open_first = 0;
    std::uint32_t open_count = 0;
  };
  /// A consumer group at this publisher. A durable one (persistent publisher and request)
  /// sends what no member could take, and what a departed member had not acknowledged,
  /// to a member later, read back from the log; its position is stored as "group:NAME".
  struct Group {
    std::string name;
    bool durable = false;
    std::size_t next_member = 0;  // round-robin position in m_receivers
    std::deque<SeqRange> resend;  // to send (again) to some member, ascending
    std::unique_ptr<HistoryCursor> cursor;
    std::uint64_t acked = 0;  // the group handled everything up to here
  };
  struct Receiver {
    std::uint64_t subscription_id = 0;
    sockaddr_in addr{};
    PolicyKind policy = PolicyKind::drop_oldest;
    std::uint32_t window = 0;
    std::uint64_t join_seq = 0;  // its WELCOME's next_seq
    std::uint64_t consumed = 0;  // backpressure: it may be sent up to consumed + window
    std::uint64_t received = 0;
    bool matches = false;
    bool reliable = false;
    bool bye_seen = false;
    bool welcomed = false;  // its STATUS says it has our WELCOME
    clock::time_point last_seen;
    // A durable (transient_local/persistent) subscription: the history it asked for goes
    // to it alone, by unicast, from `cursor` until that reaches the live sequence.
    DurabilityKind durability = DurabilityKind::volatile_;
    std::string durable_name;
    std::unique_ptr<HistoryCursor> cursor;
    std::uint64_t lost = 0;          // its WELCOME's: asked for but deleted by retention
    std::uint64_t acked = 0;         // its last acknowledged position (stored in the history)
    std::size_t avg_bytes = 256;     // history envelope size, averaged (paces by bytes)
    std::unique_ptr<Member> member;  // a consumer group member (positions are its stream's)
    [[nodiscard]] bool catching_up() const noexcept { return cursor != nullptr; }
    [[nodiscard]] bool durable() const noexcept { return durability != DurabilityKind::volatile_; }
  };

  UdpPublisher(UdpSocket sock, const UdpOptions& options, const PublisherConfig& config);

  void drain_control(clock::time_point now);
  void auth_rejected(AuthVerdict why, const sockaddr_in& from);
  void handle(std::span<const std::byte> dgram, const sockaddr_in& from, clock::time_point now);
  /// `q`: the durable block, or nullptr.
  void on_status(const Header& h, const Status& s, const DurableRequest* q, const sockaddr_in& from,
                 clock::time_point now);
  void on_nak(const Nak& n, const sockaddr_in& from, clock::time_point now);
  void heartbeat(clock::time_point now, Type type = Type::heartbeat, const sockaddr_in* to = nullptr,
                 std::uint64_t oldest = 0);
  // udp_publisher_history.cpp: durable subscriptions.
  /// Settles a joining subscription's durable request: false (and a REJECT sent) when it
  /// asks for more than is offered; otherwise its start, `lost` and catch-up cursor.
  bool admit(Receiver& r, const Status& s, const DurableRequest* q, const sockaddr_in& from);
  void reject(const Status& s, const DurableRequest& q, DurabilityKind offered, std::string_view reason,
              const sockaddr_in& to);
  void pump_history(unsigned budget);
  void pump_receiver(Receiver& r, unsigned budget);
  /// Sends [cursor, limit) to `r` by unicast, at most about `budget` datagrams; returns the
  /// datagrams sent, or an error when the history cannot be read.
  Result<unsigned> send_history(Receiver& r, HistoryCursor& cursor, std::uint64_t limit, unsigned budget);
  void send_unicast(std::span<std::byte> dgram, const sockaddr_in& to);
  /// Answers a NAK of a durable subscription for messages first..last no longer in the
  /// window from the history; returns the oldest sequence the history still has.
  std::uint64_t serve_from_history(Receiver& r, std::uint64_t first, std::uint64_t last);
  void note_ack(Receiver& r, std::uint64_t seq);
  void flush_acks();
  // udp_publisher_group.cpp: consumer groups.
  /// Makes `r` a member of group `name` (forming the group if new); false when refused.
  bool join_group(Receiver& r, const Status& s, const DurableRequest* q, const sockaddr_in& from);
  [[nodiscard]] bool member_room(const Receiver& r) const noexcept;
  Receiver* pick_member(Group& g);
  void send_to_groups(std::span<const std::byte> envelope, std::uint64_t seq);
  /// Adds one envelope to a member's stream (batched; sent when its datagram closes).
  void member_append(Receiver& r, std::span<const std::byte> envelope, std::uint64_t seq);
  void member_close(Receiver& r);
  void member_send(Receiver& r, std::span<std::byte> dgram);
  void member_acked(Receiver& r, std::uint64_t seq);
  /// Before `r` is dropped: its unacknowledged messages go back to its group.
  void member_left(Receiver& r);
  void member_nak(Receiver& r, const Nak& n, clock::time_point now);
  void member_heartbeats(Type type, bool all);
  void advance_group_ack(Group& g);
  void pump_groups(unsigned budget);
  void flush_members();
  [[nodiscard]] const Receiver* blocking_group() const noexcept;
  [[nodiscard]] bool groups_settled() const noexcept;
  Group* group_of(const Receiver& r) noexcept;
  /// Drops the receivers `pred` selects (their group memberships end first).
  template <class Pred>
  std::size_t drop_receivers(Pred&& pred);
  void maybe_heartbeat(clock::time_point now);
  void close_batch();
  void send_fragments(std::span<const std::byte> envelope, std::uint64_t seq);
  /// Cuts `envelope` into FRAG datagrams of stream sequence `seq` in `window` (the multicast
  /// stream's or a member's); `sent(datagram)` runs after each one is committed.
  template <class Sent>
  void fragment_into(RetransmitWindow& window, std::span<const std::byte> envelope, std::uint64_t seq, Sent sent);
  void send_pending();
  Result<void> wait_for_room(std::uint64_t seq, clock::time_point deadline);
  [[nodiscard]] const Receiver* blocker(std::uint64_t seq) const noexcept;
  void expire(clock::time_point now);
  void refresh();
  /// The next sequence not yet handed to the kernel (a held batch is not sent yet).
  [[nodiscard]] std::uint64_t next_unsent() const noexcept { return m_open_count > 0 ? m_open_first : m_next_seq; }
  [[nodiscard]] std::uint64_t last_sent() const noexcept { return next_unsent() - 1; }

  UdpSocket m_sock;
  UdpOptions m_options;
  PublisherConfig m_config;
  PublisherStats m_stats;
  PublisherCounters m_counters;
  History* m_history = nullptr;   // transient_local / persistent; owned by the Publisher
  std::size_t m_catching_up = 0;  // receivers with a cursor
  std::uint64_t m_last_rejected = 0;
  bool m_acks_pending = false;
  std::vector<std::byte> m_hist_dgram;  // a history datagram being built
  sockaddr_in m_group{};
  RetransmitWindow m_window;
  std::vector<Receiver> m_receivers;
  std::vector<Group> m_groups;
  std::size_t m_group_resend = 0;  // durable groups with something to resend
  FaultInjector m_fault;
  std::vector<std::byte> m_held;  // a control datagram the fault injector reordered
  sockaddr_in m_held_from{};
  // The DATA datagram being filled (batching), open in the window.
  std::span<std::byte> m_open;
  std::size_t m_open_len = 0;
  std::uint64_t m_open_first = 0;
  std::uint32_t m_open_count = 0;
  std::size_t m_unsent = 0;  // committed records at the window's back not yet given to the kernel
  std::uint64_t m_next_seq = 1;
  // Control receive buffers and the sendmmsg/recvmmsg vectors, sized once.
  std::vector<std::byte> m_ctl_bufs;
  std::vector<sockaddr_in> m_ctl_from;
  std::vector<iovec> m_iov;
  std::vector<mmsghdr> m_msgs;
  clock::time_point m_next_hb{};
  clock::duration m_hb_interval{};
  unsigned m_countdown = 0;
  bool m_sent_since_hb = false;
  bool m_has_backpressure = false;
  bool m_bad_logged = false;
  // Authentication of what arrives on our socket (subscribers' control: unicast scope).
  Verifier m_verifier;
  ReplayFilter m_replay;
  bool m_auth_logged = false;
  bool m_group_refused_logged = false;
  bool m_closed = false;
};

template <class Sent>
void UdpPublisher::fragment_into(RetransmitWindow& window, std::span<const std::byte> envelope, std::uint64_t seq,
                                 Sent sent) {
  const auto frag_size = m_options.max_datagram() - frag_header_bytes;
  const auto count = fragment_count(envelope.size(), frag_size);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t offset = std::size_t{i} * frag_size;
    const auto piece = envelope.subspan(offset, std::min(frag_size, envelope.size() - offset));
    auto out = window.open(frag_header_bytes + piece.size());
    const auto n = encode_frag(out, m_config.publisher_id,
                               {.seq = seq,
                                .msg_len = static_cast<std::uint32_t>(envelope.size()),
                                .frag_size = static_cast<std::uint32_t>(frag_size),
                                .index = i,
                                .count = count,
                                .offset = static_cast<std::uint32_t>(offset),
                                .bytes = piece});
    window.commit(n, seq, 1, true, i);
    sent(window.at(window.size() - 1).bytes());
  }
}

}  // namespace rill::detail::udp
