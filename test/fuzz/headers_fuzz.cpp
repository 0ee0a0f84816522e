// What enqueue() and create_endpoint() check by hand: header names and
// values (src/core/headers.cpp), topics, keys and topic patterns
// (src/core/validate.cpp). Input: name NUL value NUL topic.
#include <array>

#include "core/error.hpp"
#include "core/headers.hpp"
#include "core/validate.hpp"
#include "fuzz.hpp"

using namespace outbox::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto p = fuzz::parts(fuzz::text(data, size), 3);
    std::string_view name = p[0], value = p[1], topic = p[2];
    bool header_ok = true;
    try {
        validate_header(name, value);
    } catch (const InvalidInput&) {
        header_ok = false;
    }
    if (header_ok) {
        FUZZ_CHECK(!is_reserved_header(name), "a valid header is not reserved");
        std::array<Header, 1> headers{Header{std::string(name), std::string(value)}};
        RequestHeaderInput in;
        in.msg_id = "msg_1";
        in.timestamp = 1767225600;
        in.body = "{}";
        in.user_agent = "outbox/fuzz";
        in.endpoint_headers = headers;
        in.event_headers = headers;
        for (const std::string& line : build_request_headers(in))
            FUZZ_CHECK(line.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos,
                       "no header line breaks the request");
    }
    bool topic_ok = true;
    try {
        validate_topic(topic);
    } catch (const InvalidInput&) {
        topic_ok = false;
    }
    try {
        validate_key(topic);
    } catch (const InvalidInput&) {
    }
    bool pattern_ok = true;
    try {
        validate_topic_pattern(name);
    } catch (const InvalidInput&) {
        pattern_ok = false;
    }
    if (topic_ok) {
        FUZZ_CHECK(topic_matches(topic, topic), "a topic matches itself");
        FUZZ_CHECK(topic_matches("*", topic) == !is_reserved_topic(topic), "* matches every topic but outbox.*");
    }
    if (pattern_ok && topic_ok) topic_matches(name, topic);
    return 0;
}
