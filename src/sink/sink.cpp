#include "sink.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/excerpt.hpp"
#include "core/url.hpp"
#include "protocols.hpp"
#include "url.hpp"

namespace outbox::sink {

namespace {

using core::InvalidInput;
using detail::Scheme;

// hiredis 0.14 (Debian 12) has no TLS; docs/sinks.md says what to do.
void refuse_rediss(std::string_view url) {
    throw InvalidInput(InvalidInput::Kind::InvalidValue,
                       fmt::format("invalid broker URL \"{}\": rediss:// (Redis over TLS) is not supported",
                                   core::excerpt(core::redact_url(url))),
                       "This build uses hiredis 0.14, which has no TLS support.",
                       "Use redis:// on a trusted network, or reach the server through a local TLS tunnel "
                       "(e.g. stunnel) and add its loopback address to outbox.allowed_networks.");
}

}  // namespace

bool is_broker_url(std::string_view url) { return detail::scheme_of(url).has_value(); }

void validate_broker_url(std::string_view url) {
    detail::BrokerUrl b = detail::parse_broker_url(url);
    if (b.scheme == Scheme::Rediss) refuse_rediss(url);
    // The userinfo must split cleanly too.
    split_credentials(url);
}

SplitUrl split_credentials(std::string_view url) {
    detail::BrokerUrl b = detail::parse_broker_url(url);
    SplitUrl out;
    if (!b.has_userinfo) {
        out.url = std::string(url);
        return out;
    }
    std::size_t authority = url.find("://") + 3;
    std::size_t at = url.find('@', authority);
    // parse_broker_url took the last '@' of the authority.
    std::size_t end = url.find_first_of("/?", authority);
    at = url.substr(0, end).rfind('@');
    out.url = fmt::format("{}{}", url.substr(0, authority), url.substr(at + 1));
    std::string_view info = b.userinfo;
    std::size_t colon = info.find(':');
    try {
        if (colon == std::string_view::npos) {
            if (b.scheme == Scheme::Nats || b.scheme == Scheme::NatsTls) out.credentials.token = detail::percent_decode(info);
            else out.credentials.user = detail::percent_decode(info);
        } else {
            out.credentials.user = detail::percent_decode(info.substr(0, colon));
            out.credentials.password = detail::percent_decode(info.substr(colon + 1));
        }
    } catch (const InvalidInput&) {
        // Never repeat the userinfo, not even its decoding error.
        throw InvalidInput(InvalidInput::Kind::InvalidValue,
                           fmt::format("invalid broker URL \"{}\": bad percent-encoding in the credentials",
                                       core::excerpt(core::redact_url(url))),
                           {}, "Write a literal % as %25.");
    }
    return out;
}

std::unique_ptr<Sink> make_sink(std::string_view url, const Credentials& credentials, const Options& options) {
    detail::BrokerUrl b = detail::parse_broker_url(url);
    if (b.has_userinfo)
        throw InvalidInput(InvalidInput::Kind::InvalidValue,
                           fmt::format("invalid broker URL \"{}\": credentials belong in the endpoint's secret",
                                       core::excerpt(core::redact_url(url))),
                           {}, "Split them off with split_credentials().");
    switch (b.scheme) {
        case Scheme::Nats:
        case Scheme::NatsTls: return detail::make_nats_sink(std::move(b), credentials, options);
        case Scheme::Amqp:
        case Scheme::Amqps: return detail::make_amqp_sink(std::move(b), credentials, options);
        case Scheme::Redis: return detail::make_redis_sink(std::move(b), credentials, options);
        case Scheme::Rediss: refuse_rediss(url);
    }
    return nullptr;
}

}  // namespace outbox::sink
