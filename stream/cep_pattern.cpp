// CEP patterns: the builders, the PATTERN text form, and what a match view answers.
#include "rill/stream/cep_pattern.hpp"

#include <algorithm>

namespace rill::stream::cep {

PatternNode var(std::string name) {
  PatternNode p;
  p.kind = PatternNode::Kind::var;
  p.name = std::move(name);
  return p;
}

PatternNode seq(std::vector<PatternNode> parts) {
  PatternNode p;
  p.kind = PatternNode::Kind::seq;
  p.children = std::move(parts);
  return p;
}

PatternNode alt(std::vector<PatternNode> choices) {
  PatternNode p;
  p.kind = PatternNode::Kind::alt;
  p.children = std::move(choices);
  return p;
}

namespace {
std::string quantifier_text(const Quantifier& q) {
  std::string s;
  if (q.min == 1 && q.max == 1) return s;
  if (q.min == 0 && q.max == Quantifier::unbounded) {
    s = "*";
  } else if (q.min == 1 && q.max == Quantifier::unbounded) {
    s = "+";
  } else if (q.min == 0 && q.max == 1) {
    s = "?";
  } else {
    s = "{";
    s += std::to_string(q.min);
    if (q.max != q.min) {
      s += ',';
      if (q.max != Quantifier::unbounded) s += std::to_string(q.max);
    }
    s += '}';
  }
  if (!q.greedy) s += '?';
  return s;
}
}  // namespace

std::string to_string(const PatternNode& node) {
  std::string s;
  switch (node.kind) {
    case PatternNode::Kind::var:
      s = node.name;
      break;
    case PatternNode::Kind::seq:
    case PatternNode::Kind::alt: {
      s = "(";
      for (std::size_t i = 0; i < node.children.size(); ++i) {
        if (i > 0) s += node.kind == PatternNode::Kind::alt ? " | " : " ";
        s += to_string(node.children[i]);
      }
      s += ')';
      break;
    }
  }
  return s + quantifier_text(node.q);
}

const Event* MatchView::prev(std::size_t n) const noexcept {
  if (m_size == 0) return nullptr;
  const std::size_t at = m_size - 1;
  if (n <= at) return &row(at - n);
  const std::size_t back = n - at;  // rows before the match's first row
  return back <= m_before_size ? m_before[m_before_size - back] : nullptr;
}

std::size_t MatchView::count(std::string_view var) const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < m_size; ++i) n += classifier(i) == var ? 1 : 0;
  return n;
}

const Event* MatchView::first(std::string_view var, std::size_t n) const noexcept {
  for (std::size_t i = 0; i < m_size; ++i) {
    if (classifier(i) == var && n-- == 0) return &row(i);
  }
  return nullptr;
}

const Event* MatchView::last(std::string_view var, std::size_t n) const noexcept {
  for (std::size_t i = m_size; i-- > 0;) {
    if (classifier(i) == var && n-- == 0) return &row(i);
  }
  return nullptr;
}

double MatchView::sum(std::string_view var, std::size_t f) const noexcept {
  double s = 0;
  for (std::size_t i = 0; i < m_size; ++i) {
    if (classifier(i) == var) s += field(&row(i), f);
  }
  return s;
}

std::optional<double> MatchView::avg(std::string_view var, std::size_t f) const noexcept {
  const std::size_t n = count(var);
  if (n == 0) return std::nullopt;
  return sum(var, f) / static_cast<double>(n);
}

std::optional<double> MatchView::min(std::string_view var, std::size_t f) const noexcept {
  std::optional<double> m;
  for (std::size_t i = 0; i < m_size; ++i) {
    if (classifier(i) == var) m = m ? std::min(*m, field(&row(i), f)) : field(&row(i), f);
  }
  return m;
}

std::optional<double> MatchView::max(std::string_view var, std::size_t f) const noexcept {
  std::optional<double> m;
  for (std::size_t i = 0; i < m_size; ++i) {
    if (classifier(i) == var) m = m ? std::max(*m, field(&row(i), f)) : field(&row(i), f);
  }
  return m;
}

}  // namespace rill::stream::cep
