// SubscriberCore: policy queue, verification, gap detection and credit for one subscription.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "policies/inbound_queue.hpp"
#include "transport/transport.hpp"
#include "policies/durability/delivered_store.hpp"
#include "policies/durability/group_ledger.hpp"
#include "rill/subscriber.hpp"

namespace rill {
class DeadLetterLog;
}  // namespace rill

namespace rill::detail {

/// A durable subscription's exactly-once state: its own file, or (a consumer group
/// member) the ledger it shares with the other members on its host.
struct DurableState {
  std::optional<DeliveredStore> store;
  std::optional<GroupLedger> ledger;
};

/// Single-threaded: everything runs on the thread that polls.
class SubscriberCore final : public FrameSink {
 public:
  SubscriberCore(std::shared_ptr<NodeCore> node, std::unique_ptr<SubscriberTransport> transport,
                 SubscriberOptions options, std::uint64_t id, DurableState durable = {});
  ~SubscriberCore();

  std::size_t poll(Subscriber::Handler handler, std::size_t limit);
  std::size_t poll(Subscriber::CheckedHandler handler, std::size_t limit);
  std::size_t wait_poll(Subscriber::Handler handler, std::size_t limit, std::chrono::nanoseconds timeout);
  std::size_t wait_poll(Subscriber::CheckedHandler handler, std::size_t limit, std::chrono::nanoseconds timeout);
  [[nodiscard]] Result<void> ack(std::uint64_t publisher_id, std::uint64_t seq);
  std::optional<Sample> take();
  std::optional<Sample> wait_take(std::chrono::nanoseconds timeout);
  [[nodiscard]] const SubscriberStats& stats() noexcept;
  [[nodiscard]] std::uint64_t id() const noexcept { return m_id; }

  // FrameSink: called from inside m_transport->drain().
  void on_data(Frame&& frame) override;
  void on_welcome(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t next_seq, std::uint64_t lost,
                  std::uint64_t instance) override;
  void on_reject(std::uint32_t source, std::uint64_t publisher_id, DurabilityKind offered, DurabilityKind requested,
                 std::string_view reason) override;
  void on_bye(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t last_seq) override;
  void on_lost(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t last_seq) override;
  void on_bad_frame(std::uint32_t source, Errc code, std::size_t size) override;
  void on_security_error(std::uint32_t source, std::string_view reason) override;
  void on_auth_rejected(std::uint32_t source, std::size_t size, std::string_view why) override;

 private:
  struct PublisherState {
    std::uint64_t id = 0;
    std::uint64_t expected = 1;  // next sequence the handler should see
    std::uint64_t last_seq = 0;  // from BYE, once it left
    bool left = false;
    bool counted = false;            // in stats().publishers (one loaded from the state file is not, yet)
    bool has_source = false;         // `source` is known (it greeted us or sent data)
    std::uint32_t source = 0;        // the connection it is on (where its acks go)
    std::uint64_t instance = 0;      // the endpoint instance that greeted us for it
    std::uint32_t pending_credit = 0;  // backpressure: window slots to give back to it
    std::uint64_t ack_want = 0;      // durable: position to acknowledge
    std::uint64_t ack_sent = 0;      // durable: position the transport took
    DeliveredEntry* slot = nullptr;  // durable: its entry in the state file (re-checked: slots are reused)
  };
  struct SourceState {
    std::uint64_t publisher_id = 0;  // the publisher greeted last on this connection
    std::uint64_t instance = 0;      // the endpoint instance behind this connection (0: none yet)
    std::uint64_t replaced_by = 0;   // an instance that replaced an earlier one (a restart)
    std::uint32_t pending_credit = 0;  // slots of frames whose publisher is unknown
  };

  void deliver(Frame& frame, Subscriber::CheckedHandler handler);
  // Calls the handler for a sequenced message: state file, retries, dead letters, acks.
  void handle(PublisherState& p, const MessageView& view, Subscriber::CheckedHandler handler);
  void run_with_retries(const MessageView& view, Subscriber::CheckedHandler handler);
  void dead_letter(const MessageView& view, const std::string& reason, unsigned attempts);
  void handled(PublisherState& p, DeliveredEntry* e, std::uint64_t seq);
  // A group member: looks the message up in the shared ledger; false when another
  // member finished it (acknowledged and skipped here).
  bool claim_in_group(PublisherState& p, const MessageView& view, GroupLedger::Claim& claim);
  [[nodiscard]] bool durable() const noexcept { return m_store || m_ledger; }
  Result<void> ack_handled(PublisherState* p, std::uint64_t publisher_id, std::uint64_t seq);
  DeliveredEntry& durable_slot(PublisherState& p);
  void load_state();
  void flush_acks();
  void maybe_flush_acks();
  PublisherState* find_publisher(std::uint64_t id);
  // Verifies and sequences one frame; the view's bytes may be the realignment scratch.
  std::optional<MessageView> accept(Frame& frame);
  void idle(std::chrono::steady_clock::time_point deadline, unsigned& rounds);
  void look_at_policy_state();
  PublisherState& publisher(std::uint64_t id, std::uint64_t first_seq);
  void report_gap(PublisherState& p, std::uint64_t first, std::uint64_t last);
  void forget_oldest_if_full();
  void credit(std::uint32_t source);
  void credit(PublisherState& p);
  void return_window_slot(std::uint32_t source, PublisherState* p = nullptr);
  void settle_idle();
  void drain_all();  // takes in everything that has arrived (up to the budget)  // queue empty: return credit, count
                     // tails of departed publishers
  std::span<const std::byte> aligned(std::span<const std::byte> bytes);

  std::shared_ptr<NodeCore> m_node;
  std::unique_ptr<SubscriberTransport> m_transport;
  SubscriberOptions m_options;
  std::uint64_t m_id;
  InboundQueue m_queue;
  SubscriberStats m_stats;
  std::vector<PublisherState> m_publishers;
  std::size_t m_last_publisher = 0;  // index cache: most messages come from the same one
  std::vector<SourceState> m_sources;
  struct Departed {
    std::uint64_t id = 0;
    std::uint64_t last_seq = 0;
  };
  std::vector<Departed> m_departed;  // publishers that said BYE, oldest first
  std::uint32_t m_credit_batch = 1;
  std::size_t m_drain_budget = 64;
  std::chrono::steady_clock::time_point m_last_drain{};
  unsigned m_since_look = 0;
  std::unique_ptr<std::byte[]> m_scratch;  // realignment buffer, 8-byte aligned (operator new[])
  std::size_t m_scratch_size = 0;
  unsigned m_service_countdown = 0;
  unsigned m_idle_polls = 0;
  bool m_overflow_reported = false;
  bool m_malformed_logged = false;
  bool m_auth_logged = false;
  bool m_any_left = false;
  [[nodiscard]] bool queue_empty() const noexcept { return m_direct ? m_direct_frame.empty() : m_queue.empty(); }
  Frame next_frame() noexcept { return m_direct ? std::move(m_direct_frame) : m_queue.pop(); }

  Frame m_direct_frame;  // direct mode: the one frame taken from the transport, not yet delivered
  std::chrono::steady_clock::time_point m_spin_until{};
  bool m_direct = false;
  bool m_trusted = false;
  bool m_group = false;
  std::vector<std::uint64_t> m_rejected_by;  // publishers that refused us (reported once each)  // a consumer group
                                             // member: other members get the messages in between
  std::optional<DeliveredStore> m_store;     // durable: exactly-once state
  std::optional<GroupLedger> m_ledger;       // durable group member: the members' shared state
  bool m_acks_due = false;
  bool m_sync_failed_logged = false;
  std::uint32_t m_unacked = 0;  // messages handled since the last ACK round
  std::chrono::steady_clock::time_point m_last_ack{};
  std::shared_ptr<DeadLetterLog> m_dlq;  // opened at the first dead letter (shared_ptr: type-erased deleter)
  bool m_failure_logged = false;  // skip the verifier (shm ?verify=0)  // the transport queues per policy (shm); the
                                  // core takes one at a time
};

}  // namespace rill::detail
