// Test helpers for the CEP operator: events from value lists, a run that collects matches
// in a comparable form, and a brute-force reference matcher for sequences of quantified
// variables (it enumerates every count vector in preference order and tests each one; a
// different algorithm from the operator's backtracking search).
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "rill/stream.hpp"

namespace ceptest {

namespace cep = rill::stream::cep;
using rill::stream::TimeMs;

/// A match as (key, match number, each row's (time, variable)).
struct Got {
  std::string key;
  std::uint64_t number = 0;
  std::vector<std::pair<TimeMs, std::string>> rows;
  bool operator==(const Got&) const = default;
  bool operator<(const Got& o) const { return std::tie(key, number, rows) < std::tie(o.key, o.number, o.rows); }
};

inline Got got_of(const cep::Match& m) {
  Got g{.key = m.key, .number = m.number, .rows = {}};
  for (std::size_t i = 0; i < m.events.size(); ++i) g.rows.emplace_back(m.events[i].time, m.vars[i]);
  return g;
}

/// One event of key `key` at `time` with one value, from source 1.
inline cep::Event ev(std::string key, TimeMs time, double value, std::uint64_t seq = 0) {
  return {.key = std::move(key), .time = time, .source = 1, .sequence = seq, .values = {value}, .payload = {}};
}

/// Events of `key` at times 1, 2, 3, ... with these values.
inline std::vector<cep::Event> series(const std::string& key, const std::vector<double>& values, TimeMs t0 = 1) {
  std::vector<cep::Event> out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    out.push_back(ev(key, t0 + static_cast<TimeMs>(i), values[i], i + 1));
  }
  return out;
}

/// Runs `events` (in this arrival order) through an operator and finish(); the matches.
inline std::vector<Got> run(cep::Pattern pattern, cep::Options options, const std::vector<cep::Event>& events,
                            cep::Stats* stats = nullptr) {
  std::vector<Got> out;
  auto op = cep::Operator::create(std::move(pattern), std::move(options),
                                  {.match = [&](const cep::Match& m) { out.push_back(got_of(m)); }});
  if (!op) return {};
  for (const auto& e : events) op->process(e);
  op->finish();
  if (stats) *stats = op->stats();
  return out;
}

/// The match rows of a test as (first time, last time) per match, for short expectations.
inline std::vector<std::pair<TimeMs, TimeMs>> spans(const std::vector<Got>& got) {
  std::vector<std::pair<TimeMs, TimeMs>> out;
  for (const auto& g : got) out.emplace_back(g.rows.front().first, g.rows.back().first);
  return out;
}

/// A variable of a flat pattern for the reference: name, {min, max}, greedy.
struct RefVar {
  std::string name;
  std::uint32_t min = 1, max = 1;
  bool greedy = true;
};

/// The reference: for each key, rows sorted by (time, source, sequence); at each start row
/// every count vector (c1..ck) in preference order (lexicographic, each position greedy =
/// high counts first, reluctant = low first) is labelled and checked row by row against the
/// conditions and WITHIN; the first one that holds is the match. Then the skip strategy.
inline std::vector<Got> reference(std::vector<cep::Event> events, const std::vector<RefVar>& vars,
                                  const std::map<std::string, cep::Condition>& define, std::optional<TimeMs> within,
                                  cep::Skip skip, const std::string& skip_to, std::size_t prev_rows) {
  std::sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
    return std::tie(a.time, a.source, a.sequence) < std::tie(b.time, b.source, b.sequence);
  });
  std::map<std::string, std::vector<const cep::Event*>> keys;
  for (const auto& e : events) keys[e.key].push_back(&e);
  std::vector<std::string> names;
  for (const auto& v : vars) names.push_back(v.name);
  std::vector<Got> out;
  for (const auto& [key, rows] : keys) {
    const std::size_t n = rows.size();
    std::uint64_t number = 0;
    std::size_t s = 0;
    while (s < n) {
      std::optional<std::vector<std::uint16_t>> found;
      std::vector<std::uint32_t> counts(vars.size());
      // Labels the rows from s by `counts` and checks them; true if they form a match.
      auto holds = [&]() {
        std::vector<std::uint16_t> labels;
        for (std::size_t v = 0; v < vars.size(); ++v)
          labels.insert(labels.end(), counts[v], static_cast<std::uint16_t>(v));
        if (labels.empty() || s + labels.size() > n) return false;
        if (within && rows[s + labels.size() - 1]->time - rows[s]->time >= *within) return false;
        const std::size_t before = std::min(prev_rows, s);
        for (std::size_t i = 0; i < labels.size(); ++i) {
          auto c = define.find(names[labels[i]]);
          if (c == define.end()) continue;
          cep::MatchView view(rows.data() + s, labels.data(), names.data(), i + 1, rows.data() + s - before, before);
          if (!c->second(view)) return false;
        }
        found = labels;
        return true;
      };
      std::function<bool(std::size_t, std::size_t)> choose = [&](std::size_t v, std::size_t used) -> bool {
        if (v == vars.size()) return holds();
        const std::uint32_t hi = static_cast<std::uint32_t>(std::min<std::size_t>(vars[v].max, n - s - used));
        if (vars[v].min > hi) return false;
        for (std::uint32_t i = 0; i <= hi - vars[v].min; ++i) {
          counts[v] = vars[v].greedy ? hi - i : vars[v].min + i;
          if (choose(v + 1, used + counts[v])) return true;
        }
        return false;
      };
      if (!choose(0, 0)) {
        ++s;
        continue;
      }
      const auto& labels = *found;
      Got g{.key = key, .number = ++number, .rows = {}};
      for (std::size_t i = 0; i < labels.size(); ++i) g.rows.emplace_back(rows[s + i]->time, names[labels[i]]);
      out.push_back(g);
      std::size_t next = 1;
      if (skip == cep::Skip::past_last_row) next = labels.size();
      for (std::size_t i = 0; i < labels.size(); ++i) {
        const std::size_t j = skip == cep::Skip::to_last ? labels.size() - 1 - i : i;
        if ((skip == cep::Skip::to_first || skip == cep::Skip::to_last) && names[labels[j]] == skip_to) {
          next = j;
          break;
        }
      }
      s += std::max<std::size_t>(next, 1);
    }
  }
  return out;
}

}  // namespace ceptest
