// SQL helpers of the endpoint functions (extension/outbox--*.sql): checks
// that need the core (URL parser, topic patterns, header rules, secret
// format), topic matching and the CSPRNG. Not granted to anyone: only the SECURITY DEFINER
// endpoint functions call them.
#include "core/error.hpp"
#include "core/signing.hpp"
#include "core/url.hpp"
#include "core/validate.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/headers_arg.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
}

#include <string_view>

namespace outbox::pg {

namespace {

using core::InvalidInput;

// PostgreSQL-only: the elements of a text[] (NULL elements as nullptr).
void deconstruct_text_array(ArrayType* array, Datum** elems, bool** nulls, int* count) {
    deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, elems, nulls, count);
}

void check_topics(ArrayType* topics) {
    Datum* elems = nullptr;
    bool* nulls = nullptr;
    int count = 0;
    pg_call([&] { deconstruct_text_array(topics, &elems, &nulls, &count); });
    if (count == 0)
        throw InvalidInput(InvalidInput::Kind::InvalidValue, "topics must not be empty", {},
                           "Use '{*}' for every topic.");
    for (int i = 0; i < count; i++) {
        if (nulls[i])
            throw InvalidInput(InvalidInput::Kind::NullValue, "topics must not contain NULL", {},
                               "Use '{*}' for every topic.");
        core::validate_topic_pattern(text_view(reinterpret_cast<text*>(DatumGetPointer(elems[i]))));
    }
}

// check_endpoint(url, topics, headers, secret): raises the first problem.
Datum check_endpoint(FunctionCallInfo fcinfo) {
    if (!PG_ARGISNULL(0)) core::validate_endpoint_url(text_view(pg_call([&] { return PG_GETARG_TEXT_PP(0); })));
    if (!PG_ARGISNULL(1)) check_topics(pg_call([&] { return PG_GETARG_ARRAYTYPE_P(1); }));
    if (!PG_ARGISNULL(2)) validate_headers_arg(pg_call([&] { return PG_GETARG_JSONB_P(2); }));
    if (!PG_ARGISNULL(3)) {
        std::string secret(text_view(pg_call([&] { return PG_GETARG_TEXT_PP(3); })));
        core::SigningKey::parse(secret);
    }
    PG_RETURN_VOID();
}

// topic_matches(patterns text[], topic text): the rule of core::topic_matches,
// used by dispatch and replay.
Datum topic_matches(FunctionCallInfo fcinfo) {
    ArrayType* patterns = pg_call([&] { return PG_GETARG_ARRAYTYPE_P(0); });
    std::string_view topic = text_view(pg_call([&] { return PG_GETARG_TEXT_PP(1); }));
    Datum* elems = nullptr;
    bool* nulls = nullptr;
    int count = 0;
    pg_call([&] { deconstruct_text_array(patterns, &elems, &nulls, &count); });
    for (int i = 0; i < count; i++) {
        if (!nulls[i] && core::topic_matches(text_view(reinterpret_cast<text*>(DatumGetPointer(elems[i]))), topic))
            PG_RETURN_BOOL(true);
    }
    PG_RETURN_BOOL(false);
}

Datum new_secret(FunctionCallInfo) {
    std::string secret = core::generate_secret();
    return pg_call([&] { return PointerGetDatum(cstring_to_text_with_len(secret.data(), secret.size())); });
}

}  // namespace

}  // namespace outbox::pg

extern "C" {
PG_FUNCTION_INFO_V1(outbox_check_endpoint);
Datum outbox_check_endpoint(PG_FUNCTION_ARGS) {
    return outbox::pg::report_exceptions("outbox.check_endpoint", [&] { return outbox::pg::check_endpoint(fcinfo); });
}

PG_FUNCTION_INFO_V1(outbox_topic_matches);
Datum outbox_topic_matches(PG_FUNCTION_ARGS) {
    return outbox::pg::report_exceptions("outbox.topic_matches", [&] { return outbox::pg::topic_matches(fcinfo); });
}

PG_FUNCTION_INFO_V1(outbox_new_secret);
Datum outbox_new_secret(PG_FUNCTION_ARGS) {
    return outbox::pg::report_exceptions("outbox.new_secret", [&] { return outbox::pg::new_secret(fcinfo); });
}
}
