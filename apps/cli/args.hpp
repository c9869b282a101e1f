// A tiny command-line reader: positional words and --name VALUE options.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "rill/error.hpp"

namespace rill {
struct SubscriberOptions;
struct LogOptions;
}  // namespace rill

namespace rill::cli {

/// Exit codes of every rill command.
inline constexpr int exit_ok = 0;
inline constexpr int exit_runtime = 1;
inline constexpr int exit_usage = 2;

/// Parsed arguments of one subcommand.
class Args {
 public:
  /// Splits argv into positionals and options; `flags` take no value, `valued` take one.
  static Result<Args> parse(int argc, char** argv, const std::set<std::string>& valued,
                            const std::set<std::string>& flags);

  [[nodiscard]] const std::vector<std::string>& positional() const noexcept { return m_positional; }
  [[nodiscard]] bool has(const std::string& name) const { return m_values.contains(name); }
  [[nodiscard]] std::optional<std::string> text(const std::string& name) const;
  /// A non-negative integer option, or `fallback` when absent.
  [[nodiscard]] Result<std::uint64_t> number(const std::string& name, std::uint64_t fallback) const;
  [[nodiscard]] Result<double> real(const std::string& name, double fallback) const;

 private:
  std::vector<std::string> m_positional;
  std::map<std::string, std::string> m_values;
};

/// The persistent log's options of `rill pub` and `rill serve`: valued ones and flags, to
/// add to what Args::parse accepts.
inline const std::set<std::string> log_valued_options{"fsync", "segment-bytes", "retention-bytes", "retention-age-ms"};
inline const std::set<std::string> log_flag_options{"direct-io"};
/// Applies them to `log`; a message naming the bad one otherwise (also when one is given
/// and the durability is not persistent).
[[nodiscard]] std::optional<std::string> apply_log_options(const Args& args, bool persistent, LogOptions& log);

/// Prints one line "rill: <message> (see 'rill help CMD')" on stderr, CMD being the word after
/// "rill" in `usage` ("rill pub"); returns exit_usage.
int usage_error(std::string_view message, std::string_view usage);
/// The same for a message that already says where to look: "rill: <message>" alone.
int usage_error_no_hint(std::string_view message);

/// Whether argv asks for help: --help or -h anywhere, except as the value of a `valued` option
/// (as Args::parse reads it), so `--data -h` still publishes "-h".
[[nodiscard]] bool wants_help(int argc, char** argv, const std::set<std::string>& valued);

// The help pages are in help.cpp: every command has one, whether this build has it or not.
/// Prints the main page (every command, one line each, and the exit codes) on stdout, or on
/// stderr when it answers a usage error.
void print_main_help(bool to_stderr);
/// Prints `command`'s page on stdout and returns exit_ok; unknown_command() for a word that
/// is no command. "help" (or --help, -h) is the main page.
int print_help(std::string_view command);
/// Whether `command` is one of rill's commands, built in this build or not.
[[nodiscard]] bool is_command(std::string_view command);
/// The cmake option this build lacks for `command` ("RILL_WITH_HTTP"), empty when it is built.
[[nodiscard]] std::string_view missing_build_option(std::string_view command);
/// "rill: unknown command 'X'", the command names and a hint to run rill --help, on stderr;
/// returns exit_usage.
int unknown_command(std::string_view command);
/// No command given: one usage line naming the commands; returns exit_usage.
int missing_command();

/// Installs SIGINT/SIGTERM handlers that set a flag polled by stopping() (no work in the handler).
void install_stop_signals();
[[nodiscard]] bool stopping() noexcept;
/// Installs a SIGHUP handler that sets a flag; reload_requested() returns it once and clears it.
void install_reload_signal();
[[nodiscard]] bool reload_requested() noexcept;

int cmd_pub(int argc, char** argv);
int cmd_sub(int argc, char** argv);
int cmd_perf(int argc, char** argv);
int cmd_serve(int argc, char** argv);
/// rill sub with an http(s) URL among its endpoints: deliver each message there.
int run_delivery(const Args& args, const rill::SubscriberOptions& opts, const std::string& url, std::string_view usage);
int cmd_log(int argc, char** argv);
/// rill cdc: change data capture from PostgreSQL into topics.
int cmd_cdc(int argc, char** argv);
/// rill transports: the compiled transports and what each supports.
int cmd_transports(int argc, char** argv);
/// rill keygen NAME: writes a CurveZMQ key pair (NAME.key, NAME.pub).
int cmd_keygen(int argc, char** argv);
/// rill nexmark gen: the Nexmark event streams, printed or published.
int cmd_nexmark(int argc, char** argv);
/// rill query ENDPOINT... (--file F | --sql TEXT): runs a streaming SQL script.
int cmd_query(int argc, char** argv);

}  // namespace rill::cli
