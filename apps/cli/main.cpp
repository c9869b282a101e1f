// rill: the command-line front end; each command's help page is in help.cpp.
#include <cstdio>
#include <string_view>

#include "args.hpp"

int main(int argc, char** argv) {
  using namespace rill::cli;
  if (argc < 2) return missing_command();
  const std::string_view cmd = argv[1];
  if (cmd == "help" && argc > 2) return print_help(argv[2]);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    print_main_help(false);
    return exit_ok;
  }
  if (!is_command(cmd)) return unknown_command(cmd);
  if (cmd == "pub") return cmd_pub(argc - 2, argv + 2);
  if (cmd == "sub") return cmd_sub(argc - 2, argv + 2);
  if (cmd == "perf") return cmd_perf(argc - 2, argv + 2);
  if (cmd == "transports") return cmd_transports(argc - 2, argv + 2);
#ifdef RILL_WITH_TCP
  if (cmd == "keygen") return cmd_keygen(argc - 2, argv + 2);
#endif
  if (cmd == "nexmark") return cmd_nexmark(argc - 2, argv + 2);
#ifdef RILL_WITH_SQL
  if (cmd == "query") return cmd_query(argc - 2, argv + 2);
#endif
#ifdef RILL_WITH_HTTP
  if (cmd == "serve") return cmd_serve(argc - 2, argv + 2);
#endif
#ifdef RILL_WITH_CDC
  if (cmd == "cdc") return cmd_cdc(argc - 2, argv + 2);
#endif
#ifdef RILL_WITH_LOG
  if (cmd == "log") return cmd_log(argc - 2, argv + 2);
#endif
  // A command this build leaves out: its page still explains it, running it says why it cannot.
  if (wants_help(argc - 2, argv + 2, {})) return print_help(cmd);
  const auto option = missing_build_option(cmd);
  std::fprintf(stderr, "rill: %.*s (not built in this build): configure with -D%.*s=ON\n", static_cast<int>(cmd.size()),
               cmd.data(), static_cast<int>(option.size()), option.data());
  return exit_usage;
}
