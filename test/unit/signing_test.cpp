#include "core/signing.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.hpp"

using outbox::core::generate_secret;
using outbox::core::InvalidInput;
using outbox::core::signature_header;
using outbox::core::SigningKey;

namespace {

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* kMsgId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kTimestamp = 1614265330;
constexpr const char* kBody = "{\"test\": 2432232314}";

// The bytes 1..32, base64-encoded (expected signatures computed with Python's hmac).
constexpr const char* kSecondSecret = "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

// Returns the exception parse() throws, failing the test when it throws none.
InvalidInput parse_error(const std::string& secret) {
    try {
        SigningKey::parse(secret);
    } catch (const InvalidInput& e) {
        return e;
    }
    ADD_FAILURE() << "no error for " << secret;
    return InvalidInput(InvalidInput::Kind::NullValue, "");
}

}  // namespace

TEST(Signing, StandardWebhooksTestVector) {
    SigningKey key = SigningKey::parse(kSecret);
    EXPECT_EQ(key.sign(kMsgId, kTimestamp, kBody), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(Signing, SignatureDependsOnEveryPart) {
    SigningKey key = SigningKey::parse(kSecret);
    const std::string reference = key.sign(kMsgId, kTimestamp, kBody);
    EXPECT_NE(key.sign("msg_other", kTimestamp, kBody), reference);
    EXPECT_NE(key.sign(kMsgId, kTimestamp + 1, kBody), reference);
    EXPECT_NE(key.sign(kMsgId, kTimestamp, "{\"test\": 2432232315}"), reference);
}

TEST(Signing, HeaderHasOneSignaturePerKeyInOrder) {
    std::vector<SigningKey> keys = {SigningKey::parse(kSecret), SigningKey::parse(kSecondSecret)};
    EXPECT_EQ(signature_header(keys, kMsgId, kTimestamp, kBody),
              "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= "
              "v1,frM35V2Z51bxs4v81I6TpLnscXkhXtKLP/7WPYVyj3A=");
}

TEST(Signing, HeaderIsEmptyWithoutKeys) {
    EXPECT_EQ(signature_header({}, kMsgId, kTimestamp, kBody), "");
}

TEST(Signing, ParsedKeyBytesExcludePadding) {
    EXPECT_EQ(SigningKey::parse("whsec_AAE=").bytes(), (std::vector<unsigned char>{0x00, 0x01}));
    EXPECT_EQ(SigningKey::parse("whsec_AA==").bytes(), (std::vector<unsigned char>{0x00}));
    EXPECT_EQ(SigningKey::parse("whsec_AAEC").bytes(), (std::vector<unsigned char>{0x00, 0x01, 0x02}));
    EXPECT_EQ(SigningKey::parse(kSecondSecret).bytes().size(), 32u);
    // A padding byte counted as key material would change the HMAC.
    EXPECT_EQ(SigningKey::parse("whsec_AAE=").sign(kMsgId, kTimestamp, kBody),
              "v1,+767NbQcCAmkGjkOVH5WcMfE2agCeIL9OOEBsLC+FI4=");
}

TEST(Signing, BadSecretsAreRefusedWithoutQuotingThem) {
    const std::string base64 = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    struct Case {
        std::string secret;
        std::string message_part;
    };
    const std::vector<Case> cases = {
        {base64, "prefix"},
        {"WHSEC_" + base64, "prefix"},
        {"", "prefix"},
        {"whsec_", "empty"},
        {"whsec_" + base64 + "!", "base64"},
        {"whsec_" + base64.substr(1), "base64"},       // not whole quads
        {"whsec_MfKQ=r8G", "base64"},                    // padding inside
        {"whsec_M===", "base64"},                        // three '='
        {"whsec_ " + base64, "base64"},                  // OpenSSL would skip the space
        {"whsec_" + base64 + "-", "base64"},             // OpenSSL would ignore a trailing '-'
        {"whsec_" + base64.substr(0, 28) + "-_-_", "base64"},  // base64url is not accepted
    };
    for (const Case& c : cases) {
        InvalidInput e = parse_error(c.secret);
        EXPECT_EQ(e.kind(), InvalidInput::Kind::InvalidValue) << c.secret;
        EXPECT_NE(std::string(e.what()).find(c.message_part), std::string::npos) << e.what();
        EXPECT_FALSE(e.hint().empty());
        const std::string all = std::string(e.what()) + e.detail() + e.hint();
        EXPECT_EQ(all.find(base64.substr(0, 8)), std::string::npos) << all;
    }
}

TEST(Signing, GeneratedSecretsParseAndDiffer) {
    const std::string a = generate_secret();
    const std::string b = generate_secret();
    EXPECT_EQ(a.substr(0, 6), "whsec_");
    EXPECT_EQ(a.size(), 6u + 32u);  // 24 bytes -> 32 base64 characters, no padding
    EXPECT_EQ(SigningKey::parse(a).bytes().size(), 24u);
    EXPECT_EQ(SigningKey::parse(b).bytes().size(), 24u);
    EXPECT_NE(a, b);
}
