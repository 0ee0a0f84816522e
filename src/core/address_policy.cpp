#include "address_policy.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "error.hpp"

namespace outbox::core {

namespace {

IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    IpAddress addr;
    addr.v4 = true;
    addr.bytes[0] = a, addr.bytes[1] = b, addr.bytes[2] = c, addr.bytes[3] = d;
    return addr;
}

// True when the first `prefix` bits of a and b are equal.
bool prefix_equal(const std::uint8_t* a, const std::uint8_t* b, int prefix) {
    int full = prefix / 8, rest = prefix % 8;
    if (std::memcmp(a, b, static_cast<std::size_t>(full)) != 0) return false;
    if (rest == 0) return true;
    std::uint8_t mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

struct Range {
    const char* network;
    int prefix;
    const char* name;
};

// Most specific first: the first match names the range.
constexpr Range kV4Ranges[] = {
    {"169.254.169.254", 32, "cloud metadata"},
    {"255.255.255.255", 32, "broadcast"},
    {"0.0.0.0", 8, "this network (0.0.0.0/8)"},
    {"10.0.0.0", 8, "private (RFC 1918)"},
    {"100.64.0.0", 10, "CGNAT (RFC 6598)"},
    {"127.0.0.0", 8, "loopback"},
    {"169.254.0.0", 16, "link-local"},
    {"172.16.0.0", 12, "private (RFC 1918)"},
    {"192.0.0.0", 24, "IETF protocol assignments"},
    {"192.0.2.0", 24, "documentation (TEST-NET-1)"},
    {"192.88.99.0", 24, "6to4 relay anycast"},
    {"192.168.0.0", 16, "private (RFC 1918)"},
    {"198.18.0.0", 15, "benchmarking"},
    {"198.51.100.0", 24, "documentation (TEST-NET-2)"},
    {"203.0.113.0", 24, "documentation (TEST-NET-3)"},
    {"224.0.0.0", 4, "multicast"},
    {"240.0.0.0", 4, "reserved"},
};

constexpr Range kV6Ranges[] = {
    {"::", 128, "unspecified"},
    {"::1", 128, "loopback"},
    {"100::", 64, "discard"},
    {"2001:db8::", 32, "documentation"},
    {"fc00::", 7, "unique local (fc00::/7)"},
    {"fe80::", 10, "link-local"},
    {"fec0::", 10, "site-local (deprecated)"},
    {"ff00::", 8, "multicast"},
};

// IPv6 forms that carry an IPv4 address, judged by that address.
std::optional<IpAddress> embedded_v4(const IpAddress& a) {
    const std::uint8_t* b = a.bytes.data();
    static const std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    static const std::uint8_t compat[12] = {0};
    static const std::uint8_t nat64[12] = {0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
    static const std::uint8_t nat64_local[6] = {0x00, 0x64, 0xFF, 0x9B, 0x00, 0x01};
    if (std::memcmp(b, mapped, 12) == 0 || std::memcmp(b, nat64, 12) == 0)
        return v4(b[12], b[13], b[14], b[15]);
    // ::/96 (IPv4-compatible) except :: and ::1, which are ranges of their own.
    if (std::memcmp(b, compat, 12) == 0 && !(b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] <= 1))
        return v4(b[12], b[13], b[14], b[15]);
    // 64:ff9b:1::/48 (local-use NAT64): the IPv4 address is in the last 32 bits.
    if (std::memcmp(b, nat64_local, 6) == 0) return v4(b[12], b[13], b[14], b[15]);
    // 2002::/16 (6to4): the IPv4 address follows the prefix.
    if (b[0] == 0x20 && b[1] == 0x02) return v4(b[2], b[3], b[4], b[5]);
    return std::nullopt;
}

Cidr parse_cidr(std::string_view entry) {
    auto bad = [&](const std::string& why) {
        return InvalidInput(InvalidInput::Kind::InvalidValue,
                            fmt::format("invalid network \"{}\" in outbox.allowed_networks: {}", entry, why), {},
                            "List networks in CIDR notation, separated by commas, e.g. "
                            "'127.0.0.1/32, 10.0.0.0/8, ::1/128'.");
    };
    std::size_t slash = entry.find('/');
    auto addr = IpAddress::parse(entry.substr(0, slash));
    if (!addr) throw bad("not an IP address");
    int max = addr->v4 ? 32 : 128;
    int prefix = max;
    if (slash != std::string_view::npos) {
        std::string_view digits = entry.substr(slash + 1);
        if (digits.empty() || digits.size() > 3) throw bad("bad prefix length");
        prefix = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') throw bad("bad prefix length");
            prefix = prefix * 10 + (c - '0');
        }
        if (prefix > max) throw bad(fmt::format("prefix length above {}", max));
    }
    return Cidr{*addr, prefix};
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    std::string s(text);
    IpAddress addr;
    if (inet_pton(AF_INET, s.c_str(), addr.bytes.data()) == 1) {
        addr.v4 = true;
        return addr;
    }
    if (inet_pton(AF_INET6, s.c_str(), addr.bytes.data()) == 1) return addr;
    return std::nullopt;
}

std::optional<IpAddress> IpAddress::from_sockaddr(const sockaddr* sa) {
    if (sa == nullptr) return std::nullopt;
    IpAddress addr;
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        addr.v4 = true;
        std::memcpy(addr.bytes.data(), &in->sin_addr, 4);
        return addr;
    }
    if (sa->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        std::memcpy(addr.bytes.data(), &in6->sin6_addr, 16);
        return addr;
    }
    return std::nullopt;
}

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(v4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
}

bool Cidr::contains(const IpAddress& addr) const {
    if (network.v4 != addr.v4) {
        // An IPv4 network also covers the IPv4-mapped form of its addresses.
        if (network.v4 && !addr.v4) {
            static const std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
            if (std::memcmp(addr.bytes.data(), mapped, 12) != 0) return false;
            return prefix_equal(network.bytes.data(), addr.bytes.data() + 12, prefix);
        }
        return false;
    }
    return prefix_equal(network.bytes.data(), addr.bytes.data(), prefix);
}

NetworkList NetworkList::parse(std::string_view text) {
    NetworkList list;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ',' || text[i] == ' ' || text[i] == '\t')) i++;
        std::size_t start = i;
        while (i < text.size() && text[i] != ',' && text[i] != ' ' && text[i] != '\t') i++;
        if (i > start) list.cidrs_.push_back(parse_cidr(text.substr(start, i - start)));
    }
    return list;
}

bool NetworkList::contains(const IpAddress& addr) const {
    for (const Cidr& c : cidrs_)
        if (c.contains(addr)) return true;
    return false;
}

std::optional<std::string> special_range(const IpAddress& addr) {
    if (addr.v4) {
        for (const Range& r : kV4Ranges) {
            IpAddress net = *IpAddress::parse(r.network);
            if (prefix_equal(net.bytes.data(), addr.bytes.data(), r.prefix)) return std::string(r.name);
        }
        return std::nullopt;
    }
    if (auto inner = embedded_v4(addr)) {
        if (auto name = special_range(*inner)) return fmt::format("{} (embedded in IPv6)", *name);
        return std::nullopt;
    }
    for (const Range& r : kV6Ranges) {
        IpAddress net = *IpAddress::parse(r.network);
        if (prefix_equal(net.bytes.data(), addr.bytes.data(), r.prefix)) return std::string(r.name);
    }
    return std::nullopt;
}

bool address_allowed(const IpAddress& addr, const NetworkList& allowed) {
    return !special_range(addr) || allowed.contains(addr);
}

}  // namespace outbox::core
