// Writes the seed corpora for fuzz_envelope, fuzz_control and fuzz_batch (valid frames
// from the real encoders, then cut, bit-flipped and lying copies). Run by hand when a
// wire format changes, then minimise: `rill_fuzz_make_corpus tests/fuzz/corpus && scripts/fuzz.sh --merge`.
// The envelope and control corpora are libFuzzer's merged sets, so their files carry
// SHA-1 names; the batch corpus is the seeds below as written (named by what they hold).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

// A batch frame as tcp_publisher.cpp builds it: magic, u32 count, then per envelope a
// u32 length, 4 zero bytes, the envelope and zero padding to a multiple of 8.
Bytes batch(const std::vector<Bytes>& envelopes) {
  Bytes out(tcp::batch_header_bytes);
  std::memcpy(out.data(), tcp::batch_magic, 4);
  const auto count = static_cast<std::uint32_t>(envelopes.size());
  std::memcpy(out.data() + 4, &count, 4);
  for (const auto& e : envelopes) {
    const auto at = out.size();
    out.resize(at + tcp::batch_entry_header_bytes + ((e.size() + 7) & ~std::size_t{7}));
    const auto len = static_cast<std::uint32_t>(e.size());
    std::memcpy(out.data() + at, &len, 4);
    std::memcpy(out.data() + at + tcp::batch_entry_header_bytes, e.data(), e.size());
  }
  return out;
}

void put_u32(Bytes& b, std::size_t at, std::uint32_t v) {
  std::memcpy(b.data() + at, &v, 4);
}

void make_batches(const fs::path& dir) {
  // Envelopes of different lengths, so entries need different padding (none for some).
  std::vector<Bytes> envs;
  for (std::uint64_t seq = 1; seq <= 5; ++seq) {
    const std::string payload(static_cast<std::size_t>(seq * 3), static_cast<char>('a' + seq));
    envs.push_back(envelope(text(payload), {.topic = "md/x",
                                            .publisher_id = 0x1234567890abcdef,
                                            .sequence = seq,
                                            .timestamp_ns = 1'700'000'000'000'000'000,
                                            .headers = {}}));
  }
  const Bytes one = batch({envs[0]});
  const Bytes two = batch({envs[0], envs[1]});
  const Bytes five = batch(envs);
  write(dir, "batch_1", one);
  write(dir, "batch_2", two);
  write(dir, "batch_5", five);
  // An odd length whose padding the frame's end cuts off: still accepted.
  Bytes odd = batch({text("xyz")});
  write(dir, "batch_unpadded_tail", std::span{odd}.first(odd.size() - 5));

  // Lies: each one must be refused whole, with nothing visited.
  write(dir, "batch_header_only", std::span{two}.first(tcp::batch_header_bytes));
  write(dir, "batch_magic_only", std::span{two}.first(4));
  write(dir, "batch_cut_half", std::span{five}.first(five.size() / 2));
  write(dir, "batch_cut_in_entry_header", std::span{two}.first(tcp::batch_header_bytes + 4));
  Bytes b = five;
  put_u32(b, 4, 0);
  write(dir, "batch_count_zero", b);
  b = five;
  put_u32(b, 4, 6);
  write(dir, "batch_count_high", b);
  b = five;
  put_u32(b, 4, 4);
  write(dir, "batch_count_low", b);  // bytes left over after the 4th entry
  b = five;
  put_u32(b, 4, 0xffffffffu);
  write(dir, "batch_count_huge", b);
  b = two;
  put_u32(b, tcp::batch_header_bytes, 0);
  write(dir, "batch_len_zero", b);
  b = two;
  put_u32(b, tcp::batch_header_bytes, 0xfffffff8u);
  write(dir, "batch_len_huge", b);
  b = two;
  put_u32(b, tcp::batch_header_bytes, static_cast<std::uint32_t>(two.size()));
  write(dir, "batch_len_past_end", b);
  b = five;  // the second entry's length one short: the walk lands off the entry grid
  const auto second =
      tcp::batch_header_bytes + tcp::batch_entry_header_bytes + ((envs[0].size() + 7) & ~std::size_t{7});
  put_u32(b, second, static_cast<std::uint32_t>(envs[1].size() + 8));
  write(dir, "batch_len_long_mid", b);
  b = two;
  b.insert(b.end(), 8, std::byte{0});
  write(dir, "batch_trailing_bytes", b);
  b = two;
  b[3] = std::byte{2};
  write(dir, "batch_wrong_magic_version", b);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>  (writes <dir>/envelope, <dir>/control and <dir>/batch)\n", argv[0]);
    return 2;
  }
  const fs::path root{argv[1]};
  fs::create_directories(root / "envelope");
  fs::create_directories(root / "control");
  fs::create_directories(root / "batch");
  make_envelopes(root / "envelope");
  make_controls(root / "control");
  make_batches(root / "batch");
  std::printf("wrote %d seed files under %s\n", g_written, root.c_str());
  return 0;
}
