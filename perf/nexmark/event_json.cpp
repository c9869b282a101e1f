// Nexmark events as JSON with nexmark-flink's column names.
#include <chrono>
#include <cstdio>

#include "nexmark/generator.hpp"

namespace rill::nexmark {

namespace {

// Generated strings hold letters, spaces, '_' and (from the padding) '\\' and the other
// characters between 'H' and 'z'; the escaping covers any byte anyway.
void append_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(ch));
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

void field(std::string& out, const char* name, std::string_view value) {
  if (out.back() != '{') out.push_back(',');
  out += '"';
  out += name;
  out += "\":";
  append_string(out, value);
}

void field(std::string& out, const char* name, std::int64_t value) {
  if (out.back() != '{') out.push_back(',');
  out += '"';
  out += name;
  out += "\":";
  out += std::to_string(value);
}

void time_field(std::string& out, const char* name, std::int64_t ms) { field(out, name, iso_time(ms)); }

}  // namespace

std::string iso_time(std::int64_t ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds{ms}};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<long long>(hms.hours().count()), static_cast<long long>(hms.minutes().count()),
                static_cast<long long>(hms.seconds().count()), static_cast<long long>(hms.subseconds().count()));
  return buf;
}

std::string row_json(const Event& event) {
  std::string out = "{";
  switch (event.kind) {
    case EventKind::person: {
      const Person& p = event.person;
      field(out, "id", p.id);
      field(out, "name", p.name);
      field(out, "emailAddress", p.email_address);
      field(out, "creditCard", p.credit_card);
      field(out, "city", p.city);
      field(out, "state", p.state);
      time_field(out, "dateTime", p.date_time_ms);
      field(out, "extra", p.extra);
      break;
    }
    case EventKind::auction: {
      const Auction& a = event.auction;
      field(out, "id", a.id);
      field(out, "itemName", a.item_name);
      field(out, "description", a.description);
      field(out, "initialBid", a.initial_bid);
      field(out, "reserve", a.reserve);
      time_field(out, "dateTime", a.date_time_ms);
      time_field(out, "expires", a.expires_ms);
      field(out, "seller", a.seller);
      field(out, "category", a.category);
      field(out, "extra", a.extra);
      break;
    }
    case EventKind::bid: {
      const Bid& b = event.bid;
      field(out, "auction", b.auction);
      field(out, "bidder", b.bidder);
      field(out, "price", b.price);
      field(out, "channel", b.channel);
      field(out, "url", b.url);
      time_field(out, "dateTime", b.date_time_ms);
      field(out, "extra", b.extra);
      break;
    }
  }
  out.push_back('}');
  return out;
}

std::string combined_json(const Event& event) {
  const std::string row = row_json(event);
  std::string out = "{\"event_type\":" + std::to_string(static_cast<int>(event.kind));
  out += ",\"person\":" + (event.kind == EventKind::person ? row : std::string("null"));
  out += ",\"auction\":" + (event.kind == EventKind::auction ? row : std::string("null"));
  out += ",\"bid\":" + (event.kind == EventKind::bid ? row : std::string("null"));
  out.push_back('}');
  return out;
}

const char* topic_of(EventKind kind) {
  switch (kind) {
    case EventKind::person:
      return "nexmark/person";
    case EventKind::auction:
      return "nexmark/auction";
    case EventKind::bid:
      break;
  }
  return "nexmark/bid";
}

}  // namespace rill::nexmark
