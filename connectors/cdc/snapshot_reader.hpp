// The initial snapshot of rill cdc: every row of the publication's tables as of a slot's
// start, read in a second (ordinary) connection that imports the snapshot the slot exported
// (SET TRANSACTION SNAPSHOT), through a cursor so a large table is never held in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "connectors/cdc/change_json.hpp"
#include "connectors/cdc/pgoutput.hpp"
#include "rill/error.hpp"

namespace rill::cdc {

/// Called per row: the table (columns as the query returned them) and the row, text values.
using SnapshotRow = std::function<Result<void>(const TableSchema& table, const Tuple& row)>;

/// Reads every table of `publication` under the exported `snapshot` and calls `row` for each
/// row, table after table (in schema, table order). Stops at the first error, `row`'s too.
[[nodiscard]] Result<std::uint64_t> read_snapshot(const std::string& uri, const std::string& snapshot,
                                                  const std::string& publication, const SnapshotRow& row);

}  // namespace rill::cdc
