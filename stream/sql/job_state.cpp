// A SQL job's checkpoint file, written atomically; every length is checked on reading.
#include "stream/sql/job_state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "stream/sql/row_codec.hpp"

namespace rill::sql::detail {

namespace {

constexpr std::string_view magic = "RILLSQL1";

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace

std::string encode_state(const JobPositions& at, std::string_view op_bytes) {
  std::string body;
  ByteWriter w(body);
  w.i64(static_cast<std::int64_t>(at.outputs));
  w.i64(static_cast<std::int64_t>(at.inputs.size()));
  for (const auto& [id, seq] : at.inputs) {
    w.i64(static_cast<std::int64_t>(id));
    w.i64(static_cast<std::int64_t>(seq));
  }
  w.str(op_bytes);
  std::string out(magic);
  ByteWriter head(out);
  head.i64(static_cast<std::int64_t>(body.size()));
  head.i64(static_cast<std::int64_t>(fnv1a(body)));
  out += body;
  return out;
}

std::expected<std::pair<JobPositions, std::string>, std::string> decode_state(std::string_view bytes) {
  if (bytes.size() < magic.size() + 16 || bytes.substr(0, magic.size()) != magic) {
    return std::unexpected("not a rill query checkpoint");
  }
  ByteReader head(bytes.substr(magic.size(), 16));
  const auto size = static_cast<std::uint64_t>(head.i64());
  const auto hash = static_cast<std::uint64_t>(head.i64());
  const std::string_view body = bytes.substr(magic.size() + 16);
  if (size != body.size() || hash != fnv1a(body)) return std::unexpected("damaged rill query checkpoint");
  ByteReader r(body);
  JobPositions at;
  at.outputs = static_cast<std::uint64_t>(r.i64());
  const std::int64_t n = r.i64();
  for (std::int64_t i = 0; r.ok() && i < n; ++i) {
    const auto id = static_cast<std::uint64_t>(r.i64());
    at.inputs[id] = static_cast<std::uint64_t>(r.i64());
  }
  std::string op = r.str();
  if (!r.ok() || !r.at_end()) return std::unexpected("damaged rill query checkpoint");
  return std::pair{std::move(at), std::move(op)};
}

std::expected<void, std::string> write_atomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected(sys_error("cannot create", tmp));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const auto e = sys_error("cannot write", tmp);
      ::close(fd);
      return std::unexpected(e);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const auto e = sys_error("cannot fsync", tmp);
    ::close(fd);
    return std::unexpected(e);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return std::unexpected(sys_error("cannot rename to", path));
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

std::expected<std::string, std::string> read_whole(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::unexpected(sys_error("cannot read", path));
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return std::unexpected(sys_error("cannot read", path));
  return bytes;
}

}  // namespace rill::sql::detail
