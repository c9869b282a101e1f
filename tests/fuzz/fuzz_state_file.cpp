// Fuzz target for the durable subscriber's state file (policies/durability/delivered_store.hpp,
// PROTOCOL.md section 14): the input is the file's first bytes, zero-extended to its size.
// Properties: a file is accepted or refused as corrupt; an accepted one holds no publisher
// twice; taking a slot for a new publisher and finishing a sequence in it reads back after
// a reopen, and every publisher that was in the file and not evicted keeps its position.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>

#include "fuzz_check.hpp"
#include "fuzz_file.hpp"
#include "policies/durability/delivered_store.hpp"

using rill::detail::DeliveredStore;
using rill::fuzz::expect;

namespace {
constexpr std::size_t file_size = 64 + DeliveredStore::capacity * sizeof(rill::detail::DeliveredEntry);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* input, std::size_t size) {
  const auto dir = rill::fuzz::scratch_dir();
  rill::fuzz::write_file(dir / "sub.rill-state", std::span(input, size), file_size);

  std::map<std::uint64_t, std::uint64_t> before;  // publisher -> delivered
  std::uint64_t probe = 0x5eed;
  {
    auto store = DeliveredStore::open(dir, "sub");
    if (!store) {
      expect(store.error().code == rill::Errc::corrupt, "a bad state file is refused with a code other than corrupt");
      return 0;
    }
    for (const auto& e : store->entries()) {
      if (e.publisher_id == 0) continue;
      expect(before.emplace(e.publisher_id, e.delivered).second, "an accepted state file holds a publisher twice");
    }
    while (before.contains(probe)) ++probe;
    auto& slot = store->slot(probe);
    expect(slot.publisher_id == probe, "a new slot does not carry its publisher");
    DeliveredStore::begin(slot, 41);
    DeliveredStore::finish(slot, 41);
    expect(store->find(probe) == &slot, "find() misses the slot just taken");
  }
  auto again = DeliveredStore::open(dir, "sub");
  expect(again.has_value(), "a state file rill wrote does not open again");
  const auto* found = again->find(probe);
  expect(found != nullptr && found->delivered == 41 && found->pending == 0, "a finished sequence did not persist");
  std::size_t kept = 0;
  for (const auto& [id, delivered] : before) {
    if (const auto* e = again->find(id)) {
      expect(e->delivered == delivered, "a publisher's position changed across a reopen");
      ++kept;
    }
  }
  // One slot at most was evicted for the probe.
  expect(kept + 1 >= before.size(), "more than one publisher was lost to one new one");
  return 0;
}
