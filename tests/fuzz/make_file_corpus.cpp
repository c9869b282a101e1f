// Writes the seed corpora for the durable state files (fuzz_ack_store, fuzz_state_file,
// fuzz_sequence_mark, fuzz_group_ledger): files made by the real code in a scratch
// directory, then lying copies (bad magic, version, sizes, a publisher twice, a mark at the
// edge of the range). Run by hand when one of those formats changes:
// `rill_fuzz_make_file_corpus tests/fuzz/corpus`, then optionally `scripts/fuzz.sh --merge`.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "policies/durability/delivered_store.hpp"
#include "policies/durability/group_ledger.hpp"
#include "policies/durability/sequence_mark.hpp"
#include "rill/ack_store.hpp"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

void die(const std::string& what) {
  std::fprintf(stderr, "make_file_corpus: %s\n", what.c_str());
  std::exit(1);
}

Bytes read(const fs::path& p, std::size_t limit = SIZE_MAX) {
  std::ifstream in(p, std::ios::binary);
  Bytes b{std::istreambuf_iterator<char>(in), {}};
  if (b.size() > limit) b.resize(limit);
  return b;
}

void write(const fs::path& dir, const std::string& name, const Bytes& bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) die("cannot write " + (dir / name).string());
}

template <class T>
void put(Bytes& b, std::size_t at, T v) {
  if (at + sizeof v > b.size()) b.resize(at + sizeof v);
  std::memcpy(b.data() + at, &v, sizeof v);
}

template <class T>
T check(T r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().message());
  return r;
}

// Ack store seeds: the first byte 0 takes the rest as it is, 1 appends its CRC.
void ack_store(const fs::path& out, const fs::path& scratch) {
  const auto path = scratch / "acks";
  {
    auto s = check(rill::AckStore::open(path), "ack store");
    (void)check(s->ack("orders", 42), "ack");
    (void)check(s->ack("audit", 7), "ack");
    (void)check(s->set("a-much-longer-durable-name-for-the-walk", 1ull << 40), "set");
  }
  const Bytes file = read(path);
  Bytes as_is{0};
  as_is.insert(as_is.end(), file.begin(), file.end());
  write(out, "three_entries", as_is);
  Bytes body{1};  // without its CRC: the target appends it
  body.insert(body.end(), file.begin(), file.end() - 4);
  write(out, "three_entries_crc_appended", body);
  Bytes cut = body;
  cut.resize(cut.size() - 3);
  write(out, "entry_cut_crc_appended", cut);
  Bytes many = body;
  put<std::uint32_t>(many, 1 + 12, 1000);  // count says 1000 entries
  write(out, "count_lies_crc_appended", many);
  Bytes empty{1};
  empty.insert(empty.end(), file.begin(), file.begin() + 16);
  put<std::uint32_t>(empty, 1 + 12, 0);
  write(out, "empty_crc_appended", empty);
  Bytes bad = as_is;
  bad[5] ^= 0x20;
  write(out, "bad_magic", bad);
}

void state_file(const fs::path& out, const fs::path& scratch) {
  {
    auto s = check(rill::detail::DeliveredStore::open(scratch, "sub"), "state file");
    for (std::uint64_t id : {0xabcdefull, 0x1234ull, 0x77ull}) {
      auto& e = s->slot(id);
      rill::detail::DeliveredStore::begin(e, id & 0xff);
      rill::detail::DeliveredStore::finish(e, id & 0xff);
    }
    rill::detail::DeliveredStore::begin(s->slot(0x1234), 99);  // inside the handler when it "died"
  }
  const Bytes file = read(scratch / "sub.rill-state");
  write(out, "three_publishers", file);
  Bytes twice = file;
  std::memcpy(twice.data() + 64 + 32, twice.data() + 64, 8);  // second slot names the first's publisher
  write(out, "publisher_twice", twice);
  Bytes version = file;
  put<std::uint32_t>(version, 8, 2);
  write(out, "version_2", version);
  Bytes capacity = file;
  put<std::uint32_t>(capacity, 12, 255);
  write(out, "capacity_lies", capacity);
  write(out, "header_only", Bytes(file.begin(), file.begin() + 64));
  write(out, "zero_header", Bytes(64, 0));
}

void sequence_mark(const fs::path& out, const fs::path& scratch) {
  {
    auto m = check(rill::detail::SequenceMark::open(scratch), "sequence mark");
    (void)check(m->hand_out(1000, true), "hand_out");
    (void)check(m->hand_out(1001, false), "hand_out");
  }
  const Bytes file = read(scratch / "sequence.mark", 72);
  write(out, "handed_out_1001", file);
  Bytes other_boot = file;
  other_boot[16] ^= 1;  // another boot: the synced reservation counts
  write(out, "other_boot", other_boot);
  Bytes edge = file;
  put<std::uint64_t>(edge, 56, ~std::uint64_t{0});
  write(out, "handed_out_max", edge);
  Bytes reserved_edge = other_boot;
  put<std::uint64_t>(reserved_edge, 64, (1ull << 63) - 1);
  write(out, "reserved_to_edge", reserved_edge);
  Bytes version = file;
  put<std::uint32_t>(version, 8, 9);
  write(out, "version_9", version);
}

void group_ledger(const fs::path& out, const fs::path& scratch) {
  const std::uint64_t publisher = 0xfeed;
  {
    auto g = check(rill::detail::GroupLedger::open(scratch, "g"), "group ledger");
    for (std::uint64_t seq = 1; seq <= 4; ++seq) {
      const auto c = g->begin(publisher, seq);
      if (seq != 3) g->finish(c);  // 3: "died" inside its handler
    }
  }
  // Header, member slots, publisher table and the first cells; the target extends it.
  Bytes file = read(scratch / "g.rill-group", 8192 + 64);
  auto with_claim = [&](Bytes b, std::uint64_t seq) {
    put<std::uint64_t>(b, b.size(), publisher);
    put<std::uint64_t>(b, b.size(), seq);
    return b;
  };
  write(out, "finished_2", with_claim(file, 2));
  write(out, "in_doubt_3", with_claim(file, 3));
  write(out, "fresh_9", with_claim(file, 9));
  Bytes behind = file;
  put<std::uint64_t>(behind, 8192 + 8 * 5, (std::uint64_t{5 + rill::detail::GroupLedger::window} << 24) | 2);
  write(out, "newer_tag_in_cell", with_claim(behind, 5));
  Bytes window = file;
  put<std::uint32_t>(window, 20, 1024);
  write(out, "window_lies", window);
  write(out, "header_only", Bytes(file.begin(), file.begin() + 64));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR   (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  std::string t = (fs::temp_directory_path() / "rill-corpus.XXXXXX").string();
  if (::mkdtemp(t.data()) == nullptr) die("mkdtemp");
  const fs::path scratch = t;
  for (const char* sub : {"ack", "state", "mark", "ledger"}) fs::create_directories(scratch / sub);
  ack_store(out / "ack_store", scratch / "ack");
  state_file(out / "state_file", scratch / "state");
  sequence_mark(out / "sequence_mark", scratch / "mark");
  group_ledger(out / "group_ledger", scratch / "ledger");
  fs::remove_all(scratch);
  std::printf("make_file_corpus: seeds written under %s\n", out.c_str());
  return 0;
}
