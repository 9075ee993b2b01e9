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
-- intervals with months
SELECT try(:'base' || $$, window_size => '1 month', watermark => '1 day'$$);
SELECT try(:'base' || $$, window_size => '1 day', watermark => '1 year'$$);
-- DISTINCT or ORDER BY inside aggregates
SELECT try($$name => 'r', source => 'src', event_time => 'ts', aggregates => 'count(DISTINCT k) AS c', output_mode => 'update'$$);
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

SELECT streamagg.drop_query(name) FROM streamagg.queries;
DROP TABLE src, bad_type, missing_col, no_key, nulls_distinct, fits, r;
DROP FUNCTION try(text);
