// Fuzz target: rill cdc's decoders of what PostgreSQL sends, the replication CopyData frames
// and the pgoutput messages inside them, and the JSON rendering of decoded rows. Properties:
// nothing crashes, every decoded string points inside the input, counts stay within limits,
// and a frame's XLogData payload is the input past its 25-byte header.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <variant>

#include "connectors/cdc/change_json.hpp"
#include "connectors/cdc/pgoutput.hpp"
#include "fuzz_check.hpp"

namespace {

const char* g_begin = nullptr;
const char* g_end = nullptr;

void inside(std::string_view s) {
  if (s.empty()) return;
  rill::fuzz::expect(s.data() >= g_begin && s.data() + s.size() <= g_end, "decoded bytes outside the input");
}

void check_tuple(const rill::cdc::Tuple& t) {
  rill::fuzz::expect(t.size() <= rill::cdc::max_columns, "tuple wider than max_columns");
  for (const auto& v : t) inside(v.bytes);
}

// Renders a row the way rill cdc does, against a schema that names some columns.
void render(const rill::cdc::Tuple& row) {
  rill::cdc::TableSchema schema{.schema = "s", .name = "t", .replica_identity = 'd', .columns = {}};
  const std::uint32_t types[] = {16, 17, 20, 21, 23, 114, 700, 701, 1700, 3802, 25};
  for (std::size_t i = 0; i < row.size() / 2; ++i) schema.columns.push_back({"c", types[i % std::size(types)], false});
  const auto json = rill::cdc::change_json(schema, 'c', nullptr, &row, {.db = "d"}, 0);
  rill::fuzz::expect(json.starts_with("{\"before\":null,\"after\":{"), "change json shape");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  g_begin = reinterpret_cast<const char*>(data);
  g_end = g_begin + size;
  using namespace rill::cdc;
  if (auto f = decode_frame(bytes)) {
    if (const auto* x = std::get_if<XLogData>(&*f)) {
      rill::fuzz::expect(x->data.size() + 25 == size, "XLogData payload is not the rest of the frame");
      (void)decode_pgoutput(x->data);
    } else {
      rill::fuzz::expect(size == 18, "keepalive of the wrong size");
    }
  }
  auto m = decode_pgoutput(bytes);
  if (!m) return 0;
  if (const auto* r = std::get_if<Relation>(&*m)) {
    inside(r->schema);
    inside(r->name);
    rill::fuzz::expect(r->columns.size() <= max_columns, "relation wider than max_columns");
    for (const auto& c : r->columns) inside(c.name);
    (void)TableSchema::from(*r);
  } else if (const auto* i = std::get_if<Insert>(&*m)) {
    check_tuple(i->row);
    render(i->row);
  } else if (const auto* u = std::get_if<Update>(&*m)) {
    check_tuple(u->old_row);
    check_tuple(u->row);
    rill::fuzz::expect(u->old_kind == 0 || u->old_kind == 'K' || u->old_kind == 'O', "update old kind");
    render(u->row);
  } else if (const auto* d = std::get_if<Delete>(&*m)) {
    check_tuple(d->old_row);
  } else if (const auto* t = std::get_if<Truncate>(&*m)) {
    rill::fuzz::expect(t->relations.size() * 4 + 6 == size, "truncate relation count");
  } else if (const auto* o = std::get_if<Origin>(&*m)) {
    inside(o->name);
  } else if (const auto* y = std::get_if<Type>(&*m)) {
    inside(y->schema);
    inside(y->name);
  } else if (const auto* g = std::get_if<Message>(&*m)) {
    inside(g->prefix);
    inside(g->content);
  }
  return 0;
}
