-- Aggregates are PostgreSQL's own (DESIGN.md 4.4): their transition, final
-- and serialization functions are called directly, so count, sum, min, max
-- and avg work over every type PostgreSQL has them for, with its NULL
-- handling and precision.  Each result is compared with the same aggregate
-- computed by a plain SELECT ... GROUP BY over the same rows: no row may
-- differ.  The events arrive in three batches, so states are stored and
-- reloaded in between.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE typed (ts timestamptz, k text, i2 int2, i4 int4, i8 int8, f4 float4,
                    f8 float8, num numeric, m money, iv interval, d date, t text,
                    b bool, ip inet);
SELECT streamagg.create_query(name => 'typed_aggs', source => 'typed', event_time => 'ts',
       group_by => 'k', window_size => '1 day', output_mode => 'complete',
       aggregates => $$count(*) AS n, count(num) AS n_num,
         sum(i2) AS sum_i2, sum(i4) AS sum_i4, sum(i8) AS sum_i8, sum(f4) AS sum_f4,
         sum(f8) AS sum_f8, sum(num) AS sum_num, sum(m) AS sum_m, sum(iv) AS sum_iv,
         avg(i2) AS avg_i2, avg(i4) AS avg_i4, avg(i8) AS avg_i8, avg(f8) AS avg_f8,
         avg(num) AS avg_num, avg(iv) AS avg_iv,
         min(i4) AS min_i4, max(i8) AS max_i8, min(num) AS min_num, max(f8) AS max_f8,
         min(d) AS min_d, max(ts) AS max_ts, min(t) AS min_t, max(t) AS max_t,
         max(iv) AS max_iv, min(ip) AS min_ip,
         bool_and(b) AS all_b, bool_or(b) AS any_b, every(b) AS every_b,
         sum(i4) FILTER (WHERE b) AS sum_i4_if_b, count(*) FILTER (WHERE i4 > 500) AS big$$);

-- a view of what a plain GROUP BY computes over the committed rows
CREATE VIEW typed_expected AS
SELECT date_bin('1 day', ts, 'epoch') AS window_start, k, count(*) AS n, count(num) AS n_num,
       sum(i2) AS sum_i2, sum(i4) AS sum_i4, sum(i8) AS sum_i8, sum(f4) AS sum_f4,
       sum(f8) AS sum_f8, sum(num) AS sum_num, sum(m) AS sum_m, sum(iv) AS sum_iv,
       avg(i2) AS avg_i2, avg(i4) AS avg_i4, avg(i8) AS avg_i8, avg(f8) AS avg_f8,
       avg(num) AS avg_num, avg(iv) AS avg_iv,
       min(i4) AS min_i4, max(i8) AS max_i8, min(num) AS min_num, max(f8) AS max_f8,
       min(d) AS min_d, max(ts) AS max_ts, min(t) AS min_t, max(t) AS max_t,
       max(iv) AS max_iv, min(ip) AS min_ip,
       bool_and(b) AS all_b, bool_or(b) AS any_b, every(b) AS every_b,
       sum(i4) FILTER (WHERE b) AS sum_i4_if_b, count(*) FILTER (WHERE i4 > 500) AS big
  FROM typed WHERE ts IS NOT NULL GROUP BY 1, 2;

-- rows that differ between the sink and the plain GROUP BY (none expected)
CREATE VIEW typed_diff AS
(SELECT 'sink only' AS side, * FROM (SELECT window_start, k, n, n_num, sum_i2, sum_i4, sum_i8,
        sum_f4, sum_f8, sum_num, sum_m, sum_iv, avg_i2, avg_i4, avg_i8, avg_f8, avg_num, avg_iv,
        min_i4, max_i8, min_num, max_f8, min_d, max_ts, min_t, max_t, max_iv, min_ip,
        all_b, any_b, every_b, sum_i4_if_b, big FROM typed_aggs
 EXCEPT SELECT * FROM typed_expected) a)
UNION ALL
(SELECT 'expected only', * FROM (SELECT * FROM typed_expected
 EXCEPT SELECT window_start, k, n, n_num, sum_i2, sum_i4, sum_i8,
        sum_f4, sum_f8, sum_num, sum_m, sum_iv, avg_i2, avg_i4, avg_i8, avg_f8, avg_num, avg_iv,
        min_i4, max_i8, min_num, max_f8, min_d, max_ts, min_t, max_t, max_iv, min_ip,
        all_b, any_b, every_b, sum_i4_if_b, big FROM typed_aggs) e);

-- Three batches of deterministic pseudo-random rows, NULLs in every column;
-- the group 'nulls' has only NULL inputs (sum NULL, count 0, avg NULL).
CREATE FUNCTION add_rows(first int, last int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO typed (ts, k, i2, i4, i8, f4, f8, num, m, iv, d, t, b, ip)
  SELECT '2024-05-01'::timestamptz + (g % 3) * interval '1 day' + g * interval '1 second',
         'k' || (g % 4),
         CASE WHEN g % 7 <> 0 THEN (g * 37 % 1000 - 500)::int2 END,
         CASE WHEN g % 5 <> 0 THEN g * 7919 % 1001 END,
         CASE WHEN g % 6 <> 0 THEN g::int8 * 1000000007 END,
         CASE WHEN g % 4 <> 0 THEN (g % 97) / 7.0 END,
         CASE WHEN g % 3 <> 0 THEN (g % 89) / 3.0 END,
         CASE WHEN g % 8 <> 0 THEN round((g * 12345.678901 % 1000)::numeric, 6) END,
         CASE WHEN g % 9 <> 0 THEN (g % 100)::numeric::money END,
         CASE WHEN g % 10 <> 0 THEN g * interval '17 minutes' END,
         CASE WHEN g % 11 <> 0 THEN '2020-01-01'::date + g END,
         CASE WHEN g % 12 <> 0 THEN md5(g::text) END,
         CASE WHEN g % 13 <> 0 THEN g % 2 = 0 END,
         CASE WHEN g % 14 <> 0 THEN ('10.0.' || g % 256 || '.' || g % 7)::inet END
    FROM generate_series(first, last) g
  UNION ALL
  SELECT '2024-05-01'::timestamptz, 'nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL
    FROM generate_series(first, first + 1)
  UNION ALL
  SELECT NULL, 'no time', 1, 1, 1, 1, 1, 1, 1::money, '1 day', NULL, 'x', true, NULL;
$$;

SELECT add_rows(1, 400);
SELECT streamagg.process('typed_aggs');
SELECT count(*) AS differing_rows FROM typed_diff;
SELECT add_rows(401, 1000);
SELECT streamagg.process('typed_aggs');
SELECT add_rows(1001, 1500);
SELECT streamagg.process('typed_aggs');
SELECT count(*) AS differing_rows FROM typed_diff;
SELECT * FROM typed_diff LIMIT 5;

-- for the eye: one group
SELECT k, n, n_num, sum_i4, sum_num, avg_num, sum_iv, avg_iv, min_t, all_b, any_b, big
  FROM typed_aggs WHERE window_start = '2024-05-01' ORDER BY k;

DROP VIEW typed_diff, typed_expected;
SELECT streamagg.drop_query('typed_aggs', drop_sink => true);
DROP FUNCTION add_rows(int, int);
DROP TABLE typed;
