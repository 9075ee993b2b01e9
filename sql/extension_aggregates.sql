-- Other extensions' aggregates work like built-in ones (DESIGN.md 4.4):
-- hll_add_agg (distinct users per window) and tdigest (percentiles per
-- window), both with internal states and serialization functions.  Over
-- three batches, hll equals the same aggregate computed in one go; tdigest
-- is an approximation whose serialization (between triggers) compacts its
-- buffer, so its percentiles agree within the digest's accuracy (0.5%).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
CREATE EXTENSION IF NOT EXISTS hll;
CREATE EXTENSION IF NOT EXISTS tdigest;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE TABLE page_views (ts timestamptz, user_id text, ms float8);
SELECT streamagg.create_query(name => 'page_stats', source => 'page_views', event_time => 'ts',
  aggregates => 'hll_add_agg(hll_hash_text(user_id)) AS users, tdigest(ms, 100) AS latency',
  window_size => '1 hour', watermark => '1 hour', output_mode => 'update');
\d page_stats

INSERT INTO page_views SELECT '2024-01-01'::timestamptz + (g % 7200) * interval '1 second',
       'u' || (g % 5000), g % 997 FROM generate_series(1, 20000) g;
SELECT streamagg.process('page_stats');
INSERT INTO page_views SELECT '2024-01-01'::timestamptz + (g % 7200) * interval '1 second',
       'u' || (g % 6000), g % 991 FROM generate_series(20001, 35000) g;
SELECT streamagg.process('page_stats');
INSERT INTO page_views SELECT '2024-01-01'::timestamptz + (g % 7200) * interval '1 second',
       'u' || (g % 7000), g % 983 FROM generate_series(35001, 50000) g;
SELECT streamagg.process('page_stats');

-- streamed, per window, against the same computed in one go
WITH streamed AS (
  SELECT s.window_start, hll_cardinality(s.users) AS users, p.median
    FROM page_stats s
    CROSS JOIN LATERAL (SELECT tdigest_percentile(t, 0.5) FROM (VALUES (s.latency)) v(t)) p(median)),
one_go AS (
  SELECT date_bin('1 hour', ts, 'epoch') AS window_start,
         hll_cardinality(hll_add_agg(hll_hash_text(user_id))) AS users,
         tdigest_percentile(ms, 100, 0.5) AS median
    FROM page_views GROUP BY 1)
SELECT window_start, round(s.users) AS users, s.users = o.users AS users_equal,
       round(s.median) AS median_ms, abs(s.median - o.median) < 0.005 * o.median AS median_agrees
  FROM streamed s JOIN one_go o USING (window_start)
 ORDER BY 1;

SELECT streamagg.drop_query('page_stats', drop_sink => true);
DROP TABLE page_views;
