// Making untrusted bytes (response bodies, error texts) storable as text.
#pragma once

#include <string>
#include <string_view>

namespace outbox::core {

// Valid UTF-8 stays as it is; NUL bytes and invalid sequences become U+FFFD
// (or '?' when ascii_only, where every non-ASCII byte becomes '?' too, for
// databases whose encoding is not UTF-8).
std::string sanitize_text(std::string_view bytes, bool ascii_only);

}  // namespace outbox::core
