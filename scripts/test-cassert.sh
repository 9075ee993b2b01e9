#!/usr/bin/env bash
# Run every streamagg test suite against a PostgreSQL 15 built with
# assertions (--enable-cassert): the server then checks its own invariants
# on every call streamagg makes into it, and overwrites memory as it frees
# it (CLOBBER_FREED_MEMORY), so that a read of freed memory gives garbage
# instead of the old values.  Not part of scripts/test.sh or CI: building the
# server takes about 10 minutes on 2 cores.
#
#   scripts/test-cassert.sh [SOURCE-DIR]
#
# SOURCE-DIR is an unpacked PostgreSQL 15 source tree, never built in place
# (it is copied); without it, `apt-get source postgresql-15` fetches
# Debian's (deb-src must be configured).  The server is installed under
# $CASSERT_PREFIX (default /opt/postgres-cassert) and reused by later runs.
# The prefix must contain "postgres": Debian's source otherwise installs the
# server's modules into /usr/lib/postgresql/15/lib, over the packaged ones.
#
# The hll and tdigest extensions (extension_aggregates.sql) are copied from
# the system's PostgreSQL 15 packages into the new installation.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${CASSERT_PREFIX:-/opt/postgres-cassert}
case $prefix in
*postgres* | *pgsql*) ;;
*)
	echo "CASSERT_PREFIX must contain \"postgres\" or \"pgsql\" (see the header)" >&2
	exit 2
	;;
esac

if [[ ! -x $prefix/bin/pg_config ]]; then
	work=$(mktemp -d "${TMPDIR:-/tmp}/streamagg-cassert.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	if [[ -n ${1:-} ]]; then
		cp -a "$1" "$work/src"
	else
		(cd "$work" && apt-get source -q postgresql-15 >/dev/null)
		mv "$work"/postgresql-15-*/ "$work/src"
	fi
	cd "$work/src"
	./configure --prefix="$prefix" --enable-cassert --enable-debug \
		--enable-tap-tests --without-icu --without-readline \
		CFLAGS="-O1 -g -fno-omit-frame-pointer" >"$work/configure.log"
	# the server may not install anything outside the prefix
	[[ $(grep '^#define PKGLIBDIR' src/port/pg_config_paths.h) == *"\"$prefix"* ]] || {
		echo "the server's modules would not be installed under $prefix" >&2
		exit 1
	}
	make -s -j"$(nproc)" >"$work/make.log" 2>&1
	make -s install
	make -s -C contrib/postgres_fdw install
	make -s -C src/test/isolation install
	make -s -C src/test/perl install
fi

# the other extensions the tests use, from the system's packages
system_pg=/usr/lib/postgresql/15
for ext in hll tdigest; do
	cp "$system_pg/lib/$ext.so" "$prefix/lib/"
	cp /usr/share/postgresql/15/extension/"$ext"[.-]* "$prefix/share/extension/"
done

echo "running the suites against $("$prefix/bin/pg_config" --version) built with assertions"
PG_CONFIG=$prefix/bin/pg_config exec "$repo/scripts/test.sh"
