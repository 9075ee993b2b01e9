#!/usr/bin/env bash
# streamagg benchmark (issue 6, DESIGN.md section 6): `make bench`.
#
# Starts its own throwaway cluster (never touches a running server), creates
# the extension, runs the scenarios below, and prints one table of medians
# over BENCH_RUNS runs with ratios to the alternative users would pick
# instead, together with the machine, the PostgreSQL version and every
# setting that differs from the defaults.  See test/bench/README.md.
#
#   1. producer cost   same rows into a plain table, a source with 1 and 5
#                      queries, a table with an upserting statement trigger
#   2. worker speed    one process() absorbing N events vs GROUP BY vs a
#                      periodic INSERT ... SELECT ... ON CONFLICT recompute
#   3. latency         commit -> sink visible with trigger_interval '0'
#                      under pgbench at a fixed rate
#   4. scaling         cost of a 1000-row trigger as state grows 10x, 100x;
#                      state memory per open (window, key)
#   (5. sustained load is not measured yet.)
#
# Environment:
#   BENCH_RUNS=5            runs per measurement (medians are printed)
#   BENCH_SCALE=default     'small' (quick check), 'default', or 'large'
#                           (adds 1e7 events to scenario 2, bigger state in 4)
#   BENCH_CSV=path          also write the results as CSV
#   BENCH_SCENARIOS=1234    which scenarios to run
#   BENCH_PORT=55433        port of the throwaway cluster (Unix socket only)
#   BENCH_SYNC_COMMIT=on    synchronous_commit of the cluster
#   BENCH_PGBENCH_SECS=5    duration of each single-row pgbench run (1b)
#   BENCH_LATENCY_SECS=20   duration of each latency run (3)
#   BENCH_LATENCY_RATES="500 2000"   producer rates (transactions/s) for 3
#   BENCH_KEEP=1            keep the cluster directory (for inspection)
#   PG_CONFIG               default /usr/lib/postgresql/15/bin/pg_config
#
# As root, the server runs as the `postgres` OS user (initdb refuses root);
# psql and pgbench connect to it as the `postgres` role over its socket.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
bindir=$("$PG_CONFIG" --bindir)
runs=${BENCH_RUNS:-5}
scale=${BENCH_SCALE:-default}
scenarios=${BENCH_SCENARIOS:-1234}
port=${BENCH_PORT:-55433}
csv=${BENCH_CSV:-}
pgbench_secs=${BENCH_PGBENCH_SECS:-5}
latency_secs=${BENCH_LATENCY_SECS:-20}
latency_rates=${BENCH_LATENCY_RATES:-"500 2000"}
sync_commit=${BENCH_SYNC_COMMIT:-on}

case $scale in
small)
	insert_rows=20000
	worker_sizes="100000"
	scaling_base=2000
	;;
default)
	insert_rows=100000
	worker_sizes="100000 1000000"
	scaling_base=10000
	;;
large)
	insert_rows=100000
	worker_sizes="100000 1000000 10000000"
	scaling_base=20000
	;;
*)
	echo "BENCH_SCALE must be small, default or large" >&2
	exit 2
	;;
esac
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RUNS must be a positive integer" >&2; exit 2; }
[[ -x $bindir/pgbench ]] || [[ -x $(command -v pgbench) ]] || {
	echo "pgbench not found (Debian package postgresql-client-15)" >&2; exit 2; }
pgbench_bin=$bindir/pgbench
[[ -x $pgbench_bin ]] || pgbench_bin=$(command -v pgbench)
if [[ ! -f $("$PG_CONFIG" --pkglibdir)/streamagg.so ]]; then
	echo "streamagg is not installed: run make && make install first" >&2
	exit 2
fi

# The library the cluster loads at start; a reinstall during the run (by
# other work on this machine) is reported at the end.
so_path=$("$PG_CONFIG" --pkglibdir)/streamagg.so
so_sum() { md5sum "$so_path" | cut -c1-12; }
so_at_start=$(so_sum)

# --- the throwaway cluster ------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/streamagg-bench.XXXXXX")
chmod 755 "$tmp"
datadir=$tmp/data
if [[ $(id -u) == 0 ]]; then
	chown postgres: "$tmp"
	as_server() { runuser -u postgres -- "$@"; }
else
	as_server() { "$@"; }
fi

started=0
cleanup() {
	local rc=$?
	if ((started)); then
		as_server "$bindir/pg_ctl" -D "$datadir" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if ((rc != 0)) && [[ -f $tmp/server.log ]]; then
		echo "--- last lines of the server log ---" >&2
		tail -n 30 "$tmp/server.log" >&2 || true
	fi
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then
		echo "cluster directory kept: $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Settings for a 2-core, 24 GB machine; every one is printed with the results.
settings=(
	"shared_preload_libraries = 'streamagg'"
	"listen_addresses = ''"
	"unix_socket_directories = '$tmp'"
	"port = $port"
	"max_connections = 50"
	"max_worker_processes = 16"
	"shared_buffers = 1GB"
	"work_mem = 64MB"
	"maintenance_work_mem = 256MB"
	"max_wal_size = 8GB"
	"min_wal_size = 1GB"
	"checkpoint_timeout = 30min"
	"synchronous_commit = $sync_commit"
	"jit = off"
	"track_commit_timestamp = on"
	"log_min_messages = warning"
)

as_server "$bindir/initdb" -D "$datadir" -U postgres --auth=trust \
	--encoding=UTF8 --locale=C >"$tmp/initdb.log" 2>&1 || {
	cat "$tmp/initdb.log" >&2; exit 1; }
printf '%s\n' "${settings[@]}" >>"$datadir/postgresql.conf"

start_server() {
	as_server "$bindir/pg_ctl" -D "$datadir" -l "$tmp/server.log" -w -t 60 start >/dev/null
	started=1
}
stop_server() {
	as_server "$bindir/pg_ctl" -D "$datadir" -m fast -w stop >/dev/null
	started=0
}
start_server

export PGHOST=$tmp PGPORT=$port PGUSER=postgres PGDATABASE=postgres
psql_q() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
sql() { psql_q -At -c "$1"; }
sql_in() { psql_q -At; }   # SQL script on stdin

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

psql_q <<'SQL'
CREATE EXTENSION streamagg;
-- Every measurement, one row per run; the report is computed from it.
CREATE TABLE bench_raw (
	scenario text, item text, metric text, unit text,
	run int, value float8, n bigint, ord serial);
-- Milliseconds since :'t0' (set with SELECT clock_timestamp() AS t0 \gset).
CREATE FUNCTION ms_since(t0 timestamptz) RETURNS float8 LANGUAGE sql
	AS $$ SELECT extract(epoch FROM clock_timestamp() - t0) * 1000 $$;
CREATE FUNCTION bench_assert(ok boolean, msg text) RETURNS void LANGUAGE plpgsql
	AS $$ BEGIN IF ok IS NOT TRUE THEN RAISE EXCEPTION 'benchmark check failed: %', msg; END IF; END $$;
SQL

# record SCENARIO ITEM METRIC UNIT RUN VALUE [N]
record() {
	sql "INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
		 VALUES ('$1', '$2', '$3', '$4', $5, $6, ${7:-NULL})"
}

# A timed statement: "timed SCEN ITEM RUN N STMT [AFTER]" runs STMT (with its
# terminator) in autocommit, so the time includes its commit, and records the
# wall-clock milliseconds measured by the server (no connection start-up);
# then AFTER runs in the same session.
timed() {
	local scen=$1 item=$2 run=$3 n=$4 stmt=$5 after=${6:-}
	sql_in <<SQL
SELECT clock_timestamp() AS t0 \gset
$stmt
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	VALUES ('$scen', '$item', 'time', 'ms', $run, ms_since(:'t0'), $n);
$after
SQL
} >/dev/null

# Rotate a list by the run number, so that no item always goes first.
rotate() {
	local r=$1; shift
	local a=("$@") n=$# i
	for ((i = 0; i < n; i++)); do printf '%s\n' "${a[(i + r) % n]}"; done
}

# Event time of row g: 2024-01-01 plus g * step.
ts_of() { echo "timestamptz '2024-01-01 00:00:00+00' + ($1) * interval '$2'"; }

# --- 1. producer cost -----------------------------------------------------

scenario_producer() {
	log "1. producer cost: $insert_rows-row INSERT ... SELECT, pgbench single-row ${pgbench_secs}s x 4 clients"
	psql_q <<'SQL' >/dev/null
CREATE TABLE p_plain (ts timestamptz, k int, v int);
CREATE TABLE p_sa1 (ts timestamptz, k int, v int);
CREATE TABLE p_sa5 (ts timestamptz, k int, v int);
CREATE TABLE p_trig (ts timestamptz, k int, v int);
-- Queries are attached but run only by process() (trigger_interval NULL):
-- this measures what a producer pays; the worker's own cost is scenario 2.
SELECT streamagg.create_query(name => 'p1', source => 'p_sa1', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
	window_size => '1 hour', output_mode => 'update');
SELECT streamagg.create_query(name => 'p5_' || i, source => 'p_sa5', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
	window_size => (i || ' hour')::interval, output_mode => 'update')
	FROM generate_series(1, 5) i;
-- The hand-rolled alternative: a statement trigger with a transition table
-- that upserts the same aggregates (count, sum per 1-hour window and key).
CREATE TABLE p_trig_summary (window_start timestamptz, k int, n bigint, s bigint,
	PRIMARY KEY (window_start, k));
CREATE FUNCTION p_trig_upsert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO p_trig_summary AS t
	SELECT date_bin('1 hour', ts, 'epoch'), k, count(*), sum(v)
	FROM new_rows GROUP BY 1, 2
	ON CONFLICT (window_start, k)
	DO UPDATE SET n = t.n + EXCLUDED.n, s = t.s + EXCLUDED.s;
	RETURN NULL;
END $$;
CREATE TRIGGER p_trig_upsert AFTER INSERT ON p_trig
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
	EXECUTE FUNCTION p_trig_upsert();
SQL
	local targets=(p_plain p_sa1 p_sa5 p_trig) r t
	for t in "${targets[@]}"; do
		cat >"$tmp/$t.pgbench" <<EOF
\\set i random(1, 100000000)
INSERT INTO $t (ts, k, v) VALUES ($(ts_of :i '1 ms'), :i % 1000, :i % 100);
EOF
	done
	for ((r = 1; r <= runs; r++)); do
		for t in $(rotate "$r" "${targets[@]}"); do
			sql "TRUNCATE $t, p_trig_summary" >/dev/null
			timed producer_multirow "$t" "$r" "$insert_rows" \
				"INSERT INTO $t (ts, k, v) SELECT $(ts_of g '36 ms'), g % 1000, g % 100
				 FROM generate_series(1, $insert_rows) g;"
		done
		for t in $(rotate "$r" "${targets[@]}"); do
			sql "TRUNCATE $t, p_trig_summary; CHECKPOINT" >/dev/null
			local out tps
			out=$("$pgbench_bin" -n -M prepared -c 4 -j 2 -T "$pgbench_secs" \
				-f "$tmp/$t.pgbench" 2>&1) || { echo "$out" >&2; exit 1; }
			tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
			[[ -n $tps ]] || { echo "$out" >&2; exit 1; }
			record producer_single "$t" tps tx/s "$r" "$tps"
		done
		log "  run $r/$runs done"
	done
}

# --- 2. worker speed ------------------------------------------------------

scenario_worker() {
	psql_q <<'SQL' >/dev/null
CREATE TABLE w_src (ts timestamptz, k int, v int);
-- create_query adds streamagg_xid to the source; the query is recreated
-- (empty state, empty sink) for every timed process().
SELECT streamagg.create_query(name => 'w', source => 'w_src', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s, avg(v) AS a', group_by => 'k',
	window_size => '1 hour', output_mode => 'update');
SELECT streamagg.drop_query('w', drop_sink => true);
CREATE TABLE w_summary (window_start timestamptz, window_end timestamptz, k int,
	n bigint, s bigint, a numeric, UNIQUE (window_start, window_end, k));
SQL
	local n keys r m item
	for n in $worker_sizes; do
		for keys in 1000 100000; do
			item="${n}ev_${keys}keys"
			log "2. worker speed: $n events, $keys keys (events spread over 4 hours)"
			# Consecutive rows go to different keys (7919 is prime).
			psql_q <<SQL
TRUNCATE w_src;
INSERT INTO w_src (ts, k, v)
	SELECT $(ts_of g "$((4 * 3600 * 1000000 / n)) microseconds"), (g::bigint * 7919 % $keys)::int, g % 1000
	FROM generate_series(0, $n - 1) g;
VACUUM ANALYZE w_src;
SQL
			for ((r = 1; r <= runs; r++)); do
				for m in $(rotate "$r" groupby process recompute); do
					case $m in
					groupby)
						timed "worker_$item" "GROUP BY" "$r" "$n" \
							"SELECT sum(n), sum(s), sum(a) FROM (
							   SELECT date_bin('1 hour', ts, 'epoch'), k, count(*) n, sum(v) s, avg(v) a
							   FROM w_src GROUP BY 1, 2) x;"
						;;
					recompute)
						sql "TRUNCATE w_summary" >/dev/null
						timed "worker_$item" "recompute upsert" "$r" "$n" \
							"INSERT INTO w_summary AS t
							 SELECT date_bin('1 hour', ts, 'epoch'), date_bin('1 hour', ts, 'epoch') + interval '1 hour',
							        k, count(*), sum(v), avg(v)
							 FROM w_src GROUP BY 1, 2, 3
							 ON CONFLICT (window_start, window_end, k)
							 DO UPDATE SET n = EXCLUDED.n, s = EXCLUDED.s, a = EXCLUDED.a;"
						;;
					process)
						sql "SELECT streamagg.create_query(name => 'w', source => 'w_src', event_time => 'ts',
								aggregates => 'count(*) AS n, sum(v) AS s, avg(v) AS a', group_by => 'k',
								window_size => '1 hour', output_mode => 'update')" >/dev/null
						timed "worker_$item" "streamagg process()" "$r" "$n" \
							"SELECT streamagg.process('w') AS consumed \\gset" "
SELECT bench_assert(:consumed = $n, 'process() consumed ' || :consumed || ' of $n events');
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'worker_$item', 'streamagg process()', 'duration_ms (progress)', 'ms', $r, duration_ms, $n
	FROM streamagg.progress WHERE name = 'w';
SELECT streamagg.drop_query('w', drop_sink => true);"
						;;
					esac
				done
			done
		done
	done
}

# --- 3. latency -------------------------------------------------------------
#
# Commit-to-visible latency of every event, measured exactly from commit
# timestamps (track_commit_timestamp = on, set for the whole run: a restart
# would load whatever streamagg.so is installed by then, and the same
# setting for every scenario keeps them comparable):
#   - an event's commit time is pg_xact_commit_timestamp(streamagg_xid), the
#     commit of its single-row pgbench transaction;
#   - a statement trigger on the sink records, in every batch's transaction,
#     now() (the batch transaction's start) and the transaction id; the
#     batch's results become visible at its commit, whose time is
#     pg_xact_commit_timestamp of that id;
#   - the batch of an event is taken as the first batch whose transaction
#     started after the event committed: its snapshot, taken after that
#     start, sees the event.  The event may in truth belong to the batch
#     before (if it committed between that batch's start and its snapshot),
#     so this can only overstate latency, never understate it.
# Latency = batch commit - event commit, for every event (so both the oldest
# and the newest event of each batch count), as p50/p95/p99/max.  No poller
# competes for the two cores.

scenario_latency() {
	psql_q <<'SQL'
CREATE TABLE l_batches (sink text, xact_start timestamptz, xid xid8);
CREATE FUNCTION public.l_note_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.l_batches VALUES (TG_TABLE_NAME, now(), pg_current_xact_id());
	RETURN NULL;
END $$;
SQL
	local rate src q out tps
	for rate in $latency_rates; do
		src=l_src_$rate q=l_q_$rate
		log "3. latency: pgbench -R $rate -c 4 for ${latency_secs}s, trigger_interval '0'"
		psql_q <<SQL >/dev/null
CREATE TABLE $src (ts timestamptz, k int, v int);
SELECT streamagg.create_query(name => '$q', source => '$src', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
	window_size => '1 hour', watermark => '1 minute', output_mode => 'update',
	trigger_interval => '0');
CREATE TRIGGER l_note_batch AFTER INSERT ON $q
	FOR EACH STATEMENT EXECUTE FUNCTION public.l_note_batch();
INSERT INTO $src (ts, k, v) VALUES (now(), 0, 0);
SELECT streamagg.wait('$q', '30 seconds');
SQL
		cat >"$tmp/$src.pgbench" <<EOF2
\\set k random(0, 99)
INSERT INTO $src (ts, k, v) VALUES (now(), :k, :k);
EOF2
		out=$("$pgbench_bin" -n -M prepared -c 4 -j 2 -R "$rate" -T "$latency_secs" \
			-f "$tmp/$src.pgbench" 2>&1) || { echo "$out" >&2; exit 1; }
		tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
		[[ -n $tps ]] || { echo "$out" >&2; exit 1; }
		psql_q <<SQL >/dev/null
SELECT bench_assert(streamagg.wait('$q', '120 seconds'), 'wait($q) timed out');
SELECT streamagg.pause('$q');
CREATE INDEX l_batches_sink ON l_batches (sink, xact_start);
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	VALUES ('latency', '$rate tx/s target', 'achieved rate (pgbench)', 'tx/s', 1, $tps, NULL);
CREATE TEMP TABLE lat AS
	SELECT extract(epoch FROM b.committed - e.committed) * 1000 AS ms
	FROM (SELECT pg_xact_commit_timestamp(streamagg_xid::xid) AS committed
	      FROM $src) e
	LEFT JOIN LATERAL (
		SELECT pg_xact_commit_timestamp(xid::xid) AS committed FROM l_batches
		WHERE sink = '$q' AND xact_start > e.committed
		ORDER BY xact_start LIMIT 1) b ON true;
-- Every event must have found its batch.
SELECT bench_assert(count(*) = count(ms), count(*) - count(ms) || ' events without a batch') FROM lat;
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'latency', '$rate tx/s target', m, 'ms', 1, v, (SELECT count(*) FROM lat)
	FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) p50,
	             percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) p95,
	             percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) p99,
	             max(ms) mx FROM lat) p,
	     LATERAL (VALUES ('p50', p50), ('p95', p95), ('p99', p99), ('max', mx)) x(m, v);
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'latency', '$rate tx/s target', 'batches', 'batches', 1, count(*), (SELECT count(*) FROM lat)
	FROM l_batches WHERE sink = '$q'
	UNION ALL
	SELECT 'latency', '$rate tx/s target', 'events per batch (mean)', 'rows', 1,
	       (SELECT count(*) FROM lat)::float8 / count(*), (SELECT count(*) FROM lat)
	FROM l_batches WHERE sink = '$q';
DROP INDEX l_batches_sink;
SQL
		sql "SELECT streamagg.drop_query('$q', drop_sink => true)" >/dev/null
	done
}

# --- 4. scaling -------------------------------------------------------------
#
# Cost of one trigger of a fixed batch (1000 rows, one per key, into one
# window that already has state) while the state grows from G to 10 G to
# 100 G open (window, key) groups (1000 keys x G/1000 one-hour windows, no
# window closes).  Three queries:
#   update, history kept   update mode; the source keeps every event
#   update, source emptied update mode; consumed events are deleted (and the
#                          source vacuumed) after each growth step, so only
#                          the state grows, not the history
#   append, source emptied append mode, watermark 1000 days (nothing closes)
# State memory: the whole scenario runs in one session, which therefore maps
# every DSA segment the state was allocated in; the growth of the mapped
# /dev/shm/PostgreSQL.* segments (from /proc/self/maps of the backend) per
# group added from G to 100 G is an upper bound of the shared memory per open
# group (DSA grows in segments of doubling size, so only the large step is
# reported).

scenario_scaling() {
	local g0=$scaling_base level groups prev=0 w0 w1 r
	log "4. scaling: state of $g0, $((10 * g0)), $((100 * g0)) groups per query, 1000-row triggers"
	{
		cat <<'SQL'
\set ON_ERROR_STOP 1
-- Start from a compact checkpoint table (scenario 2 left dead rows in it).
VACUUM FULL streamagg.state;
CREATE TABLE s_hist (ts timestamptz, k int, v int);
CREATE TABLE s_trim (ts timestamptz, k int, v int);
SELECT streamagg.create_query(name => 'sc_hist', source => 's_hist', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
	window_size => '1 hour', output_mode => 'update');
SELECT streamagg.create_query(name => 'sc_upd', source => 's_trim', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
	window_size => '1 hour', output_mode => 'update');
SELECT streamagg.create_query(name => 'sc_app', source => 's_trim', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
	window_size => '1 hour', watermark => '1000 days', output_mode => 'append');
CREATE FUNCTION pg_temp.dsm_mapped() RETURNS bigint LANGUAGE sql AS $$
	SELECT coalesce(sum(('x' || lpad(split_part(a, '-', 2), 16, '0'))::bit(64)::bigint
	                  - ('x' || lpad(split_part(a, '-', 1), 16, '0'))::bit(64)::bigint), 0)
	FROM (SELECT split_part(l, ' ', 1) a
	      FROM regexp_split_to_table(pg_read_file('/proc/self/maps'), E'\n') l
	      WHERE l LIKE '%/PostgreSQL.%') s $$;
CREATE FUNCTION pg_temp.groups() RETURNS bigint LANGUAGE sql AS $$
	SELECT sum(state_rows_total)::bigint FROM (
		SELECT DISTINCT ON (name) state_rows_total FROM streamagg.progress
		WHERE name IN ('sc_hist', 'sc_upd', 'sc_app') ORDER BY name, batch_id DESC) p $$;
SQL
		for level in 1 10 100; do
			groups=$((level * g0))
			w0=$((prev / 1000)) w1=$((groups / 1000 - 1))
			# grow the state: one row per (window, key) of windows w0..w1
			cat <<SQL
INSERT INTO s_hist (ts, k, v) SELECT $(ts_of "h * 3600 + k * 3.6" '1 second'), k, 1
	FROM generate_series($w0, $w1) h, generate_series(0, 999) k;
INSERT INTO s_trim (ts, k, v) SELECT ts, k, v FROM s_hist WHERE ts >= $(ts_of "$w0" '1 hour');
SELECT streamagg.process('sc_hist'), streamagg.process('sc_upd'), streamagg.process('sc_app');
DELETE FROM s_trim;
VACUUM s_trim;
VACUUM ANALYZE s_hist;
SQL
			if ((level == 1)); then
				cat <<'SQL'
-- Warm-up trigger: creates the groups that every measured batch updates.
INSERT INTO s_hist (ts, k, v) SELECT timestamptz '2023-12-31 23:00+00' + k * interval '3.6 s', k, 1
	FROM generate_series(0, 999) k;
INSERT INTO s_trim (ts, k, v) SELECT ts, k, v FROM s_hist WHERE ts < '2024-01-01';
SELECT streamagg.process('sc_hist'), streamagg.process('sc_upd'), streamagg.process('sc_app');
DELETE FROM s_trim;
VACUUM s_trim;
SELECT pg_temp.dsm_mapped() AS mapped0, pg_temp.groups() AS groups0 \gset
SQL
			fi
			cat <<SQL
SELECT pg_temp.dsm_mapped() AS mapped, pg_temp.groups() AS ngroups \gset
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'scaling', 'state memory', 'DSA mapped / group, state x$level', 'bytes', 1,
	 (:mapped - :mapped0)::float8 / nullif(:ngroups - :groups0, 0), :ngroups WHERE $level = 100;
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n) VALUES
	('scaling', 'state memory', 'checkpoint table (disk) / group, state x$level', 'bytes', 1,
	 pg_total_relation_size('streamagg.state')::float8 / :ngroups, :ngroups);
SQL
			for ((r = 1; r <= runs; r++)); do
				cat <<SQL
INSERT INTO s_hist (ts, k, v) SELECT timestamptz '2023-12-31 23:00+00' + k * interval '3.6 s', k, 1
	FROM generate_series(0, 999) k;
INSERT INTO s_trim (ts, k, v) SELECT timestamptz '2023-12-31 23:00+00' + k * interval '3.6 s', k, 1
	FROM generate_series(0, 999) k;
SQL
				for q in $(rotate "$r" sc_hist sc_upd sc_app); do
					case $q in
					sc_hist) item="update, history kept" ;;
					sc_upd) item="update, source emptied" ;;
					sc_app) item="append, source emptied" ;;
					esac
					cat <<SQL
SELECT clock_timestamp() AS t0 \gset
SELECT streamagg.process('$q') AS consumed \gset
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'scaling', '$item', 'trigger ms, state x$level', 'ms', $r, ms_since(:'t0'), $groups
	WHERE :consumed = 1000;
SELECT bench_assert(:consumed = 1000, '$q consumed ' || :consumed || ' rows, not 1000');
SQL
				done
				echo "DELETE FROM s_trim;"
			done
			echo "VACUUM s_trim;"
			echo "\\echo level $level done"
			prev=$groups
		done
		cat <<'SQL'
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'scaling', 'state memory', 'stored key + states / group', 'bytes', 1,
	       avg(16 + octet_length(group_key) + octet_length(agg_states)), count(*)
	FROM streamagg.state;
SQL
	} | psql_q -At >/dev/null
}

# --- report -----------------------------------------------------------------

# Logical size of one open group of the scaling queries: window start and
# end (16 bytes), the int key (4), count(*) and sum(int) states (8 + 8).
group_bytes=36

report_sql() {
	cat <<SQL
WITH m AS (
	SELECT scenario, item, metric, unit, count(value) AS runs,
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med,
	       min(value) AS lo, max(value) AS hi, max(n) AS n, min(ord) AS ord
	FROM bench_raw GROUP BY 1, 2, 3, 4),
r AS (
	SELECT m.*,
	CASE
	WHEN scenario = 'producer_multirow' THEN med / (SELECT med FROM m p
		WHERE p.scenario = m.scenario AND p.item = 'p_plain')
	WHEN scenario = 'producer_single' THEN (SELECT med FROM m p
		WHERE p.scenario = m.scenario AND p.item = 'p_plain') / med
	WHEN scenario LIKE 'worker%' AND metric = 'time' THEN med / (SELECT med FROM m p
		WHERE p.scenario = m.scenario AND p.item = 'GROUP BY' AND p.metric = 'time')
	WHEN scenario = 'scaling' AND metric LIKE 'trigger ms%' THEN med / (SELECT med FROM m p
		WHERE p.scenario = m.scenario AND p.item = m.item AND p.metric = 'trigger ms, state x1')
	WHEN metric LIKE '%/ group%' THEN med / $group_bytes
	END AS ratio,
	CASE
	WHEN scenario LIKE 'producer%' THEN 'cost vs plain table'
	WHEN scenario LIKE 'worker%' AND metric = 'time' THEN 'time vs GROUP BY'
	WHEN scenario = 'scaling' AND metric LIKE 'trigger ms%' THEN 'vs state x1'
	WHEN metric LIKE '%/ group%' THEN 'vs key+states ($group_bytes B)'
	END AS ratio_to,
	CASE WHEN scenario LIKE 'worker%' AND metric = 'time' THEN n / med * 1000 END AS events_per_s
	FROM m)
SELECT CASE scenario
       WHEN 'producer_multirow' THEN '1 producer, ' || n || '-row INSERT'
       WHEN 'producer_single' THEN '1 producer, 1-row tx x4 clients'
       WHEN 'latency' THEN '3 latency, trigger_interval 0'
       WHEN 'scaling' THEN '4 scaling'
       ELSE '2 worker, ' || replace(replace(replace(substr(scenario, 8), 'ev_', ' events, '),
                                     'keys', ' keys'), '000000 ', 'e6 ') END AS scenario,
       CASE item
       WHEN 'p_plain' THEN 'plain table'
       WHEN 'p_sa1' THEN 'source, 1 query'
       WHEN 'p_sa5' THEN 'source, 5 queries'
       WHEN 'p_trig' THEN 'statement trigger upsert'
       ELSE item END AS item,
       metric, unit,
       CASE WHEN med >= 100 THEN round(med::numeric, 0) ELSE round(med::numeric, 2) END AS median,
       runs,
       CASE WHEN lo >= 100 THEN round(lo::numeric, 0) ELSE round(lo::numeric, 2) END AS min,
       CASE WHEN hi >= 100 THEN round(hi::numeric, 0) ELSE round(hi::numeric, 2) END AS max,
       round(ratio::numeric, 2) AS ratio, ratio_to,
       round(events_per_s::numeric, 0) AS events_per_s
FROM r ORDER BY min(ord) OVER (PARTITION BY r.scenario, r.item), ord
SQL
}

budget_sql() {
	cat <<'SQL'
WITH m AS (
	SELECT scenario, item, metric,
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med
	FROM bench_raw GROUP BY 1, 2, 3),
b(line, measured, holds) AS (
	SELECT 'producer cost <= 1.25x plain (multi-row, 1 / 5 queries)',
	       round((s1.med / p.med)::numeric, 2) || ' / ' || round((s5.med / p.med)::numeric, 2),
	       greatest(s1.med, s5.med) / p.med <= 1.25
	FROM m p, m s1, m s5 WHERE p.scenario = 'producer_multirow' AND p.item = 'p_plain'
	 AND s1.scenario = p.scenario AND s1.item = 'p_sa1' AND s5.scenario = p.scenario AND s5.item = 'p_sa5'
	UNION ALL
	SELECT 'producer cost <= 1.25x plain (single-row tx, 1 / 5 queries)',
	       round((p.med / s1.med)::numeric, 2) || ' / ' || round((p.med / s5.med)::numeric, 2),
	       p.med / least(s1.med, s5.med) <= 1.25
	FROM m p, m s1, m s5 WHERE p.scenario = 'producer_single' AND p.item = 'p_plain'
	 AND s1.scenario = p.scenario AND s1.item = 'p_sa1' AND s5.scenario = p.scenario AND s5.item = 'p_sa5'
	UNION ALL
	SELECT 'worker: process() <= GROUP BY time, ' || substr(g.scenario, 8),
	       round((s.med / g.med)::numeric, 2) || 'x', s.med <= g.med
	FROM m g JOIN m s ON s.scenario = g.scenario AND s.item = 'streamagg process()' AND s.metric = 'time'
	WHERE g.scenario LIKE 'worker%' AND g.item = 'GROUP BY'
	UNION ALL
	SELECT 'latency p50 <= 20 ms, p99 <= 100 ms, ' || a.item,
	       round(a.med::numeric, 1) || ' / ' || round(c.med::numeric, 1) || ' ms',
	       a.med <= 20 AND c.med <= 100
	FROM m a JOIN m c ON c.scenario = a.scenario AND c.item = a.item AND c.metric = 'p99'
	WHERE a.scenario = 'latency' AND a.metric = 'p50'
	UNION ALL
	SELECT 'trigger cost flat (<= 1.5x) at 100x state, ' || x100.item,
	       round((x100.med / x1.med)::numeric, 2) || 'x', x100.med / x1.med <= 1.5
	FROM m x1 JOIN m x100 ON x100.scenario = x1.scenario AND x100.item = x1.item
	 AND x100.metric = 'trigger ms, state x100'
	WHERE x1.scenario = 'scaling' AND x1.metric = 'trigger ms, state x1'
	UNION ALL
SQL
	cat <<SQL
	SELECT 'state memory <= 2x key + states (DSA, 1x -> 100x)',
	       round(med::numeric, 0) || ' B vs $group_bytes B: ' || round((med / $group_bytes)::numeric, 2) || 'x',
	       med / $group_bytes <= 2
	FROM m WHERE scenario = 'scaling' AND metric = 'DSA mapped / group, state x100')
SELECT line AS budget, measured, CASE WHEN holds THEN 'holds' ELSE 'FAILS' END AS verdict FROM b
SQL
}

# --- main -------------------------------------------------------------------

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
t_start=$SECONDS
header() {
	echo "== streamagg benchmark =="
	echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "commit:      $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- src sql 2>/dev/null || echo ' (src/sql modified)')"
	echo "machine:     $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo) RAM, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r)"
	echo "load:        $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
	echo "disk:        $(df -T "$tmp" | awk 'NR == 2 {print $2 " on " $1}') (data directory $tmp)"
	echo "postgres:    $(sql 'SELECT version()')"
	echo "streamagg:   $(sql "SELECT extversion FROM pg_extension WHERE extname = 'streamagg'"), $so_path md5 $so_at_start ($(date -u -r "$so_path" '+installed %Y-%m-%d %H:%M:%S UTC'))"
	echo "parameters:  BENCH_RUNS=$runs BENCH_SCALE=$scale BENCH_SCENARIOS=$scenarios BENCH_PGBENCH_SECS=$pgbench_secs BENCH_LATENCY_SECS=$latency_secs BENCH_LATENCY_RATES='$latency_rates'"
	echo "settings (all that differ from the defaults):"
	sql "SELECT '  ' || name || ' = ' || setting || coalesce(' ' || unit, '')
	     FROM pg_settings WHERE source NOT IN ('default', 'override', 'client')
	     AND name NOT IN ('unix_socket_directories') ORDER BY name"
	echo
}

header_text=$(header)
echo "$header_text"
[[ $scenarios == *1* ]] && scenario_producer
[[ $scenarios == *2* ]] && scenario_worker
[[ $scenarios == *3* ]] && scenario_latency
[[ $scenarios == *4* ]] && scenario_scaling
log "done in $((SECONDS - t_start)) s"

echo
echo "== results: medians of $runs runs (latency: one run, percentiles over every event) =="
report_sql | psql_q -P footer=off -f -
echo
echo "ratios: producer = time / plain time (multi-row) or plain tx/s / tx/s (single-row), > 1 = costlier;"
echo "        worker = time / GROUP BY time, < 1 = faster than GROUP BY; scaling = trigger time / at state x1."
echo "latency = batch commit - event commit, from commit timestamps, for every event (oldest and newest of"
echo "        each batch); it can only overstate (see the comment of scenario 3 in run.sh)."
echo
echo "== budget (DESIGN.md section 6) =="
budget_sql | psql_q -P footer=off -f -
echo "(total time $((SECONDS - t_start)) s)"
if [[ $(so_sum) != "$so_at_start" ]]; then
	echo "note: $so_path was reinstalled during the run; the cluster kept the library it loaded at start"
fi

if [[ -n $csv ]]; then
	{ report_sql | sed '1s/^/COPY (/'; echo ") TO STDOUT WITH (FORMAT csv, HEADER)"; } |
		tr '\n' ' ' | psql_q -f - >"$csv"
	echo "CSV written to $csv"
fi
