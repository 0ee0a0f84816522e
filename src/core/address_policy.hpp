// Which IP addresses the worker may connect to. Pure functions, no traffic:
// the HTTP client calls address_allowed() on every resolved address before it
// opens a socket.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sockaddr;

namespace outbox::core {

// An IPv4 or IPv6 address. IPv4 is kept as such (v4 = true, first 4 bytes).
struct IpAddress {
    bool v4 = false;
    std::array<std::uint8_t, 16> bytes{};

    static std::optional<IpAddress> parse(std::string_view text);  // no brackets, no zone
    static std::optional<IpAddress> from_sockaddr(const sockaddr* sa);
    std::string to_string() const;
};

struct Cidr {
    IpAddress network;
    int prefix = 0;
    bool contains(const IpAddress& addr) const;  // an IPv4 CIDR also matches the IPv4-mapped IPv6 form
};

// A comma/space separated CIDR list as in outbox.allowed_networks
// ("127.0.0.1/32, ::1/128"; a bare address means a single host). Throws
// InvalidInput naming the bad entry.
class NetworkList {
public:
    static NetworkList parse(std::string_view text);
    bool contains(const IpAddress& addr) const;
    bool empty() const noexcept { return cidrs_.empty(); }

private:
    std::vector<Cidr> cidrs_;
};

// The special-purpose range an address falls in, or nullopt for an ordinary
// public address. Names are short and readable, e.g. "loopback",
// "private (RFC 1918)", "link-local", "cloud metadata", "CGNAT (RFC 6598)",
// "this network (0.0.0.0/8)", "multicast", "broadcast", "reserved",
// "unspecified", "unique local (fc00::/7)", ... IPv4-mapped (::ffff:0:0/96),
// IPv4-compatible (::/96), NAT64 (64:ff9b::/96 and 64:ff9b:1::/48) and 6to4
// (2002::/16) addresses are judged by the IPv4 address they carry.
std::optional<std::string> special_range(const IpAddress& addr);

// True when the address is public, or inside `allowed`.
bool address_allowed(const IpAddress& addr, const NetworkList& allowed);

}  // namespace outbox::core
