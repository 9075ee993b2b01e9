-- DISTINCT inside aggregates (docs/semantics.md §15): count(DISTINCT x),
-- sum(DISTINCT x), string_agg(DISTINCT x, ',') ... are exact per window and
-- group.  Each group keeps the set of distinct arguments it has seen, so a
-- value seen again in a later batch counts once, and the value is computed
-- from that set as PostgreSQL computes it: the distinct arguments fed to the
-- aggregate in their sort order.  So every sink below equals the same GROUP
-- BY in plain SQL over the same rows: in tumbling, sliding and session
-- windows, with FILTER, NULL arguments, text and numeric arguments, and
-- aggregates of several arguments.  ORDER BY inside aggregates stays
-- rejected.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE TABLE visits (ts timestamptz, page text, user_id int, amount numeric, tag text);

-- The aggregates of every query here.  string_agg and array_agg have an
-- internal state without serialization functions in PostgreSQL 15: alone
-- they are refused (the state could not be stored), with DISTINCT the
-- stored state is the set of values, so they are accepted.  Their results
-- show the order PostgreSQL gives DISTINCT inputs (sorted, NULL last).
\set aggs 'count(*) AS n, count(DISTINCT user_id) AS users, sum(DISTINCT amount) AS amounts, avg(DISTINCT amount) AS mean, count(DISTINCT tag) AS tags, string_agg(DISTINCT tag, ''/'') AS tag_list, array_agg(DISTINCT user_id) AS user_ids, count(DISTINCT user_id) FILTER (WHERE amount > 10) AS big_spenders'

-- Rows of a query's sink that differ from a reference query (as text, so
-- also numeric scales and array elements), both ways: 0 means equal.
CREATE FUNCTION differs(sink text, reference text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ((SELECT sink_row::text FROM %I sink_row EXCEPT ALL SELECT ref_row::text FROM (%s) ref_row)
                  UNION ALL (SELECT ref_row::text FROM (%s) ref_row EXCEPT ALL SELECT sink_row::text FROM %I sink_row)) d',
                 sink, reference, reference, sink) INTO n;
  RETURN n;
END $$;

-- 1. Tumbling windows of 10 minutes, update mode: after every trigger the
-- sink holds the current values of every window.
SELECT streamagg.create_query(name => 'tumbling', source => 'visits', event_time => 'ts',
       aggregates => :'aggs', group_by => 'page', window_size => '10 minutes',
       output_mode => 'update');
\d tumbling
CREATE VIEW tumbling_ref AS
SELECT date_bin('10 minutes', ts, 'epoch') AS window_start,
       date_bin('10 minutes', ts, 'epoch') + interval '10 minutes' AS window_end, page,
       count(*) AS n, count(DISTINCT user_id) AS users, sum(DISTINCT amount) AS amounts,
       avg(DISTINCT amount) AS mean, count(DISTINCT tag) AS tags,
       string_agg(DISTINCT tag, '/') AS tag_list, array_agg(DISTINCT user_id) AS user_ids,
       count(DISTINCT user_id) FILTER (WHERE amount > 10) AS big_spenders
  FROM visits GROUP BY 1, 2, page;

-- Batch 1: users 1 and 2 on page a, one with a NULL amount and tag, user 3
-- on page b; the 10:12 row opens a second window of page a.
INSERT INTO visits VALUES
  ('2024-05-01 10:00+00', 'a', 1, 5.5, 'x'),
  ('2024-05-01 10:01+00', 'a', 2, 20, 'y'),
  ('2024-05-01 10:02+00', 'a', 1, 5.5, NULL),
  ('2024-05-01 10:03+00', 'a', 2, NULL, 'x'),
  ('2024-05-01 10:04+00', 'b', 3, 7.25, 'z'),
  ('2024-05-01 10:12+00', 'a', 1, 1, 'x');
SELECT streamagg.process('tumbling');
SELECT * FROM tumbling ORDER BY window_start, page;
SELECT differs('tumbling', 'SELECT * FROM tumbling_ref') AS tumbling_differs;

-- Batch 2: the same users, amounts and tags again (they count once; count(*)
-- grows), a NULL user (count and the FILTER skip it, array_agg keeps one
-- NULL, last), and new values: user 4 with an amount of 20 already seen.
-- Update mode re-emits exactly the windows this batch changed.
INSERT INTO visits VALUES
  ('2024-05-01 10:05+00', 'a', 1, 5.5, 'x'),
  ('2024-05-01 10:06+00', 'a', 2, 20, 'y'),
  ('2024-05-01 10:07+00', 'a', NULL, 11, 'w'),
  ('2024-05-01 10:08+00', 'a', NULL, 12, NULL),
  ('2024-05-01 10:09+00', 'a', 4, 20, 'y');
SELECT streamagg.process('tumbling');
SELECT * FROM tumbling ORDER BY window_start, page;
SELECT differs('tumbling', 'SELECT * FROM tumbling_ref') AS tumbling_differs;
SELECT batch_id, num_input_rows, state_rows_updated, sink_rows_written
  FROM streamagg.progress WHERE name = 'tumbling' ORDER BY batch_id;

-- Batch 3: only repeated values, in both windows of page a: counts of
-- distinct values stay, count(*) moves.
INSERT INTO visits VALUES
  ('2024-05-01 10:09:30+00', 'a', 4, 5.5, 'w'),
  ('2024-05-01 10:13+00', 'a', 1, 1, 'x');
SELECT streamagg.process('tumbling');
SELECT window_start, page, n, users, amounts, tags, tag_list, user_ids FROM tumbling
 ORDER BY window_start, page;
SELECT differs('tumbling', 'SELECT * FROM tumbling_ref') AS tumbling_differs;

-- A trigger rolled back leaves the sets as they were: user 9 is not counted
-- until a trigger commits it.
INSERT INTO visits VALUES ('2024-05-01 10:01:30+00', 'b', 9, 7.25, 'z');
BEGIN;
SELECT streamagg.process('tumbling');
SELECT users FROM tumbling WHERE page = 'b';
ROLLBACK;
SELECT users FROM tumbling WHERE page = 'b';
SELECT streamagg.process('tumbling');
SELECT users, user_ids FROM tumbling WHERE page = 'b';
SELECT differs('tumbling', 'SELECT * FROM tumbling_ref') AS tumbling_differs;

-- 2. Sliding windows of 10 minutes every 5 minutes, update mode.  A row
-- falls into two windows; the query folds rows by pane (5 minutes) and
-- unites each pane's sets with its windows', so a user seen in both panes
-- of a window counts once.
SELECT streamagg.create_query(name => 'sliding', source => 'visits', event_time => 'ts',
       aggregates => :'aggs', group_by => 'page', window_size => '10 minutes',
       window_slide => '5 minutes', output_mode => 'update');
CREATE VIEW sliding_ref AS
SELECT w.s AS window_start, w.s + interval '10 minutes' AS window_end, page,
       count(*) AS n, count(DISTINCT user_id) AS users, sum(DISTINCT amount) AS amounts,
       avg(DISTINCT amount) AS mean, count(DISTINCT tag) AS tags,
       string_agg(DISTINCT tag, '/') AS tag_list, array_agg(DISTINCT user_id) AS user_ids,
       count(DISTINCT user_id) FILTER (WHERE amount > 10) AS big_spenders
  FROM visits,
       LATERAL (VALUES (date_bin('5 minutes', ts, 'epoch')),
                       (date_bin('5 minutes', ts, 'epoch') - interval '5 minutes')) w(s)
 GROUP BY w.s, page;
-- its first trigger reads every row so far, one more batch follows
SELECT streamagg.process('sliding');
SELECT differs('sliding', 'SELECT * FROM sliding_ref') AS sliding_differs;
INSERT INTO visits VALUES
  ('2024-05-01 10:14+00', 'a', 1, 5.5, 'x'),
  ('2024-05-01 10:16+00', 'a', 2, 20, 'y'),
  ('2024-05-01 10:16+00', 'b', 3, 7.25, 'z');
SELECT streamagg.process('sliding'), streamagg.process('tumbling');
SELECT window_start, window_end, page, n, users, amounts, tag_list, user_ids FROM sliding
 ORDER BY window_start, page;
SELECT differs('sliding', 'SELECT * FROM sliding_ref') AS sliding_differs,
       differs('tumbling', 'SELECT * FROM tumbling_ref') AS tumbling_differs;

-- 3. Session windows of page views, gap 10 minutes, complete mode.  When
-- an event bridges two sessions, their sets are united: a user seen in
-- both counts once in the merged session.  So with DISTINCT even aggregates
-- without a combine function (array_agg, string_agg in PostgreSQL 15) work
-- in session windows.
CREATE TABLE views (ts timestamptz, page text, user_id int, amount numeric, tag text);
SELECT streamagg.create_query(name => 'sessions', source => 'views', event_time => 'ts',
       aggregates => :'aggs', group_by => 'page', session_gap => '10 minutes',
       output_mode => 'complete');
-- sessions by gaps and islands: a new one starts more than the gap after
-- the page's previous event (touching sessions merge)
CREATE VIEW sessions_ref AS
WITH marked AS (
  SELECT *, CASE WHEN ts <= lag(ts) OVER (PARTITION BY page ORDER BY ts) + interval '10 minutes'
                 THEN 0 ELSE 1 END AS starts
    FROM views),
numbered AS (
  SELECT *, sum(starts) OVER (PARTITION BY page ORDER BY ts) AS session FROM marked)
SELECT min(ts) AS window_start, max(ts) + interval '10 minutes' AS window_end, page,
       count(*) AS n, count(DISTINCT user_id) AS users, sum(DISTINCT amount) AS amounts,
       avg(DISTINCT amount) AS mean, count(DISTINCT tag) AS tags,
       string_agg(DISTINCT tag, '/') AS tag_list, array_agg(DISTINCT user_id) AS user_ids,
       count(DISTINCT user_id) FILTER (WHERE amount > 10) AS big_spenders
  FROM numbered GROUP BY page, session;
-- Batch 1: two sessions of page a (10:00-10:15 and 10:20-10:32), users 1
-- and 2 in both; one of page b.
INSERT INTO views VALUES
  ('2024-05-01 10:00+00', 'a', 1, 5, 'x'),
  ('2024-05-01 10:05+00', 'a', 2, 15, 'y'),
  ('2024-05-01 10:20+00', 'a', 1, 5, 'y'),
  ('2024-05-01 10:22+00', 'a', 2, 30, NULL),
  ('2024-05-01 10:00+00', 'b', 7, NULL, 'x');
SELECT streamagg.process('sessions');
SELECT window_start, window_end, page, n, users, amounts, tag_list, user_ids, big_spenders
  FROM sessions ORDER BY page, window_start;
SELECT differs('sessions', 'SELECT * FROM sessions_ref') AS sessions_differs;
-- Batch 2: user 3 at 10:12 bridges the two sessions of page a.
INSERT INTO views VALUES ('2024-05-01 10:12+00', 'a', 3, 15, 'x');
SELECT streamagg.process('sessions');
SELECT window_start, window_end, page, n, users, amounts, tag_list, user_ids, big_spenders
  FROM sessions ORDER BY page, window_start;
SELECT differs('sessions', 'SELECT * FROM sessions_ref') AS sessions_differs;

-- 4. Append mode with a watermark: a window is written once, when the
-- watermark closes it, with its final distinct counts; its set is then
-- evicted with it.
SELECT streamagg.create_query(name => 'closed', source => 'visits', event_time => 'ts',
       aggregates => 'count(DISTINCT user_id) AS users, count(*) AS n', group_by => 'page',
       window_size => '10 minutes', watermark => '1 minute', output_mode => 'append');
SELECT streamagg.process('closed');
SELECT window_start, page, users, n FROM closed ORDER BY window_start, page;
SELECT state_rows_total FROM streamagg.progress WHERE name = 'closed';
SELECT count(*) FILTER (WHERE c.users IS DISTINCT FROM r.users OR c.n IS DISTINCT FROM r.n) AS closed_differs
  FROM closed c JOIN tumbling_ref r USING (window_start, page);

-- 5. More than one argument: DISTINCT applies to the whole argument list,
-- as in PostgreSQL.  string_agg(DISTINCT tag, sep) with a separator from
-- the row keeps one element per (tag, separator); a user-defined aggregate
-- of two arguments counts distinct pairs.
CREATE FUNCTION pair_count(state bigint, a int, b text) RETURNS bigint
  LANGUAGE sql IMMUTABLE STRICT AS 'SELECT state + 1';
CREATE AGGREGATE count_pairs(int, text) (sfunc = pair_count, stype = bigint, initcond = '0');
SELECT streamagg.create_query(name => 'pairs', source => 'visits', event_time => 'ts',
       aggregates => 'count_pairs(DISTINCT user_id, tag) AS user_tags, string_agg(DISTINCT tag, CASE WHEN user_id > 2 THEN ''+'' ELSE '','' END) AS tag_list',
       group_by => 'page', output_mode => 'complete');
SELECT streamagg.process('pairs');
SELECT * FROM pairs ORDER BY page;
SELECT differs('pairs', $$SELECT page, count_pairs(DISTINCT user_id, tag) AS user_tags,
       string_agg(DISTINCT tag, CASE WHEN user_id > 2 THEN '+' ELSE ',' END) AS tag_list
  FROM visits GROUP BY page$$) AS pairs_differs;

-- 6. The sets are part of the state, in shared memory: counted in
-- state_memory_bytes and bounded by streamagg.max_state_memory.  One group
-- with 50 000 distinct texts of 32 characters does not fit into 1MB: the
-- trigger fails with the usual message and leaves nothing behind; with
-- more memory the same batch goes through.
CREATE TABLE sessions_log (ts timestamptz, session_id text);
SELECT streamagg.create_query(name => 'many_values', source => 'sessions_log', event_time => 'ts',
       aggregates => 'count(DISTINCT session_id) AS sessions, count(*) AS n',
       output_mode => 'update');
INSERT INTO sessions_log SELECT '2024-05-01', md5(g::text) FROM generate_series(1, 50000) g;
INSERT INTO sessions_log SELECT '2024-05-01', md5(g::text) FROM generate_series(1, 10) g;
ALTER SYSTEM SET streamagg.max_state_memory = '1MB';
SELECT pg_reload_conf();
SELECT pg_sleep(0.1);
SHOW streamagg.max_state_memory;
SELECT streamagg.process('many_values');
SELECT count(*) AS sink_rows FROM many_values;
ALTER SYSTEM RESET streamagg.max_state_memory;
SELECT pg_reload_conf();
SELECT pg_sleep(0.1);
SELECT streamagg.process('many_values');
SELECT sessions, n FROM many_values;
SELECT state_memory_bytes > 50000 * 32 AS set_counted_in_state_memory
  FROM streamagg.progress WHERE name = 'many_values';

-- 7. What stays refused: ORDER BY inside an aggregate (with or without
-- DISTINCT), and DISTINCT over values that cannot be kept as an array
-- (arrays, anonymous records).  Nothing is created.
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
SELECT try($$name => 'r', source => 'visits', event_time => 'ts', aggregates => 'string_agg(tag, '','' ORDER BY tag) AS t', output_mode => 'update'$$);
SELECT try($$name => 'r', source => 'visits', event_time => 'ts', aggregates => 'string_agg(DISTINCT tag, '','' ORDER BY tag) AS t', output_mode => 'update'$$);
SELECT try($$name => 'r', source => 'visits', event_time => 'ts', aggregates => 'count(DISTINCT ARRAY[user_id]) AS t', output_mode => 'update'$$);
SELECT try($$name => 'r', source => 'visits', event_time => 'ts', aggregates => 'count(DISTINCT (page, user_id)) AS t', output_mode => 'update'$$);
-- without DISTINCT, string_agg's state still cannot be stored
SELECT try($$name => 'r', source => 'visits', event_time => 'ts', aggregates => 'string_agg(tag, '','') AS t', output_mode => 'update'$$);
SELECT count(*) AS queries_named_r FROM streamagg.queries WHERE name = 'r';
SELECT to_regclass('r') AS sink_r;

SELECT streamagg.drop_query(name, drop_sink => true) FROM streamagg.queries ORDER BY name;
DROP VIEW tumbling_ref, sliding_ref, sessions_ref;
DROP TABLE visits, views, sessions_log;
DROP AGGREGATE count_pairs(int, text);
DROP FUNCTION pair_count(bigint, int, text), differs(text, text), try(text);
