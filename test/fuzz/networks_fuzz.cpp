// outbox.allowed_networks (a CIDR list) and address literals
// (src/core/address_policy.cpp).
#include "core/address_policy.hpp"
#include "core/error.hpp"
#include "fuzz.hpp"

using namespace outbox::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text = fuzz::text(data, size);
    try {
        NetworkList list = NetworkList::parse(text);
        (void)list.empty();
    } catch (const InvalidInput&) {
    }
    if (auto ip = IpAddress::parse(text)) {
        std::string shown = ip->to_string();
        auto again = IpAddress::parse(shown);
        FUZZ_CHECK(again && again->v4 == ip->v4 && again->bytes == ip->bytes, "an address survives to_string()");
        (void)special_range(*ip);
        NetworkList none;
        FUZZ_CHECK(address_allowed(*ip, NetworkList::parse(shown)), "an address is inside its own list");
        (void)address_allowed(*ip, none);
    }
    return 0;
}
