// rill: brokerless publish/subscribe. Include this one header.
#pragma once

#include "rill/ack_store.hpp"
#include "rill/codec.hpp"
#include "rill/dead_letter.hpp"
#include "rill/endpoint.hpp"
#include "rill/error.hpp"
#include "rill/log.hpp"
#include "rill/message.hpp"
#include "rill/message_builder.hpp"
#include "rill/node.hpp"
#include "rill/policy.hpp"
#include "rill/publisher.hpp"
#include "rill/stats.hpp"
#include "rill/subscriber.hpp"
#include "rill/transports.hpp"
