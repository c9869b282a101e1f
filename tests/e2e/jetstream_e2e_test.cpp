// End-to-end over jetstream://: real `rill pub` / `rill sub` processes against a real
// 3-node nats-server cluster started here (tests/e2e/nats_cluster.hpp). What is checked
// is what arrived (sequence numbers printed by the handler) and what the stream holds
// (asked of the servers with libnats, not through rill).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>

#include "checks.hpp"
#include "nats_cluster.hpp"
#include "process.hpp"
#include "streams.hpp"
#include "tests/skip.hpp"

namespace rill::e2e {

namespace {

bool no_nats_server() {
  if (!nats_server_path().empty()) return false;
  rilltest::skip("nats-server is not installed (apt-get install nats-server)");
  return true;
}

// A durable `rill sub` printing text lines, its exactly-once state in its own directory.
std::unique_ptr<Process> durable_sub(const TempDir& dir, const std::string& name, const std::string& ep,
                                     std::uint64_t count, std::vector<std::string> extra = {}) {
  const auto state = dir / ("state-" + name);
  std::filesystem::create_directories(state);
  std::vector<std::string> args{"sub",          ep,        "md/",      "--durable",      name,    "--state-dir",
                                state.string(), "--count", str(count), "--idle-exit-ms", "20000", "--format",
                                "text"};
  args.insert(args.end(), extra.begin(), extra.end());
  return spawn_rill(dir, name, args);
}

// Every sequence 1..n printed exactly once, in order.
void check_all_once_in_order(const Process& sub, std::uint64_t n) {
  const auto m = parse_text(sub.out(), "md/x");
  CHECK(m.bad == 0);
  CHECK(m.seqs.size() == n);
  CHECK(is_run_from(m.seqs, 1));
}

}  // namespace

TEST_CASE(
    "a 3-replica stream created on first use carries every message in order to a durable and a volatile subscriber") {
  if (no_nats_server()) return;
  constexpr std::uint64_t n = 20000;
  TempDir dir;
  NatsCluster cluster(dir);
  const auto ep = cluster.endpoint("ORDERS", "replicas=3");
  auto durable = durable_sub(dir, "d1", ep, n);
  // backpressure: a volatile subscriber that falls behind the burst waits (its client holds
  // the backlog) instead of dropping the oldest as the default drop-oldest:1024 would.
  auto live = spawn_rill(dir, "live",
                         {"sub", ep, "md/", "--count", str(n), "--idle-exit-ms", "20000", "--format", "text",
                          "--policy", "backpressure:256"});
  // Both consumers exist before the first message: the volatile one sees it too.
  REQUIRE_MESSAGE(wait_until([&] { return cluster.consumers("ORDERS") == 2; }, 45s), live->err() << durable->err());
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n)});
  const auto p = finish_pub(*pub);
  CHECK(p.stats["sent"] == n);
  CHECK(p.stats["timeouts"] == 0);
  for (auto* sub : {durable.get(), live.get()}) {
    INFO(sub->command_line() << "\n" << sub->err().substr(0, 2000));
    const auto s = finish_sub(*sub);
    CHECK(s["received"] == n);
    CHECK(s["gaps"] == 0);
    check_all_once_in_order(*sub, n);
  }
  CHECK(cluster.messages("ORDERS") == static_cast<std::int64_t>(n));
  MESSAGE("3 replicas: " << n << " messages published in " << p.exit.seconds() << " s");
}

TEST_CASE(
    "kill -9 of the stream leader mid-stream: the durable subscriber's handler gets every message once, in order") {
  if (no_nats_server()) return;
  constexpr std::uint64_t n = 30000;
  TempDir dir;
  NatsCluster cluster(dir);
  // The publisher's resends after the loss can reach the stream many seconds late on a loaded
  // machine; the subscriber holds later messages back for them up to reorder_ms (README).
  const auto ep = cluster.endpoint("TICKS", "replicas=3&reorder_ms=30000");
  auto sub = durable_sub(dir, "d1", ep, n);
  REQUIRE_MESSAGE(wait_until([&] { return cluster.consumers("TICKS") == 1; }, 45s), sub->err());
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--rate", "6000", "--timeout-ms", "20000"});
  REQUIRE(wait_until([&] { return cluster.messages("TICKS") >= static_cast<std::int64_t>(n / 4); }, 45s));
  const int leader = cluster.leader("TICKS");
  REQUIRE(leader >= 0);
  cluster.kill(leader);
  const auto killed_at = cluster.messages("TICKS");
  // A new leader takes over while the old one is gone; then it comes back on its store.
  CHECK(wait_until(
      [&] {
        const int l = cluster.leader("TICKS");
        return l >= 0 && l != leader;
      },
      20s));
  cluster.start(leader);
  const auto p = finish_pub(*pub);
  CHECK(p.stats["sent"] == n);
  CHECK(p.stats["timeouts"] == 0);
  const auto s = finish_sub(*sub);
  CHECK(s["received"] == n);
  CHECK(s["gaps"] == 0);
  check_all_once_in_order(*sub, n);
  // Resends after the loss were de-duplicated by Nats-Msg-Id: one copy each.
  CHECK(cluster.messages("TICKS") == static_cast<std::int64_t>(n));
  MESSAGE("leader n" << leader << " killed at ~" << killed_at << " stored messages; publisher resent "
                     << p.stats["replayed"] << ", subscriber dropped " << s["duplicates"] << " repeats");
}

TEST_CASE("a persistent publisher restarted after kill -9 sends its log's tail again and the stream keeps one copy") {
  if (no_nats_server()) return;
  constexpr std::uint64_t n = 20000;
  TempDir dir;
  NatsCluster cluster(dir);
  const auto ep = cluster.endpoint("LOGGED", "replicas=3");
  // fsync always: every message handed to the stream is in the log first, so the restart
  // knows each one (under every:MS a kill -9 loses the log's last few, recorded as lost).
  const std::vector<std::string> args{"pub",
                                      ep,
                                      "md/x",
                                      "--until-seq",
                                      str(n),
                                      "--rate",
                                      "8000",
                                      "--durability",
                                      "persistent:" + (dir / "log").string(),
                                      "--fsync",
                                      "always"};
  auto first = spawn_rill(dir, "pub1", args);
  // (generous deadlines: a sanitizer build on a loaded machine is many times slower)
  REQUIRE(wait_until([&] { return cluster.messages("LOGGED") >= static_cast<std::int64_t>(n / 5); }, 45s));
  first->kill(SIGKILL);
  first->wait(5s);
  auto second = spawn_rill(dir, "pub2", args);
  const auto p = finish_pub(*second, "pub2");
  CHECK(p.stats["replayed"] > 0);  // it did send some again
  CHECK(p.stats["last_seq"] == n);
  CHECK(cluster.messages("LOGGED") == static_cast<std::int64_t>(n));
  auto sub = durable_sub(dir, "d1", ep, n);
  const auto s = finish_sub(*sub);
  CHECK(s["received"] == n);
  CHECK(s["gaps"] == 0);
  check_all_once_in_order(*sub, n);
  MESSAGE("restarted publisher resent " << p.stats["replayed"] << " messages; the stream holds " << n);
}

TEST_CASE(
    "a durable subscriber killed with kill -9 and restarted resumes: every message once into its handler, in order") {
  if (no_nats_server()) return;
  constexpr std::uint64_t n = 20000;
  TempDir dir;
  NatsCluster cluster(dir);
  const auto ep = cluster.endpoint("RESUME", "replicas=3&ack_wait_ms=2000");
  auto first = durable_sub(dir, "d1", ep, n);
  REQUIRE_MESSAGE(wait_until([&] { return cluster.consumers("RESUME") == 1; }, 45s), first->err());
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--rate", "8000"});
  REQUIRE(wait_until([&] { return line_count(*first) >= n / 10; }, 45s));
  first->kill(SIGKILL);
  first->wait(5s);
  const auto before = parse_text(first->out(), "md/x").seqs;
  // Same name, same state directory: it goes on after what its handler finished.
  auto second = spawn_rill(dir, "d1-again",
                           {"sub", ep, "md/", "--durable", "d1", "--state-dir", (dir / "state-d1").string(), "--count",
                            str(n - before.size()), "--idle-exit-ms", "20000", "--format", "text"});
  const auto p = finish_pub(*pub);
  CHECK(p.stats["sent"] == n);
  const auto s = finish_sub(*second, "second run");
  auto all = before;
  const auto after = parse_text(second->out(), "md/x");
  CHECK(after.bad == 0);
  all.insert(all.end(), after.seqs.begin(), after.seqs.end());
  CHECK(all.size() == n);
  CHECK(is_run_from(all, 1));  // the two runs' handlers together: 1..n, each once, in order
  CHECK(s["gaps"] == 0);
  MESSAGE("durable restart: first run handled " << before.size() << ", second " << after.seqs.size() << " (dropped "
                                                << s["duplicates"] << " repeats)");
}

TEST_CASE(
    "a consumer group of 3 processes shares one durable consumer; one killed midway, every message is handled once") {
  if (no_nats_server()) return;
  constexpr std::uint64_t n = 20000;
  TempDir dir;
  NatsCluster cluster(dir);
  const auto ep = cluster.endpoint("JOBS", "replicas=3&ack_wait_ms=2000");
  // The members share one state directory: the group's ledger on this host.
  const auto state = dir / "state";
  std::filesystem::create_directories(state);
  std::vector<std::unique_ptr<Process>> members;
  for (int i = 0; i < 3; ++i) {
    const std::string name = std::string(1, 'm').append(std::to_string(i));
    members.push_back(spawn_rill(dir, name,
                                 {"sub", ep, "md/", "--group", "workers", "--durable", name, "--state-dir",
                                  state.string(), "--idle-exit-ms", "20000", "--format", "text"}));
  }
  REQUIRE_MESSAGE(wait_until([&] { return cluster.consumers("JOBS") == 1; }, 45s), members[0]->err());
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", str(n), "--rate", "8000"});
  // Killed once it handled a share: what it had taken but not acknowledged goes to the others.
  // (A member idle for 20 s exits: on a loaded machine the publisher's start can take seconds.)
  REQUIRE_MESSAGE(wait_until([&] { return line_count(*members[1]) >= n / 20; }, 45s),
                  "member 1 handled " << line_count(*members[1]) << (members[1]->running() ? " and runs" : " and exited")
                                      << "; its stderr: " << members[1]->err() << "; the publisher's: " << pub->err());
  members[1]->kill(SIGKILL);
  members[1]->wait(5s);
  const auto p = finish_pub(*pub);
  CHECK(p.stats["sent"] == n);
  std::map<std::uint64_t, int> handled_by;  // seq -> member
  std::uint64_t twice = 0;
  for (int i = 0; i < 3; ++i) {
    if (i != 1) finish_sub(*members[i], members[i]->command_line());
    const auto m = parse_text(members[i]->out(), "md/x");
    CHECK(m.bad == 0);
    CHECK(m.seqs.size() > 0);  // each member got a share
    for (auto seq : m.seqs) twice += handled_by.emplace(seq, i).second ? 0 : 1;
  }
  CHECK(twice == 0);
  CHECK(handled_by.size() == n);
  CHECK(handled_by.begin()->first == 1);
  CHECK(handled_by.rbegin()->first == n);
  MESSAGE("group: member shares " << parse_text(members[0]->out(), "md/x").seqs.size() << ", "
                                  << parse_text(members[1]->out(), "md/x").seqs.size() << " (killed), "
                                  << parse_text(members[2]->out(), "md/x").seqs.size());
}

TEST_CASE(
    "a full stream (max_bytes) refuses new messages: the publisher stops with an error, nothing is dropped silently") {
  if (no_nats_server()) return;
  TempDir dir;
  NatsCluster cluster(dir);
  // Room for a few hundred 100-byte envelopes; the stream refuses the rest (discard new).
  const auto ep = cluster.endpoint("SMALL", "replicas=3&max_bytes=65536&window=16");
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/x", "--count", "5000", "--size", "64"});
  const auto e = pub->wait(60s);
  INFO(pub->err());
  CHECK(e.code == 1);
  CHECK(pub->err().find("refused") != std::string::npos);
  const auto stored = cluster.messages("SMALL");
  CHECK(stored > 0);
  CHECK(stored < 5000);
  // What the stream holds is a gap-free run from the first message: nothing in between was lost.
  auto sub = durable_sub(dir, "d1", ep, static_cast<std::uint64_t>(stored));
  const auto s = finish_sub(*sub);
  CHECK(s["received"] == static_cast<std::uint64_t>(stored));
  CHECK(s["gaps"] == 0);
  MESSAGE("full stream: " << stored << " messages stored, then the publisher stopped: "
                          << pub->err().substr(pub->err().find("rill: publish failed")).substr(0, 160));
}

TEST_CASE("TLS: tls_ca, tls_cert and tls_key carry a stream end to end; plain, certificate-less and wrongly trusting "
          "clients are refused") {
  if (no_nats_server()) return;
  TempDir dir;
  const auto d = dir.path().string();
  // A CA, the server's certificate (for localhost) and a client certificate, and a second CA
  // that signed neither, all made by openssl here.
  Process openssl({"/bin/sh", "-c",
                   "cd '" + d +
                       "' && ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'"
                       " && openssl req -x509 $ec -keyout ca.key -out ca.crt -subj /CN=rill-test-ca -days 1"
                       " && openssl req -x509 $ec -keyout other.key -out other.crt -subj /CN=other-ca -days 1"
                       " && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > srv.cnf"
                       " && openssl req -new $ec -keyout srv.key -out srv.csr -subj /CN=localhost"
                       " && openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 1"
                       " -extfile srv.cnf"
                       " && openssl req -new $ec -keyout client.key -out client.csr -subj /CN=rill-client"
                       " && openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt"
                       " -days 1"},
                  dir.path(), "openssl");
  const auto made = openssl.wait(60s);
  REQUIRE_MESSAGE(made.ok(), made.describe() << openssl.err());
  // One JetStream node that speaks only TLS and verifies its clients' certificates.
  const int port = free_port();
  Process server({nats_server_path(), "-js", "-a", "127.0.0.1", "-p", std::to_string(port), "-sd", d + "/store",
                  "--tls", "--tlscert", d + "/srv.crt", "--tlskey", d + "/srv.key", "--tlscacert", d + "/ca.crt",
                  "--tlsverify"},
                 dir.path(), "nats-tls");
  REQUIRE_MESSAGE(wait_until([&] { return server.err().find("Server is ready") != std::string::npos; }, 30s),
                  server.err());
  const std::string base = "jetstream://localhost:" + std::to_string(port) + "/SEC";
  const std::string client = "&tls_cert=" + d + "/client.crt&tls_key=" + d + "/client.key";
  const std::string good = base + "?tls_ca=" + d + "/ca.crt" + client;
  constexpr std::uint64_t n = 500;
  auto pub = spawn_rill(dir, "pub", {"pub", good, "md/x", "--count", str(n)});
  const auto p = finish_pub(*pub);
  CHECK(p.stats["sent"] == n);
  auto sub = durable_sub(dir, "d1", good, n);
  const auto st = finish_sub(*sub);
  CHECK(st["received"] == n);
  check_all_once_in_order(*sub, n);

  const auto refused = [&](const std::string& name, const std::string& ep, const std::string& reason) {
    auto r = spawn_rill(dir, name, {"pub", ep, "md/x", "--count", "1"});
    const auto e = r->wait(45s);
    INFO(name << ": " << r->err());
    CHECK(!e.ok());
    CHECK(r->err().find(reason) != std::string::npos);
  };
  // Without tls_*: the server demands TLS, nats.c upgrades, and the system's CAs do not know ours.
  refused("plain", base, "SSL handshake error");
  refused("no-client-cert", base + "?tls_ca=" + d + "/ca.crt", "cannot connect");  // the server hangs up (--tlsverify)
  refused("other-ca", base + "?tls_ca=" + d + "/other.crt" + client, "unable to get local issuer certificate");
  refused("cert-without-key", base + "?tls_cert=" + d + "/client.crt", "tls_cert and tls_key go together");
  refused("missing-ca", base + "?tls_ca=" + d + "/nope.crt", "TLS set-up");
}

TEST_CASE("bad jetstream endpoints and an unreachable server fail with a reason") {
  if (no_nats_server()) return;
  TempDir dir;
  const auto fails_with = [&](const std::string& name, std::vector<std::string> args, const std::string& reason) {
    auto p = spawn_rill(dir, name, std::move(args));
    const auto e = p->wait(45s);
    INFO(name << ": " << p->err());
    CHECK(!e.ok());
    CHECK(p->err().find(reason) != std::string::npos);
  };
  const auto port = std::to_string(free_port());  // nobody listens there
  fails_with("unreachable", {"pub", "jetstream://127.0.0.1:" + port + "/S", "md/x", "--count", "1"}, "cannot connect");
  fails_with("no-stream", {"pub", "jetstream://127.0.0.1:" + port, "md/x", "--count", "1"},
             "needs servers and a stream");
  fails_with("bad-server", {"pub", "jetstream://127.0.0.1:x/S", "md/x", "--count", "1"}, "is not HOST:PORT");
  fails_with("bad-replicas", {"pub", "jetstream://127.0.0.1:" + port + "/S?replicas=9", "md/x", "--count", "1"},
             "replicas must be 1..5");
  fails_with("bad-stream", {"pub", "jetstream://127.0.0.1:" + port + "/a.b", "md/x", "--count", "1"},
             "stream name may hold only");
  fails_with("bad-option", {"sub", "jetstream://127.0.0.1:" + port + "/S?color=red", "md/"}, "unknown option 'color'");
}

}  // namespace rill::e2e

RILL_DOCTEST_MAIN_WITH_SKIPS
