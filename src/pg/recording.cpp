#include "pg/recording.hpp"

#include "core/text.hpp"
#include "pg/guard.hpp"
#include "pg/queue.hpp"

extern "C" {
#include "mb/pg_wchar.h"
}

#include <string>

namespace outbox::pg {

int record(const std::vector<Finished>& finished) {
    bool ascii_only = pg_call([] { return GetDatabaseEncoding() != PG_UTF8; });
    std::vector<std::string> responses;
    std::vector<std::string> errors;
    std::vector<std::string> headers;
    headers.reserve(finished.size());
    responses.reserve(finished.size());
    errors.reserve(finished.size());
    std::vector<ResultRow> rows;
    rows.reserve(finished.size());
    for (const Finished& f : finished) {
        responses.push_back(core::sanitize_text(f.response, ascii_only));
        errors.push_back(core::sanitize_text(f.error, ascii_only));
        rows.push_back(ResultRow{&f.delivery.uuid, f.delivery.endpoint_id,
                                 f.delivery.attempt, f.state, f.retry_in_ms, f.status,
                                 errors.back().empty() ? nullptr : errors.back().c_str(),
                                 f.duration_us,
                                 responses.back().empty() ? nullptr : responses.back().c_str(),
                                 f.delivery.started_at});
        headers.push_back(core::sanitize_text(f.response_headers, ascii_only));
        rows.back().header_lines = headers.back().empty() ? nullptr : headers.back().c_str();
    }
    int unblocked = 0;
    pg_call([&] { return record_results(rows.data(), static_cast<int>(rows.size()), &unblocked); });
    return unblocked;
}

int write_results(const Results& results) {
    int unblocked = record(results.finished);
    for (const auto& [id, reason] : results.gone) pg_call([&] { disable_endpoint(id, reason.c_str()); });
    for (const HealthNote& h : results.health)
        pg_call([&] {
            note_endpoint_health(h.endpoint_id, h.failing, h.since, h.consecutive_failures, h.last_error.c_str());
        });
    return unblocked;
}

void release(const std::vector<InFlight>& claims, std::size_t count, bool never_sent) {
    std::vector<ResultRow> rows;
    rows.reserve(count);
    for (std::size_t i = 0; i < count && i < claims.size(); i++)
        rows.push_back(ResultRow{&claims[i].uuid, claims[i].endpoint_id, claims[i].attempt,
                                 "pending", 0, 0, nullptr, 0, nullptr, 0});
    pg_call([&] { release_claims(rows.data(), static_cast<int>(rows.size()), never_sent); });
}

}  // namespace outbox::pg
