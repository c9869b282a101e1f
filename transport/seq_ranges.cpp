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

}  // namespace rill::detail
