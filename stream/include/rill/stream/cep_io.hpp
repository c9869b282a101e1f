// CEP events from rill messages: the key, a value and the event time read by the stream
// source's extractors, with the message's publisher id, sequence and payload kept, so a
// match carries each constituent message.
#pragma once

#include <optional>

#include "rill/message.hpp"
#include "rill/stream/cep.hpp"
#include "rill/stream/rill_io.hpp"

namespace rill::stream::cep {

/// The message as a CEP event: key and values[0] from `parse`, time from `time`, source =
/// publisher id, sequence = the envelope's, payload = the payload bytes (copied). nullopt
/// when parse or time fails (bad input). Call on the polling thread.
[[nodiscard]] std::optional<Event> event_from(const MessageView& message, const Parse& parse,
                                              const TimeExtractor& time);

}  // namespace rill::stream::cep
