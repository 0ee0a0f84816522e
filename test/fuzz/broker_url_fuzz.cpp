// Broker URLs as users type them (src/sink/url.cpp, sink.cpp): the grammar,
// the credentials split off into the secret and read back
// (src/sink/credentials.cpp), the subject / routing key / stream / Kafka topic templates.
// Input: url NUL topic NUL key.
#include "core/error.hpp"
#include "fuzz.hpp"
#include "sink/sink.hpp"
#include "sink/url.hpp"

using namespace outbox;
using namespace outbox::sink;

namespace {

bool same(const Credentials& a, const Credentials& b) {
    return a.user == b.user && a.password == b.password && a.token == b.token;
}

// The userinfo as written, when the URL has one that appears once in it.
std::string_view unique_userinfo(std::string_view url) {
    std::size_t start = url.find("://");
    if (start == std::string_view::npos) return {};
    start += 3;
    std::string_view rest = url.substr(start);
    std::string_view authority = rest.substr(0, rest.find('/'));
    std::size_t at = authority.rfind('@');
    if (at == std::string_view::npos) return {};
    std::string_view info = authority.substr(0, at);
    info.remove_prefix(info.find(':') == std::string_view::npos ? 0 : info.find(':') + 1);  // the password
    return fuzz::secret_like(info) && url.find(info) == url.rfind(info) ? info : std::string_view();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto p = fuzz::parts(fuzz::text(data, size), 3);
    std::string_view url = p[0];
    std::string topic(p[1]);
    std::optional<std::string> key;
    if (!p[2].empty()) key = std::string(p[2]);
    std::string_view secret = unique_userinfo(url);
    detail::BrokerUrl parsed;
    try {
        parsed = detail::parse_broker_url(url);
        validate_broker_url(url);
    } catch (const core::InvalidInput& e) {
        if (!secret.empty())
            FUZZ_CHECK(std::string_view(e.what()).find(secret) == std::string_view::npos, "errors never show credentials");
        return 0;
    }
    FUZZ_CHECK(is_broker_url(url), "a valid broker URL is one");
    SplitUrl split = split_credentials(url);
    detail::BrokerUrl bare = detail::parse_broker_url(split.url);
    FUZZ_CHECK(!bare.has_userinfo, "the stored URL has no credentials");
    FUZZ_CHECK(bare.hosts.size() == parsed.hosts.size() && bare.path == parsed.path, "the rest of the URL is kept");
    if (!secret.empty()) FUZZ_CHECK(split.url.find(secret) == std::string::npos, "the stored URL has no credentials");
    if (!split.credentials.empty()) {
        std::string stored = credentials_secret(split.credentials);
        Credentials back = credentials_from_secret(split.url, stored);
        FUZZ_CHECK(same(back, split.credentials), "credentials survive the endpoint's secret");
    }
    // The templates expand to names the broker takes.
    switch (parsed.scheme) {
        case detail::Scheme::Nats:
        case detail::Scheme::NatsTls: {
            std::string subject = parsed.subject.expand(topic, key);
            FUZZ_CHECK(!subject.empty(), "a subject");
            FUZZ_CHECK(subject.find_first_of(std::string_view(" \t\r\n\0*>", 7)) == std::string::npos,
                       "no white space or wildcard in a subject");
            FUZZ_CHECK(subject.front() != '.' && subject.back() != '.' && subject.find("..") == std::string::npos,
                       "no empty token in a subject");
            break;
        }
        case detail::Scheme::Amqp:
        case detail::Scheme::Amqps: (void)parsed.routing_key.expand(topic, key); break;
        case detail::Scheme::Redis:
        case detail::Scheme::Rediss: (void)parsed.stream.expand(topic, key); break;
        case detail::Scheme::Kafka:
        case detail::Scheme::Kafkas: (void)parsed.topic.expand(topic, key); break;
    }
    return 0;
}
