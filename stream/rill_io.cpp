// SubscriberSource and PublisherSink: the operator's edges on rill's public API.
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "rill/stream/rill_io.hpp"

namespace rill::stream {

Result<SubscriberSource> SubscriberSource::create(Subscriber& subscriber, SourceOptions options) {
  if (!options.parse) return fail(Errc::invalid_argument, "SourceOptions::parse is required");
  if (!options.time) return fail(Errc::invalid_argument, "SourceOptions::time is empty");
  return SubscriberSource(subscriber, std::move(options));
}

std::size_t SubscriberSource::poll(WindowOperator& op, std::size_t limit, std::chrono::nanoseconds timeout) {
  Event event;  // reused: its key string keeps its capacity across messages
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
    auto kv = m_options.parse(m);
    auto time = kv ? m_options.time(m) : std::nullopt;
    if (!kv || !time) {
      ++m_stats.bad_input;
      return;
    }
    event.key = std::move(kv->key);
    event.value = kv->value;
    event.time = *time;
    event.source = m.publisher_id();
    event.sequence = m.sequence();
    ++m_stats.events;
    op.process(event);
  };
  const std::size_t n = m_subscriber->wait_poll(handle, limit, timeout);
  op.tick();
  return n;
}

namespace {
template <class T>
void append_number(std::string& out, T v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  out.append(buf, ec == std::errc{} ? end : buf);
}

// JSON string escaping for keys (quotes, backslashes, control characters).
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
}  // namespace

std::string row_json(const Row& row) {
  std::string out = "{\"key\":";
  append_json_string(out, row.key);
  out += ",\"start\":";
  append_number(out, row.start);
  out += ",\"end\":";
  append_number(out, row.end);
  out += ",\"value\":";
  // JSON has no infinities or NaN (min/max of nothing): those values are written as null.
  if (std::isfinite(row.value)) {
    append_number(out, row.value);
  } else {
    out += "null";
  }
  out += ",\"count\":";
  append_number(out, row.count);
  out += '}';
  return out;
}

Output PublisherSink::output(std::function<void(const Event&)> late) {
  return Output{.row = [this](const Row& r) { publish_row(r); },
                .watermark = [this](TimeMs w) { publish_marker(w); },
                .late = std::move(late)};
}

void PublisherSink::resume(std::uint64_t outputs_at_checkpoint) {
  const std::uint64_t published = m_publisher->next_sequence() - 1;
  m_skip = published > outputs_at_checkpoint ? published - outputs_at_checkpoint : 0;
}

void PublisherSink::publish_row(const Row& row) {
  const std::array headers{HeaderKV{"op", to_string(row.kind)}};
  send(row_json(row), headers, m_stats.rows);
}

void PublisherSink::publish_marker(TimeMs watermark) {
  const std::array headers{HeaderKV{"kind", "watermark"}};
  std::string payload = "{\"watermark\":";
  append_number(payload, watermark);
  payload += '}';
  send(payload, headers, m_stats.markers);
}

void PublisherSink::send(std::string_view payload, std::span<const HeaderKV> headers, std::uint64_t& counter) {
  if (m_skip > 0) {
    --m_skip;
    ++m_stats.skipped;
    return;
  }
  // timed_out means a backpressure subscriber held the message back and nothing was sent:
  // retry a few times (publish_timeout each) before counting it as failed.
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
