#include "pg/spi_values.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

namespace outbox::pg {

namespace {

Datum* datums_for(int n) { return static_cast<Datum*>(palloc(sizeof(Datum) * (n > 0 ? n : 1))); }

}  // namespace

Datum text_array(const char* const* values, int n) {
    Datum* datums = datums_for(n);
    bool* nulls = static_cast<bool*>(palloc(sizeof(bool) * (n > 0 ? n : 1)));
    for (int i = 0; i < n; i++) {
        nulls[i] = values[i] == nullptr;
        datums[i] = nulls[i] ? (Datum)0 : CStringGetTextDatum(values[i]);
    }
    int dims[1] = {n};
    int lbs[1] = {1};
    return PointerGetDatum(construct_md_array(datums, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

Datum int4_array(const int32* values, int n) {
    Datum* datums = datums_for(n);
    for (int i = 0; i < n; i++) datums[i] = Int32GetDatum(values[i]);
    return PointerGetDatum(construct_array(datums, n, INT4OID, 4, true, TYPALIGN_INT));
}

Datum int8_array(const int64* values, int n) {
    Datum* datums = datums_for(n);
    for (int i = 0; i < n; i++) datums[i] = Int64GetDatum(values[i]);
    return PointerGetDatum(construct_array(datums, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

Datum uuid_array(const pg_uuid_t* const* values, int n) {
    Datum* datums = datums_for(n);
    for (int i = 0; i < n; i++) datums[i] = UUIDPGetDatum(const_cast<pg_uuid_t*>(values[i]));
    return PointerGetDatum(construct_array(datums, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

char* column_text(HeapTuple tuple, TupleDesc desc, int column, int* len) {
    bool isnull = false;
    Datum d = SPI_getbinval(tuple, desc, column, &isnull);
    if (isnull) {
        if (len) *len = 0;
        return nullptr;
    }
    text* t = DatumGetTextPP(d);
    int n = VARSIZE_ANY_EXHDR(t);
    char* s = static_cast<char*>(palloc(n + 1));
    memcpy(s, VARDATA_ANY(t), n);
    s[n] = '\0';
    if (len) *len = n;
    return s;
}

int32 column_int4(HeapTuple tuple, TupleDesc desc, int column) {
    bool isnull = false;
    Datum d = SPI_getbinval(tuple, desc, column, &isnull);
    return isnull ? 0 : DatumGetInt32(d);
}

// The value of a top-level key as jsonb_each_text() gives it: a string's
// characters, anything else as JSON text; false for JSON null (skipped).
static bool value_text(const JsonbValue& v, StringInfo out) {
    switch (v.type) {
        case jbvNull:
            return false;
        case jbvString:
            appendBinaryStringInfo(out, v.val.string.val, v.val.string.len);
            return true;
        case jbvBinary:
            (void)JsonbToCString(out, v.val.binary.data, v.val.binary.len);
            return true;
        default: {
            Jsonb* scalar = JsonbValueToJsonb(const_cast<JsonbValue*>(&v));
            (void)JsonbToCString(out, &scalar->root, VARSIZE(scalar));
            return true;
        }
    }
}

char* header_lines_of(Jsonb* headers) {
    if (headers == nullptr || !JB_ROOT_IS_OBJECT(headers)) return nullptr;
    StringInfoData lines;
    initStringInfo(&lines);
    JsonbIterator* it = JsonbIteratorInit(&headers->root);
    JsonbValue v;
    JsonbIteratorToken token;
    int name_at = -1;  // where the current key's line starts
    bool any = false;
    while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
        if (token == WJB_KEY) {
            name_at = lines.len;
            if (any) appendStringInfoChar(&lines, '\n');
            appendBinaryStringInfo(&lines, v.val.string.val, v.val.string.len);
            appendStringInfoString(&lines, ": ");
        } else if (token == WJB_VALUE && name_at >= 0) {
            if (value_text(v, &lines)) {
                any = true;
            } else {
                lines.len = name_at;  // no line for a null value
                lines.data[lines.len] = '\0';
            }
            name_at = -1;
        }
    }
    if (!any) {
        pfree(lines.data);
        return nullptr;
    }
    return lines.data;
}

int read_claimed(int first, uint64 from, uint64 to, MemoryContext out, ClaimedRow* rows) {
    MemoryContext old = MemoryContextSwitchTo(out);
    TupleDesc desc = SPI_tuptable->tupdesc;
    int n = 0;
    for (uint64 i = from; i < to; i++) {
        HeapTuple tuple = SPI_tuptable->vals[i];
        bool isnull = true;
        Datum id = SPI_getbinval(tuple, desc, first, &isnull);
        if (isnull) continue;
        ClaimedRow& row = rows[n++];
        row.event_uuid = *DatumGetUUIDP(id);
        row.event_id = DatumGetCString(DirectFunctionCall1(uuid_out, id));
        row.attempt = column_int4(tuple, desc, first + 1);
        row.topic = column_text(tuple, desc, first + 2, nullptr);
        row.payload = column_text(tuple, desc, first + 3, &row.payload_len);
        Datum headers = SPI_getbinval(tuple, desc, first + 4, &isnull);
        row.header_lines = isnull ? nullptr : header_lines_of(DatumGetJsonbP(headers));
        Datum created = SPI_getbinval(tuple, desc, first + 5, &isnull);
        row.created_at = isnull ? GetCurrentTimestamp() : DatumGetTimestampTz(created);
        row.key = column_text(tuple, desc, first + 6, nullptr);
        Datum seq = SPI_getbinval(tuple, desc, first + 7, &isnull);
        row.seq = isnull ? 0 : DatumGetInt64(seq);
        row.endpoint_id = column_int4(tuple, desc, first + 8);
    }
    MemoryContextSwitchTo(old);
    return n;
}

}  // namespace outbox::pg
