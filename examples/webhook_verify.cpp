// Verifying a signed webhook in your own receiver with rill::http (Standard Webhooks):
// the signature `rill sub ... URL` sends, checked the way `rill serve` checks it.
//   webhook_verify   (exit 0 when a signed body verifies and a tampered one does not)
#include <chrono>
#include <cstdio>
#include <string>

#include <rill/http/signature.hpp>

int main() {
  auto secrets = rill::http::parse_secrets("whsec_cmlsbCBleGFtcGxlIGtleTogMzIgYnl0ZXMgbG9uZyE=\n");
  if (!secrets) {
    std::fprintf(stderr, "secret: %s\n", secrets.error().message().c_str());
    return 1;
  }
  const std::string body = R"({"symbol":"ACME","bid":101.5})";
  const auto now = std::chrono::system_clock::now();
  const auto ts = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const std::string id = "msg_1";
  const std::string ts_text = std::to_string(ts);
  const std::string signature = rill::http::sign_standard(*secrets, id, ts, body);

  rill::http::SignedRequest req{
      .webhook_id = id, .webhook_timestamp = ts_text, .webhook_signature = signature, .hub_signature_256 = {}, .body = body};
  const auto good = rill::http::verify(req, *secrets, now, std::chrono::seconds(300));
  const std::string tampered = R"({"symbol":"ACME","bid":1.5})";
  req.body = tampered;
  const auto bad = rill::http::verify(req, *secrets, now, std::chrono::seconds(300));
  std::printf("signed: %.*s, tampered: %.*s\n", static_cast<int>(rill::http::to_string(good).size()),
              rill::http::to_string(good).data(), static_cast<int>(rill::http::to_string(bad).size()),
              rill::http::to_string(bad).data());
  return good == rill::http::VerifyResult::ok && bad == rill::http::VerifyResult::bad_signature ? 0 : 1;
}
