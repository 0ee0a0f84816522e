// Quoting user input inside error messages: long input is cut so that a
// message stays readable, and the cut (or the input itself) may split a UTF-8
// sequence, which PostgreSQL would refuse to send, so the result is sanitized.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "text.hpp"

namespace outbox::core {

inline std::string excerpt(std::string_view text, std::size_t max_bytes = 64) {
    if (text.size() <= max_bytes) return sanitize_text(text, false);
    return sanitize_text(text.substr(0, max_bytes), false) + "...";
}

}  // namespace outbox::core
