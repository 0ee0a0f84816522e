// HTTP header validation and the header list of a webhook request.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "signing.hpp"

namespace outbox::core {

using Header = std::pair<std::string, std::string>;

// Names the user may not set: webhook-* (any name starting with "webhook-"),
// content-type, content-length, host, transfer-encoding, connection, expect,
// te, trailer, upgrade, keep-alive. Case-insensitive.
bool is_reserved_header(std::string_view name);

// Throws InvalidInput (Kind::InvalidValue) when `name` is not an RFC 9110
// token (1..256 chars of tchar), is reserved, or `value` contains CR, LF or
// NUL, or is longer than 8192 bytes. The message names the header; detail and
// hint say what is allowed.
void validate_header(std::string_view name, std::string_view value);

struct RequestHeaderInput {
    std::string_view msg_id;
    int64_t timestamp = 0;           // seconds since the epoch, at send time
    std::string_view body;
    std::span<const SigningKey> keys;  // may be empty: no webhook-signature
    std::string_view user_agent;
    std::span<const Header> endpoint_headers;  // already validated
    std::span<const Header> event_headers;     // already validated; win over endpoint ones
};

// The full list, as "name: value" lines ready for libcurl, names lower case:
// content-type: application/json, user-agent, webhook-id, webhook-timestamp,
// webhook-signature (when keys are given), then endpoint headers, then event
// headers (an event header replaces an endpoint header of the same name,
// compared case-insensitively). Ends with "expect:" so that libcurl does not
// send "Expect: 100-continue" for large bodies.
std::vector<std::string> build_request_headers(const RequestHeaderInput& in);

}  // namespace outbox::core
