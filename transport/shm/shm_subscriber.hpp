// The shm receiving side: per endpoint, an entry in its directory's registry (so that
// publishers created later pre-claim a slot for it) and one slot in the segment of every
// publisher there whose topic matches; each slot's ring is this subscription's policy
// queue for that publisher, and received views point into the segment.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "transport/transport.hpp"
#include "shm_directory.hpp"
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
  using time_point = std::chrono::steady_clock::time_point;
  // This subscription's slot in one publisher's segment.
  struct Channel {
    Mapping* map = nullptr;  // null once detached (then removed)
    std::uint64_t publisher_id = 0;
    std::uint64_t instance = 0;  // of the directory it was listed in
    std::uint32_t slot = 0;
    std::uint64_t tail = 0;  // the next position to take (mirrors Slot::tail)
    std::uint32_t batch[16];  // chunks taken from the ring, not yet handed to the sink
    std::uint32_t batch_pos = 0, batch_len = 0, batch_max = 1;
    bool welcomed = false;
    bool publisher_dead = false;
    time_point next_liveness{};
  };
  // One endpoint: its directory, this subscription's entry there, and its channels.
  struct Conn {
    ShmOptions options;
    std::unique_ptr<Directory> dir;                 // null while not attached
    const std::atomic<std::uint32_t>* gen = nullptr;  // the directory's generation word
    std::uint32_t gen_seen = 0;
    std::uint32_t entry = ~0u;  // registry entry (~0u: none)
    bool rescan = false;        // some channel could not be attached: look again at next_attempt
    std::vector<Channel> chans;
    std::uint32_t next_chan = 0;  // round-robin start
    std::vector<std::pair<std::uint64_t, time_point>> refused;  // publishers that refused us: ask again then
    std::uint64_t dropped_before = 0;  // policy drops of channels gone
    time_point next_attempt{};
    time_point next_liveness{};
    std::string last_error;  // logged once until it changes
  };

  explicit ShmSubscriber(const SubscriberConfig& config) : m_config(config) {}
  void attach(Conn& c, time_point now);
  void detach(Conn& c);
  void scan(Conn& c, time_point now);
  bool attach_channel(Conn& c, const ChannelInfo& info, time_point now);
  void detach_channel(Conn& c, Channel& ch);
  void report(Conn& c, const Error& e);
  std::size_t drain_conn(std::uint32_t index, FrameSink& sink, std::size_t max);
  std::size_t drain_channel(std::uint32_t index, Conn& c, Channel& ch, FrameSink& sink, std::size_t max);
  bool end_of_publisher(std::uint32_t index, Conn& c, Channel& ch, FrameSink& sink);
  bool refill(Channel& ch);
  bool greeted(std::uint32_t index, Conn& c, Channel& ch, FrameSink& sink);
  [[nodiscard]] bool has_entry(const Channel& ch) const noexcept;

  SubscriberConfig m_config;
  std::vector<Conn> m_conns;
  std::uint32_t m_next_conn = 0;  // round-robin start
  bool m_trusted = false;
  std::uint32_t m_pid = 0;
  std::uint64_t m_start = 0;
};

}  // namespace rill::detail::shm
