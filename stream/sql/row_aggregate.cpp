// The SQL row's aggregates as one stream::Accumulator: COUNT(*), COUNT, COUNT(DISTINCT),
// SUM, MIN, MAX and AVG side by side, saved and loaded as bytes (checkpoints, Row::detail).
#include "stream/sql/row_aggregate.hpp"

#include <set>

#include "stream/sql/row_codec.hpp"

namespace rill::sql::detail {

namespace {

struct Slot {
  std::int64_t n = 0;              // values folded in (non-null)
  std::int64_t i = 0;              // integer SUM
  double d = 0;                    // double SUM, AVG's sum
  Value best;                      // MIN, MAX
  std::set<std::string> distinct;  // COUNT(DISTINCT): each value's bytes
};

bool better(AggFn fn, const Value& v, const Value& best) {
  if (best.is_null()) return true;
  int c = 0;
  if (v.type == Type::string) {
    c = v.s.compare(best.s);
  } else if (v.type == Type::double_ || best.type == Type::double_) {
    const double x = v.type == Type::double_ ? v.d : static_cast<double>(v.i);
    const double y = best.type == Type::double_ ? best.d : static_cast<double>(best.i);
    c = x < y ? -1 : (x > y ? 1 : 0);
  } else {
    c = v.i < best.i ? -1 : (v.i > best.i ? 1 : 0);
  }
  return fn == AggFn::min ? c < 0 : c > 0;
}

class RowAccumulator final : public stream::Accumulator {
 public:
  explicit RowAccumulator(const AggInput& input) : m_input(input), m_slots(input.specs->size()) {}

  // The engine folds an event in while WindowOperator::process runs (time and session
  // windows), so the arguments the runner evaluated for this event are in m_input.args.
  void add(double /*value*/) override {
    const auto& specs = *m_input.specs;
    for (std::size_t j = 0; j < specs.size(); ++j) {
      Slot& s = m_slots[j];
      if (specs[j].fn == AggFn::count_star) {
        ++s.n;
        continue;
      }
      const Value& v = m_input.args[j];
      if (v.is_null()) continue;
      ++s.n;
      switch (specs[j].fn) {
        case AggFn::count_distinct: {
          std::string bytes;
          ByteWriter(bytes).value(v);
          s.distinct.insert(std::move(bytes));
          break;
        }
        case AggFn::sum:
        case AggFn::avg:
          if (v.type == Type::double_) {
            s.d += v.d;
          } else {
            s.i = static_cast<std::int64_t>(static_cast<std::uint64_t>(s.i) + static_cast<std::uint64_t>(v.i));
            s.d += static_cast<double>(v.i);
          }
          break;
        case AggFn::min:
        case AggFn::max:
          if (better(specs[j].fn, v, s.best)) s.best = v;
          break;
        default:
          break;
      }
    }
  }

  void merge(const Accumulator& other) override {
    const auto& o = static_cast<const RowAccumulator&>(other);
    const auto& specs = *m_input.specs;
    for (std::size_t j = 0; j < specs.size(); ++j) {
      Slot& s = m_slots[j];
      const Slot& t = o.m_slots[j];
      s.n += t.n;
      s.i = static_cast<std::int64_t>(static_cast<std::uint64_t>(s.i) + static_cast<std::uint64_t>(t.i));
      s.d += t.d;
      if (!t.best.is_null() && better(specs[j].fn, t.best, s.best)) s.best = t.best;
      s.distinct.insert(t.distinct.begin(), t.distinct.end());
    }
  }

  [[nodiscard]] double result() const override { return m_slots.empty() ? 0.0 : static_cast<double>(m_slots[0].n); }

  void detail(std::string& out) const override { (void)save(out); }

  [[nodiscard]] bool save(std::string& out) const override {
    ByteWriter w(out);
    w.i64(static_cast<std::int64_t>(m_slots.size()));
    for (const Slot& s : m_slots) {
      w.i64(s.n);
      w.i64(s.i);
      w.f64(s.d);
      w.value(s.best);
      w.i64(static_cast<std::int64_t>(s.distinct.size()));
      for (const auto& v : s.distinct) w.str(v);
    }
    return true;
  }

  [[nodiscard]] bool load(std::string_view in) override {
    ByteReader r(in);
    if (r.i64() != static_cast<std::int64_t>(m_slots.size())) return false;
    for (Slot& s : m_slots) {
      s.n = r.i64();
      s.i = r.i64();
      s.d = r.f64();
      s.best = r.value();
      const std::int64_t k = r.i64();
      s.distinct.clear();
      for (std::int64_t x = 0; r.ok() && x < k; ++x) s.distinct.insert(r.str());
    }
    return r.ok() && r.at_end();
  }

  // The SQL results, one per aggregate, in the plan's types.
  [[nodiscard]] std::vector<Value> results() const {
    const auto& specs = *m_input.specs;
    std::vector<Value> out(specs.size());
    for (std::size_t j = 0; j < specs.size(); ++j) {
      const Slot& s = m_slots[j];
      Value& v = out[j];
      switch (specs[j].fn) {
        case AggFn::count_star:
        case AggFn::count:
          v.type = Type::bigint;
          v.i = s.n;
          break;
        case AggFn::count_distinct:
          v.type = Type::bigint;
          v.i = static_cast<std::int64_t>(s.distinct.size());
          break;
        case AggFn::sum:
          if (s.n == 0) break;  // SUM of nothing is NULL
          v.type = specs[j].type;
          if (v.type == Type::double_)
            v.d = s.d;
          else
            v.i = s.i;
          break;
        case AggFn::avg:
          if (s.n == 0) break;
          v.type = Type::double_;
          v.d = s.d / static_cast<double>(s.n);
          break;
        case AggFn::min:
        case AggFn::max:
          v = s.best;
          break;
      }
    }
    return out;
  }

 private:
  const AggInput& m_input;
  std::vector<Slot> m_slots;
};

}  // namespace

stream::Aggregate row_aggregate(const AggInput& input) {
  return [&input]() -> std::unique_ptr<stream::Accumulator> { return std::make_unique<RowAccumulator>(input); };
}

std::optional<std::vector<Value>> aggregate_results(const AggInput& input, std::string_view detail) {
  RowAccumulator acc(input);
  if (!acc.load(detail)) return std::nullopt;
  return acc.results();
}

}  // namespace rill::sql::detail
