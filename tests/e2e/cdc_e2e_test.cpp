// rill cdc against a real PostgreSQL 15 started here (initdb in a temp dir, wal_level=logical,
// a unix socket in that dir; as the `postgres` user when run as root). A seeded workload of
// multi-statement transactions over three tables runs while `rill cdc` is killed with
// SIGKILL at random moments and restarted, and PostgreSQL is restarted (-m immediate) once
// between two halves. At the end each table's log, read back with `rill log inspect`, must
// equal what the workload committed (op, id, value), in commit order, with no gap and no
// duplicate; and the transactions log must hold one BEGIN/END pair per transaction, with
// the END's per-table counts. Skips (exit 77) only where PostgreSQL's binaries are absent.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "process.hpp"
#include "../skip.hpp"
#include "../test_seed.hpp"

namespace rill::e2e {

namespace {

namespace fs = std::filesystem;

const fs::path pg_bin = "/usr/lib/postgresql/15/bin";

// A throwaway PostgreSQL cluster in `dir`/pg, stopped (immediately) on destruction.
class PgServer {
 public:
  /// `tls_dir`: holds server.crt and server.key; the server then listens on 127.0.0.1 too,
  /// where it takes only TLS connections (hostssl), and refuses plain TCP (hostnossl reject).
  explicit PgServer(const TempDir& dir, const fs::path& tls_dir = {})
      : m_tmp(dir), m_dir(dir / "pg"), m_port(free_port()) {
    fs::create_directories(m_dir);
    // postgres refuses to run as root: the cluster belongs to the postgres user then.
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      REQUIRE_MESSAGE(pw != nullptr, "running as root needs a postgres user (Debian's postgresql package adds it)");
      for (const auto& p : {dir.path(), m_dir}) REQUIRE(::chown(p.c_str(), pw->pw_uid, pw->pw_gid) == 0);
      m_as_postgres = {"/usr/sbin/runuser", "-u", "postgres", "--"};
    }
    run("initdb", {(pg_bin / "initdb").string(), "-D", data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"});
    std::FILE* conf = std::fopen((m_dir / "data/postgresql.conf").c_str(), "a");
    REQUIRE(conf != nullptr);
    std::fprintf(conf, "wal_level = logical\nlisten_addresses = ''\nunix_socket_directories = '%s'\nport = %d\n"
                       "fsync = off\nmax_wal_senders = 4\nmax_replication_slots = 4\n",
                 m_dir.c_str(), m_port);
    if (!tls_dir.empty()) {
      // The key must belong to the server's user and be private to it.
      for (const char* f : {"server.crt", "server.key"}) fs::copy_file(tls_dir / f, m_dir / "data" / f);
      ::chmod((m_dir / "data/server.key").c_str(), 0600);
      if (const passwd* pw = ::geteuid() == 0 ? ::getpwnam("postgres") : nullptr) {
        for (const char* f : {"server.crt", "server.key"}) REQUIRE(::chown((m_dir / "data" / f).c_str(), pw->pw_uid, pw->pw_gid) == 0);
      }
      std::fprintf(conf, "listen_addresses = '127.0.0.1'\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
      const auto hba_path = m_dir / "data/pg_hba.conf";
      const auto hba = read_file(hba_path);
      std::FILE* h = std::fopen(hba_path.c_str(), "w");
      REQUIRE(h != nullptr);
      std::fprintf(h, "hostnossl all all 127.0.0.1/32 reject\nhostnossl replication all 127.0.0.1/32 reject\n"
                      "hostssl all all 127.0.0.1/32 trust\nhostssl replication all 127.0.0.1/32 trust\n%s", hba.c_str());
      std::fclose(h);
    }
    std::fclose(conf);
    start();
  }
  ~PgServer() {
    Process stop(pg({(pg_bin / "pg_ctl").string(), "-D", data(), "-m", "immediate", "stop"}), m_tmp.path(), "pg_stop");
    (void)stop.wait(30s);
  }
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  void start() { run("pg_start", {(pg_bin / "pg_ctl").string(), "-D", data(), "-l", (m_dir / "server.log").string(), "-w", "-t", "30", "start"}); }
  /// A crash of the server: every connection is cut, nothing is shut down cleanly.
  void restart_immediate() {
    run("pg_crash", {(pg_bin / "pg_ctl").string(), "-D", data(), "-m", "immediate", "-w", "stop"});
    start();
  }
  /// Over TCP on 127.0.0.1 with `query` (e.g. sslmode=...) appended.
  [[nodiscard]] std::string tcp_uri(const std::string& query) const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(m_port) + "/postgres?" + query;
  }
  [[nodiscard]] std::string uri() const {
    return "postgresql://postgres@/postgres?host=" + m_dir.string() + "&port=" + std::to_string(m_port);
  }

 private:
  std::string data() const { return (m_dir / "data").string(); }
  std::vector<std::string> pg(std::vector<std::string> args) const {
    std::vector<std::string> all = m_as_postgres;
    all.insert(all.end(), args.begin(), args.end());
    return all;
  }
  void run(const std::string& name, std::vector<std::string> args) {
    Process p(pg(std::move(args)), m_tmp.path(), name);
    const auto st = p.wait(60s);
    REQUIRE_MESSAGE(st.ok(), name, ": ", st.describe(), "\n", p.err(), p.out(), read_file(m_dir / "server.log"));
  }

  const TempDir& m_tmp;
  fs::path m_dir;
  int m_port;
  std::vector<std::string> m_as_postgres;
};

// One libpq connection running the workload's SQL.
class Db {
 public:
  explicit Db(const std::string& uri) : m_conn(PQconnectdb(uri.c_str())) {
    REQUIRE_MESSAGE(PQstatus(m_conn) == CONNECTION_OK, PQerrorMessage(m_conn));
  }
  ~Db() { PQfinish(m_conn); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  /// Runs `sql` (one or more statements); the first column of the last result's first row.
  std::string exec(const std::string& sql) {
    PGresult* r = PQexec(m_conn, sql.c_str());
    const auto status = PQresultStatus(r);
    std::string value = status == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    const std::string error = PQresultErrorMessage(r);
    PQclear(r);
    REQUIRE_MESSAGE((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK), sql, ": ", error);
    return value;
  }

 private:
  PGconn* m_conn;
};

constexpr std::array<const char*, 3> tables{"a", "b", "c"};

struct Event {
  char op = 0;
  long id = 0;
  std::string v;
  bool operator==(const Event&) const = default;
};

// What the workload committed, in commit order (one connection, so commit order is the
// order it ran in): the events per table and each transaction's count per table.
struct Model {
  std::array<std::vector<Event>, 3> events;
  std::array<std::vector<long>, 3> live;
  std::array<long, 3> next_id{};
  std::vector<std::map<std::string, std::uint64_t>> transactions;
};

// One random transaction of 1..4 statements; returns its SQL and records it in `m`.
std::string random_transaction(Model& m, std::mt19937_64& rng, int n) {
  std::string sql = "BEGIN;";
  std::map<std::string, std::uint64_t> counts;
  const int ops = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < ops; ++k) {
    const auto t = rng() % 3;
    auto& live = m.live[t];
    const auto r = rng() % 10;
    const std::string v = "t" + std::to_string(n) + "o" + std::to_string(k);
    const std::string table = tables[t];
    if (r < 5 || live.empty()) {
      const long id = ++m.next_id[t];
      live.push_back(id);
      sql += "INSERT INTO " + table + " VALUES (" + std::to_string(id) + ", '" + v + "');";
      m.events[t].push_back({'c', id, v});
    } else {
      const auto at = rng() % live.size();
      const long id = live[at];
      if (r < 8) {
        sql += "UPDATE " + table + " SET v = '" + v + "' WHERE id = " + std::to_string(id) + ";";
        m.events[t].push_back({'u', id, v});
      } else {
        live[at] = live.back();
        live.pop_back();
        sql += "DELETE FROM " + table + " WHERE id = " + std::to_string(id) + ";";
        m.events[t].push_back({'d', id, ""});
      }
    }
    ++counts["public." + table];
  }
  m.transactions.push_back(counts);
  return sql + "COMMIT;";
}

// The JSON string starting at `at` (just past its opening quote), unescaped.
std::string json_string_at(std::string_view s, std::size_t at) {
  std::string out;
  for (std::size_t i = at; i < s.size() && s[i] != '"'; ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      ++i;
      out += s[i] == 'n' ? '\n' : s[i];
    } else {
      out += s[i];
    }
  }
  return out;
}

long number_after(std::string_view s, std::string_view key) {
  const auto at = s.find(key);
  REQUIRE_MESSAGE(at != std::string_view::npos, "no ", key, " in ", s);
  return std::stol(std::string(s.substr(at + key.size(), 20)));
}

// Every payload of the log of `topic`, in log order; the log's sequences must be 1..n.
std::vector<std::string> read_topic(const TempDir& dir, const fs::path& logs, const std::string& topic) {
  std::string name = topic;
  for (std::size_t p; (p = name.find('/')) != std::string::npos;) name.replace(p, 1, "%2F");
  auto p = spawn_rill(dir, "inspect-" + name, {"log", "inspect", (logs / name).string()});
  const auto st = p->wait(60s);
  REQUIRE_MESSAGE(st.ok(), st.describe(), p->err());
  std::vector<std::string> payloads;
  const auto out = p->out();
  for (const auto line : lines(out)) {
    if (line.empty()) continue;
    CHECK(json_u64(line, "seq") == payloads.size() + 1);
    const auto at = line.find("\"payload\":\"");
    REQUIRE(at != std::string_view::npos);
    payloads.push_back(json_string_at(line, at + 11));
  }
  return payloads;
}

Event parse_event(std::string_view payload) {
  Event e;
  const auto op = payload.find("\"op\":\"");
  REQUIRE(op != std::string_view::npos);
  e.op = payload[op + 6];
  if (e.op == 'd') {
    e.id = number_after(payload, "\"before\":{\"id\":");
  } else if (e.op != 't') {
    e.id = number_after(payload, "\"after\":{\"id\":");
    const auto v = payload.find("\"v\":\"");
    REQUIRE(v != std::string_view::npos);
    e.v = json_string_at(payload, v + 5);
  }
  return e;
}

}  // namespace

TEST_CASE("rill cdc: every change exactly once, in commit order, across kill -9 and a PostgreSQL crash") {
  if (!fs::exists(pg_bin / "postgres")) {
    rilltest::skip("no PostgreSQL 15 binaries in " + pg_bin.string() + " (apt-get install postgresql)");
    return;
  }
  std::mt19937_64 rng(rilltest::test_seed());
  TempDir dir;
  PgServer pg(dir);
  auto db = std::make_unique<Db>(pg.uri());
  db->exec("CREATE TABLE a (id bigint PRIMARY KEY, v text); CREATE TABLE b (id bigint PRIMARY KEY, v text);"
           "CREATE TABLE c (id bigint PRIMARY KEY, v text); CREATE PUBLICATION pub FOR TABLE a, b, c;");
  const fs::path logs = dir / "logs";
  const std::string endpoint = tcp_endpoint(free_port());
  int runs = 0;
  std::uint64_t skipped = 0;  // resent messages the restarted runs found in their logs
  int reconnects = 0;         // connection losses a run retried (the server crash)
  auto count_skipped = [&](const Process& p) {
    const auto err = p.err();
    for (const auto line : lines(err)) {
      skipped += json_u64(line, "resent_skipped").value_or(0);
      reconnects += line.find("retrying in") != std::string_view::npos ? 1 : 0;
    }
  };
  auto start_cdc = [&] {
    return spawn_rill(dir, "cdc" + std::to_string(runs++),
                      {"cdc", pg.uri(), "--slot", "rill_slot", "--publication", "pub", "--publish", endpoint,
                       "--durability", "persistent:" + logs.string(), "--status-ms", "20", "--max-backoff-ms", "300"});
  };
  auto cdc = start_cdc();
  // The slot must exist before the workload: what commits earlier is not in it.
  REQUIRE_MESSAGE(wait_until([&] { return cdc->err().find("\"streaming\"") != std::string::npos; }, 20s), cdc->err());
  CHECK(cdc->err().find("\"created_slot\":\"rill_slot\"") != std::string::npos);

  Model model;
  int kills = 0;
  int n = 0;
  // The workload runs in a thread; meanwhile rill cdc is killed at random moments.
  auto phase = [&](int transactions, bool truncate_midway) {
    std::vector<std::string> sql;
    for (int i = 0; i < transactions; ++i, ++n) {
      if (truncate_midway && i == transactions / 2) {
        sql.push_back("TRUNCATE c;");
        model.live[2].clear();
        model.events[2].push_back({'t', 0, ""});
        model.transactions.push_back({{"public.c", 1}});
        continue;
      }
      sql.push_back(random_transaction(model, rng, n));
    }
    std::atomic<bool> done{false};
    std::thread work([&] {
      for (const auto& s : sql) {
        db->exec(s);
        std::this_thread::sleep_for(2ms);
      }
      done = true;
    });
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(60 + rng() % 240));
      cdc->kill(SIGKILL);
      (void)cdc->wait(10s);
      count_skipped(*cdc);
      ++kills;
      cdc = start_cdc();
    }
    work.join();
  };
  phase(250, false);
  // The server crashes under a running rill cdc, which reconnects.
  db.reset();
  pg.restart_immediate();
  db = std::make_unique<Db>(pg.uri());
  phase(250, true);
  // A last transaction reads a WAL position inside itself: once the slot confirms past
  // it, rill cdc has every transaction durably in its logs.
  db->exec("BEGIN; INSERT INTO a VALUES (" + std::to_string(++model.next_id[0]) + ", 'last');");
  model.events[0].push_back({'c', model.next_id[0], "last"});
  model.transactions.push_back({{"public.a", 1}});
  const std::string inside = db->exec("SELECT pg_current_wal_insert_lsn()::text");
  db->exec("COMMIT;");
  const bool confirmed = wait_until(
      [&] {
        return db->exec("SELECT confirmed_flush_lsn > '" + inside +
                        "'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'rill_slot'") == "t";
      },
      40s);
  REQUIRE_MESSAGE(confirmed, cdc->err());
  cdc->kill(SIGTERM);
  const auto st = cdc->wait(20s);
  CHECK_MESSAGE(st.ok(), st.describe(), cdc->err());
  count_skipped(*cdc);
  MESSAGE("transactions: ", model.transactions.size(), ", kills of rill cdc: ", kills,
          ", resent messages skipped: ", skipped, ", reconnects: ", reconnects, ", last run: ", parse_stats(cdc->err()).line);
  CHECK(kills >= 4);
  // The crashed server resends from the slot position it last saved: the skip is exercised.
  CHECK(skipped > 0);
  // Not a verdict: in two ASan runs no rill cdc reported retrying after the crash (one waited
  // 20 s for it); the runs after it connect to the restarted server and skip what it resends
  // (checked above). README "Not done yet" tracks it.
  if (reconnects == 0) MESSAGE("no run of rill cdc reported retrying after the server crash");

  for (std::size_t t = 0; t < tables.size(); ++t) {
    const auto payloads = read_topic(dir, logs, std::string("cdc/public/") + tables[t]);
    std::vector<Event> got;
    for (const auto& p : payloads) got.push_back(parse_event(p));
    CHECK_MESSAGE(got.size() == model.events[t].size(), "table ", tables[t]);
    const auto n_cmp = std::min(got.size(), model.events[t].size());
    for (std::size_t i = 0; i < n_cmp; ++i) {
      REQUIRE_MESSAGE(got[i] == model.events[t][i], "table ", tables[t], " event ", i, ": got ", got[i].op, got[i].id,
                      " ", got[i].v, ", committed ", model.events[t][i].op, model.events[t][i].id, " ",
                      model.events[t][i].v);
    }
  }
  // One BEGIN and one END per transaction, in commit order, the END counting per table.
  const auto markers = read_topic(dir, logs, "cdc/transactions");
  REQUIRE(markers.size() == 2 * model.transactions.size());
  long last_lsn = -1;
  for (std::size_t i = 0; i < model.transactions.size(); ++i) {
    const auto& begin = markers[2 * i];
    const auto& end = markers[2 * i + 1];
    REQUIRE(begin.find("\"status\":\"BEGIN\"") != std::string::npos);
    REQUIRE(end.find("\"status\":\"END\"") != std::string::npos);
    const auto id = begin.substr(begin.find("\"id\":\"") + 6);
    CHECK(end.find("\"id\":\"" + id.substr(0, id.find('"')) + "\"") != std::string::npos);
    const long lsn = std::stol(id.substr(id.find(':') + 1));
    CHECK(lsn > last_lsn);
    last_lsn = lsn;
    std::uint64_t total = 0;
    for (const auto& [table, count] : model.transactions[i]) {
      CHECK_MESSAGE(end.find("{\"data_collection\":\"" + table + "\",\"event_count\":" + std::to_string(count) + "}") !=
                        std::string::npos,
                    "transaction ", i, ": ", end);
      total += count;
    }
    CHECK(number_after(end, "\"event_count\":") == static_cast<long>(total));
  }
}

TEST_CASE("rill cdc --snapshot initial: no row missed or doubled at the seam with the stream while writes go on") {
  if (!fs::exists(pg_bin / "postgres")) {
    rilltest::skip("no PostgreSQL 15 binaries in " + pg_bin.string() + " (apt-get install postgresql)");
    return;
  }
  std::mt19937_64 rng(rilltest::test_seed() ^ 0x5eed);
  TempDir dir;
  PgServer pg(dir);
  Db db(pg.uri());
  constexpr long rows = 2000;
  db.exec("CREATE TABLE s (id bigint PRIMARY KEY, v text); CREATE PUBLICATION pub FOR TABLE s;"
          "INSERT INTO s SELECT i, 'v' || i FROM generate_series(1, " + std::to_string(rows) + ") i;");
  // Writes go on from before the slot exists until after the snapshot ended.
  std::atomic<bool> stop{false};
  std::atomic<long> writes{0};
  std::thread writer([&, seed = rng()] {
    Db w(pg.uri());
    std::mt19937_64 r(seed);
    long next = rows;
    while (!stop) {
      const long id = 1 + static_cast<long>(r() % static_cast<std::uint64_t>(next));
      switch (r() % 3) {
        case 0: w.exec("INSERT INTO s VALUES (" + std::to_string(++next) + ", 'new')"); break;
        case 1: w.exec("UPDATE s SET v = 'w" + std::to_string(writes) + "' WHERE id = " + std::to_string(id)); break;
        default: w.exec("DELETE FROM s WHERE id = " + std::to_string(id)); break;
      }
      ++writes;
      std::this_thread::sleep_for(1ms);
    }
  });
  const fs::path logs = dir / "logs";
  auto cdc = spawn_rill(dir, "cdc", {"cdc", pg.uri(), "--slot", "snap", "--publication", "pub", "--publish",
                                     tcp_endpoint(free_port()), "--durability", "persistent:" + logs.string(),
                                     "--snapshot", "initial", "--status-ms", "20"});
  const bool streaming = wait_until([&] { return cdc->err().find("\"streaming\"") != std::string::npos; }, 60s);
  const long writes_at_stream = writes;
  std::this_thread::sleep_for(300ms);
  stop = true;
  writer.join();
  REQUIRE_MESSAGE(streaming, cdc->err());
  const std::string inside = db.exec("BEGIN; INSERT INTO s VALUES (-1, 'last'); SELECT pg_current_wal_insert_lsn()::text");
  db.exec("COMMIT");
  REQUIRE_MESSAGE(wait_until([&] {
                    return db.exec("SELECT confirmed_flush_lsn > '" + inside +
                                   "'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'snap'") == "t";
                  },
                  40s),
                  cdc->err());
  cdc->kill(SIGTERM);
  REQUIRE(cdc->wait(20s).ok());

  // Applying the log in order must rebuild the table exactly: a row seen twice by snapshot
  // and stream, or changed before it was seen, fails here.
  std::map<long, std::string> table;
  std::size_t snapshot_rows = 0;
  for (const auto& p : read_topic(dir, logs, "cdc/public/s")) {
    const auto e = parse_event(p);
    if (e.op == 'r' || e.op == 'c') {
      snapshot_rows += e.op == 'r';
      REQUIRE_MESSAGE(table.emplace(e.id, e.v).second, "row ", e.id, " arrived twice (", e.op, ")");
    } else if (e.op == 'u') {
      REQUIRE_MESSAGE(table.contains(e.id), "update of row ", e.id, " that is not there");
      table[e.id] = e.v;
    } else {
      REQUIRE_MESSAGE(table.erase(e.id) == 1, "delete of row ", e.id, " that is not there");
    }
  }
  std::map<long, std::string> expect;
  {
    PGconn* c = PQconnectdb(pg.uri().c_str());
    PGresult* r = PQexec(c, "SELECT id, v FROM s");
    REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK);
    for (int i = 0; i < PQntuples(r); ++i) expect.emplace(std::stol(PQgetvalue(r, i, 0)), PQgetvalue(r, i, 1));
    PQclear(r);
    PQfinish(c);
  }
  MESSAGE("snapshot rows: ", snapshot_rows, ", concurrent writes: ", writes.load(), " (", writes_at_stream,
          " before streaming began), rows at the end: ", expect.size());
  CHECK(snapshot_rows >= rows / 2);
  CHECK(writes_at_stream > 0);
  CHECK(table == expect);
  const auto markers = read_topic(dir, logs, "cdc/transactions");
  REQUIRE_FALSE(markers.empty());
  CHECK(markers.front().find("\"status\":\"SNAPSHOT\"") != std::string::npos);
  CHECK(number_after(markers.front(), "\"event_count\":") == static_cast<long>(snapshot_rows));
}

// A CA and a server certificate for 127.0.0.1 made by openssl in `dir`/NAME (ca.crt,
// server.crt, server.key).
fs::path make_certificates(const TempDir& dir, const std::string& name) {
  const auto d = dir / name;
  fs::create_directories(d);
  Process p({"/bin/sh", "-c",
             "cd '" + d.string() +
                 "' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key"
                 " -out ca.crt -subj /CN=rill-test-ca -days 1"
                 " && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key"
                 " -out server.csr -subj /CN=127.0.0.1"
                 " && printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf"
                 " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt"
                 " -days 1 -extfile ext.cnf"},
            dir.path(), "openssl-" + name);
  const auto st = p.wait(60s);
  REQUIRE_MESSAGE(st.ok(), st.describe(), p.err());
  return d;
}

TEST_CASE("rill cdc over TLS: sslmode and sslrootcert pass through to libpq; plain and unverified connections fail") {
  if (!fs::exists(pg_bin / "postgres")) {
    rilltest::skip("no PostgreSQL 15 binaries in " + pg_bin.string() + " (apt-get install postgresql)");
    return;
  }
  TempDir dir;
  const auto certs = make_certificates(dir, "tls");
  const auto stranger = make_certificates(dir, "other");  // a CA that did not sign the server's certificate
  PgServer pg(dir, certs);
  Db db(pg.uri());
  db.exec("CREATE TABLE t (id int PRIMARY KEY, v text); CREATE PUBLICATION pub FOR TABLE t;");
  const std::string endpoint = tcp_endpoint(free_port());
  auto cdc = [&](const std::string& name, const std::string& uri, const std::string& slot) {
    return spawn_rill(dir, name, {"cdc", uri, "--slot", slot, "--publication", "pub", "--publish", endpoint,
                                  "--durability", "persistent:" + (dir / ("logs-" + name)).string(),
                                  "--max-backoff-ms", "200", "--status-ms", "20", "--snapshot", "initial"});
  };
  db.exec("INSERT INTO t VALUES (1, 'row-from-snapshot')");
  {
    INFO("verify-full against the test's CA: the snapshot and the stream both come over TLS");
    auto p = cdc("tls", pg.tcp_uri("sslmode=verify-full&sslrootcert=" + (certs / "ca.crt").string()), "tls");
    REQUIRE_MESSAGE(wait_until([&] { return p->err().find("\"streaming\"") != std::string::npos; }, 30s), p->err());
    // The server says the replication connection is encrypted.
    CHECK(db.exec("SELECT bool_and(s.ssl)::text FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)") == "true");
    const std::string inside =
        db.exec("BEGIN; INSERT INTO t VALUES (2, 'row-from-stream'); SELECT pg_current_wal_insert_lsn()::text");
    db.exec("COMMIT");
    REQUIRE_MESSAGE(wait_until([&] {
                      return db.exec("SELECT (confirmed_flush_lsn > '" + inside +
                                     "'::pg_lsn)::text FROM pg_replication_slots WHERE slot_name = 'tls'") == "true";
                    },
                    30s),
                    p->err());
    p->kill(SIGTERM);
    REQUIRE(p->wait(20s).ok());
    std::string name = "cdc%2Fpublic%2Ft";
    auto inspect = spawn_rill(dir, "inspect", {"log", "inspect", (dir / "logs-tls" / name).string()});
    REQUIRE(inspect->wait(60s).ok());
    const auto out = inspect->out();
    CHECK(out.find("row-from-snapshot") != std::string::npos);
    CHECK(out.find("row-from-stream") != std::string::npos);
  }
  {
    INFO("sslmode=disable: the server refuses a plain connection; rill cdc says so and retries");
    auto p = cdc("plain", pg.tcp_uri("sslmode=disable"), "plain");
    REQUIRE_MESSAGE(wait_until([&] { return p->err().find("retrying in") != std::string::npos; }, 20s), p->err());
    CHECK_MESSAGE(p->err().find("no encryption") != std::string::npos, p->err());
    p->kill(SIGTERM);
    CHECK(p->wait(10s).ok());
  }
  {
    INFO("verify-full against a CA that did not sign the server's certificate: refused by the client");
    auto p = cdc("unverified", pg.tcp_uri("sslmode=verify-full&sslrootcert=" + (stranger / "ca.crt").string()),
                 "unverified");
    REQUIRE_MESSAGE(wait_until([&] { return p->err().find("retrying in") != std::string::npos; }, 20s), p->err());
    CHECK_MESSAGE(p->err().find("certificate verify failed") != std::string::npos, p->err());
    p->kill(SIGTERM);
    CHECK(p->wait(10s).ok());
  }
}

TEST_CASE("rill cdc: clear errors for a bad URI, a missing publication, a server away and a dropped slot") {
  if (!fs::exists(pg_bin / "postgres")) {
    rilltest::skip("no PostgreSQL 15 binaries in " + pg_bin.string() + " (apt-get install postgresql)");
    return;
  }
  TempDir dir;
  PgServer pg(dir);
  Db db(pg.uri());
  db.exec("CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE t;");
  const std::string endpoint = tcp_endpoint(free_port());
  const std::string logs = "persistent:" + (dir / "logs").string();
  auto cdc = [&](const std::string& name, const std::string& uri, const std::string& publication) {
    return spawn_rill(dir, name, {"cdc", uri, "--slot", "s", "--publication", publication, "--publish", endpoint,
                                  "--durability", logs, "--max-backoff-ms", "200", "--status-ms", "20"});
  };

  SUBCASE("a URI libpq cannot parse is a usage error") {
    auto p = cdc("bad_uri", "postgresql://[::1", "pub");
    const auto st = p->wait(10s);
    CHECK(st.code == 2);
    CHECK(p->err().find("bad PostgreSQL URI") != std::string::npos);
  }
  SUBCASE("a missing publication ends the run and says how to create it") {
    auto p = cdc("no_pub", pg.uri(), "nopub");
    const auto st = p->wait(20s);
    CHECK(st.code == 1);
    CHECK_MESSAGE(p->err().find("publication 'nopub' does not exist") != std::string::npos, p->err());
  }
  SUBCASE("a server that is away is retried with back-off until it is there") {
    const int port = free_port();
    auto p = cdc("away", "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/postgres", "pub");
    REQUIRE_MESSAGE(wait_until([&] { return p->err().find("retrying in 200 ms") != std::string::npos; }, 15s), p->err());
    CHECK(p->err().find("cannot connect to PostgreSQL") != std::string::npos);
    CHECK(p->running());
    p->kill(SIGTERM);
    CHECK(p->wait(10s).ok());
  }
  SUBCASE("a slot dropped after changes were captured is refused, not silently recreated") {
    auto first = cdc("first", pg.uri(), "pub");
    REQUIRE(wait_until([&] { return first->err().find("\"streaming\"") != std::string::npos; }, 20s));
    db.exec("INSERT INTO t VALUES (1)");
    REQUIRE(wait_until([&] { return first->err().find("cdc/public/t") != std::string::npos; }, 20s));
    first->kill(SIGTERM);
    REQUIRE(first->wait(20s).ok());
    db.exec("SELECT pg_drop_replication_slot('s')");
    auto second = cdc("second", pg.uri(), "pub");
    const auto st = second->wait(20s);
    CHECK(st.code == 1);
    CHECK_MESSAGE(second->err().find("slot 's' is missing, but the logs") != std::string::npos, second->err());
  }
}

}  // namespace rill::e2e

RILL_DOCTEST_MAIN_WITH_SKIPS
