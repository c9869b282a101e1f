// NodeCore: what a Node shares with every transport it created (internal).
#pragma once

#include <zmq.hpp>

namespace rill::detail {

/// Owns the ZeroMQ context (its I/O thread) for every tcp socket of one Node.
/// Thread-safe: ZeroMQ contexts may be shared; sockets are not.
class NodeCore {
 public:
  explicit NodeCore(int io_threads) : m_zmq(io_threads) {}
  [[nodiscard]] zmq::context_t& zmq() noexcept { return m_zmq; }

 private:
  zmq::context_t m_zmq;
};

}  // namespace rill::detail
