-- Late rows kept (docs/semantics.md §12, docs/event-time.md): every source
-- row dropped as late goes, once, into the late sink, with the batch that
-- dropped it and the watermark W(N-1) that made it late.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

-- The seed example (hourly revenue, 15-minute watermark) with a late sink.
CREATE TABLE sales (ts timestamptz, amount numeric, store text);
SELECT streamagg.create_query(name => 'revenue', source => 'sales',
       event_time => 'ts', aggregates => 'sum(amount) AS revenue',
       window_size => '1 hour', watermark => '15 minutes',
       late_sink => 'sales_late');
-- The late sink was created: the source's columns (without streamagg_xid),
-- then late_batch_id and late_watermark.
\d sales_late
SELECT late_sink FROM streamagg.queries WHERE name = 'revenue';

-- Batch 0: $15 at 14:40, $10 at 14:30, $30 at 15:10 -> watermark 14:55.
INSERT INTO sales VALUES
  ('2024-05-01 14:40+00', 15, 'a'), ('2024-05-01 14:30+00', 10, 'a'),
  ('2024-05-01 15:10+00', 30, 'b');
SELECT streamagg.process('revenue');
-- Batch 1: $20 at 15:20 -> watermark 15:05; [14:00,15:00) $25 is emitted.
INSERT INTO sales VALUES ('2024-05-01 15:20+00', 20, 'b');
SELECT streamagg.process('revenue');
TABLE revenue;
-- Batch 2: a $10 row at 14:50 arrives.  Its window [14:00,15:00) ends at
-- 15:00 <= W(1) = 15:05: it is late.  The $5 row at 15:30 is not.
INSERT INTO sales VALUES ('2024-05-01 14:50+00', 10, 'c'),
                         ('2024-05-01 15:30+00', 5, 'c');
SELECT streamagg.process('revenue');
-- the late row, whole, with batch 2 and the watermark it missed
SELECT * FROM sales_late;
-- the sink is unchanged: $25 stays $25
TABLE revenue;
SELECT batch_id, num_input_rows, late_rows_dropped, late_rows_written
  FROM streamagg.progress WHERE name = 'revenue' ORDER BY batch_id;

-- Exactly once: a trigger rolled back writes nothing; its retry reads the
-- same rows against the same W(N-1) and writes each late row once.
-- W(2) = 15:30 - 15 min = 15:15 closes [13:00,14:00) and [14:00,15:00).
INSERT INTO sales VALUES ('2024-05-01 14:59:59+00', 1, 'd'),
                         ('2024-05-01 13:00+00', 2, 'e');
BEGIN;
SELECT streamagg.process('revenue');
SELECT count(*) AS late_rows_inside FROM sales_late;
ROLLBACK;
SELECT count(*) AS late_rows_after_rollback FROM sales_late;
SELECT streamagg.process('revenue');
SELECT * FROM sales_late ORDER BY late_batch_id, ts;
-- A trigger that fails at any of its phases (the test-only fault points)
-- leaves nothing behind; the retry writes the late row once.
INSERT INTO sales VALUES ('2024-05-01 14:10+00', 7, 'f');
SELECT streamagg.fail_next_trigger('revenue', 'after_read');
SELECT streamagg.process('revenue');
SELECT streamagg.fail_next_trigger('revenue', 'after_state');
SELECT streamagg.process('revenue');
SELECT streamagg.fail_next_trigger('revenue', 'during_sink');
SELECT streamagg.process('revenue');
SELECT streamagg.fail_next_trigger('revenue', 'before_commit');
SELECT streamagg.process('revenue');
SELECT count(*) AS late_rows_after_faults FROM sales_late WHERE store = 'f';
SELECT streamagg.process('revenue');
SELECT ts, amount, store, late_batch_id, late_watermark FROM sales_late WHERE store = 'f';
SELECT streamagg.drop_query('revenue', drop_sink => true);
DROP TABLE sales_late;

-- Sliding windows (size 10 min, slide 5 min, folded by panes): a row is
-- late for each of its windows that W(N-1) closed, and counted per window
-- in late_rows_dropped, but it goes to the late sink once.
TRUNCATE sales;
SELECT streamagg.create_query(name => 'sliding', source => 'sales',
       event_time => 'ts', aggregates => 'count(*) AS n, sum(amount) AS s',
       window_size => '10 minutes', window_slide => '5 minutes',
       watermark => '0 seconds', output_mode => 'update',
       late_sink => 'sliding_late');
INSERT INTO sales VALUES ('2024-05-01 12:30+00', 1, 'x');   -- W = 12:30
SELECT streamagg.process('sliding');
-- 12:22: windows [12:15,12:25) and [12:20,12:30), both closed: late twice.
-- 12:27: windows [12:20,12:30) closed, [12:25,12:35) open: late once, and
-- still counted in the open window.  12:31: in time.
INSERT INTO sales VALUES ('2024-05-01 12:22+00', 2, 'x'),
                         ('2024-05-01 12:27+00', 3, 'x'),
                         ('2024-05-01 12:31+00', 4, 'x');
SELECT streamagg.process('sliding');
SELECT ts, amount, late_batch_id, late_watermark FROM sliding_late ORDER BY ts;
SELECT batch_id, late_rows_dropped, late_rows_written
  FROM streamagg.progress WHERE name = 'sliding' ORDER BY batch_id;
-- the windows written (update mode): 12:27 counts in [12:25,12:35),
-- 12:22 nowhere
TABLE sliding ORDER BY window_start;
-- the same by plain SQL: every source row inside each window written
SELECT w.window_start, count(*) AS n, sum(amount) AS s
  FROM sliding w JOIN sales ON ts >= w.window_start AND ts < w.window_end
 GROUP BY 1 ORDER BY 1;
SELECT streamagg.drop_query('sliding', drop_sink => true);
DROP TABLE sliding_late;

-- Session windows: a row is late when its own session [t, t + gap) is
-- closed by W(N-1).
TRUNCATE sales;
SELECT streamagg.create_query(name => 'visits', source => 'sales',
       event_time => 'ts', aggregates => 'count(*) AS n', group_by => 'store',
       session_gap => '10 minutes', watermark => '0 seconds',
       late_sink => 'visits_late');
INSERT INTO sales VALUES ('2024-05-01 12:30+00', 1, 'x');   -- W = 12:30
SELECT streamagg.process('visits');
-- 12:19: session [12:19,12:29) closed: late.  12:21: [12:21,12:31) open.
INSERT INTO sales VALUES ('2024-05-01 12:19+00', 2, 'x'),
                         ('2024-05-01 12:21+00', 3, 'y');
SELECT streamagg.process('visits');
SELECT ts, amount, store, late_batch_id, late_watermark FROM visits_late;
SELECT streamagg.drop_query('visits', drop_sink => true);
DROP TABLE visits_late;

-- An existing late sink is accepted when it has the columns (in any order,
-- with more columns, which get their defaults).
CREATE TABLE kept (id bigserial PRIMARY KEY, late_watermark timestamptz,
                   late_batch_id bigint, store text, amount numeric,
                   ts timestamptz, noted_at text DEFAULT 'by default');
TRUNCATE sales;
SELECT streamagg.create_query(name => 'kept', source => 'sales',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 minute', watermark => '0 seconds', sink => 'kept_out',
       late_sink => 'kept');
INSERT INTO sales VALUES ('2024-05-01 12:30+00', 1, 'x');
SELECT streamagg.process('kept');
INSERT INTO sales VALUES ('2024-05-01 12:00+00', 7, 'late');
SELECT streamagg.process('kept');
SELECT id, store, amount, ts, late_batch_id, late_watermark, noted_at FROM kept;
SELECT streamagg.drop_query('kept', drop_sink => true);

-- A timestamp (without time zone) event time gives a timestamp late_watermark.
CREATE TABLE readings (at timestamp, v int);
SELECT streamagg.create_query(name => 'readings', source => 'readings',
       event_time => 'at', aggregates => 'sum(v) AS v',
       window_size => '1 minute', watermark => '0 seconds',
       sink => 'readings_out', late_sink => 'readings_late');
\d readings_late
SELECT streamagg.drop_query('readings', drop_sink => true);
DROP TABLE readings_late, readings;

-- Rejections: nothing is created.
-- an existing late sink that lacks a column, or has another type
CREATE TABLE bad_late (ts timestamptz, amount numeric, store text, late_batch_id int);
SELECT streamagg.create_query(name => 'bad', source => 'sales',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 minute', watermark => '0 seconds', late_sink => 'bad_late');
ALTER TABLE bad_late ALTER late_batch_id TYPE bigint, ADD late_watermark text;
SELECT streamagg.create_query(name => 'bad', source => 'sales',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 minute', watermark => '0 seconds', late_sink => 'bad_late');
-- the source or the sink as late sink
SELECT streamagg.create_query(name => 'bad', source => 'sales',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 minute', watermark => '0 seconds', late_sink => 'sales');
SELECT streamagg.create_query(name => 'bad', source => 'sales',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 minute', watermark => '0 seconds', late_sink => 'bad');
-- a view
CREATE VIEW late_view AS SELECT * FROM sales;
SELECT streamagg.create_query(name => 'bad', source => 'sales',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 minute', watermark => '0 seconds', late_sink => 'late_view');
-- a source with a column named like one the late sink adds
CREATE TABLE odd (ts timestamptz, late_batch_id bigint);
SELECT streamagg.create_query(name => 'bad', source => 'odd',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 minute', watermark => '0 seconds', late_sink => 'odd_late');
SELECT count(*) AS queries FROM streamagg.queries;
SELECT to_regclass('bad') AS sink, to_regclass('odd_late') AS late_sink;

-- The owner needs INSERT on the late sink, checked at create_query, as
-- the owner.
CREATE ROLE sa_late_owner;
GRANT SELECT ON sales TO sa_late_owner;
GRANT USAGE, CREATE ON SCHEMA public TO sa_late_owner;
CREATE TABLE others_late (ts timestamptz, amount numeric, store text,
                          late_batch_id bigint, late_watermark timestamptz);
GRANT SELECT ON others_late TO sa_late_owner;
ALTER TABLE sales OWNER TO sa_late_owner;
SET ROLE sa_late_owner;
SELECT streamagg.create_query(name => 'bad', source => 'sales',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 minute', watermark => '0 seconds', late_sink => 'others_late');
RESET ROLE;
SELECT count(*) AS queries FROM streamagg.queries;

DROP TABLE others_late, bad_late, odd, kept;
DROP VIEW late_view;
DROP TABLE sales;
REVOKE ALL ON SCHEMA public FROM sa_late_owner;
DROP ROLE sa_late_owner;
