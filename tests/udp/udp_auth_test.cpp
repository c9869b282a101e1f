// Authenticated udp datagrams (transport/udp/udp_auth.hpp): the MAC refuses every
// damaged byte, the replay window, key rotation, the key file's format and mode, and a
// sealed datagram's layout against an independent BLAKE2b computation.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "transport/udp/udp_auth.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

#include "transport/udp/udp_wire.hpp"
#include "temp_dir.hpp"

using namespace rill::detail::udp;

namespace {

using Key = std::array<unsigned char, 32>;

Key key_of(unsigned char fill) {
  Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(fill + i);
  return k;
}

std::vector<std::byte> heartbeat() {
  std::vector<std::byte> d(32);
  encode_heartbeat(d, Type::heartbeat, 0x1c7f078b1c93b80fULL, flag_reliable, {1001, 1});
  return d;
}

// What goes on the wire: the marked header, the rest, the trailer.
std::vector<std::byte> sealed(Sealer& s, std::span<const std::byte> d, std::uint8_t scope = scope_group) {
  std::array<std::byte, 16> head{};
  std::array<std::byte, auth_trailer_bytes> trailer{};
  s.seal(d, scope, head, trailer);
  std::vector<std::byte> out(d.size() + trailer.size());
  std::memcpy(out.data(), head.data(), head.size());
  std::memcpy(out.data() + 16, d.data() + 16, d.size() - 16);
  std::memcpy(out.data() + d.size(), trailer.data(), trailer.size());
  return out;
}

AuthVerdict check(Verifier& v, ReplayFilter& r, std::span<const std::byte> w, std::uint8_t scope = scope_group) {
  std::span<const std::byte> body;
  return v.check(w, scope, r, unix_seconds(), body);
}

}  // namespace

TEST_CASE("a sealed datagram is the plain one with byte 6 set and a trailer whose MAC is BLAKE2b-128 of the rest") {
  const Key k = key_of(7);
  auto keys = AuthKeys::from(std::span(&k, 1));
  Sealer s(keys);
  const auto plain = heartbeat();
  const auto w = sealed(s, plain);
  REQUIRE(w.size() == plain.size() + auth_trailer_bytes);
  CHECK(w[6] == std::byte{1});
  CHECK(std::memcmp(w.data() + 16, plain.data() + 16, 16) == 0);
  const auto* t = w.data() + plain.size();
  CHECK(t[0] == std::byte{scope_group});
  std::uint64_t sender = 0, counter = 0;
  std::memcpy(&sender, t + 8, 8);
  std::memcpy(&counter, t + 16, 8);
  CHECK(sender == s.sender_id());
  CHECK(counter == 1);
  // Independently: one-shot keyed BLAKE2b over everything before the MAC.
  unsigned char expect[16];
  crypto_generichash(expect, 16, reinterpret_cast<const unsigned char*>(w.data()), w.size() - 16, k.data(), k.size());
  CHECK(std::memcmp(expect, t + 24, 16) == 0);
  Verifier v(keys, 60);
  ReplayFilter r;
  std::span<const std::byte> body;
  REQUIRE(v.check(w, scope_group, r, unix_seconds(), body) == AuthVerdict::ok);
  CHECK(body.size() == plain.size());
  const auto d = decode(body, 1 << 20, true);
  REQUIRE(d.has_value());
  CHECK(d->heartbeat.next_seq == 1001);
  CHECK_FALSE(decode(body, 1 << 20, false).has_value());  // a plain reader refuses the marked header
}

TEST_CASE("every single-bit flip anywhere, and every truncation, is refused") {
  const Key k = key_of(1);
  auto keys = AuthKeys::from(std::span(&k, 1));
  Sealer s(keys);
  Verifier v(keys, 60);
  const auto w = sealed(s, heartbeat());
  int accepted = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      ReplayFilter fresh;  // so only the MAC can refuse it
      auto x = w;
      x[i] ^= std::byte(1u << bit);
      accepted += check(v, fresh, x) == AuthVerdict::ok;
    }
  }
  CHECK(accepted == 0);
  for (std::size_t cut = 1; cut < w.size(); ++cut) {
    ReplayFilter fresh;
    CHECK(check(v, fresh, std::span(w).first(w.size() - cut)) != AuthVerdict::ok);
  }
  ReplayFilter fresh;
  CHECK(check(v, fresh, w) == AuthVerdict::ok);
}

TEST_CASE("replays: a datagram is taken once; reordering inside the window is fine; older is refused") {
  const Key k = key_of(2);
  auto keys = AuthKeys::from(std::span(&k, 1));
  Sealer s(keys);
  Verifier v(keys, 60);
  ReplayFilter r;
  std::vector<std::vector<std::byte>> all;
  for (int i = 0; i < 5000; ++i) all.push_back(sealed(s, heartbeat()));
  CHECK(check(v, r, all[10]) == AuthVerdict::ok);
  CHECK(check(v, r, all[10]) == AuthVerdict::replayed);
  CHECK(check(v, r, all[5]) == AuthVerdict::ok);  // older, but inside the window and new
  CHECK(check(v, r, all[5]) == AuthVerdict::replayed);
  CHECK(check(v, r, all[3000]) == AuthVerdict::ok);
  CHECK(check(v, r, all[11]) == AuthVerdict::replayed);    // fell out of the window
  CHECK(check(v, r, all[1000]) == AuthVerdict::ok);        // 2000 behind: still inside
  CHECK(check(v, r, all[952]) == AuthVerdict::replayed);   // exactly 2048 behind
  CHECK(check(v, r, all[953]) == AuthVerdict::ok);         // 2047 behind
  // Slides by amounts that are not word multiples keep every bit where it was.
  for (int i = 3001; i < 3300; i += 3) CHECK(check(v, r, all[i]) == AuthVerdict::ok);
  for (int i = 3001; i < 3300; i += 3) CHECK(check(v, r, all[i]) == AuthVerdict::replayed);
  for (int i = 3002; i < 3300; i += 3) CHECK(check(v, r, all[i]) == AuthVerdict::ok);
  // Another sender under the same key has a window of its own.
  Sealer other(keys);
  CHECK(check(v, r, sealed(other, heartbeat())) == AuthVerdict::ok);
}

TEST_CASE("scope, clock and missing keys") {
  const Key k = key_of(3);
  const Key k2 = key_of(4);
  auto keys = AuthKeys::from(std::span(&k, 1));
  Sealer s(keys);
  ReplayFilter r;
  Verifier v(keys, 60);
  // A multicast datagram replayed to a unicast socket.
  CHECK(check(v, r, sealed(s, heartbeat(), scope_group), scope_unicast) == AuthVerdict::wrong_scope);
  // Clock too far: the receiver believes it is an hour later.
  const auto w = sealed(s, heartbeat());
  std::span<const std::byte> body;
  CHECK(v.check(w, scope_group, r, unix_seconds() + 3600, body) == AuthVerdict::stale);
  Verifier lenient(keys, 0);
  CHECK(lenient.check(w, scope_group, r, unix_seconds() + 3600, body) == AuthVerdict::ok);
  // Another key: unknown key id.
  Verifier stranger(AuthKeys::from(std::span(&k2, 1)), 60);
  ReplayFilter r2;
  CHECK(check(stranger, r2, sealed(s, heartbeat())) == AuthVerdict::bad_mac);
  // A plain datagram at a keyed receiver; a sealed one at a keyless receiver.
  CHECK(check(v, r, heartbeat()) == AuthVerdict::unauthenticated);
  Verifier keyless(nullptr, 60);
  CHECK(check(keyless, r2, sealed(s, heartbeat())) == AuthVerdict::unauthenticated);
  CHECK(check(keyless, r2, heartbeat()) == AuthVerdict::ok);
}

TEST_CASE("rotation: a two-key file signs with its first key and accepts both") {
  const Key old_key = key_of(5);
  const Key new_key = key_of(6);
  const std::array<Key, 2> both{new_key, old_key};
  auto rotated = AuthKeys::from(both);
  auto old_only = AuthKeys::from(std::span(&old_key, 1));
  Sealer old_sender(old_only);
  Sealer new_sender(rotated);
  Verifier v(rotated, 60);
  Verifier old_receiver(old_only, 60);
  ReplayFilter r, r_old;
  CHECK(check(v, r, sealed(old_sender, heartbeat())) == AuthVerdict::ok);
  CHECK(check(v, r, sealed(new_sender, heartbeat())) == AuthVerdict::ok);
  CHECK(check(old_receiver, r_old, sealed(new_sender, heartbeat())) == AuthVerdict::bad_mac);
}

TEST_CASE("key files: written 0600 and read back; bad content and loose modes refused") {
  rilltest::TempDir dir;
  const auto path = (dir.path() / "group.key").string();
  auto id = write_auth_key_file(path);
  REQUIRE(id.has_value());
  CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::mask) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  CHECK_FALSE(write_auth_key_file(path).has_value());  // never overwrites
  auto keys = AuthKeys::load(path);
  REQUIRE(keys.has_value());
  CHECK((*keys)->signing().id == *id);
  std::string hex;
  std::getline(std::ifstream(path), hex);
  CHECK(hex.size() == 64);
  const auto write = [&](const std::string& name, const std::string& text, mode_t mode) {
    const auto p = (dir.path() / name).string();
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p;
  };
  CHECK(AuthKeys::load(write("two.key", "# rotation\n" + hex + "\n" + std::string(64, 'a') + "\n", 0600)).has_value());
  CHECK(AuthKeys::load(write("loose.key", hex + "\n", 0640)).error().code == rill::Errc::permission_denied);
  CHECK_FALSE(AuthKeys::load(write("short.key", hex.substr(2) + "\n", 0600)).has_value());
  CHECK_FALSE(AuthKeys::load(write("nothex.key", "zz" + hex.substr(2) + "\n", 0600)).has_value());
  CHECK_FALSE(AuthKeys::load(write("empty.key", "\n", 0600)).has_value());
  CHECK_FALSE(AuthKeys::load(write("three.key", hex + "\n" + hex + "\n" + hex + "\n", 0600)).has_value());
  CHECK_FALSE(AuthKeys::load(write("same.key", hex + "\n" + hex + "\n", 0600)).has_value());
  CHECK_FALSE(AuthKeys::load((dir.path() / "missing.key").string()).has_value());
}

TEST_CASE("PROTOCOL.md 10.13's dump verifies under its key and decodes to 10.5's HEARTBEAT") {
  std::ifstream in(RILL_SOURCE_DIR "/PROTOCOL.md");
  REQUIRE(in.good());
  const std::string doc{std::istreambuf_iterator<char>(in), {}};
  const auto at = doc.find("### 10.13 Authenticated datagrams");
  REQUIRE(at != std::string::npos);
  const auto open = doc.find("```\n", doc.find("Example: the HEARTBEAT of 10.5", at));
  const auto close = doc.find("```", open + 4);
  REQUIRE((open != std::string::npos && close != std::string::npos));
  std::istringstream hex(doc.substr(open + 4, close - open - 4));
  std::vector<std::byte> w;
  for (std::string b; hex >> b;) w.push_back(static_cast<std::byte>(std::stoul(b, nullptr, 16)));
  REQUIRE(w.size() == 72);
  Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(i);
  CHECK(AuthKeys::id_of(k) == 0xfd2a);
  Verifier v(AuthKeys::from(std::span(&k, 1)), 0);  // the dump's clock is fixed
  ReplayFilter r;
  std::span<const std::byte> body;
  REQUIRE(v.check(w, scope_group, r, unix_seconds(), body) == AuthVerdict::ok);
  const auto d = decode(body, 1 << 20, true);
  REQUIRE(d.has_value());
  CHECK(d->header.type == Type::heartbeat);
  CHECK(d->header.publisher_id == 0x1c7f078b1c93b80fULL);
  CHECK(d->heartbeat.next_seq == 1001);
  CHECK(d->heartbeat.oldest_seq == 1);
  CHECK(v.check(w, scope_group, r, unix_seconds(), body) == AuthVerdict::replayed);
}
