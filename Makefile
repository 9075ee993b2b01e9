# streamagg — PGXS build and test targets.
#
#   make && make install        build and install the extension
#   make installcheck           pg_regress + isolation + TAP, each against its
#                               own temporary instance with streamagg preloaded
#   make bench                  the benchmark (not a test; see test/bench/)
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
