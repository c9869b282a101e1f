// rill pub ENDPOINT TOPIC: publishes generated, given or stdin payloads.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "args.hpp"
#include "rill/rill.hpp"

namespace rill::cli {

namespace {

constexpr std::string_view pub_usage =
    "rill pub ENDPOINT TOPIC [--count N] [--rate MSGS_PER_S] [--size BYTES] [--data TEXT | --stdin] "
    "[--wait-subs N] [--wait-ms MS] [--linger-ms MS] [--timeout-ms MS] [--batch N] [--durability volatile]";

// Generated payloads say which message they are and pad to --size, so a reader can check them.
void fill_generated(std::string& out, std::uint64_t seq, std::size_t size) {
  out = "rill " + std::to_string(seq);
  if (out.size() < size) out.append(size - out.size(), '.');
}

}  // namespace

int cmd_pub(int argc, char** argv) {
  auto args = Args::parse(argc, argv,
                          {"count", "rate", "size", "data", "wait-subs", "wait-ms", "linger-ms", "timeout-ms", "batch", "durability"},
                          {"stdin", "help"});
  if (!args) return usage_error(args.error().detail, pub_usage);
  if (args->has("help")) {
    std::printf("usage: %.*s\n", static_cast<int>(pub_usage.size()), pub_usage.data());
    return exit_ok;
  }
  if (args->positional().size() != 2) return usage_error("pub needs ENDPOINT and TOPIC", pub_usage);
  if (args->has("data") && args->has("stdin")) return usage_error("--data and --stdin exclude each other", pub_usage);
  if (auto d = args->text("durability"); d && *d != "volatile") {
    return usage_error("--durability " + *d + " is not available yet (only volatile)", pub_usage);
  }
  auto count = args->number("count", args->has("data") ? 1 : 10);
  auto size = args->number("size", 0);
  auto rate = args->real("rate", 0);
  auto wait_subs = args->number("wait-subs", 0);
  auto wait_ms = args->number("wait-ms", 10000);
  auto linger_ms = args->number("linger-ms", 0);
  auto timeout_ms = args->number("timeout-ms", 1000);
  auto batch = args->number("batch", 1);
  for (const auto* r : {&count, &size, &wait_subs, &wait_ms, &linger_ms, &timeout_ms, &batch}) {
    if (!*r) return usage_error(r->error().detail, pub_usage);
  }
  if (!rate) return usage_error(rate.error().detail, pub_usage);

  install_stop_signals();
  Node node;
  auto pub = node.publisher({.endpoint = args->positional()[0],
                             .topic = args->positional()[1],
                             .publish_timeout = std::chrono::milliseconds(*timeout_ms),
                             .batch_messages = *batch});
  if (!pub) {
    const bool usage = pub.error().code == Errc::invalid_argument || pub.error().code == Errc::unsupported;
    std::fprintf(stderr, "rill: %s\n", pub.error().message().c_str());
    return usage ? exit_usage : exit_runtime;
  }
  if (*wait_subs > 0) {
    if (auto w = pub->wait_for_subscribers(*wait_subs, std::chrono::milliseconds(*wait_ms)); !w) {
      std::fprintf(stderr, "rill: waiting for subscribers: %s\n", w.error().message().c_str());
      return exit_runtime;
    }
  }

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const bool from_stdin = args->has("stdin");
  std::string payload = args->text("data").value_or("");
  std::uint64_t sent = 0;
  int rc = exit_ok;
  while (!stopping() && (from_stdin || sent < *count)) {
    if (from_stdin) {
      if (!std::getline(std::cin, payload)) break;
    } else if (!args->has("data")) {
      fill_generated(payload, pub->next_sequence(), *size);
    }
    if (*rate > 0) {  // pace against the start time so rounding does not drift
      const auto due = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(sent / *rate));
      if (clock::now() < due) {
        pub->flush();  // a paced batching publisher does not sit on messages while it waits
        std::this_thread::sleep_until(due);
      }
    }
    // A timed-out publish sent nothing; try the same message again (it is counted).
    Result<void> r = pub->publish_text(payload);
    while (!r && r.error().code == Errc::timed_out && !stopping()) r = pub->publish_text(payload);
    if (!r) {
      if (r.error().code != Errc::timed_out) {
        std::fprintf(stderr, "rill: publish failed: %s\n", r.error().message().c_str());
        rc = exit_runtime;
      }
      break;
    }
    ++sent;
  }
  pub->flush();
  // Keep answering joins and credits for a while (late joiners, draining subscribers).
  const auto linger_end = clock::now() + std::chrono::milliseconds(*linger_ms);
  while (!stopping() && clock::now() < linger_end) {
    pub->service();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto& st = pub->stats();
  std::fprintf(stderr, "{\"stats\":{\"sent\":%llu,\"timeouts\":%llu,\"blocked_ns\":%llu,\"peer_drops\":%llu}}\n",
               static_cast<unsigned long long>(st.sent), static_cast<unsigned long long>(st.timeouts),
               static_cast<unsigned long long>(st.blocked_ns), static_cast<unsigned long long>(st.peer_drops));
  return rc;
}

}  // namespace rill::cli
