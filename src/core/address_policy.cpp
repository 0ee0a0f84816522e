#include "address_policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "error.hpp"
#include "excerpt.hpp"

namespace outbox::core {

namespace {

using Bytes = std::array<std::uint8_t, 16>;

// True when the first `bits` bits of a and b are equal.
bool prefix_equal(const std::uint8_t* a, const std::uint8_t* b, int bits) {
    int whole = bits / 8;
    if (std::memcmp(a, b, static_cast<std::size_t>(whole)) != 0) return false;
    int rest = bits % 8;
    if (rest == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

struct Range {
    Bytes network;  // IPv4 ranges use the first 4 bytes
    int prefix;
    const char* name;
};

constexpr Bytes v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return {a, b, c, d};
}

// Checked in order: the first match names the range, so single addresses
// come before the ranges that hold them.
constexpr Range kV4Ranges[] = {
    {v4(255, 255, 255, 255), 32, "broadcast"},
    {v4(169, 254, 169, 254), 32, "cloud metadata"},
    {v4(0, 0, 0, 0), 8, "this network (0.0.0.0/8)"},
    {v4(10, 0, 0, 0), 8, "private (RFC 1918)"},
    {v4(100, 64, 0, 0), 10, "CGNAT (RFC 6598)"},
    {v4(127, 0, 0, 0), 8, "loopback"},
    {v4(169, 254, 0, 0), 16, "link-local"},
    {v4(172, 16, 0, 0), 12, "private (RFC 1918)"},
    {v4(192, 0, 0, 0), 24, "IETF protocol assignments (192.0.0.0/24)"},
    {v4(192, 0, 2, 0), 24, "documentation (192.0.2.0/24)"},
    {v4(192, 88, 99, 0), 24, "6to4 relay anycast (192.88.99.0/24)"},
    {v4(192, 168, 0, 0), 16, "private (RFC 1918)"},
    {v4(198, 18, 0, 0), 15, "benchmarking (198.18.0.0/15)"},
    {v4(198, 51, 100, 0), 24, "documentation (198.51.100.0/24)"},
    {v4(203, 0, 113, 0), 24, "documentation (203.0.113.0/24)"},
    {v4(224, 0, 0, 0), 4, "multicast"},
    {v4(240, 0, 0, 0), 4, "reserved"},
};

// IPv6 ranges that carry no IPv4 address (those are handled in
// embedded_ipv4()); ::/128 and ::1/128 are matched before the embedded forms
// since they lie inside ::/96.
constexpr Range kV6Ranges[] = {
    {{}, 128, "unspecified"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback"},
    {{0x01, 0x00}, 64, "discard (100::/64)"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation (2001:db8::/32)"},
    {{0x3f, 0xff}, 20, "documentation (3fff::/20)"},
    {{0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}, 128, "cloud metadata"},
    {{0xfc}, 7, "unique local (fc00::/7)"},
    {{0xfe, 0x80}, 10, "link-local"},
    {{0xfe, 0xc0}, 10, "site-local (fec0::/10)"},
    {{0xff}, 8, "multicast"},
};

constexpr Bytes kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
constexpr Bytes kNat64 = {0x00, 0x64, 0xff, 0x9b};
constexpr Bytes kNat64Local = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};
constexpr Bytes k6to4 = {0x20, 0x02};
constexpr Bytes kGlobalUnicast = {0x20};

bool in(const Bytes& addr, const Bytes& network, int prefix) {
    return prefix_equal(addr.data(), network.data(), prefix);
}

bool is_mapped(const Bytes& addr) { return in(addr, kMapped, 96); }

std::optional<std::string> v4_special_range(const std::uint8_t* four) {
    for (const Range& range : kV4Ranges)
        if (prefix_equal(four, range.network.data(), range.prefix)) return range.name;
    return std::nullopt;
}

// The message names the entry and what is wrong with it: the list is long
// and comes from postgresql.conf, where the user has to find it again.
[[noreturn]] void bad_network(std::string_view entry, std::string_view why) {
    throw InvalidInput(InvalidInput::Kind::InvalidValue,
                       fmt::format("invalid network \"{}\" in outbox.allowed_networks: {}", excerpt(entry), why), {},
                       "List networks in CIDR notation, separated by commas, e.g. "
                       "'127.0.0.1/32, 10.0.0.0/8, ::1/128'.");
}

Cidr parse_cidr(std::string_view entry) {
    std::size_t slash = entry.find('/');
    std::optional<IpAddress> addr = IpAddress::parse(entry.substr(0, slash));
    if (!addr) bad_network(entry, "not an IP address");
    const int max = addr->v4 ? 32 : 128;
    int prefix = max;
    if (slash != std::string_view::npos) {
        std::string_view digits = entry.substr(slash + 1);
        bool numeric = !digits.empty() && std::all_of(digits.begin(), digits.end(),
                                                      [](char c) { return c >= '0' && c <= '9'; });
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        if (!numeric || ec == std::errc::invalid_argument) bad_network(entry, "bad prefix length");
        if (ec == std::errc::result_out_of_range || prefix > max)
            bad_network(entry, fmt::format("prefix length above {}", max));
    }
    return Cidr{*addr, prefix};
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    // The longest IPv6 text form is 45 characters; inet_pton needs a C string.
    char buffer[INET6_ADDRSTRLEN];
    if (text.empty() || text.size() >= sizeof buffer || text.find('\0') != std::string_view::npos)
        return std::nullopt;
    std::memcpy(buffer, text.data(), text.size());
    buffer[text.size()] = '\0';

    IpAddress addr;
    // glibc's inet_pton(AF_INET) takes only four decimal parts: no "127.1",
    // no octal or hex forms that could disguise an address.
    if (inet_pton(AF_INET, buffer, addr.bytes.data()) == 1) {
        addr.v4 = true;
        return addr;
    }
    if (inet_pton(AF_INET6, buffer, addr.bytes.data()) == 1) return addr;
    return std::nullopt;
}

std::optional<IpAddress> IpAddress::from_sockaddr(const sockaddr* sa) {
    if (sa == nullptr) return std::nullopt;
    IpAddress addr;
    if (sa->sa_family == AF_INET) {
        sockaddr_in in4;
        std::memcpy(&in4, sa, sizeof in4);
        addr.v4 = true;
        std::memcpy(addr.bytes.data(), &in4.sin_addr, 4);
        return addr;
    }
    if (sa->sa_family == AF_INET6) {
        sockaddr_in6 in6;
        std::memcpy(&in6, sa, sizeof in6);
        std::memcpy(addr.bytes.data(), &in6.sin6_addr, 16);
        return addr;
    }
    return std::nullopt;
}

std::string IpAddress::to_string() const {
    char buffer[INET6_ADDRSTRLEN];
    if (inet_ntop(v4 ? AF_INET : AF_INET6, bytes.data(), buffer, sizeof buffer) == nullptr) return {};
    return buffer;
}

bool Cidr::contains(const IpAddress& addr) const {
    if (network.v4) {
        if (addr.v4) return prefix_equal(addr.bytes.data(), network.bytes.data(), prefix);
        if (is_mapped(addr.bytes)) return prefix_equal(addr.bytes.data() + 12, network.bytes.data(), prefix);
        return false;
    }
    if (addr.v4) {
        // An IPv6 CIDR such as ::ffff:10.0.0.0/104 covers IPv4 addresses too.
        Bytes mapped = kMapped;
        std::copy(addr.bytes.begin(), addr.bytes.begin() + 4, mapped.begin() + 12);
        return prefix_equal(mapped.data(), network.bytes.data(), prefix);
    }
    return prefix_equal(addr.bytes.data(), network.bytes.data(), prefix);
}

NetworkList NetworkList::parse(std::string_view text) {
    NetworkList list;
    constexpr std::string_view separators = ", \t\r\n";
    while (!text.empty()) {
        std::size_t start = text.find_first_not_of(separators);
        if (start == std::string_view::npos) break;
        text.remove_prefix(start);
        std::size_t end = std::min(text.find_first_of(separators), text.size());
        list.cidrs_.push_back(parse_cidr(text.substr(0, end)));
        text.remove_prefix(end);
    }
    return list;
}

bool NetworkList::contains(const IpAddress& addr) const {
    return std::any_of(cidrs_.begin(), cidrs_.end(), [&](const Cidr& cidr) { return cidr.contains(addr); });
}

std::optional<std::string> special_range(const IpAddress& addr) {
    if (addr.v4) return v4_special_range(addr.bytes.data());

    const Bytes& b = addr.bytes;
    for (const Range& range : kV6Ranges)
        if (in(b, range.network, range.prefix)) return range.name;

    // Forms that carry an IPv4 address reach that address (through the
    // kernel, a NAT64 gateway or a 6to4 relay), so that address decides.
    if (is_mapped(b) || in(b, Bytes{}, 96) || in(b, kNat64, 96)) return v4_special_range(b.data() + 12);
    if (in(b, kNat64Local, 48)) {
        // The operator picks the prefix length inside 64:ff9b:1::/48; only
        // the /96 layout can be decoded without knowing it. Any other layout
        // is refused rather than guessed at.
        if (in(b, kNat64Local, 96)) return v4_special_range(b.data() + 12);
        return "NAT64 local-use (64:ff9b:1::/48)";
    }
    if (in(b, k6to4, 16)) return v4_special_range(b.data() + 2);
    // Only 2000::/3 is global unicast; the rest of the space is unassigned or
    // reserved and has no business being a webhook's address.
    if (!in(b, kGlobalUnicast, 3)) return "reserved";
    return std::nullopt;
}

bool address_allowed(const IpAddress& addr, const NetworkList& allowed) {
    return !special_range(addr) || allowed.contains(addr);
}

}  // namespace outbox::core
