// Internal: the checkpoint's byte form. Little-endian fixed-width numbers and
// length-prefixed strings; the reader checks every length against what is left, so a
// damaged or hostile file gives `ok() == false`, never a read out of bounds or a huge
// allocation.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace rill::stream::detail {

class StateWriter {
 public:
  void u8(std::uint8_t v) { m_out.push_back(static_cast<char>(v)); }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) m_out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void f64(double v) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    u64(bits);
  }
  void str(std::string_view s) {
    u64(s.size());
    m_out.append(s);
  }
  [[nodiscard]] std::string& bytes() noexcept { return m_out; }

 private:
  std::string m_out;
};

class StateReader {
 public:
  explicit StateReader(std::string_view in) : m_in(in) {}
  std::uint8_t u8() {
    if (!need(1)) return 0;
    return static_cast<std::uint8_t>(m_in[m_at++]);
  }
  std::uint64_t u64() {
    if (!need(8)) return 0;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(m_in[m_at + i])) << (8 * i);
    m_at += 8;
    return v;
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  double f64() {
    const std::uint64_t bits = u64();
    double v = 0;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  std::string_view str() {
    const std::uint64_t n = u64();
    if (!need(n)) return {};
    auto s = m_in.substr(m_at, n);
    m_at += n;
    return s;
  }
  /// A count of items each at least `min_bytes` long: refused when they could not fit.
  std::uint64_t count(std::size_t min_bytes) {
    const std::uint64_t n = u64();
    if (min_bytes > 0 && n > (m_in.size() - m_at) / min_bytes) m_ok = false;
    return m_ok ? n : 0;
  }
  void fail() noexcept { m_ok = false; }
  [[nodiscard]] bool ok() const noexcept { return m_ok; }
  [[nodiscard]] bool done() const noexcept { return m_ok && m_at == m_in.size(); }

 private:
  bool need(std::uint64_t n) {
    if (!m_ok || n > m_in.size() - m_at) m_ok = false;
    return m_ok;
  }
  std::string_view m_in;
  std::size_t m_at = 0;
  bool m_ok = true;
};

}  // namespace rill::stream::detail
