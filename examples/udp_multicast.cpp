// udp_multicast: typed Quotes over UDP multicast, reliable (NAK/retransmit, in order).
// Usage: udp_multicast pub|sub ENDPOINT COUNT
//   udp_multicast sub 'udp://239.255.0.1:7400?iface=127.0.0.1&reliable=1' 1000 &
//   udp_multicast pub 'udp://239.255.0.1:7400?iface=127.0.0.1&reliable=1' 1000
// Across hosts, set iface to this host's address on the network the group runs on.
// Exits 0 when COUNT quotes went out / arrived with no gap, 1 on failure, 2 on bad usage.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string_view>

#include <rill/rill.hpp>

#include "quote_generated.h"

namespace {

int publish(rill::Node& node, const char* endpoint, std::uint32_t count) {
  auto pub = node.publisher({.endpoint = endpoint, .topic = "md/quotes"});
  if (!pub) {
    std::fprintf(stderr, "udp_multicast: %s\n", pub.error().message().c_str());
    return pub.error().code == rill::Errc::invalid_argument ? 2 : 1;
  }
  // Subscribers find the publisher by its heartbeats and join; wait for one.
  if (auto n = pub->wait_for_subscribers(1, std::chrono::seconds(10)); !n) {
    std::fprintf(stderr, "udp_multicast: no subscriber: %s\n", n.error().message().c_str());
    return 1;
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    auto& fbb = pub->start();
    const auto symbol = fbb.CreateString("ACME");
    const double mid = 100.0 + (i % 100) * 0.01;
    auto r = pub->publish(example::CreateQuote(fbb, symbol, mid - 0.01, mid + 0.01, 100, 200));
    if (!r) {
      std::fprintf(stderr, "udp_multicast: publish %u: %s\n", i, r.error().message().c_str());
      return 1;
    }
  }
  // ~Publisher sends BYE and keeps answering NAKs until every reliable subscriber has
  // everything (or the endpoint's linger_ms passes).
  return 0;
}

int subscribe(rill::Node& node, const char* endpoint, std::uint64_t count) {
  auto sub = node.subscriber({.endpoints = {endpoint}, .prefix = "md/", .policy = rill::Policy::drop_oldest(65536)});
  if (!sub) {
    std::fprintf(stderr, "udp_multicast: %s\n", sub.error().message().c_str());
    return sub.error().code == rill::Errc::invalid_argument ? 2 : 1;
  }
  auto on_message = [](const rill::MessageView& m) {
    if (const auto* q = m.payload_as<example::Quote>(); q != nullptr && q->symbol() != nullptr) {
      std::printf("seq=%llu %s %.2f/%.2f\n", static_cast<unsigned long long>(m.sequence()), q->symbol()->c_str(),
                  q->bid(), q->ask());
    }
  };
  auto last = std::chrono::steady_clock::now();
  while (sub->stats().received + sub->stats().gaps < count) {
    if (sub->wait_poll(on_message, 64, std::chrono::milliseconds(100)) > 0) {
      last = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last > std::chrono::seconds(10)) {
      break;
    }
  }
  const auto& s = sub->stats();
  std::printf("{\"stats\":{\"received\":%llu,\"gaps\":%llu}}\n", static_cast<unsigned long long>(s.received),
              static_cast<unsigned long long>(s.gaps));
  return s.received == count && s.gaps == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint32_t count = 0;
  const std::string_view mode = argc == 4 ? argv[1] : "";
  const std::string_view count_arg = argc == 4 ? argv[3] : "";
  const auto [end, ec] = std::from_chars(count_arg.data(), count_arg.data() + count_arg.size(), count);
  if ((mode != "pub" && mode != "sub") || ec != std::errc{} || end != count_arg.data() + count_arg.size()) {
    std::fprintf(stderr, "usage: udp_multicast pub|sub ENDPOINT COUNT\n");
    return 2;
  }
  rill::Node node;
  return mode == "pub" ? publish(node, argv[2], count) : subscribe(node, argv[2], count);
}
