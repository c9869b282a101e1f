// The Nexmark event generator: Person, Auction and Bid events, each one a pure function of
// its event number, with the semantics of Apache Beam's Java reference generator
// (sdks/java/testing/nexmark/.../sources/generator). Where it differs is listed in README
// "Streaming SQL": one generator timeline, a constant rate, and the bid's channel and url
// (from nexmark-flink) drawn after every field Beam draws.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rill::nexmark {

/// The generator's parameters; defaults are Beam's NexmarkConfiguration defaults.
struct GeneratorConfig {
  std::int64_t first_event_id = 0;            ///< added to every event number to make its id (and seed)
  std::int64_t base_time_ms = 1436918400000;  ///< event time of event 0: 2015-07-15T00:00:00Z, as Beam
  std::int64_t inter_event_delay_us = 100;    ///< event-time gap between events: 10,000 events/s
  std::int64_t out_of_order_group_size = 1;   ///< 1: in order; N: each group of N is permuted in time
  int avg_person_bytes = 200;
  int avg_auction_bytes = 500;
  int avg_bid_bytes = 100;
  int hot_auction_ratio = 2;  ///< a bid is for a hot auction with probability 1 - 1/ratio
  int hot_sellers_ratio = 4;  ///< an auction is by a hot seller with probability 1 - 1/ratio
  int hot_bidders_ratio = 4;  ///< a bid is by a hot bidder with probability 1 - 1/ratio
  int num_active_people = 1000;
  int num_in_flight_auctions = 100;
};

/// What one event is; the value is nexmark-flink's `event_type`.
enum class EventKind : int { person = 0, auction = 1, bid = 2 };

struct Person {
  std::int64_t id = 0;
  std::string name, email_address, credit_card, city, state;
  std::int64_t date_time_ms = 0;
  std::string extra;
};

struct Auction {
  std::int64_t id = 0;
  std::string item_name, description;
  std::int64_t initial_bid = 0, reserve = 0;
  std::int64_t date_time_ms = 0, expires_ms = 0;
  std::int64_t seller = 0, category = 0;
  std::string extra;
};

struct Bid {
  std::int64_t auction = 0, bidder = 0, price = 0;
  std::string channel, url;
  std::int64_t date_time_ms = 0;
  std::string extra;
};

/// One generated event: `kind` says which of the three members is filled.
struct Event {
  EventKind kind = EventKind::person;
  std::int64_t event_id = 0;       ///< the id it was generated from (first_event_id + number)
  std::int64_t event_time_ms = 0;  ///< its dateTime
  std::int64_t watermark_ms = 0;   ///< no later event has an earlier dateTime than this
  Person person;
  Auction auction;
  Bid bid;
};

/// Proportions of the mix, per 50 consecutive event ids: 1 person, 3 auctions, 46 bids.
inline constexpr int person_proportion = 1;
inline constexpr int auction_proportion = 3;
inline constexpr int bid_proportion = 46;
inline constexpr int proportion_denominator = person_proportion + auction_proportion + bid_proportion;
inline constexpr std::int64_t first_person_id = 1000;
inline constexpr std::int64_t first_auction_id = 1000;
inline constexpr std::int64_t first_category_id = 10;

/// The last person id (base 0) that exists once event `event_id` is generated.
std::int64_t last_base0_person_id(std::int64_t event_id);
/// The last auction id (base 0) that exists once event `event_id` is generated.
std::int64_t last_base0_auction_id(std::int64_t event_id);

/// Generates events in order; copyable; thread-compatible (one thread per instance).
class Generator {
 public:
  explicit Generator(GeneratorConfig config);

  /// The event with number `n` (0 = the first this config generates), independent of others.
  [[nodiscard]] Event event(std::int64_t n) const;
  /// The next event in order.
  Event next() { return event(m_count++); }
  /// How many events next() has returned.
  [[nodiscard]] std::int64_t count() const noexcept { return m_count; }
  [[nodiscard]] const GeneratorConfig& config() const noexcept { return m_config; }

 private:
  struct Channel {
    std::string name, url;
  };
  [[nodiscard]] std::int64_t adjusted_number(std::int64_t n) const;
  [[nodiscard]] std::int64_t timestamp_of(std::int64_t number) const;

  GeneratorConfig m_config;
  std::vector<Channel> m_hot_channels;   // nexmark-flink's four hot channels with their urls
  std::vector<Channel> m_channel_cache;  // its 10,000 other channels
  std::int64_t m_count = 0;
};

/// Milliseconds since the epoch as ISO-8601 UTC with milliseconds: 2015-07-15T00:00:00.000Z.
std::string iso_time(std::int64_t ms);
/// The event's row alone, one JSON object with the nexmark-flink column names (the payload
/// published on nexmark/person, nexmark/auction or nexmark/bid).
std::string row_json(const Event& event);
/// nexmark-flink's combined row: {"event_type":K,"person":{..}|null,"auction":..,"bid":..}.
std::string combined_json(const Event& event);
/// The topic an event is published on: nexmark/person, nexmark/auction or nexmark/bid.
const char* topic_of(EventKind kind);

}  // namespace rill::nexmark
