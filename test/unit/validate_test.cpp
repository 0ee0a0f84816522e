#include "core/validate.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"

using outbox::core::InvalidInput;
using outbox::core::topic_matches;
using outbox::core::validate_key;
using outbox::core::validate_payload_size;
using outbox::core::validate_topic;
using outbox::core::validate_topic_pattern;

namespace {

// Runs `f`, expecting InvalidInput of `kind`; returns it.
template <typename F>
InvalidInput expect_invalid(F f, InvalidInput::Kind kind = InvalidInput::Kind::InvalidValue) {
    try {
        f();
    } catch (const InvalidInput& e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        EXPECT_FALSE(e.hint().empty()) << e.what();
        return e;
    }
    ADD_FAILURE() << "no InvalidInput thrown";
    return InvalidInput(InvalidInput::Kind::NullValue, "");
}

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

TEST(Topic, Accepted) {
    for (const char* topic : {"a", "Z", "0", "order.created", "A1.b_c:d-e", "0-._:"})
        EXPECT_NO_THROW(validate_topic(topic)) << topic;
    EXPECT_NO_THROW(validate_topic(std::string(255, 't')));
}

TEST(Topic, Refused) {
    for (const char* topic : {".leading", "-leading", "_leading", ":leading", "bad topic!", "a b", "a/b", "a*",
                              "a\tb", "caf\xC3\xA9"}) {
        InvalidInput e = expect_invalid([&] { validate_topic(topic); });
        EXPECT_TRUE(contains(e.what(), "invalid topic")) << topic;
    }
    expect_invalid([] { validate_topic(std::string(256, 't')); });
    expect_invalid([] { validate_topic(std::string_view("a\0b", 3)); });
}

TEST(Topic, EmptyHasItsOwnMessage) {
    InvalidInput e = expect_invalid([] { validate_topic(""); });
    EXPECT_STREQ(e.what(), "topic must not be empty");
}

TEST(Topic, MessageQuotesTopicTruncated) {
    InvalidInput bad = expect_invalid([] { validate_topic("bad topic!"); });
    EXPECT_STREQ(bad.what(), "invalid topic \"bad topic!\"");
    InvalidInput long_one = expect_invalid([] { validate_topic(std::string(300, 'x')); });
    EXPECT_EQ(std::string(long_one.what()), "invalid topic \"" + std::string(64, 'x') + "...\"");
    EXPECT_TRUE(contains(long_one.detail(), "300"));
    // A cut inside a UTF-8 sequence must not leave invalid UTF-8 in the message.
    std::string accents = "a";
    for (int i = 0; i < 40; i++) accents += "\xC3\xA9";
    InvalidInput utf8 = expect_invalid([&] { validate_topic(accents); });
    EXPECT_TRUE(contains(utf8.what(), "\xEF\xBF\xBD...\""));
}

TEST(Key, Limits) {
    EXPECT_NO_THROW(validate_key("k"));
    EXPECT_NO_THROW(validate_key("order-42"));
    EXPECT_NO_THROW(validate_key(std::string(1024, 'k')));
    InvalidInput empty = expect_invalid([] { validate_key(""); });
    EXPECT_TRUE(contains(empty.what(), "empty"));
    InvalidInput long_key = expect_invalid([] { validate_key(std::string(1025, 'k')); });
    EXPECT_TRUE(contains(long_key.detail(), "1025"));
}

TEST(PayloadSize, ExactBoundary) {
    EXPECT_NO_THROW(validate_payload_size(0, 1048576));
    EXPECT_NO_THROW(validate_payload_size(1048576, 1048576));
    InvalidInput e = expect_invalid([] { validate_payload_size(1048577, 1048576); }, InvalidInput::Kind::TooLarge);
    EXPECT_TRUE(contains(e.detail(), "1048577"));
    EXPECT_TRUE(contains(e.detail(), "1048576"));
    EXPECT_TRUE(contains(e.hint(), "outbox.max_payload_size"));
}

TEST(TopicPattern, Accepted) {
    for (const char* pattern : {"*", "order.*", "order.created", "a", "a.b.*", "order..*"})
        EXPECT_NO_THROW(validate_topic_pattern(pattern)) << pattern;
}

TEST(TopicPattern, Refused) {
    for (const char* pattern : {"", "ord*er", "*.x", "order*", "order.**", ".*", "**", "*order", "order.*.*",
                                "order.*x", ".order", "bad pattern"}) {
        InvalidInput e = expect_invalid([&] { validate_topic_pattern(pattern); });
        EXPECT_TRUE(contains(e.what(), "invalid topic pattern")) << pattern;
    }
}

TEST(TopicPattern, Matching) {
    EXPECT_TRUE(topic_matches("*", "order.created"));
    EXPECT_TRUE(topic_matches("*", "x"));
    EXPECT_TRUE(topic_matches("order.*", "order.created"));
    EXPECT_TRUE(topic_matches("order.*", "order.created.v2"));
    EXPECT_FALSE(topic_matches("order.*", "order"));
    EXPECT_FALSE(topic_matches("order.*", "orders.created"));
    EXPECT_FALSE(topic_matches("order.*", "Order.created"));
    EXPECT_FALSE(topic_matches("order.*", "invoice.order.created"));
    EXPECT_TRUE(topic_matches("order.created", "order.created"));
    EXPECT_FALSE(topic_matches("order.created", "order.created.v2"));
    EXPECT_FALSE(topic_matches("order.created", "order.create"));
    EXPECT_FALSE(topic_matches("order.created", "Order.Created"));
}

TEST(ReservedTopics, RefusedForApplications) {
    using outbox::core::refuse_reserved_topic;
    for (const char* topic : {"outbox.delivery.dead", "outbox.x", "outbox.endpoint.failing"}) {
        InvalidInput e = expect_invalid([&] { refuse_reserved_topic(topic); }, InvalidInput::Kind::Reserved);
        EXPECT_TRUE(contains(e.what(), "reserved")) << e.what();
        EXPECT_TRUE(contains(e.hint(), "outbox.*")) << e.hint();
    }
    for (const char* topic : {"outbox", "outboxes.created", "order.outbox.x", "Outbox.x"})
        EXPECT_NO_THROW(refuse_reserved_topic(topic)) << topic;
}

TEST(ReservedTopics, OnlyPatternsThatNameThemMatch) {
    EXPECT_FALSE(topic_matches("*", "outbox.delivery.dead"));
    EXPECT_TRUE(topic_matches("*", "outboxes.created"));
    EXPECT_TRUE(topic_matches("outbox.*", "outbox.delivery.dead"));
    EXPECT_TRUE(topic_matches("outbox.endpoint.*", "outbox.endpoint.failing"));
    EXPECT_FALSE(topic_matches("outbox.endpoint.*", "outbox.delivery.dead"));
    EXPECT_TRUE(topic_matches("outbox.delivery.dead", "outbox.delivery.dead"));
}
