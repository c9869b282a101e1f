// cep_v_shape: complex event processing on rill. A publisher sends price ticks (JSON) for
// two symbols, a little out of order; the job finds per symbol a V shape within 10 s of
// event time (SQL: PATTERN (S D{2,} U{2,}) WITHIN INTERVAL '10' SECOND, DEFINE D AS price <
// PREV(price), U AS price > PREV(price)) and prints one JSON line per match with its
// measures and every tick it is made of (publisher id, sequence, payload).
// Usage: cep_v_shape ENDPOINT   e.g. cep_v_shape tcp://127.0.0.1:5562
#include <chrono>
#include <cstdio>
#include <rill/rill.hpp>
#include <rill/stream.hpp>
#include <string>

namespace cep = rill::stream::cep;
using namespace std::chrono_literals;

namespace {
double price(const cep::Event* e) {
  return cep::field(e, 0);
}
double value(const cep::Value& v) {
  return std::holds_alternative<double>(v) ? std::get<double>(v) : 0.0;
}

// Each symbol's prices: a drift with V shapes every 20 ticks (a fall of 4, a rise of 5).
double tick_price(int symbol, int i) {
  const int phase = i % 20;
  double p = 100 + symbol * 50 + (i / 20) * 0.5;
  if (phase >= 10 && phase < 14) p -= (phase - 9) * 1.5;   // down
  if (phase >= 14 && phase < 19) p -= (18 - phase) * 1.2;  // up again
  return p;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: cep_v_shape ENDPOINT\n");
    return 2;
  }
  const std::string ep = argv[1];
  rill::Node node;
  auto ticks = node.publisher({.endpoint = ep, .topic = "prices/ticks"});
  auto in = node.subscriber({.endpoints = {ep}, .prefix = "prices/", .policy = rill::Policy::backpressure(256)});
  if (!ticks || !in || !ticks->wait_for_subscribers(1, 5s)) {
    std::fprintf(stderr, "cep_v_shape: could not connect on %s\n", ep.c_str());
    return 1;
  }

  // The pattern and its conditions: D and U compare a tick with the symbol's previous one.
  auto down = [](const cep::MatchView& m) { return m.prev() && price(&m.current()) < price(m.prev()); };
  auto up = [](const cep::MatchView& m) { return m.prev() && price(&m.current()) > price(m.prev()); };
  cep::Options options;
  options.watermark.out_of_orderness = 500ms;  // ticks arrive up to 100 ms out of order
  options.measures = {{"start", [](const cep::MatchView& m) { return cep::Value{price(m.first("S"))}; }},
                      {"bottom", [](const cep::MatchView& m) { return cep::Value{price(m.last("D"))}; }},
                      {"end", [](const cep::MatchView& m) { return cep::Value{price(m.last("U"))}; }}};
  std::uint64_t printed = 0;
  auto job = cep::Operator::create(
      {.root = cep::seq({cep::var("S"), cep::var("D").at_least(2), cep::var("U").at_least(2)}),
       .define = {{"D", down}, {"U", up}},
       .within = 10s},
      std::move(options),
      {.match =
           [&](const cep::Match& m) {
             std::string events;
             for (std::size_t i = 0; i < m.events.size(); ++i) {
               const cep::Event& e = m.events[i];
               events += i ? "," : "";
               events += "{\"var\":\"" + m.vars[i] + "\",\"publisher\":" + std::to_string(e.source) +
                         ",\"seq\":" + std::to_string(e.sequence) + ",\"tick\":" + e.payload + "}";
             }
             std::printf("{\"symbol\":\"%s\",\"match\":%llu,\"events\":[%s]}\n", m.key.c_str(),
                         static_cast<unsigned long long>(m.number), events.c_str());
           },
       .row =
           [&](const cep::MatchRow& r) {
             ++printed;
             std::printf("{\"symbol\":\"%s\",\"match\":%llu,\"start\":%.2f,\"bottom\":%.2f,\"end\":%.2f}\n",
                         r.key.c_str(), static_cast<unsigned long long>(r.match_number), value(r.measures[0]),
                         value(r.measures[1]), value(r.measures[2]));
           }});
  if (!job) {
    std::fprintf(stderr, "cep_v_shape: %s\n", job.error().message().c_str());
    return 1;
  }
  const auto parse = rill::stream::json_key_value("symbol", "price");
  const auto time = rill::stream::json_time("ts");

  // 100 ticks per symbol, one every 100 ms of event time; every 7th tick is sent after the
  // next one (100 ms late), which the watermark's bound puts back in order.
  const int n = 100;
  std::string held;
  std::uint64_t sent = 0;
  for (int i = 0; i < n; ++i) {
    for (int s = 0; s < 2; ++s) {
      const std::string json = std::string("{\"symbol\":\"") + (s == 0 ? "ACME" : "INIT") +
                               "\",\"price\":" + std::to_string(tick_price(s, i)) +
                               ",\"ts\":" + std::to_string(1'700'000'000'000 + i * 100) + "}";
      if (i % 7 == 3 && held.empty()) {
        held = json;
        continue;
      }
      if (!ticks->publish_text(json)) return 1;
      ++sent;
      if (!held.empty() && i % 7 == 4) {
        if (!ticks->publish_text(held)) return 1;
        ++sent;
        held.clear();
      }
    }
  }
  if (!held.empty() && ticks->publish_text(held)) ++sent;

  std::uint64_t received = 0, bad = 0;
  while (received < sent && in->wait_poll(
                                [&](const rill::MessageView& m) {
                                  ++received;
                                  if (auto e = cep::event_from(m, parse, time)) {
                                    job->process(*e);
                                  } else {
                                    ++bad;
                                  }
                                },
                                256, 1s) > 0) {
  }
  job->finish();
  const auto st = job->stats();
  std::printf("{\"ticks\":%llu,\"bad\":%llu,\"late_dropped\":%llu,\"matches\":%llu,\"expired\":%llu}\n",
              static_cast<unsigned long long>(st.events), static_cast<unsigned long long>(bad),
              static_cast<unsigned long long>(st.late_dropped), static_cast<unsigned long long>(st.matches),
              static_cast<unsigned long long>(st.expired));
  return received == sent && printed == st.matches ? 0 : 1;
}
