// JoinSource, JoinSink and the JSON form of a join row: the join's edges on rill's API.
#include "rill/stream/join_io.hpp"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <memory>

namespace rill::stream {

KeyExtractor json_key(std::string field) {
  // One parser per extractor: simdjson reuses its buffers across documents.
  auto parser = std::make_shared<simdjson::dom::parser>();
  return [parser, field = std::move(field)](const MessageView& m) -> std::optional<std::string> {
    const auto bytes = m.payload();
    // realloc_if_needed: the payload has no padding of its own, so simdjson copies it.
    auto doc = parser->parse(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), true);
    if (doc.error()) return std::nullopt;
    auto k = doc.value_unsafe().at_key(field);
    if (k.error()) return std::nullopt;
    if (std::string_view s; k.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
    if (std::int64_t i = 0; k.get_int64().get(i) == simdjson::SUCCESS) return std::to_string(i);
    return std::nullopt;
  };
}

Result<JoinSource> JoinSource::create(Subscriber& subscriber, JoinSourceOptions options) {
  if (!options.key) return fail(Errc::invalid_argument, "JoinSourceOptions::key is required");
  if (!options.time) return fail(Errc::invalid_argument, "JoinSourceOptions::time is empty");
  return JoinSource(subscriber, std::move(options));
}

std::size_t JoinSource::poll(JoinOperator& join, std::size_t limit, std::chrono::nanoseconds timeout) {
  JoinEvent event;  // reused: its strings keep their capacity across messages
  auto handle = [&](const MessageView& m) {
    ++m_stats.messages;
    auto [pos, fresh] = m_positions.try_emplace(m.publisher_id(), 0);
    if (!fresh && m.sequence() <= pos->second) {
      ++m_stats.replayed;
      return;
    }
    pos->second = m.sequence();
    if (m_options.skip_markers && m.header("kind")) {
      ++m_stats.markers_skipped;
      return;
    }
    auto key = m_options.key(m);
    auto time = key ? m_options.time(m) : std::nullopt;
    const auto side = m_options.side_of ? m_options.side_of(m) : std::optional<Side>(m_options.side);
    if (!key || !time || !side) {
      ++m_stats.bad_input;
      return;
    }
    const auto bytes = m.payload();
    event.key = std::move(*key);
    event.payload.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    event.time = *time;
    event.source = m.publisher_id();
    event.sequence = m.sequence();
    ++m_stats.events;
    join.process(*side, event);
  };
  const std::size_t n = m_subscriber->wait_poll(handle, limit, timeout);
  join.tick();
  return n;
}

namespace {
template <class T>
void append_number(std::string& out, T v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc{} ? end : buf);
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
      out += esc;
    } else {
      out += c;
    }
  }
  out += '"';
}

void append_side(std::string& out, const JoinEvent* e) {
  if (!e) {
    out += "null";
  } else if (e->payload.empty()) {
    out += "null";  // an empty payload is no JSON value
  } else {
    out += e->payload;
  }
}
}  // namespace

std::string join_row_json(const JoinRow& row) {
  std::string out = "{\"key\":";
  append_json_string(out, row.key);
  out += ",\"time\":";
  append_number(out, row.time);
  if (row.window_end != row.window_start) {
    out += ",\"window_start\":";
    append_number(out, row.window_start);
    out += ",\"window_end\":";
    append_number(out, row.window_end);
  }
  out += ",\"left\":";
  append_side(out, row.left);
  out += ",\"right\":";
  append_side(out, row.right);
  out += '}';
  return out;
}

JoinOutput JoinSink::output(std::function<void(Side, const JoinEvent&)> late) {
  return JoinOutput{.row = [this](const JoinRow& r) { publish_row(r); },
                    .watermark = [this](TimeMs w) { publish_marker(w); },
                    .late = std::move(late)};
}

void JoinSink::resume(std::uint64_t outputs_at_checkpoint) {
  const std::uint64_t published = m_publisher->next_sequence() - 1;
  m_skip = published > outputs_at_checkpoint ? published - outputs_at_checkpoint : 0;
}

void JoinSink::publish_row(const JoinRow& row) {
  send(join_row_json(row), "op", to_string(row.kind), m_stats.rows);
}

void JoinSink::publish_marker(TimeMs watermark) {
  std::string payload = "{\"watermark\":";
  append_number(payload, watermark);
  payload += '}';
  send(payload, "kind", "watermark", m_stats.markers);
}

void JoinSink::send(std::string_view payload, std::string_view header, std::string_view value, std::uint64_t& counter) {
  if (m_skip > 0) {
    --m_skip;
    ++m_stats.skipped;
    return;
  }
  const std::array headers{HeaderKV{header, value}};
  // timed_out: a backpressure subscriber held the message back; retry a few times.
  auto r = m_publisher->publish_text(payload, headers);
  for (int tries = 0; !r && r.error().code == Errc::timed_out && tries < 3; ++tries) {
    r = m_publisher->publish_text(payload, headers);
  }
  if (r) {
    ++counter;
  } else {
    ++m_stats.failed;
    m_last_error = r.error();
  }
}

}  // namespace rill::stream
