// The utility hook: DDL that concerns the workers (DROP DATABASE, RENAME,
// CREATE / DROP EXTENSION, ALTER DATABASE ... SET, ...), told to the
// launcher (utility_hook.cpp says which and how).
#pragma once

namespace outbox::pg {

// Installs the hook (preload only).
void install_utility_hook();

// At the end of every top-level transaction (module.cpp's callback): what
// a committed one did is told to the launcher, and the databases it held
// are released.
void utility_transaction_end(bool committed);

}  // namespace outbox::pg
