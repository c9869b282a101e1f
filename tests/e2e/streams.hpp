// Reading what `rill sub` printed: message lines in text or json form, and questions
// the policy tests ask about the sequence numbers that arrived.
#pragma once

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "process.hpp"

namespace rill::e2e {

/// Sequence numbers from `--format text` lines ("TOPIC SEQ PAYLOAD"), in arrival order.
/// A line whose topic is not `topic`, or whose generated payload does not start with
/// "rill SEQ", is counted in `bad` (the stats line is skipped).
struct TextMessages {
  std::vector<std::uint64_t> seqs;
  std::size_t bad = 0;
};

inline TextMessages parse_text(std::string_view out, std::string_view topic) {
  TextMessages m;
  for (const auto line : lines(out)) {
    if (line.empty() || line.starts_with("{\"stats\"")) continue;
    std::uint64_t seq = 0;
    const auto rest = line.substr(std::min(line.size(), topic.size() + 1));
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), seq);
    const auto payload = std::string_view(end, static_cast<std::size_t>(rest.data() + rest.size() - end));
    const auto expected = " rill " + std::to_string(seq);
    if (!line.starts_with(topic) || line.size() <= topic.size() || line[topic.size()] != ' ' || ec != std::errc{} ||
        !payload.starts_with(expected) || (payload.size() > expected.size() && payload[expected.size()] != '.')) {
      ++m.bad;
      continue;
    }
    m.seqs.push_back(seq);
  }
  return m;
}

/// One `--format json` message line, the fields the tests use.
struct JsonMessage {
  std::string publisher;
  std::uint64_t seq = 0;
  std::uint64_t ts_ns = 0;
  std::string topic;
};

/// Message lines of `--format json` output; `bad` counts lines that are neither a
/// message nor the stats line.
struct JsonMessages {
  std::vector<JsonMessage> all;
  std::size_t bad = 0;
};

inline JsonMessages parse_json(std::string_view out) {
  JsonMessages m;
  for (const auto line : lines(out)) {
    if (line.empty() || line.starts_with("{\"stats\"")) continue;
    const auto pub = json_str(line, "publisher");
    const auto seq = json_u64(line, "seq");
    const auto ts = json_u64(line, "ts_ns");
    const auto topic = json_str(line, "topic");
    if (!pub || !seq || !ts || !topic || pub->size() != 16) {
      ++m.bad;
      continue;
    }
    m.all.push_back({std::string(*pub), *seq, *ts, std::string(*topic)});
  }
  return m;
}

/// Index of the first sequence that does not increase (seqs.size() when all do).
inline std::size_t first_not_increasing(const std::vector<std::uint64_t>& seqs) {
  for (std::size_t i = 1; i < seqs.size(); ++i) {
    if (seqs[i] <= seqs[i - 1]) return i;
  }
  return seqs.size();
}

/// True when `seqs` is exactly first, first+1, ..., first+seqs.size()-1.
inline bool is_run_from(const std::vector<std::uint64_t>& seqs, std::uint64_t first) {
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i] != first + i) return false;
  }
  return true;
}

/// How many of `seqs` (increasing) lie in [lo, hi].
inline std::size_t count_in(const std::vector<std::uint64_t>& seqs, std::uint64_t lo, std::uint64_t hi) {
  return static_cast<std::size_t>(
      std::count_if(seqs.begin(), seqs.end(), [&](std::uint64_t s) { return s >= lo && s <= hi; }));
}

/// The last `n` elements (all of them when there are fewer).
inline std::vector<std::uint64_t> tail(const std::vector<std::uint64_t>& seqs, std::size_t n) {
  return {seqs.end() - static_cast<std::ptrdiff_t>(std::min(n, seqs.size())), seqs.end()};
}

/// The first `n` elements (all of them when there are fewer).
inline std::vector<std::uint64_t> head(const std::vector<std::uint64_t>& seqs, std::size_t n) {
  return {seqs.begin(), seqs.begin() + static_cast<std::ptrdiff_t>(std::min(n, seqs.size()))};
}

/// `s` with every whitespace character removed (flatc's JSON, for comparisons).
inline std::string without_spaces(std::string s) {
  std::erase_if(s, [](unsigned char c) { return std::isspace(c) != 0; });
  return s;
}

/// The bytes a `--format hex` line stands for.
inline std::string hex_to_bytes(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

}  // namespace rill::e2e
