// The subscriber-side policy queue: which frames each policy keeps and discards.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "policies/inbound_queue.hpp"

using rill::Policy;
using rill::detail::Frame;
using rill::detail::FrameOps;
using rill::detail::InboundQueue;
using rill::detail::PushOutcome;

namespace {

// A test frame: a heap vector holding its id, so leaks and double frees show under ASan.
struct Blob {
  std::vector<std::byte>* bytes;
};
const FrameOps blob_ops{
    .release = [](void* s) noexcept { delete static_cast<Blob*>(s)->bytes; },
    .move = [](void* dst, void* src) noexcept { static_cast<Blob*>(dst)->bytes = std::exchange(static_cast<Blob*>(src)->bytes, nullptr); },
    .bytes = [](const void* s) noexcept { const auto* v = static_cast<const Blob*>(s)->bytes; return std::span<const std::byte>(*v); },
};

Frame frame(std::uint32_t id, std::size_t size = 8) {
  Frame f(&blob_ops, 0);
  auto* v = new std::vector<std::byte>(std::max<std::size_t>(size, 4));
  std::memcpy(v->data(), &id, 4);
  static_cast<Blob*>(f.storage())->bytes = v;
  return f;
}

std::uint32_t id_of(const Frame& f) {
  std::uint32_t id;
  std::memcpy(&id, f.bytes().data(), 4);
  return id;
}

std::vector<std::uint32_t> drain(InboundQueue& q) {
  std::vector<std::uint32_t> out;
  while (!q.empty()) out.push_back(id_of(q.pop()));
  return out;
}

}  // namespace

TEST_CASE("drop_oldest keeps the newest N and counts what it discarded") {
  InboundQueue q(Policy::drop_oldest(3));
  for (std::uint32_t i = 1; i <= 10; ++i) q.push(frame(i));
  CHECK(q.discarded() == 7);
  CHECK(drain(q) == std::vector<std::uint32_t>{8, 9, 10});
}

TEST_CASE("drop_newest keeps the first N and refuses the rest while full") {
  InboundQueue q(Policy::drop_newest(3));
  for (std::uint32_t i = 1; i <= 10; ++i) {
    CHECK(q.push(frame(i)) == (i <= 3 ? PushOutcome::queued : PushOutcome::rejected));
  }
  CHECK(q.discarded() == 7);
  CHECK(drain(q) == std::vector<std::uint32_t>{1, 2, 3});
  q.push(frame(11));  // room again: new frames are accepted
  CHECK(drain(q) == std::vector<std::uint32_t>{11});
}

TEST_CASE("a backpressure queue raised for more publishers keeps what it holds, in order, and takes a window more") {
  InboundQueue q(Policy::backpressure(3));
  for (std::uint32_t i = 1; i <= 3; ++i) CHECK(q.push(frame(i)) == PushOutcome::queued);
  CHECK(q.push(frame(4)) == PushOutcome::rejected);  // past one window
  q.pop();                                           // the ring's head is no longer slot 0
  CHECK(q.push(frame(5)) == PushOutcome::queued);
  q.raise_capacity(6);  // a second publisher with its own window of 3
  for (std::uint32_t i = 6; i <= 8; ++i) CHECK(q.push(frame(i)) == PushOutcome::queued);
  CHECK(q.push(frame(9)) == PushOutcome::rejected);
  q.raise_capacity(2);  // never shrinks
  CHECK(q.policy().capacity == 6);
  CHECK(drain(q) == std::vector<std::uint32_t>{2, 3, 5, 6, 7, 8});
}

TEST_CASE("buffer grows to its byte limit, then overflows once into drop_oldest") {
  InboundQueue q(Policy::buffer(1000));
  for (std::uint32_t i = 1; i <= 9; ++i) CHECK(q.push(frame(i, 100)) == PushOutcome::queued);
  CHECK_FALSE(q.overflowed());
  for (std::uint32_t i = 10; i <= 200; ++i) q.push(frame(i, 100));
  CHECK(q.overflowed());
  CHECK(q.bytes() <= 1000);
  CHECK(q.high_water_bytes() <= 1000);
  const auto kept = drain(q);
  CHECK(kept.size() == 10);
  CHECK(kept.back() == 200);
  CHECK(q.discarded() == 190);
}

TEST_CASE("buffer queues grow their ring when many small frames fit the byte limit") {
  InboundQueue q(Policy::buffer(1 << 20));
  for (std::uint32_t i = 1; i <= 1000; ++i) q.push(frame(i, 8));
  CHECK_FALSE(q.overflowed());
  const auto kept = drain(q);
  REQUIRE(kept.size() == 1000);
  CHECK(kept.front() == 1);
  CHECK(kept.back() == 1000);
}

TEST_CASE("a frame larger than the whole buffer is refused") {
  InboundQueue q(Policy::buffer(100));
  CHECK(q.push(frame(1, 500)) == PushOutcome::rejected);
  CHECK(q.empty());
}

TEST_CASE("backpressure refuses frames past its window rather than growing") {
  InboundQueue q(Policy::backpressure(4));
  for (std::uint32_t i = 1; i <= 4; ++i) CHECK(q.push(frame(i)) == PushOutcome::queued);
  CHECK(q.push(frame(5)) == PushOutcome::rejected);
  CHECK(drain(q) == std::vector<std::uint32_t>{1, 2, 3, 4});
}

TEST_CASE("policy text parses and prints") {
  CHECK(rill::to_string(*rill::parse_policy("backpressure:64")) == "backpressure:64");
  CHECK(rill::parse_policy("drop-oldest:10")->kind == rill::PolicyKind::drop_oldest);
  CHECK(rill::parse_policy("buffer:1048576")->capacity == 1048576);
  CHECK(rill::parse_policy("drop-newest:0").error().code == rill::Errc::invalid_argument);
  CHECK(rill::parse_policy("fast:3").error().code == rill::Errc::invalid_argument);
  CHECK(rill::parse_policy("backpressure").error().code == rill::Errc::invalid_argument);
  CHECK(rill::parse_policy("backpressure:9999999999").error().code == rill::Errc::invalid_argument);
}
