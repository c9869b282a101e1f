// The library's one logger ("rill", stderr). RILL_LOG=debug|info|warn|error sets its level.
// Log on state changes only (joins, departures, first bad frame), never per message.
#pragma once

#include <spdlog/spdlog.h>

namespace rill::detail {

/// The shared logger; created on first use, level read from RILL_LOG (default warn).
spdlog::logger& log();

}  // namespace rill::detail
