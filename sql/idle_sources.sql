-- Idle sources (docs/semantics.md §11, docs/event-time.md): when no event
-- arrives for idle_timeout, a trigger without events moves the watermark as
-- if event time had kept pace with the wall clock, so that append mode
-- emits the last windows.  Times here are short; the test asserts what is
-- emitted, never exact clock values.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE clicks (ts timestamptz, page text);
-- 2-second windows, no allowed lateness, idle after 1 second
SELECT streamagg.create_query(name => 'idle', source => 'clicks',
       event_time => 'ts', aggregates => 'count(*) AS n', group_by => 'page',
       window_size => '2 seconds', watermark => '0 seconds',
       idle_timeout => '1 second');
-- the same without idle_timeout, and with one far away
SELECT streamagg.create_query(name => 'never_idle', source => 'clicks',
       event_time => 'ts', aggregates => 'count(*) AS n', group_by => 'page',
       window_size => '2 seconds', watermark => '0 seconds');
SELECT streamagg.create_query(name => 'idle_later', source => 'clicks',
       event_time => 'ts', aggregates => 'count(*) AS n', group_by => 'page',
       window_size => '2 seconds', watermark => '0 seconds',
       idle_timeout => '1 hour');
SELECT name, idle_timeout FROM streamagg.queries ORDER BY name;

-- Batch 0: events at 12:00:00.5 and 12:00:01 -> W = 12:00:01; the window
-- [12:00:00, 12:00:02) stays open, and in append mode nothing is emitted.
INSERT INTO clicks VALUES ('2024-05-01 12:00:00.5+00', 'home'),
                          ('2024-05-01 12:00:01+00', 'home');
SELECT streamagg.process('idle') AS idle, streamagg.process('never_idle') AS never_idle,
       streamagg.process('idle_later') AS idle_later;
SELECT count(*) AS emitted FROM idle;

-- Right away the source is not idle yet (less than 1 second since the
-- trigger with events): a trigger changes nothing and writes nothing.
SELECT streamagg.process('idle');
SELECT last_batch_id FROM streamagg.queries WHERE name = 'idle';

-- After 2.5 seconds without events, the idle trigger moves W to at least
-- 12:00:01 + 2.5 s = 12:00:03.5, closing [12:00:00, 12:00:02).
SELECT pg_sleep(2.5);
-- An idle trigger that rolls back leaves nothing behind.
BEGIN;
SELECT streamagg.process('idle');
SELECT count(*) AS emitted_inside FROM idle;
ROLLBACK;
SELECT count(*) AS emitted_after_rollback FROM idle;
SELECT streamagg.process('idle') AS rows_read;
TABLE idle;
-- the same window by plain SQL
SELECT date_bin('2 seconds', ts, 'epoch') AS window_start, page, count(*) AS n
  FROM clicks GROUP BY 1, 2;
-- a progress row with 0 input rows; the watermark moved by the time the
-- source was idle (at least 2.5 s, and surely less than a minute)
SELECT batch_id, num_input_rows, sink_rows_written, state_rows_total,
       watermark >= '2024-05-01 12:00:03.5+00' AS moved_with_the_clock,
       watermark < '2024-05-01 12:01:01+00' AS not_beyond_the_clock,
       event_time_max IS NULL AS no_event_times
  FROM streamagg.progress WHERE name = 'idle' ORDER BY batch_id;

-- Without idle_timeout, or before it has passed, the window stays open.
SELECT streamagg.process('never_idle') AS never_idle,
       streamagg.process('idle_later') AS idle_later;
SELECT (SELECT count(*) FROM never_idle) AS never_idle_emitted,
       (SELECT count(*) FROM idle_later) AS idle_later_emitted;
SELECT name, last_batch_id, watermark FROM streamagg.queries
 WHERE name <> 'idle' ORDER BY name;

-- Events again: a row older than the idle watermark is late, like any row
-- whose window the watermark closed; a new one opens a window.
INSERT INTO clicks VALUES ('2024-05-01 12:00:01.5+00', 'home'),
                          ('2024-05-01 13:00:00+00', 'cart');
SELECT streamagg.process('idle');
SELECT batch_id, num_input_rows, late_rows_dropped
  FROM streamagg.progress WHERE name = 'idle' ORDER BY batch_id DESC LIMIT 1;
TABLE idle;

SELECT streamagg.drop_query(name, drop_sink => true)
  FROM unnest(ARRAY['idle', 'never_idle', 'idle_later']) AS name;

-- Rejections: nothing is created.
-- idle_timeout without a watermark
SELECT streamagg.create_query(name => 'bad', source => 'clicks',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 minute', output_mode => 'update',
       idle_timeout => '30 seconds');
-- not positive, or in months
SELECT streamagg.create_query(name => 'bad', source => 'clicks',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 minute', watermark => '1 minute',
       idle_timeout => '0 seconds');
SELECT streamagg.create_query(name => 'bad', source => 'clicks',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 minute', watermark => '1 minute',
       idle_timeout => '1 month');
SELECT count(*) AS queries, to_regclass('bad') AS sink FROM streamagg.queries;
DROP TABLE clicks;
