// Wiring to rill: a source that turns a Subscriber's messages into events (one watermark
// source per publisher id) and a sink that publishes rows and completeness markers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "rill/message.hpp"
#include "rill/publisher.hpp"
#include "rill/subscriber.hpp"
#include "rill/stream/window_operator.hpp"

namespace rill::stream {

/// An event's key and value, read from a message's payload.
struct KeyValue {
  std::string key;
  double value = 0;
};

/// Reads key and value from a message; nullopt: not a usable event (counted as bad input).
/// Called on the polling thread; the view is valid only during the call.
using Parse = std::function<std::optional<KeyValue>(const MessageView&)>;
/// Reads the event time (ms) from a message; nullopt: missing or unreadable (bad input).
using TimeExtractor = std::function<std::optional<TimeMs>(const MessageView&)>;

/// Event time = the envelope's publish timestamp (the default).
[[nodiscard]] TimeExtractor envelope_time();
/// Event time = a top-level field of a JSON payload: epoch milliseconds (a number) or an
/// ISO-8601 UTC string `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
[[nodiscard]] TimeExtractor json_time(std::string field);
/// Key and value from top-level fields of a JSON payload: the key a string or an integer,
/// the value a number.
[[nodiscard]] Parse json_key_value(std::string key_field, std::string value_field);
/// Parses `YYYY-MM-DDTHH:MM:SS[.f...]Z` to epoch milliseconds; nullopt if it is not one.
[[nodiscard]] std::optional<TimeMs> parse_iso8601_ms(std::string_view text);

/// How a SubscriberSource reads messages; fill with designated initializers.
struct SourceOptions {
  Parse parse{};                        ///< required
  TimeExtractor time = envelope_time();  ///< event time
  /// Messages with a header `kind` (completeness markers of an upstream job) are not
  /// events; they are skipped (counted in markers_skipped).
  bool skip_markers = true;
};

/// What a SubscriberSource has seen.
struct SourceStats {
  std::uint64_t messages = 0;         ///< messages polled
  std::uint64_t events = 0;           ///< handed to the operator
  std::uint64_t bad_input = 0;        ///< parse or time extraction failed: skipped
  std::uint64_t markers_skipped = 0;  ///< upstream markers (header `kind`) skipped
  std::uint64_t replayed = 0;         ///< at or before a restored position: skipped
};

/// Feeds a WindowOperator from a rill Subscriber: each message becomes one Event whose
/// source is its publisher id (so each publisher has its own watermark) and whose sequence
/// is the envelope's. Borrows both; not thread-safe (the subscriber's polling thread).
class SubscriberSource {
 public:
  /// invalid_argument without options.parse.
  [[nodiscard]] static Result<SubscriberSource> create(Subscriber& subscriber, SourceOptions options);
  /// Polls up to `limit` messages into `op`, idling up to `timeout` for the first one, then
  /// lets the operator re-check its watermark against the clock (op.tick()). Returns the
  /// number of messages polled.
  std::size_t poll(WindowOperator& op, std::size_t limit, std::chrono::nanoseconds timeout);
  [[nodiscard]] const SourceStats& stats() const noexcept { return m_stats; }
  /// The last sequence handled per publisher id: what WindowOperator::checkpoint saves.
  [[nodiscard]] const std::map<std::uint64_t, std::uint64_t>& positions() const noexcept { return m_positions; }
  /// After WindowOperator::restore: messages at or before the restored positions (a durable
  /// subscription delivers them again) are skipped, the rest processed.
  void resume(const Positions& positions) { m_positions = positions.inputs; }

 private:
  SubscriberSource(Subscriber& subscriber, SourceOptions options)
      : m_subscriber(&subscriber), m_options(std::move(options)) {}
  Subscriber* m_subscriber;
  SourceOptions m_options;
  SourceStats m_stats;
  std::map<std::uint64_t, std::uint64_t> m_positions;
};

/// The JSON payload of a row: {"key":..,"start":..,"end":..,"value":..,"count":..}.
[[nodiscard]] std::string row_json(const Row& row);

/// What a PublisherSink has sent.
struct SinkStats {
  std::uint64_t rows = 0;     ///< rows published
  std::uint64_t markers = 0;  ///< completeness markers published
  std::uint64_t failed = 0;   ///< publishes that failed after retries (see last_error)
  std::uint64_t skipped = 0;  ///< outputs a previous run had already published (resume)
};

/// Publishes an operator's output on a rill Publisher: each row as its JSON (row_json)
/// with header `op` = +I/-U/+U/-D; each completeness marker as `{"watermark": <ms>}` with
/// header `kind` = `watermark`. Borrows the publisher; use on the publisher's thread.
class PublisherSink {
 public:
  explicit PublisherSink(Publisher& publisher) : m_publisher(&publisher) {}
  PublisherSink(const PublisherSink&) = delete;
  PublisherSink& operator=(const PublisherSink&) = delete;

  /// An Output for WindowOperator::create that publishes here; `late` is passed through
  /// as the side output. The sink must outlive the operator.
  [[nodiscard]] Output output(std::function<void(const Event&)> late = {});
  /// After WindowOperator::restore, with the restored Positions::outputs: the outputs the
  /// crashed run published after that checkpoint are already in the publisher's log, so the
  /// same outputs, computed again, are not published twice. Needs a persistent publisher
  /// (its sequence continues from its log) that only this sink publishes on, and a replay
  /// in the same input order (one input publisher, no processing-time settings).
  void resume(std::uint64_t outputs_at_checkpoint);
  void publish_row(const Row& row);
  void publish_marker(TimeMs watermark);
  [[nodiscard]] const SinkStats& stats() const noexcept { return m_stats; }
  /// The last publish failure, if any.
  [[nodiscard]] const std::optional<Error>& last_error() const noexcept { return m_last_error; }

 private:
  void send(std::string_view payload, std::span<const HeaderKV> headers, std::uint64_t& counter);
  Publisher* m_publisher;
  std::uint64_t m_skip = 0;
  SinkStats m_stats;
  std::optional<Error> m_last_error;
};

}  // namespace rill::stream
