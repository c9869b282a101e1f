// rill sub ENDPOINT... TOPIC_PREFIX: prints what arrives (json, text, hex) and final stats.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "args.hpp"
#include "output.hpp"
#include "rill/rill.hpp"

namespace rill::cli {

namespace {

constexpr std::string_view sub_usage =
    "rill sub ENDPOINT... TOPIC_PREFIX [--count N] [--idle-exit-ms MS] "
    "[--policy drop-oldest:N|drop-newest:N|buffer:BYTES|backpressure:N] [--format json|text|hex] "
    "[--work-us N] [--idle spin|backoff|block|spin-block]\n"
    "rill sub ENDPOINT... http(s)://HOST/PATH TOPIC_PREFIX [--secret-file FILE] [--retry-schedule 0,5s,5m,...] "
    "[--retry-jitter F] [--deliver-timeout-ms MS] [--window N] [--dead-letter FILE] [--ca-file PEM] [--count N] "
    "[--idle-exit-ms MS] [--policy ...]";

void simulate_work(std::uint64_t us) {
  if (us == 0) return;
  // Short work spins (a sleep would overshoot); long work sleeps so it does not steal a core.
  if (us >= 200) {
    std::this_thread::sleep_for(std::chrono::microseconds(us));
    return;
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  while (std::chrono::steady_clock::now() < until) {
  }
}

}  // namespace

int cmd_sub(int argc, char** argv) {
  auto args = Args::parse(argc, argv, {"count", "idle-exit-ms", "policy", "format", "work-us", "idle", "durable", "from", "group",
                           // webhook delivery (an http:// or https:// positional)
                           "secret-file", "retry-schedule", "retry-jitter", "deliver-timeout-ms", "window",
                           "dead-letter", "ca-file"},
                          {"help"});
  if (!args) return usage_error(args.error().detail, sub_usage);
  if (args->has("help")) {
    std::printf("usage: %.*s\n", static_cast<int>(sub_usage.size()), sub_usage.data());
    return exit_ok;
  }
  const auto& pos = args->positional();
  if (pos.size() < 2) return usage_error("sub needs at least one ENDPOINT and a TOPIC_PREFIX", sub_usage);
  for (const char* later : {"durable", "from", "group"}) {
    if (args->has(later)) return usage_error(std::string("--") + later + " is not available yet (durability)", sub_usage);
  }
  SubscriberOptions opts;
  std::string deliver_url;  // a subscription whose endpoint is http(s):// delivers there
  for (auto it = pos.begin(); it != pos.end() - 1; ++it) {
    if (it->starts_with("http://") || it->starts_with("https://")) {
      if (!deliver_url.empty()) return usage_error("only one webhook URL per subscription", sub_usage);
      deliver_url = *it;
    } else {
      opts.endpoints.push_back(*it);
    }
  }
  if (opts.endpoints.empty()) return usage_error("sub needs at least one publisher ENDPOINT", sub_usage);
  opts.prefix = pos.back();
  if (auto p = args->text("policy")) {
    auto policy = parse_policy(*p);
    if (!policy) return usage_error(policy.error().detail, sub_usage);
    opts.policy = *policy;
  }
  const auto idle = args->text("idle").value_or("backoff");
  if (idle == "spin") {
    opts.idle = IdleStrategy::spin;
  } else if (idle == "block") {
    opts.idle = IdleStrategy::block;
  } else if (idle == "spin-block") {
    opts.idle = IdleStrategy::spin_block;
  } else if (idle != "backoff") {
    return usage_error("--idle must be spin, backoff, block or spin-block", sub_usage);
  }
#ifdef RILL_WITH_HTTP
  if (!deliver_url.empty()) return run_delivery(*args, opts, deliver_url, sub_usage);
#else
  if (!deliver_url.empty()) return usage_error("webhook delivery is not built (RILL_WITH_HTTP=OFF)", sub_usage);
#endif
  const auto format_name = args->text("format").value_or("json");
  auto format = parse_format(format_name);
  if (!format) return usage_error("--format must be json, text or hex", sub_usage);
  auto count = args->number("count", 0);
  auto idle_exit = args->number("idle-exit-ms", 0);
  auto work_us = args->number("work-us", 0);
  for (const auto* r : {&count, &idle_exit, &work_us}) {
    if (!*r) return usage_error(r->error().detail, sub_usage);
  }

  install_stop_signals();
  Node node;
  auto sub = node.subscriber(opts);
  if (!sub) {
    const bool usage = sub.error().code == Errc::invalid_argument || sub.error().code == Errc::unsupported;
    std::fprintf(stderr, "rill: %s\n", sub.error().message().c_str());
    return usage ? exit_usage : exit_runtime;
  }

  Printer printer(*format);
  using clock = std::chrono::steady_clock;
  auto last_activity = clock::now();
  std::uint64_t handled = 0;
  const auto handler = [&](const MessageView& m) {
    printer.print(m);
    simulate_work(*work_us);
    ++handled;
  };
  while (!stopping() && (*count == 0 || handled < *count)) {
    // One message per round when a handler is slow, so the policy sees every arrival in between.
    const std::size_t limit = *work_us > 0 ? 1 : (*count == 0 ? 256 : std::min<std::uint64_t>(256, *count - handled));
    const auto n = sub->wait_poll(handler, limit, std::chrono::milliseconds(20));
    const auto now = clock::now();
    if (n > 0) {
      last_activity = now;
    } else {
      printer.flush();
      if (*idle_exit > 0 && now - last_activity >= std::chrono::milliseconds(*idle_exit)) break;
    }
  }
  sub->poll(handler, 0);  // settle credits and tails of departed publishers
  printer.print_stats(sub->stats());
  return exit_ok;
}

}  // namespace rill::cli
