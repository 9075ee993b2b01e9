#!/usr/bin/env bash
# Catching up a large backlog: max_batch_rows against one unbounded trigger
# (docs/operations.md, "Catching up in bounded batches").  Not a test.
#
# Starts its own throwaway cluster (Unix socket only, never a running
# server), writes CATCHUP_EVENTS events into a source in transactions of
# CATCHUP_TX_ROWS rows, then lets two identical queries over that source
# consume the whole backlog, each from a fresh backend of its own:
#   unbounded   one process() call reads every event in one trigger;
#   bounded     max_batch_rows => CATCHUP_BATCH_ROWS, process() called until
#               it returns 0 (each call one committed trigger).
# For each it prints the total time, the number of triggers, and the
# backend's memory: its peak resident set (VmHWM, which includes the shared
# buffers it touched) and the peak of its private memory (RssAnon, sampled
# every 50 ms while it runs), from /proc/<pid>/status.  Both sinks are
# compared at the end: they must be equal.
#
#   CATCHUP_EVENTS=5000000      events in the backlog
#   CATCHUP_TX_ROWS=10000       rows per producer transaction
#   CATCHUP_BATCH_ROWS=100000   max_batch_rows of the bounded query
#   CATCHUP_KEYS=1000           distinct group keys
#   CATCHUP_ORDER=time          'time': events arrive in event-time order, 10 ms
#                               apart (a backlog that piled up: each batch
#                               touches one or two 1-hour windows); 'spread':
#                               every transaction spreads over all 24 windows
#                               of a day (each batch touches every group)
#   CATCHUP_PORT=55434          port of the throwaway cluster
#   PG_CONFIG                   default /usr/lib/postgresql/15/bin/pg_config
set -euo pipefail
export LC_ALL=C

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
bindir=$("$PG_CONFIG" --bindir)
events=${CATCHUP_EVENTS:-5000000}
tx_rows=${CATCHUP_TX_ROWS:-10000}
batch_rows=${CATCHUP_BATCH_ROWS:-100000}
keys=${CATCHUP_KEYS:-1000}
order=${CATCHUP_ORDER:-time}
case $order in
time) ts_expr="timestamptz '2024-01-01' + g * interval '10 milliseconds'" ;;
spread) ts_expr="timestamptz '2024-01-01' + (g % 86400) * interval '1 second'" ;;
*) echo "CATCHUP_ORDER must be time or spread" >&2; exit 2 ;;
esac
port=${CATCHUP_PORT:-55434}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/streamagg-catchup.XXXXXX")
chmod 755 "$tmp"
if [[ $(id -u) == 0 ]]; then
	chown postgres: "$tmp"
	as_server() { runuser -u postgres -- "$@"; }
else
	as_server() { "$@"; }
fi
started=0
cleanup() {
	local rc=$?
	((started)) && as_server "$bindir/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT

as_server "$bindir/initdb" -D "$tmp/data" -A trust >/dev/null
cat >>"$tmp/data/postgresql.conf" <<CONF
shared_preload_libraries = 'streamagg'
port = $port
listen_addresses = ''
unix_socket_directories = '$tmp'
shared_buffers = '1GB'
max_wal_size = '8GB'
synchronous_commit = off
CONF
as_server "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w start >/dev/null
started=1
psql() { as_server "$bindir/psql" -h "$tmp" -p "$port" -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }

psql -c "CREATE EXTENSION streamagg" \
	-c "CREATE TABLE events (ts timestamptz, k text, v int)"
for q in unbounded bounded; do
	bound=NULL
	[[ $q == bounded ]] && bound=$batch_rows
	psql -c "SELECT streamagg.create_query(name => '$q', source => 'events', event_time => 'ts',
	           aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
	           window_size => '1 hour', output_mode => 'update', max_batch_rows => $bound)" >/dev/null
done

echo "writing $events events ($order order) in transactions of $tx_rows rows..."
start=$(date +%s.%N)
for ((done_rows = 0; done_rows < events; done_rows += tx_rows)); do
	echo "INSERT INTO events SELECT $ts_expr,
	        'key' || (g % $keys), g % 1000 FROM generate_series($done_rows, $((done_rows + tx_rows - 1))) g;"
done | psql
psql -c "VACUUM ANALYZE events"
printf 'written in %.1f s\n' "$(echo "$(date +%s.%N) - $start" | bc)"

# run <query> <sql>: the sql in a fresh backend, whose memory is sampled
run() {
	local q=$1 sql=$2 out=$tmp/$q
	as_server "$bindir/psql" -h "$tmp" -p "$port" -X -q -At -d postgres \
		-c "SELECT pg_backend_pid()" -c "SELECT pg_sleep(0.5)" -c "$sql" >"$out.txt" &
	local client=$!
	local pid=""
	while [[ -z $pid ]]; do sleep 0.05; pid=$(head -n1 "$out.txt" 2>/dev/null || true); done
	local anon=0 hwm=0 a h
	while kill -0 "$client" 2>/dev/null; do
		if [[ -r /proc/$pid/status ]]; then
			a=$(awk '/^RssAnon:/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
			h=$(awk '/^VmHWM:/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
			((${a:-0} > anon)) && anon=$a
			((${h:-0} > hwm)) && hwm=$h
		fi
		sleep 0.05
	done
	wait "$client"
	echo "$anon $hwm"
}

printf '\n%-10s %10s %9s %16s %18s %16s %12s %12s\n' query seconds triggers 'max rows/trigger' 'peak RssAnon (MB)' 'peak VmHWM (MB)' 'sum agg ms' 'sum sink ms'
for q in unbounded bounded; do
	if [[ $q == unbounded ]]; then
		sql="SELECT streamagg.process('unbounded')"
	else
		sql="DO \$\$ BEGIN LOOP EXIT WHEN streamagg.process('bounded') = 0; COMMIT; END LOOP; END \$\$"
	fi
	start=$(date +%s.%N)
	read -r anon hwm < <(run "$q" "$sql")
	secs=$(echo "$(date +%s.%N) - $start - 0.5" | bc)
	read -r triggers maxrows aggms sinkms < <(psql -At -F' ' -c "SELECT count(*), max(num_input_rows),
	    round(sum(aggregate_ms)), round(sum(sink_ms)) FROM streamagg.batch_log b
	    JOIN streamagg.query_def d USING (query_id) WHERE d.name = '$q'")
	printf '%-10s %10.1f %9s %16s %18d %16d %12s %12s\n' "$q" "$secs" "$triggers" "$maxrows" $((anon / 1024)) $((hwm / 1024)) "$aggms" "$sinkms"
done

diff=$(psql -At -c "SELECT count(*) FROM ((TABLE unbounded EXCEPT TABLE bounded) UNION ALL (TABLE bounded EXCEPT TABLE unbounded)) d")
total=$(psql -At -c "SELECT sum(n) FROM bounded")
echo "sinks differ in $diff rows; the bounded sink counts $total events (of $events)"
[[ $diff == 0 && $total == "$events" ]]
