// A non-blocking HTTP client on libcurl's multi interface.
//
// The worker owns one Client. It starts requests with start(), waits until
// fd() is readable or timeout() has passed (together with its own latch, in
// one WaitEventSet), then calls perform() and take_completed(). Connections
// are kept alive and reused. No PostgreSQL headers here: libcurl callbacks
// never call into PostgreSQL.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/address_policy.hpp"

namespace outbox::http {

struct Request {
    std::uint64_t tag = 0;              // the caller's handle for this request
    std::string url;
    std::vector<std::string> headers;   // "name: value" lines
    std::string body;                   // POSTed as is
    std::chrono::milliseconds timeout{std::chrono::seconds(30)};
    std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
};

struct Response {
    std::uint64_t tag = 0;
    long status = 0;                    // HTTP status; 0 when no response arrived
    std::string error;                  // empty when a response arrived; else a readable reason
    bool refused = false;               // refused by the address policy (no connection attempted)
    std::string body;                   // at most Options::max_body bytes of the response body
    std::string retry_after;            // the Retry-After header, if present
    std::string headers;                // the final response's headers, "name: value\n" lines, at most
                                        // Options::max_headers bytes (whole lines)
    std::chrono::microseconds duration{0};
};

struct Options {
    core::NetworkList allowed_networks;  // special-purpose addresses allowed anyway
    std::string ca_file;                 // empty: the system's CA bundle
    std::string user_agent = "outbox";
    std::size_t max_body = 4096;         // bytes of the response body kept
    std::size_t max_read = 65536;        // bytes of the body, and of the headers, read before the transfer is cut off
    std::size_t max_headers = 8192;      // bytes of response headers kept
    long max_connections = 64;           // connections kept alive in the cache
};

class Client {
public:
    explicit Client(Options options);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // New options apply to requests started afterwards (SIGHUP reload). The
    // address policy also applies at once to transfers in flight, and to
    // kept-alive connections before they are reused.
    void set_options(Options options);

    // Starts the request at once; never blocks.
    void start(Request request);

    std::size_t in_flight() const noexcept;

    // A file descriptor (an epoll set of the transfers' sockets) that becomes
    // readable when perform() has work to do.
    int fd() const noexcept;

    // The longest the caller may wait before calling perform(); nullopt when
    // nothing is in flight.
    std::optional<std::chrono::milliseconds> timeout() const;

    // Moves transfers on without blocking; finished ones go to the completed list.
    void perform();

    // Finished requests since the last call, in completion order.
    std::vector<Response> take_completed();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace outbox::http
