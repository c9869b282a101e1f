#include "signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <charconv>
#include <fstream>
#include <iterator>

namespace rill::http {

namespace {

constexpr std::string_view b64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool digests_equal(const Digest& a, const Digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

Result<std::vector<Secret>> parse_secrets(std::string_view text) {
  std::vector<Secret> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty() || line.starts_with('#')) continue;
    Secret s;
    if (line.starts_with("whsec_")) {
      if (!base64_decode(line.substr(6), s.key) || s.key.empty()) {
        return fail(Errc::invalid_argument, "secret on line " + std::to_string(line_no) + " is whsec_ but not base64");
      }
    } else {
      s.key.assign(line.begin(), line.end());
    }
    out.push_back(std::move(s));
  }
  if (out.empty()) return fail(Errc::invalid_argument, "the secret file holds no secret");
  return out;
}

Result<std::vector<Secret>> load_secrets(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Errc::invalid_argument, "cannot read secret file '" + path + "'");
  const std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  return parse_secrets(text);
}

Digest hmac_sha256(std::span<const unsigned char> key, std::initializer_list<std::string_view> parts) {
  Digest out{};
  // HMAC_CTX is deprecated in OpenSSL 3: EVP_MAC, fetched once (the fetch is not free).
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = mac ? EVP_MAC_CTX_new(mac) : nullptr;
  char digest_name[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest_name, 0), OSSL_PARAM_construct_end()};
  std::size_t len = 0;
  const bool ok = ctx != nullptr && EVP_MAC_init(ctx, key.data(), key.size(), params) == 1 && [&] {
    for (auto p : parts) {
      if (EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(p.data()), p.size()) != 1) return false;
    }
    return EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1;
  }();
  EVP_MAC_CTX_free(ctx);
  if (!ok || len != out.size()) out.fill(0);  // never matches a real signature's check below
  return out;
}

std::string base64_encode(std::span<const unsigned char> in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
    out += b64_alphabet[v >> 18];
    out += b64_alphabet[(v >> 12) & 63];
    out += b64_alphabet[(v >> 6) & 63];
    out += b64_alphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = in[i] << 16;
    out += b64_alphabet[v >> 18];
    out += b64_alphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned v = (in[i] << 16) | (in[i + 1] << 8);
    out += b64_alphabet[v >> 18];
    out += b64_alphabet[(v >> 12) & 63];
    out += b64_alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool base64_decode(std::string_view in, std::vector<unsigned char>& out) {
  out.clear();
  if (in.size() % 4 != 0) return false;
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return false;  // data after padding
      v[k] = b64_value(c);
      if (v[k] < 0) return false;
    }
    const unsigned triple = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    // Canonical only: the bits a padded quantum drops must be zero (so each byte string
    // has exactly one accepted encoding; found by fuzz_signature_header).
    if ((pad == 1 && (triple & 0xff) != 0) || (pad == 2 && (triple & 0xffff) != 0)) return false;
    out.push_back(static_cast<unsigned char>(triple >> 16));
    if (pad < 2) out.push_back(static_cast<unsigned char>((triple >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<unsigned char>(triple & 0xff));
  }
  return true;
}

bool parse_standard_signatures(std::string_view header, std::vector<Digest>& out) {
  out.clear();
  std::vector<unsigned char> raw;
  std::size_t entries = 0;
  while (!header.empty()) {
    const auto sp = header.find(' ');
    const auto entry = header.substr(0, sp);
    header = sp == std::string_view::npos ? std::string_view{} : header.substr(sp + 1);
    if (entry.empty()) continue;  // repeated spaces
    if (++entries > 16) return false;
    const auto comma = entry.find(',');
    if (comma == std::string_view::npos || comma == 0) return false;
    if (entry.substr(0, comma) != "v1") continue;  // another scheme (v1a, ...): not ours to check
    if (!base64_decode(entry.substr(comma + 1), raw) || raw.size() != 32) return false;
    Digest d;
    std::copy(raw.begin(), raw.end(), d.begin());
    out.push_back(d);
  }
  return entries > 0;
}

bool parse_github_signature(std::string_view header, Digest& out) {
  constexpr std::string_view prefix = "sha256=";
  if (!header.starts_with(prefix) || header.size() != prefix.size() + 64) return false;
  header.remove_prefix(prefix.size());
  for (std::size_t i = 0; i < 32; ++i) {
    const int hi = hex_value(header[2 * i]);
    const int lo = hex_value(header[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return true;
}

std::string sign_standard(std::span<const Secret> secrets, std::string_view id, std::int64_t timestamp,
                          std::string_view body) {
  const auto ts = std::to_string(timestamp);
  std::string out;
  for (const auto& s : secrets) {
    const auto d = hmac_sha256(s.key, {id, ".", ts, ".", body});
    if (!out.empty()) out += ' ';
    out += "v1,";
    out += base64_encode(d);
  }
  return out;
}

std::string_view to_string(VerifyResult r) noexcept {
  switch (r) {
    case VerifyResult::ok:
      return "ok";
    case VerifyResult::missing:
      return "missing signature";
    case VerifyResult::malformed:
      return "malformed signature headers";
    case VerifyResult::stale:
      return "timestamp outside the tolerance";
    case VerifyResult::bad_signature:
      return "signature does not verify";
  }
  return "?";
}

VerifyResult verify(const SignedRequest& req, std::span<const Secret> secrets,
                    std::chrono::system_clock::time_point now, std::chrono::seconds tolerance) {
  if (!req.webhook_signature.empty()) {
    if (req.webhook_id.empty() || req.webhook_timestamp.empty() || req.webhook_id.size() > 256) {
      return VerifyResult::malformed;
    }
    std::int64_t ts = 0;
    const auto* end = req.webhook_timestamp.data() + req.webhook_timestamp.size();
    auto [p, ec] = std::from_chars(req.webhook_timestamp.data(), end, ts);
    if (ec != std::errc{} || p != end || ts < 0) return VerifyResult::malformed;
    const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    if (ts < now_s - tolerance.count() || ts > now_s + tolerance.count()) return VerifyResult::stale;
    std::vector<Digest> given;
    if (!parse_standard_signatures(req.webhook_signature, given)) return VerifyResult::malformed;
    bool match = false;
    for (const auto& s : secrets) {
      const auto expect = hmac_sha256(s.key, {req.webhook_id, ".", req.webhook_timestamp, ".", req.body});
      for (const auto& g : given) match |= digests_equal(expect, g);  // no early exit: same work either way
    }
    return match ? VerifyResult::ok : VerifyResult::bad_signature;
  }
  if (!req.hub_signature_256.empty()) {
    Digest given{};
    if (!parse_github_signature(req.hub_signature_256, given)) return VerifyResult::malformed;
    bool match = false;
    for (const auto& s : secrets) match |= digests_equal(hmac_sha256(s.key, {req.body}), given);
    return match ? VerifyResult::ok : VerifyResult::bad_signature;
  }
  return VerifyResult::missing;
}

void ReplayCache::expire(std::int64_t now_s) {
  while (!m_order.empty() && m_order.front().first <= now_s) {
    m_map.erase(m_order.front().second);
    m_order.pop_front();
  }
}

bool ReplayCache::seen(std::string_view id, std::int64_t now_s) {
  expire(now_s);
  return m_map.contains(std::string(id));
}

void ReplayCache::remember(std::string_view id, std::int64_t expires_s) {
  if (m_capacity == 0) return;
  if (m_map.size() >= m_capacity && !m_order.empty()) {
    m_map.erase(m_order.front().second);
    m_order.pop_front();
    ++m_evictions;
  }
  // Callers pass now + a fixed span, so expiries arrive in order and the deque stays sorted.
  auto [it, inserted] = m_map.emplace(std::string(id), expires_s);
  if (inserted) m_order.emplace_back(expires_s, it->first);
}

}  // namespace rill::http
