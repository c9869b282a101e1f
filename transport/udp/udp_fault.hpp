// Seeded fault injection for tests: loss, reordering and duplication of received
// datagrams, data and control separately. Each side applies it to what it receives,
// so a publisher's faults hit NAKs and status, a subscriber's hit data and heartbeats.
// Model: aeron's aeron_udp_channel_transport_loss.c. Off (all zero) in normal use.
#pragma once

#include <cstdint>

namespace rill::detail::udp {

/// Probabilities in [0, 1] for one class of datagram.
struct FaultRates {
  double loss = 0;       ///< dropped
  double reorder = 0;    ///< held back and handed over after the next datagram
  double duplicate = 0;  ///< handed over twice
};

/// Set through the endpoint query (fault_data=L,R,D&fault_ctl=L,R,D&fault_seed=N).
struct FaultConfig {
  FaultRates data;     ///< DATA and FRAG datagrams
  FaultRates control;  ///< everything else (heartbeat, welcome, bye, status, NAK, leave)
  std::uint64_t seed = 1;

  [[nodiscard]] bool any() const noexcept {
    return data.loss + data.reorder + data.duplicate + control.loss + control.reorder + control.duplicate > 0;
  }
};

enum class Fault : std::uint8_t { pass, drop, duplicate, hold };

/// Decides the fate of each received datagram. Deterministic for a seed. Not thread-safe.
class FaultInjector {
 public:
  explicit FaultInjector(const FaultConfig& config) noexcept : m_config(config), m_state(config.seed | 1) {}

  [[nodiscard]] bool active() const noexcept { return m_config.any(); }

  /// The fate of the next datagram of its class.
  [[nodiscard]] Fault decide(bool data) noexcept {
    const auto& r = data ? m_config.data : m_config.control;
    const double x = uniform();
    if (x < r.loss) return Fault::drop;
    if (x < r.loss + r.reorder) return Fault::hold;
    if (x < r.loss + r.reorder + r.duplicate) return Fault::duplicate;
    return Fault::pass;
  }

  /// Uniform in [0, 1) (xorshift64*).
  double uniform() noexcept {
    m_state ^= m_state >> 12;
    m_state ^= m_state << 25;
    m_state ^= m_state >> 27;
    return static_cast<double>((m_state * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
  }

 private:
  FaultConfig m_config;
  std::uint64_t m_state;
};

}  // namespace rill::detail::udp
