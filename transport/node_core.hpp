// NodeCore: what a Node shares with every transport it created (internal).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <zmq.hpp>

namespace rill::detail {

/// Owns the ZeroMQ context (its I/O thread) for every tcp socket of one Node, and the
/// endpoints its publishers share (several topics on one bound address).
/// Thread-safe: ZeroMQ contexts may be shared; sockets are not.
class NodeCore {
 public:
  explicit NodeCore(int io_threads) : m_zmq(io_threads) {}
  [[nodiscard]] zmq::context_t& zmq() noexcept { return m_zmq; }

  /// The object bound at `key` ("tcp://HOST:PORT") while some publisher still holds it;
  /// otherwise the one `open` makes (or its error). Every publisher on that endpoint then
  /// shares it. `open` runs under the registry lock: two publishers never bind twice.
  template <class T, class Open>
  auto shared_endpoint(const std::string& key, Open&& open) -> decltype(open()) {
    std::lock_guard lock(m_shared_mutex);
    auto& slot = m_shared[key];
    if (auto live = std::static_pointer_cast<T>(slot.lock())) return live;
    auto made = open();
    if (made) slot = *made;
    return made;
  }

 private:
  zmq::context_t m_zmq;
  std::mutex m_shared_mutex;
  std::map<std::string, std::weak_ptr<void>> m_shared;
};

}  // namespace rill::detail
