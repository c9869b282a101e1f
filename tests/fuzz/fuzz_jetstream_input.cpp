// Fuzz target: what the jetstream transport reads from outside: the endpoint URI (servers,
// stream, query), topics turned into subjects and subjects back into topics, and the
// Nats-Msg-Id header of every received message. Properties: nothing crashes; a topic
// accepted as a subject maps back to itself; an id that parses is re-written to one that
// parses to the same values.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "transport/jetstream/js_options.hpp"

using namespace rill::detail::js;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::uint64_t pub = 0;
  std::uint64_t seq = 0;
  if (parse_msg_id(in, pub, seq)) {
    std::uint64_t pub2 = 0;
    std::uint64_t seq2 = 0;
    rill::fuzz::expect(parse_msg_id(msg_id(pub, seq), pub2, seq2) && pub2 == pub && seq2 == seq, "msg id round trip");
  }
  JsOptions fallback;
  fallback.stream = "S";
  const JsOptions* o = &fallback;
  auto ep = rill::Endpoint::parse("jetstream://" + std::string(in));
  rill::Result<JsOptions> parsed = rill::fail(rill::Errc::invalid_argument, "");
  if (ep) {
    parsed = parse_options(*ep);
    if (parsed) {
      rill::fuzz::expect(!parsed->servers.empty() && !parsed->stream.empty(), "parsed without servers or stream");
      o = &*parsed;
    }
  }
  if (auto subject = topic_subject(*o, in)) {
    rill::fuzz::expect(subject_topic(*o, *subject) == in, "topic -> subject -> topic");
  }
  const auto filter = prefix_filter(*o, in);
  rill::fuzz::expect(filter.ends_with(">") && filter.starts_with(o->subject_prefix()), "prefix filter shape");
  (void)subject_topic(*o, in);
  return 0;
}
