// Recording results: each delivery's row rewritten in place by primary key
// (direct_rows.hpp), then what follows from the outcomes: the next delivery
// of each finished key moved up, each attempt logged, dead deliveries
// announced, endpoints failing too long disabled. The worker and
// outbox.record() (relay.cpp) call record_results(); queue.hpp says what it
// does. A delivery that ends with a callback to call is written 'done' at
// once, its callback called after the rows are written (callbacks.hpp), and
// written again only when the callback failed; its key's next delivery
// moves up only once the callback has committed.
#include "pg/compat.hpp"
#include "pg/queue.hpp"

#include "pg/callbacks.hpp"
#include "pg/plan.hpp"
#include "pg/queue_tables.hpp"

#include <initializer_list>

extern "C" {
#include "access/genam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace outbox::pg {

namespace {

// A result as written: what the follow-ups need.
struct Written {
    const ResultRow* row;
    int32 attempts;
    bool keyed;
    Datum key;  // text, when keyed
    int64 seq;
    bool callback;  // it ended and calls a callback
};

bool finished_state(const char* state) { return strcmp(state, "pending") != 0; }

// A result to write over its row, and whether that row ended with a
// callback to call.
struct Rewriting {
    const ResultRow* row;
    bool callback = false;
};

// "name: value" lines as a jsonb object, names in lower case (a later
// line of the same name wins).
Datum headers_object(const char* lines) {
    JsonbParseState* state = nullptr;
    pushJsonbValue(&state, WJB_BEGIN_OBJECT, nullptr);
    for (const char* line = lines; *line != '\0';) {
        const char* end = strchr(line, '\n');
        if (end == nullptr) end = line + strlen(line);
        const char* colon = static_cast<const char*>(memchr(line, ':', end - line));
        if (colon != nullptr && colon > line) {
            char* name = asc_tolower(line, colon - line);
            const char* value = colon + 1;
            while (value < end && (*value == ' ' || *value == '\t')) value++;
            JsonbValue k{}, v{};
            k.type = jbvString;
            k.val.string.val = name;
            k.val.string.len = static_cast<int>(strlen(name));
            v.type = jbvString;
            v.val.string.val = pnstrdup(value, end - value);
            v.val.string.len = static_cast<int>(end - value);
            pushJsonbValue(&state, WJB_KEY, &k);
            pushJsonbValue(&state, WJB_VALUE, &v);
        }
        line = *end == '\0' ? end : end + 1;
    }
    return JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, nullptr)));
}

// The row of a result, unless its attempt no longer matches (the lease ran
// out and another claimer took it) or it is no longer pending. "Still
// pending" is finished_at IS NULL (the row's CHECK ties it to state).
bool write_result(DirectTable& t, void* arg) {
    Rewriting& w = *static_cast<Rewriting*>(arg);
    const ResultRow& r = *w.row;
    bool null = false;
    if (DatumGetInt32(column(t.current, deliveries::kAttempts, &null)) != r.attempt) return false;
    column(t.current, deliveries::kFinishedAt, &null);
    if (!null) return false;
    Datum callback_state = column(t.current, deliveries::kCallbackState, &null);
    bool has_callback = !null && strcmp(TextDatumGetCString(callback_state), "waiting") == 0;
    copy_current(t);
    Datum* v = t.next->tts_values;
    bool* n = t.next->tts_isnull;
    TimestampTz now = GetCurrentTransactionStartTimestamp();
    bool pending = !finished_state(r.state);
    w.callback = has_callback && !pending;
    v[deliveries::kState - 1] = CStringGetTextDatum(r.state);
    if (pending) v[deliveries::kNextAttemptAt - 1] = TimestampTzGetDatum(TimestampTzPlusMilliseconds(now, r.retry_in_ms));
    n[deliveries::kFinishedAt - 1] = pending;
    v[deliveries::kFinishedAt - 1] = TimestampTzGetDatum(now);
    if (w.callback) {  // written as called; written again if the call fails
        v[deliveries::kCallbackState - 1] = CStringGetTextDatum("done");
        v[deliveries::kCallbackAttempts - 1] = Int32GetDatum(DatumGetInt32(v[deliveries::kCallbackAttempts - 1]) + 1);
    }
    if (has_callback && !r.discarded) {
        n[deliveries::kLastResponseHeaders - 1] = r.headers == 0 && r.header_lines == nullptr;
        if (r.headers != 0) v[deliveries::kLastResponseHeaders - 1] = r.headers;
        else if (r.header_lines != nullptr) v[deliveries::kLastResponseHeaders - 1] = headers_object(r.header_lines);
    }
    n[deliveries::kLastError - 1] = r.error == nullptr;
    if (r.error) v[deliveries::kLastError - 1] = CStringGetTextDatum(r.error);
    if (r.discarded) {  // what its last attempt got stays
        ExecStoreVirtualTuple(t.next);
        return true;
    }
    n[deliveries::kLastStatus - 1] = r.status == 0;
    v[deliveries::kLastStatus - 1] = Int32GetDatum(r.status);
    Interval* duration = static_cast<Interval*>(palloc0(sizeof(Interval)));
    duration->time = r.duration_us;
    n[deliveries::kLastDuration - 1] = !r.duration_known;
    v[deliveries::kLastDuration - 1] = IntervalPGetDatum(duration);
    n[deliveries::kLastResponse - 1] = r.response == nullptr;
    if (r.response) v[deliveries::kLastResponse - 1] = CStringGetTextDatum(r.response);
    ExecStoreVirtualTuple(t.next);
    return true;
}

// A parked delivery moves up (it may be claimed at once), unless something
// else moved it already.
bool move_up(DirectTable& t, void*) {
    bool null = false;
    if (!TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(column(t.current, deliveries::kNextAttemptAt, &null)))) return false;
    copy_current(t);
    t.next->tts_values[deliveries::kNextAttemptAt - 1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
    ExecStoreVirtualTuple(t.next);
    return true;
}

bool same_key(const Written& x, const Written& y) {
    return x.row->endpoint_id == y.row->endpoint_id && strcmp(TextDatumGetCString(x.key), TextDatumGetCString(y.key)) == 0;
}

int by_endpoint_key_seq(const void* a, const void* b) {
    const Written& x = *static_cast<const Written*>(a);
    const Written& y = *static_cast<const Written*>(b);
    if (x.row->endpoint_id != y.row->endpoint_id) return x.row->endpoint_id < y.row->endpoint_id ? -1 : 1;
    int keys = strcmp(TextDatumGetCString(x.key), TextDatumGetCString(y.key));
    if (keys != 0) return keys;
    return x.seq < y.seq ? -1 : x.seq > y.seq ? 1 : 0;
}

// The next pending delivery of each key whose rows `done[0..n)` (one key,
// in seq order) finished: found one index descent per key, past the rows
// just finished (`snapshot` still shows them pending), and moved up if
// parked. A delivery dispatched meanwhile behind a head finished here is
// left to the sweep (unpark_heads).
// Returns whether the key has a pending delivery after those finished.
bool move_up_next(DirectTable& t, Relation key_order, const Written* done, int n, Snapshot snapshot) {
    ScanKeyData keys[2];
    index_key(&keys[0], key_order, 1, BTEqualStrategyNumber, Int32GetDatum(done[0].row->endpoint_id));
    index_key(&keys[1], key_order, 2, BTEqualStrategyNumber, done[0].key);
    IndexScanDesc scan = compat::index_scan(t.rel, key_order, snapshot, 2);
    index_rescan(scan, keys, 2, nullptr, 0);
    bool found = false;
    int j = 0;
    while (index_getnext_slot(scan, ForwardScanDirection, t.current)) {
        bool null = false;
        int64 seq = DatumGetInt64(column(t.current, deliveries::kSeq, &null));
        while (j < n && done[j].seq < seq) j++;
        if (j < n && done[j].seq == seq) continue;  // finished just now
        if (strcmp(TextDatumGetCString(column(t.current, deliveries::kState, &null)), "pending") != 0) continue;
        found = true;
        break;
    }
    index_endscan(scan);
    if (found) (void)rewrite_current(t, snapshot, move_up, nullptr);
    return found;
}

void log_attempts(const Written* written, int n, const char* mode) {
    DirectTable t;
    open_attempts(t);
    for (int i = 0; i < n; i++) {
        const ResultRow& r = *written[i].row;
        if (r.discarded || !logs_attempt(mode, r.state)) continue;
        clear_next(t);
        Datum* v = t.next->tts_values;
        bool* null = t.next->tts_isnull;
        v[attempts::kEventId - 1] = UUIDPGetDatum(const_cast<pg_uuid_t*>(r.event_id));
        v[attempts::kEndpointId - 1] = Int32GetDatum(r.endpoint_id);
        v[attempts::kAttempt - 1] = Int32GetDatum(written[i].attempts);
        v[attempts::kStartedAt - 1] =
            TimestampTzGetDatum(r.started_known ? r.started_at : GetCurrentTransactionStartTimestamp());
        Interval* duration = static_cast<Interval*>(palloc0(sizeof(Interval)));
        duration->time = r.duration_us;
        v[attempts::kDuration - 1] = IntervalPGetDatum(duration);
        v[attempts::kStatus - 1] = Int32GetDatum(r.status);
        if (r.error) v[attempts::kError - 1] = CStringGetTextDatum(r.error);
        if (r.response) v[attempts::kResponse - 1] = CStringGetTextDatum(r.response);
        for (int c : {attempts::kEventId, attempts::kEndpointId, attempts::kAttempt, attempts::kStartedAt}) null[c - 1] = false;
        null[attempts::kDuration - 1] = !r.duration_known;
        null[attempts::kStatus - 1] = r.status == 0;
        null[attempts::kError - 1] = r.error == nullptr;
        null[attempts::kResponse - 1] = r.response == nullptr;
        ExecStoreVirtualTuple(t.next);
        insert_next(t);
    }
    close_direct(t);
}

// Dead deliveries are announced, endpoints with failed attempts checked
// against their disable_after: statements of their own, seldom run.
void follow_up(const Written* written, int n) {
    Datum* dead_ids = static_cast<Datum*>(palloc(sizeof(Datum) * n));
    Datum* dead_endpoints = static_cast<Datum*>(palloc(sizeof(Datum) * n));
    Datum* failed = static_cast<Datum*>(palloc(sizeof(Datum) * n));
    int dead = 0, failures = 0;
    for (int i = 0; i < n; i++) {
        const ResultRow& r = *written[i].row;
        if (strcmp(r.state, "dead") == 0) {
            dead_ids[dead] = UUIDPGetDatum(const_cast<pg_uuid_t*>(r.event_id));
            dead_endpoints[dead++] = Int32GetDatum(r.endpoint_id);
        }
        if (!r.discarded && (r.status < 200 || r.status > 299)) failed[failures++] = Int32GetDatum(r.endpoint_id);
    }
    if (dead > 0)
        announce_dead(PointerGetDatum(construct_array(dead_ids, dead, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR)),
                      PointerGetDatum(construct_array(dead_endpoints, dead, INT4OID, 4, true, TYPALIGN_INT)));
    if (failures > 0) disable_failing(PointerGetDatum(construct_array(failed, failures, INT4OID, 4, true, TYPALIGN_INT)));
}

// Calls the callbacks of the deliveries that ended with one, then writes
// those that failed as pending; a key whose callback failed stays where it
// is (no longer `keyed`: its next delivery waits). Returns how many keys
// that held back.
int call_written_callbacks(Written* written, int n, int callbacks) {
    CallbackCall* calls = static_cast<CallbackCall*>(palloc0(sizeof(CallbackCall) * callbacks));
    int* of = static_cast<int*>(palloc(sizeof(int) * callbacks));
    int k = 0;
    for (int i = 0; i < n; i++)
        if (written[i].callback) {
            calls[k].event_id = written[i].row->event_id;
            calls[k].endpoint_id = written[i].row->endpoint_id;
            of[k++] = i;
        }
    call_callbacks(calls, k);
    note_callbacks(calls, k, true, true);
    CommandCounterIncrement();
    int held = 0;
    for (int j = 0; j < k; j++)
        if (calls[j].error != nullptr && written[of[j]].keyed) {
            written[of[j]].keyed = false;
            held++;
        }
    return held;
}

}  // namespace

bool logs_attempt(const char* log_mode, const char* state) {
    return strcmp(log_mode, "all") == 0 || (strcmp(log_mode, "failures") == 0 && strcmp(state, "delivered") != 0);
}

int record_results(const ResultRow* rows, int count, int* unblocked) {
    if (unblocked != nullptr) *unblocked = 0;
    if (count == 0) return 0;
    for (int i = 0; i < count; i++)
        if (strcmp(rows[i].state, "pending") != 0 && strcmp(rows[i].state, "delivered") != 0 &&
            strcmp(rows[i].state, "dead") != 0)
            ereport(ERROR, (errcode(ERRCODE_CHECK_VIOLATION),
                            errmsg("new row for relation \"deliveries\" violates check constraint \"deliveries_state_check\""),
                            errdetail("A result's state is pending, delivered or dead, not \"%s\".", rows[i].state)));
    Written* written = static_cast<Written*>(palloc(sizeof(Written) * count));
    int n = 0, keyed = 0, callbacks = 0;
    DirectTable t;
    open_deliveries(t, false);
    Relation pkey = index_named(t, "deliveries_pkey");
    Snapshot snapshot = RegisterSnapshot(GetTransactionSnapshot());
    for (int i = 0; i < count; i++) {
        ScanKeyData keys[2];
        index_key(&keys[0], pkey, 1, BTEqualStrategyNumber, UUIDPGetDatum(const_cast<pg_uuid_t*>(rows[i].event_id)));
        index_key(&keys[1], pkey, 2, BTEqualStrategyNumber, Int32GetDatum(rows[i].endpoint_id));
        if (!fetch_by_key(t, pkey, keys, 2, snapshot)) continue;
        Rewriting rewriting{&rows[i]};
        if (!rewrite_current(t, snapshot, write_result, &rewriting)) continue;
        bool null = false;
        Written& w = written[n++];
        w.row = &rows[i];
        w.callback = rewriting.callback;
        callbacks += w.callback;
        w.attempts = DatumGetInt32(t.next->tts_values[deliveries::kAttempts - 1]);
        w.seq = DatumGetInt64(t.next->tts_values[deliveries::kSeq - 1]);
        w.key = column(t.current, deliveries::kKey, &null);
        w.keyed = !null && finished_state(rows[i].state);
        if (w.keyed) w.key = PointerGetDatum(PG_DETOAST_DATUM_COPY(w.key));
        keyed += w.keyed;
    }
    if (callbacks > 0) {
        UnregisterSnapshot(snapshot);
        close_direct(t);
        keyed -= call_written_callbacks(written, n, callbacks);
        open_deliveries(t, false);
        snapshot = RegisterSnapshot(GetTransactionSnapshot());
    }
    if (keyed > 0) {
        Written* done = static_cast<Written*>(palloc(sizeof(Written) * keyed));
        int k = 0;
        for (int i = 0; i < n; i++)
            if (written[i].keyed) done[k++] = written[i];
        qsort(done, k, sizeof(Written), by_endpoint_key_seq);
        Relation key_order = index_named(t, "deliveries_key_order");
        for (int from = 0, to = 0; from < k; from = to) {
            for (to = from + 1; to < k && same_key(done[from], done[to]); to++) {}
            if (move_up_next(t, key_order, done + from, to - from, snapshot) && unblocked != nullptr) ++*unblocked;
        }
    }
    UnregisterSnapshot(snapshot);
    close_direct(t);
    const char* mode = GetConfigOption("outbox.log_attempts", true, false);
    if (mode == nullptr) mode = "failures";
    if (strcmp(mode, "none") != 0) log_attempts(written, n, mode);
    follow_up(written, n);
    return n;
}

}  // namespace outbox::pg
