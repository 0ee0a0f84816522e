// Broker URLs and the subject / routing-key / stream templates in them.
// Pure functions, unit-tested (test/unit/sink_url_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outbox::sink::detail {

enum class Scheme { Nats, NatsTls, Amqp, Amqps, Redis, Rediss, Kafka, Kafkas };

struct HostPort {
    std::string host;  // without brackets for IPv6
    std::uint16_t port = 0;
};

// A template with {topic} and {key} placeholders.
class Template {
public:
    // How an event's topic and key are put into the name.
    enum class Encoding {
        // NATS subjects: the topic's dots stay token separators
        // ("order.created" -> two tokens), the key is one token; bytes a
        // subject cannot carry (space and other controls, '*', '>', '%', '.'
        // in a key, non-ASCII) become %XX; an empty token, a NULL or empty
        // key become "_" (and a key that is "_" itself becomes %5F).
        NatsSubject,
        // AMQP routing keys, Redis stream names and Kafka topics: as they
        // are; a NULL key is the empty string.
        Raw,
    };

    // Throws InvalidInput for an unknown placeholder or a lone brace.
    static Template parse(std::string_view text, Encoding encoding);

    std::string expand(std::string_view topic, const std::optional<std::string>& key) const;
    bool uses(std::string_view placeholder) const;  // "topic" or "key"
    const std::string& text() const noexcept { return text_; }

private:
    struct Part {
        bool placeholder = false;
        std::string text;  // literal text, or "topic" / "key"
    };
    std::string text_;
    Encoding encoding_ = Encoding::Raw;
    std::vector<Part> parts_;
};

struct BrokerUrl {
    Scheme scheme = Scheme::Nats;
    std::vector<HostPort> hosts;   // more than one for a NATS or Kafka cluster: nats://h1:4222,h2:4222/subject
    std::string userinfo;          // as written (percent-encoded); empty when none
    bool has_userinfo = false;
    std::string path;              // decoded, without the leading '/'
    std::vector<std::pair<std::string, std::string>> query;  // decoded

    // What each scheme makes of the path and query (checked by parse).
    Template subject;              // NATS: the subject
    std::string vhost = "/";       // AMQP
    std::string exchange;          // AMQP: "" is the default exchange
    Template routing_key;          // AMQP, default "{topic}"
    Template stream;               // Redis
    std::optional<long long> maxlen;  // Redis: XADD MAXLEN ~ N
    int db = 0;                    // Redis: SELECT db
    Template topic;                // Kafka, default "{topic}"
    std::string sasl_mechanism;    // Kafka: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 ("" is PLAIN with credentials)

    bool tls() const noexcept {
        return scheme == Scheme::NatsTls || scheme == Scheme::Amqps || scheme == Scheme::Rediss || scheme == Scheme::Kafkas;
    }
};

std::optional<Scheme> scheme_of(std::string_view url);

// Parses and checks a broker URL; throws InvalidInput naming the problem
// (the URL in the message is redacted). rediss:// parses; make_sink and
// validate_broker_url refuse it (no TLS in the packaged hiredis).
BrokerUrl parse_broker_url(std::string_view url);

std::string percent_decode(std::string_view text);

// A Kafka topic name: 1 to 249 of A-Z a-z 0-9 . _ - (not "." or "..").
bool kafka_topic_ok(std::string_view topic);  // throws InvalidInput on a bad %XX

}  // namespace outbox::sink::detail
