// No allocation on the hot path: in steady state, publish() and poll() on the calling
// thread allocate no more than the same send and receive through bare libzmq do.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <zmq.h>

#include <cstdlib>
#include <new>

#include "test_util.hpp"

extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_realloc(void*, std::size_t);

namespace {
// Counted per thread, so the ZeroMQ I/O thread's own work does not blur the figure.
thread_local std::uint64_t t_allocs = 0;
thread_local bool t_counting = false;
}  // namespace

// Every C and C++ allocation goes through these (operator new calls malloc).
extern "C" void* malloc(std::size_t n) {
  if (t_counting) ++t_allocs;
  return __libc_malloc(n);
}
extern "C" void* calloc(std::size_t a, std::size_t b) {
  if (t_counting) ++t_allocs;
  return __libc_calloc(a, b);
}
extern "C" void* realloc(void* p, std::size_t n) {
  if (t_counting) ++t_allocs;
  return __libc_realloc(p, n);
}

namespace {

struct Count {
  Count() {
    t_allocs = 0;
    t_counting = true;
  }
  ~Count() { t_counting = false; }
  std::uint64_t value() const { return t_allocs; }
};

constexpr int rounds = 20000;

// What libzmq itself costs per message for the same ROUTER -> DEALER send and receive.
double raw_zmq_allocs_per_message() {
  void* ctx = zmq_ctx_new();
  void* router = zmq_socket(ctx, ZMQ_ROUTER);
  void* dealer = zmq_socket(ctx, ZMQ_DEALER);
  const auto ep = rilltest::fresh_endpoint();
  zmq_bind(router, ep.c_str());
  zmq_connect(dealer, ep.c_str());
  zmq_send(dealer, "hi", 2, 0);
  char id[256];
  const int idn = zmq_recv(router, id, sizeof id, 0);
  char body[64];
  zmq_recv(router, body, sizeof body, 0);
  std::vector<char> payload(150, 'x');
  zmq_msg_t in;
  zmq_msg_init(&in);
  auto one = [&] {
    zmq_msg_t out;
    zmq_msg_init_size(&out, payload.size());
    std::memcpy(zmq_msg_data(&out), payload.data(), payload.size());
    zmq_send(router, id, idn, ZMQ_SNDMORE);
    zmq_msg_send(&out, router, 0);
    zmq_msg_recv(&in, dealer, 0);
  };
  for (int i = 0; i < 1000; ++i) one();
  std::uint64_t n = 0;
  {
    Count c;
    for (int i = 0; i < rounds; ++i) one();
    n = c.value();
  }
  zmq_msg_close(&in);
  zmq_close(router);
  zmq_close(dealer);
  zmq_ctx_term(ctx);
  return static_cast<double>(n) / rounds;
}

}  // namespace

TEST_CASE("publish and poll allocate nothing beyond what libzmq itself allocates") {
  const double raw = raw_zmq_allocs_per_message();
  rill::Node node;
  const auto ep = rilltest::fresh_endpoint();
  auto pub = node.publisher({.endpoint = ep, .topic = "alloc/t"});
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "alloc/", .policy = rill::Policy::backpressure(256)});
  REQUIRE(rilltest::attach(*pub, *sub));
  std::vector<std::byte> payload(64, std::byte{'x'});
  std::uint64_t got = 0;
  const auto h = [&](const rill::MessageView& m) { got += m.payload().size() == 64; };
  auto one = [&] {
    while (!pub->publish_bytes(payload)) sub->poll(h, 64);
    while (sub->poll(h, 1) == 0) {
    }
  };
  for (int i = 0; i < 1000; ++i) one();  // warm-up: rings, builders and scratch reach their size
  std::uint64_t n = 0;
  {
    Count c;
    for (int i = 0; i < rounds; ++i) one();
    n = c.value();
  }
  const double rill_per_msg = static_cast<double>(n) / rounds;
  MESSAGE("allocations per message on the calling thread: rill " << rill_per_msg << ", raw libzmq " << raw);
  CHECK(got == 1000 + rounds);
  // libzmq allocates each message body it sends (zmq_msg_init_size); rill adds nothing.
  CHECK(rill_per_msg <= raw + 0.01);
}
