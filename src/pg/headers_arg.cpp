#include "pg/headers_arg.hpp"

#include "core/error.hpp"
#include "core/headers.hpp"
#include "pg/guard.hpp"

#include <fmt/format.h>

#include <string_view>

namespace outbox::pg {

namespace {

using core::InvalidInput;

// One header of the headers argument, pointing into the jsonb value.
struct RawHeader {
    const char* name;
    int name_len;
    const char* value;  // nullptr when the value is not a JSON string
    int value_len;
};

enum class HeadersShape { Object, NotObject };

// PostgreSQL-only: walks the top level of a jsonb object. Values that are not
// strings are returned with value == nullptr.
HeadersShape collect_headers(Jsonb* headers, RawHeader** out, int* count) {
    *count = 0;
    if (!JB_ROOT_IS_OBJECT(headers)) return HeadersShape::NotObject;
    int capacity = JB_ROOT_COUNT(headers);
    *out = static_cast<RawHeader*>(palloc0(sizeof(RawHeader) * (capacity > 0 ? capacity : 1)));
    JsonbIterator* it = JsonbIteratorInit(&headers->root);
    JsonbValue v;
    JsonbIteratorToken token;
    RawHeader* current = nullptr;
    while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
        if (token == WJB_KEY) {
            current = &(*out)[(*count)++];
            current->name = v.val.string.val;
            current->name_len = v.val.string.len;
        } else if (token == WJB_VALUE && current != nullptr) {
            if (v.type == jbvString) {
                current->value = v.val.string.val;
                current->value_len = v.val.string.len;
            }
            current = nullptr;
        }
    }
    return HeadersShape::Object;
}

}  // namespace

void validate_headers_arg(Jsonb* headers) {
    RawHeader* raw = nullptr;
    int count = 0;
    HeadersShape shape = pg_call([&] { return collect_headers(headers, &raw, &count); });
    if (shape == HeadersShape::NotObject)
        throw InvalidInput(InvalidInput::Kind::InvalidValue, "headers must be a JSON object",
                           {}, "Pass headers as {\"name\": \"value\", ...}.");
    for (int i = 0; i < count; i++) {
        std::string_view name(raw[i].name, raw[i].name_len);
        if (raw[i].value == nullptr)
            throw InvalidInput(InvalidInput::Kind::InvalidValue,
                               fmt::format("header \"{}\" must have a string value",
                                           name.substr(0, 64)),
                               {}, "Header values are JSON strings, e.g. {\"x-tenant\": \"42\"}.");
        core::validate_header(name, std::string_view(raw[i].value, raw[i].value_len));
    }
}

}  // namespace outbox::pg
