// shm_subscriber: prints COUNT Quotes received through shared memory, read in place in
// the publisher's segment; keeps the last few as Samples (still zero copy) and prints
// the newest one again at the end. Sleeps on a futex while idle (no CPU).
// Usage: shm_subscriber ENDPOINT COUNT    e.g. shm_subscriber shm://quotes 1000
#include <charconv>
#include <chrono>
#include <cstdio>
#include <deque>
#include <string_view>

#include <rill/rill.hpp>

#include "quote_generated.h"

int main(int argc, char** argv) {
  std::uint64_t count = 0;
  const std::string_view count_arg = argc == 3 ? argv[2] : "";
  const auto [end, ec] = std::from_chars(count_arg.data(), count_arg.data() + count_arg.size(), count);
  if (argc != 3 || ec != std::errc{} || end != count_arg.data() + count_arg.size()) {
    std::fprintf(stderr, "usage: shm_subscriber ENDPOINT COUNT\n");
    return 2;
  }
  rill::Node node;
  auto sub = node.subscriber({.endpoints = {argv[1]},
                              .prefix = "md/",
                              .policy = rill::Policy::backpressure(64),
                              .idle = rill::IdleStrategy::spin_block});
  if (!sub) {
    std::fprintf(stderr, "shm_subscriber: %s\n", sub.error().message().c_str());
    return sub.error().code == rill::Errc::invalid_argument ? 2 : 1;
  }
  std::uint64_t quotes = 0;
  std::deque<rill::Sample> kept;  // each holds its chunk until dropped
  auto last = std::chrono::steady_clock::now();
  while (sub->stats().received < count) {
    auto sample = sub->wait_take(std::chrono::milliseconds(100));
    if (!sample) {
      if (std::chrono::steady_clock::now() - last > std::chrono::seconds(10)) break;  // publisher went quiet
      continue;
    }
    last = std::chrono::steady_clock::now();
    const auto m = sample->view();
    const auto* q = m.payload_as<example::Quote>();
    if (q == nullptr || q->symbol() == nullptr) continue;
    ++quotes;
    std::printf("seq=%llu %s %.2f/%.2f venues=%u\n", static_cast<unsigned long long>(m.sequence()), q->symbol()->c_str(),
                q->bid(), q->ask(), q->venues() == nullptr ? 0u : q->venues()->size());
    kept.push_back(std::move(*sample));
    if (kept.size() > 8) kept.pop_front();  // releasing a sample gives its chunk back
  }
  if (!kept.empty()) {
    std::printf("newest kept sample: seq=%llu\n", static_cast<unsigned long long>(kept.back().view().sequence()));
  }
  const auto& s = sub->stats();
  std::printf("{\"stats\":{\"received\":%llu,\"quotes\":%llu,\"gaps\":%llu,\"dropped\":%llu}}\n",
              static_cast<unsigned long long>(s.received), static_cast<unsigned long long>(quotes),
              static_cast<unsigned long long>(s.gaps), static_cast<unsigned long long>(s.dropped));
  return quotes == count && s.gaps == 0 ? 0 : 1;
}
