// WindowOperator::checkpoint / restore: the operator's state in one file, replaced
// atomically. Layout: "RILLSCK1", payload length (u64), FNV-1a 64 of the payload (u64),
// payload (see write_payload). Numbers little-endian.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "rill/stream/window_operator.hpp"
#include "stream/state_io.hpp"
#include "stream/window_store.hpp"

namespace rill::stream {

namespace {

constexpr std::string_view magic = "RILLSCK1";
constexpr std::size_t header_bytes = 8 + 8 + 8;

std::uint64_t fnv1a(std::string_view bytes) noexcept {
  std::uint64_t h = 14695981039346656037ull;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// What the state depends on: a checkpoint restores only into the same window settings.
void write_fingerprint(detail::StateWriter& out, const OperatorOptions& o) {
  out.u8(static_cast<std::uint8_t>(o.window.kind));
  out.i64(o.window.size_ms);
  out.i64(o.window.hop_ms);
  out.i64(o.window.gap_ms);
  out.u64(o.window.count);
  out.i64(o.allowed_lateness.count());
}

// "VERB path", built by appending (GCC 12 warns falsely on "literal" + string).
std::string what(std::string_view verb, const std::string& path) {
  std::string s(verb);
  s += ' ';
  s += path;
  return s;
}

Result<void> write_file(const std::string& path, std::string_view bytes) {
  std::string tmp = path;
  tmp += ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(Errc::io_error, what("open", tmp), errno);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return fail(e == ENOSPC ? Errc::no_space : Errc::io_error, what("write", tmp), e);
    }
    done += static_cast<std::size_t>(n);
  }
  // The data is on disk before the name points at it: a crash leaves the old checkpoint or
  // the new one, never a torn file under `path`.
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    return fail(Errc::io_error, what("fsync", tmp), e);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(Errc::io_error, what("rename", tmp), errno);
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = std::filesystem::path(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // the rename itself is durable
    ::close(dfd);
  }
  return {};
}

}  // namespace

Result<void> WindowOperator::checkpoint(const std::string& path,
                                        const std::map<std::uint64_t, std::uint64_t>& inputs) const {
  detail::StateWriter out;
  write_fingerprint(out, m_options);
  out.i64(m_advanced);
  out.i64(m_tracker->watermark());
  const OperatorStats& s = *m_stats;
  for (std::uint64_t v : {s.events, s.late_dropped, s.late_side, s.late_accepted, s.rows, s.corrections, s.markers,
                          s.alerts}) {
    out.u64(v);
  }
  const auto sources = m_tracker->source_times();
  out.u64(sources.size());
  for (const auto& [id, t] : sources) {
    out.u64(id);
    out.i64(t);
  }
  out.u64(inputs.size());
  for (const auto& [id, seq] : inputs) {
    out.u64(id);
    out.u64(seq);
  }
  if (!m_store->save(out)) return fail(Errc::unsupported, "the aggregate's state cannot be checkpointed");
  const std::string& payload = out.bytes();
  detail::StateWriter head;
  head.bytes().append(magic);
  head.u64(payload.size());
  head.u64(fnv1a(payload));
  head.bytes().append(payload);
  return write_file(path, head.bytes());
}

Result<Positions> WindowOperator::restore(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return fail(Errc::io_error, what("cannot read", path), errno);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return fail(Errc::io_error, what("cannot read", path), errno);
  return restore_bytes(bytes);
}

Result<Positions> WindowOperator::restore_bytes(std::string_view bytes) {
  if (m_stats->events > 0 || m_tracker->sources() > 0) {
    return fail(Errc::invalid_argument, "restore needs a fresh operator");
  }
  if (bytes.size() < header_bytes || bytes.substr(0, magic.size()) != magic) {
    return fail(Errc::corrupt, "not a stream checkpoint");
  }
  detail::StateReader head(bytes.substr(magic.size(), 16));
  const std::uint64_t length = head.u64();
  const std::uint64_t sum = head.u64();
  const std::string_view payload = bytes.substr(header_bytes);
  if (length != payload.size() || fnv1a(payload) != sum) return fail(Errc::corrupt, "checkpoint checksum mismatch");

  detail::StateWriter expected;
  write_fingerprint(expected, m_options);
  if (payload.substr(0, expected.bytes().size()) != expected.bytes()) {
    return fail(Errc::incompatible, "checkpoint of a different window kind, size or lateness");
  }
  detail::StateReader in(payload.substr(expected.bytes().size()));
  const TimeMs advanced = in.i64();
  const TimeMs tracker_w = in.i64();
  OperatorStats s;
  for (std::uint64_t* v : {&s.events, &s.late_dropped, &s.late_side, &s.late_accepted, &s.rows, &s.corrections,
                           &s.markers, &s.alerts}) {
    *v = in.u64();
  }
  const std::uint64_t sources = in.count(16);
  for (std::uint64_t i = 0; i < sources && in.ok(); ++i) {
    const std::uint64_t id = in.u64();
    m_tracker->restore(id, in.i64());
  }
  Positions pos;
  const std::uint64_t inputs = in.count(16);
  for (std::uint64_t i = 0; i < inputs && in.ok(); ++i) {
    const std::uint64_t id = in.u64();
    pos.inputs[id] = in.u64();
  }
  if (!in.ok() || !m_store->load(in, advanced) || !in.done()) {
    // Leave no half-loaded state behind: a fresh store and tracker, as before the call.
    m_tracker = std::make_unique<WatermarkTracker>(m_options.watermark);
    m_store.reset();
    make_store();
    return fail(Errc::corrupt, "checkpoint state does not parse");
  }
  m_tracker->advance_to(tracker_w);
  m_advanced = advanced;
  *m_stats = s;
  pos.outputs = s.rows + s.markers;
  return pos;
}

}  // namespace rill::stream
