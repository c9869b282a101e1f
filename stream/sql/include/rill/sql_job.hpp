// Running a streaming SQL script on the stream engine: CREATE TABLE declares JSON sources and
// sinks, one SELECT (or INSERT INTO sink SELECT) is planned onto a filter/projection or a
// rill::stream::WindowOperator, and rows come out with their changelog kind. README
// "Streaming SQL" lists the subset that runs.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rill/stream/types.hpp"
#include "rill/stream/window_operator.hpp"

namespace rill::sql {

/// A SQL value's type. INT and BIGINT are both read as bigint; VARCHAR is string.
enum class Type : std::uint8_t { null, boolean, bigint, double_, string, timestamp, interval };

/// "BIGINT", "STRING", "TIMESTAMP(3)", ...
[[nodiscard]] std::string_view type_name(Type t) noexcept;

/// One value. `i` holds bigint, boolean (0/1), timestamp (epoch ms) and interval (ms).
struct Value {
  Type type = Type::null;
  std::int64_t i = 0;
  double d = 0;
  std::string s;
  [[nodiscard]] bool is_null() const noexcept { return type == Type::null; }
};

/// A column of a table or of a query's output.
struct Column {
  std::string name;
  Type type = Type::null;
};

/// A table declared by CREATE TABLE.
struct Table {
  std::string name;
  std::vector<Column> columns;
  int time_column = -1;                        ///< the WATERMARK FOR column (-1: none)
  std::int64_t delay_ms = 0;                   ///< WATERMARK FOR c AS c - INTERVAL ...: the out-of-orderness
  std::map<std::string, std::string> options;  ///< WITH ('key' = 'value')
  /// The option's value, or "" when absent.
  [[nodiscard]] std::string option(const std::string& key) const;
};

/// Why a script cannot run: a syntax error or a semantic one (unknown column, type mismatch),
/// with the 1-based line and column of the offending text.
struct QueryError {
  std::size_t line = 0, column = 0;
  std::string message;
  /// "line:column: message".
  [[nodiscard]] std::string to_string() const;
};

/// One output row of the query, in the SELECT list's order.
struct OutputRow {
  stream::RowKind kind = stream::RowKind::insert;
  std::vector<Value> values;
};

/// Where a job's results go; called on the thread that feeds it.
struct JobOutput {
  std::function<void(const OutputRow&)> row{};
  /// Every window ending at or before `watermark` has had its final row (windowed queries).
  std::function<void(stream::TimeMs watermark)> watermark{};
};

/// What a job has seen.
struct JobStats {
  std::uint64_t inputs = 0;        ///< payloads fed
  std::uint64_t bad_input = 0;     ///< not JSON, a field of the wrong type, or no event time
  std::uint64_t filtered = 0;      ///< rejected by WHERE
  std::uint64_t rows = 0;          ///< output rows (every kind)
  std::uint64_t late_dropped = 0;  ///< events behind the watermark (windowed queries)
};

/// Where a job stood at a checkpoint: the last sequence handled per input publisher, and
/// how many outputs (rows and markers) it had sent.
struct JobPositions {
  std::map<std::uint64_t, std::uint64_t> inputs;
  std::uint64_t outputs = 0;
};

namespace detail {
struct Plan;
class Runner;
}  // namespace detail

/// A compiled script with its running state. Move-only; not thread-safe (one thread feeds it).
class Job {
 public:
  /// Parses and plans `script`: CREATE TABLE statements and exactly one SELECT or INSERT.
  [[nodiscard]] static std::expected<Job, QueryError> compile(std::string_view script);
  Job(Job&&) noexcept;
  Job& operator=(Job&&) noexcept;
  ~Job();

  /// The table the query reads (its 'topic' option is what to subscribe to).
  [[nodiscard]] const Table& source() const;
  /// INSERT INTO's table (null for a SELECT).
  [[nodiscard]] const Table* sink() const;
  /// The output columns (the sink's names for an INSERT, else the SELECT list's).
  [[nodiscard]] const std::vector<Column>& columns() const;
  /// Whether rows come from windows (then watermark markers come too).
  [[nodiscard]] bool windowed() const;

  /// Starts execution: results go to `output`. Call once, before feed().
  void start(JobOutput output);
  /// One input: a JSON object whose fields are the source's columns. `source` and `sequence`
  /// identify the sender and its order (a rill publisher id and sequence): each source has
  /// its own watermark. Returns false for bad input (counted, skipped).
  bool feed(std::string_view json, std::uint64_t source, std::uint64_t sequence);
  /// No input for a while: lets idle-source handling move the watermark.
  void tick();
  /// End of input: every open window closes.
  void finish();
  [[nodiscard]] JobStats stats() const;

  /// Writes the job's state (its windows, if any) with `at` to `path` atomically (temporary
  /// file, fsync, rename, fsync of the directory). After start(). A message on failure.
  [[nodiscard]] std::expected<void, std::string> checkpoint(const std::string& path, const JobPositions& at) const;
  /// Loads a checkpoint into a started job that has had no input; returns its positions.
  /// A missing, damaged or foreign file (another query's windows) gives a message.
  [[nodiscard]] std::expected<JobPositions, std::string> restore(const std::string& path);

 private:
  Job() = default;
  std::unique_ptr<detail::Plan> m_plan;
  std::unique_ptr<detail::Runner> m_runner;
};

/// A value as JSON: numbers, strings quoted, booleans, null; timestamps as ISO-8601 UTC
/// with milliseconds in quotes.
void append_json(std::string& out, const Value& v);
/// A row as one JSON object {"column": value, ...}.
[[nodiscard]] std::string row_object_json(const std::vector<Column>& columns, const std::vector<Value>& values);
/// A value as text: numbers, strings unquoted, NULL, ISO times.
[[nodiscard]] std::string to_text(const Value& v);

}  // namespace rill::sql
