// Bytes from peers made storable as text (src/core/text.cpp, excerpt.hpp):
// response bodies, error texts.
#include "core/excerpt.hpp"
#include "core/text.hpp"
#include "fuzz.hpp"

using namespace outbox::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view bytes = fuzz::text(data, size);
    std::string utf8 = sanitize_text(bytes, false);
    FUZZ_CHECK(utf8.find('\0') == std::string::npos, "no NUL");
    FUZZ_CHECK(sanitize_text(utf8, false) == utf8, "valid UTF-8 stays as it is");
    std::string ascii = sanitize_text(bytes, true);
    FUZZ_CHECK(ascii.size() == bytes.size(), "one byte for one byte");
    for (char c : ascii) FUZZ_CHECK(c > 0 && static_cast<unsigned char>(c) < 0x80, "ASCII without NUL");
    std::string cut = excerpt(bytes, 16);
    FUZZ_CHECK(sanitize_text(cut, false) == cut, "an excerpt is valid UTF-8");
    return 0;
}
