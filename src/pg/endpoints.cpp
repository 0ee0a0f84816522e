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
#include "sink/sink.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
}

#include <optional>
#include <string>
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

std::string text_arg(FunctionCallInfo fcinfo, int n) {
    return std::string(text_view(pg_call([&] { return PG_GETARG_TEXT_PP(n); })));
}

Datum text_result(const std::string& value) {
    return pg_call([&] { return PointerGetDatum(cstring_to_text_with_len(value.data(), value.size())); });
}

// check_endpoint(url, topics, headers, secret): raises the first problem.
// A broker URL (nats://, amqp://, redis:// ...) is checked as such, and the
// secret with it as its credentials (sink::credentials_from_secret);
// otherwise the URL is an HTTP one and the secret a signing key.
Datum check_endpoint(FunctionCallInfo fcinfo) {
    std::optional<std::string> url;
    if (!PG_ARGISNULL(0)) url = text_arg(fcinfo, 0);
    bool broker = url && sink::is_broker_url(*url);
    if (broker) sink::validate_broker_url(*url);
    else if (url) core::validate_endpoint_url(*url);
    if (!PG_ARGISNULL(1)) check_topics(pg_call([&] { return PG_GETARG_ARRAYTYPE_P(1); }));
    if (!PG_ARGISNULL(2)) validate_headers_arg(pg_call([&] { return PG_GETARG_JSONB_P(2); }));
    if (!PG_ARGISNULL(3)) {
        std::string secret = text_arg(fcinfo, 3);
        if (broker) sink::credentials_from_secret(*url, secret);
        else core::SigningKey::parse(secret);
    }
    PG_RETURN_VOID();
}

// is_broker_url(url): whether an endpoint URL names a broker.
Datum is_broker_url(FunctionCallInfo fcinfo) {
    PG_RETURN_BOOL(sink::is_broker_url(text_arg(fcinfo, 0)));
}

// broker_url(url): a checked broker URL without its credentials, as
// stored. create_endpoint and alter_endpoint store no URL without it, so a
// protocol this build of the library lacks is refused here (0A000), after
// everything else about the URL was checked.
Datum broker_url(FunctionCallInfo fcinfo) {
    std::string url = text_arg(fcinfo, 0);
    sink::SplitUrl split = sink::split_credentials(url);
    sink::require_built_in(url);
    return text_result(split.url);
}

// broker_secret(url, secret): the credentials of a broker endpoint in the
// canonical form of its secret (sink::credentials_secret), from the URL's
// user:password@ or from `secret`; NULL when neither has any. Both at once
// is an error: which one was meant?
Datum broker_secret(FunctionCallInfo fcinfo) {
    std::string url = text_arg(fcinfo, 0);
    sink::SplitUrl split = sink::split_credentials(url);
    std::optional<std::string> secret;
    if (!PG_ARGISNULL(1)) secret = text_arg(fcinfo, 1);
    if (!split.credentials.empty() && secret)
        throw InvalidInput(InvalidInput::Kind::InvalidValue, "credentials given twice: in the URL and as the secret",
                           {}, "Pass them in one place: secret => 'user:password' keeps them out of the URL.");
    sink::Credentials credentials =
        secret ? sink::credentials_from_secret(url, *secret) : std::move(split.credentials);
    if (credentials.empty()) PG_RETURN_NULL();
    return text_result(sink::credentials_secret(credentials));
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

PG_FUNCTION_INFO_V1(outbox_is_broker_url);
Datum outbox_is_broker_url(PG_FUNCTION_ARGS) {
    return outbox::pg::report_exceptions("outbox.is_broker_url", [&] { return outbox::pg::is_broker_url(fcinfo); });
}

PG_FUNCTION_INFO_V1(outbox_broker_url);
Datum outbox_broker_url(PG_FUNCTION_ARGS) {
    return outbox::pg::report_exceptions("outbox.broker_url", [&] { return outbox::pg::broker_url(fcinfo); });
}

PG_FUNCTION_INFO_V1(outbox_broker_secret);
Datum outbox_broker_secret(PG_FUNCTION_ARGS) {
    return outbox::pg::report_exceptions("outbox.broker_secret", [&] { return outbox::pg::broker_secret(fcinfo); });
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
