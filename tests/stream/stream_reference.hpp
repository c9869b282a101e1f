// Test helpers for the stream operator: random out-of-order input from several sources, a
// changelog applier, and a brute-force reference that assigns sorted events to windows
// directly (a different algorithm from the operator's incremental one).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "rill/stream.hpp"

namespace streamtest {

using rill::stream::Event;
using rill::stream::Row;
using rill::stream::RowKind;
using rill::stream::TimeMs;

/// A row's identity and content, comparable.
using RowTuple = std::tuple<std::string, TimeMs, TimeMs, double, std::uint64_t>;
inline RowTuple tuple_of(const Row& r) { return {r.key, r.start, r.end, r.value, r.count}; }

/// Events from `sources` sources over [0, span) with `keys` keys, integer values, each
/// source delivering its events up to `disorder` ms out of order (so never behind its own
/// watermark with out_of_orderness = disorder), the sources randomly interleaved.
inline std::vector<Event> random_input(std::mt19937_64& rng, int sources, int per_source, int keys, TimeMs span,
                                       TimeMs disorder) {
  std::vector<std::vector<Event>> streams(sources);
  std::uniform_int_distribution<TimeMs> time(0, span - 1);
  std::uniform_int_distribution<TimeMs> jitter(0, disorder);
  std::uniform_int_distribution<int> key(0, keys - 1);
  std::uniform_int_distribution<int> value(-50, 100);
  for (int s = 0; s < sources; ++s) {
    std::vector<std::pair<TimeMs, Event>> timed;  // (time + jitter, event): arrival order
    for (int i = 0; i < per_source; ++i) {
      std::string name(1, 'k');  // appended, not "k" + ...: GCC 12 warns falsely (-Wrestrict) on that
      name += std::to_string(key(rng));
      Event e{.key = std::move(name), .value = static_cast<double>(value(rng)), .time = time(rng),
              .source = 1000 + static_cast<std::uint64_t>(s), .sequence = 0};
      timed.emplace_back(e.time + jitter(rng), e);
    }
    std::stable_sort(timed.begin(), timed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::uint64_t seq = 1;
    for (auto& [at, e] : timed) {
      e.sequence = seq++;
      streams[s].push_back(e);
    }
  }
  std::vector<Event> out;
  std::vector<std::size_t> next(sources, 0);
  std::uniform_int_distribution<int> pick(0, sources - 1);
  while (out.size() < static_cast<std::size_t>(sources * per_source)) {
    const int s = pick(rng);
    if (next[s] < streams[s].size()) out.push_back(streams[s][next[s]++]);
  }
  return out;
}

/// Applies a changelog: +I/+U insert, -U/-D remove the exact row (counted if absent).
struct Changelog {
  std::multiset<RowTuple> rows;
  std::uint64_t missing_retractions = 0;
  std::vector<Row> log;
  void apply(const Row& r) {
    log.push_back(r);
    if (r.kind == RowKind::insert || r.kind == RowKind::update_after) {
      rows.insert(tuple_of(r));
    } else {
      auto it = rows.find(tuple_of(r));
      if (it == rows.end()) {
        ++missing_retractions;
      } else {
        rows.erase(it);
      }
    }
  }
};

/// An aggregate as a plain fold over a window's values, for the reference.
using Fold = std::function<double(const std::vector<double>&)>;

inline double fold_sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

inline void add_row(std::multiset<RowTuple>& out, const std::string& key, TimeMs start, TimeMs end,
                    const std::vector<double>& values, const Fold& fold) {
  if (!values.empty()) out.insert({key, start, end, fold(values), values.size()});
}

/// The final rows of every window kind, computed from the whole input at once.
/// `partial_count`: count windows also give a row for each key's last, unfilled window
/// (what every_change mode shows for it).
inline std::multiset<RowTuple> reference(std::vector<Event> events, const rill::stream::WindowSpec& spec,
                                         const Fold& fold, bool partial_count = false) {
  using rill::stream::WindowKind;
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::tie(a.time, a.source, a.sequence) < std::tie(b.time, b.source, b.sequence);
  });
  std::map<std::string, std::vector<Event>> by_key;
  for (const auto& e : events) by_key[e.key].push_back(e);
  std::multiset<RowTuple> out;
  for (const auto& [key, evs] : by_key) {
    const TimeMs lo = evs.front().time, hi = evs.back().time;
    switch (spec.kind) {
      case WindowKind::tumbling:
      case WindowKind::hopping: {
        const TimeMs hop = spec.kind == WindowKind::tumbling ? spec.size_ms : spec.hop_ms;
        // Every multiple of hop from well before the first event to the last; scan all events.
        for (TimeMs s = (lo / hop - spec.size_ms / hop - 2) * hop; s <= hi; s += hop) {
          std::vector<double> in;
          for (const auto& e : evs) {
            if (e.time >= s && e.time < s + spec.size_ms) in.push_back(e.value);
          }
          add_row(out, key, s, s + spec.size_ms, in, fold);
        }
        break;
      }
      case WindowKind::cumulate: {
        // Every period from before the first event to the last; each prefix of it, step by step.
        for (TimeMs p = (lo / spec.size_ms - 2) * spec.size_ms; p <= hi; p += spec.size_ms) {
          for (TimeMs end = p + spec.hop_ms; end <= p + spec.size_ms; end += spec.hop_ms) {
            std::vector<double> in;
            for (const auto& e : evs) {
              if (e.time >= p && e.time < end) in.push_back(e.value);
            }
            add_row(out, key, p, end, in, fold);
          }
        }
        break;
      }
      case WindowKind::sliding: {
        std::set<TimeMs> times;
        for (const auto& e : evs) times.insert(e.time);
        for (TimeMs t : times) {
          std::vector<double> in;
          for (const auto& e : evs) {
            if (e.time > t - spec.size_ms && e.time <= t) in.push_back(e.value);
          }
          add_row(out, key, t - spec.size_ms + 1, t + 1, in, fold);
        }
        break;
      }
      case WindowKind::session: {
        std::vector<double> in;
        TimeMs start = evs.front().time, last = start;
        for (const auto& e : evs) {
          if (e.time - last >= spec.gap_ms) {
            add_row(out, key, start, last + spec.gap_ms, in, fold);
            in.clear();
            start = e.time;
          }
          in.push_back(e.value);
          last = e.time;
        }
        add_row(out, key, start, last + spec.gap_ms, in, fold);
        break;
      }
      case WindowKind::count: {
        for (std::size_t i = 0; i < evs.size(); i += spec.count) {
          const std::size_t n = std::min<std::size_t>(spec.count, evs.size() - i);
          if (n < spec.count && !partial_count) break;
          std::vector<double> in;
          for (std::size_t j = i; j < i + n; ++j) in.push_back(evs[j].value);
          add_row(out, key, evs[i].time, evs[i + n - 1].time + 1, in, fold);
        }
        break;
      }
      case WindowKind::global: {
        std::vector<double> in;
        for (const auto& e : evs) in.push_back(e.value);
        add_row(out, key, rill::stream::min_time, rill::stream::max_time, in, fold);
        break;
      }
    }
  }
  return out;
}

}  // namespace streamtest
