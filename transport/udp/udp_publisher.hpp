// The udp sending side: multicast data to the group from one socket whose unicast
// address is also where subscribers send STATUS and NAKs.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <string>
#include <vector>

#include "../transport.hpp"
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
  std::uint64_t unavailable = 0;  ///< NAKed sequences already gone from the window
};

/// See PublisherTransport for the threading rule: one publishing thread.
class UdpPublisher final : public PublisherTransport {
 public:
  static Result<std::unique_ptr<PublisherTransport>> create(NodeCore& node, const Endpoint& ep,
                                                            const PublisherConfig& config);
  ~UdpPublisher() override;

  Result<void> send(std::span<const std::byte> envelope, std::uint64_t seq, std::chrono::nanoseconds timeout) override;
  void flush() override;
  std::size_t service() override;
  Result<std::size_t> wait_for_subscribers(std::size_t n, std::chrono::steady_clock::time_point deadline) override;
  void close(std::uint64_t last_seq) override;
  [[nodiscard]] const PublisherStats& stats() const override { return m_stats; }
  [[nodiscard]] const PublisherCounters& counters() const noexcept { return m_counters; }

 private:
  using clock = std::chrono::steady_clock;
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
    clock::time_point last_seen;
  };

  UdpPublisher(UdpSocket sock, const UdpOptions& options, const PublisherConfig& config);

  void drain_control(clock::time_point now);
  void handle(std::span<const std::byte> dgram, const sockaddr_in& from, clock::time_point now);
  void on_status(const Header& h, const Status& s, const sockaddr_in& from, clock::time_point now);
  void on_nak(const Nak& n, const sockaddr_in& from, clock::time_point now);
  void heartbeat(clock::time_point now, Type type = Type::heartbeat, const sockaddr_in* to = nullptr);
  void maybe_heartbeat(clock::time_point now);
  void close_batch();
  void send_fragments(std::span<const std::byte> envelope, std::uint64_t seq);
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
  sockaddr_in m_group{};
  RetransmitWindow m_window;
  std::vector<Receiver> m_receivers;
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
  bool m_closed = false;
};

}  // namespace rill::detail::udp
