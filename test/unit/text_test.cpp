#include "core/text.hpp"

#include <gtest/gtest.h>

using outbox::core::sanitize_text;

TEST(SanitizeText, KeepsValidUtf8) {
    EXPECT_EQ(sanitize_text("plain", false), "plain");
    EXPECT_EQ(sanitize_text("gr\xC3\xBC\xC3\x9F \xE2\x82\xAC \xF0\x9F\x98\x80", false),
              "gr\xC3\xBC\xC3\x9F \xE2\x82\xAC \xF0\x9F\x98\x80");
}

TEST(SanitizeText, ReplacesNulAndInvalidSequences) {
    EXPECT_EQ(sanitize_text(std::string_view("a\0b", 3), false), "a\xEF\xBF\xBD" "b");
    EXPECT_EQ(sanitize_text("\xFF", false), "\xEF\xBF\xBD");
    EXPECT_EQ(sanitize_text("\xC0\xAF", false), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
    EXPECT_EQ(sanitize_text("\xED\xA0\x80", false), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
    EXPECT_EQ(sanitize_text("\xE2\x82", false), "\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated
}

TEST(SanitizeText, AsciiOnly) {
    EXPECT_EQ(sanitize_text("gr\xC3\xBC" "n", true), "gr??n");
    EXPECT_EQ(sanitize_text(std::string_view("a\0", 2), true), "a?");
}
