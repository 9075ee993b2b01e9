#!/usr/bin/env bash
# streamagg live demo.
#
# Builds and installs streamagg, starts a throwaway PostgreSQL 15 cluster
# with streamagg preloaded, and streams page clicks into a table while three
# continuous queries aggregate them into 10-second windows:
#
#   clicks_append    append mode:   a window appears once, when the watermark
#                                   (max event time - 5 s) passes its end
#   clicks_update    update mode:   windows are upserted as events arrive
#   clicks_complete  complete mode: the sink always holds the whole result
#
# Some events arrive ~8 seconds late: append and update drop them once their
# window is closed (see late_rows_dropped); complete mode never drops them.
# The cluster is stopped and removed at the end, or on Ctrl-C.
#
# Environment: PORT (default 54329), DURATION in seconds (default 25),
# PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"	# runuser

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
PORT=${PORT:-54329}
DURATION=${DURATION:-25}
if [[ -z ${PG_CONFIG:-} ]]; then
	PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	[[ -x $PG_CONFIG ]] || PG_CONFIG=pg_config
fi

# --- build and install ------------------------------------------------------
scripts/install-deps.sh
make -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG"
if ((EUID == 0)); then
	make -s install PG_CONFIG="$PG_CONFIG"
else
	sudo make -s install PG_CONFIG="$PG_CONFIG"
fi
bindir=$("$PG_CONFIG" --bindir)

# --- a throwaway cluster ----------------------------------------------------
# initdb refuses to run as root: as root, the cluster belongs to postgres.
dir=$(mktemp -d "${TMPDIR:-/tmp}/streamagg-demo.XXXXXX")
if ((EUID == 0)); then
	chown postgres: "$dir"
	as_owner=(runuser -u postgres --)
else
	as_owner=()
fi

cleanup() {
	"${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast stop \
		>/dev/null 2>&1 || true
	rm -rf "$dir"
	echo "demo cluster stopped and removed"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust \
	--no-sync >/dev/null
# The server listens only on a Unix socket in $dir: it cannot collide with
# another server, including Debian's own cluster.
cat >>"$dir/data/postgresql.conf" <<CONF
shared_preload_libraries = 'streamagg'
port = $PORT
listen_addresses = ''
unix_socket_directories = '$dir'
CONF
"${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
	start >/dev/null
"${as_owner[@]}" "$bindir/createdb" -h "$dir" -p "$PORT" -U postgres demo

sql() {
	"${as_owner[@]}" "$bindir/psql" -X -q -v ON_ERROR_STOP=1 \
		-h "$dir" -p "$PORT" -U postgres -d demo "$@"
}

echo "demo cluster running; to look around meanwhile:"
echo "  ${as_owner[*]} $bindir/psql -h $dir -p $PORT -U postgres demo"

# --- the source table and three continuous queries --------------------------
sql <<'SQL'
\o /dev/null
CREATE EXTENSION streamagg;

CREATE TABLE clicks (ts timestamptz, page text, ms int);

SELECT streamagg.create_query(
	name => 'clicks_append', source => 'clicks', event_time => 'ts',
	aggregates => 'count(*) AS hits, avg(ms) AS avg_ms', group_by => 'page',
	window_size => '10 seconds', watermark => '5 seconds',
	output_mode => 'append', sink => 'clicks_append',
	trigger_interval => '1 second');

SELECT streamagg.create_query(
	name => 'clicks_update', source => 'clicks', event_time => 'ts',
	aggregates => 'count(*) AS hits, avg(ms) AS avg_ms', group_by => 'page',
	window_size => '10 seconds', watermark => '5 seconds',
	output_mode => 'update', sink => 'clicks_update',
	trigger_interval => '1 second');

SELECT streamagg.create_query(
	name => 'clicks_complete', source => 'clicks', event_time => 'ts',
	aggregates => 'count(*) AS hits, avg(ms) AS avg_ms', group_by => 'page',
	window_size => '10 seconds', watermark => '5 seconds',
	output_mode => 'complete', sink => 'clicks_complete',
	trigger_interval => '1 second');
SQL

# The three sinks side by side, one line per (window, page): "hits avg_ms"
# from clicks_append, clicks_update and clicks_complete ("-": no row there).
# A window is closed once the watermark has passed its end.
show() {
	echo
	echo "=================== $(date +%T): $1"
	sql <<'SQL'
\pset footer off
SELECT to_char(window_start, 'HH24:MI:SS') || '-' ||
	   to_char(window_end, 'HH24:MI:SS') AS "window",
	   CASE WHEN window_end <= (SELECT watermark FROM streamagg.queries
								 WHERE name = 'clicks_append')
			THEN 'closed' ELSE 'open' END AS state,
	   page,
	   coalesce(a.hits || ' ' || round(a.avg_ms), '-') AS clicks_append,
	   coalesce(u.hits || ' ' || round(u.avg_ms), '-') AS clicks_update,
	   coalesce(c.hits || ' ' || round(c.avg_ms), '-') AS clicks_complete
  FROM clicks_complete c
  FULL JOIN clicks_update u USING (window_start, window_end, page)
  FULL JOIN clicks_append a USING (window_start, window_end, page)
 ORDER BY window_start, page;

SELECT name, status, to_char(watermark, 'HH24:MI:SS') AS watermark,
	   last_batch_id,
	   (SELECT coalesce(sum(late_rows_dropped), 0) FROM streamagg.progress p
		 WHERE p.name = q.name) AS late_rows_dropped
  FROM streamagg.queries q ORDER BY name;
SQL
}

# --- the stream -------------------------------------------------------------
# Every second, 2 to 5 clicks with event times in the last 2 seconds; about
# one in six is 8 seconds late.
echo
echo "streaming clicks for $DURATION seconds; every 5 seconds, the sinks side"
echo "by side: \"hits avg_ms\" per (window, page), \"-\" where a sink has no row"
for ((i = 1; i <= DURATION; i++)); do
	sql <<'SQL'
INSERT INTO clicks (ts, page, ms)
SELECT now() - random() * interval '2 seconds'
		 - CASE WHEN random() < 0.17 THEN interval '8 seconds'
				ELSE interval '0' END,
	   (ARRAY['/home', '/search', '/cart'])[1 + floor(random() * 3)::int],
	   50 + floor(random() * 450)::int
  FROM generate_series(1, 2 + floor(random() * 4)::int);
SQL
	if ((i % 5 == 0)); then
		show "after $i seconds"
	fi
	sleep 1
done

sql -c "SELECT streamagg.wait(name, '10 seconds') FROM streamagg.queries" \
	>/dev/null
show "final state (open windows stay open until later events move the watermark)"
