// Values in and out of the worker's statements: arrays built from C data as
// parameters, columns of SPI results read into palloc'd C data, and the
// claimed deliveries that dispatch and claim return.
// PostgreSQL-only: call through pg_call(), inside a transaction.
#pragma once

extern "C" {
#include "postgres.h"

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"
}

namespace outbox::pg {

// One-dimensional arrays of `n` values (text: nullptr is NULL).
Datum text_array(const char* const* values, int n);
Datum int4_array(const int32* values, int n);
Datum int8_array(const int64* values, int n);
Datum uuid_array(const pg_uuid_t* const* values, int n);

// Column `column` (1-based) of `tuple`: text as a palloc'd C string (nullptr
// when NULL, `len` set when given), int4 (0 when NULL).
char* column_text(HeapTuple tuple, TupleDesc desc, int column, int* len);
int32 column_int4(HeapTuple tuple, TupleDesc desc, int column);

// A jsonb object of headers as "name: value" lines joined by newlines, as
// string_agg(key || ': ' || value, E'\n') over jsonb_each_text() makes
// them; nullptr when there is none (or `headers` is NULL).
char* header_lines_of(Jsonb* headers);

// One claimed delivery; strings are NUL-terminated and palloc'd.
struct ClaimedRow {
    pg_uuid_t event_uuid;
    char* event_id;      // the same as text
    int32 endpoint_id;
    int32 attempt;       // this attempt's number (already counted)
    char* topic;
    char* payload;       // JSON text, the request body
    int payload_len;
    char* header_lines;  // event headers as "name: value\n..." or nullptr
    TimestampTz created_at;  // the delivery's
    char* key;           // nullptr: unkeyed
    int64 seq;
};

// The claim columns, in this order from `first` (1-based) on, of a
// statement's rows: event_id uuid, attempt int4, topic text, payload text,
// headers jsonb, created_at timestamptz, key text, seq int8, endpoint_id int4.
constexpr int kClaimedColumns = 9;

// Reads rows [from, to) of SPI_tuptable whose event_id column is not NULL
// into `rows` (room for to - from), in `out`. Returns how many.
int read_claimed(int first, uint64 from, uint64 to, MemoryContext out, ClaimedRow* rows);

}  // namespace outbox::pg
