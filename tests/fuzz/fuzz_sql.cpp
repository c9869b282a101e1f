// Fuzz target: the streaming SQL parser (stream/sql/). Property: nothing crashes or recurses
// without bound; a script either parses to a tree whose dump starts with (script, or gets an
// error whose line:column lies inside the input (or just past its end) with a message.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "rill/sql.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto r = rill::sql::parse(in);
  if (r) {
    rill::fuzz::expect(rill::sql::dump(*r).starts_with("(script"), "a parsed script dumps as (script ...)");
    return 0;
  }
  const auto& e = r.error();
  const auto lines = static_cast<std::size_t>(std::count(in.begin(), in.end(), '\n')) + 1;
  rill::fuzz::expect(e.line >= 1 && e.line <= lines, "error line inside the input");
  rill::fuzz::expect(e.column >= 1 && e.column <= size + 1, "error column inside the input");
  rill::fuzz::expect(!e.message.empty(), "an error has a message");
  return 0;
}
