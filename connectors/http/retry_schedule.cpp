#include "retry_schedule.hpp"

#include <charconv>
#include <string>

namespace rill::http {

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || p == text.data())
    return fail(Errc::invalid_argument, "bad duration '" + std::string(text) + "'");
  const std::string_view unit(p, static_cast<std::size_t>(end - p));
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "ms") scale = 1;
  if (unit == "s") scale = 1000;
  if (unit == "m") scale = 60'000;
  if (unit == "h") scale = 3'600'000;
  if (scale == 0 || value > (std::uint64_t{1} << 40) / scale) {
    return fail(Errc::invalid_argument, "bad duration '" + std::string(text) + "' (units: ms, s, m, h)");
  }
  return std::chrono::milliseconds(value * scale);
}

RetrySchedule RetrySchedule::standard() {
  using namespace std::chrono;
  return {.delays = {0ms, 5s, 5min, 30min, 2h, 5h, 10h, 10h}};
}

Result<RetrySchedule> RetrySchedule::parse(std::string_view text) {
  RetrySchedule s;
  while (!text.empty()) {
    const auto comma = text.find(',');
    auto d = parse_duration(text.substr(0, comma));
    if (!d) return std::unexpected(d.error());
    s.delays.push_back(*d);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  }
  if (s.delays.empty() || s.delays.size() > 100)
    return fail(Errc::invalid_argument, "a retry schedule has 1-100 entries");
  return s;
}

std::chrono::milliseconds RetrySchedule::delay_before(std::size_t attempt, std::mt19937_64& rng) const {
  if (attempt == 0 || attempt > delays.size()) return std::chrono::milliseconds(0);
  const auto base = delays[attempt - 1];
  if (base.count() == 0 || jitter <= 0) return base;
  std::uniform_real_distribution<double> f(1.0 - jitter, 1.0 + jitter);
  return std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(base.count()) * f(rng)));
}

}  // namespace rill::http
