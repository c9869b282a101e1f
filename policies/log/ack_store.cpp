// AckStore: the whole table is rewritten on each change (it is small: one entry per durable
// name) into a temp file that is synced and renamed over the old one, so a reader of the
// file always sees one complete, checksummed version.
#include "rill/ack_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "crc32c.hpp"

namespace rill {

namespace fs = std::filesystem;

namespace {

constexpr char ack_magic[8] = {'R', 'I', 'L', 'L', 'A', 'C', 'K', '1'};
constexpr std::size_t max_name = 255;

template <class T>
void put(std::vector<std::byte>& out, T v) {
  const auto at = out.size();
  out.resize(at + sizeof v);
  std::memcpy(out.data() + at, &v, sizeof v);
}

template <class T>
bool take(std::span<const std::byte>& in, T& v) {
  if (in.size() < sizeof v) return false;
  std::memcpy(&v, in.data(), sizeof v);
  in = in.subspan(sizeof v);
  return true;
}

Errc errc_for(int e) {
  return e == ENOSPC || e == EDQUOT ? Errc::no_space : Errc::io_error;
}

}  // namespace

struct AckStore::State {
  fs::path path;
  mutable std::mutex mu;
  std::map<std::string, std::uint64_t, std::less<>> table;

  Result<void> persist(const std::map<std::string, std::uint64_t, std::less<>>& t) const {
    std::vector<std::byte> out;
    out.insert(out.end(), reinterpret_cast<const std::byte*>(ack_magic),
               reinterpret_cast<const std::byte*>(ack_magic) + 8);
    put<std::uint32_t>(out, 1);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(t.size()));
    for (const auto& [name, seq] : t) {
      put<std::uint16_t>(out, static_cast<std::uint16_t>(name.size()));
      const auto* p = reinterpret_cast<const std::byte*>(name.data());
      out.insert(out.end(), p, p + name.size());
      put<std::uint64_t>(out, seq);
    }
    put<std::uint32_t>(out, detail::crc32c(0, out));

    const fs::path tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return fail(errc_for(errno), "create " + tmp.string(), errno);
    std::size_t done = 0;
    Result<void> r;
    while (r && done < out.size()) {
      const ssize_t n = ::write(fd, out.data() + done, out.size() - done);
      if (n < 0 && errno != EINTR) r = fail(errc_for(errno), "write " + tmp.string(), errno);
      if (n > 0) done += static_cast<std::size_t>(n);
    }
    if (r && ::fdatasync(fd) != 0) r = fail(errc_for(errno), "fsync " + tmp.string(), errno);
    ::close(fd);
    if (r && ::rename(tmp.c_str(), path.c_str()) != 0) r = fail(Errc::io_error, "rename " + tmp.string(), errno);
    if (!r) {
      ::unlink(tmp.c_str());
      return r;
    }
    // The rename itself must be durable before the ack counts.
    const auto parent = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    const int dfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return fail(Errc::io_error, "open " + parent.string(), errno);
    const int rc = ::fsync(dfd);
    const int e = errno;
    ::close(dfd);
    if (rc != 0) return fail(errc_for(e), "fsync " + parent.string(), e);
    return {};
  }

  Result<void> update(std::string_view name, const std::optional<std::uint64_t>& seq, bool forward_only) {
    if (name.empty() || name.size() > max_name)
      return fail(Errc::invalid_argument, "durable name must be 1..255 bytes");
    std::lock_guard g(mu);
    auto next = table;
    if (!seq) {
      if (next.erase(std::string(name)) == 0) return {};
    } else {
      auto it = next.find(name);
      if (it != next.end() && forward_only && it->second >= *seq) return {};
      next[std::string(name)] = *seq;
    }
    if (auto r = persist(next); !r) return r;
    table = std::move(next);
    return {};
  }
};

AckStore::AckStore(std::unique_ptr<State> state) : m_state(std::move(state)) {}
AckStore::AckStore(AckStore&&) noexcept = default;
AckStore& AckStore::operator=(AckStore&&) noexcept = default;
AckStore::~AckStore() = default;

Result<AckStore> AckStore::open(const fs::path& path) {
  auto st = std::make_unique<State>();
  st->path = path;
  std::error_code ec;
  if (!fs::exists(path, ec)) return AckStore(std::move(st));
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Errc::io_error, "open " + path.string(), errno);
  const std::string raw((std::istreambuf_iterator<char>(in)), {});
  auto bytes = std::as_bytes(std::span(raw.data(), raw.size()));
  auto bad = [&](const char* why) { return fail(Errc::corrupt, "ack store " + path.string() + ": " + why); };
  if (bytes.size() < 20 || std::memcmp(bytes.data(), ack_magic, 8) != 0) return bad("bad magic or short file");
  std::uint32_t crc = 0;
  std::memcpy(&crc, bytes.data() + bytes.size() - 4, 4);
  if (crc != detail::crc32c(0, bytes.first(bytes.size() - 4))) return bad("fails its crc");
  auto in_span = bytes.subspan(8, bytes.size() - 12);
  std::uint32_t version = 0;
  std::uint32_t count = 0;
  if (!take(in_span, version) || version != 1 || !take(in_span, count)) return bad("unknown version");
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint16_t len = 0;
    std::uint64_t seq = 0;
    if (!take(in_span, len) || in_span.size() < len) return bad("entry runs past the end");
    std::string name(reinterpret_cast<const char*>(in_span.data()), len);
    in_span = in_span.subspan(len);
    if (!take(in_span, seq)) return bad("entry runs past the end");
    st->table.emplace(std::move(name), seq);
  }
  if (!in_span.empty()) return bad("bytes after the last entry");
  return AckStore(std::move(st));
}

Result<void> AckStore::ack(std::string_view name, std::uint64_t seq) {
  return m_state->update(name, seq, true);
}
Result<void> AckStore::set(std::string_view name, std::uint64_t seq) {
  return m_state->update(name, seq, false);
}
Result<void> AckStore::erase(std::string_view name) {
  return m_state->update(name, std::nullopt, false);
}

std::optional<std::uint64_t> AckStore::get(std::string_view name) const {
  std::lock_guard g(m_state->mu);
  auto it = m_state->table.find(name);
  if (it == m_state->table.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, std::uint64_t, std::less<>> AckStore::all() const {
  std::lock_guard g(m_state->mu);
  return m_state->table;
}

}  // namespace rill
