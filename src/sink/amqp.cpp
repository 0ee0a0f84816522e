// RabbitMQ (AMQP 0-9-1) through rabbitmq-c: one connection, one channel in
// confirm mode, every message published mandatory and persistent; the
// broker's basic.ack (by delivery tag, `multiple` honoured) is the success,
// a basic.return before it (unroutable) or a basic.nack is a failure.
//
// rabbitmq-c is a blocking library. What may block, and where:
// - connect (name lookup, TCP, TLS handshake), login, channel.open and
//   confirm.select: at most Options::connect_timeout in all, on a Connector
//   thread (connector.hpp), never on the caller's; messages started
//   meanwhile wait for the connection (until their deadline).
// - amqp_basic_publish: rabbitmq-c waits without a deadline when the socket
//   is full. It is only called when the socket's send queue has room for
//   the whole message (SIOCOUTQ against SO_SNDBUF) and the broker has not
//   sent connection.blocked; else the message waits here, without blocking,
//   until there is room or it times out. A message larger than the free
//   buffer is sent when the queue is empty; TCP_USER_TIMEOUT bounds what
//   it can then wait for a broker that stopped reading.
// - reading: amqp_simple_wait_frame_noblock with a zero timeout, never waits.
//
// Memory: rabbitmq-c refuses a frame larger than the frame_max of the
// connection (131072 bytes during the handshake; then what we ask for:
// Options::max_reply, between 4096 and 131072) before buffering it, and
// decodes one frame at a time; bodies of returned messages are skipped.
// What it decodes stays in the connection's pool, whose pages are kept
// for the connection's life once allocated, until the buffers are
// released: they are released after every frame, and one perform() reads
// at most kFramesPerRound frames, so that a broker flooding frames
// (connection.blocked without end) neither grows the pool by the size of
// its flood nor holds the worker's loop while it lasts.
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <fmt/format.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <deque>
#include <map>

#include "common.hpp"
#include "connector.hpp"
#include "protocols.hpp"

namespace outbox::sink::detail {

namespace {

constexpr std::uint16_t kChannel = 1;
constexpr int kFramesPerRound = 256;  // frames read in one perform(); the rest in the next
constexpr const char* kSystemCaFile = "/etc/ssl/certs/ca-certificates.crt";  // Debian's bundle

timeval to_timeval(milliseconds ms) {
    ms = std::max(ms, milliseconds(1));
    return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

amqp_bytes_t bytes(const std::string& s) { return amqp_bytes_t{s.size(), const_cast<char*>(s.data())}; }

std::string text(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

// A failed RPC (login, channel.open, confirm.select): its code (0 when the
// broker sent none) and a readable reason.
std::pair<int, std::string> rpc_error(const amqp_rpc_reply_t& r, std::string_view what) {
    switch (r.reply_type) {
        case AMQP_RESPONSE_NORMAL: return {0, {}};
        case AMQP_RESPONSE_NONE: return {0, fmt::format("{}: no reply", what)};
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            return {0, fmt::format("{}: {}", what, amqp_error_string2(r.library_error))};
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
                auto* c = static_cast<amqp_connection_close_t*>(r.reply.decoded);
                return {c->reply_code, fmt::format("{}: broker closed the connection: {} {}", what, c->reply_code,
                                                   text(c->reply_text))};
            }
            if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
                auto* c = static_cast<amqp_channel_close_t*>(r.reply.decoded);
                return {c->reply_code, fmt::format("{}: broker closed the channel: {} {}", what, c->reply_code,
                                                   text(c->reply_text))};
            }
            return {0, fmt::format("{}: unexpected server reply", what)};
    }
    return {0, std::string(what)};
}

// A connection made on the Connector thread, handed to the sink; or why not.
struct AmqpConnection {
    struct Destroy {
        void operator()(amqp_connection_state_t c) const noexcept { amqp_destroy_connection(c); }
    };
    std::unique_ptr<amqp_connection_state_t_, Destroy> conn;
    int fd = -1;
    int status = 0;        // the broker's reply code, when it refused
    bool refused = false;  // the address policy refused the address
    std::string error;     // set when there is no connection
};

AmqpConnection failed(int status, std::string why, bool refused = false) {
    AmqpConnection out;
    out.status = status;
    out.error = std::move(why);
    out.refused = refused;
    return out;
}

// Opens the connection and its channel in confirm mode: the whole blocking
// part, run on a Connector thread with copies of what it needs. Connects to
// the first address that answers, by `deadline`.
AmqpConnection open_connection(const BrokerUrl& url, const Credentials& credentials, const Options& options,
                               Clock::time_point deadline) {
    const HostPort& hp = url.hosts.front();
    Resolution r = resolve_guarded(hp.host, options.allowed_networks, options.connect_timeout);
    if (!r.refused.empty()) return failed(0, r.refused, true);
    if (!r.error.empty()) return failed(0, r.error);
    std::string last = "no address";
    for (const auto& address : r.allowed) {
        auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
        if (left <= milliseconds(0)) return failed(0, fmt::format("connect timeout after {} ms", options.connect_timeout.count()));
        AmqpConnection made;
        made.conn.reset(amqp_new_connection());
        if (!made.conn) throw std::bad_alloc();
        amqp_connection_state_t conn = made.conn.get();
        amqp_socket_t* socket = url.tls() ? amqp_ssl_socket_new(conn) : amqp_tcp_socket_new(conn);
        if (!socket) return failed(0, "could not create a socket");
        std::string host = address.to_string();
        if (url.tls()) {
            const std::string& ca = options.ca_file.empty() ? std::string(kSystemCaFile) : options.ca_file;
            if (amqp_ssl_socket_set_cacert(socket, ca.c_str()) != AMQP_STATUS_OK)
                return failed(0, "TLS CA file could not be read (outbox.ca_file)");
            amqp_ssl_socket_set_verify_peer(socket, 1);
            amqp_ssl_socket_set_verify_hostname(socket, 1);
            // The certificate names the host, not the address: connect by
            // name; the address actually connected is checked below.
            host = hp.host;
        }
        timeval tv = to_timeval(left);
        int rc = amqp_socket_open_noblock(socket, host.c_str(), hp.port, &tv);
        if (rc != AMQP_STATUS_OK) {
            last = fmt::format("could not connect to {}: {}", host_port(address, hp.port), amqp_error_string2(rc));
            continue;
        }
        int fd = amqp_get_sockfd(conn);
        if (std::string why = check_peer(fd, options.allowed_networks); !why.empty()) return failed(0, why, true);
        // A broker that stops reading (or vanishes) while a publish is
        // being written breaks the connection after this long.
        unsigned int user_timeout = static_cast<unsigned int>(std::max<long>(5000, options.connect_timeout.count()));
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);

        left = std::max(milliseconds(1), std::chrono::ceil<milliseconds>(deadline - Clock::now()));
        tv = to_timeval(left);
        amqp_set_handshake_timeout(conn, &tv);
        amqp_set_rpc_timeout(conn, &tv);
        // Ask for connection.blocked: RabbitMQ then says when a resource
        // alarm stops it reading, and nothing is written meanwhile.
        amqp_table_entry_t caps[1]{};
        caps[0].key = amqp_cstring_bytes("connection.blocked");
        caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
        caps[0].value.value.boolean = 1;
        amqp_table_entry_t props[1]{};
        props[0].key = amqp_cstring_bytes("capabilities");
        props[0].value.kind = AMQP_FIELD_KIND_TABLE;
        props[0].value.value.table = amqp_table_t{1, caps};
        amqp_table_t props_table{1, props};
        // The largest frame the broker may send us (and we send): the cap
        // on what one frame of a reply can take.
        int frame_max = static_cast<int>(std::clamp<std::size_t>(options.max_reply, 4096, 131072));
        amqp_rpc_reply_t reply =
            amqp_login_with_properties(conn, url.vhost.c_str(), 0, frame_max, 0, &props_table, AMQP_SASL_METHOD_PLAIN,
                                       credentials.user.c_str(), credentials.password.c_str());
        if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
            auto [code, why] = rpc_error(reply, "login failed");
            return failed(code, why);
        }
        amqp_channel_open(conn, kChannel);
        reply = amqp_get_rpc_reply(conn);
        if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
            amqp_confirm_select(conn, kChannel);
            reply = amqp_get_rpc_reply(conn);
        }
        if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
            auto [code, why] = rpc_error(reply, "could not open a channel in confirm mode");
            return failed(code, why);
        }
        amqp_maybe_release_buffers(conn);
        made.fd = fd;
        return made;
    }
    return failed(0, last);
}

class AmqpSink final : public Sink {
public:
    AmqpSink(BrokerUrl url, Credentials credentials, Options options)
        : url_(std::move(url)), credentials_(std::move(credentials)), options_(std::move(options)) {
        if (credentials_.user.empty() && credentials_.password.empty()) {
            credentials_.user = "guest";  // what an AMQP URI without userinfo means
            credentials_.password = "guest";
        }
    }

    ~AmqpSink() override { drop({}); }

    void start(Message m) override {
        Pending p = pending_for(m, Clock::now());
        if (!conn_ && !connector_.running()) {
            std::string why = refused_outright(url_.hosts, options_.allowed_networks);
            if (!why.empty()) return done_.fail(p, 0, why, true);  // policy: nothing to attempt, no backoff
            if (auto wait = backoff_.waiting(Clock::now())) return done_.fail(p, backoff_status_, *wait);
            connector_.start([url = url_, credentials = credentials_, options = options_,
                              deadline = Clock::now() + options_.connect_timeout] {
                return open_connection(url, credentials, options, deadline);
            });
        }
        queued_.push_back(Queued{std::move(m), p});
        flush();
    }

    std::size_t in_flight() const override { return confirms_.size() + queued_.size(); }

    int fd() const override { return poller_.fd(); }

    std::optional<std::chrono::milliseconds> timeout() const override {
        auto earliest = confirms_.earliest();
        if (!queued_.empty() && (!earliest || queued_.front().pending.deadline < *earliest))
            earliest = queued_.front().pending.deadline;
        return wait_for(!done_.empty() || more_to_read_, earliest);
    }

    void perform() override {
        poller_.drain();
        if (auto made = connector_.take()) {
            expire();  // what waited for the connection past its deadline fails as "not connected"
            adopt(std::move(*made));
        }
        if (conn_) read_frames();
        expire();  // before flush(): nothing is published past its deadline
        if (conn_) flush();
    }

    std::vector<Outcome> take_completed() override { return done_.take(); }

private:
    // Closes the connection and fails everything in flight with `status`
    // and `reason` (status 0 and "connection lost" by default).
    void drop(const std::string& reason, int status = 0) {
        for (auto& [tag, p] : confirms_.take_all()) done_.fail(p, status, reason);
        for (auto& q : queued_) done_.fail(q.pending, status, reason);
        queued_.clear();
        ids_.clear();
        returned_.clear();
        returning_.reset();
        if (conn_) {
            if (sockfd_ >= 0) poller_.forget(sockfd_);
            // No close handshake: it would wait for the broker's reply.
            amqp_destroy_connection(conn_);
        }
        conn_ = nullptr;
        sockfd_ = -1;
        blocked_ = false;
        more_to_read_ = false;
    }

    // The Connector is done: takes the connection, or fails what waited for it.
    void adopt(AmqpConnection made) {
        if (!made.error.empty()) {
            if (!made.refused) {  // a refusal by the policy is not backed off: nothing was attempted
                backoff_.failed(made.error);
                backoff_status_ = made.status;
            }
            for (auto& q : queued_) done_.fail(q.pending, made.status, made.error, made.refused);
            queued_.clear();
            return;
        }
        backoff_.succeeded();
        conn_ = made.conn.release();
        sockfd_ = made.fd;
        next_tag_ = 1;
        poller_.watch(sockfd_, true, false);
        last_received_ = Clock::now();
    }

    // Room in the socket's send queue for `size` more bytes without blocking.
    bool room_for(std::size_t size) const {
        int queued = 0, sndbuf = 0;
        socklen_t len = sizeof sndbuf;
        if (ioctl(sockfd_, SIOCOUTQ, &queued) != 0 || getsockopt(sockfd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) != 0)
            return queued == 0;
        if (queued == 0) return true;
        // The kernel charges about twice the data for its buffers.
        return static_cast<std::size_t>(queued) * 2 + size * 2 + 4096 <= static_cast<std::size_t>(sndbuf);
    }

    // Publishes what waits, as long as the socket takes it without blocking.
    void flush() {
        while (conn_ && !queued_.empty() && !blocked_) {
            Queued& q = queued_.front();
            const Message& m = q.message;
            std::size_t size = m.payload.size() + m.topic.size() + 512;
            for (auto& [n, v] : m.headers) size += n.size() + v.size() + 8;
            if (!room_for(size)) break;
            std::string routing_key = url_.routing_key.expand(m.topic, m.key);
            if (routing_key.size() > 255) {
                done_.fail(q.pending, 0, "the routing key is longer than 255 bytes");
                queued_.pop_front();
                continue;
            }
            std::vector<amqp_table_entry_t> entries;
            entries.reserve(m.headers.size());
            for (auto& [name, value] : m.headers) {
                amqp_table_entry_t e{};
                e.key = bytes(name);
                e.value.kind = AMQP_FIELD_KIND_UTF8;
                e.value.value.bytes = bytes(value);
                entries.push_back(e);
            }
            amqp_basic_properties_t props{};
            props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                           AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_HEADERS_FLAG;
            props.content_type = amqp_cstring_bytes("application/json");
            props.delivery_mode = 2;  // persistent
            props.message_id = bytes(m.event_id);
            props.type = bytes(m.topic);
            props.timestamp = static_cast<uint64_t>(std::time(nullptr));
            props.headers = amqp_table_t{static_cast<int>(entries.size()), entries.data()};
            int rc = amqp_basic_publish(conn_, kChannel, bytes(url_.exchange), bytes(routing_key), /*mandatory=*/1,
                                        /*immediate=*/0, &props, bytes(m.payload));
            if (rc != AMQP_STATUS_OK) {
                drop(fmt::format("connection lost: {}", amqp_error_string2(rc)));
                return;
            }
            std::uint64_t tag = next_tag_++;
            confirms_.add(tag, q.pending);
            ids_.emplace(tag, m.event_id);
            queued_.pop_front();
        }
        if (conn_) poller_.watch(sockfd_, true, !queued_.empty() && !blocked_);
    }

    void confirm(std::uint64_t tag, bool multiple, bool ack) {
        auto finished = multiple ? confirms_.take_through(tag) : std::vector<std::pair<std::uint64_t, Pending>>{};
        if (!multiple)
            if (auto p = confirms_.take(tag)) finished.emplace_back(tag, *p);
        for (auto& [t, p] : finished) {
            ids_.erase(t);
            auto r = returned_.find(t);
            if (r != returned_.end()) {
                done_.fail(p, r->second.first, r->second.second);
                returned_.erase(r);
            } else if (ack) {
                done_.ack(p);
            } else {
                done_.fail(p, 0, "the broker refused the message (basic.nack)");
            }
        }
    }

    // A basic.return carries no delivery tag: the returned message is the
    // oldest unconfirmed one with its message_id (the event id). RabbitMQ
    // sends the return before the ack of the same message.
    void mark_returned(const std::string& message_id) {
        for (auto& [tag, id] : ids_) {
            if (id != message_id || returned_.count(tag)) continue;
            returned_.emplace(tag, std::pair<int, std::string>{
                                       returning_->code, fmt::format("unroutable: the broker returned the message: {} {} "
                                                                     "(exchange \"{}\", routing key \"{}\")",
                                                                     returning_->code, returning_->text,
                                                                     returning_->exchange, returning_->routing_key)});
            return;
        }
    }

    void read_frames() {
        more_to_read_ = false;
        for (int n = 0;; n++) {
            amqp_maybe_release_buffers(conn_);  // what the last frame decoded: nothing points into it
            if (n == kFramesPerRound) {
                more_to_read_ = true;  // perform() again without waiting for the socket
                return;
            }
            amqp_frame_t frame;
            timeval zero{0, 0};
            int rc = amqp_simple_wait_frame_noblock(conn_, &frame, &zero);
            if (rc == AMQP_STATUS_TIMEOUT) break;
            if (rc != AMQP_STATUS_OK) {
                drop(fmt::format("connection lost: {}", amqp_error_string2(rc)));
                return;
            }
            last_received_ = Clock::now();
            if (frame.channel == kChannel && frame.frame_type == AMQP_FRAME_HEADER && returning_) {
                auto* props = static_cast<amqp_basic_properties_t*>(frame.payload.properties.decoded);
                if (props && (props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)) mark_returned(text(props->message_id));
                returning_->body_left = frame.payload.properties.body_size;
                if (returning_->body_left == 0) returning_.reset();
                continue;
            }
            if (frame.frame_type == AMQP_FRAME_BODY && returning_) {
                std::size_t len = frame.payload.body_fragment.len;
                returning_->body_left -= std::min<std::uint64_t>(returning_->body_left, len);
                if (returning_->body_left == 0) returning_.reset();
                continue;
            }
            if (frame.frame_type != AMQP_FRAME_METHOD) continue;
            const amqp_method_t& method = frame.payload.method;
            switch (method.id) {
                case AMQP_BASIC_ACK_METHOD: {
                    auto* a = static_cast<amqp_basic_ack_t*>(method.decoded);
                    confirm(a->delivery_tag, a->multiple, true);
                    break;
                }
                case AMQP_BASIC_NACK_METHOD: {
                    auto* n = static_cast<amqp_basic_nack_t*>(method.decoded);
                    confirm(n->delivery_tag, n->multiple, false);
                    break;
                }
                case AMQP_BASIC_RETURN_METHOD: {
                    auto* r = static_cast<amqp_basic_return_t*>(method.decoded);
                    returning_ = Returning{r->reply_code, text(r->reply_text), text(r->exchange), text(r->routing_key), 0};
                    break;
                }
                case AMQP_CONNECTION_BLOCKED_METHOD: {
                    auto* b = static_cast<amqp_connection_blocked_t*>(method.decoded);
                    blocked_ = true;
                    blocked_reason_ = text(b->reason);
                    break;
                }
                case AMQP_CONNECTION_UNBLOCKED_METHOD: blocked_ = false; break;
                case AMQP_CHANNEL_CLOSE_METHOD: {
                    // E.g. 404 NOT_FOUND for a missing exchange: every
                    // publish on the channel is lost with it.
                    auto* c = static_cast<amqp_channel_close_t*>(method.decoded);
                    int code = c->reply_code;
                    std::string why = fmt::format("the broker closed the channel: {} {}", code, text(c->reply_text));
                    amqp_channel_close_ok_t ok{};
                    amqp_send_method(conn_, kChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
                    drop(why, code);
                    return;
                }
                case AMQP_CONNECTION_CLOSE_METHOD: {
                    auto* c = static_cast<amqp_connection_close_t*>(method.decoded);
                    int code = c->reply_code;
                    std::string why = fmt::format("the broker closed the connection: {} {}", code, text(c->reply_text));
                    amqp_connection_close_ok_t ok{};
                    amqp_send_method(conn_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
                    // 320 CONNECTION_FORCED (a broker shutting down) is a
                    // lost connection; other codes say what was refused.
                    drop(why, code == 320 ? 0 : code);
                    return;
                }
                default: break;
            }
        }
    }

    void expire() {
        auto now = Clock::now();
        bool dead = false;
        for (auto& [tag, p] : confirms_.expired(now)) {
            ids_.erase(tag);
            returned_.erase(tag);
            done_.fail(p, 0, fmt::format("timeout: no confirm from the broker in {} ms",
                                   std::chrono::duration_cast<milliseconds>(p.deadline - p.started).count()));
            // Nothing at all came back while it waited: the connection is
            // dead (or the broker hangs); connect afresh next time.
            if (last_received_ < p.started) dead = true;
        }
        while (!queued_.empty() && queued_.front().pending.deadline <= now) {
            done_.fail(queued_.front().pending, 0,
                       !conn_     ? std::string("timeout: not connected to RabbitMQ in time")
                       : blocked_ ? fmt::format("timeout: the broker blocked publishing ({})", blocked_reason_)
                                  : std::string("timeout: the broker did not take the message in time"));
            queued_.pop_front();
        }
        if (dead && conn_) drop("connection lost: the broker stopped answering");
    }

    struct Returning {
        int code = 0;
        std::string text, exchange, routing_key;
        std::uint64_t body_left = 0;
    };

    BrokerUrl url_;
    Credentials credentials_;
    Options options_;
    Poller poller_;
    Connector<AmqpConnection> connector_{poller_};
    Backoff backoff_;
    int backoff_status_ = 0;
    amqp_connection_state_t conn_ = nullptr;
    int sockfd_ = -1;
    std::uint64_t next_tag_ = 1;
    bool blocked_ = false;
    bool more_to_read_ = false;  // read_frames() stopped at kFramesPerRound
    std::string blocked_reason_;
    Clock::time_point last_received_;
    InFlight<std::uint64_t> confirms_;                            // by delivery tag
    std::map<std::uint64_t, std::string> ids_;                    // delivery tag -> message_id
    std::map<std::uint64_t, std::pair<int, std::string>> returned_;  // delivery tag -> why
    std::optional<Returning> returning_;                          // a basic.return being read
    std::deque<Queued> queued_;
    Completed done_;
};

}  // namespace

std::unique_ptr<Sink> make_amqp_sink(BrokerUrl url, Credentials credentials, Options options) {
    return std::make_unique<AmqpSink>(std::move(url), std::move(credentials), std::move(options));
}

}  // namespace outbox::sink::detail
