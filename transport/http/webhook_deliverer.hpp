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
};

/// What the deliverer did.
struct DeliveryStats {
  std::uint64_t taken = 0;          ///< messages taken from the subscriber
  std::uint64_t delivered = 0;      ///< answered 2xx
  std::uint64_t attempts = 0;       ///< POSTs started
  std::uint64_t retries = 0;        ///< of those, repeats
  std::uint64_t dead_lettered = 0;  ///< written to the dead-letter log
  std::uint64_t pending = 0;        ///< in the window now
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
  /// Dead-letters everything unfinished with reason "shutdown" (nothing is lost silently).
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

  DeliveryOptions m_options;
  void* m_multi = nullptr;  // CURLM*
  std::vector<std::unique_ptr<Delivery>> m_slots;
  std::FILE* m_dead_letters = nullptr;
  std::mt19937_64 m_rng{std::random_device{}()};
  DeliveryStats m_stats;
  std::size_t m_active = 0;  // transfers in curl now
};

}  // namespace rill::http
