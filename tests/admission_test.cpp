// The delivery core's admission (policies/durability/admission.hpp), written once for every
// transport: which requests are refused, and where an admitted subscription starts. Against
// a scripted History, so each branch is reached on purpose.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "policies/durability/admission.hpp"
#include "policies/durability/seq_ranges.hpp"

using namespace rill;
using namespace rill::detail;

namespace {

// A History whose answers the test sets.
class ScriptedHistory final : public History {
 public:
  DurabilityKind kind = DurabilityKind::persistent;
  HistoryStart start{};
  bool cursor_fails = false;
  mutable std::uint64_t last_limit = 0;
  mutable StartFrom last_from = StartFrom::last_ack;
  mutable std::string last_name;

  DurabilityKind offered() const noexcept override { return kind; }
  std::uint64_t publisher_id() const noexcept override { return 7; }
  std::uint64_t next_sequence() const noexcept override { return 101; }
  Result<void> record(std::span<const std::byte>, std::uint64_t, std::int64_t) override { return {}; }
  HistoryStart start_for(StartFrom from, std::string_view name, std::uint64_t history) const override {
    last_from = from;
    last_name = std::string(name);
    last_limit = history;
    return start;
  }
  Result<std::unique_ptr<HistoryCursor>> cursor(std::uint64_t seq) const override {
    if (cursor_fails) return fail(Errc::corrupt, "segment 3 at offset 80");
    struct Empty final : HistoryCursor {
      std::uint64_t at;
      explicit Empty(std::uint64_t s) : at(s) {}
      Result<std::optional<std::span<const std::byte>>> next(std::uint64_t) override { return std::nullopt; }
      std::uint64_t position() const noexcept override { return at; }
      std::uint64_t lost() const noexcept override { return 0; }
    };
    return std::unique_ptr<HistoryCursor>(std::make_unique<Empty>(seq));
  }
  std::string acked_name;
  std::uint64_t acked_seq = 0;
  int acks = 0;
  void ack(std::string_view name, std::uint64_t seq) override {
    acked_name = std::string(name);
    acked_seq = seq;
    ++acks;
  }
  Result<void> flush_acks() override { return {}; }
  std::optional<std::uint64_t> acked(std::string_view) const override { return std::nullopt; }
};

Refusal check(DurabilityKind offered, AdmissionRequest r) {
  std::string_view reason;
  const auto why = check_request(offered, r, &reason);
  CHECK((why == Refusal::none) == reason.empty());
  return why;
}

}  // namespace

TEST_CASE("more durability than offered is refused, never downgraded; less is taken") {
  CHECK(check(DurabilityKind::volatile_, {.requested = DurabilityKind::transient_local}) == Refusal::durability);
  CHECK(check(DurabilityKind::transient_local, {.requested = DurabilityKind::persistent, .durable_name = "a"}) ==
        Refusal::durability);
  CHECK(check(DurabilityKind::persistent, {.requested = DurabilityKind::volatile_}) == Refusal::none);
  CHECK(check(DurabilityKind::persistent, {.requested = DurabilityKind::transient_local}) == Refusal::none);
}

TEST_CASE("durable and group names that name no file are refused as malformed, on every transport alike") {
  const auto persistent = DurabilityKind::persistent;
  for (const std::string& bad : std::vector<std::string>{"../x", ".hidden", "a/b", "sp ace", std::string(129, 'a'),
                                                         std::string("a\0b", 3)}) {
    INFO("name: " << bad);
    CHECK(check(persistent, {.requested = persistent, .durable_name = bad}) == Refusal::malformed);
    CHECK(check(persistent, {.requested = persistent, .durable_name = "ok", .group = bad}) == Refusal::malformed);
  }
  CHECK(check(persistent, {.requested = persistent, .durable_name = "orders-1.v2_x"}) == Refusal::none);
  CHECK(check(persistent, {.requested = persistent, .durable_name = std::string(128, 'a')}) == Refusal::none);
  // A volatile group's name is stored nowhere: anything but a NUL byte.
  CHECK(check(persistent, {.group = "team a/b"}) == Refusal::none);
  CHECK(check(persistent, {.group = std::string("a\0b", 3)}) == Refusal::malformed);
  CHECK(file_safe_name("x"));
  CHECK_FALSE(file_safe_name(""));
}

TEST_CASE("volatile, or no history: live from the publisher's next sequence") {
  ScriptedHistory h;
  h.start = {.from = 5, .lost = 0};
  auto s = start_subscription(&h, 42, {.requested = DurabilityKind::volatile_}, "test");
  CHECK(s.first == 42);
  CHECK(s.lost == 0);
  CHECK(s.cursor == nullptr);
  s = start_subscription(nullptr, 42, {.requested = DurabilityKind::volatile_}, "test");
  CHECK(s.first == 42);
}

TEST_CASE("transient_local: the last N kept, nothing reported lost; persistent: by its start and name") {
  ScriptedHistory h;
  h.start = {.from = 30, .lost = 9};
  auto s = start_subscription(&h, 42, {.requested = DurabilityKind::transient_local, .history_limit = 12}, "test");
  CHECK(h.last_limit == 12);
  CHECK(h.last_from == StartFrom::start);
  CHECK(s.first == 30);
  CHECK(s.lost == 0);  // "the last N kept": nothing it asked for is missing
  REQUIRE(s.cursor != nullptr);
  CHECK(s.cursor->position() == 30);

  s = start_subscription(
      &h, 42, {.requested = DurabilityKind::persistent, .from = StartFrom::last_ack, .durable_name = "orders"}, "test");
  CHECK(h.last_name == "orders");
  CHECK(h.last_from == StartFrom::last_ack);
  CHECK(s.first == 30);
  CHECK(s.lost == 9);  // deleted by retention past its ack: a gap it is told about
  CHECK(s.cursor != nullptr);
}

TEST_CASE("the message being published now may already be kept: it goes out live, not from history") {
  ScriptedHistory h;
  h.start = {.from = 43, .lost = 0};  // the history already holds 42, being sent right now
  const auto s = start_subscription(&h, 42, {.requested = DurabilityKind::persistent, .durable_name = "d"}, "test");
  CHECK(s.first == 42);
  CHECK(s.cursor == nullptr);
}

TEST_CASE("an unreadable history: the subscription starts live and what it cannot be sent is lost") {
  ScriptedHistory h;
  h.start = {.from = 30, .lost = 4};
  h.cursor_fails = true;
  const auto s = start_subscription(&h, 42, {.requested = DurabilityKind::persistent, .durable_name = "d"}, "test");
  CHECK(s.first == 42);
  CHECK(s.lost == 4 + 12);
  CHECK(s.cursor == nullptr);
}

TEST_CASE("a group's position: moves only forward, stored for a durable group only, the same on every transport") {
  ScriptedHistory h;
  std::uint64_t acked = 10;
  CHECK_FALSE(advance_group_position(acked, 11, &h, "g"));  // 10 handled already: nothing new
  CHECK_FALSE(advance_group_position(acked, 5, &h, "g"));   // never backwards
  CHECK(acked == 10);
  CHECK(h.acks == 0);
  CHECK(advance_group_position(acked, 40, &h, "g"));  // everything below 40 is handled
  CHECK(acked == 39);
  CHECK(h.acks == 1);
  CHECK(h.acked_name == "group:g");
  CHECK(h.acked_seq == 39);
  // A volatile group keeps its position in memory only.
  std::uint64_t vol = 0;
  CHECK(advance_group_position(vol, 7, nullptr, "v"));
  CHECK(vol == 6);
  CHECK(h.acks == 1);
}
