// java.util.Random's 48-bit linear congruential generator, bit for bit: Beam's Nexmark
// generator seeds one per event with the event id, so the same draws in the same order give
// the same events as the reference. The algorithm is the one java.util.Random documents.
#pragma once

#include <cstdint>

namespace rill::nexmark {

class JavaRandom {
 public:
  explicit JavaRandom(std::int64_t seed) noexcept
      : m_seed((static_cast<std::uint64_t>(seed) ^ multiplier) & mask) {}

  /// The next `bits` (1..32) random bits, as Java's protected next(bits).
  std::int32_t next(int bits) noexcept {
    m_seed = (m_seed * multiplier + addend) & mask;
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(m_seed >> (48 - bits)));
  }

  /// nextInt(): 32 random bits as a signed int.
  std::int32_t next_int() noexcept { return next(32); }

  /// nextInt(bound): uniform in [0, bound); bound must be positive (callers check).
  std::int32_t next_int(std::int32_t bound) noexcept {
    std::int32_t r = next(31);
    const std::int32_t m = bound - 1;
    if ((bound & m) == 0) return static_cast<std::int32_t>((static_cast<std::int64_t>(bound) * r) >> 31);
    // Java loops while u - r + m overflows int: the draw fell in the last, partial bucket.
    for (std::int32_t u = r; static_cast<std::int64_t>(u) - (r = u % bound) + m > INT32_MAX; u = next(31)) {
    }
    return r;
  }

  /// nextLong(): two 32-bit draws, the low one sign-extended before it is added.
  std::int64_t next_long() noexcept {
    const auto hi = static_cast<std::uint64_t>(static_cast<std::int64_t>(next(32)));
    const auto lo = static_cast<std::uint64_t>(static_cast<std::int64_t>(next(32)));
    return static_cast<std::int64_t>((hi << 32) + lo);
  }

  /// nextDouble(): 53 random bits scaled into [0, 1).
  double next_double() noexcept {
    const auto hi = static_cast<std::int64_t>(next(26));
    const auto lo = static_cast<std::int64_t>(next(27));
    return static_cast<double>((hi << 27) + lo) * 0x1.0p-53;
  }

 private:
  static constexpr std::uint64_t multiplier = 0x5DEECE66DULL;
  static constexpr std::uint64_t addend = 0xBULL;
  static constexpr std::uint64_t mask = (1ULL << 48) - 1;
  std::uint64_t m_seed;
};

}  // namespace rill::nexmark
