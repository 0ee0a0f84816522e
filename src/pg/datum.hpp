// Views of PostgreSQL values for C++ code (no copies; valid while the value is).
#pragma once

#include "pg/compat.hpp"  // VARDATA_ANY

#include <string_view>

namespace outbox::pg {

// A (detoasted) text value's bytes.
inline std::string_view text_view(const text* t) {
    return {VARDATA_ANY(t), static_cast<size_t>(VARSIZE_ANY_EXHDR(t))};
}

}  // namespace outbox::pg
