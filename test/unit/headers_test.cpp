#include "core/headers.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.hpp"

using outbox::core::build_request_headers;
using outbox::core::Header;
using outbox::core::InvalidInput;
using outbox::core::is_reserved_header;
using outbox::core::RequestHeaderInput;
using outbox::core::SigningKey;
using outbox::core::validate_header;

namespace {

// The message of the InvalidInput validate_header() throws; fails the test when none.
std::string header_error(std::string_view name, std::string_view value) {
    try {
        validate_header(name, value);
    } catch (const InvalidInput& e) {
        EXPECT_EQ(e.kind(), InvalidInput::Kind::InvalidValue);
        EXPECT_FALSE(e.hint().empty());
        return e.what();
    }
    ADD_FAILURE() << "no error for header \"" << name << "\"";
    return {};
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

RequestHeaderInput standard_input() {
    RequestHeaderInput in;
    in.msg_id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    in.timestamp = 1614265330;
    in.body = "{\"test\": 2432232314}";
    in.user_agent = "outbox/0.1.0";
    return in;
}

}  // namespace

TEST(ReservedHeaders, CaseInsensitive) {
    for (const char* name : {"webhook-id", "Webhook-Signature", "WEBHOOK-TIMESTAMP", "webhook-anything", "webhook-",
                             "content-type", "Content-Length", "HOST", "transfer-encoding", "Connection", "expect",
                             "TE", "trailer", "Upgrade", "Keep-Alive"})
        EXPECT_TRUE(is_reserved_header(name)) << name;
    for (const char* name : {"x-tenant", "x-webhook-id", "webhook", "webhookid", "tee", "content-type-x", "hosts",
                             "authorization"})
        EXPECT_FALSE(is_reserved_header(name)) << name;
}

TEST(ValidateHeader, AcceptsTokensAndPlainValues) {
    EXPECT_NO_THROW(validate_header("x-tenant", "acme"));
    EXPECT_NO_THROW(validate_header("X-Trace", ""));
    EXPECT_NO_THROW(validate_header("Authorization", "Bearer abc\tdef \xC3\xBC"));
    EXPECT_NO_THROW(validate_header("!#$%&'*+-.^_`|~aZ09", "v"));
    EXPECT_NO_THROW(validate_header(std::string(256, 'h'), "v"));
    EXPECT_NO_THROW(validate_header("x-big", std::string(8192, 'v')));
}

TEST(ValidateHeader, RefusesNamesThatAreNotTokens) {
    EXPECT_TRUE(contains(header_error("", "v"), "empty"));
    for (const char* name : {"bad name", "x:a", "x(a)", "x\"a", "x/a", "x@a", "x[a]", "x{a}", "x=a", "x,a", "x;a",
                             "x\\a", "x?a", "x\ta", "x\xC3\xA9"})
        EXPECT_TRUE(contains(header_error(name, "v"), "invalid header name")) << name;
    EXPECT_TRUE(contains(header_error(std::string_view("x\0a", 3), "v"), "invalid header name"));
    EXPECT_TRUE(contains(header_error(std::string(257, 'h'), "v"), "invalid header name"));
    EXPECT_TRUE(contains(header_error("bad name", "v"), "\"bad name\""));
}

TEST(ValidateHeader, RefusesReservedNames) {
    const std::string message = header_error("Webhook-Signature", "v1,forged");
    EXPECT_TRUE(contains(message, "reserved"));
    EXPECT_TRUE(contains(message, "Webhook-Signature"));
    EXPECT_TRUE(contains(header_error("content-length", "1"), "reserved"));
}

TEST(ValidateHeader, RefusesLineBreaksAndNulInValues) {
    EXPECT_TRUE(contains(header_error("x-a", "line\r\nInjected: yes"), "x-a"));
    header_error("x-a", "line\nbreak");
    header_error("x-a", "line\rbreak");
    header_error("x-a", std::string_view("nul\0byte", 8));
}

TEST(ValidateHeader, RefusesTooLongValues) {
    EXPECT_TRUE(contains(header_error("x-big", std::string(8193, 'v')), "too long"));
}

TEST(RequestHeaders, ExactListWithSignature) {
    std::vector<SigningKey> keys = {SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")};
    std::vector<Header> endpoint = {{"X-Region", "eu"}, {"X-Tenant", "default"}};
    std::vector<Header> event = {{"x-tenant", "acme"}, {"X-Trace", "abc"}};
    RequestHeaderInput in = standard_input();
    in.keys = keys;
    in.endpoint_headers = endpoint;
    in.event_headers = event;
    EXPECT_EQ(build_request_headers(in), (std::vector<std::string>{
                                             "content-type: application/json",
                                             "user-agent: outbox/0.1.0",
                                             "webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek",
                                             "webhook-timestamp: 1614265330",
                                             "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                                             "x-region: eu",
                                             "x-tenant: acme",
                                             "x-trace: abc",
                                             "expect:",
                                         }));
}

TEST(RequestHeaders, NoSignatureWithoutKeys) {
    RequestHeaderInput in = standard_input();
    EXPECT_EQ(build_request_headers(in), (std::vector<std::string>{
                                             "content-type: application/json",
                                             "user-agent: outbox/0.1.0",
                                             "webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek",
                                             "webhook-timestamp: 1614265330",
                                             "expect:",
                                         }));
}

TEST(RequestHeaders, TwoKeysGiveTwoSignatures) {
    std::vector<SigningKey> keys = {SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                                    SigningKey::parse("whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")};
    RequestHeaderInput in = standard_input();
    in.keys = keys;
    std::vector<std::string> lines = build_request_headers(in);
    ASSERT_EQ(lines.size(), 6u);
    EXPECT_EQ(lines[4],
              "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= "
              "v1,frM35V2Z51bxs4v81I6TpLnscXkhXtKLP/7WPYVyj3A=");
}

TEST(RequestHeaders, EventHeaderReplacesEndpointHeaderCaseInsensitively) {
    std::vector<Header> endpoint = {{"X-A", "endpoint"}, {"x-b", "endpoint"}};
    std::vector<Header> event = {{"x-a", "event"}};
    RequestHeaderInput in = standard_input();
    in.endpoint_headers = endpoint;
    in.event_headers = event;
    std::vector<std::string> lines = build_request_headers(in);
    ASSERT_EQ(lines.size(), 7u);
    EXPECT_EQ(lines[4], "x-b: endpoint");
    EXPECT_EQ(lines[5], "x-a: event");
    EXPECT_EQ(lines.back(), "expect:");
}

TEST(RequestHeaders, EmptyValuesUseLibcurlsEmptyHeaderForm) {
    // "x-empty:" would make libcurl drop the header; "x-empty;" sends it empty.
    std::vector<Header> event = {{"X-Empty", ""}};
    RequestHeaderInput in = standard_input();
    in.event_headers = event;
    std::vector<std::string> lines = build_request_headers(in);
    ASSERT_EQ(lines.size(), 6u);
    EXPECT_EQ(lines[4], "x-empty;");
}
