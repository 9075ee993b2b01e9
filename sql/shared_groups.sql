-- Open groups live in shared memory (src/state.c, src/group_table.c), in a
-- hash table of fixed-size entries found through an index of entry
-- numbers.  A group whose key columns and aggregate states all have a
-- fixed length is packed into its entry (window, null bitmap, values);
-- other groups point to their key and states tuples.  Either way the
-- state stays equal to a GROUP BY over the events: through NULL keys,
-- fixed-length types passed by reference (uuid, name), windows closed by
-- the watermark (their entries leave the index and are reused), and a
-- reload after a rolled-back trigger.  streamagg.progress shows the shared
-- memory a query's state takes (state_memory_bytes).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE ev (ts timestamptz, a int2, b bool, c int8, u uuid, n name, f float8, t text);
-- packed: every key column and state has a fixed length
SELECT streamagg.create_query(name => 'packed', source => 'ev', event_time => 'ts',
       aggregates => 'count(*) AS cnt, sum(a) AS sa, max(f) AS mf, bool_and(b) AS ba, min(ts) AS mt',
       group_by => 'a, b, u, n', window_size => '1 hour', watermark => '1 hour',
       output_mode => 'update');
-- not packed: a text key, and states of variable length (numeric, float8[])
SELECT streamagg.create_query(name => 'unpacked', source => 'ev', event_time => 'ts',
       aggregates => 'count(*) AS cnt, sum(c) AS sc, avg(f) AS af', group_by => 't, a',
       window_size => '1 hour', watermark => '1 hour', output_mode => 'update');

-- Batch h has events in hours h and h + 1, so each trigger closes one
-- window, hour h - 1 (watermark = latest event - 1 hour), and keeps the
-- two others open.
-- About 1 key column value in 7 is NULL.
CREATE FUNCTION pg_temp.add_batch(h int) RETURNS void LANGUAGE sql AS $$
	INSERT INTO ev
	SELECT timestamptz '2024-05-01 00:00+00' + (h + i % 2) * interval '1 hour' + i * interval '10 ms',
	       nullif(i % 300, 7)::int2, nullif(i % 3, 2) = 0, i, md5((i % 500)::text)::uuid,
	       nullif('k' || (i % 250), 'k5')::name, (i % 1000) / 8.0, nullif('t' || (i % 40), 't3')
	  FROM generate_series(1, 4000) i $$;

-- rows of the sink that a GROUP BY over all events does not give, and the
-- other way round
CREATE FUNCTION pg_temp.differences() RETURNS TABLE (query text, sink_rows bigint, differing bigint)
LANGUAGE sql AS $$
	WITH g AS (
		SELECT date_bin('1 hour', ts, 'epoch') AS ws, a, b, u, n, count(*) AS cnt, sum(a) AS sa,
		       max(f) AS mf, bool_and(b) AS ba, min(ts) AS mt
		  FROM ev GROUP BY 1, 2, 3, 4, 5),
	s AS (SELECT window_start AS ws, a, b, u, n, cnt, sa, mf, ba, mt FROM packed)
	SELECT 'packed', (SELECT count(*) FROM packed),
	       (SELECT count(*) FROM ((TABLE g EXCEPT TABLE s) UNION ALL (TABLE s EXCEPT TABLE g)) d)
	UNION ALL
	SELECT 'unpacked', (SELECT count(*) FROM unpacked), (
	WITH g AS (
		SELECT date_bin('1 hour', ts, 'epoch') AS ws, t, a, count(*) AS cnt, sum(c) AS sc, avg(f) AS af
		  FROM ev GROUP BY 1, 2, 3),
	s AS (SELECT window_start AS ws, t, a, cnt, sc, af FROM unpacked)
	SELECT count(*) FROM ((TABLE g EXCEPT TABLE s) UNION ALL (TABLE s EXCEPT TABLE g)) d) $$;

SELECT pg_temp.add_batch(0);
SELECT streamagg.process('packed'), streamagg.process('unpacked');
SELECT * FROM pg_temp.differences();
SELECT pg_temp.add_batch(1);
SELECT streamagg.process('packed'), streamagg.process('unpacked');
SELECT * FROM pg_temp.differences();
SELECT pg_temp.add_batch(2);
SELECT streamagg.process('packed'), streamagg.process('unpacked');
SELECT * FROM pg_temp.differences();
-- the groups in shared memory are those of the windows still open, hours
-- 2 and 3 (the watermark, 02:00:39.99, closed hour 1)
SELECT name, batch_id, watermark, state_rows_total,
       state_rows_total = (SELECT count(DISTINCT (date_bin('1 hour', ts, 'epoch'), a, b, u, n))
                           FROM ev WHERE ts >= '2024-05-01 02:00+00') AS all_open_groups
  FROM streamagg.progress WHERE name = 'packed' AND batch_id = 2;

-- A rolled-back trigger: the next one rebuilds the state from the log.
SELECT pg_temp.add_batch(3);
BEGIN;
SELECT streamagg.process('packed'), streamagg.process('unpacked');
ROLLBACK;
SELECT streamagg.process('packed'), streamagg.process('unpacked');
SELECT * FROM pg_temp.differences();
SELECT pg_temp.add_batch(4);
SELECT streamagg.process('packed'), streamagg.process('unpacked');
SELECT * FROM pg_temp.differences();

-- Memory.  A packed group of an int key with count(*) and sum(int) takes
-- a 48-byte entry: an 8-byte header (hash, free-list link), the window
-- (16), a null bitmap, the key (4) and the two states (8 + 8).  2048
-- groups fill two chunks of 1024 entries (98304 bytes); the index has
-- 4096 slots of 4 bytes, at most 3/4 full (16384); the table's control
-- and chunk directory take 112 bytes more: 114800 bytes, 56 per group.
CREATE TABLE small (ts timestamptz, k int, v int);
SELECT streamagg.create_query(name => 'small_groups', source => 'small', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
       window_size => '1 hour', output_mode => 'update');
INSERT INTO small SELECT '2024-05-01 10:00+00', k, 1 FROM generate_series(1, 2048) k;
SELECT streamagg.process('small_groups');
SELECT state_rows_total, state_memory_bytes,
       round(state_memory_bytes::numeric / state_rows_total, 2) AS bytes_per_group
  FROM streamagg.progress WHERE name = 'small_groups';
-- Unpacked groups point to their tuples, which take more room
SELECT p.state_memory_bytes > 2 * u.state_memory_bytes AS unpacked_larger
  FROM (SELECT state_memory_bytes / state_rows_total AS state_memory_bytes
          FROM streamagg.progress WHERE name = 'small_groups') u,
       (SELECT state_memory_bytes / state_rows_total AS state_memory_bytes
          FROM streamagg.progress WHERE name = 'unpacked' ORDER BY batch_id DESC LIMIT 1) p;

SELECT streamagg.drop_query('packed', drop_sink => true);
SELECT streamagg.drop_query('unpacked', drop_sink => true);
SELECT streamagg.drop_query('small_groups', drop_sink => true);
DROP TABLE ev, small;
