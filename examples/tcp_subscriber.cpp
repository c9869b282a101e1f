// tcp_subscriber: prints COUNT Quotes received on "md/..." from ENDPOINT, then its stats.
// Usage: tcp_subscriber ENDPOINT COUNT    e.g. tcp_subscriber tcp://127.0.0.1:5555 1000
// Exits 0 when COUNT quotes arrived, 1 after 10 s of silence or on failure, 2 on bad usage.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string_view>

#include <rill/rill.hpp>

#include "quote_generated.h"

int main(int argc, char** argv) {
  std::uint64_t count = 0;
  const std::string_view count_arg = argc == 3 ? argv[2] : "";
  const auto [end, ec] = std::from_chars(count_arg.data(), count_arg.data() + count_arg.size(), count);
  if (argc != 3 || ec != std::errc{} || end != count_arg.data() + count_arg.size()) {
    std::fprintf(stderr, "usage: tcp_subscriber ENDPOINT COUNT\n");
    return 2;
  }
  rill::Node node;
  // backpressure: a slow subscriber slows the publisher down instead of losing quotes.
  auto sub = node.subscriber({.endpoints = {argv[1]}, .prefix = "md/", .policy = rill::Policy::backpressure(64)});
  if (!sub) {
    std::fprintf(stderr, "tcp_subscriber: %s\n", sub.error().message().c_str());
    return sub.error().code == rill::Errc::invalid_argument ? 2 : 1;
  }
  std::uint64_t quotes = 0;
  auto on_message = [&](const rill::MessageView& m) {
    // Verified, then read in place in the receive buffer: no copy, no parse step.
    const auto* q = m.payload_as<example::Quote>();
    if (q == nullptr || q->symbol() == nullptr) {
      std::printf("seq=%llu: not a Quote (%zu bytes)\n", static_cast<unsigned long long>(m.sequence()), m.payload().size());
      return;
    }
    ++quotes;
    std::printf("seq=%llu %s %.2f/%.2f %ux%u venues=", static_cast<unsigned long long>(m.sequence()),
                q->symbol()->c_str(), q->bid(), q->ask(), q->bid_size(), q->ask_size());
    if (q->venues() != nullptr) {
      for (const auto* v : *q->venues()) std::printf("%s ", v->c_str());
    }
    std::printf("\n");
  };
  auto last = std::chrono::steady_clock::now();
  while (sub->stats().received < count) {
    if (sub->wait_poll(on_message, 64, std::chrono::milliseconds(100)) > 0) {
      last = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last > std::chrono::seconds(10)) {
      break;  // the publisher went quiet
    }
  }
  const auto& s = sub->stats();
  std::printf("{\"stats\":{\"received\":%llu,\"quotes\":%llu,\"gaps\":%llu,\"dropped\":%llu}}\n",
              static_cast<unsigned long long>(s.received), static_cast<unsigned long long>(quotes),
              static_cast<unsigned long long>(s.gaps), static_cast<unsigned long long>(s.dropped));
  return quotes == count && s.gaps == 0 ? 0 : 1;
}
