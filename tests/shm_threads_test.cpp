// Several publisher threads (one segment each) and several subscriber threads, each
// subscribed to every segment under its own policy, some handing their samples to
// another thread to release. Run under TSan (label tsan): the ring, cursor, holder-bit
// and wake-up code is shared between threads here exactly as between processes.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;
using rilltest::fresh_shm_endpoint;

namespace {

using clock = std::chrono::steady_clock;

/// Samples handed from a subscriber's thread to the thread that releases them.
class SampleQueue {
 public:
  void push(rill::Sample&& s) {
    {
      std::lock_guard lock(m_mutex);
      m_samples.push_back(std::move(s));
    }
    m_cv.notify_one();
  }
  void close() {
    {
      std::lock_guard lock(m_mutex);
      m_closed = true;
    }
    m_cv.notify_one();
  }
  /// Releases samples as they come (a few at a time, so some are held a while) until closed.
  void run_releaser() {
    std::unique_lock lock(m_mutex);
    for (;;) {
      m_cv.wait(lock, [&] { return m_closed || m_samples.size() >= 4; });
      if (m_closed) break;
      auto batch = std::move(m_samples);
      m_samples.clear();
      lock.unlock();
      for (auto& s : batch) {
        // Read it on this thread before letting it go: its bytes must still be intact.
        m_bytes_read += s.bytes().size();
      }
      batch.clear();  // the chunks go back to the publishers here
      lock.lock();
    }
    m_samples.clear();
  }
  [[nodiscard]] std::size_t bytes_read() const { return m_bytes_read; }

 private:
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<rill::Sample> m_samples;
  bool m_closed = false;
  std::size_t m_bytes_read = 0;
};

struct Account {
  std::uint64_t received = 0;
  std::uint64_t gaps = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t out_of_order = 0;
};

struct SubSpec {
  rill::Policy policy;
  bool take_on_other_thread = false;
};

}  // namespace

TEST_CASE("publisher and subscriber threads over shm: every message received or counted, backpressure lossless") {
  constexpr int publishers = 3;
  constexpr std::uint64_t per_publisher = 4000;
  const std::vector<SubSpec> specs = {
      {rill::Policy::backpressure(64), false}, {rill::Policy::backpressure(16), true},
      {rill::Policy::drop_oldest(8), false},   {rill::Policy::drop_oldest(32), true},
      {rill::Policy::drop_newest(8), false},   {rill::Policy::buffer(4096), false},
  };
  rill::Node node;
  std::vector<std::string> eps;
  std::vector<std::optional<rill::Publisher>> pubs;
  for (int i = 0; i < publishers; ++i) {
    eps.push_back(fresh_shm_endpoint("slots=8&ring=256&pools=448x4096"));
    auto p = node.publisher({.endpoint = eps.back(), .topic = "t/" + std::to_string(i), .publish_timeout = 5000ms});
    REQUIRE_MESSAGE(p, p.error().message());
    pubs.emplace_back(std::move(*p));
  }
  const std::size_t n_subs = specs.size();
  std::vector<std::map<std::uint64_t, Account>> accounts(n_subs);
  std::vector<std::optional<rill::Subscriber>> subs;
  for (std::size_t k = 0; k < n_subs; ++k) {
    auto& acc = accounts[k];
    auto s = node.subscriber(
        {.endpoints = eps,
         .prefix = "t/",
         .policy = specs[k].policy,
         .idle = k % 2 == 0 ? rill::IdleStrategy::block : rill::IdleStrategy::spin_block,
         .on_loss = [&acc](const rill::LossEvent& e) { acc[e.publisher_id].gaps += e.last - e.first + 1; }});
    REQUIRE_MESSAGE(s, s.error().message());
    subs.emplace_back(std::move(*s));
  }

  std::vector<std::uint64_t> retries(publishers, 0);
  std::vector<int> wait_ok(publishers, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < publishers; ++i) {
    threads.emplace_back([&, i] {
      auto& pub = *pubs[static_cast<std::size_t>(i)];
      wait_ok[static_cast<std::size_t>(i)] = pub.wait_for_subscribers(n_subs, 20000ms).has_value();
      std::string text;
      for (std::uint64_t m = 0; m < per_publisher; ++m) {
        char head[48];
        const int len = std::snprintf(head, sizeof head, "p%d m%llu", i, static_cast<unsigned long long>(m));
        text.assign(head, static_cast<std::size_t>(len));
        text.append(m % 200, '.');
        auto r = pub.publish_text(text);
        // A timed-out publish sent nothing; the same message goes again.
        while (!r && (r.error().code == rill::Errc::timed_out || r.error().code == rill::Errc::exhausted)) {
          ++retries[static_cast<std::size_t>(i)];
          r = pub.publish_text(text);
        }
        if (!r) break;
      }
      pubs[static_cast<std::size_t>(i)].reset();  // closes: subscribers learn the last sequence
    });
  }

  std::vector<SampleQueue> queues(n_subs);
  std::vector<std::thread> releasers;
  std::vector<int> finished(n_subs, 0);
  std::vector<rill::SubscriberStats> final_stats(n_subs);
  for (std::size_t k = 0; k < n_subs; ++k) {
    if (specs[k].take_on_other_thread) releasers.emplace_back([&, k] { queues[k].run_releaser(); });
    threads.emplace_back([&, k] {
      auto& sub = *subs[k];
      auto& acc = accounts[k];
      const auto deadline = clock::now() + 60s;
      const auto done = [&] {
        if (acc.size() < static_cast<std::size_t>(publishers)) return false;
        for (const auto& [id, a] : acc)
          if (a.received + a.gaps < per_publisher) return false;
        return true;
      };
      const auto count = [&](const rill::MessageView& m) {
        auto& a = acc[m.publisher_id()];
        ++a.received;
        if (m.sequence() <= a.last_seq) ++a.out_of_order;
        a.last_seq = m.sequence();
      };
      while (!done() && clock::now() < deadline) {
        if (specs[k].take_on_other_thread) {
          if (auto s = sub.wait_take(10ms)) {
            count(s->view());
            queues[k].push(std::move(*s));
          }
        } else {
          sub.wait_poll(count, 64, 10ms);
        }
      }
      finished[k] = done();
      final_stats[k] = sub.stats();
      subs[k].reset();
      queues[k].close();
    });
  }
  for (auto& t : threads) t.join();
  for (auto& t : releasers) t.join();

  for (int i = 0; i < publishers; ++i) CHECK(wait_ok[static_cast<std::size_t>(i)] == 1);
  for (std::size_t k = 0; k < n_subs; ++k) {
    INFO("subscriber " << k << " " << rill::to_string(specs[k].policy));
    CHECK(finished[k] == 1);
    CHECK(accounts[k].size() == static_cast<std::size_t>(publishers));
    for (const auto& [id, a] : accounts[k]) {
      CHECK(a.received + a.gaps == per_publisher);
      CHECK(a.out_of_order == 0);
      if (specs[k].policy.kind == rill::PolicyKind::backpressure) CHECK(a.gaps == 0);
    }
    CHECK(final_stats[k].malformed == 0);
    CHECK(final_stats[k].duplicates == 0);
    CHECK(final_stats[k].gaps == final_stats[k].dropped);
  }
  std::string gaps;
  for (std::size_t k = 0; k < n_subs; ++k) gaps += " " + std::to_string(final_stats[k].gaps);
  MESSAGE("publisher retries after timeouts: " << retries[0] << ", " << retries[1] << ", " << retries[2]
                                               << "; gaps per subscriber:" << gaps);
}
