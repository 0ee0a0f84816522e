// Event ids: UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits.
// Time order keeps the events index append-mostly.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

namespace outbox::core {

using Uuid = std::array<std::uint8_t, 16>;

// Random bits from OpenSSL's CSPRNG (drawn in blocks; a fork starts afresh).
Uuid uuid_v7(std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// Lower-case canonical text form, 36 chars.
std::string uuid_to_string(const Uuid& id);

}  // namespace outbox::core
