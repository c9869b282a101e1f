// rill transports: the transports compiled into this build and what each supports.
#include <cstdio>

#include "args.hpp"
#include "rill/transports.hpp"

namespace rill::cli {

int cmd_transports(int argc, char** argv) {
  if (wants_help(argc, argv, {})) return print_help("transports");
  if (argc > 0) return usage_error("transports takes no arguments", "rill transports");
  const auto yes_no = [](bool b) { return b ? "yes" : "no"; };
  std::printf("%-8s %-16s %-8s %-7s %-13s %s\n", "scheme", "zero-copy loans", "history", "groups", "backpressure",
              "what it is");
  for (const TransportInfo& t : transports()) {
    std::printf("%-8.*s %-16s %-8s %-7s %-13s %.*s\n", static_cast<int>(t.scheme.size()), t.scheme.data(),
                yes_no(t.zero_copy_loans), yes_no(t.history), yes_no(t.groups), yes_no(t.backpressure),
                static_cast<int>(t.summary.size()), t.summary.data());
    if (!t.notes.empty()) {
      std::printf("%-8s note: %.*s\n", "", static_cast<int>(t.notes.size()), t.notes.data());
    }
  }
  return exit_ok;
}

}  // namespace rill::cli
