// jetstream://HOST:PORT[,HOST:PORT...]/STREAM[?replicas=N&storage=file|memory&max_bytes=N&...]:
// what the endpoint says, and how rill topics map onto the stream's subjects.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rill/endpoint.hpp"
#include "rill/error.hpp"

namespace rill::detail::js {

/// A parsed jetstream:// endpoint. Plain data; parse() checks every field.
struct JsOptions {
  std::vector<std::string> servers;        ///< "nats://HOST:PORT", in the order given
  std::string stream;                      ///< the stream name ([A-Za-z0-9_-], up to 64)
  int replicas = 1;                        ///< 1..5, used when the stream is created
  bool memory = false;                     ///< storage=memory (default file)
  std::int64_t max_bytes = -1;             ///< the stream's byte limit when created (-1: none); full -> publish fails
  std::size_t window = 256;                ///< publish acks outstanding at once (publisher) / MaxAckPending floor
  std::int64_t ack_wait_ms = 5000;         ///< a consumer's redelivery delay for an unacknowledged message
  std::int64_t connect_timeout_ms = 2000;  ///< how long the first connection may take
  std::int64_t reorder_ms = 10000;         ///< how long a subscriber holds a message back for a missing predecessor
  // TLS to the servers (nats.c with OpenSSL): any tls_* option turns it on.
  bool tls = false;      ///< tls=1: TLS, the server verified against the system's CAs (or tls_ca)
  std::string tls_ca;    ///< tls_ca=FILE: PEM CA certificates the servers' certificates must chain to
  std::string tls_cert;  ///< tls_cert=FILE: this client's certificate chain (PEM), for servers that verify clients
  std::string tls_key;   ///< tls_key=FILE: its private key (PEM); given with tls_cert

  /// The subject prefix of this stream's rill topics: "rill.<STREAM>".
  [[nodiscard]] std::string subject_prefix() const { return "rill." + stream; }
};

/// Reads `ep` (scheme "jetstream"); a clear error names the bad part.
[[nodiscard]] Result<JsOptions> parse_options(const Endpoint& ep);

/// The subject a topic is published on: prefix + "." + topic with '/' -> '.'. Topics whose
/// segments are empty or hold '.', '*', '>' or blanks cannot be subjects: invalid_argument.
[[nodiscard]] Result<std::string> topic_subject(const JsOptions& o, std::string_view topic);

/// The topic a subject of this stream carries (the inverse of topic_subject); empty if foreign.
[[nodiscard]] std::string subject_topic(const JsOptions& o, std::string_view subject);

/// The consumer filter for a prefix subscription: the prefix's whole segments plus ">".
/// ("md/" and "md/quo" -> "rill.S.md.>"; "" -> "rill.S.>"). The core filters the rest.
[[nodiscard]] std::string prefix_filter(const JsOptions& o, std::string_view prefix);

/// "Nats-Msg-Id" value for a message: "<publisher id, 16 hex>-<sequence>".
[[nodiscard]] std::string msg_id(std::uint64_t publisher_id, std::uint64_t seq);
/// Reads a msg_id() value back; false when it is not one.
[[nodiscard]] bool parse_msg_id(std::string_view text, std::uint64_t& publisher_id, std::uint64_t& seq);

}  // namespace rill::detail::js
