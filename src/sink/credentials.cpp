// The endpoint secret of a broker endpoint (sink.hpp: credentials_secret).
#include <fmt/format.h>

#include "core/error.hpp"
#include "sink.hpp"
#include "url.hpp"

namespace outbox::sink {

namespace {

using core::InvalidInput;

// Every byte of the credentials as %XX, and the colon.
constexpr std::size_t kMaxSecret = 3 * kMaxCredentials + 1;

bool unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

std::string encode(std::string_view text) {
    std::string out;
    for (unsigned char c : text) {
        if (unreserved(c)) out.push_back(static_cast<char>(c));
        else out += fmt::format("%{:02X}", c);
    }
    return out;
}

[[noreturn]] void bad_secret(std::string why) {
    throw InvalidInput(InvalidInput::Kind::InvalidValue, fmt::format("invalid broker credentials: {}", why), {},
                       "A broker endpoint's secret is its credentials as in a URL, percent-encoded: "
                       "'user:password', ':password' (Redis) or 'token' (NATS).");
}

}  // namespace

std::string credentials_secret(const Credentials& credentials) {
    if (!credentials.token.empty()) return encode(credentials.token);
    if (credentials.empty()) return {};
    return fmt::format("{}:{}", encode(credentials.user), encode(credentials.password));
}

Credentials credentials_from_secret(std::string_view url, std::string_view secret) {
    std::optional<detail::Scheme> scheme = detail::scheme_of(url);
    if (!scheme) bad_secret("the endpoint's URL is not a broker URL");
    if (secret.empty()) bad_secret("empty");
    if (secret.size() > kMaxSecret) bad_secret(fmt::format("longer than {} bytes", kMaxSecret));
    for (unsigned char c : secret) {
        // What a URL's userinfo may hold: unreserved, sub-delims, ':' and
        // percent-encoding; so never white space, '@', '/', '?' or '#'.
        if (!(unreserved(c) || c == '%' || c == ':' || std::string_view("!$&'()*+,;=").find(static_cast<char>(c)) !=
                                                             std::string_view::npos))
            bad_secret("write white space, '@', '/', '?', '#' and other special bytes as %XX");
    }
    Credentials out;
    std::size_t colon = secret.find(':');
    try {
        if (colon == std::string_view::npos) {
            if (*scheme == detail::Scheme::Nats || *scheme == detail::Scheme::NatsTls)
                out.token = detail::percent_decode(secret);
            else out.user = detail::percent_decode(secret);
        } else {
            out.user = detail::percent_decode(secret.substr(0, colon));
            out.password = detail::percent_decode(secret.substr(colon + 1));
        }
    } catch (const InvalidInput&) {
        bad_secret("bad percent-encoding (write a literal % as %25)");
    }
    if (out.size() > kMaxCredentials) bad_secret(fmt::format("longer than {} bytes, decoded", kMaxCredentials));
    return out;
}

}  // namespace outbox::sink
