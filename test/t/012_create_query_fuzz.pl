# Fuzz test of streamagg.create_query (DESIGN.md 2, 3.6, 3.9): thousands of
# calls mixing valid and hostile values in every parameter (empty, very long,
# quotes, injections, unbalanced parentheses, comments, unicode, control
# bytes, existing and missing relations, columns and functions, subqueries,
# window and set-returning functions, DISTINCT / ORDER BY in aggregates,
# absurd intervals, mutations of valid calls, swapped, repeated, misspelled
# and positional parameters, wrong types; filters, joins, stateless columns,
# dedup keys, time zones, idle timeouts, late sinks and batch bounds), 90% as
# an unprivileged role, 10% as superuser.  The oracle, per call:
#
#   - the server never crashes: no lost connection, no "terminated by
#     signal" in the log, postmaster start time unchanged (a crash is
#     recorded against the call in flight and the run goes on);
#   - a failed call raises a clear error: SQLSTATE not XX000, no message of
#     an internal elog ("cache lookup failed", ...), no "(null)", and no
#     error of streamagg's own generated SQL or catalog leaking out (its
#     CREATE TABLE / CREATE INDEX / INSERT INTO streamagg.query_def failing,
#     a constraint violation), except permission and resource limits;
#   - a failed call creates nothing: a catalog snapshot (relations, columns,
#     defaults, indexes, triggers, constraints, types, functions, schemas,
#     roles, every streamagg table, the canary table) is the same before the
#     call and after its transaction;
#   - an accepted call made a sane query: one new row, visible in
#     streamagg.queries, with at least one aggregate; a default sink named
#     exactly as the query (an explicit sink name follows PostgreSQL's
#     identifier rules); no temporary source or sink (workers cannot see
#     them); the source has its xid8 column and the trigger calling
#     streamagg.source_committed; every stored interval, computed exactly,
#     fits in int64 microseconds and obeys DESIGN.md 3.6; process() runs
#     once and consumes every row of the source (without max_batch_rows);
#     the sink's windows lie inside the timestamp range and have the
#     window's width (but calendar windows, whose days and months vary); then
#     drop_query(drop_sink => true) leaves nothing behind but the source's
#     streamagg_xid column and index (README: they stay), and the session's
#     search_path is unchanged.
#
# A query whose rows fall into more than 20 000 windows each (size / slide)
# is paused at once and not processed: such a trigger grows memory without
# bound and does not answer to cancel (a 1 us slide took 9.5 GB in two
# minutes); above 10^6 windows per row its acceptance is a finding.
#
# Every call runs in its own transaction (server side, in the procedure
# fuzz_one, with a subtransaction around create_query), many calls per psql
# session.  Each call's SQL is derived from (seed, call number) alone, so a
# call can be replayed alone:
#
#   FUZZ_SEED=123 FUZZ_CALLS=3000   seed and number of calls (default: the
#                                   suite's fixed seed 20241201, 3000 calls)
#   FUZZ_ONLY=17,42                 run only these calls of that seed
#
# `make fuzz [SEED=n] [CALLS=n]` runs this file alone with a random seed,
# printed (as a non-root user: initdb refuses root).  Findings are printed
# with seed, call number and exact SQL (abridged past 400 bytes), grouped by
# kind and message; tmp_check/fuzz-findings-<seed>.txt has them all, each
# with its full SQL.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use Encode ();
use JSON::PP ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;
use Time::HiRes ();

my $SEED = $ENV{FUZZ_SEED} // 20241201;
my $CALLS = $ENV{FUZZ_CALLS} // 3000;
my %ONLY = map { $_ => 1 } grep { /^\d+$/ } split /[ ,]+/, ($ENV{FUZZ_ONLY} // '');
die "FUZZ_SEED must be a non-negative integer" unless $SEED =~ /^\d+$/;
die "FUZZ_CALLS must be a positive integer" unless $CALLS =~ /^\d+$/ && $CALLS > 0;

diag("create_query fuzz: seed $SEED, $CALLS calls"
	  . (%ONLY ? ', only ' . join(',', sort { $a <=> $b } keys %ONLY) : '')
	  . " (rerun: FUZZ_SEED=$SEED FUZZ_CALLS=$CALLS, or make fuzz SEED=$SEED CALLS=$CALLS)");

my $started = Time::HiRes::time();

# ---------------------------------------------------------------------------
# The node: crash restarts on (so that a crash is a finding, not the end of
# the run), statements not logged (thousands of long calls), SQLSTATE and
# backend type in each log line (to find internal errors of the workers).
# ---------------------------------------------------------------------------
my $node = StreamaggTest->new_node(
	'create_query_fuzz',
	'restart_after_crash = on',
	'log_statement = none',
	"log_line_prefix = '%m [%p] %e %b %q%a '",
	'max_worker_processes = 16');
$node->safe_psql('postgres',
	q{CREATE DATABASE fuzz ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0});
$node->safe_psql('fuzz', 'CREATE EXTENSION streamagg');

my $LONG63 = 'p' x 63;     # a sink that fits, named as any longer p... name truncates
my $LONGSRC = 's' x 63;    # a source with a name of 63 bytes

# Fixtures.  Most objects belong to the unprivileged role "fuzz", which runs
# 90% of the calls; the rest belong to postgres (not owned, not granted).
my $base_rows = q{
	SELECT '2024-05-01 10:00+00'::timestamptz + g * interval '7 minutes',
		   '2024-05-01 10:00'::timestamp + g * interval '7 minutes',
		   (ARRAY['a', 'b', NULL, 'c'])[g % 4 + 1], g, g * 1.5, g % 3 = 0
	  FROM generate_series(1, 12) g
	UNION ALL SELECT NULL, NULL, 'a', 100, 1, true};
$node->safe_psql(
	'fuzz', qq{
	CREATE ROLE fuzz LOGIN;
	GRANT CREATE ON SCHEMA public TO fuzz;
	CREATE SCHEMA fz_closed;               -- no CREATE for fuzz
	SET ROLE fuzz;
	CREATE TABLE base (ts timestamptz, lts timestamp, k text, v int, amount numeric, ok bool);
	CREATE DOMAIN tsdom AS timestamptz;
	CREATE TABLE ev (ts timestamptz, lts timestamp, k text, v int, amount numeric, ok bool,
					 dts tsdom, d date, p point, j json, arr int[],
					 "Event Time" timestamptz, "odd ""col""" text);
	INSERT INTO ev (ts, lts, k, v, amount, ok) $base_rows;
	UPDATE ev SET dts = ts, d = ts::date, p = point(v, v), j = json_build_object('v', v),
				  arr = ARRAY[v], "Event Time" = ts, "odd ""col""" = k;
	CREATE TABLE fresh1 (LIKE base);       -- never a source for long: see fuzz_one
	CREATE TABLE fresh2 (LIKE base);
	CREATE TABLE empty_src (LIKE base);
	CREATE UNLOGGED TABLE ev_unlogged (LIKE base);
	CREATE TABLE "odd ""src"" ; --" (LIKE base);
	CREATE TABLE "$LONGSRC" (LIKE base);
	CREATE TABLE src_badxid (LIKE base, streamagg_xid text);
	CREATE TABLE src_badtrig (LIKE base);
	CREATE FUNCTION noop_trigger() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN RETURN NULL; END\$\$;
	CREATE TRIGGER streamagg_source_committed AFTER INSERT ON src_badtrig
		FOR EACH STATEMENT EXECUTE FUNCTION noop_trigger();
	CREATE TABLE ev_gen (LIKE base, v2 int GENERATED ALWAYS AS (v * 2) STORED);
	CREATE TABLE ev_part (LIKE base) PARTITION BY RANGE (ts);
	CREATE TABLE ev_part_2024 PARTITION OF ev_part FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
	CREATE TABLE ev_part_def PARTITION OF ev_part DEFAULT;
	CREATE TABLE ev_inh (LIKE base);
	CREATE TABLE ev_inh_child () INHERITS (ev_inh);
	DO \$\$
	DECLARE t text;
	BEGIN
		FOREACH t IN ARRAY ARRAY['fresh1', 'fresh2', 'ev_unlogged', '"odd ""src"" ; --"',
								 '"$LONGSRC"', 'src_badxid', 'src_badtrig', 'ev_gen', 'ev_part',
								 'ev_inh', 'ev_inh_child'] LOOP
			EXECUTE 'INSERT INTO ' || t || ' (ts, lts, k, v, amount, ok) ' || \$r\$ $base_rows \$r\$;
		END LOOP;
	END \$\$;
	-- event times at the ends of the timestamp range (DESIGN.md 3.9)
	CREATE TABLE edge (LIKE base);
	INSERT INTO edge (ts, lts, k, v) VALUES
		('4714-11-24 00:00:00+00 BC', '4714-11-24 00:00:00 BC', 'min', 1),
		('294276-12-31 23:59:59.999999+00', '294276-12-31 23:59:59.999999', 'max', 2),
		('infinity', 'infinity', 'inf', 3), ('-infinity', '-infinity', 'ninf', 4),
		('1970-01-01 00:00+00', '1970-01-01 00:00', 'epoch', 5), (NULL, NULL, NULL, 6);
	CREATE VIEW ev_view AS SELECT * FROM ev;
	CREATE MATERIALIZED VIEW ev_mat AS SELECT * FROM base;
	CREATE SEQUENCE ev_seq;
	CREATE INDEX ev_k_idx ON ev (k);
	CREATE TYPE out_row AS (window_start timestamptz, window_end timestamptz, k text, n bigint, s bigint);
	-- sinks: one that fits the canonical shape (k; count(*) AS n, sum(v) AS s;
	-- tumbling windows on ts), one that does not, one with a 63-byte name
	CREATE TABLE fit_sink (window_start timestamptz, window_end timestamptz, k text, n bigint, s bigint,
						   UNIQUE NULLS NOT DISTINCT (window_start, window_end, k));
	CREATE TABLE "$LONG63" (LIKE fit_sink INCLUDING ALL);
	CREATE TABLE bad_sink (window_start timestamptz, window_end timestamptz, k text, n int);
	CREATE VIEW fit_view AS SELECT * FROM fit_sink;
	CREATE TABLE canary (x int);
	INSERT INTO canary VALUES (1), (2), (3);
	-- a dimension for joins, and a late sink that fits ev
	CREATE TABLE dim (k text PRIMARY KEY, grp int);
	INSERT INTO dim SELECT 'k' || i, i % 3 FROM generate_series(0, 20) i;
	CREATE TABLE late_ev (LIKE ev, late_batch_id bigint, late_watermark timestamptz);
	-- function sinks and aggregates
	CREATE FUNCTION deliver(batch_id bigint, rows out_row[]) RETURNS void LANGUAGE sql AS 'SELECT';
	CREATE FUNCTION deliver_wrong(bigint, int[]) RETURNS void LANGUAGE sql AS 'SELECT';
	CREATE FUNCTION deliver_text(bigint, text) RETURNS void LANGUAGE sql AS 'SELECT';
	CREATE FUNCTION deliver_setof(bigint, out_row[]) RETURNS SETOF int LANGUAGE sql AS 'SELECT 1';
	CREATE PROCEDURE deliver_proc(bigint, out_row[]) LANGUAGE sql AS 'SELECT';
	CREATE FUNCTION deliver(int) RETURNS void LANGUAGE sql AS 'SELECT';
	CREATE FUNCTION plus1(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT \$1 + 1';
	CREATE AGGREGATE my_sum(int) (SFUNC = int4pl, STYPE = int4, INITCOND = '0');
	CREATE AGGREGATE my_sum_comb(int) (SFUNC = int4pl, STYPE = int4, COMBINEFUNC = int4pl,
									   INITCOND = '0');
	RESET ROLE;
	CREATE TABLE other_src (LIKE base);    -- SELECT granted, not owned
	INSERT INTO other_src (ts, lts, k, v, amount, ok) $base_rows;
	GRANT SELECT ON other_src TO fuzz;
	CREATE TABLE secret (LIKE base);       -- nothing granted
	CREATE TABLE fit_noins (LIKE fit_sink INCLUDING ALL);
	GRANT SELECT ON fit_noins TO fuzz;
	CREATE FUNCTION secret_fn(int) RETURNS int LANGUAGE sql AS 'SELECT \$1';
	REVOKE EXECUTE ON FUNCTION secret_fn(int) FROM PUBLIC;
	CREATE AGGREGATE secret_agg(int) (SFUNC = int4pl, STYPE = int4, COMBINEFUNC = int4pl,
									  INITCOND = '0');
	REVOKE EXECUTE ON FUNCTION secret_agg(int) FROM PUBLIC;
	CREATE FUNCTION deliver_noexec(bigint, public.out_row[]) RETURNS void LANGUAGE sql AS 'SELECT';
	REVOKE EXECUTE ON FUNCTION deliver_noexec(bigint, public.out_row[]) FROM PUBLIC;
	-- a query that stays: duplicate names, a source with a query
	SET ROLE fuzz;
	SELECT streamagg.create_query(name => 'persist_q', source => 'ev', event_time => 'ts',
		aggregates => 'count(*) AS n', output_mode => 'complete');
	RESET ROLE;
});

# The oracle, server side.
$node->safe_psql(
	'fuzz', q{
	CREATE TABLE fuzz_result (
		n int PRIMARY KEY, as_super bool, outcome text, sqlstate text, message text,
		detail text, hint text, context text, anomalies text[] NOT NULL DEFAULT '{}',
		info text, started_at timestamptz, finished_at timestamptz);

	-- Everything a create_query could create, change or leave behind, one
	-- line per object: "kind|relation|what" (raw catalog columns: cheap).
	CREATE FUNCTION fuzz_relname(oid) RETURNS text LANGUAGE sql STABLE AS
		$$ SELECT n.nspname || '.' || c.relname FROM pg_class c
			 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1 $$;
	CREATE FUNCTION fuzz_snapshot() RETURNS text[] LANGUAGE plpgsql AS $$
	DECLARE
		lines text[];
		canary text := 'canary|canary|missing';
	BEGIN
		WITH rel AS (
			SELECT c.oid, n.nspname || '.' || c.relname AS name, c.relkind, c.relpersistence,
				   c.relam, n.nspname = 'pg_toast' AS toast
			  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			 WHERE c.oid >= 16384)
		SELECT array_agg(l ORDER BY l) INTO lines FROM (
			SELECT 'class|' || name || '|' || relkind::text || relpersistence::text
			  FROM rel WHERE relkind NOT IN ('i', 'I') AND NOT toast
			UNION ALL
			SELECT 'index|' || r.name || '|' || ir.name || ' ' || i.indkey::text || ' '
				   || (SELECT string_agg(a.attname, ',') FROM pg_attribute a
					    WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)) || ' '
				   || i.indclass::text || ' ' || i.indisunique || ' ' || ir.relam
			  FROM pg_index i JOIN rel r ON r.oid = i.indrelid JOIN rel ir ON ir.oid = i.indexrelid
			 WHERE NOT ir.toast
			UNION ALL
			SELECT 'attr|' || r.name || '|' || a.attname || ' ' || a.atttypid || ' ' || a.atttypmod
				   || ' ' || a.attnotnull
			  FROM pg_attribute a JOIN rel r ON r.oid = a.attrelid
			 WHERE a.attnum > 0 AND NOT a.attisdropped AND r.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
			UNION ALL
			SELECT 'default|' || r.name || '|' || a.attname || ' '
				   || md5(regexp_replace(d.adbin::text, ':location -?[0-9]+', '', 'g'))
			  FROM pg_attrdef d JOIN rel r ON r.oid = d.adrelid
			  JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
			 WHERE NOT a.attisdropped
			UNION ALL
			SELECT 'trigger|' || coalesce(r.name, t.tgrelid::text) || '|'
				   || t.tgname || ' ' || t.tgfoid || ' ' || t.tgenabled::text
			  FROM pg_trigger t LEFT JOIN rel r ON r.oid = t.tgrelid WHERE t.oid >= 16384
			UNION ALL
			SELECT 'constraint|' || coalesce(r.name, c.conrelid::text) || '|'
				   || c.conname || ' ' || c.contype::text || ' ' || coalesce(c.conkey::text, '')
			  FROM pg_constraint c LEFT JOIN rel r ON r.oid = c.conrelid WHERE c.oid >= 16384
			UNION ALL
			SELECT 'type|' || t.typnamespace || '.' || t.typname || '|' || t.typtype::text
			  FROM pg_type t WHERE t.oid >= 16384
			UNION ALL
			SELECT 'proc|' || p.pronamespace || '.' || p.proname || '(' || p.proargtypes::text || ')|'
				   || p.proowner
			  FROM pg_proc p WHERE p.oid >= 16384
			UNION ALL
			SELECT 'namespace|' || n.nspname || '|' FROM pg_namespace n WHERE n.oid >= 16384
			UNION ALL
			SELECT 'role|' || r.rolname || '|' || r.rolsuper FROM pg_authid r WHERE r.oid >= 16384
			UNION ALL
			SELECT 'query_def|' || d.query_id || '|' || d.name || ' ' || coalesce(d.sink::oid::text, '-')
			  FROM streamagg.query_def d
			UNION ALL
			SELECT 'checkpoint|' || query_id || '|' FROM streamagg.checkpoint
			UNION ALL
			SELECT 'state_log|' || query_id || '|' || batch_id || ' ' || part FROM streamagg.state_log
			UNION ALL
			SELECT 'batch_log|' || query_id || '|' || batch_id FROM streamagg.batch_log
			UNION ALL
			SELECT 'retention|' || source::oid || '|' FROM streamagg.retention) s(l);
		IF to_regclass('public.canary') IS NOT NULL THEN
			SELECT 'canary|canary|' || count(*) || ' ' || coalesce(sum(x), 0)
			  INTO canary FROM public.canary;
		END IF;
		RETURN lines || canary;
	END $$;

	-- What changed between two snapshots, as "added: ..." / "removed: ...";
	-- "allowed" relations may gain their streamagg_xid column and index.
	CREATE FUNCTION fuzz_diff(pre text[], post text[], allowed text[] DEFAULT '{}')
	RETURNS text[] LANGUAGE sql AS $$
		SELECT CASE WHEN pre = post THEN '{}'::text[] ELSE (
		SELECT coalesce(array_agg(d ORDER BY d), '{}') FROM (
			SELECT 'added: ' || l FROM unnest(post) l
			 WHERE l <> ALL (pre)
			   AND NOT (l LIKE '%streamagg_xid%' AND split_part(l, '|', 2) = ANY (allowed))
			UNION ALL
			SELECT 'removed: ' || l FROM unnest(pre) l WHERE l <> ALL (post)) s(d)) END $$;

	-- Exact microseconds of an interval without months (a day is 24 hours).
	CREATE FUNCTION fuzz_usec(iv interval) RETURNS numeric LANGUAGE sql AS
		$$ SELECT extract(epoch FROM iv) * 1000000 $$;

	-- One call: create_query (as role fuzz unless p_super) in a
	-- subtransaction; then the checks of the file header, each step in its
	-- own transaction; one row in fuzz_result.
	CREATE PROCEDURE fuzz_one(p_n int, p_super bool, p_sql text, p_sink text)
	LANGUAGE plpgsql AS $proc$
	DECLARE
		pre text[];
		post text[];
		anomalies text[] := '{}';
		st text; msg text; det text; hnt text; ctx text;
		ok bool := false;
		started timestamptz := clock_timestamp();
		path_before text := current_setting('search_path');
		q streamagg.query_def;
		nq int;
		family text[];
		sink_requested text;
		ident text[];
		sink_pre bool;
		late_pre bool;
		src_rows bigint;
		consumed bigint;
		bad bigint;
		iv_name text;
		iv interval;
		usec numeric;
		size_usec numeric;
		slide_usec numeric;
		info text;
		windows_per_row numeric;
	BEGIN
		pre := fuzz_snapshot();
		BEGIN
			IF NOT p_super THEN
				SET LOCAL ROLE fuzz;
			END IF;
			EXECUTE p_sql;
			ok := true;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
				det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT, ctx = PG_EXCEPTION_CONTEXT;
		END;
		RESET ROLE;
		IF current_setting('search_path') IS DISTINCT FROM path_before THEN
			anomalies := anomalies || ('session search_path changed to '
									   || current_setting('search_path'));
			PERFORM set_config('search_path', path_before, false);
		END IF;

		IF NOT ok THEN
			-- nothing half-created, as seen once the call's transaction committed
			INSERT INTO fuzz_result VALUES (p_n, p_super, 'error', st, msg, det, hnt, ctx,
											anomalies, NULL, started, NULL);
			COMMIT;
			post := fuzz_snapshot();
			UPDATE fuzz_result r SET anomalies = r.anomalies || fuzz_diff(pre, post),
								   finished_at = clock_timestamp()
			 WHERE n = p_n;
			COMMIT;
			RETURN;
		END IF;

		-- accepted: exactly one new query, visible, with a sane definition
		SELECT count(*) INTO nq FROM streamagg.query_def d
		 WHERE ('query_def|' || d.query_id || '|' || d.name || ' ' || coalesce(d.sink::oid::text, '-'))
			   <> ALL (pre);
		IF nq <> 1 THEN
			anomalies := anomalies || format('%s new rows in streamagg.query_def', nq);
		END IF;
		SELECT d.* INTO q FROM streamagg.query_def d
		 WHERE ('query_def|' || d.query_id || '|' || d.name || ' ' || coalesce(d.sink::oid::text, '-'))
			   <> ALL (pre)
		 ORDER BY d.query_id DESC LIMIT 1;
		IF q.query_id IS NULL THEN
			INSERT INTO fuzz_result VALUES (p_n, p_super, 'created', NULL, NULL, NULL, NULL, NULL,
											anomalies || fuzz_diff(pre, fuzz_snapshot()),
											'no new query found', started, clock_timestamp());
			COMMIT;
			RETURN;
		END IF;
		info := format('query %s, name %s (%s bytes), source %s, sink %s, sink_function %s',
					   q.query_id, left(q.name, 80), octet_length(q.name), q.source::text,
					   coalesce(q.sink::text, '-'), coalesce(q.sink_function::text, '-'));
		IF NOT EXISTS (SELECT FROM streamagg.queries WHERE query_id = q.query_id) THEN
			anomalies := anomalies || 'not in streamagg.queries'::text;
		END IF;
		IF NOT EXISTS (SELECT FROM streamagg.checkpoint WHERE query_id = q.query_id) THEN
			anomalies := anomalies || 'no checkpoint row'::text;
		END IF;
		IF (q.aggregates_sql = '' OR q.aggregates_sql IS NULL) AND q.columns_sql IS NULL THEN
			anomalies := anomalies || 'accepted with no aggregate at all'::text;
		END IF;

		-- the sink named after the query, byte for byte (a sink named
		-- explicitly follows PostgreSQL's rules for identifiers: truncated)
		IF q.sink IS NOT NULL THEN
			BEGIN
				IF p_sink IS NOT NULL THEN
					EXECUTE 'SELECT (' || p_sink || ')::text' INTO sink_requested;
				END IF;
				ident := parse_ident(coalesce(sink_requested, q.name));
				IF ident[array_upper(ident, 1)] IS DISTINCT FROM
				   (SELECT relname::text FROM pg_class WHERE oid = q.sink) THEN
					IF sink_requested IS NOT NULL THEN
						info := info || ', explicit sink name truncated';
					ELSE
						anomalies := anomalies || format(
							'default sink is %s (%s bytes) but the query is named %s (%s bytes)',
							left(q.sink::text, 80),
							(SELECT octet_length(relname::text) FROM pg_class WHERE oid = q.sink),
							left(ident[array_upper(ident, 1)], 80),
							octet_length(ident[array_upper(ident, 1)]));
					END IF;
				END IF;
			EXCEPTION WHEN OTHERS THEN
				info := info || ', sink name not checked: ' || SQLERRM;
			END;
			IF (SELECT relpersistence FROM pg_class WHERE oid = q.sink) = 't' THEN
				anomalies := anomalies || 'temporary sink accepted (workers cannot see it; it dies with the session)'::text;
			END IF;
			sink_pre := (SELECT 'class|' || fuzz_relname(c.oid) || '|' || c.relkind::text || c.relpersistence::text
						   FROM pg_class c WHERE c.oid = q.sink) = ANY (pre);
			-- an existing sink starts empty, so that its rows are this query's
			IF sink_pre THEN
				EXECUTE format('DELETE FROM %s', q.sink::regclass);
			END IF;
		END IF;

		-- the source is prepared
		IF (SELECT relpersistence FROM pg_class WHERE oid = q.source) = 't' THEN
			anomalies := anomalies || 'temporary source accepted (workers cannot see it; it dies with the session)'::text;
		END IF;
		IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = q.source
						 AND attname = 'streamagg_xid' AND atttypid = 'xid8'::regtype
						 AND NOT attisdropped) THEN
			anomalies := anomalies || format('source %s has no streamagg_xid column of type xid8 (it has %s)',
				q.source::text, (SELECT format_type(atttypid, atttypmod) FROM pg_attribute
								  WHERE attrelid = q.source AND attname = 'streamagg_xid'));
		END IF;
		IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = q.source
						 AND tgfoid = 'streamagg.source_committed'::regproc) THEN
			anomalies := anomalies || format('source %s has no trigger calling streamagg.source_committed',
											 q.source::text);
		END IF;

		-- the stored intervals, computed exactly, obey DESIGN.md 3.6
		FOREACH iv_name IN ARRAY ARRAY['window_size', 'window_slide', 'window_offset',
									   'session_gap', 'watermark', 'trigger_interval'] LOOP
			EXECUTE format('SELECT ($1).%I', iv_name) INTO iv USING q;
			CONTINUE WHEN iv IS NULL;
			usec := fuzz_usec(iv);
			IF abs(usec) > 9223372036854775807 THEN
				anomalies := anomalies || format('%s %s (%s us) accepted: beyond int64 microseconds',
												 iv_name, iv, usec);
			END IF;
		END LOOP;
		size_usec := fuzz_usec(q.window_size);
		slide_usec := coalesce(fuzz_usec(q.window_slide), size_usec);
		IF size_usec <= 0 OR slide_usec <= 0 OR slide_usec > size_usec
		   OR abs(fuzz_usec(q.window_offset)) >= slide_usec
		   OR fuzz_usec(q.session_gap) <= 0 OR fuzz_usec(q.watermark) < 0
		   OR fuzz_usec(q.trigger_interval) < 0 THEN
			anomalies := anomalies || format(
				'accepted intervals that DESIGN.md 3.6 rejects: size %s slide %s offset %s gap %s watermark %s trigger %s',
				q.window_size, q.window_slide, q.window_offset, q.session_gap, q.watermark,
				q.trigger_interval);
		END IF;

		-- A row falls into size/slide windows.  A trigger of millions of
		-- windows per row grows memory without bound and does not answer to
		-- statement_timeout or pg_terminate_backend (seen with a 1 us slide):
		-- such queries are paused before the worker sees them and not run.
		windows_per_row := ceil(size_usec / nullif(slide_usec, 0));
		IF windows_per_row > 20000 THEN
			PERFORM streamagg.pause(q.name);
			info := info || format(', paused and not processed: %s windows per row', windows_per_row);
			IF windows_per_row > 1000000 THEN
				anomalies := anomalies || format(
					'accepted %s windows per row (size %s, slide %s): its trigger cannot finish, and it does not answer to cancel',
					windows_per_row, q.window_size, q.window_slide);
			END IF;
		END IF;
		COMMIT;

		-- one trigger, in its own transaction: every row of the source
		IF windows_per_row IS NULL OR windows_per_row <= 20000 THEN
			BEGIN
				EXECUTE format('SELECT count(*) FROM %s', q.source::regclass) INTO src_rows;
				consumed := streamagg.process(q.name);
				IF q.trigger_interval IS NULL AND q.max_batch_rows IS NULL AND
				   consumed IS DISTINCT FROM src_rows THEN
					anomalies := anomalies || format('process() consumed %s of the %s rows of the source',
													 consumed, src_rows);
				END IF;
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
				anomalies := anomalies || format('process() failed: %s %s', st, msg);
			END;
		END IF;
		COMMIT;

		-- the sink's windows: inside the timestamp range, of the window's width
		IF q.sink IS NOT NULL AND (q.window_size IS NOT NULL OR q.session_gap IS NOT NULL) THEN
			BEGIN
				EXECUTE format($q$
					SELECT count(*) FROM %s
					 WHERE NOT (isfinite(window_start) AND isfinite(window_end)
								AND extract(epoch FROM window_start) >= -210866803200
								AND extract(epoch FROM window_end) <= 9224318016000
								AND window_start < window_end)
						OR ($1 IS NOT NULL AND NOT $3 AND (extract(epoch FROM window_end)
												- extract(epoch FROM window_start)) * 1000000 <> $1)
						OR ($2 IS NOT NULL AND (extract(epoch FROM window_end)
												- extract(epoch FROM window_start)) * 1000000 < $2)$q$,
							   q.sink::regclass)
					INTO bad USING size_usec, fuzz_usec(q.session_gap),
						q.time_zone IS NOT NULL OR extract(month FROM q.window_size) <> 0
						OR extract(year FROM q.window_size) <> 0;
				IF bad > 0 THEN
					anomalies := anomalies || format(
						'%s sink rows with a window outside the timestamp range or of the wrong width',
						bad);
				END IF;
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
				anomalies := anomalies || format('reading the sink failed: %s %s', st, msg);
			END;
		END IF;
		COMMIT;

		-- drop it: nothing may stay but the source's column and index
		SELECT array_agg(fuzz_relname(c)) INTO family
		  FROM (WITH RECURSIVE f(c) AS (
					SELECT q.source::oid
					UNION SELECT i.inhrelid FROM pg_inherits i JOIN f ON i.inhparent = f.c)
				SELECT c FROM f) s;
		-- a late sink the call created is the user's table (drop_query keeps
		-- it: it may serve several queries); the run drops it
		late_pre := q.late_sink IS NOT NULL AND
			(SELECT 'class|' || fuzz_relname(c.oid) || '|' || c.relkind::text || c.relpersistence::text
			   FROM pg_class c WHERE c.oid = q.late_sink) = ANY (pre);
		BEGIN
			PERFORM streamagg.drop_query(q.name, drop_sink => q.sink IS NOT NULL AND NOT sink_pre);
			IF q.late_sink IS NOT NULL AND NOT late_pre THEN
				EXECUTE format('DROP TABLE %s', q.late_sink::regclass);
			END IF;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
			anomalies := anomalies || format('drop_query() failed: %s %s', st, msg);
			DELETE FROM streamagg.query_def WHERE query_id = q.query_id;
			DELETE FROM streamagg.state_log WHERE query_id = q.query_id;
			IF q.sink IS NOT NULL AND NOT sink_pre THEN
				EXECUTE format('DROP TABLE IF EXISTS %s', q.sink::regclass);
			END IF;
		END;
		COMMIT;
		-- fixtures a call may have spoiled go back to what they were
		IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'src_badtrig'::regclass) THEN
			CREATE TRIGGER streamagg_source_committed AFTER INSERT ON src_badtrig
				FOR EACH STATEMENT EXECUTE FUNCTION noop_trigger();
			anomalies := anomalies || 'drop_query() dropped the user''s own trigger streamagg_source_committed of src_badtrig'::text;
		END IF;
		-- a fresh table goes back to never having been a source
		IF q.source::regclass::text IN ('fresh1', 'fresh2')
		   AND EXISTS (SELECT FROM pg_attribute WHERE attrelid = q.source
						 AND attname = 'streamagg_xid' AND NOT attisdropped)
		   AND NOT EXISTS (SELECT FROM streamagg.query_def WHERE source = q.source) THEN
			EXECUTE format('ALTER TABLE %s DROP COLUMN streamagg_xid', q.source::regclass);
			COMMIT;
		END IF;
		anomalies := anomalies || fuzz_diff(pre, fuzz_snapshot(), family);
		INSERT INTO fuzz_result VALUES (p_n, p_super, 'created', NULL, NULL, NULL, NULL, NULL,
										anomalies, info, started, clock_timestamp());
		COMMIT;
	END $proc$;
});

# ---------------------------------------------------------------------------
# The generator.  Every call is derived from (seed, call number) alone.
# Values are SQL expressions (mostly literals); undef means "omitted".
# ---------------------------------------------------------------------------
my @PARAMS = (
	qw(name source event_time aggregates group_by window_size
	  window_slide window_offset session_gap watermark output_mode sink
	  trigger_interval sink_function notify_channel sink_merge filter),
	'"join"', qw(columns dedup idle_timeout late_sink time_zone max_batch_rows));
my %IS_INTERVAL = map { $_ => 1 }
  qw(window_size window_slide window_offset session_gap watermark trigger_interval
  idle_timeout);

sub rnd { return int(rand($_[0])); }
sub pick { return $_[ rnd(scalar @_) ]; }
sub chance { return rand() < $_[0]; }

# A byte string as an SQL literal: plain when printable, else E'' with
# \x escapes (bytes that are not valid UTF-8 stay invalid: an input error).
sub lit
{
	my ($s) = @_;
	return 'NULL' unless defined $s;
	my $copy = $s;
	my $utf8 = utf8::decode($copy);
	if ($s !~ /[\x00-\x1f\x7f\\]/ && $utf8)
	{
		$s =~ s/'/''/g;
		return "'$s'";
	}
	my $out = '';
	for my $c (split //, $s)
	{
		my $o = ord $c;
		if ($c eq "'") { $out .= "''"; }
		elsif ($c eq '\\') { $out .= '\\\\'; }
		elsif ($o < 0x20 || $o == 0x7f || (!$utf8 && $o >= 0x80))
		{
			$out .= sprintf('\\x%02x', $o);
		}
		else { $out .= $c; }
	}
	return "E'$out'";
}

sub u8 { return Encode::encode_utf8($_[0]); }

sub rand_printable
{
	my ($len) = @_;
	return join '', map { chr(32 + rnd(95)) } 1 .. $len;
}

sub rand_unicode
{
	my ($len) = @_;
	my @ranges = ([ 0xa0, 0xff ], [ 0x370, 0x3ff ], [ 0x590, 0x5ff ], [ 0x300, 0x36f ],
		[ 0x4e00, 0x4fff ], [ 0x1f600, 0x1f64f ], [ 0x200b, 0x200f ], [ 0x202a, 0x202e ],
		[ 0xfeff, 0xfeff ], [ 0xfff0, 0xfffd ], [ 0x10000, 0x1007f ]);
	my $s = '';
	for (1 .. $len)
	{
		my $r = pick(@ranges);
		$s .= chr($r->[0] + rnd($r->[1] - $r->[0] + 1));
	}
	return u8($s);
}

sub rand_bytes
{
	my ($len) = @_;
	return join '', map { chr(1 + rnd(255)) } 1 .. $len;
}

# Hostile strings for any text parameter.
sub hostile_string
{
	my @fixed = (
		'', ' ', "\t", "\n", "\r\n", ';', "'", "''", '"', '""', '\\', '\\\\', '%s%s%s%n', '$1',
		'$$', '--', '/*', '*/', '/* x', '(', ')', '((((((((', '))))', ',', ',,', '.', '..',
		'NULL', 'null', 'DEFAULT', 'SELECT 1', 'true', '0', '-1', '1e309', 'NaN',
		"'); DROP TABLE canary; --", '"; DROP TABLE canary; --', 'x; DROP TABLE canary',
		'1; DELETE FROM canary', '$$; DROP TABLE canary; $$', ') ; DROP TABLE canary; --',
		'*/ DROP TABLE canary; /*', "x' OR '1'='1", 'x"y', '"x', 'x"', '""""',
		'ev', 'canary', 'pg_class', 'pg_catalog.pg_class', 'streamagg.query_def', 'nope',
		'public.nope', 'a.b.c', 'a.b.c.d', 'pg_temp.x', 'information_schema.tables',
		u8("\x{e9}t\x{e9}"), u8("\x{1F600}"), u8("\x{202E}gnp.exe"), u8("\x{FEFF}ev"),
		u8("e\x{0301}"), u8("\x{3042}\x{3044}\x{3046}"), u8("\x{FFFD}"), u8("\x{10FFFF}"),
		"\x01\x02\x03", "\x7f", "\xff\xfe", "\xc3\x28", "\xe2\x82", "ab\x00cd" =~ s/\x00//r,
		'x' x 63, 'x' x 64, 'y' x 100, 'z' x 9000, u8("\x{e9}" x 40));
	my $r = rnd(10);
	return pick(@fixed) if $r < 6;
	return rand_printable(1 + rnd(40)) if $r == 6;
	return rand_unicode(1 + rnd(30)) if $r == 7;
	return rand_bytes(1 + rnd(30)) if $r == 8;
	return rand_printable(8000 + rnd(2000));
}

# Interval expressions, valid and absurd.
sub interval_value
{
	my @good = ("'1 minute'", "'10 minutes'", "'5 minutes'", "'1 hour'", "'10 seconds'",
		"'1 second'", "'1 day'", "'30 seconds'", "'100 milliseconds'");
	my @odd = (
		"'0'", "'0 seconds'", "'-1 minute'", "'-1 microsecond'", "'1 microsecond'",
		"'2 microseconds'", "'0.5 microseconds'", "'1 month'", "'1 year'", "'1 mon -30 days'",
		"'12 months -1 year'", "'30 days'", "'1 day -86400 seconds'", "'1 day -1 microsecond'",
		"'-1 day 86400 seconds 1 microsecond'", "'178000000 years'", "'-178000000 years'",
		"'2147483647 days'", "'-2147483648 days'", "'106751991 days'", "'106751992 days'",
		"'106751991 days 4 hours'", "'2562047788 hours'", "'-2562047788 hours'",
		"'2147483647 days 2562047788 hours'", "'-2147483648 days -2562047788 hours'",
		"'9223372036854775807 microseconds'", "'1e300 seconds'", "'infinity'", "'-infinity'",
		"'P1D'", "'PT0.000001S'", "'@ 1 hour ago'", "'1 century'", "'1 millennium'",
		"'00:00:00.000001'", "'1'", "'abc'", "''", "' '", "'1 hour; DROP TABLE canary'",
		"'1 hour'::interval * 1e9", "make_interval(days => 2147483647)",
		"make_interval(secs => 1e-7)", "interval '1' hour", "'1 hour'::interval",
		"NULL::interval", "NULL", "'1 hour'::text", "5", "now() - now()",
		"'1 week'", "'23:59:59.999999'", "'-00:00:00.000001'", "'1 minute 1 month -1 month'");
	return chance(0.5) ? pick(@good) : pick(@odd);
}

my @SOURCES = ('ev', 'public.ev', '"ev"', 'EV', 'fresh1', 'fresh2', 'empty_src', 'ev_unlogged',
	'"odd ""src"" ; --"', $LONGSRC, 'src_badxid', 'src_badtrig', 'ev_gen', 'ev_part',
	'ev_part_2024', 'ev_inh', 'ev_inh_child', 'edge', 'pg_temp.ev_tmp', 'other_src');
my @BAD_SOURCES = ('"EV"', 'nope', 'public.nope', 'nope.ev', '', ' ', '-', '0', '1259',
	'16384', '4294967295', '-1', 'ev_view', 'ev_mat', 'ev_seq', 'ev_k_idx', 'secret', 'fit_view',
	'pg_class', 'pg_catalog.pg_proc', 'streamagg.query_def', 'streamagg.checkpoint',
	'information_schema.tables', 'ev; DROP TABLE canary', "ev'); DROP TABLE canary; --",
	'"ev; DROP TABLE canary"', 'ev.ev', 'a.b.c.d', "$LONG63$LONG63", "${LONG63}x", 'ev ', ' ev',
	'"ev', 'ev"', "${LONGSRC}x", 'pg_toast.pg_toast_1259', 'base', 'canary', 'fit_sink', 'out_row');
my @EVENT_TIMES = ('ts', 'ts', 'ts', 'lts', 'ts');
my @BAD_EVENT_TIMES = ('dts', 'd', 'k', 'v', 'amount', 'ok', 'p', 'j', 'arr', 'Event Time',
	'"Event Time"', 'odd "col"', 'TS', ' ts', 'ts ', '"ts"', 'ts::date', 'ts, ts', 'nope', '',
	'ctid', 'xmin', 'tableoid', 'streamagg_xid', '........pg.dropped.1........',
	'ts; DROP TABLE canary', 'now()', 'v2', 'x' x 100);
my @AGGREGATES = ('count(*) AS n, sum(v) AS s', 'count(*) AS n, sum(v) AS s',
	'count(*) AS n', 'sum(v) AS s', 'avg(amount) AS a', 'min(ts) AS first, max(ts) AS last',
	'count(*) FILTER (WHERE ok) AS good', 'stddev(v) AS sd, variance(v) AS var',
	'bool_and(ok) AS all_ok, bool_or(ok) AS any_ok', 'sum(v * 2) AS dbl',
	'count(k) AS "Weird Name"', 'corr(v, amount) AS c', 'bit_or(v) AS b',
	'my_sum(v) AS m', 'my_sum_comb(v) AS m', 'sum(plus1(v)) AS p', 'max(k) AS mk',
	'count(*)', 'sum(v), avg(v)', 'pg_catalog.count(*) AS n', 'max(lts) AS ml',
	'regr_slope(v, amount) AS rs', 'every(ok) AS e', 'count(*) AS "n; --"',
	'sum(amount) FILTER (WHERE v > 3) AS big');
my @BAD_AGGREGATES = ('', ' ', ',', 'count(*) AS n,', ',count(*)', 'count(*', 'count(*))',
	'((((', 'count(*) AS n, count(*) AS n', 'count(*), count(v)', 'count(DISTINCT k) AS d',
	'sum(DISTINCT v) AS d', 'sum(v ORDER BY ts) AS s', 'percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS p',
	'mode() WITHIN GROUP (ORDER BY k) AS m', 'rank() OVER () AS r', 'row_number() OVER (PARTITION BY k) AS r',
	'sum(v) OVER w AS s', 'generate_series(1, 3) AS g', 'sum(generate_series(1, v)) AS s',
	'count(*) + 1 AS c', 'v AS c', '1 AS one', 'now() AS t', 'NULL AS n', '*', 'ev.*',
	'(SELECT count(*) FROM ev) AS c', 'sum((SELECT 1)) AS s', 'count(*) FILTER (WHERE v IN (SELECT 1)) AS c',
	'exists(SELECT 1) AS e', 'array_agg(v) AS a', "string_agg(k, ',') AS s", 'json_agg(v) AS j',
	'jsonb_object_agg(k, v) AS j', 'xmlagg(xmlelement(name x)) AS x', 'range_agg(int4range(v, v + 1)) AS r',
	'sum(nope) AS s', 'sum(k) AS s', 'count(*) AS window_start', 'count(*) AS window_end',
	'count(*) AS k', 'count(*) AS streamagg_xid', 'count(*) AS ""', 'count(*) AS c; DROP TABLE canary; --',
	'count(*) AS c FROM canary', 'count(*) AS c FROM ev WHERE true', 'count(*) AS c FROM ev /*',
	"count(*) AS c FROM public.ev\n--", "count(*) AS c FROM ev AS x\n--", 'count(*) AS c FROM ev, canary',
	"count(*) AS c FROM ev GROUP BY k\n--", "count(*) AS c UNION SELECT 1\n--", 'count(*) AS c LIMIT 1',
	"count(*) AS c INTO t\n--", '/* comment */ count(*) AS c', 'count(*) AS c -- comment',
	'count(*) AS c /* unterminated', 'sum(sum(v)) AS s', 'sum(v) FILTER (WHERE sum(v) > 0) AS s',
	'grouping(k) AS g', 'count(*)::int AS c', 'CAST(count(*) AS int) AS c', 'max(p) AS mp',
	'max(j) AS mj', 'sum(secret_fn(v)) AS s', 'secret_agg(v) AS s', 'count(streamagg_xid) AS x',
	'max(xmin::text) AS x', 'min(tableoid) AS t', 'count(*) AS "' . ('a' x 70) . '"',
	'hll_add_agg(v) AS h', 'sum(v) AS s) FROM ev; DROP TABLE canary; --',
	'sum($1) AS s', 'sum(:v) AS s', 'count(*) FILTER (WHERE random() < 2) AS c',
	'count(*) AS c, ' x 1700 . 'count(*) AS z', join(', ', map { "count(*) AS c$_" } 1 .. 1700),
	u8("count(*) AS \"\x{f1}\x{2713}\x{1F600}\""), 'sum(v) AS "a""b"', 'max(ts) AS ts',
	'count(ALL v) AS c', 'sum(v) FILTER (WHERE ok) FILTER (WHERE ok) AS s', 'count(*) AS c WINDOW w AS ()',
	'sum(v)::bigint AS s', '-count(*) AS c', '(count(*)) AS c', 'count(*) COLLATE "C" AS c',
	'max(k COLLATE "C") AS c', 'max(k COLLATE "nope") AS c', 'count(*) AS c ORDER BY 1');
my @GROUP_BYS = ('k', 'k', 'k, v', 'lower(k) AS lk', "date_trunc('hour', ts) AS h", 'ok',
	'amount', 'v % 3 AS m', 'ARRAY[k] AS ka', 'ROW(k, v) AS r', 'ts::date AS day',
	'k COLLATE "C" AS kc', "'x' AS c", 'random() > 2 AS r', 'plus1(v) AS pv', 'lts');
my @BAD_GROUP_BYS = ('', ' ', 'k,', ',k', 'nope', 'count(*) AS c', 'row_number() OVER () AS r',
	'generate_series(1, 2) AS g', '(SELECT 1) AS s', 'v + 1', 'k, k', 'k AS window_start',
	'k AS n', 'point(v, v) AS pt', 'p', 'j', 'k COLLATE "nope" AS kc', 'NULL AS n', 'now() AS t',
	'k DESC', 'k ORDER BY k', "k FROM ev\n--", 'k FROM canary', 'k; DROP TABLE canary',
	'ev.k', 'ev.*', '*', 'k AS ""', 'k AS "' . ('g' x 80) . '"', 'secret_fn(v) AS s',
	'streamagg_xid', 'ctid', 'xmin', 'tableoid', 'k, ' x 1000 . 'v', '(((k)))', 'k)', '(k',
	'ts', 'ts, k', 'dts', 'Event Time', '"Event Time"', '"odd ""col"""', 'v2',
	'CASE WHEN k IS NULL THEN 1 END AS c', 'k::int AS bad_cast');
my @OUTPUT_MODES = ("'append'", "'update'", "'complete'");
my @BAD_OUTPUT_MODES = ("''", "'APPEND'", "'Update'", "' update'", "'update '", "'upsert'",
	'NULL', "'append; DROP TABLE canary'", "'complete" . "e" x 100 . "'", "'" . u8("\x{fc}pdate") . "'",
	"'update'::text", "'append'::name", "'update' || ''", '1', 'true');
my @SINK_FUNCTIONS = ("'deliver'", "'public.deliver'", "'deliver(bigint, out_row[])'",
	"'public.deliver(bigint, public.out_row[])'", "'deliver(int8, out_row[])'");
my @BAD_SINK_FUNCTIONS = ("'deliver(int)'", "'deliver('", "'deliver(bigint'", "'deliver()'",
	"'nope'", "'nope(bigint, out_row[])'", "''", "' '", "'-'", "'0'", "'1'", "'12345'",
	"'2147483647'", "'4294967295'", "'4294967296'", "'-1'", "'count'", "'pg_sleep'", "'now'",
	"'generate_series'", "'deliver_noexec'", "'deliver_proc'", "'deliver_setof'", "'deliver_wrong'",
	"'deliver_text'", "'deliver; DROP TABLE canary'",
	"'deliver''); DROP TABLE canary; --'", "'\"deliver\"'", "'DELIVER'", "'public.deliver.x'",
	"'streamagg.create_query'", "'streamagg.process'", "'pg_catalog.int8pl'", "'secret_fn'",
	"'deliver(bigint, out_row[]) extra'", "'deliver(bigint, nope[])'", "'deliver(bigint, out_row)'");
my $MERGE_OK = 'WHEN MATCHED THEN UPDATE SET n = s.n, s = s.s WHEN NOT MATCHED THEN INSERT '
  . '(window_start, window_end, k, n, s) VALUES (s.window_start, s.window_end, s.k, s.n, s.s)';
my @SINK_MERGES = ($MERGE_OK, 'WHEN MATCHED THEN DELETE', 'WHEN NOT MATCHED THEN DO NOTHING',
	'WHEN MATCHED AND s.n = 0 THEN DELETE WHEN MATCHED THEN UPDATE SET n = s.n');
my @BAD_SINK_MERGES = ('', ' ', 'garbage', 'WHEN MATCHED THEN DELETE; DROP TABLE canary',
	'WHEN MATCHED THEN DELETE; SELECT 1', 'WHEN MATCHED THEN UPDATE SET nope = 1',
	'WHEN MATCHED AND (SELECT count(*) FROM canary) > 0 THEN DELETE',
	'WHEN MATCHED THEN INSERT DEFAULT VALUES', '-- comment', '/*', ')', 'WHEN MATCHED THEN',
	'WHEN NOT MATCHED THEN INSERT VALUES (1, 2, 3, 4, 5, 6, 7)',
	'WHEN MATCHED THEN UPDATE SET n = (SELECT max(x) FROM canary)',
	'WHEN MATCHED THEN UPDATE SET n = $1', 'WHEN MATCHED THEN UPDATE SET n = s.n RETURNING *',
	'WHEN MATCHED THEN UPDATE SET n = secret_fn(1)', ') AS s ON true WHEN MATCHED THEN DELETE; --',
	'WHEN MATCHED THEN DELETE ' x 500);
my @NOTIFY_CHANNELS = ('fz_chan', 'chan', 'Chan With Space', 'c' x 63);
my @BAD_NOTIFY_CHANNELS = ('', 'c' x 64, 'x; DROP TABLE canary', "'", u8("\x{1F600}" x 16),
	u8("\x{1F600}" x 15), 'd' x 9000);
my @FILTERS = ('v > 0', 'ok', "k <> 'k1'", 'amount IS NOT NULL AND v % 2 = 0', 'true',
	'NOT ok OR v > 10', "lower(k) LIKE 'k%'");
my @BAD_FILTERS = ('', ' ', 'v', 'count(*) > 1', '(SELECT true)', 'row_number() OVER () > 1',
	'generate_series(1, 2) > 1', 'true; DROP TABLE canary', 'true) OR (true', 'true GROUP BY k',
	'nope > 1', "k = 'x' --", '/*', 'true ORDER BY 1', 'v > 0 LIMIT 1', 'ev.* IS NULL');
my @JOINS = ('JOIN dim d ON d.k = ev.k', 'LEFT JOIN dim d ON d.k = ev.k',
	'JOIN dim ON dim.k = ev.k LEFT JOIN dim d2 ON d2.grp = dim.grp',
	'INNER JOIN public.dim AS d ON d.k = lower(ev.k)');
my @BAD_JOINS = ('', ' ', 'JOIN ev e2 ON true', 'JOIN generate_series(1, 2) g ON true',
	'JOIN LATERAL (SELECT 1) x ON true', 'RIGHT JOIN dim d ON true', 'FULL JOIN dim d ON true',
	'JOIN dim USING (k)', 'CROSS JOIN dim', 'NATURAL JOIN dim', 'JOIN dim d ON true; DROP TABLE canary',
	'WHERE true', 'JOIN (SELECT * FROM dim) x ON true', 'JOIN dim d ON d.k = ev.k JOIN dim d ON true',
	'JOIN nope ON true', ', dim', 'JOIN dim d ON (SELECT true)', 'JOIN (dim d JOIN dim e ON true) ON true',
	'JOIN dim d ON count(*) > 0', 'JOIN ev_seq s ON true', 'JOIN canary c ON true');
my @COLUMNS = ('ts, k, v', 'ts, lower(k) AS lk, v * 2 AS v2', 'k', 'ts, amount', 'v, ok');
my @BAD_COLUMNS = ('', ' ', 'count(*) AS n', '(SELECT 1) AS x', 'ts, ts', 'generate_series(1, 2) AS g',
	'streamagg_xid', 'v + 1', 'ctid', 'row_number() OVER () AS r');
my @DEDUPS = ('k', 'k, v', 'v % 10', "date_trunc('hour', ts)", 'lower(k)');
my @BAD_DEDUPS = ('', ' ', 'p', 'count(*)', '(SELECT 1)', 'nope', 'j', 'arr, k');
my @TIME_ZONES = ("'UTC'", "'Europe/Berlin'", "'America/New_York'", "'Asia/Kolkata'");
my @BAD_TIME_ZONES = ("''", "'Mars/Base'", "'Europe/Berlin; DROP TABLE canary'", "repeat('x', 1000)");

# The call's name: unique by default, sometimes odd.
sub name_value
{
	my ($n) = @_;
	my @odd = (
		"FQ_$n", "fq $n", "fq.$n", "public.fq_$n", "pg_temp.fq_$n", "\"fq_$n\"", "fq_\"$n",
		"fq_$n" . ('x' x 70), $LONG63 . "_$n", $LONG63, 'persist_q', 'PERSIST_Q', u8("fq_$n\x{e9}\x{2713}"),
		u8("\x{fc}" x 40) . $n, "fq_$n; DROP TABLE canary; --", "fq_$n'); DROP TABLE canary; --",
		'', ' ', "fq_$n\n", "fz_closed.fq_$n", "streamagg.fq_$n", "nope.fq_$n", "pg_catalog.fq_$n",
		"fq_$n" . ('n' x 9000), "fq_$n" . rand_printable(9000), "fq_$n" . rand_unicode(3000),
		"fq_$n" . ('u' x 2800), "fq_$n.x.y.z", "fq_$n" . '%s%n', "canary", "ev", "fit_sink",
		"${LONG63}_sink");
	return lit(chance(0.75) ? "fq_$n" : pick(@odd));
}

# A valid-looking call from one of a few shapes.
sub template
{
	my ($n) = @_;
	my %c = (
		name => name_value($n),
		source => lit(chance(0.6) ? 'ev' : pick(@SOURCES)),
		event_time => lit(pick(@EVENT_TIMES)),
		aggregates => lit('count(*) AS n, sum(v) AS s'),
		group_by => lit('k'));
	my $shape = rnd(18);
	if ($shape <= 2)    # tumbling, update
	{
		%c = (%c, window_size => "'1 minute'", output_mode => "'update'");
	}
	elsif ($shape == 3)    # append with a watermark (output_mode left to its default)
	{
		%c = (%c, window_size => "'10 minutes'", watermark => "'5 minutes'");
		$c{output_mode} = "'append'" if chance(0.5);
	}
	elsif ($shape == 4)    # complete, no window
	{
		%c = (%c, output_mode => "'complete'");
	}
	elsif ($shape == 5)    # sliding with an offset
	{
		%c = (%c, window_size => "'10 minutes'", window_slide => "'5 minutes'",
			window_offset => "'1 minute'", output_mode => "'update'");
	}
	elsif ($shape == 6)    # sessions
	{
		%c = (%c, session_gap => "'5 minutes'", watermark => "'1 minute'",
			output_mode => pick("'append'", "'complete'"));
	}
	elsif ($shape == 7)    # function sink
	{
		%c = (%c, window_size => "'1 minute'", output_mode => "'update'",
			sink_function => chance(0.7) ? pick(@SINK_FUNCTIONS) : pick(@BAD_SINK_FUNCTIONS));
	}
	elsif ($shape == 8)    # custom MERGE into a new sink
	{
		%c = (%c, window_size => "'1 minute'", output_mode => "'update'",
			sink => lit("fs_$n"), sink_merge => lit(pick(@SINK_MERGES)));
	}
	elsif ($shape == 9)    # notifications, scheduled
	{
		%c = (%c, window_size => "'1 minute'", output_mode => "'update'",
			notify_channel => lit(pick(@NOTIFY_CHANNELS)),
			trigger_interval => pick("'1 second'", "'0'", "'100 ms'"));
	}
	elsif ($shape == 10)    # an existing sink
	{
		%c = (%c, window_size => "'1 minute'", output_mode => "'update'",
			sink => lit(pick('fit_sink', 'public.fit_sink', $LONG63, "${LONG63}_sink", 'fit_noins',
				'bad_sink', 'fit_view', 'persist_q')));
	}
	elsif ($shape == 12)    # a filter
	{
		%c = (%c, window_size => "'1 minute'", output_mode => "'update'",
			filter => lit(pick(@FILTERS)));
	}
	elsif ($shape == 13)    # a stream-static join
	{
		%c = (%c, window_size => "'1 minute'", output_mode => "'update'",
			'"join"' => lit(pick(@JOINS)), group_by => lit(pick('ev.k', 'd.grp', 'k')));
	}
	elsif ($shape == 14)    # stateless
	{
		%c = (%c, aggregates => 'NULL', group_by => undef, columns => lit(pick(@COLUMNS)),
			sink => lit("fs_$n"));
		$c{filter} = lit(pick(@FILTERS)) if chance(0.5);
	}
	elsif ($shape == 15)    # dedup, with or without aggregates
	{
		%c = (%c, dedup => lit(pick(@DEDUPS)), watermark => "'1 minute'",
			window_size => "'1 minute'", output_mode => "'update'");
		%c = (%c, aggregates => 'NULL', group_by => undef, window_size => undef,
			output_mode => undef, columns => lit('ts, k, v'), sink => lit("fs_$n"))
		  if chance(0.4);
	}
	elsif ($shape == 16)    # calendar windows, idle sources, the late sink
	{
		%c = (%c, window_size => pick("'1 day'", "'1 month'", "'7 days'", "'3 months'"),
			time_zone => pick(@TIME_ZONES), watermark => "'1 hour'", output_mode => "'update'");
		$c{idle_timeout} = pick("'1 second'", "'1 hour'") if chance(0.5);
		$c{late_sink} = lit('late_ev') if chance(0.5);
	}
	elsif ($shape == 17)    # bounded batches
	{
		%c = (%c, window_size => "'1 minute'", output_mode => "'update'",
			max_batch_rows => pick('1', '10', '1000'));
	}
	else    # the event-time column as a key, append
	{
		%c = (%c, group_by => lit(pick('ts, k', 'ts')), watermark => "'1 minute'");
	}
	if (chance(0.3))
	{
		$c{aggregates} = lit(pick(@AGGREGATES));
	}
	if (chance(0.2) && $shape != 6)
	{
		$c{group_by} = chance(0.3) ? undef : lit(pick(@GROUP_BYS));
	}
	if (chance(0.1)) { $c{sink} = lit("fs_$n"); }
	if (chance(0.1)) { $c{trigger_interval} = pick("'1 second'", "'0'", "'10 ms'"); }
	return \%c;
}

# The literal text inside a plain '...' literal, or undef.
sub unlit
{
	my ($e) = @_;
	return undef unless defined $e && $e =~ /^'(.*)'$/s;
	my $s = $1;
	return undef if $s =~ /(?<!')'(?!')/;    # not a single literal
	$s =~ s/''/'/g;
	return $s;
}

# A mutation of a string: drop, insert or duplicate a piece, truncate, add a
# hostile prefix or suffix, duplicate a comma-separated item.
sub mutate_string
{
	my ($s) = @_;
	my $len = length $s;
	my $r = rnd(9);
	if ($r == 0 && $len) { substr($s, rnd($len), 1, ''); }
	elsif ($r == 1)
	{
		substr($s, rnd($len + 1), 0, pick("'", '"', '(', ')', ',', ';', ' ', '--', '/*', '\\', '$', '.', "\n", u8("\x{e9}")));
	}
	elsif ($r == 2 && $len)
	{
		my $at = rnd($len);
		my $piece = substr($s, $at, 1 + rnd($len - $at));
		substr($s, $at, 0, $piece);
	}
	elsif ($r == 3) { $s = substr($s, 0, rnd($len + 1)); }
	elsif ($r == 4)
	{
		$s .= pick('; DROP TABLE canary; --', "'); DROP TABLE canary; --", ' --', ' /*', ')', '(',
			', ', ' AS', ' FROM canary', "\n--", ' x' x 3000);
	}
	elsif ($r == 5) { $s = pick('(', ')', ' ', '/* */', '"', "'") . $s; }
	elsif ($r == 6)
	{
		my @items = split /,/, $s, -1;
		my $i = rnd(scalar @items || 1);
		splice(@items, $i, 0, $items[$i] // '') ;
		$s = join ',', @items;
	}
	elsif ($r == 7) { $s = uc $s; }
	else { $s = $s x (2 + rnd(3)); }
	return $s;
}

# Replace a parameter by a value from its own pools or a hostile one.
sub hostile_value
{
	my ($p, $n) = @_;
	return interval_value() if $IS_INTERVAL{$p};
	my $r = rand();
	if ($r < 0.45)
	{
		return name_value($n) if $p eq 'name';
		return lit(pick(@SOURCES, @BAD_SOURCES)) if $p eq 'source';
		return lit(pick(@EVENT_TIMES, @BAD_EVENT_TIMES)) if $p eq 'event_time';
		return lit(pick(@BAD_AGGREGATES, @AGGREGATES)) if $p eq 'aggregates';
		return lit(pick(@BAD_GROUP_BYS, @GROUP_BYS)) if $p eq 'group_by';
		return pick(@BAD_OUTPUT_MODES, @OUTPUT_MODES) if $p eq 'output_mode';
		if ($p eq 'sink')
		{
			return lit(pick("fs_$n", "public.fs_$n", "\"FS_$n\"", "pg_temp.fs_$n", "fz_closed.fs_$n",
				"streamagg.fs_$n", "pg_catalog.fs_$n", "nope.fs_$n", "a.b.fs_$n", "x.y.z.fs_$n",
				"fs_$n" . ('s' x 70), $LONG63, "${LONG63}_sink", "${LONG63}_sinkx", 'ev', 'canary',
				'fit_sink', 'fit_noins', 'bad_sink', 'fit_view', 'ev_view', 'ev_seq', 'ev_mat',
				'pg_class', 'streamagg.query_def', 'persist_q', "fs_$n; DROP TABLE canary",
				"\"fs_$n; DROP TABLE canary; --\"", "fs $n", "\"fs_$n", '', ' ', '"', '.', "fs_$n.",
				".fs_$n", u8("fs_\x{e9}$n")));
		}
		return pick(@BAD_SINK_FUNCTIONS, @SINK_FUNCTIONS) if $p eq 'sink_function';
		return lit(pick(@BAD_NOTIFY_CHANNELS, @NOTIFY_CHANNELS)) if $p eq 'notify_channel';
		return lit(pick(@BAD_SINK_MERGES, @SINK_MERGES)) if $p eq 'sink_merge';
		return lit(pick(@BAD_FILTERS, @FILTERS)) if $p eq 'filter';
		return lit(pick(@BAD_JOINS, @JOINS)) if $p eq '"join"';
		return lit(pick(@BAD_COLUMNS, @COLUMNS)) if $p eq 'columns';
		return lit(pick(@BAD_DEDUPS, @DEDUPS)) if $p eq 'dedup';
		return pick(@BAD_TIME_ZONES, @TIME_ZONES) if $p eq 'time_zone';
		return pick('0', '-1', '1', '10', '9223372036854775807') if $p eq 'max_batch_rows';
		return lit(pick('late_ev', 'ev', 'fit_sink', 'nope', 'fit_view', 'canary')) if $p eq 'late_sink';
	}
	if ($r < 0.8) { return lit(hostile_string()); }
	# wrong types and odd expressions
	return pick('NULL', '5', '-1', 'true', "ARRAY['x']", "'1 hour'::interval", "'{}'::text[]",
		"'ev'::regclass", "1259", "0", "E'\\\\x00'::bytea", "'x'::name", "repeat('x', 100000)",
		"(SELECT 'ev')", "current_user", "'ev' || ''", "NULL::text", "'fq'::varchar(1)",
		"row(1, 2)", "'{\"a\": 1}'::json");
}

# The SQL of call $n, the sink argument's expression (for the oracle), and
# whether it runs as superuser.
sub make_call
{
	my ($n) = @_;
	srand($SEED * 1000003 + $n);
	my $c = template($n);
	my $super = chance(0.1);
	my @notes;

	if (!chance(0.2))    # mutate: 1 to 4 parameters
	{
		my $k = 1 + (chance(0.5) ? 0 : rnd(4));
		for (1 .. $k)
		{
			my $p = pick(@PARAMS);
			my $kind = rnd(10);
			if ($kind <= 3) { $c->{$p} = hostile_value($p, $n); }
			elsif ($kind <= 5)
			{
				my $s = unlit($c->{$p});
				$s = unlit(hostile_value($p, $n)) // 'x' unless defined $s;
				$c->{$p} = lit(mutate_string($s));
			}
			elsif ($kind == 6) { $c->{$p} = 'NULL'; }
			elsif ($kind == 7)    # omit: a required one only sometimes (no such function)
			{
				$p = pick(@PARAMS[ 4 .. $#PARAMS ]) unless chance(0.15);
				delete $c->{$p};
			}
			elsif ($kind == 8)
			{
				my $q = pick(@PARAMS);
				($c->{$p}, $c->{$q}) = ($c->{$q}, $c->{$p});
				delete $c->{$p} unless defined $c->{$p};
				delete $c->{$q} unless defined $c->{$q};
			}
			else { $c->{$p} = $IS_INTERVAL{$p} ? interval_value() : lit(hostile_string()); }
		}
	}

	# a superuser could make streamagg's own tables a source, which would
	# spoil the rest of the run: not that
	if ($super && defined $c->{source} && $c->{source} =~ /streamagg/i)
	{
		$c->{source} = lit('ev');
	}

	my $sql;
	my $shape = rnd(40);
	delete @$c{ grep { !defined $c->{$_} } keys %$c };
	my @named = grep { exists $c->{$_} } @PARAMS;
	if ($shape == 0)    # positional: every argument up to the last one given
	{
		my $last = -1;
		for my $i (0 .. $#PARAMS) { $last = $i if exists $c->{ $PARAMS[$i] }; }
		$sql = 'SELECT streamagg.create_query('
		  . join(', ', map { $c->{ $PARAMS[$_] } // 'NULL' } 0 .. $last) . ')';
	}
	elsif ($shape == 1 && @named)    # a parameter named twice
	{
		my $p = pick(@named);
		$sql = 'SELECT streamagg.create_query('
		  . join(', ', (map { "$_ => $c->{$_}" } @named), "$p => $c->{$p}") . ')';
	}
	elsif ($shape == 2 && @named)    # a misspelled or unknown parameter
	{
		my $p = pick(@named);
		$sql = 'SELECT streamagg.create_query('
		  . join(', ', map { ($_ eq $p ? pick('"' . uc($_) . '"', "${_}s", 'filter', 'foo') : $_) . " => $c->{$_}" } @named)
		  . ')';
	}
	else
	{
		if (chance(0.2))    # any order
		{
			for my $i (reverse 1 .. $#named)
			{
				my $j = rnd($i + 1);
				@named[ $i, $j ] = @named[ $j, $i ];
			}
		}
		$sql = 'SELECT streamagg.create_query('
		  . join(', ', map { "$_ => $c->{$_}" } @named) . ')';
	}
	return ($sql, $c->{sink}, $super);
}

# ---------------------------------------------------------------------------
# The driver: all calls in a few psql sessions; a session that dies (crash,
# aborted CALL) resumes after its last recorded call.
# ---------------------------------------------------------------------------
my @numbers = %ONLY ? sort { $a <=> $b } keys %ONLY : (1 .. $CALLS);
my (%sql, %sink, %super);
for my $n (@numbers)
{
	($sql{$n}, $sink{$n}, $super{$n}) = make_call($n);
	die "call $n contains the dollar-quote tag" if $sql{$n} =~ /\$fz\$/
	  || (defined $sink{$n} && $sink{$n} =~ /\$fz\$/);
}

my $preamble = qq{
SET client_encoding = 'UTF8';
SET client_min_messages = error;
SET statement_timeout = '60s';
SET lock_timeout = '20s';
SET TimeZone = 'UTC';
SET ROLE fuzz;
CREATE TEMP TABLE ev_tmp (LIKE base);
INSERT INTO ev_tmp (ts, lts, k, v, amount, ok) $base_rows;
RESET ROLE;
};

my $pm_start = $node->safe_psql('fuzz', 'SELECT pg_postmaster_start_time()');
my $initial_start = $pm_start;
my @crashes;
my @aborted;    # calls without a result: their session died or the CALL failed
my $log_offset = -s $node->logfile;
my @todo = @numbers;
my $batch = 500;
while (@todo)
{
	my @chunk = splice(@todo, 0, $batch);
	my $script = $preamble;
	for my $n (@chunk)
	{
		$script .= sprintf("CALL fuzz_one(%d, %s, \$fz\$%s\$fz\$, %s);\n", $n,
			$super{$n} ? 'true' : 'false', $sql{$n},
			defined $sink{$n} ? "\$fz\$$sink{$n}\$fz\$" : 'NULL');
	}
	my ($out, $err) = ('', '');
	my $rc = $node->psql('fuzz', $script, stdout => \$out, stderr => \$err,
		on_error_stop => 0, extra_params => ['-q'], timeout => 3600);

	# after a crash, wait for the restart before asking what was recorded
	$node->poll_query_until('fuzz', 'SELECT true')
	  or die "the server did not come back after psql exited with $rc"
	  if $rc != 0;
	my %done = map { $_ => 1 } split /\n/, $node->safe_psql('fuzz',
		'SELECT n FROM fuzz_result WHERE n = ANY (ARRAY[' . join(',', @chunk) . '])');
	my @missing = grep { !$done{$_} } @chunk;
	next unless @missing;

	# which calls lacked a result: psql exits when the server goes away
	my $alive = $node->poll_query_until('fuzz', 'SELECT true');
	my $now_start = $node->safe_psql('fuzz', 'SELECT pg_postmaster_start_time()');
	my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile);
	my $crashed = $rc != 0 && ($err =~ /server closed the connection|connection to server was lost|terminated abnormally/
		|| substr($log, $log_offset) =~ /terminated by signal|was terminated by exception|PANIC:/);
	if ($crashed)
	{
		my $n = $missing[0];
		push @crashes, { n => $n, err => $err, log => last_crash_lines(substr($log, $log_offset)) };
		# every call after it in the chunk goes back to the queue
		unshift @todo, grep { $_ != $n } @missing;
	}
	else
	{
		my ($first) = $err =~ /^(.*ERROR:.*)$/m;
		push @aborted, map { { n => $_, err => $first // substr($err, 0, 300) } } @missing;
	}
	$log_offset = length $log;
	$pm_start = $now_start;
	die "the server did not come back after call $missing[0]" unless $alive;
}

sub last_crash_lines
{
	my ($log) = @_;
	my @lines = grep { /terminated by signal|PANIC|TRAP|was terminated|Failed process was running/ } split /\n/, $log;
	return join("\n", @lines[ 0 .. ($#lines < 5 ? $#lines : 5) ]);
}

my $final_start = $node->safe_psql('fuzz', 'SELECT pg_postmaster_start_time()');
my $elapsed = Time::HiRes::time() - $started;

# ---------------------------------------------------------------------------
# Verdicts.
# ---------------------------------------------------------------------------
my %result;
# hex: psql drops some characters (U+10FFFF) from what it prints
for my $line (split /\n/, $node->safe_psql('fuzz',
		q{SELECT encode(convert_to(row_to_json(r)::text, 'UTF8'), 'hex') FROM fuzz_result r ORDER BY n}))
{
	my $r = JSON::PP->new->utf8(0)->decode(pack('H*', $line));    # bytes stay bytes, like the SQL
	$result{ $r->{n} } = $r;
}

my $INTERNAL = qr/cache\ lookup\ failed|unrecognized\ node\ type|unexpected\ (?:node|type|object|value|result)|
  corrupt|invalid\ memory\ alloc|should\ not\ happen|SPI_|bogus|variable\ not\ found|wrong\ varno|
  could\ not\ find|not\ one\ statement|could\ not\ prepare|unrecognized\ \S+\ (?:type|kind)|failed\ to/xi;

# The error context below the call itself (which runs in fuzz_one's EXECUTE),
# without the custom MERGE's own statement: what streamagg ran inside.
sub inner_context
{
	my ($n, $ctx) = @_;
	$ctx //= '';
	my $outer = "SQL statement \"$sql{$n}\"";
	my $at = index($ctx, $outer);
	substr($ctx, $at, length $outer, '') if $at >= 0;
	$ctx =~ s/^PL\/pgSQL function fuzz_one.*$//mg;
	return '' if $ctx =~ /sink_merge of streaming query/;
	return $ctx;
}

my (%findings, %counts, %states);
sub finding
{
	my ($kind, $n, $what) = @_;
	push @{ $findings{$kind} }, { n => $n, what => $what };
}

for my $n (@numbers)
{
	my $r = $result{$n} or next;
	$counts{ $r->{outcome} }++;
	if ($r->{outcome} eq 'error')
	{
		$states{ $r->{sqlstate} }++;
		my $what = "ERROR $r->{sqlstate}: $r->{message}"
		  . ($r->{detail} ? "\n  DETAIL: $r->{detail}" : '')
		  . ($r->{context} ? "\n  CONTEXT: $r->{context}" : '');
		if ($r->{sqlstate} eq 'XX000' || $r->{message} =~ $INTERNAL)
		{
			finding('internal error', $n, $what);
		}
		elsif ($r->{message} =~ /\(null\)/ || $r->{message} eq '')
		{
			finding('unclear error: a message with "(null)" or none', $n, $what);
		}
		elsif ($r->{sqlstate} =~ /^23/
			|| (inner_context($n, $r->{context}) =~ /SQL statement "/
				&& $r->{sqlstate} !~ /^(?:42501|54011|57014|55P03|53)/))
		{
			finding('unclear error: streamagg\'s own SQL or catalog failed', $n, $what);
		}
		if (@{ $r->{anomalies} })
		{
			finding('half-created after a failed call', $n, join("\n  ", "($r->{sqlstate} $r->{message})", @{ $r->{anomalies} }));
		}
	}
	else
	{
		for my $a (@{ $r->{anomalies} })
		{
			finding('accepted query is not sane', $n, "$a\n  ($r->{info})");
		}
	}
}
for my $c (@crashes)
{
	finding('server crash', $c->{n}, "psql: $c->{err}\n  log: $c->{log}");
}
for my $a (@aborted)
{
	finding('call without a result (CALL aborted or timed out)', $a->{n}, "psql: $a->{err}");
}

# Internal errors and crashes anywhere in the log (workers, launcher).
my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile);
my %call_of_query;
for my $n (keys %result)
{
	$call_of_query{$1} = $n if ($result{$n}{info} // '') =~ /^query (\d+),/;
}
my @log_internal = map {
	my $line = $_;
	$line .= "  [query $1 was made by call $call_of_query{$1}: $sql{$call_of_query{$1}}]"
	  if $line =~ /streaming query "?(\d+)/ && $call_of_query{$1};
	$line
} grep { / XX000 / || /terminated by signal|PANIC:|TRAP:/ } split /\n/, $log;

# Report: per kind, per distinct message shape, the first calls.
sub shape
{
	my ($what) = @_;
	my ($first) = split /\n/, $what;
	$first =~ s/"[^"]*"/"..."/g;
	$first =~ s/fq_\d+\S*/fq_N/g;
	$first =~ s/\d+/N/g;
	return substr($first, 0, 140);
}
# The report: per kind of finding, per shape of message, the calls and the
# exact SQL of the first ones (diag: the first example of each shape; the
# file: two examples each, then every finding's full SQL).
sub report
{
	my ($examples, $maxsql) = @_;
	my $out = '';
	for my $kind (sort keys %findings)
	{
		my %by_shape;
		push @{ $by_shape{ shape($_->{what}) } }, $_ for @{ $findings{$kind} };
		$out .= sprintf("== %s: %d calls, %d distinct\n", $kind, scalar @{ $findings{$kind} },
			scalar keys %by_shape);
		for my $s (sort { @{ $by_shape{$b} } <=> @{ $by_shape{$a} } || $a cmp $b } keys %by_shape)
		{
			my @f = @{ $by_shape{$s} };
			$out .= sprintf("-- %d calls (%s%s): %s\n", scalar @f,
				join(',', map { $_->{n} } @f[ 0 .. ($#f < 9 ? $#f : 9) ]), @f > 10 ? ',...' : '', $s);
			for my $f (@f[ 0 .. ($#f < $examples - 1 ? $#f : $examples - 1) ])
			{
				my $sqlshow = $sql{ $f->{n} };
				$sqlshow = substr($sqlshow, 0, $maxsql) . sprintf('... [%d bytes in all]', length $sqlshow)
				  if length $sqlshow > $maxsql + 100;
				$out .= sprintf("   seed %s call %d as %s: %s\n     %s\n", $SEED, $f->{n},
					$super{ $f->{n} } ? 'superuser' : 'fuzz', $sqlshow, $f->{what} =~ s/\n/\n     /gr);
			}
		}
	}
	if (@log_internal)
	{
		$out .= sprintf("== server log: %d lines with XX000 or a crash\n", scalar @log_internal);
		$out .= "   $_\n" for @log_internal[ 0 .. ($#log_internal < 20 ? $#log_internal : 20) ];
	}
	return $out;
}

my $file = "$PostgreSQL::Test::Utils::tmp_check/fuzz-findings-$SEED.txt";
open my $fh, '>', $file or die "$file: $!";
print $fh "create_query fuzz, seed $SEED, calls " . scalar(@numbers) . "\n\n" . report(2, 2000);
# the exact SQL of every finding, unabridged
for my $kind (sort keys %findings)
{
	print $fh "\n== $kind: exact SQL\n";
	print $fh "call $_->{n}: $sql{$_->{n}}\n" for @{ $findings{$kind} };
}
close $fh;
my $report = report(1, 400);

my ($ms_created, $ms_error) = split /\|/, $node->safe_psql('fuzz', q{
	SELECT coalesce(round(avg(extract(epoch FROM finished_at - started_at) * 1000) FILTER (WHERE outcome = 'created'))::text, '-') || '|'
		   || coalesce(round(avg(extract(epoch FROM finished_at - started_at) * 1000) FILTER (WHERE outcome = 'error'))::text, '-')
	  FROM fuzz_result});
diag(sprintf("%d calls in %.1f s: %d accepted (%s ms each), %d rejected (%s ms each; %s); findings in %s",
	scalar(@numbers), $elapsed, $counts{created} // 0, $ms_created // '-', $counts{error} // 0, $ms_error // '-',
	join(' ', map { "$_:$states{$_}" } sort { $states{$b} <=> $states{$a} } keys %states),
	$file));
diag($report) if $report ne '';

my %f = map { $_ => scalar @{ $findings{$_} // [] } } ('server crash',
	'call without a result (CALL aborted or timed out)', 'internal error',
	"unclear error: streamagg's own SQL or catalog failed",
	'half-created after a failed call', 'accepted query is not sane',
	'unclear error: a message with "(null)" or none');
is($f{'server crash'}, 0, 'no server crash');
is($final_start, $initial_start, 'postmaster start time unchanged');
is(scalar(grep { /terminated by signal|PANIC:|TRAP:/ } @log_internal), 0,
	'no process terminated by a signal in the server log');
is($f{'call without a result (CALL aborted or timed out)'}, 0, 'every call returned');
is($f{'internal error'}, 0, 'no internal error (XX000 or internal elog) from create_query');
is(scalar(grep { / XX000 / } @log_internal), 0, 'no internal error in the server log');
is($f{"unclear error: streamagg's own SQL or catalog failed"}, 0,
	'no error from streamagg\'s generated SQL or catalog leaks out');
is($f{'unclear error: a message with "(null)" or none'}, 0,
	'no error message with "(null)" or without text');
is($f{'half-created after a failed call'}, 0, 'a failed call creates nothing');
is($f{'accepted query is not sane'}, 0,
	'every accepted query is sane, runs once and drops cleanly');
ok(($counts{created} // 0) > 0 && ($counts{error} // 0) > 0 || %ONLY,
	'the fuzzer produced both accepted and rejected calls');
is($node->safe_psql('fuzz', q{SELECT count(*) || ' ' || sum(x) FROM canary}), '3 6',
	'the canary table is intact');

$node->stop;
done_testing();
