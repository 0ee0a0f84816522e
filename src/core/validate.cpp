#include "validate.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "error.hpp"
#include "excerpt.hpp"

namespace outbox::core {

namespace {

constexpr std::size_t kMaxTopicLength = 255;
constexpr std::size_t kMaxKeyLength = 1024;
constexpr const char* kTopicRule =
    "A topic is 1 to 255 characters: letters, digits and . _ : -, starting with a letter or digit, "
    "e.g. \"order.created\".";

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool is_topic_char(char c) { return is_alnum(c) || c == '.' || c == '_' || c == ':' || c == '-'; }

bool is_valid_topic(std::string_view topic) {
    return !topic.empty() && topic.size() <= kMaxTopicLength && is_alnum(topic.front()) &&
           std::all_of(topic.begin(), topic.end(), is_topic_char);
}

[[noreturn]] void invalid(std::string message, std::string detail, std::string hint) {
    throw InvalidInput(InvalidInput::Kind::InvalidValue, std::move(message), std::move(detail), std::move(hint));
}

}  // namespace

void validate_topic(std::string_view topic) {
    if (topic.empty()) invalid("topic must not be empty", {}, kTopicRule);
    if (!is_valid_topic(topic)) {
        std::string detail;
        if (topic.size() > kMaxTopicLength)
            detail = fmt::format("The topic is {} characters long.", topic.size());
        invalid(fmt::format("invalid topic \"{}\"", excerpt(topic)), std::move(detail), kTopicRule);
    }
}

bool is_reserved_topic(std::string_view topic) { return topic.starts_with("outbox."); }

void refuse_reserved_topic(std::string_view topic) {
    if (is_reserved_topic(topic))
        throw InvalidInput(InvalidInput::Kind::Reserved, fmt::format("topic \"{}\" is reserved", excerpt(topic)),
                           "Topics that begin with \"outbox.\" are the operational events of outbox itself.",
                           "Choose another topic. To receive operational events, create an endpoint with "
                           "topics => '{outbox.*}'.");
}

void validate_key(std::string_view key) {
    if (key.empty())
        invalid("key must not be empty", {}, "Pass NULL for events without an ordering key.");
    if (key.size() > kMaxKeyLength)
        invalid("key is too long", fmt::format("The key is {} bytes; at most {} bytes are allowed.", key.size(),
                                               kMaxKeyLength),
                "Use a short identifier such as the aggregate's id.");
}

void validate_payload_size(std::size_t size, std::size_t limit) {
    if (size > limit)
        throw InvalidInput(InvalidInput::Kind::TooLarge, "payload is too large",
                           fmt::format("The payload is {} bytes as JSON text; the limit is {} bytes.", size, limit),
                           "Send a smaller payload or raise outbox.max_payload_size.");
}

void validate_topic_pattern(std::string_view pattern) {
    if (pattern == "*") return;
    // "order.*" is the prefix "order." followed by anything.
    std::string_view topic = pattern.ends_with(".*") ? pattern.substr(0, pattern.size() - 1) : pattern;
    if (!is_valid_topic(topic))
        invalid(fmt::format("invalid topic pattern \"{}\"", excerpt(pattern)), {},
                "A topic pattern is a topic (e.g. \"order.created\"), a prefix ending in \".*\" "
                "(e.g. \"order.*\") or \"*\" for every topic.");
}

bool topic_matches(std::string_view pattern, std::string_view topic) {
    if (pattern == "*") return !is_reserved_topic(topic);
    if (pattern.ends_with(".*")) return topic.starts_with(pattern.substr(0, pattern.size() - 1));
    return pattern == topic;
}

}  // namespace outbox::core
