// Message brokers as delivery endpoints: NATS JetStream, RabbitMQ (AMQP
// 0-9-1) and Redis Streams, behind one small interface that the worker
// drives exactly like the HTTP client (src/http/client.hpp): start() a
// message, wait until fd() is readable or timeout() has passed, perform(),
// take_completed(). A broker's acknowledgement is what a 2xx is for HTTP.
//
// No PostgreSQL headers here or in any file of src/sink: the client
// libraries run their own threads (libnats) and callbacks; none of them may
// ever reach PostgreSQL. docs/sinks.md has the whole contract.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/address_policy.hpp"

namespace outbox::sink {

struct Message {
    std::uint64_t tag = 0;          // the caller's handle, returned in the Outcome
    std::string event_id;           // uuid text: Nats-Msg-Id / AMQP message_id / Redis field "id"
    std::string topic;
    std::optional<std::string> key;
    std::string payload;            // JSON text, sent as is
    std::vector<std::pair<std::string, std::string>> headers;  // event + endpoint headers
    std::chrono::milliseconds timeout{std::chrono::seconds(30)};  // from start() to the broker's ack
};

struct Outcome {
    std::uint64_t tag = 0;
    bool acked = false;     // the broker acknowledged: delivered
    int status = 0;         // 200 when acked; 0 when no answer (timeout, lost connection,
                            // refused by the address policy); else the protocol's code
                            // (docs/sinks.md lists them per protocol)
    std::string error;      // empty when acked; readable; never contains credentials
    bool refused = false;   // the address policy refused the broker's address: nothing was sent
    std::chrono::microseconds duration{0};
};

// From the endpoint's secret, never from the stored URL (see split_credentials).
struct Credentials {
    std::string user, password, token;
    bool empty() const noexcept { return user.empty() && password.empty() && token.empty(); }
    std::size_t size() const noexcept { return user.size() + password.size() + token.size(); }
};

// The most credentials may take, decoded (user, password and token together).
// Their secret, every byte percent-encoded, may be three times as long.
constexpr std::size_t kMaxCredentials = 1024;

struct Options {
    core::NetworkList allowed_networks;  // special-purpose addresses allowed anyway
    std::string ca_file;                 // for nats tls:// and amqps://; empty: the system's
    std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};  // resolve + connect + login
    // The most one reply of a broker (or the unfinished rest of a
    // connection's input) may take in memory: a connection whose peer
    // sends more is closed (docs/sinks.md, per protocol). outbox.max_reply_size.
    std::size_t max_reply = 64 * 1024;
};

class Sink {
public:
    virtual ~Sink() = default;
    // Starts publishing at once; never blocks. Without a connection, starts
    // one on a thread of its own (connector.hpp) and the message waits for
    // it, until its timeout. A message that cannot be sent completes with
    // an Outcome instead of throwing.
    virtual void start(Message message) = 0;
    virtual std::size_t in_flight() const = 0;
    // One file descriptor for the sink's lifetime (an epoll set): readable
    // when perform() has work to do.
    virtual int fd() const = 0;
    // The longest the caller may wait before calling perform(); nullopt when
    // nothing is in flight.
    virtual std::optional<std::chrono::milliseconds> timeout() const = 0;
    // Moves things on without blocking; finished messages go to the completed list.
    virtual void perform() = 0;
    virtual std::vector<Outcome> take_completed() = 0;
};

// True for the URL schemes handled here: nats://, tls:// (NATS over TLS),
// amqp://, amqps://, redis://, rediss:// (refused by validate_broker_url:
// see docs/sinks.md). Case-insensitive scheme.
bool is_broker_url(std::string_view url);

// Checks a broker URL when an endpoint is created. Accepts user:password@
// (split_credentials moves it to the secret); throws core::InvalidInput
// naming what is wrong, with a hint; the message never shows credentials.
void validate_broker_url(std::string_view url);

// Splits user:password@ (or token@ for NATS) out of a broker URL. The URL
// part comes back without it, ready to store; the credentials go to the
// endpoint's secret. Percent-encoded userinfo is decoded. Throws
// InvalidInput for a URL validate_broker_url refuses.
struct SplitUrl {
    std::string url;
    Credentials credentials;
};
SplitUrl split_credentials(std::string_view url);

// The endpoint's secret of a broker endpoint: its credentials written as
// the userinfo of a URL, each part percent-encoded:
//   user:password   AMQP login, NATS user and password, Redis ACL user (AUTH user password)
//   :password       Redis AUTH password (no user)
//   token           NATS token (no colon)
// credentials_secret() writes the canonical form: every byte other than
// A-Z a-z 0-9 - . _ ~ as %XX (so it has no space, ':' or '@' of its own);
// a user with an empty password keeps the colon ("user:").
std::string credentials_secret(const Credentials& credentials);

// Reads a secret written as above (any valid percent-encoding) for the
// URL's scheme (a colon-less secret is a NATS token, an AMQP or Redis user).
// Throws InvalidInput for a secret that cannot be credentials (or more than
// kMaxCredentials of them); the message never repeats the secret. What
// credentials_secret() writes of credentials within the limit, it reads.
Credentials credentials_from_secret(std::string_view url, std::string_view secret);

// The protocols and the client library each needs. A build without a
// protocol's library leaves the protocol out (the Makefile's BROKERS): its
// URLs still parse, but require_built_in() and make_sink() refuse them.
struct Protocol {
    const char* name;     // "nats", "amqp", "redis"
    const char* schemes;  // the URLs it takes: "nats:// and tls://"
    const char* library;  // the client library: "libnats"
    const char* package;  // Debian's package to build with it: "libnats-dev"
    bool built_in;
};
const std::vector<Protocol>& protocols();

// The protocols of this build, as "nats, amqp, redis" ("" when none).
std::string built_in_protocols();

// Throws core::InvalidInput (Kind::NotSupported) when the protocol of a
// broker URL is not built in: which library it needs, and how to get it.
void require_built_in(std::string_view url);

// The sink for a validated broker URL without credentials in it. Throws
// core::InvalidInput for a bad URL (or one with credentials), or with
// Kind::NotSupported for a protocol this build lacks (require_built_in);
// never connects: the first start() begins to.
std::unique_ptr<Sink> make_sink(std::string_view url, const Credentials& credentials, const Options& options);

// Waits until what sinks destroyed so far close off the caller's thread is
// closed (librdkafka producers), at most `timeout`; false if not all were.
// For tools that check for leaks at exit (sink_tool under LeakSanitizer);
// the worker does not wait.
bool wait_for_closed(std::chrono::milliseconds timeout);

}  // namespace outbox::sink
