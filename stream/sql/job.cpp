// Job: compiles a script into a Plan, then runs it. A plain query filters and projects each
// input row; a windowed one turns each row into a stream::Event (the group key encoded as
// the engine's key) for a WindowOperator whose accumulator is the row's aggregates, and
// turns its changelog rows back into SQL rows through HAVING and the SELECT list.
#include <simdjson.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "rill/sql_job.hpp"
#include "rill/stream/rill_io.hpp"
#include "stream/sql/job_state.hpp"
#include "stream/sql/plan.hpp"
#include "stream/sql/row_aggregate.hpp"
#include "stream/sql/row_codec.hpp"

namespace rill::sql {

namespace detail {

class Runner {
 public:
  Runner(const Plan& plan, JobOutput output) : m_plan(plan), m_out(std::move(output)) {
    m_input.specs = &m_plan.aggregates;
    m_input.args.resize(m_plan.aggregates.size());
    if (!m_plan.window) return;
    const Table& t = m_plan.tables[m_plan.source];
    stream::OperatorOptions options{
        .window = *m_plan.window,
        .aggregate = row_aggregate(m_input),
        .watermark = {.out_of_orderness = std::chrono::milliseconds(t.delay_ms)},
    };
    stream::Output out{.row = [this](const stream::Row& r) { on_window_row(r); },
                       .watermark = [this](stream::TimeMs w) { on_watermark(w); }};
    // The options were checked by the planner (sizes > 0, slide <= size).
    m_op.emplace(std::move(*stream::WindowOperator::create(std::move(options), std::move(out))));
  }

  bool feed(std::string_view json, std::uint64_t source, std::uint64_t sequence) {
    ++m_stats.inputs;
    if (!decode(json)) {
      ++m_stats.bad_input;
      return false;
    }
    if (m_plan.where && !holds(*m_plan.where, m_row)) {
      ++m_stats.filtered;
      return true;
    }
    if (!m_op) {
      OutputRow out;
      out.values.reserve(m_plan.projection.size());
      for (const auto& e : m_plan.projection) out.values.push_back(eval(e, m_row));
      send(out);
      return true;
    }
    const Table& t = m_plan.tables[m_plan.source];
    m_event.key.clear();
    ByteWriter key(m_event.key);
    for (const std::size_t k : m_plan.keys) key.value(m_row[k]);
    for (std::size_t j = 0; j < m_plan.aggregates.size(); ++j) {
      if (m_plan.aggregates[j].fn != AggFn::count_star) m_input.args[j] = eval(m_plan.aggregates[j].arg, m_row);
    }
    m_event.time = m_row[static_cast<std::size_t>(t.time_column)].i;
    m_event.source = source;
    m_event.sequence = sequence;
    m_op->process(m_event);
    flush_pending();  // a correction's -U and +U come within one process(): a lone -U is a deletion
    return true;
  }

  void tick() {
    if (m_op) m_op->tick();
    flush_pending();
  }
  void finish() {
    if (m_op) m_op->finish();
    flush_pending();
  }
  // The window operator (null for a plain query), for checkpoints.
  [[nodiscard]] stream::WindowOperator* op() { return m_op ? &*m_op : nullptr; }

  [[nodiscard]] JobStats stats() const {
    JobStats s = m_stats;
    if (m_op) s.late_dropped = m_op->stats().late_dropped;
    return s;
  }

 private:
  // The source row from a JSON object: missing fields and JSON null are NULL; a field of
  // the wrong JSON type, or no event time, makes the row bad input.
  bool decode(std::string_view json) {
    const Table& t = m_plan.tables[m_plan.source];
    m_row.assign(t.columns.size(), Value{});
    simdjson::dom::element doc;
    if (m_parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) return false;
    simdjson::dom::object obj;
    if (doc.get_object().get(obj) != simdjson::SUCCESS) return false;
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      simdjson::dom::element f;
      if (obj.at_key(t.columns[i].name).get(f) != simdjson::SUCCESS || f.is_null()) continue;
      Value& v = m_row[i];
      v.type = t.columns[i].type;
      switch (v.type) {
        case Type::bigint: {
          if (f.get_int64().get(v.i) == simdjson::SUCCESS) break;
          // A whole number written as a double (1e3, 2.0), inside the int64 range (checked
          // before the cast: converting a double out of range is undefined).
          double d = 0;
          if (f.get_double().get(d) != simdjson::SUCCESS || !(d >= -9223372036854775808.0 && d < 9223372036854775808.0) ||
              d != std::trunc(d)) {
            return false;
          }
          v.i = static_cast<std::int64_t>(d);
          break;
        }
        case Type::double_:
          if (f.get_double().get(v.d) != simdjson::SUCCESS) return false;
          break;
        case Type::boolean: {
          bool b = false;
          if (f.get_bool().get(b) != simdjson::SUCCESS) return false;
          v.i = b ? 1 : 0;
          break;
        }
        case Type::string: {
          std::string_view s;
          if (f.get_string().get(s) != simdjson::SUCCESS) return false;
          v.s.assign(s);
          break;
        }
        case Type::timestamp: {
          std::string_view s;
          if (f.get_int64().get(v.i) == simdjson::SUCCESS) break;
          if (f.get_string().get(s) != simdjson::SUCCESS) return false;
          const auto ms = stream::parse_iso8601_ms(s);
          if (!ms) return false;
          v.i = *ms;
          break;
        }
        default:
          return false;
      }
    }
    return t.time_column < 0 || !m_row[static_cast<std::size_t>(t.time_column)].is_null();
  }

  void on_window_row(const stream::Row& r) {
    std::vector<Value> grouped;
    ByteReader key(r.key);
    for (std::size_t k = 0; k < m_plan.keys.size(); ++k) grouped.push_back(key.value());
    grouped.push_back(Value{.type = Type::timestamp, .i = r.start, .d = 0, .s = {}});
    grouped.push_back(Value{.type = Type::timestamp, .i = r.end, .d = 0, .s = {}});
    auto aggs = aggregate_results(m_input, r.detail);
    if (!key.ok() || !aggs) return;  // our own bytes: cannot happen
    for (auto& a : *aggs) grouped.push_back(std::move(a));
    OutputRow out{.kind = r.kind, .values = {}};
    const bool pass = !m_plan.having || holds(*m_plan.having, grouped);
    for (const auto& e : m_plan.projection) out.values.push_back(eval(e, grouped));
    having_filter(std::move(out), pass, r.key);
  }

  // HAVING on a changelog: a -U whose +U no longer qualifies becomes a -D; a +U whose -U
  // did not qualify becomes a +I. The -U waits here for its +U (the engine sends them
  // back to back for a correction; a session that grows sends -U first, +U later).
  void having_filter(OutputRow row, bool pass, const std::string& key) {
    using stream::RowKind;
    if (!m_plan.having) {
      send(row);
      return;
    }
    if (row.kind == RowKind::update_before) {
      flush_pending();
      if (pass) {
        m_pending = std::move(row);
        m_pending_key = key;
      } else {
        m_failed_before.insert(key);
      }
      return;
    }
    if (row.kind == RowKind::update_after) {
      if (m_pending && m_pending_key == key) {
        if (pass) {
          send(*m_pending);
          send(row);
        } else {
          m_pending->kind = RowKind::remove;
          send(*m_pending);
        }
        m_pending.reset();
        return;
      }
      if (m_failed_before.erase(key) > 0) {
        row.kind = RowKind::insert;
        if (pass) send(row);
        return;
      }
      flush_pending();
      if (pass) send(row);
      return;
    }
    flush_pending();
    if (pass) send(row);
  }

  void flush_pending() {
    if (!m_pending) return;
    m_pending->kind = stream::RowKind::remove;  // its +U never came: the row is gone
    send(*m_pending);
    m_pending.reset();
  }

  void on_watermark(stream::TimeMs w) {
    if (m_out.watermark) m_out.watermark(w);
  }

  void send(const OutputRow& row) {
    ++m_stats.rows;
    if (m_out.row) m_out.row(row);
  }

  const Plan& m_plan;
  JobOutput m_out;
  JobStats m_stats;
  simdjson::dom::parser m_parser;
  std::vector<Value> m_row;
  AggInput m_input;
  stream::Event m_event;
  std::optional<stream::WindowOperator> m_op;
  std::optional<OutputRow> m_pending;
  std::string m_pending_key;
  std::set<std::string> m_failed_before;
};

}  // namespace detail

std::expected<Job, QueryError> Job::compile(std::string_view script) {
  auto ast = parse(script);
  if (!ast)
    return std::unexpected(
        QueryError{.line = ast.error().line, .column = ast.error().column, .message = ast.error().message});
  auto plan = std::make_unique<detail::Plan>();
  const Node* query = nullptr;
  for (const auto& st : ast->children) {
    if (st.kind == Kind::create_table) {
      for (const auto& t : plan->tables) {
        if (detail::same_name(t.name, st.text))
          return std::unexpected(detail::error_at(st, "table '" + st.text + "' is declared twice"));
      }
      auto table = detail::make_table(st);
      if (!table) return std::unexpected(table.error());
      plan->tables.push_back(std::move(*table));
    } else if (query != nullptr) {
      return std::unexpected(detail::error_at(st, "only one SELECT or INSERT per script"));
    } else {
      query = &st;
    }
  }
  if (query == nullptr)
    return std::unexpected(QueryError{.line = 1, .column = 1, .message = "the script has no SELECT or INSERT"});
  auto ok = query->kind == Kind::insert ? detail::plan_insert(*query, *plan) : detail::plan_select(*query, *plan);
  if (!ok) return std::unexpected(ok.error());
  Job job;
  job.m_plan = std::move(plan);
  return job;
}

Job::Job(Job&&) noexcept = default;
Job& Job::operator=(Job&&) noexcept = default;
Job::~Job() = default;

const Table& Job::source() const {
  return m_plan->tables[m_plan->source];
}
const Table* Job::sink() const {
  return m_plan->sink ? &m_plan->tables[*m_plan->sink] : nullptr;
}
const std::vector<Column>& Job::columns() const {
  return m_plan->columns;
}
bool Job::windowed() const {
  return m_plan->window.has_value();
}

void Job::start(JobOutput output) {
  m_runner = std::make_unique<detail::Runner>(*m_plan, std::move(output));
}
bool Job::feed(std::string_view json, std::uint64_t source, std::uint64_t sequence) {
  return m_runner->feed(json, source, sequence);
}
void Job::tick() {
  m_runner->tick();
}
void Job::finish() {
  m_runner->finish();
}
JobStats Job::stats() const {
  return m_runner ? m_runner->stats() : JobStats{};
}

std::expected<void, std::string> Job::checkpoint(const std::string& path, const JobPositions& at) const {
  std::string op_bytes;
  if (stream::WindowOperator* op = m_runner->op()) {
    // The operator writes its own file (atomically, checksummed); it is embedded in ours so
    // that windows and positions are one atomic write.
    const std::string op_path = path + ".op";
    if (auto r = op->checkpoint(op_path, {}); !r) return std::unexpected(r.error().message());
    auto bytes = detail::read_whole(op_path);
    if (!bytes) return std::unexpected(bytes.error());
    op_bytes = std::move(*bytes);
    std::error_code ec;
    std::filesystem::remove(op_path, ec);
  }
  return detail::write_atomically(path, detail::encode_state(at, op_bytes));
}

std::expected<JobPositions, std::string> Job::restore(const std::string& path) {
  auto bytes = detail::read_whole(path);
  if (!bytes) return std::unexpected(bytes.error());
  auto state = detail::decode_state(*bytes);
  if (!state) return std::unexpected(path + ": " + state.error());
  stream::WindowOperator* op = m_runner->op();
  if ((op != nullptr) != !state->second.empty()) return std::unexpected(path + ": the checkpoint is of another query");
  if (op != nullptr) {
    if (auto r = op->restore_bytes(state->second); !r) return std::unexpected(path + ": " + r.error().message());
  }
  return std::move(state->first);
}

}  // namespace rill::sql
