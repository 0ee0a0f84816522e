#include "validate.hpp"

#include <fmt/format.h>

#include "error.hpp"

namespace outbox::core {

namespace {

constexpr std::size_t kMaxTopic = 255;
constexpr std::size_t kMaxKey = 1024;

bool is_alnum(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_topic_char(char c) { return is_alnum(c) || c == '.' || c == '_' || c == ':' || c == '-'; }

std::string quoted_prefix(std::string_view s) {
    return s.size() > 64 ? fmt::format("\"{}...\"", s.substr(0, 64)) : fmt::format("\"{}\"", s);
}

constexpr const char* kTopicHint =
    "A topic starts with a letter or digit and continues with up to 254 letters, digits, '.', '_', ':' or "
    "'-', e.g. 'order.created'.";

}  // namespace

void validate_topic(std::string_view topic) {
    using Kind = InvalidInput::Kind;
    if (topic.empty()) throw InvalidInput(Kind::InvalidValue, "topic must not be empty", {}, kTopicHint);
    if (topic.size() > kMaxTopic)
        throw InvalidInput(Kind::InvalidValue,
                           fmt::format("topic is too long ({} bytes, at most {})", topic.size(), kMaxTopic), {},
                           kTopicHint);
    bool ok = is_alnum(topic.front());
    for (char c : topic) ok = ok && is_topic_char(c);
    if (!ok)
        throw InvalidInput(Kind::InvalidValue, fmt::format("invalid topic {}", quoted_prefix(topic)), {},
                           kTopicHint);
}

void validate_key(std::string_view key) {
    if (key.empty() || key.size() > kMaxKey)
        throw InvalidInput(InvalidInput::Kind::InvalidValue,
                           fmt::format("key must be 1 to {} bytes long, not {}", kMaxKey, key.size()), {},
                           "Use the id of the aggregate whose events must stay in order, e.g. 'order-42', "
                           "or NULL for unordered events.");
}

void validate_payload_size(std::size_t size, std::size_t limit) {
    if (size > limit)
        throw InvalidInput(InvalidInput::Kind::TooLarge,
                           fmt::format("payload is too large ({} bytes, the limit is {})", size, limit),
                           "The size is that of the payload's JSON text, the request body.",
                           "Send a reference to large data instead, or raise outbox.max_payload_size "
                           "(a superuser setting).");
}

void validate_topic_pattern(std::string_view pattern) {
    if (pattern == "*") return;
    std::string_view topic = pattern;
    if (pattern.size() >= 2 && pattern.substr(pattern.size() - 2) == ".*") topic.remove_suffix(2);
    else if (!pattern.empty() && pattern.back() == '*') topic.remove_suffix(1);
    try {
        validate_topic(topic);
    } catch (const InvalidInput&) {
        throw InvalidInput(InvalidInput::Kind::InvalidValue,
                           fmt::format("invalid topic pattern {}", quoted_prefix(pattern)), {},
                           "A pattern is a topic ('order.created'), a prefix ending in '*' ('order.*'), "
                           "or '*' for every topic.");
    }
}

bool topic_matches(std::string_view pattern, std::string_view topic) {
    if (pattern == "*") return true;
    if (!pattern.empty() && pattern.back() == '*') {
        std::string_view prefix = pattern.substr(0, pattern.size() - 1);
        return topic.size() >= prefix.size() && topic.substr(0, prefix.size()) == prefix;
    }
    return pattern == topic;
}

}  // namespace outbox::core
