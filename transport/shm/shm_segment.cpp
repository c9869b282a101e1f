#include "shm_segment.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <new>

#include "base/logging.hpp"

namespace rill::detail::shm {

namespace {

constexpr std::size_t header_bytes = 4096;
constexpr std::uint32_t max_ring = 1u << 16;

std::uint64_t round_up(std::uint64_t n, std::uint64_t to) {
  return (n + to - 1) / to * to;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 200) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

template <class T>
bool parse_number(std::string_view text, T& out, int base = 10) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc{} && end == text.data() + text.size();
}

Result<std::vector<PoolSpec>> parse_pools(std::string_view text) {
  std::vector<PoolSpec> pools;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto x = item.find('x');
    PoolSpec p;
    if (x == std::string_view::npos || !parse_number(item.substr(0, x), p.data_bytes) ||
        !parse_number(item.substr(x + 1), p.count) || p.data_bytes < 64 || p.count == 0) {
      return fail(Errc::invalid_argument, "shm pools entry '" + std::string(item) + "' is not BYTESxCOUNT");
    }
    pools.push_back(p);
  }
  if (pools.empty() || pools.size() > max_classes) {
    return fail(Errc::invalid_argument, "shm pools needs 1 to 8 entries");
  }
  return pools;
}

std::vector<PoolSpec> default_pools(const ShmOptions& o) {
  // The small class holds every ring of every slot full at once, so a slow drop
  // subscriber never starves the publisher of small chunks; bigger classes are fewer
  // and are reclaimed from drop subscribers' rings under pressure.
  return {{448, o.slots * o.ring + 1024}, {16320, 512}, {262080, 32}, {4194240, 4}};
}

std::string errno_detail(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Reads the fixed part of a segment header with pread: works on a file we do not map.
bool read_header(int fd, SegmentHeader& out) {
  return ::pread(fd, &out, offsetof(SegmentHeader, last_seq), 0) ==
         static_cast<ssize_t>(offsetof(SegmentHeader, last_seq));
}

bool is_hex16(std::string_view s) {
  return s.size() == 16 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// A segment file whose header names a publisher that is gone (or that is no segment).
bool segment_is_dead(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  SegmentHeader h{};
  const bool ok = read_header(fd, h) && std::memcmp(h.magic, shm_magic, sizeof h.magic) == 0;
  ::close(fd);
  return ok && !process_alive(h.publisher_pid, h.publisher_start);
}

}  // namespace

std::string directory_path(std::string_view name) {
  return "/dev/shm/rill." + std::string(name);
}

std::string channel_path(std::string_view name, std::uint64_t publisher_id) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(publisher_id));
  return directory_path(name) + "." + hex;
}

void sweep_stale_files(std::string_view name) {
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return;
  const std::string prefix = "rill." + std::string(name) + ".";
  std::vector<std::string> doomed;
  while (const dirent* e = ::readdir(dir)) {
    std::string_view file = e->d_name;
    if (!file.starts_with(prefix)) continue;
    auto rest = file.substr(prefix.size());
    if (is_hex16(rest)) {  // a segment: its publisher's process must still run
      if (segment_is_dead("/dev/shm/" + std::string(file))) doomed.emplace_back(file);
      continue;
    }
    if (is_hex16(rest.substr(0, 16)) && rest.substr(16).starts_with(".new.")) rest = rest.substr(17);  // a segment's
    if (!rest.starts_with("new.")) continue;
    rest = rest.substr(4);
    std::uint32_t pid = 0;
    if (!parse_number(rest.substr(0, rest.find('.')), pid)) continue;
    if (!process_exists(static_cast<pid_t>(pid))) doomed.emplace_back(file);
  }
  ::closedir(dir);
  for (const auto& file : doomed) {
    log().info("removing /dev/shm/{}, left by a process that is gone", file);
    ::unlink(("/dev/shm/" + file).c_str());
  }
}

Result<ShmOptions> parse_shm_options(const Endpoint& ep) {
  ShmOptions o;
  o.name = ep.host;
  if (!valid_name(o.name)) {
    return fail(Errc::invalid_argument,
                "shm endpoint '" + ep.uri + "' needs a name of 1-200 letters, digits, '.', '_' or '-'");
  }
  std::string_view q = ep.query;
  std::string pools_text;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const auto kv = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    const auto eq = kv.find('=');
    const auto key = kv.substr(0, eq);
    const auto value = eq == std::string_view::npos ? std::string_view{} : kv.substr(eq + 1);
    bool ok = true;
    if (key == "slots") {
      ok = parse_number(value, o.slots) && o.slots >= 1 && o.slots <= max_slots;
    } else if (key == "ring") {
      ok = parse_number(value, o.ring) && std::has_single_bit(o.ring) && o.ring <= max_ring;
    } else if (key == "pools") {
      pools_text = std::string(value);
    } else if (key == "mode") {
      ok = parse_number(value, o.mode, 8) && o.mode <= 0777 && (o.mode & 0600) == 0600;
    } else if (key == "group") {
      o.group = std::string(value);
      ok = !o.group.empty();
    } else if (key == "verify") {
      ok = value == "0" || value == "1";
      o.verify = value == "1";
    } else {
      return fail(Errc::invalid_argument, "unknown shm option '" + std::string(key) + "' in '" + ep.uri + "'");
    }
    if (!ok) {
      return fail(Errc::invalid_argument, "bad value for shm option '" + std::string(key) + "' in '" + ep.uri +
                                              "' (slots 1-63, ring a power of two up to 65536, mode octal with 0600)");
    }
  }
  if (!pools_text.empty()) {
    auto pools = parse_pools(pools_text);
    if (!pools) return std::unexpected(pools.error());
    o.pools = std::move(*pools);
  }
  return o;
}

namespace {

struct ProcStat {
  char state = '?';
  std::uint64_t start = 0;
};

// Fields 3 (state) and 22 (start time) of /proc/PID/stat.
std::optional<ProcStat> read_proc_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const auto paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return std::nullopt;
  std::string_view rest = std::string_view(line).substr(paren + 2);
  ProcStat st;
  st.state = rest.front();
  for (int field = 3; field < 22; ++field) {
    const auto sp = rest.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    rest = rest.substr(sp + 1);
  }
  if (!parse_number(rest.substr(0, rest.find(' ')), st.start)) return std::nullopt;
  return st;
}

}  // namespace

std::optional<std::uint64_t> process_start_time(pid_t pid) {
  const auto st = read_proc_stat(pid);
  if (!st) return std::nullopt;
  return st->start;
}

bool process_exists(pid_t pid) {
  const auto st = read_proc_stat(pid);
  return st && st->state != 'Z' && st->state != 'X';
}

bool process_alive(std::uint32_t pid, std::uint64_t start) {
  if (pid == 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  // A killed process its parent has not reaped yet is a zombie: still in /proc, with
  // the same start time, but it will never touch the segment again.
  const auto now = read_proc_stat(static_cast<pid_t>(pid));
  return now && now->start == start && now->state != 'Z' && now->state != 'X';
}

Mapping::~Mapping() {
  if (m_base != nullptr) ::munmap(m_base, m_size);
}

void Mapping::release() noexcept {
  if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

Result<void> Mapping::adopt_geometry() {
  // Copy everything out of the header once (another process could change it later),
  // then check it against the size of what is actually mapped.
  SegmentHeader h;
  std::memcpy(static_cast<void*>(&h), m_base, offsetof(SegmentHeader, state));
  if (std::memcmp(h.magic, shm_magic, sizeof h.magic) != 0)
    return fail(Errc::malformed, "not a rill segment (bad magic)");
  if (h.version != shm_version) {
    return fail(Errc::incompatible, "segment layout version " + std::to_string(h.version) + ", this build reads " +
                                        std::to_string(shm_version));
  }
  const auto bad = [](const char* what) {
    return fail(Errc::malformed, std::string("corrupt segment header: ") + what);
  };
  if (h.header_bytes != header_bytes || h.total_bytes != m_size) return bad("sizes");
  if (h.slot_count == 0 || h.slot_count > max_slots) return bad("slot count");
  if (!std::has_single_bit(h.ring_capacity) || h.ring_capacity > max_ring) return bad("ring capacity");
  if (h.class_count == 0 || h.class_count > max_classes || h.topic_bytes > max_topic_bytes) return bad("class count");
  if (h.slots_offset < header_bytes || h.slots_offset % cache_line != 0 ||
      h.slots_offset + std::uint64_t{h.slot_count} * sizeof(Slot) > m_size) {
    return bad("slot table");
  }
  if (h.rings_offset < header_bytes || h.rings_offset % cache_line != 0 ||
      h.rings_offset + std::uint64_t{h.slot_count} * h.ring_capacity * 8 > m_size) {
    return bad("rings");
  }
  std::uint64_t next_index = 0;
  for (std::uint32_t c = 0; c < h.class_count; ++c) {
    const auto& pc = h.classes[c];
    if (pc.chunk_bytes < 2 * chunk_header_bytes || pc.chunk_bytes % cache_line != 0 || pc.count == 0 ||
        pc.offset < header_bytes || pc.offset % cache_line != 0 || pc.first_index != next_index || pc.offset > m_size ||
        std::uint64_t{pc.chunk_bytes} * pc.count > m_size - pc.offset) {
      return bad("chunk pool");
    }
    next_index += pc.count;
  }
  if (next_index != h.chunk_count || next_index > max_chunks) return bad("chunk count");
  m_slot_count = h.slot_count;
  m_ring_capacity = h.ring_capacity;
  m_chunk_count = h.chunk_count;
  m_slots_offset = h.slots_offset;
  m_rings_offset = h.rings_offset;
  m_classes.assign(h.classes, h.classes + h.class_count);
  m_publisher_id = h.publisher_id;
  m_publisher_pid = h.publisher_pid;
  m_publisher_start = h.publisher_start;
  m_topic.assign(h.topic, h.topic_bytes);
  return {};
}

std::span<const std::byte> Mapping::envelope_of(std::uint32_t index) const noexcept {
  ChunkHeader* h = chunk(index);
  if (h == nullptr) return {};
  // Read each field once: the checks and the use must see the same values.
  const std::uint32_t offset = std::atomic_ref(h->data_offset).load(std::memory_order_relaxed);
  const std::uint32_t size = std::atomic_ref(h->data_size).load(std::memory_order_relaxed);
  const std::uint64_t limit = chunk_data_bytes(index) + chunk_header_bytes;
  if (offset < chunk_header_bytes || offset % 8 != 0 || size == 0 || std::uint64_t{offset} + size > limit) return {};
  return {reinterpret_cast<const std::byte*>(h) + offset, size};
}

Result<Mapping*> Mapping::create(const ShmOptions& o, std::uint64_t publisher_id, std::string_view topic) {
  if (topic.size() > max_topic_bytes) return fail(Errc::invalid_argument, "shm topics are at most 256 bytes");
  const auto pools = o.pools.empty() ? default_pools(o) : o.pools;
  // Layout: header page, slot table, rings, then the pools, biggest chunks page-aligned.
  const std::uint64_t slots_offset = header_bytes;
  const std::uint64_t rings_offset = round_up(slots_offset + std::uint64_t{o.slots} * sizeof(Slot), 4096);
  std::uint64_t offset = round_up(rings_offset + std::uint64_t{o.slots} * o.ring * 8, 4096);
  std::vector<PoolClass> classes;
  std::uint64_t chunks = 0;
  for (const auto& p : pools) {
    const auto chunk_bytes = round_up(std::uint64_t{p.data_bytes} + chunk_header_bytes, cache_line);
    if (chunk_bytes > (1ull << 31)) return fail(Errc::invalid_argument, "shm chunk larger than 2 GiB");
    classes.push_back({.offset = offset,
                       .chunk_bytes = static_cast<std::uint32_t>(chunk_bytes),
                       .count = p.count,
                       .first_index = static_cast<std::uint32_t>(chunks),
                       .reserved = 0});
    chunks += p.count;
    offset = round_up(offset + chunk_bytes * p.count, 4096);
  }
  if (chunks > max_chunks) return fail(Errc::invalid_argument, "shm pools hold more than 2^24 chunks");
  std::sort(classes.begin(), classes.end(), [](auto& a, auto& b) { return a.first_index < b.first_index; });
  const std::uint64_t total = offset;

  auto file = create_file(o, channel_path(o.name, publisher_id), total);
  if (!file) return std::unexpected(file.error());
  void* base = file->base;
  auto* m = new Mapping();
  m->m_base = file->base;
  m->m_size = total;
  m->m_inode = file->inode;
  file->base = nullptr;  // the mapping owns it now
  auto& h = *new (base) SegmentHeader{};
  std::memcpy(h.magic, shm_magic, sizeof h.magic);
  h.version = shm_version;
  h.header_bytes = header_bytes;
  h.total_bytes = total;
  h.publisher_id = publisher_id;
  h.publisher_pid = static_cast<std::uint32_t>(::getpid());
  h.publisher_start = process_start_time(::getpid()).value_or(0);
  h.slot_count = o.slots;
  h.ring_capacity = o.ring;
  h.class_count = static_cast<std::uint32_t>(classes.size());
  h.slots_offset = slots_offset;
  h.rings_offset = rings_offset;
  h.chunk_count = static_cast<std::uint32_t>(chunks);
  h.topic_bytes = static_cast<std::uint32_t>(topic.size());
  std::copy(classes.begin(), classes.end(), h.classes);
  std::memcpy(h.topic, topic.data(), topic.size());
  h.next_seq.store(1, std::memory_order_relaxed);
  h.state.store(static_cast<std::uint32_t>(SegmentState::live), std::memory_order_relaxed);
  if (auto geo = m->adopt_geometry(); !geo) {
    m->release();
    discard_file(*file);
    return std::unexpected(geo.error());
  }
  for (std::uint32_t c = 0; c < m->class_count(); ++c) {
    const auto& pc = m->pool(c);
    for (std::uint32_t i = 0; i < pc.count; ++i) {
      auto* h = new (m->chunk(pc.first_index + i)) ChunkHeader{};
      h->index = pc.first_index + i;
    }
  }
  std::atomic_thread_fence(std::memory_order_release);
  // The name holds the publisher's random id: an existing file is a dead publisher's
  // leftover with the same id, or a live one (refused).
  auto published = publish_file(*file, [&](int old) -> std::optional<Error> {
    SegmentHeader oh{};
    if (!read_header(old, oh) || std::memcmp(oh.magic, shm_magic, sizeof oh.magic) != 0) {
      return Error{Errc::address_in_use, EEXIST, file->path + " exists and is not a rill segment; remove it"};
    }
    if (process_alive(oh.publisher_pid, oh.publisher_start)) {
      return Error{Errc::address_in_use, EADDRINUSE,
                   file->path + " is held by a running publisher (pid " + std::to_string(oh.publisher_pid) + ")"};
    }
    return std::nullopt;
  });
  if (!published) {
    m->release();
    return std::unexpected(published.error());
  }
  return m;
}

Result<NewFile> create_file(const ShmOptions& o, const std::string& path, std::size_t total) {
  gid_t gid = static_cast<gid_t>(-1);
  if (!o.group.empty()) {
    group gr{};
    group* found = nullptr;
    char buf[4096];
    if (::getgrnam_r(o.group.c_str(), &gr, buf, sizeof buf, &found) != 0 || found == nullptr) {
      return fail(Errc::invalid_argument, "shm group '" + o.group + "' does not exist");
    }
    gid = gr.gr_gid;
  }
  static std::atomic<unsigned> counter{0};
  NewFile f;
  f.path = path;
  f.tmp = path + ".new." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  f.fd = ::open(f.tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (f.fd < 0)
    return fail(errno == EACCES ? Errc::permission_denied : Errc::io_error, errno_detail("cannot create " + f.tmp),
                errno);
  auto fail_with = [&](Errc code, std::string detail, int err) -> Result<NewFile> {
    discard_file(f);
    return fail(code, std::move(detail), err);
  };
  // The umask must not decide who may read the messages: set the mode explicitly.
  if (::fchmod(f.fd, o.mode) != 0) return fail_with(Errc::io_error, errno_detail("fchmod " + f.tmp), errno);
  if (gid != static_cast<gid_t>(-1) && ::fchown(f.fd, static_cast<uid_t>(-1), gid) != 0) {
    return fail_with(Errc::permission_denied, errno_detail("cannot give " + f.tmp + " to group " + o.group), errno);
  }
  if (::ftruncate(f.fd, static_cast<off_t>(total)) != 0) {
    return fail_with(Errc::io_error, errno_detail("cannot size " + f.tmp + " to " + std::to_string(total) + " bytes"),
                     errno);
  }
  void* base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, 0);
  if (base == MAP_FAILED) return fail_with(Errc::io_error, errno_detail("mmap"), errno);
  f.base = static_cast<std::byte*>(base);
  f.size = total;
  // Touch every page now (tmpfs allocates on first write): a full /dev/shm fails here,
  // with an error, instead of killing the publisher with SIGBUS later.
  if (::posix_fallocate(f.fd, 0, static_cast<off_t>(total)) != 0) {
    return fail_with(Errc::io_error, "cannot allocate " + f.tmp + " in /dev/shm (full?)", ENOSPC);
  }
  struct stat st {};
  ::fstat(f.fd, &st);
  f.inode = st.st_ino;
  return f;
}

void discard_file(NewFile& f) noexcept {
  if (f.base != nullptr) ::munmap(f.base, f.size);
  f.base = nullptr;
  if (f.fd >= 0) {
    ::close(f.fd);
    ::unlink(f.tmp.c_str());
  }
  f.fd = -1;
}

Result<void> publish_file(NewFile& f, const std::function<std::optional<Error>(int old_fd)>& judge) {
  // link() fails if the name exists, so a reader never maps a half-built file and a live
  // owner is never replaced.
  for (int attempt = 0;; ++attempt) {
    if (::link(f.tmp.c_str(), f.path.c_str()) == 0) break;
    const int err = errno;
    if (err != EEXIST || attempt == 4) {
      discard_file(f);
      return fail(Errc::io_error, errno_detail("cannot publish " + f.path), err);
    }
    const int old = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (old < 0) continue;  // went away meanwhile: try again
    auto refusal = judge(old);
    ::close(old);
    if (refusal) {
      discard_file(f);
      return std::unexpected(*refusal);
    }
    log().info("removing the stale {} (its owner is gone)", f.path);
    ::unlink(f.path.c_str());
  }
  ::unlink(f.tmp.c_str());
  ::close(f.fd);
  f.fd = -1;
  return {};
}

Result<MappedFile> open_file(const std::string& path, std::size_t min_size, std::string_view what) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return fail(Errc::not_connected, path + " does not exist (yet)", err);
    if (err == EACCES || err == EPERM) {
      struct stat st {};
      std::string who;
      if (::stat(path.c_str(), &st) == 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
        who = " (mode " + std::string(mode) + ", owner uid " + std::to_string(st.st_uid) + ", group gid " +
              std::to_string(st.st_gid) + ")";
      }
      return fail(Errc::permission_denied, "cannot open " + path + who, err);
    }
    return fail(Errc::io_error, errno_detail("cannot open " + path), err);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(min_size)) {
    ::close(fd);
    return fail(Errc::malformed, path + " is too small to be a rill " + std::string(what));
  }
  void* base = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) return fail(Errc::io_error, errno_detail("mmap " + path), errno);
  return MappedFile{static_cast<std::byte*>(base), static_cast<std::size_t>(st.st_size), st.st_ino};
}

Result<Mapping*> Mapping::open(const ShmOptions& o, std::uint64_t publisher_id) {
  return open_path(channel_path(o.name, publisher_id));
}

Result<Mapping*> Mapping::open_path(const std::string& path) {
  auto file = open_file(path, header_bytes, "segment");
  if (!file) return std::unexpected(file.error());
  auto* m = new Mapping();
  m->m_base = file->base;
  m->m_size = file->size;
  m->m_inode = file->inode;
  if (auto geo = m->adopt_geometry(); !geo) {
    m->release();
    auto e = geo.error();
    e.detail = path + ": " + e.detail;
    return std::unexpected(e);
  }
  return m;
}

void unlink_if_same(const std::string& path, ino_t inode) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && st.st_ino == inode) ::unlink(path.c_str());
}

void unlink_if_ours(const Mapping& mapping, std::string_view name) {
  unlink_if_same(channel_path(name, mapping.publisher_id()), mapping.inode());
}

}  // namespace rill::detail::shm
