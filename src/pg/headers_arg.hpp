// Validation of a headers argument (enqueue's and an endpoint's): a flat JSON
// object of string values, each a valid, non-reserved HTTP header.
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/jsonb.h"
}

namespace outbox::pg {

// Throws core::InvalidInput when the headers are not acceptable.
void validate_headers_arg(Jsonb* headers);

}  // namespace outbox::pg
