// One logical replication connection to PostgreSQL over libpq (replication=database):
// the slot and publication checks, CREATE_REPLICATION_SLOT, START_REPLICATION with pgoutput,
// and the copy-both stream of CopyData frames and standby status updates. The consumer loop
// follows the one PostgreSQL's own pg_recvlogical runs. Not thread-safe: one thread owns it.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "connectors/cdc/pgoutput.hpp"
#include "rill/error.hpp"

struct pg_conn;

namespace rill::cdc {

/// Checks a postgresql:// URI (or key=value conninfo) without connecting; invalid_argument
/// with libpq's reason otherwise.
[[nodiscard]] Result<void> check_conninfo(const std::string& uri);
/// Whether `name` may name a slot (PostgreSQL allows lower-case letters, digits, '_', up
/// to 63 bytes) or, by the same rule here, a publication.
[[nodiscard]] bool valid_object_name(std::string_view name);

class ReplicationConnection {
 public:
  /// Connects to `uri` as a logical replication connection. not_connected when the server
  /// cannot be reached or refuses (libpq's message in the detail).
  [[nodiscard]] static Result<ReplicationConnection> connect(const std::string& uri);

  ReplicationConnection(ReplicationConnection&&) noexcept;
  ReplicationConnection& operator=(ReplicationConnection&&) noexcept;
  ~ReplicationConnection();

  /// The database name the connection is on.
  [[nodiscard]] std::string database() const;
  /// Whether the logical slot `slot` exists in this database.
  [[nodiscard]] Result<bool> slot_exists(std::string_view slot);
  /// Whether the publication exists in this database.
  [[nodiscard]] Result<bool> publication_exists(std::string_view publication);
  /// What CREATE_REPLICATION_SLOT answered.
  struct CreatedSlot {
    Lsn consistent_point = 0;  ///< streaming starts with transactions committing after it
    std::string snapshot;      ///< exported snapshot name ("" unless asked for)
  };
  /// CREATE_REPLICATION_SLOT ... LOGICAL pgoutput. With `export_snapshot` the snapshot of the
  /// slot's start stays importable (SET TRANSACTION SNAPSHOT) until this connection runs
  /// its next command.
  [[nodiscard]] Result<CreatedSlot> create_slot(std::string_view slot, bool export_snapshot);
  /// START_REPLICATION SLOT ... LOGICAL `from` (0: where the slot confirmed) with pgoutput
  /// protocol version 1 on `publication`. The connection then streams.
  [[nodiscard]] Result<void> start(std::string_view slot, std::string_view publication, Lsn from);

  /// The next CopyData frame's bytes, valid until the next call; nullopt when none came
  /// within `timeout`. closed when the server ended the stream, not_connected when the
  /// connection broke.
  [[nodiscard]] Result<std::optional<std::span<const std::byte>>> read(std::chrono::milliseconds timeout);
  /// Sends a standby status update saying `flushed` is safe (and received up to `written`).
  [[nodiscard]] Result<void> send_status(Lsn written, Lsn flushed, bool reply_requested = false);

 private:
  explicit ReplicationConnection(pg_conn* conn) : m_conn(conn) {}
  Result<bool> exists(const std::string& sql);
  void release_frame();

  pg_conn* m_conn = nullptr;
  char* m_frame = nullptr;  // the last frame PQgetCopyData handed out (freed with PQfreemem)
};

/// Microseconds since 2000-01-01 now (the clock field of status updates).
[[nodiscard]] std::int64_t pg_now_us();

}  // namespace rill::cdc
