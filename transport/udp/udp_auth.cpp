#include "udp_auth.hpp"

#include "rill/udp_auth_key.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <initializer_list>

namespace rill::detail::udp {

namespace {

constexpr unsigned char key_id_label[] = "rill-udp-key-id";

// Trailer offsets (PROTOCOL.md 10.13).
constexpr std::size_t t_scope = 0;
constexpr std::size_t t_key_id = 2;
constexpr std::size_t t_time = 4;
constexpr std::size_t t_sender = 8;
constexpr std::size_t t_counter = 16;
constexpr std::size_t t_mac = 24;

template <class T>
T get(const std::byte* p) noexcept {
  T v{};
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
void put(std::byte* p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

AuthKey make_key(const std::array<unsigned char, auth_key_bytes>& raw) {
  AuthKey k;
  k.bytes = raw;
  k.id = AuthKeys::id_of(k.bytes);
  // The key block is absorbed once here; each datagram starts from a copy of this state.
  crypto_generichash_init(&k.keyed, k.bytes.data(), k.bytes.size(), auth_mac_bytes);
  return k;
}

// MAC over the concatenation of `parts` with `key`.
void mac(const AuthKey& key, std::initializer_list<std::span<const std::byte>> parts, unsigned char* out) noexcept {
  crypto_generichash_state st = key.keyed;
  for (const auto& p : parts) crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(p.data()), p.size());
  crypto_generichash_final(&st, out, auth_mac_bytes);
  sodium_memzero(&st, sizeof st);
}

}  // namespace

std::uint16_t AuthKeys::id_of(std::span<const unsigned char, auth_key_bytes> key) noexcept {
  unsigned char h[16];
  crypto_generichash(h, sizeof h, key_id_label, sizeof key_id_label - 1, key.data(), key.size());
  return static_cast<std::uint16_t>(h[0] | (h[1] << 8));
}

std::shared_ptr<const AuthKeys> AuthKeys::from(std::span<const std::array<unsigned char, 32>> keys) {
  if (sodium_init() < 0) return nullptr;
  auto out = std::make_shared<AuthKeys>();
  for (const auto& k : keys) out->m_keys.push_back(make_key(k));
  return out;
}

Result<std::shared_ptr<const AuthKeys>> AuthKeys::load(const std::string& path) {
  if (sodium_init() < 0) return fail(Errc::io_error, "libsodium failed to initialise");
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return fail(Errc::invalid_argument, "cannot read auth_key_file " + path, errno);
  if ((st.st_mode & 077) != 0) {
    return fail(Errc::permission_denied,
                "auth_key_file " + path + " holds a secret key but group or others may read it (chmod 600 it)");
  }
  std::ifstream in(path);
  if (!in) return fail(Errc::invalid_argument, "cannot read auth_key_file " + path, errno);
  std::vector<std::array<unsigned char, auth_key_bytes>> keys;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    if (keys.size() == 2) return fail(Errc::invalid_argument, "auth_key_file " + path + " holds more than two keys");
    std::array<unsigned char, auth_key_bytes> k{};
    bool ok = line.size() == 2 * auth_key_bytes;
    for (std::size_t i = 0; ok && i < auth_key_bytes; ++i) {
      const int hi = hex_digit(line[2 * i]);
      const int lo = hex_digit(line[2 * i + 1]);
      ok = hi >= 0 && lo >= 0;
      k[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    sodium_memzero(line.data(), line.size());
    if (!ok) return fail(Errc::invalid_argument, "auth_key_file " + path + ": a key is one line of 64 hex digits");
    keys.push_back(k);
    sodium_memzero(k.data(), k.size());
  }
  if (keys.empty()) return fail(Errc::invalid_argument, "auth_key_file " + path + " holds no key");
  auto out = from(keys);
  for (auto& k : keys) sodium_memzero(k.data(), k.size());
  if (out->m_keys.size() == 2 && out->m_keys[0].id == out->m_keys[1].id) {
    return fail(Errc::invalid_argument, "auth_key_file " + path + ": its two keys have the same id (the same key?)");
  }
  return out;
}

const AuthKey* AuthKeys::find(std::uint16_t id) const noexcept {
  for (const auto& k : m_keys) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

Result<std::uint16_t> write_auth_key_file(const std::string& path) {
  if (sodium_init() < 0) return fail(Errc::io_error, "libsodium failed to initialise");
  std::array<unsigned char, auth_key_bytes> key{};
  randombytes_buf(key.data(), key.size());
  std::string text(2 * auth_key_bytes + 1, '\n');
  sodium_bin2hex(text.data(), text.size(), key.data(), key.size());
  text.back() = '\n';
  const auto id = AuthKeys::id_of(key);
  sodium_memzero(key.data(), key.size());
  // O_EXCL: a key is never replaced by accident.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    return fail(err == EEXIST ? Errc::invalid_argument : Errc::io_error, "cannot create " + path, err);
  }
  ::fchmod(fd, 0600);
  const auto written = ::write(fd, text.data(), text.size());
  const int err = errno;
  const bool ok = written == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  sodium_memzero(text.data(), text.size());
  if (!ok) return fail(Errc::io_error, "cannot write " + path, err);
  return id;
}

Sealer::Sealer(std::shared_ptr<const AuthKeys> keys) : m_keys(std::move(keys)), m_batch(new Batch{}) {
  // A random id per sending socket: a restarted sender starts a fresh counter under a new id.
  while (m_sender == 0) randombytes_buf(&m_sender, sizeof m_sender);
}

void Sealer::seal(std::span<const std::byte> dgram, std::uint8_t scope, std::span<std::byte, 16> head,
                  std::span<std::byte, auth_trailer_bytes> trailer) {
  const auto& key = m_keys->signing();
  std::memcpy(head.data(), dgram.data(), std::min<std::size_t>(16, dgram.size()));
  head[6] = std::byte{auth_marker};
  std::byte* t = trailer.data();
  put<std::uint8_t>(t + t_scope, scope);
  put<std::uint8_t>(t + t_scope + 1, 0);
  put<std::uint16_t>(t + t_key_id, key.id);
  put<std::uint32_t>(t + t_time, static_cast<std::uint32_t>(unix_seconds()));
  put<std::uint64_t>(t + t_sender, m_sender);
  put<std::uint64_t>(t + t_counter, ++m_counter);
  const std::span<const std::byte> rest = dgram.size() > 16 ? dgram.subspan(16) : std::span<const std::byte>{};
  mac(key, {std::span<const std::byte>(head), rest, std::span<const std::byte>(trailer.first(t_mac))},
      reinterpret_cast<unsigned char*>(t + t_mac));
}

const char* to_string(AuthVerdict v) noexcept {
  switch (v) {
    case AuthVerdict::ok:
      return "ok";
    case AuthVerdict::unauthenticated:
      return "unauthenticated";
    case AuthVerdict::bad_mac:
      return "bad MAC or unknown key";
    case AuthVerdict::wrong_scope:
      return "wrong scope";
    case AuthVerdict::stale:
      return "clock too far from ours";
    case AuthVerdict::replayed:
      return "replayed";
  }
  return "?";
}

bool ReplayFilter::accept(std::uint64_t sender, std::uint64_t counter, std::uint64_t now_tick) noexcept {
  auto it = std::find_if(m_senders.begin(), m_senders.end(), [&](const Sender& s) { return s.id == sender; });
  if (it == m_senders.end()) {
    if (m_senders.size() >= max_tracked_senders) {
      it = std::min_element(m_senders.begin(), m_senders.end(),
                            [](const Sender& a, const Sender& b) { return a.last_used < b.last_used; });
      *it = Sender{};
    } else {
      m_senders.emplace_back();
      it = m_senders.end() - 1;
    }
    it->id = sender;
    it->top = counter;
    it->seen[0] = 1;
    it->last_used = now_tick;
    return true;
  }
  Sender& s = *it;
  if (counter > s.top) {
    // Slide: bit i stands for top - i.
    const auto shift = counter - s.top;
    if (shift >= replay_window) {
      s.seen.fill(0);
    } else {
      const auto words = static_cast<std::size_t>(shift / 64);
      const auto bits = static_cast<unsigned>(shift % 64);
      constexpr auto n = replay_window / 64;
      for (std::size_t i = n; i-- > 0;) {
        std::uint64_t v = i >= words ? s.seen[i - words] << bits : 0;
        if (bits != 0 && i >= words + 1) v |= s.seen[i - words - 1] >> (64 - bits);
        s.seen[i] = v;
      }
    }
    s.top = counter;
    s.seen[0] |= 1;
    s.last_used = now_tick;
    return true;
  }
  const auto back = s.top - counter;
  if (back >= replay_window) return false;
  auto& word = s.seen[back / 64];
  const auto bit = std::uint64_t{1} << (back % 64);
  if ((word & bit) != 0) return false;
  word |= bit;
  s.last_used = now_tick;
  return true;
}

AuthVerdict Verifier::check(std::span<const std::byte> dgram, std::uint8_t scope, ReplayFilter& replay,
                            std::uint64_t now_s, std::span<const std::byte>& body) noexcept {
  const bool marked = dgram.size() > 6 && dgram[6] == std::byte{auth_marker};
  if (m_keys == nullptr) {
    // Without a key nothing authenticated can be trusted; say so instead of calling it malformed.
    if (marked) return AuthVerdict::unauthenticated;
    body = dgram;
    return AuthVerdict::ok;
  }
  if (dgram.size() < 16 + auth_trailer_bytes || !marked) return AuthVerdict::unauthenticated;
  const auto* t = dgram.data() + dgram.size() - auth_trailer_bytes;
  const AuthKey* key = m_keys->find(get<std::uint16_t>(t + t_key_id));
  if (key == nullptr) return AuthVerdict::bad_mac;
  unsigned char expect[auth_mac_bytes];
  mac(*key, {dgram.first(dgram.size() - auth_trailer_bytes + t_mac)}, expect);
  if (sodium_memcmp(expect, t + t_mac, auth_mac_bytes) != 0) return AuthVerdict::bad_mac;
  // Authentic from here on: the fields below were written by a key holder.
  if (get<std::uint8_t>(t + t_scope) != scope) return AuthVerdict::wrong_scope;
  if (m_max_skew != 0) {
    const std::uint64_t sent = get<std::uint32_t>(t + t_time);
    const auto skew = sent > now_s ? sent - now_s : now_s - sent;
    if (skew > m_max_skew) return AuthVerdict::stale;
  }
  if (!replay.accept(get<std::uint64_t>(t + t_sender), get<std::uint64_t>(t + t_counter), ++m_tick)) {
    return AuthVerdict::replayed;
  }
  body = dgram.first(dgram.size() - auth_trailer_bytes);
  return AuthVerdict::ok;
}

std::uint64_t unix_seconds() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec);
}

}  // namespace rill::detail::udp

namespace rill {

Result<std::uint16_t> write_udp_auth_key(const std::string& path) { return detail::udp::write_auth_key_file(path); }

}  // namespace rill
