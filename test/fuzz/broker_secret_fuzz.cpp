// A broker endpoint's secret as a user sets it (outbox.create_endpoint's
// `secret`, src/sink/credentials.cpp): percent-encoded credentials for the
// URL's scheme. The first byte picks the scheme.
#include "core/error.hpp"
#include "fuzz.hpp"
#include "sink/sink.hpp"

using namespace outbox;
using namespace outbox::sink;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static const char* urls[] = {"nats://127.0.0.1/s", "amqp://127.0.0.1/%2F", "redis://127.0.0.1/s", "tls://h/s"};
    std::string_view url = urls[data[0] % 4];
    std::string_view secret = fuzz::text(data + 1, size - 1);
    try {
        Credentials c = credentials_from_secret(url, secret);
        std::string canonical = credentials_secret(c);
        Credentials again = credentials_from_secret(url, canonical.empty() ? secret : canonical);
        FUZZ_CHECK(again.user == c.user && again.password == c.password && again.token == c.token,
                   "the canonical form means the same credentials");
    } catch (const core::InvalidInput& e) {
        if (fuzz::secret_like(secret.substr(secret.find(':') == std::string_view::npos ? 0 : secret.find(':') + 1)))
            FUZZ_CHECK(std::string_view(e.what()).find(secret) == std::string_view::npos, "errors never show the secret");
    }
    return 0;
}
