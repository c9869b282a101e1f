// CREATE TABLE -> Table, SELECT -> Plan: the FROM source and its window function, WHERE,
// GROUP BY keys and aggregates, HAVING and the SELECT list, each name resolved and typed.
#include "stream/sql/plan.hpp"

namespace rill::sql::detail {

namespace {

using Planned = std::expected<void, QueryError>;

const Node* child(const Node& n, Kind kind) {
  for (const auto& c : n.children) {
    if (c.kind == kind) return &c;
  }
  return nullptr;
}

std::expected<std::int64_t, QueryError> watermark_delay(const Node& wm, const std::string& column) {
  const Node& e = wm.children.at(0);
  if (e.kind == Kind::column_ref && same_name(e.text, column)) return 0;
  if (e.kind == Kind::binary && e.text == "-" && e.children[0].kind == Kind::column_ref &&
      same_name(e.children[0].text, column) && e.children[1].kind == Kind::interval) {
    return interval_ms(e.children[1]);
  }
  return std::unexpected(error_at(e, "a WATERMARK must be '" + column + "' or '" + column + " - INTERVAL ...'"));
}

// The FROM clause's one source: a table, or TABLE(TUMBLE|HOP|SESSION(TABLE t, DESCRIPTOR(c), ...)).
Planned plan_from(const Node& from, Plan& plan) {
  if (from.children.size() > 1) return std::unexpected(error_at(from.children[1], "joins are not supported yet"));
  const Node* src = &from.children.at(0);
  if (src->kind == Kind::source) {
    if (const Node* m = child(*src, Kind::match_recognize)) {
      return std::unexpected(error_at(*m, "MATCH_RECOGNIZE is not executed yet (it parses)"));
    }
    src = &src->children.at(0);
  }
  if (src->kind == Kind::subquery) return std::unexpected(error_at(*src, "subqueries in FROM are not supported yet"));
  const Node* table = src->kind == Kind::window_tvf ? child(*src, Kind::table) : src;
  if (table == nullptr || table->kind != Kind::table) return std::unexpected(error_at(*src, "expected a table"));
  bool found = false;
  for (std::size_t i = 0; i < plan.tables.size(); ++i) {
    if (same_name(plan.tables[i].name, table->text)) {
      plan.source = i;
      found = true;
    }
  }
  if (!found) return std::unexpected(error_at(*table, "unknown table '" + table->text + "'"));
  if (src->kind != Kind::window_tvf) return {};

  const Table& t = plan.tables[plan.source];
  const Node* desc = child(*src, Kind::descriptor);
  if (t.time_column < 0) {
    return std::unexpected(error_at(*table, "table '" + t.name + "' has no WATERMARK: a window needs event time"));
  }
  if (desc == nullptr || !same_name(desc->text, t.columns[static_cast<std::size_t>(t.time_column)].name)) {
    return std::unexpected(error_at(desc != nullptr ? *desc : *src,
                                    "DESCRIPTOR must name '" + t.columns[static_cast<std::size_t>(t.time_column)].name +
                                        "', the table's WATERMARK column"));
  }
  std::vector<std::int64_t> sizes;
  for (const auto& c : src->children) {
    if (c.kind == Kind::table || c.kind == Kind::descriptor) continue;
    auto ms = interval_ms(c);
    if (!ms) return std::unexpected(ms.error());
    if (*ms <= 0) return std::unexpected(error_at(c, "a window interval must be > 0"));
    sizes.push_back(*ms);
  }
  const std::string& fn = src->text;
  const auto arity = [&](std::size_t k, const char* what) -> Planned {
    if (sizes.size() != k) return std::unexpected(error_at(*src, fn + " takes " + what));
    return {};
  };
  if (fn == "TUMBLE") {
    if (auto ok = arity(1, "one INTERVAL (the size)"); !ok) return ok;
    plan.window = stream::tumbling(std::chrono::milliseconds(sizes[0]));
  } else if (fn == "HOP") {
    if (auto ok = arity(2, "two INTERVALs (the slide, then the size)"); !ok) return ok;
    if (sizes[0] > sizes[1]) return std::unexpected(error_at(*src, "HOP's slide must not exceed its size"));
    plan.window = stream::hopping(std::chrono::milliseconds(sizes[1]), std::chrono::milliseconds(sizes[0]));
  } else if (fn == "SESSION") {
    if (auto ok = arity(1, "one INTERVAL (the gap)"); !ok) return ok;
    plan.window = stream::session(std::chrono::milliseconds(sizes[0]));
  } else if (fn == "CUMULATE") {
    if (auto ok = arity(2, "two INTERVALs (the step, then the size)"); !ok) return ok;
    if (sizes[0] > sizes[1] || sizes[1] % sizes[0] != 0) {
      return std::unexpected(error_at(*src, "CUMULATE's size must be a multiple of its step"));
    }
    plan.window = stream::cumulate(std::chrono::milliseconds(sizes[0]), std::chrono::milliseconds(sizes[1]));
  } else {
    return std::unexpected(error_at(*src, fn + " windows are not supported yet"));
  }
  return {};
}

std::string item_name(const Node& expr, const Node* alias, std::size_t index) {
  if (alias != nullptr) return alias->children.empty() ? alias->text : alias->children[0].text;
  if (expr.kind == Kind::column_ref) {
    const auto dot = expr.text.rfind('.');
    return dot == std::string::npos ? expr.text : expr.text.substr(dot + 1);
  }
  return "EXPR$" + std::to_string(index);
}

Planned plan_group(const Node& group, const std::vector<Visible>& inputs, Plan& plan, std::vector<Visible>& grouped) {
  bool start = false, end = false;
  for (const auto& g : group.children) {
    if (g.kind != Kind::column_ref) return std::unexpected(error_at(g, "GROUP BY takes column names"));
    if (same_name(g.text, "window_start") || same_name(g.text, "window_end")) {
      if (!plan.window) return std::unexpected(error_at(g, g.text + " needs a window function in FROM"));
      (same_name(g.text, "window_start") ? start : end) = true;
      continue;
    }
    Scope scope{.names = &inputs, .clause = "GROUP BY"};
    auto e = compile_expr(g, scope);
    if (!e) return std::unexpected(e.error());
    plan.keys.push_back(e->slot);
    plan.key_types.push_back(e->type);
    grouped.push_back(Visible{.name = inputs[e->slot].name, .type = e->type, .slot = grouped.size()});
  }
  if (!plan.window) {
    return std::unexpected(error_at(group,
                                    "GROUP BY needs a window function (TUMBLE, HOP or SESSION) in FROM; "
                                    "unbounded GROUP BY is not supported yet"));
  }
  if (!start || !end)
    return std::unexpected(error_at(group, "a windowed GROUP BY must include window_start and window_end"));
  const std::size_t k = grouped.size();
  grouped.push_back(Visible{.name = "window_start", .type = Type::timestamp, .slot = k});
  grouped.push_back(Visible{.name = "window_end", .type = Type::timestamp, .slot = k + 1});
  return {};
}

bool assignable(Type from, Type to) {
  return from == to || from == Type::null || (to == Type::double_ && from == Type::bigint);
}

}  // namespace

std::expected<Table, QueryError> make_table(const Node& create) {
  Table t;
  t.name = create.text;
  const Node* wm = nullptr;
  for (const auto& c : create.children) {
    if (c.kind == Kind::column_def) {
      for (const auto& existing : t.columns) {
        if (same_name(existing.name, c.text))
          return std::unexpected(error_at(c, "column '" + c.text + "' is declared twice"));
      }
      auto type = column_type(c.children.at(0));
      if (!type) return std::unexpected(type.error());
      t.columns.push_back(Column{.name = c.text, .type = *type});
    } else if (c.kind == Kind::watermark) {
      if (wm != nullptr) return std::unexpected(error_at(c, "only one WATERMARK per table"));
      wm = &c;
    } else if (c.kind == Kind::with_options) {
      for (const auto& o : c.children) t.options[o.text] = o.children.empty() ? std::string() : o.children[0].text;
    }
  }
  if (wm != nullptr) {
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      if (same_name(t.columns[i].name, wm->text)) t.time_column = static_cast<int>(i);
    }
    if (t.time_column < 0) return std::unexpected(error_at(*wm, "unknown column '" + wm->text + "' in WATERMARK FOR"));
    if (t.columns[static_cast<std::size_t>(t.time_column)].type != Type::timestamp) {
      return std::unexpected(error_at(*wm, "WATERMARK FOR needs a TIMESTAMP(3) column"));
    }
    auto delay = watermark_delay(*wm, t.columns[static_cast<std::size_t>(t.time_column)].name);
    if (!delay) return std::unexpected(delay.error());
    t.delay_ms = *delay;
  }
  const std::string format = t.option("format");
  if (!format.empty() && format != "json") {
    return std::unexpected(
        error_at(create, "table '" + t.name + "': format '" + format + "' is not supported yet (json is)"));
  }
  return t;
}

std::expected<void, QueryError> plan_select(const Node& select, Plan& plan) {
  if (select.text == "DISTINCT") return std::unexpected(error_at(select, "SELECT DISTINCT is not supported yet"));
  if (const Node* o = child(select, Kind::order_by)) return std::unexpected(error_at(*o, "ORDER BY is not supported"));
  const Node* from = child(select, Kind::from);
  if (from == nullptr) return std::unexpected(error_at(select, "a query needs FROM"));
  if (auto ok = plan_from(*from, plan); !ok) return ok;

  const Table& table = plan.tables[plan.source];
  std::vector<Visible> inputs;
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    inputs.push_back(Visible{.name = table.columns[i].name, .type = table.columns[i].type, .slot = i});
  }
  if (const Node* w = child(select, Kind::where)) {
    auto e = compile_expr(w->children.at(0), Scope{.names = &inputs, .clause = "WHERE"});
    if (!e) return std::unexpected(e.error());
    if (e->type != Type::boolean && e->type != Type::null) {
      return std::unexpected(
          error_at(w->children[0], "WHERE needs a BOOLEAN condition, got " + std::string(type_name(e->type))));
    }
    plan.where = std::move(*e);
  }

  const Node* group = child(select, Kind::group_by);
  std::vector<Visible> grouped;
  if (group != nullptr) {
    if (auto ok = plan_group(*group, inputs, plan, grouped); !ok) return ok;
  } else if (plan.window) {
    return std::unexpected(error_at(*from, "a window function needs GROUP BY window_start, window_end (and keys)"));
  }
  Scope scope{.names = group != nullptr ? &grouped : &inputs,
              .inputs = group != nullptr ? &inputs : nullptr,
              .aggregates = group != nullptr ? &plan.aggregates : nullptr,
              .agg_base = grouped.size(),
              .clause = "the SELECT list"};

  const Node& list = *child(select, Kind::select_list);
  for (const auto& item : list.children) {
    if (!item.children.empty() && item.children[0].kind == Kind::star) {
      if (group != nullptr) return std::unexpected(error_at(item, "SELECT * cannot be grouped"));
      for (const auto& v : inputs) {
        plan.projection.push_back(
            Expr{.op = Op::slot, .type = v.type, .value = {}, .slot = v.slot, .negate = false, .args = {}});
        plan.columns.push_back(Column{.name = v.name, .type = v.type});
      }
      continue;
    }
    auto e = compile_expr(item.children.at(0), scope);
    if (!e) return std::unexpected(e.error());
    plan.columns.push_back(
        Column{.name = item_name(item.children[0], child(item, Kind::alias), plan.columns.size()), .type = e->type});
    plan.projection.push_back(std::move(*e));
  }
  if (const Node* h = child(select, Kind::having)) {
    if (group == nullptr) return std::unexpected(error_at(*h, "HAVING needs GROUP BY"));
    scope.clause = "HAVING";
    auto e = compile_expr(h->children.at(0), scope);
    if (!e) return std::unexpected(e.error());
    if (e->type != Type::boolean && e->type != Type::null) {
      return std::unexpected(error_at(h->children[0], "HAVING needs a BOOLEAN condition"));
    }
    plan.having = std::move(*e);
  }
  return {};
}

std::expected<void, QueryError> plan_insert(const Node& insert, Plan& plan) {
  std::optional<std::size_t> sink;
  for (std::size_t i = 0; i < plan.tables.size(); ++i) {
    if (same_name(plan.tables[i].name, insert.text)) sink = i;
  }
  if (!sink) return std::unexpected(error_at(insert, "unknown table '" + insert.text + "'"));
  const Node& select = insert.children.at(0);
  if (auto ok = plan_select(select, plan); !ok) return ok;
  plan.sink = sink;
  const Table& t = plan.tables[*sink];
  if (t.option("topic").empty())
    return std::unexpected(error_at(insert, "sink '" + t.name + "' has no 'topic' option"));
  if (plan.columns.size() != t.columns.size()) {
    return std::unexpected(error_at(select, "INSERT INTO " + t.name + " gives " + std::to_string(plan.columns.size()) +
                                                " columns, the table has " + std::to_string(t.columns.size())));
  }
  const Node& list = *child(select, Kind::select_list);
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    if (!assignable(plan.columns[i].type, t.columns[i].type)) {
      const Node& at = i < list.children.size() ? list.children[i] : select;
      return std::unexpected(error_at(at, "column " + std::to_string(i + 1) + " is " +
                                              std::string(type_name(plan.columns[i].type)) + ", sink column '" +
                                              t.columns[i].name + "' is " + std::string(type_name(t.columns[i].type))));
    }
    if (plan.columns[i].type != t.columns[i].type) {
      Expr c{.op = Op::cast, .type = t.columns[i].type, .value = {}, .slot = 0, .negate = false, .args = {}};
      c.args.push_back(std::move(plan.projection[i]));
      plan.projection[i] = std::move(c);
    }
  }
  plan.columns = t.columns;
  return {};
}

}  // namespace rill::sql::detail
