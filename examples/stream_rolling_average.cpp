// stream_rolling_average: a rolling 1 s average per sensor over event time, with an alert
// when too many readings arrive late. Two sensor publishers send JSON readings on ENDPOINT;
// the job reads them through a subscriber and publishes changelog rows on "averages/1s"
// (same endpoint), which a second subscriber prints.
// Usage: stream_rolling_average ENDPOINT COUNT   e.g. stream_rolling_average tcp://127.0.0.1:5560 200
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

#include <rill/rill.hpp>
#include <rill/stream.hpp>

namespace rs = rill::stream;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  int count = 0;
  const std::string_view count_arg = argc == 3 ? argv[2] : "";
  const auto [end, ec] = std::from_chars(count_arg.data(), count_arg.data() + count_arg.size(), count);
  if (argc != 3 || ec != std::errc{} || end != count_arg.data() + count_arg.size() || count <= 0) {
    std::fprintf(stderr, "usage: stream_rolling_average ENDPOINT COUNT\n");
    return 2;
  }
  const std::string in_ep = argv[1];
  rill::Node node;
  auto s1 = node.publisher({.endpoint = in_ep, .topic = "sensors/s1"});
  auto s2 = node.publisher({.endpoint = in_ep, .topic = "sensors/s2"});
  if (!s1 || !s2) {
    std::fprintf(stderr, "stream_rolling_average: %s\n", (s1 ? s2 : s1).error().message().c_str());
    return 1;
  }
  auto in = node.subscriber({.endpoints = {in_ep}, .prefix = "sensors/", .policy = rill::Policy::backpressure(256)});
  auto out_pub = node.publisher({.endpoint = in_ep, .topic = "averages/1s"});
  auto out = node.subscriber({.endpoints = {in_ep}, .prefix = "averages/", .policy = rill::Policy::drop_oldest(1024)});
  if (!in || !out_pub || !out) {
    std::fprintf(stderr, "stream_rolling_average: could not connect\n");
    return 1;
  }
  for (auto* p : {&*s1, &*s2, &*out_pub}) {
    if (!p->wait_for_subscribers(1, 5s)) {
      std::fprintf(stderr, "stream_rolling_average: no subscriber on %s\n", p->topic().c_str());
      return 1;
    }
  }

  // The job: rolling 1 s average per sensor, readings up to 200 ms out of order, late ones
  // dropped (counted) and an alert when more than 5% of a second's readings are late.
  rs::PublisherSink sink(*out_pub);
  auto job = rs::WindowOperator::create(
      {.window = rs::sliding(1s),
       .aggregate = rs::avg(),
       .watermark = {.out_of_orderness = 200ms, .idle_after = 2s, .min_sources = 2},
       .late_alert = {.fraction = 0.05,
                      .period = 1s,
                      .callback = [](std::uint64_t late, std::uint64_t total) {
                        std::printf("{\"alert\":\"late readings\",\"late\":%llu,\"of\":%llu}\n",
                                    static_cast<unsigned long long>(late), static_cast<unsigned long long>(total));
                      }}},
      sink.output());
  auto source = rs::SubscriberSource::create(*in, {.parse = rs::json_key_value("sensor", "celsius"),
                                                   .time = rs::json_time("ts")});
  if (!job || !source) return 1;

  // Readings every 100 ms of event time; every 10th is sent 500 ms late (past the bound).
  for (int i = 0; i < count; ++i) {
    const std::int64_t ts = 1'700'000'000'000 + i * 100 - (i % 10 == 9 ? 500 : 0);
    for (auto* p : {&*s1, &*s2}) {
      const std::string json = "{\"sensor\":\"" + p->topic().substr(8) + "\",\"celsius\":" +
                               std::to_string(20 + i % 7) + ",\"ts\":" + std::to_string(ts) + "}";
      if (!p->publish_text(json)) return 1;
    }
    source->poll(*job, 64, 0ms);
  }
  while (source->stats().messages < static_cast<std::uint64_t>(2 * count)) source->poll(*job, 64, 100ms);
  job->finish();

  std::uint64_t printed = 0;
  const std::uint64_t sent = sink.stats().rows + sink.stats().markers;
  while (printed < sent && out->wait_poll(
                               [&](const rill::MessageView& m) {
                                 ++printed;
                                 const auto op = m.header("op");
                                 std::printf("%.*s %.*s\n", static_cast<int>(op ? op->size() : 9),
                                             op ? op->data() : "watermark", static_cast<int>(m.payload_text().size()),
                                             m.payload_text().data());
                               },
                               256, 1s) > 0) {
  }
  const auto st = job->stats();
  std::printf("{\"events\":%llu,\"late_dropped\":%llu,\"rows\":%llu,\"alerts\":%llu}\n",
              static_cast<unsigned long long>(st.events), static_cast<unsigned long long>(st.late_dropped),
              static_cast<unsigned long long>(st.rows), static_cast<unsigned long long>(st.alerts));
  return printed == sent ? 0 : 1;
}
