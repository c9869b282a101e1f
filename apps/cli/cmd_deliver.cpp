// rill sub ENDPOINT... URL TOPIC_PREFIX: webhook delivery of a subscription (transport/http).
#include <cstdio>

#include "args.hpp"
#include "rill/rill.hpp"
#include "connectors/http/webhook_deliverer.hpp"

namespace rill::cli {

int run_delivery(const Args& args, const SubscriberOptions& opts, const std::string& url, std::string_view usage) {
  http::DeliveryOptions dopt{.url = url};
  if (auto f = args.text("secret-file")) {
    auto secrets = http::load_secrets(*f);
    if (!secrets) return usage_error(secrets.error().detail, usage);
    dopt.secrets = std::move(*secrets);
  }
  if (auto s = args.text("retry-schedule")) {
    auto schedule = http::RetrySchedule::parse(*s);
    if (!schedule) return usage_error("--retry-schedule: " + schedule.error().detail, usage);
    dopt.schedule = std::move(*schedule);
  }
  if (auto j = args.real("retry-jitter", dopt.schedule.jitter); !j || *j > 1) {
    return usage_error("--retry-jitter needs a fraction 0 .. 1", usage);
  } else {
    dopt.schedule.jitter = *j;
  }
  auto timeout = args.number("deliver-timeout-ms", static_cast<std::uint64_t>(dopt.timeout.count()));
  auto window = args.number("window", dopt.window);
  auto count = args.number("count", 0);
  auto idle_exit = args.number("idle-exit-ms", 0);
  for (const auto* r : {&timeout, &window, &count, &idle_exit}) {
    if (!*r) return usage_error(r->error().detail, usage);
  }
  dopt.timeout = std::chrono::milliseconds(*timeout);
  dopt.window = *window;
  if (auto p = args.text("dead-letter")) dopt.dead_letter_path = *p;
  if (auto c = args.text("ca-file")) dopt.ca_file = *c;
  SubscriberOptions sopts = opts;
  const bool durable = !opts.durable_name.empty();
  if (durable) {
    // At-least-once across crashes: a message counts as handled only once its POST
    // succeeded or it was dead-lettered (see WebhookDeliverer::ack_finished).
    sopts.auto_ack = false;
    sopts.handled_on_ack = true;
    dopt.ack_finished = true;
  }
  auto deliverer = http::WebhookDeliverer::create(std::move(dopt));
  if (!deliverer) return usage_error(deliverer.error().detail, usage);

  bool refused = false;
  std::string refusal;
  sopts.on_incompatible = [&](const IncompatibleEvent& e) {
    refused = true;
    refusal = "publisher " + e.endpoint + " refused the subscription: it offers " + std::string(to_string(e.offered)) +
              ", this subscription asks for " + std::string(to_string(e.requested));
  };
  install_stop_signals();
  Node node;
  auto sub = node.subscriber(sopts);
  if (!sub) {
    const bool bad = sub.error().code == Errc::invalid_argument || sub.error().code == Errc::unsupported;
    if (bad) return usage_error(sub.error().message(), usage);
    std::fprintf(stderr, "rill: %s\n", sub.error().message().c_str());
    return exit_runtime;
  }
  using clock = std::chrono::steady_clock;
  auto last_activity = clock::now();
  std::uint64_t finished = 0;
  std::uint64_t seen = 0;
  auto& d = **deliverer;
  while (!stopping() && !refused && (*count == 0 || finished < *count)) {
    finished += d.step(*sub, std::chrono::milliseconds(20));
    const auto now = clock::now();
    if (d.stats().taken != seen || d.stats().pending > 0) {
      seen = d.stats().taken;
      last_activity = now;
    } else if (*idle_exit > 0 && now - last_activity >= std::chrono::milliseconds(*idle_exit)) {
      break;
    }
  }
  d.shutdown();
  if (refused) {
    std::fprintf(stderr, "rill: %s\n", refusal.c_str());
    return exit_runtime;
  }
  const auto& s = sub->stats();
  const auto& ds = d.stats();
  using ull = unsigned long long;
  std::printf(
      "{\"stats\":{\"received\":%llu,\"gaps\":%llu,\"dropped\":%llu,\"delivered\":%llu,\"attempts\":%llu,"
      "\"retries\":%llu,\"dead_lettered\":%llu",
      ull(s.received), ull(s.gaps), ull(s.dropped), ull(ds.delivered), ull(ds.attempts), ull(ds.retries),
      ull(ds.dead_lettered));
  if (durable) {
    std::printf(",\"acked\":%llu,\"duplicates\":%llu,\"left_unfinished\":%llu", ull(ds.acked), ull(s.duplicates),
                ull(ds.left_unfinished));
  }
  std::printf("}}\n");
  std::fflush(stdout);
  return exit_ok;
}

}  // namespace rill::cli
