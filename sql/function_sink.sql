-- Function sinks (docs/sinks.md), streamagg's foreachBatch: with
-- sink_function, a user function is called once per trigger that has
-- output, inside the trigger's transaction, as fn(batch_id bigint,
-- rows sinkrow[]), sinkrow being a composite type with the query's output
-- columns.  If it raises, the trigger rolls back and its retry delivers the
-- same batch id and the same rows (DESIGN.md 3.8), so a sink that is
-- idempotent per batch id ends exactly as if nothing had failed.
-- Triggers run with search_path = pg_catalog, pg_temp: a sink function
-- names its tables with their schema or carries its own search_path.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE clicks (ts timestamptz, page text, ms int);
CREATE TYPE page_row AS (window_start timestamptz, window_end timestamptz,
                         page text, n bigint, total_ms bigint);

-- Pattern 1: an upsert guarded by the batch id.  A replayed batch never
-- overwrites what a later batch wrote: the target only moves forward.
CREATE TABLE page_stats (window_start timestamptz, window_end timestamptz,
                         page text, n bigint, total_ms bigint, batch_id bigint,
                         PRIMARY KEY (window_start, window_end, page));
-- The function fails once for each batch listed in fail_batches; the
-- sequences remember across the rollback which batch failed, and how often
-- the function was called.
CREATE TABLE fail_batches (batch_id bigint);
CREATE SEQUENCE failed_batch MINVALUE -1 START -1;
CREATE SEQUENCE calls;
CREATE FUNCTION deliver_stats(batch_id bigint, rows page_row[]) RETURNS void
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    PERFORM nextval('calls');
    IF batch_id IN (SELECT f.batch_id FROM fail_batches f)
       AND (SELECT last_value FROM failed_batch) <> batch_id THEN
        PERFORM setval('failed_batch', batch_id);
        RAISE EXCEPTION 'sink unavailable for batch %', batch_id;
    END IF;
    INSERT INTO page_stats AS t
    SELECT r.*, batch_id FROM unnest(rows) AS r
    ON CONFLICT (window_start, window_end, page) DO UPDATE
       SET n = EXCLUDED.n, total_ms = EXCLUDED.total_ms, batch_id = EXCLUDED.batch_id
     WHERE t.batch_id < EXCLUDED.batch_id;
END $$;

-- Pattern 2: an append-only log, deduplicated by (batch_id, key): a
-- replayed batch inserts nothing twice.
CREATE TABLE page_log (batch_id bigint, window_start timestamptz,
                       window_end timestamptz, page text, n bigint, total_ms bigint,
                       PRIMARY KEY (batch_id, window_start, page));
CREATE FUNCTION deliver_log(batch_id bigint, rows page_row[]) RETURNS void
LANGUAGE sql SET search_path = public AS $$
    INSERT INTO page_log
    SELECT batch_id, r.window_start, r.window_end, r.page, r.n, r.total_ms
      FROM unnest(rows) AS r
    ON CONFLICT DO NOTHING
$$;

-- Three identical update-mode queries: a table sink and the two functions.
SELECT streamagg.create_query(name => 'by_table', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(ms) AS total_ms', group_by => 'page',
       window_size => '1 hour', watermark => '10 minutes', output_mode => 'update');
SELECT streamagg.create_query(name => 'by_stats', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(ms) AS total_ms', group_by => 'page',
       window_size => '1 hour', watermark => '10 minutes', output_mode => 'update',
       sink_function => 'deliver_stats');
SELECT streamagg.create_query(name => 'by_log', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(ms) AS total_ms', group_by => 'page',
       window_size => '1 hour', watermark => '10 minutes', output_mode => 'update',
       sink_function => 'deliver_log(bigint, page_row[])');
-- A function sink has no sink table; the function is shown instead.
SELECT name, sink, sink_function FROM streamagg.queries ORDER BY name;
SELECT count(*) AS tables_named_like_queries FROM pg_class
 WHERE relname IN ('by_stats', 'by_log');

-- After each trigger, the function sinks agree with the table sink: the
-- guarded upsert holds the same rows, and the log's rows of this batch are
-- exactly the rows the table sink received (the windows the batch changed).
CREATE FUNCTION check_trigger(batch bigint) RETURNS TABLE (check_name text, ok boolean)
LANGUAGE sql AS $$
    SELECT 'stats = table sink',
           NOT EXISTS (SELECT window_start, window_end, page, n, total_ms FROM page_stats
                       EXCEPT SELECT * FROM by_table)
       AND NOT EXISTS (SELECT * FROM by_table
                       EXCEPT SELECT window_start, window_end, page, n, total_ms FROM page_stats)
    UNION ALL
    SELECT 'log batch = rows written',
           (SELECT count(*) FROM page_log l WHERE l.batch_id = batch) =
           (SELECT sink_rows_written FROM streamagg.progress
             WHERE name = 'by_table' AND batch_id = batch)
       AND NOT EXISTS (SELECT window_start, window_end, page, n, total_ms
                         FROM page_log l WHERE l.batch_id = batch
                       EXCEPT SELECT * FROM by_table)
$$;

-- Trigger 0: two windows of 'home', one of 'cart'.
INSERT INTO clicks VALUES ('2024-05-01 10:05+00', 'home', 10), ('2024-05-01 10:20+00', 'home', 30),
                          ('2024-05-01 10:40+00', 'cart', 5), ('2024-05-01 11:01+00', 'home', 7);
SELECT streamagg.process('by_table'), streamagg.process('by_stats'), streamagg.process('by_log');
SELECT * FROM check_trigger(0);
SELECT * FROM page_log ORDER BY batch_id, window_start, page;

-- Trigger 1 fails in the function sink: nothing of it remains, not even in
-- the table the function wrote before raising.
INSERT INTO fail_batches VALUES (1);
INSERT INTO clicks VALUES ('2024-05-01 10:50+00', 'cart', 15), ('2024-05-01 11:30+00', 'home', 3);
SELECT streamagg.process('by_table'), streamagg.process('by_log');
\set VERBOSITY terse
SELECT streamagg.process('by_stats');
\set VERBOSITY default
SELECT last_batch_id FROM streamagg.queries WHERE name = 'by_stats';
SELECT last_value AS batch_id_of_the_failed_call FROM failed_batch;
-- A producer commits between the failure and the retry: it belongs to the
-- next batch, not to the retried one.
INSERT INTO clicks VALUES ('2024-05-01 11:35+00', 'home', 100);
-- The retry: the same batch id (1), the same rows; the target is as if the
-- call had never failed.
SELECT streamagg.process('by_stats');
SELECT page, window_start, n, total_ms, batch_id FROM page_stats ORDER BY window_start, page;
SELECT DISTINCT batch_id AS batch_ids_written FROM page_stats ORDER BY 1;
-- the table sink and the log have not seen the late producer's row yet
SELECT streamagg.process('by_table'), streamagg.process('by_log');
SELECT streamagg.process('by_stats');
SELECT * FROM check_trigger(2);

-- Replays are harmless: delivering batch 0 again, with its old values,
-- after batch 1 was written (as a retry after a lost commit
-- acknowledgement could) moves nothing backwards, and delivering every
-- batch of the log again adds no row to it.
CREATE TABLE before_replay AS SELECT * FROM page_stats;
SELECT deliver_stats(0, ARRAY(SELECT ROW(window_start, window_end, page, n, total_ms)::page_row
                                FROM page_log WHERE batch_id = 0));
SELECT count(*) AS rows_changed_by_replay FROM
    (SELECT * FROM page_stats EXCEPT SELECT * FROM before_replay) AS changed;
SELECT count(*) AS log_rows_before FROM page_log;
SELECT deliver_log(b.batch_id, array_agg(ROW(b.window_start, b.window_end, b.page, b.n, b.total_ms)::page_row))
  FROM page_log AS b GROUP BY b.batch_id ORDER BY b.batch_id;
SELECT count(*) AS log_rows_after FROM page_log;

-- The function is called only for triggers with output: a trigger whose
-- rows are all late calls nothing.
SELECT last_value AS calls_before FROM calls;
INSERT INTO clicks VALUES ('2024-05-01 09:00+00', 'home', 1);
SELECT streamagg.process('by_stats');
SELECT last_value AS calls_after, (SELECT late_rows_dropped FROM streamagg.progress
        WHERE name = 'by_stats' ORDER BY batch_id DESC LIMIT 1) FROM calls;

-- Complete mode gives a function sink the whole result table at each
-- trigger (it keeps no rows of its own), here of session windows: the
-- sessions merged away are no longer part of it.
CREATE TYPE session_row AS (window_start timestamptz, window_end timestamptz,
                            page text, n bigint);
CREATE TABLE session_deliveries (batch_id bigint, window_start timestamptz,
                                 window_end timestamptz, page text, n bigint);
CREATE FUNCTION deliver_sessions(batch_id bigint, rows session_row[]) RETURNS void
LANGUAGE sql SET search_path = public AS $$
    INSERT INTO session_deliveries SELECT batch_id, r.* FROM unnest(rows) AS r
$$;
CREATE TABLE visits (ts timestamptz, page text);
SELECT streamagg.create_query(name => 'visit_sessions', source => 'visits', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'page', session_gap => '10 minutes',
       output_mode => 'complete', sink_function => 'deliver_sessions');
INSERT INTO visits VALUES ('2024-05-01 10:00+00', 'home'), ('2024-05-01 10:30+00', 'home'),
                          ('2024-05-01 10:00+00', 'cart');
SELECT streamagg.process('visit_sessions');
-- batch 1 touches only 'home', and merges its two sessions into one
INSERT INTO visits VALUES ('2024-05-01 10:09+00', 'home'), ('2024-05-01 10:18+00', 'home'),
                          ('2024-05-01 10:25+00', 'home');
SELECT streamagg.process('visit_sessions');
SELECT batch_id, page, window_start, window_end, n FROM session_deliveries
 ORDER BY batch_id, page, window_start;

-- Rejected at create_query, with nothing created.
CREATE TYPE page_small AS (window_start timestamptz, window_end timestamptz, page text, n bigint);
CREATE FUNCTION small_sink(batch_id bigint, rows page_small[]) RETURNS void
LANGUAGE sql AS 'SELECT';
CREATE TYPE page_wrong AS (window_start timestamptz, window_end timestamptz,
                           page text, n int, total_ms bigint);
CREATE FUNCTION wrong_sink(batch_id bigint, rows page_wrong[]) RETURNS void
LANGUAGE sql AS 'SELECT';
CREATE FUNCTION text_sink(batch_id text, rows page_row[]) RETURNS void
LANGUAGE sql AS 'SELECT';
CREATE FUNCTION scalar_sink(batch_id bigint, rows int[]) RETURNS void
LANGUAGE sql AS 'SELECT';
CREATE FUNCTION overloaded(batch_id bigint, rows page_row[]) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION overloaded(batch_id bigint, rows page_small[]) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(ms) AS total_ms', group_by => 'page',
       window_size => '1 hour', output_mode => 'update', sink_function => 'no_such_function');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(ms) AS total_ms', group_by => 'page',
       window_size => '1 hour', output_mode => 'update', sink_function => 'small_sink');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(ms) AS total_ms', group_by => 'page',
       window_size => '1 hour', output_mode => 'update', sink_function => 'wrong_sink');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(ms) AS total_ms', group_by => 'page',
       window_size => '1 hour', output_mode => 'update', sink_function => 'text_sink');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(ms) AS total_ms', group_by => 'page',
       window_size => '1 hour', output_mode => 'update', sink_function => 'scalar_sink');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(ms) AS total_ms', group_by => 'page',
       window_size => '1 hour', output_mode => 'update', sink_function => 'overloaded');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(ms) AS total_ms', group_by => 'page',
       window_size => '1 hour', output_mode => 'update', sink => 'bad_out',
       sink_function => 'deliver_stats');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(ms) AS total_ms', group_by => 'page',
       window_size => '1 hour', output_mode => 'update', sink_function => 'deliver_stats',
       sink_merge => 'WHEN NOT MATCHED THEN DO NOTHING');
-- the full signature picks one of the overloads
SELECT streamagg.create_query(name => 'good', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(ms) AS total_ms', group_by => 'page',
       window_size => '1 hour', output_mode => 'update',
       sink_function => 'overloaded(bigint, page_row[])');
SELECT name, sink_function FROM streamagg.queries WHERE name IN ('bad', 'good');
SELECT count(*) AS bad_tables FROM pg_class WHERE relname IN ('bad', 'bad_out');

-- A function sink dropped under its query: the trigger fails and says so;
-- drop_query still works (drop_sink has no table to drop).
DROP FUNCTION overloaded(bigint, page_row[]);
\set VERBOSITY terse
SELECT streamagg.process('good');
\set VERBOSITY default
SELECT streamagg.drop_query('good', drop_sink => true);

SELECT streamagg.drop_query(name, drop_sink => true) FROM streamagg.queries ORDER BY name;
DROP TABLE clicks, visits, page_stats, page_log, fail_batches, before_replay, session_deliveries;
DROP FUNCTION deliver_stats, deliver_log, deliver_sessions, check_trigger, small_sink,
              wrong_sink, text_sink, scalar_sink, overloaded;
DROP TYPE page_row, page_small, page_wrong, session_row;
DROP SEQUENCE failed_batch, calls;
