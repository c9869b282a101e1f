// Debezium-style JSON rendering of decoded pgoutput rows.
#include "connectors/cdc/change_json.hpp"

#include <cstdio>

namespace rill::cdc {

namespace {

// Type oids from PostgreSQL's pg_type catalog (fixed for built-in types).
constexpr std::uint32_t oid_bool = 16, oid_bytea = 17, oid_int8 = 20, oid_int2 = 21, oid_int4 = 23, oid_oid = 26,
                        oid_json = 114, oid_float4 = 700, oid_float8 = 701, oid_jsonb = 3802;

// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
constexpr std::int64_t pg_epoch_offset_us = 946684800LL * 1000000LL;

void append_base64(std::string& out, std::string_view bytes) {
  static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out += '"';
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto v = (std::uint32_t(std::uint8_t(bytes[i])) << 16) | (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) |
                   std::uint8_t(bytes[i + 2]);
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (const auto left = bytes.size() - i; left > 0) {
    std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16;
    if (left == 2) v |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += left == 2 ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  out += '"';
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// bytea's text output is "\x" + hex (bytea_output = hex, the default since 9.0). Anything
// else (the old escape format) is passed on as a string rather than guessed at.
void append_bytea(std::string& out, std::string_view text) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) {
    append_json_string(out, text);
    return;
  }
  std::string raw;
  raw.reserve(text.size() / 2 - 1);
  for (std::size_t i = 2; i < text.size(); i += 2) {
    const int hi = hex_digit(text[i]);
    const int lo = hex_digit(text[i + 1]);
    if (hi < 0 || lo < 0) {
      append_json_string(out, text);
      return;
    }
    raw += static_cast<char>(hi * 16 + lo);
  }
  append_base64(out, raw);
}

// Integers and finite floats in PostgreSQL's text form are valid JSON numbers;
// NaN and Infinity are not, so those stay strings.
bool is_json_number(std::string_view t) {
  if (t.empty()) return false;
  for (char c : t) {
    if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E')) return false;
  }
  return t.front() != '+' && t.front() != '.';
}

}  // namespace

TableSchema TableSchema::from(const Relation& r) {
  TableSchema t;
  t.schema = r.schema.empty() ? "pg_catalog" : std::string(r.schema);
  t.name = std::string(r.name);
  t.replica_identity = r.replica_identity;
  for (const auto& c : r.columns) t.columns.push_back({std::string(c.name), c.type_oid, c.key});
  return t;
}

std::int64_t pg_time_to_unix_ms(std::int64_t pg_us) noexcept { return (pg_us + pg_epoch_offset_us) / 1000; }

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;  // UTF-8 passes through (the server encodes text as the database's encoding)
        }
    }
  }
  out += '"';
}

void append_value(std::string& out, std::uint32_t type_oid, const TupleValue& value) {
  using Kind = TupleValue::Kind;
  if (value.kind == Kind::null) {
    out += "null";
    return;
  }
  if (value.kind == Kind::unchanged_toast) {
    append_json_string(out, unavailable_value);
    return;
  }
  if (value.kind == Kind::binary) {
    append_base64(out, value.bytes);
    return;
  }
  const auto t = value.bytes;
  switch (type_oid) {
    case oid_bool: out += t == "t" ? "true" : "false"; return;
    case oid_int2:
    case oid_int4:
    case oid_int8:
    case oid_oid:
    case oid_float4:
    case oid_float8:
      if (is_json_number(t)) {
        out += t;
        return;
      }
      break;
    case oid_json:
    case oid_jsonb: out += t; return;  // the server checked it is JSON when it was stored
    case oid_bytea: append_bytea(out, t); return;
    default: break;
  }
  append_json_string(out, t);
}

void append_row(std::string& out, const TableSchema& table, const Tuple* row) {
  if (row == nullptr) {
    out += "null";
    return;
  }
  out += '{';
  for (std::size_t i = 0; i < row->size(); ++i) {
    if (i > 0) out += ',';
    // A tuple wider than the last Relation message said: name the column by position.
    const bool known = i < table.columns.size();
    append_json_string(out, known ? std::string_view(table.columns[i].name) : "col" + std::to_string(i + 1));
    out += ':';
    append_value(out, known ? table.columns[i].type_oid : 0, (*row)[i]);
  }
  out += '}';
}

std::string change_json(const TableSchema& table, char op, const Tuple* before, const Tuple* after,
                        const SourceInfo& source, std::int64_t now_ms) {
  std::string out;
  out.reserve(256);
  out += "{\"before\":";
  append_row(out, table, before);
  out += ",\"after\":";
  append_row(out, table, after);
  out += ",\"source\":{\"connector\":\"postgresql\",\"db\":";
  append_json_string(out, source.db);
  out += ",\"schema\":";
  append_json_string(out, table.schema);
  out += ",\"table\":";
  append_json_string(out, table.name);
  out += ",\"lsn\":" + std::to_string(source.lsn) + ",\"txId\":" + std::to_string(source.xid) +
         ",\"ts_ms\":" + std::to_string(source.commit_ms) + ",\"snapshot\":" + (source.snapshot ? "\"true\"" : "\"false\"");
  out += "},\"op\":\"";
  out += op;
  out += "\",\"ts_ms\":" + std::to_string(now_ms) + "}";
  return out;
}

std::string begin_json(std::uint32_t xid, Lsn commit_lsn, std::int64_t commit_ms) {
  return "{\"status\":\"BEGIN\",\"id\":\"" + std::to_string(xid) + ":" + std::to_string(commit_lsn) +
         "\",\"ts_ms\":" + std::to_string(commit_ms) + ",\"event_count\":null,\"data_collections\":null}";
}

namespace {

std::string collections_json(const std::map<std::string, std::uint64_t>& events_per_table, std::uint64_t& total) {
  std::string out = "[";
  for (const auto& [name, n] : events_per_table) {
    if (out.size() > 1) out += ',';
    out += "{\"data_collection\":";
    append_json_string(out, name);
    out += ",\"event_count\":" + std::to_string(n) + "}";
    total += n;
  }
  return out + ']';
}

}  // namespace

std::string snapshot_json(Lsn consistent_point, std::int64_t now_ms, const std::map<std::string, std::uint64_t>& rows_per_table) {
  std::uint64_t total = 0;
  const auto collections = collections_json(rows_per_table, total);
  return "{\"status\":\"SNAPSHOT\",\"id\":\"snapshot:" + std::to_string(consistent_point) +
         "\",\"ts_ms\":" + std::to_string(now_ms) + ",\"event_count\":" + std::to_string(total) +
         ",\"data_collections\":" + collections + "}";
}

std::string end_json(std::uint32_t xid, Lsn commit_lsn, std::int64_t commit_ms,
                     const std::map<std::string, std::uint64_t>& events_per_table) {
  std::uint64_t total = 0;
  const auto collections = collections_json(events_per_table, total);
  return "{\"status\":\"END\",\"id\":\"" + std::to_string(xid) + ":" + std::to_string(commit_lsn) +
         "\",\"ts_ms\":" + std::to_string(commit_ms) + ",\"event_count\":" + std::to_string(total) +
         ",\"data_collections\":" + collections + "}";
}

}  // namespace rill::cdc
