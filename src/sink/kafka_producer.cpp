#include "kafka_producer.hpp"

#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "common.hpp"
#include "signals.hpp"

namespace outbox::sink::detail {

namespace {

// The largest produce request (and message) the producer builds: a default
// outbox.max_payload_size event (1 MB) with its headers. Kafka brokers
// take 1 MB by default (their message.max.bytes).
constexpr int kMessageMaxBytes = 1024 * 1024 + 64 * 1024;
// The producer's own queue: what it holds of messages not yet
// acknowledged. The worker never has more in flight than
// outbox.max_in_flight; a full queue fails the message at once.
constexpr int kQueueMaxMessages = 100000;
constexpr int kQueueMaxKbytes = 64 * 1024;

// On a broker thread of librdkafka, with its broker lock held: takes only
// the guard's mutex. Returns 0 when connected or connecting (the socket is
// non-blocking), else an errno, which librdkafka reports as a failed connect.
int on_connect(int sockfd, const sockaddr* addr, int addrlen, const char*, void* opaque) noexcept {
    auto* guard = static_cast<KafkaGuard*>(opaque);
    try {
        auto ip = core::IpAddress::from_sockaddr(addr);
        std::string why = ip ? refusal(*ip, guard->allowed) : "refused to connect: unknown address family";
        std::lock_guard lock(guard->mu);
        if (!why.empty()) {
            guard->refused = std::move(why);
            return EACCES;
        }
        guard->connects++;
    } catch (...) {
        return ENOMEM;
    }
    if (connect(sockfd, addr, static_cast<socklen_t>(addrlen)) == 0 || errno == EINPROGRESS) return 0;
    return errno;
}

// librdkafka logs from its threads; what matters reaches the sink as error
// events on its queue, read on the caller's thread.
void on_log(const rd_kafka_t*, int, const char*, const char*) noexcept {}

class Conf {
public:
    Conf() : conf_(rd_kafka_conf_new()) {}
    ~Conf() {
        if (conf_) rd_kafka_conf_destroy(conf_);
    }
    Conf(const Conf&) = delete;
    Conf& operator=(const Conf&) = delete;

    // `secret`: the value is a credential: never in the error.
    void set(const char* name, const std::string& value, bool secret = false) {
        char errstr[512];
        if (rd_kafka_conf_set(conf_, name, value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            throw std::runtime_error(secret ? fmt::format("librdkafka refused the setting {}", name)
                                            : fmt::format("librdkafka refused {}={}: {}", name, value, errstr));
    }
    rd_kafka_conf_t* get() const noexcept { return conf_; }
    rd_kafka_conf_t* release() noexcept { return std::exchange(conf_, nullptr); }

private:
    rd_kafka_conf_t* conf_;
};

// Producers being destroyed on their threads (wait_for_kafka_destroyed).
struct Destroying {
    std::mutex mu;
    std::condition_variable cv;
    int count = 0;
};

// Never destroyed: a destroying thread may end during exit.
Destroying& destroying() {
    static Destroying* d = new Destroying;
    return *d;
}

void destroy(rd_kafka_t* rk, KafkaGuard* guard) noexcept {
    rd_kafka_destroy(rk);
    delete guard;
}

}  // namespace

std::string kafka_bootstrap(const BrokerUrl& url) {
    std::string out;
    for (const HostPort& hp : url.hosts) {
        if (!out.empty()) out += ',';
        out += hp.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", hp.host, hp.port)
                                                      : fmt::format("{}:{}", hp.host, hp.port);
    }
    return out;
}

KafkaProducer::KafkaProducer(const BrokerUrl& url, const Credentials& credentials, const Options& options,
                             std::chrono::milliseconds message_timeout, int wakeup_fd)
    : guard_(std::make_unique<KafkaGuard>()) {
    guard_->allowed = options.allowed_networks;
    Conf conf;
    conf.set("bootstrap.servers", kafka_bootstrap(url));
    conf.set("client.id", "outbox");
    // The produce is acknowledged by every in-sync replica, once: the
    // idempotent producer numbers each partition's batches, the broker
    // drops a resent one, and with at most 5 requests in flight per
    // connection the order of a partition holds across its retries.
    conf.set("acks", "all");
    conf.set("enable.idempotence", "true");
    conf.set("max.in.flight.requests.per.connection", "5");
    // The Java client's partitioner for keyed messages (murmur2 of the key);
    // messages without a key go to a random partition.
    conf.set("partitioner", "murmur2_random");
    conf.set("message.timeout.ms", std::to_string(std::max<long long>(1, message_timeout.count())));
    // A topic missing from the cluster's metadata fails its messages after
    // this long, not at their timeout.
    conf.set("topic.metadata.propagation.max.ms", "2000");
    conf.set("socket.connection.setup.timeout.ms",
             std::to_string(std::max<long long>(1000, options.connect_timeout.count())));
    conf.set("reconnect.backoff.ms", "100");
    conf.set("reconnect.backoff.max.ms", "5000");
    // Memory: what the producer queues, what one request may carry, and the
    // largest response it reads (outbox.max_reply_size; librdkafka checks a
    // response's announced size before allocating it).
    conf.set("queue.buffering.max.messages", std::to_string(kQueueMaxMessages));
    conf.set("queue.buffering.max.kbytes", std::to_string(kQueueMaxKbytes));
    conf.set("message.max.bytes", std::to_string(kMessageMaxBytes));
    conf.set("receive.message.max.bytes", std::to_string(std::max<std::size_t>(1000, options.max_reply)));
    if (credentials.empty()) {
        conf.set("security.protocol", url.tls() ? "ssl" : "plaintext");
    } else {
        conf.set("security.protocol", url.tls() ? "sasl_ssl" : "sasl_plaintext");
        conf.set("sasl.mechanisms", url.sasl_mechanism.empty() ? "PLAIN" : url.sasl_mechanism);
        conf.set("sasl.username", credentials.user, true);
        conf.set("sasl.password", credentials.password, true);
    }
    if (url.tls() && !options.ca_file.empty()) conf.set("ssl.ca.location", options.ca_file);
    // Delivery reports and errors as events on the main queue, which the
    // sink polls on its own thread: no callback of ours runs on
    // librdkafka's threads but the connect hook and the (silent) logger.
    rd_kafka_conf_set_events(conf.get(), RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR);
    rd_kafka_conf_set_log_cb(conf.get(), &on_log);
    rd_kafka_conf_set_connect_cb(conf.get(), &on_connect);
    rd_kafka_conf_set_opaque(conf.get(), guard_.get());

    char errstr[512];
    {
        SignalsBlocked blocked;  // librdkafka's threads start here and inherit the mask
        rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr);
    }
    if (!rk_) throw std::runtime_error(fmt::format("could not make a Kafka producer: {}", errstr));
    conf.release();  // the producer's now
    queue_ = rd_kafka_queue_get_main(rk_);
    // An eventfd takes 8-byte writes: the payload is a counter increment.
    static const std::uint64_t one = 1;
    rd_kafka_queue_io_event_enable(queue_, wakeup_fd, &one, sizeof one);
}

KafkaProducer::~KafkaProducer() {
    rd_kafka_queue_io_event_enable(queue_, -1, nullptr, 0);
    rd_kafka_queue_destroy(queue_);
    // Whatever it still holds is dropped: the sink has failed it already.
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
    KafkaGuard* guard = guard_.release();
    Destroying& d = destroying();
    {
        std::lock_guard lock(d.mu);
        d.count++;
    }
    try {
        SignalsBlocked blocked;
        std::thread([rk = rk_, guard, &d] {
            destroy(rk, guard);
            std::lock_guard lock(d.mu);
            d.count--;
            d.cv.notify_all();
        }).detach();
    } catch (...) {
        destroy(rk_, guard);  // no thread: here, waiting for librdkafka's threads
        std::lock_guard lock(d.mu);
        d.count--;
    }
}

bool wait_for_kafka_destroyed(std::chrono::milliseconds timeout) {
    Destroying& d = destroying();
    std::unique_lock lock(d.mu);
    return d.cv.wait_for(lock, timeout, [&] { return d.count == 0; });
}

}  // namespace outbox::sink::detail
