// libnats connections for the NATS sink (nats.cpp): made on a Connector
// thread in libnats' event-loop mode, their socket wired into the sink's
// epoll set, and closed off the caller's thread when libnats has not closed
// them itself.
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common.hpp"
#include "url.hpp"

namespace outbox::sink::detail {

// The connection's socket as libnats' event-loop hooks see it. libnats calls
// them from whichever thread drives it (the Connector's during connect, the
// caller's in perform() and start(), its timer thread for PINGs), with its
// connection lock held: they take only this struct's own mutex and change
// the epoll set, nothing else. Until the sink takes the connection (epoll
// < 0) they only note what libnats wants.
struct NatsSocket : std::enable_shared_from_this<NatsSocket> {
    std::mutex mu;
    int fd = -1;                       // guarded by mu: from attach until detach
    int epoll = -1;                    // guarded by mu: the sink's epoll set once the sink took it
    bool read = false, write = false;  // guarded by mu: what libnats asks to be polled for

    void update() noexcept;  // with mu held: the epoll set follows read / write
    // The sink takes the connection: polls the socket in `epoll_fd` from
    // now on; returns the socket.
    int adopt(int epoll_fd);
    // The sink lets go: the hooks touch its epoll set no more.
    void disown() noexcept;

    // libnats' hooks. attach's `loop` is the Socket (alive: the Connector
    // holds it during natsConnection_Connect, the only time attach runs);
    // libnats keeps the userData (a shared_ptr) until detach.
    using Ref = std::shared_ptr<NatsSocket>;
    static natsStatus attach(void** user_data, void* loop, natsConnection*, natsSock fd) noexcept;
    static natsStatus on_read(void* user_data, bool add) noexcept;
    static natsStatus on_write(void* user_data, bool add) noexcept;
    static natsStatus detach(void* user_data) noexcept;
};

// A connection made by the Connector, handed to the sink; or why not.
// Destroying it closes the connection.
struct NatsConnection {
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    std::shared_ptr<NatsSocket> socket;
    std::string error;  // set when there is no connection
    bool refused = false;  // the address policy refused every address

    NatsConnection() = default;
    NatsConnection(NatsConnection&& o) noexcept
        : nc(std::exchange(o.nc, nullptr)), js(std::exchange(o.js, nullptr)), socket(std::move(o.socket)),
          error(std::move(o.error)), refused(o.refused) {}
    NatsConnection& operator=(NatsConnection&& o) noexcept {
        if (this != &o) {
            destroy();
            nc = std::exchange(o.nc, nullptr);
            js = std::exchange(o.js, nullptr);
            socket = std::move(o.socket);
            error = std::move(o.error);
            refused = o.refused;
        }
        return *this;
    }
    ~NatsConnection() { destroy(); }

    // Closes the connection before the JetStream context goes: its reply
    // subscription would otherwise send an UNSUB, and closing with
    // something unsent waits up to 500 ms for a PONG (close_without_waiting).
    void destroy() noexcept {
        if (nc) natsConnection_Close(nc);
        if (js) jsCtx_Destroy(js);
        if (nc) natsConnection_Destroy(nc);
        js = nullptr;
        nc = nullptr;
    }
};

// What one connect needs, copied for the Connector thread.
struct NatsConnectJob {
    BrokerUrl url;
    Credentials credentials;
    Options options;
    Clock::time_point deadline;
    void* closure = nullptr;  // for the callbacks: the sink's registry id
    natsConnectionHandler on_closed = nullptr;
    jsPubAckHandler on_ack = nullptr;
};

// What one natsConnection_ProcessReadEvent reads at most.
constexpr int kNatsReadSize = 32 * 1024;

// Resolves and checks the URL's hosts, then connects to the allowed
// addresses (each gets an equal share of the time left) and makes the
// JetStream context: the blocking part, on the Connector thread.
NatsConnection open_nats_connection(const NatsConnectJob& job);

// Closes a connection from the caller's thread without waiting: at once
// when nothing is left to send (after one non-blocking write), else on a
// thread of its own, because natsConnection_Close flushes what is buffered
// and waits up to 500 ms for the server's PONG, which in event-loop mode
// nobody reads.
void close_without_waiting(NatsConnection connection);

// Bytes libnats has taken out of the socket so far: what the kernel
// received minus what still waits to be read, from counts that held still
// across the two syscalls (bytes arriving between them made it come out
// lower than before).
std::optional<std::uint64_t> bytes_consumed(int fd);

// now - then, or 0 when now is not past then.
std::uint64_t saturating_since(std::uint64_t now, std::uint64_t then);

// libnats' last error of this thread, or the status's text.
std::string nats_status_text(natsStatus s);

}  // namespace outbox::sink::detail
