// The sending side of jetstream://: each envelope is published asynchronously on the
// topic's subject with Nats-Msg-Id "<publisher id>-<seq>", with at most `window` publish
// acks outstanding. A message whose ack times out (a node lost, a leader election) is
// sent again with the same id, which the stream de-duplicates.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include "js_connection.hpp"
#include "transport/transport.hpp"

namespace rill::detail::js {

class JsPublisher final : public PublisherTransport {
 public:
  [[nodiscard]] static Result<std::unique_ptr<PublisherTransport>> create(const Endpoint& ep,
                                                                          const PublisherConfig& config);
  ~JsPublisher() override;

  // PublisherTransport: called from the publishing thread only (see transport.hpp).
  Result<void> send(std::span<const std::byte> envelope, std::uint64_t seq, std::chrono::nanoseconds timeout) override;
  [[nodiscard]] Result<void> reserve(std::chrono::nanoseconds timeout) override;
  void flush() override {}
  std::size_t service() override;
  [[nodiscard]] bool needs_idle_service() const noexcept override { return true; }
  Result<std::size_t> wait_for_subscribers(std::size_t n, std::chrono::steady_clock::time_point deadline) override;
  void close(std::uint64_t last_seq) override;
  [[nodiscard]] const PublisherStats& stats() const override { return m_stats; }

 private:
  JsPublisher(JsOptions options, std::string subject, const PublisherConfig& config);
  // nats.c's async ack callback (its own thread): settles or queues a retry.
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure);
  // Waits (resending due retries) until fewer than `limit` are outstanding, or `deadline`.
  bool wait_room(std::size_t limit, std::chrono::steady_clock::time_point deadline);
  // Sends the retries that are due. Publishing thread only; takes m_mu briefly.
  void resend_due();
  Result<void> publish(std::span<const std::byte> envelope, std::uint64_t seq);
  // Publishes the last window of a persistent publisher's log again after a restart:
  // the ones the stream already has are dropped there by their Nats-Msg-Id.
  Result<void> resend_history_tail();

  struct Retry {
    natsMsg* msg = nullptr;
    unsigned attempts = 0;
    std::chrono::steady_clock::time_point due{};
  };

  JsOptions m_options;
  std::string m_subject;
  PublisherConfig m_config;
  std::unique_ptr<JsConnection> m_conn;
  jsPubOptions m_pub_options{};
  PublisherStats m_stats;

  std::mutex m_mu;  // guards everything below; on_ack runs on nats.c's thread
  std::condition_variable m_cv;
  std::size_t m_outstanding = 0;   // published, not yet stored by the stream nor failed for good
  std::deque<Retry> m_retries;     // failed attempts waiting to be sent again
  std::uint64_t m_stored = 0;      // acks received
  std::uint64_t m_duplicates = 0;  // acks that said the stream had the message already
  std::uint64_t m_failed = 0;      // messages the stream refused for good
  std::string m_failure;           // the last refusal, reported by the next send()
};

}  // namespace rill::detail::js
