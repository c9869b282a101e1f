// The CEP matcher: a depth-first search over the pattern in SQL:2016's preference order
// (alternatives left first, greedy quantifiers longest first, reluctant shortest first).
// The first path that does not fail decides: a match is final, and a path that runs out of
// rows means the answer waits for more (a less preferred match found later may not be the
// one SQL would pick). A variable's repetitions are a loop, so the recursion grows with the
// pattern's nesting and a quantified group's iterations, not with the rows a variable takes.
#include "stream/cep_matcher.hpp"

#include <functional>
#include <map>

namespace rill::stream::cep::detail {

namespace {

Result<void> resolve(const PatternNode& in, Node& out, std::map<std::string, std::uint16_t>& ids, Compiled& c,
                     std::size_t depth) {
  if (depth > max_pattern_depth) return fail(Errc::invalid_argument, "pattern groups nest too deeply");
  if (in.q.max == 0 || in.q.min > in.q.max) {
    return fail(Errc::invalid_argument, "a quantifier needs 0 < max and min <= max");
  }
  out.kind = in.kind;
  out.q = in.q;
  if (in.kind == PatternNode::Kind::var) {
    if (in.name.empty()) return fail(Errc::invalid_argument, "a pattern variable needs a name");
    auto [it, fresh] = ids.try_emplace(in.name, static_cast<std::uint16_t>(c.names.size()));
    if (fresh) {
      if (c.names.size() >= 0xffff) return fail(Errc::invalid_argument, "too many pattern variables");
      c.names.push_back(in.name);
    }
    out.var = it->second;
    return {};
  }
  if (in.children.empty()) return fail(Errc::invalid_argument, "an empty sequence or alternation");
  out.children.resize(in.children.size());
  for (std::size_t i = 0; i < in.children.size(); ++i) {
    if (auto ok = resolve(in.children[i], out.children[i], ids, c, depth + 1); !ok) return ok;
  }
  return {};
}

enum class Step : std::uint8_t { yes, no, need_more };

class Search {
 public:
  Search(const Compiled& p, const Input& in) : m_p(p), m_in(in) {
    // A row at or after this is too late for the match (WITHIN); saturating, not overflowing.
    if (p.within_ms >= 0) m_deadline = within_deadline(in.rows[0]->time, p.within_ms);
  }

  Attempt run() {
    Attempt a;
    const Cont done = [](std::size_t end) { return end == 0 ? Outcome::failed : Outcome::matched; };
    a.outcome = node(m_p.root, 0, done);
    if (a.outcome == Outcome::matched) a.vars = m_vars;
    a.within_cut = m_cut;
    return a;
  }

 private:
  using Cont = std::function<Outcome(std::size_t)>;

  // Whether the row at `pos` can be `var`, given the path so far (m_vars has pos entries).
  // On yes it stays on the path.
  Step step(std::uint16_t var, std::size_t pos) {
    if (pos == m_in.available) {
      if (m_in.end_of_input) return Step::no;
      // Rows to come have time >= watermark: too late for this match if that is past WITHIN.
      if (m_p.within_ms >= 0 && m_in.watermark >= m_deadline) {
        m_cut = true;
        return Step::no;
      }
      return Step::need_more;
    }
    if (m_p.within_ms >= 0 && m_in.rows[pos]->time >= m_deadline) {
      m_cut = true;
      return Step::no;
    }
    m_vars.push_back(var);
    const Condition& c = m_p.conditions[var];
    if (!c || c(MatchView(m_in.rows, m_vars.data(), m_p.names.data(), pos + 1, m_in.before, m_in.before_size))) {
      return Step::yes;
    }
    m_vars.pop_back();
    return Step::no;
  }

  Outcome node(const Node& n, std::size_t pos, const Cont& k) {
    if (n.kind == PatternNode::Kind::var) return repeat_var(n, pos, k);
    return repeat_group(n, 0, pos, k);
  }

  // A variable {min,max}: take rows one by one; greedy tries the longest run first.
  Outcome repeat_var(const Node& n, std::size_t pos, const Cont& k) {
    const std::uint32_t min = n.q.min, max = n.q.max;
    std::uint32_t taken = 0;
    if (n.q.greedy) {
      Step last = Step::no;
      while (taken < max && (last = step(n.var, pos + taken)) == Step::yes) ++taken;
      if (last == Step::need_more) return Outcome::need_more;  // a longer run is preferred
      for (std::uint32_t c = taken + 1; c-- > min;) {
        m_vars.resize(pos + c);
        const Outcome o = k(pos + c);
        if (o != Outcome::failed) return o;
      }
      m_vars.resize(pos);
      return Outcome::failed;
    }
    for (;;) {
      if (taken >= min) {
        const Outcome o = k(pos + taken);
        if (o != Outcome::failed) return o;
        m_vars.resize(pos + taken);
      }
      if (taken >= max) break;
      const Step s = step(n.var, pos + taken);
      if (s == Step::need_more) return Outcome::need_more;
      if (s == Step::no) break;
      ++taken;
    }
    m_vars.resize(pos);
    return Outcome::failed;
  }

  // A group {min,max} after `count` iterations; an empty iteration past min would loop.
  Outcome repeat_group(const Node& n, std::uint32_t count, std::size_t pos, const Cont& k) {
    auto more = [&]() -> Outcome {
      if (count >= n.q.max) return Outcome::failed;
      // Each iteration is a level of recursion: past the bound the attempt is given up
      // rather than the stack.
      if (m_depth >= max_group_repeats) return Outcome::too_long;
      ++m_depth;
      const Outcome o = once(n, pos, [&](std::size_t next) -> Outcome {
        if (next == pos && count >= n.q.min) return Outcome::failed;
        return repeat_group(n, count + 1, next, k);
      });
      --m_depth;
      return o;
    };
    auto stop = [&]() -> Outcome { return count >= n.q.min ? k(pos) : Outcome::failed; };
    Outcome o = n.q.greedy ? more() : stop();
    if (o != Outcome::failed) return o;
    m_vars.resize(pos);
    o = n.q.greedy ? stop() : more();
    if (o == Outcome::failed) m_vars.resize(pos);
    return o;
  }

  Outcome once(const Node& n, std::size_t pos, const Cont& k) {
    if (n.kind == PatternNode::Kind::alt) {
      for (const Node& c : n.children) {
        const Outcome o = node(c, pos, k);
        if (o != Outcome::failed) return o;
        m_vars.resize(pos);
      }
      return Outcome::failed;
    }
    return sequence(n, 0, pos, k);
  }

  Outcome sequence(const Node& n, std::size_t i, std::size_t pos, const Cont& k) {
    if (i == n.children.size()) return k(pos);
    return node(n.children[i], pos, [&](std::size_t next) { return sequence(n, i + 1, next, k); });
  }

  const Compiled& m_p;
  const Input& m_in;
  std::vector<std::uint16_t> m_vars;  // the path: one variable per row taken so far
  bool m_cut = false;
  std::size_t m_depth = 0;  // quantified-group iterations on the current path
  TimeMs m_deadline = max_time;
};

}  // namespace

Result<Compiled> compile(Pattern pattern) {
  Compiled c;
  std::map<std::string, std::uint16_t> ids;
  if (auto ok = resolve(pattern.root, c.root, ids, c, 0); !ok) return std::unexpected(ok.error());
  c.conditions.resize(c.names.size());
  for (auto& [name, cond] : pattern.define) {
    auto it = ids.find(name);
    if (it == ids.end()) return fail(Errc::invalid_argument, "DEFINE of a variable the pattern does not use");
    c.conditions[it->second] = std::move(cond);
  }
  if (pattern.within) {
    if (pattern.within->count() <= 0) return fail(Errc::invalid_argument, "WITHIN must be > 0");
    c.within_ms = pattern.within->count();
  }
  c.skip = pattern.skip;
  if (c.skip == Skip::to_first || c.skip == Skip::to_last) {
    auto it = ids.find(pattern.skip_to);
    if (it == ids.end()) return fail(Errc::invalid_argument, "AFTER MATCH SKIP TO a variable the pattern does not use");
    c.skip_var = it->second;
  }
  c.fingerprint = to_string(pattern.root);
  c.fingerprint += " skip=";
  c.fingerprint += std::to_string(static_cast<int>(c.skip));
  c.fingerprint += ':';
  c.fingerprint += pattern.skip_to;
  c.fingerprint += " within=";
  c.fingerprint += std::to_string(c.within_ms);
  return c;
}

Attempt match_at(const Compiled& pattern, const Input& input) {
  if (input.available == 0) {
    return {.outcome = input.end_of_input ? Outcome::failed : Outcome::need_more, .vars = {}, .within_cut = false};
  }
  return Search(pattern, input).run();
}

}  // namespace rill::stream::cep::detail
