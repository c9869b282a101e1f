// Durability checks that hold on every transport, shared by the transports' test files.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "rill/rill.hpp"

namespace rilltest {

/// A volatile publisher on `ep` and a subscription asking for persistent durability
/// (`opts`): the request is refused, on_incompatible fires once naming both modes, and
/// nothing is delivered while the publisher goes on publishing for `quiet` (the
/// subscription asks again now and then; it is still refused and not reported again).
inline void check_volatile_refuses_persistent(const std::string& ep, rill::SubscriberOptions opts,
                                              std::chrono::milliseconds quiet) {
  using clock_type = std::chrono::steady_clock;
  rill::Node node;
  auto pub = node.publisher({.endpoint = ep, .topic = "t"});
  REQUIRE(pub);
  std::vector<rill::IncompatibleEvent> events;
  opts.on_incompatible = [&](const rill::IncompatibleEvent& e) { events.push_back(e); };
  auto sub = node.subscriber(opts);
  REQUIRE(sub);
  std::size_t delivered = 0;
  auto count = [&](const rill::MessageView&) { ++delivered; };
  const auto deadline = clock_type::now() + std::chrono::seconds(10);
  while (events.empty() && clock_type::now() < deadline) {
    (void)pub->service();
    sub->wait_poll(count, 16, std::chrono::milliseconds(2));
  }
  REQUIRE(events.size() == 1);
  CHECK(events[0].publisher_id == pub->id());
  CHECK(events[0].offered == rill::DurabilityKind::volatile_);
  CHECK(events[0].requested == rill::DurabilityKind::persistent);
  CHECK(pub->stats().incompatible == 1);
  CHECK(pub->stats().subscribers == 0);
  const auto until = clock_type::now() + quiet;
  while (clock_type::now() < until) {
    REQUIRE(pub->publish_text("not for it"));
    (void)pub->service();
    sub->wait_poll(count, 16, std::chrono::milliseconds(2));
  }
  CHECK(delivered == 0);
  CHECK(events.size() == 1);
  CHECK(sub->stats().incompatible == 1);
}

}  // namespace rilltest
