// rill serve --http HOST:PORT --publish ENDPOINT: the webhook ingress (transport/http).
#include <sys/resource.h>

#include <charconv>
#include <cstdio>
#include <string>

#include "args.hpp"
#include "connectors/http/http_server.hpp"
#include "connectors/http/ingress.hpp"
#include "rill/rill.hpp"

namespace rill::cli {

namespace {

// The command, for usage_error's hint; its synopsis and options are on its page in help.cpp.
constexpr std::string_view serve_usage = "rill serve";

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto comma = s.find(',', start);
    const auto item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// Many idle or slow connections each hold a descriptor: lift the soft limit to the hard one.
void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

}  // namespace

int cmd_serve(int argc, char** argv) {
  std::set<std::string> valued{"http",
                               "publish",
                               "secret-file",
                               "max-body",
                               "max-header",
                               "topics",
                               "max-topics",
                               "tolerance-s",
                               "publish-timeout-ms",
                               "header-timeout-ms",
                               "body-timeout-ms",
                               "idle-timeout-ms",
                               "max-connections",
                               "replay-cache",
                               "carry-headers",
                               "tls-cert",
                               "tls-key",
                               "durability"};
  valued.insert(log_valued_options.begin(), log_valued_options.end());
  std::set<std::string> flags;
  flags.insert(log_flag_options.begin(), log_flag_options.end());
  if (wants_help(argc, argv, valued)) return print_help("serve");
  auto args = Args::parse(argc, argv, valued, flags);
  if (!args) return usage_error(args.error().detail, serve_usage);
  if (!args->positional().empty()) return usage_error("serve takes no positional arguments", serve_usage);
  if (args->has("tls-cert") != args->has("tls-key")) return usage_error("--tls-cert and --tls-key go together", serve_usage);
  const auto listen = args->text("http");
  const auto publish = args->text("publish");
  if (!listen || !publish) return usage_error("serve needs --http HOST:PORT and --publish ENDPOINT", serve_usage);
  const auto colon = listen->rfind(':');
  unsigned port = 0;
  if (colon == std::string::npos ||
      std::from_chars(listen->data() + colon + 1, listen->data() + listen->size(), port).ec != std::errc{} ||
      port > 65535) {
    return usage_error("--http needs HOST:PORT, e.g. 127.0.0.1:8080", serve_usage);
  }
  http::ServerOptions sopt{.host = listen->substr(0, colon), .port = static_cast<std::uint16_t>(port)};
  http::IngressOptions iopt{.publish_endpoint = *publish};
  struct NumberOpt {
    const char* name;
    std::uint64_t fallback;
    std::uint64_t value = 0;
  };
  NumberOpt nums[] = {{"max-body", sopt.limits.body_bytes},
                      {"max-header", sopt.limits.header_bytes},
                      {"max-topics", iopt.max_topics},
                      {"tolerance-s", static_cast<std::uint64_t>(iopt.tolerance.count())},
                      {"publish-timeout-ms", static_cast<std::uint64_t>(iopt.publish_timeout.count())},
                      {"header-timeout-ms", static_cast<std::uint64_t>(sopt.header_timeout.count())},
                      {"body-timeout-ms", static_cast<std::uint64_t>(sopt.body_timeout.count())},
                      {"idle-timeout-ms", static_cast<std::uint64_t>(sopt.idle_timeout.count())},
                      {"max-connections", sopt.max_connections},
                      {"replay-cache", iopt.replay_capacity}};
  for (auto& n : nums) {
    auto v = args->number(n.name, n.fallback);
    if (!v) return usage_error(v.error().detail, serve_usage);
    n.value = *v;
  }
  sopt.limits.body_bytes = nums[0].value;
  sopt.limits.header_bytes = nums[1].value;
  if (sopt.limits.header_bytes < 256 || sopt.limits.header_bytes > (1u << 20)) {
    return usage_error("--max-header must be 256 .. 1048576", serve_usage);
  }
  iopt.max_topics = nums[2].value;
  iopt.tolerance = std::chrono::seconds(nums[3].value);
  iopt.publish_timeout = std::chrono::milliseconds(nums[4].value);
  sopt.header_timeout = std::chrono::milliseconds(nums[5].value);
  sopt.body_timeout = std::chrono::milliseconds(nums[6].value);
  sopt.idle_timeout = std::chrono::milliseconds(nums[7].value);
  sopt.max_connections = nums[8].value;
  iopt.replay_capacity = nums[9].value;
  if (iopt.max_topics == 0 || sopt.max_connections == 0) {
    return usage_error("--max-topics and --max-connections must be at least 1", serve_usage);
  }
  if (auto d = args->text("durability")) {
    auto parsed = parse_durability(*d);
    if (!parsed) return usage_error(parsed.error().detail, serve_usage);
    if (parsed->kind == DurabilityKind::transient_local && parsed->history == 0) {
      return usage_error("--durability transient-local needs :N (messages kept per topic)", serve_usage);
    }
    if (parsed->kind == DurabilityKind::persistent && parsed->dir.empty()) {
      return usage_error("--durability persistent needs :DIR (one log per topic under it)", serve_usage);
    }
    iopt.durability = std::move(*parsed);
  }
  if (auto bad = apply_log_options(*args, iopt.durability.kind == DurabilityKind::persistent, iopt.log)) {
    return usage_error(*bad, serve_usage);
  }
  if (auto t = args->text("topics")) iopt.topics = split_list(*t);
  if (auto h = args->text("carry-headers")) iopt.carry_headers = split_list(*h);
  if (auto f = args->text("secret-file")) {
    auto secrets = http::load_secrets(*f);
    if (!secrets) return usage_error(secrets.error().detail, serve_usage);
    iopt.secrets = std::move(*secrets);
  }

  const auto tls_cert = args->text("tls-cert");
  const auto tls_key = args->text("tls-key");
  if (tls_cert) {
    auto tls = http::TlsContext::load(*tls_cert, *tls_key);
    if (!tls) return usage_error(tls.error().detail, serve_usage);
    sopt.tls = std::move(*tls);
  }

  install_stop_signals();
  install_reload_signal();
  raise_fd_limit();
  Node node;
  auto ingress = http::Ingress::create(node, std::move(iopt));
  if (!ingress) {
    const auto code = ingress.error().code;
    if (code == Errc::invalid_argument || code == Errc::unsupported) {
      return usage_error(ingress.error().message(), serve_usage);
    }
    std::fprintf(stderr, "rill: %s\n", ingress.error().message().c_str());
    return exit_runtime;
  }
  auto server = http::Server::create(sopt, **ingress);
  if (!server) {
    if (server.error().code == Errc::invalid_argument) return usage_error(server.error().message(), serve_usage);
    std::fprintf(stderr, "rill: %s\n", server.error().message().c_str());
    return exit_runtime;
  }
  (*ingress)->attach(server->get());
  std::fprintf(stderr, "rill serve: listening on %s://%s:%u\n", sopt.tls ? "https" : "http", sopt.host.c_str(),
               (*server)->port());
  auto& srv = **server;
  auto ran = srv.run([&] {
    // SIGHUP: the certificate and key are read again; a bad pair keeps the old one serving.
    if (sopt.tls && reload_requested()) {
      auto fresh = http::TlsContext::load(*tls_cert, *tls_key);
      if (fresh) {
        srv.set_tls(std::move(*fresh));
        std::fprintf(stderr, "rill serve: reloaded %s\n", tls_cert->c_str());
      } else {
        std::fprintf(stderr, "rill serve: reload failed, keeping the old certificate: %s\n",
                     fresh.error().detail.c_str());
      }
    }
    return stopping();
  });
  if (!ran) {
    std::fprintf(stderr, "rill: %s\n", ran.error().message().c_str());
    return exit_runtime;
  }
  return exit_ok;
}

}  // namespace rill::cli
