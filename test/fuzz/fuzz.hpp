// Helpers of the libFuzzer targets (README.md): the input as text, split
// into parts, and a check that fails loudly.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz {

inline std::string_view text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// The input cut at each NUL byte: `n` parts, the last one taking the rest
// (missing parts are empty).
inline std::vector<std::string_view> parts(std::string_view input, std::size_t n) {
    std::vector<std::string_view> out;
    while (out.size() + 1 < n) {
        std::size_t nul = input.find('\0');
        if (nul == std::string_view::npos) break;
        out.push_back(input.substr(0, nul));
        input.remove_prefix(nul + 1);
    }
    out.push_back(input);
    out.resize(n);
    return out;
}

// Whether `s` could be a secret that an error message must not show: long
// enough, letters and digits both and nothing else (so that it cannot appear in a
// message by chance, from its own words or from what sanitising made of
// other bytes).
inline bool secret_like(std::string_view s) {
    if (s.size() < 8) return false;
    bool letter = false, digit = false;
    for (char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) letter = true;
        else if (c >= '0' && c <= '9') digit = true;
        else return false;
    }
    return letter && digit;  // not a word of the message's own
}

// A property that must hold: abort (libFuzzer keeps the input) when not.
#define FUZZ_CHECK(cond, what)                                                         \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            std::fprintf(stderr, "property violated: %s (%s)\n", what, #cond);         \
            std::abort();                                                              \
        }                                                                              \
    } while (0)

}  // namespace fuzz
