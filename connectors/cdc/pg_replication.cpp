// libpq calls of the logical replication consumer.
#include "connectors/cdc/pg_replication.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <memory>
#include <utility>

namespace rill::cdc {

namespace {

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

std::string pq_message(PGconn* conn) {
  std::string m = PQerrorMessage(conn);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// A server error: the text of the error result, else of the connection.
std::string result_message(PGconn* conn, const PGresult* r) {
  std::string m = r != nullptr ? PQresultErrorMessage(r) : "";
  if (m.empty()) return pq_message(conn);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// A broken connection is worth retrying; a server that answered with an error is not.
Errc failure_code(PGconn* conn) { return PQstatus(conn) == CONNECTION_OK ? Errc::invalid_argument : Errc::not_connected; }

}  // namespace

Result<void> check_conninfo(const std::string& uri) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(uri.c_str(), &err);
  if (opts == nullptr) {
    std::string m = err != nullptr ? err : "out of memory";
    PQfreemem(err);
    while (!m.empty() && m.back() == '\n') m.pop_back();
    return fail(Errc::invalid_argument, "bad PostgreSQL URI: " + m);
  }
  PQconninfoFree(opts);
  return {};
}

bool valid_object_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

std::int64_t pg_now_us() {
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch());
  return now.count() - 946684800LL * 1000000LL;
}

Result<ReplicationConnection> ReplicationConnection::connect(const std::string& uri) {
  if (auto ok = check_conninfo(uri); !ok) return std::unexpected(ok.error());
  // expand_dbname: the URI fills every setting; replication=database is added beside it.
  const char* keys[] = {"dbname", "replication", "connect_timeout", nullptr};
  const char* values[] = {uri.c_str(), "database", "10", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
  if (conn == nullptr) return fail(Errc::io_error, "libpq: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    auto m = pq_message(conn);
    PQfinish(conn);
    return fail(Errc::not_connected, "cannot connect to PostgreSQL: " + m);
  }
  return ReplicationConnection(conn);
}

ReplicationConnection::ReplicationConnection(ReplicationConnection&& o) noexcept
    : m_conn(std::exchange(o.m_conn, nullptr)), m_frame(std::exchange(o.m_frame, nullptr)) {}

ReplicationConnection& ReplicationConnection::operator=(ReplicationConnection&& o) noexcept {
  if (this != &o) {
    release_frame();
    if (m_conn != nullptr) PQfinish(m_conn);
    m_conn = std::exchange(o.m_conn, nullptr);
    m_frame = std::exchange(o.m_frame, nullptr);
  }
  return *this;
}

ReplicationConnection::~ReplicationConnection() {
  release_frame();
  if (m_conn != nullptr) PQfinish(m_conn);
}

void ReplicationConnection::release_frame() {
  if (m_frame != nullptr) PQfreemem(m_frame);
  m_frame = nullptr;
}

std::string ReplicationConnection::database() const { return PQdb(m_conn); }

Result<bool> ReplicationConnection::exists(const std::string& sql) {
  ResultPtr r(PQexec(m_conn, sql.c_str()), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    return fail(failure_code(m_conn), "PostgreSQL: " + result_message(m_conn, r.get()));
  }
  return PQntuples(r.get()) > 0;
}

// Names were checked by valid_object_name (no quote can appear), so quoting them is enough.
Result<bool> ReplicationConnection::slot_exists(std::string_view slot) {
  return exists("SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = '" + std::string(slot) +
                "' AND database = current_database()");
}

Result<bool> ReplicationConnection::publication_exists(std::string_view publication) {
  return exists("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = '" + std::string(publication) + "'");
}

Result<ReplicationConnection::CreatedSlot> ReplicationConnection::create_slot(std::string_view slot,
                                                                             bool export_snapshot) {
  const std::string sql = "CREATE_REPLICATION_SLOT " + std::string(slot) + " LOGICAL pgoutput " +
                          (export_snapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT");
  ResultPtr r(PQexec(m_conn, sql.c_str()), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    return fail(failure_code(m_conn), "creating slot '" + std::string(slot) + "': " + result_message(m_conn, r.get()));
  }
  // Columns: slot_name, consistent_point, snapshot_name, output_plugin.
  if (PQntuples(r.get()) != 1 || PQnfields(r.get()) < 3) {
    return fail(Errc::malformed, "CREATE_REPLICATION_SLOT answered an unexpected row shape");
  }
  auto at = parse_lsn(PQgetvalue(r.get(), 0, 1));
  if (!at) return fail(Errc::malformed, "CREATE_REPLICATION_SLOT: " + at.error().detail);
  CreatedSlot created{.consistent_point = *at, .snapshot = {}};
  if (export_snapshot) {
    if (PQgetisnull(r.get(), 0, 2)) return fail(Errc::malformed, "CREATE_REPLICATION_SLOT exported no snapshot");
    created.snapshot = PQgetvalue(r.get(), 0, 2);
  }
  return created;
}

Result<void> ReplicationConnection::start(std::string_view slot, std::string_view publication, Lsn from) {
  const std::string sql = "START_REPLICATION SLOT " + std::string(slot) + " LOGICAL " + format_lsn(from) +
                          " (proto_version '1', publication_names '" + std::string(publication) + "')";
  ResultPtr r(PQexec(m_conn, sql.c_str()), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_COPY_BOTH) {
    return fail(failure_code(m_conn), "START_REPLICATION: " + result_message(m_conn, r.get()));
  }
  return {};
}

Result<std::optional<std::span<const std::byte>>> ReplicationConnection::read(std::chrono::milliseconds timeout) {
  release_frame();
  for (bool waited = false;; waited = true) {
    char* buf = nullptr;
    const int n = PQgetCopyData(m_conn, &buf, 1);
    if (n > 0) {
      m_frame = buf;
      return std::span<const std::byte>(reinterpret_cast<const std::byte*>(buf), static_cast<std::size_t>(n));
    }
    if (n == -1) {  // the server ended the copy: its final result says why
      ResultPtr r(PQgetResult(m_conn), &PQclear);
      const auto status = PQresultStatus(r.get());
      if (status == PGRES_COMMAND_OK || status == PGRES_COPY_OUT) return fail(Errc::closed, "the server ended replication");
      return fail(Errc::not_connected, "replication stream ended: " + result_message(m_conn, r.get()));
    }
    if (n == -2) return fail(Errc::not_connected, "replication stream: " + pq_message(m_conn));
    if (waited) return std::nullopt;
    // Nothing buffered: wait for the socket, then let libpq read what arrived.
    pollfd p{.fd = PQsocket(m_conn), .events = POLLIN, .revents = 0};
    const int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (rc < 0 && errno != EINTR) return fail(Errc::io_error, "poll on the replication socket", errno);
    if (rc <= 0) return std::nullopt;
    if (PQconsumeInput(m_conn) == 0) return fail(Errc::not_connected, "replication stream: " + pq_message(m_conn));
  }
}

Result<void> ReplicationConnection::send_status(Lsn written, Lsn flushed, bool reply_requested) {
  const auto msg = encode_status(written, flushed, flushed, pg_now_us(), reply_requested);
  if (PQputCopyData(m_conn, reinterpret_cast<const char*>(msg.data()), static_cast<int>(msg.size())) != 1 ||
      PQflush(m_conn) != 0) {
    return fail(Errc::not_connected, "sending the standby status: " + pq_message(m_conn));
  }
  return {};
}

}  // namespace rill::cdc
