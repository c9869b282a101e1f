// pgoutput and replication frame decoding: a cursor that refuses to read past the end.
#include "connectors/cdc/pgoutput.hpp"

#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>

namespace rill::cdc {

namespace {

// Big-endian reads over a span; the first short read sets `bad` and every later read
// returns zero, so a decoder checks once at the end (and before allocating by a count).
class Cursor {
 public:
  explicit Cursor(std::span<const std::byte> bytes) : m_bytes(bytes) {}

  template <class T>
  T integer() {
    if (!need(sizeof(T))) return 0;
    std::make_unsigned_t<T> v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v = static_cast<decltype(v)>((v << 8) | std::to_integer<std::uint8_t>(m_bytes[m_at + i]));
    m_at += sizeof(T);
    return static_cast<T>(v);
  }
  char byte() { return static_cast<char>(integer<std::uint8_t>()); }
  // A NUL-terminated string; the NUL must be inside the message.
  std::string_view cstring() {
    if (m_bad) return {};
    const auto* begin = reinterpret_cast<const char*>(m_bytes.data()) + m_at;
    const auto* nul = static_cast<const char*>(std::memchr(begin, 0, m_bytes.size() - m_at));
    if (nul == nullptr) {
      m_bad = true;
      return {};
    }
    m_at += static_cast<std::size_t>(nul - begin) + 1;
    return {begin, static_cast<std::size_t>(nul - begin)};
  }
  std::string_view bytes(std::size_t n) {
    if (!need(n)) return {};
    std::string_view v(reinterpret_cast<const char*>(m_bytes.data()) + m_at, n);
    m_at += n;
    return v;
  }
  std::span<const std::byte> rest() {
    auto r = m_bytes.subspan(m_at);
    m_at = m_bytes.size();
    return r;
  }
  [[nodiscard]] std::size_t left() const noexcept { return m_bytes.size() - m_at; }
  [[nodiscard]] bool bad() const noexcept { return m_bad; }
  void set_bad() noexcept { m_bad = true; }

 private:
  bool need(std::size_t n) {
    if (m_bad || m_bytes.size() - m_at < n) {
      m_bad = true;
      return false;
    }
    return true;
  }
  std::span<const std::byte> m_bytes;
  std::size_t m_at = 0;
  bool m_bad = false;
};

std::unexpected<Error> malformed(std::string_view what) {
  return fail(Errc::malformed, "pgoutput: " + std::string(what));
}

// The message is fully read: no short read and no trailing bytes.
template <class T>
Result<PgOutputMessage> finish(Cursor& c, T&& msg, std::string_view name) {
  if (c.bad()) return malformed(std::string(name) + " message is truncated");
  if (c.left() != 0) return malformed(std::string(name) + " message has " + std::to_string(c.left()) + " trailing bytes");
  return PgOutputMessage{std::forward<T>(msg)};
}

bool read_tuple(Cursor& c, Tuple& out) {
  const auto n = c.integer<std::int16_t>();
  // Each column takes at least one byte: a count beyond what is left cannot be honest.
  if (c.bad() || n < 0 || static_cast<std::size_t>(n) > max_columns || static_cast<std::size_t>(n) > c.left()) {
    c.set_bad();
    return false;
  }
  out.resize(static_cast<std::size_t>(n));
  for (auto& v : out) {
    const char kind = c.byte();
    switch (kind) {
      case 'n': v.kind = TupleValue::Kind::null; break;
      case 'u': v.kind = TupleValue::Kind::unchanged_toast; break;
      case 't':
      case 'b': {
        v.kind = kind == 't' ? TupleValue::Kind::text : TupleValue::Kind::binary;
        const auto len = c.integer<std::int32_t>();
        if (len < 0) {
          c.set_bad();
          return false;
        }
        v.bytes = c.bytes(static_cast<std::size_t>(len));
        break;
      }
      default: c.set_bad(); return false;
    }
    if (c.bad()) return false;
  }
  return true;
}

Result<PgOutputMessage> decode_relation(Cursor& c) {
  Relation r;
  r.oid = c.integer<std::uint32_t>();
  r.schema = c.cstring();
  r.name = c.cstring();
  r.replica_identity = c.byte();
  const auto n = c.integer<std::int16_t>();
  if (c.bad()) return malformed("relation message is truncated");
  // A column takes at least 10 bytes (flags, empty name, type oid, modifier).
  if (n < 0 || static_cast<std::size_t>(n) > max_columns || static_cast<std::size_t>(n) * 10 > c.left()) {
    return malformed("relation message declares " + std::to_string(n) + " columns");
  }
  r.columns.resize(static_cast<std::size_t>(n));
  for (auto& col : r.columns) {
    col.key = (c.integer<std::uint8_t>() & 1) != 0;
    col.name = c.cstring();
    col.type_oid = c.integer<std::uint32_t>();
    col.type_modifier = c.integer<std::int32_t>();
  }
  return finish(c, std::move(r), "relation");
}

Result<PgOutputMessage> decode_update(Cursor& c) {
  Update u;
  u.relation = c.integer<std::uint32_t>();
  char kind = c.byte();
  if (kind == 'K' || kind == 'O') {
    u.old_kind = kind;
    if (!read_tuple(c, u.old_row)) return malformed("update message has a bad old tuple");
    kind = c.byte();
  }
  if (kind != 'N') return c.bad() ? malformed("update message is truncated") : malformed("update message lacks its new tuple");
  if (!read_tuple(c, u.row)) return malformed("update message has a bad new tuple");
  return finish(c, std::move(u), "update");
}

}  // namespace

std::string format_lsn(Lsn lsn) {
  char buf[32];
  const auto n = std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                               static_cast<unsigned>(lsn & 0xffffffffu));
  return {buf, static_cast<std::size_t>(n)};
}

Result<Lsn> parse_lsn(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) {
    return fail(Errc::invalid_argument, "an LSN is written HI/LO in hex: '" + std::string(text) + "'");
  }
  std::uint32_t hi = 0;
  std::uint32_t lo = 0;
  const auto a = std::from_chars(text.data(), text.data() + slash, hi, 16);
  const auto b = std::from_chars(text.data() + slash + 1, text.data() + text.size(), lo, 16);
  if (a.ec != std::errc{} || a.ptr != text.data() + slash || b.ec != std::errc{} || b.ptr != text.data() + text.size()) {
    return fail(Errc::invalid_argument, "an LSN is written HI/LO in hex: '" + std::string(text) + "'");
  }
  return (static_cast<Lsn>(hi) << 32) | lo;
}

Result<ReplicationFrame> decode_frame(std::span<const std::byte> bytes) {
  Cursor c(bytes);
  const char kind = c.byte();
  if (kind == 'w') {
    XLogData d;
    d.start = c.integer<std::uint64_t>();
    d.wal_end = c.integer<std::uint64_t>();
    d.send_us = c.integer<std::int64_t>();
    d.data = c.rest();
    if (c.bad()) return fail(Errc::malformed, "replication: XLogData frame is truncated");
    return ReplicationFrame{d};
  }
  if (kind == 'k') {
    Keepalive k;
    k.wal_end = c.integer<std::uint64_t>();
    k.send_us = c.integer<std::int64_t>();
    k.reply = c.byte() != 0;
    if (c.bad() || c.left() != 0) return fail(Errc::malformed, "replication: keepalive frame is not 18 bytes");
    return ReplicationFrame{k};
  }
  if (c.bad()) return fail(Errc::malformed, "replication: empty CopyData frame");
  return fail(Errc::malformed, "replication: unknown CopyData frame kind " + std::to_string(static_cast<unsigned char>(kind)));
}

std::vector<std::byte> encode_status(Lsn written, Lsn flushed, Lsn applied, std::int64_t now_us, bool reply_requested) {
  std::vector<std::byte> out;
  out.reserve(34);
  auto put = [&out](std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::byte>((v >> shift) & 0xff));
  };
  out.push_back(std::byte{'r'});
  put(written);
  put(flushed);
  put(applied);
  put(static_cast<std::uint64_t>(now_us));
  out.push_back(std::byte{reply_requested ? std::uint8_t{1} : std::uint8_t{0}});
  return out;
}

Result<PgOutputMessage> decode_pgoutput(std::span<const std::byte> bytes) {
  Cursor c(bytes);
  const char kind = c.byte();
  switch (kind) {
    case 'B': {
      Begin b;
      b.final_lsn = c.integer<std::uint64_t>();
      b.commit_us = c.integer<std::int64_t>();
      b.xid = c.integer<std::uint32_t>();
      return finish(c, b, "begin");
    }
    case 'C': {
      Commit m;
      m.flags = c.integer<std::uint8_t>();
      m.commit_lsn = c.integer<std::uint64_t>();
      m.end_lsn = c.integer<std::uint64_t>();
      m.commit_us = c.integer<std::int64_t>();
      return finish(c, m, "commit");
    }
    case 'O': {
      Origin o;
      o.origin_lsn = c.integer<std::uint64_t>();
      o.name = c.cstring();
      return finish(c, o, "origin");
    }
    case 'R': return decode_relation(c);
    case 'Y': {
      Type t;
      t.oid = c.integer<std::uint32_t>();
      t.schema = c.cstring();
      t.name = c.cstring();
      return finish(c, t, "type");
    }
    case 'I': {
      Insert m;
      m.relation = c.integer<std::uint32_t>();
      if (c.byte() != 'N') return malformed(c.bad() ? "insert message is truncated" : "insert message lacks its 'N' tuple");
      if (!read_tuple(c, m.row)) return malformed("insert message has a bad tuple");
      return finish(c, std::move(m), "insert");
    }
    case 'U': return decode_update(c);
    case 'D': {
      Delete m;
      m.relation = c.integer<std::uint32_t>();
      m.old_kind = c.byte();
      if (m.old_kind != 'K' && m.old_kind != 'O') {
        return malformed(c.bad() ? "delete message is truncated" : "delete message lacks its 'K' or 'O' tuple");
      }
      if (!read_tuple(c, m.old_row)) return malformed("delete message has a bad tuple");
      return finish(c, std::move(m), "delete");
    }
    case 'T': {
      Truncate m;
      const auto n = c.integer<std::uint32_t>();
      m.options = c.integer<std::uint8_t>();
      if (c.bad()) return malformed("truncate message is truncated");
      if (n > max_truncate_relations || static_cast<std::size_t>(n) * 4 != c.left()) {
        return malformed("truncate message declares " + std::to_string(n) + " relations in " + std::to_string(c.left()) + " bytes");
      }
      m.relations.resize(n);
      for (auto& oid : m.relations) oid = c.integer<std::uint32_t>();
      return finish(c, std::move(m), "truncate");
    }
    case 'M': {
      Message m;
      m.transactional = c.integer<std::uint8_t>() != 0;
      m.lsn = c.integer<std::uint64_t>();
      m.prefix = c.cstring();
      const auto len = c.integer<std::int32_t>();
      if (len < 0) return malformed("message has a negative length");
      m.content = c.bytes(static_cast<std::size_t>(len));
      return finish(c, m, "logical decoding");
    }
    default:
      if (c.bad()) return malformed("empty message");
      return malformed("unknown message type " + std::to_string(static_cast<unsigned char>(kind)));
  }
}

}  // namespace rill::cdc
