// The shared-memory transport in one process: zero-copy loans and receive, samples
// held past the handler, policies applied in the ring, stale segments, permissions.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "test_payload_generated.h"
#include "test_util.hpp"

using namespace std::chrono_literals;
using rilltest::attach;
using rilltest::fresh_shm_endpoint;

namespace {

template <class Done>
bool poll_until(rill::Subscriber& sub, rill::Subscriber::Handler h, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done() && std::chrono::steady_clock::now() < deadline) sub.wait_poll(h, 256, 5ms);
  return done();
}

// True when `p` lies in a mapping of the segment file of `endpoint` (the publisher's
// and the subscriber's mappings are different ranges of this one process).
bool in_segment(const std::string& endpoint, const void* p) {
  const auto name = endpoint.substr(6, endpoint.find('?') - 6);
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("/dev/shm/rill." + name) == std::string::npos) continue;
    std::uintptr_t lo = 0, hi = 0;
    std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi);
    if (addr >= lo && addr < hi) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("messages arrive in order over shm, and the handler reads them inside the segment") {
  rill::Node node;
  const auto ep = fresh_shm_endpoint();
  auto pub = node.publisher({.endpoint = ep, .topic = "md/quotes"});
  REQUIRE(pub);
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "md/"});
  REQUIRE(sub);
  REQUIRE(attach(*pub, *sub));
  for (int i = 0; i < 500; ++i) REQUIRE(pub->publish_text("m" + std::to_string(i)));
  std::vector<std::string> got;
  bool inside = true;
  REQUIRE(poll_until(
      *sub,
      [&](const rill::MessageView& m) {
        inside = inside && in_segment(ep, m.payload().data());
        got.emplace_back(reinterpret_cast<const char*>(m.payload().data()), m.payload().size());
      },
      [&] { return got.size() == 500; }));
  CHECK(inside);
  for (int i = 0; i < 500; ++i) CHECK(got[static_cast<std::size_t>(i)] == "m" + std::to_string(i));
  CHECK(sub->stats().gaps == 0);
}

TEST_CASE("a 1 MiB FlatBuffer built in a loan arrives without a copy") {
  rill::Node node;
  const auto ep = fresh_shm_endpoint();
  auto pub = node.publisher({.endpoint = ep, .topic = "blobs"});
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "blobs"});
  REQUIRE(pub);
  REQUIRE(sub);
  REQUIRE(attach(*pub, *sub));
  auto loan = pub->loan(1 << 20);
  REQUIRE(loan);
  CHECK(loan->zero_copy());
  auto& fbb = loan->fbb();
  // The loan's builder writes into the segment: its buffer lies inside the mapping.
  std::uint8_t* bytes = nullptr;
  auto data = fbb.CreateUninitializedVector(1 << 20, 1, &bytes);
  for (std::size_t i = 0; i < (1u << 20); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7);
  CHECK(in_segment(ep, bytes));
  auto order = rilltest::CreateOrder(fbb, 42, fbb.CreateString("a string of any length"), 1.5, 0,
                                     flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>>(data));
  REQUIRE(pub->publish(std::move(*loan), order));
  bool ok = false, inside = false;
  REQUIRE(poll_until(
      *sub,
      [&](const rill::MessageView& m) {
        const auto* b = m.payload_as<rilltest::Order>();
        REQUIRE(b != nullptr);
        REQUIRE(b->blob()->size() == (1u << 20));
        ok = b->id() == 42 && b->symbol()->str() == "a string of any length";
        for (std::size_t i = 0; i < (1u << 20); i += 4099)
          ok = ok && b->blob()->Get(static_cast<flatbuffers::uoffset_t>(i)) == static_cast<std::uint8_t>(i * 7);
        inside = in_segment(ep, b->blob()->data());
      },
      [&] { return ok; }));
  CHECK(inside);
}
