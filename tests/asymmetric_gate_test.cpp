// AsymmetricGate and GatedMutex: the frequent side and the rare sides never overlap. Each
// side updates two plain (non-atomic) counters that must stay equal; an overlap tears them,
// and under ThreadSanitizer (label tsan) it is also reported as a data race.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "policies/asymmetric_gate.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

using rill::detail::AsymmetricGate;
using rill::detail::GatedMutex;

namespace {

struct Pair {
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  void bump(std::uint64_t n) {
    a += n;
    b += n;
  }
  [[nodiscard]] bool even() const { return a == b; }
};

}  // namespace

TEST_CASE("the frequent side and two rare sides take turns; nothing is torn") {
  AsymmetricGate gate;
  Pair shared;
  std::mutex rare_mutex;  // the rare sides exclude each other
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<std::uint64_t> closes{0}, refused{0};
  constexpr std::uint64_t min_entries = 300'000;
  constexpr std::uint64_t min_closes = 500;
  std::uint64_t entries = 0;  // the frequent side's own count

  // Both sides keep going until each has had its share, however the threads are scheduled.
  std::thread frequent([&] {
    while (entries < min_entries || closes.load() < min_closes) {
      gate.enter();
      if (!shared.even()) ++torn;
      shared.bump(1);
      gate.leave();
      ++entries;
    }
    done = true;
  });
  std::vector<std::thread> rare;
  for (int t = 0; t < 2; ++t) {
    rare.emplace_back([&, t] {
      while (!done) {
        std::lock_guard lock(rare_mutex);
        if (t == 0) {
          gate.close();  // waits the frequent side out
        } else if (!gate.try_close()) {
          ++refused;  // the frequent side was inside: the gate stays open
          continue;
        }
        if (!shared.even()) ++torn;
        shared.bump(1000);
        ++closes;
        gate.open();
      }
    });
  }
  frequent.join();
  for (auto& r : rare) r.join();
  CHECK(torn == 0);
  CHECK(shared.even());
  CHECK(shared.a == entries + 1000 * closes.load());
  CHECK(closes >= min_closes);
  MESSAGE(closes.load() << " closes, " << refused.load() << " refused tries");
}

TEST_CASE("GatedMutex: a fast holder and mutex holders exclude each other, and waits on it open the gate") {
  GatedMutex mu;
  mu.set_gated(true);
  std::condition_variable_any cv;
  Pair shared;
  std::uint64_t pending = 0;  // guarded by mu: the fast side adds, the consumer takes
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::uint64_t fast = 0, slow = 0, taken = 0;
  constexpr std::uint64_t appends = 200'000;

  std::thread appender([&] {
    for (std::uint64_t i = 0; i < appends; ++i) {
      if (mu.try_fast()) {
        ++fast;
        if (!shared.even()) ++torn;
        shared.bump(1);
        ++pending;
        mu.unlock_fast();
      } else {
        std::lock_guard lock(mu);
        ++slow;
        if (!shared.even()) ++torn;
        shared.bump(1);
        ++pending;
      }
      if (i % 4096 == 0) cv.notify_one();  // from outside the mutex, as Log::append does
    }
    done = true;
    cv.notify_one();
  });
  std::thread consumer([&] {
    std::unique_lock lock(mu);
    for (;;) {
      // While it sleeps here the gate is open: the appender must keep making progress.
      cv.wait_for(lock, std::chrono::milliseconds(1), [&] { return pending > 0 || done; });
      if (!shared.even()) ++torn;
      taken += pending;
      pending = 0;
      if (done) break;
    }
  });
  appender.join();
  consumer.join();
  CHECK(torn == 0);
  CHECK(shared.a == appends);
  CHECK(taken + pending == appends);
  CHECK(fast + slow == appends);
  CHECK(fast > 0);  // the lock-free path was really taken
  MESSAGE(fast << " fast, " << slow << " through the mutex");
}
