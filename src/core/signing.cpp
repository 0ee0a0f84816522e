#include "signing.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fmt/format.h>

#include <stdexcept>

#include "error.hpp"

namespace outbox::core {

namespace {

constexpr std::string_view kPrefix = "whsec_";
constexpr const char* kSecretHint =
    "A signing secret is \"whsec_\" followed by the base64 encoding (with padding) of the key bytes.";

[[noreturn]] void bad_secret(std::string_view what) {
    // Never quote the secret: messages end up in logs and client errors.
    throw InvalidInput(InvalidInput::Kind::InvalidValue, fmt::format("invalid signing secret: {}", what),
                       {}, kSecretHint);
}

std::string base64_encode(const unsigned char* data, std::size_t len) {
    std::string out(4 * ((len + 2) / 3), '\0');
    // EVP_EncodeBlock writes a terminating NUL after the text: give it room.
    out.resize(out.size() + 1);
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(len));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

bool is_base64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

// EVP_DecodeBlock is lenient: it skips surrounding white space, ignores a
// trailing '-', and decodes '=' anywhere as zero bits. A key must be exact, so
// the text is checked first: whole quads, the alphabet, at most two '='
// and only at the end.
bool is_canonical_base64(std::string_view text) {
    if (text.size() % 4 != 0) return false;
    std::size_t padding = 0;
    while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') padding++;
    for (std::size_t i = 0; i < text.size() - padding; i++)
        if (!is_base64_char(text[i])) return false;
    return true;
}

}  // namespace

// HMAC-SHA256 with the key set once: OpenSSL's one-shot HMAC() fetches the
// algorithm and makes a context for every signature, three quarters of what
// signing a small payload costs. Re-initialized with no key, the context
// starts a new MAC with the key it has.
struct SigningKey::Mac {
    EVP_MAC* mac = nullptr;
    EVP_MAC_CTX* ctx = nullptr;

    explicit Mac(const std::vector<unsigned char>& key) {
        mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
        ctx = mac ? EVP_MAC_CTX_new(mac) : nullptr;
        char digest[] = "SHA256";
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
        if (ctx == nullptr || EVP_MAC_init(ctx, key.data(), key.size(), params) != 1) {
            release();
            throw std::runtime_error("HMAC-SHA256 is not available");
        }
    }
    ~Mac() { release(); }
    Mac(const Mac&) = delete;
    Mac& operator=(const Mac&) = delete;

    void release() {
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
        ctx = nullptr;
        mac = nullptr;
    }
};

SigningKey::SigningKey(std::vector<unsigned char> key)
    : key_(std::move(key)), mac_(std::make_shared<Mac>(key_)) {}

SigningKey SigningKey::parse(std::string_view secret) {
    if (!secret.starts_with(kPrefix)) bad_secret("missing \"whsec_\" prefix");
    std::string_view encoded = secret.substr(kPrefix.size());
    if (encoded.empty()) bad_secret("empty key after \"whsec_\"");
    if (!is_canonical_base64(encoded)) bad_secret("the text after \"whsec_\" is not valid base64");

    std::vector<unsigned char> key(encoded.size() / 4 * 3);
    int n = EVP_DecodeBlock(key.data(), reinterpret_cast<const unsigned char*>(encoded.data()),
                            static_cast<int>(encoded.size()));
    if (n < 0) bad_secret("the text after \"whsec_\" is not valid base64");
    // EVP_DecodeBlock counts each '=' as a decoded zero byte.
    std::size_t padding = encoded.size() - encoded.find_last_not_of('=') - 1;
    key.resize(static_cast<std::size_t>(n) - padding);
    if (key.empty()) bad_secret("empty key after \"whsec_\"");
    return SigningKey(std::move(key));
}

std::string SigningKey::sign(std::string_view msg_id, int64_t timestamp, std::string_view body) const {
    std::string prefix = fmt::format("{}.{}.", msg_id, timestamp);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    EVP_MAC_CTX* ctx = mac_->ctx;
    if (EVP_MAC_init(ctx, nullptr, 0, nullptr) != 1 ||
        EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(prefix.data()), prefix.size()) != 1 ||
        EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(body.data()), body.size()) != 1 ||
        EVP_MAC_final(ctx, mac, &mac_len, sizeof mac) != 1)
        throw std::runtime_error("HMAC-SHA256 failed");
    return fmt::format("v1,{}", base64_encode(mac, mac_len));
}

std::string signature_header(std::span<const SigningKey> keys, std::string_view msg_id, int64_t timestamp,
                             std::string_view body) {
    std::string header;
    for (const SigningKey& key : keys) {
        if (!header.empty()) header += ' ';
        header += key.sign(msg_id, timestamp, body);
    }
    return header;
}

std::string generate_secret() {
    unsigned char key[24];
    if (RAND_bytes(key, sizeof key) != 1) throw std::runtime_error("could not generate random bytes");
    return fmt::format("{}{}", kPrefix, base64_encode(key, sizeof key));
}

}  // namespace outbox::core
