#include "nats_connection.hpp"

#include <fmt/format.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <thread>
#include <vector>

#include "signals.hpp"

namespace outbox::sink::detail {

void NatsSocket::update() noexcept {
    if (epoll < 0 || fd < 0) return;
    if (!read && !write) {
        epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nullptr);
        return;
    }
    epoll_event ev{};
    ev.data.fd = fd;
    ev.events = (read ? EPOLLIN : 0u) | (write ? EPOLLOUT : 0u);
    if (epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &ev) != 0) epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev);
}

int NatsSocket::adopt(int epoll_fd) {
    std::lock_guard lock(mu);
    epoll = epoll_fd;
    update();
    return fd;
}

void NatsSocket::disown() noexcept {
    std::lock_guard lock(mu);
    if (epoll >= 0 && fd >= 0) epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nullptr);
    epoll = -1;
}

natsStatus NatsSocket::attach(void** user_data, void* loop, natsConnection*, natsSock fd) noexcept {
    auto* self = static_cast<NatsSocket*>(loop);
    auto* ref = new (std::nothrow) Ref(self->shared_from_this());
    if (!ref) return NATS_NO_MEMORY;
    *user_data = ref;
    std::lock_guard lock(self->mu);
    self->fd = static_cast<int>(fd);
    self->read = true;  // attached means polled for reading
    self->update();
    return NATS_OK;
}

namespace {

// libnats asks for `what` (reading or writing) to be polled, or not.
natsStatus poll_for(void* user_data, bool NatsSocket::*what, bool add) noexcept {
    NatsSocket& self = **static_cast<NatsSocket::Ref*>(user_data);
    std::lock_guard lock(self.mu);
    self.*what = add;
    self.update();
    return NATS_OK;
}

}  // namespace

natsStatus NatsSocket::on_read(void* user_data, bool add) noexcept { return poll_for(user_data, &NatsSocket::read, add); }

natsStatus NatsSocket::on_write(void* user_data, bool add) noexcept { return poll_for(user_data, &NatsSocket::write, add); }

natsStatus NatsSocket::detach(void* user_data) noexcept {
    auto* ref = static_cast<Ref*>(user_data);
    {
        std::lock_guard lock((*ref)->mu);
        (*ref)->fd = -1;
    }
    delete ref;
    return NATS_OK;
}

std::string nats_status_text(natsStatus s) {
    const char* last = nats_GetLastError(nullptr);
    return last && *last ? last : natsStatus_GetText(s);
}

namespace {

NatsConnection failed(std::string why, bool refused = false) {
    NatsConnection out;
    out.error = std::move(why);
    out.refused = refused;
    return out;
}

}  // namespace

NatsConnection open_nats_connection(const NatsConnectJob& job) {
    std::vector<std::string> servers;
    std::string refused, error;
    for (const HostPort& hp : job.url.hosts) {
        auto left = std::max(milliseconds(1), std::chrono::ceil<milliseconds>(job.deadline - Clock::now()));
        Resolution r = resolve_guarded(hp.host, job.options.allowed_networks, left);
        for (const auto& a : r.allowed) servers.push_back("nats://" + host_port(a, hp.port));
        if (!r.refused.empty() && refused.empty()) refused = r.refused;
        if (!r.error.empty() && error.empty()) error = r.error;
    }
    if (servers.empty()) return refused.empty() ? failed(error) : failed(refused, true);

    natsOptions* o = nullptr;
    if (natsOptions_Create(&o) != NATS_OK) return failed("could not create NATS options");
    std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> opts(o, &natsOptions_Destroy);
    std::vector<const char*> list;
    for (const auto& s : servers) list.push_back(s.c_str());
    auto left = std::max(milliseconds(50), std::chrono::ceil<milliseconds>(job.deadline - Clock::now()));
    auto each = std::max<int64_t>(50, left.count() / static_cast<int64_t>(list.size()));
    auto socket = std::make_shared<NatsSocket>();
    natsStatus s = natsOptions_SetServers(o, list.data(), static_cast<int>(list.size()));
    if (s == NATS_OK) s = natsOptions_SetTimeout(o, each);
    // Our own reconnects, so that a lost connection fails what is in
    // flight at once (and is retried with the worker's backoff), and
    // never to an address the guard has not seen:
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK) s = natsOptions_SetIgnoreDiscoveredServers(o, true);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(o, job.on_closed, job.closure);
    // The sink reads and writes the socket (nats.cpp).
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(o, socket.get(), &NatsSocket::attach, &NatsSocket::on_read, &NatsSocket::on_write,
                                     &NatsSocket::detach);
    if (s == NATS_OK) s = natsOptions_SetIOBufSize(o, kNatsReadSize);
    if (s == NATS_OK) s = natsOptions_SetName(o, "outbox");
    const Credentials& c = job.credentials;
    if (s == NATS_OK && (!c.user.empty() || !c.password.empty()))
        s = natsOptions_SetUserInfo(o, c.user.c_str(), c.password.c_str());
    if (s == NATS_OK && !c.token.empty()) s = natsOptions_SetToken(o, c.token.c_str());
    if (s == NATS_OK && job.url.tls()) {
        s = natsOptions_SetSecure(o, true);
        if (s == NATS_OK && !job.options.ca_file.empty())
            s = natsOptions_LoadCATrustedCertificates(o, job.options.ca_file.c_str());
        // We connect to addresses; the certificate must name the host.
        if (s == NATS_OK) s = natsOptions_SetExpectedHostname(o, job.url.hosts.front().host.c_str());
    }
    if (s != NATS_OK) return failed(fmt::format("bad NATS options: {}", nats_status_text(s)));

    NatsConnection made;
    made.socket = socket;
    // libnats starts its threads here; they inherit this thread's mask:
    // every signal blocked (Connector).
    s = natsConnection_Connect(&made.nc, o);
    // The text libnats gives may say "Authorization Violation" but never
    // repeats the credentials.
    if (s != NATS_OK) return failed(fmt::format("could not connect to NATS: {}", nats_status_text(s)));
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = job.on_ack;
    jo.PublishAsync.AckHandlerClosure = job.closure;
    jo.PublishAsync.MaxPending = 0;  // no stall inside publish: the worker bounds what is in flight
    s = natsConnection_JetStream(&made.js, made.nc, &jo);
    if (s != NATS_OK) return failed(fmt::format("could not create a JetStream context: {}", nats_status_text(s)));
    return made;
}

void close_without_waiting(NatsConnection connection) {
    connection.socket->disown();
    if (natsConnection_IsClosed(connection.nc)) return;  // libnats closed it: destroyed here, at once
    if (natsConnection_Buffered(connection.nc) > 0) natsConnection_ProcessWriteEvent(connection.nc);
    if (natsConnection_Buffered(connection.nc) <= 0) return;  // nothing to flush: closed here, at once
    try {
        SignalsBlocked blocked;
        std::thread([c = std::move(connection)]() mutable noexcept { c.destroy(); }).detach();
    } catch (...) {
        // No thread: the connection was closed here, by the lambda's destructor.
    }
}

std::uint64_t saturating_since(std::uint64_t now, std::uint64_t then) { return now > then ? now - then : 0; }

std::optional<std::uint64_t> bytes_consumed(int fd) {
    // Two syscalls, not one snapshot: bytes that arrive between them are
    // in the queue but not in the count received before it, and the
    // difference came out below what was consumed before (wrapping to an
    // "over the cap" close of a healthy connection, CI under TSan). So the
    // received count is read on both sides of the queue's, until it held
    // still.
    auto received = [fd]() -> std::optional<std::uint64_t> {
        tcp_info info{};
        socklen_t len = sizeof info;
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
            len < offsetof(tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received)
            return std::nullopt;
        return info.tcpi_bytes_received;
    };
    auto before = received();
    if (!before) return std::nullopt;
    std::uint64_t estimate = 0;
    for (int attempt = 0; attempt < 8; attempt++) {
        int queued = 0;
        if (ioctl(fd, SIOCINQ, &queued) != 0) return std::nullopt;
        auto after = received();
        if (!after) return std::nullopt;
        estimate = saturating_since(*before, static_cast<std::uint64_t>(queued));
        if (*after == *before) return estimate;
        before = after;
    }
    // Still arriving after eight tries: the estimate errs low by what
    // arrived between the last two syscalls, and callers compare with
    // saturating_since, so a low value never wraps to "over the cap".
    return estimate;
}

}  // namespace outbox::sink::detail
