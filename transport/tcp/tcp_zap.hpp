// The ZAP handler (ZeroMQ RFC 27) of one ZeroMQ context: it answers the CURVE handshakes of
// every tcp endpoint bound with ?curve_key=, letting in the public keys of its allow file.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "rill/error.hpp"

namespace rill::detail {
class NodeCore;
}

namespace rill::detail::tcp {

/// One endpoint's allow list (its ZAP domain is the endpoint's address). The counters are
/// read by any thread; the rest belongs to the ZAP handler (under its mutex).
struct ZapDomain {
  std::string allow_file;  ///< "": every client key is let in (encryption only)
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};
  // The allow list as last read, and which version of the file it came from.
  std::set<std::string> keys;
  std::int64_t mtime_ns = -1;
  std::int64_t size = -1;
  std::uint64_t inode = 0;
  bool unreadable_logged = false;
  std::set<std::string> logged;  // rejected keys already logged (each once)
};

/// Answers the ZAP requests of one context on its own thread (inproc://zeromq.zap.01).
/// Shared by the endpoints of the node (NodeCore::shared_endpoint), alive while one is.
/// add() and remove() are thread-safe.
class ZapHandler {
 public:
  /// The node's handler, bound and running, made by the first caller.
  static Result<std::shared_ptr<ZapHandler>> get(NodeCore& node);
  ~ZapHandler();

  /// Registers `domain` with the keys of `allow_file` ("" lets any key in); the file is read
  /// now (an error if it cannot be) and again whenever it changes.
  [[nodiscard]] Result<std::shared_ptr<ZapDomain>> add(const std::string& domain, const std::string& allow_file);
  /// Forgets `domain` if `d` is still what it names (a rebound endpoint may have replaced it).
  void remove(const std::string& domain, const std::shared_ptr<ZapDomain>& d);

 private:
  explicit ZapHandler(zmq::socket_t sock);
  void run();
  void answer();
  /// Whether `key` (Z85) may connect under `domain`; counts and logs a refusal.
  bool allowed(const std::string& domain, const std::string& key, const std::string& address);

  zmq::socket_t m_sock;
  std::mutex m_mutex;
  std::map<std::string, std::shared_ptr<ZapDomain>> m_domains;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

/// Reads the allow list `d.allow_file` again when the file changed since the last read.
/// False (and the old list kept) when it cannot be read.
bool refresh_allow_list(ZapDomain& d);

}  // namespace rill::detail::tcp
