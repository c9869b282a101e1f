// rill keygen: a CurveZMQ key pair for tcp endpoints (?curve_key=, ?curve_server=, ?curve_allow=),
// or with --udp a group key for authenticated udp endpoints (?auth_key_file=).
#include <cstdio>
#include <string>

#include "args.hpp"
#include "rill/curve_keys.hpp"
#ifdef RILL_WITH_UDP
#include "rill/udp_auth_key.hpp"
#endif

namespace rill::cli {

int cmd_keygen(int argc, char** argv) {
  constexpr std::string_view usage = "rill keygen NAME | rill keygen --udp FILE";
  if (wants_help(argc, argv, {})) return print_help("keygen");
#ifdef RILL_WITH_UDP
  if (argc >= 1 && std::string_view(argv[0]) == "--udp") {
    if (argc != 2 || argv[1][0] == '-') return usage_error("keygen --udp takes one FILE (the group key to write)", usage);
    auto id = write_udp_auth_key(argv[1]);
    if (!id) {
      if (id.error().code == Errc::invalid_argument) return usage_error(id.error().message(), usage);
      std::fprintf(stderr, "rill: %s\n", id.error().message().c_str());
      return exit_runtime;
    }
    std::printf("key id %04x\n", static_cast<unsigned>(*id));
    return exit_ok;
  }
#endif
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
