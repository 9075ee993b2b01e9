-- nodeAgg's rules for user-defined aggregates, kept across triggers
-- (DESIGN.md 4.4, 3.9): every result below equals the same aggregate
-- computed by a plain GROUP BY over the same rows, shown beside it.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

-- Strict transition functions whose state can become NULL.  A NULL state
-- made by the function stays NULL: the function is not called again (with
-- a non-NULL initial value the next input used to be taken as the state,
-- which crashed the server for by-reference states).
CREATE FUNCTION cat_step(text, int) RETURNS text STRICT IMMUTABLE LANGUAGE sql
  AS $$ SELECT CASE WHEN $2 = 0 THEN NULL ELSE $1 || $2::text END $$;
CREATE AGGREGATE cat_until_zero(int) (sfunc = cat_step, stype = text, initcond = '');
CREATE FUNCTION sum_step(bigint, int) RETURNS bigint STRICT IMMUTABLE LANGUAGE sql
  AS $$ SELECT CASE WHEN $2 = 0 THEN NULL ELSE $1 + $2 END $$;
CREATE AGGREGATE sum_until_zero(int) (sfunc = sum_step, stype = bigint, initcond = '0');
-- without an initial value the first input becomes the state; a NULL made
-- later must not be mistaken for "no input yet"
CREATE FUNCTION int_step(int, int) RETURNS int STRICT IMMUTABLE LANGUAGE sql
  AS $$ SELECT CASE WHEN $2 = 0 THEN NULL ELSE $1 + $2 END $$;
CREATE FUNCTION int_combine(int, int) RETURNS int STRICT IMMUTABLE LANGUAGE sql
  AS $$ SELECT $1 + $2 $$;
CREATE AGGREGATE first_until_zero(int) (sfunc = int_step, stype = int,
  combinefunc = int_combine);
-- an expanded-object state (array_append keeps it expanded in the
-- aggregate context)
CREATE AGGREGATE append_all(int) (sfunc = array_append, stype = int[], initcond = '{}');

CREATE TABLE nums (id serial, ts timestamptz, k text, v int);
SELECT streamagg.create_query(name => 'nulls', source => 'nums', event_time => 'ts',
  group_by => 'k', output_mode => 'update',
  aggregates => 'cat_until_zero(v) AS cat, sum_until_zero(v) AS total,
                 first_until_zero(v) AS first, append_all(v) AS seen');

-- the reference: the same aggregates over every row of the source
CREATE VIEW nulls_expected AS
  SELECT k, cat_until_zero(v ORDER BY id) AS cat, sum_until_zero(v ORDER BY id) AS total,
         first_until_zero(v ORDER BY id) AS first, append_all(v ORDER BY id) AS seen
    FROM nums GROUP BY k;
CREATE VIEW nulls_differences AS
  (SELECT 'only in sink' AS side, * FROM (SELECT k, cat, total, first, seen FROM nulls
     EXCEPT SELECT * FROM nulls_expected) d)
  UNION ALL
  (SELECT 'missing in sink', * FROM (SELECT * FROM nulls_expected
     EXCEPT SELECT k, cat, total, first, seen FROM nulls) d);

-- batch 1: key 'a' meets a 0, key 'b' a NULL (skipped), key 'c' nothing special
INSERT INTO nums (ts, k, v) VALUES
  ('2024-01-01', 'a', 1), ('2024-01-01', 'a', 2), ('2024-01-01', 'a', 0),
  ('2024-01-01', 'b', 3), ('2024-01-01', 'b', NULL), ('2024-01-01', 'c', 4);
SELECT streamagg.process('nulls');
SELECT * FROM nulls ORDER BY k;
SELECT * FROM nulls_differences;

-- batch 2: after the 0, 'a' stays NULL; 'b' and 'c' meet their 0 now
INSERT INTO nums (ts, k, v) VALUES
  ('2024-01-01', 'a', 5), ('2024-01-01', 'b', 0), ('2024-01-01', 'b', 6),
  ('2024-01-01', 'c', 0);
SELECT streamagg.process('nulls');
SELECT * FROM nulls ORDER BY k;
SELECT * FROM nulls_differences;

-- batch 3 fails once, so the next trigger rebuilds the state from the
-- state log: the NULLs made by the transition functions survive that too
INSERT INTO nums (ts, k, v) VALUES ('2024-01-01', 'a', 7), ('2024-01-01', 'b', 8),
  ('2024-01-01', 'c', 9), ('2024-01-01', 'd', 10);
SELECT streamagg.fail_next_trigger('nulls', 'after_state');
\set VERBOSITY terse
SELECT streamagg.process('nulls');
\set VERBOSITY default
SELECT streamagg.process('nulls');
SELECT * FROM nulls ORDER BY k;
SELECT * FROM nulls_differences;

-- Sliding windows aggregate per pane, then combine each pane into its
-- windows; session windows combine when sessions merge.  A pane or
-- session whose state was made NULL makes the combined state NULL, as
-- aggregating all their rows together would.  (With a NULL initial value
-- a partial state may have started from a different first input than the
-- whole group: such aggregates cannot be combined exactly, here or in
-- PostgreSQL's parallel aggregation, so this one has an initial value.)
CREATE FUNCTION bigint_combine(bigint, bigint) RETURNS bigint STRICT IMMUTABLE
  LANGUAGE sql AS $$ SELECT $1 + $2 $$;
CREATE AGGREGATE sum_until_zero_c(int) (sfunc = sum_step, stype = bigint,
  initcond = '0', combinefunc = bigint_combine);
SELECT streamagg.create_query(name => 'nulls_sliding', source => 'nums', event_time => 'ts',
  group_by => 'k', window_size => '2 hours', window_slide => '1 hour',
  output_mode => 'update', aggregates => 'sum_until_zero_c(v) AS total');
SELECT streamagg.create_query(name => 'nulls_sessions', source => 'nums', event_time => 'ts',
  group_by => 'k', session_gap => '90 minutes', watermark => '0 seconds',
  output_mode => 'complete', aggregates => 'sum_until_zero_c(v) AS total');
INSERT INTO nums (ts, k, v) VALUES
  ('2024-02-01 10:10', 's', 1), ('2024-02-01 10:20', 's', 0), ('2024-02-01 11:30', 's', 5),
  ('2024-02-01 12:40', 's', 6), ('2024-02-01 10:15', 't', 2), ('2024-02-01 11:15', 't', 3);
SELECT streamagg.process('nulls_sliding');
SELECT streamagg.process('nulls_sessions');
INSERT INTO nums (ts, k, v) VALUES ('2024-02-01 12:50', 't', 0), ('2024-02-01 13:10', 's', 4);
SELECT streamagg.process('nulls_sliding');
SELECT streamagg.process('nulls_sessions');
SELECT window_start, window_end, k, total FROM nulls_sliding
 WHERE window_start >= '2024-02-01' ORDER BY 1, 3;
-- the same by GROUP BY: each row in the two windows that contain it
SELECT w.s AS window_start, w.s + interval '2 hours' AS window_end, k,
       sum_until_zero_c(v ORDER BY id) AS total
  FROM nums, LATERAL (VALUES (date_bin('1 hour', ts, '1970-01-01')),
                             (date_bin('1 hour', ts, '1970-01-01') - interval '1 hour')) w(s)
 WHERE ts >= '2024-02-01'
 GROUP BY 1, 2, 3 ORDER BY 1, 3;
-- sessions: 's' is one session from 10:10 to 14:40 holding its 0; 't' has
-- [10:15, 12:45) and, after the gap, [12:50, 14:20) with its 0
SELECT window_start, window_end, k, total FROM nulls_sessions
 WHERE window_start >= '2024-02-01' ORDER BY 1, 3;

-- Shared transition states, as nodeAgg shares them: aggregates with the
-- same transition function, arguments, FILTER and initial value, whose
-- final functions do not modify the state, advance one state per row.  The
-- transition function below counts its calls in a sequence: a trigger calls
-- it exactly as often as a GROUP BY over the same rows does.  Of the five
-- aggregates, counted_sum(v) and counted_half(v) share a state; the FILTER,
-- the other argument and the read-write final function each keep their own.
CREATE SEQUENCE step_calls;
CREATE FUNCTION counted_step(bigint, int) RETURNS bigint STRICT LANGUAGE sql
  AS $$ SELECT $1 + $2 + 0 * nextval('public.step_calls') $$;
CREATE FUNCTION half_of(bigint) RETURNS numeric STRICT IMMUTABLE LANGUAGE sql
  AS $$ SELECT $1 / 2.0 $$;
CREATE AGGREGATE counted_sum(int) (sfunc = counted_step, stype = bigint, initcond = '0');
CREATE AGGREGATE counted_half(int) (sfunc = counted_step, stype = bigint, initcond = '0',
  finalfunc = half_of);
CREATE AGGREGATE counted_half_rw(int) (sfunc = counted_step, stype = bigint, initcond = '0',
  finalfunc = half_of, finalfunc_modify = read_write);
CREATE TABLE shared_src (ts timestamptz, k text, v int, x numeric);
SELECT streamagg.create_query(name => 'shared', source => 'shared_src', event_time => 'ts',
  group_by => 'k', window_size => '1 hour', output_mode => 'update',
  aggregates => 'counted_sum(v) AS s, counted_half(v) AS h,
                 counted_sum(v) FILTER (WHERE v > 1) AS s_big, counted_sum(v + 0) AS s_plus,
                 counted_half_rw(v) AS h_rw, sum(x) AS sx, avg(x) AS ax, count(x) AS nx');
INSERT INTO shared_src VALUES
  ('2024-03-01 10:05', 'a', 1, 1.25), ('2024-03-01 10:10', 'a', 2, NULL),
  ('2024-03-01 10:20', 'b', 3, 2.50), ('2024-03-01 11:30', 'a', 4, 0.10);
SELECT setval('step_calls', 1000);
SELECT streamagg.process('shared');
-- 4 rows: 4 calls for s and h together, 3 for s_big, 4 for s_plus, 4 for h_rw
SELECT last_value - 1000 AS trigger_calls FROM step_calls;
SELECT setval('step_calls', 1000);
SELECT count(*) FROM (
  SELECT counted_sum(v), counted_half(v), counted_sum(v) FILTER (WHERE v > 1),
         counted_sum(v + 0), counted_half_rw(v)
    FROM shared_src GROUP BY date_bin('1 hour', ts, '1970-01-01'), k) g(a, b, c, d, e)
 WHERE (a, b, c, d, e) IS NOT NULL;
SELECT last_value - 1000 AS group_by_calls FROM step_calls;
-- a second batch advances the stored (shared) states of window 10:00 'a'
INSERT INTO shared_src VALUES
  ('2024-03-01 10:40', 'a', 5, 3.00), ('2024-03-01 10:45', 'c', 6, NULL);
SELECT streamagg.process('shared');
SELECT window_start, k, s, h, s_big, s_plus, h_rw, sx, ax, nx FROM shared ORDER BY 1, 2;
-- the same by GROUP BY
SELECT date_bin('1 hour', ts, '1970-01-01') AS window_start, k,
       counted_sum(v) AS s, counted_half(v) AS h, counted_sum(v) FILTER (WHERE v > 1) AS s_big,
       counted_sum(v + 0) AS s_plus, counted_half_rw(v) AS h_rw,
       sum(x) AS sx, avg(x) AS ax, count(x) AS nx
  FROM shared_src GROUP BY 1, 2 ORDER BY 1, 2;
SELECT streamagg.drop_query('shared', drop_sink => true);
DROP TABLE shared_src;
DROP AGGREGATE counted_sum(int);
DROP AGGREGATE counted_half(int);
DROP AGGREGATE counted_half_rw(int);
DROP FUNCTION counted_step(bigint, int);
DROP FUNCTION half_of(bigint);
DROP SEQUENCE step_calls;

-- EXECUTE privileges (as ExecInitAgg checks them): on the aggregate for the
-- query's owner, on its support functions for the aggregate's owner; at
-- create_query and again at every trigger.
CREATE ROLE sa_carol;
CREATE ROLE sa_dave;
CREATE SCHEMA sa_priv;
GRANT USAGE, CREATE ON SCHEMA sa_priv TO sa_carol, sa_dave;
CREATE FUNCTION sa_priv.count_step(bigint, int) RETURNS bigint STRICT IMMUTABLE
  LANGUAGE sql AS 'SELECT $1 + 1';
REVOKE EXECUTE ON FUNCTION sa_priv.count_step(bigint, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sa_priv.count_step(bigint, int) TO sa_dave;
SET ROLE sa_dave;
CREATE AGGREGATE sa_priv.dave_count(int) (sfunc = sa_priv.count_step, stype = bigint,
  initcond = '0');
REVOKE EXECUTE ON FUNCTION sa_priv.dave_count(int) FROM PUBLIC;
RESET ROLE;
CREATE TABLE sa_priv.events (ts timestamptz, v int);
ALTER TABLE sa_priv.events OWNER TO sa_carol;

SET ROLE sa_carol;
-- refused: carol may not execute dave's aggregate
SELECT streamagg.create_query(name => 'carol_q', source => 'sa_priv.events', event_time => 'ts',
  aggregates => 'sa_priv.dave_count(v) AS n', output_mode => 'complete',
  sink => 'sa_priv.carol_out');
SELECT count(*) FROM pg_tables WHERE tablename = 'carol_out';
RESET ROLE;
GRANT EXECUTE ON FUNCTION sa_priv.dave_count(int) TO sa_carol;
SET ROLE sa_carol;
SELECT streamagg.create_query(name => 'carol_q', source => 'sa_priv.events', event_time => 'ts',
  aggregates => 'sa_priv.dave_count(v) AS n', output_mode => 'complete',
  sink => 'sa_priv.carol_out');
INSERT INTO sa_priv.events (ts, v) VALUES ('2024-01-01', 1);
SELECT streamagg.process('carol_q');
RESET ROLE;
-- revoked from dave: his aggregate's transition function may no longer run
REVOKE EXECUTE ON FUNCTION sa_priv.count_step(bigint, int) FROM sa_dave;
SET ROLE sa_carol;
INSERT INTO sa_priv.events (ts, v) VALUES ('2024-01-01', 2);
SELECT streamagg.process('carol_q');
RESET ROLE;
GRANT EXECUTE ON FUNCTION sa_priv.count_step(bigint, int) TO sa_dave;
-- revoked from carol: she may no longer call the aggregate
REVOKE EXECUTE ON FUNCTION sa_priv.dave_count(int) FROM sa_carol;
SET ROLE sa_carol;
SELECT streamagg.process('carol_q');
RESET ROLE;
GRANT EXECUTE ON FUNCTION sa_priv.dave_count(int) TO sa_carol;
SET ROLE sa_carol;
SELECT streamagg.process('carol_q');
SELECT n FROM sa_priv.carol_out;
SELECT streamagg.drop_query('carol_q', drop_sink => true);
RESET ROLE;

DROP TABLE sa_priv.events;
DROP AGGREGATE sa_priv.dave_count(int);
DROP FUNCTION sa_priv.count_step(bigint, int);
DROP SCHEMA sa_priv;
DROP ROLE sa_carol;
DROP ROLE sa_dave;
DROP VIEW nulls_differences;
DROP VIEW nulls_expected;
SELECT streamagg.drop_query('nulls', drop_sink => true);
SELECT streamagg.drop_query('nulls_sliding', drop_sink => true);
SELECT streamagg.drop_query('nulls_sessions', drop_sink => true);
DROP TABLE nums;
DROP AGGREGATE cat_until_zero(int);
DROP AGGREGATE sum_until_zero(int);
DROP AGGREGATE first_until_zero(int);
DROP AGGREGATE sum_until_zero_c(int);
DROP FUNCTION bigint_combine(bigint, bigint);
DROP AGGREGATE append_all(int);
DROP FUNCTION cat_step(text, int);
DROP FUNCTION sum_step(bigint, int);
DROP FUNCTION int_step(int, int);
DROP FUNCTION int_combine(int, int);
