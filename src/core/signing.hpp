// Standard Webhooks signatures (https://www.standardwebhooks.com):
//   webhook-signature: v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>
// The key is the base64 text after the "whsec_" prefix, decoded.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outbox::core {

class SigningKey {
public:
    // Parses "whsec_<base64>". Throws InvalidInput (Kind::InvalidValue) with a
    // message naming what is wrong (missing prefix, bad base64, empty key) and
    // a hint; the message never contains the secret itself.
    static SigningKey parse(std::string_view secret);

    // "v1,<base64 signature>"
    std::string sign(std::string_view msg_id, int64_t timestamp, std::string_view body) const;

    const std::vector<unsigned char>& bytes() const noexcept { return key_; }

private:
    struct Mac;  // the HMAC state with this key set, made once (signing.cpp)
    explicit SigningKey(std::vector<unsigned char> key);
    std::vector<unsigned char> key_;
    std::shared_ptr<Mac> mac_;  // shared by copies; the worker signs from one thread
};

// The value of the webhook-signature header: one "v1,..." per key, separated
// by single spaces, in the order given (newest key first during rotation).
// Empty when there are no keys (the header is then omitted).
std::string signature_header(std::span<const SigningKey> keys, std::string_view msg_id,
                             int64_t timestamp, std::string_view body);

// A new random secret "whsec_<base64 of 24 bytes from a CSPRNG>".
std::string generate_secret();

}  // namespace outbox::core
