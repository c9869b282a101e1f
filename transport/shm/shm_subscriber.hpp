// The shm receiving side: one slot in each publisher's segment; the slot's ring is
// this subscription's policy queue, and received views point into the segment.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "transport/transport.hpp"
#include "shm_segment.hpp"

namespace rill::detail::shm {

/// See SubscriberTransport for the threading rule: one polling thread.
class ShmSubscriber final : public SubscriberTransport {
 public:
  static Result<std::unique_ptr<SubscriberTransport>> create(std::span<const Endpoint> eps,
                                                             const SubscriberConfig& config);
  ~ShmSubscriber() override;

  std::size_t drain(FrameSink& sink, std::size_t max) override;
  void wait(std::chrono::nanoseconds timeout) override;
  bool consumed(std::uint32_t, std::uint64_t, std::uint32_t) override { return true; }  // the ring's tail is the window
  bool ack(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t seq) override;
  void service(std::chrono::steady_clock::time_point now) override;
  [[nodiscard]] bool applies_policy() const noexcept override { return true; }
  [[nodiscard]] bool trusted() const noexcept override { return m_trusted; }
  [[nodiscard]] std::uint64_t policy_drops() const noexcept override;
  [[nodiscard]] bool policy_overflowed() const noexcept override;

 private:
  struct Conn {
    ShmOptions options;
    Mapping* map = nullptr;  // null while not attached
    std::uint32_t slot = 0;
    std::uint64_t tail = 0;  // the next position to take (mirrors Slot::tail)
    std::uint32_t batch[16];  // chunks taken from the ring, not yet handed to the sink
    std::uint32_t batch_pos = 0, batch_len = 0, batch_max = 1;
    bool welcomed = false;
    bool publisher_dead = false;
    std::uint64_t dropped_before = 0;  // policy drops of earlier attachments
    bool overflowed = false;
    std::chrono::steady_clock::time_point next_attempt{};
    std::chrono::steady_clock::time_point next_liveness{};
    std::string last_error;  // logged once until it changes
  };

  explicit ShmSubscriber(const SubscriberConfig& config) : m_config(config) {}
  void attach(Conn& c, std::chrono::steady_clock::time_point now);
  void detach(Conn& c);
  std::size_t drain_conn(std::uint32_t index, FrameSink& sink, std::size_t max);
  bool end_of_publisher(std::uint32_t index, FrameSink& sink);
  bool refill(Conn& c);
  bool greeted(std::uint32_t index, FrameSink& sink);
  [[nodiscard]] bool has_entry(const Conn& c) const noexcept;

  SubscriberConfig m_config;
  std::vector<Conn> m_conns;
  std::uint32_t m_next_conn = 0;  // round-robin start
  bool m_trusted = false;
  std::uint32_t m_pid = 0;
  std::uint64_t m_start = 0;
};

}  // namespace rill::detail::shm
