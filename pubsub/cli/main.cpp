// rill: the command-line front end (pub, sub, perf; serve and log come with their issues).
#include <cstdio>
#include <string_view>

#include "args.hpp"

namespace {

constexpr std::string_view usage_text =
    "rill pub ENDPOINT TOPIC [options] | rill sub ENDPOINT... [URL] TOPIC_PREFIX [options] | "
    "rill serve --http HOST:PORT --publish ENDPOINT [options] | rill perf TRANSPORT [options] | "
    "rill log list|inspect|replay|dlq DIR [options]";

}  // namespace

int main(int argc, char** argv) {
  using namespace rill::cli;
  if (argc < 2) return usage_error("missing command (pub, sub, perf)", "rill");
  const std::string_view cmd = argv[1];
  if (cmd == "pub") return cmd_pub(argc - 2, argv + 2);
  if (cmd == "sub") return cmd_sub(argc - 2, argv + 2);
  if (cmd == "perf") return cmd_perf(argc - 2, argv + 2);
#ifdef RILL_WITH_LOG
  if (cmd == "log") return cmd_log(argc - 2, argv + 2);
#endif
  if (cmd == "--help" || cmd == "help") {
    std::printf("usage: %.*s\n", static_cast<int>(usage_text.size()), usage_text.data());
    return exit_ok;
  }
#ifdef RILL_WITH_HTTP
  if (cmd == "serve") return cmd_serve(argc - 2, argv + 2);
#endif
  if (cmd == "serve" || cmd == "log") {
    std::fprintf(stderr, "rill: '%.*s' is not built yet\n", static_cast<int>(cmd.size()), cmd.data());
    return exit_usage;
  }
  return usage_error("unknown command '" + std::string(cmd) + "' (pub, sub, perf)", "rill");
}
