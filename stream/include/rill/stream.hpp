// rill stream processing: event time, watermarks, keyed windows and changelog output over
// rill subscriptions and publishers. Include this one header; link rill::stream.
#pragma once

#include "rill/stream/aggregate.hpp"
#include "rill/stream/join.hpp"
#include "rill/stream/join_io.hpp"
#include "rill/stream/cep.hpp"
#include "rill/stream/cep_io.hpp"
#include "rill/stream/rill_io.hpp"
#include "rill/stream/types.hpp"
#include "rill/stream/watermark.hpp"
#include "rill/stream/window.hpp"
#include "rill/stream/window_operator.hpp"
