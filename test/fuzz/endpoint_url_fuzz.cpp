// Endpoint URLs as users type them (src/core/url.cpp): checked with
// libcurl's parser; what an error shows is redacted.
#include "core/error.hpp"
#include "core/url.hpp"
#include "fuzz.hpp"

using namespace outbox::core;

namespace {

// The user:password part of an URL's authority, as redact_url should hide it.
std::string_view userinfo(std::string_view url) {
    std::size_t start = url.find("://");
    if (start == std::string_view::npos) return {};
    start += 3;
    std::size_t end = url.find('/', start);
    std::string_view authority = url.substr(start, end == std::string_view::npos ? end : end - start);
    std::size_t at = authority.rfind('@');
    return at == std::string_view::npos ? std::string_view() : authority.substr(0, at);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view url = fuzz::text(data, size);
    std::string redacted = redact_url(url);
    // The password of user:password, if it could be a secret and is found
    // once in the URL, must not survive.
    std::string_view info = userinfo(url);
    std::string_view secret = info.substr(info.find(':') == std::string_view::npos ? 0 : info.find(':') + 1);
    bool unique = fuzz::secret_like(secret) && url.find(secret) == url.rfind(secret);
    if (unique) FUZZ_CHECK(redacted.find(secret) == std::string::npos, "redact_url hides the userinfo");
    try {
        validate_endpoint_url(url);
    } catch (const InvalidInput& e) {
        if (unique) FUZZ_CHECK(std::string_view(e.what()).find(secret) == std::string_view::npos,
                               "an URL error never shows the userinfo");
    }
    return 0;
}
