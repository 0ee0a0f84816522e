#include "pg/claims.hpp"

namespace outbox::pg {

void Pipelines::attach(std::uint64_t tag, std::deque<Ready> rest) {
    if (!rest.empty()) rest_[tag] = std::move(rest);
}

std::optional<Ready> Pipelines::next(std::uint64_t tag, bool go_on, std::vector<InFlight>& handed_back) {
    auto it = rest_.find(tag);
    if (it == rest_.end()) return std::nullopt;
    std::deque<Ready> rest = std::move(it->second);
    rest_.erase(it);
    if (!go_on) {
        for (Ready& r : rest) handed_back.push_back(std::move(r.delivery));
        return std::nullopt;
    }
    Ready first = std::move(rest.front());
    rest.pop_front();
    attach(first.tag, std::move(rest));
    return first;
}

void Pipelines::hand_back(std::uint64_t tag, std::vector<InFlight>& handed_back) {
    next(tag, false, handed_back);
}

void Pipelines::hand_back_all(std::vector<InFlight>& handed_back) {
    for (auto& [tag, rest] : rest_)
        for (Ready& r : rest) handed_back.push_back(std::move(r.delivery));
    rest_.clear();
}

std::size_t Pipelines::held_of(int32 endpoint_id) const {
    std::size_t n = 0;
    for (const auto& [tag, rest] : rest_)
        if (!rest.empty() && rest.front().delivery.endpoint_id == endpoint_id) n += rest.size();
    return n;
}

}  // namespace outbox::pg
