// Loan: memory lent by a publisher's transport to build one message in place.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstddef>
#include <memory>
#include <span>

namespace rill {

namespace detail {
struct LoanState;
}

/// One message being built where it will be sent from: on shm a chunk of the shared
/// segment (publishing copies nothing), elsewhere heap memory. Move-only; dropping it
/// unpublished gives the memory back. Must not outlive its Publisher; use it on the
/// publishing thread.
class Loan {
 public:
  Loan(Loan&&) noexcept;
  Loan& operator=(Loan&&) noexcept;
  ~Loan();

  /// The builder to create the payload table in; its buffer is the loaned memory. A
  /// payload that outgrows the loan moves to a bigger one (or to the heap, copied once).
  [[nodiscard]] flatbuffers::FlatBufferBuilder& fbb() noexcept;
  /// Instead of a table: reserves `size` raw payload bytes (8-aligned) in the loan and
  /// returns them to fill before publishing. Call at most once, on a fresh loan.
  [[nodiscard]] std::span<std::byte> raw(std::size_t size);
  /// True while the message lives in the transport's own memory (zero copy).
  [[nodiscard]] bool zero_copy() const noexcept;

 private:
  friend class Publisher;
  explicit Loan(std::unique_ptr<detail::LoanState> state) noexcept;
  std::unique_ptr<detail::LoanState> m_state;
};

}  // namespace rill
