#include "tcp_zap.hpp"

#include <sys/stat.h>

#include <array>
#include <fstream>
#include <span>
#include <vector>

#include <zmq.h>

#include "base/logging.hpp"
#include "rill/curve_keys.hpp"
#include "transport/node_core.hpp"

namespace rill::detail::tcp {

namespace {

constexpr const char* zap_address = "inproc://zeromq.zap.01";
// The handler looks at its stop flag this often.
constexpr long stop_poll_ms = 100;
// Rejected keys logged individually per endpoint; beyond this they are only counted.
constexpr std::size_t max_logged_keys = 1024;
// A ZAP request has 7 frames (credentials: one for CURVE); more is garbage.
constexpr std::size_t max_request_frames = 8;

std::string z85(std::span<const std::byte> raw) {
  std::array<char, 41> text{};
  if (raw.size() != 32 || zmq_z85_encode(text.data(), reinterpret_cast<const std::uint8_t*>(raw.data()), 32) == nullptr) {
    return {};
  }
  return text.data();
}

}  // namespace

bool refresh_allow_list(ZapDomain& d) {
  struct stat st{};
  if (::stat(d.allow_file.c_str(), &st) != 0) return false;
  const std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (mtime == d.mtime_ns && st.st_size == d.size && st.st_ino == d.inode) return true;
  std::ifstream in(d.allow_file);
  if (!in) return false;
  std::set<std::string> keys;
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    if (!is_z85_key(line)) {
      log().warn("allow file {} line {}: not a Z85 public key of 40 characters; ignored", d.allow_file, number);
      continue;
    }
    keys.insert(line);
  }
  if (d.mtime_ns >= 0) log().info("allow file {} changed: {} keys now", d.allow_file, keys.size());
  d.keys = std::move(keys);
  d.mtime_ns = mtime;
  d.size = st.st_size;
  d.inode = st.st_ino;
  d.unreadable_logged = false;
  return true;
}

Result<std::shared_ptr<ZapHandler>> ZapHandler::get(NodeCore& node) {
  return node.shared_endpoint<ZapHandler>(zap_address, [&]() -> Result<std::shared_ptr<ZapHandler>> {
    try {
      zmq::socket_t sock(node.zmq(), zmq::socket_type::rep);
      sock.set(zmq::sockopt::linger, 0);
      sock.bind(zap_address);
      return std::shared_ptr<ZapHandler>(new ZapHandler(std::move(sock)));
    } catch (const zmq::error_t& e) {
      // EADDRINUSE: someone else in this process bound a ZAP handler on the node's context.
      return fail(Errc::io_error, std::string("cannot start the ZAP handler on ") + zap_address, e.num());
    }
  });
}

ZapHandler::ZapHandler(zmq::socket_t sock) : m_sock(std::move(sock)) {
  m_thread = std::thread([this] { run(); });
}

ZapHandler::~ZapHandler() {
  m_stop = true;
  m_thread.join();
}

Result<std::shared_ptr<ZapDomain>> ZapHandler::add(const std::string& domain, const std::string& allow_file) {
  auto d = std::make_shared<ZapDomain>();
  d->allow_file = allow_file;
  if (!allow_file.empty() && !refresh_allow_list(*d)) {
    return fail(Errc::invalid_argument, "cannot read the allow file " + allow_file, errno);
  }
  std::lock_guard lock(m_mutex);
  m_domains[domain] = d;
  return d;
}

void ZapHandler::remove(const std::string& domain, const std::shared_ptr<ZapDomain>& d) {
  std::lock_guard lock(m_mutex);
  if (const auto it = m_domains.find(domain); it != m_domains.end() && it->second == d) m_domains.erase(it);
}

void ZapHandler::run() {
  while (!m_stop.load()) {
    zmq_pollitem_t item{m_sock.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, stop_poll_ms) > 0 && (item.revents & ZMQ_POLLIN) != 0) answer();
  }
}

bool ZapHandler::allowed(const std::string& domain, const std::string& key, const std::string& address) {
  std::lock_guard lock(m_mutex);
  const auto it = m_domains.find(domain);
  if (it == m_domains.end()) return false;  // not one of ours (or its endpoint is closing)
  auto& d = *it->second;
  if (d.allow_file.empty()) {
    ++d.accepted;
    return true;
  }
  if (!refresh_allow_list(d) && !d.unreadable_logged) {
    d.unreadable_logged = true;
    log().warn("endpoint {}: cannot read the allow file {} now; keeping the {} keys read before", domain, d.allow_file,
               d.keys.size());
  }
  if (!key.empty() && d.keys.contains(key)) {
    ++d.accepted;
    return true;
  }
  ++d.rejected;
  if (d.logged.size() < max_logged_keys && d.logged.insert(key).second) {
    log().warn("endpoint {}: refused a subscriber from {} whose key {} is not in {} (further attempts of this key "
               "are only counted)", domain, address, key.empty() ? "(none)" : key, d.allow_file);
  }
  return false;
}

void ZapHandler::answer() {
  // Request: version, request id, domain, address, identity, mechanism, credentials...
  std::vector<zmq::message_t> frames;
  do {
    zmq::message_t m;
    if (!m_sock.recv(m, zmq::recv_flags::dontwait)) break;
    const bool more = m.more();
    if (frames.size() < max_request_frames) frames.push_back(std::move(m));
    if (!more) break;
  } while (true);
  const auto text = [&](std::size_t i) { return i < frames.size() ? frames[i].to_string() : std::string(); };
  const bool well_formed = frames.size() >= 6 && text(0) == "1.0";
  bool ok = false;
  if (well_formed && text(5) == "CURVE" && frames.size() >= 7) {
    const auto& cred = frames[6];
    ok = allowed(text(2), z85({static_cast<const std::byte*>(cred.data()), cred.size()}), text(3));
  } else if (well_formed) {
    allowed(text(2), {}, text(3));  // NULL or PLAIN on a CURVE endpoint: refused and counted
  }
  // Reply: version, request id, status code, status text, user id, metadata. A REP socket
  // must answer even a request it could not read, or it stops receiving.
  const std::string request_id = text(1);
  const std::array<std::string, 6> reply{"1.0", request_id, ok ? "200" : "400",
                                         ok ? "OK" : "key not in the allow list", "", ""};
  for (std::size_t i = 0; i < reply.size(); ++i) {
    m_sock.send(zmq::buffer(reply[i]), i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

}  // namespace rill::detail::tcp
