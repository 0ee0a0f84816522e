// W3C Trace Context (https://www.w3.org/TR/trace-context/): the values of
// the outbox.traceparent and outbox.tracestate settings, checked when they
// are set so that a malformed one is refused then, not sent.
#pragma once

#include <string_view>

namespace outbox::core {

// version "-" trace-id "-" parent-id "-" flags, lower-case hex: 2-32-16-2
// digits; version ff, an all-zero trace-id or parent-id are invalid. Throws
// InvalidInput.
void validate_traceparent(std::string_view value);

// At most 32 comma-separated list members "key=value", 512 characters in
// all; keys are lower-case letters, digits and _ - * / (with an optional
// "@vendor"), values printable ASCII without ',' and '='. Throws InvalidInput.
void validate_tracestate(std::string_view value);

}  // namespace outbox::core
