#include "trace.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "error.hpp"
#include "excerpt.hpp"

namespace outbox::core {

namespace {

[[noreturn]] void invalid(std::string message, std::string hint) {
    throw InvalidInput(InvalidInput::Kind::InvalidValue, std::move(message), {}, std::move(hint));
}

bool lower_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zero(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

bool key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' || c == '/' ||
           c == '@';
}

bool value_char(char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; }

}  // namespace

void validate_traceparent(std::string_view value) {
    constexpr const char* kHint = "A traceparent is version-traceid-parentid-flags in lower-case hex, "
                                  "e.g. \"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\".";
    bool shaped = value.size() == 55 && value[2] == '-' && value[35] == '-' && value[52] == '-' &&
                  lower_hex(value.substr(0, 2)) && lower_hex(value.substr(3, 32)) &&
                  lower_hex(value.substr(36, 16)) && lower_hex(value.substr(53, 2));
    if (!shaped) invalid(fmt::format("invalid traceparent \"{}\"", excerpt(value)), kHint);
    if (value.substr(0, 2) == "ff") invalid("invalid traceparent: version ff is not allowed", kHint);
    if (all_zero(value.substr(3, 32)) || all_zero(value.substr(36, 16)))
        invalid("invalid traceparent: the trace id and the parent id must not be all zeros", kHint);
}

void validate_tracestate(std::string_view value) {
    constexpr const char* kHint = "A tracestate is up to 32 comma-separated key=value members, e.g. \"congo=t61rcWkgMzE\".";
    if (value.size() > 512) invalid("invalid tracestate: longer than 512 characters", kHint);
    int members = 0;
    std::string_view rest = value;
    while (true) {
        size_t comma = rest.find(',');
        std::string_view member = rest.substr(0, comma);
        while (!member.empty() && (member.front() == ' ' || member.front() == '\t')) member.remove_prefix(1);
        while (!member.empty() && (member.back() == ' ' || member.back() == '\t')) member.remove_suffix(1);
        if (!member.empty()) {
            size_t eq = member.find('=');
            std::string_view key = member.substr(0, eq);
            std::string_view val = eq == std::string_view::npos ? std::string_view() : member.substr(eq + 1);
            bool ok = eq != std::string_view::npos && !key.empty() && key.size() <= 256 && !val.empty() &&
                      val.size() <= 256 && std::all_of(key.begin(), key.end(), key_char) &&
                      std::all_of(val.begin(), val.end(), value_char) && val.back() != ' ';
            if (!ok) invalid(fmt::format("invalid tracestate member \"{}\"", excerpt(member)), kHint);
            if (++members > 32) invalid("invalid tracestate: more than 32 members", kHint);
        }
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
}

}  // namespace outbox::core
