-- Upgrading (README, Operations): ALTER EXTENSION streamagg UPDATE brings
-- the catalog of an older version up to the library's.  Until then the
-- library refuses to work on the old catalog, with a hint, rather than
-- misread it.  A new installation runs the same scripts (0.1, then each
-- update), so every other test also tests the upgrade path.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
DROP DATABASE IF EXISTS streamagg_upgrade;
RESET client_min_messages;
\set home :DBNAME
SET timezone = 'UTC';

-- The state a query of 0.3 kept, one row per group in streamagg.state,
-- becomes its first snapshot in streamagg.state_log (0.4).  To have the
-- bytes of such rows (minimal tuples), a query of this version stores two
-- groups; pg_temp.records reads them back from its log, in the format
-- that src/state.c describes.
CREATE FUNCTION pg_temp.get_int4(r bytea, off int) RETURNS int LANGUAGE sql AS
	$$ SELECT ('x' || encode(substring(r FROM off + 1 FOR 4), 'hex'))::bit(32)::int $$;
CREATE FUNCTION pg_temp.get_int8(r bytea, off int) RETURNS bigint LANGUAGE sql AS
	$$ SELECT ('x' || encode(substring(r FROM off + 1 FOR 8), 'hex'))::bit(64)::bigint $$;
CREATE FUNCTION pg_temp.records(r bytea)
RETURNS TABLE (window_start timestamptz, window_end timestamptz, group_key bytea, agg_states bytea)
LANGUAGE sql AS $$
	WITH RECURSIVE rec(off, klen, vlen) AS (
		SELECT 0, pg_temp.get_int4(r, 16), pg_temp.get_int4(r, 20 + pg_temp.get_int4(r, 16))
		UNION ALL
		SELECT n, pg_temp.get_int4(r, n + 16), pg_temp.get_int4(r, n + 20 + pg_temp.get_int4(r, n + 16))
		  FROM rec, LATERAL (SELECT off + 24 + klen + greatest(vlen, 0) AS n) x
		 WHERE n < length(r))
	SELECT timestamptz '2000-01-01 00:00+00' + pg_temp.get_int8(r, off) * interval '1 microsecond',
		   timestamptz '2000-01-01 00:00+00' + pg_temp.get_int8(r, off + 8) * interval '1 microsecond',
		   substring(r FROM off + 21 FOR klen), substring(r FROM off + 25 + klen FOR vlen)
	  FROM rec $$;
CREATE TABLE up_ev (ts timestamptz, k text);
SELECT streamagg.create_query(name => 'up_ref', source => 'up_ev', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', window_size => '1 hour',
       output_mode => 'update');
INSERT INTO up_ev VALUES ('2024-05-01 10:00+00', 'a'), ('2024-05-01 10:05+00', 'a'),
                         ('2024-05-01 10:10+00', 'b');
SELECT streamagg.process('up_ref');
SELECT d.aggregates_sql, d.group_by_sql,
       string_agg(format('(%L, %L, %L, %L)', r.window_start, r.window_end, r.group_key, r.agg_states),
                  ', ' ORDER BY r.group_key) AS old_state_rows
  FROM streamagg.query_def d JOIN streamagg.state_log l USING (query_id),
       LATERAL pg_temp.records(l.records) r
 WHERE d.name = 'up_ref' GROUP BY 1, 2 \gset
SELECT streamagg.drop_query('up_ref', drop_sink => true);
DROP TABLE up_ev;
CREATE DATABASE streamagg_upgrade;
\c streamagg_upgrade
SET timezone = 'UTC';
CREATE EXTENSION streamagg VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'streamagg';
CREATE TABLE ev (ts timestamptz, k text);
SELECT streamagg.create_query(name => 'q', source => 'ev', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', output_mode => 'complete');
-- a source as create_query of 0.1 and 0.2 prepared it (a brin index), and
-- one indexed by hand with its own pages_per_range
ALTER TABLE ev ADD COLUMN streamagg_xid xid8 DEFAULT pg_current_xact_id();
CREATE INDEX ON ev USING brin (streamagg_xid streamagg.xid8_minmax_ops)
  WITH (autosummarize = on);
CREATE TABLE ev2 (ts timestamptz, streamagg_xid xid8 DEFAULT pg_current_xact_id());
CREATE INDEX ev2_xid ON ev2 USING brin (streamagg_xid streamagg.xid8_minmax_ops)
  WITH (pages_per_range = 4);
-- a query with state, as 0.1 to 0.3 kept it: counts a = 2, b = 1 of
-- events consumed (and deleted) before the upgrade
CREATE TABLE up_ev (ts timestamptz, k text, streamagg_xid xid8 DEFAULT pg_current_xact_id());
CREATE INDEX ON up_ev USING brin (streamagg_xid streamagg.xid8_minmax_ops);
CREATE TRIGGER streamagg_source_committed AFTER INSERT ON up_ev FOR EACH STATEMENT
  EXECUTE FUNCTION streamagg.source_committed();
CREATE TABLE up_sink (window_start timestamptz, window_end timestamptz, k text, n bigint,
                      UNIQUE NULLS NOT DISTINCT (window_start, window_end, k));
INSERT INTO streamagg.query_def (name, source, event_time, aggregates, group_by,
       aggregates_sql, group_by_sql, window_size, output_mode, sink, owner)
VALUES ('up_q', 'up_ev', 'ts', 'count(*) AS n', 'k', :'aggregates_sql', :'group_by_sql',
        '1 hour', 'update', 'up_sink', current_user::regrole);
INSERT INTO streamagg.checkpoint (query_id, last_batch_id, consumed_snapshot)
SELECT query_id, 0, pg_current_snapshot() FROM streamagg.query_def WHERE name = 'up_q';
INSERT INTO streamagg.state
SELECT query_id, s.window_start::timestamptz, s.window_end::timestamptz,
       s.group_key::bytea, s.agg_states::bytea
  FROM streamagg.query_def,
       (VALUES :old_state_rows) s(window_start, window_end, group_key, agg_states)
 WHERE name = 'up_q';
SELECT * FROM pg_extension_update_paths('streamagg') WHERE path IS NOT NULL ORDER BY source, target;
ALTER EXTENSION streamagg UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'streamagg';
-- 0.3 rebuilt the sources' brin indexes with streamagg_brin, under their
-- names, keeping pages_per_range (and dropping autosummarize)
SELECT indexrelid::regclass AS index, am.amname, c.reloptions
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
 WHERE indrelid IN ('ev'::regclass, 'ev2'::regclass) ORDER BY 1::text;
SELECT count(*) AS brin_opclasses_left FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
 WHERE oc.opcname = 'xid8_minmax_ops' AND am.amname = 'brin';
SELECT streamagg.create_query(name => 'q', source => 'ev', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', output_mode => 'complete',
       notify_channel => 'q_changed');
INSERT INTO ev VALUES ('2024-05-01 10:00+00', 'a'), ('2024-05-01 10:01+00', 'a');
SELECT streamagg.process('q');
TABLE q;
-- 0.4 turned the old state rows into a snapshot at the query's last batch,
-- and the query goes on from it: a = 2 + 1 (b is not touched)
SELECT l.batch_id, l.part, l.snapshot, l.groups
  FROM streamagg.state_log l JOIN streamagg.query_def d USING (query_id)
 WHERE d.name = 'up_q' ORDER BY 1, 2;
SELECT to_regclass('streamagg.state') AS old_table;
INSERT INTO up_ev (ts, k) VALUES ('2024-05-01 10:20+00', 'a');
SELECT streamagg.process('up_q');
TABLE up_sink;
-- 0.5 records the state's shared memory with each batch (NULL before)
SELECT batch_id, state_rows_total, state_memory_bytes > 0 AS state_memory_measured
  FROM streamagg.progress WHERE name = 'up_q' ORDER BY batch_id;
-- 0.6 shows each role only the queries of roles it has the privileges of
-- (sql/security.sql): row-level security on the catalog, views that run as
-- their caller
SELECT relname, relkind, relrowsecurity, reloptions FROM pg_class
 WHERE relnamespace = 'streamagg'::regnamespace AND relkind IN ('r', 'v')
 ORDER BY relname;
SELECT streamagg.drop_query('up_q', drop_sink => true);
SELECT name, sink, sink_function, sink_merge, notify_channel FROM streamagg.queries;
SELECT streamagg.drop_query('q', drop_sink => true);
DROP TABLE ev2;
\c :home
DROP DATABASE streamagg_upgrade;
