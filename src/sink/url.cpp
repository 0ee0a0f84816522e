#include "url.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "core/error.hpp"
#include "core/excerpt.hpp"
#include "core/url.hpp"

namespace outbox::sink::detail {

namespace {

using core::InvalidInput;

constexpr std::size_t kMaxUrl = 2048;

const char* kHint =
    "Use nats://host:4222/subject (tls:// for TLS), amqp://host:5672/vhost?exchange=name&routing_key={topic} "
    "(amqps:// for TLS), redis://host:6379/stream or kafka://host1:9092,host2:9092/topic (kafkas:// for TLS); "
    "{topic} and {key} take the event's topic and key.";

InvalidInput bad(std::string_view url, std::string_view why) {
    return InvalidInput(InvalidInput::Kind::InvalidValue,
                        fmt::format("invalid broker URL \"{}\": {}", core::excerpt(core::redact_url(url)), why), {},
                        kHint);
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

bool needs_nats_escape(unsigned char c, bool in_key) {
    return c <= ' ' || c >= 0x7f || c == '*' || c == '>' || c == '%' || (in_key && c == '.');
}

// One NATS subject token (or a dotted topic) with the bytes a subject
// cannot carry as %XX.
void append_nats(std::string& out, std::string_view text, bool in_key) {
    for (char ch : text) {
        auto c = static_cast<unsigned char>(ch);
        if (needs_nats_escape(c, in_key)) fmt::format_to(std::back_inserter(out), "%{:02X}", c);
        else out.push_back(ch);
    }
}

std::string nats_topic(std::string_view topic) {
    std::string out;
    std::size_t start = 0;
    for (;;) {
        std::size_t dot = topic.find('.', start);
        std::string_view token = topic.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (token.empty()) out.push_back('_');  // "a..b", ".a", "a.": no empty token
        else append_nats(out, token, false);
        if (dot == std::string_view::npos) break;
        out.push_back('.');
        start = dot + 1;
    }
    return out;
}

std::string nats_key(const std::optional<std::string>& key) {
    if (!key || key->empty()) return "_";
    if (*key == "_") return "%5F";  // keeps "_" for the NULL key alone
    std::string out;
    append_nats(out, *key, true);
    return out;
}

std::optional<long long> parse_number(std::string_view text) {
    long long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

HostPort parse_host(std::string_view url, std::string_view text, std::uint16_t default_port) {
    HostPort hp;
    std::string_view rest;
    if (!text.empty() && text.front() == '[') {
        std::size_t close = text.find(']');
        if (close == std::string_view::npos) throw bad(url, "an IPv6 address lacks its closing ']'");
        hp.host = std::string(text.substr(1, close - 1));
        rest = text.substr(close + 1);
        if (hp.host.empty() || hp.host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos)
            throw bad(url, "bad IPv6 address");
    } else {
        std::size_t colon = text.find(':');
        hp.host = std::string(text.substr(0, colon));
        rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
        if (hp.host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
            std::string::npos)
            throw bad(url, "the host name has characters a host name cannot have");
    }
    if (hp.host.empty()) throw bad(url, "it has no host");
    hp.port = default_port;
    if (!rest.empty()) {
        if (rest.front() != ':') throw bad(url, "unexpected text after the host");
        auto port = parse_number(rest.substr(1));
        if (!port || *port < 1 || *port > 65535) throw bad(url, "the port must be a number from 1 to 65535");
        hp.port = static_cast<std::uint16_t>(*port);
    }
    return hp;
}

std::uint16_t default_port(Scheme s) {
    switch (s) {
        case Scheme::Nats:
        case Scheme::NatsTls: return 4222;
        case Scheme::Amqp: return 5672;
        case Scheme::Amqps: return 5671;
        case Scheme::Redis:
        case Scheme::Rediss: return 6379;
        case Scheme::Kafka:
        case Scheme::Kafkas: return 9092;
    }
    return 0;
}

// Query parameters each scheme knows; anything else is a typo to report.
bool known_param(Scheme s, std::string_view name) {
    switch (s) {
        case Scheme::Nats:
        case Scheme::NatsTls: return false;
        case Scheme::Amqp:
        case Scheme::Amqps: return name == "exchange" || name == "routing_key";
        case Scheme::Redis:
        case Scheme::Rediss: return name == "maxlen" || name == "db";
        case Scheme::Kafka:
        case Scheme::Kafkas: return name == "sasl_mechanism";
    }
    return false;
}

void check_nats_subject(std::string_view url, const Template& subject) {
    // Placeholders always expand to non-empty, valid tokens; check the rest
    // with a stand-in.
    std::string probe = subject.expand("t", std::string("k"));
    if (probe.empty()) throw bad(url, "the subject (the URL's path) is empty");
    std::size_t start = 0;
    for (;;) {
        std::size_t dot = probe.find('.', start);
        std::string_view token(probe.data() + start, (dot == std::string::npos ? probe.size() : dot) - start);
        if (token.empty()) throw bad(url, "the subject has an empty token (\"..\", or a dot at its start or end)");
        if (token == "*" || token == ">" || token.find_first_of("*>") != std::string_view::npos)
            throw bad(url, "the subject may not contain the wildcards * or >");
        for (char c : token)
            if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) throw bad(url, "the subject may not contain white space");
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
}

}  // namespace

std::string percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); i++) {
        if (text[i] != '%') {
            out.push_back(text[i]);
            continue;
        }
        int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
        int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            throw InvalidInput(InvalidInput::Kind::InvalidValue, "invalid percent-encoding", {},
                               "Write a literal % as %25.");
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

Template Template::parse(std::string_view text, Encoding encoding) {
    Template t;
    t.text_ = std::string(text);
    t.encoding_ = encoding;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t open = text.find_first_of("{}", i);
        if (open == std::string_view::npos) {
            t.parts_.push_back({false, std::string(text.substr(i))});
            break;
        }
        if (open > i) t.parts_.push_back({false, std::string(text.substr(i, open - i))});
        std::size_t close = text.find('}', open);
        if (text[open] == '}' || close == std::string_view::npos)
            throw InvalidInput(InvalidInput::Kind::InvalidValue,
                               fmt::format("invalid template \"{}\": unbalanced brace", core::excerpt(text)), {},
                               "Placeholders are {topic} and {key}.");
        std::string_view name = text.substr(open + 1, close - open - 1);
        if (name != "topic" && name != "key")
            throw InvalidInput(InvalidInput::Kind::InvalidValue,
                               fmt::format("invalid template \"{}\": unknown placeholder {{{}}}", core::excerpt(text),
                                           core::excerpt(name)),
                               {}, "Placeholders are {topic} and {key}.");
        t.parts_.push_back({true, std::string(name)});
        i = close + 1;
    }
    return t;
}

std::string Template::expand(std::string_view topic, const std::optional<std::string>& key) const {
    std::string out;
    for (const Part& p : parts_) {
        if (!p.placeholder) out += p.text;
        else if (encoding_ == Encoding::Raw) out += p.text == "topic" ? std::string(topic) : key.value_or("");
        else out += p.text == "topic" ? nats_topic(topic) : nats_key(key);
    }
    return out;
}

bool Template::uses(std::string_view placeholder) const {
    return std::any_of(parts_.begin(), parts_.end(), [&](const Part& p) { return p.placeholder && p.text == placeholder; });
}

std::optional<Scheme> scheme_of(std::string_view url) {
    std::size_t end = url.find("://");
    if (end == std::string_view::npos) return std::nullopt;
    std::string s;
    for (char c : url.substr(0, end)) s.push_back(lower(c));
    if (s == "nats") return Scheme::Nats;
    if (s == "tls") return Scheme::NatsTls;
    if (s == "amqp") return Scheme::Amqp;
    if (s == "amqps") return Scheme::Amqps;
    if (s == "redis") return Scheme::Redis;
    if (s == "rediss") return Scheme::Rediss;
    if (s == "kafka") return Scheme::Kafka;
    if (s == "kafkas") return Scheme::Kafkas;
    return std::nullopt;
}

BrokerUrl parse_broker_url(std::string_view url) {
    if (url.size() > kMaxUrl) throw bad(url, fmt::format("longer than {} bytes", kMaxUrl));
    for (char c : url)
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) throw bad(url, "it contains white space or control characters");
    auto scheme = scheme_of(url);
    if (!scheme) throw bad(url, "the scheme must be nats, tls, amqp, amqps, redis, rediss, kafka or kafkas");
    if (url.find('#') != std::string_view::npos) throw bad(url, "a fragment (#...) has no meaning here");

    BrokerUrl b;
    b.scheme = *scheme;
    std::string_view rest = url.substr(url.find("://") + 3);
    // The credentials first: up to the last '@' before the path, as
    // core::redact_url hides them. A password typed with a '?' in it must
    // not be read as the query, whose errors would show it.
    if (std::size_t at = rest.substr(0, rest.find('/')).rfind('@'); at != std::string_view::npos) {
        b.has_userinfo = true;
        b.userinfo = std::string(rest.substr(0, at));
        if (b.userinfo.find('?') != std::string::npos)
            throw bad(url, "the credentials contain '?': write it as %3F (and '/' as %2F, '@' as %40)");
        rest.remove_prefix(at + 1);
    }
    std::size_t auth_end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, auth_end);
    rest = auth_end == std::string_view::npos ? std::string_view() : rest.substr(auth_end);
    if (authority.empty()) throw bad(url, "it has no host");
    std::size_t start = 0;
    for (;;) {
        std::size_t comma = authority.find(',', start);
        b.hosts.push_back(parse_host(url, authority.substr(start, comma == std::string_view::npos ? comma : comma - start),
                                     default_port(b.scheme)));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    if (b.hosts.size() > 1 && b.scheme != Scheme::Nats && b.scheme != Scheme::NatsTls && b.scheme != Scheme::Kafka &&
        b.scheme != Scheme::Kafkas)
        throw bad(url, "only nats://, tls://, kafka:// and kafkas:// URLs may list several servers");
    if (b.hosts.size() > 16) throw bad(url, "at most 16 servers");

    std::string_view raw_path = rest.substr(0, rest.find('?'));
    std::string_view raw_query = rest.find('?') == std::string_view::npos ? std::string_view() : rest.substr(rest.find('?') + 1);
    if (!raw_path.empty()) raw_path.remove_prefix(1);  // the '/'
    try {
        b.path = percent_decode(raw_path);
        while (!raw_query.empty()) {
            std::size_t amp = raw_query.find('&');
            std::string_view pair = raw_query.substr(0, amp);
            raw_query = amp == std::string_view::npos ? std::string_view() : raw_query.substr(amp + 1);
            if (pair.empty()) continue;
            std::size_t eq = pair.find('=');
            std::string name = percent_decode(pair.substr(0, eq));
            std::string value = eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
            if (!known_param(b.scheme, name)) throw bad(url, fmt::format("unknown parameter \"{}\"", core::excerpt(name)));
            b.query.emplace_back(std::move(name), std::move(value));
        }
    } catch (const InvalidInput& e) {
        if (std::string_view(e.what()).starts_with("invalid broker URL")) throw;
        throw bad(url, e.what());
    }
    auto param = [&](std::string_view name) -> std::optional<std::string> {
        std::optional<std::string> found;
        for (auto& [k, v] : b.query) {
            if (k != name) continue;
            if (found) throw bad(url, fmt::format("parameter \"{}\" is given twice", name));
            found = v;
        }
        return found;
    };
    auto tmpl = [&](std::string_view text, Template::Encoding enc) {
        try {
            return Template::parse(text, enc);
        } catch (const InvalidInput& e) {
            throw bad(url, e.what());
        }
    };

    switch (b.scheme) {
        case Scheme::Nats:
        case Scheme::NatsTls:
            b.subject = tmpl(b.path, Template::Encoding::NatsSubject);
            check_nats_subject(url, b.subject);
            break;
        case Scheme::Amqp:
        case Scheme::Amqps: {
            b.vhost = b.path.empty() ? "/" : b.path;
            b.exchange = param("exchange").value_or("");
            if (b.exchange.size() > 255) throw bad(url, "the exchange name is longer than 255 bytes");
            b.routing_key = tmpl(param("routing_key").value_or("{topic}"), Template::Encoding::Raw);
            if (b.routing_key.expand("", std::nullopt).size() > 255)
                throw bad(url, "the routing key is longer than 255 bytes");
            break;
        }
        case Scheme::Redis:
        case Scheme::Rediss: {
            if (b.path.empty()) throw bad(url, "the stream (the URL's path) is empty");
            b.stream = tmpl(b.path, Template::Encoding::Raw);
            if (auto m = param("maxlen")) {
                auto n = parse_number(*m);
                if (!n || *n < 1) throw bad(url, "maxlen must be a positive whole number");
                b.maxlen = n;
            }
            if (auto d = param("db")) {
                auto n = parse_number(*d);
                if (!n || *n < 0 || *n > 1000000) throw bad(url, "db must be a database number (0, 1, ...)");
                b.db = static_cast<int>(*n);
            }
            break;
        }
        case Scheme::Kafka:
        case Scheme::Kafkas: {
            b.topic = tmpl(b.path.empty() ? "{topic}" : b.path, Template::Encoding::Raw);
            if (!kafka_topic_ok(b.topic.expand("t", std::string("k"))))
                throw bad(url, "the topic (the URL's path) may only have A-Z a-z 0-9 . _ - besides {topic} and {key}");
            b.sasl_mechanism = param("sasl_mechanism").value_or("");
            if (!b.sasl_mechanism.empty() && b.sasl_mechanism != "PLAIN" && b.sasl_mechanism != "SCRAM-SHA-256" &&
                b.sasl_mechanism != "SCRAM-SHA-512")
                throw bad(url, "sasl_mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
            break;
        }
    }
    return b;
}

bool kafka_topic_ok(std::string_view topic) {
    if (topic.empty() || topic.size() > 249 || topic == "." || topic == "..") return false;
    return topic.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
           std::string_view::npos;
}

}  // namespace outbox::sink::detail
