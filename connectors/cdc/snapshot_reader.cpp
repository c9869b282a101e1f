// Reading a publication's tables under an exported snapshot.
#include "connectors/cdc/snapshot_reader.hpp"

#include <libpq-fe.h>

#include <memory>
#include <utility>
#include <vector>

namespace rill::cdc {

namespace {

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;
using ConnPtr = std::unique_ptr<PGconn, decltype(&PQfinish)>;

std::string trimmed(std::string m) {
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// Runs `sql`, which must answer `want`; the result for reading.
Result<ResultPtr> run(PGconn* conn, const std::string& sql, ExecStatusType want) {
  ResultPtr r(PQexec(conn, sql.c_str()), &PQclear);
  if (PQresultStatus(r.get()) != want) {
    const char* m = PQresultErrorMessage(r.get());
    return fail(PQstatus(conn) == CONNECTION_OK ? Errc::invalid_argument : Errc::not_connected,
                "snapshot: " + trimmed(m != nullptr && *m != '\0' ? m : PQerrorMessage(conn)));
  }
  return r;
}

std::string quoted_identifier(PGconn* conn, const std::string& name) {
  char* q = PQescapeIdentifier(conn, name.c_str(), name.size());
  std::string out = q != nullptr ? q : "";
  PQfreemem(q);
  return out;
}

}  // namespace

Result<std::uint64_t> read_snapshot(const std::string& uri, const std::string& snapshot, const std::string& publication,
                                    const SnapshotRow& row) {
  ConnPtr conn(PQconnectdb(uri.c_str()), &PQfinish);
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    return fail(Errc::not_connected, "snapshot: cannot connect: " + trimmed(conn ? PQerrorMessage(conn.get()) : "out of memory"));
  }
  PGconn* c = conn.get();
  // Names were checked by valid_object_name and the snapshot name comes from the server.
  for (const std::string& sql : {std::string("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
                                "SET TRANSACTION SNAPSHOT '" + snapshot + "'"}) {
    if (auto r = run(c, sql, PGRES_COMMAND_OK); !r) return std::unexpected(r.error());
  }
  auto tables = run(c,
                    "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = '" +
                        publication + "' ORDER BY 1, 2",
                    PGRES_TUPLES_OK);
  if (!tables) return std::unexpected(tables.error());
  std::uint64_t rows = 0;
  for (int t = 0; t < PQntuples(tables->get()); ++t) {
    TableSchema schema;
    schema.schema = PQgetvalue(tables->get(), t, 0);
    schema.name = PQgetvalue(tables->get(), t, 1);
    const std::string from = quoted_identifier(c, schema.schema) + "." + quoted_identifier(c, schema.name);
    if (auto r = run(c, "DECLARE rill_snapshot NO SCROLL CURSOR FOR SELECT * FROM " + from, PGRES_COMMAND_OK); !r) {
      return std::unexpected(r.error());
    }
    for (;;) {
      auto batch = run(c, "FETCH 2000 FROM rill_snapshot", PGRES_TUPLES_OK);
      if (!batch) return std::unexpected(batch.error());
      PGresult* b = batch->get();
      if (schema.columns.empty()) {
        for (int f = 0; f < PQnfields(b); ++f) schema.columns.push_back({PQfname(b, f), static_cast<std::uint32_t>(PQftype(b, f)), false});
      }
      if (PQntuples(b) == 0) break;
      Tuple tuple(static_cast<std::size_t>(PQnfields(b)));
      for (int i = 0; i < PQntuples(b); ++i) {
        for (int f = 0; f < PQnfields(b); ++f) {
          auto& v = tuple[static_cast<std::size_t>(f)];
          v.kind = PQgetisnull(b, i, f) ? TupleValue::Kind::null : TupleValue::Kind::text;
          v.bytes = std::string_view(PQgetvalue(b, i, f), static_cast<std::size_t>(PQgetlength(b, i, f)));
        }
        if (auto r = row(schema, tuple); !r) return std::unexpected(r.error());
        ++rows;
      }
    }
    if (auto r = run(c, "CLOSE rill_snapshot", PGRES_COMMAND_OK); !r) return std::unexpected(r.error());
  }
  if (auto r = run(c, "COMMIT", PGRES_COMMAND_OK); !r) return std::unexpected(r.error());
  return rows;
}

}  // namespace rill::cdc
