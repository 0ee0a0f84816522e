# PGXS build of the extension: `make && make install` against the PostgreSQL
# whose pg_config is first on PATH (or PG_CONFIG=...).
EXTENSION = outbox
EXTVERSION = 0.2.0
PREVIOUS_VERSION = 0.1.0
MODULE_big = outbox

# The install script of the current version, and the upgrade script from the
# previous release, are built from extension/src/ (see its README.md):
# tables are made by the install script and changed by the hand-written
# upgrade step; everything that can be replaced (functions, triggers, views,
# grants) is written once and run by both. Released scripts are kept as they
# shipped.
SQL_REPLACEABLE = $(addprefix extension/src/, dispatch.sql delivery.sql endpoints.sql operations.sql idempotency.sql restore.sql views.sql grants.sql)
DATA_built = extension/outbox--$(EXTVERSION).sql extension/outbox--$(PREVIOUS_VERSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built), $(wildcard extension/outbox--*.sql))

CORE_SRCS = $(wildcard src/core/*.cpp) $(wildcard src/http/*.cpp) $(wildcard src/sink/*.cpp)
PG_SRCS = $(wildcard src/pg/*.cpp)
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# pg_regress suites (sql/*.sql, expected/*.out), run on a temporary instance
# with the library preloaded by test/regress.sh (not by `make installcheck`,
# which would need a running server started by hand).
REGRESS = schema enqueue dispatch endpoints security gucs operations policy idempotency restore brokers
# Isolation specs (specs/, expected/): concurrent claimers.
ISOLATION = claim idempotency_concurrent

PG_CONFIG ?= pg_config
PG_CXXFLAGS = -std=c++20 -Isrc -DOUTBOX_VERSION='"$(EXTVERSION)"' -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register
# The broker sinks (src/sink): libnats, rabbitmq-c, hiredis (pkg-config names
# libnats, librabbitmq, hiredis).
SHLIB_LINK = -lcurl -lfmt -lcrypto -lnats -lrabbitmq -lhiredis -lstdc++

# No LLVM bitcode for JIT inlining: it would need clang to compile our C++20,
# and our functions gain nothing from inlining. `override` beats the value
# Makefile.global sets.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# One file after another, a blank line between them.
extension/outbox--$(EXTVERSION).sql: extension/src/preamble.sql extension/src/tables.sql $(SQL_REPLACEABLE)
	for f in $^; do cat $$f; echo; done > $@
extension/outbox--$(PREVIOUS_VERSION)--$(EXTVERSION).sql: extension/src/upgrade/$(PREVIOUS_VERSION)--$(EXTVERSION).sql $(SQL_REPLACEABLE)
	for f in $^; do cat $$f; echo; done > $@

# The library's objects know its version (user agent, schema check).
$(OBJS): Makefile
