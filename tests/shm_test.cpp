// The shared-memory transport in one process: zero-copy loans and receive, samples
// held past the handler, policies applied in the ring, stale segments, permissions.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "test_payload_generated.h"
#include "test_util.hpp"
#include "transport/shm/shm_directory.hpp"

using namespace std::chrono_literals;
using rilltest::attach;
using rilltest::poll_until;
using rilltest::fresh_shm_endpoint;

namespace {

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

TEST_CASE("raw bytes written into a loan arrive, with and without headers") {
  rill::Node node;
  const auto ep = fresh_shm_endpoint();
  auto pub = node.publisher({.endpoint = ep, .topic = "raw"});
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "raw"});
  REQUIRE(attach(*pub, *sub));
  for (std::size_t size : {0u, 1u, 7u, 8u, 300u, 5000u}) {
    auto loan = pub->loan(size);
    REQUIRE(loan);
    auto bytes = loan->raw(size);
    REQUIRE(bytes.size() == size);
    if (size > 0) CHECK(in_segment(ep, bytes.data()));
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::byte>(i * 13);
    const rill::HeaderKV hdr[] = {{"content-type", "application/octet-stream"}};
    REQUIRE(pub->publish(std::move(*loan), size % 2 == 1 ? std::span(hdr) : std::span<const rill::HeaderKV>{}));
  }
  std::vector<std::vector<std::byte>> got;
  std::vector<bool> had_header;
  REQUIRE(poll_until(*sub, [&](const rill::MessageView& m) {
    got.emplace_back(m.payload().begin(), m.payload().end());
    had_header.push_back(m.header("content-type").has_value());
  }, [&] { return got.size() == 6; }));
  std::size_t k = 0;
  for (std::size_t size : {0u, 1u, 7u, 8u, 300u, 5000u}) {
    REQUIRE(got[k].size() == size);
    for (std::size_t i = 0; i < size; ++i) CHECK(got[k][i] == static_cast<std::byte>(i * 13));
    CHECK(had_header[k] == (size % 2 == 1));
    ++k;
  }
  CHECK(sub->stats().malformed == 0);
}

TEST_CASE("a dropped loan gives its chunk back; when every chunk is lent, loan() says exhausted") {
  rill::Node node;
  // One small class of 4 chunks (plus the big classes, which small loans do not use).
  const auto ep = fresh_shm_endpoint("slots=2&ring=4&pools=448x4");
  auto pub = node.publisher({.endpoint = ep, .topic = "t", .publish_timeout = 50ms});
  REQUIRE(pub);
  std::vector<rill::Loan> held;
  for (int i = 0; i < 4; ++i) {
    auto loan = pub->loan(64);
    REQUIRE(loan);
    held.push_back(std::move(*loan));
  }
  auto none = pub->loan(64);
  REQUIRE_FALSE(none);
  CHECK(none.error().code == rill::Errc::exhausted);
  held.pop_back();  // its chunk goes back to the pool
  CHECK(pub->loan(64).has_value());
}

TEST_CASE("a sample keeps its chunk, unchanged, while the publisher goes on") {
  rill::Node node;
  const auto ep = fresh_shm_endpoint("slots=2&ring=4&pools=448x8");
  auto pub = node.publisher({.endpoint = ep, .topic = "t", .publish_timeout = 50ms});
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "t", .policy = rill::Policy::drop_oldest(4)});
  REQUIRE(attach(*pub, *sub));
  REQUIRE(pub->publish_text("first"));
  std::optional<rill::Sample> kept;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!kept && std::chrono::steady_clock::now() < deadline) kept = sub->wait_take(5ms);
  REQUIRE(kept);
  const auto* where = kept->bytes().data();
  CHECK(in_segment(ep, where));
  // 8 chunks, one held by the sample: the other 7 cycle under the publisher.
  for (int i = 0; i < 200; ++i) {
    REQUIRE(pub->publish_text("later " + std::to_string(i)));
    while (sub->poll([](const rill::MessageView&) {}, 16) > 0) {
    }
  }
  CHECK(kept->bytes().data() == where);
  const auto view = kept->view();
  CHECK(std::string_view(reinterpret_cast<const char*>(view.payload().data()), view.payload().size()) == "first");
  CHECK(view.sequence() == 1);
  // A sample can move, and is released where it is destroyed.
  rill::Sample moved = std::move(*kept);
  kept.reset();
  CHECK(moved.view().sequence() == 1);
}

// The last publisher of a Node marks the directory closed before it removes the name; a
// publisher binding the name meanwhile (another thread) must not be refused by it.
namespace shm = rill::detail::shm;

TEST_CASE("a directory its owner is closing does not hold the name; a live one does") {
  const auto ep = rilltest::fresh_shm_endpoint();
  shm::ShmOptions o;
  o.name = ep.substr(6);
  auto dir = shm::Directory::create(o);  // as if this process's other Node owned it
  REQUIRE_MESSAGE(dir, dir.error().message());
  struct Unlink {  // the hand-made directory's name, should a check fail before it is replaced
    std::string path;
    ino_t inode;
    ~Unlink() { shm::unlink_if_same(path, inode); }
  } cleanup{shm::directory_path(o.name), (*dir)->inode()};
  rill::Node node;
  auto refused = node.publisher({.endpoint = ep, .topic = "c/t"});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == rill::Errc::address_in_use);
  (*dir)->header().state.store(static_cast<std::uint32_t>(shm::DirState::closed));
  auto pub = node.publisher({.endpoint = ep, .topic = "c/t"});
  REQUIRE_MESSAGE(pub, pub.error().message());
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "c/"});
  REQUIRE(sub);
  REQUIRE(rilltest::attach(*pub, *sub));
}

// The files of an endpoint carry random publisher ids in their names: nothing but the next
// owner would ever remove what a killed one left (its directory, segments, half-made files).
TEST_CASE("a new owner removes what dead processes left of the endpoint") {
  const auto ep = rilltest::fresh_shm_endpoint();
  const auto name = ep.substr(6);
  const auto files = [&] {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator("/dev/shm")) {
      const auto f = e.path().filename().string();
      if (f == "rill." + name || f.starts_with("rill." + name + ".")) out.push_back(f);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // an owner killed while it runs: its files stay
    rill::Node n;
    auto p = n.publisher({.endpoint = ep, .topic = "x"});
    if (p) (void)p->publish_text("x");
    ::kill(::getpid(), SIGKILL);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  // And half-made files of creators that died (a directory's and a segment's).
  for (const auto& tmp : {shm::directory_path(name) + ".new." + std::to_string(child) + ".3",
                          shm::channel_path(name, 0xabcdef) + ".new." + std::to_string(child) + ".4"}) {
    std::ofstream(tmp) << "half";
  }
  REQUIRE(files().size() == 4);
  rill::Node node;
  auto pub = node.publisher({.endpoint = ep, .topic = "x"});
  REQUIRE_MESSAGE(pub, pub.error().message());
  const std::vector<std::string> expected = {"rill." + name, shm::channel_path(name, pub->id()).substr(9)};
  CHECK(files() == expected);
}
