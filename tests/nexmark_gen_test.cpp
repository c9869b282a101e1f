// The Nexmark generator against Beam's reference rules: java.util.Random reproduced bit for
// bit (values Java itself prints), determinism, the 1:3:46 mix, the id ranges bids and
// auctions may refer to, hot keys, event times, padding sizes, and a few events whose values
// are derived here by hand from the reference formulas.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "nexmark/generator.hpp"
#include "nexmark/java_random.hpp"

using rill::nexmark::EventKind;
using rill::nexmark::Generator;
using rill::nexmark::GeneratorConfig;
using rill::nexmark::JavaRandom;

TEST_CASE("JavaRandom gives the values java.util.Random prints for seeds 0 and 42") {
  CHECK(JavaRandom(0).next_int() == -1155484576);
  CHECK(JavaRandom(42).next_int() == -1170105035);
  CHECK(JavaRandom(0).next_long() == -4962768465676381896LL);
  CHECK(JavaRandom(0).next_double() == doctest::Approx(0.730967787376657).epsilon(1e-15));
  CHECK(JavaRandom(42).next_double() == doctest::Approx(0.7275636800328681).epsilon(1e-15));
  // nextInt(bound) for a power of two takes the high bits of next(31).
  JavaRandom a(7), b(7);
  CHECK(a.next_int(16) == static_cast<std::int32_t>((16LL * b.next(31)) >> 31));
}

TEST_CASE("the same count gives the same bytes, and event(n) equals the n-th next()") {
  Generator g1({}), g2({});
  std::string s1, s2;
  for (int i = 0; i < 20000; ++i) {
    s1 += rill::nexmark::combined_json(g1.next()) + "\n";
    s2 += rill::nexmark::combined_json(g2.next()) + "\n";
  }
  CHECK(s1 == s2);
  const Generator g({});
  for (std::int64_t n : {0, 1, 4, 49, 50, 12345, 19999}) {
    Generator seq({});
    rill::nexmark::Event e;
    for (std::int64_t i = 0; i <= n; ++i) e = seq.next();
    CHECK(rill::nexmark::combined_json(g.event(n)) == rill::nexmark::combined_json(e));
  }
}

TEST_CASE("every 50 events hold 1 person, 3 auctions and 46 bids, in that order") {
  const Generator g({});
  std::map<EventKind, int> counts;
  for (std::int64_t n = 0; n < 100000; ++n) {
    const auto e = g.event(n);
    ++counts[e.kind];
    const auto rem = n % 50;
    CHECK(e.kind == (rem == 0 ? EventKind::person : rem < 4 ? EventKind::auction : EventKind::bid));
  }
  CHECK(counts[EventKind::person] == 2000);
  CHECK(counts[EventKind::auction] == 6000);
  CHECK(counts[EventKind::bid] == 92000);
}

TEST_CASE("ids are sequential and bids and auctions refer to people and auctions by the reference's rules") {
  const Generator g({});
  std::int64_t next_person = 1000, next_auction = 1000;
  int bids = 0, hot_auction_bids = 0, hot_bidder_bids = 0, future_auction = 0, hot_seller_auctions = 0, auctions = 0;
  double extra_sum = 0;
  for (std::int64_t n = 0; n < 200000; ++n) {
    const auto e = g.event(n);
    const std::int64_t people = next_person - 1000;     // persons generated so far
    const std::int64_t made = next_auction - 1000;      // auctions generated so far
    if (e.kind == EventKind::person) {
      REQUIRE(e.person.id == next_person++);
    } else if (e.kind == EventKind::auction) {
      REQUIRE(e.auction.id == next_auction++);
      ++auctions;
      // The seller: the hot one (first of the last batch of 100 people) or one of the last
      // 1000 people, or up to 10 not yet created.
      const std::int64_t hot = ((people - 1) / 100) * 100 + 1000;
      if (e.auction.seller == hot) ++hot_seller_auctions;
      CHECK(e.auction.seller >= 1000 + std::max<std::int64_t>(people - 1000, 0));
      CHECK(e.auction.seller < 1000 + people + 10);
      CHECK(e.auction.category >= 10);
      CHECK(e.auction.category < 15);
      CHECK(e.auction.reserve >= e.auction.initial_bid);
      CHECK(e.auction.expires_ms > e.auction.date_time_ms);
    } else {
      ++bids;
      extra_sum += static_cast<double>(e.bid.extra.size());
      const std::int64_t last = made - 1;  // base-0 id of the newest auction
      if (e.bid.auction == (last / 100) * 100 + 1000) ++hot_auction_bids;
      if (e.bid.bidder == ((people - 1) / 100) * 100 + 1 + 1000) ++hot_bidder_bids;
      // A random auction: one of the last 100 in flight, or up to 10 ahead.
      CHECK(e.bid.auction >= 1000 + std::max<std::int64_t>(last - 100, 0));
      CHECK(e.bid.auction <= 1000 + last + 10);
      if (e.bid.auction > 1000 + last) ++future_auction;
      CHECK(e.bid.bidder >= 1000 + std::max<std::int64_t>(people - 1000, 0));
      CHECK(e.bid.bidder < 1000 + people + 10);
      CHECK(e.bid.price >= 100);
      CHECK(e.bid.price <= 100000000);
      CHECK(!e.bid.channel.empty());
      CHECK(e.bid.url.starts_with("https://www.nexmark.com/"));
    }
  }
  // Hot with probability 1 - 1/ratio (ratio 2 for auctions, 4 for bidders and sellers),
  // plus the random picks that land on the hot one.
  const double hot_auction = static_cast<double>(hot_auction_bids) / bids;
  const double hot_bidder = static_cast<double>(hot_bidder_bids) / bids;
  const double hot_seller = static_cast<double>(hot_seller_auctions) / auctions;
  CHECK(hot_auction > 0.49);
  CHECK(hot_auction < 0.52);
  CHECK(hot_bidder > 0.74);
  CHECK(hot_bidder < 0.77);
  CHECK(hot_seller > 0.73);
  CHECK(hot_seller < 0.78);
  // Random picks reach 10 ids ahead of 111 possible: about 1/2 * 10/111 of bids.
  CHECK(future_auction > bids / 40);
  CHECK(future_auction < bids / 15);
  // Bid padding: a bid's idealised size (4 x 8 bytes + extra) averages 100 bytes.
  CHECK(extra_sum / bids == doctest::Approx(68.0).epsilon(0.02));
}

TEST_CASE("prices are log-uniform between $1 and $1,000,000 (in cents)") {
  const Generator g({});
  int bids = 0, below_10k_cents = 0, below_1m_cents = 0;
  for (std::int64_t n = 0; n < 100000; ++n) {
    const auto e = g.event(n);
    if (e.kind != EventKind::bid) continue;
    ++bids;
    below_10k_cents += e.bid.price < 10000 ? 1 : 0;    // 10^(6u) * 100 < 10^4: u < 1/3
    below_1m_cents += e.bid.price < 1000000 ? 1 : 0;   // u < 2/3
  }
  CHECK(static_cast<double>(below_10k_cents) / bids == doctest::Approx(1.0 / 3).epsilon(0.03));
  CHECK(static_cast<double>(below_1m_cents) / bids == doctest::Approx(2.0 / 3).epsilon(0.03));
}

TEST_CASE("event times follow the inter-event delay, in order unless out-of-order groups are asked for") {
  const Generator g({});
  std::int64_t prev = 0;
  for (std::int64_t n = 0; n < 50000; ++n) {
    const auto e = g.event(n);
    // 100 us apart: event n at base + n / 10 ms.
    REQUIRE(e.event_time_ms == 1436918400000 + n / 10);
    REQUIRE(e.event_time_ms >= prev);
    prev = e.event_time_ms;
  }
  const Generator fast({.inter_event_delay_us = 1000});
  CHECK(fast.event(12345).event_time_ms == 1436918400000 + 12345);

  // Groups of 10: each group holds the same numbers (and times), permuted (i * 953 mod 10);
  // never below the watermark. (A size dividing 952, such as 7, leaves the order unchanged:
  // 953 = 1 mod 7, a property of the reference's formula.)
  const Generator ooo({.inter_event_delay_us = 1000, .out_of_order_group_size = 10});
  int out_of_order = 0;
  prev = 0;
  for (std::int64_t group = 0; group < 1000; ++group) {
    std::vector<std::int64_t> ids;
    for (std::int64_t i = 0; i < 10; ++i) {
      const auto e = ooo.event(group * 10 + i);
      ids.push_back(e.event_id);
      CHECK(e.event_time_ms >= e.watermark_ms);
      CHECK(e.watermark_ms == 1436918400000 + group * 10);
      out_of_order += e.event_time_ms < prev ? 1 : 0;
      prev = e.event_time_ms;
    }
    std::sort(ids.begin(), ids.end());
    for (std::int64_t i = 0; i < 10; ++i) CHECK(ids[static_cast<std::size_t>(i)] == group * 10 + i);
  }
  CHECK(out_of_order > 500);
}

TEST_CASE("values derived by hand from the reference formulas") {
  const Generator g({});
  // Event 4 is a bid (4 % 50 >= 4). Its draws, in the reference's order, from Random(4):
  // nextInt(2) > 0 picks the hot auction (last auction id 2 -> batch start 0 -> 1000),
  // nextInt(4) > 0 the hot bidder (last person 0 -> 0 + 1 -> 1001), then nextDouble for the price.
  {
    JavaRandom r(4);
    const bool hot_auction = r.next_int(2) > 0;
    const bool hot_bidder = r.next_int(4) > 0;
    REQUIRE(hot_auction);
    REQUIRE(hot_bidder);
    const auto price = static_cast<std::int64_t>(std::floor(std::pow(10.0, r.next_double() * 6.0) * 100.0 + 0.5));
    const auto e = g.event(4);
    CHECK(e.bid.auction == 1000);
    CHECK(e.bid.bidder == 1001);
    CHECK(e.bid.price == price);
    // Padding: (100 - 32) = 68, delta round(13.6) = 14, size 54 + nextInt(28).
    const auto size = 54 + r.next_int(28);
    CHECK(e.bid.extra.size() == static_cast<std::size_t>(size));
  }
  // Event 50 is the second person (id 1001); its first draws are the name's two indices.
  {
    JavaRandom r(50);
    static const char* first[] = {"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"};
    static const char* last[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"};
    const std::string f = first[r.next_int(11)];
    const std::string name = f + " " + last[r.next_int(9)];
    const auto e = g.event(50);
    CHECK(e.kind == EventKind::person);
    CHECK(e.person.id == 1001);
    CHECK(e.person.name == name);
    CHECK(e.person.date_time_ms == 1436918400000 + 5);
  }
  // Event 51 is auction 1003 (base 0: 1 * 3 + 0). Its expiry: horizon = time of event
  // 51 + 100 * 50 / 3 (= 1717) minus its own time = 171 - 5 = 166 ms; expires = time + 1 + [0, 332).
  {
    const auto e = g.event(51);
    CHECK(e.auction.id == 1003);
    CHECK(e.auction.expires_ms - e.auction.date_time_ms >= 1);
    CHECK(e.auction.expires_ms - e.auction.date_time_ms <= 332);
    JavaRandom r(51);
    const bool hot_seller = r.next_int(4) > 0;
    std::int64_t seller = 1000 + 0;  // hot: the first of the last batch of 100 people (ids 0..1)
    if (!hot_seller) seller = 1000 + r.next_int(2 + 10);  // 2 people so far, + 10 ahead
    CHECK(e.auction.seller == seller);
    CHECK(e.auction.category == 10 + r.next_int(5));
  }
}

TEST_CASE("the JSON rows carry nexmark-flink's column names, in order") {
  const Generator g({});
  const auto person = rill::nexmark::row_json(g.event(0));
  const auto auction = rill::nexmark::row_json(g.event(1));
  const auto bid = rill::nexmark::row_json(g.event(4));
  auto keys = [](const std::string& json) {
    std::string out;
    for (std::size_t p = json.find("\":"); p != std::string::npos; p = json.find("\":", p + 2)) {
      const auto open = json.rfind('"', p - 1);
      out += json.substr(open + 1, p - open - 1) + ",";
    }
    return out;
  };
  CHECK(keys(person) == "id,name,emailAddress,creditCard,city,state,dateTime,extra,");
  CHECK(keys(auction) == "id,itemName,description,initialBid,reserve,dateTime,expires,seller,category,extra,");
  CHECK(keys(bid) == "auction,bidder,price,channel,url,dateTime,extra,");
  CHECK(rill::nexmark::iso_time(1436918400000 + 86400000 + 3723004) == "2015-07-16T01:02:03.004Z");
  const auto line = rill::nexmark::combined_json(g.event(4));
  CHECK(line.starts_with("{\"event_type\":2,\"person\":null,\"auction\":null,\"bid\":{\"auction\":1000,"));
}
