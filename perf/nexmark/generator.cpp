// The Nexmark generator's draws, in the order Beam's generator makes them: the same seed
// (the event id) and the same sequence of java.util.Random calls give the same values.
#include "nexmark/generator.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "nexmark/java_random.hpp"

namespace rill::nexmark {

namespace {

constexpr int min_string_length = 3;
constexpr int person_id_lead = 10;   // ids of people not yet created that may be referenced
constexpr int auction_id_lead = 10;  // the same for auctions
constexpr int hot_seller_batch = 100;
constexpr int hot_auction_batch = 100;
constexpr int hot_bidder_batch = 100;
constexpr int num_categories = 5;
// nexmark-flink's bid channels: half the bids come from one of four hot channels.
constexpr int hot_channels_ratio = 2;
constexpr int channels_number = 10'000;
constexpr std::array<std::string_view, 4> hot_channel_names{"Google", "Facebook", "Baidu", "Apple"};
// nexmark-flink draws its channel urls from an unseeded random source; a fixed seed keeps ours
// deterministic.
constexpr std::int64_t channel_seed = 0x6e65786d61726bLL;

constexpr std::array<std::string_view, 6> us_states{"AZ", "CA", "ID", "OR", "WA", "WY"};
constexpr std::array<std::string_view, 10> us_cities{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
                                                     "Bend",    "Redmond",     "Seattle",       "Kent",  "Cheyenne"};
constexpr std::array<std::string_view, 11> first_names{"Peter", "Paul",  "Luke",  "John",   "Saul",  "Vicky",
                                                       "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
constexpr std::array<std::string_view, 9> last_names{"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                                     "Walton", "Smith",  "Jones",   "Noris"};

// Java's Math.round for the non-negative values drawn here.
std::int64_t java_round(double x) { return static_cast<std::int64_t>(std::floor(x + 0.5)); }

// LongGenerator.nextLong: nextInt when n fits an int, else a (skewed) nextLong modulo n.
std::int64_t next_long(JavaRandom& random, std::int64_t n) {
  if (n < INT32_MAX) return random.next_int(static_cast<std::int32_t>(n));
  return std::abs(random.next_long() % n);
}

// A price in cents, log-uniform between $1 and $1,000,000.
std::int64_t next_price(JavaRandom& random) { return java_round(std::pow(10.0, random.next_double() * 6.0) * 100.0); }

std::string trim_spaces(std::string s) {
  const auto first = s.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(' ') - first + 1);
}

// Between 3 and max_length - 1 characters, some of them `special`, trimmed of spaces.
std::string next_string(JavaRandom& random, int max_length, char special = ' ') {
  int len = min_string_length + random.next_int(max_length - min_string_length);
  std::string s;
  s.reserve(static_cast<std::size_t>(len));
  while (len-- > 0) {
    if (random.next_int(13) == 0) {
      s.push_back(special);
    } else {
      s.push_back(static_cast<char>('a' + random.next_int(26)));
    }
  }
  return trim_spaces(std::move(s));
}

// Exactly `length` characters, six per 32-bit draw. Java's % keeps the sign of a negative
// draw, so characters run from 'H' to 'z' as in the reference (backslash included).
std::string next_exact_string(JavaRandom& random, int length) {
  std::string s;
  s.reserve(static_cast<std::size_t>(std::max(length, 0)));
  std::int32_t rnd = 0;
  int n = 0;
  while (length-- > 0) {
    if (n == 0) {
      rnd = random.next_int();
      n = 6;
    }
    s.push_back(static_cast<char>('a' + rnd % 26));
    rnd /= 26;
    --n;
  }
  return s;
}

// Padding so that current_size plus its length averages desired_average (+-20%, uniform).
std::string next_extra(JavaRandom& random, int current_size, int desired_average) {
  if (current_size > desired_average) return {};
  desired_average -= current_size;
  const auto delta = static_cast<int>(java_round(desired_average * 0.2));
  const int min_size = desired_average - delta;
  const int size = min_size + (delta == 0 ? 0 : random.next_int(2 * delta));
  return next_exact_string(random, size);
}

std::int64_t next_base0_person_id(std::int64_t event_id, JavaRandom& random, const GeneratorConfig& config) {
  // A random one of the active people, or a few not created yet (joins must cope with that).
  const std::int64_t num_people = last_base0_person_id(event_id) + 1;
  const std::int64_t active = std::min<std::int64_t>(num_people, config.num_active_people);
  const std::int64_t n = next_long(random, active + person_id_lead);
  return num_people - active + n;
}

std::int64_t next_base0_auction_id(std::int64_t event_id, JavaRandom& random, const GeneratorConfig& config) {
  // One of the auctions likely still open, plus a few not created yet.
  const std::int64_t max_auction = last_base0_auction_id(event_id);
  const std::int64_t min_auction = std::max<std::int64_t>(max_auction - config.num_in_flight_auctions, 0);
  return min_auction + next_long(random, max_auction - min_auction + 1 + auction_id_lead);
}

std::string base_url(JavaRandom& random) {
  std::string url = "https://www.nexmark.com/";
  for (int i = 0; i < 3; ++i) url += next_string(random, 5, '_') + "/";
  return url + "item.htm?query=1";
}

// Java's Integer.reverse: the 32 bits in reverse order.
std::int32_t reverse_bits(std::int32_t v) {
  auto u = static_cast<std::uint32_t>(v);
  std::uint32_t r = 0;
  for (int i = 0; i < 32; ++i, u >>= 1) r = (r << 1) | (u & 1U);
  return static_cast<std::int32_t>(r);
}

}  // namespace

std::int64_t last_base0_person_id(std::int64_t event_id) {
  const std::int64_t epoch = event_id / proportion_denominator;
  std::int64_t offset = event_id % proportion_denominator;
  if (offset >= person_proportion) offset = person_proportion - 1;  // an auction or bid: this epoch's last person
  return epoch * person_proportion + offset;
}

std::int64_t last_base0_auction_id(std::int64_t event_id) {
  std::int64_t epoch = event_id / proportion_denominator;
  std::int64_t offset = event_id % proportion_denominator;
  if (offset < person_proportion) {  // a person: the last auction of the previous epoch
    --epoch;
    offset = auction_proportion - 1;
  } else if (offset >= person_proportion + auction_proportion) {  // a bid: this epoch's last auction
    offset = auction_proportion - 1;
  } else {
    offset -= person_proportion;
  }
  return epoch * auction_proportion + offset;
}

Generator::Generator(GeneratorConfig config) : m_config(config) {
  JavaRandom random(channel_seed);
  for (auto name : hot_channel_names) m_hot_channels.push_back({std::string(name), base_url(random)});
  m_channel_cache.reserve(channels_number);
  for (int i = 0; i < channels_number; ++i) {
    std::string url = base_url(random);
    if (random.next_int(10) > 0) url += "&channel_id=" + std::to_string(std::abs(static_cast<std::int64_t>(reverse_bits(i))));
    m_channel_cache.push_back({"channel-" + std::to_string(i), std::move(url)});
  }
}

std::int64_t Generator::adjusted_number(std::int64_t n) const {
  // Within each group of out_of_order_group_size events, a fixed permutation of the numbers.
  const std::int64_t size = std::max<std::int64_t>(m_config.out_of_order_group_size, 1);
  return (n / size) * size + (n * 953) % size;
}

std::int64_t Generator::timestamp_of(std::int64_t number) const {
  return m_config.base_time_ms + (number * m_config.inter_event_delay_us) / 1000;
}

Event Generator::event(std::int64_t n) const {
  const GeneratorConfig& c = m_config;
  const std::int64_t adjusted = adjusted_number(n);
  const std::int64_t size = std::max<std::int64_t>(c.out_of_order_group_size, 1);
  Event e;
  e.event_id = c.first_event_id + adjusted;
  e.event_time_ms = timestamp_of(adjusted);
  e.watermark_ms = timestamp_of((n / size) * size);
  JavaRandom random(e.event_id);
  const std::int64_t id = e.event_id;
  const std::int64_t rem = id % proportion_denominator;
  if (rem < person_proportion) {
    e.kind = EventKind::person;
    Person& p = e.person;
    p.id = last_base0_person_id(id) + first_person_id;
    // One draw per statement: the operands of + are evaluated in no fixed order.
    p.name = first_names[static_cast<std::size_t>(random.next_int(first_names.size()))];
    p.name += " ";
    p.name += last_names[static_cast<std::size_t>(random.next_int(last_names.size()))];
    p.email_address = next_string(random, 7);
    p.email_address += "@";
    p.email_address += next_string(random, 5);
    p.email_address += ".com";
    for (int i = 0; i < 4; ++i) {
      char digits[8];
      std::snprintf(digits, sizeof digits, "%04d", random.next_int(10000));
      if (i > 0) p.credit_card.push_back(' ');
      p.credit_card += digits;
    }
    p.city = us_cities[static_cast<std::size_t>(random.next_int(us_cities.size()))];
    p.state = us_states[static_cast<std::size_t>(random.next_int(us_states.size()))];
    const auto current = static_cast<int>(8 + p.name.size() + p.email_address.size() + p.credit_card.size() +
                                          p.city.size() + p.state.size());
    p.extra = next_extra(random, current, c.avg_person_bytes);
    p.date_time_ms = e.event_time_ms;
  } else if (rem < person_proportion + auction_proportion) {
    e.kind = EventKind::auction;
    Auction& a = e.auction;
    a.id = last_base0_auction_id(id) + first_auction_id;
    if (random.next_int(c.hot_sellers_ratio) > 0) {  // the first of the last batch of 100 people
      a.seller = (last_base0_person_id(id) / hot_seller_batch) * hot_seller_batch;
    } else {
      a.seller = next_base0_person_id(id, random, c);
    }
    a.seller += first_person_id;
    a.category = first_category_id + random.next_int(num_categories);
    a.initial_bid = next_price(random);
    // Auctions last on average as long as it takes to create num_in_flight_auctions more.
    const std::int64_t events_for_auctions =
        (static_cast<std::int64_t>(c.num_in_flight_auctions) * proportion_denominator) / auction_proportion;
    const std::int64_t horizon_ms = timestamp_of(adjusted + events_for_auctions) - e.event_time_ms;
    a.expires_ms = e.event_time_ms + 1 + next_long(random, std::max<std::int64_t>(horizon_ms * 2, 1));
    a.item_name = next_string(random, 20);
    a.description = next_string(random, 100);
    a.reserve = a.initial_bid + next_price(random);
    const auto current = static_cast<int>(8 + a.item_name.size() + a.description.size() + 8 + 8 + 8 + 8 + 8);
    a.extra = next_extra(random, current, c.avg_auction_bytes);
    a.date_time_ms = e.event_time_ms;
  } else {
    e.kind = EventKind::bid;
    Bid& b = e.bid;
    if (random.next_int(c.hot_auction_ratio) > 0) {  // the first of the last batch of 100 auctions
      b.auction = (last_base0_auction_id(id) / hot_auction_batch) * hot_auction_batch;
    } else {
      b.auction = next_base0_auction_id(id, random, c);
    }
    b.auction += first_auction_id;
    if (random.next_int(c.hot_bidders_ratio) > 0) {  // the second of the last batch of 100 people
      b.bidder = (last_base0_person_id(id) / hot_bidder_batch) * hot_bidder_batch + 1;
    } else {
      b.bidder = next_base0_person_id(id, random, c);
    }
    b.bidder += first_person_id;
    b.price = next_price(random);
    b.extra = next_extra(random, 8 + 8 + 8 + 8, c.avg_bid_bytes);
    // After every draw Beam makes, so all of Beam's fields stay identical to Beam's.
    const Channel& ch = random.next_int(hot_channels_ratio) > 0
                            ? m_hot_channels[static_cast<std::size_t>(random.next_int(m_hot_channels.size()))]
                            : m_channel_cache[static_cast<std::size_t>(random.next_int(channels_number))];
    b.channel = ch.name;
    b.url = ch.url;
    b.date_time_ms = e.event_time_ms;
  }
  return e;
}

}  // namespace rill::nexmark
