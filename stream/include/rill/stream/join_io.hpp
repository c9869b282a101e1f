// Wiring a JoinOperator to rill: a source per input (a Subscriber whose messages become the
// records of one side) and a sink that publishes join rows as JSON with their changelog kind.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "rill/message.hpp"
#include "rill/publisher.hpp"
#include "rill/stream/join.hpp"
#include "rill/stream/rill_io.hpp"
#include "rill/subscriber.hpp"

namespace rill::stream {

/// Reads a join key from a message; nullopt: not a usable record (counted as bad input).
using KeyExtractor = std::function<std::optional<std::string>(const MessageView&)>;

/// Key = a top-level field of a JSON payload (a string, or an integer written in decimal).
[[nodiscard]] KeyExtractor json_key(std::string field);

/// How a JoinSource reads messages; fill with designated initializers.
struct JoinSourceOptions {
  Side side = Side::left;                ///< the input its records go to
  KeyExtractor key{};                    ///< required
  TimeExtractor time = envelope_time();  ///< event time
  /// Messages with a header `kind` (completeness markers of an upstream job) are skipped.
  bool skip_markers = true;
  /// When set, decides each message's input instead of `side` (nullopt: bad input): one
  /// subscription carrying both inputs in one order, which a restart replays in that same
  /// order, so a JoinSink's output is exactly-once across a crash (see README).
  std::function<std::optional<Side>(const MessageView&)> side_of{};
};

/// Feeds one side of a JoinOperator from a rill Subscriber: each message becomes a JoinEvent
/// whose payload is the message's payload bytes, whose source is its publisher id (each
/// publisher its own watermark) and whose sequence is the envelope's. Borrows the
/// subscriber; not thread-safe (poll both sources of a join on one thread).
class JoinSource {
 public:
  /// invalid_argument without options.key or options.time.
  [[nodiscard]] static Result<JoinSource> create(Subscriber& subscriber, JoinSourceOptions options);
  /// Polls up to `limit` messages into `join`, idling up to `timeout` for the first one,
  /// then lets the join re-check its watermark against the clock. Returns messages polled.
  std::size_t poll(JoinOperator& join, std::size_t limit, std::chrono::nanoseconds timeout);
  [[nodiscard]] const SourceStats& stats() const noexcept { return m_stats; }
  /// The last sequence handled per publisher id (merge both sources' maps for a checkpoint).
  [[nodiscard]] const std::map<std::uint64_t, std::uint64_t>& positions() const noexcept { return m_positions; }
  /// After JoinOperator::restore: messages at or before the restored positions are skipped.
  void resume(const Positions& positions) { m_positions = positions.inputs; }

 private:
  JoinSource(Subscriber& subscriber, JoinSourceOptions options)
      : m_subscriber(&subscriber), m_options(std::move(options)) {}
  Subscriber* m_subscriber;
  JoinSourceOptions m_options;
  SourceStats m_stats;
  std::map<std::uint64_t, std::uint64_t> m_positions;
};

/// Publishes a join's output on a rill Publisher: each row as join_row_json with header
/// `op` = +I/-D; each completeness marker as `{"watermark": <ms>}` with header `kind` =
/// `watermark`. Borrows the publisher; use on the publisher's thread.
class JoinSink {
 public:
  explicit JoinSink(Publisher& publisher) : m_publisher(&publisher) {}
  JoinSink(const JoinSink&) = delete;
  JoinSink& operator=(const JoinSink&) = delete;

  /// A JoinOutput that publishes here; `late` is passed through. Must outlive the join.
  [[nodiscard]] JoinOutput output(std::function<void(Side, const JoinEvent&)> late = {});
  /// After JoinOperator::restore, with Positions::outputs: outputs a crashed run already
  /// published (a persistent publisher's sequence continues from its log) are not sent again.
  void resume(std::uint64_t outputs_at_checkpoint);
  void publish_row(const JoinRow& row);
  void publish_marker(TimeMs watermark);
  [[nodiscard]] const SinkStats& stats() const noexcept { return m_stats; }
  [[nodiscard]] const std::optional<Error>& last_error() const noexcept { return m_last_error; }

 private:
  void send(std::string_view payload, std::string_view header, std::string_view value, std::uint64_t& counter);
  Publisher* m_publisher;
  std::uint64_t m_skip = 0;
  SinkStats m_stats;
  std::optional<Error> m_last_error;
};

}  // namespace rill::stream
