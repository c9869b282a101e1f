// PROTOCOL.md's byte dumps, held against the running code so that they cannot go stale:
// each example is read out of the document and compared with what rill's encoders produce
// for the same fields (section 3.2's typed envelope and 3.4's raw one, byte for byte and row
// by row of their tables; 4.4's WELCOME and 2.3's BYE re-encoded from their decoded fields;
// the frame sizes 2.3 names). When the wire changes, this fails until the document does.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "quote_generated.h"
#include "rill/codec.hpp"
#include "rill/message_builder.hpp"
#include "transport/tcp/tcp_wire.hpp"

namespace {

namespace tcp = rill::detail::tcp;
using Bytes = std::vector<std::byte>;

std::string protocol_md() {
  std::ifstream in(RILL_SOURCE_DIR "/PROTOCOL.md");
  REQUIRE_MESSAGE(in.good(), "cannot read PROTOCOL.md");
  return {std::istreambuf_iterator<char>(in), {}};
}

// The text of the section whose heading starts with `heading`, up to the next heading.
std::string section(const std::string& doc, const std::string& heading) {
  const auto at = doc.find("\n" + heading);
  REQUIRE_MESSAGE(at != std::string::npos, "PROTOCOL.md has no section " << heading);
  const auto end = doc.find("\n#", at + 1);
  return doc.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

bool is_hex_pairs(const std::string& s) {
  static const std::regex pairs("^[0-9a-fA-F]{2}( [0-9a-fA-F]{2})*$");
  return std::regex_match(s, pairs);
}

Bytes hex(const std::string& text) {
  Bytes out;
  std::string digits;
  for (char c : text) {
    if (std::isxdigit(static_cast<unsigned char>(c)) != 0) digits += c;
  }
  REQUIRE(digits.size() % 2 == 0);
  for (std::size_t i = 0; i < digits.size(); i += 2) {
    out.push_back(static_cast<std::byte>(std::stoul(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string hex_of(std::span<const std::byte> b) {
  std::ostringstream o;
  for (auto x : b) {
    static const char* d = "0123456789abcdef";
    const auto v = static_cast<unsigned>(x);
    o << d[v >> 4] << d[v & 15] << ' ';
  }
  return o.str();
}

// Every "| 0xOFF | `bytes` ... | meaning |" row of a layout table, against `buf`: each
// backticked token is hex pairs or literal text, laid down from OFF on; a "…" ends what the
// row shows of its bytes. Returns the number of bytes compared.
std::size_t check_table(const std::string& text, std::span<const std::byte> buf) {
  static const std::regex row(R"(^\| 0x([0-9a-f]+) \| ([^|]*) \|)");
  std::istringstream lines(text);
  std::string line;
  std::size_t compared = 0;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    std::size_t at = std::stoul(m[1], nullptr, 16);
    const std::string cell = m[2];
    std::size_t pos = 0;
    for (;;) {
      const auto open = cell.find('`', pos);
      const auto ellipsis = cell.find("…", pos);
      if (open == std::string::npos || (ellipsis != std::string::npos && ellipsis < open)) break;
      const auto close = cell.find('`', open + 1);
      REQUIRE(close != std::string::npos);
      const std::string token = cell.substr(open + 1, close - open - 1);
      pos = close + 1;
      Bytes want;
      if (is_hex_pairs(token)) {
        want = hex(token);
      } else {
        for (char c : token) want.push_back(static_cast<std::byte>(c));
      }
      INFO("row " << line);
      REQUIRE_MESSAGE(at + want.size() <= buf.size(), "the row runs past the " << buf.size() << "-byte buffer");
      CHECK_MESSAGE(std::equal(want.begin(), want.end(), buf.begin() + static_cast<std::ptrdiff_t>(at)),
                    "bytes at 0x" << std::hex << at << ": the document says " << hex_of(want) << ", rill writes "
                                  << hex_of(buf.subspan(at, want.size())));
      at += want.size();
      compared += want.size();
    }
  }
  return compared;
}

// The length byte of a short ZMTP frame in 2.3's capture ("00 LL ..."): on the line that
// ends with `label`, or with `next_line`, on the line after the one holding `label`.
std::size_t frame_length(const std::string& sec, const std::string& label, bool next_line = false) {
  auto at = sec.find(label);
  REQUIRE_MESSAGE(at != std::string::npos, "section 2.3 has no line for " << label);
  std::size_t start = sec.rfind('\n', at) + 1;
  if (next_line) {
    start = sec.find('\n', at) + 1;
  }
  std::istringstream in(sec.substr(start, sec.find('\n', start) - start));
  std::string flags, len;
  in >> flags >> len;
  REQUIRE_MESSAGE(flags == "00", "not a short frame: " << flags);
  return std::stoul(len, nullptr, 16);
}

}  // namespace

TEST_CASE("PROTOCOL.md 3.4: the raw envelope dump is what MessageBuilder writes for its fields") {
  const auto sec = section(protocol_md(), "### 3.4");
  static const std::regex line(R"(\n([0-9a-f]{64,})\n)");
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(sec, m, line), "no hex line in 3.4");
  const Bytes doc = hex(m[1]);
  // Read in place from an aligned copy, as a subscriber would.
  alignas(8) std::byte buf[512];
  REQUIRE(doc.size() <= sizeof buf);
  std::memcpy(buf, doc.data(), doc.size());
  auto env = rill::verify_envelope({buf, doc.size()});
  REQUIRE_MESSAGE(env.has_value(), "the document's envelope does not verify: " << env.error().message());
  const auto* e = *env;
  const std::string topic = e->topic()->str();
  const auto* p = e->payload();
  REQUIRE(p != nullptr);

  rill::MessageBuilder b;
  const auto built = b.finish_raw(std::as_bytes(std::span(p->data(), p->size())),
                                  {.topic = topic,
                                   .publisher_id = e->publisher_id(),
                                   .sequence = e->sequence(),
                                   .timestamp_ns = e->timestamp_ns()});
  CHECK_MESSAGE(hex_of(built) == hex_of(doc), "rill writes " << hex_of(built));
  CHECK(check_table(sec, built) >= 80);
  // The flatc output printed below the dump names the same fields.
  CHECK(sec.find("\"publisher_id\": " + std::to_string(e->publisher_id())) != std::string::npos);
  CHECK(sec.find("\"timestamp_ns\": " + std::to_string(e->timestamp_ns())) != std::string::npos);
  CHECK(sec.find("\"sequence\": " + std::to_string(e->sequence())) != std::string::npos);
  CHECK(sec.find("\"topic\": \"" + topic + "\"") != std::string::npos);
}

TEST_CASE("PROTOCOL.md 3.2: the typed Quote envelope's table is what rill writes") {
  const auto sec = section(protocol_md(), "### 3.2");
  rill::MessageBuilder b;
  auto& fbb = b.fbb();
  const auto symbol = fbb.CreateString("ACME");
  const std::vector<std::string> venues{"XNAS"};
  const auto v = fbb.CreateVectorOfStrings(venues);
  const auto root = example::CreateQuote(fbb, symbol, 99.99, 100.01, 100, 200, v);
  const auto built = b.finish(root, {.topic = "md/quotes",
                                     .publisher_id = 0x1122334455667788ull,
                                     .sequence = 7,
                                     .timestamp_ns = 1700000000000000000ll});
  INFO("rill writes " << hex_of(built));
  CHECK(sec.find(std::to_string(built.size()) + " bytes:") != std::string::npos);
  CHECK(check_table(sec, built) >= 100);
}

TEST_CASE("PROTOCOL.md 4.4: the WELCOME example re-encodes to itself") {
  const auto sec = section(protocol_md(), "### 4.4");
  static const std::regex example(R"(Example[^`]*`([0-9a-f |]+)`)");
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(sec, m, example), "no example in 4.4");
  const Bytes doc = hex(m[1]);
  const auto c = tcp::decode_control(doc);
  REQUIRE_MESSAGE(c.has_value(), "the document's WELCOME does not decode");
  REQUIRE(c->type == tcp::ControlType::welcome);
  Bytes out(doc.size() + 64);
  const auto n = tcp::encode_welcome(out, c->welcome);
  out.resize(n);
  CHECK(hex_of(out) == hex_of(doc));
}

TEST_CASE("PROTOCOL.md 2.3: the frames on the socket have the sizes rill gives them; the BYE re-encodes") {
  const auto sec = section(protocol_md(), "### 2.3");
  Bytes out(256);
  tcp::Subscribe s{.subscription_id = 1, .prefix = "demo/"};
  CHECK(tcp::encode_subscribe(out, s) == frame_length(sec, "subscriber → SUBSCRIBE", true));
  CHECK(tcp::encode_welcome(out, tcp::Welcome{.publisher_id = 1}) == frame_length(sec, "(48-byte WELCOME)"));
  CHECK(frame_length(sec, "(48-byte WELCOME)") == 48);
  CHECK(tcp::encode_bye_seen(out, tcp::Ack{}) == frame_length(sec, "subscriber → BYE_SEEN", true));

  rill::MessageBuilder b;
  const char hi[] = "hi";
  const auto env = b.finish_raw(std::as_bytes(std::span(hi, 2)), {.topic = "demo/x", .publisher_id = 1, .sequence = 1});
  CHECK(env.size() == frame_length(sec, "(88-byte envelope)"));
  const auto env_at = sec.find("(88-byte envelope)");
  const auto env_line = sec.substr(sec.rfind('\n', env_at) + 1, env_at - sec.rfind('\n', env_at) - 1);
  const Bytes shown = hex(env_line.substr(0, env_line.find("…")));
  REQUIRE(shown.size() == 10);  // the frame's flags and length, then the envelope's first 8 bytes
  CHECK(hex_of(std::span(shown).subspan(2)) == hex_of(env.first(8)));

  // The BYE line shows all of its 24 bytes.
  const auto at = sec.find("(24-byte BYE)");
  REQUIRE(at != std::string::npos);
  const auto start = sec.rfind('\n', at) + 1;
  const Bytes framed = hex(sec.substr(start, at - start));
  REQUIRE(framed.size() == 26);
  const Bytes bye(framed.begin() + 2, framed.end());
  const auto c = tcp::decode_control(bye);
  REQUIRE(c.has_value());
  REQUIRE(c->type == tcp::ControlType::bye);
  const auto n = tcp::encode_bye(out, c->bye);
  CHECK(hex_of(std::span(out).first(n)) == hex_of(bye));
}
