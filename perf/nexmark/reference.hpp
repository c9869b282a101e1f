// Hand-written Nexmark q0, q1 and q2 over the generator's Bid structs: the independent
// reference that rill query's results are checked against (tests/nexmark_sql_test.cpp) and
// measured beside (perf/nexmark/nexmark_sql_perf.cpp). No SQL, no stream engine.
#pragma once

#include <cstdint>
#include <string>

#include "nexmark/generator.hpp"

namespace rill::nexmark::reference {

/// q0 (pass through): auction, bidder, price, dateTime, extra of every bid.
struct Q0Row {
  std::int64_t auction = 0, bidder = 0, price = 0, date_time_ms = 0;
  std::string extra;
};
/// q1 (currency conversion): the price in euros, 0.908 * dollars.
struct Q1Row {
  std::int64_t auction = 0, bidder = 0;
  double price = 0;
  std::int64_t date_time_ms = 0;
  std::string extra;
};
/// q2 (selection): auction and price of the bids on every 123rd auction.
struct Q2Row {
  std::int64_t auction = 0, price = 0;
};

/// Calls `out` with q0's row for a bid event (nothing for persons and auctions).
template <class Out>
void q0(const Event& e, Out&& out) {
  if (e.kind != EventKind::bid) return;
  out(Q0Row{e.bid.auction, e.bid.bidder, e.bid.price, e.bid.date_time_ms, e.bid.extra});
}
template <class Out>
void q1(const Event& e, Out&& out) {
  if (e.kind != EventKind::bid) return;
  out(Q1Row{e.bid.auction, e.bid.bidder, 0.908 * static_cast<double>(e.bid.price), e.bid.date_time_ms, e.bid.extra});
}
template <class Out>
void q2(const Event& e, Out&& out) {
  if (e.kind != EventKind::bid || e.bid.auction % 123 != 0) return;
  out(Q2Row{e.bid.auction, e.bid.price});
}

}  // namespace rill::nexmark::reference
