// CEP events from rill messages.
#include "rill/stream/cep_io.hpp"

namespace rill::stream::cep {

std::optional<Event> event_from(const MessageView& message, const Parse& parse, const TimeExtractor& time) {
  auto kv = parse ? parse(message) : std::nullopt;
  auto at = kv && time ? time(message) : std::nullopt;
  if (!kv || !at) return std::nullopt;
  const auto bytes = message.payload();
  return Event{.key = std::move(kv->key),
               .time = *at,
               .source = message.publisher_id(),
               .sequence = message.sequence(),
               .values = {kv->value},
               .payload = std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size())};
}

}  // namespace rill::stream::cep
