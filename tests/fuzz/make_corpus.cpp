// Writes the seed corpora for fuzz_envelope and fuzz_control (valid frames from the
// real encoders, then cut and bit-flipped copies). Run by hand when a wire format
// changes, then minimise: `rill_fuzz_make_corpus tests/fuzz/corpus && scripts/fuzz.sh --merge`.
// The kept corpus is libFuzzer's merged set, so its files carry SHA-1 names.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rill/message_builder.hpp"
#include "transport/tcp/tcp_wire.hpp"

namespace {

namespace fs = std::filesystem;
namespace tcp = rill::detail::tcp;
using Bytes = std::vector<std::byte>;

int g_written = 0;

void write(const fs::path& dir, const std::string& name, std::span<const std::byte> bytes) {
  std::ofstream out{dir / name, std::ios::binary | std::ios::trunc};
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "make_corpus: cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
  ++g_written;
}

Bytes text(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

Bytes envelope(std::span<const std::byte> payload, const rill::EnvelopeFields& fields) {
  rill::MessageBuilder b;
  auto bytes = b.finish_raw(payload, fields);
  return {bytes.begin(), bytes.end()};
}

// A valid envelope, then damaged copies: cut short, and one byte flipped in each
// structural spot (root offset, identifier, vtable offset, topic length, tail).
void envelope_with_damage(const fs::path& dir, const std::string& name, const Bytes& good) {
  write(dir, name, good);
  write(dir, name + "_cut_half", std::span{good}.first(good.size() / 2));
  write(dir, name + "_cut_last", std::span{good}.first(good.size() - 1));
  const std::size_t spots[] = {0, 4, 8, 12, 16, good.size() / 2, good.size() - 4};
  for (std::size_t at : spots) {
    Bytes bad = good;
    bad[at] ^= std::byte{0x80};
    write(dir, name + "_flip" + std::to_string(at), bad);
  }
}

void make_envelopes(const fs::path& dir) {
  const rill::EnvelopeFields plain{.topic = "sensors/imu", .publisher_id = 0x1234567890abcdef, .sequence = 1,
                                   .timestamp_ns = 1'700'000'000'000'000'000, .headers = {}};
  envelope_with_damage(dir, "env_basic", envelope(text("hello"), plain));
  write(dir, "env_empty_payload", envelope({}, plain));
  write(dir, "env_empty_topic", envelope(text("x"), {.topic = "", .headers = {}}));
  write(dir, "env_long_topic", envelope(text("p"), {.topic = std::string(1000, 't'), .headers = {}}));

  const rill::HeaderKV some[] = {{"content-type", "application/json"}, {"x", "1"}, {"empty", ""}};
  envelope_with_damage(dir, "env_headers",
                       envelope(text(R"({"a":1})"), {.topic = "a/b", .sequence = 7, .headers = some}));
  const rill::HeaderKV blank[] = {{"", ""}};
  write(dir, "env_blank_header", envelope({}, {.topic = "h", .headers = blank}));

  // 256 headers is the most the builder writes and the verifier's table budget allows.
  std::vector<std::string> keys;
  for (int i = 0; i < 256; ++i) {
    // Appending (not "k" + to_string) sidesteps GCC 12's false -Wrestrict (PR 105329).
    std::string key = "k";
    key += std::to_string(i);
    keys.push_back(std::move(key));
  }
  std::vector<rill::HeaderKV> many;
  for (const auto& k : keys) many.push_back({k, "v"});
  write(dir, "env_256_headers", envelope(text("m"), {.topic = "many", .headers = many}));

  Bytes big(16 * 1024);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::byte>(i * 7);
  write(dir, "env_big_payload", envelope(big, plain));

  // A payload that is itself a FlatBuffer (an envelope), built in place by finish().
  rill::MessageBuilder b;
  auto inner = rill::wire::CreateEnvelope(b.fbb(), b.fbb().CreateString("inner"), 9, 9, 9);
  auto nested = b.finish(inner, {.topic = "nested", .sequence = 2, .headers = {}});
  write(dir, "env_nested_flatbuffer", nested);

  write(dir, "env_too_short", text("RILL"));
  Bytes wrong_id = envelope(text("hello"), plain);
  wrong_id[4] = std::byte{'X'};
  write(dir, "env_wrong_identifier", wrong_id);
}

void make_controls(const fs::path& dir) {
  std::byte out[tcp::max_control_bytes];
  auto emit = [&](const std::string& name, std::size_t n) { write(dir, name, std::span{out}.first(n)); };

  for (std::uint8_t policy = 1; policy <= 4; ++policy) {
    emit("ctl_subscribe_policy" + std::to_string(policy),
         tcp::encode_subscribe(out, {.subscription_id = 42, .policy = policy, .window = 64, .prefix = "sensors/"}));
  }
  emit("ctl_subscribe_empty_prefix", tcp::encode_subscribe(out, {.subscription_id = 1, .policy = 1, .prefix = {}}));
  const std::string longest(tcp::max_prefix_bytes, 'p');
  emit("ctl_subscribe_longest_prefix",
       tcp::encode_subscribe(out, {.subscription_id = 2, .policy = 2, .prefix = longest}));
  emit("ctl_credit", tcp::encode_credit(out, {.subscription_id = 3, .publisher_id = 4, .credits = 100}));
  emit("ctl_unsubscribe", tcp::encode_unsubscribe(out, 5));
  emit("ctl_welcome", tcp::encode_welcome(out, {.publisher_id = 6, .next_seq = 7, .subscription_id = 8}));
  emit("ctl_bye", tcp::encode_bye(out, {.publisher_id = 9, .last_seq = 10}));
  emit("ctl_ping", tcp::encode_ping(out));

  // Damaged frames: each one is a single rule of decode_control broken.
  auto n = tcp::encode_subscribe(out, {.subscription_id = 1, .policy = 1, .prefix = "abc"});
  emit("ctl_subscribe_cut", n - 1);
  emit("ctl_subscribe_header_only", 20);
  out[18] = std::byte{0xff};  // prefix length says 255, frame holds 3
  emit("ctl_subscribe_len_mismatch", n);
  n = tcp::encode_subscribe(out, {.subscription_id = 1, .policy = 0, .prefix = "abc"});
  emit("ctl_subscribe_policy0", n);
  n = tcp::encode_subscribe(out, {.subscription_id = 1, .policy = 5, .prefix = "abc"});
  emit("ctl_subscribe_policy5", n);
  n = tcp::encode_credit(out, {});
  emit("ctl_credit_long", n + 1);
  n = tcp::encode_ping(out);
  out[4] = std::byte{0x7f};
  emit("ctl_unknown_type", n);
  n = tcp::encode_ping(out);
  out[3] = std::byte{2};
  emit("ctl_wrong_magic", n);
  emit("ctl_magic_only", 4);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>  (writes <dir>/envelope and <dir>/control)\n", argv[0]);
    return 2;
  }
  const fs::path root{argv[1]};
  fs::create_directories(root / "envelope");
  fs::create_directories(root / "control");
  make_envelopes(root / "envelope");
  make_controls(root / "control");
  std::printf("wrote %d seed files under %s\n", g_written, root.c_str());
  return 0;
}
