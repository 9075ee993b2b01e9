-- The durable state (DESIGN.md 4.3; src/state.c) is a log, like Spark's
-- state store: per query the latest snapshot of its open groups, then one
-- delta per trigger holding the groups that trigger changed or removed.
-- A trigger writes its changes packed into a few rows, never one row per
-- group.  When the deltas since the snapshot would hold more records than
-- the state has groups plus 10000, the trigger writes a snapshot instead
-- and the older rows go, so the log stays within about twice the state.
-- A reload (after a rolled-back trigger, a killed worker, a crash) replays
-- the snapshot and the deltas, and so rebuilds exactly the committed state.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE FUNCTION pg_temp.log_of(q text)
RETURNS TABLE (batch_id bigint, part int, snapshot boolean, groups int)
LANGUAGE sql AS $$
	SELECT l.batch_id, l.part, l.snapshot, l.groups
	  FROM streamagg.state_log l JOIN streamagg.query_def d USING (query_id)
	 WHERE d.name = q ORDER BY 1, 2 $$;

-- The records are compressed with lz4 where the server has it, else stored
-- uncompressed (pglz costs more than it saves).
SELECT a.attcompression = 'l' AND a.attstorage = 'x'
       OR a.attcompression = '' AND a.attstorage = 'e' AS compressed_where_possible,
       (a.attcompression = 'l') = ('lz4' = ANY (s.enumvals)) AS lz4_iff_available
  FROM pg_attribute a, pg_settings s
 WHERE a.attrelid = 'streamagg.state_log'::regclass AND a.attname = 'records'
   AND s.name = 'default_toast_compression';

CREATE TABLE clicks (ts timestamptz, page int);
SELECT streamagg.create_query(name => 'page_counts', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'page',
       window_size => '1 hour', output_mode => 'update');

-- batch 0: 6000 new groups, logged as one delta row of 6000 records
INSERT INTO clicks SELECT '2024-05-01 10:00+00', p FROM generate_series(1, 6000) p;
SELECT streamagg.process('page_counts');
SELECT * FROM pg_temp.log_of('page_counts');
-- batch 1 changes the same 6000 groups: 12000 logged records <= 6000 + 10000
INSERT INTO clicks SELECT '2024-05-01 10:10+00', p FROM generate_series(1, 6000) p;
SELECT streamagg.process('page_counts');
SELECT * FROM pg_temp.log_of('page_counts');
-- batch 2 would make it 18000 > 16000: a snapshot of the 6000 groups
-- replaces the deltas
INSERT INTO clicks SELECT '2024-05-01 10:20+00', p FROM generate_series(1, 6000) p;
SELECT streamagg.process('page_counts');
SELECT * FROM pg_temp.log_of('page_counts');
-- batch 3 touches two groups, one of them new: a delta of 2 records
INSERT INTO clicks VALUES ('2024-05-01 10:30+00', 1), ('2024-05-01 11:00+00', 1);
SELECT streamagg.process('page_counts');
SELECT * FROM pg_temp.log_of('page_counts');

-- A trigger that rolls back leaves shared memory untrusted: the next one
-- reloads the state from the snapshot and the delta.  Page 1 of 10:00
-- counts 4 only if the delta of batch 3 was replayed over the snapshot.
INSERT INTO clicks VALUES ('2024-05-01 10:40+00', 1), ('2024-05-01 10:40+00', 2);
BEGIN;
SELECT streamagg.process('page_counts');
ROLLBACK;
SELECT streamagg.process('page_counts');
SELECT * FROM page_counts WHERE page IN (1, 2, 3) ORDER BY window_start, page;
SELECT * FROM pg_temp.log_of('page_counts');
-- the sink equals a GROUP BY over every event
SELECT count(*) AS sink_rows,
       (SELECT count(*) FROM (
          SELECT window_start, window_end, page, n FROM page_counts
          EXCEPT
          SELECT date_bin('1 hour', ts, 'epoch'), date_bin('1 hour', ts, 'epoch') + interval '1 hour',
                 page, count(*)
            FROM clicks GROUP BY 1, 2, 3) d) AS differing
  FROM page_counts;

-- Windows the watermark closes are logged as removed, so a reload does
-- not bring them back (append would emit them a second time).
CREATE TABLE views (ts timestamptz, page text);
SELECT streamagg.create_query(name => 'closed_views', source => 'views', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'page',
       window_size => '1 hour', watermark => '0 seconds', output_mode => 'append');
INSERT INTO views VALUES ('2024-05-01 10:00+00', 'a'), ('2024-05-01 10:10+00', 'b');
SELECT streamagg.process('closed_views');
-- 11:05 closes [10:00, 11:00): one changed group and two removed ones
INSERT INTO views VALUES ('2024-05-01 11:05+00', 'a');
SELECT streamagg.process('closed_views');
SELECT * FROM pg_temp.log_of('closed_views');
INSERT INTO views VALUES ('2024-05-01 11:10+00', 'a');
BEGIN;
SELECT streamagg.process('closed_views');
ROLLBACK;
-- reloaded: only [11:00, 12:00) a is open, and batch 2 emits that one row
INSERT INTO views VALUES ('2024-05-01 12:00+00', 'b');
SELECT streamagg.process('closed_views');
TABLE closed_views ORDER BY window_start, page;
SELECT batch_id, state_rows_total, sink_rows_written FROM streamagg.progress
 WHERE name = 'closed_views' ORDER BY batch_id;

-- Window groups with a text key and numeric states are kept as tuples in
-- shared memory, and the log of a trigger reads their states from there
-- (working_set.c).  Here the sums grow by digits, so a group's stored
-- states change length (a new tuple replaces the old one), and the last
-- trigger both touches and closes [10:00, 11:00) of 'a', whose row is then
-- finished from its live states.  The rollback in between makes the next
-- trigger reload everything from the log.
CREATE TABLE payments (ts timestamptz, customer text, amount numeric(12,2));
SELECT streamagg.create_query(name => 'payment_totals', source => 'payments',
       event_time => 'ts', aggregates => 'count(*) AS n, sum(amount) AS total, avg(amount) AS mean',
       group_by => 'customer', window_size => '1 hour', watermark => '0 seconds',
       output_mode => 'append');
SELECT streamagg.create_query(name => 'payment_running', source => 'payments',
       event_time => 'ts', aggregates => 'count(*) AS n, sum(amount) AS total, avg(amount) AS mean',
       group_by => 'customer', window_size => '1 hour', output_mode => 'update');
INSERT INTO payments VALUES ('2024-05-01 10:00+00', 'a', 1.00), ('2024-05-01 10:05+00', 'b', 2.50);
SELECT streamagg.process('payment_totals'), streamagg.process('payment_running');
INSERT INTO payments VALUES ('2024-05-01 10:30+00', 'a', 9999999999.99),
       ('2024-05-01 10:40+00', 'c', 0.01), ('2024-05-01 10:45+00', 'b', 0.25);
SELECT streamagg.process('payment_totals'), streamagg.process('payment_running');
INSERT INTO payments VALUES ('2024-05-01 10:50+00', 'a', 5.00);
BEGIN;
SELECT streamagg.process('payment_totals'), streamagg.process('payment_running');
ROLLBACK;
INSERT INTO payments VALUES ('2024-05-01 11:00+00', 'd', 1.00);
SELECT streamagg.process('payment_totals'), streamagg.process('payment_running');
-- append emitted the closed window once, update every window: each as GROUP BY
TABLE payment_totals ORDER BY window_start, customer;
SELECT 'payment_totals' AS sink, count(*) AS differing FROM (
  (SELECT window_start, window_end, customer, n, total, mean FROM payment_totals
   EXCEPT
   SELECT date_bin('1 hour', ts, 'epoch'), date_bin('1 hour', ts, 'epoch') + interval '1 hour',
          customer, count(*), sum(amount), avg(amount)
     FROM payments WHERE ts < '2024-05-01 11:00+00' GROUP BY 1, 2, 3)
  UNION ALL
  (SELECT date_bin('1 hour', ts, 'epoch'), date_bin('1 hour', ts, 'epoch') + interval '1 hour',
          customer, count(*), sum(amount), avg(amount)
     FROM payments WHERE ts < '2024-05-01 11:00+00' GROUP BY 1, 2, 3
   EXCEPT
   SELECT window_start, window_end, customer, n, total, mean FROM payment_totals)) d
UNION ALL
SELECT 'payment_running', count(*) FROM (
  (SELECT window_start, window_end, customer, n, total, mean FROM payment_running
   EXCEPT
   SELECT date_bin('1 hour', ts, 'epoch'), date_bin('1 hour', ts, 'epoch') + interval '1 hour',
          customer, count(*), sum(amount), avg(amount)
     FROM payments GROUP BY 1, 2, 3)
  UNION ALL
  (SELECT date_bin('1 hour', ts, 'epoch'), date_bin('1 hour', ts, 'epoch') + interval '1 hour',
          customer, count(*), sum(amount), avg(amount)
     FROM payments GROUP BY 1, 2, 3
   EXCEPT
   SELECT window_start, window_end, customer, n, total, mean FROM payment_running)) d;
SELECT streamagg.drop_query('payment_totals', drop_sink => true);
SELECT streamagg.drop_query('payment_running', drop_sink => true);
DROP TABLE payments;

-- drop_query removes the query's log
SELECT array_agg(query_id) AS dropped FROM streamagg.query_def
 WHERE name IN ('page_counts', 'closed_views') \gset
SELECT streamagg.drop_query('page_counts', drop_sink => true);
SELECT streamagg.drop_query('closed_views', drop_sink => true);
SELECT count(*) AS log_rows_left FROM streamagg.state_log WHERE query_id = ANY (:'dropped');
DROP TABLE clicks, views;
