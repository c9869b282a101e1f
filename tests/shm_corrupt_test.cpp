// A segment anyone with write access may scribble on: a publisher publishes while this
// test corrupts random bytes of the header, slot table, rings and chunk headers and
// data (through its own mapping of the same file), and a subscriber keeps polling. It
// must not crash or read outside a chunk (ASan build), must count what it discards,
// and must never hand out an envelope that fails verification. Opening a segment whose
// geometry is corrupt fails with malformed / incompatible.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "rill/codec.hpp"
#include "test_util.hpp"
#include "transport/shm/shm_directory.hpp"
#include "test_seed.hpp"

using namespace std::chrono_literals;
namespace shm = rill::detail::shm;

namespace {

std::string name_of(const std::string& endpoint) {
  return endpoint.substr(6, endpoint.find('?') - 6);
}

/// The segment of the endpoint's one publisher (the tests below have one per endpoint).
shm::Mapping* open_named(const std::string& name) {
  shm::ShmOptions o;
  o.name = name;
  auto m = shm::open_live_channel(o);
  REQUIRE_MESSAGE(m, m.error().message());
  return *m;
}

/// The mappings of the file at `path` in this process (publisher's, subscriber's, ours).
std::vector<std::pair<std::uintptr_t, std::uintptr_t>> mappings_of(const std::string& path) {
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto at = line.find(path);
    if (at == std::string::npos) continue;
    const auto end = at + path.size();
    if (end != line.size() && line[end] != ' ') continue;  // another name with this one as prefix
    std::uintptr_t lo = 0, hi = 0;
    std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi);
    out.emplace_back(lo, hi);
  }
  return out;
}

/// True when [p, p + size) lies inside the data part of one chunk of one mapping of the segment.
bool inside_one_chunk(const shm::Mapping& layout, const std::vector<std::pair<std::uintptr_t, std::uintptr_t>>& maps,
                      const std::byte* p, std::size_t size) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  for (const auto& [lo, hi] : maps) {
    if (addr < lo || addr >= hi) continue;
    const auto off = addr - lo;
    for (std::uint32_t c = 0; c < layout.class_count(); ++c) {
      const auto& pc = layout.pool(c);
      if (off < pc.offset || off >= pc.offset + std::uint64_t{pc.chunk_bytes} * pc.count) continue;
      const auto in_chunk = (off - pc.offset) % pc.chunk_bytes;
      return in_chunk >= shm::chunk_header_bytes && in_chunk + size <= pc.chunk_bytes;
    }
    return false;
  }
  return false;
}

/// Removes scratch segment files on the way out, even when a check failed.
struct Unlinker {
  std::vector<std::string> names;
  ~Unlinker() {
    for (const auto& n : names) ::unlink(n.c_str());
  }
};

}  // namespace

TEST_CASE("random corruption of a live segment and its directory never crashes the subscriber nor reaches its handler") {
  std::mt19937_64 rng(rilltest::test_seed());
  constexpr int rounds = 60;
  constexpr int iterations = 60;  // per round: 3600 corruptions in all
  std::uint64_t received = 0, malformed = 0, taken = 0, corruptions = 0;
  for (int round = 0; round < rounds; ++round) {
    INFO("round " << round);
    rill::Node node;
    const auto ep = rilltest::fresh_shm_endpoint("slots=4&ring=64&pools=448x256,4032x16");
    const auto name = name_of(ep);
    auto pub = node.publisher({.endpoint = ep, .topic = "fz/topic", .publish_timeout = 1ms});
    REQUIRE(pub);
    const rill::Policy policies[] = {rill::Policy::drop_oldest(32), rill::Policy::drop_newest(16),
                                     rill::Policy::backpressure(16)};
    auto sub = node.subscriber({.endpoints = {ep}, .prefix = "fz/", .policy = policies[round % 3]});
    REQUIRE(sub);
    REQUIRE(rilltest::attach(*pub, *sub));
    shm::Mapping* hand = open_named(name);
    const auto path = shm::channel_path(name, pub->id());
    auto maps = mappings_of(path);
    REQUIRE(maps.size() >= 2);
    std::vector<rill::Sample> kept;
    auto* base = reinterpret_cast<unsigned char*>(hand->base());
    auto* const sub_slot_line1 = reinterpret_cast<unsigned char*>(&hand->slot(0).tail);
    shm::ShmOptions dir_options;
    dir_options.name = name;
    auto dir = shm::Directory::open(dir_options);
    REQUIRE_MESSAGE(dir, dir.error().message());
    for (int it = 0; it < iterations; ++it) {
      const int burst = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < burst; ++i) {
        std::string text = "msg " + std::to_string(it) + std::string(rng() % 600, 'x');
        (void)pub->publish_text(text);  // may fail: the corruption may have broken the slot or pools
      }
      // Where to scribble. The slot's tail word is left alone here (a bad tail makes the
      // publisher evict the slot, which ends this subscriber's stream; the case at the end
      // covers it); this case is about what the subscriber reads.
      unsigned char* target = nullptr;
      std::size_t span = 0;
      switch (rng() % 7) {
        case 6: {  // the directory: its header, the channel entry, the subscription's registry entry
          const auto which = rng() % 3;
          target = which == 0   ? reinterpret_cast<unsigned char*>(&(*dir)->header())
                   : which == 1 ? reinterpret_cast<unsigned char*>(&(*dir)->channel(0))
                                : reinterpret_cast<unsigned char*>(&(*dir)->subscriber(0));
          span = which == 0 ? 192 : which == 1 ? sizeof(shm::ChannelEntry) : sizeof(shm::SubscriberEntry);
          break;
        }
        case 0:  // header: geometry (already copied by both sides) and the live fields
          target = base;
          span = sizeof(shm::SegmentHeader);
          break;
        case 1: {  // slot table, except the tail line of slot 0 (the subscriber's)
          target = reinterpret_cast<unsigned char*>(&hand->slot(0));
          span = sizeof(shm::Slot) * hand->slot_count();
          break;
        }
        case 2:
        case 3: {  // the subscriber's ring
          target = reinterpret_cast<unsigned char*>(hand->ring(0));
          span = hand->ring_capacity() * 8;
          break;
        }
        case 4: {  // a chunk header
          const auto c = static_cast<std::uint32_t>(rng() % hand->chunk_count());
          target = reinterpret_cast<unsigned char*>(hand->chunk(c));
          span = shm::chunk_header_bytes;
          break;
        }
        default: {                                               // a chunk's envelope bytes
          const auto c = static_cast<std::uint32_t>(rng() % 8);  // the first chunks are the busy ones
          target = reinterpret_cast<unsigned char*>(hand->chunk(c)) + shm::chunk_header_bytes;
          span = 700;
          break;
        }
      }
      const int bytes = 1 + static_cast<int>(rng() % 8);
      for (int b = 0; b < bytes; ++b) {
        auto* p = target + rng() % span;
        if (p >= sub_slot_line1 && p < sub_slot_line1 + shm::cache_line) continue;
        *p = static_cast<unsigned char>(rng());
        ++corruptions;
      }
      // The subscriber reads: polled views and taken samples, some kept a while.
      sub->poll(
          [&](const rill::MessageView& m) {
            ++received;
            CHECK(m.topic().starts_with("fz/"));  // the prefix filter held (corruption may change the rest)
            CHECK(inside_one_chunk(*hand, maps, m.payload().data(), m.payload().size()));
          },
          8);
      while (auto s = sub->take()) {
        ++taken;
        const auto bytes_in = s->bytes();
        // What was handed out verifies, and lies inside one chunk.
        REQUIRE(rill::verify_envelope(bytes_in).has_value());
        if (!inside_one_chunk(*hand, maps, bytes_in.data(), bytes_in.size())) {
          maps = mappings_of(path);  // it may have reattached (a new mapping)
          CHECK(inside_one_chunk(*hand, maps, bytes_in.data(), bytes_in.size()));
        }
        if (rng() % 4 == 0) kept.push_back(std::move(*s));
      }
      if (kept.size() > 6) kept.erase(kept.begin(), kept.begin() + 3);
      pub->service();
    }
    malformed += sub->stats().malformed;
    kept.clear();
    hand->release();
  }
  MESSAGE(corruptions << " bytes corrupted; " << received << " polled, " << taken << " taken, " << malformed
                      << " discarded as malformed");
  CHECK(received + taken > 1000);
  CHECK(malformed > 0);  // the corruption did reach the subscriber, and it noticed
}

TEST_CASE("a segment with corrupt geometry is refused with a clear error") {
  Unlinker cleanup;
  rill::Node node;
  const auto ep = rilltest::fresh_shm_endpoint("slots=4&ring=64&pools=448x64,4032x8");
  auto pub = node.publisher({.endpoint = ep, .topic = "geo"});
  REQUIRE(pub);
  // A copy of the segment, under another name, to break at will.
  // A copy of the segment, as a channel of a scratch endpoint, to break at will.
  const auto source = shm::channel_path(name_of(ep), pub->id());
  const auto scratch_name = name_of(ep) + "-scratch";
  const auto scratch = shm::channel_path(scratch_name, pub->id());
  cleanup.names.push_back(scratch);
  std::vector<char> image;
  {
    std::ifstream in(source, std::ios::binary);
    image.assign(std::istreambuf_iterator<char>(in), {});
  }
  REQUIRE(image.size() > 4096);
  const auto write_image = [&](const std::vector<char>& bytes) {
    const int fd = ::open(scratch.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  };
  const auto open_scratch = [&] { return shm::Mapping::open_path(scratch); };
  write_image(image);
  {
    auto good = open_scratch();
    REQUIRE_MESSAGE(good, good.error().message());
    (*good)->release();
  }

  struct Case {
    const char* what;
    std::function<void(shm::SegmentHeader&)> breaks;
    rill::Errc code;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"magic", [](auto& h) { h.magic[0] = 'X'; }, rill::Errc::malformed, "bad magic"},
      {"version", [](auto& h) { h.version = 99; }, rill::Errc::incompatible, "version 99"},
      {"header size", [](auto& h) { h.header_bytes = 64; }, rill::Errc::malformed, "sizes"},
      {"total size", [](auto& h) { h.total_bytes *= 2; }, rill::Errc::malformed, "sizes"},
      {"no slots", [](auto& h) { h.slot_count = 0; }, rill::Errc::malformed, "slot count"},
      {"too many slots", [](auto& h) { h.slot_count = 64; }, rill::Errc::malformed, "slot count"},
      {"ring not a power of two", [](auto& h) { h.ring_capacity = 100; }, rill::Errc::malformed, "ring capacity"},
      {"huge ring", [](auto& h) { h.ring_capacity = 1u << 30; }, rill::Errc::malformed, "ring capacity"},
      {"no classes", [](auto& h) { h.class_count = 0; }, rill::Errc::malformed, "class count"},
      {"too many classes", [](auto& h) { h.class_count = 9; }, rill::Errc::malformed, "class count"},
      {"topic too long", [](auto& h) { h.topic_bytes = 4000; }, rill::Errc::malformed, "class count"},
      {"slots past the end", [](auto& h) { h.slots_offset = h.total_bytes; }, rill::Errc::malformed, "slot table"},
      {"slots inside the header", [](auto& h) { h.slots_offset = 64; }, rill::Errc::malformed, "slot table"},
      {"rings past the end", [](auto& h) { h.rings_offset = h.total_bytes - 64; }, rill::Errc::malformed, "rings"},
      {"pool past the end", [](auto& h) { h.classes[1].offset = h.total_bytes - 64; }, rill::Errc::malformed,
       "chunk pool"},
      {"pool offset wraps", [](auto& h) { h.classes[0].offset = ~0ull - 63; }, rill::Errc::malformed, "chunk pool"},
      {"pool count too big", [](auto& h) { h.classes[1].count = 1u << 30; }, rill::Errc::malformed, "chunk pool"},
      {"tiny chunks", [](auto& h) { h.classes[0].chunk_bytes = 64; }, rill::Errc::malformed, "chunk pool"},
      {"unaligned chunks", [](auto& h) { h.classes[0].chunk_bytes += 8; }, rill::Errc::malformed, "chunk pool"},
      {"index gap", [](auto& h) { h.classes[1].first_index += 1; }, rill::Errc::malformed, "chunk pool"},
      {"chunk count", [](auto& h) { h.chunk_count += 1; }, rill::Errc::malformed, "chunk count"},
  };
  for (const auto& c : cases) {
    INFO("corrupt " << c.what);
    auto bad = image;
    c.breaks(*reinterpret_cast<shm::SegmentHeader*>(bad.data()));
    write_image(bad);
    auto m = open_scratch();
    REQUIRE_FALSE(m);
    CHECK(m.error().code == c.code);
    CHECK(m.error().message().find(c.says) != std::string::npos);
    CHECK(m.error().message().find(scratch) != std::string::npos);  // names the file
  }
  SUBCASE("a file too small to hold a header") {
    write_image(std::vector<char>(image.begin(), image.begin() + 100));
    auto m = open_scratch();
    REQUIRE_FALSE(m);
    CHECK(m.error().code == rill::Errc::malformed);
  }
  SUBCASE("a truncated segment") {
    write_image(std::vector<char>(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(image.size() / 2)));
    auto m = open_scratch();
    REQUIRE_FALSE(m);
    CHECK(m.error().code == rill::Errc::malformed);
  }
  SUBCASE("random bytes of the geometry: refused, or accepted only when everything lies inside the file") {
    std::mt19937_64 rng(rilltest::test_seed() + 1);
    int refused = 0, accepted = 0;
    for (int i = 0; i < 3000; ++i) {
      auto bad = image;
      const int n = 1 + static_cast<int>(rng() % 6);
      for (int k = 0; k < n; ++k) {
        bad[rng() % offsetof(shm::SegmentHeader, state)] = static_cast<char>(rng());
      }
      write_image(bad);
      auto m = open_scratch();
      if (!m) {
        ++refused;
        const auto code = m.error().code;
        CHECK((code == rill::Errc::malformed || code == rill::Errc::incompatible));
        continue;
      }
      ++accepted;
      const auto& map = **m;
      CHECK(map.slot_count() >= 1);
      CHECK(reinterpret_cast<std::byte*>(&map.slot(map.slot_count() - 1) + 1) <= map.base() + map.size());
      CHECK(reinterpret_cast<std::byte*>(map.ring(map.slot_count() - 1) + map.ring_capacity()) <=
            map.base() + map.size());
      for (std::uint32_t c = 0; c < map.chunk_count(); ++c) {
        REQUIRE(map.chunk(c) != nullptr);
        REQUIRE(reinterpret_cast<std::byte*>(map.chunk(c)) + shm::chunk_header_bytes + map.chunk_data_bytes(c) <=
                map.base() + map.size());
      }
      (*m)->release();
    }
    MESSAGE(refused << " corrupt headers refused, " << accepted << " accepted (corruption in unused bytes)");
    CHECK(refused > 1000);
  }
  SUBCASE("a subscriber on a corrupt segment reports it and keeps polling") {
    auto bad = image;
    reinterpret_cast<shm::SegmentHeader*>(bad.data())->ring_capacity = 3;
    write_image(bad);
    // A sound directory that lists the broken segment as its channel.
    shm::ShmOptions o;
    o.name = scratch_name;
    auto dir = shm::Directory::create(o);
    REQUIRE_MESSAGE(dir, dir.error().message());
    cleanup.names.push_back(shm::directory_path(scratch_name));
    shm::write_channel((*dir)->channel(0), pub->id(), "geo");
    auto sub = node.subscriber({.endpoints = {"shm://" + scratch_name}, .prefix = ""});
    REQUIRE(sub);  // a broken segment is waited on like a missing one, not fatal
    for (int i = 0; i < 5; ++i)
      CHECK(sub->wait_poll([](const rill::MessageView&) { FAIL("no message expected"); }, 8, 30ms) == 0);
  }
}

// Slot::tail is written by the subscriber; the publisher loops on it (drop-oldest makes
// room while `head - tail >= capacity`). A tail outside what was written must not hang
// it: the slot is evicted instead. The publish runs in a forked child so a hang would be
// seen as a timeout, not a stuck test.
TEST_CASE("a slot tail written ahead of the publisher's head does not hang the publisher") {
  rill::Node node;
  const auto ep = rilltest::fresh_shm_endpoint("slots=4&ring=64&pools=448x256");
  auto pub = node.publisher({.endpoint = ep, .topic = "t"});
  REQUIRE(pub);
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "", .policy = rill::Policy::drop_oldest(8)});
  REQUIRE(sub);
  REQUIRE(rilltest::attach(*pub, *sub));
  REQUIRE(pub->publish_text("before"));
  shm::Mapping* hand = open_named(name_of(ep));
  hand->slot(0).tail.store(1ull << 40);
  hand->release();
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const auto r = pub->publish_text("after");
    ::_exit(r ? 0 : 1);
  }
  int status = 0;
  bool exited = false;
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (!exited && std::chrono::steady_clock::now() < deadline) {
    exited = ::waitpid(child, &status, WNOHANG) == child;
    if (!exited) std::this_thread::sleep_for(5ms);
  }
  if (!exited) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  CHECK_MESSAGE(exited, "publish() still running 3 s after a subscriber wrote tail = 2^40 into its slot");
}

TEST_CASE("a directory with corrupt geometry or entries is refused with a clear error") {
  rill::Node node;
  const auto ep = rilltest::fresh_shm_endpoint("slots=4&ring=64&pools=448x64");
  auto pub = node.publisher({.endpoint = ep, .topic = "dir/topic"});
  REQUIRE(pub);
  auto sub = node.subscriber({.endpoints = {ep}, .prefix = "dir/"});
  REQUIRE(sub);
  REQUIRE(rilltest::attach(*pub, *sub));
  std::vector<char> file;
  {
    std::ifstream in(shm::directory_path(name_of(ep)), std::ios::binary);
    file.assign(std::istreambuf_iterator<char>(in), {});
  }
  REQUIRE(file.size() > shm::dir_header_bytes);
  // An 8-aligned copy to decode (atomics are read in place).
  std::vector<std::uint64_t> words((file.size() + 7) / 8);
  const auto load = [&](const std::vector<char>& bytes) {
    std::memcpy(words.data(), bytes.data(), bytes.size());
    return std::span<const std::byte>(reinterpret_cast<const std::byte*>(words.data()), bytes.size());
  };
  auto geo = shm::check_directory(load(file));
  REQUIRE_MESSAGE(geo, geo.error().message());
  auto* base = reinterpret_cast<std::byte*>(words.data());
  const auto channel = [&]() -> shm::ChannelEntry& {
    return *reinterpret_cast<shm::ChannelEntry*>(base + geo->channels_offset);
  };
  const auto registered = [&]() -> shm::SubscriberEntry& {
    return *reinterpret_cast<shm::SubscriberEntry*>(base + geo->subscribers_offset);
  };
  // What the live directory holds: the publisher's channel, the subscription's request.
  const auto info = shm::read_channel(channel());
  REQUIRE(info);
  CHECK(info->publisher_id == pub->id());
  CHECK(info->topic == "dir/topic");
  const auto req = shm::read_subscriber(registered());
  REQUIRE(req);
  CHECK(req->pid == static_cast<std::uint32_t>(::getpid()));
  CHECK(req->prefix == "dir/");

  struct Case {
    const char* what;
    std::function<void(shm::DirectoryHeader&)> breaks;
    rill::Errc code;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"magic", [](auto& h) { h.magic[0] = 'X'; }, rill::Errc::malformed, "bad magic"},
      {"a segment's magic", [](auto& h) { std::memcpy(h.magic, shm::shm_magic, 8); }, rill::Errc::incompatible,
       "older rill"},
      {"version", [](auto& h) { h.version = 7; }, rill::Errc::incompatible, "version 7"},
      {"header size", [](auto& h) { h.header_bytes = 64; }, rill::Errc::malformed, "sizes"},
      {"total size", [](auto& h) { h.total_bytes += 4096; }, rill::Errc::malformed, "sizes"},
      {"no instance", [](auto& h) { h.instance = 0; }, rill::Errc::malformed, "owner"},
      {"no owner", [](auto& h) { h.owner_pid = 0; }, rill::Errc::malformed, "owner"},
      {"no channels", [](auto& h) { h.channel_count = 0; }, rill::Errc::malformed, "entry counts"},
      {"too many channels", [](auto& h) { h.channel_count = 5000; }, rill::Errc::malformed, "entry counts"},
      {"too many subscribers", [](auto& h) { h.subscriber_count = 5000; }, rill::Errc::malformed, "entry counts"},
      {"channels past the end", [](auto& h) { h.channels_offset = h.total_bytes - 64; }, rill::Errc::malformed,
       "channel table"},
      {"channels inside the header", [](auto& h) { h.channels_offset = 64; }, rill::Errc::malformed, "channel table"},
      {"channels unaligned", [](auto& h) { h.channels_offset += 8; }, rill::Errc::malformed, "channel table"},
      {"channel offset wraps", [](auto& h) { h.channels_offset = ~0ull - 63; }, rill::Errc::malformed,
       "channel table"},
      {"registry past the end", [](auto& h) { h.subscribers_offset = h.total_bytes; }, rill::Errc::malformed,
       "subscriber table"},
      {"tables overlap", [](auto& h) { h.subscribers_offset = h.channels_offset + 64; }, rill::Errc::malformed,
       "overlap"},
  };
  for (const auto& c : cases) {
    INFO("corrupt " << c.what);
    auto bad = file;
    c.breaks(*reinterpret_cast<shm::DirectoryHeader*>(bad.data()));
    auto g = shm::check_directory(load(bad));
    REQUIRE_FALSE(g);
    CHECK(g.error().code == c.code);
    CHECK(g.error().message().find(c.says) != std::string::npos);
  }
  load(file);
  SUBCASE("entries with lengths out of bounds are not read") {
    channel().topic_bytes.store(257);
    CHECK_FALSE(shm::read_channel(channel()));
    channel().topic_bytes.store(9);
    channel().publisher_id.store(0);
    CHECK_FALSE(shm::read_channel(channel()));
    for (auto* field : {&registered().prefix_bytes, &registered().durable_name_bytes, &registered().group_bytes}) {
      load(file);
      field->store(1u << 20);
      CHECK_FALSE(shm::read_subscriber(registered()));
    }
  }
  SUBCASE("entries that are not live or active are not read") {
    channel().word.store(channel().word.load() & ~0xffull);  // free
    CHECK_FALSE(shm::read_channel(channel()));
    registered().owner.store(registered().owner.load() & ~0xffull);  // free
    CHECK_FALSE(shm::read_subscriber(registered()));
  }
  SUBCASE("random bytes of the geometry: refused, or accepted only when both tables lie inside the file") {
    std::mt19937_64 rng(rilltest::test_seed() + 2);
    int refused = 0;
    for (int i = 0; i < 3000; ++i) {
      auto bad = file;
      const int n = 1 + static_cast<int>(rng() % 6);
      for (int k = 0; k < n; ++k) bad[rng() % offsetof(shm::DirectoryHeader, state)] = static_cast<char>(rng());
      auto g = shm::check_directory(load(bad));
      if (!g) {
        ++refused;
        CHECK((g.error().code == rill::Errc::malformed || g.error().code == rill::Errc::incompatible));
        continue;
      }
      CHECK(g->channels_offset + std::uint64_t{g->channel_count} * sizeof(shm::ChannelEntry) <= bad.size());
      CHECK(g->subscribers_offset + std::uint64_t{g->subscriber_count} * sizeof(shm::SubscriberEntry) <= bad.size());
    }
    MESSAGE(refused << " corrupt directory headers refused");
    CHECK(refused > 1000);
  }
}
