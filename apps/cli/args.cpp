#include "args.hpp"

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>

#include "rill/log.hpp"

namespace rill::cli {

Result<Args> Args::parse(int argc, char** argv, const std::set<std::string>& valued, const std::set<std::string>& flags) {
  Args args;
  for (int i = 0; i < argc; ++i) {
    std::string word = argv[i];
    if (!word.starts_with("--")) {
      args.m_positional.push_back(std::move(word));
      continue;
    }
    auto name = word.substr(2);
    std::string value;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (valued.contains(name)) {
      if (i + 1 >= argc) return fail(Errc::invalid_argument, "--" + name + " needs a value");
      value = argv[++i];
    }
    if (!valued.contains(name) && !flags.contains(name)) return fail(Errc::invalid_argument, "unknown option --" + name);
    args.m_values[name] = value;
  }
  return args;
}

std::optional<std::string> Args::text(const std::string& name) const {
  const auto it = m_values.find(name);
  if (it == m_values.end()) return std::nullopt;
  return it->second;
}

Result<std::uint64_t> Args::number(const std::string& name, std::uint64_t fallback) const {
  const auto it = m_values.find(name);
  if (it == m_values.end()) return fallback;
  std::uint64_t value = 0;
  const auto& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size()) {
    return fail(Errc::invalid_argument, "--" + name + " needs a whole number, got '" + s + "'");
  }
  return value;
}

Result<double> Args::real(const std::string& name, double fallback) const {
  const auto it = m_values.find(name);
  if (it == m_values.end()) return fallback;
  double value = 0;
  const auto& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size() || value < 0) {
    return fail(Errc::invalid_argument, "--" + name + " needs a non-negative number, got '" + s + "'");
  }
  return value;
}

int usage_error(std::string_view message, std::string_view usage) {
  // One line, so scripts can show it as is; the synopsis and options are behind rill help.
  const auto space = usage.find(' ');
  if (space == std::string_view::npos) {  // rill itself
    std::fprintf(stderr, "rill: %.*s (see 'rill --help')\n", static_cast<int>(message.size()), message.data());
    return exit_usage;
  }
  auto command = usage.substr(space + 1);
  command = command.substr(0, command.find(' '));
  std::fprintf(stderr, "rill: %.*s (see 'rill help %.*s')\n", static_cast<int>(message.size()), message.data(),
               static_cast<int>(command.size()), command.data());
  return exit_usage;
}

int usage_error_no_hint(std::string_view message) {
  std::fprintf(stderr, "rill: %.*s\n", static_cast<int>(message.size()), message.data());
  return exit_usage;
}

bool wants_help(int argc, char** argv, const std::set<std::string>& valued) {
  for (int i = 0; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word == "--help" || word == "-h") return true;
    // The word after a valued option is its value, whatever it looks like.
    if (word.starts_with("--") && word.find('=') == std::string_view::npos &&
        valued.contains(std::string(word.substr(2)))) {
      ++i;
    }
  }
  return false;
}

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true, std::memory_order_relaxed); }
}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

bool stopping() noexcept { return g_stop.load(std::memory_order_relaxed); }

namespace {
std::atomic<bool> g_reload{false};
void on_reload_signal(int) { g_reload.store(true, std::memory_order_relaxed); }
}  // namespace

void install_reload_signal() {
  struct sigaction sa {};
  sa.sa_handler = on_reload_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGHUP, &sa, nullptr);
}

bool reload_requested() noexcept { return g_reload.exchange(false, std::memory_order_relaxed); }

std::optional<std::string> apply_log_options(const Args& args, bool persistent, LogOptions& log) {
  for (const auto* names : {&log_valued_options, &log_flag_options}) {
    for (const auto& name : *names) {
      if (args.has(name) && !persistent) return "--" + name + " needs --durability persistent:DIR";
    }
  }
  if (auto f = args.text("fsync")) {
    auto p = parse_fsync_policy(*f);
    if (!p) return p.error().detail;
    log.fsync = *p;
  }
  auto segment = args.number("segment-bytes", log.segment_bytes);
  auto bytes = args.number("retention-bytes", log.retention_bytes);
  auto age = args.number("retention-age-ms", static_cast<std::uint64_t>(log.retention_age.count()));
  for (const auto* r : {&segment, &bytes, &age}) {
    if (!*r) return r->error().detail;
  }
  if (*segment == 0) return std::string("--segment-bytes must be > 0");
  log.segment_bytes = *segment;
  log.retention_bytes = *bytes;
  log.retention_age = std::chrono::milliseconds(*age);
  log.direct_io = args.has("direct-io");
  return std::nullopt;
}

}  // namespace rill::cli
