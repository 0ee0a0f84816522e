// Signing secrets as users set them ("whsec_<base64>", src/core/signing.cpp):
// checked by hand before OpenSSL decodes them.
#include <openssl/evp.h>

#include "core/error.hpp"
#include "core/signing.hpp"
#include "fuzz.hpp"

using namespace outbox::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view secret = fuzz::text(data, size);
    try {
        SigningKey key = SigningKey::parse(secret);
        FUZZ_CHECK(!key.bytes().empty(), "a key has bytes");
        // Encoded again, the key reads back the same. (Not always as the same
        // text: "whsec_wh==" is accepted as "whsec_wg==", unused bits set,
        // as the receivers' base64 decoders take it.)
        std::string encoded(4 * ((key.bytes().size() + 2) / 3) + 1, '\0');
        int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()), key.bytes().data(),
                                static_cast<int>(key.bytes().size()));
        encoded.resize(static_cast<std::size_t>(n));
        FUZZ_CHECK(encoded.size() + 6 == secret.size(), "the secret is as long as its key's base64");
        FUZZ_CHECK(SigningKey::parse("whsec_" + encoded).bytes() == key.bytes(), "the key's base64 is the same key");
        FUZZ_CHECK(key.sign("msg", 1, "{}").starts_with("v1,"), "a signature");
    } catch (const InvalidInput& e) {
        std::string_view body = secret.size() > 6 ? secret.substr(6) : std::string_view();
        if (fuzz::secret_like(body))
            FUZZ_CHECK(std::string_view(e.what()).find(body) == std::string_view::npos, "an error never shows the secret");
    }
    return 0;
}
