// Adds the trace headers with PostgreSQL's own jsonb building functions.
// Plain PostgreSQL code, no C++ objects.
#include "pg/trace_headers.hpp"

#include "pg/gucs.hpp"

#include <strings.h>

namespace outbox::pg {

namespace {

void push_string(JsonbParseState** state, JsonbIteratorToken token, const char* s, int len) {
    JsonbValue v;
    v.type = jbvString;
    v.val.string.val = const_cast<char*>(s);
    v.val.string.len = len;
    pushJsonbValue(state, token, &v);
}

bool names(Jsonb* headers, const char* name) {
    if (headers == nullptr) return false;
    JsonbIterator* it = JsonbIteratorInit(&headers->root);
    JsonbValue v;
    JsonbIteratorToken token;
    size_t len = strlen(name);
    while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
        if (token == WJB_KEY && static_cast<size_t>(v.val.string.len) == len &&
            strncasecmp(v.val.string.val, name, len) == 0)
            return true;
    return false;
}

}  // namespace

bool trace_context_set() { return guc_traceparent != nullptr && guc_traceparent[0] != '\0'; }

Jsonb* with_trace_context(Jsonb* headers) {
    bool add_parent = !names(headers, "traceparent");
    bool add_state = guc_tracestate != nullptr && guc_tracestate[0] != '\0' && !names(headers, "tracestate");
    if (!add_parent && !add_state) return headers;
    JsonbParseState* state = nullptr;
    pushJsonbValue(&state, WJB_BEGIN_OBJECT, nullptr);
    if (headers != nullptr) {
        JsonbIterator* it = JsonbIteratorInit(&headers->root);
        JsonbValue v;
        JsonbIteratorToken token;
        while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
            if (token == WJB_KEY || token == WJB_VALUE) pushJsonbValue(&state, token, &v);
    }
    if (add_parent) {
        push_string(&state, WJB_KEY, "traceparent", 11);
        push_string(&state, WJB_VALUE, guc_traceparent, static_cast<int>(strlen(guc_traceparent)));
    }
    if (add_state) {
        push_string(&state, WJB_KEY, "tracestate", 10);
        push_string(&state, WJB_VALUE, guc_tracestate, static_cast<int>(strlen(guc_tracestate)));
    }
    return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, nullptr));
}

}  // namespace outbox::pg
