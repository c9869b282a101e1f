// callback_subscriber: the same Quotes as tcp_subscriber, delivered by Node::subscribe
// on a thread of its own; main() only waits. Usage: callback_subscriber ENDPOINT COUNT
// Exits 0 when COUNT quotes arrived, 1 after 10 s of silence or on failure, 2 on bad usage.
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string_view>
#include <thread>

#include <rill/rill.hpp>

#include "quote_generated.h"

int main(int argc, char** argv) {
  std::uint64_t count = 0;
  const std::string_view count_arg = argc == 3 ? argv[2] : "";
  const auto [end, ec] = std::from_chars(count_arg.data(), count_arg.data() + count_arg.size(), count);
  if (argc != 3 || ec != std::errc{} || end != count_arg.data() + count_arg.size()) {
    std::fprintf(stderr, "usage: callback_subscriber ENDPOINT COUNT\n");
    return 2;
  }
  std::atomic<std::uint64_t> quotes{0};
  rill::Node node;
  const rill::SubscriberOptions options{
      .endpoints = {argv[1]},
      .prefix = "md/quotes",
      .policy = rill::Policy::drop_oldest(4096),  // never slows the publisher; losses show up as gaps
      .on_loss = [](const rill::LossEvent& e) {
        std::fprintf(stderr, "lost %llu..%llu\n", static_cast<unsigned long long>(e.first),
                     static_cast<unsigned long long>(e.last));
      },
  };
  // The handler runs on the subscription's thread, never concurrently with itself.
  auto subscription = node.subscribe(options, [&quotes](const rill::MessageView& m) {
    if (const auto* q = m.payload_as<example::Quote>(); q != nullptr && q->symbol() != nullptr) {
      quotes.fetch_add(1, std::memory_order_relaxed);
      std::printf("seq=%llu %s mid=%.3f\n", static_cast<unsigned long long>(m.sequence()), q->symbol()->c_str(),
                  (q->bid() + q->ask()) / 2);
    }
  });
  if (!subscription) {
    std::fprintf(stderr, "callback_subscriber: %s\n", subscription.error().message().c_str());
    return subscription.error().code == rill::Errc::invalid_argument ? 2 : 1;
  }
  auto last_seen = quotes.load();
  auto last_change = std::chrono::steady_clock::now();
  while (quotes.load() < count && std::chrono::steady_clock::now() - last_change < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (const auto now = quotes.load(); now != last_seen) {
      last_seen = now;
      last_change = std::chrono::steady_clock::now();
    }
  }
  subscription->stop();  // joins the thread: the handler is not called after this
  const auto s = subscription->stats();
  std::printf("{\"stats\":{\"received\":%llu,\"quotes\":%llu,\"gaps\":%llu,\"dropped\":%llu}}\n",
              static_cast<unsigned long long>(s.received), static_cast<unsigned long long>(quotes.load()),
              static_cast<unsigned long long>(s.gaps), static_cast<unsigned long long>(s.dropped));
  return quotes.load() == count ? 0 : 1;
}
