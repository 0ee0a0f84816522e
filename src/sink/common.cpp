#include "common.hpp"

#include <fmt/format.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "signals.hpp"

namespace outbox::sink::detail {

namespace {

// Shared by the caller and the lookup thread, which may outlive the wait.
struct Lookup {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    int rc = 0;
    std::vector<core::IpAddress> addresses;
};

void run_lookup(const std::shared_ptr<Lookup>& lookup, const std::string& host) noexcept {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
    std::vector<core::IpAddress> addresses;
    try {
        for (addrinfo* ai = result; rc == 0 && ai; ai = ai->ai_next) {
            auto ip = core::IpAddress::from_sockaddr(ai->ai_addr);
            if (ip && std::find_if(addresses.begin(), addresses.end(), [&](const core::IpAddress& a) {
                          return a.v4 == ip->v4 && a.bytes == ip->bytes;
                      }) == addresses.end())
                addresses.push_back(*ip);
        }
    } catch (...) {
        rc = EAI_MEMORY;
    }
    if (result) freeaddrinfo(result);
    std::lock_guard lock(lookup->mu);
    lookup->rc = rc;
    lookup->addresses = std::move(addresses);
    lookup->done = true;
    lookup->cv.notify_all();
}

}  // namespace

std::string refusal(const core::IpAddress& address, const core::NetworkList& allowed) {
    if (core::address_allowed(address, allowed)) return {};
    auto range = core::special_range(address);
    return fmt::format("refused to connect to {}: {} address; add it to outbox.allowed_networks to allow it",
                       address.to_string(), range ? *range : "special-purpose");
}

std::string refused_outright(const std::vector<HostPort>& hosts, const core::NetworkList& allowed) {
    std::string first;
    for (const HostPort& hp : hosts) {
        auto literal = core::IpAddress::parse(hp.host);
        if (!literal) return {};
        std::string why = refusal(*literal, allowed);
        if (why.empty()) return {};
        if (first.empty()) first = std::move(why);
    }
    return first;
}

Resolution resolve_guarded(const std::string& host, const core::NetworkList& allowed, milliseconds timeout) {
    Resolution r;
    std::vector<core::IpAddress> addresses;
    if (auto literal = core::IpAddress::parse(host)) {
        addresses.push_back(*literal);
    } else {
        auto lookup = std::make_shared<Lookup>();
        {
            SignalsBlocked blocked;  // the thread must never run PostgreSQL's signal handlers
            std::thread([lookup, host] { run_lookup(lookup, host); }).detach();
        }
        std::unique_lock lock(lookup->mu);
        if (!lookup->cv.wait_for(lock, timeout, [&] { return lookup->done; })) {
            r.error = fmt::format("could not resolve host {}: no answer within {} ms", host, timeout.count());
            return r;
        }
        if (lookup->rc != 0) {
            r.error = fmt::format("could not resolve host {}: {}", host, gai_strerror(lookup->rc));
            return r;
        }
        addresses = lookup->addresses;
    }
    for (const auto& a : addresses) {
        std::string why = refusal(a, allowed);
        if (why.empty()) r.allowed.push_back(a);
        else if (r.refused.empty()) r.refused = std::move(why);
    }
    if (!r.allowed.empty()) r.refused.clear();
    if (r.allowed.empty() && r.refused.empty()) r.error = fmt::format("could not resolve host {}: no address", host);
    return r;
}

std::string check_peer(int sockfd, const core::NetworkList& allowed) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (sockfd < 0 || getpeername(sockfd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        return "refused to connect: the connected address is unknown";
    auto ip = core::IpAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
    if (!ip) return "refused to connect: unknown address family";
    return refusal(*ip, allowed);
}

std::string host_port(const core::IpAddress& address, std::uint16_t port) {
    if (address.v4) return fmt::format("{}:{}", address.to_string(), port);
    return fmt::format("[{}]:{}", address.to_string(), port);
}

void Backoff::failed(std::string error) {
    failures_ = std::min(failures_ + 1, 16);
    auto delay = std::min(milliseconds(100) * (1 << std::min(failures_ - 1, 6)), milliseconds(5000));
    not_before_ = Clock::now() + delay;
    last_error_ = std::move(error);
}

std::optional<std::string> Backoff::waiting(Clock::time_point now) const {
    if (!not_before_ || now >= *not_before_) return std::nullopt;
    auto left = std::chrono::ceil<milliseconds>(*not_before_ - now).count();
    return fmt::format("not connected: {} (next connect attempt in {} ms)", last_error_, left);
}

Poller::Poller() : fd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("epoll_create1 failed");
}

Poller::~Poller() {
    if (fd_ >= 0) close(fd_);
}

void Poller::watch(int fd, bool read, bool write) {
    epoll_event ev{};
    ev.data.fd = fd;
    ev.events = (read ? EPOLLIN : 0u) | (write ? EPOLLOUT : 0u);
    if (epoll_ctl(fd_, EPOLL_CTL_MOD, fd, &ev) != 0 && epoll_ctl(fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
        throw std::runtime_error("epoll_ctl failed");
}

void Poller::forget(int fd) noexcept { epoll_ctl(fd_, EPOLL_CTL_DEL, fd, nullptr); }

void Poller::drain() noexcept {
    epoll_event events[32];
    while (epoll_wait(fd_, events, 32, 0) == 32) {
    }
}

std::vector<std::pair<int, unsigned>> Poller::ready() {
    std::vector<std::pair<int, unsigned>> out;
    epoll_event events[32];
    int n = 0;
    do {
        n = epoll_wait(fd_, events, 32, 0);
        for (int i = 0; i < n; i++) out.emplace_back(int(events[i].data.fd), unsigned(events[i].events));
    } while (n == 32);
    return out;
}

Wakeup::Wakeup() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("eventfd failed");
}

Wakeup::~Wakeup() {
    if (fd_ >= 0) close(fd_);
}

void Wakeup::signal() noexcept {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(fd_, &one, sizeof one);
}

void Wakeup::clear() noexcept {
    std::uint64_t value = 0;
    [[maybe_unused]] auto n = read(fd_, &value, sizeof value);
}

Pending pending_for(const Message& m, Clock::time_point now) { return Pending{m.tag, now, now + m.timeout}; }

Outcome outcome(const Pending& p, bool is_acked, int status, std::string error, bool refused) {
    Outcome o;
    o.tag = p.tag;
    o.acked = is_acked;
    o.status = status;
    o.error = std::move(error);
    o.refused = refused;
    o.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - p.started);
    return o;
}

std::optional<milliseconds> wait_for(bool completed, std::optional<Clock::time_point> earliest) {
    if (completed) return milliseconds(0);
    if (!earliest) return std::nullopt;
    auto left = std::chrono::ceil<milliseconds>(*earliest - Clock::now());
    return std::max(left, milliseconds(0));
}

}  // namespace outbox::sink::detail
