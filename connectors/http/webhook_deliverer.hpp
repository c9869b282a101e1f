// WebhookDeliverer: POSTs each message of a rill::Subscriber to a URL (libcurl multi),
// signed the Standard Webhooks way, retried on a schedule, dead-lettered after the last try.
// Its window of unfinished deliveries carries backpressure: while it is full the
// subscriber is not polled, so a backpressure subscription slows the publisher.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "retry_schedule.hpp"
#include "rill/subscriber.hpp"
#include "signature.hpp"

namespace rill::http {

/// Where and how to deliver; fill with designated initializers.
struct DeliveryOptions {
  std::string url{};              ///< http:// or https:// (certificates verified)
  std::vector<Secret> secrets{};  ///< sign with each (key rotation); empty: unsigned
  RetrySchedule schedule = RetrySchedule::standard();
  std::chrono::milliseconds timeout{15'000};                 ///< per attempt; a 2xx must arrive within it
  std::size_t window = 16;                                   ///< messages in flight or waiting for a retry
  std::string dead_letter_path = "rill-dead-letters.jsonl";  ///< JSON lines, appended
  std::string ca_file{};                                     ///< extra trusted CA bundle (PEM), e.g. a private CA
  /// Durable delivery: the subscriber is durable with auto_ack = false and handled_on_ack.
  /// A message is acknowledged (and so counts as handled) only once its POST got a 2xx or
  /// it was dead-lettered (the dead-letter line fsync'ed first); acks are cumulative, so
  /// each publisher's contiguous prefix of finished deliveries is acknowledged. shutdown()
  /// leaves unfinished ones to the next run instead of dead-lettering them.
  bool ack_finished = false;
};

/// What the deliverer did.
struct DeliveryStats {
  std::uint64_t taken = 0;            ///< messages taken from the subscriber
  std::uint64_t delivered = 0;        ///< answered 2xx
  std::uint64_t attempts = 0;         ///< POSTs started
  std::uint64_t retries = 0;          ///< of those, repeats
  std::uint64_t dead_lettered = 0;    ///< written to the dead-letter log
  std::uint64_t pending = 0;          ///< in the window now
  std::uint64_t acked = 0;            ///< ack_finished: messages acknowledged to the subscriber
  std::uint64_t ack_errors = 0;       ///< ack_finished: acks the subscriber refused (logged)
  std::uint64_t left_unfinished = 0;  ///< ack_finished: unfinished at shutdown(), redelivered next run
};

/// Single-threaded: create, then call step() from one thread.
class WebhookDeliverer {
 public:
  [[nodiscard]] static Result<std::unique_ptr<WebhookDeliverer>> create(DeliveryOptions options);
  ~WebhookDeliverer();
  WebhookDeliverer(const WebhookDeliverer&) = delete;
  WebhookDeliverer& operator=(const WebhookDeliverer&) = delete;

  /// Takes messages while the window has room, starts due attempts, waits up to
  /// `max_wait` for progress; returns how many messages finished (delivered or dead-lettered).
  std::size_t step(Subscriber& sub, std::chrono::milliseconds max_wait);
  /// Dead-letters everything unfinished with reason "shutdown" (nothing is lost silently);
  /// with ack_finished, leaves it unacknowledged instead (the next run delivers it again).
  void shutdown();
  [[nodiscard]] const DeliveryStats& stats() const noexcept { return m_stats; }

 private:
  struct Delivery;
  explicit WebhookDeliverer(DeliveryOptions options);
  void take(const MessageView& m);
  void start_attempt(Delivery& d);
  std::size_t collect_finished();
  void finish(Delivery& d, std::string_view reason);
  void dead_letter(Delivery& d, std::string_view reason);
  void mark_done(const Delivery& d);
  void ack_done(Subscriber& sub);

  // ack_finished: messages taken and not yet acknowledged, in the order they were taken
  // (per publisher that is sequence order).
  struct Taken {
    std::uint64_t publisher = 0;
    std::uint64_t seq = 0;
    bool done = false;
  };

  DeliveryOptions m_options;
  void* m_multi = nullptr;  // CURLM*
  std::vector<std::unique_ptr<Delivery>> m_slots;
  std::FILE* m_dead_letters = nullptr;
  std::mt19937_64 m_rng{std::random_device{}()};
  DeliveryStats m_stats;
  std::size_t m_active = 0;  // transfers in curl now
  std::vector<Taken> m_taken;
  std::vector<std::uint64_t> m_blocked;  // ack_done(): publishers with an unfinished delivery before
};

}  // namespace rill::http
