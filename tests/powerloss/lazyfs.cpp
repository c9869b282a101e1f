// lazyfs: a FUSE file system for power-loss tests (after the idea of Jepsen's LazyFS).
//
//   lazyfs BACKING_DIR MOUNTPOINT -f -s
//
// Everything passes through to BACKING_DIR, except file data: writes and truncates are kept in
// memory, per file (per backing inode), until the file is fsync'ed or fdatasync'ed; then they are
// applied to the backing file and that file is fsync'ed. Reads see the pending writes overlaid.
// Writing "cut" to the control file MOUNTPOINT/.lazyfs drops every pending write and truncate, as
// a power cut drops what was only in the page cache. Writing "tear SEED" cuts the power while
// the pending data was being written back: of each file, its new content up to a random sector
// boundary (drawn from SEED) is kept, in offset order, the rest dropped; so a log's last record
// can be left half written, as on a real disk that wrote back in order. The write on the control
// file returns once the cut is done. Reading the control file gives counters, "name value" a
// line. A cut also retires every file handle opened before it: writes and syncs through them
// fail with EIO, so a request of a killed process that reaches us late (io_uring's workers can
// outlive the process by a moment) cannot land after the "power" came back.
//
// Metadata is durable at once: create, mkdir, rename, unlink, rmdir, chmod, utimens act on the
// backing directory when they happen, and directory fsync only fsyncs the backing directory.
// That is a disk whose journal committed the metadata (ext4 data=ordered after a commit) while
// the data stayed in the page cache: after a cut a file created and never fsync'ed exists and is
// empty, a renamed file keeps its new name, and an unsynced write or truncate is undone.
// A cut drops all of a file's unsynced data; a tear keeps a prefix of it. Neither keeps a later
// sector of the unsynced data without the earlier ones (write-back out of order is not modelled).
//
// Run it single-threaded (-s); a mutex still guards the state. The kernel must not cache file
// data across a cut, so every open drops the kernel's cached pages (no kernel_cache) and
// attributes are never cached (timeouts 0); writeback caching stays off (writes reach us at once).
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

namespace {

constexpr std::string_view control_path = "/.lazyfs";
constexpr std::uint64_t control_fh = UINT64_MAX;

// One file's writes and truncates since its last sync, as the file's logical content would be:
// bytes below `keep` come from the backing file, bytes from `keep` to `size` are zero, and
// `extents` (disjoint, not touching) lie on top of both.
struct Pending {
  int fd = -1;  // the backing file, dup'ed: a tear writes through it once every handle is closed
  std::uint64_t size = 0;
  std::uint64_t keep = 0;
  std::map<std::uint64_t, std::string> extents;

  void write(std::uint64_t off, const char* data, std::size_t n) {
    const std::uint64_t end = off + n;
    size = std::max(size, end);
    auto it = extents.upper_bound(off);
    const auto next_start = it == extents.end() ? UINT64_MAX : it->first;
    if (it != extents.begin()) {
      auto prev = std::prev(it);
      const auto prev_end = prev->first + prev->second.size();
      // The common case (appending to a log): the write extends the extent before it in place.
      if (prev_end >= off && next_start > end) {
        auto& s = prev->second;
        const auto at = off - prev->first;
        if (at + n > s.size()) s.resize(at + n);
        std::memcpy(s.data() + at, data, n);
        return;
      }
      if (prev_end >= off) it = prev;
    }
    std::uint64_t start = off;
    std::string merged;
    if (it != extents.end() && it->first < off) {
      start = it->first;
      merged = it->second.substr(0, off - it->first);
    }
    merged.append(data, n);
    while (it != extents.end() && it->first <= end) {
      const auto e_end = it->first + it->second.size();
      if (e_end > end) merged.append(it->second, end - it->first, e_end - end);
      it = extents.erase(it);
    }
    extents.emplace(start, std::move(merged));
  }

  void truncate(std::uint64_t n) {
    while (!extents.empty()) {
      auto last = std::prev(extents.end());
      if (last->first >= n) {
        extents.erase(last);
      } else {
        if (last->first + last->second.size() > n) last->second.resize(n - last->first);
        break;
      }
    }
    size = n;
    keep = std::min(keep, n);
  }

  Pending() = default;
  Pending(const Pending&) = delete;
  Pending& operator=(const Pending&) = delete;
  ~Pending() {
    if (fd >= 0) ::close(fd);
  }

  [[nodiscard]] std::uint64_t bytes() const {
    std::uint64_t b = 0;
    for (const auto& [off, s] : extents) b += s.size();
    return b;
  }
};

struct Handle {
  int fd = -1;
  ino_t ino = 0;
  std::uint64_t epoch = 0;
  bool sync_writes = false;  // opened O_SYNC / O_DSYNC: every write is applied and synced at once
};

struct State {
  std::mutex mu;
  std::string backing;
  std::unordered_map<ino_t, Pending> pending;
  std::unordered_map<std::uint64_t, Handle> handles;
  std::unordered_map<std::uint64_t, std::string> dirs;  // open directories: their paths (nullpath_ok omits them)
  std::uint64_t next_fh = 1;
  std::uint64_t epoch = 0;
  // Counters the control file reports.
  std::uint64_t torn_files = 0, kept_bytes = 0;
  std::uint64_t cuts = 0, dropped_bytes = 0, dropped_files = 0, synced_bytes = 0, syncs = 0, stale_ops = 0;
};

State g;

// A backing path; an empty one (no such file) for a call that names no path.
std::string real(const char* path) {
  return path != nullptr ? g.backing + path : std::string();
}
bool is_control(const char* path) {
  return path != nullptr && control_path == path;
}

Handle* handle_of(const fuse_file_info* fi) {
  if (fi == nullptr) return nullptr;
  auto it = g.handles.find(fi->fh);
  return it == g.handles.end() ? nullptr : &it->second;
}

// The handle for a data operation, or nullptr when it was opened before the last cut.
Handle* live_handle(const fuse_file_info* fi) {
  Handle* h = handle_of(fi);
  if (h != nullptr && h->epoch != g.epoch) {
    ++g.stale_ops;
    return nullptr;
  }
  return h;
}

Pending& pending_for(int fd, ino_t ino) {
  auto it = g.pending.find(ino);
  if (it != g.pending.end()) return it->second;
  struct stat st {};
  ::fstat(fd, &st);
  auto& p = g.pending[ino];
  p.fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  p.size = p.keep = static_cast<std::uint64_t>(st.st_size);
  return p;
}

int pwrite_all(int fd, const char* data, std::size_t n, std::uint64_t off) {
  for (std::size_t done = 0; done < n;) {
    const ssize_t w = ::pwrite(fd, data + done, n - done, static_cast<off_t>(off + done));
    if (w < 0) return -errno;
    done += static_cast<std::size_t>(w);
  }
  return 0;
}

// Writes the pending extents, clipped to the bytes below `limit`, to the backing file.
int write_extents(int fd, const Pending& p, std::uint64_t limit) {
  for (const auto& [off, s] : p.extents) {
    if (off >= limit) break;
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(s.size(), limit - off));
    if (const int rc = pwrite_all(fd, s.data(), n, off); rc != 0) return rc;
    g.synced_bytes += n;
  }
  return 0;
}

// Applies a file's pending writes to the backing file and syncs it.
int apply(int fd, ino_t ino, bool datasync) {
  auto it = g.pending.find(ino);
  if (it != g.pending.end()) {
    const Pending& p = it->second;
    struct stat st {};
    if (::fstat(fd, &st) != 0) return -errno;
    if (p.keep < static_cast<std::uint64_t>(st.st_size) && ::ftruncate(fd, static_cast<off_t>(p.keep)) != 0) {
      return -errno;
    }
    if (const int rc = write_extents(fd, p, UINT64_MAX); rc != 0) return rc;
    if (::ftruncate(fd, static_cast<off_t>(p.size)) != 0) return -errno;
    g.pending.erase(it);
  }
  ++g.syncs;
  return (datasync ? ::fdatasync(fd) : ::fsync(fd)) == 0 ? 0 : -errno;
}

// Forgets pending data of an inode whose last name is gone and that no handle holds open.
void forget_if_gone(ino_t ino) {
  for (const auto& [fh, h] : g.handles) {
    if (h.ino == ino) return;
  }
  g.pending.erase(ino);
}

void cut() {
  for (const auto& [ino, p] : g.pending) g.dropped_bytes += p.bytes();
  g.dropped_files += g.pending.size();
  g.pending.clear();
  ++g.epoch;
  ++g.cuts;
}

// A disk that was writing this file's pending data back in offset order when the power went:
// the file holds its new content below `at` and its old content from there on.
int tear_file(const Pending& p, std::uint64_t at) {
  struct stat st {};
  if (::fstat(p.fd, &st) != 0) return -errno;
  const auto old_size = static_cast<std::uint64_t>(st.st_size);
  // What a pending truncate cut away reads as zeros below the tear (unless written again).
  const std::string zeros(64u << 10, '\0');
  for (auto off = p.keep; off < std::min(at, old_size); off += zeros.size()) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), std::min(at, old_size) - off));
    if (const int rc = pwrite_all(p.fd, zeros.data(), n, off); rc != 0) return rc;
  }
  const auto synced_before = g.synced_bytes;
  if (const int rc = write_extents(p.fd, p, at); rc != 0) return rc;
  g.kept_bytes += g.synced_bytes - synced_before;
  const auto size = at >= p.size ? p.size : std::max(old_size, at);
  if (::ftruncate(p.fd, static_cast<off_t>(size)) != 0) return -errno;
  ++g.torn_files;
  return ::fdatasync(p.fd) == 0 ? 0 : -errno;
}

// A power cut while the pending data was being written back: of each file a random prefix of
// its pending data (whole 512-byte sectors, from where it differs from the disk) survives.
int tear(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<ino_t, const Pending*> order;  // by inode: the same files draw the same numbers on a replay
  for (const auto& [ino, p] : g.pending) order.emplace(ino, &p);
  int rc = 0;
  const auto kept_before = g.kept_bytes;
  for (const auto& [ino, p] : order) {
    const auto lo = std::min(p->keep, p->extents.empty() ? p->size : p->extents.begin()->first);
    const auto hi = std::max(p->size, lo);
    const auto at = std::max(lo, (lo + rng() % (hi - lo + 1)) & ~std::uint64_t{511});
    if (const int r = tear_file(*p, at); r != 0 && rc == 0) rc = r;
  }
  cut();  // the rest is gone, and the handles from before the power went with it
  g.dropped_bytes -= g.kept_bytes - kept_before;
  return rc;
}

std::string counters() {
  std::string s;
  auto add = [&](const char* name, std::uint64_t v) { s += std::string(name) + " " + std::to_string(v) + "\n"; };
  add("cuts", g.cuts);
  add("dropped_bytes", g.dropped_bytes);
  add("dropped_files", g.dropped_files);
  add("synced_bytes", g.synced_bytes);
  add("syncs", g.syncs);
  add("stale_ops", g.stale_ops);
  add("torn_files", g.torn_files);
  add("kept_bytes", g.kept_bytes);
  add("pending_files", g.pending.size());
  return s;
}

void* op_init(fuse_conn_info* conn, fuse_config* cfg) {
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_WRITEBACK_CACHE);
  cfg->kernel_cache = 0;
  cfg->attr_timeout = 0;
  cfg->entry_timeout = 0;
  cfg->negative_timeout = 0;
  cfg->hard_remove = 1;  // unlink really unlinks (no .fuse_hidden files in the log directory)
  cfg->nullpath_ok = 1;  // ops on open unlinked files arrive with their handle and no path
  return nullptr;
}

int op_getattr(const char* path, struct stat* st, fuse_file_info* fi) {
  std::lock_guard lock(g.mu);
  if (is_control(path)) {
    *st = {};
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    return 0;
  }
  const Handle* h = handle_of(fi);
  const int rc = h != nullptr ? ::fstat(h->fd, st) : ::lstat(real(path).c_str(), st);
  if (rc != 0) return -errno;
  if (auto it = g.pending.find(st->st_ino); it != g.pending.end()) {
    st->st_size = static_cast<off_t>(it->second.size);
    st->st_blocks = static_cast<blkcnt_t>((it->second.size + 511) / 512);
  }
  return 0;
}

// The path of an open directory: from the call, or else from its handle.
std::string dir_path(const char* path, const fuse_file_info* fi) {
  if (path != nullptr) return real(path);
  auto it = g.dirs.find(fi->fh);
  return it == g.dirs.end() ? std::string() : real(it->second.c_str());
}

int op_opendir(const char* path, fuse_file_info* fi) {
  std::lock_guard lock(g.mu);
  struct stat st {};
  if (::stat(real(path).c_str(), &st) != 0) return -errno;
  if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  fi->fh = g.next_fh++;
  g.dirs[fi->fh] = path;
  return 0;
}

int op_releasedir(const char*, fuse_file_info* fi) {
  std::lock_guard lock(g.mu);
  g.dirs.erase(fi->fh);
  return 0;
}

int op_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info* fi, fuse_readdir_flags) {
  std::lock_guard lock(g.mu);
  DIR* d = ::opendir(dir_path(path, fi).c_str());
  if (d == nullptr) return -errno;
  while (const dirent* e = ::readdir(d)) {
    if (fill(buf, e->d_name, nullptr, 0, static_cast<fuse_fill_dir_flags>(0)) != 0) break;
  }
  ::closedir(d);
  return 0;
}

int op_mkdir(const char* path, mode_t mode) {
  std::lock_guard lock(g.mu);
  return ::mkdir(real(path).c_str(), mode) == 0 ? 0 : -errno;
}

int op_rmdir(const char* path) {
  std::lock_guard lock(g.mu);
  return ::rmdir(real(path).c_str()) == 0 ? 0 : -errno;
}

int op_unlink(const char* path) {
  std::lock_guard lock(g.mu);
  struct stat st {};
  const bool last_name = ::lstat(real(path).c_str(), &st) == 0 && st.st_nlink == 1;
  if (::unlink(real(path).c_str()) != 0) return -errno;
  if (last_name) forget_if_gone(st.st_ino);
  return 0;
}

int op_rename(const char* from, const char* to, unsigned int flags) {
  std::lock_guard lock(g.mu);
  if (flags != 0) return -EINVAL;
  struct stat st {};
  const bool replaces = ::lstat(real(to).c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1;
  if (::rename(real(from).c_str(), real(to).c_str()) != 0) return -errno;
  if (replaces) forget_if_gone(st.st_ino);
  return 0;
}

int op_chmod(const char* path, mode_t mode, fuse_file_info*) {
  std::lock_guard lock(g.mu);
  return ::chmod(real(path).c_str(), mode) == 0 ? 0 : -errno;
}

int op_utimens(const char* path, const timespec tv[2], fuse_file_info* fi) {
  std::lock_guard lock(g.mu);
  if (const Handle* h = handle_of(fi)) return ::futimens(h->fd, tv) == 0 ? 0 : -errno;
  return ::utimensat(AT_FDCWD, real(path).c_str(), tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

int op_truncate(const char* path, off_t size, fuse_file_info* fi) {
  std::lock_guard lock(g.mu);
  if (is_control(path)) return 0;
  int fd = -1;
  bool own = false;
  if (fi != nullptr) {
    const Handle* h = live_handle(fi);
    if (h == nullptr) return -EIO;
    fd = h->fd;
  } else {
    fd = ::open(real(path).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    own = true;
  }
  struct stat st {};
  int rc = ::fstat(fd, &st) == 0 ? 0 : -errno;
  if (rc == 0) pending_for(fd, st.st_ino).truncate(static_cast<std::uint64_t>(size));
  if (own) ::close(fd);
  return rc;
}

// Opens the backing file read-write whatever was asked (a sync through a read-only handle must
// still be able to apply the pending writes) and without O_APPEND/O_TRUNC/O_DIRECT, which this
// layer handles itself.
int open_backing(const char* path, int flags, mode_t mode, fuse_file_info* fi) {
  const int strip = O_ACCMODE | O_APPEND | O_TRUNC | O_DIRECT | O_SYNC | O_DSYNC;
  const int fd = ::open(real(path).c_str(), (flags & ~strip) | O_RDWR | O_CLOEXEC, mode);
  if (fd < 0) return -errno;
  struct stat st {};
  ::fstat(fd, &st);
  if ((flags & O_TRUNC) != 0) pending_for(fd, st.st_ino).truncate(0);
  const std::uint64_t fh = g.next_fh++;
  g.handles[fh] = Handle{fd, st.st_ino, g.epoch, (flags & (O_SYNC | O_DSYNC)) != 0};
  fi->fh = fh;
  fi->keep_cache = 0;
  return 0;
}

int op_open(const char* path, fuse_file_info* fi) {
  std::lock_guard lock(g.mu);
  if (is_control(path)) {
    fi->fh = control_fh;
    fi->direct_io = 1;  // the counters change under the kernel's feet
    return 0;
  }
  return open_backing(path, fi->flags, 0, fi);
}

int op_create(const char* path, mode_t mode, fuse_file_info* fi) {
  std::lock_guard lock(g.mu);
  if (is_control(path)) return -EEXIST;
  return open_backing(path, fi->flags | O_CREAT, mode, fi);
}

int op_read(const char*, char* buf, size_t len, off_t offset, fuse_file_info* fi) {
  std::lock_guard lock(g.mu);
  const auto off = static_cast<std::uint64_t>(offset);
  if (fi->fh == control_fh) {
    const std::string text = counters();
    if (off >= text.size()) return 0;
    const auto n = std::min<std::size_t>(len, text.size() - off);
    std::memcpy(buf, text.data() + off, n);
    return static_cast<int>(n);
  }
  const Handle* h = handle_of(fi);
  if (h == nullptr) return -EBADF;
  auto it = g.pending.find(h->ino);
  if (it == g.pending.end()) {
    const ssize_t n = ::pread(h->fd, buf, len, offset);
    return n < 0 ? -errno : static_cast<int>(n);
  }
  const Pending& p = it->second;
  if (off >= p.size) return 0;
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(len, p.size - off));
  std::memset(buf, 0, n);
  if (off < p.keep) {
    // Bytes past the backing file's end read as zeros, as they would in the logical file.
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(n, p.keep - off));
    if (::pread(h->fd, buf, want, offset) < 0) return -errno;
  }
  const std::uint64_t end = off + n;
  auto e = p.extents.upper_bound(off);
  if (e != p.extents.begin()) --e;
  for (; e != p.extents.end() && e->first < end; ++e) {
    const auto from = std::max(off, e->first);
    const auto to = std::min<std::uint64_t>(end, e->first + e->second.size());
    if (from < to) std::memcpy(buf + (from - off), e->second.data() + (from - e->first), to - from);
  }
  return static_cast<int>(n);
}

int op_write(const char*, const char* data, size_t len, off_t offset, fuse_file_info* fi) {
  std::lock_guard lock(g.mu);
  if (fi->fh == control_fh) {
    std::string_view cmd(data, len);
    while (!cmd.empty() && (cmd.back() == '\n' || cmd.back() == ' ')) cmd.remove_suffix(1);
    if (cmd == "cut") {
      cut();
      return static_cast<int>(len);
    }
    if (cmd.starts_with("tear ")) {
      const std::string seed(cmd.substr(5));
      const int rc = tear(std::strtoull(seed.c_str(), nullptr, 10));
      return rc != 0 ? rc : static_cast<int>(len);
    }
    return -EINVAL;
  }
  const Handle* h = live_handle(fi);
  if (h == nullptr) return -EIO;
  pending_for(h->fd, h->ino).write(static_cast<std::uint64_t>(offset), data, len);
  if (h->sync_writes) {
    if (const int rc = apply(h->fd, h->ino, true); rc != 0) return rc;
  }
  return static_cast<int>(len);
}

int op_fsync(const char*, int datasync, fuse_file_info* fi) {
  std::lock_guard lock(g.mu);
  if (fi->fh == control_fh) return 0;
  const Handle* h = live_handle(fi);
  if (h == nullptr) return -EIO;
  return apply(h->fd, h->ino, datasync != 0);
}

int op_fsyncdir(const char* path, int, fuse_file_info* fi) {
  std::lock_guard lock(g.mu);
  const int fd = ::open(dir_path(path, fi).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  const int rc = ::fsync(fd) == 0 ? 0 : -errno;
  ::close(fd);
  return rc;
}

int op_release(const char*, fuse_file_info* fi) {
  std::lock_guard lock(g.mu);
  auto it = g.handles.find(fi->fh);
  if (it == g.handles.end()) return 0;
  const int fd = it->second.fd;
  const ino_t ino = it->second.ino;
  g.handles.erase(it);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_nlink == 0) forget_if_gone(ino);
  ::close(fd);
  return 0;
}

int op_statfs(const char*, struct statvfs* out) {
  std::lock_guard lock(g.mu);
  return ::statvfs(g.backing.c_str(), out) == 0 ? 0 : -errno;
}

fuse_operations make_ops() {
  fuse_operations ops{};
  ops.init = op_init;
  ops.getattr = op_getattr;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.releasedir = op_releasedir;
  ops.mkdir = op_mkdir;
  ops.rmdir = op_rmdir;
  ops.unlink = op_unlink;
  ops.rename = op_rename;
  ops.chmod = op_chmod;
  ops.utimens = op_utimens;
  ops.truncate = op_truncate;
  ops.open = op_open;
  ops.create = op_create;
  ops.read = op_read;
  ops.write = op_write;
  ops.fsync = op_fsync;
  ops.fsyncdir = op_fsyncdir;
  ops.release = op_release;
  ops.statfs = op_statfs;
  return ops;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: %s BACKING_DIR MOUNTPOINT [fuse options, e.g. -f -s]\n"
                 "  keeps file data in memory until fsync; write \"cut\" (or \"tear SEED\") to MOUNTPOINT/.lazyfs\n"
                 "  to drop it (or all but a prefix of it) as a power cut would\n",
                 argv[0]);
    return 2;
  }
  char resolved[PATH_MAX];
  if (::realpath(argv[1], resolved) == nullptr) {
    std::fprintf(stderr, "lazyfs: backing directory %s: %s\n", argv[1], std::strerror(errno));
    return 2;
  }
  g.backing = resolved;
  if (g.backing == "/") g.backing.clear();  // paths from FUSE start with '/'
  // fuse_main sees the arguments without the backing directory.
  argv[1] = argv[0];
  const fuse_operations ops = make_ops();
  return fuse_main(argc - 1, argv + 1, &ops, nullptr);
}
