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
#                      periodic INSERT ... SELECT ... ON CONFLICT recompute,
#                      with integer keys and with text keys and numeric money,
#                      1 000 to 1 000 000 distinct keys
#   3. latency         commit -> sink visible with trigger_interval '0'
#                      under pgbench at a fixed rate
#   4. scaling         cost of a 1000-row trigger as state grows 10x, 100x (integer
#                      keys, and text keys with numeric amounts);
#                      state memory per open (window, key)
#   5. sustained load  the highest producer rate at which the lag stays
#                      bounded and the worker's memory flat (not in the
#                      default set: each rate runs BENCH_SUSTAIN_SECS)
#   6. stateless move  a stateless query (columns, filter) moving a batch of
#                      100 000 events with text keys and numeric amounts to
#                      its sink vs INSERT INTO sink SELECT ... WHERE ...
#   7. nexmark         Nexmark's event mix generated in SQL; q5, q7, q11 and
#                      q15's windowed aggregations as one process() each, vs
#                      GROUP BY and the recompute upsert, per core, at
#                      Nexmark's event-time density and a realistic one
#   8. worker pool     four busy queries catching up on one worker vs the
#                      pool; many queries on one source at 2 000 tx/s:
#                      commit-to-sink latency and catch-up
#
# Environment:
#   BENCH_RUNS=5            runs per measurement (medians are printed)
#   BENCH_SCALE=default     'small' (quick check), 'default', or 'large'
#                           (adds 1e7 events to scenario 2, bigger state in 4)
#   BENCH_CSV=path          also write the results as CSV
#   BENCH_SCENARIOS=1234678 which scenarios to run (5 only when asked: 12345678)
#   BENCH_PORT=55433        port of the throwaway cluster (Unix socket only)
#   BENCH_SYNC_COMMIT=on    synchronous_commit of the cluster
#   BENCH_PGBENCH_SECS=5    duration of each single-row pgbench run (1b)
#   BENCH_LATENCY_SECS=20   duration of each latency run (3)
#   BENCH_LATENCY_RATES="500 2000"   producer rates (transactions/s) for 3
#   BENCH_SUSTAIN_SECS=300  duration of each sustained-load rate (5)
#   BENCH_SUSTAIN_RATES="1000 3000 6000"   producer rates (tx/s) for 5, increasing
#   BENCH_SUSTAIN_CLIENTS=8 pgbench clients for 5
#   BENCH_NEXMARK_EVENTS    events of scenario 7 (1e6; 1e5 with small, 1e7 with large)
#   BENCH_NEXMARK_RATE=5000 realistic density of 7: events per second of event time
#   BENCH_NEXMARK_RUNS      runs of 7 (default: BENCH_RUNS, at most 3)
#   BENCH_POOL_BACKLOG      events of 8a (4e6; 1e6 with small, 8e6 with large)
#   BENCH_POOL_RUNS         runs of 8a (default: BENCH_RUNS, at most 3)
#   BENCH_POOL_QUERIES      queries of 8b (20; 10 with small, 100 with large)
#   BENCH_POOL_RATE=2000    producer rate of 8b (tx/s)
#   BENCH_POOL_CLIENTS=8    pgbench clients of 8b
#   BENCH_POOL_SECS         duration of 8b (15 s; 8 s with small, 20 s with large)
#   BENCH_KEEP=1            keep the cluster directory (for inspection)
#   BENCH_PLOT=path.svg     also draw throughput and latency with gnuplot (.svg or .png)
#                           (Debian: apt-get install gnuplot-nox)
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
scenarios=${BENCH_SCENARIOS:-1234678}
port=${BENCH_PORT:-55433}
csv=${BENCH_CSV:-}
plot=${BENCH_PLOT:-}
pgbench_secs=${BENCH_PGBENCH_SECS:-5}
latency_secs=${BENCH_LATENCY_SECS:-20}
latency_rates=${BENCH_LATENCY_RATES:-"500 2000"}
sync_commit=${BENCH_SYNC_COMMIT:-on}
sustain_secs=${BENCH_SUSTAIN_SECS:-300}
sustain_rates=${BENCH_SUSTAIN_RATES:-"1000 3000 6000"}
sustain_clients=${BENCH_SUSTAIN_CLIENTS:-8}

if [[ -n $plot ]] && ! command -v gnuplot >/dev/null; then
	echo "BENCH_PLOT needs gnuplot: apt-get install gnuplot-nox" >&2
	exit 1
fi

case $scale in
small)
	insert_rows=20000
	worker_sizes="100000"
	scaling_base=2000
	stateless_rows=20000
	nexmark_events=100000
	pool_backlog=1000000 pool_queries=10 pool_secs=8
	;;
default)
	insert_rows=100000
	worker_sizes="100000 1000000"
	scaling_base=10000
	stateless_rows=100000
	nexmark_events=1000000
	pool_backlog=4000000 pool_queries=20 pool_secs=15
	;;
large)
	insert_rows=100000
	worker_sizes="100000 1000000 10000000"
	scaling_base=20000
	stateless_rows=1000000
	nexmark_events=10000000
	pool_backlog=8000000 pool_queries=100 pool_secs=20
	;;
*)
	echo "BENCH_SCALE must be small, default or large" >&2
	exit 2
	;;
esac
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RUNS must be a positive integer" >&2; exit 2; }
nexmark_events=${BENCH_NEXMARK_EVENTS:-$nexmark_events}
nexmark_rate=${BENCH_NEXMARK_RATE:-5000}
nexmark_runs=${BENCH_NEXMARK_RUNS:-$((runs < 3 ? runs : 3))}
pool_backlog=${BENCH_POOL_BACKLOG:-$pool_backlog}
pool_runs=${BENCH_POOL_RUNS:-$((runs < 3 ? runs : 3))}
pool_queries=${BENCH_POOL_QUERIES:-$pool_queries}
pool_rate=${BENCH_POOL_RATE:-2000}
pool_clients=${BENCH_POOL_CLIENTS:-8}
pool_secs=${BENCH_POOL_SECS:-$pool_secs}
for v in "$nexmark_events" "$nexmark_rate" "$nexmark_runs" "$pool_backlog" "$pool_runs" \
	"$pool_queries" "$pool_rate" "$pool_secs" "$pool_clients"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || {
		echo "BENCH_NEXMARK_* and BENCH_POOL_* must be positive integers" >&2; exit 2; }
done
[[ $sustain_secs =~ ^[1-9][0-9]*$ ]] && ((sustain_secs >= 15)) || {
	echo "BENCH_SUSTAIN_SECS must be an integer >= 15" >&2; exit 2; }
[[ $sustain_clients =~ ^[1-9][0-9]*$ ]] || {
	echo "BENCH_SUSTAIN_CLIENTS must be a positive integer" >&2; exit 2; }
for r in $sustain_rates; do
	[[ $r =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_SUSTAIN_RATES must be positive integers" >&2; exit 2; }
done
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
-- Scenario 3: latency at each percentile (for BENCH_PLOT).
CREATE TABLE lat_curve (rate int, pct float8, ms float8);
-- Scenario 5: one row per 5-second sample, one row per rate (with its verdict).
CREATE TABLE sus_samples (rate int, t int, lag bigint, oldest_ms float8,
	vmrss_kb bigint, anon_kb bigint, shmem_kb bigint, dsa_kb bigint, worker_pid int,
	state_rows bigint, source_kb bigint, retention_deleted bigint);
CREATE TABLE sus_runs (rate int, secs int, warm int, achieved float8, events bigint,
	sched_lag text, catch_up_ms float8, lag_warm bigint, lag_end bigint, lag_max bigint,
	mem_warm_kb bigint, mem_end_kb bigint, pid_changed boolean,
	lag_ok boolean, mem_ok boolean, bounded boolean);
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
			sql "SET streamagg.allow_source_changes = on; TRUNCATE $t, p_trig_summary" >/dev/null
			timed producer_multirow "$t" "$r" "$insert_rows" \
				"INSERT INTO $t (ts, k, v) SELECT $(ts_of g '36 ms'), g % 1000, g % 100
				 FROM generate_series(1, $insert_rows) g;"
			# so that autovacuum does not work on it during the next target's insert
			sql "VACUUM ANALYZE $t, p_trig_summary" >/dev/null
		done
		for t in $(rotate "$r" "${targets[@]}"); do
			sql "SET streamagg.allow_source_changes = on; TRUNCATE $t, p_trig_summary; CHECKPOINT" >/dev/null
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
-- The shape users have (issue 16): text keys and numeric money.
CREATE TABLE w_src_text (ts timestamptz, k text, v numeric(12,2));
SELECT streamagg.create_query(name => 'w', source => 'w_src_text', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s, avg(v) AS a', group_by => 'k',
	window_size => '1 hour', output_mode => 'update');
SELECT streamagg.drop_query('w', drop_sink => true);
CREATE TABLE w_summary_text (window_start timestamptz, window_end timestamptz, k text,
	n bigint, s numeric, a numeric, UNIQUE (window_start, window_end, k));
SQL
	local n keys r m item shape src summary key_expr v_expr
	for shape in int text; do
	if [[ $shape == int ]]; then
		src=w_src summary=w_summary suffix=
	else
		src=w_src_text summary=w_summary_text suffix=_text
	fi
	for n in $worker_sizes; do
		# 1 000 000 distinct keys only where the events can fill them
		for keys in 1000 100000 $( ((n >= 1000000)) && echo 1000000); do
			item="${n}ev_${keys}keys$suffix"
			log "2. worker speed: $n events, $keys $shape keys (events spread over 4 hours)"
			# Consecutive rows go to different keys (7919 is prime).
			if [[ $shape == int ]]; then
				key_expr="(g::bigint * 7919 % $keys)::int" v_expr="g % 1000"
			else
				key_expr="'customer-' || (g::bigint * 7919 % $keys)"
				v_expr="(g % 100000) / 100.0"
			fi
			psql_q <<SQL
SET streamagg.allow_source_changes = on;
TRUNCATE $src;
INSERT INTO $src (ts, k, v)
	SELECT $(ts_of g "$((4 * 3600 * 1000000 / n)) microseconds"), $key_expr, $v_expr
	FROM generate_series(0, $n - 1) g;
VACUUM ANALYZE $src;
SQL
			for ((r = 1; r <= runs; r++)); do
				for m in $(rotate "$r" groupby process recompute); do
					case $m in
					groupby)
						timed "worker_$item" "GROUP BY" "$r" "$n" \
							"SELECT sum(n), sum(s), sum(a) FROM (
							   SELECT date_bin('1 hour', ts, 'epoch'), k, count(*) n, sum(v) s, avg(v) a
							   FROM $src GROUP BY 1, 2) x;"
						;;
					recompute)
						sql "TRUNCATE $summary" >/dev/null
						timed "worker_$item" "recompute upsert" "$r" "$n" \
							"INSERT INTO $summary AS t
							 SELECT date_bin('1 hour', ts, 'epoch'), date_bin('1 hour', ts, 'epoch') + interval '1 hour',
							        k, count(*), sum(v), avg(v)
							 FROM $src GROUP BY 1, 2, 3
							 ON CONFLICT (window_start, window_end, k)
							 DO UPDATE SET n = EXCLUDED.n, s = EXCLUDED.s, a = EXCLUDED.a;"
						;;
					process)
						sql "SELECT streamagg.create_query(name => 'w', source => '$src', event_time => 'ts',
								aggregates => 'count(*) AS n, sum(v) AS s, avg(v) AS a', group_by => 'k',
								window_size => '1 hour', output_mode => 'update')" >/dev/null
						timed "worker_$item" "streamagg process()" "$r" "$n" \
							"SELECT streamagg.process('w') AS consumed \\gset" "
SELECT bench_assert(:consumed = $n, 'process() consumed ' || :consumed || ' of $n events');
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'worker_$item', 'streamagg process()', p.metric, 'ms', $r, p.value, $n
	FROM streamagg.progress,
	     LATERAL (VALUES ('duration_ms (progress)', duration_ms),
	                     ('aggregate_ms: read + aggregate', aggregate_ms),
	                     ('sink_ms: sink upsert', sink_ms),
	                     ('state_log_ms: state log', state_log_ms)) p(metric, value)
	WHERE name = 'w';
SELECT streamagg.drop_query('w', drop_sink => true);"
						;;
					esac
				done
			done
		done
	done
	done
}

# --- 6. stateless move -------------------------------------------------------
#
# What exactly-once moving costs: one process() of a stateless query that
# appends the rows passing its filter to its sink, against the INSERT ...
# SELECT a user would run instead (which alone is not exactly once).  The
# rows have a text key and a numeric(12,2) amount; the filter passes 99%.

scenario_stateless() {
	local n=$stateless_rows r m
	log "6. stateless move: $n events, filter, text and numeric columns"
	psql_q <<SQL >/dev/null
CREATE TABLE m_src (ts timestamptz, k text, amount numeric(12,2));
SELECT streamagg.create_query(name => 'm', source => 'm_src', event_time => 'ts',
	aggregates => NULL, columns => 'ts, k, amount', filter => 'amount > 1', sink => 'm_out');
SELECT streamagg.drop_query('m', drop_sink => true);
CREATE TABLE m_plain (ts timestamptz, k text, amount numeric(12,2));
INSERT INTO m_src (ts, k, amount)
	SELECT $(ts_of g '10 ms'), 'customer-' || (g % 10000), (g % 10000) / 100.0
	FROM generate_series(1, $n) g;
VACUUM ANALYZE m_src;
SQL
	for ((r = 1; r <= runs; r++)); do
		for m in $(rotate "$r" plain process); do
			case $m in
			plain)
				sql "TRUNCATE m_plain; CHECKPOINT" >/dev/null
				timed stateless "INSERT ... SELECT" "$r" "$n" \
					"INSERT INTO m_plain SELECT ts, k, amount FROM m_src WHERE amount > 1;"
				;;
			process)
				sql "SELECT streamagg.create_query(name => 'm', source => 'm_src', event_time => 'ts',
						aggregates => NULL, columns => 'ts, k, amount', filter => 'amount > 1',
						sink => 'm_out'); CHECKPOINT" >/dev/null
				timed stateless "streamagg process()" "$r" "$n" \
					"SELECT streamagg.process('m') AS consumed \\gset" "
SELECT bench_assert(:consumed = $n, 'process() consumed ' || :consumed || ' of $n events');
SELECT bench_assert((SELECT count(*) FROM m_out) = (SELECT count(*) FROM m_src WHERE amount > 1),
	'the sink holds the rows that pass');
SELECT streamagg.drop_query('m', drop_sink => true);"
				;;
			esac
		done
		log "  run $r/$runs done"
	done
}

# --- 7. Nexmark-derived -----------------------------------------------------
#
# Nexmark's event mix, generated in SQL from the rules of its generator
# (github.com/nexmark/nexmark, nexmark-flink/.../generator: GeneratorConfig,
# PersonGenerator, AuctionGenerator, BidGenerator, PriceGenerator, with the
# defaults of NexmarkConfiguration), into one event table nx_event that is
# the source of four queries.  Followed:
#   - event e (from 0) of each block of 50 is a person if e % 50 < 1, an
#     auction if < 4, else a bid: proportions 1/3/46 per 50 = 2/6/92 per 100;
#   - ids as the generator computes them: the last person id is e / 50, the
#     last auction id 3 (e / 50) + (offset in the block), both + 1000
#     (FIRST_PERSON_ID, FIRST_AUCTION_ID);
#   - a bid's auction: with probability 1 - 1/hotAuctionRatio (2) the hot one,
#     (last auction / 100) * 100, else one drawn uniformly from the last
#     numInFlightAuctions (100) auctions plus 10 not yet created (AUCTION_ID_LEAD);
#   - a bid's bidder: with probability 1 - 1/hotBiddersRatio (4) the hot one,
#     (last person / 100) * 100 + 1, else one drawn uniformly from the last
#     numActivePeople (1000) people plus 10 (PERSON_ID_LEAD);
#   - an auction's seller likewise (hotSellersRatio 4, hot = (last person / 100)
#     * 100), category 10 + uniform [0, 5); prices round(10^(6u) * 100), u
#     uniform in [0, 1) (a bid's price, an auction's initial bid);
#   - event time: base + floor(e * interEventDelayUs / 1000) ms, as
#     timestampForEvent; Nexmark's default run (nexmark.yaml: 10 M events/s)
#     has an inter-event delay of 0.1 us, so 1e6 events span 0.1 s of event
#     time and 10-s windows do not close; the realistic density is
#     BENCH_NEXMARK_RATE events per second of event time (default 5 000).
# Simplified: Java's per-event Random is replaced by hashes of (event number,
# draw number) (hashint8extended), uniform enough for ids and prices, and
# deterministic; one generator (no split timelines); no out-of-order groups
# (outOfOrderGroupSize is 1 by default anyway); no names, e-mails, cities,
# descriptions, expiry times or "extra" padding strings (they are not read by
# these queries; a bid row is 8 columns here, ~100 bytes in Nexmark).
#
# The queries (the windowed aggregations of Nexmark that streamagg expresses;
# not the joins and top-n that q5 and q7 put around them), in update mode
# (q11 in complete mode: update mode refuses sessions, whose rows could merge),
# so that after one process() the sink holds exactly what GROUP BY computes
# (run 1 checks that, row for row), all with filter => 'event_type = 2' (bids):
#   q5   bids per auction, sliding 10-s windows every 2 s
#   q7   max price per 10-s tumbling window
#   q11  bids per bidder per session, 10-s gap
#   q15  daily report: count(*) FILTER by price rank, count(DISTINCT bidder) and
#        count(DISTINCT auction), each also FILTERed by rank (12 aggregates)
# Each is timed as one process() over all N events (persons and auctions are
# read and filtered out: events/s counts every event, as Nexmark does), against
# the same result by GROUP BY (q11: sessions by window functions, then GROUP BY)
# and, where a recompute applies (q5, q7, q15: fixed windows; sessions change
# their bounds as they merge, so an upsert keyed on them does not apply), the
# recompute INSERT ... ON CONFLICT into an empty summary.  Parallel query is off
# in this scenario (max_parallel_workers_per_gather = 0), so every figure is
# one process on one core: events/s is events/s per core.

nexmark_q_def() {   # name -> create_query arguments
	case $1 in
	q5) echo "output_mode => 'update', aggregates => 'count(*) AS num', group_by => 'auction',
		window_size => '10 seconds', window_slide => '2 seconds'" ;;
	q7) echo "output_mode => 'update', aggregates => 'max(price) AS maxprice', window_size => '10 seconds'" ;;
	q11) echo "output_mode => 'complete', aggregates => 'count(*) AS bid_count', group_by => 'bidder',
		session_gap => '10 seconds'" ;;
	q15) echo "output_mode => 'update', aggregates => 'count(*) AS total_bids,
		count(*) FILTER (WHERE price < 10000) AS rank1_bids,
		count(*) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bids,
		count(*) FILTER (WHERE price >= 1000000) AS rank3_bids,
		count(DISTINCT bidder) AS total_bidders,
		count(DISTINCT bidder) FILTER (WHERE price < 10000) AS rank1_bidders,
		count(DISTINCT bidder) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bidders,
		count(DISTINCT bidder) FILTER (WHERE price >= 1000000) AS rank3_bidders,
		count(DISTINCT auction) AS total_auctions,
		count(DISTINCT auction) FILTER (WHERE price < 10000) AS rank1_auctions,
		count(DISTINCT auction) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_auctions,
		count(DISTINCT auction) FILTER (WHERE price >= 1000000) AS rank3_auctions',
		window_size => '1 day'" ;;
	esac
}

nexmark_q_cols() {   # the sink's columns, in the order of nexmark_q_sql
	case $1 in
	q5) echo "window_start, window_end, auction, num" ;;
	q7) echo "window_start, window_end, maxprice" ;;
	q11) echo "window_start, window_end, bidder, bid_count" ;;
	q15) echo "window_start, window_end, total_bids, rank1_bids, rank2_bids, rank3_bids,
		total_bidders, rank1_bidders, rank2_bidders, rank3_bidders,
		total_auctions, rank1_auctions, rank2_auctions, rank3_auctions" ;;
	esac
}

nexmark_q_sql() {   # the same result by plain SQL
	case $1 in
	q5) echo "SELECT w, w + interval '10 seconds', auction, count(*)
		FROM nx_event, LATERAL generate_series(date_bin('2 seconds', date_time, 'epoch') - interval '8 seconds',
		                                       date_bin('2 seconds', date_time, 'epoch'), interval '2 seconds') w
		WHERE event_type = 2 GROUP BY 1, 2, 3" ;;
	q7) echo "SELECT date_bin('10 seconds', date_time, 'epoch'),
		       date_bin('10 seconds', date_time, 'epoch') + interval '10 seconds', max(price)
		FROM nx_event WHERE event_type = 2 GROUP BY 1, 2" ;;
	q11) echo "SELECT min(date_time), max(date_time) + interval '10 seconds', bidder, count(*)
		FROM (SELECT bidder, date_time, sum(brk) OVER (PARTITION BY bidder ORDER BY date_time) AS sid
		      FROM (SELECT bidder, date_time,
		                   CASE WHEN date_time <= lag(date_time) OVER (PARTITION BY bidder ORDER BY date_time)
		                                          + interval '10 seconds' THEN 0 ELSE 1 END AS brk
		            FROM nx_event WHERE event_type = 2) a) b
		GROUP BY bidder, sid" ;;
	q15) echo "SELECT date_bin('1 day', date_time, 'epoch'), date_bin('1 day', date_time, 'epoch') + interval '1 day',
		count(*), count(*) FILTER (WHERE price < 10000),
		count(*) FILTER (WHERE price >= 10000 AND price < 1000000), count(*) FILTER (WHERE price >= 1000000),
		count(DISTINCT bidder), count(DISTINCT bidder) FILTER (WHERE price < 10000),
		count(DISTINCT bidder) FILTER (WHERE price >= 10000 AND price < 1000000),
		count(DISTINCT bidder) FILTER (WHERE price >= 1000000),
		count(DISTINCT auction), count(DISTINCT auction) FILTER (WHERE price < 10000),
		count(DISTINCT auction) FILTER (WHERE price >= 10000 AND price < 1000000),
		count(DISTINCT auction) FILTER (WHERE price >= 1000000)
		FROM nx_event WHERE event_type = 2 GROUP BY 1, 2" ;;
	esac
}

nexmark_q_conflict() {   # the summary's key, empty where no recompute applies
	case $1 in
	q5) echo "window_start, window_end, auction" ;;
	q7 | q15) echo "window_start, window_end" ;;
	esac
}

scenario_nexmark() {
	local n=$nexmark_events rate=$nexmark_rate density delay_us q r m item key cols set
	local -x PGOPTIONS="-c max_parallel_workers_per_gather=0"
	psql_q <<'SQL' >/dev/null
CREATE TABLE nx_event (event_type int, id bigint, seller bigint, category int,
	auction bigint, bidder bigint, price bigint, date_time timestamptz);
SELECT streamagg.create_query(name => 'nx', source => 'nx_event', event_time => 'date_time',
	aggregates => 'count(*) AS n', window_size => '10 seconds', filter => 'event_type = 2',
	output_mode => 'update');
SELECT streamagg.drop_query('nx', drop_sink => true);
-- draw k of event e: uniform in [0, n)
CREATE FUNCTION nx_rand(e bigint, k int, n bigint) RETURNS bigint LANGUAGE sql IMMUTABLE
	AS $$ SELECT (hashint8extended(e, k) & 9223372036854775807) % n $$;
-- PersonGenerator.nextBase0PersonId: one of the last 1000 people, plus 10 ahead
CREATE FUNCTION nx_person(e bigint, k int, last_person bigint) RETURNS bigint LANGUAGE sql IMMUTABLE
	AS $$ SELECT last_person + 1 - least(last_person + 1, 1000)
	             + nx_rand(e, k, least(last_person + 1, 1000) + 10) $$;
-- PriceGenerator.nextPrice
CREATE FUNCTION nx_price(e bigint, k int) RETURNS bigint LANGUAGE sql IMMUTABLE
	AS $$ SELECT round(power(10.0::float8, nx_rand(e, k, 4503599627370496) / 4503599627370496.0::float8 * 6)
	                   * 100)::bigint $$;
SQL
	for q in q5 q7 q15; do
		key=$(nexmark_q_conflict "$q")
		cols=$(nexmark_q_cols "$q")
		sql "CREATE TABLE nx_sum_$q AS SELECT $cols FROM ($(nexmark_q_sql "$q")) x($cols) WITH NO DATA;
		     ALTER TABLE nx_sum_$q ADD UNIQUE ($key)" >/dev/null
	done
	for density in nexmark realistic; do
		if [[ $density == nexmark ]]; then
			delay_us=0.1
		else
			delay_us=$(awk -v r="$rate" 'BEGIN {printf "%.6f", 1000000 / r}')
		fi
		log "7. nexmark: $n events, $density density ($delay_us us of event time per event)"
		psql_q <<SQL >/dev/null
SET streamagg.allow_source_changes = on;
TRUNCATE nx_event;
INSERT INTO nx_event (event_type, id, seller, category, auction, bidder, price, date_time)
SELECT CASE WHEN o < 1 THEN 0 WHEN o < 4 THEN 1 ELSE 2 END,
       CASE WHEN o < 1 THEN lp + 1000 WHEN o < 4 THEN la + 1000 END,
       CASE WHEN o BETWEEN 1 AND 3 THEN
            CASE WHEN nx_rand(e, 6, 4) > 0 THEN lp / 100 * 100 ELSE nx_person(e, 7, lp) END + 1000 END,
       CASE WHEN o BETWEEN 1 AND 3 THEN 10 + nx_rand(e, 8, 5) END,
       CASE WHEN o >= 4 THEN
            CASE WHEN nx_rand(e, 1, 2) > 0 THEN la / 100 * 100
                 ELSE greatest(la - 100, 0) + nx_rand(e, 2, la - greatest(la - 100, 0) + 1 + 10) END + 1000 END,
       CASE WHEN o >= 4 THEN
            CASE WHEN nx_rand(e, 3, 4) > 0 THEN lp / 100 * 100 + 1 ELSE nx_person(e, 4, lp) END + 1000 END,
       CASE WHEN o >= 1 THEN nx_price(e, 5) END,
       timestamptz '2024-01-01 00:00:00+00' + floor(e * $delay_us / 1000) * interval '1 ms'
FROM (SELECT e, e / 50 AS lp, e % 50 AS o,
             CASE WHEN e % 50 < 1 THEN e / 50 * 3 - 1 WHEN e % 50 >= 4 THEN e / 50 * 3 + 2
                  ELSE e / 50 * 3 + e % 50 - 1 END AS la
      FROM generate_series(0::bigint, $n - 1) e) g;
VACUUM ANALYZE nx_event;
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'nexmark_${density}_mix', 'event mix', m, u, 1, v, $n
	FROM (SELECT count(*) FILTER (WHERE event_type = 0) p, count(*) FILTER (WHERE event_type = 1) a,
	             count(*) FILTER (WHERE event_type = 2) b,
	             extract(epoch FROM max(date_time) - min(date_time)) s,
	             count(DISTINCT auction) da, count(DISTINCT bidder) db FROM nx_event) x,
	     LATERAL (VALUES ('persons', 'events', p), ('auctions', 'events', a), ('bids', 'events', b),
	                     ('event time spanned', 's', s),
	                     ('distinct auctions bid on', 'ids', da), ('distinct bidders', 'ids', db)) v(m, u, v);
SQL
		for q in q5 q7 q11 q15; do
			item="nexmark_${density}_$q"
			cols=$(nexmark_q_cols "$q")
			key=$(nexmark_q_conflict "$q")
			# DO UPDATE SET col = EXCLUDED.col for every column but the window bounds
			set=$(tr -s ', \t\n' '\n\n\n\n' <<<"$cols" | grep -v -e '^window_' -e '^$' |
				awk '{printf "%s%s = EXCLUDED.%s", (NR > 1 ? ", " : ""), $1, $1}')
			for ((r = 1; r <= nexmark_runs; r++)); do
				for m in $(rotate "$r" groupby process recompute); do
					case $m in
					groupby)
						timed "$item" "GROUP BY" "$r" "$n" \
							"SELECT count(*) FROM ($(nexmark_q_sql "$q")) x WHERE x IS NOT NULL;"
						;;
					recompute)
						[[ -n $key ]] || continue
						sql "TRUNCATE nx_sum_$q" >/dev/null
						timed "$item" "recompute upsert" "$r" "$n" \
							"INSERT INTO nx_sum_$q AS t $(nexmark_q_sql "$q")
							 ON CONFLICT ($key) DO UPDATE SET $set;"
						;;
					process)
						sql "SELECT streamagg.create_query(name => 'nx_$q', source => 'nx_event',
								event_time => 'date_time', filter => 'event_type = 2',
								$(nexmark_q_def "$q"))" >/dev/null
						timed "$item" "streamagg process()" "$r" "$n" \
							"SELECT streamagg.process('nx_$q') AS consumed \\gset" "
SELECT bench_assert(:consumed = $n, 'process() consumed ' || :consumed || ' of $n events');
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT '$item', 'streamagg process()', 'aggregate_ms: read + aggregate', 'ms', $r, aggregate_ms, $n
	FROM streamagg.progress WHERE name = 'nx_$q';
-- run 1: the sink holds exactly the GROUP BY result
SELECT bench_assert($r > 1 OR NOT EXISTS (
	(SELECT $cols FROM nx_$q EXCEPT ALL $(nexmark_q_sql "$q"))
	UNION ALL
	($(nexmark_q_sql "$q") EXCEPT ALL SELECT $cols FROM nx_$q)),
	'sink of nx_$q differs from GROUP BY');
SELECT streamagg.drop_query('nx_$q', drop_sink => true);"
						;;
					esac
				done
			done
		done
		log "  $density density done"
	done
}

# --- 8. worker pool ---------------------------------------------------------
#
# (a) Catching up in parallel: a backlog of M events in one source, read by
# four queries (count/sum/avg by 1000 keys, 1- to 4-hour tumbling windows,
# update mode, trigger_interval '0').  The queries are created paused in one
# transaction; the clock starts, one statement resumes all four, and the time
# is taken when streamagg.wait() has returned true for each of them, i.e.
# every event has been consumed by all four.  Once with
# streamagg.workers_per_database = 1 and once with the default pool (the
# setting is reloadable: ALTER SYSTEM and pg_reload_conf(), no restart),
# alternately, with fresh queries (empty state and sink) each time; before
# each phase the previous queries are dropped and their workers have exited,
# so both phases pay the start of their workers.  Each sink must then count
# every event.  The number of streamagg workers of the database at the end
# of each phase is recorded as a check that the pool was in effect.
# Beside it, what the machine allows: PostgreSQL's own GROUP BYs of the four
# queries, in one session and then in two at once (two each).
#
# (b) Many queries on one source under load: BENCH_POOL_QUERIES queries
# (trigger_interval '0', update mode, 1- to 5-minute windows by 100 keys,
# watermark 1 minute) on one source, pgbench single-row transactions at
# BENCH_POOL_RATE for BENCH_POOL_SECS, default pool.  Commit-to-sink latency
# of every (event, query) pair, measured as scenario 3 does (commit
# timestamps of the event and of the first batch of that query that started
# after it committed; can only overstate).  Catch-up after the producers stop,
# two ways: exactly, as the latency of the last event committed (the commit of
# the last query's batch that saw it, minus its commit), and by wall clock, as
# the time wait() takes for every query once pgbench has exited.

# latency_setup: the batch log and its trigger function (scenarios 3 and 8)
latency_setup() {
	psql_q <<'SQL' >/dev/null
CREATE TABLE IF NOT EXISTS l_batches (sink text, xact_start timestamptz, xid xid8);
CREATE OR REPLACE FUNCTION public.l_note_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.l_batches VALUES (TG_TABLE_NAME, now(), pg_current_xact_id());
	RETURN NULL;
END $$;
SQL
}

# set_pool N: streamagg.workers_per_database = N (DEFAULT: the default), reloaded
set_pool() {
	if [[ $1 == DEFAULT ]]; then
		sql "ALTER SYSTEM RESET streamagg.workers_per_database" >/dev/null
	else
		sql "ALTER SYSTEM SET streamagg.workers_per_database = $1" >/dev/null
	fi
	sql "SELECT pg_reload_conf()" >/dev/null
	# the setting is read by new sessions at once; give the postmaster's
	# children the signal's time before the clock starts
	sql "SELECT pg_sleep(0.2)" >/dev/null
}

scenario_pool() {
	local m=$pool_backlog r phase w item i names
	local default_pool
	default_pool=$(sql "SELECT boot_val FROM pg_settings WHERE name = 'streamagg.workers_per_database'")
	log "8a. pool: $m events, 4 queries catching up, workers_per_database 1 vs $default_pool"
	psql_q <<SQL >/dev/null
CREATE TABLE pl_src (ts timestamptz, k int, v int);
SELECT streamagg.create_query(name => 'pl', source => 'pl_src', event_time => 'ts',
	aggregates => 'count(*) AS n', window_size => '1 hour', output_mode => 'update');
SELECT streamagg.drop_query('pl', drop_sink => true);
INSERT INTO pl_src (ts, k, v)
	SELECT $(ts_of g "$((4 * 3600 * 1000000 / m)) microseconds"), (g::bigint * 7919 % 1000)::int, g % 1000
	FROM generate_series(0, $m - 1) g;
VACUUM ANALYZE pl_src;
SQL
	names="'pl_1', 'pl_2', 'pl_3', 'pl_4'"
	for ((r = 1; r <= pool_runs; r++)); do
		for phase in $(rotate "$r" single pool); do
			if [[ $phase == single ]]; then
				w=1 item="one worker (workers_per_database = 1)"
				set_pool 1
			else
				w=$default_pool item="pool (workers_per_database = $default_pool, the default)"
				set_pool DEFAULT
			fi
			psql_q <<SQL >/dev/null
-- the previous phase's workers have exited (no scheduled query is left)
DO \$\$ BEGIN
	FOR i IN 1 .. 300 LOOP
		EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity
			WHERE backend_type = 'streamagg worker' AND datname = current_database());
		PERFORM pg_sleep(0.1);
	END LOOP;
END \$\$;
SELECT bench_assert(NOT EXISTS (SELECT FROM pg_stat_activity
	WHERE backend_type = 'streamagg worker' AND datname = current_database()),
	'streamagg workers still running before the phase');
SELECT bench_assert(current_setting('streamagg.workers_per_database')::int = $w,
	'workers_per_database is ' || current_setting('streamagg.workers_per_database'));
BEGIN;
SELECT streamagg.create_query(name => 'pl_' || i, source => 'pl_src', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s, avg(v) AS a', group_by => 'k',
	window_size => (i || ' hours')::interval, output_mode => 'update', trigger_interval => '0')
	FROM generate_series(1, 4) i;
SELECT streamagg.pause('pl_' || i) FROM generate_series(1, 4) i;
COMMIT;
SQL
			psql_q <<SQL >/dev/null
SELECT clock_timestamp() AS t0 \gset
SELECT streamagg.resume(q) FROM unnest(ARRAY[$names]) q;
SELECT bench_assert(bool_and(streamagg.wait(q, '600 seconds')), 'a query did not catch up')
	FROM unnest(ARRAY[$names]) q;
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	VALUES ('pool_catchup', '$item', 'time until all 4 caught up', 'ms', $r, ms_since(:'t0'), 4 * $m);
-- how much of the wall time the triggers overlapped: the sum of their
-- durations over the wall time (1 = one at a time)
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'pool_catchup', '$item', 'sum of trigger durations / wall time', 'x', $r,
	       sum(duration_ms) / ms_since(:'t0'), count(*)
	FROM streamagg.progress WHERE name IN ($names) AND num_input_rows > 0;
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'pool_catchup', '$item', 'workers running at the end', 'workers', $r, count(*), NULL
	FROM pg_stat_activity WHERE backend_type = 'streamagg worker' AND datname = current_database();
SELECT bench_assert((SELECT sum(n) FROM pl_1) = $m AND (SELECT sum(n) FROM pl_2) = $m
	AND (SELECT sum(n) FROM pl_3) = $m AND (SELECT sum(n) FROM pl_4) = $m,
	'a sink does not count every event');
SELECT streamagg.drop_query(q, drop_sink => true) FROM unnest(ARRAY[$names]) q;
SQL
		done
		log "  run $r/$pool_runs done"
	done
	set_pool DEFAULT

	# What the machine allows: PostgreSQL's own GROUP BYs of the four queries
	# over the same backlog, one after the other in one session, and two
	# sessions at once with two each (no parallel query).
	local ref_sql="$tmp/pool_ref.sql" half t0 t1
	for half in 1 2; do
		{
			echo "SET max_parallel_workers_per_gather = 0;"
			for i in $((2 * half - 1)) $((2 * half)); do
				echo "SELECT count(*) FROM (SELECT date_bin('$i hours', ts, 'epoch'), k, count(*), sum(v), avg(v)
					FROM pl_src GROUP BY 1, 2) x;"
			done
		} >"$ref_sql.$half"
	done
	log "8a. reference: the four GROUP BYs in one session, then in two at once"
	for ((r = 1; r <= pool_runs; r++)); do
		for phase in $(rotate "$r" one two); do
			t0=$(date +%s%N)
			if [[ $phase == one ]]; then
				cat "$ref_sql.1" "$ref_sql.2" | psql_q >/dev/null
			else
				psql_q -f "$ref_sql.1" >/dev/null &
				psql_q -f "$ref_sql.2" >/dev/null
				wait
			fi
			t1=$(date +%s%N)
			sql "INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
				VALUES ('pool_catchup', 'PostgreSQL: the 4 GROUP BYs', 'time, $phase session(s)', 'ms', $r,
				        $(( (t1 - t0) / 1000 )) / 1000.0, 4 * $m)" >/dev/null
		done
	done

	local nq=$pool_queries rate=$pool_rate secs=$pool_secs src=pq_src out tps
	item="$nq queries, $rate tx/s target"
	log "8b. pool: $nq queries on one source, pgbench -R $rate -c $pool_clients for ${secs}s, trigger_interval '0'"
	latency_setup
	psql_q <<SQL >/dev/null
CREATE TABLE $src (ts timestamptz, k int, v int);
SELECT streamagg.create_query(name => 'pq_' || i, source => '$src', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
	window_size => (1 + i % 5 || ' minutes')::interval, watermark => '1 minute',
	output_mode => 'update', trigger_interval => '0')
	FROM generate_series(1, $nq) i;
SELECT format('CREATE TRIGGER l_note_batch AFTER INSERT ON %I
	FOR EACH STATEMENT EXECUTE FUNCTION public.l_note_batch()', 'pq_' || i)
	FROM generate_series(1, $nq) i \gexec
INSERT INTO $src (ts, k, v) VALUES (now(), 0, 0);
SELECT bench_assert(bool_and(streamagg.wait('pq_' || i, '60 seconds')), 'first batch')
	FROM generate_series(1, $nq) i;
CREATE TABLE pq_start AS SELECT clock_timestamp() AS t;
SQL
	cat >"$tmp/$src.pgbench" <<EOF2
\\set k random(0, 99)
INSERT INTO $src (ts, k, v) VALUES (now(), :k, :k);
EOF2
	sql "CHECKPOINT" >/dev/null		# as in scenario 3
	out=$("$pgbench_bin" -n -M prepared -c "$pool_clients" -j 2 -R "$rate" -T "$secs" \
		-f "$tmp/$src.pgbench" 2>&1) || { echo "$out" >&2; exit 1; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
	[[ -n $tps ]] || { echo "$out" >&2; exit 1; }
	psql_q <<SQL >/dev/null
SELECT clock_timestamp() AS t0 \gset
SELECT bench_assert(bool_and(streamagg.wait('pq_' || i, '120 seconds')), 'a query did not catch up')
	FROM generate_series(1, $nq) i;
SELECT ms_since(:'t0') AS catch_up_wall \gset
SELECT streamagg.pause('pq_' || i) FROM generate_series(1, $nq) i;
CREATE INDEX l_batches_sink ON l_batches (sink, xact_start);
-- every (event, query) pair of the events pgbench committed
CREATE TEMP TABLE lat AS
	SELECT e.committed, extract(epoch FROM b.committed - e.committed) * 1000 AS ms
	FROM (SELECT pg_xact_commit_timestamp(streamagg_xid::xid) AS committed FROM $src) e
	CROSS JOIN generate_series(1, $nq) i
	LEFT JOIN LATERAL (
		SELECT pg_xact_commit_timestamp(xid::xid) AS committed FROM l_batches
		WHERE sink = 'pq_' || i AND xact_start > e.committed
		ORDER BY xact_start LIMIT 1) b ON true
	WHERE e.committed >= (SELECT t FROM pq_start);
SELECT bench_assert(count(*) = count(ms), count(*) - count(ms) || ' (event, query) pairs without a batch') FROM lat;
SELECT bench_assert(count(*) = $nq * (SELECT count(*) FROM $src) - $nq, 'pairs counted') FROM lat;
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'pool_latency', '$item', m, u, 1, v, (SELECT count(*) FROM lat)
	FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) p50,
	             percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) p95,
	             percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) p99,
	             max(ms) mx,
	             max(ms) FILTER (WHERE committed = (SELECT max(committed) FROM lat)) last_ev FROM lat) p,
	     LATERAL (VALUES ('target rate', 'tx/s', $rate), ('achieved rate (pgbench)', 'tx/s', $tps),
	                     ('p50', 'ms', p50), ('p95', 'ms', p95), ('p99', 'ms', p99), ('max', 'ms', mx),
	                     ('catch-up: last event committed -> in every sink', 'ms', last_ev),
	                     ('catch-up: wait() for every query after pgbench exited', 'ms', :catch_up_wall),
	                     ('batches per query (mean)', 'batches',
	                      (SELECT count(DISTINCT xid)::float8 / $nq FROM l_batches WHERE sink LIKE 'pq\\_%'))) x(m, u, v);
DROP INDEX l_batches_sink;
SELECT streamagg.drop_query('pq_' || i, drop_sink => true) FROM generate_series(1, $nq) i;
SQL
}

# --- 3. latency -------------------------------------------------------------
#
# Commit-to-visible latency of every event, measured exactly from commit
# timestamps (track_commit_timestamp = on, set for the whole run: a restart
# would load whatever streamagg.so is installed by then, and the same
# setting for every scenario keeps them comparable):
#   - an event's commit time is pg_xact_commit_timestamp(streamagg_xid), the
#     commit of its single-row pgbench transaction;
#   - a statement trigger on the sink records, in every batch's transaction
#     (once per statement: a batch may insert new rows and upsert others),
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
	latency_setup
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
		# start from a checkpoint: one due to the earlier scenarios' WAL would
		# stall every commit, the producers' and the triggers' alike
		sql "CHECKPOINT" >/dev/null
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
INSERT INTO lat_curve
	SELECT $rate, (p.i - 1) / 10.0, p.ms
	FROM (SELECT percentile_cont((SELECT array_agg(x / 1000.0::float8 ORDER BY x)
	                              FROM generate_series(0, 1000) x)) WITHIN GROUP (ORDER BY ms) a
	      FROM lat) c,
	     unnest(c.a) WITH ORDINALITY p(ms, i);
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'latency', '$rate tx/s target', 'batches', 'batches', 1, count(DISTINCT xid),
	       (SELECT count(*) FROM lat)
	FROM l_batches WHERE sink = '$q'
	UNION ALL
	SELECT 'latency', '$rate tx/s target', 'events per batch (mean)', 'rows', 1,
	       (SELECT count(*) FROM lat)::float8 / count(DISTINCT xid), (SELECT count(*) FROM lat)
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
# State memory: progress.state_memory_bytes of the three queries per open
# group (what their group tables and the tuples they point to take; the
# budget line).  Also, as what the machine pays: the whole scenario runs in
# one session, which therefore maps every DSA segment the state was
# allocated in; the growth of the mapped /dev/shm/PostgreSQL.* segments
# (from /proc/self/maps of the backend) per group added from G to 100 G.
# DSA grows in segments of doubling size, so that figure includes up to a
# third of free room in the last segments; only the large step is reported.

# scaling_trigger_sql QUERY ITEM LEVEL RUN GROUPS: the SQL that times one
# 1000-row trigger of QUERY and records it, with its phases, as ITEM.
scaling_trigger_sql() {
	local q=$1 item=$2 level=$3 r=$4 groups=$5
	cat <<SQL
SELECT clock_timestamp() AS t0 \gset
SELECT streamagg.process('$q') AS consumed \gset
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'scaling', '$item', 'trigger ms, state x$level', 'ms', $r, ms_since(:'t0'), $groups
	WHERE :consumed = 1000;
-- the trigger's phases: streamagg's own work, and the sink's upsert
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'scaling', '$item', p.metric || ', state x$level', 'ms', $r, p.value, $groups
	FROM (SELECT aggregate_ms, sink_ms, state_log_ms FROM streamagg.progress
	      WHERE name = '$q' ORDER BY batch_id DESC LIMIT 1) b,
	     LATERAL (VALUES ('aggregate + state log ms', b.aggregate_ms + b.state_log_ms),
	                     ('sink ms', b.sink_ms)) p(metric, value)
	WHERE :consumed = 1000;
SELECT bench_assert(:consumed = 1000, '$q consumed ' || :consumed || ' rows, not 1000');
SQL
}

scenario_scaling() {
	local g0=$scaling_base level groups prev=0 w0 w1 r
	log "4. scaling: state of $g0, $((10 * g0)), $((100 * g0)) groups per query, 1000-row triggers"
	{
		cat <<'SQL'
\set ON_ERROR_STOP 1
-- The harness empties sources of consumed events between steps, as
-- retention would (sources are append-only otherwise).
SET streamagg.allow_source_changes = on;
-- Start from a compact checkpoint table (scenario 2 left dead rows in it).
VACUUM FULL streamagg.state_log;
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
-- the growth filled the sinks and the state log: vacuum them now, so that
-- autovacuum does not catch up on them during the measured triggers
VACUUM ANALYZE sc_hist, sc_upd, sc_app, streamagg.state_log;
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
	 pg_total_relation_size('streamagg.state_log')::float8 / :ngroups, :ngroups);
-- what the states take, as progress reports it (group tables and the
-- tuples they point to), whatever DSA segments they were allocated in
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'scaling', 'state memory', 'state_memory_bytes / group, state x$level', 'bytes', 1,
	       sum(state_memory_bytes)::float8 / sum(state_rows_total), sum(state_rows_total)
	FROM (SELECT DISTINCT ON (name) state_memory_bytes, state_rows_total FROM streamagg.progress
	      WHERE name IN ('sc_hist', 'sc_upd', 'sc_app') ORDER BY name, batch_id DESC) p;
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
					scaling_trigger_sql "$q" "$item" "$level" "$r" "$groups"
				done
				echo "DELETE FROM s_trim;"
			done
			echo "VACUUM s_trim;"
			echo "\\echo level $level done"
			prev=$groups
		done
		cat <<'SQL'
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'scaling', 'state memory', 'logged record (window, key, states) / group', 'bytes', 1,
	       sum(octet_length(records))::float8 / sum(groups), sum(groups)
	FROM streamagg.state_log;
SQL
	} | psql_q -At >/dev/null
	scenario_scaling_text
}

# The shape users have (issue 16), in its own session after the integer
# queries, so that their state-memory figures stay theirs: one update-mode
# query, count/sum/avg of numeric(12,2) amounts by text keys
# ('customer-' || k), source emptied.  Its state grows the same way, from G
# to 10 G to 100 G (window, key) groups, and the same 1000-row triggers are
# timed: a trigger must cost the same whatever the state holds.
scenario_scaling_text() {
	local g0=$scaling_base level groups prev=0 w0 w1 r
	local item="update, text keys and numeric, source emptied"
	log "4. scaling (text keys, numeric): state of $g0, $((10 * g0)), $((100 * g0)) groups, 1000-row triggers"
	{
		cat <<'SQL'
\set ON_ERROR_STOP 1
SET streamagg.allow_source_changes = on;
CREATE TABLE s_text (ts timestamptz, k text, v numeric(12,2));
SELECT streamagg.create_query(name => 'sc_text', source => 's_text', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s, avg(v) AS a', group_by => 'k',
	window_size => '1 hour', output_mode => 'update');
SQL
		for level in 1 10 100; do
			groups=$((level * g0))
			w0=$((prev / 1000)) w1=$((groups / 1000 - 1))
			cat <<SQL
INSERT INTO s_text (ts, k, v) SELECT $(ts_of "h * 3600 + k * 3.6" '1 second'), 'customer-' || k, k / 100.0
	FROM generate_series($w0, $w1) h, generate_series(0, 999) k;
SELECT streamagg.process('sc_text');
DELETE FROM s_text;
VACUUM s_text;
VACUUM ANALYZE sc_text, streamagg.state_log;
SQL
			if ((level == 1)); then
				cat <<'SQL'
-- Warm-up trigger: creates the groups that every measured batch updates.
INSERT INTO s_text (ts, k, v) SELECT timestamptz '2023-12-31 23:00+00' + k * interval '3.6 s',
	'customer-' || k, k / 100.0 FROM generate_series(0, 999) k;
SELECT streamagg.process('sc_text');
DELETE FROM s_text;
VACUUM s_text;
SQL
			fi
			for ((r = 1; r <= runs; r++)); do
				cat <<SQL
INSERT INTO s_text (ts, k, v) SELECT timestamptz '2023-12-31 23:00+00' + k * interval '3.6 s',
	'customer-' || k, k / 100.0 FROM generate_series(0, 999) k;
SQL
				scaling_trigger_sql sc_text "$item" "$level" "$r" "$groups"
				echo "DELETE FROM s_text;"
			done
			echo "VACUUM s_text;"
			prev=$groups
		done
	} | psql_q -At >/dev/null
}

# --- 5. sustained load ------------------------------------------------------
#
# For each rate of BENCH_SUSTAIN_RATES (increasing): pgbench single-row
# transactions at that fixed rate (-R, BENCH_SUSTAIN_CLIENTS clients) for
# BENCH_SUSTAIN_SECS into a fresh source, read by one query with
# trigger_interval '0' (update mode, 1-minute tumbling window, count/sum by
# 100 keys, watermark 1 minute, so closed windows leave the state), with a
# retention of 2 minutes on the source so that it does not grow without bound
# either.  Every 5 s one sample:
#   lag      the exact number of committed events the query has not consumed:
#            in one REPEATABLE READ transaction, the query's consumed
#            snapshot (streamagg.checkpoint) and a count of the source rows
#            whose streamagg_xid is not visible in it (the streamagg_brin index on
#            streamagg_xid limits the scan to the recent block ranges).
#            Retention deletes only consumed events, so none is missed, and
#            streamagg.progress (the last 100 batches only) is not needed.
#            Also the age of the oldest unconsumed event (now() - its ts).
#   memory   of the `streamagg worker` backend: RssAnon from
#            /proc/PID/status (its private memory) plus the DSA segments it
#            maps (/dev/shm/PostgreSQL.* in /proc/PID/maps, where the state
#            lives).  VmRSS is printed too, but it is not a leak measure: it
#            counts every shared buffer the worker touched (RssShmem), which
#            grows towards shared_buffers as it reads new source pages.
#   state    state_rows_total of the latest batch; the source's size on disk
#            and the events retention deleted so far.
# Verdict per rate, with warm-up W = min(60 s, duration / 3):
#   lag bounded  the lag at the end (highest of the last 3 samples) is at
#                most twice the lag at W (highest of the 3 samples up to W),
#                or at most one second of events at the target rate;
#   memory flat  worker memory (RssAnon + DSA) at the end is at most 1.2x
#                its value at W;
#   and the same worker pid throughout, and the query catches up (wait())
#   after the producer stops; then every event must be in the sink (the sum
#   of its counts equals the events inserted).
# Rates after the first one whose lag is not bounded are skipped (a rate
# that fails only on memory does not stop the higher ones).  pgbench runs
# 2 s longer than the duration sampled, so that each sample is taken under load.

# Resident and DSA memory of a process: "VmRSS RssAnon RssShmem DSA" in kB
# ("NULL NULL NULL NULL" if it is gone).
proc_mem() {
	local pid=$1 range rest dsa=0 a b
	if [[ ! -r /proc/$pid/status ]]; then echo "NULL NULL NULL NULL"; return; fi
	while read -r range rest; do
		[[ $rest == */PostgreSQL.* ]] || continue
		a=${range%-*} b=${range#*-}
		dsa=$((dsa + 16#$b - 16#$a))
	done <"/proc/$pid/maps" 2>/dev/null || true
	awk -v dsa=$((dsa / 1024)) '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} /^RssShmem:/ {s = $2}
		END {print (r == "" ? "NULL" : r), (a == "" ? "NULL" : a), (s == "" ? "NULL" : s), dsa}' \
		"/proc/$pid/status" 2>/dev/null || echo "NULL NULL NULL NULL"
}

# Warm-up of scenario 5: min(60 s, duration / 3), a multiple of the 5-s step.
sustain_warm=$(( (sustain_secs / 3 < 60 ? sustain_secs / 3 : 60) / 5 * 5 ))

now_ms() { local e=${EPOCHREALTIME/./}; echo $((e / 1000)); }

scenario_sustained() {
	local rate src q out tps events sched pgb pid t t0 d mem warm next
	local secs=$sustain_secs step=5
	warm=$sustain_warm
	for rate in $sustain_rates; do
		src=sus_src_$rate q=sus_q_$rate
		log "5. sustained: pgbench -R $rate -c $sustain_clients for ${secs}s, trigger_interval '0', retention 2 minutes"
		psql_q <<SQL >/dev/null
CREATE TABLE $src (ts timestamptz, k int, v int);
SELECT streamagg.create_query(name => '$q', source => '$src', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
	window_size => '1 minute', watermark => '1 minute', output_mode => 'update',
	trigger_interval => '0');
SELECT streamagg.set_retention('$src', '2 minutes');
INSERT INTO $src (ts, k, v) VALUES (now(), 0, 0);
SELECT bench_assert(streamagg.wait('$q', '30 seconds'), 'first batch of $q');
SQL
		pid=$(sql "SELECT pid FROM pg_stat_activity
		           WHERE backend_type = 'streamagg worker' AND datname = current_database()")
		[[ $pid =~ ^[0-9]+$ ]] || { echo "no streamagg worker found: '$pid'" >&2; exit 1; }
		cat >"$tmp/$src.pgbench" <<EOF2
\\set k random(0, 99)
INSERT INTO $src (ts, k, v) VALUES (now(), :k, :k);
EOF2
		"$pgbench_bin" -n -M prepared -c "$sustain_clients" -j 2 -R "$rate" -T "$((secs + 2))" \
			-f "$tmp/$src.pgbench" >"$tmp/$src.out" 2>&1 &
		pgb=$!
		t0=$(now_ms)
		for ((t = 0; t <= secs; t += step)); do
			d=$((t0 + t * 1000 - $(now_ms)))
			((d <= 0)) || sleep "$((d / 1000)).$(printf '%03d' $((d % 1000)))"
			read -r -a mem <<<"$(proc_mem "$pid")"
			((${#mem[@]} == 4)) || mem=(NULL NULL NULL NULL)
			psql_q <<SQL >/dev/null
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT c.consumed_snapshot AS cs FROM streamagg.checkpoint c
	JOIN streamagg.query_def d USING (query_id) WHERE d.name = '$q' \gset
INSERT INTO sus_samples
	SELECT $rate, $t, count(*), extract(epoch FROM now() - min(ts)) * 1000,
	       ${mem[0]}, ${mem[1]}, ${mem[2]}, ${mem[3]},
	       (SELECT pid FROM pg_stat_activity
	        WHERE backend_type = 'streamagg worker' AND datname = current_database()),
	       (SELECT state_rows_total FROM streamagg.progress WHERE name = '$q'
	        ORDER BY batch_id DESC LIMIT 1),
	       pg_table_size('$src') / 1024,
	       (SELECT events_deleted FROM streamagg.retention WHERE source = '$src'::regclass)
	FROM $src
	WHERE streamagg_xid >= pg_snapshot_xmin(:'cs')
	  AND NOT pg_visible_in_snapshot(streamagg_xid, :'cs');
COMMIT;
SQL
		done
		wait "$pgb" || { cat "$tmp/$src.out" >&2; exit 1; }
		out=$(<"$tmp/$src.out")
		tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
		events=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
		sched=$(sed -n 's/^rate limit schedule lag: //p' <<<"$out")
		[[ -n $tps && -n $events ]] || { echo "$out" >&2; exit 1; }
		psql_q <<SQL >/dev/null
SELECT clock_timestamp() AS t0 \gset
SELECT streamagg.wait('$q', '600 seconds') AS caught_up \gset
SELECT CASE WHEN :'caught_up' THEN ms_since(:'t0') END AS catch_up \gset
-- Every event is in the sink: update mode keeps the rows of closed windows.
SELECT bench_assert(NOT :'caught_up' OR (SELECT sum(n) FROM $q) = $events + 1,
	'sink of $q counts ' || (SELECT sum(n) FROM $q) || ' events, not $events + 1');
INSERT INTO sus_runs (rate, secs, warm, achieved, events, sched_lag, catch_up_ms,
	lag_warm, lag_end, lag_max, mem_warm_kb, mem_end_kb, pid_changed)
SELECT $rate, $secs, $warm, $tps, $events, '$sched', nullif(:'catch_up', '')::float8,
	max(lag) FILTER (WHERE t BETWEEN $warm - 2 * $step AND $warm),
	max(lag) FILTER (WHERE t >= $secs - 2 * $step),
	max(lag),
	max(anon_kb + dsa_kb) FILTER (WHERE t = $warm),
	max(anon_kb + dsa_kb) FILTER (WHERE t = (SELECT max(t) FROM sus_samples WHERE rate = $rate)),
	count(DISTINCT worker_pid) > 1 OR count(*) <> count(worker_pid) OR bool_or(worker_pid <> $pid)
FROM sus_samples WHERE rate = $rate;
UPDATE sus_runs SET lag_ok = lag_end <= greatest(2 * lag_warm, rate),
	mem_ok = mem_end_kb <= 1.2 * mem_warm_kb WHERE rate = $rate;
UPDATE sus_runs SET bounded = coalesce(lag_ok AND mem_ok AND NOT pid_changed
	AND catch_up_ms IS NOT NULL, false) WHERE rate = $rate;
INSERT INTO bench_raw (scenario, item, metric, unit, run, value, n)
	SELECT 'sustained', rate || ' tx/s target', m, u, 1, v, secs
	FROM sus_runs, LATERAL (VALUES
		('achieved rate (pgbench)', 'tx/s', achieved),
		('lag after warm-up (' || warm || ' s)', 'events', lag_warm),
		('lag at end', 'events', lag_end),
		('lag max', 'events', lag_max),
		('oldest unconsumed event at end', 'ms',
		 (SELECT max(oldest_ms) FROM sus_samples s
		  WHERE s.rate = sus_runs.rate AND t >= secs - 2 * $step)),
		('worker RssAnon + DSA after warm-up (' || warm || ' s)', 'kB', mem_warm_kb),
		('worker RssAnon + DSA at end', 'kB', mem_end_kb),
		('state rows at end', 'rows',
		 (SELECT state_rows FROM sus_samples s WHERE s.rate = sus_runs.rate ORDER BY t DESC LIMIT 1)),
		('source size at end (retention 2 min)', 'kB',
		 (SELECT source_kb FROM sus_samples s WHERE s.rate = sus_runs.rate ORDER BY t DESC LIMIT 1)),
		('catch-up after producer stopped', 'ms', catch_up_ms)) x(m, u, v)
	WHERE rate = $rate;
SELECT streamagg.drop_query('$q', drop_sink => true);
SELECT streamagg.set_retention('$src', NULL);
DROP TABLE $src;
SQL
		case $(sql "SELECT CASE WHEN bounded THEN 'bounded'
		            WHEN lag_ok AND NOT pid_changed AND catch_up_ms IS NOT NULL THEN 'memory'
		            ELSE 'lag' END FROM sus_runs WHERE rate = $rate") in
		bounded) log "  $rate tx/s: bounded (achieved $tps tx/s)" ;;
		memory) log "  $rate tx/s: lag bounded but worker memory grew (achieved $tps tx/s)" ;;
		*)
			log "  $rate tx/s: lag not bounded (achieved $tps tx/s); higher rates skipped"
			break
			;;
		esac
	done
}

# The lag and memory series of scenario 5, one line every ~10% of the run.
sustained_report() {
	local every=$((sustain_secs / 10 / 5 * 5))
	((every >= 5)) || every=5
	cat <<SQL
SELECT r.rate AS target,
       round(r.achieved::numeric, 1) || ' (' || round(100 * r.achieved / r.rate) || '%)' AS achieved,
       CASE WHEN r.bounded THEN 'bounded' ELSE 'NOT bounded' END AS verdict,
       r.lag_warm || ' -> ' || r.lag_end || CASE WHEN r.lag_ok THEN ' ok' ELSE ' GROWS' END AS "lag W -> end",
       round(r.mem_warm_kb / 1024.0, 1) || ' -> ' || round(r.mem_end_kb / 1024.0, 1) || ' MB'
	       || CASE WHEN r.mem_ok THEN ' ok' ELSE ' GROWS' END AS "worker mem W -> end",
       CASE WHEN r.pid_changed THEN 'CHANGED' ELSE 'same' END AS worker_pid,
       coalesce(round(r.catch_up_ms::numeric) || ' ms', 'no (600 s)') AS catch_up,
       r.sched_lag AS pgbench_schedule_lag
FROM sus_runs r ORDER BY r.rate;
SELECT s.rate AS target, s.t AS t_s, s.lag AS lag_events, round(s.oldest_ms::numeric) AS oldest_ms,
       round(s.vmrss_kb / 1024.0, 1) AS vmrss_mb, round(s.anon_kb / 1024.0, 1) AS anon_mb,
       round(s.dsa_kb / 1024.0, 1) AS dsa_mb, s.state_rows,
       round(s.source_kb / 1024.0, 1) AS source_mb, s.retention_deleted
FROM sus_samples s JOIN sus_runs r USING (rate)
WHERE s.t % $every = 0 OR s.t = r.warm OR s.t = (SELECT max(t) FROM sus_samples x WHERE x.rate = s.rate)
ORDER BY s.rate, s.t;
SQL
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
	WHEN scenario LIKE 'worker%' AND metric IN ('time', 'aggregate_ms: read + aggregate')
	 THEN med / (SELECT med FROM m p
		WHERE p.scenario = m.scenario AND p.item = 'GROUP BY' AND p.metric = 'time')
	WHEN scenario = 'scaling' AND metric LIKE '%ms, state x%' THEN med / (SELECT med FROM m p
		WHERE p.scenario = m.scenario AND p.item = m.item
		AND p.metric = regexp_replace(m.metric, 'x[0-9]+$', 'x1'))
	WHEN metric LIKE '%/ group%' THEN med / $group_bytes
	WHEN scenario = 'stateless' THEN med / (SELECT med FROM m p
		WHERE p.scenario = m.scenario AND p.item = 'INSERT ... SELECT')
	WHEN scenario LIKE 'nexmark%' AND metric IN ('time', 'aggregate_ms: read + aggregate')
	 THEN med / (SELECT med FROM m p
		WHERE p.scenario = m.scenario AND p.item = 'GROUP BY' AND p.metric = 'time')
	WHEN scenario = 'pool_catchup' AND item LIKE 'PostgreSQL%' THEN med / (SELECT med FROM m p
		WHERE p.scenario = m.scenario AND p.item = m.item AND p.metric = 'time, one session(s)')
	WHEN scenario = 'pool_catchup' AND unit = 'ms' THEN med / (SELECT med FROM m p
		WHERE p.scenario = m.scenario AND p.item LIKE 'one worker%' AND p.metric = m.metric)
	WHEN scenario = 'sustained' AND metric LIKE '% at end' AND unit IN ('events', 'kB')
	 AND metric NOT LIKE 'source%' THEN med / nullif((SELECT med FROM m p
		WHERE p.scenario = m.scenario AND p.item = m.item
		AND p.metric LIKE replace(m.metric, ' at end', '') || ' after warm-up%'), 0)
	END AS ratio,
	CASE
	WHEN scenario LIKE 'producer%' THEN 'cost vs plain table'
	WHEN scenario LIKE 'worker%' AND metric IN ('time', 'aggregate_ms: read + aggregate')
	 THEN 'time vs GROUP BY'
	WHEN scenario = 'scaling' AND metric LIKE '%ms, state x%' THEN 'vs state x1'
	WHEN metric LIKE '%/ group%' THEN 'vs key+states ($group_bytes B)'
	WHEN scenario = 'stateless' THEN 'time vs INSERT ... SELECT'
	WHEN scenario LIKE 'nexmark%' AND metric IN ('time', 'aggregate_ms: read + aggregate')
	 THEN 'time vs GROUP BY'
	WHEN scenario = 'pool_catchup' AND item LIKE 'PostgreSQL%' THEN 'time vs one session'
	WHEN scenario = 'pool_catchup' AND unit = 'ms' THEN 'time vs one worker'
	WHEN scenario = 'sustained' AND metric LIKE '% at end' AND unit IN ('events', 'kB')
	 AND metric NOT LIKE 'source%' THEN 'vs after warm-up'
	END AS ratio_to,
	CASE WHEN ((scenario LIKE 'worker%' OR scenario LIKE 'nexmark%') AND metric = 'time')
	       OR (scenario = 'pool_catchup' AND unit = 'ms')
	 THEN n / med * 1000 END AS events_per_s
	FROM m)
SELECT CASE scenario
       WHEN 'producer_multirow' THEN '1 producer, ' || n || '-row INSERT'
       WHEN 'producer_single' THEN '1 producer, 1-row tx x4 clients'
       WHEN 'latency' THEN '3 latency, trigger_interval 0'
       WHEN 'scaling' THEN '4 scaling'
       WHEN 'sustained' THEN '5 sustained, ' || n || ' s'
       WHEN 'stateless' THEN '6 stateless move, ' || n || ' events'
       WHEN 'pool_catchup' THEN '8a pool, 4 queries catching up'
       WHEN 'pool_latency' THEN '8b pool, many queries, 1 source'
       ELSE CASE WHEN scenario LIKE 'nexmark%' THEN '7 nexmark ' || replace(replace(
              substr(scenario, 9), 'nexmark_', 'Nexmark density, '), 'realistic_', 'realistic density, ')
              || ', ' || n || ' events' ELSE
            '2 worker, ' || replace(replace(replace(replace(substr(scenario, 8), 'ev_', ' events, '),
                                     'keys', ' keys'), '_text', ' (text keys, numeric)'),
                                     '000000 ', 'e6 ') END END AS scenario,
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
	-- the budget: aggregating a batch (reading it and updating the state,
	-- progress.aggregate_ms) against GROUP BY over the same rows
	SELECT 'worker: aggregating <= GROUP BY time, ' || substr(g.scenario, 8),
	       round((s.med / g.med)::numeric, 2) || 'x', s.med <= g.med
	FROM m g JOIN m s ON s.scenario = g.scenario AND s.item = 'streamagg process()'
	 AND s.metric = 'aggregate_ms: read + aggregate'
	WHERE g.scenario LIKE 'worker%' AND g.item = 'GROUP BY'
	UNION ALL
	-- not a line of DESIGN.md: the whole trigger also writes the sink and
	-- the state log, which GROUP BY does not, so it is judged against the
	-- alternative that writes the same sink, the recompute upsert; the
	-- ratio to GROUP BY is shown beside it
	SELECT 'worker: whole process() <= recompute upsert, ' || substr(g.scenario, 8),
	       round((s.med / u.med)::numeric, 2) || 'x (' || round((s.med / g.med)::numeric, 2)
	       || 'x GROUP BY, which writes nothing)', s.med <= u.med
	FROM m g JOIN m s ON s.scenario = g.scenario AND s.item = 'streamagg process()' AND s.metric = 'time'
	JOIN m u ON u.scenario = g.scenario AND u.item = 'recompute upsert' AND u.metric = 'time'
	WHERE g.scenario LIKE 'worker%' AND g.item = 'GROUP BY'
	UNION ALL
	SELECT 'latency p50 <= 20 ms, p99 <= 100 ms, ' || a.item,
	       round(a.med::numeric, 1) || ' / ' || round(c.med::numeric, 1) || ' ms',
	       a.med <= 20 AND c.med <= 100
	FROM m a JOIN m c ON c.scenario = a.scenario AND c.item = a.item AND c.metric = 'p99'
	WHERE a.scenario = 'latency' AND a.metric = 'p50'
	UNION ALL
	-- judged on the whole trigger; its phases say which part grew
	SELECT 'trigger cost flat (<= 1.5x) at 100x state, ' || x100.item,
	       round((x100.med / x1.med)::numeric, 2) || 'x (aggregate + state log '
	       || round((e100.med / e1.med)::numeric, 2) || 'x, '
	       || CASE WHEN s1.med < 0.05 THEN 'no sink rows'
	               ELSE 'sink ' || round((s100.med / s1.med)::numeric, 2) || 'x' END || ')',
	       x100.med / x1.med <= 1.5
	FROM m x1 JOIN m x100 ON x100.scenario = x1.scenario AND x100.item = x1.item
	 AND x100.metric = 'trigger ms, state x100'
	JOIN m e1 ON e1.scenario = x1.scenario AND e1.item = x1.item
	 AND e1.metric = 'aggregate + state log ms, state x1'
	JOIN m e100 ON e100.scenario = x1.scenario AND e100.item = x1.item
	 AND e100.metric = 'aggregate + state log ms, state x100'
	JOIN m s1 ON s1.scenario = x1.scenario AND s1.item = x1.item
	 AND s1.metric = 'sink ms, state x1'
	JOIN m s100 ON s100.scenario = x1.scenario AND s100.item = x1.item
	 AND s100.metric = 'sink ms, state x100'
	WHERE x1.scenario = 'scaling' AND x1.metric = 'trigger ms, state x1'
	UNION ALL
	-- DESIGN.md has no number for sustained load; the bar is the latency
	-- line's "thousands of single-row transactions per second".
	SELECT 'sustained: lag bounded, memory flat for ' || max(secs) || ' s at >= 1000 tx/s',
	       coalesce(round(max(achieved) FILTER (WHERE bounded))
	                || ' tx/s (target ' || max(rate) FILTER (WHERE bounded) || ')', 'no rate')
	       || ', ' || count(*) FILTER (WHERE bounded) || ' of ' || count(*) || ' rates bounded',
	       coalesce(max(achieved) FILTER (WHERE bounded) >= 1000, false)
	FROM sus_runs HAVING count(*) > 0
	UNION ALL
	-- 7: the two worker lines of scenario 2, on Nexmark's queries
	SELECT '7 nexmark ' || replace(substr(g.scenario, 9), '_', ' density, ')
	       || ': aggregating <= GROUP BY time',
	       round((s.med / g.med)::numeric, 2) || 'x', s.med <= g.med
	FROM m g JOIN m s ON s.scenario = g.scenario AND s.item = 'streamagg process()'
	 AND s.metric = 'aggregate_ms: read + aggregate'
	WHERE g.scenario LIKE 'nexmark%' AND g.item = 'GROUP BY' AND g.metric = 'time'
	UNION ALL
	SELECT '7 nexmark ' || replace(substr(g.scenario, 9), '_', ' density, ')
	       || ': whole process() <= recompute upsert',
	       round((s.med / u.med)::numeric, 2) || 'x (' || round((s.med / g.med)::numeric, 2)
	       || 'x GROUP BY)', s.med <= u.med
	FROM m g JOIN m s ON s.scenario = g.scenario AND s.item = 'streamagg process()' AND s.metric = 'time'
	JOIN m u ON u.scenario = g.scenario AND u.item = 'recompute upsert' AND u.metric = 'time'
	WHERE g.scenario LIKE 'nexmark%' AND g.item = 'GROUP BY' AND g.metric = 'time'
	UNION ALL
	-- 8a: issue 16, "four busy queries on a 2-core machine finish a backlog
	-- in about half the time one worker needs"
	SELECT '8a pool: 4 queries catch up in <= 0.6x one worker''s time',
	       round((p.med / o.med)::numeric, 2) || 'x (' || round(p.med::numeric) || ' vs '
	       || round(o.med::numeric) || ' ms, ' || round(pw.med::numeric) || ' workers, '
	       || (SELECT setting FROM pg_settings WHERE name = 'max_worker_processes') || ' max_worker_processes'
	       || coalesce('; PostgreSQL''s GROUP BYs in 2 sessions: '
	                   || round((r2.med / r1.med)::numeric, 2) || 'x of 1', '') || ')',
	       p.med <= 0.6 * o.med
	FROM m o
	JOIN m p ON p.scenario = o.scenario AND p.item LIKE 'pool%' AND p.metric = o.metric
	JOIN m pw ON pw.scenario = o.scenario AND pw.item = p.item AND pw.metric = 'workers running at the end'
	LEFT JOIN m r1 ON r1.scenario = o.scenario AND r1.item = 'PostgreSQL: the 4 GROUP BYs'
	 AND r1.metric = 'time, one session(s)'
	LEFT JOIN m r2 ON r2.scenario = o.scenario AND r2.item = r1.item AND r2.metric = 'time, two session(s)'
	WHERE o.scenario = 'pool_catchup' AND o.item LIKE 'one worker%' AND o.metric = 'time until all 4 caught up'
	UNION ALL
	-- only at the rate: a producer that reached less than 90% of it fails the line
	SELECT '8b pool: p99 commit-to-sink <= 100 ms, ' || a.item,
	       round(a.med::numeric, 1) || ' / ' || round(c.med::numeric, 1) || ' ms (p50 / p99) at '
	       || round(ach.med::numeric) || ' tx/s achieved',
	       c.med <= 100 AND ach.med >= 0.9 * tgt.med
	FROM m a JOIN m c ON c.scenario = a.scenario AND c.item = a.item AND c.metric = 'p99'
	JOIN m ach ON ach.scenario = a.scenario AND ach.item = a.item AND ach.metric = 'achieved rate (pgbench)'
	JOIN m tgt ON tgt.scenario = a.scenario AND tgt.item = a.item AND tgt.metric = 'target rate'
	WHERE a.scenario = 'pool_latency' AND a.metric = 'p50'
	UNION ALL
	-- DESIGN.md has no separate number: the latency bound, for the last event
	SELECT '8b pool: catch-up after producers stop <= 100 ms, ' || a.item,
	       round(a.med::numeric, 1) || ' ms (wait() after pgbench exited: '
	       || round(w.med::numeric, 1) || ' ms)', a.med <= 100
	FROM m a JOIN m w ON w.scenario = a.scenario AND w.item = a.item
	 AND w.metric LIKE 'catch-up: wait()%'
	WHERE a.scenario = 'pool_latency' AND a.metric LIKE 'catch-up: last event%'
	UNION ALL
	SELECT 'stateless move <= 1.2x INSERT ... SELECT, ' || s.n || ' events',
	       round((s.med / p.med)::numeric, 2) || 'x', s.med <= 1.2 * p.med
	FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med, max(n) AS n
	        FROM bench_raw WHERE scenario = 'stateless' AND item = 'streamagg process()') s,
	     m p WHERE p.scenario = 'stateless' AND p.item = 'INSERT ... SELECT'
	UNION ALL
SQL
	cat <<SQL
	SELECT 'state memory <= 2x key + states (progress, state x100)',
	       round(med::numeric, 0) || ' B vs $group_bytes B: ' || round((med / $group_bytes)::numeric, 2)
	       || 'x (DSA segments mapped: ' || coalesce(round((SELECT med FROM m d WHERE d.scenario = 'scaling'
	          AND d.metric = 'DSA mapped / group, state x100')::numeric, 0) || ' B', '?') || ')',
	       med / $group_bytes <= 2
	FROM m WHERE scenario = 'scaling' AND metric = 'state_memory_bytes / group, state x100')
SELECT line AS budget, measured, CASE WHEN holds THEN 'holds' ELSE 'FAILS' END AS verdict FROM b
SQL
}

# Scenario 7 per core beside the figures published for the whole Nexmark
# queries (events per second per core; sources in test/bench/README.md):
#   Flink 1.13, nexmark/nexmark README "Throughput/Cores" (100 M events,
#     8 TaskManagers on 3 x 8-core nodes, cores measured);
#   Flink and Feldera, feldera/feldera benchmark/README.md "16-core Nexmark
#     Streaming Performance" (events/s), divided by 16 here.
# They are NOT like for like: those are the whole queries (q5 and q7 with
# their joins) fed by an in-process generator; ours are the windowed
# aggregations over rows already in a table, with exactly-once sinks.
nexmark_report_sql() {
	cat <<'SQL'
WITH m AS (
	SELECT substr(scenario, 9) AS sd, item,
	       max(n) / (percentile_cont(0.5) WITHIN GROUP (ORDER BY value) / 1000) AS eps
	FROM bench_raw WHERE scenario LIKE 'nexmark%' AND metric = 'time' GROUP BY 1, 2),
pub(q, flink_nexmark, flink_feldera, feldera) AS (VALUES
	('q5', 22140, 661901 / 16, 6589786 / 16), ('q7', 12330, 281262 / 16, 3136763 / 16),
	('q11', 39700, 547783 / 16, NULL), ('q15', 72420, 912326 / 16, 3539322 / 16))
SELECT split_part(sd, '_', 2) AS query, split_part(sd, '_', 1) AS density,
       round(max(eps) FILTER (WHERE item = 'streamagg process()')) AS "streamagg process()",
       round(max(eps) FILTER (WHERE item = 'GROUP BY')) AS "GROUP BY",
       round(max(eps) FILTER (WHERE item = 'recompute upsert')) AS "recompute upsert",
       min(p.flink_nexmark) AS "Flink (nexmark README)",
       min(p.flink_feldera) AS "Flink (Feldera README)/16",
       min(p.feldera) AS "Feldera (its README)/16"
FROM m JOIN pub p ON p.q = split_part(sd, '_', 2)
GROUP BY 1, 2 ORDER BY min(array_position(ARRAY['q5', 'q7', 'q11', 'q15'], split_part(sd, '_', 2))), 2 DESC
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
	if [[ $scenarios == *5* ]]; then
		echo "             BENCH_SUSTAIN_SECS=$sustain_secs BENCH_SUSTAIN_RATES='$sustain_rates' BENCH_SUSTAIN_CLIENTS=$sustain_clients"
	fi
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
[[ $scenarios == *5* ]] && scenario_sustained
[[ $scenarios == *6* ]] && scenario_stateless
[[ $scenarios == *7* ]] && scenario_nexmark
[[ $scenarios == *8* ]] && scenario_pool
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
if [[ $scenarios == *5* ]]; then
	echo "== 5. sustained load: ${sustain_secs} s per rate, pgbench -c $sustain_clients single-row tx, trigger_interval '0', =="
	echo "==    1-minute windows x 100 keys, watermark 1 minute, retention 2 minutes on the source =="
	sustained_report | psql_q -P footer=off -f -
	echo "lag = committed events not yet consumed (exact: source rows outside the query's consumed snapshot);"
	echo "W = warm-up ($sustain_warm s); lag bounded if lag at end (max of last 3 samples) <= max(2x lag at W, 1 s of events);"
	echo "worker mem = RssAnon + DSA mapped of the streamagg worker, flat if end <= 1.2x at W (VmRSS includes"
	echo "        the shared buffers it touched, so it grows towards shared_buffers without a leak)."
	echo
fi
if [[ $scenarios == *7* ]]; then
	echo "== 7. nexmark: events per second per core (one process, parallel query off) =="
	nexmark_report_sql | psql_q -P footer=off -f -
	echo "published figures: the WHOLE Nexmark queries (q5, q7 with their joins), generator in-process,"
	echo "        other machines; ours: the windowed aggregations only, rows already in a table, exactly-once"
	echo "        sinks. Sources and machines in test/bench/README.md. Not like for like."
	echo
fi
echo "== budget (DESIGN.md section 6) =="
budget_sql | psql_q -P footer=off -f -
echo "(total time $((SECONDS - t_start)) s)"
if [[ $(so_sum) != "$so_at_start" ]]; then
	echo "note: $so_path was reinstalled during the run; the cluster kept the library it loaded at start"
fi

if [[ -n $plot ]]; then
	# Throughput of scenario 2 and latency curves of scenario 3 (and the lag
	# of scenario 5, when it ran), as CSV files for test/bench/plot.gp.
	psql_q -At -c "COPY (SELECT regexp_replace(substr(scenario, 8), '^(\\d+)ev_(\\d+)keys$', '\\1 ev, \\2 keys'),
		percentile_cont(0.5) WITHIN GROUP (ORDER BY n / value * 1000) FILTER (WHERE item = 'streamagg process()'),
		percentile_cont(0.5) WITHIN GROUP (ORDER BY n / value * 1000) FILTER (WHERE item = 'GROUP BY'),
		percentile_cont(0.5) WITHIN GROUP (ORDER BY n / value * 1000) FILTER (WHERE item = 'recompute upsert')
		FROM bench_raw WHERE scenario LIKE 'worker%' AND metric = 'time'
		GROUP BY scenario ORDER BY min(ord)) TO STDOUT WITH (FORMAT csv)" >"$tmp/plot_worker.csv"
	psql_q -At -c "COPY (SELECT rate, pct, ms FROM lat_curve ORDER BY rate, pct) TO STDOUT WITH (FORMAT csv)" >"$tmp/plot_latency.csv"
	psql_q -At -c "COPY (SELECT rate, t, lag FROM sus_samples ORDER BY rate, t) TO STDOUT WITH (FORMAT csv)" >"$tmp/plot_lag.csv"
	gnuplot -e "dir='$tmp'; out='$plot'; latency_rates='$latency_rates'; sustain_rates='$(sql "SELECT string_agg(rate::text, ' ' ORDER BY rate) FROM sus_runs")'" \
		"$repo/test/bench/plot.gp"
	echo "plot written to $plot"
fi

if [[ -n $csv ]]; then
	{ report_sql | sed '1s/^/COPY (/'; echo ") TO STDOUT WITH (FORMAT csv, HEADER)"; } |
		tr '\n' ' ' | psql_q -f - >"$csv"
	echo "CSV written to $csv"
fi
