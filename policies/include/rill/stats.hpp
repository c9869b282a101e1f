// Counters a publisher and a subscriber keep; read them at any time on their thread.
#pragma once

#include <cstdint>

namespace rill {

/// What a publisher did. Updated on the publishing thread only.
struct PublisherStats {
  std::uint64_t sent = 0;           ///< messages published (each counted once, whatever the fan-out)
  std::uint64_t timeouts = 0;       ///< publish() calls that hit their deadline under backpressure
  std::uint64_t blocked_ns = 0;     ///< total time publish() waited for backpressure credit
  std::uint64_t last_blocker = 0;   ///< subscription id that last held publish() back (0: none)
  std::uint64_t peer_drops = 0;     ///< sends skipped because a drop-policy peer's pipe was full
  std::uint64_t bad_control = 0;    ///< malformed or unknown control frames received
  std::uint64_t subscribers = 0;    ///< subscriptions attached now
  std::uint64_t joined = 0;         ///< subscriptions that ever attached
  std::uint64_t left = 0;           ///< subscriptions that detached or died
  std::uint64_t reclaimed = 0;      ///< shm: subscriptions found dead (or corrupt) whose chunks were taken back
  std::uint64_t incompatible = 0;   ///< subscriptions refused: they asked for more durability than offered
  std::uint64_t replayed = 0;       ///< history messages sent to late joiners and durable subscriptions
  std::uint64_t acks = 0;           ///< acknowledgements received from durable subscriptions
  std::uint64_t redelivered = 0;    ///< durable group messages sent from the log (catch-up, no member had room, a member left unacknowledged)
  std::uint64_t log_errors = 0;     ///< persistent: appends that failed (no_space, io_error): not sent
  std::uint64_t auth_rejected = 0;  ///< tcp curve: handshakes the endpoint's allow list refused (per endpoint); udp auth: datagrams refused (forged, replayed, unauthenticated)
};

/// What a subscription saw. Updated on the polling thread only.
struct SubscriberStats {
  std::uint64_t received = 0;        ///< messages handed to the handler
  std::uint64_t gaps = 0;            ///< messages of a publisher's sequence the handler never saw
  std::uint64_t dropped = 0;         ///< of those, the ones this subscription's policy discarded
  std::uint64_t duplicates = 0;      ///< old or repeated sequence numbers not delivered
  std::uint64_t malformed = 0;       ///< frames that failed verification (counted, discarded)
  std::uint64_t oversize = 0;        ///< frames larger than the size limit (counted, discarded)
  std::uint64_t realigned = 0;       ///< frames copied once to reach 8-byte alignment
  std::uint64_t overflow_events = 0; ///< times a buffer policy went past its byte limit (at most 1)
  std::uint64_t queue_depth = 0;     ///< messages waiting in the policy queue now
  std::uint64_t queue_bytes = 0;     ///< bytes waiting in the policy queue now
  std::uint64_t queue_high_water_bytes = 0;  ///< most bytes ever waiting
  std::uint64_t publishers = 0;      ///< publisher instances seen
  std::uint64_t publisher_restarts = 0;      ///< an endpoint came back with a new publisher id
  std::uint64_t publishers_lost = 0;         ///< publishers whose process died without closing (shm)
  std::uint64_t incompatible = 0;    ///< publishers that refused this subscription's durability request
  std::uint64_t acked = 0;           ///< highest position acknowledged (durable, last publisher)
  std::uint64_t handler_failures = 0;  ///< handler calls that threw or returned an error
  std::uint64_t retries = 0;         ///< handler calls repeated after a failure
  std::uint64_t dead_lettered = 0;   ///< messages given up on and written to the dead-letter log
  std::uint64_t in_doubt = 0;        ///< a crash inside the handler left this many messages undecided at start-up
  std::uint64_t security_errors = 0; ///< tcp curve: handshakes that failed (key refused, wrong server key), reported once per failing run
  std::uint64_t auth_rejected = 0;   ///< udp auth: datagrams refused before reading them (forged, replayed, unauthenticated, or authenticated without our key)
};

}  // namespace rill
