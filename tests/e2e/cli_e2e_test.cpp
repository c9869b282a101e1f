// End-to-end: the `rill` command's contract on its own — usage errors, and hex output
// that flatc decodes with nothing but the envelope schema.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <string>
#include <vector>

#include "process.hpp"
#include "streams.hpp"

namespace rill::e2e {

TEST_CASE("usage errors: exit 2 and exactly one 'rill: ' line on stderr") {
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());  // nothing listens: none of these may get that far
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"sub"},
      {"sub", ep},
      {"sub", ep, "md/", "--policy", "bogus:1"},
      {"sub", ep, "md/", "--policy", "drop-oldest:0"},
      {"sub", ep, "md/", "--policy", "backpressure:many"},
      {"sub", ep, "md/", "--format", "xml"},
      {"sub", ep, "md/", "--frobnicate"},
      {"sub", ep, "md/", "--count"},
      {"pub", "tcp://nope", "TOPIC"},
      {"pub", "carrier-pigeon://127.0.0.1:1", "TOPIC"},
      {"pub", ep},
      {"pub", ep, "md/x", "--count", "ten"},
      {"pub", ep, "md/x", "--data", "a", "--stdin"},
      {"pub", ep, "md/x", "--frobnicate"},
  };
  int i = 0;
  for (const auto& args : cases) {
    auto p = spawn_rill(dir, "usage" + std::to_string(i++), args);
    const auto e = p->wait(10s);
    const auto err = p->err();
    std::string cmd = "rill";
    for (const auto& a : args) cmd += " " + a;
    INFO(cmd);
    INFO("stderr: " << err);
    CHECK(e.describe() == "exit 2");
    CHECK(err.starts_with("rill: "));
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
    CHECK(err.ends_with("\n"));
    CHECK(p->out().empty());
  }
}

TEST_CASE("rill --help lists every command; each command explains its options") {
  TempDir dir;
  const std::vector<std::string> commands = {"pub", "sub", "serve", "cdc", "perf", "log", "nexmark", "query", "transports", "keygen", "help"};
  auto top = spawn_rill(dir, "help", {"--help"});
  CHECK(top->wait(10s).describe() == "exit 0");
  const auto page = top->out();
  INFO("rill --help: " << page);
  for (const auto& c : commands) CHECK(page.find("\n  " + c + " ") != std::string::npos);
  CHECK(top->err().empty());
  int i = 0;
  for (const auto& c : commands) {
    if (c == "help") continue;
    for (const auto& args : {std::vector<std::string>{"help", c}, std::vector<std::string>{c, "--help"}}) {
      auto p = spawn_rill(dir, "help" + std::to_string(i++), args);
      INFO("rill " << args[0] << " " << args[1]);
      CHECK(p->wait(10s).describe() == "exit 0");
      CHECK(p->out().starts_with("usage: rill " + c));
    }
  }
  // The units users asked about are stated: retry delays without a unit are milliseconds.
  auto sub = spawn_rill(dir, "help_sub", {"help", "sub"});
  CHECK(sub->wait(10s).describe() == "exit 0");
  CHECK(sub->out().find("--retry-schedule") != std::string::npos);
  CHECK(sub->out().find("milliseconds") != std::string::npos);
}

TEST_CASE("rill transports lists each compiled transport with what it supports") {
  TempDir dir;
  auto p = spawn_rill(dir, "transports", {"transports"});
  CHECK(p->wait(10s).describe() == "exit 0");
  const auto out = p->out();
  INFO(out);
  CHECK(out.starts_with("scheme "));
  for (const std::string scheme : {"tcp ", "shm ", "udp "}) CHECK(out.find("\n" + scheme) != std::string::npos);
  // shm is the one transport whose loans are the memory the message is sent from.
  CHECK(out.find("\nshm      yes") != std::string::npos);
  CHECK(out.find("\ntcp      no") != std::string::npos);
}

TEST_CASE("--format hex prints whole envelopes that flatc decodes with codec/envelope.fbs") {
  TempDir dir;
  const auto ep = tcp_endpoint(free_port());
  const std::string payload = "hello hex";
  auto sub = spawn_rill(dir, "sub", {"sub", ep, "md/", "--count", "3", "--idle-exit-ms", "5000", "--format", "hex"});
  auto pub = spawn_rill(dir, "pub", {"pub", ep, "md/hex", "--count", "3", "--data", payload, "--wait-subs", "1"});
  REQUIRE(pub->wait(30s).ok());
  const auto se = sub->wait(30s);
  REQUIRE_MESSAGE(se.ok(), "sub " << se.describe() << ": " << sub->err());

  const auto out = sub->out();
  const auto all = lines(out);
  REQUIRE(all.size() == 4);  // three envelopes, then the stats line
  std::string payload_json = "\"payload\":[";
  for (std::size_t i = 0; i < payload.size(); ++i) {
    if (i > 0) payload_json += ',';
    payload_json += std::to_string(static_cast<unsigned char>(payload[i]));
  }
  payload_json += "]";

  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    const auto hex = all[seq - 1];
    INFO("line " << seq << ": " << hex);
    REQUIRE(hex.size() % 2 == 0);
    REQUIRE(std::all_of(hex.begin(), hex.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }));
    const auto bin = dir / ("env" + std::to_string(seq) + ".bin");
    std::ofstream(bin, std::ios::binary) << hex_to_bytes(hex);
    Process flatc({RILL_FLATC_PATH, "--json", "--strict-json", "--raw-binary", "-o", dir.path().string(),
                   std::string(RILL_SOURCE_DIR) + "/codec/envelope.fbs", "--", bin.string()},
                  dir.path(), "flatc" + std::to_string(seq));
    const auto fe = flatc.wait(30s);
    REQUIRE_MESSAGE(fe.ok(), "flatc " << fe.describe() << ": " << flatc.err());
    const auto json = without_spaces(read_file(dir / ("env" + std::to_string(seq) + ".json")));
    INFO("flatc: " << json);
    CHECK(json.find("\"topic\":\"md/hex\"") != std::string::npos);
    const auto seq_field = "\"sequence\":" + std::to_string(seq);
    CHECK((json.find(seq_field + ",") != std::string::npos || json.find(seq_field + "}") != std::string::npos));
    CHECK(json.find("\"publisher_id\":") != std::string::npos);
    CHECK(json.find(payload_json) != std::string::npos);
  }
}

}  // namespace rill::e2e
