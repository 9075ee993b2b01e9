-- Progress (DESIGN.md 3.7): one row per batch in streamagg.progress with the
-- counts of the batch; late rows are dropped and counted, never fatal.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE TABLE clicks (ts timestamptz, page text);
SELECT streamagg.create_query(name => 'clicks_per_minute', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS hits', group_by => 'page',
       window_size => '1 minute', watermark => '30 seconds', output_mode => 'append');

INSERT INTO clicks VALUES ('2024-05-01 10:00:10+00', '/a'), ('2024-05-01 10:00:20+00', '/b'),
                          ('2024-05-01 10:00:50+00', '/a'), ('2024-05-01 10:01:40+00', '/a');
SELECT streamagg.process('clicks_per_minute');   -- watermark 10:01:10 closes 10:00
INSERT INTO clicks VALUES ('2024-05-01 10:00:59+00', '/a'),  -- late: its window closed
                          (NULL, '/a'),                     -- skipped
                          ('2024-05-01 10:01:05+00', '/c');
SELECT streamagg.process('clicks_per_minute');

SELECT batch_id, num_input_rows, event_time_min, event_time_max, watermark,
       state_rows_total, state_rows_updated, late_rows_dropped, null_event_time_rows,
       sink_rows_written, duration_ms >= 0 AS timed,
       processed_rows_per_second > 0 AS has_rate,
       state_memory_bytes > 0 AS state_memory_measured
  FROM streamagg.progress WHERE name = 'clicks_per_minute' ORDER BY batch_id;
TABLE clicks_per_minute ORDER BY window_start, page;
-- where the time went: aggregating, the sink, the state log; the phases
-- are measured one after another within the trigger's duration (to the
-- microsecond: the sums are of floating-point milliseconds)
SELECT batch_id, aggregate_ms > 0 AS aggregated, sink_ms >= 0 AS sink_timed,
       state_log_ms > 0 AS logged,
       round((aggregate_ms + sink_ms + state_log_ms - duration_ms)::numeric, 3) <= 0
         AS within_duration
  FROM streamagg.progress WHERE name = 'clicks_per_minute' ORDER BY batch_id;

SELECT name, source, sink, output_mode, status, watermark, last_batch_id,
       last_batch_at IS NOT NULL AS has_run, last_error, event_time, aggregates,
       group_by, window_size, window_slide, window_offset, session_gap,
       watermark_delay, trigger_interval
  FROM streamagg.queries;
SELECT streamagg.drop_query('clicks_per_minute', true);
DROP TABLE clicks;

-- The progress view keeps each query's last 100 batches (docs/semantics.md
-- §7): every batch adds its row, and the one 100 batches back goes.  Once
-- every 100 batches older rows go too: the row planted below, as if left
-- by an older version, is gone after batch 200.  Batches are numbered
-- from 0: 150 triggers make batches 0 to 149.
CREATE TABLE keep_src (ts timestamptz, n int);
SELECT streamagg.create_query(name => 'keep', source => 'keep_src', event_time => 'ts',
       aggregates => 'count(*) AS c', window_size => '1 hour', output_mode => 'update');
-- n batches of one row each, from "first" on, as statements for \gexec
CREATE FUNCTION pg_temp.keep_batches(first timestamptz, n int)
  RETURNS TABLE (insert_row text, run_trigger text) LANGUAGE sql
  AS $$ SELECT format('INSERT INTO keep_src VALUES (%L, 1)', first + g * interval '1 second'),
               'SELECT streamagg.process(''keep'')'
          FROM generate_series(1, n) g $$;
\set ECHO none
\o /dev/null
SELECT * FROM pg_temp.keep_batches('2024-01-01 00:00+00', 150) \gexec
\o
\set ECHO all
SELECT count(*), min(batch_id), max(batch_id) FROM streamagg.progress WHERE name = 'keep';
CREATE TEMP TABLE planted AS SELECT * FROM streamagg.batch_log
  WHERE query_id = (SELECT query_id FROM streamagg.queries WHERE name = 'keep')
  ORDER BY batch_id DESC LIMIT 1;
UPDATE planted SET batch_id = 3;
INSERT INTO streamagg.batch_log SELECT * FROM planted;
SELECT count(*), min(batch_id), max(batch_id) FROM streamagg.progress WHERE name = 'keep';
\set ECHO none
\o /dev/null
SELECT * FROM pg_temp.keep_batches('2024-01-01 01:00+00', 55) \gexec
\o
\set ECHO all
SELECT count(*), min(batch_id), max(batch_id) FROM streamagg.progress WHERE name = 'keep';
SELECT streamagg.drop_query('keep', drop_sink => true);
DROP TABLE keep_src;
