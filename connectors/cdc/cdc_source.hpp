// rill cdc's engine: streams a PostgreSQL publication from a logical slot into rill topics
// (one persistent publisher per table on one endpoint, plus PREFIX "transactions"), and
// confirms the slot only up to what the rill logs hold durably, so that after a crash of
// either side every change lands in the logs exactly once (README "Change data capture").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "rill/log.hpp"
#include "rill/error.hpp"

namespace rill::cdc {

/// What rill cdc runs; fill with designated initializers.
struct CdcOptions {
  std::string uri;          ///< postgresql://USER@HOST:PORT/DB (libpq URI or conninfo)
  std::string slot;         ///< logical slot, created if missing
  std::string publication;  ///< must exist (CREATE PUBLICATION ... FOR TABLE ...)
  std::string endpoint;     ///< where every topic is published
  std::string dir;          ///< persistent durability: each topic's log in DIR/<topic>
  std::string topic_prefix = "cdc/";
  /// Before streaming from a slot it creates, publish every row of the publication's tables
  /// as of the slot's start (op 'r'), then a SNAPSHOT marker on the transactions topic.
  bool snapshot_initial = false;
  LogOptions log{};
  /// How often the flushed position is synced and confirmed while changes flow.
  std::chrono::milliseconds status_interval{200};
  std::chrono::milliseconds max_backoff{5000};  ///< reconnect delays double up to this
  std::chrono::milliseconds publish_timeout{1000};
};

/// Counters printed when rill cdc stops.
struct CdcStats {
  std::uint64_t transactions = 0;
  std::uint64_t events = 0;      ///< row events published
  std::uint64_t duplicates = 0;  ///< messages the logs already held (resent after a restart), skipped
  std::uint64_t reconnects = 0;
  std::uint64_t confirmed_lsn = 0;
};

/// The directory name of `topic`'s log under DIR ('/' written %2F), as rill pub and rill
/// serve name theirs.
[[nodiscard]] std::string topic_dir_name(std::string_view topic);

/// Runs until `stopping()` says so (then returns the counters) or a failure that retrying
/// cannot mend: a bad URI, a missing publication, a slot that vanished although the logs
/// hold its changes, a log that cannot be written. A lost connection (server restart,
/// network) is retried with back-off, 100 ms doubling up to max_backoff, forever.
[[nodiscard]] Result<CdcStats> run_cdc(const CdcOptions& options, const std::function<bool()>& stopping);

}  // namespace rill::cdc
