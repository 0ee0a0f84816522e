// librdkafka producers for the Kafka sink (kafka.cpp): configured for the
// guarantees of the other sinks, watched by the address guard in
// librdkafka's connect hook, and destroyed off the caller's thread.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "core/address_policy.hpp"
#include "sink.hpp"
#include "url.hpp"

namespace outbox::sink::detail {

// What librdkafka's connect hook (on its broker threads) shares with the
// sink: the policy, read only, and what the hook saw, under the mutex.
// librdkafka connects by itself, to the bootstrap servers and to every
// broker the cluster's metadata announces; each connect goes through the
// hook, which checks the address and connects only an allowed one.
struct KafkaGuard {
    core::NetworkList allowed;
    std::mutex mu;
    std::string refused;          // guarded by mu: the last refusal, "" when none
    std::uint64_t connects = 0;   // guarded by mu: allowed connects attempted
};

// A producer with its main queue (delivery reports and errors), which
// writes to `wakeup_fd` (an eventfd) when it gets an event while empty.
// Destroying it disables that and destroys the producer on a thread of its
// own: rd_kafka_destroy joins librdkafka's threads, and one may be in a
// name lookup or a connect.
class KafkaProducer {
public:
    // Throws std::runtime_error naming what librdkafka refused (never a
    // credential). `message_timeout` is librdkafka's message.timeout.ms.
    KafkaProducer(const BrokerUrl& url, const Credentials& credentials, const Options& options,
                  std::chrono::milliseconds message_timeout, int wakeup_fd);
    ~KafkaProducer();
    KafkaProducer(const KafkaProducer&) = delete;
    KafkaProducer& operator=(const KafkaProducer&) = delete;

    rd_kafka_t* handle() const noexcept { return rk_; }
    rd_kafka_queue_t* queue() const noexcept { return queue_; }
    KafkaGuard& guard() const noexcept { return *guard_; }

private:
    rd_kafka_t* rk_ = nullptr;
    rd_kafka_queue_t* queue_ = nullptr;
    std::unique_ptr<KafkaGuard> guard_;  // alive until rd_kafka_destroy returned: the hook uses it
};

// Waits until every producer destroyed so far is gone (false: not within
// `timeout`): for a process that checks for leaks at its exit.
bool wait_for_kafka_destroyed(std::chrono::milliseconds timeout);

// bootstrap.servers for the URL's hosts: host:port, IPv6 in brackets.
std::string kafka_bootstrap(const BrokerUrl& url);

}  // namespace outbox::sink::detail
