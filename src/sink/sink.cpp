#include "sink.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/excerpt.hpp"
#include "core/url.hpp"
#include "protocols.hpp"
#include "url.hpp"
#ifdef OUTBOX_WITH_KAFKA
#include "kafka_producer.hpp"
#endif

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

#ifdef OUTBOX_WITH_NATS
constexpr bool kNats = true;
#else
constexpr bool kNats = false;
#endif
#ifdef OUTBOX_WITH_AMQP
constexpr bool kAmqp = true;
#else
constexpr bool kAmqp = false;
#endif
#ifdef OUTBOX_WITH_REDIS
constexpr bool kRedis = true;
#else
constexpr bool kRedis = false;
#endif
#ifdef OUTBOX_WITH_KAFKA
constexpr bool kKafka = true;
#else
constexpr bool kKafka = false;
#endif

const Protocol& protocol_of(Scheme scheme) {
    const std::vector<Protocol>& all = protocols();
    switch (scheme) {
        case Scheme::Nats:
        case Scheme::NatsTls: return all[0];
        case Scheme::Amqp:
        case Scheme::Amqps: return all[1];
        case Scheme::Redis:
        case Scheme::Rediss: return all[2];
        case Scheme::Kafka:
        case Scheme::Kafkas: break;
    }
    return all[3];
}

void require_built_in(Scheme scheme) {
    const Protocol& p = protocol_of(scheme);
    if (p.built_in) return;
    std::string others;
    for (const Protocol& q : protocols())
        if (q.built_in) others += fmt::format("{}{}", others.empty() ? "" : ", ", q.schemes);
    throw InvalidInput(
        InvalidInput::Kind::NotSupported,
        fmt::format("{} URLs are not supported: this outbox library was built without {}", p.schemes, p.library),
        others.empty() ? "It delivers to webhooks only."
                       : fmt::format("It delivers to webhooks and to {} URLs.", others),
        fmt::format("Install a build of outbox that has {}: Debian's package postgresql-NN-outbox, or make && make "
                    "install with {} installed; then restart the server (README, \"Install\").",
                    p.library, p.package));
}

}  // namespace

const std::vector<Protocol>& protocols() {
    static const std::vector<Protocol> all{
        {"nats", "nats:// and tls://", "libnats", "libnats-dev", kNats},
        {"amqp", "amqp:// and amqps://", "librabbitmq", "librabbitmq-dev", kAmqp},
        {"redis", "redis://", "hiredis", "libhiredis-dev", kRedis},
        {"kafka", "kafka:// and kafkas://", "rdkafka", "librdkafka-dev", kKafka},
    };
    return all;
}

std::string built_in_protocols() {
    std::string out;
    for (const Protocol& p : protocols())
        if (p.built_in) out += fmt::format("{}{}", out.empty() ? "" : ", ", p.name);
    return out;
}

void require_built_in(std::string_view url) { require_built_in(detail::parse_broker_url(url).scheme); }

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
    // parse_broker_url took the last '@' before the path.
    std::size_t at = url.substr(0, url.find('/', authority)).rfind('@');
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
    // Else the endpoint's secret would hold what credentials_from_secret()
    // refuses: the worker could not load the endpoints.
    if (out.credentials.size() > kMaxCredentials)
        throw InvalidInput(InvalidInput::Kind::InvalidValue,
                           fmt::format("invalid broker URL \"{}\": the credentials are longer than {} bytes",
                                       core::excerpt(core::redact_url(url)), kMaxCredentials));
    return out;
}

// (credentials and options go unused in a build without any protocol.)
std::unique_ptr<Sink> make_sink(std::string_view url, [[maybe_unused]] const Credentials& credentials,
                                [[maybe_unused]] const Options& options) {
    detail::BrokerUrl b = detail::parse_broker_url(url);
    if (b.has_userinfo)
        throw InvalidInput(InvalidInput::Kind::InvalidValue,
                           fmt::format("invalid broker URL \"{}\": credentials belong in the endpoint's secret",
                                       core::excerpt(core::redact_url(url))),
                           {}, "Split them off with split_credentials().");
    if (b.scheme == Scheme::Rediss) refuse_rediss(url);
    require_built_in(b.scheme);
    // Only the protocols built in are compiled and linked (the Makefile's BROKERS).
    switch (b.scheme) {
        case Scheme::Nats:
        case Scheme::NatsTls:
#ifdef OUTBOX_WITH_NATS
            return detail::make_nats_sink(std::move(b), credentials, options);
#endif
            break;
        case Scheme::Amqp:
        case Scheme::Amqps:
#ifdef OUTBOX_WITH_AMQP
            return detail::make_amqp_sink(std::move(b), credentials, options);
#endif
            break;
        case Scheme::Redis:
#ifdef OUTBOX_WITH_REDIS
            return detail::make_redis_sink(std::move(b), credentials, options);
#endif
            break;
        case Scheme::Rediss: break;
        case Scheme::Kafka:
        case Scheme::Kafkas:
#ifdef OUTBOX_WITH_KAFKA
            return detail::make_kafka_sink(std::move(b), credentials, options);
#endif
            break;
    }
    return nullptr;
}

bool wait_for_closed([[maybe_unused]] std::chrono::milliseconds timeout) {
#ifdef OUTBOX_WITH_KAFKA
    return detail::wait_for_kafka_destroyed(timeout);
#else
    return true;
#endif
}

}  // namespace outbox::sink
