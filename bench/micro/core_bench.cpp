// Per-event CPU cost of building a webhook request in the worker: the HMAC
// signature and the full header list. Google Benchmark's default output gives
// the time per operation; items_per_second is ops/s.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/headers.hpp"
#include "core/signing.hpp"

namespace {

using outbox::core::Header;
using outbox::core::SigningKey;

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* kMsgId = "01890a5d-ac96-774b-bcce-b302099a8057";
constexpr int64_t kTimestamp = 1614265330;

// A 1 KB JSON object, the size of a typical event.
std::string payload_1kb() {
    std::string body = "{\"data\": \"";
    body.append(1024 - body.size() - 2, 'x');
    body += "\"}";
    return body;
}

void BM_Sign1KB(benchmark::State& state) {
    const SigningKey key = SigningKey::parse(kSecret);
    const std::string body = payload_1kb();
    for (auto _ : state) benchmark::DoNotOptimize(key.sign(kMsgId, kTimestamp, body));
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_Sign1KB);

void BM_BuildRequestHeaders(benchmark::State& state) {
    const std::vector<SigningKey> keys = {SigningKey::parse(kSecret)};
    const std::vector<Header> event_headers = {{"x-tenant", "acme"}, {"x-trace", "4bf92f3577b34da6a3ce929d0e0e4736"}};
    const std::string body = payload_1kb();
    outbox::core::RequestHeaderInput in;
    in.msg_id = kMsgId;
    in.timestamp = kTimestamp;
    in.body = body;
    in.keys = keys;
    in.user_agent = "outbox/0.1.0";
    in.event_headers = event_headers;
    for (auto _ : state) benchmark::DoNotOptimize(outbox::core::build_request_headers(in));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BuildRequestHeaders);

}  // namespace
