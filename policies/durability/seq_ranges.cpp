#include "seq_ranges.hpp"

#include <algorithm>
#include <iterator>

namespace rill::detail {

void add_range(std::deque<SeqRange>& runs, std::uint64_t first, std::uint64_t last) {
  auto it = std::find_if(runs.begin(), runs.end(), [&](const auto& r) { return r.first > first; });
  it = runs.insert(it, {first, last});
  if (it != runs.begin() && std::prev(it)->last + 1 >= it->first) {
    auto prev = std::prev(it);
    prev->last = std::max(prev->last, it->last);
    it = std::prev(runs.erase(it));
  }
  while (std::next(it) != runs.end() && it->last + 1 >= std::next(it)->first) {
    it->last = std::max(it->last, std::next(it)->last);
    runs.erase(std::next(it));
  }
}

void append_range(std::deque<SeqRange>& runs, std::uint64_t first, std::uint64_t last) {
  if (!runs.empty() && runs.back().last + 1 == first) {
    runs.back().last = last;
  } else {
    runs.push_back({first, last});
  }
}

GroupStart start_durable_group(const History& history, StartFrom from, std::string_view group, std::uint64_t next_seq,
                               std::deque<SeqRange>& resend) {
  const auto start = history.start_for(from, group_ack_key(group), 0);
  const auto first = std::min(start.from, next_seq);
  if (first < next_seq) add_range(resend, first, next_seq - 1);
  return {.acked = first - 1, .lost = start.lost};
}

bool advance_group_position(std::uint64_t& acked, std::uint64_t low, History* history, std::string_view group) {
  if (low == 0 || low - 1 <= acked) return false;
  acked = low - 1;
  if (history != nullptr) history->ack(group_ack_key(group), acked);
  return true;
}

}  // namespace rill::detail
