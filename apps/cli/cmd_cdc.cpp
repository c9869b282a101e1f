// rill cdc POSTGRES_URI --slot S --publication P --publish ENDPOINT --durability persistent:DIR:
// change data capture from PostgreSQL (connectors/cdc), run until SIGINT/SIGTERM.
#include <cstdio>
#include <string>

#include "args.hpp"
#include "connectors/cdc/cdc_source.hpp"
#include "connectors/cdc/pg_replication.hpp"
#include "rill/rill.hpp"

namespace rill::cli {

namespace {

constexpr std::string_view cdc_usage = "rill cdc";

}  // namespace

int cmd_cdc(int argc, char** argv) {
  std::set<std::string> valued{"slot",      "publication", "publish",        "durability", "topic-prefix",
                               "snapshot",  "status-ms",   "max-backoff-ms", "timeout-ms"};
  valued.insert(log_valued_options.begin(), log_valued_options.end());
  std::set<std::string> flags(log_flag_options.begin(), log_flag_options.end());
  if (wants_help(argc, argv, valued)) return print_help("cdc");
  auto args = Args::parse(argc, argv, valued, flags);
  if (!args) return usage_error(args.error().detail, cdc_usage);
  if (args->positional().size() != 1) return usage_error("cdc needs one POSTGRES_URI", cdc_usage);
  for (const char* required : {"slot", "publication", "publish", "durability"}) {
    if (!args->has(required)) return usage_error(std::string("cdc needs --") + required, cdc_usage);
  }
  cdc::CdcOptions opts;
  opts.uri = args->positional()[0];
  opts.slot = *args->text("slot");
  opts.publication = *args->text("publication");
  opts.endpoint = *args->text("publish");
  if (auto ok = cdc::check_conninfo(opts.uri); !ok) return usage_error(ok.error().detail, cdc_usage);
  for (const auto* name : {&opts.slot, &opts.publication}) {
    if (!cdc::valid_object_name(*name)) {
      return usage_error("'" + *name + "' cannot name a slot or publication: use a-z, 0-9 and _ (at most 63)", cdc_usage);
    }
  }
  auto durability = parse_durability(*args->text("durability"));
  if (!durability) return usage_error(durability.error().detail, cdc_usage);
  if (durability->kind != DurabilityKind::persistent || durability->dir.empty()) {
    return usage_error("cdc needs --durability persistent:DIR (the logs are what makes it exactly once)", cdc_usage);
  }
  opts.dir = durability->dir;
  // fsync always by default: a message is in the log before it is sent, so a killed run
  // leaves no sequence handed out but never logged (a "lost" record a subscriber would
  // count). --fsync every:MS is faster; the slot is confirmed only after a sync either way.
  opts.log.fsync = FsyncPolicy::always();
  if (auto bad = apply_log_options(*args, true, opts.log)) return usage_error(*bad, cdc_usage);
  if (auto p = args->text("topic-prefix")) opts.topic_prefix = *p;
  if (auto s = args->text("snapshot")) {
    if (*s != "initial" && *s != "never") return usage_error("--snapshot takes initial or never", cdc_usage);
    opts.snapshot_initial = *s == "initial";
  }
  auto status_ms = args->number("status-ms", 200);
  auto backoff_ms = args->number("max-backoff-ms", 5000);
  auto timeout_ms = args->number("timeout-ms", 1000);
  for (const auto* r : {&status_ms, &backoff_ms, &timeout_ms}) {
    if (!*r) return usage_error(r->error().detail, cdc_usage);
  }
  opts.status_interval = std::chrono::milliseconds(*status_ms);
  opts.max_backoff = std::chrono::milliseconds(std::max<std::uint64_t>(*backoff_ms, 100));
  opts.publish_timeout = std::chrono::milliseconds(*timeout_ms);

  install_stop_signals();
  auto stats = cdc::run_cdc(opts, [] { return stopping(); });
  if (!stats) {
    std::fprintf(stderr, "rill: cdc: %s\n", stats.error().message().c_str());
    return exit_runtime;
  }
  std::fprintf(stderr,
               "{\"stats\":{\"transactions\":%llu,\"events\":%llu,\"duplicates\":%llu,\"reconnects\":%llu,"
               "\"confirmed_lsn\":%llu}}\n",
               static_cast<unsigned long long>(stats->transactions), static_cast<unsigned long long>(stats->events),
               static_cast<unsigned long long>(stats->duplicates), static_cast<unsigned long long>(stats->reconnects),
               static_cast<unsigned long long>(stats->confirmed_lsn));
  return exit_ok;
}

}  // namespace rill::cli
