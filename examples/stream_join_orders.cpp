// stream_join_orders: joins two topics. Orders ("orders/web") and payments ("payments/card")
// are JSON records with an order id and an event time; an interval join pairs each order
// with the payments of the same id made within 10 s after it, and publishes the pairs on
// "orders/paid" (same endpoint), which a third subscriber prints. Orders paid too late, or
// never, give no row.
// Usage: stream_join_orders ENDPOINT COUNT   e.g. stream_join_orders tcp://127.0.0.1:5561 40
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <rill/rill.hpp>
#include <rill/stream.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace rs = rill::stream;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  int count = 0;
  const std::string_view count_arg = argc == 3 ? argv[2] : "";
  const auto [end, ec] = std::from_chars(count_arg.data(), count_arg.data() + count_arg.size(), count);
  if (argc != 3 || ec != std::errc{} || end != count_arg.data() + count_arg.size() || count <= 0) {
    std::fprintf(stderr, "usage: stream_join_orders ENDPOINT COUNT\n");
    return 2;
  }
  const std::string ep = argv[1];
  rill::Node node;
  auto orders = node.publisher({.endpoint = ep, .topic = "orders/web"});
  auto payments = node.publisher({.endpoint = ep, .topic = "payments/card"});
  auto orders_in =
      node.subscriber({.endpoints = {ep}, .prefix = "orders/web", .policy = rill::Policy::backpressure(256)});
  auto payments_in =
      node.subscriber({.endpoints = {ep}, .prefix = "payments/", .policy = rill::Policy::backpressure(256)});
  auto paid_pub = node.publisher({.endpoint = ep, .topic = "orders/paid"});
  auto paid = node.subscriber({.endpoints = {ep}, .prefix = "orders/paid", .policy = rill::Policy::drop_oldest(4096)});
  if (!orders || !payments || !orders_in || !payments_in || !paid_pub || !paid) {
    std::fprintf(stderr, "stream_join_orders: could not connect\n");
    return 1;
  }
  for (auto* p : {&*orders, &*payments, &*paid_pub}) {
    if (!p->wait_for_subscribers(1, 5s)) {
      std::fprintf(stderr, "stream_join_orders: no subscriber on %s\n", p->topic().c_str());
      return 1;
    }
  }

  // The job: orders (left) joined with payments (right) on "order" where
  // order.ts BETWEEN payment.ts - 10 s AND payment.ts + 0 s; records up to 200 ms out of order.
  rs::JoinSink sink(*paid_pub);
  auto join = rs::JoinOperator::create({.kind = rs::JoinKind::interval,
                                        .lower = 10s,
                                        .upper = 0s,
                                        .watermark = {.out_of_orderness = 200ms, .idle_after = 2s}},
                                       sink.output());
  auto left = rs::JoinSource::create(
      *orders_in, {.side = rs::Side::left, .key = rs::json_key("order"), .time = rs::json_time("ts")});
  auto right = rs::JoinSource::create(
      *payments_in, {.side = rs::Side::right, .key = rs::json_key("order"), .time = rs::json_time("ts")});
  if (!join || !left || !right) return 1;

  // An order every 100 ms; three in four are paid 0.7 to 2.8 s later, one in eight of those
  // only after 12 s (too late to join). Everything is sent in event-time order.
  const std::int64_t t0 = 1'700'000'000'000;
  struct Record {
    std::int64_t ts;
    rill::Publisher* to;
    std::string json;
  };
  std::vector<Record> records;
  for (int i = 0; i < count; ++i) {
    const std::string id = std::to_string(1000 + i);
    const std::int64_t at = t0 + i * 100;
    records.push_back({at, &*orders, R"({"order":)" + id + R"(,"ts":)" + std::to_string(at) + "}"});
    if (i % 4 == 3) continue;
    const std::int64_t paid_at = at + (i % 8 == 6 ? 12'000 : 700 * (1 + i % 4));
    records.push_back(
        {paid_at, &*payments,
         R"({"order":)" + id + R"(,"amount":)" + std::to_string(10 + i) + R"(,"ts":)" + std::to_string(paid_at) + "}"});
  }
  std::stable_sort(records.begin(), records.end(), [](const Record& a, const Record& b) { return a.ts < b.ts; });
  for (const Record& r : records) {
    if (!r.to->publish_text(r.json)) return 1;
    left->poll(*join, 64, 0ms);
    right->poll(*join, 64, 0ms);
  }
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (left->stats().messages + right->stats().messages < records.size() &&
         std::chrono::steady_clock::now() < deadline) {
    left->poll(*join, 64, 10ms);
    right->poll(*join, 64, 10ms);
  }
  join->finish();

  std::uint64_t printed = 0;
  const std::uint64_t sent = sink.stats().rows;
  while (printed < sent && paid->wait_poll(
                               [&](const rill::MessageView& m) {
                                 ++printed;
                                 const auto op = m.header("op");
                                 std::printf("%.*s %.*s\n", static_cast<int>(op ? op->size() : 1),
                                             op ? op->data() : "?", static_cast<int>(m.payload_text().size()),
                                             m.payload_text().data());
                               },
                               256, 1s) > 0) {
  }
  const auto st = join->stats();
  std::printf("{\"orders\":%llu,\"payments\":%llu,\"joined\":%llu,\"late_dropped\":%llu,\"state\":%zu}\n",
              static_cast<unsigned long long>(st.left_events), static_cast<unsigned long long>(st.right_events),
              static_cast<unsigned long long>(st.rows), static_cast<unsigned long long>(st.late_dropped),
              st.state_records);
  return printed == sent ? 0 : 1;
}
