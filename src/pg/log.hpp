// A log line from the worker's C++ code: ereport() through pg_call(), with
// an optional DETAIL and HINT.
#pragma once

extern "C" {
#include "postgres.h"
}

#include <string>

namespace outbox::pg {

void log_message(int elevel, const std::string& message, const std::string& detail = {},
                 const std::string& hint = {});

}  // namespace outbox::pg
