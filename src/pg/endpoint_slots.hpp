// Shared-memory tables with one slot per endpoint of a database (stats.cpp,
// limits.cpp; endpoint ids are per database, the default endpoint is 0 in
// each):
// found by a linear search (there are few endpoints), and when every slot is
// taken the one used longest ago (an endpoint dropped since, most likely)
// goes to the new endpoint. The caller holds the table's lock, exclusively
// when it may take a slot.
#pragma once

extern "C" {
#include "postgres.h"
#include "miscadmin.h"
#include "datatype/timestamp.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
}

#include <cstring>

namespace outbox::pg {

// `Slot` is plain data with `Oid database`, `int32 endpoint_id`, `bool
// used` and `TimestampTz last_used`. Returns the slot of the endpoint of
// the caller's database, or (with `take`) a fresh, zeroed one for it;
// nullptr when it has none and `take` is false.
template <typename Slot, int N>
Slot* endpoint_slot(Slot (&slots)[N], int32 endpoint_id, TimestampTz now, bool take) {
    Slot* victim = &slots[0];
    for (Slot& s : slots) {
        if (s.used && s.database == MyDatabaseId && s.endpoint_id == endpoint_id) {
            if (take) s.last_used = now;
            return &s;
        }
        if (victim->used && (!s.used || s.last_used < victim->last_used)) victim = &s;
    }
    if (!take) return nullptr;
    memset(static_cast<void*>(victim), 0, sizeof(Slot));
    victim->used = true;
    victim->database = MyDatabaseId;
    victim->endpoint_id = endpoint_id;
    victim->last_used = now;
    return victim;
}

// Frees the slots of `database` (dropped, or its extension dropped: its
// endpoint ids will be new ones).
template <typename Slot, int N>
void forget_database_slots(Slot (&slots)[N], Oid database) {
    for (Slot& s : slots)
        if (s.used && s.database == database) s.used = false;
}

// In the shared-memory startup hook: finds the shared struct `name`, or
// creates it zeroed with the lock of the named `tranche` in its `lock`
// member. Returns whether it was created.
template <typename Shared>
bool attach_shared(Shared** out, const char* name, const char* tranche) {
    bool found = false;
    *out = static_cast<Shared*>(ShmemInitStruct(name, sizeof(Shared), &found));
    if (!found) {
        memset(static_cast<void*>(*out), 0, sizeof(Shared));
        (*out)->lock = &(GetNamedLWLockTranche(tranche))->lock;
    }
    return !found;
}

}  // namespace outbox::pg
