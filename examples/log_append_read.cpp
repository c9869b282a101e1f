// The persistent log on its own: append envelopes durably, then read them back in place,
// resuming from a durable consumer position kept in the ack store.
//   log_append_read DIR [COUNT]      (run it twice: the second run continues the sequence)
#include <cstdio>
#include <rill/rill.hpp>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: log_append_read DIR [COUNT]\n");
    return 2;
  }
  const int count = argc > 2 ? std::stoi(argv[2]) : 5;
  auto log = rill::Log::open(argv[1], {.fsync = rill::FsyncPolicy::always()});
  if (!log) {
    std::fprintf(stderr, "open: %s\n", log.error().message().c_str());
    return 1;
  }
  if (log->recovery().torn_tail)
    std::printf("recovered: cut a torn tail at offset %llu\n",
                static_cast<unsigned long long>(log->recovery().torn_offset));

  // The envelope is stamped with the log's publisher id and the sequence the log will give it.
  rill::MessageBuilder mb;
  for (int i = 0; i < count; ++i) {
    const std::uint64_t seq = log->next_sequence();
    const std::string text = "hello " + std::to_string(seq);
    mb.reset();
    const auto env =
        mb.finish_raw(std::as_bytes(std::span(text.data(), text.size())), {.topic = "demo/log",
                                                                           .publisher_id = log->publisher_id(),
                                                                           .sequence = seq,
                                                                           .timestamp_ns = rill::wall_clock_ns(),
                                                                           .headers = {}});
    if (auto r = log->append(env, {.expect_sequence = seq}); !r) {  // durable when it returns
      std::fprintf(stderr, "append: %s\n", r.error().message().c_str());
      return 1;
    }
  }

  // Read from just after this consumer's last acknowledged position.
  auto acks = rill::AckStore::open(std::string(argv[1]) + "/acks");
  if (!acks) return 1;
  auto reader = log->reader(acks->get("example").value_or(0) + 1);
  if (!reader) return 1;
  std::uint64_t last = 0;
  for (;;) {
    auto rec = reader->next();
    if (!rec) {  // a record failed its CRC: the error names the segment file and offset
      std::fprintf(stderr, "read: %s\n", rec.error().message().c_str());
      return 1;
    }
    if (!*rec) break;
    auto env = rill::verify_envelope((*rec)->body);
    if (!env) continue;
    const rill::MessageView m(*env, (*rec)->body);
    std::printf("%llu %.*s\n", static_cast<unsigned long long>(m.sequence()), static_cast<int>(m.payload_text().size()),
                m.payload_text().data());
    last = (*rec)->sequence;
  }
  if (last != 0 && !acks->ack("example", last)) return 1;
  return 0;
}
