// MessageView: a zero-copy, read-only view of one received message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "rill/codec.hpp"

namespace rill {

/// A verified envelope read in place in the transport's receive buffer.
/// Valid only inside the handler it is passed to; copy out what must outlive it.
class MessageView {
 public:
  MessageView(const wire::Envelope* env, std::span<const std::byte> bytes) noexcept
      : m_env(env), m_bytes(bytes) {}

  /// Topic the message was published on.
  [[nodiscard]] std::string_view topic() const noexcept {
    return {m_env->topic()->data(), m_env->topic()->size()};
  }
  /// Random id of the publisher instance that sent it.
  [[nodiscard]] std::uint64_t publisher_id() const noexcept { return m_env->publisher_id(); }
  /// Per-publisher sequence number (1, 2, 3 ...).
  [[nodiscard]] std::uint64_t sequence() const noexcept { return m_env->sequence(); }
  /// Publish time in ns since the Unix epoch.
  [[nodiscard]] std::int64_t timestamp_ns() const noexcept { return m_env->timestamp_ns(); }

  /// The payload bytes (a user FlatBuffer or raw bytes), in place.
  [[nodiscard]] std::span<const std::byte> payload() const noexcept {
    const auto* p = m_env->payload();
    if (p == nullptr) return {};
    return {reinterpret_cast<const std::byte*>(p->data()), p->size()};
  }
  /// The payload as text (for raw text payloads).
  [[nodiscard]] std::string_view payload_text() const noexcept {
    auto p = payload();
    return {reinterpret_cast<const char*>(p.data()), p.size()};
  }
  /// The payload verified as a FlatBuffer with root type T; nullptr when it is not one.
  template <class T>
  [[nodiscard]] const T* payload_as(const PayloadLimits& limits = {}) const {
    return verify_payload<T>(payload(), limits);
  }

  /// The value of header `key`, if present.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view key) const noexcept;
  /// Number of headers.
  [[nodiscard]] std::size_t header_count() const noexcept {
    return m_env->headers() == nullptr ? 0 : m_env->headers()->size();
  }
  /// Header i as key/value.
  [[nodiscard]] HeaderKV header_at(std::size_t i) const noexcept;

  /// The whole envelope exactly as it arrived (what `rill sub --format hex` prints).
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return m_bytes; }
  /// The generated FlatBuffers accessor, for fields not wrapped here. Public on purpose: the
  /// envelope schema (rill/envelope.fbs) is part of the wire contract and installed with it.
  [[nodiscard]] const wire::Envelope* envelope() const noexcept { return m_env; }

 private:
  const wire::Envelope* m_env;
  std::span<const std::byte> m_bytes;
};

}  // namespace rill
