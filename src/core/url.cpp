#include "url.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <memory>
#include <string>

#include "error.hpp"
#include "excerpt.hpp"

namespace outbox::core {

namespace {

constexpr std::size_t kMaxUrl = 2048;

InvalidInput bad_url(std::string_view url, std::string_view why) {
    return InvalidInput(InvalidInput::Kind::InvalidValue,
                        fmt::format("invalid endpoint URL \"{}\": {}", excerpt(redact_url(url)), why), {},
                        "Use an absolute http:// or https:// URL, e.g. 'https://hooks.example.com/outbox'.");
}

// True when the URL has this part.
bool has_part(CURLU* handle, CURLUPart part) {
    char* value = nullptr;
    CURLUcode rc = curl_url_get(handle, part, &value, 0);
    bool present = rc == CURLUE_OK && value != nullptr && value[0] != '\0';
    curl_free(value);
    return present;
}

}  // namespace

std::string redact_url(std::string_view url) {
    size_t scheme_end = url.find("://");
    size_t authority = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    // The authority ends at '/', '?' or '#'; but a password typed with a
    // '?' or '#' in it would then show in the message about the URL it
    // broke. Only '/' ends what is hidden (at worst, a query with an '@'
    // and no path before it is hidden too).
    size_t authority_end = url.find('/', authority);
    std::string_view host_part = url.substr(authority, authority_end == std::string_view::npos
                                                           ? std::string_view::npos : authority_end - authority);
    size_t at = host_part.rfind('@');
    if (at == std::string_view::npos) return std::string(url);
    return fmt::format("{}***{}", url.substr(0, authority), url.substr(authority + at));
}

void validate_endpoint_url(std::string_view url) {
    if (url.empty()) throw bad_url(url, "it is empty");
    if (url.size() > kMaxUrl) throw bad_url(url, fmt::format("longer than {} bytes", kMaxUrl));
    for (char c : url)
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) throw bad_url(url, "it contains white space or control characters");
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(), &curl_url_cleanup);
    if (!handle) throw std::bad_alloc();
    std::string text(url);
    CURLUcode rc = curl_url_set(handle.get(), CURLUPART_URL, text.c_str(), 0);
    if (rc != CURLUE_OK) throw bad_url(url, curl_url_strerror(rc));
    char* scheme = nullptr;
    curl_url_get(handle.get(), CURLUPART_SCHEME, &scheme, 0);
    std::string s = scheme ? scheme : "";
    curl_free(scheme);
    if (s != "http" && s != "https") throw bad_url(url, "only http and https are allowed");
    if (!has_part(handle.get(), CURLUPART_HOST)) throw bad_url(url, "it has no host");
    if (has_part(handle.get(), CURLUPART_USER) || has_part(handle.get(), CURLUPART_PASSWORD))
        throw bad_url(url, "credentials in the URL are not allowed; send them in a header");
    if (has_part(handle.get(), CURLUPART_FRAGMENT)) throw bad_url(url, "a fragment (#...) is not sent in a request");
}

}  // namespace outbox::core
