#!/usr/bin/env bash
# Install what building and testing streamagg needs on Debian 12 (bookworm),
# and nothing more: PostgreSQL 15 server and headers, the Perl module the TAP
# tests use (IPC::Run), make and gcc.
#
# Idempotent: packages already installed are left alone, and when nothing is
# missing it does not even run `apt-get update`.
#
# The postgresql package creates and may start a cluster called "15/main" on
# port 5432. streamagg never uses it: the tests and the demo run their own
# throwaway clusters, with their own ports and socket directories, so that
# cluster can be running, stopped or absent.
set -euo pipefail

packages=(
	postgresql-15               # server, initdb, pg_ctl, psql
	postgresql-server-dev-15    # headers, pg_config, PGXS, pg_regress
	libipc-run-perl             # PostgreSQL::Test::Cluster needs IPC::Run
	postgresql-15-hll           # tests: another extension's aggregate (hll_add_agg)
	postgresql-15-tdigest       # tests: another extension's aggregate (tdigest)
	perl                        # prove, Test::More
	make
	gcc
)

missing=()
for pkg in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [[ $status != "install ok installed" ]]; then
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} == 0)); then
	echo "install-deps: all dependencies already installed"
	exit 0
fi

if ((EUID == 0)); then
	sudo=()
elif command -v sudo >/dev/null; then
	sudo=(sudo)
else
	echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends "${missing[@]}"
