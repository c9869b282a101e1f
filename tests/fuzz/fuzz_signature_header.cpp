// Fuzz target: the signature header parsers (webhook-signature lists, X-Hub-Signature-256),
// secret-file parsing and base64 decoding. Property: nothing crashes, and every digest
// read from a webhook-signature list re-encodes to an entry present in the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "connectors/http/signature.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<rill::http::Digest> digests;
  if (rill::http::parse_standard_signatures(in, digests)) {
    rill::fuzz::expect(digests.size() <= 16, "more than 16 signatures");
    for (const auto& d : digests) {
      rill::fuzz::expect(in.find("v1," + rill::http::base64_encode(d)) != std::string_view::npos,
                         "digest not in the header");
    }
  }
  rill::http::Digest g{};
  if (rill::http::parse_github_signature(in, g)) rill::fuzz::expect(in.size() == 71, "github header length");
  std::vector<unsigned char> raw;
  if (rill::http::base64_decode(in, raw)) {
    rill::fuzz::expect(rill::http::base64_encode(raw) == in, "base64 round trip");
  }
  (void)rill::http::parse_secrets(in);
  return 0;
}
