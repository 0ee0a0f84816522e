// NATS JetStream through libnats' asynchronous publish: many messages in
// flight on one connection, each completed by its PubAck (or its error, or
// libnats' MaxWait timer) in a callback on a libnats thread. Callbacks only
// move an outcome into a mutex-protected list and signal an eventfd; the
// caller's thread picks it up in perform().
#include <fmt/format.h>
#include <nats/nats.h>

#include <memory>
#include <mutex>
#include <unordered_map>

#include "common.hpp"
#include "protocols.hpp"
#include "signals.hpp"

namespace outbox::sink::detail {

namespace {

// What callbacks touch. libnats calls them on detached threads that may run
// after the sink is gone, so they reach this through a registry of weak
// pointers by id: once the sink has unregistered, a late callback finds
// nothing and only frees its message.
struct Shared {
    std::mutex mu;
    InFlight<natsMsg*> pending;         // guarded by mu
    std::vector<Outcome> done;          // guarded by mu
    natsConnection* connection = nullptr;  // guarded by mu: the current one
    bool closed = false;                // guarded by mu: it was closed under us
    std::string closed_reason;          // guarded by mu
    Wakeup wakeup;
};

struct Registry {
    std::mutex mu;
    std::unordered_map<std::uintptr_t, std::weak_ptr<Shared>> sinks;
    std::uintptr_t next = 1;
};

// Never destroyed: a libnats thread may look something up during exit.
Registry& registry() {
    static Registry* r = new Registry;
    return *r;
}

std::shared_ptr<Shared> lookup(void* closure) {
    auto& r = registry();
    std::lock_guard lock(r.mu);
    auto it = r.sinks.find(reinterpret_cast<std::uintptr_t>(closure));
    return it == r.sinks.end() ? nullptr : it->second.lock();
}

std::string status_text(natsStatus s) {
    const char* last = nats_GetLastError(nullptr);
    return last && *last ? last : natsStatus_GetText(s);
}

void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) noexcept {
    try {
        if (auto shared = lookup(closure)) {
            std::lock_guard lock(shared->mu);
            if (auto p = shared->pending.take(msg)) {
                if (pa) {
                    shared->done.push_back(acked(*p));
                } else if (pae && pae->Err == NATS_TIMEOUT) {
                    shared->done.push_back(outcome(*p, false, 0, "timeout: no PubAck from JetStream in time"));
                } else if (pae && pae->Err == NATS_NO_RESPONDERS) {
                    shared->done.push_back(outcome(
                        *p, false, 503,
                        fmt::format("no JetStream stream takes subject {} (no responders)", natsMsg_GetSubject(msg))));
                } else if (pae) {
                    shared->done.push_back(outcome(*p, false, static_cast<int>(pae->ErrCode),
                                                   fmt::format("JetStream refused the message: {} (error code {})",
                                                               pae->ErrText ? pae->ErrText : "", static_cast<int>(pae->ErrCode))));
                }
                shared->wakeup.signal();
            }
        }
    } catch (...) {
        // Out of memory in a callback: the message's deadline fails it.
    }
    natsMsg_Destroy(msg);
}

void on_closed(natsConnection* nc, void* closure) noexcept {
    try {
        if (auto shared = lookup(closure)) {
            std::lock_guard lock(shared->mu);
            if (shared->connection == nc) {
                shared->closed = true;
                const char* text = nullptr;
                natsStatus s = natsConnection_GetLastError(nc, &text);
                shared->closed_reason = s == NATS_OK ? "connection closed" : text && *text ? text : natsStatus_GetText(s);
            }
            shared->wakeup.signal();
        }
    } catch (...) {
    }
}

// NATS header names are tokens; values may not break the line. Event
// headers are checked at enqueue; this keeps a bad endpoint header out too.
bool header_ok(const std::string& name, const std::string& value) {
    if (name.empty()) return false;
    for (char c : name)
        if (static_cast<unsigned char>(c) <= ' ' || c == ':' || c == 0x7f) return false;
    return value.find_first_of("\r\n") == std::string::npos;
}

bool reserved_header(const std::string& name) {
    return name.size() >= 5 && (name[0] == 'N' || name[0] == 'n') && (name[1] == 'A' || name[1] == 'a') &&
           (name[2] == 'T' || name[2] == 't') && (name[3] == 'S' || name[3] == 's') && name[4] == '-';
}

class NatsSink final : public Sink {
public:
    NatsSink(BrokerUrl url, Credentials credentials, Options options)
        : url_(std::move(url)), credentials_(std::move(credentials)), options_(std::move(options)),
          shared_(std::make_shared<Shared>()) {
        poller_.watch(shared_->wakeup.fd(), true, false);
        auto& r = registry();
        std::lock_guard lock(r.mu);
        id_ = r.next++;
        r.sinks.emplace(id_, shared_);
    }

    ~NatsSink() override {
        {
            auto& r = registry();
            std::lock_guard lock(r.mu);
            r.sinks.erase(id_);
        }
        disconnect();
    }

    void start(Message m) override {
        auto now = Clock::now();
        Pending p = pending_for(m, now);
        if (!ensure_connected(p)) return;
        std::string subject = url_.subject.expand(m.topic, m.key);
        natsMsg* msg = nullptr;
        natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, m.payload.data(), static_cast<int>(m.payload.size()));
        for (auto& [name, value] : m.headers) {
            if (s != NATS_OK) break;
            if (!header_ok(name, value)) {
                natsMsg_Destroy(msg);
                fail(p, 0, fmt::format("header \"{}\" cannot be sent as a NATS header", name));
                return;
            }
            if (reserved_header(name)) continue;  // Nats-*: JetStream's own, never from an event
            s = natsMsgHeader_Add(msg, name.c_str(), value.c_str());
        }
        if (s != NATS_OK) {
            natsMsg_Destroy(msg);
            fail(p, 0, fmt::format("could not build the message: {}", status_text(s)));
            return;
        }
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = m.event_id.c_str();  // Nats-Msg-Id: JetStream drops resends within its duplicate window
        po.MaxWait = std::max<int64_t>(1, m.timeout.count());
        natsMsg* key = msg;
        {
            std::lock_guard lock(shared_->mu);
            shared_->pending.add(key, p);  // before publishing: the ack may come at once
        }
        {
            SignalsBlocked blocked;  // the first async publish starts libnats' reply thread
            s = js_PublishMsgAsync(js_, &msg, &po);
        }
        if (s != NATS_OK) {
            natsMsg_Destroy(msg);  // still ours when the publish failed
            std::lock_guard lock(shared_->mu);
            if (auto taken = shared_->pending.take(key))
                shared_->done.push_back(outcome(*taken, false, 0, fmt::format("publish failed: {}", status_text(s))));
            shared_->wakeup.signal();
        }
    }

    std::size_t in_flight() const override {
        std::lock_guard lock(shared_->mu);
        return shared_->pending.size();
    }

    int fd() const override { return poller_.fd(); }

    std::optional<std::chrono::milliseconds> timeout() const override {
        std::lock_guard lock(shared_->mu);
        return wait_for(!shared_->done.empty() || shared_->closed, shared_->pending.earliest());
    }

    void perform() override {
        poller_.drain();
        shared_->wakeup.clear();
        bool closed = false;
        {
            std::lock_guard lock(shared_->mu);
            // libnats' own MaxWait timer normally answers first; this is the
            // guarantee that nothing outlives its deadline.
            for (auto& [msg, p] : shared_->pending.expired(Clock::now()))
                shared_->done.push_back(outcome(p, false, 0, "timeout: no PubAck from JetStream in time"));
            closed = shared_->closed;
        }
        if (closed) disconnect();
    }

    std::vector<Outcome> take_completed() override {
        std::lock_guard lock(shared_->mu);
        std::vector<Outcome> out;
        out.swap(shared_->done);
        return out;
    }

private:
    void fail(const Pending& p, int status, std::string error, bool refused = false) {
        std::lock_guard lock(shared_->mu);
        shared_->done.push_back(outcome(p, false, status, std::move(error), refused));
        shared_->wakeup.signal();
    }

    // Fails what is in flight on a lost connection and forgets the
    // connection; the next start() connects again.
    void disconnect() {
        std::string reason;
        {
            std::lock_guard lock(shared_->mu);
            reason = shared_->closed_reason.empty() ? "connection closed" : shared_->closed_reason;
            for (auto& [msg, p] : shared_->pending.take_all())
                shared_->done.push_back(outcome(p, false, 0, fmt::format("connection lost: {}", reason)));
            shared_->connection = nullptr;
            shared_->closed = false;
            shared_->closed_reason.clear();
            if (!shared_->done.empty()) shared_->wakeup.signal();
        }
        if (js_) jsCtx_Destroy(js_);
        if (nc_) natsConnection_Destroy(nc_);
        js_ = nullptr;
        nc_ = nullptr;
    }

    bool ensure_connected(const Pending& p) {
        {
            std::lock_guard lock(shared_->mu);
            if (nc_ && !shared_->closed) return true;
        }
        if (nc_) disconnect();
        if (auto wait = backoff_.waiting(Clock::now())) {
            fail(p, 0, *wait);
            return false;
        }
        auto deadline = Clock::now() + options_.connect_timeout;
        std::vector<std::string> servers;
        std::string refused, error;
        for (const HostPort& hp : url_.hosts) {
            auto left = std::max(milliseconds(1), std::chrono::ceil<milliseconds>(deadline - Clock::now()));
            Resolution r = resolve_guarded(hp.host, options_.allowed_networks, left);
            for (const auto& a : r.allowed) servers.push_back("nats://" + host_port(a, hp.port));
            if (!r.refused.empty() && refused.empty()) refused = r.refused;
            if (!r.error.empty() && error.empty()) error = r.error;
        }
        if (servers.empty()) {
            if (!refused.empty()) {
                fail(p, 0, refused, true);  // policy: no backoff, nothing was attempted
            } else {
                backoff_.failed(error);
                fail(p, 0, error);
            }
            return false;
        }
        std::string why = connect(servers, deadline);
        if (!why.empty()) {
            backoff_.failed(why);
            fail(p, 0, why);
            return false;
        }
        backoff_.succeeded();
        return true;
    }

    // Connects to the (checked) addresses; returns "" or why not. Blocks at
    // most until `deadline`: each server gets an equal share of what is left.
    std::string connect(const std::vector<std::string>& servers, Clock::time_point deadline) {
        natsOptions* o = nullptr;
        if (natsOptions_Create(&o) != NATS_OK) return "could not create NATS options";
        std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> opts(o, &natsOptions_Destroy);
        std::vector<const char*> list;
        for (const auto& s : servers) list.push_back(s.c_str());
        auto left = std::max(milliseconds(50), std::chrono::ceil<milliseconds>(deadline - Clock::now()));
        auto each = std::max<int64_t>(50, left.count() / static_cast<int64_t>(list.size()));
        void* closure = reinterpret_cast<void*>(id_);
        natsStatus s = natsOptions_SetServers(o, list.data(), static_cast<int>(list.size()));
        if (s == NATS_OK) s = natsOptions_SetTimeout(o, each);
        // Our own reconnects, so that a lost connection fails what is in
        // flight at once (and is retried with the worker's backoff), and
        // never to an address the guard has not seen:
        if (s == NATS_OK) s = natsOptions_SetAllowReconnect(o, false);
        if (s == NATS_OK) s = natsOptions_SetIgnoreDiscoveredServers(o, true);
        if (s == NATS_OK) s = natsOptions_SetClosedCB(o, &on_closed, closure);
        // A socket the broker stops reading blocks a publish at most this long.
        if (s == NATS_OK) s = natsOptions_SetWriteDeadline(o, std::max<int64_t>(1000, options_.connect_timeout.count()));
        if (s == NATS_OK) s = natsOptions_SetName(o, "outbox");
        if (s == NATS_OK && (!credentials_.user.empty() || !credentials_.password.empty()))
            s = natsOptions_SetUserInfo(o, credentials_.user.c_str(), credentials_.password.c_str());
        if (s == NATS_OK && !credentials_.token.empty()) s = natsOptions_SetToken(o, credentials_.token.c_str());
        if (s == NATS_OK && url_.tls()) {
            s = natsOptions_SetSecure(o, true);
            if (s == NATS_OK && !options_.ca_file.empty())
                s = natsOptions_LoadCATrustedCertificates(o, options_.ca_file.c_str());
            // We connect to addresses; the certificate must name the host.
            if (s == NATS_OK) s = natsOptions_SetExpectedHostname(o, url_.hosts.front().host.c_str());
        }
        if (s != NATS_OK) return fmt::format("bad NATS options: {}", status_text(s));

        natsConnection* nc = nullptr;
        {
            SignalsBlocked blocked;  // libnats starts its threads here
            s = natsConnection_Connect(&nc, o);
        }
        if (s != NATS_OK) {
            // The text libnats gives may say "Authorization Violation" but
            // never repeats the credentials.
            return fmt::format("could not connect to NATS: {}", status_text(s));
        }
        {
            std::lock_guard lock(shared_->mu);
            shared_->connection = nc;
            shared_->closed = false;
        }
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.PublishAsync.AckHandler = &on_ack;
        jo.PublishAsync.AckHandlerClosure = closure;
        jo.PublishAsync.MaxPending = 0;  // no stall inside publish: the worker bounds what is in flight
        jsCtx* js = nullptr;
        s = natsConnection_JetStream(&js, nc, &jo);
        if (s != NATS_OK) {
            natsConnection_Destroy(nc);
            std::lock_guard lock(shared_->mu);
            shared_->connection = nullptr;
            return fmt::format("could not create a JetStream context: {}", status_text(s));
        }
        nc_ = nc;
        js_ = js;
        return {};
    }

    BrokerUrl url_;
    Credentials credentials_;
    Options options_;
    std::shared_ptr<Shared> shared_;
    std::uintptr_t id_ = 0;
    Poller poller_;
    Backoff backoff_;
    natsConnection* nc_ = nullptr;  // only the caller's thread touches these
    jsCtx* js_ = nullptr;
};

}  // namespace

std::unique_ptr<Sink> make_nats_sink(BrokerUrl url, Credentials credentials, Options options) {
    return std::make_unique<NatsSink>(std::move(url), std::move(credentials), std::move(options));
}

}  // namespace outbox::sink::detail
