// outbox.traceparent and outbox.tracestate values (src/core/trace.cpp).
#include "core/error.hpp"
#include "core/trace.hpp"
#include "fuzz.hpp"

using namespace outbox::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view value = fuzz::text(data, size);
    try {
        validate_traceparent(value);
        FUZZ_CHECK(value.size() == 55, "a valid traceparent is 55 characters");
    } catch (const InvalidInput&) {
    }
    try {
        validate_tracestate(value);
        FUZZ_CHECK(value.size() <= 512, "a valid tracestate is at most 512 characters");
    } catch (const InvalidInput&) {
    }
    return 0;
}
