# PGXS build of the extension: `make && make install` against the PostgreSQL
# whose pg_config is first on PATH (or PG_CONFIG=...). Builds in the source
# tree, or out of it with `make -f SRC/Makefile VPATH=SRC` (what Debian's
# pg_buildext does, one build directory per server version).
EXTENSION = outbox
EXTVERSION = 0.3.0
PREVIOUS_VERSION = 0.2.0
MODULE_big = outbox

# Where the sources are: the current directory, or VPATH for a build out of tree.
src_root := $(if $(VPATH),$(VPATH),.)
in_src = $(patsubst $(src_root)/%,%,$(wildcard $(addprefix $(src_root)/,$(1))))

# The broker protocols (src/sink/<name>.cpp and <name>_*.cpp) and the client library each
# needs, by its pkg-config name (Debian's -dev package in parentheses):
#   nats   libnats      (libnats-dev)      nats:// and tls://
#   amqp   librabbitmq  (librabbitmq-dev)  amqp:// and amqps://
#   redis  hiredis      (libhiredis-dev)   redis://
#   kafka  rdkafka      (librdkafka-dev)   kafka:// and kafkas://
# BROKERS names the protocols wanted; each whose library pkg-config finds is
# built in, the others are left out (with a warning), and the library refuses
# their URLs (SQLSTATE 0A000). `make BROKERS=` builds none: webhooks only.
# REQUIRE_BROKERS=yes makes a missing library an error (the Debian package).
# Give `make install` the same BROKERS as `make`.
BROKERS ?= nats amqp redis kafka
broker_library_nats = libnats
broker_library_amqp = librabbitmq
broker_library_redis = hiredis
broker_library_kafka = rdkafka
PKG_CONFIG ?= pkg-config
unknown_brokers := $(filter-out nats amqp redis kafka,$(BROKERS))
ifneq ($(unknown_brokers),)
$(error BROKERS: unknown protocol "$(unknown_brokers)" (nats, amqp, redis and kafka are known))
endif
found_brokers := $(foreach b,$(BROKERS),$(if $(shell $(PKG_CONFIG) --exists $(broker_library_$(b)) && echo y),$(b)))
missing_brokers := $(filter-out $(found_brokers),$(BROKERS))
ifneq ($(filter-out clean distclean dist,$(or $(MAKECMDGOALS),all)),)
$(foreach b,$(missing_brokers),$(if $(filter yes,$(REQUIRE_BROKERS)),\
  $(error $(broker_library_$(b)) not found by pkg-config: install it (Debian: $(patsubst hiredis,libhiredis,$(patsubst rdkafka,librdkafka,$(broker_library_$(b))))-dev), or leave $(b) out with BROKERS),\
  $(warning outbox: $(broker_library_$(b)) not found by pkg-config: building without $(b) (README, "Install"))))
endif

# The install script of the current version, and the upgrade script from the
# previous release, are built from extension/src/ (see its README.md):
# tables are made by the install script and changed by the hand-written
# upgrade step; everything that can be replaced (functions, triggers, views,
# grants) is written once and run by both. Released scripts are kept as they
# shipped.
SQL_REPLACEABLE = $(addprefix extension/src/, dispatch.sql delivery.sql endpoints.sql operations.sql idempotency.sql restore.sql views.sql grants.sql)
# (Named by absolute path: out of tree, scripts built in the source tree
# before must not stand in for them.)
DATA_built = $(addprefix $(CURDIR)/extension/,outbox--$(EXTVERSION).sql outbox--$(PREVIOUS_VERSION)--$(EXTVERSION).sql)
DATA = $(filter-out $(notdir $(DATA_built)),$(notdir $(wildcard $(src_root)/extension/outbox--*.sql)))
DATA := $(addprefix extension/,$(DATA))

CORE_SRCS = $(call in_src,src/core/*.cpp src/http/*.cpp) \
            $(filter-out $(foreach b,nats amqp redis kafka,src/sink/$(b).cpp src/sink/$(b)_%.cpp),$(call in_src,src/sink/*.cpp)) \
            $(call in_src,$(foreach b,$(found_brokers),src/sink/$(b).cpp src/sink/$(b)_*.cpp))
PG_SRCS = $(call in_src,src/pg/*.cpp)
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# pg_regress suites (sql/*.sql, expected/*.out), run on a temporary instance
# with the library preloaded by test/regress.sh (not by `make installcheck`,
# which would need a running server started by hand).
REGRESS = schema enqueue dispatch endpoints security gucs operations policy idempotency restore brokers broker_missing direct_rows callbacks
# Isolation specs (specs/, expected/): concurrent claimers.
ISOLATION = claim idempotency_concurrent callbacks_concurrent

PG_CONFIG ?= pg_config
broker_defines = $(foreach b,$(found_brokers),-DOUTBOX_WITH_$(shell echo $(b) | tr a-z A-Z))
PG_CXXFLAGS = -std=c++20 -I$(src_root)/src -DOUTBOX_VERSION='"$(EXTVERSION)"' $(broker_defines) -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register
# Each object's header dependencies (x.d beside x.o), so that a changed
# header rebuilds what includes it: a struct changed under stale objects
# crashed the worker.
PG_CXXFLAGS += -MMD -MP
SHLIB_LINK = -lcurl -lfmt -lcrypto $(if $(found_brokers),$(shell $(PKG_CONFIG) --libs $(foreach b,$(found_brokers),$(broker_library_$(b))))) -lstdc++
EXTRA_CLEAN = build/brokers.stamp outbox-$(EXTVERSION).zip $(OBJS:.o=.d)

# No LLVM bitcode for JIT inlining: it would need clang to compile our C++20,
# and our functions gain nothing from inlining. `override` beats the value
# Makefile.global sets.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Out of tree, the object and script directories must exist.
ifdef VPATH
$(shell mkdir -p src/core src/http src/sink src/pg extension build)
endif

# One file after another, a blank line between them.
$(CURDIR)/extension/outbox--$(EXTVERSION).sql: extension/src/preamble.sql extension/src/tables.sql $(SQL_REPLACEABLE)
	for f in $^; do cat $$f; echo; done > $@
$(CURDIR)/extension/outbox--$(PREVIOUS_VERSION)--$(EXTVERSION).sql: extension/src/upgrade/$(PREVIOUS_VERSION)--$(EXTVERSION).sql $(SQL_REPLACEABLE)
	for f in $^; do cat $$f; echo; done > $@

# The library's objects know its version (user agent, schema check) and
# which protocols are built in: a change of BROKERS builds them again.
build/brokers.stamp: FORCE
	@mkdir -p build
	@echo '$(found_brokers)' | cmp -s - $@ 2>/dev/null || echo '$(found_brokers)' > $@
$(OBJS): Makefile build/brokers.stamp
-include $(OBJS:.o=.d)
.PHONY: FORCE

# The PGXN release archive (META.json): the tracked files of the working
# tree, uncommitted changes included, under outbox-$(EXTVERSION)/.
dist:
	cd $(src_root) && tree=$$(git -c user.name=outbox -c user.email=dist@outbox.invalid stash create) && \
	  git archive --format zip --prefix outbox-$(EXTVERSION)/ -o $(CURDIR)/outbox-$(EXTVERSION).zip $${tree:-HEAD}
	@echo "wrote outbox-$(EXTVERSION).zip"
.PHONY: dist
