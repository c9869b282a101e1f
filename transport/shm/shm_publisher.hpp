// The shm sending side: owns one segment (one channel of its endpoint's directory), lends
// its chunks, and fans each message out to every subscriber slot's ring under that slot's
// own policy (a consumer group's members share one copy: it goes into one member's ring).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policies/durability/admission.hpp"
#include "policies/durability/history.hpp"
#include "policies/durability/seq_ranges.hpp"
#include "transport/transport.hpp"
#include "shm_directory.hpp"
#include "shm_segment.hpp"

namespace rill::detail::shm {

/// See PublisherTransport for the threading rule: one publishing thread.
class ShmPublisher final : public PublisherTransport {
 public:
  /// Binds the endpoint's directory (or shares the one this Node's publishers hold), creates
  /// this publisher's segment, pre-claims a slot for each registered matching subscription,
  /// and lists the segment as a channel.
  static Result<std::unique_ptr<PublisherTransport>> create(NodeCore& node, const Endpoint& ep,
                                                            const PublisherConfig& config);
  ~ShmPublisher() override;

  Result<void> send(std::span<const std::byte> envelope, std::uint64_t seq, std::chrono::nanoseconds timeout) override;
  Result<LoanedChunk> loan(std::size_t bytes) override;
  void unloan(std::uint32_t handle) noexcept override;
  Result<void> send_loan(std::uint32_t handle, std::span<const std::byte> envelope, std::uint64_t seq,
                         std::chrono::nanoseconds timeout) override;
  [[nodiscard]] Result<void> reserve(std::chrono::nanoseconds timeout) override;
  void flush() override {}
  std::size_t service() override;
  Result<std::size_t> wait_for_subscribers(std::size_t n, std::chrono::steady_clock::time_point deadline) override;
  void close(std::uint64_t last_seq) override;
  [[nodiscard]] const PublisherStats& stats() const override { return m_stats; }

 private:
  // What the publisher knows of one taken-in slot (private memory: never trusted from the segment twice).
  struct Peer {
    bool active = false;
    PolicyKind kind = PolicyKind::drop_oldest;
    // Durable subscriptions: the history still to send (nothing live is sent to it while
    // set). Next to `active`: the fan-out loop reads both for every slot.
    std::unique_ptr<HistoryCursor> cursor;
    std::uint64_t capacity = 0;    // messages the ring may hold for it
    std::uint64_t byte_limit = 0;  // buffer policy
    std::uint64_t head = 0;        // next position to write
    std::uint64_t tail_seen = 0;   // buffer policy: tail up to which sizes were subtracted
    std::uint64_t queued_bytes = 0;
    std::vector<std::uint32_t> sizes;  // buffer policy: bytes at each ring position
    std::uint32_t pid = 0;
    std::uint64_t start = 0;
    std::uint64_t subscription_id = 0;
    bool overflowed = false;
    bool rejected = false;  // refused at take-in; freed when its subscriber leaves
    // The history envelope read but not yet placed, and the acked position (persistent, with a durable name).
    std::vector<std::byte> held;  // an envelope read from the cursor that found no free chunk yet
    std::uint64_t held_seq = 0;
    std::string durable_name;
    bool acks = false;
    std::uint64_t acked = 0;
    std::uint64_t bad_ack = 0;
    // Consumer group member (shm_publisher_group.cpp): its group's index in m_groups,
    // -1 for a fan-out subscription. A durable group remembers what it pushed into this
    // ring and was not acknowledged, in push order (the order acks follow).
    int group = -1;
    std::deque<SeqRange> in_flight;
    std::uint64_t ack_word = 0;  // the member's acked word as last read
  };
  // Slots that named the same group in their request split the messages.
  struct Group {
    std::string name;
    std::uint32_t members = 0;
    std::uint32_t next_member = 0;          // round-robin: the slot tried first
    bool durable = false;                   // persistent publisher and request: redelivery, stored position
    std::deque<SeqRange> resend;            // to push (again) to some member, ascending
    std::unique_ptr<HistoryCursor> cursor;  // reads `resend` from the log
    std::uint64_t acked = 0;                // the group handled everything up to here
  };

  // History envelopes copied into one catching-up slot's ring per publish() (the live
  // path must not stall) and per service() call; the ring's room bounds both.
  static constexpr unsigned history_per_publish = 32;
  static constexpr unsigned history_per_service = 1024;

  ShmPublisher(std::shared_ptr<ShmEndpoint> endpoint, Mapping* map, const ShmOptions& options,
               const PublisherConfig& config);
  Result<std::uint32_t> allocate(std::size_t bytes, std::chrono::nanoseconds timeout, bool may_reclaim = true);
  std::optional<std::uint32_t> scan_class(std::uint32_t c);
  bool reclaim_under_pressure();
  Result<void> publish_chunk(std::uint32_t index, std::uint32_t offset, std::uint32_t size, std::uint64_t seq,
                             std::chrono::nanoseconds timeout);
  Result<void> wait_for_room(std::chrono::nanoseconds timeout);
  bool make_room_oldest(std::uint32_t slot, Peer& p);
  bool make_room_buffer(std::uint32_t slot, Peer& p, std::uint32_t size);
  bool sync_buffer_tail(std::uint32_t slot, Peer& p);
  std::optional<std::uint64_t> tail_of(std::uint32_t slot, Peer& p);
  void evict(std::uint32_t slot, const char* why);
  /// Copies `env` into chunk `index`, held by `slot` alone, and queues it on that slot's ring
  /// (history catch-up and a durable group's redelivery; the caller checked the ring's room).
  void push_copy(std::uint32_t slot, Peer& p, std::uint32_t index, std::span<const std::byte> env, std::uint64_t seq);
  bool pop_oldest(std::uint32_t slot, Peer& p, std::uint64_t t, std::uint64_t n = 1);
  // shm_publisher_roster.cpp: joins, departures, deaths.
  void preclaim(const std::vector<SubscriberRequest>& subs);
  void refresh_roster();
  void take_in(std::uint32_t slot, std::uint64_t owner);
  void retire(std::uint32_t slot);
  void clear_holder_bit(std::uint32_t slot);
  [[nodiscard]] bool bit_still_held(std::uint32_t slot) const;
  void check_liveness();
  void free_left_slots();
  void count_drop(std::uint32_t slot, Peer& p);
  // shm_publisher_history.cpp: durable subscriptions.
  std::optional<std::uint64_t> accept_request(std::uint32_t slot, Peer& p);
  void forget_durable(std::uint32_t slot, Peer& p);
  void linger_for_history();
  void reject(std::uint32_t slot, Peer& p, RejectReason why, std::string_view request);
  void pump_history(unsigned budget);
  bool pump_peer(std::uint32_t slot, Peer& p, unsigned budget);
  void finish_catch_up(Peer& p);
  void take_acks();
  void take_ack(std::uint32_t slot, Peer& p);
  void wake(std::uint32_t slot);
  // shm_publisher_group.cpp: consumer groups.
  std::optional<std::uint64_t> join_group(Peer& p, std::string name, DurabilityKind requested, StartFrom from);
  void leave_group(Peer& p);
  bool has_room(std::uint32_t slot, Peer& p, std::uint32_t size);
  std::uint32_t pick_member(std::size_t g, std::uint32_t size);
  std::uint32_t deliver_to_group(std::size_t g, std::uint32_t size);
  void route_to_groups(std::uint64_t seq, std::uint32_t size, std::uint32_t* targets, std::size_t& n,
                       std::uint64_t& holders);
  [[nodiscard]] std::uint32_t group_blocker();
  void take_member_ack(std::uint32_t slot, Peer& p);
  void advance_group_ack(std::size_t g);
  void pump_groups(unsigned budget);
  [[nodiscard]] bool durable_member(const Peer& p) const noexcept {
    return p.group >= 0 && m_groups[static_cast<std::size_t>(p.group)].durable;
  }

  std::shared_ptr<ShmEndpoint> m_endpoint;  // the directory, shared with the Node's other publishers here
  std::uint32_t m_channel = ~0u;             // its entry in the directory (~0u: not listed)
  Mapping* m_map;
  ShmOptions m_options;
  PublisherConfig m_config;
  std::vector<Peer> m_peers;            // indexed by slot
  std::vector<std::uint32_t> m_active;  // slots being delivered to
  std::vector<std::uint32_t> m_left;    // slots drained, freed once no chunk holds their bit
  std::vector<Group> m_groups;          // a volatile group without members is a free place
  std::vector<std::uint32_t> m_cursor;  // per pool class: where the next free chunk is looked for
  // Per pool class, the chunks sent most recently, oldest first. The oldest is usually
  // consumed by now and its lines are still in some cache; reusing it keeps the
  // working set as small as what is in flight (a fresh chunk is a miss to memory).
  struct WarmRing {
    std::vector<std::uint32_t> slots;
    std::size_t head = 0, count = 0;
  };
  std::vector<WarmRing> m_warm;
  [[nodiscard]] std::uint32_t class_of(std::uint32_t index) const noexcept;
  History* m_history;                 // nullptr: volatile
  std::size_t m_catching_up = 0;      // peers with a history cursor
  std::size_t m_ack_peers = 0;        // peers whose acks are stored
  std::uint64_t m_last_rejected = 0;  // subscription id: a retrying refused one is counted once
  std::uint64_t m_roster_seen = ~0ull;
  std::uint64_t m_next_seq = 1;
  std::size_t m_backpressure_peers = 0;
  std::chrono::steady_clock::time_point m_next_liveness{};
  unsigned m_sends_since_look = 0;
  bool m_closed = false;
  PublisherStats m_stats;
};

}  // namespace rill::detail::shm
