// Units of rill cdc: the pgoutput and replication frame decoders on byte sequences written
// here from the documented layouts ("Logical Replication Message Formats", PostgreSQL 15),
// on real messages kept in tests/fuzz/corpus/pgoutput, cut short at every length; the LSN
// text form; the standby status update; the Debezium JSON of each column type.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "connectors/cdc/change_json.hpp"
#include "connectors/cdc/pgoutput.hpp"

namespace rill::cdc {

namespace {

// Big-endian message building, independent of the decoder's cursor.
struct Bytes {
  std::vector<std::byte> v;
  Bytes& u8(std::uint8_t x) {
    v.push_back(std::byte{x});
    return *this;
  }
  Bytes& ch(char c) { return u8(static_cast<std::uint8_t>(c)); }
  Bytes& be(std::uint64_t x, int n) {
    for (int i = n - 1; i >= 0; --i) u8(static_cast<std::uint8_t>(x >> (8 * i)));
    return *this;
  }
  Bytes& i16(std::uint16_t x) { return be(x, 2); }
  Bytes& i32(std::uint32_t x) { return be(x, 4); }
  Bytes& i64(std::uint64_t x) { return be(x, 8); }
  Bytes& str(std::string_view s) {
    for (char c : s) ch(c);
    return u8(0);
  }
  Bytes& text(std::string_view s) {
    ch('t').i32(static_cast<std::uint32_t>(s.size()));
    for (char c : s) ch(c);
    return *this;
  }
  std::span<const std::byte> span() const { return v; }
};

// Decoded messages point into their bytes: keep every test message alive to the end.
template <class T>
T decoded(const Bytes& b) {
  static std::deque<std::vector<std::byte>> kept;
  kept.push_back(b.v);
  auto m = decode_pgoutput(kept.back());
  REQUIRE_MESSAGE(m.has_value(), (m ? "" : m.error().message()));
  REQUIRE(std::holds_alternative<T>(*m));
  return std::get<T>(*m);
}

std::string error_of(const Bytes& b) {
  auto m = decode_pgoutput(b.span());
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error().code == Errc::malformed);
  return m.error().detail;
}

std::vector<std::byte> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

const std::filesystem::path corpus = std::filesystem::path(RILL_SOURCE_DIR) / "tests/fuzz/corpus/pgoutput";

}  // namespace

TEST_CASE("begin and commit carry the commit LSN, time and xid") {
  auto b = decoded<Begin>(Bytes{}.ch('B').i64(0x1600000AB).i64(12345).i32(731));
  CHECK(b.final_lsn == 0x1600000ABu);
  CHECK(b.commit_us == 12345);
  CHECK(b.xid == 731u);
  auto c = decoded<Commit>(Bytes{}.ch('C').u8(0).i64(0x1600000AB).i64(0x1600000F0).i64(12345));
  CHECK(c.commit_lsn == 0x1600000ABu);
  CHECK(c.end_lsn == 0x1600000F0u);
}

TEST_CASE("a relation lists its columns, key flags and type oids") {
  auto r = decoded<Relation>(Bytes{}.ch('R').i32(16384).str("public").str("orders").ch('f').i16(2)
                                 .u8(1).str("id").i32(23).i32(0xffffffff)
                                 .u8(0).str("note").i32(25).i32(0xffffffff));
  CHECK(r.oid == 16384u);
  CHECK(r.schema == "public");
  CHECK(r.name == "orders");
  CHECK(r.replica_identity == 'f');
  REQUIRE(r.columns.size() == 2);
  CHECK(r.columns[0].key);
  CHECK(r.columns[0].name == "id");
  CHECK(r.columns[0].type_oid == 23u);
  CHECK(r.columns[0].type_modifier == -1);
  CHECK_FALSE(r.columns[1].key);
  CHECK(r.columns[1].name == "note");
}

TEST_CASE("tuples tell null, unchanged TOAST and text apart") {
  auto i = decoded<Insert>(Bytes{}.ch('I').i32(7).ch('N').i16(3).text("42").ch('n').ch('u'));
  CHECK(i.relation == 7u);
  REQUIRE(i.row.size() == 3);
  CHECK(i.row[0].kind == TupleValue::Kind::text);
  CHECK(i.row[0].bytes == "42");
  CHECK(i.row[1].kind == TupleValue::Kind::null);
  CHECK(i.row[2].kind == TupleValue::Kind::unchanged_toast);
}

TEST_CASE("an update may carry a key or whole old row before the new one") {
  auto plain = decoded<Update>(Bytes{}.ch('U').i32(7).ch('N').i16(1).text("b"));
  CHECK(plain.old_kind == 0);
  CHECK(plain.old_row.empty());
  CHECK(plain.row[0].bytes == "b");
  auto full = decoded<Update>(Bytes{}.ch('U').i32(7).ch('O').i16(1).text("a").ch('N').i16(1).text("b"));
  CHECK(full.old_kind == 'O');
  CHECK(full.old_row[0].bytes == "a");
  CHECK(full.row[0].bytes == "b");
  CHECK(error_of(Bytes{}.ch('U').i32(7).ch('K').i16(1).text("a")).find("update") != std::string::npos);
}

TEST_CASE("delete, truncate, type, origin and logical messages") {
  auto d = decoded<Delete>(Bytes{}.ch('D').i32(9).ch('K').i16(1).text("5"));
  CHECK(d.old_kind == 'K');
  CHECK(d.old_row[0].bytes == "5");
  auto t = decoded<Truncate>(Bytes{}.ch('T').i32(2).u8(3).i32(10).i32(11));
  CHECK(t.options == 3);
  CHECK(t.relations == std::vector<std::uint32_t>{10, 11});
  auto y = decoded<Type>(Bytes{}.ch('Y').i32(16400).str("public").str("mood"));
  CHECK(y.name == "mood");
  auto o = decoded<Origin>(Bytes{}.ch('O').i64(0xABCDEF).str("upstream"));
  CHECK(o.origin_lsn == 0xABCDEFu);
  CHECK(o.name == "upstream");
  auto m = decoded<Message>(Bytes{}.ch('M').u8(1).i64(5).str("pfx").i32(2).ch('h').ch('i'));
  CHECK(m.transactional);
  CHECK(m.content == "hi");
}

TEST_CASE("lies about sizes and unknown kinds are malformed, never read past the end") {
  CHECK(error_of(Bytes{}).find("empty") != std::string::npos);
  CHECK(error_of(Bytes{}.ch('Z')).find("unknown message type") != std::string::npos);
  CHECK(error_of(Bytes{}.ch('B').i64(1).i64(2)).find("truncated") != std::string::npos);
  CHECK(error_of(Bytes{}.ch('B').i64(1).i64(2).i32(3).u8(0)).find("trailing") != std::string::npos);
  error_of(Bytes{}.ch('I').i32(7).ch('N').i16(0x7fff).text("x"));                  // more columns than bytes
  error_of(Bytes{}.ch('I').i32(7).ch('N').i16(1).ch('t').i32(0x7fffffff).ch('x'));  // value longer than the message
  error_of(Bytes{}.ch('I').i32(7).ch('N').i16(1).ch('t').i32(0xffffffff));          // negative length
  error_of(Bytes{}.ch('I').i32(7).ch('N').i16(1).ch('q'));                          // unknown value kind
  error_of(Bytes{}.ch('R').i32(1).str("s").ch('t'));                                // name without its NUL
  error_of(Bytes{}.ch('R').i32(1).str("s").str("t").ch('d').i16(1000));            // columns not there
  error_of(Bytes{}.ch('T').i32(0xffffffff).u8(0).i32(1));                          // relation count lies
  error_of(Bytes{}.ch('D').i32(9).ch('N').i16(0));                                  // delete needs K or O
}

TEST_CASE("replication frames: XLogData, keepalive, and the status update's 34 bytes") {
  auto w = decode_frame(Bytes{}.ch('w').i64(0x100).i64(0x200).i64(99).ch('B').span());
  REQUIRE(w.has_value());
  const auto& x = std::get<XLogData>(*w);
  CHECK(x.start == 0x100u);
  CHECK(x.wal_end == 0x200u);
  CHECK(x.data.size() == 1);
  auto k = decode_frame(Bytes{}.ch('k').i64(0x300).i64(7).u8(1).span());
  REQUIRE(k.has_value());
  CHECK(std::get<Keepalive>(*k).reply);
  CHECK_FALSE(decode_frame(Bytes{}.ch('k').i64(0x300).i64(7).span()).has_value());
  CHECK_FALSE(decode_frame(Bytes{}.ch('w').i64(0x100).span()).has_value());
  CHECK_FALSE(decode_frame(Bytes{}.ch('x').span()).has_value());
  const auto status = encode_status(0x10, 0x20, 0x30, 0x40, true);
  const auto expect = Bytes{}.ch('r').i64(0x10).i64(0x20).i64(0x30).i64(0x40).u8(1).v;
  CHECK(status == expect);
}

TEST_CASE("LSNs print and parse as PostgreSQL writes them") {
  CHECK(format_lsn(0x16B374D848ull) == "16/B374D848");
  CHECK(format_lsn(0) == "0/0");
  CHECK(parse_lsn("16/B374D848").value() == 0x16B374D848ull);
  CHECK_FALSE(parse_lsn("16").has_value());
  CHECK_FALSE(parse_lsn("/1").has_value());
  CHECK_FALSE(parse_lsn("1/xyz").has_value());
}

TEST_CASE("real messages decode, and every shorter prefix of them is refused") {
  REQUIRE(std::filesystem::is_directory(corpus));
  std::size_t messages = 0;
  std::size_t toast = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    const auto name = entry.path().filename().string();
    if (!name.starts_with("msg-")) continue;
    const auto bytes = read_bytes(entry.path());
    auto m = decode_pgoutput(bytes);
    REQUIRE_MESSAGE(m.has_value(), name);
    ++messages;
    if (const auto* u = std::get_if<Update>(&*m)) {
      for (const auto& v : u->row) toast += v.kind == TupleValue::Kind::unchanged_toast;
    }
    // Logical messages with an empty content could end early legitimately; none here does.
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
      CHECK_MESSAGE(!decode_pgoutput(std::span(bytes).first(cut)).has_value(), name, " cut at ", cut);
    }
  }
  CHECK(messages >= 40);
  CHECK(toast >= 1);  // the corpus holds an update that left a TOASTed value alone
}

TEST_CASE("Debezium JSON: each type as a consumer expects it") {
  TableSchema t{.schema = "public", .name = "a", .replica_identity = 'd', .columns = {}};
  const std::pair<const char*, std::uint32_t> cols[] = {{"i", 23}, {"b", 16}, {"n", 1700}, {"j", 3802},
                                                        {"y", 17}, {"f", 701}, {"s", 25},  {"z", 25},  {"q", 25}};
  for (const auto& [name, oid] : cols) t.columns.push_back({name, oid, false});
  Tuple row = {{TupleValue::Kind::text, "-42"},       {TupleValue::Kind::text, "t"},
               {TupleValue::Kind::text, "1.50"},      {TupleValue::Kind::text, R"({"k": [1]})"},
               {TupleValue::Kind::text, "\\xdeadbe"}, {TupleValue::Kind::text, "NaN"},
               {TupleValue::Kind::text, "a\"b\n"},    {TupleValue::Kind::null, ""},
               {TupleValue::Kind::unchanged_toast, ""}};
  const auto json = change_json(t, 'u', nullptr, &row,
                                {.db = "shop", .lsn = 77, .xid = 9, .commit_ms = 1000, .snapshot = false}, 2000);
  CHECK(json ==
        R"({"before":null,"after":{"i":-42,"b":true,"n":"1.50","j":{"k": [1]},"y":"3q2+","f":"NaN","s":"a\"b\n",)"
        R"("z":null,"q":"__debezium_unavailable_value"},"source":{"connector":"postgresql","db":"shop","schema":"public",)"
        R"("table":"a","lsn":77,"txId":9,"ts_ms":1000,"snapshot":"false"},"op":"u","ts_ms":2000})");
  CHECK(pg_time_to_unix_ms(0) == 946684800000);
  const auto end = end_json(9, 77, 1000, {{"public.a", 2}, {"public.b", 1}});
  CHECK(end == R"({"status":"END","id":"9:77","ts_ms":1000,"event_count":3,"data_collections":)"
               R"([{"data_collection":"public.a","event_count":2},{"data_collection":"public.b","event_count":1}]})");
}

}  // namespace rill::cdc
