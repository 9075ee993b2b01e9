# streamagg — PGXS build and test targets.
#
#   make && make install        build and install the extension
#   make installcheck           pg_regress + isolation + TAP, each against its
#                               own temporary instance with streamagg preloaded
#   make bench                  the benchmark (not a test; see test/bench/)
#   make fuzz [SEED=n] [CALLS=n]  fuzz create_query (test/t/012_create_query_fuzz.pl)
#                               with a random seed (printed) unless SEED is given;
#                               FUZZ_ONLY=17,42 replays single calls of a seed
#   make differential           the randomized differential test at length
#                               (SEED=, CASES=, CASE=; see test/t/013_differential.pl)
#
# The tests never touch a running server: pg_regress and pg_isolation_regress
# use --temp-instance with test/streamagg.conf, and the TAP tests start their
# own clusters through PostgreSQL::Test::Cluster.

EXTENSION = streamagg
MODULE_big = streamagg
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA = $(wildcard sql/streamagg--*.sql)
PGFILEDESC = "streamagg - windowed streaming aggregation with watermarks"

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wmissing-prototypes -Wpointer-arith -Werror=vla \
	-Wendif-labels -Wmissing-format-attribute -Wformat-security

# Regression tests: every sql/*.sql except the extension scripts.
REGRESS = $(sort $(basename $(notdir $(filter-out sql/streamagg--%,$(wildcard sql/*.sql)))))
REGRESS_OPTS = --temp-instance=tmp_check_regress \
	--temp-config=$(srcdir)/test/streamagg.conf
ISOLATION = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --temp-instance=tmp_check_iso \
	--temp-config=$(srcdir)/test/streamagg.conf --inputdir=$(srcdir)/test \
	--outputdir=output_iso
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl
EXTRA_CLEAN = tmp_check_regress tmp_check_iso output_iso results \
	regression.diffs regression.out log

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every object depends on the shared headers (PGXS tracks no dependencies).
$(OBJS): $(wildcard src/*.h)

.PHONY: bench
bench:
	$(srcdir)/test/bench/run.sh

# The create_query fuzz test alone, against the installed extension, with a
# random seed unless SEED is given (installcheck runs it with a fixed seed),
# CALLS calls (default 3000).  Replay single calls with FUZZ_ONLY=17,42 and the
# printed seed.  Run it as a non-root user: initdb refuses root.
.PHONY: fuzz
fuzz:
	@seed=$${SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	echo "create_query fuzz: seed $$seed (rerun: make fuzz SEED=$$seed CALLS=$${CALLS:-3000})"; \
	FUZZ_SEED=$$seed FUZZ_CALLS=$${CALLS:-3000} $(MAKE) installcheck REGRESS= ISOLATION= \
		PROVE_TESTS=test/t/012_create_query_fuzz.pl; \
	rc=$$?; echo "create_query fuzz: seed $$seed"; exit $$rc

# The randomized differential test (test/t/013_differential.pl) at length:
# thousands of cases with a random seed (or SEED=n), some with up to 100 000
# keys; prints the seed, the case and a minimized psql reproduction of every
# failure.  CASE=n runs one case of SEED only; LONG=0 generates the cases as
# the suite does (no large ones).  Run after make install.
#   make differential [SEED=n] [CASES=n] [CASE=n] [LONG=0]
CASES ?= 3000
LONG ?= 1
.PHONY: differential
differential: PROVE_TESTS = test/t/013_differential.pl
differential:
	export STREAMAGG_DIFF_LONG='$(LONG)' STREAMAGG_DIFF_SEED='$(SEED)' \
		STREAMAGG_DIFF_CASES='$(CASES)' STREAMAGG_DIFF_CASE='$(CASE)'; \
	$(prove_installcheck)
