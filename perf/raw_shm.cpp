// The shm baselines: what two processes sharing memory can do with no rill in between.
// Ping-pong is a bare cache-line handshake (the hardware floor); the stream is a plain
// single-producer ring of fixed slots with a memcpy per message.
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

#include "perf_kit.hpp"

namespace rill::perf {

namespace {

using clock = std::chrono::steady_clock;

constexpr std::uint32_t quit = 0xffffffffu;

// Two words on their own cache lines, shared by the forked pair (mapped before the fork).
struct alignas(64) Lines {
  alignas(64) std::atomic<std::uint32_t> ping{0};
  alignas(64) std::atomic<std::uint32_t> pong{0};
  // --idle block: each waiter's announcement that it sleeps on its word (one flag each:
  // a shared one would let one side clear the other's).
  alignas(64) std::atomic<std::uint32_t> ping_sleeping{0};  // the echo, waiting for a ping
  alignas(64) std::atomic<std::uint32_t> pong_sleeping{0};  // the pinger, waiting for a pong
};

template <class T>
T* shared_object() {
  void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : new (p) T{};
}

void futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t v) {
  timespec ts{0, 100'000'000};
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w), FUTEX_WAIT, v, &ts, nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>& w) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// Waits until `w` differs from `old`: spinning, or (block) sleeping on the futex after
// announcing it, so the writer knows to wake it, like rill's own block strategy.
std::uint32_t await_change(std::atomic<std::uint32_t>& w, std::uint32_t old, Idle idle, std::atomic<std::uint32_t>& sleeping,
                           clock::time_point deadline, bool yield) {
  for (;;) {
    auto v = w.load(std::memory_order_acquire);
    if (v != old) return v;
    if (idle == Idle::block) {
      sleeping.store(1, std::memory_order_seq_cst);
      if (w.load(std::memory_order_seq_cst) == old) futex_wait(w, old);
      sleeping.store(0, std::memory_order_relaxed);
    } else if (yield) {
      sched_yield();  // both sides on one core: spinning would only wait for preemption
    } else {
      __builtin_ia32_pause();
    }
    if (clock::now() > deadline) return old;
  }
}

void signal(std::atomic<std::uint32_t>& w, std::uint32_t v, Idle idle, std::atomic<std::uint32_t>& sleeping) {
  w.store(v, std::memory_order_release);
  if (idle == Idle::block) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleeping.load(std::memory_order_relaxed) != 0) futex_wake(w);
  }
}

// A ring of fixed slots for the stream baseline.
constexpr std::size_t ring_slots = 4096;
constexpr std::size_t max_slot_bytes = 1024;
struct Ring {
  alignas(64) std::atomic<std::uint64_t> head{0};
  alignas(64) std::atomic<std::uint64_t> tail{0};
  alignas(64) std::atomic<std::uint32_t> ready{0};
  alignas(64) unsigned char slots[ring_slots][max_slot_bytes];
};

}  // namespace

PingPongRunner raw_shm_pingpong() {
  Lines* lines = shared_object<Lines>();
  PingPongRunner r;
  r.name = "raw-shm";
  r.echo = [lines](const PerfOptions& o, const Link& link) {
    if (lines == nullptr) return 1;
    link.ready();
    std::uint32_t seen = 0;
    for (;;) {
      const auto v = await_change(lines->ping, seen, o.idle, lines->ping_sleeping,
                                  clock::now() + std::chrono::milliseconds(o.step_timeout_ms * 4),
                                  o.placement == Placement::same);
      if (v == seen) return 1;  // the pinger is gone
      if (v == quit) return 0;
      seen = v;
      signal(lines->pong, v, o.idle, lines->pong_sleeping);
    }
  };
  r.ping = [lines](const PerfOptions& o, const Link& link) -> std::expected<std::vector<std::uint64_t>, std::string> {
    if (lines == nullptr) return std::unexpected("raw-shm: mmap failed");
    while (link.peer() == Peer::starting) {
    }
    std::vector<std::uint64_t> samples;
    samples.reserve(o.count);
    const auto step = std::chrono::milliseconds(o.step_timeout_ms);
    std::uint32_t n = lines->ping.load();
    for (std::size_t i = 0; i < o.warmup + o.count; ++i) {
      const auto t0 = clock::now();
      signal(lines->ping, ++n, o.idle, lines->ping_sleeping);
      if (await_change(lines->pong, n - 1, o.idle, lines->pong_sleeping, clock::now() + step, o.placement == Placement::same) != n) {
        return std::unexpected("raw-shm: pong lost");
      }
      if (i >= o.warmup) samples.push_back(static_cast<std::uint64_t>((clock::now() - t0).count()));
    }
    signal(lines->ping, quit, o.idle, lines->ping_sleeping);
    return samples;
  };
  return r;
}

ThroughputRunner raw_shm_throughput() {
  Ring* ring = shared_object<Ring>();
  ThroughputRunner r;
  r.name = "raw-shm";
  r.send = [ring](const PerfOptions& o, const Link& link) -> std::expected<void, std::string> {
    if (ring == nullptr) return std::unexpected("raw-shm: mmap failed");
    const std::size_t size = std::clamp<std::size_t>(o.size, 1, max_slot_bytes);
    unsigned char payload[max_slot_bytes];
    std::memset(payload, 'x', size);
    while (link.peer() == Peer::starting) {
    }
    ring->ready.store(1, std::memory_order_release);
    std::uint64_t head = 0, tail_seen = 0;
    for (std::size_t i = 0; i < o.throughput_count; ++i) {
      while (head - tail_seen >= ring_slots) {
        tail_seen = ring->tail.load(std::memory_order_acquire);
        if (link.peer() == Peer::gone) return std::unexpected("raw-shm: receiver gone");
      }
      std::memcpy(ring->slots[head % ring_slots], payload, size);
      ring->head.store(++head, std::memory_order_release);
    }
    while (link.peer() == Peer::ready) {
    }
    return {};
  };
  r.receive = [ring](const PerfOptions& o, const Link& link) -> std::expected<std::pair<double, std::uint64_t>, std::string> {
    if (ring == nullptr) return std::unexpected("raw-shm: mmap failed");
    const std::size_t size = std::clamp<std::size_t>(o.size, 1, max_slot_bytes);
    link.ready();
    unsigned char sink[max_slot_bytes];
    std::uint64_t tail = 0, got = 0;
    clock::time_point first{}, last{};
    const auto deadline = clock::now() + std::chrono::milliseconds(o.step_timeout_ms) * 10;
    while (got < o.throughput_count && clock::now() < deadline) {
      const auto head = ring->head.load(std::memory_order_acquire);
      if (head == tail) continue;
      for (; tail < head; ++tail) std::memcpy(sink, ring->slots[tail % ring_slots], size);
      ring->tail.store(tail, std::memory_order_release);
      last = clock::now();
      if (got == 0) first = last;
      got = tail;
    }
    if (got < 2) return std::unexpected("raw-shm: stream did not arrive");
    return std::pair{static_cast<double>(got - 1) / std::chrono::duration<double>(last - first).count(),
                     static_cast<std::uint64_t>(o.throughput_count - got)};
  };
  return r;
}

}  // namespace rill::perf
