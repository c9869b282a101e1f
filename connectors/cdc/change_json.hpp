// Debezium-style JSON for captured changes: the envelope (before, after, source, op, ts_ms)
// of each row event, and the BEGIN/END transaction markers, so consumers written for
// Debezium's PostgreSQL connector read rill's topics unchanged.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/cdc/pgoutput.hpp"

namespace rill::cdc {

/// What a Relation message said about a table, owned (the message's bytes do not live on).
struct TableSchema {
  struct Column {
    std::string name;
    std::uint32_t type_oid = 0;
    bool key = false;
  };
  std::string schema;
  std::string name;
  char replica_identity = 'd';
  std::vector<Column> columns;

  [[nodiscard]] static TableSchema from(const Relation& r);
  /// "schema.table", Debezium's data collection name.
  [[nodiscard]] std::string qualified() const { return schema + "." + name; }
};

/// The `source` block of one event.
struct SourceInfo {
  std::string_view db;
  Lsn lsn = 0;  ///< the change's own WAL position
  std::uint32_t xid = 0;
  std::int64_t commit_ms = 0;  ///< commit time, ms since the Unix epoch
  bool snapshot = false;
};

/// What Debezium writes for an unchanged TOASTed value (PostgreSQL did not send it).
inline constexpr std::string_view unavailable_value = "__debezium_unavailable_value";

/// PostgreSQL's microseconds since 2000-01-01 as milliseconds since 1970-01-01.
[[nodiscard]] std::int64_t pg_time_to_unix_ms(std::int64_t pg_us) noexcept;

/// One column value as JSON, chosen by its type: numbers for integers and floats, true/false
/// for bool, nested JSON for json/jsonb, base64 for bytea, strings for the rest (numeric
/// stays an exact string).
void append_value(std::string& out, std::uint32_t type_oid, const TupleValue& value);
/// A tuple as a JSON object keyed by column name; "null" when `row` is null.
void append_row(std::string& out, const TableSchema& table, const Tuple* row);

/// One row event: op 'c', 'u', 'd', 'r' or 't'; `before`/`after` may be null.
[[nodiscard]] std::string change_json(const TableSchema& table, char op, const Tuple* before, const Tuple* after,
                                      const SourceInfo& source, std::int64_t now_ms);

/// A transaction marker: BEGIN, or END with the events it carried per "schema.table".
[[nodiscard]] std::string begin_json(std::uint32_t xid, Lsn commit_lsn, std::int64_t commit_ms);
[[nodiscard]] std::string end_json(std::uint32_t xid, Lsn commit_lsn, std::int64_t commit_ms,
                                   const std::map<std::string, std::uint64_t>& events_per_table);

/// The marker closing an initial snapshot taken at `consistent_point`, rows per "schema.table".
[[nodiscard]] std::string snapshot_json(Lsn consistent_point, std::int64_t now_ms,
                                        const std::map<std::string, std::uint64_t>& rows_per_table);

/// `text` as a JSON string literal (quotes included) appended to `out`.
void append_json_string(std::string& out, std::string_view text);

}  // namespace rill::cdc
