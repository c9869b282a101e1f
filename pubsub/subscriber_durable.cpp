// SubscriberCore, the handler's side of durability: the exactly-once state file, acks,
// retries with back-off and dead letters. (The rest of the core is subscriber_core.cpp.)
#include <exception>
#include <thread>

#include "base/logging.hpp"
#include "subscriber_core.hpp"
#ifdef RILL_WITH_LOG
#include "rill/dead_letter.hpp"
#endif

namespace rill::detail {

namespace {

using clock = std::chrono::steady_clock;

// Acks are sent at most this often, or after this many handled messages, and whenever the
// queue runs empty: each round costs an msync of the state file.
constexpr auto ack_interval = std::chrono::milliseconds(10);
constexpr std::uint32_t ack_every = 1024;

}  // namespace

SubscriberCore::PublisherState* SubscriberCore::find_publisher(std::uint64_t id) {
  for (auto& p : m_publishers) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

void SubscriberCore::load_state() {
  for (auto& e : m_store->entries()) {
    if (e.publisher_id == 0) continue;
    if (e.pending > e.delivered) {
      // The previous run died inside the handler for this one: only the application can
      // say whether its effect happened.
      ++m_stats.in_doubt;
      const bool done = m_options.in_doubt && m_options.in_doubt(e.publisher_id, e.pending);
      log().warn("durable subscription {}: publisher {:016x} seq {} was in the handler when the last run died; {}",
                 m_options.durable_name, e.publisher_id, e.pending,
                 done ? "the application says it was handled" : "it will be delivered again");
      if (done) {
        DeliveredStore::finish(e, e.pending);
      } else {
        DeliveredStore::finish(e, e.delivered);
      }
    }
    m_publishers.push_back({.id = e.publisher_id, .expected = e.delivered + 1, .slot = &e});
  }
}

DeliveredEntry& SubscriberCore::durable_slot(PublisherState& p) {
  if (p.slot == nullptr || p.slot->publisher_id != p.id) p.slot = &m_store->slot(p.id);
  return *p.slot;
}

void SubscriberCore::handle(PublisherState& p, const MessageView& view, Subscriber::CheckedHandler handler) {
  const auto seq = view.sequence();
  DeliveredEntry* e = nullptr;
  GroupLedger::Claim claim;
  // handled_on_ack: the state file moves in ack(), once the application is done with it.
  if (m_store && !m_options.handled_on_ack) {
    e = &durable_slot(p);
    DeliveredStore::begin(*e, seq);
  } else if (m_ledger && !claim_in_group(p, view, claim)) {
    return;
  }
  if (m_options.retry.max_attempts == 0) {
    // No retry policy: an exception propagates to the caller as it always did; a
    // returned error is counted (there is nowhere else for it to go).
    if (auto r = handler(view); !r) {
      ++m_stats.handler_failures;
      if (!m_failure_logged) {
        m_failure_logged = true;
        log().warn(
            "subscription {:016x}: the handler failed seq {} ({}) and no retry policy is set; counting further "
            "failures silently",
            m_id, seq, r.error().message());
      }
    }
  } else {
    run_with_retries(view, handler);
  }
  if (e != nullptr) handled(p, e, seq);
  if (m_ledger) {
    m_ledger->finish(claim);
    handled(p, nullptr, seq);
  }
}

bool SubscriberCore::claim_in_group(PublisherState& p, const MessageView& view, GroupLedger::Claim& claim) {
  const auto seq = view.sequence();
  claim = m_ledger->begin(p.id, seq);
  switch (claim.verdict) {
    case GroupLedger::Verdict::handle:
    case GroupLedger::Verdict::untracked:
      return true;
    case GroupLedger::Verdict::done:
      // Another member (one that died before acknowledging it) finished it.
      ++m_stats.duplicates;
      handled(p, nullptr, seq);
      return false;
    case GroupLedger::Verdict::in_doubt:
      break;
  }
  ++m_stats.in_doubt;
  const bool done = m_options.in_doubt && m_options.in_doubt(p.id, seq);
  log().warn("consumer group '{}': publisher {:016x} seq {} was in the handler of a member that died; {}",
             m_options.group, p.id, seq, done ? "the application says it was handled" : "it is delivered again");
  if (!done) return true;
  m_ledger->finish(claim);
  handled(p, nullptr, seq);
  return false;
}

void SubscriberCore::handled(PublisherState& p, DeliveredEntry* e, std::uint64_t seq) {
  if (e != nullptr) DeliveredStore::finish(*e, seq);
  if (!m_options.auto_ack) return;
  p.ack_want = seq;
  m_acks_due = true;
  if (++m_unacked >= ack_every) flush_acks();
}

void SubscriberCore::run_with_retries(const MessageView& view, Subscriber::CheckedHandler handler) {
  const auto& retry = m_options.retry;
  auto backoff = retry.backoff;
  std::string reason;
  for (unsigned attempt = 1;; ++attempt) {
    try {
      auto r = handler(view);
      if (r) return;
      reason = r.error().detail.empty() ? std::string(to_string(r.error().code)) : r.error().detail;
    } catch (const std::exception& ex) {
      reason = ex.what();
    } catch (...) {
      reason = "unknown exception";
    }
    ++m_stats.handler_failures;
    if (attempt >= retry.max_attempts) {
      dead_letter(view, reason, attempt);
      return;
    }
    ++m_stats.retries;
    // The polling thread waits: later messages stay behind this one, so order is kept.
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::max(retry.max_backoff, retry.backoff));
  }
}

void SubscriberCore::dead_letter(const MessageView& view, const std::string& reason, unsigned attempts) {
  ++m_stats.dead_lettered;
  const auto& dir = m_options.retry.dead_letter_dir;
  log().warn("subscription {:016x}: gave up on publisher {:016x} seq {} after {} attempts: {}{}", m_id,
             view.publisher_id(), view.sequence(), attempts, reason,
             dir.empty() ? " (no dead-letter directory: skipped)" : "");
  if (dir.empty()) return;
#ifdef RILL_WITH_LOG
  if (!m_dlq) {
    auto opened = DeadLetterLog::open(dir);
    if (!opened) {
      log().error("subscription {:016x}: cannot open the dead-letter log {}: {}; seq {} is skipped", m_id, dir,
                  opened.error().message(), view.sequence());
      return;
    }
    m_dlq = std::make_shared<DeadLetterLog>(std::move(*opened));
  }
  if (auto added = m_dlq->add(view.bytes(), reason, attempts, view.publisher_id(), view.sequence()); !added) {
    log().error("subscription {:016x}: cannot add seq {} to the dead-letter log {}: {}; it is skipped", m_id,
                view.sequence(), dir, added.error().message());
  }
#else
  log().error("subscription {:016x}: dead-letter logs are not built (RILL_WITH_LOG=OFF); seq {} is skipped", m_id,
              view.sequence());
#endif
}

Result<void> SubscriberCore::ack(std::uint64_t publisher_id, std::uint64_t seq) {
  if (!durable()) return fail(Errc::invalid_argument, "ack() needs a durable subscription (persistent, durable_name)");
  auto* p = find_publisher(publisher_id);
  if (m_ledger) {
    // A group member acknowledges in the order it was sent messages, whatever their sequence.
    if (p == nullptr || seq == 0 || seq >= p->expected) {
      return fail(Errc::invalid_argument, "cannot acknowledge seq " + std::to_string(seq) + " of publisher " +
                                              std::to_string(publisher_id) + ": not delivered to the handler yet");
    }
    p->ack_want = seq;
    m_acks_due = true;
    if (++m_unacked >= ack_every) flush_acks();
    return {};
  }
  if (m_options.handled_on_ack) return ack_handled(p, publisher_id, seq);
  const auto* e = m_store->find(publisher_id);
  if (p == nullptr || e == nullptr || seq == 0 || seq > e->delivered) {
    return fail(Errc::invalid_argument, "cannot acknowledge seq " + std::to_string(seq) + " of publisher " +
                                            std::to_string(publisher_id) + ": not delivered to the handler yet");
  }
  if (seq <= p->ack_want) return {};  // cumulative: already covered
  p->ack_want = seq;
  m_acks_due = true;
  if (++m_unacked >= ack_every) flush_acks();
  return {};
}

Result<void> SubscriberCore::ack_handled(PublisherState* p, std::uint64_t publisher_id, std::uint64_t seq) {
  DeliveredEntry* e = p != nullptr ? &durable_slot(*p) : m_store->find(publisher_id);
  // Handed to the handler: below `expected` while the publisher is tracked. One that left
  // (its state is dropped) can only be acknowledged up to what the state file allows:
  // its messages were handed before it left, so the file's slot still names it.
  const bool handed = p != nullptr ? seq < p->expected : e != nullptr;
  if (e == nullptr || seq == 0 || !handed) {
    return fail(Errc::invalid_argument, "cannot acknowledge seq " + std::to_string(seq) + " of publisher " +
                                            std::to_string(publisher_id) + ": not delivered to the handler yet");
  }
  if (seq <= e->delivered) return {};  // cumulative: already covered
  DeliveredStore::finish(*e, seq);
  if (p == nullptr || p->left) return {};  // nobody to tell; the state file holds it for the next run
  p->ack_want = seq;
  m_acks_due = true;
  if (++m_unacked >= ack_every) flush_acks();
  return {};
}

void SubscriberCore::maybe_flush_acks() {
  if (m_unacked >= ack_every || clock::now() - m_last_ack >= ack_interval) flush_acks();
}

void SubscriberCore::flush_acks() {
  // The publisher forgets what we acknowledge; the local state must never be behind it,
  // even after power loss, or a message would be neither redelivered nor marked handled.
  if (auto synced = m_store ? m_store->sync() : m_ledger->sync(); !synced) {
    if (!m_sync_failed_logged) {
      m_sync_failed_logged = true;
      log().error("durable subscription {}: {}; acknowledgements wait until it works", m_options.durable_name,
                  synced.error().message());
    }
    return;
  }
  bool all = true;
  for (auto& p : m_publishers) {
    // A group member acks the last message it handled, which may be a lower sequence
    // than the one before (a departed member's, given to it): any change is news.
    const bool news = m_group ? p.ack_want != p.ack_sent : p.ack_want > p.ack_sent;
    if (!news || !p.has_source || p.left) continue;
    if (m_transport->ack(p.source, p.id, p.ack_want)) {
      p.ack_sent = p.ack_want;
      m_stats.acked = p.ack_want;
    } else {
      all = false;  // kept; the next round tries again
    }
  }
  m_acks_due = !all;
  m_unacked = 0;
  m_last_ack = clock::now();
}

}  // namespace rill::detail
