// The sinks, made by make_sink (sink.cpp) from a checked URL.
#pragma once

#include <memory>

#include "sink.hpp"
#include "url.hpp"

namespace outbox::sink::detail {

std::unique_ptr<Sink> make_nats_sink(BrokerUrl url, Credentials credentials, Options options);
std::unique_ptr<Sink> make_amqp_sink(BrokerUrl url, Credentials credentials, Options options);
std::unique_ptr<Sink> make_redis_sink(BrokerUrl url, Credentials credentials, Options options);
std::unique_ptr<Sink> make_kafka_sink(BrokerUrl url, Credentials credentials, Options options);

}  // namespace outbox::sink::detail
