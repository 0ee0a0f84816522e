#include "pg/sinks.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"

namespace outbox::pg {

std::vector<std::pair<int32, std::string>> BrokerSinks::sync(const std::map<int32, Endpoint>& endpoints,
                                                             const sink::Options& options,
                                                             std::uint64_t options_version) {
    std::vector<std::pair<int32, std::string>> errors;
    std::map<int32, Entry> fresh;
    unavailable_.clear();
    for (const auto& [id, e] : endpoints) {
        if (!e.broker || !e.enabled) continue;
        // Never shown: it has the credentials in it.
        std::string identity = fmt::format("{}\n{}\n{}", e.url, sink::credentials_secret(e.credentials), options_version);
        if (auto old = active_.find(id); old != active_.end() && old->second.identity == identity) {
            if (old->second.unavailable) unavailable_.emplace(id, old->second.error);
            fresh.emplace(id, std::move(old->second));
            active_.erase(old);
            continue;
        }
        Entry entry;
        entry.identity = std::move(identity);
        try {
            entry.sink = sink::make_sink(e.url, e.credentials, options);
            fds_changed_ = true;
        } catch (const core::InvalidInput& error) {
            entry.error = error.what();
            if (error.kind() == core::InvalidInput::Kind::NotSupported) {
                entry.error += "; deliveries wait until the server runs an outbox library that has it";
                entry.unavailable = true;
                unavailable_.emplace(id, entry.error);
            }
            errors.emplace_back(id, entry.error);
        }
        fresh.emplace(id, std::move(entry));
    }
    // What is left was replaced or is gone.
    for (auto& [id, entry] : active_)
        if (entry.sink) retire(std::move(entry.sink));
    active_ = std::move(fresh);
    return errors;
}

void BrokerSinks::retire(std::unique_ptr<sink::Sink> sink) {
    fds_changed_ = true;
    for (sink::Outcome& o : sink->take_completed()) pending_.push_back(std::move(o));
    if (sink->in_flight() > 0) retired_.push_back(std::move(sink));
}

void BrokerSinks::start(int32 endpoint_id, sink::Message message) {
    auto it = active_.find(endpoint_id);
    if (it != active_.end() && it->second.sink) {
        it->second.sink->start(std::move(message));
        return;
    }
    sink::Outcome failed;
    failed.tag = message.tag;
    failed.error = it != active_.end() ? it->second.error : "the endpoint has no broker connection";
    pending_.push_back(std::move(failed));
}

void BrokerSinks::perform() {
    for (auto& [id, entry] : active_)
        if (entry.sink) entry.sink->perform();
    for (auto& sink : retired_) sink->perform();
}

std::vector<sink::Outcome> BrokerSinks::take_completed() {
    std::vector<sink::Outcome> out = std::move(pending_);
    pending_.clear();
    auto take = [&](sink::Sink& s) {
        for (sink::Outcome& o : s.take_completed()) out.push_back(std::move(o));
    };
    for (auto& [id, entry] : active_)
        if (entry.sink) take(*entry.sink);
    for (auto& sink : retired_) take(*sink);
    std::size_t before = retired_.size();
    std::erase_if(retired_, [](const auto& sink) { return sink->in_flight() == 0; });
    if (retired_.size() != before) fds_changed_ = true;
    return out;
}

std::size_t BrokerSinks::in_flight() const {
    std::size_t n = 0;
    for (const auto& [id, entry] : active_)
        if (entry.sink) n += entry.sink->in_flight();
    for (const auto& sink : retired_) n += sink->in_flight();
    return n;
}

std::optional<std::chrono::milliseconds> BrokerSinks::timeout() const {
    if (!pending_.empty()) return std::chrono::milliseconds(0);
    std::optional<std::chrono::milliseconds> earliest;
    auto consider = [&](const sink::Sink& s) {
        if (auto t = s.timeout()) earliest = earliest ? std::min(*earliest, *t) : *t;
    };
    for (const auto& [id, entry] : active_)
        if (entry.sink) consider(*entry.sink);
    for (const auto& sink : retired_) consider(*sink);
    return earliest;
}

std::vector<int> BrokerSinks::fds() const {
    std::vector<int> fds;
    for (const auto& [id, entry] : active_)
        if (entry.sink) fds.push_back(entry.sink->fd());
    for (const auto& sink : retired_) fds.push_back(sink->fd());
    return fds;
}

bool BrokerSinks::take_fds_changed() {
    bool changed = fds_changed_;
    fds_changed_ = false;
    return changed;
}

}  // namespace outbox::pg
