// JoinOperator::checkpoint / restore: the join's state in one sealed file (magic "RILLJCK1",
// see state_file.hpp), replaced atomically. Payload: the fingerprint of the options, the
// join's watermark, both inputs' sources, the counters, the input positions, the store.
#include "rill/stream/join.hpp"
#include "stream/join_store.hpp"
#include "stream/state_file.hpp"
#include "stream/state_io.hpp"

namespace rill::stream {

namespace {

constexpr std::string_view magic = "RILLJCK1";

// What the state depends on: a checkpoint restores only into the same join settings.
void write_fingerprint(detail::StateWriter& out, const JoinOptions& o) {
  out.u8(static_cast<std::uint8_t>(o.kind));
  out.u8(static_cast<std::uint8_t>(o.window.kind));
  out.i64(o.window.size_ms);
  out.i64(o.window.hop_ms);
  out.i64(o.lower.count());
  out.i64(o.upper.count());
  out.i64(o.ttl.count());
}

void write_sources(detail::StateWriter& out, const WatermarkTracker& t) {
  out.i64(t.watermark());
  const auto sources = t.source_times();
  out.u64(sources.size());
  for (const auto& [id, time] : sources) {
    out.u64(id);
    out.i64(time);
  }
}

void read_sources(detail::StateReader& in, WatermarkTracker& t) {
  const TimeMs w = in.i64();
  const std::uint64_t n = in.count(16);
  for (std::uint64_t i = 0; i < n && in.ok(); ++i) {
    const std::uint64_t id = in.u64();
    t.restore(id, in.i64());
  }
  t.advance_to(w);
}

}  // namespace

Result<void> JoinOperator::checkpoint(const std::string& path,
                                      const std::map<std::uint64_t, std::uint64_t>& inputs) const {
  detail::StateWriter out;
  write_fingerprint(out, m_options);
  out.i64(m_advanced);
  write_sources(out, *m_left);
  write_sources(out, *m_right);
  const JoinStats& s = *m_stats;
  for (std::uint64_t v : {s.left_events, s.right_events, s.late_dropped, s.late_side, s.bad_time, s.over_limit, s.rows,
                          s.retractions, s.markers, s.expired}) {
    out.u64(v);
  }
  out.u64(inputs.size());
  for (const auto& [id, seq] : inputs) {
    out.u64(id);
    out.u64(seq);
  }
  m_store->save(out);
  return detail::write_file_atomic(path, detail::seal(magic, out.bytes()));
}

Result<Positions> JoinOperator::restore(const std::string& path) {
  auto bytes = detail::read_file(path);
  if (!bytes) return std::unexpected(bytes.error());
  return restore_bytes(*bytes);
}

Result<Positions> JoinOperator::restore_bytes(std::string_view bytes) {
  if (m_stats->left_events > 0 || m_stats->right_events > 0 || m_left->sources() > 0 || m_right->sources() > 0) {
    return fail(Errc::invalid_argument, "restore needs a fresh join operator");
  }
  auto payload = detail::unseal(magic, bytes);
  if (!payload) return std::unexpected(payload.error());
  detail::StateWriter expected;
  write_fingerprint(expected, m_options);
  if (payload->substr(0, expected.bytes().size()) != expected.bytes()) {
    return fail(Errc::incompatible, "checkpoint of a different join kind, window, bounds or ttl");
  }
  detail::StateReader in(payload->substr(expected.bytes().size()));
  const TimeMs advanced = in.i64();
  read_sources(in, *m_left);
  read_sources(in, *m_right);
  JoinStats s;
  for (std::uint64_t* v : {&s.left_events, &s.right_events, &s.late_dropped, &s.late_side, &s.bad_time, &s.over_limit,
                           &s.rows, &s.retractions, &s.markers, &s.expired}) {
    *v = in.u64();
  }
  Positions pos;
  const std::uint64_t inputs = in.count(16);
  for (std::uint64_t i = 0; i < inputs && in.ok(); ++i) {
    const std::uint64_t id = in.u64();
    pos.inputs[id] = in.u64();
  }
  if (!in.ok() || !m_store->load(in) || !in.done()) {
    // Leave no half-loaded state behind: fresh trackers and store, as before the call.
    m_left = std::make_unique<WatermarkTracker>(m_options.watermark);
    m_right = std::make_unique<WatermarkTracker>(m_options.watermark);
    make_store();
    return fail(Errc::corrupt, "join checkpoint state does not parse");
  }
  m_advanced = advanced;
  *m_stats = s;
  pos.outputs = s.rows + s.markers;
  return pos;
}

}  // namespace rill::stream
