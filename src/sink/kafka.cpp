// Kafka through librdkafka's idempotent producer: many messages in flight,
// each completed by its delivery report.
//
// librdkafka connects, sends and reads on threads of its own (one per
// broker, and a few more); none of them calls into the sink but the
// connect hook, which applies the address guard (kafka_producer.cpp).
// Delivery reports and errors are events on the producer's main queue;
// librdkafka writes to an eventfd in the sink's epoll set when that queue
// gets an event, and the sink takes the events in perform(), on the
// caller's thread (rd_kafka_queue_poll with no wait). So nothing of
// librdkafka's ever runs the sink's code on another thread.
//
// No connect happens on the caller's thread: making the producer
// (rd_kafka_new) only starts librdkafka's threads, which look names up and
// connect. Messages produced meanwhile wait in librdkafka's queue until
// their timeout (librdkafka's message.timeout.ms is the first message's
// timeout; the sink's own deadline, a little later, is the guarantee).
//
// Per-key order: the message key is the event key, so a key's messages go
// to one partition (murmur2, as the Java client); the idempotent producer
// keeps a partition's order across its own retries, and the worker never
// has two deliveries of one key in flight (it waits for the outcome of one
// before it sends the next), so a failed attempt is sent again before the
// key's next event.
#include <fmt/format.h>

#include <memory>
#include <optional>

#include "common.hpp"
#include "kafka_producer.hpp"
#include "protocols.hpp"

namespace outbox::sink::detail {

namespace {

// librdkafka's delivery report decides first (it has the broker's error);
// the sink's deadline is the guarantee that nothing outlives it.
constexpr milliseconds kGrace{500};

// Headers the sink sets itself; an event header of the same name is not sent.
bool reserved_header(const std::string& name) { return name == "id" || name == "topic"; }

// The status of a failed delivery: the broker's error code (positive), the
// broker's code for a topic or partition librdkafka found missing in the
// metadata, 0 for librdkafka's own errors (timeout, transport, queue full).
int status_of(rd_kafka_resp_err_t err) {
    if (err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
        return RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    return err > 0 ? static_cast<int>(err) : 0;
}

class KafkaSink final : public Sink {
public:
    KafkaSink(BrokerUrl url, Credentials credentials, Options options)
        : url_(std::move(url)), credentials_(std::move(credentials)), options_(std::move(options)) {
        poller_.watch(wakeup_.fd(), true, false);
    }

    void start(Message m) override {
        auto now = Clock::now();
        Pending p = pending_for(m, now);
        p.deadline += kGrace;
        if (!producer_) {
            std::string why = refused_outright(url_.hosts, options_.allowed_networks);
            if (!why.empty()) return completed_.fail(p, 0, why, true);  // policy: nothing to attempt
            if (auto wait = backoff_.waiting(now)) return completed_.fail(p, 0, *wait);
            try {
                producer_.emplace(url_, credentials_, options_, m.timeout, wakeup_.fd());
                all_down_ = false;
            } catch (const std::exception& e) {
                backoff_.failed(e.what());
                return completed_.fail(p, 0, e.what());
            }
        }
        if (std::string why = all_refused(); !why.empty()) return completed_.fail(p, 0, why, true);
        produce(m, p);
    }

    std::size_t in_flight() const override { return in_flight_.size(); }

    int fd() const override { return poller_.fd(); }

    std::optional<std::chrono::milliseconds> timeout() const override {
        return wait_for(!completed_.empty(), in_flight_.earliest());
    }

    void perform() override {
        poller_.drain();
        wakeup_.clear();  // before taking the events: one that comes after writes again
        if (producer_) take_events();
        for (auto& [tag, p] : in_flight_.expired(Clock::now()))
            completed_.fail(p, 0, with_last_error("timeout: no acknowledgement from Kafka in time"));
    }

    std::vector<Outcome> take_completed() override { return completed_.take(); }

private:
    void produce(const Message& m, const Pending& p) {
        std::string topic = url_.topic.expand(m.topic, m.key);
        if (!kafka_topic_ok(topic))
            return completed_.fail(p, 0, fmt::format("\"{}\" is not a valid Kafka topic name (A-Z a-z 0-9 . _ -, "
                                                     "at most 249)", topic.substr(0, 300)));
        rd_kafka_headers_t* headers = rd_kafka_headers_new(m.headers.size() + 2);
        rd_kafka_header_add(headers, "id", -1, m.event_id.data(), static_cast<ssize_t>(m.event_id.size()));
        rd_kafka_header_add(headers, "topic", -1, m.topic.data(), static_cast<ssize_t>(m.topic.size()));
        for (const auto& [name, value] : m.headers)
            if (!reserved_header(name))
                rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                                    static_cast<ssize_t>(value.size()));
        in_flight_.add(p.tag, p);  // before producing: a report can only come in perform(), but keep one order
        // RD_KAFKA_MSG_F_COPY: librdkafka copies key and payload; the headers
        // are its own once the produce succeeded.
        const void* key = m.key ? m.key->data() : nullptr;
        std::size_t key_size = m.key ? m.key->size() : 0;
        void* opaque = reinterpret_cast<void*>(static_cast<std::uintptr_t>(p.tag));
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer_->handle(), RD_KAFKA_V_TOPIC(topic.c_str()),
            RD_KAFKA_V_KEY(key, key_size),
            RD_KAFKA_V_VALUE(const_cast<char*>(m.payload.data()), m.payload.size()),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
            RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err) {
            rd_kafka_headers_destroy(headers);
            in_flight_.take(p.tag);
            completed_.fail(p, status_of(err), fmt::format("could not produce: {}", rd_kafka_err2str(err)));
        }
    }

    // Delivery reports and errors, until the queue is empty.
    void take_events() {
        while (producer_) {
            rd_kafka_event_t* ev = rd_kafka_queue_poll(producer_->queue(), 0);
            if (!ev) return;
            bool fatal = false;
            switch (rd_kafka_event_type(ev)) {
                case RD_KAFKA_EVENT_DR:
                    while (const rd_kafka_message_t* msg = rd_kafka_event_message_next(ev)) report(*msg);
                    break;
                case RD_KAFKA_EVENT_ERROR:
                    fatal = on_error(rd_kafka_event_error(ev), rd_kafka_event_error_string(ev),
                                     rd_kafka_event_error_is_fatal(ev));
                    break;
                default: break;
            }
            rd_kafka_event_destroy(ev);
            if (fatal) lose_producer();
        }
    }

    void report(const rd_kafka_message_t& msg) {
        auto tag = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(msg._private));
        auto p = in_flight_.take(tag);
        if (!p) return;  // its deadline failed it already
        if (!msg.err) {
            last_error_.clear();
            return completed_.ack(*p);
        }
        if (msg.err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
            return completed_.fail(*p, 0, with_last_error("timeout: no acknowledgement from Kafka in time"));
        if (msg.err > 0)
            return completed_.fail(*p, status_of(msg.err),
                                   fmt::format("Kafka refused the message: {} ({})", rd_kafka_err2str(msg.err),
                                               rd_kafka_err2name(msg.err)));
        completed_.fail(*p, status_of(msg.err), with_last_error(rd_kafka_err2str(msg.err)));
    }

    // Returns true when the producer cannot go on (a fatal error of the
    // idempotent producer): the caller drops it.
    bool on_error(rd_kafka_resp_err_t err, const char* text, bool fatal) {
        last_error_ = text ? text : rd_kafka_err2str(err);
        if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
            all_down_ = true;
            if (std::string why = all_refused(); !why.empty()) {
                // librdkafka would keep trying: drop what it holds, so that
                // nothing is sent later, and fail it now.
                rd_kafka_purge(producer_->handle(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_NON_BLOCKING);
                for (auto& [tag, p] : in_flight_.take_all()) completed_.fail(p, 0, why, true);
            }
        }
        if (!fatal) return false;
        char reason[512];
        rd_kafka_fatal_error(producer_->handle(), reason, sizeof reason);
        last_error_ = fmt::format("the Kafka producer failed: {}", reason);
        return true;
    }

    // A fatal error: fails what is in flight; the next start() makes a new
    // producer (a new producer id), after the backoff.
    void lose_producer() {
        for (auto& [tag, p] : in_flight_.take_all()) completed_.fail(p, 0, last_error_);
        backoff_.failed(last_error_);
        producer_.reset();
    }

    // Every broker is down and every connect was refused by the address
    // guard (none allowed): why, else "".
    std::string all_refused() {
        if (!all_down_ || !producer_) return {};
        KafkaGuard& guard = producer_->guard();
        std::lock_guard lock(guard.mu);
        return guard.connects == 0 ? guard.refused : std::string();
    }

    std::string with_last_error(std::string what) const {
        if (last_error_.empty()) return what;
        return fmt::format("{} (last error: {})", what, last_error_);
    }

    BrokerUrl url_;
    Credentials credentials_;
    Options options_;
    Poller poller_;
    Wakeup wakeup_;       // librdkafka writes to it when its queue gets an event
    Backoff backoff_;     // after a producer could not be made, or failed
    std::optional<KafkaProducer> producer_;  // declared after wakeup_: destroyed before it
    InFlight<std::uint64_t> in_flight_;      // by tag
    Completed completed_;
    std::string last_error_;  // librdkafka's last error event, "" since a delivery
    bool all_down_ = false;   // librdkafka said every broker is down
};

}  // namespace

std::unique_ptr<Sink> make_kafka_sink(BrokerUrl url, Credentials credentials, Options options) {
    return std::make_unique<KafkaSink>(std::move(url), std::move(credentials), std::move(options));
}

}  // namespace outbox::sink::detail
