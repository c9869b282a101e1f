// Webhook signatures: Standard Webhooks (webhook-id/-timestamp/-signature, whsec_ keys)
// and GitHub (X-Hub-Signature-256), HMAC-SHA256 from OpenSSL, constant-time compares.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rill/error.hpp"

namespace rill::http {

/// One HMAC key: the decoded bytes of a `whsec_<base64>` line, or a raw line's bytes.
struct Secret {
  std::vector<unsigned char> key;
};

/// Parses secret-file text: one secret per line (several during a rotation); blank
/// lines and lines starting with '#' are skipped; a trailing CR is ignored.
[[nodiscard]] Result<std::vector<Secret>> parse_secrets(std::string_view text);
/// Reads and parses a secret file.
[[nodiscard]] Result<std::vector<Secret>> load_secrets(const std::string& path);

using Digest = std::array<unsigned char, 32>;

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
[[nodiscard]] Digest hmac_sha256(std::span<const unsigned char> key, std::initializer_list<std::string_view> parts);

/// Standard base64 with padding.
[[nodiscard]] std::string base64_encode(std::span<const unsigned char> in);
/// Decodes standard base64 (padding required); nullopt-like empty result + false on bad input.
[[nodiscard]] bool base64_decode(std::string_view in, std::vector<unsigned char>& out);

/// The 32-byte signatures of a `webhook-signature` header's `v1,<base64>` entries
/// (space-separated; other versions are skipped). At most 16 entries are read.
/// Returns false when the header is not a well-formed list.
[[nodiscard]] bool parse_standard_signatures(std::string_view header, std::vector<Digest>& out);
/// The digest in `sha256=<64 hex>`; false when malformed.
[[nodiscard]] bool parse_github_signature(std::string_view header, Digest& out);

/// The `webhook-signature` value for a message: one `v1,<base64>` entry per secret.
[[nodiscard]] std::string sign_standard(std::span<const Secret> secrets, std::string_view id, std::int64_t timestamp,
                                        std::string_view body);

/// Why verification refused a request (the 401's reason).
enum class VerifyResult : std::uint8_t {
  ok,
  missing,        ///< no signature headers at all
  malformed,      ///< headers present but unreadable
  stale,          ///< timestamp outside the tolerance
  bad_signature,  ///< no secret produced a matching signature
};
[[nodiscard]] std::string_view to_string(VerifyResult r) noexcept;

/// The signature-related headers of one request (empty view: absent).
struct SignedRequest {
  std::string_view webhook_id;
  std::string_view webhook_timestamp;
  std::string_view webhook_signature;
  std::string_view hub_signature_256;
  std::string_view body;
};

/// Verifies a request against every secret: Standard Webhooks when `webhook-signature`
/// is present, else GitHub's header. `now` and `tolerance` bound the timestamp.
[[nodiscard]] VerifyResult verify(const SignedRequest& req, std::span<const Secret> secrets,
                                  std::chrono::system_clock::time_point now, std::chrono::seconds tolerance);

/// Remembers webhook-ids seen within the tolerance window, in bounded memory: at most
/// `capacity` ids; past it the oldest is forgotten early (counted in evictions()).
class ReplayCache {
 public:
  explicit ReplayCache(std::size_t capacity) : m_capacity(capacity) {}
  /// True when `id` was recorded and has not expired by `now`.
  [[nodiscard]] bool seen(std::string_view id, std::int64_t now_s);
  /// Records `id` until `expires_s`.
  void remember(std::string_view id, std::int64_t expires_s);
  [[nodiscard]] std::size_t size() const noexcept { return m_map.size(); }
  [[nodiscard]] std::uint64_t evictions() const noexcept { return m_evictions; }

 private:
  void expire(std::int64_t now_s);

  std::size_t m_capacity;
  std::unordered_map<std::string, std::int64_t> m_map;       // id -> expiry (s)
  std::deque<std::pair<std::int64_t, std::string>> m_order;  // insertion order (expiry non-decreasing)
  std::uint64_t m_evictions = 0;
};

}  // namespace rill::http
