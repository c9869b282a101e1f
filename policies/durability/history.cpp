#include "history.hpp"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "base/logging.hpp"
#include "sequence_mark.hpp"

namespace rill::detail {

namespace {

// The last N envelopes, each in a buffer of its own that is reused when its slot comes
// round again (steady state allocates nothing once the buffers have grown).
class MemoryHistory final : public History {
 public:
  MemoryHistory(std::size_t keep, std::uint64_t next_seq) : m_slots(keep), m_next(next_seq), m_first(next_seq) {}

  DurabilityKind offered() const noexcept override { return DurabilityKind::transient_local; }
  std::uint64_t publisher_id() const noexcept override { return 0; }
  std::uint64_t next_sequence() const noexcept override { return m_next; }

  Result<void> record(std::span<const std::byte> envelope, std::uint64_t seq, std::int64_t) override {
    if (seq != m_next) return fail(Errc::invalid_argument, "history: out-of-order record");
    auto& slot = m_slots[seq % m_slots.size()];
    slot.assign(envelope.begin(), envelope.end());
    ++m_next;
    if (m_next - m_first > m_slots.size()) m_first = m_next - m_slots.size();
    return {};
  }

  HistoryStart start_for(StartFrom, std::string_view, std::uint64_t history) const override {
    const auto kept = m_next - m_first;
    const auto n = history == 0 ? kept : std::min<std::uint64_t>(history, kept);
    return {m_next - n, 0};
  }

  Result<std::unique_ptr<HistoryCursor>> cursor(std::uint64_t seq) const override;

  void ack(std::string_view, std::uint64_t) override {}
  Result<void> flush_acks() override { return {}; }
  std::optional<std::uint64_t> acked(std::string_view) const override { return std::nullopt; }

  // For the cursor: the envelope of `seq`, empty when it is no longer (or not yet) kept.
  std::span<const std::byte> at(std::uint64_t seq) const noexcept {
    if (seq < m_first || seq >= m_next) return {};
    const auto& slot = m_slots[seq % m_slots.size()];
    return {slot.data(), slot.size()};
  }
  std::uint64_t first() const noexcept { return m_first; }

 private:
  std::vector<std::vector<std::byte>> m_slots;
  std::uint64_t m_next;
  std::uint64_t m_first;
};

class MemoryCursor final : public HistoryCursor {
 public:
  MemoryCursor(const MemoryHistory& h, std::uint64_t seq) : m_history(h), m_pos(seq) {}

  Result<std::optional<std::span<const std::byte>>> next(std::uint64_t limit) override {
    if (m_pos < m_history.first()) {  // overwritten before we got there
      m_lost += m_history.first() - m_pos;
      m_pos = m_history.first();
    }
    if (m_pos >= limit) return std::nullopt;
    const auto bytes = m_history.at(m_pos);
    if (bytes.empty()) return std::nullopt;
    ++m_pos;
    return bytes;
  }
  std::uint64_t position() const noexcept override { return m_pos; }
  std::uint64_t lost() const noexcept override { return m_lost; }

 private:
  const MemoryHistory& m_history;
  std::uint64_t m_pos;
  std::uint64_t m_lost = 0;
};

Result<std::unique_ptr<HistoryCursor>> MemoryHistory::cursor(std::uint64_t seq) const {
  return std::unique_ptr<HistoryCursor>(new MemoryCursor(*this, seq));
}

// The persistent log: every message is appended before it is sent; cursors are log readers.
class LogHistory final : public History {
 public:
  LogHistory(Log log, AckStore acks, SequenceMark mark, bool reserve)
      : m_log(std::move(log)), m_acks(std::move(acks)), m_mark(std::move(mark)), m_reserve(reserve) {
    m_ack_writer = std::thread([this] {
      pthread_setname_np(pthread_self(), "rill-acks");
      write_acks();
    });
  }
  ~LogHistory() override { (void)close(); }

  DurabilityKind offered() const noexcept override { return DurabilityKind::persistent; }
  std::uint64_t publisher_id() const noexcept override { return m_log.publisher_id(); }
  std::uint64_t next_sequence() const noexcept override { return m_log.next_sequence(); }

  Result<void> record(std::span<const std::byte> envelope, std::uint64_t seq, std::int64_t timestamp_ns) override {
    auto appended = m_log.append(envelope, {.timestamp_ns = timestamp_ns, .expect_sequence = seq});
    if (!appended) return std::unexpected(appended.error());
    // Under every/never it may be sent before its record is written: the mark keeps its
    // number from being handed out again after a crash.
    return m_mark.hand_out(seq, m_reserve);
  }

  HistoryStart start_for(StartFrom from, std::string_view name, std::uint64_t history) const override {
    const auto first = m_log.first_sequence();
    const auto next = m_log.next_sequence();
    std::uint64_t want = first;
    switch (from) {
      case StartFrom::start:
        want = 1;  // everything ever published: what retention deleted is reported as lost
        break;
      case StartFrom::end:
        return {next, 0};
      case StartFrom::last_ack:
        if (auto pos = acked(name)) {
          want = *pos + 1;
        } else {
          want = 1;
        }
        break;
    }
    if (history != 0 && next > history) want = std::max(want, next - history);
    want = std::min(want, next);
    if (want < first) return {first, first - want};
    return {want, 0};
  }

  Result<std::unique_ptr<HistoryCursor>> cursor(std::uint64_t seq) const override;

  // Acks are stored by a thread of their own: each store is a write + fdatasync + rename
  // (milliseconds on a disk), which must not stall the publishing thread.
  void ack(std::string_view name, std::uint64_t seq) override {
    {
      std::lock_guard lock(m_mutex);
      auto it = m_pending.find(name);
      if (it == m_pending.end()) {
        m_pending.emplace(std::string(name), seq);
      } else {
        it->second = std::max(it->second, seq);
      }
    }
    m_wake.notify_one();
  }

  Result<void> flush_acks() override {
    std::unique_lock lock(m_mutex);
    m_wake.notify_one();
    m_idle.wait(lock, [&] { return !m_writing && (m_pending.empty() || m_last_error || m_stop); });
    if (m_last_error) return std::unexpected(*m_last_error);
    return {};
  }

  std::optional<std::uint64_t> acked(std::string_view name) const override {
    std::optional<std::uint64_t> best = m_acks.get(name);
    std::lock_guard lock(m_mutex);
    for (const auto* map : {&m_pending, &m_in_flight}) {
      if (auto it = map->find(name); it != map->end()) best = std::max(best.value_or(0), it->second);
    }
    return best;
  }

  const Log* log() const noexcept override { return &m_log; }

  Result<void> close() override {
    if (m_ack_writer.joinable()) {
      {
        std::lock_guard lock(m_mutex);
        m_stop = true;  // the writer stores what is pending, then ends
      }
      m_wake.notify_one();
      m_ack_writer.join();
    }
    auto closed = m_log.close();
    if (closed) closed = m_mark.settle(m_log.next_sequence() - 1);  // all of it is in the log
    if (m_last_error) return std::unexpected(*m_last_error);
    return closed;
  }

 private:
  void write_acks() {
    std::unique_lock lock(m_mutex);
    for (;;) {
      m_wake.wait(lock, [&] { return !m_pending.empty() || m_stop; });
      if (m_pending.empty()) break;  // stopping, nothing left
      m_in_flight.swap(m_pending);
      m_writing = true;
      lock.unlock();
      std::optional<Error> failed;
      for (const auto& [name, seq] : m_in_flight) {
        if (auto stored = m_acks.ack(name, seq); !stored) failed = stored.error();
      }
      lock.lock();
      m_writing = false;
      if (failed) {
        rill::detail::log().error("persistent publisher {:016x}: storing acks: {}", m_log.publisher_id(),
                                  failed->message());
        m_last_error = failed;
        for (auto& [name, seq] : m_in_flight) {  // kept for the next round
          auto& p = m_pending[name];
          p = std::max(p, seq);
        }
        m_in_flight.clear();
        if (m_stop) break;
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a full disk: do not spin
        lock.lock();
      } else {
        m_last_error.reset();
        m_in_flight.clear();
      }
      m_idle.notify_all();
    }
    m_idle.notify_all();
  }

  Log m_log;
  AckStore m_acks;
  SequenceMark m_mark;
  bool m_reserve;
  mutable std::mutex m_mutex;
  std::condition_variable m_wake;
  std::condition_variable m_idle;
  std::map<std::string, std::uint64_t, std::less<>> m_pending;    // noted, not yet being written
  std::map<std::string, std::uint64_t, std::less<>> m_in_flight;  // being written now
  std::optional<Error> m_last_error;
  bool m_writing = false;
  bool m_stop = false;
  std::thread m_ack_writer;
};

class LogCursor final : public HistoryCursor {
 public:
  explicit LogCursor(LogReader reader) : m_reader(std::move(reader)) {}

  Result<std::optional<std::span<const std::byte>>> next(std::uint64_t limit) override {
    for (;;) {
      if (m_reader.position() >= limit) return std::nullopt;
      auto rec = m_reader.next();
      if (!rec) return std::unexpected(rec.error());
      if (!*rec) return std::nullopt;
      if (!(*rec)->body.empty()) return (*rec)->body;
      ++m_crash_lost;  // a number handed out by a publisher that died before logging it
    }
  }
  std::uint64_t position() const noexcept override { return m_reader.position(); }
  std::uint64_t lost() const noexcept override { return m_reader.lost() + m_crash_lost; }

 private:
  LogReader m_reader;
  std::uint64_t m_crash_lost = 0;
};

Result<std::unique_ptr<HistoryCursor>> LogHistory::cursor(std::uint64_t seq) const {
  auto reader = m_log.reader(seq);
  if (!reader) return std::unexpected(reader.error());
  return std::unique_ptr<HistoryCursor>(new LogCursor(std::move(*reader)));
}

}  // namespace

std::unique_ptr<History> History::in_memory(std::size_t keep, std::uint64_t next_seq) {
  return std::make_unique<MemoryHistory>(keep, next_seq);
}

namespace {

// A previous run under fsync every/never died after handing out numbers whose records never
// reached the log: they are written as empty records (PROTOCOL.md 13.6), which readers
// count as lost, and the sequence goes on after them; never are they handed out again.
Result<void> account_for_crash(const std::string& dir, const LogOptions& opts, Log& log, SequenceMark& mark) {
  const auto last = log.next_sequence() - 1;
  const auto handed_out = mark.last_handed_out();
  if (handed_out > last) {
    rill::detail::log().warn("persistent publisher {:016x}: sequences {}..{} were handed out but never reached the "
                             "log {} (the publisher died under fsync {}); they are recorded as lost",
                             log.publisher_id(), last + 1, handed_out, dir, to_string(opts.fsync));
    // One fdatasync for all of them, whatever the policy.
    LogOptions quick = opts;
    quick.fsync = FsyncPolicy::never();
    if (opts.fsync.mode == FsyncMode::always) {
      if (auto c = log.close(); !c) return c;
      auto reopened = Log::open(dir, quick);
      if (!reopened) return std::unexpected(reopened.error());
      log = std::move(*reopened);
    }
    for (auto seq = last + 1; seq <= handed_out; ++seq) {
      if (auto a = log.append({}, {.expect_sequence = seq}); !a) return std::unexpected(a.error());
    }
    if (auto s = log.sync(); !s) return s;
    if (opts.fsync.mode == FsyncMode::always) {
      if (auto c = log.close(); !c) return c;
      auto reopened = Log::open(dir, opts);
      if (!reopened) return std::unexpected(reopened.error());
      log = std::move(*reopened);
    }
  }
  return mark.settle(log.next_sequence() - 1);
}

}  // namespace

Result<std::unique_ptr<History>> History::open_log(const std::string& dir, const LogOptions& options,
                                                   const std::string& ack_store_path,
                                                   std::uint64_t new_publisher_id) {
  LogOptions opts = options;
  opts.publisher_id = new_publisher_id;
  opts.read_only = false;
  opts.single_appender = true;  // the publisher's calls never overlap (IdleService keeps its helper out)
  auto log = Log::open(dir, opts);
  if (!log) return std::unexpected(log.error());
  auto mark = SequenceMark::open(dir);
  if (!mark) return std::unexpected(mark.error());
  if (auto lost = account_for_crash(dir, opts, *log, *mark); !lost) return std::unexpected(lost.error());
  auto acks = AckStore::open(ack_store_path.empty() ? std::filesystem::path(dir) / "acks"
                                                  : std::filesystem::path(ack_store_path));
  if (!acks) return std::unexpected(acks.error());
  rill::detail::log().info("persistent publisher {:016x}: log {} continues at sequence {}", log->publisher_id(), dir,
                           log->next_sequence());
  // Under `always` a record is durable before it is sent: nothing to reserve.
  const bool reserve = opts.fsync.mode != FsyncMode::always;
  return std::unique_ptr<History>(new LogHistory(std::move(*log), std::move(*acks), std::move(*mark), reserve));
}

}  // namespace rill::detail
