// rill query ENDPOINT... (--file F | --sql TEXT): runs a streaming SQL script. The source
// table's topic is subscribed on the endpoints; a SELECT prints its rows, INSERT INTO sink
// publishes them on the sink's topic and endpoint.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "args.hpp"
#include "rill/rill.hpp"
#include "rill/sql_job.hpp"

namespace rill::cli {

namespace {

constexpr std::string_view query_usage = "rill query";

std::string iso(stream::TimeMs ms) {
  return sql::to_text(sql::Value{.type = sql::Type::timestamp, .i = ms, .d = 0, .s = {}});
}

// Prints rows and markers on stdout, one line each.
class RowPrinter {
 public:
  RowPrinter(bool json, const std::vector<sql::Column>& columns) : m_json(json), m_columns(columns) {}
  void row(const sql::OutputRow& r) {
    std::string line;
    if (m_json) {
      line = "{\"op\":\"" + std::string(stream::to_string(r.kind)) +
             "\",\"row\":" + sql::row_object_json(m_columns, r.values) + "}\n";
    } else {
      line = std::string(stream::to_string(r.kind)) + "[";
      for (std::size_t i = 0; i < r.values.size(); ++i) line += (i > 0 ? ", " : "") + sql::to_text(r.values[i]);
      line += "]\n";
    }
    std::fputs(line.c_str(), stdout);
  }
  void watermark(stream::TimeMs w) {
    if (w == stream::max_time) return;  // the end of input, not a time
    if (m_json) {
      std::printf("{\"watermark\":\"%s\"}\n", iso(w).c_str());
    } else {
      std::printf("watermark %s\n", iso(w).c_str());
    }
  }

 private:
  bool m_json;
  const std::vector<sql::Column>& m_columns;
};

// Publishes rows as JSON objects with header op = +I/-U/+U/-D, markers as
// {"watermark": ms} with header kind = watermark (the stream engine's conventions).
class RowPublisher {
 public:
  RowPublisher(Publisher& publisher, const std::vector<sql::Column>& columns) : m_pub(publisher), m_columns(columns) {}
  /// After a restore: `outputs` were sent up to the checkpoint, and the sink's log holds
  /// `in_log`; the outputs between, computed again, are not published twice.
  void resume(std::uint64_t outputs, std::uint64_t in_log) {
    m_outputs = outputs;
    m_skip = in_log > outputs ? in_log - outputs : 0;
  }
  /// Outputs (rows and markers) sent or skipped as already sent, since the first run.
  [[nodiscard]] std::uint64_t outputs() const noexcept { return m_outputs; }
  void row(const sql::OutputRow& r) {
    const HeaderKV headers[] = {{"op", stream::to_string(r.kind)}};
    send(sql::row_object_json(m_columns, r.values), headers);
  }
  void watermark(stream::TimeMs w) {
    const HeaderKV headers[] = {{"kind", "watermark"}};
    send("{\"watermark\":" + std::to_string(w) + "}", headers);
  }
  [[nodiscard]] std::uint64_t failed() const noexcept { return m_failed; }
  [[nodiscard]] const std::string& last_error() const noexcept { return m_error; }

 private:
  void send(const std::string& payload, std::span<const HeaderKV> headers) {
    ++m_outputs;
    if (m_skip > 0) {
      --m_skip;
      return;
    }
    // timed_out: a backpressure subscriber held it back; try again a few times.
    auto r = m_pub.publish_text(payload, headers);
    for (int tries = 0; !r && r.error().code == Errc::timed_out && tries < 3; ++tries)
      r = m_pub.publish_text(payload, headers);
    if (!r) {
      ++m_failed;
      m_error = r.error().message();
    }
  }
  Publisher& m_pub;
  const std::vector<sql::Column>& m_columns;
  std::uint64_t m_failed = 0;
  std::uint64_t m_outputs = 0;
  std::uint64_t m_skip = 0;
  std::string m_error;
};

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

int cmd_query(int argc, char** argv) {
  const std::set<std::string> valued{"file",         "sql",   "format",        "count",
                                     "idle-exit-ms", "state", "checkpoint-ms", "wait-subs"};
  if (wants_help(argc, argv, valued)) return print_help("query");
  auto args = Args::parse(argc, argv, valued, {});
  if (!args) return usage_error(args.error().detail, query_usage);
  if (args->positional().empty()) return usage_error("query needs at least one ENDPOINT to subscribe on", query_usage);
  if (args->has("file") == args->has("sql"))
    return usage_error("query needs one of --file FILE or --sql TEXT", query_usage);
  const auto format = args->text("format").value_or("json");
  if (format != "json" && format != "text") return usage_error("--format must be json or text", query_usage);
  auto count = args->number("count", 0);
  auto idle_exit = args->number("idle-exit-ms", 0);
  auto wait_subs = args->number("wait-subs", 0);
  auto checkpoint_ms = args->number("checkpoint-ms", 1000);
  for (const auto* r : {&count, &idle_exit, &wait_subs, &checkpoint_ms}) {
    if (!*r) return usage_error(r->error().detail, query_usage);
  }
  std::string script;
  if (auto f = args->text("file")) {
    auto text = read_file(*f);
    if (!text) return usage_error_no_hint("cannot read " + *f);
    script = std::move(*text);
  } else {
    script = *args->text("sql");
  }
  auto job = sql::Job::compile(script);
  if (!job) return usage_error_no_hint(job.error().to_string());
  const std::string topic = job->source().option("topic");
  if (topic.empty()) return usage_error_no_hint("table '" + job->source().name + "' has no 'topic' option");

  const auto state = args->text("state");
  if (state && job->sink() == nullptr) {
    return usage_error("--state needs INSERT INTO a sink (printed rows cannot be exactly once)", query_usage);
  }
  if (!state && args->has("checkpoint-ms")) return usage_error("--checkpoint-ms needs --state DIR", query_usage);
  if (state) {
    std::error_code ec;
    std::filesystem::create_directories(*state, ec);
    if (ec) return usage_error_no_hint("cannot create " + *state + ": " + ec.message());
  }

  install_stop_signals();
  Node node;
  std::optional<Publisher> publisher;
  if (const sql::Table* sink = job->sink()) {
    const std::string endpoint = sink->option("endpoint");
    if (endpoint.empty()) return usage_error_no_hint("sink table '" + sink->name + "' has no 'endpoint' option");
    PublisherOptions po{.endpoint = endpoint, .topic = sink->option("topic")};
    if (state) {
      // Exactly once downstream: every row is in the sink's log before it is sent, and after
      // a restart the sequence continues from that log (the rows it holds are not sent twice).
      po.durability = Durability::persistent(*state + "/sink-log");
      po.log.fsync = FsyncPolicy::always();
    }
    auto p = node.publisher(po);
    if (!p) {
      std::fprintf(stderr, "rill: sink %s: %s\n", endpoint.c_str(), p.error().message().c_str());
      return exit_runtime;
    }
    publisher.emplace(std::move(*p));
    // As rill pub --wait-subs: the sink's readers are there before the first row.
    if (*wait_subs > 0) {
      auto n = publisher->wait_for_subscribers(*wait_subs, std::chrono::seconds(20));
      if (!n) {
        std::fprintf(stderr, "rill: sink %s: %s\n", endpoint.c_str(), n.error().message().c_str());
        return exit_runtime;
      }
    }
  } else if (*wait_subs > 0) {
    return usage_error("--wait-subs needs an INSERT INTO sink", query_usage);
  }
  SubscriberOptions opts;
  opts.endpoints = args->positional();
  opts.prefix = topic;
  // A query's result is only right with every input: the publisher waits for it, nothing is dropped.
  opts.policy = Policy::backpressure(1024);
  if (state) {
    // Input from the last checkpoint on: a durable subscription acknowledged only as far as
    // a checkpoint holds (the input publisher must be persistent).
    opts.durability = Durability::persistent();
    opts.durable_name = "query";
    opts.state_dir = *state;
    opts.auto_ack = false;
    opts.handled_on_ack = true;
  }
  auto sub = node.subscriber(opts);
  if (!sub) {
    std::fprintf(stderr, "rill: %s\n", sub.error().message().c_str());
    return sub.error().code == Errc::invalid_argument ? exit_usage : exit_runtime;
  }

  RowPrinter printer(format == "json", job->columns());
  std::optional<RowPublisher> sink;
  if (publisher) sink.emplace(*publisher, job->columns());
  std::uint64_t rows = 0;
  sql::JobPositions positions;  // inputs handled so far
  job->start(sql::JobOutput{.row =
                                [&](const sql::OutputRow& r) {
                                  ++rows;
                                  if (sink) {
                                    sink->row(r);
                                  } else {
                                    printer.row(r);
                                  }
                                },
                            .watermark =
                                [&](stream::TimeMs w) {
                                  if (sink) {
                                    sink->watermark(w);
                                  } else {
                                    printer.watermark(w);
                                  }
                                }});

  const std::string checkpoint_path = state ? *state + "/query.ckpt" : std::string();
  if (state && std::filesystem::exists(checkpoint_path)) {
    auto at = job->restore(checkpoint_path);
    if (!at) {
      std::fprintf(stderr, "rill: %s\n", at.error().c_str());
      return exit_runtime;
    }
    positions = std::move(*at);
  }
  if (sink) sink->resume(positions.outputs, publisher->next_sequence() - 1);
  const auto checkpoint = [&]() -> bool {
    positions.outputs = sink->outputs();
    if (auto r = job->checkpoint(checkpoint_path, positions); !r) {
      std::fprintf(stderr, "rill: checkpoint: %s\n", r.error().c_str());
      return false;
    }
    // Acknowledged only once a checkpoint holds it: after a crash the rest comes again.
    for (const auto& [id, seq] : positions.inputs) (void)sub->ack(id, seq);
    return true;
  };

  const auto handler = [&](const MessageView& m) {
    auto& last = positions.inputs[m.publisher_id()];
    if (m.sequence() <= last) return;  // before the restored position: already in the state
    last = m.sequence();
    // Exactly the table's topic (the subscription matches by prefix), and no upstream markers.
    if (m.topic() != topic || m.header("kind")) return;
    job->feed(m.payload_text(), m.publisher_id(), m.sequence());
  };
  using clock = std::chrono::steady_clock;
  auto last_activity = clock::now();
  auto last_checkpoint = clock::now();
  while (!stopping() && (*count == 0 || rows < *count)) {
    const auto n = sub->wait_poll(handler, 256, std::chrono::milliseconds(20));
    const auto now = clock::now();
    if (state && now - last_checkpoint >= std::chrono::milliseconds(*checkpoint_ms)) {
      if (!checkpoint()) return exit_runtime;
      last_checkpoint = now;
    }
    if (n > 0) {
      last_activity = now;
    } else {
      job->tick();
      std::fflush(stdout);
      if (*idle_exit > 0 && now - last_activity >= std::chrono::milliseconds(*idle_exit)) break;
    }
  }
  // End of input: the windows still open close now (their rows are complete for what came).
  if (*count == 0 || rows < *count) job->finish();
  if (publisher) publisher->flush();
  if (state && !checkpoint()) return exit_runtime;
  std::fflush(stdout);
  const auto s = job->stats();
  std::fprintf(
      stderr,
      "{\"stats\":{\"inputs\":%llu,\"bad_input\":%llu,\"filtered\":%llu,\"rows\":%llu,\"late_dropped\":%llu%s}}\n",
      static_cast<unsigned long long>(s.inputs), static_cast<unsigned long long>(s.bad_input),
      static_cast<unsigned long long>(s.filtered), static_cast<unsigned long long>(s.rows),
      static_cast<unsigned long long>(s.late_dropped),
      sink ? (",\"publish_failed\":" + std::to_string(sink->failed())).c_str() : "");
  if (sink && sink->failed() > 0) {
    std::fprintf(stderr, "rill: %llu rows could not be published: %s\n",
                 static_cast<unsigned long long>(sink->failed()), sink->last_error().c_str());
    return exit_runtime;
  }
  return exit_ok;
}

}  // namespace rill::cli
