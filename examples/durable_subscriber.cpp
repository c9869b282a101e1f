// A persistent publisher and a durable subscriber that acknowledges explicitly, in one
// program: the subscriber stops half way, comes back under the same durable name and
// resumes right after its last acknowledged message; nothing is handled twice.
//   durable_subscriber DIR [PORT]    (run it again: the log, its sequence and the
//                                     subscriber's position all continue from DIR)
#include <chrono>
#include <cstdio>
#include <rill/rill.hpp>
#include <string>

namespace {

// Serves the subscriber (catch-up from the log is sent from service()) while it polls.
std::uint64_t drain(rill::Publisher& pub, rill::Subscriber& sub, std::uint64_t up_to, const char* who) {
  std::uint64_t last = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::uint64_t publisher = 0;
  auto handle = [&](const rill::MessageView& m) {
    const auto text = m.payload_text();
    std::printf("%s: seq=%llu %.*s\n", who, static_cast<unsigned long long>(m.sequence()),
                static_cast<int>(text.size()), text.data());
    // ... do the work: charge the order, write it to a database ...
    publisher = m.publisher_id();
    last = m.sequence();
  };
  while (last < up_to && std::chrono::steady_clock::now() < deadline) {
    pub.service();
    if (sub.wait_poll(handle, 1, std::chrono::milliseconds(5)) == 0) continue;
    // Done with it: acknowledge. The publisher stores the position under the durable name.
    if (auto a = sub.ack(publisher, last); !a) std::fprintf(stderr, "ack: %s\n", a.error().message().c_str());
  }
  return last;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: durable_subscriber DIR [PORT]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::string endpoint = std::string("tcp://127.0.0.1:") + (argc > 2 ? argv[2] : "5557");
  rill::Node node;
  // Every message goes to the log in DIR/log before it is sent; fdatasync every 10 ms.
  auto pub = node.publisher({.endpoint = endpoint,
                             .topic = "orders/eu",
                             .durability = rill::Durability::persistent(dir + "/log"),
                             .log = {.fsync = rill::FsyncPolicy::every(std::chrono::milliseconds(10))}});
  if (!pub) {
    std::fprintf(stderr, "publisher: %s\n", pub.error().message().c_str());
    return 1;
  }
  const std::uint64_t first = pub->next_sequence();  // > 1 when DIR already holds a log
  auto publish = [&](int n) {
    for (int i = 0; i < n; ++i) {
      if (auto r = pub->publish_text("order " + std::to_string(pub->next_sequence())); !r) {
        std::fprintf(stderr, "publish: %s\n", r.error().message().c_str());
        return false;
      }
    }
    return true;
  };
  const rill::SubscriberOptions opts{.endpoints = {endpoint},
                                     .prefix = "orders/",
                                     .policy = rill::Policy::backpressure(64),
                                     .durability = rill::Durability::persistent(),
                                     .durable_name = "billing",
                                     .from = rill::StartFrom::last_ack,
                                     .state_dir = dir,  // its exactly-once state: survives a crash
                                     .auto_ack = false};
  if (!publish(10)) return 1;
  {
    auto sub = node.subscriber(opts);
    if (!sub) {
      std::fprintf(stderr, "subscriber: %s\n", sub.error().message().c_str());
      return 1;
    }
    drain(*pub, *sub, first + 4, "first run");  // takes 5 of the 10, then goes away
  }
  if (!publish(5)) return 1;  // published while nobody listens: kept in the log
  auto sub = node.subscriber(opts);
  if (!sub) {
    std::fprintf(stderr, "subscriber: %s\n", sub.error().message().c_str());
    return 1;
  }
  const auto last = drain(*pub, *sub, first + 14, "resumed");  // from first + 5: after its last ack
  std::printf(
      "received %llu, gaps %llu; the log continues at %llu\n", static_cast<unsigned long long>(sub->stats().received),
      static_cast<unsigned long long>(sub->stats().gaps), static_cast<unsigned long long>(pub->next_sequence()));
  return last == first + 14 ? 0 : 1;
}
