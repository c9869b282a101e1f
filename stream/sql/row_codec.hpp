// Internal: values to bytes and back, for group keys (the engine's string key) and for the
// aggregate states of a SQL row (checkpoints and Row::detail). Reading checks every length.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "rill/sql_job.hpp"

namespace rill::sql::detail {

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : m_out(out) {}
  void u8(std::uint8_t v) { m_out.push_back(static_cast<char>(v)); }
  void i64(std::int64_t v) { m_out.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void f64(double v) { m_out.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void str(std::string_view s) {
    i64(static_cast<std::int64_t>(s.size()));
    m_out.append(s);
  }
  void value(const Value& v) {
    u8(static_cast<std::uint8_t>(v.type));
    switch (v.type) {
      case Type::null:
        break;
      case Type::double_:
        f64(v.d);
        break;
      case Type::string:
        str(v.s);
        break;
      default:
        i64(v.i);
        break;
    }
  }

 private:
  std::string& m_out;
};

/// Reads what ByteWriter wrote; any overrun sets ok() false and returns zeros.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : m_in(in) {}
  std::uint8_t u8() {
    if (!take(1)) return 0;
    return static_cast<std::uint8_t>(m_in[m_at - 1]);
  }
  std::int64_t i64() {
    std::int64_t v = 0;
    if (take(sizeof v)) std::memcpy(&v, m_in.data() + m_at - sizeof v, sizeof v);
    return v;
  }
  double f64() {
    double v = 0;
    if (take(sizeof v)) std::memcpy(&v, m_in.data() + m_at - sizeof v, sizeof v);
    return v;
  }
  std::string str() {
    const std::int64_t n = i64();
    if (n < 0 || static_cast<std::uint64_t>(n) > m_in.size() - m_at) {
      m_ok = false;
      return {};
    }
    m_at += static_cast<std::size_t>(n);
    return std::string(m_in.substr(m_at - static_cast<std::size_t>(n), static_cast<std::size_t>(n)));
  }
  Value value() {
    Value v;
    const auto t = u8();
    if (t > static_cast<std::uint8_t>(Type::interval)) {
      m_ok = false;
      return v;
    }
    v.type = static_cast<Type>(t);
    switch (v.type) {
      case Type::null:
        break;
      case Type::double_:
        v.d = f64();
        break;
      case Type::string:
        v.s = str();
        break;
      default:
        v.i = i64();
        break;
    }
    return v;
  }
  [[nodiscard]] bool ok() const noexcept { return m_ok; }
  [[nodiscard]] bool at_end() const noexcept { return m_at == m_in.size(); }

 private:
  bool take(std::size_t n) {
    if (!m_ok || m_in.size() - m_at < n) {
      m_ok = false;
      return false;
    }
    m_at += n;
    return true;
  }
  std::string_view m_in;
  std::size_t m_at = 0;
  bool m_ok = true;
};

}  // namespace rill::sql::detail
