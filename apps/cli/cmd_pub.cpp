// rill pub ENDPOINT TOPIC [TOPIC...]: publishes generated, given or stdin payloads, on
// each topic in turn (one publisher per topic, all on ENDPOINT).
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "args.hpp"
#include "connectors/http/ingress.hpp"
#include "rill/rill.hpp"

namespace rill::cli {

namespace {

// The command, for usage_error's hint; its synopsis and options are on its page in help.cpp.
constexpr std::string_view pub_usage = "rill pub";

// Generated payloads say which message they are and pad to --size, so a reader can check them.
void fill_generated(std::string& out, std::uint64_t seq, std::size_t size) {
  out = "rill " + std::to_string(seq);
  if (out.size() < size) out.append(size - out.size(), '.');
}

// Waits for `n` subscribers while serving the ones already attached (a durable subscriber
// catching up from the log is served from service(), so it must keep running meanwhile).
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

}  // namespace

int cmd_pub(int argc, char** argv) {
  std::set<std::string> valued{"count",     "rate",       "size",  "data",       "wait-subs", "wait-ms",
                               "linger-ms", "timeout-ms", "batch", "durability", "until-seq"};
  valued.insert(log_valued_options.begin(), log_valued_options.end());
  std::set<std::string> flags{"stdin"};
  flags.insert(log_flag_options.begin(), log_flag_options.end());
  if (wants_help(argc, argv, valued)) return print_help("pub");
  auto args = Args::parse(argc, argv, valued, flags);
  if (!args) return usage_error(args.error().detail, pub_usage);
  if (args->positional().size() < 2) return usage_error("pub needs ENDPOINT and TOPIC", pub_usage);
  const std::vector<std::string> topics(args->positional().begin() + 1, args->positional().end());
  if (args->has("data") && args->has("stdin")) return usage_error("--data and --stdin exclude each other", pub_usage);
  if (args->has("until-seq") && (args->has("count") || args->has("stdin"))) {
    return usage_error("--until-seq excludes --count and --stdin", pub_usage);
  }
  if (args->has("until-seq") && topics.size() > 1) return usage_error("--until-seq takes one TOPIC", pub_usage);
  PublisherOptions opts{.endpoint = args->positional()[0], .topic = topics.front()};
  if (auto d = args->text("durability")) {
    auto parsed = parse_durability(*d);
    if (!parsed) return usage_error(parsed.error().detail, pub_usage);
    if (parsed->kind == DurabilityKind::transient_local && parsed->history == 0) {
      return usage_error("a publisher's --durability transient-local needs :N (messages kept)", pub_usage);
    }
    if (parsed->kind == DurabilityKind::persistent && parsed->dir.empty()) {
      return usage_error("a publisher's --durability persistent needs :DIR (the log directory)", pub_usage);
    }
    opts.durability = std::move(*parsed);
  }
  if (auto bad = apply_log_options(*args, opts.durability.kind == DurabilityKind::persistent, opts.log)) {
    return usage_error(*bad, pub_usage);
  }
  auto count = args->number("count", args->has("data") ? 1 : 10);
  auto until_seq = args->number("until-seq", 0);
  auto size = args->number("size", 0);
  auto rate = args->real("rate", 0);
  auto wait_subs = args->number("wait-subs", 0);
  auto wait_ms = args->number("wait-ms", 10000);
  auto linger_ms = args->number("linger-ms", 0);
  auto timeout_ms = args->number("timeout-ms", 1000);
  auto batch = args->number("batch", 1);
  for (const auto* r : {&count, &until_seq, &size, &wait_subs, &wait_ms, &linger_ms, &timeout_ms, &batch}) {
    if (!*r) return usage_error(r->error().detail, pub_usage);
  }
  if (!rate) return usage_error(rate.error().detail, pub_usage);
  opts.publish_timeout = std::chrono::milliseconds(*timeout_ms);
  opts.batch_messages = *batch;

  install_stop_signals();
  Node node;
  std::vector<Publisher> pubs;
  for (const auto& topic : topics) {
    auto o = opts;
    o.topic = topic;
    // Several topics keep their logs apart: DIR/<topic> ('/' written %2F), as rill serve does.
    if (topics.size() > 1 && o.durability.kind == DurabilityKind::persistent) {
      o.durability.dir = (std::filesystem::path(opts.durability.dir) / http::topic_dir_name(topic)).string();
    }
    auto pub = node.publisher(o);
    if (!pub) {
      const bool usage = pub.error().code == Errc::invalid_argument || pub.error().code == Errc::unsupported;
      if (usage) return usage_error(pub.error().message(), pub_usage);
      std::fprintf(stderr, "rill: %s\n", pub.error().message().c_str());
      return exit_runtime;
    }
    if (pub->durability() == DurabilityKind::persistent) {
      // Where this run continues the log: a restarted publisher keeps its id and sequence.
      std::fprintf(stderr, "{\"persistent\":{\"publisher\":\"%016llx\",\"next_seq\":%llu}}\n",
                   static_cast<unsigned long long>(pub->id()), static_cast<unsigned long long>(pub->next_sequence()));
      std::fflush(stderr);
    }
    pubs.push_back(std::move(*pub));
  }
  std::vector<std::uint64_t> first_seq;
  for (const auto& p : pubs) first_seq.push_back(p.next_sequence());
  // --until-seq: what is left to reach sequence N (0 when a previous run already did).
  if (args->has("until-seq")) *count = *until_seq >= first_seq[0] ? *until_seq - first_seq[0] + 1 : 0;
  if (*wait_subs > 0) {
    for (auto& p : pubs) {
      if (auto w = wait_subscribers(p, *wait_subs, std::chrono::milliseconds(*wait_ms)); !w) {
        std::fprintf(stderr, "rill: waiting for subscribers: %s\n", w.error().message().c_str());
        return exit_runtime;
      }
    }
  }

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const bool from_stdin = args->has("stdin");
  std::string payload = args->text("data").value_or("");
  const std::uint64_t total = *count * pubs.size();  // --count messages on each topic, in turn
  std::uint64_t sent = 0;
  std::vector<std::uint64_t> sent_on(pubs.size(), 0);
  int rc = exit_ok;
  while (!stopping() && (from_stdin || sent < total)) {
    auto& pub = pubs[sent % pubs.size()];
    if (from_stdin) {
      if (!std::getline(std::cin, payload)) break;
    } else if (!args->has("data")) {
      fill_generated(payload, pub.next_sequence(), *size);
    }
    if (*rate > 0) {  // pace against the start time so rounding does not drift
      const auto due = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(sent / *rate));
      if (clock::now() < due) {
        for (auto& p : pubs) p.flush();  // a paced batching publisher does not sit on messages while it waits
        std::this_thread::sleep_until(due);
      }
    }
    // A timed-out publish sent nothing; try the same message again (it is counted).
    Result<void> r = pub.publish_text(payload);
    while (!r && r.error().code == Errc::timed_out && !stopping()) r = pub.publish_text(payload);
    if (!r) {
      if (r.error().code != Errc::timed_out) {  // no_space, io_error, ...: nothing was sent
        std::fprintf(stderr, "rill: publish failed at seq %llu: %s\n",
                     static_cast<unsigned long long>(pub.next_sequence()), r.error().message().c_str());
        rc = exit_runtime;
      }
      break;
    }
    ++sent_on[sent % pubs.size()];
    ++sent;
  }
  for (auto& p : pubs) p.flush();
  // Keep answering joins, credits, acks and catch-up for a while (late joiners, draining
  // subscribers, durable subscriptions replaying the log).
  const auto linger_end = clock::now() + std::chrono::milliseconds(*linger_ms);
  while (!stopping() && clock::now() < linger_end) {
    bool replaying = false;
    for (auto& p : pubs) {
      const auto replayed = p.stats().replayed;
      p.service();
      replaying = replaying || p.stats().replayed != replayed;
    }
    // Idle: nap. Catching a subscriber up: go straight on with the next slice.
    if (!replaying) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (std::size_t i = 0; i < pubs.size(); ++i) {
    const auto& st = pubs[i].stats();
    const std::uint64_t last_seq = pubs[i].next_sequence() - 1;
    // One line per topic; the topic is named when there are several.
    const std::string topic_field = pubs.size() > 1 ? "\"topic\":\"" + topics[i] + "\"," : "";
    std::fprintf(stderr,
                 "{\"stats\":{%s\"sent\":%llu,\"timeouts\":%llu,\"blocked_ns\":%llu,\"peer_drops\":%llu,"
                 "\"first_seq\":%llu,\"last_seq\":%llu,\"replayed\":%llu,\"acks\":%llu,\"incompatible\":%llu,\"auth_rejected\":%llu}}\n",
                 topic_field.c_str(), static_cast<unsigned long long>(st.sent),
                 static_cast<unsigned long long>(st.timeouts), static_cast<unsigned long long>(st.blocked_ns),
                 static_cast<unsigned long long>(st.peer_drops),
                 static_cast<unsigned long long>(sent_on[i] > 0 ? first_seq[i] : 0),
                 static_cast<unsigned long long>(sent_on[i] > 0 ? last_seq : 0),
                 static_cast<unsigned long long>(st.replayed), static_cast<unsigned long long>(st.acks),
                 static_cast<unsigned long long>(st.incompatible), static_cast<unsigned long long>(st.auth_rejected));
  }
  return rc;
}

}  // namespace rill::cli
