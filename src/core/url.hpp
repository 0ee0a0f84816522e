// Endpoint URLs: what the worker will POST to.
#pragma once

#include <string>
#include <string_view>

namespace outbox::core {

// Accepts absolute http:// and https:// URLs with a host, parsed by libcurl's
// URL parser (the same one that will be used to send). Refuses other
// schemes, user:password parts (credentials would show in the endpoint
// list; send them as headers), fragments, white space and URLs longer than
// 2048 bytes. Throws InvalidInput naming what is wrong.
void validate_endpoint_url(std::string_view url);

// The URL with any user:password part replaced by "***", so that it can be
// shown in an error or a log line: everything up to the last '@' before
// the path, even when a '?' or '#' in a password ends the authority early.
std::string redact_url(std::string_view url);

}  // namespace outbox::core
