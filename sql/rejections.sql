-- Every rejection of DESIGN.md 3.6: a clear message, and nothing created
-- (no query, no sink, no column or trigger added to the source).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
CREATE TABLE src (ts timestamptz, local_ts timestamp, n int, amount numeric, k text);
-- try() returns the error message and its detail, or 'created'.
CREATE FUNCTION try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  detail text;
BEGIN
  EXECUTE 'SELECT streamagg.create_query(' || q || ')';
  RETURN 'created';
EXCEPTION WHEN others THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RETURN SQLERRM || CASE WHEN detail <> '' THEN E'\n' || detail ELSE '' END;
END $$;
\set base 'name => ''r'', source => ''src'', event_time => ''ts'', aggregates => ''count(*) AS c'''

-- append without watermark
SELECT try(:'base' || $$, window_size => '1 minute'$$);
-- update with session windows
SELECT try(:'base' || $$, group_by => 'k', session_gap => '5 minutes', output_mode => 'update'$$);
-- session without a group key
SELECT try(:'base' || $$, session_gap => '5 minutes', watermark => '1 minute'$$);
-- window_size or slide <= 0
SELECT try(:'base' || $$, window_size => '0 seconds', output_mode => 'update'$$);
SELECT try(:'base' || $$, window_size => '-1 minute', output_mode => 'update'$$);
SELECT try(:'base' || $$, window_size => '1 minute', window_slide => '0 seconds', output_mode => 'update'$$);
-- slide > size
SELECT try(:'base' || $$, window_size => '1 minute', window_slide => '2 minutes', output_mode => 'update'$$);
-- |offset| >= slide
SELECT try(:'base' || $$, window_size => '1 minute', window_offset => '1 minute', output_mode => 'update'$$);
SELECT try(:'base' || $$, window_size => '10 minutes', window_slide => '1 minute', window_offset => '-90 seconds', output_mode => 'update'$$);
-- negative watermark
SELECT try(:'base' || $$, window_size => '1 minute', watermark => '-1 second'$$);
-- session_gap with window_size
SELECT try(:'base' || $$, group_by => 'k', window_size => '1 minute', session_gap => '1 minute', watermark => '1 minute'$$);
-- intervals with months (window sizes in months only with time_zone: calendar_windows.sql)
SELECT try(:'base' || $$, window_size => '1 month', watermark => '1 day'$$);
SELECT try(:'base' || $$, window_size => '1 day', watermark => '1 year'$$);
-- ORDER BY inside aggregates, also with DISTINCT (DISTINCT alone is
-- accepted: sql/distinct_aggregates.sql)
SELECT try($$name => 'r', source => 'src', event_time => 'ts', aggregates => 'count(DISTINCT k ORDER BY k) AS c', output_mode => 'update'$$);
SELECT try($$name => 'r', source => 'src', event_time => 'ts', aggregates => 'sum(n ORDER BY ts) AS c', output_mode => 'update'$$);
-- an expression in aggregates that is not an aggregate call
SELECT try($$name => 'r', source => 'src', event_time => 'ts', aggregates => 'sum(n) + 1 AS c', output_mode => 'update'$$);
SELECT try($$name => 'r', source => 'src', event_time => 'ts', aggregates => 'n AS c', output_mode => 'update'$$);
SELECT try($$name => 'r', source => 'src', event_time => 'ts', aggregates => 'count(*) OVER () AS c', output_mode => 'update'$$);
-- and no way to smuggle in another statement or table
SELECT try($$name => 'r', source => 'src', event_time => 'ts', aggregates => 'count(*) FROM pg_class --', output_mode => 'update'$$);
SELECT try($$name => 'r', source => 'src', event_time => 'ts', aggregates => 'count(*); DROP TABLE src', output_mode => 'update'$$);
-- an event_time column that is not a timestamp
SELECT try($$name => 'r', source => 'src', event_time => 'n', aggregates => 'count(*) AS c', output_mode => 'update'$$);
-- unknown columns
SELECT try($$name => 'r', source => 'src', event_time => 'nope', aggregates => 'count(*) AS c', output_mode => 'update'$$);
SELECT try($$name => 'r', source => 'src', event_time => 'ts', aggregates => 'sum(nope) AS c', output_mode => 'update'$$);
SELECT try($$name => 'r', source => 'src', event_time => 'ts', aggregates => 'count(*) AS c', group_by => 'nope', output_mode => 'update'$$);
-- unknown output mode
SELECT try(:'base' || $$, output_mode => 'upsert'$$);
-- a group key that is an aggregate, or an aggregate whose state cannot be stored
SELECT try($$name => 'r', source => 'src', event_time => 'ts', aggregates => 'count(*) AS c', group_by => 'max(n) AS m', output_mode => 'update'$$);
SELECT try($$name => 'r', source => 'src', event_time => 'ts', aggregates => 'array_agg(n) AS c', output_mode => 'update'$$);

-- Nothing was left behind by any of the above.
SELECT count(*) AS queries FROM streamagg.queries;
SELECT to_regclass('r') AS sink;
SELECT attname FROM pg_attribute WHERE attrelid = 'src'::regclass AND attnum > 0 ORDER BY attnum;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'src'::regclass;

-- a duplicate query name
SELECT try(:'base' || $$, output_mode => 'complete'$$);
SELECT try(:'base' || $$, output_mode => 'complete', sink => 'r2'$$);
SELECT to_regclass('r2') AS second_sink_not_created;

-- an existing sink that does not fit: wrong column type, missing column,
-- no unique key on (window_start, window_end, k)
CREATE TABLE bad_type (window_start timestamptz, window_end timestamptz, k text, c int);
SELECT try($$name => 'f1', source => 'src', event_time => 'ts', aggregates => 'count(*) AS c', group_by => 'k', window_size => '1 minute', output_mode => 'update', sink => 'bad_type'$$);
CREATE TABLE missing_col (window_start timestamptz, window_end timestamptz, c bigint);
SELECT try($$name => 'f2', source => 'src', event_time => 'ts', aggregates => 'count(*) AS c', group_by => 'k', window_size => '1 minute', output_mode => 'update', sink => 'missing_col'$$);
CREATE TABLE no_key (window_start timestamptz, window_end timestamptz, k text, c bigint);
SELECT try($$name => 'f3', source => 'src', event_time => 'ts', aggregates => 'count(*) AS c', group_by => 'k', window_size => '1 minute', output_mode => 'update', sink => 'no_key'$$);
CREATE TABLE nulls_distinct (window_start timestamptz, window_end timestamptz, k text, c bigint,
                             UNIQUE (window_start, window_end, k));
SELECT try($$name => 'f4', source => 'src', event_time => 'ts', aggregates => 'count(*) AS c', group_by => 'k', window_size => '1 minute', output_mode => 'update', sink => 'nulls_distinct'$$);
-- one that fits (extra columns with defaults are fine) is accepted
CREATE TABLE fits (window_start timestamptz NOT NULL, window_end timestamptz NOT NULL, k text, c bigint,
                   note text DEFAULT 'kept', UNIQUE NULLS NOT DISTINCT (window_end, window_start, k));
SELECT try($$name => 'f5', source => 'src', event_time => 'ts', aggregates => 'count(*) AS c', group_by => 'k', window_size => '1 minute', output_mode => 'update', sink => 'fits'$$);
SELECT name, sink FROM streamagg.queries ORDER BY name;

-- Names are data: quotes and spaces in query, sink and column names are kept as given.
CREATE TABLE "odd ""source""" ("event time" timestamptz, "the key" text);
SELECT streamagg.create_query(name => 'it''s; DROP TABLE src; --', source => '"odd ""source"""',
       event_time => 'event time', aggregates => 'count(*) AS "n; --"', group_by => '"the key"',
       output_mode => 'update', sink => '"odd ""sink"""');
INSERT INTO "odd ""source""" VALUES (now(), 'x');
SELECT streamagg.process('it''s; DROP TABLE src; --');
TABLE "odd ""sink""";
SELECT streamagg.drop_query('it''s; DROP TABLE src; --', drop_sink => true);
DROP TABLE "odd ""source""";

-- Parameters that used to be accepted and then broke every trigger, or the
-- catalog views, or another query (found by test/t/012_create_query_fuzz.pl):
\set hbase 'name => ''hq'', source => ''src'', event_time => ''ts'', aggregates => ''count(*) AS c'''
-- no aggregate at all
SELECT try($$name => 'hq', source => 'src', event_time => 'ts', aggregates => '', output_mode => 'update'$$);
-- a name longer than an identifier: it is also the default sink's name,
-- which PostgreSQL would silently truncate (two queries could share it)
SELECT try($$name => repeat('q', 64), source => 'src', event_time => 'ts', aggregates => 'count(*) AS c', output_mode => 'update'$$);
-- intervals that no window or watermark could use inside the range of timestamps
SELECT try(:'hbase' || $$, window_size => '2147483647 days', output_mode => 'update'$$);
SELECT try(:'hbase' || $$, window_size => '1 hour', watermark => '-2147483648 days -2562047788 hours'$$);
SELECT try(:'hbase' || $$, window_size => '1 hour', output_mode => 'update', trigger_interval => '2562047788 hours'$$);
-- a row in sixty million sliding windows
SELECT try(:'hbase' || $$, window_size => '1 minute', window_slide => '1 microsecond', output_mode => 'update'$$);
-- sources and sinks that are not ordinary tables of this database
SELECT try($$name => 'hq', source => 0, event_time => 'ts', aggregates => 'count(*) AS c', output_mode => 'update'$$);
CREATE TEMPORARY TABLE tmp_src (ts timestamptz);
SELECT try($$name => 'hq', source => 'tmp_src', event_time => 'ts', aggregates => 'count(*) AS c', output_mode => 'update'$$);
SELECT try(:'hbase' || $$, output_mode => 'update', sink => 'pg_temp.hq_out'$$);
SELECT try(:'hbase' || $$, output_mode => 'update', sink_function => '12345'$$);
-- a sink column named like a system column
SELECT try(:'hbase' || $$, group_by => 'k AS ctid', output_mode => 'update'$$);
-- another query's sink: their rows would overwrite each other
SELECT try($$name => 'owner_of_fits2', source => 'src', event_time => 'ts', aggregates => 'count(*) AS c', group_by => 'k', window_size => '1 minute', output_mode => 'update', sink => 'fits'$$);
-- a source whose streamagg_xid is not xid8, or with a trigger of streamagg's name
CREATE TABLE text_xid (ts timestamptz, streamagg_xid text);
SELECT try($$name => 'hq', source => 'text_xid', event_time => 'ts', aggregates => 'count(*) AS c', output_mode => 'update'$$);
CREATE TABLE own_trigger (ts timestamptz);
CREATE FUNCTION own_trigger_fn() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
CREATE TRIGGER streamagg_source_committed AFTER INSERT ON own_trigger
  FOR EACH STATEMENT EXECUTE FUNCTION own_trigger_fn();
SELECT try($$name => 'hq', source => 'own_trigger', event_time => 'ts', aggregates => 'count(*) AS c', output_mode => 'update'$$);
-- sink_merge is analysed as a trigger runs it, with search_path pinned to
-- pg_catalog: a name it cannot resolve then is refused now
CREATE TABLE unqualified (n int);
SELECT try(:'hbase' || $$, group_by => 'k', output_mode => 'update', sink => 'merged', sink_merge => 'WHEN MATCHED THEN UPDATE SET c = (SELECT max(n) FROM unqualified)'$$);
-- privileges a trigger will need are checked now, as the query's owner
CREATE ROLE sa_rejected;
GRANT SELECT ON src TO sa_rejected;
CREATE TABLE read_only_sink (k text, c bigint, UNIQUE NULLS NOT DISTINCT (k));
GRANT SELECT ON read_only_sink TO sa_rejected;
CREATE FUNCTION private_fn(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1';
REVOKE EXECUTE ON FUNCTION private_fn(text) FROM PUBLIC;
SET ROLE sa_rejected;
SELECT try($$name => 'hq', source => 'src', event_time => 'ts', aggregates => 'count(*) AS c', group_by => 'k', output_mode => 'update', sink => 'read_only_sink'$$);
SELECT try($$name => 'hq', source => 'src', event_time => 'ts', aggregates => 'count(*) AS c', group_by => 'public.private_fn(k) AS k', output_mode => 'update', sink => 'read_only_sink'$$);
RESET ROLE;
-- and none of these created anything
SELECT name FROM streamagg.queries ORDER BY name;
SELECT relname FROM pg_class WHERE relname IN ('hq', 'hq_out', 'merged', 'owner_of_fits2') ORDER BY 1;
SELECT attname FROM pg_attribute WHERE attrelid IN ('text_xid'::regclass, 'own_trigger'::regclass)
   AND attnum > 0 ORDER BY attrelid, attnum;
SELECT tgname, tgfoid::regproc FROM pg_trigger WHERE tgrelid = 'own_trigger'::regclass;

SELECT streamagg.drop_query(name) FROM streamagg.queries;
DROP TABLE src, bad_type, missing_col, no_key, nulls_distinct, fits, r, tmp_src, text_xid,
  own_trigger, unqualified, read_only_sink;
DROP FUNCTION own_trigger_fn();
DROP FUNCTION private_fn(text);
DROP ROLE sa_rejected;
DROP FUNCTION try(text);
