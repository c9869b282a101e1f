// Test helpers for the join operator: random two-input streams with out-of-order and late
// records, and nested-loop references computed over the whole input at once, with the
// watermark replayed independently (per input: min over its sources of latest - bound; the
// join's: min of the two) to know which records were late and what TTL had freed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "rill/stream.hpp"

namespace jointest {

namespace rs = rill::stream;
using rs::JoinEvent;
using rs::Side;
using rs::TimeMs;

/// One arrival: a record and its input.
struct Arrival {
  Side side;
  JoinEvent event;
};

/// A row's identity, comparable: (key, left payload, right payload or "null", time, start, end).
using RowTuple = std::tuple<std::string, std::string, std::string, TimeMs, TimeMs, TimeMs>;
inline RowTuple tuple_of(const rs::JoinRow& r) {
  return {
      std::string(r.key), r.left ? r.left->payload : "?", r.right ? r.right->payload : "null", r.time, r.window_start,
      r.window_end};
}

/// Records from `sources` sources per input over [0, span), `keys` keys, each source up to
/// `disorder` ms out of order; a `late_fraction` of them is held back up to 4 * disorder
/// more (so some arrive behind the watermark). Payloads are unique JSON strings ("L7").
inline std::vector<Arrival> random_input(std::mt19937_64& rng, int sources, int per_source, int keys, TimeMs span,
                                         TimeMs disorder, double late_fraction) {
  std::uniform_int_distribution<TimeMs> time(0, span - 1);
  std::uniform_int_distribution<TimeMs> jitter(0, disorder);
  std::uniform_int_distribution<TimeMs> extra(disorder + 1, 4 * disorder + 1);
  std::uniform_int_distribution<int> key(0, keys - 1);
  std::bernoulli_distribution held(late_fraction);
  std::vector<std::vector<Arrival>> streams;
  int serial = 0;
  for (Side side : {Side::left, Side::right}) {
    for (int s = 0; s < sources; ++s) {
      std::vector<std::pair<TimeMs, Arrival>> timed;  // (arrival time, record)
      for (int i = 0; i < per_source; ++i) {
        std::string k(1, 'k');
        k += std::to_string(key(rng));
        std::string payload(1, '"');
        payload += side == Side::left ? 'L' : 'R';
        payload += std::to_string(serial++);
        payload += '"';
        JoinEvent e{.key = std::move(k),
                    .payload = std::move(payload),
                    .time = time(rng),
                    .source = (side == Side::left ? 100u : 200u) + static_cast<std::uint64_t>(s),
                    .sequence = 0};
        const TimeMs at = e.time + jitter(rng) + (held(rng) ? extra(rng) : 0);
        timed.emplace_back(at, Arrival{side, std::move(e)});
      }
      std::stable_sort(timed.begin(), timed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      streams.emplace_back();
      std::uint64_t seq = 1;
      for (auto& [at, a] : timed) {
        a.event.sequence = seq++;
        streams.back().push_back(std::move(a));
      }
    }
  }
  std::vector<Arrival> out;
  std::vector<std::size_t> next(streams.size(), 0);
  std::uniform_int_distribution<std::size_t> pick(0, streams.size() - 1);
  const std::size_t total = streams.size() * static_cast<std::size_t>(per_source);
  while (out.size() < total) {
    const std::size_t s = pick(rng);
    if (next[s] < streams[s].size()) out.push_back(streams[s][next[s]++]);
  }
  return out;
}

/// The join's watermark before each arrival, replayed from the input: each input's is the
/// minimum over its sources of (latest time - bound), never going back (a source that
/// appears later does not pull it back), min_time while the input has none; the join's is
/// the smaller of the two, never going back.
inline std::vector<TimeMs> watermarks_before(const std::vector<Arrival>& input, TimeMs bound) {
  std::map<std::uint64_t, TimeMs> latest[2];
  TimeMs input_w[2] = {rs::min_time, rs::min_time};
  std::vector<TimeMs> out;
  TimeMs w = rs::min_time;
  for (const Arrival& a : input) {
    out.push_back(w);
    const int side = a.side == Side::left ? 0 : 1;
    auto [it, fresh] = latest[side].try_emplace(a.event.source, a.event.time);
    if (!fresh) it->second = std::max(it->second, a.event.time);
    TimeMs low = rs::max_time;
    for (const auto& [id, t] : latest[side]) low = std::min(low, t - bound);
    input_w[side] = std::max(input_w[side], low);
    w = std::max(w, std::min(input_w[0], input_w[1]));
  }
  return out;
}

/// Window join: every pair of on-time records of one key in the same window, by brute force
/// over all window starts (multiples of hop) that could hold each record.
inline std::multiset<RowTuple> window_reference(const std::vector<Arrival>& input, const std::vector<bool>& late,
                                                TimeMs size, TimeMs hop) {
  std::multiset<RowTuple> out;
  for (std::size_t i = 0; i < input.size(); ++i) {
    if (late[i] || input[i].side != Side::left) continue;
    const JoinEvent& l = input[i].event;
    for (std::size_t j = 0; j < input.size(); ++j) {
      if (late[j] || input[j].side != Side::right || input[j].event.key != l.key) continue;
      const JoinEvent& r = input[j].event;
      for (TimeMs s = -(size / hop + 2) * hop; s <= std::max(l.time, r.time); s += hop) {
        if (s <= l.time && l.time < s + size && s <= r.time && r.time < s + size) {
          out.insert({l.key, l.payload, r.payload, s + size - 1, s, s + size});
        }
      }
    }
  }
  return out;
}

/// Interval join: every pair of on-time records of one key with r - lower <= l <= r + upper.
inline std::multiset<RowTuple> interval_reference(const std::vector<Arrival>& input, const std::vector<bool>& late,
                                                  TimeMs lower, TimeMs upper) {
  std::multiset<RowTuple> out;
  for (std::size_t i = 0; i < input.size(); ++i) {
    if (late[i] || input[i].side != Side::left) continue;
    const JoinEvent& l = input[i].event;
    for (std::size_t j = 0; j < input.size(); ++j) {
      if (late[j] || input[j].side != Side::right || input[j].event.key != l.key) continue;
      const JoinEvent& r = input[j].event;
      if (r.time - lower <= l.time && l.time <= r.time + upper) {
        out.insert({l.key, l.payload, r.payload, std::max(l.time, r.time), 0, 0});
      }
    }
  }
  return out;
}

/// Regular join with an event-time TTL (0: none): a pair joins when the earlier record was
/// still held when the later one arrived (its time + ttl >= the watermark then). With
/// `left_outer`, an on-time left record that never joined stays as a null-padded row.
inline std::multiset<RowTuple> regular_reference(const std::vector<Arrival>& input, const std::vector<bool>& late,
                                                 const std::vector<TimeMs>& w, TimeMs ttl, bool left_outer) {
  std::multiset<RowTuple> out;
  for (std::size_t i = 0; i < input.size(); ++i) {
    if (late[i] || input[i].side != Side::left) continue;
    const JoinEvent& l = input[i].event;
    bool joined = false;
    for (std::size_t j = 0; j < input.size(); ++j) {
      if (late[j] || input[j].side != Side::right || input[j].event.key != l.key) continue;
      const JoinEvent& r = input[j].event;
      const std::size_t later = std::max(i, j);
      const JoinEvent& earlier = i < j ? l : r;
      if (ttl > 0 && earlier.time + ttl < w[later]) continue;  // freed before the later arrived
      joined = true;
      out.insert({l.key, l.payload, r.payload, std::max(l.time, r.time), 0, 0});
    }
    if (left_outer && !joined) out.insert({l.key, l.payload, "null", l.time, 0, 0});
  }
  return out;
}

/// Left outer join: how many null-padded rows must be retracted, i.e. on-time left records
/// that found no match when they arrived but did later (the same pairing rule as above).
inline std::size_t expected_retractions(const std::vector<Arrival>& input, const std::vector<bool>& late,
                                        const std::vector<TimeMs>& w, TimeMs ttl) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < input.size(); ++i) {
    if (late[i] || input[i].side != Side::left) continue;
    const JoinEvent& l = input[i].event;
    bool before = false, after = false;
    for (std::size_t j = 0; j < input.size(); ++j) {
      if (late[j] || input[j].side != Side::right || input[j].event.key != l.key) continue;
      const JoinEvent& earlier = i < j ? l : input[j].event;
      if (ttl > 0 && earlier.time + ttl < w[std::max(i, j)]) continue;
      (j < i ? before : after) = true;
    }
    n += !before && after ? 1 : 0;
  }
  return n;
}

/// Applies a join changelog: +I inserts, -D removes the exact row (counted if absent).
struct Changelog {
  std::multiset<RowTuple> rows;
  std::uint64_t missing_retractions = 0;
  std::vector<std::string> log;  // every output as text, in order
  void apply(const rs::JoinRow& r) {
    log.push_back(std::string(rs::to_string(r.kind)) + " " + rs::join_row_json(r));
    if (r.kind == rs::RowKind::insert) {
      rows.insert(tuple_of(r));
    } else if (auto it = rows.find(tuple_of(r)); it != rows.end()) {
      rows.erase(it);
    } else {
      ++missing_retractions;
    }
  }
};

}  // namespace jointest
