// The tcp sending side: one publisher (topic) on a shared endpoint (tcp_endpoint.hpp),
// keeping one policy state per matching subscription.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "policies/durability/admission.hpp"
#include "policies/durability/history.hpp"
#include "policies/durability/seq_ranges.hpp"
#include "transport/transport.hpp"
#include "tcp_endpoint.hpp"
#include "tcp_wire.hpp"

namespace rill::detail::tcp {

/// Envelopes per history frame at most.
inline constexpr std::uint32_t history_batch_limit = 1024;

/// Reads up to `max` envelopes below sequence `limit` from `cursor` into `out`: one bare
/// envelope, or a batch frame (up to 256 KiB). Returns how many (0: none readable yet).
Result<std::uint32_t> fill_history_frame(HistoryCursor& cursor, std::uint64_t limit, std::uint32_t max,
                                         std::vector<std::byte>& out);

/// See PublisherTransport for the threading rule: one publishing thread.
/// A SUBSCRIBE as the delivery core's admission sees it (policies/durability/admission.hpp).
[[nodiscard]] AdmissionRequest admission_request(const Subscribe& s);

class TcpPublisher final : public PublisherTransport {
 public:
  static Result<std::unique_ptr<PublisherTransport>> create(NodeCore& node, const Endpoint& ep,
                                                            const PublisherConfig& config);
  ~TcpPublisher() override;

  Result<void> send(std::span<const std::byte> envelope, std::uint64_t seq, std::chrono::nanoseconds timeout) override;
  Result<void> reserve(std::chrono::nanoseconds timeout) override;
  void flush() override;
  std::size_t service() override;
  Result<std::size_t> wait_for_subscribers(std::size_t n, std::chrono::steady_clock::time_point deadline) override;
  void close(std::uint64_t last_seq) override;
  [[nodiscard]] const PublisherStats& stats() const override;

  // For the endpoint (its mutex held).
  [[nodiscard]] std::uint64_t id() const noexcept { return m_config.publisher_id; }
  [[nodiscard]] const std::string& topic() const noexcept { return m_config.topic; }
  void post(TcpEvent event) { m_inbox.push_back(std::move(event)); }
  /// A volatile publisher's state all lives under the endpoint's lock: whichever thread
  /// holds it acts on an event for it at once (the quiet publisher's greetings).
  [[nodiscard]] bool acts_at_once() const noexcept { return m_history == nullptr; }
  void act(const TcpEvent& event);

 private:
  // Consumer group: its members split the messages, each to one member. A durable
  // group (persistent publisher and request) sends a member's unacknowledged messages
  // to another member when it leaves or dies, and stores the group's position.
  struct Group {
    std::string name;
    std::size_t next_member = 0;            // round-robin position
    std::deque<SeqRange> resend;            // to send (again) to some member, ascending
    std::unique_ptr<HistoryCursor> cursor;  // reads `resend`
    std::uint64_t acked = 0;                // the group handled everything up to here
    bool durable = false;
  };
  // A subscription whose prefix matches our topic. Its routing id, policy, liveness and
  // backpressure window live in the endpoint's TcpSubscription (shared by our neighbours).
  struct Peer {
    std::shared_ptr<TcpSubscription> sub;
    bool dead = false;
    bool bye_seen = false;  // it answered our BYE
    // Durability: a late joiner or durable subscription is sent history first, by its
    // cursor, and nothing live until the cursor reaches the live sequence.
    std::unique_ptr<HistoryCursor> cursor;
    std::vector<std::byte> held;  // a history frame the pipe had no room for (sent first next time)
    std::uint32_t held_count = 0;
    std::string durable_name;        // persistent: acks are stored under it
    std::string group;               // consumer group member ("" = fan-out)
    std::deque<SeqRange> in_flight;  // durable group member: sent, not yet acked (send order)
    std::uint64_t acked = 0;         // highest seq it acknowledged
    [[nodiscard]] bool catching_up() const noexcept { return cursor != nullptr || held_count > 0; }
  };

  TcpPublisher(std::shared_ptr<TcpEndpoint> ep, const PublisherConfig& config);

  // Lock held (every public method takes the endpoint's mutex first).
  void drain_control();
  void process_inbox();
  void join(const std::shared_ptr<TcpSubscription>& sub);
  bool send_control(const std::string& routing_id, std::span<const std::byte> frame);
  Result<void> reserve_locked(std::chrono::nanoseconds timeout);
  void flush_locked();
  Result<void> wait_for_credit(std::int64_t needed, std::chrono::steady_clock::time_point deadline);
  [[nodiscard]] const Peer* blocking_peer(std::int64_t needed) const noexcept;
  void send_frame(std::span<const std::byte> frame, std::uint32_t envelopes, std::uint64_t first_seq);
  void append_to_batch(std::span<const std::byte> envelope, std::uint64_t seq);
  void remove_dead_peers();
  // Durability (tcp_publisher_history.cpp).
  std::uint64_t history_start(Peer& peer, const Subscribe& s, std::uint64_t& lost);
  void reject(const std::string& routing_id, const Subscribe& s, DurabilityKind offered, std::string_view reason);
  void pump_history(bool publishing);
  bool pump_peer(Peer& peer, unsigned frame_budget);
  bool send_to(Peer& peer, std::span<const std::byte> frame, std::uint32_t envelopes);
  void handle_ack(Peer& peer, const Ack& ack);
  // Consumer groups (tcp_publisher_group.cpp).
  Group& join_group(Peer& peer, const Subscribe& s, DurabilityKind offered);
  Peer* pick_member(Group& g, std::uint32_t envelopes);
  void send_to_groups(std::span<const std::byte> frame, std::uint32_t envelopes, std::uint64_t first_seq);
  void member_acked(Peer& peer, std::uint64_t seq);
  void member_left(Peer& peer);
  void pump_groups();
  void advance_group_ack(Group& g);
  [[nodiscard]] const Peer* blocking_group(std::int64_t needed) const noexcept;

  std::shared_ptr<TcpEndpoint> m_ep;
  void* m_sock;  // the endpoint's socket
  PublisherConfig m_config;
  PublisherStats m_stats;
  mutable PublisherStats m_stats_copy;  // what stats() hands out, taken under the lock
  std::vector<TcpEvent> m_inbox;        // from the endpoint, for this thread to act on
  std::vector<TcpEvent> m_events;       // the inbox being worked through
  std::vector<Peer> m_peers;
  History* m_history = nullptr;
  std::size_t m_catching_up = 0;  // peers with a cursor or a held frame
  std::vector<Group> m_groups;
  std::size_t m_group_members = 0;       // peers in some group
  std::uint64_t m_batch_first = 0;       // sequence of the first envelope in m_batch
  std::vector<std::byte> m_group_frame;  // a group's history frame being built
  std::uint64_t m_last_rejected = 0;
  std::uint64_t m_next_seq = 1;
  // Batching: envelopes held back in one frame (sent before any new subscription is
  // registered, so a batch only ever goes to the subscriptions it was built for).
  std::vector<std::byte> m_batch;
  std::uint32_t m_batch_count = 0;
  unsigned m_service_countdown = 0;
  bool m_has_backpressure = false;  // any matching peer uses backpressure
  bool m_closed = false;
};

}  // namespace rill::detail::tcp
