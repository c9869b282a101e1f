// rill cdc's loop: replication frames in, one persistent publisher per table out, the slot
// confirmed after the logs are synced. Exactly once rests on one number per message: its
// position (commit LSN of its transaction, index within the transaction; BEGIN is 0, END is
// the last), kept in the envelope header "cdc.position". Each topic's log is read back at
// start for the last position it holds; a message PostgreSQL sends again at or below it is
// skipped. Topics are written one after another, so a crash leaves each log with a prefix of
// its own messages, and the comparison per topic is exact.
#include "connectors/cdc/cdc_source.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>
#include <unordered_map>

#include "connectors/cdc/change_json.hpp"
#include "connectors/cdc/pg_replication.hpp"
#include "connectors/cdc/snapshot_reader.hpp"
#include "rill/rill.hpp"

namespace rill::cdc {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::string_view position_header = "cdc.position";

struct Position {
  Lsn commit = 0;
  std::uint64_t index = 0;
  auto operator<=>(const Position&) const = default;
};

// "commit/index" in decimal.
Result<Position> parse_position(std::string_view text) {
  Position p;
  const auto slash = text.find('/');
  const char* end = text.data() + text.size();
  if (slash == std::string_view::npos) return fail(Errc::corrupt, "bad cdc.position header");
  const auto a = std::from_chars(text.data(), text.data() + slash, p.commit);
  const auto b = std::from_chars(text.data() + slash + 1, end, p.index);
  if (a.ec != std::errc{} || a.ptr != text.data() + slash || b.ec != std::errc{} || b.ptr != end) {
    return fail(Errc::corrupt, "bad cdc.position header '" + std::string(text) + "'");
  }
  return p;
}

struct TopicOut {
  Publisher pub;
  Position last;       // the newest position the log holds
  bool dirty = false;  // published since the last sync
};

// The position in one record's envelope header; nullopt for a record without a body (a
// sequence a killed publisher handed out but never logged, written as an empty record at
// its restart: PROTOCOL.md 13.6).
Result<std::optional<Position>> record_position(const Log& log, const LogRecord& rec) {
  if (rec.body.empty()) return std::nullopt;
  auto env = verify_envelope(rec.body);
  if (!env) return std::unexpected(env.error());
  if (const auto* headers = (*env)->headers()) {
    for (const auto* h : *headers) {
      if (h->key()->string_view() == position_header && h->value() != nullptr) {
        auto p = parse_position(h->value()->string_view());
        if (!p) return std::unexpected(p.error());
        return *p;
      }
    }
  }
  return fail(Errc::incompatible, "the log in " + log.directory().string() + " holds record " +
                                      std::to_string(rec.sequence) + " that rill cdc did not write (no cdc.position header)");
}

// The last position a persistent publisher's log holds (zero for an empty log): the newest
// record with a body, looked for in windows that double backwards from the tail.
Result<Position> last_position(const Publisher& pub) {
  const Log* log = pub.log();
  if (log == nullptr || log->last_sequence() == 0) return Position{};
  const std::uint64_t first = std::max<std::uint64_t>(log->first_sequence(), 1);
  const std::uint64_t last = log->last_sequence();
  for (std::uint64_t window = 16;; window *= 2) {
    const std::uint64_t from = last - first + 1 > window ? last - window + 1 : first;
    auto reader = log->reader(from);
    if (!reader) return std::unexpected(reader.error());
    std::optional<Position> found;
    for (;;) {
      auto rec = reader->next();
      if (!rec) return std::unexpected(rec.error());
      if (!*rec || (*rec)->sequence > last) break;
      auto pos = record_position(*log, **rec);
      if (!pos) return std::unexpected(pos.error());
      if (*pos) found = *pos;
    }
    if (found) return *found;
    if (from == first) return Position{};
  }
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class CdcSource {
 public:
  CdcSource(const CdcOptions& options, const std::function<bool()>& stopping) : m_opt(options), m_stopping(stopping) {}

  Result<CdcStats> run();

 private:
  // A failure that reconnecting will not mend ends run(); the others reconnect.
  struct Fatal {
    Error error;
  };

  Result<TopicOut*> topic(const std::string& name);
  Result<void> session(ReplicationConnection& conn);
  Result<void> handle(ReplicationConnection& conn, const XLogData& data);
  Result<void> change(const TableSchema& table, char op, const Tuple* before, const Tuple* after, Lsn lsn);
  Result<void> emit(TopicOut& out, Position pos, const std::string& json);
  Result<void> confirm(ReplicationConnection& conn, bool reply);
  Result<void> take_snapshot(const ReplicationConnection::CreatedSlot& slot);
  Result<void> sync_all();
  void sleep_backoff();

  CdcOptions m_opt;
  const std::function<bool()>& m_stopping;
  Node m_node;
  Binding m_binding;
  std::map<std::string, std::unique_ptr<TopicOut>> m_topics;
  TopicOut* m_tx_topic = nullptr;
  std::unordered_map<std::uint32_t, TableSchema> m_relations;
  std::string m_db;
  std::optional<Fatal> m_fatal;

  bool m_in_tx = false;
  Begin m_begin;
  std::uint32_t m_index = 0;
  std::map<std::string, std::uint64_t> m_counts;

  Lsn m_received = 0;   // newest WAL position seen
  Lsn m_completed = 0;  // end of the last transaction fully handed to the publishers
  Lsn m_confirmed = 0;  // what the slot was told is flushed
  Clock::time_point m_last_status{};
  std::chrono::milliseconds m_backoff{100};
  CdcStats m_stats;
  std::uint64_t m_session_skipped = 0;  // duplicates since the session started or last reported
};

Result<TopicOut*> CdcSource::topic(const std::string& name) {
  if (auto it = m_topics.find(name); it != m_topics.end()) return it->second.get();
  PublisherOptions o{.endpoint = m_opt.endpoint, .topic = name, .publish_timeout = m_opt.publish_timeout};
  o.durability = Durability{.kind = DurabilityKind::persistent,
                            .dir = (std::filesystem::path(m_opt.dir) / topic_dir_name(name)).string()};
  o.log = m_opt.log;
  auto pub = m_node.publisher(o);
  if (!pub) return std::unexpected(pub.error());
  auto last = last_position(*pub);
  if (!last) return std::unexpected(last.error());
  auto out = std::make_unique<TopicOut>(TopicOut{std::move(*pub), *last, false});
  std::fprintf(stderr, "{\"cdc\":{\"topic\":\"%s\",\"next_seq\":%llu,\"holds\":\"%llu/%llu\"}}\n", name.c_str(),
               static_cast<unsigned long long>(out->pub.next_sequence()), static_cast<unsigned long long>(last->commit),
               static_cast<unsigned long long>(last->index));
  auto* raw = out.get();
  m_topics.emplace(name, std::move(out));
  return raw;
}

Result<void> CdcSource::emit(TopicOut& out, Position pos, const std::string& json) {
  if (pos <= out.last) {
    ++m_stats.duplicates;
    ++m_session_skipped;
    return {};
  }
  const std::string value = std::to_string(pos.commit) + "/" + std::to_string(pos.index);
  const HeaderKV header{position_header, value};
  // Under backpressure publish() times out: keep trying, which stops reading the slot
  // (PostgreSQL retains the WAL) instead of buffering here.
  auto r = out.pub.publish_text(json, std::span(&header, 1));
  while (!r && r.error().code == Errc::timed_out && !m_stopping()) r = out.pub.publish_text(json, std::span(&header, 1));
  if (!r) {
    if (r.error().code != Errc::timed_out) m_fatal = Fatal{r.error()};
    return std::unexpected(r.error());
  }
  out.last = pos;
  out.dirty = true;
  if (m_session_skipped > 0) {  // once per session: where a resend caught up with the logs
    std::fprintf(stderr, "{\"cdc\":{\"resent_skipped\":%llu,\"resumed_at\":\"%llu/%llu\"}}\n",
                 static_cast<unsigned long long>(m_session_skipped), static_cast<unsigned long long>(pos.commit),
                 static_cast<unsigned long long>(pos.index));
    std::fflush(stderr);
    m_session_skipped = 0;
  }
  return {};
}

Result<void> CdcSource::change(const TableSchema& table, char op, const Tuple* before, const Tuple* after, Lsn lsn) {
  if (!m_in_tx) return fail(Errc::malformed, "pgoutput: a change outside a transaction");
  auto out = topic(m_opt.topic_prefix + table.schema + "/" + table.name);
  if (!out) {
    m_fatal = Fatal{out.error()};
    return std::unexpected(out.error());
  }
  ++m_index;
  ++m_counts[table.qualified()];
  const SourceInfo source{.db = m_db, .lsn = lsn, .xid = m_begin.xid,
                          .commit_ms = pg_time_to_unix_ms(m_begin.commit_us), .snapshot = false};
  const Position pos{m_begin.final_lsn, m_index};
  if (pos <= (*out)->last) {  // resent: skip before rendering
    ++m_stats.duplicates;
    ++m_session_skipped;
    return {};
  }
  ++m_stats.events;
  return emit(**out, pos, change_json(table, op, before, after, source, unix_ms_now()));
}

Result<void> CdcSource::handle(ReplicationConnection& conn, const XLogData& data) {
  m_received = std::max(m_received, data.start);
  auto msg = decode_pgoutput(data.data);
  if (!msg) return fail(Errc::malformed, msg.error().detail + " at LSN " + format_lsn(data.start));
  auto relation = [&](std::uint32_t oid) -> const TableSchema* {
    auto it = m_relations.find(oid);
    return it == m_relations.end() ? nullptr : &it->second;
  };
  auto unknown = [&](std::uint32_t oid) {
    return fail(Errc::malformed, "pgoutput: a change of relation " + std::to_string(oid) +
                                     " before its Relation message, at LSN " + format_lsn(data.start));
  };
  if (const auto* b = std::get_if<Begin>(&*msg)) {
    m_in_tx = true;
    m_begin = *b;
    m_index = 0;
    m_counts.clear();
    return emit(*m_tx_topic, {b->final_lsn, 0}, begin_json(b->xid, b->final_lsn, pg_time_to_unix_ms(b->commit_us)));
  }
  if (const auto* c = std::get_if<Commit>(&*msg)) {
    if (!m_in_tx || c->commit_lsn != m_begin.final_lsn) {
      return fail(Errc::malformed, "pgoutput: a Commit at " + format_lsn(c->commit_lsn) + " that no Begin announced");
    }
    m_in_tx = false;
    ++m_stats.transactions;
    auto r = emit(*m_tx_topic, {c->commit_lsn, m_index + 1},
                  end_json(m_begin.xid, c->commit_lsn, pg_time_to_unix_ms(c->commit_us), m_counts));
    if (!r) return r;
    m_completed = std::max(m_completed, c->end_lsn);
    if (Clock::now() - m_last_status >= m_opt.status_interval) return confirm(conn, false);
    return {};
  }
  if (const auto* r = std::get_if<Relation>(&*msg)) {
    m_relations[r->oid] = TableSchema::from(*r);  // a later Relation for the same oid is a schema change
    return {};
  }
  if (const auto* i = std::get_if<Insert>(&*msg)) {
    const auto* t = relation(i->relation);
    return t ? change(*t, 'c', nullptr, &i->row, data.start) : unknown(i->relation);
  }
  if (const auto* u = std::get_if<Update>(&*msg)) {
    const auto* t = relation(u->relation);
    return t ? change(*t, 'u', u->old_kind != 0 ? &u->old_row : nullptr, &u->row, data.start) : unknown(u->relation);
  }
  if (const auto* d = std::get_if<Delete>(&*msg)) {
    const auto* t = relation(d->relation);
    return t ? change(*t, 'd', &d->old_row, nullptr, data.start) : unknown(d->relation);
  }
  if (const auto* tr = std::get_if<Truncate>(&*msg)) {
    for (auto oid : tr->relations) {
      const auto* t = relation(oid);
      if (t == nullptr) return unknown(oid);
      if (auto r = change(*t, 't', nullptr, nullptr, data.start); !r) return r;
    }
    return {};
  }
  return {};  // Origin, Type, Message: nothing to publish
}

Result<void> CdcSource::confirm(ReplicationConnection& conn, bool reply) {
  if (m_completed > m_confirmed) {
    if (auto s = sync_all(); !s) return s;
    m_confirmed = m_completed;
    m_stats.confirmed_lsn = m_confirmed;
  }
  m_last_status = Clock::now();
  return conn.send_status(std::max(m_received, m_confirmed), m_confirmed, reply);
}

Result<void> CdcSource::sync_all() {
  for (auto& [name, t] : m_topics) {
    if (!t->dirty) continue;
    if (auto s = t->pub.sync(); !s) {
      m_fatal = Fatal{s.error()};
      return s;
    }
    t->dirty = false;
  }
  return {};
}

// Snapshot rows sit just below the slot's consistent point (every streamed transaction
// commits at or after it), numbered per topic; the SNAPSHOT marker is index 0 there.
Result<void> CdcSource::take_snapshot(const ReplicationConnection::CreatedSlot& slot) {
  const Lsn at = slot.consistent_point - 1;
  std::map<std::string, std::uint64_t> rows_per_table;
  std::map<TopicOut*, std::uint64_t> index;
  auto rows = read_snapshot(m_opt.uri, slot.snapshot, m_opt.publication,
                            [&](const TableSchema& table, const Tuple& row) -> Result<void> {
                              auto out = topic(m_opt.topic_prefix + table.schema + "/" + table.name);
                              if (!out) {
                                m_fatal = Fatal{out.error()};
                                return std::unexpected(out.error());
                              }
                              ++rows_per_table[table.qualified()];
                              ++m_stats.events;
                              const auto now = unix_ms_now();
                              const SourceInfo source{.db = m_db, .lsn = slot.consistent_point, .xid = 0,
                                                      .commit_ms = now, .snapshot = true};
                              return emit(**out, {at, ++index[*out]}, change_json(table, 'r', nullptr, &row, source, now));
                            });
  if (!rows) {
    if (!m_fatal) {  // the reason is PostgreSQL's, but a snapshot cut short cannot be resumed
      m_fatal = Fatal{Error{rows.error().code, rows.error().sys,
                            "initial snapshot failed: " + rows.error().detail + "; drop slot '" + m_opt.slot +
                                "' and empty " + m_opt.dir + " to take it again"}};
    }
    return std::unexpected(m_fatal->error);
  }
  if (auto r = emit(*m_tx_topic, {at, 0}, snapshot_json(slot.consistent_point, unix_ms_now(), rows_per_table)); !r) {
    return r;
  }
  if (auto s = sync_all(); !s) return s;
  std::fprintf(stderr, "{\"cdc\":{\"snapshot_rows\":%llu,\"tables\":%zu}}\n", static_cast<unsigned long long>(*rows),
               rows_per_table.size());
  std::fflush(stderr);
  return {};
}

Result<void> CdcSource::session(ReplicationConnection& conn) {
  m_db = conn.database();
  auto has_pub = conn.publication_exists(m_opt.publication);
  if (!has_pub) return std::unexpected(has_pub.error());
  if (!*has_pub) {
    m_fatal = Fatal{Error{Errc::invalid_argument, 0,
                          "publication '" + m_opt.publication + "' does not exist in database '" + m_db +
                              "' (CREATE PUBLICATION " + m_opt.publication + " FOR TABLE ...)"}};
    return std::unexpected(m_fatal->error);
  }
  auto has_slot = conn.slot_exists(m_opt.slot);
  if (!has_slot) return std::unexpected(has_slot.error());
  if (!*has_slot) {
    if (m_tx_topic->last.commit != 0) {
      // Creating it again would silently skip what happened while it was gone.
      m_fatal = Fatal{Error{Errc::incompatible, 0,
                            "slot '" + m_opt.slot + "' is missing, but the logs in " + m_opt.dir +
                                " already hold changes up to commit LSN " + format_lsn(m_tx_topic->last.commit) +
                                "; changes since then are lost to this slot. Start over with an empty DIR, or a new slot name"}};
      return std::unexpected(m_fatal->error);
    }
    auto created = conn.create_slot(m_opt.slot, m_opt.snapshot_initial);
    if (!created) return std::unexpected(created.error());
    std::fprintf(stderr, "{\"cdc\":{\"created_slot\":\"%s\",\"consistent_point\":\"%s\"}}\n", m_opt.slot.c_str(),
                 format_lsn(created->consistent_point).c_str());
    std::fflush(stderr);
    // The exported snapshot lives until `conn` runs its next command: START_REPLICATION.
    if (m_opt.snapshot_initial) {
      if (auto s = take_snapshot(*created); !s) return s;
    }
  } else if (m_opt.snapshot_initial && m_tx_topic->last.commit == 0) {
    // The snapshot a slot exported is gone once its creating connection moved on.
    m_fatal = Fatal{Error{Errc::incompatible, 0,
                          "slot '" + m_opt.slot + "' exists but " + m_opt.dir +
                              " holds no finished initial snapshot (a run stopped during it, or the slot was made "
                              "elsewhere): drop the slot (SELECT pg_drop_replication_slot('" + m_opt.slot +
                              "')) and empty DIR to take it again, or run with --snapshot never"}};
    return std::unexpected(m_fatal->error);
  }
  if (auto s = conn.start(m_opt.slot, m_opt.publication, 0); !s) return s;
  std::fprintf(stderr, "{\"cdc\":{\"streaming\":\"%s\",\"publication\":\"%s\",\"db\":\"%s\"}}\n", m_opt.slot.c_str(),
               m_opt.publication.c_str(), m_db.c_str());
  std::fflush(stderr);
  m_backoff = 100ms;
  m_relations.clear();  // the server sends every Relation again in a new session
  m_session_skipped = 0;
  m_in_tx = false;
  while (!m_stopping()) {
    auto frame = conn.read(100ms);
    if (!frame) return std::unexpected(frame.error());
    if (*frame) {
      auto f = decode_frame(**frame);
      if (!f) return std::unexpected(f.error());
      if (const auto* k = std::get_if<Keepalive>(&*f)) {
        if (k->reply) {
          if (auto r = confirm(conn, false); !r) return r;
        }
        continue;
      }
      if (auto r = handle(conn, std::get<XLogData>(*f)); !r) return r;
    } else if (Clock::now() - m_last_status >= m_opt.status_interval) {
      if (auto r = confirm(conn, false); !r) return r;
    }
  }
  return confirm(conn, false);  // a clean stop leaves the slot confirmed up to the logs
}

void CdcSource::sleep_backoff() {
  const auto until = Clock::now() + m_backoff;
  while (!m_stopping() && Clock::now() < until) std::this_thread::sleep_for(10ms);
  m_backoff = std::min(m_backoff * 2, m_opt.max_backoff);
}

Result<CdcStats> CdcSource::run() {
  if (!valid_object_name(m_opt.slot)) {
    return fail(Errc::invalid_argument, "slot name '" + m_opt.slot + "': use lower-case letters, digits and '_' (at most 63)");
  }
  if (!valid_object_name(m_opt.publication)) {
    return fail(Errc::invalid_argument,
                "publication name '" + m_opt.publication + "': use lower-case letters, digits and '_' (at most 63)");
  }
  if (auto ok = check_conninfo(m_opt.uri); !ok) return std::unexpected(ok.error());
  auto binding = m_node.bind(m_opt.endpoint);
  if (!binding) return std::unexpected(binding.error());
  m_binding = std::move(*binding);
  auto tx = topic(m_opt.topic_prefix + "transactions");
  if (!tx) return std::unexpected(tx.error());
  m_tx_topic = *tx;
  std::string last_failure;
  while (!m_stopping()) {
    auto conn = ReplicationConnection::connect(m_opt.uri);
    Result<void> r = conn ? session(*conn) : Result<void>(std::unexpected(conn.error()));
    if (m_fatal) return std::unexpected(m_fatal->error);
    if (r || m_stopping()) break;
    // One line per failure (a server that stays away prints one a back-off step).
    std::fprintf(stderr, "rill cdc: %s; retrying in %lld ms\n", r.error().message().c_str(),
                 static_cast<long long>(m_backoff.count()));
    std::fflush(stderr);
    ++m_stats.reconnects;
    sleep_backoff();
  }
  for (auto& [name, t] : m_topics) {
    if (auto s = t->pub.sync(); !s) return std::unexpected(s.error());
  }
  return m_stats;
}

}  // namespace

std::string topic_dir_name(std::string_view topic) {
  std::string out;
  for (std::size_t i = 0; i < topic.size(); ++i) {
    if (topic[i] == '/') {
      out += "%2F";
    } else if (i == 0 && topic[i] == '.') {
      out += "%2E";
    } else {
      out += topic[i];
    }
  }
  return out;
}

Result<CdcStats> run_cdc(const CdcOptions& options, const std::function<bool()>& stopping) {
  CdcSource source(options, stopping);
  return source.run();
}

}  // namespace rill::cdc
