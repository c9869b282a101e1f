// Aggregates: count, sum, min, max, avg, and user-defined ones (init/add/merge/result).
#pragma once

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <limits>
#include <memory>
#include <utility>

namespace rill::stream {

/// The running state of one window's aggregate. Owned by one window; not thread-safe.
class Accumulator {
 public:
  virtual ~Accumulator() = default;
  /// Folds one value in.
  virtual void add(double value) = 0;
  /// Folds another accumulator of the same aggregate in (session merges, corrections).
  virtual void merge(const Accumulator& other) = 0;
  /// The current result.
  [[nodiscard]] virtual double result() const = 0;
  /// Appends a result richer than result() to `out` (Row::detail), for accumulators that
  /// compute several values at once (SQL's aggregates of one row); nothing by default.
  virtual void detail(std::string& out) const { (void)out; }
  /// Appends the state's bytes to `out` for a checkpoint; false if it cannot be saved.
  [[nodiscard]] virtual bool save(std::string& out) const = 0;
  /// Replaces the state with bytes from save(); false if they do not fit this aggregate.
  [[nodiscard]] virtual bool load(std::string_view in) = 0;
};

/// Makes a fresh accumulator for each new window.
using Aggregate = std::function<std::unique_ptr<Accumulator>()>;

namespace detail {
template <class State, class Add, class Merge, class Result>
class FunctionAccumulator final : public Accumulator {
 public:
  FunctionAccumulator(State s, const Add& add, const Merge& merge, const Result& result)
      : m_state(std::move(s)), m_add(add), m_merge(merge), m_result(result) {}
  void add(double value) override { m_add(m_state, value); }
  void merge(const Accumulator& other) override {
    m_merge(m_state, static_cast<const FunctionAccumulator&>(other).m_state);
  }
  [[nodiscard]] double result() const override { return m_result(m_state); }
  // A trivially copyable state is saved as its bytes (same build, same machine); other
  // states cannot be checkpointed.
  [[nodiscard]] bool save(std::string& out) const override {
    if constexpr (std::is_trivially_copyable_v<State>) {
      out.append(reinterpret_cast<const char*>(&m_state), sizeof(State));
      return true;
    } else {
      return false;
    }
  }
  [[nodiscard]] bool load(std::string_view in) override {
    if constexpr (std::is_trivially_copyable_v<State>) {
      if (in.size() != sizeof(State)) return false;
      std::memcpy(static_cast<void*>(&m_state), in.data(), sizeof(State));
      return true;
    } else {
      return false;
    }
  }

 private:
  State m_state;
  const Add& m_add;  // owned by the Aggregate's closure, which outlives its windows
  const Merge& m_merge;
  const Result& m_result;
};
}  // namespace detail

/// A user-defined aggregate over a state of any copyable type (trivially copyable for the
/// operator to checkpoint it):
/// `init()` gives a fresh state, `add(state&, value)`, `merge(state&, const state&)`,
/// `result(const state&) -> double`. The returned Aggregate must outlive the operator using it
/// (the operator keeps it), and the callables must be stateless or thread-compatible.
template <class Init, class Add, class Merge, class Result>
[[nodiscard]] Aggregate make_aggregate(Init init, Add add, Merge merge, Result result) {
  struct Fns {
    Init init;
    Add add;
    Merge merge;
    Result result;
  };
  auto fns = std::make_shared<const Fns>(Fns{std::move(init), std::move(add), std::move(merge), std::move(result)});
  return [fns]() -> std::unique_ptr<Accumulator> {
    using State = decltype(fns->init());
    using Acc = detail::FunctionAccumulator<State, Add, Merge, Result>;
    // The accumulator refers to the callables in `fns`; the shared_ptr in this closure keeps
    // them alive for as long as the Aggregate (held by the operator) lives.
    return std::make_unique<Acc>(fns->init(), fns->add, fns->merge, fns->result);
  };
}

/// Number of values.
[[nodiscard]] inline Aggregate count() {
  return make_aggregate([] { return 0.0; }, [](double& s, double) { s += 1; },
                        [](double& s, const double& o) { s += o; }, [](const double& s) { return s; });
}
/// Sum of values.
[[nodiscard]] inline Aggregate sum() {
  return make_aggregate([] { return 0.0; }, [](double& s, double v) { s += v; },
                        [](double& s, const double& o) { s += o; }, [](const double& s) { return s; });
}
/// Smallest value (+inf for an empty window).
[[nodiscard]] inline Aggregate min() {
  return make_aggregate([] { return std::numeric_limits<double>::infinity(); },
                        [](double& s, double v) { s = std::min(s, v); },
                        [](double& s, const double& o) { s = std::min(s, o); }, [](const double& s) { return s; });
}
/// Largest value (-inf for an empty window).
[[nodiscard]] inline Aggregate max() {
  return make_aggregate([] { return -std::numeric_limits<double>::infinity(); },
                        [](double& s, double v) { s = std::max(s, v); },
                        [](double& s, const double& o) { s = std::max(s, o); }, [](const double& s) { return s; });
}
/// Mean of values (0 for an empty window).
[[nodiscard]] inline Aggregate avg() {
  struct S {  // trivially copyable (std::pair is not), so it can be checkpointed
    double sum = 0, n = 0;
  };
  return make_aggregate([] { return S{}; },
                        [](S& s, double v) {
                          s.sum += v;
                          s.n += 1;
                        },
                        [](S& s, const S& o) {
                          s.sum += o.sum;
                          s.n += o.n;
                        },
                        [](const S& s) { return s.n == 0 ? 0.0 : s.sum / s.n; });
}

}  // namespace rill::stream
