-- Any aggregate whose state can be stored (DESIGN.md 4.4): statistics
-- aggregates with internal or array states, a user-defined aggregate with
-- internal state and serialization functions, one in SQL without a final
-- function, expressions as arguments and as group keys, on an event-time
-- column of type timestamp (without time zone), in append mode.  Each
-- result equals the same aggregate computed by a plain GROUP BY.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
CREATE TABLE measures (ts timestamp, k text, x float8, y float8, n numeric, b int);
CREATE AGGREGATE my_avg(numeric) (sfunc = numeric_avg_accum, stype = internal,
  finalfunc = numeric_avg, serialfunc = numeric_avg_serialize,
  deserialfunc = numeric_avg_deserialize, combinefunc = numeric_avg_combine);
CREATE FUNCTION concat_step(text, text) RETURNS text LANGUAGE sql IMMUTABLE
  AS $$ SELECT coalesce($1 || ',', '') || $2 $$;
CREATE AGGREGATE my_concat(text) (sfunc = concat_step, stype = text);

SELECT streamagg.create_query(name => 'stats', source => 'measures', event_time => 'ts',
  group_by => 'lower(k) AS k', window_size => '1 hour', watermark => '1 minute',
  output_mode => 'append',
  aggregates => 'stddev(x) AS sd, variance(n) AS var, corr(x, y) AS c, regr_slope(y, x) AS slope,
                 regr_intercept(y, x) AS icpt, bit_or(b) AS bo, bit_and(b) AS ba,
                 my_avg(n) AS ma, my_concat(k) AS cat, sum(x * y) AS xy');
\d stats

-- the user-defined aggregates were normalized to schema-qualified names
SELECT aggregates_sql FROM streamagg.query_def WHERE name = 'stats';

-- two batches; the watermark closes the first two hours
INSERT INTO measures SELECT '2024-01-01 10:00'::timestamp + g * interval '1 minute',
  CASE WHEN g % 2 = 0 THEN 'A' ELSE 'a' END, g, g * 2.5 + (g % 3), g / 7.0, g
  FROM generate_series(1, 70) g;
SELECT streamagg.process('stats');
INSERT INTO measures SELECT '2024-01-01 10:00'::timestamp + g * interval '1 minute',
  CASE WHEN g % 2 = 0 THEN 'A' ELSE 'a' END, g, g * 2.5 + (g % 3), g / 7.0, g
  FROM generate_series(71, 130) g;
SELECT streamagg.process('stats');

SELECT window_start, k, round(sd::numeric, 10) AS sd, var, round(c::numeric, 10) AS c,
       round(slope::numeric, 10) AS slope, bo, ba, ma, left(cat, 12) AS cat, xy
  FROM stats ORDER BY 1, 2;

-- rows that differ from a plain GROUP BY over the closed hours (none)
(SELECT window_start, k, sd, var, c, slope, icpt, bo, ba, ma, cat, xy FROM stats
 EXCEPT
 SELECT date_bin('1 hour', ts, '1970-01-01'), lower(k), stddev(x), variance(n), corr(x, y),
        regr_slope(y, x), regr_intercept(y, x), bit_or(b), bit_and(b), my_avg(n),
        my_concat(k), sum(x * y)
   FROM measures WHERE ts < '2024-01-01 12:00' GROUP BY 1, 2)
UNION ALL
(SELECT date_bin('1 hour', ts, '1970-01-01'), lower(k), stddev(x), variance(n), corr(x, y),
        regr_slope(y, x), regr_intercept(y, x), bit_or(b), bit_and(b), my_avg(n),
        my_concat(k), sum(x * y)
   FROM measures WHERE ts < '2024-01-01 12:00' GROUP BY 1, 2
 EXCEPT
 SELECT window_start, k, sd, var, c, slope, icpt, bo, ba, ma, cat, xy FROM stats);

SELECT streamagg.drop_query('stats', drop_sink => true);
DROP TABLE measures;
DROP AGGREGATE my_avg(numeric);
DROP AGGREGATE my_concat(text);
DROP FUNCTION concat_step(text, text);
