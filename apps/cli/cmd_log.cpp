// rill log list|inspect|replay|dlq DIR: look into a persistent log, dump it, re-publish a
// range of it, list and re-drive dead letters.
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "args.hpp"
#include "output.hpp"
#include "rill/rill.hpp"

namespace rill::cli {

namespace {

// The command, for usage_error's hint; its synopsis and options are on its page in help.cpp.
constexpr std::string_view log_usage = "rill log";

// Replayed and re-driven messages carry where they came from in these headers.
constexpr std::string_view replay_header = "rill-replay-of";
constexpr std::string_view attempts_header = "rill-dead-letter-attempts";

std::string hex_id(std::uint64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, id);
  return buf;
}

int runtime_error(const std::string& what, const Error& e) {
  std::fprintf(stderr, "rill: %s: %s\n", what.c_str(), e.message().c_str());
  return e.code == Errc::invalid_argument ? exit_usage : exit_runtime;
}

Result<Log> open_read_only(const std::string& dir, bool verify) {
  return Log::open(dir, {.read_only = true, .verify_all = verify});
}

int log_list(const std::string& dir, const Args& args) {
  auto log = open_read_only(dir, args.has("verify"));
  if (!log) return runtime_error("log " + dir, log.error());
  const auto segs = log->segments();
  std::uint64_t bytes = 0;
  for (const auto& s : segs) bytes += s.bytes;
  const auto& rec = log->recovery();
  std::string line = "{\"log\":{\"dir\":";
  append_json_string(line, dir);
  line += ",\"publisher\":\"" + hex_id(log->publisher_id()) +
          "\",\"first_seq\":" + std::to_string(log->first_sequence()) +
          ",\"last_seq\":" + std::to_string(log->last_sequence()) + ",\"segments\":" + std::to_string(segs.size()) +
          ",\"bytes\":" + std::to_string(bytes) + ",\"records_checked\":" + std::to_string(rec.records_scanned) +
          ",\"torn_tail\":" + (rec.torn_tail ? "true" : "false");
  if (rec.torn_tail) {
    line += ",\"torn_segment\":";
    append_json_string(line, rec.torn_segment);
    line += ",\"torn_offset\":" + std::to_string(rec.torn_offset) + ",\"torn_bytes\":" + std::to_string(rec.torn_bytes);
  }
  line += "}}\n";
  std::fputs(line.c_str(), stdout);
  for (const auto& s : segs) {
    std::printf("{\"segment\":{\"file\":\"%s\",\"base_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64 ",\"records\":%" PRIu64
                ",\"bytes\":%" PRIu64 ",\"first_ts_ns\":%" PRId64 ",\"max_ts_ns\":%" PRId64 "}}\n",
                s.file.c_str(), s.base_seq, s.last_seq, s.records, s.bytes, s.first_ts_ns, s.max_ts_ns);
  }
  auto acks = AckStore::open(std::filesystem::path(dir) / "acks");
  if (!acks) return runtime_error("acks", acks.error());
  for (const auto& [name, seq] : acks->all()) {
    line = "{\"ack\":{\"name\":";
    append_json_string(line, name);
    const auto last = log->last_sequence();
    line += ",\"seq\":" + std::to_string(seq) + ",\"behind\":" + std::to_string(last > seq ? last - seq : 0) + "}}\n";
    std::fputs(line.c_str(), stdout);
  }
  const auto dlq_dir = std::filesystem::path(dir) / "dead-letters";
  std::error_code ec;
  if (std::filesystem::is_directory(dlq_dir, ec)) {
    auto dlq = DeadLetterLog::open(dlq_dir, true);
    if (!dlq) return runtime_error("dead letters", dlq.error());
    const auto first = dlq->log().first_sequence();
    const auto last = dlq->log().last_sequence();
    std::printf("{\"dead_letters\":{\"count\":%" PRIu64 ",\"last_seq\":%" PRIu64 ",\"redriven\":%" PRIu64 "}}\n",
                last >= first ? last - first + 1 : 0, last, dlq->redriven());
  }
  return exit_ok;
}

// Walks records [from, to] (to = 0: to the end); `fn` returns false to stop.
template <class Fn>
int walk(Log& log, std::uint64_t from, std::uint64_t to, bool follow, std::uint64_t idle_ms, Fn&& fn) {
  auto rd = log.reader(from);
  if (!rd) return runtime_error("reader", rd.error());
  for (;;) {
    if (stopping()) return exit_ok;
    auto rec = rd->next();
    if (!rec) return runtime_error("log " + log.directory().string(), rec.error());
    if (!*rec) {
      if (!follow) break;
      auto w = rd->wait(std::chrono::milliseconds(idle_ms == 0 ? 200 : idle_ms));
      if (!w) return runtime_error("log", w.error());
      if (!*w && idle_ms != 0) break;
      continue;
    }
    if (to != 0 && (*rec)->sequence > to) break;
    if (!fn(**rec)) break;
  }
  if (rd->lost() > 0) {
    std::fprintf(stderr, "rill: %" PRIu64 " records before sequence %" PRIu64 " were deleted by retention\n",
                 rd->lost(), log.first_sequence());
  }
  return exit_ok;
}

int log_inspect(const std::string& dir, const Args& args) {
  const auto format = parse_format(args.text("format").value_or("json"));
  if (!format) return usage_error("--format must be json, text or hex", log_usage);
  auto from = args.number("from", 0);
  auto to = args.number("to", 0);
  auto count = args.number("count", 0);
  auto idle = args.number("idle-exit-ms", 0);
  auto since = args.number("since-ns", 0);
  for (const auto* r : {&from, &to, &count, &idle, &since}) {
    if (!*r) return usage_error(r->error().detail, log_usage);
  }
  auto log = open_read_only(dir, false);
  if (!log) return runtime_error("log " + dir, log.error());
  std::uint64_t start = *from;
  if (*since != 0) {
    auto rd = log->reader();
    if (!rd) return runtime_error("reader", rd.error());
    if (auto s = rd->seek_time(static_cast<std::int64_t>(*since)); !s) return runtime_error("seek", s.error());
    start = std::max(start, rd->position());
  }
  install_stop_signals();
  Printer printer(*format);
  std::uint64_t printed = 0;
  std::uint64_t malformed = 0;
  const int rc = walk(*log, start, *to, args.has("follow"), *idle, [&](const LogRecord& r) {
    if (r.body.empty()) {  // PROTOCOL.md 13.6: a number handed out, its message never logged
      std::fprintf(stderr, "rill: record %" PRIu64 " is lost: its publisher died before logging it\n", r.sequence);
      return true;
    }
    auto env = verify_envelope(r.body);
    if (!env) {
      ++malformed;
      std::fprintf(stderr, "rill: record %" PRIu64 " is not a valid envelope: %s\n", r.sequence,
                   env.error().message().c_str());
      return true;
    }
    printer.print(MessageView(*env, r.body));
    return *count == 0 || ++printed < *count;
  });
  printer.flush();
  return rc != exit_ok ? rc : malformed > 0 ? exit_runtime : exit_ok;
}

// Publishes through a normal Publisher: fresh publisher id, sequences from 1; the original
// (publisher, sequence) travels in the rill-replay-of header.
struct Republisher {
  Node node;
  std::optional<Publisher> pub;
  std::vector<HeaderKV> headers;
  std::string origin;
  std::string attempts;
  std::uint64_t sent = 0;
  std::uint64_t skipped = 0;

  int open(const std::string& endpoint, const std::string& topic, const Args& args) {
    auto p = node.publisher({.endpoint = endpoint, .topic = topic});
    if (!p) return runtime_error("publisher " + endpoint, p.error());
    pub.emplace(std::move(*p));
    auto wait_subs = args.number("wait-subs", 0);
    auto wait_ms = args.number("wait-ms", 10000);
    if (!wait_subs || !wait_ms) return usage_error("--wait-subs/--wait-ms need whole numbers", log_usage);
    if (*wait_subs > 0) {
      if (auto w = pub->wait_for_subscribers(*wait_subs, std::chrono::milliseconds(*wait_ms)); !w) {
        return runtime_error("waiting for subscribers", w.error());
      }
    }
    return exit_ok;
  }

  Result<void> send(const MessageView& m, std::uint32_t dead_attempts) {
    headers.clear();
    for (std::size_t i = 0; i < m.header_count(); ++i) headers.push_back(m.header_at(i));
    origin = hex_id(m.publisher_id()) + ":" + std::to_string(m.sequence());
    headers.push_back({replay_header, origin});
    if (dead_attempts != 0) {
      attempts = std::to_string(dead_attempts);
      headers.push_back({attempts_header, attempts});
    }
    Result<void> r = pub->publish_bytes(m.payload(), headers);
    while (!r && r.error().code == Errc::timed_out && !stopping()) r = pub->publish_bytes(m.payload(), headers);
    if (r) ++sent;
    return r;
  }

  void finish(const Args& args) {
    pub->flush();
    const auto linger = args.number("linger-ms", 0).value_or(0);
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(linger);
    while (!stopping() && std::chrono::steady_clock::now() < end) {
      pub->service();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::fprintf(stderr, "{\"stats\":{\"sent\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"publisher\":\"%s\"}}\n", sent,
                 skipped, hex_id(pub->id()).c_str());
  }
};

int log_replay(const std::string& dir, const std::string& endpoint, const Args& args) {
  auto from = args.number("from", 0);
  auto to = args.number("to", 0);
  auto rate = args.real("rate", 0);
  if (!from || !to || !rate) return usage_error("--from/--to/--rate need numbers", log_usage);
  auto log = open_read_only(dir, false);
  if (!log) return runtime_error("log " + dir, log.error());
  std::string topic = args.text("topic").value_or("");
  if (topic.empty()) {  // the topic of the first record in range
    auto rd = log->reader(*from);
    if (!rd) return runtime_error("reader", rd.error());
    auto rec = rd->next();
    if (!rec) return runtime_error("log", rec.error());
    if (!*rec) return runtime_error("replay", Error{Errc::invalid_argument, 0, "no record in range"});
    auto env = verify_envelope((*rec)->body);
    if (!env) return runtime_error("record " + std::to_string((*rec)->sequence), env.error());
    topic = MessageView(*env, (*rec)->body).topic();
  }
  install_stop_signals();
  Republisher rp;
  if (const int rc = rp.open(endpoint, topic, args); rc != exit_ok) return rc;
  const auto start = std::chrono::steady_clock::now();
  int failed = exit_ok;
  const int rc = walk(*log, *from, *to, false, 0, [&](const LogRecord& r) {
    auto env = verify_envelope(r.body);
    const MessageView m(env ? *env : nullptr, r.body);
    if (!env || m.topic() != topic) {  // one publisher sends one topic: other topics are left out
      ++rp.skipped;
      return true;
    }
    if (*rate > 0) {
      const auto due = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::chrono::duration<double>(static_cast<double>(rp.sent) / *rate));
      std::this_thread::sleep_until(due);
    }
    if (auto s = rp.send(m, 0); !s) {
      failed = runtime_error("publish", s.error());
      return false;
    }
    return true;
  });
  rp.finish(args);
  return rc != exit_ok ? rc : failed;
}

int log_dlq(const std::string& dir, const Args& args) {
  const auto& pos = args.positional();
  const auto dlq_dir = std::filesystem::path(dir) / "dead-letters";
  const std::string action = pos.size() > 2 ? pos[2] : "list";
  if (action == "list") {
    auto dlq = DeadLetterLog::open(dlq_dir, true);
    if (!dlq) return runtime_error("dead letters in " + dir, dlq.error());
    const auto redriven = dlq->redriven();
    std::string line;
    auto r = dlq->for_each(0, [&](const DeadLetter& d) {
      line = "{\"dlq_seq\":" + std::to_string(d.dlq_seq) + ",\"publisher\":\"" + hex_id(d.publisher_id) +
             "\",\"seq\":" + std::to_string(d.sequence) + ",\"attempts\":" + std::to_string(d.attempts) +
             ",\"dead_ns\":" + std::to_string(d.dead_ns) + ",\"reason\":";
      append_json_string(line, d.reason);
      line += std::string(",\"redriven\":") + (d.dlq_seq <= redriven ? "true" : "false");
      if (auto env = verify_envelope(d.envelope)) {
        const MessageView m(*env, d.envelope);
        line += ",\"topic\":";
        append_json_string(line, m.topic());
        line += ",\"size\":" + std::to_string(m.payload().size()) + ",\"payload\":";
        if (is_printable_utf8(m.payload())) {
          append_json_string(line, m.payload_text());
        } else {
          line += '"';
          append_base64(line, m.payload());
          line += "\",\"encoding\":\"base64\"";
        }
      } else {
        line += ",\"malformed\":true";
      }
      line += "}\n";
      std::fputs(line.c_str(), stdout);
      return true;
    });
    if (!r) return runtime_error("dead letters", r.error());
    return exit_ok;
  }
  if (action != "redrive") return usage_error("dlq takes list or redrive", log_usage);
  if (pos.size() != 4) return usage_error("dlq DIR redrive needs an ENDPOINT", log_usage);
  auto from = args.number("from", 0);
  if (!from) return usage_error(from.error().detail, log_usage);
  auto dlq = DeadLetterLog::open(dlq_dir, false);
  if (!dlq) return runtime_error("dead letters in " + dir, dlq.error());
  const std::uint64_t start = *from != 0 ? *from : dlq->redriven() + 1;
  // Letters are grouped by topic: a publisher sends one topic, so each topic gets its own pass.
  std::string topic;
  auto first = dlq->for_each(start, [&](const DeadLetter& d) {
    auto env = verify_envelope(d.envelope);
    if (env) topic = MessageView(*env, d.envelope).topic();
    return !env;
  });
  if (!first) return runtime_error("dead letters", first.error());
  if (topic.empty()) {
    std::fprintf(stderr, "{\"stats\":{\"sent\":0,\"skipped\":0}}\n");
    return exit_ok;
  }
  install_stop_signals();
  Republisher rp;
  if (const int rc = rp.open(pos[3], topic, args); rc != exit_ok) return rc;
  std::uint64_t last = 0;
  int failed = exit_ok;
  auto r = dlq->for_each(start, [&](const DeadLetter& d) {
    auto env = verify_envelope(d.envelope);
    if (!env || MessageView(*env, d.envelope).topic() != topic) {
      ++rp.skipped;
      return true;
    }
    if (auto s = rp.send(MessageView(*env, d.envelope), d.attempts); !s) {
      failed = runtime_error("publish", s.error());
      return false;
    }
    last = d.dlq_seq;
    return !stopping();
  });
  rp.finish(args);
  if (!r) return runtime_error("dead letters", r.error());
  if (last != 0) {
    if (auto m = dlq->mark_redriven(last); !m) return runtime_error("dead letters", m.error());
  }
  return failed;
}

}  // namespace

int cmd_log(int argc, char** argv) {
  const std::set<std::string> valued{"from",  "to",        "since-ns", "count", "format",   "idle-exit-ms",
                                     "topic", "wait-subs", "wait-ms",  "rate",  "linger-ms"};
  if (wants_help(argc, argv, valued)) return print_help("log");
  auto args = Args::parse(argc, argv, valued, {"verify", "follow"});
  if (!args) return usage_error(args.error().detail, log_usage);
  const auto& pos = args->positional();
  if (pos.size() < 2) return usage_error("log needs an action (list, inspect, replay, dlq) and a DIR", log_usage);
  const auto& action = pos[0];
  const auto& dir = pos[1];
  if (action == "list" && pos.size() == 2) return log_list(dir, *args);
  if (action == "inspect" && pos.size() == 2) return log_inspect(dir, *args);
  if (action == "replay") {
    if (pos.size() != 3) return usage_error("log replay needs DIR and ENDPOINT", log_usage);
    return log_replay(dir, pos[2], *args);
  }
  if (action == "dlq") return log_dlq(dir, *args);
  return usage_error("unknown log action or extra arguments: '" + action + "'", log_usage);
}

}  // namespace rill::cli
