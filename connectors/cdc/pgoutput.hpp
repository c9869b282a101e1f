// Decoders for what a PostgreSQL logical replication stream carries: the CopyData frames of
// the streaming replication protocol ('w' XLogData, 'k' keepalive) and, inside XLogData, the
// pgoutput plugin's messages (protocol version 1), as "Logical Replication Message Formats"
// in the PostgreSQL documentation lays them out. Everything comes from the network, so every
// read is bounds-checked and a short or unknown message is a malformed error, never a crash.
// Decoded messages point into the input bytes (zero copy): keep those bytes alive meanwhile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "rill/error.hpp"

namespace rill::cdc {

/// A WAL position (PostgreSQL's XLogRecPtr).
using Lsn = std::uint64_t;

/// "16/B374D848", PostgreSQL's text form of an LSN.
[[nodiscard]] std::string format_lsn(Lsn lsn);
/// Parses "X/Y" (hex halves); invalid_argument otherwise.
[[nodiscard]] Result<Lsn> parse_lsn(std::string_view text);

/// 'w': one pgoutput message and where it lies in the WAL.
struct XLogData {
  Lsn start = 0;             ///< WAL position of the message's data
  Lsn wal_end = 0;           ///< the server's current end of WAL
  std::int64_t send_us = 0;  ///< server clock, microseconds since 2000-01-01
  std::span<const std::byte> data;
};
/// 'k': the server's keepalive; `reply` asks for a status update now.
struct Keepalive {
  Lsn wal_end = 0;
  std::int64_t send_us = 0;
  bool reply = false;
};
using ReplicationFrame = std::variant<XLogData, Keepalive>;

/// Decodes one CopyData payload of START_REPLICATION's copy-both stream.
[[nodiscard]] Result<ReplicationFrame> decode_frame(std::span<const std::byte> bytes);
/// The 34-byte standby status update ('r') reporting `written`, `flushed` and `applied`.
[[nodiscard]] std::vector<std::byte> encode_status(Lsn written, Lsn flushed, Lsn applied, std::int64_t now_us,
                                                   bool reply_requested);

/// One column value of a TupleData.
struct TupleValue {
  enum class Kind : char { null = 'n', unchanged_toast = 'u', text = 't', binary = 'b' };
  Kind kind = Kind::null;
  std::string_view bytes;  ///< text/binary: the value as sent (text: PostgreSQL's output form)
};
using Tuple = std::vector<TupleValue>;

struct Begin {
  Lsn final_lsn = 0;           ///< the transaction's commit LSN
  std::int64_t commit_us = 0;  ///< commit time, microseconds since 2000-01-01
  std::uint32_t xid = 0;
};
struct Commit {
  std::uint8_t flags = 0;
  Lsn commit_lsn = 0;
  Lsn end_lsn = 0;  ///< end of the commit record: what a consumer confirms once it has it all
  std::int64_t commit_us = 0;
};
struct Origin {
  Lsn origin_lsn = 0;
  std::string_view name;
};
struct RelationColumn {
  bool key = false;  ///< part of the replica identity
  std::string_view name;
  std::uint32_t type_oid = 0;
  std::int32_t type_modifier = 0;
};
/// Sent before the first change of a table in a session and again after its schema changed.
struct Relation {
  std::uint32_t oid = 0;
  std::string_view schema;  ///< "" stands for pg_catalog
  std::string_view name;
  char replica_identity = 'd';  ///< d default, n nothing, f full, i index
  std::vector<RelationColumn> columns;
};
struct Type {
  std::uint32_t oid = 0;
  std::string_view schema;
  std::string_view name;
};
struct Insert {
  std::uint32_t relation = 0;
  Tuple row;
};
struct Update {
  std::uint32_t relation = 0;
  char old_kind = 0;  ///< 0: no old image; 'K': key columns only; 'O': the whole old row
  Tuple old_row;
  Tuple row;
};
struct Delete {
  std::uint32_t relation = 0;
  char old_kind = 'K';  ///< 'K' key columns, 'O' whole row (REPLICA IDENTITY FULL)
  Tuple old_row;
};
struct Truncate {
  std::uint8_t options = 0;  ///< 1 CASCADE, 2 RESTART IDENTITY
  std::vector<std::uint32_t> relations;
};
/// A pg_logical_emit_message() message (only sent when asked for; decoded to be skipped).
struct Message {
  bool transactional = false;
  Lsn lsn = 0;
  std::string_view prefix;
  std::string_view content;
};

using PgOutputMessage =
    std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate, Message>;

/// Limits on what one message may declare, so a hostile count cannot make us allocate much.
inline constexpr std::size_t max_columns = 1664;  // PostgreSQL's own MaxTupleAttributeNumber
inline constexpr std::size_t max_truncate_relations = 65536;

/// Decodes one pgoutput message (protocol version 1). Trailing bytes are malformed too.
[[nodiscard]] Result<PgOutputMessage> decode_pgoutput(std::span<const std::byte> bytes);

}  // namespace rill::cdc
