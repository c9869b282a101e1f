// shm_publisher: sends COUNT typed Quotes on "md/quotes" through shared memory, each
// built straight into a chunk of the segment (a loan): nothing is copied to send it.
// Usage: shm_publisher ENDPOINT COUNT    e.g. shm_publisher shm://quotes 1000
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string_view>

#include <rill/rill.hpp>

#include "quote_generated.h"

namespace {

constexpr std::array<std::string_view, 3> venue_names{"XNAS", "ARCX", "BATS"};

// Loans a chunk big enough for the quote, builds it there, and publishes it in place.
// Strings and vectors make the quote's size vary: the loan's builder grows as needed.
rill::Result<void> publish_quote(rill::Publisher& pub, std::uint32_t i) {
  auto loan = pub.loan(256);
  if (!loan) return std::unexpected(loan.error());
  auto& fbb = loan->fbb();
  const auto symbol = fbb.CreateString("ACME");
  const auto venues = fbb.CreateVectorOfStrings(venue_names.begin(), venue_names.begin() + 1 + i % 3);
  const double mid = 100.0 + (i % 100) * 0.01;
  const auto quote = example::CreateQuote(fbb, symbol, mid - 0.01, mid + 0.01, 100 + i % 10, 200 + i % 10, venues);
  return pub.publish(std::move(*loan), quote);
}

}  // namespace

int main(int argc, char** argv) {
  std::uint32_t count = 0;
  const std::string_view count_arg = argc == 3 ? argv[2] : "";
  const auto [end, ec] = std::from_chars(count_arg.data(), count_arg.data() + count_arg.size(), count);
  if (argc != 3 || ec != std::errc{} || end != count_arg.data() + count_arg.size()) {
    std::fprintf(stderr, "usage: shm_publisher ENDPOINT COUNT\n");
    return 2;
  }
  rill::Node node;
  // Creates /dev/shm/rill.NAME (mode 0600); a stale one from a crashed publisher is replaced.
  auto pub = node.publisher({.endpoint = argv[1], .topic = "md/quotes"});
  if (!pub) {
    std::fprintf(stderr, "shm_publisher: %s\n", pub.error().message().c_str());
    return pub.error().code == rill::Errc::invalid_argument ? 2 : 1;
  }
  if (auto n = pub->wait_for_subscribers(1, std::chrono::seconds(10)); !n) {
    std::fprintf(stderr, "shm_publisher: no subscriber: %s\n", n.error().message().c_str());
    return 1;
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    auto r = publish_quote(*pub, i);
    for (int tries = 0; !r && r.error().code == rill::Errc::timed_out && tries < 10; ++tries) r = publish_quote(*pub, i);
    if (!r) {
      std::fprintf(stderr, "shm_publisher: publish %u: %s\n", i, r.error().message().c_str());
      return 1;
    }
  }
  const auto& s = pub->stats();
  std::fprintf(stderr, "sent=%llu timeouts=%llu blocked_ns=%llu\n", static_cast<unsigned long long>(s.sent),
               static_cast<unsigned long long>(s.timeouts), static_cast<unsigned long long>(s.blocked_ns));
  return 0;  // ~Publisher marks the segment closed with the last sequence and removes its name
}
