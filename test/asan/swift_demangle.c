/*
 * Preloaded after the ASan runtime into the server (scripts/e2e-asan.sh).
 *
 * The server is not built with ASan, so the runtime initialises lazily, at
 * the first malloc. The first one comes from libgpg-error's constructor
 * (postgres links it through libldap and gnutls), inside bindtextdomain(),
 * which holds glibc's gettext lock. ASan's initialisation looks up the
 * optional symbol swift_demangle with dlsym(), and its dlerror() call
 * translates the "undefined symbol" message, taking the same lock: the
 * process hangs (glibc 2.36, GCC 12 and clang 14 runtimes alike). With the
 * symbol defined the lookup succeeds and nothing is translated. Returning
 * NULL says "not a Swift name".
 */
#include <stddef.h>

char *swift_demangle(const char *mangled, size_t length, char *out, size_t *out_length, unsigned flags);

char *swift_demangle(const char *mangled, size_t length, char *out, size_t *out_length, unsigned flags)
{
    (void) mangled;
    (void) length;
    (void) out;
    (void) out_length;
    (void) flags;
    return NULL;
}
