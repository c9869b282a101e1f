// Fuzz target for a persistent publisher's sequence mark (policies/durability/sequence_mark.hpp,
// PROTOCOL.md section 13.6): the input is the file's first bytes, zero-extended to one page.
// Properties: a file is accepted or refused as corrupt; an accepted mark never tells the
// publisher to go on from a sequence it could not number past (the top half of the range is
// refused); handing out and settling the next number reads back after a reopen.
#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz_check.hpp"
#include "fuzz_file.hpp"
#include "policies/durability/sequence_mark.hpp"

using rill::detail::SequenceMark;
using rill::fuzz::expect;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* input, std::size_t size) {
  const auto dir = rill::fuzz::scratch_dir();
  rill::fuzz::write_file(dir / "sequence.mark", std::span(input, size), 4096);

  std::uint64_t next = 0;
  {
    auto mark = SequenceMark::open(dir);
    if (!mark) {
      expect(mark.error().code == rill::Errc::corrupt, "a bad sequence mark is refused with a code other than corrupt");
      return 0;
    }
    expect(mark->last_handed_out() < SequenceMark::max_sequence, "accepted a mark the publisher cannot go on from");
    next = mark->last_handed_out() + 1;
    if (next == SequenceMark::max_sequence) return 0;  // the last number: nothing to go on with
    expect(mark->hand_out(next, false).has_value(), "hand_out failed on an accepted mark");
    expect(mark->settle(next).has_value(), "settle failed on an accepted mark");
  }
  auto again = SequenceMark::open(dir);
  expect(again.has_value(), "a sequence mark rill wrote does not open again");
  expect(again->last_handed_out() == next, "a settled sequence did not read back");
  return 0;
}
