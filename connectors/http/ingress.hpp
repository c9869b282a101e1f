// Ingress: the application behind `rill serve`. POST /topics/{topic} verifies the
// signature, de-duplicates by webhook-id and publishes the body through a rill::Publisher;
// GET /healthz, /metrics (Prometheus text), /topics (where each topic is published).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "http_server.hpp"
#include "rill/node.hpp"
#include "signature.hpp"

namespace rill::http {

/// What the ingress does; fill with designated initializers.
struct IngressOptions {
  /// The publish endpoint (tcp://, shm:// or udp://). Every topic is published there by its
  /// own Publisher, so each keeps its own id and gap-free sequence.
  std::string publish_endpoint{};
  /// Declared topics, opened at start-up; when non-empty, other topics get 404. When empty,
  /// topics are opened at first use, up to max_topics.
  std::vector<std::string> topics{};
  std::size_t max_topics = 64;
  std::vector<Secret> secrets{};                   ///< empty: requests are not signature-checked
  std::chrono::seconds tolerance{300};             ///< webhook-timestamp may be this far from now
  std::size_t replay_capacity = 100'000;           ///< webhook-ids remembered for de-duplication
  std::chrono::milliseconds publish_timeout{200};  ///< past it under backpressure: 429
  std::vector<std::string> carry_headers{};        ///< request headers carried, besides the defaults
  /// What each topic's publisher keeps for late joiners: transient_local(N), or
  /// persistent(DIR): topic T's log is in DIR/<T> ('/' in T written %2F), so the publisher id
  /// and sequence continue after a restart; DIR/topics lists the topics so a restarted ingress
  /// serves them at once. Under fsync `always`, 202 means the message is in the log durably.
  Durability durability{};
  LogOptions log{};  ///< persistent: fsync policy, segment size, retention
};

/// See RequestHandler: every method runs on the server thread.
class Ingress final : public RequestHandler {
 public:
  /// Creates the declared topics' publishers (binding their endpoints) on `node`.
  [[nodiscard]] static Result<std::unique_ptr<Ingress>> create(Node& node, IngressOptions options);
  /// The server whose counters /metrics reports.
  void attach(const Server* server) noexcept { m_server = server; }

  std::optional<Response> on_header(const Request& req) override;
  Response on_request(const Request& req) override;
  void on_tick(std::chrono::steady_clock::time_point now) override;

  /// The endpoint topic `name` is (or would be) published on, for logs and /topics.

 private:
  struct Topic {
    std::string name;
    std::string endpoint;
    Publisher publisher;
  };
  Ingress(Node& node, IngressOptions options);

  Result<Topic*> topic(std::string_view name);
  Result<void> record_topic(std::string_view name);
  Result<void> load_topic_numbering();
  void render_metrics();
  void render_log_metrics();
  void render_topics();

  Node& m_node;
  IngressOptions m_options;
  Binding m_binding;  // the publish endpoint, bound from the start
  std::vector<std::unique_ptr<Topic>> m_topics;
  std::unordered_map<std::string, Topic*> m_by_name;
  std::vector<std::string> m_numbering;  // persistent: DIR/topics, in order of first use
  ReplayCache m_replays;
  const Server* m_server = nullptr;
  std::string m_scratch;  // /metrics and /topics bodies (reused)
  std::chrono::steady_clock::time_point m_last_service{};
  // Counters for /metrics.
  std::uint64_t m_published = 0;
  std::uint64_t m_published_bytes = 0;
  std::uint64_t m_duplicates = 0;
  std::uint64_t m_publish_timeouts = 0;
  std::uint64_t m_publish_errors = 0;
  std::uint64_t m_no_space = 0;                    // persistent: publishes refused because the disk is full
  std::array<std::uint64_t, 5> m_auth_failures{};  // by VerifyResult
  static constexpr std::array<double, 12> latency_bounds_s = {5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
                                                              5e-3, 1e-2, 2.5e-2, 5e-2, 1e-1, 2.5e-1};
  std::array<std::uint64_t, latency_bounds_s.size() + 1> m_latency_buckets{};
  double m_latency_sum_s = 0;
};

/// The directory name of a topic's log: '/' becomes %2F and a leading '.' %2E (topics
/// never hold '%'), so every topic gets its own directory directly under the base.
[[nodiscard]] std::string topic_dir_name(std::string_view topic);

/// True for topics `rill serve` accepts in a path: 1-200 bytes of [A-Za-z0-9._~/-], not
/// starting with '/' and without "//".
[[nodiscard]] bool valid_topic(std::string_view topic) noexcept;

}  // namespace rill::http
