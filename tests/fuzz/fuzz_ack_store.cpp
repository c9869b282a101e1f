// Fuzz target for the ack store file (rill/ack_store.hpp, PROTOCOL.md section 13.4): what
// AckStore::open reads back from disk. The first input byte chooses whether the rest is
// taken as it is or gets its CRC appended (so the fuzzer reaches the entry walk past the
// checksum). Properties: a file is accepted or refused as corrupt, never read outside;
// an accepted table survives a rewrite (one more entry set) and a reopen unchanged.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "fuzz_check.hpp"
#include "fuzz_file.hpp"
#include "policies/log/crc32c.hpp"
#include "rill/ack_store.hpp"

using rill::fuzz::expect;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* input, std::size_t size) {
  if (size == 0) return 0;
  std::vector<std::uint8_t> bytes(input + 1, input + size);
  if ((input[0] & 1) != 0) {
    const auto crc = rill::detail::crc32c(0, std::as_bytes(std::span(bytes)));
    const auto* p = reinterpret_cast<const std::uint8_t*>(&crc);
    bytes.insert(bytes.end(), p, p + sizeof crc);
  }
  const auto path = rill::fuzz::scratch_dir() / "acks";
  rill::fuzz::write_file(path, bytes);

  auto store = rill::AckStore::open(path);
  if (!store) {
    expect(store.error().code == rill::Errc::corrupt, "a bad ack store is refused with a code other than corrupt");
    return 0;
  }
  auto table = store->all();
  expect(store->set("fuzz-probe", 7).has_value(), "an accepted ack store cannot be rewritten");
  table["fuzz-probe"] = 7;
  auto again = rill::AckStore::open(path);
  expect(again.has_value(), "an ack store rill wrote does not open again");
  expect(again->all() == table, "an ack store does not read back what was written");
  return 0;
}
