// Shared-memory tables with one slot per endpoint (stats.cpp, limits.cpp):
// found by a linear search (there are few endpoints), and when every slot is
// taken the one used longest ago (an endpoint dropped since, most likely)
// goes to the new endpoint. The caller holds the table's lock, exclusively
// when it may take a slot.
#pragma once

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
}

#include <cstring>

namespace outbox::pg {

// `Slot` is plain data with `int32 endpoint_id`, `bool used` and
// `TimestampTz last_used`. Returns the endpoint's slot, or (with `take`) a
// fresh, zeroed one for it; nullptr when it has none and `take` is false.
template <typename Slot, int N>
Slot* endpoint_slot(Slot (&slots)[N], int32 endpoint_id, TimestampTz now, bool take) {
    Slot* victim = &slots[0];
    for (Slot& s : slots) {
        if (s.used && s.endpoint_id == endpoint_id) {
            if (take) s.last_used = now;
            return &s;
        }
        if (victim->used && (!s.used || s.last_used < victim->last_used)) victim = &s;
    }
    if (!take) return nullptr;
    memset(static_cast<void*>(victim), 0, sizeof(Slot));
    victim->used = true;
    victim->endpoint_id = endpoint_id;
    victim->last_used = now;
    return victim;
}

}  // namespace outbox::pg
