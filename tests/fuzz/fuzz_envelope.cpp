// Fuzz target for the envelope decoder: verify_envelope, then every MessageView read.
//
// The verifier is the only thing standing between a socket and in-place reads, so
// whenever it accepts an input every accessor is exercised and its bytes are folded
// into a sink: ASan reports any read the verifier should have rejected.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

#include "fuzz_check.hpp"
#include "rill/codec.hpp"
#include "rill/message.hpp"

namespace {

// Every byte read lands here so the optimizer cannot drop the reads.
volatile std::uint64_t g_sink = 0;

void touch(std::string_view s) {
  std::uint64_t h = s.size();
  for (char c : s) h = h * 131 + static_cast<unsigned char>(c);
  g_sink = g_sink + h;
}

void touch(std::span<const std::byte> s) {
  touch(std::string_view{reinterpret_cast<const char*>(s.data()), s.size()});
}

void read_everything(const rill::MessageView& m, int depth);

// A payload that is itself a FlatBuffer goes through verify_payload (what
// MessageView::payload_as<T> uses); an envelope is the one schema at hand.
void read_nested(const rill::MessageView& m, int depth) {
  if (depth > 0) return;
  if (const auto* inner = m.payload_as<rill::wire::Envelope>()) {
    read_everything(rill::MessageView{inner, m.payload()}, depth + 1);
  }
}

void read_everything(const rill::MessageView& m, int depth) {
  touch(m.topic());
  g_sink = g_sink + m.publisher_id() + m.sequence() + static_cast<std::uint64_t>(m.timestamp_ns());
  touch(m.payload());
  touch(m.payload_text());
  const std::size_t n = m.header_count();
  std::string_view first_key;
  for (std::size_t i = 0; i < n; ++i) {
    const rill::HeaderKV kv = m.header_at(i);
    touch(kv.key);
    touch(kv.value);
    if (i == 0) first_key = kv.key;
  }
  // header() walks the whole vector on a miss and stops early on a hit.
  if (auto v = m.header("x")) touch(*v);
  if (auto v = m.header(first_key)) touch(*v);
  touch(m.bytes());
  read_nested(m, depth);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Exact-size heap copies, so ASan's redzone starts right after the last input byte.
  // operator new aligns to 16, which satisfies the envelope's 8-byte requirement.
  static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ % rill::envelope_alignment == 0);
  auto aligned = std::make_unique_for_overwrite<std::byte[]>(size);
  if (size != 0) std::memcpy(aligned.get(), data, size);
  const std::span<const std::byte> bytes{aligned.get(), size};

  auto env = rill::verify_envelope(bytes);
  if (env) {
    const auto* root = reinterpret_cast<const std::byte*>(*env);
    rill::fuzz::expect(root >= bytes.data() && root < bytes.data() + bytes.size(), "envelope root outside the input");
    read_everything(rill::MessageView{*env, bytes}, 0);
  } else {
    touch(env.error().message());
  }

  // The same bytes one byte off alignment must be refused before anything is read.
  auto shifted = std::make_unique_for_overwrite<std::byte[]>(size + 1);
  if (size != 0) std::memcpy(shifted.get() + 1, data, size);
  const auto misaligned = rill::verify_envelope(std::span<const std::byte>{shifted.get() + 1, size});
  rill::fuzz::expect(!misaligned.has_value(), "verify_envelope accepted a misaligned buffer");
  return 0;
}
