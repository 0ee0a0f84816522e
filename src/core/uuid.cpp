#include "uuid.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace outbox::core {

Uuid uuid_v7(std::chrono::system_clock::time_point now) {
    Uuid id{};
    if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) throw std::runtime_error("the CSPRNG failed");
    auto ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
    for (int i = 0; i < 6; i++) id[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
    id[6] = static_cast<std::uint8_t>(0x70 | (id[6] & 0x0F));  // version 7
    id[8] = static_cast<std::uint8_t>(0x80 | (id[8] & 0x3F));  // variant 10
    return id;
}

std::string uuid_to_string(const Uuid& id) {
    std::string s;
    s.reserve(36);
    for (std::size_t i = 0; i < id.size(); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += fmt::format("{:02x}", id[i]);
    }
    return s;
}

}  // namespace outbox::core
