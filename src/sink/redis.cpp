// Redis Streams through hiredis' asynchronous context, driven by our own
// event hooks: hiredis asks to watch its socket for reading / writing, the
// hooks put it in our epoll set, perform() hands readiness back. Commands
// are pipelined on one connection; replies come in order, each completing
// its XADD. Nothing blocks: the name is looked up on a Connector thread,
// the connect is non-blocking (to the address looked up and checked),
// reads and writes happen only when epoll says so. Messages started while
// the name is looked up wait for it (until their deadline).
//
// What a peer can make us hold, per connection (Options::max_reply):
// - hiredis keeps an unfinished reply in its read buffer until it is whole
//   ($2147483647 would be 2 GiB): after each read (16 kB) a buffer holding
//   more than max_reply closes the connection;
// - replies are built as objects (ReplyGuard below): a reply whose objects
//   would take more than max_reply (*2147483647: a 16 GiB array) is refused
//   before it is allocated, and so is a reply nobody asked for (hiredis 0.14
//   would abort() the process on it);
// - a command without a reply by its deadline closes the connection: every
//   later reply queues behind the missing one, which may be growing.
//
// hiredis 0.14 (Debian 12) has neither TLS nor command timeouts: rediss://
// is refused (sink.cpp); deadlines are kept here. Redis has no dedupe: a
// resend after a crash can add an event twice; consumers dedupe on "id".
#include <fmt/format.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sys/epoll.h>

#include <deque>

#include "common.hpp"
#include "connector.hpp"
#include "protocols.hpp"

namespace outbox::sink::detail {

namespace {

// JSON string literal (for the "headers" field): quotes, backslashes and
// control characters escaped; other bytes as they are (UTF-8 stays UTF-8).
void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
                else out.push_back(ch);
        }
    }
    out.push_back('"');
}

std::string headers_json(const std::vector<std::pair<std::string, std::string>>& headers) {
    std::string out = "{";
    for (std::size_t i = 0; i < headers.size(); i++) {
        if (i) out.push_back(',');
        append_json_string(out, headers[i].first);
        out.push_back(':');
        append_json_string(out, headers[i].second);
    }
    out.push_back('}');
    return out;
}

// Redis error replies have no numeric codes; map their prefix to the
// status recorded (docs/sinks.md): refused credentials 403, a server that
// cannot write now 503, anything else (wrong type, syntax) 400.
int error_status(std::string_view error) {
    std::string_view word = error.substr(0, error.find(' '));
    if (word == "NOAUTH" || word == "WRONGPASS" || word == "NOPERM") return 403;
    if (word == "OOM" || word == "MISCONF" || word == "BUSY" || word == "LOADING" || word == "MASTERDOWN" ||
        word == "READONLY" || word == "TRYAGAIN" || word == "CLUSTERDOWN")
        return 503;
    return 400;
}

// hiredis' default reply-object functions, wrapped: the sink's limits are
// checked before hiredis allocates a reply's objects. The reader's privdata
// is the ReplyGuard of the connection.
struct ReplyGuard {
    const redisReplyObjectFunctions* defaults = nullptr;
    const redisAsyncContext* ac = nullptr;
    std::size_t limit = 0;
    std::size_t building = 0;  // bytes of the reply being built
    std::string refused;       // why a reply was refused ("" when none was)

    // Counts `bytes` for the reply `task` belongs to; false when it is one
    // to refuse.
    bool admit(const redisReadTask* task, std::size_t bytes) noexcept {
        if (!task->parent) {
            building = 0;
            if (!ac->replies.head) {
                refused = "Redis sent a reply to no command";
                return false;
            }
        }
        building += bytes;
        if (building > limit) {
            refused = fmt::format("Redis sent a reply larger than {} bytes (outbox.max_reply_size)", limit);
            return false;
        }
        return true;
    }

    static ReplyGuard* of(const redisReadTask* task) { return static_cast<ReplyGuard*>(task->privdata); }

    static void* string(const redisReadTask* task, char* str, std::size_t len) {
        auto* g = of(task);
        return g->admit(task, sizeof(redisReply) + len + 1) ? g->defaults->createString(task, str, len) : nullptr;
    }
    static void* array(const redisReadTask* task, int elements) {
        auto* g = of(task);
        std::size_t bytes = sizeof(redisReply) + static_cast<std::size_t>(std::max(elements, 0)) * sizeof(redisReply*);
        return g->admit(task, bytes) ? g->defaults->createArray(task, elements) : nullptr;
    }
    static void* integer(const redisReadTask* task, long long value) {
        auto* g = of(task);
        return g->admit(task, sizeof(redisReply)) ? g->defaults->createInteger(task, value) : nullptr;
    }
    static void* nil(const redisReadTask* task) {
        auto* g = of(task);
        return g->admit(task, sizeof(redisReply)) ? g->defaults->createNil(task) : nullptr;
    }
};

class RedisSink final : public Sink {
public:
    RedisSink(BrokerUrl url, Credentials credentials, Options options)
        : url_(std::move(url)), credentials_(std::move(credentials)), options_(std::move(options)) {}

    ~RedisSink() override {
        if (ac_) redisAsyncFree(ac_);  // runs the reply callbacks with NULL: they fail what is in flight
    }

    void start(Message m) override {
        Pending p = pending_for(m, Clock::now());
        if (ac_) return send(m, p);
        if (!lookup_.running()) {
            std::string why = refused_outright(url_.hosts, options_.allowed_networks);
            if (!why.empty()) return done_.fail(p, 0, why, true);  // policy: nothing to attempt, no backoff
            if (auto wait = backoff_.waiting(Clock::now())) return done_.fail(p, 0, *wait);
            look_up();
        }
        waiting_.push_back(Queued{std::move(m), p});
    }

    std::size_t in_flight() const override { return in_flight_.size() + waiting_.size(); }

    int fd() const override { return poller_.fd(); }

    std::optional<std::chrono::milliseconds> timeout() const override {
        auto earliest = in_flight_.earliest();
        auto consider = [&](Clock::time_point t) {
            if (!earliest || t < *earliest) earliest = t;
        };
        if (!waiting_.empty()) consider(waiting_.front().pending.deadline);
        if (ac_ && !connected_) consider(connect_deadline_);
        return wait_for(!done_.empty(), earliest);
    }

    void perform() override {
        if (auto looked_up = lookup_.take()) connect(*looked_up);
        for (auto [fd, events] : poller_.ready()) {
            if (!ac_ || fd != sockfd_) continue;
            // hiredis may free the context in either call (lost connection).
            if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) redisAsyncHandleWrite(ac_);
            if (ac_ && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
                redisAsyncHandleRead(ac_);
                // An unfinished reply stays in the reader's buffer: cap it.
                if (ac_ && ac_->c.reader->len - ac_->c.reader->pos > options_.max_reply)
                    close(fmt::format("Redis sent a reply larger than {} bytes (outbox.max_reply_size)",
                                      options_.max_reply));
                // Replies out of step with the commands: the next ones would answer the wrong XADDs.
                if (ac_ && out_of_step_) close("connection closed: Redis answered a command with another's reply");
            }
        }
        auto now = Clock::now();
        if (ac_ && !connected_ && now >= connect_deadline_) {
            backoff_.failed(fmt::format("connect timeout after {} ms", options_.connect_timeout.count()));
            close(fmt::format("connect timeout after {} ms", options_.connect_timeout.count()));
        }
        bool expired = false;
        for (auto& [id, p] : in_flight_.expired(now)) {
            done_.fail(p, 0, fmt::format("timeout: no reply from Redis in {} ms",
                                         std::chrono::duration_cast<milliseconds>(p.deadline - p.started).count()));
            expired = true;
        }
        // The missing reply may be on its way, growing: every later reply
        // waits behind it. A fresh connection serves the next messages.
        if (expired && ac_) close("connection closed: an earlier command got no reply in time");
        while (!waiting_.empty() && waiting_.front().pending.deadline <= now) {
            done_.fail(waiting_.front().pending, 0, "timeout: not connected to Redis in time");
            waiting_.pop_front();
        }
    }

    std::vector<Outcome> take_completed() override { return done_.take(); }

private:
    // Looks the host up on a Connector thread; perform() connects when it is done.
    void look_up() {
        connect_deadline_ = Clock::now() + options_.connect_timeout;
        lookup_.start([host = url_.hosts.front().host, allowed = options_.allowed_networks,
                       timeout = options_.connect_timeout] { return resolve_guarded(host, allowed, timeout); });
    }

    void send(const Message& m, const Pending& p) {
        std::string stream = url_.stream.expand(m.topic, m.key);
        std::string headers = headers_json(m.headers);
        std::string maxlen = url_.maxlen ? std::to_string(*url_.maxlen) : std::string();
        std::vector<std::string_view> args = {"XADD", stream};
        if (url_.maxlen) args.insert(args.end(), {"MAXLEN", "~", maxlen});
        args.insert(args.end(), {"*", "id", m.event_id, "topic", m.topic});
        if (m.key) args.insert(args.end(), {"key", *m.key});
        args.insert(args.end(), {"headers", headers, "payload", m.payload});
        std::uintptr_t id = next_id_++;
        in_flight_.add(id, p);
        if (!command(args, id)) {
            if (auto taken = in_flight_.take(id)) done_.fail(*taken, 0, "could not queue the command");
        }
    }

    bool command(const std::vector<std::string_view>& args, std::uintptr_t id) {
        std::vector<const char*> argv;
        std::vector<std::size_t> argvlen;
        for (auto a : args) {
            argv.push_back(a.data());
            argvlen.push_back(a.size());
        }
        return redisAsyncCommandArgv(ac_, &RedisSink::on_reply, reinterpret_cast<void*>(id), static_cast<int>(argv.size()),
                                     argv.data(), argvlen.data()) == REDIS_OK;
    }

    void fail_waiting(int status, const std::string& why, bool refused = false) {
        for (auto& q : waiting_) done_.fail(q.pending, status, why, refused);
        waiting_.clear();
    }

    // The lookup is done: connects (without blocking) to its first allowed
    // address and pipelines AUTH, SELECT and what waited.
    void connect(const Resolution& r) {
        if (!r.refused.empty()) return fail_waiting(0, r.refused, true);  // policy: no backoff
        if (!r.error.empty()) {
            backoff_.failed(r.error);
            return fail_waiting(0, r.error);
        }
        // The first allowed address; a name with several is not tried in turn.
        const HostPort& hp = url_.hosts.front();
        std::string ip = r.allowed.front().to_string();
        redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), hp.port);
        if (!ac || ac->err) {
            std::string why = fmt::format("could not connect to {}: {}", host_port(r.allowed.front(), hp.port),
                                          ac ? ac->errstr : "out of memory");
            if (ac) redisAsyncFree(ac);
            backoff_.failed(why);
            return fail_waiting(0, why);
        }
        ac_ = ac;
        sockfd_ = ac->c.fd;
        connected_ = false;
        lost_reason_.clear();
        out_of_step_ = false;
        guard_ = ReplyGuard{ac->c.reader->fn, ac, options_.max_reply, 0, {}};
        guarded_ = *ac->c.reader->fn;
        guarded_.createString = &ReplyGuard::string;
        guarded_.createArray = &ReplyGuard::array;
        guarded_.createInteger = &ReplyGuard::integer;
        guarded_.createNil = &ReplyGuard::nil;
        ac->c.reader->fn = &guarded_;
        ac->c.reader->privdata = &guard_;
        ac->data = this;
        ac->ev.data = this;
        ac->ev.addRead = [](void* self) { static_cast<RedisSink*>(self)->interest(true, std::nullopt); };
        ac->ev.delRead = [](void* self) { static_cast<RedisSink*>(self)->interest(false, std::nullopt); };
        ac->ev.addWrite = [](void* self) { static_cast<RedisSink*>(self)->interest(std::nullopt, true); };
        ac->ev.delWrite = [](void* self) { static_cast<RedisSink*>(self)->interest(std::nullopt, false); };
        ac->ev.cleanup = [](void* self) { static_cast<RedisSink*>(self)->gone(); };
        redisAsyncSetConnectCallback(ac, &RedisSink::on_connect);
        reading_ = writing_ = false;
        interest(true, true);  // the connect completes when the socket is writable
        // Pipelined before the first XADD: a refused AUTH makes the XADDs
        // fail with NOAUTH (403).
        if (!credentials_.password.empty()) {
            if (credentials_.user.empty()) command({"AUTH", credentials_.password}, 0);
            else command({"AUTH", credentials_.user, credentials_.password}, 0);
        }
        if (url_.db != 0) {
            std::string db = std::to_string(url_.db);
            command({"SELECT", db}, 0);
        }
        std::deque<Queued> waited;
        waited.swap(waiting_);
        auto now = Clock::now();
        for (auto& q : waited) {
            if (q.pending.deadline <= now) done_.fail(q.pending, 0, "timeout: not connected to Redis in time");
            else send(q.message, q.pending);
        }
    }

    // Closes the connection: what is in flight fails with `why`.
    void close(std::string why) {
        lost_reason_ = std::move(why);
        if (ac_) redisAsyncFree(ac_);
    }

    void interest(std::optional<bool> read, std::optional<bool> write) noexcept {
        if (read) reading_ = *read;
        if (write) writing_ = *write;
        try {
            if (sockfd_ >= 0) poller_.watch(sockfd_, reading_, writing_);
        } catch (...) {
        }
    }

    // hiredis frees the context: after a lost connection, a failed connect
    // or redisAsyncFree. Its reply callbacks have all run (with NULL).
    void gone() noexcept {
        if (sockfd_ >= 0) poller_.forget(sockfd_);
        sockfd_ = -1;
        ac_ = nullptr;
        connected_ = false;
        auth_error_.clear();
    }

    static void on_connect(const redisAsyncContext* ac, int status) {
        auto* self = static_cast<RedisSink*>(ac->data);
        if (status == REDIS_OK) {
            self->connected_ = true;
            self->backoff_.succeeded();
        } else {
            self->lost_reason_ = fmt::format("could not connect: {}", ac->errstr);
            self->backoff_.failed(self->lost_reason_);
        }
    }

    static void on_reply(redisAsyncContext* ac, void* r, void* privdata) {
        auto* self = static_cast<RedisSink*>(ac->data);
        auto* reply = static_cast<redisReply*>(r);
        auto id = reinterpret_cast<std::uintptr_t>(privdata);
        try {
            if (id == 0) {  // AUTH or SELECT
                if (reply && reply->type == REDIS_REPLY_ERROR) self->auth_error_ = std::string(reply->str, reply->len);
                return;
            }
            auto p = self->in_flight_.take(id);
            if (!p) return;  // it timed out already
            // A refused AUTH decides: Redis 7 answers an unauthenticated
            // XADD with a protocol error and closes the connection.
            if (!self->auth_error_.empty() && (!reply || reply->type == REDIS_REPLY_ERROR)) {
                self->done_.fail(*p, error_status(self->auth_error_),
                                 fmt::format("Redis refused AUTH or SELECT: {}", self->auth_error_));
            } else if (!reply) {
                std::string why = !self->lost_reason_.empty()   ? self->lost_reason_
                                  : !self->guard_.refused.empty() ? self->guard_.refused
                                  : ac->err                      ? fmt::format("connection lost: {}", ac->errstr)
                                                                 : std::string("connection closed");
                self->done_.fail(*p, 0, why);
            } else if (reply->type == REDIS_REPLY_ERROR) {
                std::string error(reply->str, reply->len);
                self->done_.fail(*p, error_status(error), fmt::format("Redis refused XADD: {}", error));
            } else if (reply->type != REDIS_REPLY_STRING) {
                // XADD answers with the entry's id; anything else was meant
                // for another command (a peer that sends replies unasked).
                self->done_.fail(*p, 0, "Redis answered XADD without a stream id");
                self->out_of_step_ = true;
            } else {
                self->done_.ack(*p);  // the entry's stream id
            }
        } catch (...) {
            // Out of memory: the message's deadline fails it.
        }
    }

    BrokerUrl url_;
    Credentials credentials_;
    Options options_;
    Poller poller_;
    Backoff backoff_;
    Connector<Resolution> lookup_{poller_};
    redisAsyncContext* ac_ = nullptr;
    ReplyGuard guard_;
    redisReplyObjectFunctions guarded_{};
    int sockfd_ = -1;
    bool connected_ = false;
    bool reading_ = false, writing_ = false;
    Clock::time_point connect_deadline_;
    std::string lost_reason_;
    bool out_of_step_ = false;  // a reply that no XADD gets: perform() closes the connection
    std::string auth_error_;
    std::uintptr_t next_id_ = 1;  // 0 marks AUTH / SELECT
    InFlight<std::uintptr_t> in_flight_;
    std::deque<Queued> waiting_;  // started while the name was looked up
    Completed done_;
};

}  // namespace

std::unique_ptr<Sink> make_redis_sink(BrokerUrl url, Credentials credentials, Options options) {
    return std::make_unique<RedisSink>(std::move(url), std::move(credentials), std::move(options));
}

}  // namespace outbox::sink::detail
