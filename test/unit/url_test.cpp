#include "core/url.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

using outbox::core::InvalidInput;
using outbox::core::validate_endpoint_url;

TEST(EndpointUrl, AcceptsHttpAndHttps) {
    EXPECT_NO_THROW(validate_endpoint_url("https://hooks.example.com/outbox"));
    EXPECT_NO_THROW(validate_endpoint_url("http://127.0.0.1:8080/hook?tenant=1"));
    EXPECT_NO_THROW(validate_endpoint_url("http://[::1]:9000/"));
    EXPECT_NO_THROW(validate_endpoint_url("HTTPS://Example.COM"));
}

TEST(EndpointUrl, RefusesOtherSchemesAndShapes) {
    for (const char* url : {"", "ftp://example.com/x", "file:///etc/passwd", "gopher://x", "example.com/hook",
                            "https://", "http://user:pw@example.com/", "http://user@example.com/",
                            "https://example.com/a b", "https://example.com/\n", "https://example.com/#frag",
                            "javascript:alert(1)"}) {
        EXPECT_THROW(validate_endpoint_url(url), InvalidInput) << url;
    }
    EXPECT_THROW(validate_endpoint_url("https://example.com/" + std::string(2100, 'a')), InvalidInput);
}

TEST(EndpointUrl, MessageNamesTheProblem) {
    try {
        validate_endpoint_url("ftp://example.com/x");
        FAIL() << "no exception";
    } catch (const InvalidInput& e) {
        EXPECT_NE(std::string(e.what()).find("only http and https"), std::string::npos) << e.what();
        EXPECT_FALSE(e.hint().empty());
    }
}

TEST(EndpointUrl, ErrorsNeverShowCredentials) {
    for (const char* url : {"http://user:s3cret-pw@example.com/", "ftp://user:s3cret-pw@example.com/x",
                            "https://user:s3cret-pw@example.com/#frag", "http://a:s3cret-pw@b@example.com/p@th"}) {
        try {
            validate_endpoint_url(url);
            ADD_FAILURE() << "accepted " << url;
        } catch (const InvalidInput& e) {
            EXPECT_EQ(std::string(e.what()).find("s3cret-pw"), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("***@example.com"), std::string::npos) << e.what();
        }
    }
}

TEST(EndpointUrl, Redaction) {
    using outbox::core::redact_url;
    EXPECT_EQ(redact_url("http://u:p@host:8080/a?b=c@d"), "http://***@host:8080/a?b=c@d");
    EXPECT_EQ(redact_url("https://host/path@x"), "https://host/path@x");
    EXPECT_EQ(redact_url("amqp://guest:guest@127.0.0.1:5672/vhost"), "amqp://***@127.0.0.1:5672/vhost");
    EXPECT_EQ(redact_url("no-scheme:secret@host"), "***@host");
    // A password with a '#' or '?' (not percent-encoded) ends the authority
    // for a URL parser; it must not show in the error about that URL.
    EXPECT_EQ(redact_url("nats://user:secret#password@127.0.0.1/s"), "nats://***@127.0.0.1/s");
    EXPECT_EQ(redact_url("https://user:pass?word@host/hook"), "https://***@host/hook");
}
