# PGXS build of the extension: `make && make install` against the PostgreSQL
# whose pg_config is first on PATH (or PG_CONFIG=...).
EXTENSION = outbox
MODULE_big = outbox
DATA = $(wildcard extension/outbox--*.sql)

CORE_SRCS = $(wildcard src/core/*.cpp) $(wildcard src/http/*.cpp)
PG_SRCS = $(wildcard src/pg/*.cpp)
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# pg_regress suites (sql/*.sql, expected/*.out), run on a temporary instance
# with the library preloaded by test/regress.sh (not by `make installcheck`,
# which would need a running server started by hand).
REGRESS = schema enqueue dispatch endpoints security gucs
# Isolation specs (specs/, expected/): concurrent claimers.
ISOLATION = claim

PG_CONFIG ?= pg_config
PG_CXXFLAGS = -std=c++20 -Isrc -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register
SHLIB_LINK = -lcurl -lfmt -lcrypto -lstdc++

# No LLVM bitcode for JIT inlining: it would need clang to compile our C++20,
# and our functions gain nothing from inlining. `override` beats the value
# Makefile.global sets.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
