#include "headers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "error.hpp"
#include "excerpt.hpp"

namespace outbox::core {

namespace {

constexpr std::size_t kMaxNameLength = 256;
constexpr std::size_t kMaxValueLength = 8192;

// Headers that carry the webhook's identity and signature, describe the body,
// or steer the connection: a user value would forge or break the request.
constexpr std::array<std::string_view, 10> kReserved = {
    "content-type", "content-length", "host", "transfer-encoding", "connection",
    "expect",       "te",             "trailer", "upgrade",        "keep-alive",
};

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return lower(x) == lower(y);
           });
}

// RFC 9110 section 5.6.2.
bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

[[noreturn]] void bad_header(std::string message, std::string detail, std::string hint) {
    throw InvalidInput(InvalidInput::Kind::InvalidValue, std::move(message), std::move(detail),
                       std::move(hint));
}

// libcurl drops a header given as "name:" with nothing after the colon; the
// form "name;" is how it sends one with an empty value.
std::string header_line(std::string_view name, std::string_view value) {
    if (value.empty()) return fmt::format("{};", name);
    return fmt::format("{}: {}", name, value);
}

}  // namespace

bool is_reserved_header(std::string_view name) {
    std::string lowered = to_lower(name);
    if (lowered.starts_with("webhook-")) return true;
    return std::find(kReserved.begin(), kReserved.end(), lowered) != kReserved.end();
}

void validate_header(std::string_view name, std::string_view value) {
    if (name.empty())
        bad_header("header name must not be empty", {},
                   "Header names are tokens such as \"x-tenant\".");
    if (name.size() > kMaxNameLength || !std::all_of(name.begin(), name.end(), is_tchar))
        bad_header(fmt::format("invalid header name \"{}\"", excerpt(name)),
                   fmt::format("A header name is 1 to {} characters: letters, digits and !#$%&'*+-.^_`|~.",
                               kMaxNameLength),
                   "Use a name such as \"x-tenant\".");
    if (is_reserved_header(name))
        bad_header(fmt::format("header \"{}\" is reserved", excerpt(name)),
                   "webhook-* headers, content-type, content-length, host, transfer-encoding, connection, "
                   "expect, te, trailer, upgrade and keep-alive are set by outbox.",
                   "Use a different header name, e.g. with an \"x-\" prefix.");
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
        bad_header(fmt::format("value of header \"{}\" contains a line break or NUL", excerpt(name)),
                   "Header values must not contain CR, LF or NUL characters.",
                   "Remove the line breaks from the value.");
    if (value.size() > kMaxValueLength)
        bad_header(fmt::format("value of header \"{}\" is too long", excerpt(name)),
                   fmt::format("The value is {} bytes; at most {} bytes are allowed.", value.size(),
                               kMaxValueLength),
                   "Send large data in the payload instead.");
}

std::vector<std::string> build_request_headers(const RequestHeaderInput& in) {
    std::vector<std::string> lines;
    lines.reserve(6 + in.endpoint_headers.size() + in.event_headers.size());
    lines.push_back("content-type: application/json");
    lines.push_back(header_line("user-agent", in.user_agent));
    lines.push_back(header_line("webhook-id", in.msg_id));
    lines.push_back(fmt::format("webhook-timestamp: {}", in.timestamp));
    if (!in.keys.empty())
        lines.push_back(fmt::format("webhook-signature: {}",
                                    signature_header(in.keys, in.msg_id, in.timestamp, in.body)));
    for (const Header& header : in.endpoint_headers) {
        bool replaced = std::any_of(in.event_headers.begin(), in.event_headers.end(),
                                    [&](const Header& event) { return iequals(event.first, header.first); });
        if (!replaced) lines.push_back(header_line(to_lower(header.first), header.second));
    }
    for (const Header& header : in.event_headers) lines.push_back(header_line(to_lower(header.first), header.second));
    // Without this, libcurl sends "Expect: 100-continue" for large bodies and
    // waits for the receiver's go-ahead before sending the body.
    lines.push_back("expect:");
    return lines;
}

}  // namespace outbox::core
