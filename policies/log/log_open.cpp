// Opening a log: find the segments, trust what the checkpoints vouch for, scan the rest,
// cut a torn tail, refuse corruption. Also segment creation, index files and retention.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "base/logging.hpp"
#include "crc32c.hpp"
#include "log_core.hpp"
#include "rill/codec.hpp"

namespace rill::detail {

namespace fs = std::filesystem;

Error corrupt_at(const fs::path& seg, std::uint64_t offset, std::string_view what) {
  return Error{
      Errc::corrupt, 0,
      "segment " + seg.filename().string() + " at offset " + std::to_string(offset) + ": " + std::string(what)};
}

FileMap& FileMap::operator=(FileMap&& o) noexcept {
  if (this != &o) {
    if (m_data != nullptr) ::munmap(const_cast<std::byte*>(m_data), m_size);
    m_data = std::exchange(o.m_data, nullptr);
    m_size = std::exchange(o.m_size, 0);
  }
  return *this;
}

FileMap::~FileMap() {
  if (m_data != nullptr) ::munmap(const_cast<std::byte*>(m_data), m_size);
}

Result<FileMap> FileMap::map(const fs::path& path, std::size_t at_least) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(Errc::io_error, "open " + path.string(), errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return fail(Errc::io_error, "stat " + path.string(), e);
  }
  FileMap m;
  // Mapping past the end lets a growing active segment be read without remapping;
  // only bytes below the file's size are ever touched.
  const std::size_t size = std::max<std::size_t>(static_cast<std::size_t>(st.st_size), at_least);
  if (size > 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      return fail(Errc::io_error, "mmap " + path.string(), e);
    }
    m.m_data = static_cast<const std::byte*>(p);
    m.m_size = size;
  }
  ::close(fd);
  return m;
}

void LogSegment::note_record(const logfmt::RecordView& r, std::size_t interval) {
  if (r.offset >= next_index_at) {
    index.push_back({r.sequence, max_ts, r.offset});
    next_index_at = r.offset + interval;
  }
  if (records == 0) first_ts = r.timestamp_ns;
  ++records;
  max_ts = std::max(max_ts, r.timestamp_ns);
}

logfmt::IndexFile LogSegment::index_file(std::uint64_t end_offset) const {
  return {.base_seq = base_seq,
          .end_offset = end_offset,
          .last_seq = last_seq.load(),
          .records = records,
          .first_ts = first_ts,
          .max_ts = max_ts,
          .entries = index};
}

namespace {

Result<void> fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(Errc::io_error, "open " + dir.string(), errno);
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0) return fail(e == ENOSPC || e == EDQUOT ? Errc::no_space : Errc::io_error, "fsync " + dir.string(), e);
  return {};
}

Errc errc_for(int e) {
  return e == ENOSPC || e == EDQUOT ? Errc::no_space : Errc::io_error;
}

Result<void> write_all(int fd, std::span<const std::byte> data, const fs::path& what) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errc_for(errno), "write " + what.string(), errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

std::vector<std::uint64_t> list_segments(const fs::path& dir) {
  std::vector<std::uint64_t> bases;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (name.size() != 24 || !name.ends_with(".log")) continue;
    if (!std::all_of(name.begin(), name.begin() + 20, [](char c) { return c >= '0' && c <= '9'; })) continue;
    bases.push_back(std::stoull(name.substr(0, 20)));
  }
  std::sort(bases.begin(), bases.end());
  return bases;
}

std::vector<std::byte> read_whole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::byte> out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

std::uint64_t random_id() {
  std::random_device rd;
  std::uint64_t id = 0;
  while (id == 0) id = (std::uint64_t{rd()} << 32) ^ rd();
  return id;
}

// A valid record anywhere after `from` means the damage at `from` is not a torn tail:
// whatever was written after it reached the disk, so the bad bytes are corruption.
bool valid_record_after(std::span<const std::byte> data, std::size_t from, std::size_t max_body) {
  logfmt::RecordView r;
  for (std::size_t off = from + 8; off + logfmt::record_header_bytes <= data.size(); off += 8) {
    if (logfmt::check_record(data, off, max_body, r) == logfmt::RecordCheck::ok) return true;
  }
  return false;
}

}  // namespace

Result<void> LogCore::write_index(const LogSegment& seg, std::uint64_t end_offset) {
  const auto bytes = logfmt::encode_index(seg.index_file(end_offset));
  const auto path = dir / logfmt::segment_name(seg.base_seq, ".idx");
  const auto tmp = dir / logfmt::segment_name(seg.base_seq, ".idx.tmp");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(errc_for(errno), "create " + tmp.string(), errno);
  auto w = write_all(fd, bytes, tmp);
  if (w && ::fdatasync(fd) != 0) w = fail(errc_for(errno), "fsync " + tmp.string(), errno);
  ::close(fd);
  if (w && ::rename(tmp.c_str(), path.c_str()) != 0) w = fail(Errc::io_error, "rename " + tmp.string(), errno);
  if (!w) {
    ::unlink(tmp.c_str());
    return w;
  }
  return fsync_dir(dir);
}

Result<void> LogCore::create_segment(std::uint64_t base_seq) {
  const auto path = dir / logfmt::segment_name(base_seq, ".log");
  const int nfd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (nfd < 0) return fail(errc_for(errno), "create " + path.string(), errno);
  std::array<std::byte, logfmt::segment_header_bytes> hdr{};
  logfmt::encode_segment_header(hdr,
                                {.publisher_id = publisher_id, .base_seq = base_seq, .created_ns = wall_clock_ns()});
  auto w = write_all(nfd, hdr, path);
  if (w && ::fdatasync(nfd) != 0) w = fail(errc_for(errno), "fsync " + path.string(), errno);
  if (w) w = fsync_dir(dir);
  if (!w) {
    ::close(nfd);
    ::unlink(path.c_str());
    return w;
  }
  auto seg = std::make_shared<LogSegment>();
  seg->path = path;
  seg->base_seq = base_seq;
  seg->last_seq = base_seq - 1;
  seg->end = logfmt::segment_header_bytes;
  {
    std::lock_guard g(seg_mu);
    if (!segs.empty()) segs.back()->sealed = true;
    segs.push_back(std::move(seg));
  }
  if (fd >= 0) ::close(fd);
  fd = nfd;
  file_end = logfmt::segment_header_bytes;
  open_direct(path);
  return {};
}

Result<void> LogCore::recover() {
  std::error_code ec;
  if (!opt.read_only) {
    fs::create_directories(dir, ec);
    if (ec) return fail(Errc::io_error, "create " + dir.string() + ": " + ec.message());
    lock_fd = ::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) return fail(Errc::io_error, "open " + (dir / "lock").string(), errno);
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      return fail(Errc::address_in_use, "log " + dir.string() + " is open for writing in another process", errno);
    }
  } else if (!fs::is_directory(dir, ec)) {
    return fail(Errc::invalid_argument, "no log directory " + dir.string());
  }

  auto bases = list_segments(dir);
  if (bases.empty()) {
    if (opt.read_only) return fail(Errc::invalid_argument, "no log segments in " + dir.string());
    publisher_id = opt.publisher_id != 0 ? opt.publisher_id : random_id();
    return create_segment(1);
  }

  for (std::size_t i = 0; i < bases.size(); ++i) {
    const bool last = i + 1 == bases.size();
    const auto path = dir / logfmt::segment_name(bases[i], ".log");
    auto map = FileMap::map(path);
    if (!map) return std::unexpected(map.error());
    const auto data = map->bytes();
    std::error_code idx_ec;
    const bool has_index = fs::exists(dir / logfmt::segment_name(bases[i], ".idx"), idx_ec);
    if (last && !has_index && data.size() <= logfmt::segment_header_bytes && !logfmt::decode_segment_header(data)) {
      // A crash between creating the file and syncing its header (a roll, or the very first
      // segment): no record ever went into it.
      recovery.removed_empty_segment = true;
      if (!opt.read_only) {
        ::unlink(path.c_str());
        if (auto s = fsync_dir(dir); !s) return s;
      }
      break;
    }
    auto hdr = logfmt::decode_segment_header(data);
    if (!hdr) return std::unexpected(corrupt_at(path, 0, hdr.error().detail));
    if (hdr->base_seq != bases[i])
      return std::unexpected(corrupt_at(path, 0, "header base sequence differs from the file name"));
    if (i == 0) publisher_id = hdr->publisher_id;
    if (hdr->publisher_id != publisher_id)
      return std::unexpected(corrupt_at(path, 0, "segment belongs to another publisher"));
    if (!segs.empty() && segs.back()->last_seq + 1 != hdr->base_seq) {
      return std::unexpected(corrupt_at(segs.back()->path, segs.back()->end,
                                        "segment ends at sequence " + std::to_string(segs.back()->last_seq) +
                                            " but the next one starts at " + std::to_string(hdr->base_seq)));
    }

    auto seg = std::make_shared<LogSegment>();
    seg->path = path;
    seg->base_seq = hdr->base_seq;
    std::uint64_t last_seq = hdr->base_seq - 1;
    std::size_t off = logfmt::segment_header_bytes;

    // The index file is the checkpoint: what it covers was synced and valid when written.
    const auto idx_bytes = read_whole(dir / logfmt::segment_name(bases[i], ".idx"));
    auto idx = idx_bytes.empty() ? Result<logfmt::IndexFile>(fail(Errc::corrupt, "no index"))
                                 : logfmt::decode_index(idx_bytes);
    if (idx && (idx->base_seq != seg->base_seq || idx->end_offset < logfmt::segment_header_bytes)) {
      idx = fail(Errc::corrupt, "index does not match its segment");
    }
    if (idx && idx->end_offset > data.size()) {
      return std::unexpected(corrupt_at(
          path, data.size(), "segment is shorter than its checkpoint (" + std::to_string(idx->end_offset) + " bytes)"));
    }
    if (!idx) {
      if (!idx_bytes.empty() || !last) ++recovery.indexes_rebuilt;
    } else {
      seg->checkpoint_end = idx->end_offset;
      if (!opt.verify_all) {
        seg->index = std::move(idx->entries);
        seg->records = idx->records;
        seg->first_ts = idx->first_ts;
        seg->max_ts = idx->max_ts;
        seg->next_index_at = seg->index.empty() ? 0 : seg->index.back().offset + opt.index_interval_bytes;
        last_seq = idx->last_seq;
        off = idx->end_offset;
      }
    }

    logfmt::RecordView r;
    logfmt::RecordCheck check = logfmt::RecordCheck::ok;
    while (off < data.size()) {
      check = logfmt::check_record(data, off, opt.max_record_bytes, r);
      if (check != logfmt::RecordCheck::ok) break;
      if (r.sequence != last_seq + 1) {
        return std::unexpected(corrupt_at(
            path, off,
            "sequence " + std::to_string(r.sequence) + " where " + std::to_string(last_seq + 1) + " was expected"));
      }
      seg->note_record(r, opt.index_interval_bytes);
      last_seq = r.sequence;
      off += r.size;
      ++recovery.records_scanned;
    }
    if (off < data.size()) {
      const char* why = logfmt::to_string(check);
      if (!last || off < seg->checkpoint_end || valid_record_after(data, off, opt.max_record_bytes)) {
        return std::unexpected(corrupt_at(path, off, why));
      }
      recovery.torn_tail = true;
      recovery.torn_segment = path.filename().string();
      recovery.torn_offset = off;
      recovery.torn_bytes = data.size() - off;
      recovery.torn_reason = why;
      if (!opt.read_only) {
        if (::truncate(path.c_str(), static_cast<off_t>(off)) != 0)
          return fail(Errc::io_error, "truncate " + path.string(), errno);
        const int tfd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (tfd >= 0) {
          ::fdatasync(tfd);
          ::close(tfd);
        }
      }
    }
    seg->end = off;
    seg->last_seq = last_seq;
    seg->sealed = !last;
    segs.push_back(std::move(seg));
    // Sealed segments without a usable index get one now, so the next open skips their scan.
    if (!last && !opt.read_only && !idx) {
      if (auto w = write_index(*segs.back(), off); !w) return w;
    }
  }
  if (segs.empty()) {  // the only segment was a torn creation
    if (opt.read_only) return fail(Errc::invalid_argument, "no log segments in " + dir.string());
    publisher_id = opt.publisher_id != 0 ? opt.publisher_id : random_id();
    if (auto c = create_segment(bases.front()); !c) return c;
    recovery.segments = 1;
    return {};
  }
  recovery.segments = segs.size();
  first_seq = segs.front()->base_seq;
  visible_seq = segs.back()->last_seq.load();
  if (recovery.torn_tail) {
    detail::log().warn("log {}: torn tail in {} at offset {} ({} bytes, {}){}", dir.string(), recovery.torn_segment,
                       recovery.torn_offset, recovery.torn_bytes, recovery.torn_reason,
                       opt.read_only ? " (read-only: not cut)" : ", cut");
  }
  if (opt.read_only) return {};
  const auto& active = segs.back();
  fd = ::open(active->path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail(Errc::io_error, "open " + active->path.string(), errno);
  file_end = active->end;
  open_direct(active->path);
  return {};
}

Result<std::size_t> LogCore::retention() {
  if (opt.retention_bytes == 0 && opt.retention_age.count() <= 0) return 0;
  const std::int64_t now = wall_clock_ns();
  const std::int64_t age_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(opt.retention_age).count();
  std::vector<std::shared_ptr<LogSegment>> doomed;
  {
    std::lock_guard g(seg_mu);
    std::uint64_t total = 0;
    for (const auto& s : segs) total += s->end;
    while (segs.size() > 1) {  // the active segment is never deleted
      const auto& s = segs.front();
      const bool too_big = opt.retention_bytes != 0 && total > opt.retention_bytes;
      const bool too_old = age_ns > 0 && s->records > 0 && s->max_ts < now - age_ns;
      if (!too_big && !too_old) break;
      total -= s->end;
      doomed.push_back(s);
      segs.pop_front();
    }
    first_seq = segs.front()->base_seq;
  }
  // Readers still inside a deleted segment keep reading it through their own mapping.
  for (const auto& s : doomed) {
    ::unlink(s->path.c_str());
    ::unlink((dir / logfmt::segment_name(s->base_seq, ".idx")).c_str());
  }
  if (!doomed.empty()) {
    st_deleted += doomed.size();
    if (auto f = fsync_dir(dir); !f) return std::unexpected(f.error());
  }
  return doomed.size();
}

std::shared_ptr<LogSegment> LogCore::segment_for(std::uint64_t seq) const {
  std::lock_guard g(seg_mu);
  for (const auto& s : segs) {
    if (seq <= s->last_seq.load(std::memory_order_acquire)) return s;
  }
  return segs.back();  // not visible yet: it will land in the active segment (or after a roll)
}

LogCore::~LogCore() {
  if (ring_ok) io_uring_queue_exit(&ring);
  if (fd >= 0) ::close(fd);
  if (direct_fd >= 0) ::close(direct_fd);
  if (lock_fd >= 0) ::close(lock_fd);
}

}  // namespace rill::detail
