// Fuzz target: the HTTP request reader (Beast's parser plus rill's strictness checks),
// fed the input whole and again split at points chosen by its first two bytes. Property:
// nothing crashes, consumption never passes what was offered, and a request both ways
// accept parses to the same method, target and body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "connectors/http/request_reader.hpp"

namespace {

struct Outcome {
  bool done = false;
  int error = 0;
  std::string method, target, body;
};

Outcome run(std::string_view input, std::size_t step) {
  rill::http::RequestReader reader({.header_bytes = 2048, .body_bytes = 4096});
  std::string buf;
  std::size_t offered = 0;
  Outcome o;
  while (true) {
    const auto take = step == 0 ? input.size() - offered : std::min(step, input.size() - offered);
    buf.append(input.substr(offered, take));
    offered += take;
    for (;;) {
      const auto n = reader.feed(std::span<const char>(buf.data(), buf.size()));
      rill::fuzz::expect(n <= buf.size(), "consumed more than offered");
      buf.erase(0, n);
      if (n == 0 || reader.error() || reader.done()) break;
    }
    if (reader.error() || reader.done() || offered == input.size()) break;
  }
  if (reader.error()) {
    o.error = reader.error()->status;
    rill::fuzz::expect(o.error >= 400 && o.error < 600, "error status out of range");
  }
  if (reader.done() && !reader.error()) {
    o.done = true;
    auto& r = reader.request();
    o.method = std::string(r.method_string());
    o.target = std::string(r.target());
    o.body = r.body();
    rill::fuzz::expect(o.body.size() <= 4096, "body past its limit");
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t step = 1 + (data[0] | (data[1] << 8)) % 97;
  const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  const auto whole = run(input, 0);
  const auto split = run(input, step);
  if (whole.done && split.done) {
    rill::fuzz::expect(whole.method == split.method && whole.target == split.target && whole.body == split.body,
                       "split input parsed differently");
  }
  return 0;
}
