// Addresses here are only parsed and classified; nothing connects anywhere.
#include "core/address_policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/error.hpp"

using outbox::core::address_allowed;
using outbox::core::Cidr;
using outbox::core::InvalidInput;
using outbox::core::IpAddress;
using outbox::core::NetworkList;
using outbox::core::special_range;

namespace {

IpAddress ip(const char* text) {
    std::optional<IpAddress> addr = IpAddress::parse(text);
    if (!addr) {
        ADD_FAILURE() << "cannot parse " << text;
        return {};
    }
    return *addr;
}

struct Expectation {
    const char* address;
    const char* range;  // nullptr: public
};

void expect_ranges(const std::vector<Expectation>& cases) {
    for (const Expectation& c : cases) {
        std::optional<std::string> range = special_range(ip(c.address));
        if (c.range == nullptr)
            EXPECT_EQ(range, std::nullopt) << c.address;
        else
            EXPECT_EQ(range, std::optional<std::string>(c.range)) << c.address;
    }
}

bool allowed(const char* address, const char* networks) {
    return address_allowed(ip(address), NetworkList::parse(networks));
}

// The message of the InvalidInput NetworkList::parse() throws; fails the test when none.
std::string list_error(const char* text) {
    try {
        NetworkList::parse(text);
    } catch (const InvalidInput& e) {
        EXPECT_EQ(e.kind(), InvalidInput::Kind::InvalidValue);
        EXPECT_FALSE(e.hint().empty());
        return e.what();
    }
    ADD_FAILURE() << "no error for \"" << text << "\"";
    return {};
}

std::string quoted(const char* text) { return std::string("\"") + text + "\""; }

constexpr const char* kThisNetwork = "this network (0.0.0.0/8)";
constexpr const char* kPrivate = "private (RFC 1918)";
constexpr const char* kCgnat = "CGNAT (RFC 6598)";
constexpr const char* kUla = "unique local (fc00::/7)";

}  // namespace

TEST(IpAddress, ParsesStrictForms) {
    EXPECT_TRUE(ip("127.0.0.1").v4);
    EXPECT_FALSE(ip("::1").v4);
    EXPECT_FALSE(ip("::ffff:127.0.0.1").v4);  // kept as IPv6; judged by its IPv4
    EXPECT_EQ(ip("10.1.2.3").bytes[0], 10);
    EXPECT_EQ(ip("10.1.2.3").bytes[3], 3);
    for (const char* bad : {"", "127.1", "0x7f.0.0.1", "0177.0.0.1", "2130706433", "256.0.0.1", "1.2.3.4 ", " 1.2.3.4",
                            "[::1]", "fe80::1%eth0", "localhost", "1.2.3.4/32", ":::", "12345::"})
        EXPECT_EQ(IpAddress::parse(bad), std::nullopt) << '"' << bad << '"';
    EXPECT_EQ(IpAddress::parse(std::string_view("1.2.3.4\0", 8)), std::nullopt);
    EXPECT_EQ(IpAddress::parse(std::string(100, '1')), std::nullopt);
}

TEST(IpAddress, ToString) {
    EXPECT_EQ(ip("8.8.8.8").to_string(), "8.8.8.8");
    EXPECT_EQ(ip("2606:4700:4700:0:0:0:0:1111").to_string(), "2606:4700:4700::1111");
    EXPECT_EQ(ip("::FFFF:7f00:1").to_string(), "::ffff:127.0.0.1");
}

TEST(IpAddress, FromSockaddr) {
    sockaddr_in in4{};
    in4.sin_family = AF_INET;
    in4.sin_port = htons(443);
    ASSERT_EQ(inet_pton(AF_INET, "169.254.169.254", &in4.sin_addr), 1);
    std::optional<IpAddress> a = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&in4));
    ASSERT_TRUE(a.has_value());
    EXPECT_TRUE(a->v4);
    EXPECT_EQ(a->to_string(), "169.254.169.254");

    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    ASSERT_EQ(inet_pton(AF_INET6, "::ffff:10.0.0.1", &in6.sin6_addr), 1);
    std::optional<IpAddress> b = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6));
    ASSERT_TRUE(b.has_value());
    EXPECT_FALSE(b->v4);
    EXPECT_EQ(special_range(*b), std::optional<std::string>(kPrivate));

    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    EXPECT_EQ(IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&un)), std::nullopt);
    EXPECT_EQ(IpAddress::from_sockaddr(nullptr), std::nullopt);
}

TEST(SpecialRange, Ipv4RangesAndTheirEdges) {
    expect_ranges({
        {"0.0.0.0", kThisNetwork}, {"0.255.255.255", kThisNetwork}, {"1.0.0.0", nullptr},
        {"10.0.0.0", kPrivate}, {"10.255.255.255", kPrivate}, {"9.255.255.255", nullptr}, {"11.0.0.0", nullptr},
        {"100.64.0.0", kCgnat}, {"100.127.255.255", kCgnat}, {"100.63.255.255", nullptr}, {"100.128.0.0", nullptr},
        {"127.0.0.0", "loopback"}, {"127.0.0.1", "loopback"}, {"127.255.255.255", "loopback"},
        {"126.255.255.255", nullptr}, {"128.0.0.0", nullptr},
        {"169.254.0.0", "link-local"}, {"169.254.255.255", "link-local"}, {"169.254.169.254", "cloud metadata"},
        {"169.254.169.253", "link-local"}, {"169.253.255.255", nullptr}, {"169.255.0.0", nullptr},
        {"172.16.0.0", kPrivate}, {"172.31.255.255", kPrivate}, {"172.15.255.255", nullptr}, {"172.32.0.0", nullptr},
        {"192.0.0.0", "IETF protocol assignments (192.0.0.0/24)"},
        {"192.0.0.255", "IETF protocol assignments (192.0.0.0/24)"}, {"191.255.255.255", nullptr},
        {"192.0.1.0", nullptr},
        {"192.0.2.0", "documentation (192.0.2.0/24)"}, {"192.0.2.255", "documentation (192.0.2.0/24)"},
        {"192.0.3.0", nullptr},
        {"192.88.99.0", "6to4 relay anycast (192.88.99.0/24)"}, {"192.88.99.255", "6to4 relay anycast (192.88.99.0/24)"},
        {"192.88.98.255", nullptr}, {"192.88.100.0", nullptr},
        {"192.168.0.0", kPrivate}, {"192.168.255.255", kPrivate}, {"192.167.255.255", nullptr},
        {"192.169.0.0", nullptr},
        {"198.18.0.0", "benchmarking (198.18.0.0/15)"}, {"198.19.255.255", "benchmarking (198.18.0.0/15)"},
        {"198.17.255.255", nullptr}, {"198.20.0.0", nullptr},
        {"198.51.100.0", "documentation (198.51.100.0/24)"}, {"198.51.100.255", "documentation (198.51.100.0/24)"},
        {"198.51.99.255", nullptr}, {"198.51.101.0", nullptr},
        {"203.0.113.0", "documentation (203.0.113.0/24)"}, {"203.0.113.255", "documentation (203.0.113.0/24)"},
        {"203.0.112.255", nullptr}, {"203.0.114.0", nullptr},
        {"224.0.0.0", "multicast"}, {"239.255.255.255", "multicast"}, {"223.255.255.255", nullptr},
        {"240.0.0.0", "reserved"}, {"255.255.255.254", "reserved"}, {"255.255.255.255", "broadcast"},
    });
}

TEST(SpecialRange, PublicAddresses) {
    expect_ranges({{"8.8.8.8", nullptr}, {"1.1.1.1", nullptr}, {"93.184.216.34", nullptr},
                   {"2606:4700:4700::1111", nullptr}, {"2001:4860:4860::8888", nullptr}});
}

TEST(SpecialRange, Ipv6Ranges) {
    expect_ranges({
        {"::", "unspecified"}, {"::1", "loopback"},
        {"fc00::", kUla}, {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", kUla}, {"fd12:3456::1", kUla},
        {"fd00:ec2::254", "cloud metadata"}, {"fd00:ec2::253", kUla},
        {"fe80::", "link-local"}, {"fe80::1", "link-local"}, {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"},
        {"fec0::", "site-local (fec0::/10)"}, {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local (fec0::/10)"},
        {"ff00::", "multicast"}, {"ff02::1", "multicast"}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},
        {"2001:db8::", "documentation (2001:db8::/32)"},
        {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation (2001:db8::/32)"},
        {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", nullptr}, {"2001:db9::", nullptr},
        {"3fff::", "documentation (3fff::/20)"}, {"3fff:fff:ffff::1", "documentation (3fff::/20)"},
        {"3fff:1000::", nullptr},
        {"100::", "discard (100::/64)"}, {"100::ffff:ffff:ffff:ffff", "discard (100::/64)"},
        // Outside 2000::/3 nothing is global unicast.
        {"100:0:0:1::", "reserved"}, {"fe00::", "reserved"}, {"4000::", "reserved"}, {"1fff:ffff::", "reserved"},
        {"64:ff9b:0:0:1::1", "reserved"}, {"2000::", nullptr}, {"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", nullptr},
    });
}

TEST(SpecialRange, EmbeddedIpv4DecidesForMappedCompatibleNat64And6to4) {
    expect_ranges({
        // IPv4-mapped ::ffff:0:0/96
        {"::ffff:127.0.0.1", "loopback"}, {"::ffff:10.0.0.1", kPrivate}, {"::ffff:7f00:1", "loopback"},
        {"::ffff:169.254.169.254", "cloud metadata"}, {"::ffff:0.0.0.0", kThisNetwork}, {"::ffff:8.8.8.8", nullptr},
        // IPv4-compatible ::/96
        {"::127.0.0.1", "loopback"}, {"::10.0.0.1", kPrivate}, {"::2", kThisNetwork}, {"::8.8.8.8", nullptr},
        // NAT64 well-known prefix 64:ff9b::/96
        {"64:ff9b::127.0.0.1", "loopback"}, {"64:ff9b::7f00:1", "loopback"}, {"64:ff9b::10.0.0.1", kPrivate},
        {"64:ff9b::a9fe:a9fe", "cloud metadata"}, {"64:ff9b::8.8.8.8", nullptr},
        // NAT64 local-use 64:ff9b:1::/48: the /96 layout is decoded, others refused
        {"64:ff9b:1::127.0.0.1", "loopback"}, {"64:ff9b:1::10.0.0.1", kPrivate}, {"64:ff9b:1::8.8.8.8", nullptr},
        {"64:ff9b:1:7f00:0:100::", "NAT64 local-use (64:ff9b:1::/48)"},
        // 6to4 2002::/16, the IPv4 in bits 16..47
        {"2002:7f00:1::", "loopback"}, {"2002:a00:1::1", kPrivate}, {"2002:a9fe:a9fe::", "cloud metadata"},
        {"2002:808:808::1", nullptr},
    });
}

TEST(Cidr, Ipv4MatchesMappedForm) {
    Cidr net{ip("10.0.0.0"), 8};
    EXPECT_TRUE(net.contains(ip("10.0.0.0")));
    EXPECT_TRUE(net.contains(ip("10.255.255.255")));
    EXPECT_TRUE(net.contains(ip("::ffff:10.1.2.3")));
    EXPECT_FALSE(net.contains(ip("11.0.0.0")));
    EXPECT_FALSE(net.contains(ip("9.255.255.255")));
    EXPECT_FALSE(net.contains(ip("::10.1.2.3")));
    EXPECT_FALSE(net.contains(ip("64:ff9b::10.1.2.3")));

    Cidr odd{ip("100.64.0.0"), 10};
    EXPECT_TRUE(odd.contains(ip("100.127.255.255")));
    EXPECT_FALSE(odd.contains(ip("100.128.0.0")));

    Cidr v6{ip("fd00::"), 8};
    EXPECT_TRUE(v6.contains(ip("fd12::1")));
    EXPECT_FALSE(v6.contains(ip("fc00::1")));
    EXPECT_FALSE(v6.contains(ip("10.0.0.1")));
}

TEST(NetworkList, ParsesCommasAndOrSpaces) {
    for (const char* text : {"127.0.0.1/32, ::1/128", "127.0.0.1/32,::1/128", "127.0.0.1/32 ::1/128",
                             " ,127.0.0.1/32,\t ::1/128 , ", "::1/128\n127.0.0.1/32"}) {
        NetworkList list = NetworkList::parse(text);
        EXPECT_FALSE(list.empty()) << text;
        EXPECT_TRUE(list.contains(ip("127.0.0.1"))) << text;
        EXPECT_TRUE(list.contains(ip("::1"))) << text;
        EXPECT_FALSE(list.contains(ip("127.0.0.2"))) << text;
        EXPECT_FALSE(list.contains(ip("::2"))) << text;
    }
    EXPECT_TRUE(NetworkList::parse("").empty());
    EXPECT_TRUE(NetworkList::parse(" , ,  ").empty());
}

TEST(NetworkList, BareAddressIsOneHost) {
    NetworkList list = NetworkList::parse("10.1.2.3, fd00::5");
    EXPECT_TRUE(list.contains(ip("10.1.2.3")));
    EXPECT_FALSE(list.contains(ip("10.1.2.4")));
    EXPECT_TRUE(list.contains(ip("fd00::5")));
    EXPECT_FALSE(list.contains(ip("fd00::6")));
}

TEST(NetworkList, PrefixBoundsAndHostBits) {
    EXPECT_TRUE(NetworkList::parse("0.0.0.0/0").contains(ip("8.8.8.8")));
    EXPECT_TRUE(NetworkList::parse("::/0").contains(ip("2606:4700:4700::1111")));
    EXPECT_TRUE(NetworkList::parse("10.1.2.3/8").contains(ip("10.200.0.1")));  // host bits ignored
    EXPECT_NO_THROW(NetworkList::parse("1.2.3.4/32, ::1/128"));
}

TEST(NetworkList, BadEntriesNameTheEntry) {
    EXPECT_EQ(list_error("127.0.0.1/32, 10.0.0.0/33"),
              "invalid network \"10.0.0.0/33\" in outbox.allowed_networks: prefix length above 32");
    EXPECT_EQ(list_error("::1/129"), "invalid network \"::1/129\" in outbox.allowed_networks: prefix length above 128");
    EXPECT_EQ(list_error("localhost"), "invalid network \"localhost\" in outbox.allowed_networks: not an IP address");
    EXPECT_EQ(list_error("10.0.0.0/8x"), "invalid network \"10.0.0.0/8x\" in outbox.allowed_networks: bad prefix length");
    for (const char* bad : {"10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8", "[::1]/128", "127.1/32",
                            "10.0.0.0/99999999999999999999", "/8", "10.0.0.0;8"})
        EXPECT_NE(list_error(bad).find(quoted(bad)), std::string::npos) << bad;
}

TEST(AddressAllowed, PublicAllowedSpecialRefused) {
    EXPECT_TRUE(allowed("8.8.8.8", ""));
    EXPECT_TRUE(allowed("1.1.1.1", ""));
    EXPECT_TRUE(allowed("2606:4700:4700::1111", ""));
    for (const char* refused : {"127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fd00:ec2::254", "::ffff:127.0.0.1",
                                "::ffff:10.0.0.1", "64:ff9b::127.0.0.1", "64:ff9b::10.0.0.1", "64:ff9b:1::127.0.0.1",
                                "64:ff9b:1::10.0.0.1", "2002:7f00:1::", "2002:a00:1::", "::127.0.0.1"})
        EXPECT_FALSE(allowed(refused, "")) << refused;
}

TEST(AddressAllowed, AllowedNetworksOverrideRefusal) {
    EXPECT_TRUE(allowed("127.0.0.1", "127.0.0.1/32"));
    EXPECT_TRUE(allowed("::ffff:127.0.0.1", "127.0.0.1/32"));
    EXPECT_FALSE(allowed("127.0.0.2", "127.0.0.1/32"));
    EXPECT_FALSE(allowed("::1", "127.0.0.1/32"));
    EXPECT_FALSE(allowed("10.0.0.1", "127.0.0.1/32"));
    EXPECT_FALSE(allowed("64:ff9b::127.0.0.1", "127.0.0.1/32"));  // NAT64 is not the host itself
    EXPECT_TRUE(allowed("::1", "127.0.0.0/8, ::1/128"));
    EXPECT_TRUE(allowed("127.8.9.10", "127.0.0.0/8, ::1/128"));
    EXPECT_TRUE(allowed("10.1.2.3", "10.1.0.0/16"));
    EXPECT_FALSE(allowed("10.2.0.0", "10.1.0.0/16"));
    EXPECT_TRUE(allowed("8.8.8.8", "10.1.0.0/16"));  // public stays allowed
}
