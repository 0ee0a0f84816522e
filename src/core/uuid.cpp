#include "uuid.hpp"

#include <openssl/rand.h>

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace outbox::core {

Uuid uuid_v7(std::chrono::system_clock::time_point now) {
    Uuid id{};
    if (RAND_bytes(id.data() + 6, static_cast<int>(id.size() - 6)) != 1)
        throw std::runtime_error("could not generate random bytes");

    // 48 bits of Unix milliseconds, big-endian; times before 1970 (a broken
    // clock) become 0 rather than wrapping around.
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    auto unix_ms = static_cast<std::uint64_t>(std::max<decltype(ms)>(ms, 0));
    for (int i = 0; i < 6; i++) id[i] = static_cast<std::uint8_t>(unix_ms >> (8 * (5 - i)));

    id[6] = static_cast<std::uint8_t>(0x70 | (id[6] & 0x0F));  // version 7
    id[8] = static_cast<std::uint8_t>(0x80 | (id[8] & 0x3F));  // variant 10 (RFC 9562)
    return id;
}

std::string uuid_to_string(const Uuid& id) {
    return fmt::format("{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
                       "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                       id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11],
                       id[12], id[13], id[14], id[15]);
}

}  // namespace outbox::core
