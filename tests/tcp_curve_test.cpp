// tcp with CurveZMQ inside one process: several topics share one secured endpoint, options
// must agree per endpoint, a refused key reaches the subscriber's callback and both sides'
// counters, and the allow file is read again when it changes.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <fstream>
#include <string>

#include "rill/curve_keys.hpp"
#include "rill/rill.hpp"
#include "temp_dir.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using rilltest::attach;
using rilltest::fresh_endpoint;
using rilltest::poll_until;

namespace {

struct Keys {
  rilltest::TempDir dir;
  std::string pub_key = (dir / "pub").string();
  std::string sub_key = (dir / "sub").string();
  std::string other_key = (dir / "other").string();
  std::string allow = (dir / "allow").string();
  Keys() {
    for (const auto* name : {&pub_key, &sub_key, &other_key}) REQUIRE(rill::write_curve_key_files(*name));
    std::ofstream(allow) << *rill::read_curve_public_key(sub_key + ".pub") << "\n";
  }
  [[nodiscard]] std::string publisher(const std::string& ep) const {
    return ep + "?curve_key=" + pub_key + ".key&curve_allow=" + allow;
  }
  [[nodiscard]] std::string subscriber(const std::string& ep, const std::string& key) const {
    return ep + "?curve_key=" + key + ".key&curve_server=" + pub_key + ".pub";
  }
};

}  // namespace

TEST_CASE("two topics on one CURVE endpoint; a publisher with other options on it is refused") {
  Keys k;
  rill::Node node;
  const auto ep = fresh_endpoint();
  auto a = node.publisher({.endpoint = k.publisher(ep), .topic = "t/a"});
  REQUIRE(a);
  auto b = node.publisher({.endpoint = k.publisher(ep), .topic = "t/b"});
  REQUIRE(b);
  // Same address, no key: it would share the encrypted socket, so it is refused.
  auto plain = node.publisher({.endpoint = ep, .topic = "t/c"});
  REQUIRE_FALSE(plain);
  CHECK(plain.error().code == rill::Errc::invalid_argument);
  CHECK(plain.error().detail.find("bound already") != std::string::npos);
  // Same address, another key pair: refused too.
  auto other = node.publisher({.endpoint = ep + "?curve_key=" + k.other_key + ".key", .topic = "t/d"});
  REQUIRE_FALSE(other);
  CHECK(other.error().code == rill::Errc::invalid_argument);

  auto sub = node.subscriber({.endpoints = {k.subscriber(ep, k.sub_key)}, .prefix = "t/",
                              .policy = rill::Policy::backpressure(1000)});
  REQUIRE(sub);
  REQUIRE(attach(*a, *sub, 1));
  REQUIRE(attach(*b, *sub, 1));
  for (int i = 0; i < 100; ++i) {
    const auto n = std::to_string(i);  // (GCC 12 warns falsely about "a" + std::to_string(i))
    REQUIRE(a->publish_text(n));
    REQUIRE(b->publish_text(n));
  }
  std::size_t got_a = 0;
  std::size_t got_b = 0;
  const auto handler = [&](const rill::MessageView& m) { ++(m.topic() == "t/a" ? got_a : got_b); };
  CHECK(poll_until(*sub, handler, [&] { return got_a + got_b == 200; }));
  CHECK(got_a == 100);
  CHECK(got_b == 100);
  CHECK(sub->stats().gaps == 0);
  CHECK(sub->stats().security_errors == 0);
  CHECK(a->stats().auth_rejected == 0);
}

TEST_CASE("a refused key is reported to the subscriber and counted; adding it to the allow file lets it in") {
  Keys k;
  rill::Node node;
  const auto ep = fresh_endpoint();
  auto pub = node.publisher({.endpoint = k.publisher(ep), .topic = "t"});
  REQUIRE(pub);

  std::vector<rill::SecurityEvent> events;
  auto stranger = node.subscriber({.endpoints = {k.subscriber(ep, k.other_key)},
                                   .prefix = "t",
                                   .on_security_error = [&](const rill::SecurityEvent& e) { events.push_back(e); }});
  REQUIRE(stranger);
  const auto nothing = [](const rill::MessageView&) {};
  CHECK(poll_until(*stranger, nothing, [&] { return !events.empty(); }));
  REQUIRE(events.size() == 1);
  CHECK(events[0].reason.find("refused our CURVE key") != std::string::npos);
  CHECK(stranger->stats().security_errors == 1);
  CHECK(pub->stats().auth_rejected >= 1);
  CHECK(pub->stats().subscribers == 0);

  // It keeps retrying; once its key is listed, the next handshake is let in.
  std::ofstream(k.allow, std::ios::app) << *rill::read_curve_public_key(k.other_key + ".pub") << "\n";
  REQUIRE(attach(*pub, *stranger, 1));
  REQUIRE(pub->publish_text("hello"));
  std::string got;
  CHECK(poll_until(*stranger, [&](const rill::MessageView& m) { got = m.payload_text(); }, [&] { return !got.empty(); }));
  CHECK(got == "hello");
  CHECK(events.size() == 1);  // reported once for the failing run
}

TEST_CASE("key files are checked before anything connects") {
  rilltest::TempDir dir;
  const auto base = (dir / "k").string();
  auto pair = rill::write_curve_key_files(base);
  REQUIRE(pair);
  CHECK(rill::is_z85_key(pair->public_key));
  CHECK_FALSE(rill::write_curve_key_files(base));  // never overwritten
  auto read = rill::read_curve_key_pair(base + ".key");
  REQUIRE(read);
  CHECK(read->secret_key == pair->secret_key);
  // A public line that does not belong to the secret line is refused.
  auto other = rill::write_curve_key_files((dir / "o").string());
  REQUIRE(other);
  const auto mixed = (dir / "mixed.key").string();
  std::ofstream(mixed) << other->public_key << "\n" << pair->secret_key << "\n";
  ::chmod(mixed.c_str(), 0600);
  auto bad = rill::read_curve_key_pair(mixed);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().detail.find("does not belong") != std::string::npos);
  // A secret others may read is refused.
  ::chmod((base + ".key").c_str(), 0640);
  auto loose = rill::read_curve_key_pair(base + ".key");
  REQUIRE_FALSE(loose);
  CHECK(loose.error().code == rill::Errc::permission_denied);
}
