// rill keygen: a CurveZMQ key pair for tcp endpoints (?curve_key=, ?curve_server=, ?curve_allow=).
#include <cstdio>

#include "args.hpp"
#include "rill/curve_keys.hpp"

namespace rill::cli {

int cmd_keygen(int argc, char** argv) {
  constexpr std::string_view usage = "rill keygen";
  if (wants_help(argc, argv, {})) return print_help("keygen");
  if (argc != 1 || argv[0][0] == '-') return usage_error("keygen takes one NAME (it writes NAME.key and NAME.pub)", usage);
  auto pair = write_curve_key_files(argv[0]);
  if (!pair) {
    if (pair.error().code == Errc::invalid_argument) return usage_error(pair.error().message(), usage);
    std::fprintf(stderr, "rill: %s\n", pair.error().message().c_str());
    return exit_runtime;
  }
  // The public key on stdout, to paste into a publisher's allow file.
  std::printf("%s\n", pair->public_key.c_str());
  return exit_ok;
}

}  // namespace rill::cli
