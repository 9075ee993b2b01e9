-- Window assignment (DESIGN.md 3.1): intervals are [start, end), starts are
-- aligned to the Unix epoch plus window_offset, with floor-mod so that
-- negative offsets and times before 1970 work.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE TABLE ticks (ts timestamptz, k text, v int);

-- Sliding windows: size 10 s, slide 5 s; a row falls into two windows.
SELECT streamagg.create_query(name => 'sliding', source => 'ticks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(v) AS total', window_size => '10 seconds',
       window_slide => '5 seconds', output_mode => 'complete');
-- Size 10 s, slide 4 s: ceil(10/4) = 3 candidate windows, of which only
-- those with start <= t < end are kept.
SELECT streamagg.create_query(name => 'sliding_uneven', source => 'ticks', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '10 seconds',
       window_slide => '4 seconds', output_mode => 'complete');
-- Tumbling 1 hour shifted by 15 minutes; and by -15 minutes.
SELECT streamagg.create_query(name => 'offset_pos', source => 'ticks', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '1 hour', window_offset => '15 minutes',
       output_mode => 'complete');
SELECT streamagg.create_query(name => 'offset_neg', source => 'ticks', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '1 hour', window_offset => '-15 minutes',
       output_mode => 'complete');

INSERT INTO ticks (ts, k, v) VALUES
  ('2024-05-01 12:00:03+00', 'a', 1),   -- sliding: [11:59:55,12:00:05) and [12:00:00,12:00:10)
  ('2024-05-01 12:00:05+00', 'a', 2),   -- a window start is inclusive, an end exclusive
  ('2024-05-01 12:10:00+00', 'b', 4),   -- offset +15 min: in [11:15,12:15)
  ('2024-05-01 12:20:00+00', 'b', 8),
  ('1969-12-31 23:59:58+00', 'old', 16); -- before the epoch
SELECT streamagg.process(name) FROM unnest('{sliding,sliding_uneven,offset_pos,offset_neg}'::text[]) AS name;

TABLE sliding ORDER BY window_start;
TABLE sliding_uneven ORDER BY window_start;
TABLE offset_pos ORDER BY window_start;
TABLE offset_neg ORDER BY window_start;

SELECT streamagg.drop_query(name, true) FROM unnest('{sliding,sliding_uneven,offset_pos,offset_neg}'::text[]) AS name;
TRUNCATE ticks;

-- Rows with a NULL event time are skipped and counted (3.4 step 2), never
-- fatal.  NULL group keys form a group of their own and upsert like any
-- other value: the sink's key is NULLS NOT DISTINCT.
SELECT streamagg.create_query(name => 'nulls', source => 'ticks', event_time => 'ts',
       aggregates => 'count(*) AS n, count(v) AS nv, sum(v) AS total',
       group_by => 'k', window_size => '1 minute', output_mode => 'update');
INSERT INTO ticks (ts, k, v) VALUES
  ('2024-05-01 12:00:01+00', NULL, 1), ('2024-05-01 12:00:02+00', NULL, NULL),
  ('2024-05-01 12:00:03+00', 'x', 3), (NULL, 'x', 100), ('infinity', 'x', 100);
SELECT streamagg.process('nulls');
TABLE nulls ORDER BY k NULLS FIRST;
-- a second batch updates the NULL key's row in place
INSERT INTO ticks (ts, k, v) VALUES ('2024-05-01 12:00:30+00', NULL, 5);
SELECT streamagg.process('nulls');
TABLE nulls ORDER BY k NULLS FIRST;
SELECT batch_id, num_input_rows, null_event_time_rows, state_rows_total, state_rows_updated,
       sink_rows_written FROM streamagg.progress WHERE name = 'nulls' ORDER BY batch_id;
\d nulls
SELECT streamagg.drop_query('nulls', true);

-- Several group keys, one an expression with an alias; no window at all
-- (update mode needs none): a streaming GROUP BY.
SELECT streamagg.create_query(name => 'by_key', source => 'ticks', event_time => 'ts',
       aggregates => 'max(v) AS top, min(ts) AS first_seen, avg(v) AS mean',
       group_by => 'k, v % 2 AS parity', output_mode => 'update');
SELECT streamagg.process('by_key');
TABLE by_key ORDER BY k NULLS FIRST, parity NULLS FIRST;
SELECT streamagg.drop_query('by_key', true);
TRUNCATE ticks;

-- Many windows per row: 1 hour sliding by 1 minute, every row in 60
-- windows.  Rows are aggregated per pane (minute) first and each pane is
-- combined into its windows; over three batches the result equals a plain
-- GROUP BY over the windows each row falls into.
SELECT streamagg.create_query(name => 'hourly_by_minute', source => 'ticks', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(v) AS total, min(v) AS low, max(v) AS high, avg(v) AS mean',
       group_by => 'k', window_size => '1 hour', window_slide => '1 minute',
       output_mode => 'update');
INSERT INTO ticks SELECT '2024-05-01 10:00+00'::timestamptz + (g * 7 % 10800) * interval '1 second',
       'k' || g % 3, g FROM generate_series(1, 3000) g;
SELECT streamagg.process('hourly_by_minute');
INSERT INTO ticks SELECT '2024-05-01 10:00+00'::timestamptz + (g * 11 % 10800) * interval '1 second',
       'k' || g % 3, g FROM generate_series(3001, 6000) g;
SELECT streamagg.process('hourly_by_minute');
INSERT INTO ticks SELECT '2024-05-01 10:00+00'::timestamptz + (g * 13 % 10800) * interval '1 second',
       'k' || g % 4, NULL FROM generate_series(6001, 6500) g;
SELECT streamagg.process('hourly_by_minute');
SELECT count(*) AS windows, sum(n) AS row_windows FROM hourly_by_minute;
WITH expected AS (
  SELECT s AS window_start, s + interval '1 hour' AS window_end, k, count(*) AS n,
         sum(v) AS total, min(v) AS low, max(v) AS high, avg(v) AS mean
    FROM ticks,
         generate_series(date_trunc('minute', ts) - interval '59 minutes',
                         date_trunc('minute', ts), interval '1 minute') AS s
   GROUP BY 1, 2, 3)
SELECT 'missing' AS side, * FROM (TABLE expected EXCEPT
  SELECT window_start, window_end, k, n, total, low, high, mean FROM hourly_by_minute) m
UNION ALL
SELECT 'extra', * FROM (SELECT window_start, window_end, k, n, total, low, high, mean
  FROM hourly_by_minute EXCEPT TABLE expected) e;
SELECT streamagg.drop_query('hourly_by_minute', true);
DROP TABLE ticks;

-- Sliding windows combine their panes.  A pane whose rows all fail an
-- aggregate's FILTER brings no state; the window's value is then NULL, as
-- GROUP BY gives, and the window still has its row.  (PostgreSQL 15.18's
-- numeric_avg_combine returns a NULL pointer for two missing states, which
-- crashed the server when the window's state was stored.)
CREATE TABLE filtered (ts timestamptz, k int, v numeric);
SELECT streamagg.create_query(name => 'filtered_slides', source => 'filtered',
  event_time => 'ts', group_by => 'k', window_size => '3 seconds', window_slide => '1 second',
  output_mode => 'update',
  aggregates => 'count(*) AS n, sum(v) FILTER (WHERE v > 10) AS big, avg(v) FILTER (WHERE v > 10) AS big_mean');
INSERT INTO filtered VALUES ('2024-01-01 00:00:00.5+00', 1, 3), ('2024-01-01 00:00:02.5+00', 1, 12);
SELECT streamagg.process('filtered_slides');
SELECT window_start, window_end, k, n, big, big_mean FROM filtered_slides ORDER BY 1;
-- the same by GROUP BY (nothing missing, nothing extra)
WITH expected AS (
  SELECT s AS window_start, s + interval '3 seconds' AS window_end, k, count(*) AS n,
         sum(v) FILTER (WHERE v > 10) AS big, avg(v) FILTER (WHERE v > 10) AS big_mean
    FROM filtered,
         generate_series(date_trunc('second', ts) - interval '2 seconds',
                         date_trunc('second', ts), interval '1 second') AS s
   GROUP BY 1, 2, 3)
SELECT 'missing' AS side, * FROM (TABLE expected EXCEPT
  SELECT window_start, window_end, k, n, big, big_mean FROM filtered_slides) m
UNION ALL
SELECT 'extra', * FROM (SELECT window_start, window_end, k, n, big, big_mean
  FROM filtered_slides EXCEPT TABLE expected) e;
SELECT streamagg.drop_query('filtered_slides', true);
DROP TABLE filtered;
