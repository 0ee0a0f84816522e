// The worker's broker sinks (src/sink): one per enabled broker endpoint
// (nats://, amqp://, redis:// ...), made when the endpoint is first seen and
// made again when its URL, its credentials or the connection settings
// change. A replaced or dropped endpoint's sink is retired: it finishes
// what it has in flight (acknowledged or failed, within the messages'
// timeouts) and is then destroyed, so that no outcome is lost.
//
// No PostgreSQL calls here: the worker (sending.cpp) puts fds() in its
// WaitEventSet, waits at most timeout(), and turns outcomes into results.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pg/endpoint.hpp"
#include "sink/sink.hpp"

namespace outbox::pg {

class BrokerSinks {
public:
    // Brings the sinks in line with the endpoints. `options_version` changes
    // when the connection settings do (a reload): every sink is made again.
    // Returns the endpoints whose URL could not be made into a sink, with
    // the reason (their messages fail at once), and those of unavailable().
    std::vector<std::pair<int32, std::string>> sync(const std::map<int32, Endpoint>& endpoints,
                                                    const sink::Options& options, std::uint64_t options_version);

    // The endpoints of a protocol this build of the library lacks (a
    // database restored or upgraded into a server built without its client
    // library), with the reason. The worker claims nothing for them: their
    // deliveries wait, no attempt counted, until a library that has the
    // protocol runs (pg/undeliverable.hpp tells them why).
    const std::map<int32, std::string>& unavailable() const { return unavailable_; }

    // Publishes through the endpoint's sink; without one (not a broker
    // endpoint, or one whose sink could not be made), the message fails at
    // once (status 0).
    void start(int32 endpoint_id, sink::Message message);

    void perform();
    // Outcomes of every sink, retired ones included; drops retired sinks that
    // are done.
    std::vector<sink::Outcome> take_completed();

    std::size_t in_flight() const;
    // The earliest of the sinks' timeouts; nullopt when none has work.
    std::optional<std::chrono::milliseconds> timeout() const;
    // The sinks' descriptors, retired ones included.
    std::vector<int> fds() const;
    // Whether fds() changed since the last call (the wait set must be made again).
    bool take_fds_changed();

private:
    struct Entry {
        std::string identity;  // URL, credentials and settings it was made with
        std::unique_ptr<sink::Sink> sink;
        std::string error;     // why there is no sink
        bool unavailable = false;  // because this build lacks the protocol
    };
    void retire(std::unique_ptr<sink::Sink> sink);

    std::map<int32, Entry> active_;
    std::map<int32, std::string> unavailable_;
    std::vector<std::unique_ptr<sink::Sink>> retired_;
    std::vector<sink::Outcome> pending_;  // outcomes not taken yet: no sink to go to, or of a sink destroyed
    bool fds_changed_ = false;
};

}  // namespace outbox::pg
