// Fuzz target for a consumer group's ledger (policies/durability/group_ledger.hpp, PROTOCOL.md
// section 15): the input is the file's first bytes (header, member slots, publisher table,
// the first cells), zero-extended to its size as a hole. The last 16 input bytes also name
// a (publisher, sequence) to claim. Properties: a file is accepted or refused as corrupt; a
// member slot is taken; a claim that is handled or in doubt and then finished is "done" to
// the next claim, in this member and in another member that opens the file afterwards.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "fuzz_check.hpp"
#include "fuzz_file.hpp"
#include "policies/durability/group_ledger.hpp"

using rill::detail::GroupLedger;
using rill::fuzz::expect;

namespace {
constexpr std::size_t file_size = 8192 + std::size_t{GroupLedger::publishers} * GroupLedger::window * 8;

void claim_and_finish(GroupLedger& g, std::uint64_t publisher, std::uint64_t seq) {
  const auto c = g.begin(publisher, seq);
  if (c.verdict == GroupLedger::Verdict::untracked) {
    expect(c.cell == nullptr, "an untracked claim has a cell");
    return;
  }
  if (c.verdict == GroupLedger::Verdict::done) return;
  g.finish(c);
  expect(g.begin(publisher, seq).verdict == GroupLedger::Verdict::done, "a finished claim is not done");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* input, std::size_t size) {
  const auto dir = rill::fuzz::scratch_dir();
  rill::fuzz::write_file(dir / "g.rill-group", std::span(input, size), file_size);
  std::uint64_t publisher = 0x1234;
  std::uint64_t seq = 1;
  if (size >= 16) {
    std::memcpy(&publisher, input + size - 16, 8);
    std::memcpy(&seq, input + size - 8, 8);
  }
  if (publisher == 0) publisher = 1;  // 0 marks a free publisher-table row

  auto g = GroupLedger::open(dir, "g");
  if (!g) {
    expect(g.error().code == rill::Errc::corrupt, "a bad group ledger is refused with a code other than corrupt");
    return 0;
  }
  expect(g->member() < GroupLedger::member_slots, "a member slot outside the table");
  claim_and_finish(*g, publisher, seq);
  claim_and_finish(*g, publisher, seq + 1);
  const auto first = g->begin(publisher, seq).verdict;

  auto other = GroupLedger::open(dir, "g");
  expect(other.has_value(), "a second member cannot open a ledger the first one uses");
  expect(other->member() != g->member(), "two live members share a slot");
  if (first == GroupLedger::Verdict::done) {
    expect(other->begin(publisher, seq).verdict == GroupLedger::Verdict::done, "another member does not see it done");
  }
  return 0;
}
