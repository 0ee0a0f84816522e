// NATS JetStream through libnats' asynchronous publish: many messages in
// flight on one connection, each completed by its PubAck (or its error, or
// libnats' MaxWait timer) in a callback on a libnats thread. Callbacks only
// move an outcome into a mutex-protected list and signal an eventfd; the
// caller's thread picks it up in perform().
//
// libnats runs in its event-loop mode (natsOptions_SetEventLoop): no thread
// of its own reads the socket. The sink polls it in its epoll set and reads
// in perform() (natsConnection_ProcessReadEvent; writes likewise), so what a
// server sends is read when the worker's loop asks for it, and counted
// (below). libnats still runs threads for its timers (PING, the publishes'
// MaxWait), for delivering PubAcks (on_ack) and for the closed callback.
//
// Connecting (name lookup, TCP, TLS, INFO / CONNECT / PING, auth) blocks
// inside natsConnection_Connect: it runs on a Connector thread
// (connector.hpp, nats_connection.cpp); messages started meanwhile wait
// for it (until their deadline).
//
// Memory. libnats allocates a message whole when its MSG line arrives and
// fills it as bytes come; it takes any size (the max_payload of the
// server's INFO limits what we send, not what the server sends), and a
// control line (INFO, -ERR, ...) has no length limit. So the sink caps
// what it lets libnats read: before each read (32 kB at most), the bytes
// read since the last complete message (TCP_INFO's bytes_received minus
// what still waits in the socket) must not exceed Options::max_reply, and
// the server may not send more messages than it was asked for (one PubAck
// per publish); else the connection is closed. A legitimate server sends
// PubAcks of about 100 bytes, PINGs and the odd INFO.
//
// The reason a connection closed (libnats' last error) is read on the
// caller's thread after libnats closed it: in event-loop mode its parser,
// which writes that text, runs only inside ProcessReadEvent on this thread.
#include <fmt/format.h>
#include <linux/sockios.h>
#include <nats/nats.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common.hpp"
#include "connector.hpp"
#include "nats_connection.hpp"
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
    bool closed = false;                // guarded by mu: libnats closed it
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

constexpr std::uint64_t kSpareMessages = 16;  // messages beyond one PubAck per publish tolerated

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

// Runs on libnats' callback thread: only says so. The reason is read on
// the caller's thread (closed_reason), once libnats has closed for good.
void on_closed(natsConnection* nc, void* closure) noexcept {
    try {
        if (auto shared = lookup(closure)) {
            std::lock_guard lock(shared->mu);
            if (shared->connection == nc) shared->closed = true;
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
        if (natsStatistics_Create(&stats_) != NATS_OK) throw std::bad_alloc();
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
        if (conn_) disconnect("the sink was closed");
        natsStatistics_Destroy(stats_);
    }

    void start(Message m) override {
        Pending p = pending_for(m, Clock::now());
        if (conn_ && natsConnection_IsClosed(conn_->nc)) disconnect(closed_reason());
        if (conn_) return publish(m, p);
        if (!connector_.running()) {
            std::string why = refused_outright(url_.hosts, options_.allowed_networks);
            if (!why.empty()) return fail(p, 0, why, true);  // policy: nothing to attempt, no backoff
            if (auto wait = backoff_.waiting(Clock::now())) return fail(p, 0, *wait);
            NatsConnectJob job{url_, credentials_, options_, Clock::now() + options_.connect_timeout,
                               reinterpret_cast<void*>(id_), &on_closed, &on_ack};
            connector_.start([job = std::move(job)] { return open_nats_connection(job); });
        }
        waiting_.push_back(Queued{std::move(m), p});
    }

    std::size_t in_flight() const override {
        std::lock_guard lock(shared_->mu);
        return shared_->pending.size() + waiting_.size();
    }

    int fd() const override { return poller_.fd(); }

    std::optional<std::chrono::milliseconds> timeout() const override {
        std::lock_guard lock(shared_->mu);
        auto earliest = shared_->pending.earliest();
        if (!waiting_.empty() && (!earliest || waiting_.front().pending.deadline < *earliest))
            earliest = waiting_.front().pending.deadline;
        return wait_for(!shared_->done.empty() || shared_->closed, earliest);
    }

    void perform() override {
        auto ready = poller_.ready();
        shared_->wakeup.clear();
        if (auto made = connector_.take()) adopt(std::move(*made));
        for (auto [fd, events] : ready) {
            if (!conn_ || fd != fd_) continue;
            if (events & EPOLLOUT) natsConnection_ProcessWriteEvent(conn_->nc);
            if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) read();
        }
        auto now = Clock::now();
        {
            std::lock_guard lock(shared_->mu);
            // libnats' own MaxWait timer normally answers first; this is the
            // guarantee that nothing outlives its deadline.
            for (auto& [msg, p] : shared_->pending.expired(now))
                shared_->done.push_back(outcome(p, false, 0, "timeout: no PubAck from JetStream in time"));
        }
        while (!waiting_.empty() && waiting_.front().pending.deadline <= now) {
            fail(waiting_.front().pending, 0, "timeout: not connected to NATS in time");
            waiting_.pop_front();
        }
        if (conn_ && natsConnection_IsClosed(conn_->nc)) disconnect(closed_reason());
    }

    std::vector<Outcome> take_completed() override {
        std::vector<Outcome> out;
        {
            std::lock_guard lock(shared_->mu);
            out.swap(shared_->done);
        }
        if (suspect_ && std::any_of(out.begin(), out.end(), [](const Outcome& o) { return o.acked; })) {
            suspect_ = false;
            backoff_.succeeded();
        }
        return out;
    }

private:
    void fail(const Pending& p, int status, std::string error, bool refused = false) {
        std::lock_guard lock(shared_->mu);
        shared_->done.push_back(outcome(p, false, status, std::move(error), refused));
        shared_->wakeup.signal();
    }

    // The Connector is done: takes the connection and publishes what
    // waited, or fails what waited.
    void adopt(NatsConnection made) {
        std::deque<Queued> waited;
        waited.swap(waiting_);
        if (!made.error.empty()) {
            if (!made.refused) backoff_.failed(made.error);  // a refusal by the policy: nothing was attempted
            for (auto& q : waited) fail(q.pending, 0, made.error, made.refused);
            return;
        }
        if (!suspect_) backoff_.succeeded();
        {
            std::lock_guard lock(shared_->mu);
            shared_->connection = made.nc;
            shared_->closed = false;
        }
        fd_ = made.socket->adopt(poller_.fd());
        baseline_ = fd_ >= 0 ? bytes_consumed(fd_).value_or(0) : 0;
        last_in_msgs_ = 0;
        conn_ = std::move(made);
        auto now = Clock::now();
        for (auto& q : waited) {
            if (q.pending.deadline <= now) fail(q.pending, 0, "timeout: not connected to NATS in time");
            else publish(q.message, q.pending);
        }
    }

    // Reads what the server sent (a few reads at most), within the caps.
    void read() {
        for (int i = 0; i < 8 && conn_; i++) {
            auto consumed = bytes_consumed(fd_);
            if (!consumed) return;  // not a socket any more: libnats closed it
            if (saturating_since(*consumed, baseline_) > options_.max_reply) {
                return close(fmt::format("the NATS server sent more than {} bytes without completing a message "
                                         "(outbox.max_reply_size)", options_.max_reply));
            }
            natsConnection_ProcessReadEvent(conn_->nc);
            std::uint64_t in_msgs = 0, out_msgs = 0;
            if (natsConnection_GetStats(conn_->nc, stats_) == NATS_OK)
                natsStatistics_GetCounts(stats_, &in_msgs, nullptr, &out_msgs, nullptr, nullptr);
            // A message completed in this read: what is unfinished now is
            // at most what this read took past it, so the count starts
            // again where the read ended (the cap then holds to within one
            // read). Counting from before the read counted the messages it
            // completed too: a burst of PubAcks that libnats and OpenSSL
            // took in two large reads closed a healthy TLS connection.
            if (in_msgs != last_in_msgs_) {
                baseline_ = bytes_consumed(fd_).value_or(*consumed);
                last_in_msgs_ = in_msgs;
            }
            if (in_msgs > out_msgs + kSpareMessages)
                return close(fmt::format("the NATS server sent {} messages for {} publishes", in_msgs, out_msgs));
            int queued = 0;
            if (ioctl(fd_, SIOCINQ, &queued) != 0 || queued == 0) return;
        }
    }

    // Closes a connection whose server misbehaves. The next connect waits
    // for the backoff, which only a PubAck resets: libnats leaks a message
    // it was reading (its parser frees only small ones: the part read is
    // resident, at most max_reply plus one read), so a server that sends
    // one on every connection must not be reconnected to at once.
    void close(const std::string& why) {
        backoff_.failed(why);
        suspect_ = true;
        disconnect(why);
    }

    // Why libnats closed the connection: read here, after it did (the
    // parser that writes the text runs on this thread only).
    std::string closed_reason() {
        const char* text = nullptr;
        natsStatus s = natsConnection_GetLastError(conn_->nc, &text);
        if (s == NATS_OK) return "connection closed";
        return text && *text ? std::string(text) : std::string(natsStatus_GetText(s));
    }

    // Fails what is in flight and forgets the connection; the next start()
    // connects again.
    void disconnect(const std::string& reason) {
        {
            std::lock_guard lock(shared_->mu);
            for (auto& [msg, p] : shared_->pending.take_all())
                shared_->done.push_back(outcome(p, false, 0, fmt::format("connection lost: {}", reason)));
            shared_->connection = nullptr;
            shared_->closed = false;
            if (!shared_->done.empty()) shared_->wakeup.signal();
        }
        NatsConnection c = std::move(*conn_);
        conn_.reset();
        fd_ = -1;
        close_without_waiting(std::move(c));
    }

    void publish(const Message& m, const Pending& p) {
        std::string subject = url_.subject.expand(m.topic, m.key);
        natsMsg* msg = nullptr;
        natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, m.payload.data(), static_cast<int>(m.payload.size()));
        for (auto& [name, value] : m.headers) {
            if (s != NATS_OK) break;
            if (!header_ok(name, value)) {
                natsMsg_Destroy(msg);
                return fail(p, 0, fmt::format("header \"{}\" cannot be sent as a NATS header", name));
            }
            if (reserved_header(name)) continue;  // Nats-*: JetStream's own, never from an event
            s = natsMsgHeader_Add(msg, name.c_str(), value.c_str());
        }
        if (s != NATS_OK) {
            natsMsg_Destroy(msg);
            return fail(p, 0, fmt::format("could not build the message: {}", nats_status_text(s)));
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
            SignalsBlocked blocked;  // the first async publish starts the PubAck subscription's thread
            s = js_PublishMsgAsync(conn_->js, &msg, &po);
        }
        if (s != NATS_OK) {
            natsMsg_Destroy(msg);  // still ours when the publish failed
            std::lock_guard lock(shared_->mu);
            if (auto taken = shared_->pending.take(key))
                shared_->done.push_back(outcome(*taken, false, 0, fmt::format("publish failed: {}", nats_status_text(s))));
            shared_->wakeup.signal();
        }
    }

    BrokerUrl url_;
    Credentials credentials_;
    Options options_;
    std::shared_ptr<Shared> shared_;
    std::uintptr_t id_ = 0;
    Poller poller_;
    Connector<NatsConnection> connector_{poller_};
    Backoff backoff_;
    // Only the caller's thread touches these:
    std::optional<NatsConnection> conn_;
    int fd_ = -1;                   // conn_'s socket
    std::uint64_t baseline_ = 0;    // bytes consumed when the last complete message began, at the latest
    std::uint64_t last_in_msgs_ = 0;
    natsStatistics* stats_ = nullptr;
    bool suspect_ = false;          // closed for misbehaving, no PubAck since
    std::deque<Queued> waiting_;    // started while connecting
};

}  // namespace

std::unique_ptr<Sink> make_nats_sink(BrokerUrl url, Credentials credentials, Options options) {
    return std::make_unique<NatsSink>(std::move(url), std::move(credentials), std::move(options));
}

}  // namespace outbox::sink::detail
