// rill sub ENDPOINT... TOPIC_PREFIX: prints what arrives (json, text, hex) and final stats.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "args.hpp"
#include "output.hpp"
#include "rill/rill.hpp"

namespace rill::cli {

namespace {

// The command, for usage_error's hint; its synopsis and options are on its page in help.cpp.
constexpr std::string_view sub_usage = "rill sub";

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

// The last line of stdout when it is a regular file opened for append ("" otherwise).
// A durable run writes every handled message as one line with one write(2), so after a
// kill -9 inside the handler this line says whether the in-doubt message got out.
std::string last_output_line() {
  struct stat st {};
  const int flags = ::fcntl(STDOUT_FILENO, F_GETFL);
  if (::fstat(STDOUT_FILENO, &st) != 0 || !S_ISREG(st.st_mode) || flags < 0 || (flags & O_APPEND) == 0) return {};
  // `>>` opens it write-only: read it through a second descriptor of our own.
  const int fd = ::open("/proc/self/fd/1", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string tail;
  off_t end = st.st_size;
  constexpr off_t chunk = 64 << 10;
  // Backwards, a chunk at a time, until the line before the last newline starts.
  while (end > 0) {
    const off_t start = end > chunk ? end - chunk : 0;
    std::string buf(static_cast<std::size_t>(end - start), '\0');
    if (::pread(fd, buf.data(), buf.size(), start) != static_cast<ssize_t>(buf.size())) break;
    tail.insert(0, buf);
    end = start;
    // A line is written whole or (disk full) cut short: an unterminated last line was not.
    if (tail.back() != '\n') break;
    const auto nl = tail.size() >= 2 ? tail.rfind('\n', tail.size() - 2) : std::string::npos;
    if (nl != std::string::npos) {
      ::close(fd);
      return tail.substr(nl + 1, tail.size() - nl - 2);
    }
  }
  ::close(fd);
  if (end > 0 || tail.empty() || tail.back() != '\n') return {};
  tail.pop_back();  // the file is one line
  return tail;
}

// Does this json output line carry (publisher, seq)? A '"' inside a json string is always
// escaped, so the first `,"publisher":"` is the field, never part of the topic.
bool line_is(const std::string& line, std::uint64_t publisher, std::uint64_t seq) {
  char want[80];
  std::snprintf(want, sizeof want, ",\"publisher\":\"%016llx\",\"seq\":%llu,",
                static_cast<unsigned long long>(publisher), static_cast<unsigned long long>(seq));
  return line.starts_with("{\"topic\":") && line.find(want) != std::string::npos;
}

}  // namespace

int cmd_sub(int argc, char** argv) {
  const std::set<std::string> valued{
      "count", "idle-exit-ms", "policy", "format", "work-us", "idle", "durable", "from", "group", "durability",
      "state-dir", "max-attempts", "backoff-ms", "fail-if",
      // webhook delivery (an http:// or https:// positional)
      "secret-file", "retry-schedule", "retry-jitter", "deliver-timeout-ms", "window", "dead-letter", "ca-file"};
  if (wants_help(argc, argv, valued)) return print_help("sub");
  auto args = Args::parse(argc, argv, valued, {});
  if (!args) return usage_error(args.error().detail, sub_usage);
  const auto& pos = args->positional();
  if (pos.size() < 2) return usage_error("sub needs at least one ENDPOINT and a TOPIC_PREFIX", sub_usage);
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
  if (auto d = args->text("durability")) {
    // What the subscription requests: "transient-local" alone asks for all the publisher keeps.
    auto durability = *d == "transient-local" ? Durability::transient_local(0) : parse_durability(*d);
    if (!durability) return usage_error(durability.error().detail, sub_usage);
    if (durability->kind == DurabilityKind::persistent && !durability->dir.empty()) {
      return usage_error("a subscription requests plain 'persistent' (the log directory is the publisher's)",
                         sub_usage);
    }
    opts.durability = *durability;
  }
  if (auto name = args->text("durable")) {
    opts.durable_name = *name;
    if (!args->has("durability")) opts.durability = Durability::persistent();
    // A durable subscription loses nothing by default: the publisher waits for it.
    if (!args->has("policy")) opts.policy = Policy::backpressure(1024);
  }
  if (auto from = args->text("from")) {
    auto f = parse_start_from(*from);
    if (!f) return usage_error(f.error().detail, sub_usage);
    opts.from = *f;
  }
  if (auto g = args->text("group")) opts.group = *g;
  if (auto dir = args->text("state-dir")) opts.state_dir = *dir;
  auto max_attempts = args->number("max-attempts", 0);
  auto backoff_ms = args->number("backoff-ms", 10);
  for (const auto* r : {&max_attempts, &backoff_ms}) {
    if (!*r) return usage_error(r->error().detail, sub_usage);
  }
  if (*max_attempts > 1000) return usage_error("--max-attempts above 1000", sub_usage);
  opts.retry.max_attempts = static_cast<unsigned>(*max_attempts);
  opts.retry.backoff = std::chrono::milliseconds(*backoff_ms);
  opts.retry.max_backoff = std::max(opts.retry.max_backoff, opts.retry.backoff);
  const auto fail_if = args->text("fail-if");
#ifdef RILL_WITH_HTTP
  if (!deliver_url.empty()) {
    // The handler is the deliverer: these shape a printing handler, which it is not.
    for (const char* name : {"format", "work-us", "fail-if", "max-attempts", "backoff-ms"}) {
      if (args->has(name)) {
        return usage_error(std::string("--") + name +
                               " does not apply to webhook delivery (retries: --retry-schedule; failures: "
                               "--dead-letter FILE)",
                           sub_usage);
      }
    }
    if (opts.durable_name.empty()) {
      for (const char* name : {"from", "state-dir"}) {
        if (args->has(name)) return usage_error(std::string("--") + name + " needs --durable NAME", sub_usage);
      }
    } else if (!opts.group.empty()) {
      return usage_error("durable webhook delivery does not combine with --group", sub_usage);
    }
    return run_delivery(*args, opts, deliver_url, sub_usage);
  }
#else
  if (!deliver_url.empty()) {
    return usage_error("webhook delivery to a URL (not built in this build): configure with -DRILL_WITH_HTTP=ON",
                       sub_usage);
  }
#endif
  if (auto dir = args->text("dead-letter")) opts.retry.dead_letter_dir = *dir;
  if (args->has("dead-letter") && opts.retry.max_attempts == 0) opts.retry.max_attempts = 3;
  const auto format_name = args->text("format").value_or("json");
  auto format = parse_format(format_name);
  if (!format) return usage_error("--format must be json, text or hex", sub_usage);
  auto count = args->number("count", 0);
  auto idle_exit = args->number("idle-exit-ms", 0);
  auto work_us = args->number("work-us", 0);
  for (const auto* r : {&count, &idle_exit, &work_us}) {
    if (!*r) return usage_error(r->error().detail, sub_usage);
  }

  const bool durable = !opts.durable_name.empty();
  bool refused = false;
  std::string refusal;
  opts.on_incompatible = [&](const IncompatibleEvent& e) {
    refused = true;
    refusal = "publisher " + e.endpoint + " refused the subscription: it offers " + std::string(to_string(e.offered)) +
              ", this subscription asks for " + std::string(to_string(e.requested));
  };
  opts.on_security_error = [&](const SecurityEvent& e) {
    refused = true;
    refusal = "cannot connect securely to " + e.endpoint + ": " + e.reason;
  };
  if (durable && *format == Format::json) {
    // Resolved by what reached stdout before the crash (see last_output_line).
    opts.in_doubt = [tail = std::string()](std::uint64_t publisher, std::uint64_t seq) mutable {
      if (tail.empty()) tail = last_output_line();
      return line_is(tail, publisher, seq);
    };
  }

  install_stop_signals();
  Node node;
  auto sub = node.subscriber(opts);
  if (!sub) {
    const bool usage = sub.error().code == Errc::invalid_argument || sub.error().code == Errc::unsupported;
    if (usage) return usage_error(sub.error().message(), sub_usage);
    std::fprintf(stderr, "rill: %s\n", sub.error().message().c_str());
    return exit_runtime;
  }

  Printer printer(*format);
  if (durable) printer.write_lines_directly();
  using clock = std::chrono::steady_clock;
  auto last_activity = clock::now();
  std::uint64_t handled = 0;
  const auto handler = [&](const MessageView& m) -> Result<void> {
    if (fail_if && m.payload_text().find(*fail_if) != std::string_view::npos) {
      return fail(Errc::invalid_argument, "payload contains '" + *fail_if + "' (--fail-if)");
    }
    printer.print(m);
    simulate_work(*work_us);
    ++handled;
    return {};
  };
  while (!stopping() && !refused && (*count == 0 || handled < *count)) {
    // One message per round when a handler is slow, so the policy sees every arrival in between.
    const std::size_t limit = *work_us > 0 ? 1 : (*count == 0 ? 256 : std::min<std::uint64_t>(256, *count - handled));
    const auto n = sub->wait_poll_checked(handler, limit, std::chrono::milliseconds(20));
    const auto now = clock::now();
    if (n > 0) {
      last_activity = now;
    } else {
      printer.flush();
      if (*idle_exit > 0 && now - last_activity >= std::chrono::milliseconds(*idle_exit)) break;
    }
  }
  if (refused) {
    printer.flush();
    std::fprintf(stderr, "rill: %s\n", refusal.c_str());
    return exit_runtime;
  }
  sub->poll_checked(handler, 0);  // settle credits, acks and tails of departed publishers
  printer.print_stats(sub->stats());
  return exit_ok;
}

}  // namespace rill::cli
