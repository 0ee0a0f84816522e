#include "headers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "error.hpp"

namespace outbox::core {

namespace {

constexpr std::size_t kMaxName = 256;
constexpr std::size_t kMaxValue = 8192;

// Set by the worker itself, or meaningful only to one connection hop.
constexpr std::array<std::string_view, 10> kReserved = {
    "content-type", "content-length", "host",    "transfer-encoding", "connection",
    "expect",       "te",             "trailer", "upgrade",           "keep-alive"};

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return lower(x) == lower(y);
           });
}

// RFC 9110 tchar.
bool is_tchar(char c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string shown(std::string_view name) {
    return name.size() > 64 ? fmt::format("{}...", name.substr(0, 64)) : std::string(name);
}

std::string lowered(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

}  // namespace

bool is_reserved_header(std::string_view name) {
    if (name.size() >= 8 && iequals(name.substr(0, 8), "webhook-")) return true;
    return std::any_of(kReserved.begin(), kReserved.end(), [&](std::string_view r) { return iequals(r, name); });
}

void validate_header(std::string_view name, std::string_view value) {
    using Kind = InvalidInput::Kind;
    if (name.empty() || name.size() > kMaxName || !std::all_of(name.begin(), name.end(), is_tchar))
        throw InvalidInput(Kind::InvalidValue, fmt::format("invalid header name \"{}\"", shown(name)),
                           "Header names are 1 to 256 letters, digits and !#$%&'*+-.^_`|~.",
                           "Use names such as \"x-tenant-id\".");
    if (is_reserved_header(name))
        throw InvalidInput(Kind::InvalidValue, fmt::format("header \"{}\" is reserved", shown(name)),
                           "The webhook-* headers, content-type, content-length, host, transfer-encoding and "
                           "other hop-by-hop headers are set by outbox itself.",
                           "Choose another name, e.g. with an \"x-\" prefix.");
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
        throw InvalidInput(Kind::InvalidValue,
                           fmt::format("value of header \"{}\" contains a line break or NUL", shown(name)),
                           "Header values must be a single line.", {});
    if (value.size() > kMaxValue)
        throw InvalidInput(Kind::InvalidValue,
                           fmt::format("value of header \"{}\" is too long ({} bytes, at most {})", shown(name),
                                       value.size(), kMaxValue));
}

std::vector<std::string> build_request_headers(const RequestHeaderInput& in) {
    std::vector<std::string> lines;
    lines.reserve(6 + in.endpoint_headers.size() + in.event_headers.size());
    lines.emplace_back("content-type: application/json");
    lines.push_back(fmt::format("user-agent: {}", in.user_agent));
    lines.push_back(fmt::format("webhook-id: {}", in.msg_id));
    lines.push_back(fmt::format("webhook-timestamp: {}", in.timestamp));
    std::string signature = signature_header(in.keys, in.msg_id, in.timestamp, in.body);
    if (!signature.empty()) lines.push_back(fmt::format("webhook-signature: {}", signature));
    for (const Header& h : in.endpoint_headers) {
        bool overridden = std::any_of(in.event_headers.begin(), in.event_headers.end(),
                                      [&](const Header& e) { return iequals(e.first, h.first); });
        if (!overridden) lines.push_back(fmt::format("{}: {}", lowered(h.first), h.second));
    }
    for (const Header& h : in.event_headers) lines.push_back(fmt::format("{}: {}", lowered(h.first), h.second));
    // Without this, libcurl sends "Expect: 100-continue" for large bodies and
    // waits a round trip for the answer.
    lines.emplace_back("expect:");
    return lines;
}

}  // namespace outbox::core
