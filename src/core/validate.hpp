// Validation of enqueue() arguments that needs no database.
#pragma once

#include <cstddef>
#include <string_view>

namespace outbox::core {

// Topic: ^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$. Throws InvalidInput
// (InvalidValue) with the offending topic quoted (truncated to 64 chars) and a
// hint giving the rule; an empty topic has its own message.
void validate_topic(std::string_view topic);

// Topics that begin with "outbox." are reserved for the operational events
// the worker enqueues (outbox.delivery.dead, outbox.endpoint.disabled, ...).
bool is_reserved_topic(std::string_view topic);

// Throws InvalidInput (Reserved) for a reserved topic: applications may not
// enqueue them.
void refuse_reserved_topic(std::string_view topic);

// Ordering key: 1..1024 bytes. Throws InvalidInput.
void validate_key(std::string_view key);

// Payload size in bytes of its JSON text against the limit. Throws
// InvalidInput (TooLarge) naming both sizes and hinting at
// outbox.max_payload_size.
void validate_payload_size(std::size_t size, std::size_t limit);

// Endpoint topic pattern: an exact topic, a prefix ending in ".*" or "*"
// alone. "*" matches every topic but the reserved ones: only a pattern that
// names them ("outbox.*", "outbox.delivery.dead") matches those.
void validate_topic_pattern(std::string_view pattern);
bool topic_matches(std::string_view pattern, std::string_view topic);

}  // namespace outbox::core
