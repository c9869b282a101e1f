// cep::Operator: late routing, release of events in event-time order as the watermark
// passes them, and each key's match attempts, one start row at a time (SQL's order: a
// match at row s decides where the next attempt starts).
#include <algorithm>
#include <vector>

#include "stream/cep_engine.hpp"

namespace rill::stream::cep {

namespace detail {

Engine::Engine(Compiled pattern, Options options, Output output)
    : m_pattern(std::move(pattern)),
      m_options(std::move(options)),
      m_output(std::move(output)),
      m_tracker(m_options.watermark) {}

void Engine::process(const Event& event) {
  ++m_stats.events;
  if (event.time < m_tracker.watermark()) {
    if (m_options.late == LatePolicy::side_output) {
      ++m_stats.late_side;
      if (m_output.late) m_output.late(event);
    } else {
      ++m_stats.late_dropped;
    }
  } else if (m_buffer.size() >= m_options.max_buffered) {
    ++m_stats.overflow_dropped;
  } else {
    m_buffer.emplace(order_of(event), event);
  }
  m_tracker.observe(event.source, event.time);
  advance(m_tracker.update(), false);
}

void Engine::tick() {
  advance(m_tracker.update(), false);
}

void Engine::finish() {
  m_tracker.advance_to(max_time);
  advance(max_time, true);
}

void Engine::advance(TimeMs to, bool end_of_input) {
  if (to <= m_advanced && !end_of_input) return;
  m_advanced = std::max(m_advanced, to);
  // Every event before the watermark has arrived: release them to their keys in order.
  // Keys are evaluated in key order (not arrival or hash order), so a restored run emits
  // in the same order as one that never stopped.
  std::vector<std::pair<const std::string*, Partition*>> touched;
  while (!m_buffer.empty() && (end_of_input || std::get<0>(m_buffer.begin()->first) < m_advanced)) {
    auto node = m_buffer.extract(m_buffer.begin());
    Event& e = node.mapped();
    auto [it, fresh] = m_keys.try_emplace(e.key);
    touched.emplace_back(&it->first, &it->second);
    it->second.rows.push_back(std::move(e));
    ++m_retained;
  }
  // Pending attempts whose WITHIN the watermark has passed can be decided now.
  while (!m_deadlines.empty() && m_deadlines.begin()->first <= m_advanced) {
    if (auto it = m_keys.find(m_deadlines.begin()->second); it != m_keys.end()) {
      touched.emplace_back(&it->first, &it->second);
    }
    m_deadlines.erase(m_deadlines.begin());
  }
  if (end_of_input) {
    for (auto& [key, p] : m_keys) touched.emplace_back(&key, &p);
  }
  std::sort(touched.begin(), touched.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
  touched.erase(
      std::unique(touched.begin(), touched.end(), [](const auto& a, const auto& b) { return a.second == b.second; }),
      touched.end());
  for (const auto& [key, p] : touched) evaluate(*key, *p, end_of_input);
}

void Engine::evaluate(const std::string& key, Partition& p, bool end_of_input) {
  std::vector<const Event*> rows;
  rows.reserve(p.rows.size());
  for (const Event& e : p.rows) rows.push_back(&e);
  while (p.cursor < rows.size()) {
    const std::size_t before = std::min(m_options.prev_rows, p.cursor);
    const Input in{.rows = rows.data() + p.cursor,
                   .available = rows.size() - p.cursor,
                   .before = rows.data() + (p.cursor - before),
                   .before_size = before,
                   .end_of_input = end_of_input,
                   .watermark = m_advanced};
    const Attempt a = match_at(m_pattern, in);
    if (a.outcome == Outcome::too_long) {
      ++m_stats.overflow;  // a group repeated past the matcher's bound: give the attempt up
      p.pending = false;
      ++p.cursor;
      continue;
    }
    if (a.outcome == Outcome::need_more) {
      if (in.available <= m_options.max_rows_per_key) {
        p.pending = true;
        if (m_pattern.within_ms >= 0) {
          const TimeMs deadline = within_deadline(rows[p.cursor]->time, m_pattern.within_ms);
          if (deadline != p.armed) m_deadlines.emplace(deadline, key);
          p.armed = deadline;
        }
        break;
      }
      ++m_stats.overflow;  // a partial match grown past the state bound: give it up
      p.pending = false;
      ++p.cursor;
      continue;
    }
    p.pending = false;
    if (a.outcome == Outcome::matched) {
      emit(key, p, a);
      p.cursor += next_start(a);
    } else {
      if (a.within_cut) ++m_stats.expired;
      ++p.cursor;
    }
  }
  // Keep only what PREV may still reach before the next attempt.
  const std::size_t keep_from = p.cursor - std::min(m_options.prev_rows, p.cursor);
  p.rows.erase(p.rows.begin(), p.rows.begin() + static_cast<std::ptrdiff_t>(keep_from));
  p.cursor -= keep_from;
  m_retained -= keep_from;
}

std::size_t Engine::next_start(const Attempt& a) const {
  const std::size_t n = a.vars.size();
  std::size_t at = 1;  // SQL makes skipping to the match's own first row an error; we move on one
  switch (m_pattern.skip) {
    case Skip::past_last_row:
      at = n;
      break;
    case Skip::to_next_row:
      at = 1;
      break;
    case Skip::to_first:
      for (std::size_t i = 0; i < n; ++i) {
        if (a.vars[i] == m_pattern.skip_var) {
          at = i;
          break;
        }
      }
      break;
    case Skip::to_last:
      for (std::size_t i = n; i-- > 0;) {
        if (a.vars[i] == m_pattern.skip_var) {
          at = i;
          break;
        }
      }
      break;
  }
  return at == 0 ? 1 : at;
}

void Engine::emit(const std::string& key, Partition& p, const Attempt& a) {
  Match m;
  m.key = key;
  m.number = ++p.matches;
  m.events.reserve(a.vars.size());
  m.vars.reserve(a.vars.size());
  for (std::size_t i = 0; i < a.vars.size(); ++i) {
    m.events.push_back(p.rows[p.cursor + i]);
    m.vars.push_back(m_pattern.names[a.vars[i]]);
  }
  ++m_stats.matches;
  if (m_output.match) m_output.match(m);
  auto measures = [&](const MatchView& view) {
    std::vector<Value> values;
    values.reserve(m_options.measures.size());
    for (const auto& [name, fn] : m_options.measures) values.push_back(fn ? fn(view) : Value{});
    return values;
  };
  if (m_options.rows_per_match == RowsPerMatch::one) {
    ++m_stats.rows;
    if (m_output.row) m_output.row({.key = key, .match_number = m.number, .measures = measures(m.view())});
    return;
  }
  for (std::size_t i = 0; i < m.events.size(); ++i) {
    ++m_stats.rows;
    if (!m_output.row) continue;
    m_output.row({.key = key,
                  .match_number = m.number,
                  .measures = measures(m.view(i + 1)),
                  .event = &m.events[i],
                  .classifier = m.vars[i]});
  }
}

Stats Engine::stats() const noexcept {
  Stats s = m_stats;
  s.buffered = m_buffer.size();
  s.retained = m_retained;
  s.keys = m_keys.size();
  return s;
}

}  // namespace detail

Result<Operator> Operator::create(Pattern pattern, Options options, Output output) {
  if (options.watermark.out_of_orderness.count() < 0 || options.watermark.idle_after.count() < 0 ||
      options.watermark.close_when_all_idle.count() < 0) {
    return fail(Errc::invalid_argument, "durations must be >= 0");
  }
  if (options.max_rows_per_key == 0 || options.max_buffered == 0) {
    return fail(Errc::invalid_argument, "state bounds must be > 0");
  }
  auto compiled = detail::compile(std::move(pattern));
  if (!compiled) return std::unexpected(compiled.error());
  Operator op;
  op.m_engine = std::make_unique<detail::Engine>(std::move(*compiled), std::move(options), std::move(output));
  return op;
}

Operator::Operator(Operator&&) noexcept = default;
Operator& Operator::operator=(Operator&&) noexcept = default;
Operator::~Operator() = default;

void Operator::process(const Event& event) {
  m_engine->process(event);
}
void Operator::tick() {
  m_engine->tick();
}
void Operator::finish() {
  m_engine->finish();
}
TimeMs Operator::watermark() const noexcept {
  return m_engine->watermark();
}
Stats Operator::stats() const noexcept {
  return m_engine->stats();
}

}  // namespace rill::stream::cep
