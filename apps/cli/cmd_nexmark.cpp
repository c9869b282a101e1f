// rill nexmark gen: prints or publishes the Nexmark Person/Auction/Bid streams (the generator
// is perf/nexmark/generator.hpp, shared with the benchmark).
#include <array>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "args.hpp"
#include "nexmark/generator.hpp"
#include "rill/rill.hpp"

namespace rill::cli {

namespace {

constexpr std::string_view nexmark_usage = "rill nexmark";

// One publisher per topic on the one endpoint, indexed by EventKind.
struct Topics {
  Node node;
  std::vector<Publisher> pubs;
};

Result<void> wait_subscribers(Publisher& pub, std::size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!stopping()) {
    pub.service();
    auto w = pub.wait_for_subscribers(n, std::chrono::milliseconds(5));
    if (w) return {};
    if (w.error().code != Errc::timed_out) return std::unexpected(w.error());
    if (std::chrono::steady_clock::now() >= deadline) return std::unexpected(w.error());
  }
  return {};
}

// A timed-out publish sent nothing: the same event is tried again.
Result<void> publish(Publisher& pub, const std::string& payload) {
  Result<void> r = pub.publish_text(payload);
  while (!r && r.error().code == Errc::timed_out && !stopping()) r = pub.publish_text(payload);
  return r;
}

}  // namespace

int cmd_nexmark(int argc, char** argv) {
  const std::set<std::string> valued{"events",   "rate",           "format",           "publish",  "first-event-id",
                                     "base-time-ms", "out-of-order-group", "wait-subs", "wait-ms"};
  if (wants_help(argc, argv, valued)) return print_help("nexmark");
  auto args = Args::parse(argc, argv, valued, {});
  if (!args) return usage_error(args.error().detail, nexmark_usage);
  if (args->positional().size() != 1 || args->positional()[0] != "gen") {
    return usage_error("nexmark needs the word gen (rill nexmark gen [OPTIONS])", nexmark_usage);
  }
  if (auto f = args->text("format"); f && *f != "json") {
    return usage_error("--format takes json (the only format so far), got '" + *f + "'", nexmark_usage);
  }
  auto events = args->number("events", 100000);
  auto first_id = args->number("first-event-id", 0);
  auto base_time = args->number("base-time-ms", 1436918400000);
  auto group = args->number("out-of-order-group", 1);
  auto wait_subs = args->number("wait-subs", 0);
  auto wait_ms = args->number("wait-ms", 10000);
  for (const auto* r : {&events, &first_id, &base_time, &group, &wait_subs, &wait_ms}) {
    if (!*r) return usage_error(r->error().detail, nexmark_usage);
  }
  auto rate = args->real("rate", 0);
  if (!rate) return usage_error(rate.error().detail, nexmark_usage);
  if (*group == 0) return usage_error("--out-of-order-group must be at least 1", nexmark_usage);
  if (*rate > 1e6) return usage_error("--rate is at most 1000000 events per second (1 us apart)", nexmark_usage);
  if (args->has("wait-subs") && !args->has("publish")) return usage_error("--wait-subs needs --publish", nexmark_usage);

  nexmark::GeneratorConfig config{.first_event_id = static_cast<std::int64_t>(*first_id),
                                  .base_time_ms = static_cast<std::int64_t>(*base_time),
                                  .out_of_order_group_size = static_cast<std::int64_t>(*group)};
  // Beam's RateUnit.PER_SECOND: the period of `rate` events per second, rounded, in microseconds.
  if (*rate > 0) config.inter_event_delay_us = static_cast<std::int64_t>((1e6 + *rate / 2) / *rate);
  nexmark::Generator gen(config);

  install_stop_signals();
  Topics topics;
  if (auto endpoint = args->text("publish")) {
    for (auto kind : {nexmark::EventKind::person, nexmark::EventKind::auction, nexmark::EventKind::bid}) {
      auto pub = topics.node.publisher({.endpoint = *endpoint, .topic = nexmark::topic_of(kind)});
      if (!pub) {
        const bool usage = pub.error().code == Errc::invalid_argument || pub.error().code == Errc::unsupported;
        if (usage) return usage_error(pub.error().message(), nexmark_usage);
        std::fprintf(stderr, "rill: %s\n", pub.error().message().c_str());
        return exit_runtime;
      }
      topics.pubs.push_back(std::move(*pub));
    }
    for (auto& p : topics.pubs) {
      if (*wait_subs == 0) break;
      if (auto w = wait_subscribers(p, *wait_subs, std::chrono::milliseconds(*wait_ms)); !w) {
        std::fprintf(stderr, "rill: waiting for subscribers: %s\n", w.error().message().c_str());
        return exit_runtime;
      }
    }
  }

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  std::array<std::uint64_t, 3> counts{};
  const std::uint64_t total = *events;  // 0: until SIGINT/SIGTERM
  std::string line;
  while (!stopping() && (total == 0 || gen.count() < static_cast<std::int64_t>(total))) {
    if (*rate > 0) {  // paced against the start, as the events' own times are
      const auto due = start + std::chrono::microseconds(gen.count() * config.inter_event_delay_us);
      if (clock::now() < due) {
        std::fflush(stdout);
        for (auto& p : topics.pubs) p.flush();
        std::this_thread::sleep_until(due);
      }
    }
    const nexmark::Event e = gen.next();
    const auto k = static_cast<std::size_t>(e.kind);
    ++counts[k];
    if (topics.pubs.empty()) {
      line = nexmark::combined_json(e);
      line.push_back('\n');
      if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size()) return exit_runtime;  // closed pipe
      continue;
    }
    if (auto r = publish(topics.pubs[k], nexmark::row_json(e)); !r) {
      if (r.error().code == Errc::timed_out) break;  // stopping
      std::fprintf(stderr, "rill: publish failed on %s: %s\n", nexmark::topic_of(e.kind), r.error().message().c_str());
      return exit_runtime;
    }
  }
  std::fflush(stdout);
  for (auto& p : topics.pubs) p.flush();
  std::fprintf(stderr, "{\"stats\":{\"events\":%lld,\"person\":%llu,\"auction\":%llu,\"bid\":%llu}}\n",
               static_cast<long long>(gen.count()), static_cast<unsigned long long>(counts[0]),
               static_cast<unsigned long long>(counts[1]), static_cast<unsigned long long>(counts[2]));
  return exit_ok;
}

}  // namespace rill::cli
