// cep::Operator checkpoint / restore. File layout: "RILLCEP1", payload length (u64),
// FNV-1a 64 of the payload (u64), payload. Payload (numbers little-endian, strings as u64
// length + bytes): fingerprint (string: the pattern, skip, within, rows per match,
// prev_rows), released-up-to watermark (i64), tracker watermark (i64), 8 counters (u64:
// events, late_dropped, late_side, matches, rows, expired, overflow, overflow_dropped),
// sources (u64 n, then id u64 + latest time i64), input positions (u64 n, then id + sequence),
// buffered events (u64 n, then events), keys (u64 n, then key string, matches u64, cursor
// u64, pending u8, rows: u64 n + events). An event: key string, time i64, source u64,
// sequence u64, values (u64 n + f64 each), payload string.
#include "stream/cep_engine.hpp"
#include "stream/state_file.hpp"
#include "stream/state_io.hpp"

namespace rill::stream::cep {

namespace {

constexpr std::string_view magic = "RILLCEP1";
constexpr std::size_t header_bytes = 8 + 8 + 8;
constexpr std::size_t event_min_bytes = 8 + 8 + 8 + 8 + 8 + 8;

using rill::stream::detail::StateReader;
using rill::stream::detail::StateWriter;

void save_event(StateWriter& out, const Event& e) {
  out.str(e.key);
  out.i64(e.time);
  out.u64(e.source);
  out.u64(e.sequence);
  out.u64(e.values.size());
  for (double v : e.values) out.f64(v);
  out.str(e.payload);
}

bool load_event(StateReader& in, Event& e) {
  e.key = std::string(in.str());
  e.time = in.i64();
  e.source = in.u64();
  e.sequence = in.u64();
  const std::uint64_t n = in.count(8);
  e.values.resize(n);
  for (double& v : e.values) v = in.f64();
  e.payload = std::string(in.str());
  return in.ok();
}

}  // namespace

namespace detail {

void Engine::write_fingerprint(StateWriter& out) const {
  out.str(m_pattern.fingerprint);
  out.u8(static_cast<std::uint8_t>(m_options.rows_per_match));
  out.u64(m_options.prev_rows);
}

std::string Engine::checkpoint_bytes(const std::map<std::uint64_t, std::uint64_t>& inputs) const {
  StateWriter out;
  write_fingerprint(out);
  out.i64(m_advanced);
  out.i64(m_tracker.watermark());
  const Stats& s = m_stats;
  for (std::uint64_t v :
       {s.events, s.late_dropped, s.late_side, s.matches, s.rows, s.expired, s.overflow, s.overflow_dropped}) {
    out.u64(v);
  }
  const auto sources = m_tracker.source_times();
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
  out.u64(m_buffer.size());
  for (const auto& [order, e] : m_buffer) save_event(out, e);
  out.u64(m_keys.size());
  for (const auto& [key, p] : m_keys) {
    out.str(key);
    out.u64(p.matches);
    out.u64(p.cursor);
    out.u8(p.pending ? 1 : 0);
    out.u64(p.rows.size());
    for (const Event& e : p.rows) save_event(out, e);
  }
  const std::string& payload = out.bytes();
  StateWriter head;
  head.bytes().append(magic);
  head.u64(payload.size());
  head.u64(rill::stream::detail::fnv1a(payload));
  head.bytes().append(payload);
  return std::move(head.bytes());
}

bool Engine::load_state(StateReader& in) {
  m_advanced = in.i64();
  const TimeMs tracker_w = in.i64();
  Stats& s = m_stats;
  for (std::uint64_t* v :
       {&s.events, &s.late_dropped, &s.late_side, &s.matches, &s.rows, &s.expired, &s.overflow, &s.overflow_dropped}) {
    *v = in.u64();
  }
  const std::uint64_t sources = in.count(16);
  for (std::uint64_t i = 0; i < sources && in.ok(); ++i) {
    const std::uint64_t id = in.u64();
    m_tracker.restore(id, in.i64());
  }
  m_tracker.advance_to(tracker_w);
  return in.ok();
}

Result<Positions> Engine::restore_bytes(std::string_view bytes) {
  if (m_stats.events > 0 || m_tracker.sources() > 0)
    return fail(Errc::invalid_argument, "restore needs a fresh operator");
  if (bytes.size() < header_bytes || bytes.substr(0, magic.size()) != magic) {
    return fail(Errc::corrupt, "not a CEP checkpoint");
  }
  StateReader head(bytes.substr(magic.size(), 16));
  const std::uint64_t length = head.u64();
  const std::uint64_t sum = head.u64();
  const std::string_view payload = bytes.substr(header_bytes);
  if (length != payload.size() || rill::stream::detail::fnv1a(payload) != sum) {
    return fail(Errc::corrupt, "checkpoint checksum mismatch");
  }
  StateWriter expected;
  write_fingerprint(expected);
  if (payload.substr(0, expected.bytes().size()) != expected.bytes()) {
    return fail(Errc::incompatible, "checkpoint of a different pattern, skip, within or output mode");
  }
  StateReader in(payload.substr(expected.bytes().size()));
  bool ok = load_state(in);
  Positions pos;
  const std::uint64_t inputs = in.count(16);
  for (std::uint64_t i = 0; i < inputs && in.ok(); ++i) {
    const std::uint64_t id = in.u64();
    pos.inputs[id] = in.u64();
  }
  const std::uint64_t buffered = in.count(event_min_bytes);
  for (std::uint64_t i = 0; i < buffered && in.ok(); ++i) {
    Event e;
    if (load_event(in, e)) m_buffer.emplace(order_of(e), std::move(e));
  }
  const std::uint64_t keys = in.count(8 + 8 + 8 + 1 + 8);
  for (std::uint64_t i = 0; i < keys && in.ok(); ++i) {
    std::string key(in.str());
    auto [it, fresh] = m_keys.try_emplace(key);
    Partition& p = it->second;
    p.matches = in.u64();
    p.cursor = in.u64();
    p.pending = in.u8() == 1;
    const std::uint64_t rows = in.count(event_min_bytes);
    for (std::uint64_t j = 0; j < rows && in.ok(); ++j) {
      Event e;
      if (!load_event(in, e)) break;
      if (!p.rows.empty() && order_of(e) < order_of(p.rows.back())) in.fail();  // rows are kept in order
      p.rows.push_back(std::move(e));
    }
    m_retained += p.rows.size();
    // A key twice, or an attempt starting past its rows, is not a state we wrote.
    if (!fresh || p.cursor > p.rows.size()) in.fail();
    if (in.ok() && p.pending && m_pattern.within_ms >= 0 && p.cursor < p.rows.size()) {
      p.armed = within_deadline(p.rows[p.cursor].time, m_pattern.within_ms);
      m_deadlines.emplace(p.armed, key);
    }
  }
  ok = ok && in.done();
  if (!ok) {
    reset();  // leave no half-loaded state behind
    return fail(Errc::corrupt, "checkpoint state does not parse");
  }
  pos.outputs = m_stats.matches + m_stats.rows;
  return pos;
}

void Engine::reset() {
  m_stats = Stats{};
  m_tracker = WatermarkTracker(m_options.watermark);
  m_advanced = min_time;
  m_buffer.clear();
  m_keys.clear();
  m_deadlines.clear();
  m_retained = 0;
}

}  // namespace detail

Result<void> Operator::checkpoint(const std::string& path, const std::map<std::uint64_t, std::uint64_t>& inputs) const {
  return rill::stream::detail::write_file_atomic(path, m_engine->checkpoint_bytes(inputs));
}

Result<Positions> Operator::restore(const std::string& path) {
  auto bytes = rill::stream::detail::read_file(path);
  if (!bytes) return std::unexpected(bytes.error());
  return m_engine->restore_bytes(*bytes);
}

Result<Positions> Operator::restore_bytes(std::string_view bytes) {
  return m_engine->restore_bytes(bytes);
}

}  // namespace rill::stream::cep
