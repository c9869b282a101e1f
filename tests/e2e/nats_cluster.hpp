// A real 3-node nats-server cluster with JetStream on loopback, for the jetstream e2e
// tests: free client and route ports, a store directory per node, kill -9 and restart
// of one node, and the stream facts a test checks against (leader, message count),
// read with libnats independently of rill.
#pragma once

#include <nats/nats.h>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "process.hpp"

namespace rill::e2e {

/// The nats-server binary (Debian's nats-server package), or "" when it is not installed.
inline std::string nats_server_path() {
  for (const char* p : {"/usr/sbin/nats-server", "/usr/bin/nats-server"}) {
    if (std::filesystem::exists(p)) return p;
  }
  return {};
}

class NatsCluster {
 public:
  static constexpr int nodes = 3;

  explicit NatsCluster(const TempDir& dir) : m_dir(dir) {
    for (int i = 0; i < nodes; ++i) {
      m_client[i] = free_port();
      m_route[i] = free_port();
    }
    for (int i = 0; i < nodes; ++i) start(i);
    // Ready once the cluster can place a 3-replica stream (a meta leader is elected and
    // every node answers); rill then creates its own streams.
    REQUIRE_MESSAGE(wait_until([&] { return try_warm_up(); }, 30s), "the nats cluster did not form: " << log_tail());
  }
  ~NatsCluster() {
    if (m_nc != nullptr) {
      jsCtx_Destroy(m_js);
      natsConnection_Destroy(m_nc);
    }
  }

  /// "jetstream://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/STREAM?QUERY".
  [[nodiscard]] std::string endpoint(const std::string& stream, const std::string& query = "") const {
    std::string ep = "jetstream://";
    for (int i = 0; i < nodes; ++i) {
      if (i > 0) ep += ',';
      ep += "127.0.0.1:";
      ep += std::to_string(m_client[i]);
    }
    ep += "/" + stream;
    if (!query.empty()) ep += "?" + query;
    return ep;
  }

  /// Starts node i (again, on its ports and store after a kill).
  void start(int i) {
    std::string routes;
    for (int j = 0; j < nodes; ++j) {
      if (j == i) continue;
      if (!routes.empty()) routes += ',';
      routes += "nats://127.0.0.1:";
      routes += std::to_string(m_route[j]);
    }
    const std::string name = std::string(1, 'n').append(std::to_string(i));
    m_servers[i] = std::make_unique<Process>(
        std::vector<std::string>{nats_server_path(), "-js", "-n", name, "-a", "127.0.0.1", "-p",
                                 std::to_string(m_client[i]), "--cluster_name", "rilltest", "--cluster",
                                 "nats://127.0.0.1:" + std::to_string(m_route[i]), "--routes", routes, "-sd",
                                 (m_dir / ("store-" + name)).string()},
        m_dir.path(), name + "-" + std::to_string(++m_starts));
  }
  /// kill -9 of node i.
  void kill(int i) {
    m_servers[i]->kill(SIGKILL);
    m_servers[i]->wait(5s);
  }

  /// The node (0..2) leading `stream` now, or -1 when none is (an election is on).
  [[nodiscard]] int leader(const std::string& stream) {
    jsStreamInfo* si = nullptr;
    if (js_GetStreamInfo(&si, js(), stream.c_str(), nullptr, nullptr) != NATS_OK) return -1;
    int node = -1;
    if (si->Cluster != nullptr && si->Cluster->Leader != nullptr && si->Cluster->Leader[0] == 'n') {
      node = si->Cluster->Leader[1] - '0';
    }
    jsStreamInfo_Destroy(si);
    return node;
  }
  /// Consumers the stream has now (-1 when it cannot be asked).
  [[nodiscard]] std::int64_t consumers(const std::string& stream) {
    jsStreamInfo* si = nullptr;
    if (js_GetStreamInfo(&si, js(), stream.c_str(), nullptr, nullptr) != NATS_OK) return -1;
    const auto n = static_cast<std::int64_t>(si->State.Consumers);
    jsStreamInfo_Destroy(si);
    return n;
  }
  /// Messages the stream holds now (-1 when it cannot be asked).
  [[nodiscard]] std::int64_t messages(const std::string& stream) {
    jsStreamInfo* si = nullptr;
    if (js_GetStreamInfo(&si, js(), stream.c_str(), nullptr, nullptr) != NATS_OK) return -1;
    const auto n = static_cast<std::int64_t>(si->State.Msgs);
    jsStreamInfo_Destroy(si);
    return n;
  }

 private:
  jsCtx* js() {
    if (m_nc == nullptr) {
      natsOptions* o = nullptr;
      natsOptions_Create(&o);
      std::vector<std::string> urls;
      for (int i = 0; i < nodes; ++i) urls.push_back("nats://127.0.0.1:" + std::to_string(m_client[i]));
      std::vector<const char*> c;
      for (auto& u : urls) c.push_back(u.c_str());
      natsOptions_SetServers(o, c.data(), nodes);
      natsOptions_SetMaxReconnect(o, -1);
      natsOptions_SetReconnectWait(o, 100);
      const auto s = natsConnection_Connect(&m_nc, o);
      natsOptions_Destroy(o);
      if (s != NATS_OK) {
        m_nc = nullptr;
        return nullptr;
      }
      natsConnection_JetStream(&m_js, m_nc, nullptr);
    }
    return m_js;
  }
  bool try_warm_up() {
    if (js() == nullptr) return false;
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char* subjects[] = {"warmup.>"};
    cfg.Name = "WARMUP";
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Replicas = nodes;
    jsStreamInfo* si = nullptr;
    if (js_AddStream(&si, m_js, &cfg, nullptr, nullptr) != NATS_OK) return false;
    jsStreamInfo_Destroy(si);
    return true;
  }
  std::string log_tail() const {
    std::string all;
    for (const auto& s : m_servers) all += s ? s->err().substr(0, 1500) : "";
    return all;
  }

  const TempDir& m_dir;
  std::array<int, nodes> m_client{};
  std::array<int, nodes> m_route{};
  std::array<std::unique_ptr<Process>, nodes> m_servers;
  int m_starts = 0;
  natsConnection* m_nc = nullptr;
  jsCtx* m_js = nullptr;
};

}  // namespace rill::e2e
