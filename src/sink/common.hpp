// What every sink needs: the address guard with a bounded name lookup, the
// reconnect backoff, an epoll set as the one stable fd, and outcome
// bookkeeping with per-message deadlines.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/address_policy.hpp"
#include "sink.hpp"
#include "url.hpp"

namespace outbox::sink::detail {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Resolves `host` (an IP literal needs no lookup) within `timeout` and
// applies the address policy to every address. The lookup runs on a
// detached thread, so a slow resolver costs at most `timeout`; the thread
// calls nothing but getaddrinfo.
struct Resolution {
    std::vector<core::IpAddress> allowed;  // in the resolver's order
    std::string refused;  // set when every address was refused: why (names the first)
    std::string error;    // set when the name did not resolve (or not in time)
};
Resolution resolve_guarded(const std::string& host, const core::NetworkList& allowed, milliseconds timeout);

// The refusal when every host is an address literal the policy refuses:
// known without a lookup or a thread, so a message fails at once. "" when
// a host is a name or an allowed address.
std::string refused_outright(const std::vector<HostPort>& hosts, const core::NetworkList& allowed);

// Why an address is refused ("" when it is allowed): the HTTP client's wording.
std::string refusal(const core::IpAddress& address, const core::NetworkList& allowed);

// The address a connected socket's peer has, checked again after the
// client library connected (for TLS connects that had to be given the
// host name). "" when allowed.
std::string check_peer(int sockfd, const core::NetworkList& allowed);

// "host:port" ready for a client library, IPv6 in brackets.
std::string host_port(const core::IpAddress& address, std::uint16_t port);

// Reconnects after a failed connect wait 100 ms, doubling to 5 s: a broker
// that is down costs one connect attempt per wait, not one per message.
class Backoff {
public:
    void failed(std::string error);
    void succeeded() noexcept { failures_ = 0; not_before_.reset(); }
    // The error to fail a message with while waiting, or nullopt when a
    // connect may be attempted now.
    std::optional<std::string> waiting(Clock::time_point now) const;

private:
    int failures_ = 0;
    std::optional<Clock::time_point> not_before_;
    std::string last_error_;
};

// An epoll set: the sink's fd() for its whole life, whatever sockets come
// and go inside it.
class Poller {
public:
    Poller();
    ~Poller();
    Poller(const Poller&) = delete;
    Poller& operator=(const Poller&) = delete;
    int fd() const noexcept { return fd_; }
    void watch(int fd, bool read, bool write);  // adds or modifies
    void forget(int fd) noexcept;
    // Drains readiness without blocking; the sinks then try every socket they
    // have, so which ones were ready does not matter.
    void drain() noexcept;
    // The sockets ready now: (fd, epoll events), without blocking.
    std::vector<std::pair<int, unsigned>> ready();

private:
    int fd_ = -1;
};

// An eventfd that threads of a client library signal.
class Wakeup {
public:
    Wakeup();
    ~Wakeup();
    Wakeup(const Wakeup&) = delete;
    Wakeup& operator=(const Wakeup&) = delete;
    int fd() const noexcept { return fd_; }
    void signal() noexcept;
    void clear() noexcept;

private:
    int fd_ = -1;
};

// A message on its way: when it was started and when it times out.
struct Pending {
    std::uint64_t tag = 0;
    Clock::time_point started;
    Clock::time_point deadline;
};

Pending pending_for(const Message& m, Clock::time_point now);

// A message not sent yet: waiting for a connection (or for room to send).
struct Queued {
    Message message;
    Pending pending;
};
Outcome outcome(const Pending& p, bool acked, int status, std::string error, bool refused = false);
inline Outcome acked(const Pending& p) { return outcome(p, true, 200, {}); }

// Messages in flight by a protocol's key (delivery tag, request id, ...),
// with their deadlines in order so that the earliest is found at once.
template <typename Key>
class InFlight {
public:
    void add(Key key, Pending p) {
        auto at = deadlines_.emplace(p.deadline, key);
        try {
            entries_.emplace(key, Entry{p, at});
        } catch (...) {
            deadlines_.erase(at);
            throw;
        }
    }
    std::optional<Pending> take(const Key& key) {
        auto it = entries_.find(key);
        if (it == entries_.end()) return std::nullopt;
        Pending p = it->second.pending;
        deadlines_.erase(it->second.at);
        entries_.erase(it);
        return p;
    }
    Pending* find(const Key& key) {
        auto it = entries_.find(key);
        return it == entries_.end() ? nullptr : &it->second.pending;
    }
    // Removes and returns (key, pending) of every message past its deadline.
    std::vector<std::pair<Key, Pending>> expired(Clock::time_point now) {
        std::vector<std::pair<Key, Pending>> out;
        while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
            Key key = deadlines_.begin()->second;
            out.emplace_back(key, *take(key));
        }
        return out;
    }
    std::vector<std::pair<Key, Pending>> take_all() {
        std::vector<std::pair<Key, Pending>> out;
        for (auto& [key, e] : entries_) out.emplace_back(key, e.pending);
        entries_.clear();
        deadlines_.clear();
        return out;
    }
    std::optional<Clock::time_point> earliest() const {
        if (deadlines_.empty()) return std::nullopt;
        return deadlines_.begin()->first;
    }
    std::size_t size() const noexcept { return entries_.size(); }
    bool empty() const noexcept { return entries_.empty(); }
    // Removes and returns every message whose key is <= `last`, in key
    // order (an AMQP ack with `multiple` covers every tag up to its own).
    std::vector<std::pair<Key, Pending>> take_through(const Key& last) {
        std::vector<std::pair<Key, Pending>> out;
        while (!entries_.empty() && !(last < entries_.begin()->first)) {
            auto it = entries_.begin();
            out.emplace_back(it->first, it->second.pending);
            deadlines_.erase(it->second.at);
            entries_.erase(it);
        }
        return out;
    }

private:
    struct Entry {
        Pending pending;
        typename std::multimap<Clock::time_point, Key>::iterator at;
    };
    std::map<Key, Entry> entries_;  // ordered: see take_through
    std::multimap<Clock::time_point, Key> deadlines_;
};

// The outcomes a sink has ready for take_completed().
class Completed {
public:
    void fail(const Pending& p, int status, std::string error, bool refused = false) {
        list_.push_back(outcome(p, false, status, std::move(error), refused));
    }
    void ack(const Pending& p) { list_.push_back(acked(p)); }
    std::vector<Outcome> take() {
        std::vector<Outcome> out;
        out.swap(list_);
        return out;
    }
    bool empty() const noexcept { return list_.empty(); }

private:
    std::vector<Outcome> list_;
};

// The wait until the earliest deadline, or 0 when something is completed.
std::optional<milliseconds> wait_for(bool completed, std::optional<Clock::time_point> earliest);

}  // namespace outbox::sink::detail
