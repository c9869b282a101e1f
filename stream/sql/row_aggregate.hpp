// Internal: a grouped query's aggregates as one stream::Aggregate for the WindowOperator.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "rill/stream/aggregate.hpp"
#include "stream/sql/plan.hpp"

namespace rill::sql::detail {

/// What the accumulators read: the plan's aggregates, and the argument values of the event
/// being processed (the runner fills `args` before WindowOperator::process).
struct AggInput {
  const std::vector<AggSpec>* specs = nullptr;
  std::vector<Value> args;
};

/// Accumulators over `input`, which must outlive the operator.
[[nodiscard]] stream::Aggregate row_aggregate(const AggInput& input);
/// The aggregate values in an output Row's detail; nullopt if the bytes do not fit.
[[nodiscard]] std::optional<std::vector<Value>> aggregate_results(const AggInput& input, std::string_view detail);

}  // namespace rill::sql::detail
