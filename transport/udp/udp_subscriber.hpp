// The udp receiving side: one group socket per endpoint (joined on its iface) and one
// unicast control socket for STATUS/NAK out and WELCOME/heartbeat answers in.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <vector>

#include "transport/transport.hpp"
#include "udp_buffer.hpp"
#include "udp_fault.hpp"
#include "udp_options.hpp"
#include "udp_socket.hpp"
#include "udp_stream.hpp"

namespace rill::detail::udp {

/// See SubscriberTransport for the threading rule: one polling thread.
class UdpSubscriber final : public SubscriberTransport {
 public:
  static Result<std::unique_ptr<SubscriberTransport>> create(NodeCore& node, std::span<const Endpoint> eps,
                                                             const SubscriberConfig& config);
  ~UdpSubscriber() override;

  std::size_t drain(FrameSink& sink, std::size_t max) override;
  void wait(std::chrono::nanoseconds timeout) override;
  bool consumed(std::uint32_t source, std::uint64_t publisher_id, std::uint32_t n) override;
  [[nodiscard]] bool window_per_publisher() const noexcept override { return true; }
  bool ack(std::uint32_t source, std::uint64_t publisher_id, std::uint64_t seq) override;
  void service(std::chrono::steady_clock::time_point now) override;

  [[nodiscard]] const StreamCounters& counters() const noexcept { return m_counters; }

 private:
  using clock = std::chrono::steady_clock;
  static constexpr unsigned recv_batch = 32;
  static constexpr unsigned control_every = 16;

  struct Group {
    UdpSocket sock;
    UdpOptions options;
  };
  struct Remote {
    std::unique_ptr<PublisherStream> stream;
    clock::time_point next_status{};
    bool status_now = true;
    bool rejected = false;              // it refused our durable request: asked again now and then
    std::uint64_t ack_seq = 0;          // durable: handled up to here (sent in every STATUS)
    std::uint64_t status_received = 0;  // received_seq / stored bytes in our last STATUS
    std::uint64_t status_bytes = 0;
  };
  struct Held {  // a datagram the fault injector reordered
    Buffer* buffer = nullptr;
    std::size_t length = 0;
    sockaddr_in from{};
    std::uint32_t source = 0;
    bool control = false;
  };

  explicit UdpSubscriber(const SubscriberConfig& config, std::size_t buffer_bytes);

  std::size_t receive(const UdpSocket& sock, std::uint32_t source, bool control, unsigned want, FrameSink& sink);
  void inject(Buffer* b, std::size_t len, const sockaddr_in& from, std::uint32_t source, bool control, FrameSink& sink);
  void process(Buffer* b, std::size_t len, const sockaddr_in& from, std::uint32_t source, bool control,
               FrameSink& sink);
  Remote* find(std::uint64_t publisher_id) noexcept;
  Remote* discover(std::uint64_t publisher_id, std::uint32_t source, const sockaddr_in& from);
  std::size_t deliver_ready(FrameSink& sink, std::size_t budget);
  void drain_control(FrameSink& sink);
  void send_status(Remote& r, clock::time_point now);
  void timers(clock::time_point now);
  void bad(FrameSink& sink, std::uint32_t source, std::size_t size);
  double jitter() noexcept { return m_rng.uniform(); }

  SubscriberConfig m_config;
  std::vector<Group> m_groups;  // index = source (the endpoint's position)
  UdpSocket m_control;
  BufferPool* m_pool;
  std::vector<Remote> m_remotes;
  std::size_t m_last_remote = 0;
  bool m_durable = false;          // transient_local / persistent request
  bool m_group = false;            // a consumer group member: its share comes on its own stream
  bool m_history_flowing = false;  // history datagrams came in the last control read
  std::size_t m_reassembly_in_use = 0;
  StreamCounters m_counters;
  FaultInjector m_fault;
  FaultInjector m_rng;
  Verifier m_verifier{nullptr, 0};
  std::vector<ReplayFilter> m_replay;  // per group socket, then the control socket
  Held m_held[2];
  std::vector<int> m_fds;
  // recvmmsg state; the control socket has its own, because data from a publisher not
  // yet welcomed reads the control socket while the data batch is being processed.
  struct RecvIo {
    mmsghdr msgs[recv_batch];
    iovec iov[recv_batch];
    Buffer* bufs[recv_batch];
    sockaddr_in from[recv_batch];
  };
  RecvIo m_io[2];
  clock::time_point m_now{};
  std::uint32_t m_next_group = 0;
  unsigned m_control_countdown = control_every;
  bool m_timers_due = false;
  bool m_just_emptied = false;
  bool m_in_control = false;
};

}  // namespace rill::detail::udp
