-- Filters and stream-static joins (docs/pipelines.md).  Per trigger the
-- order is: read the batch, join, filter, then windows.  Each result is
-- compared with the same computation in plain SQL over the same rows.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE orders (ts timestamptz, store_id int, amount numeric, status text);
CREATE TABLE stores (store_id int PRIMARY KEY, region text);
INSERT INTO stores VALUES (1, 'north'), (2, 'south'), (3, 'east');

-- 1. A filter: a row for which it is not true does not exist for the
-- query.  It is not aggregated, creates no group, does not move the
-- watermark and is never late; it is counted in filtered_rows only.
SELECT streamagg.create_query(name => 'paid', source => 'orders',
       event_time => 'ts', aggregates => 'sum(amount) AS revenue, count(*) AS orders',
       group_by => 'store_id', filter => 'amount > 0 AND status = ''paid''',
       window_size => '1 hour', watermark => '10 minutes', output_mode => 'append');
-- stored as written, and normalized for the workers
SELECT filter FROM streamagg.queries WHERE name = 'paid';
SELECT filter_sql FROM streamagg.query_def WHERE name = 'paid';

-- Batch 1: two paid orders at 10:00 and 10:20, a refund (amount < 0), an
-- open order, a paid order without amount (NULL: the filter is not true),
-- and an open order far in the future, which would close every window if
-- it counted.
INSERT INTO orders VALUES
  ('2024-05-01 10:00+00', 1, 10, 'paid'), ('2024-05-01 10:20+00', 1, 5, 'paid'),
  ('2024-05-01 10:30+00', 1, -3, 'paid'), ('2024-05-01 10:40+00', 2, 7, 'open'),
  ('2024-05-01 10:45+00', 2, NULL, 'paid'), ('2030-01-01 00:00+00', 2, 1, 'open');
SELECT streamagg.process('paid') AS rows_read;
-- the watermark is 10:20 - 10 minutes: the 2030 row did not move it
SELECT watermark FROM streamagg.queries WHERE name = 'paid';
SELECT batch_id, num_input_rows, filtered_rows, null_event_time_rows,
       event_time_min, event_time_max, state_rows_total
  FROM streamagg.progress WHERE name = 'paid';
-- nothing emitted yet: [10:00, 11:00) is open
TABLE paid;

-- Batch 2: a paid order at 11:15 closes [10:00, 11:00); an open order at
-- 09:00 would be late, but it is filtered first, so it is not counted late.
INSERT INTO orders VALUES ('2024-05-01 11:15+00', 3, 2, 'paid'),
                          ('2024-05-01 09:00+00', 3, 9, 'open');
SELECT streamagg.process('paid') AS rows_read;
SELECT batch_id, num_input_rows, filtered_rows, late_rows_dropped
  FROM streamagg.progress WHERE name = 'paid' ORDER BY batch_id;
TABLE paid;
-- the same in plain SQL over the same rows, for the closed window
SELECT date_trunc('hour', ts) AS window_start, store_id, sum(amount) AS revenue,
       count(*) AS orders
  FROM orders WHERE amount > 0 AND status = 'paid' AND ts < '2024-05-01 11:00+00'
 GROUP BY 1, 2 ORDER BY 1, 2;

-- 2. An inner join to a dimension table, with a filter on both.  Events
-- without a match are dropped (filtered_rows); a group_by expression
-- st.region gives a sink column named region.
SELECT streamagg.create_query(name => 'by_region', source => 'orders',
       event_time => 'ts', aggregates => 'sum(amount) AS revenue, count(*) AS orders',
       group_by => 'st.region', "join" => 'JOIN stores st ON st.store_id = orders.store_id',
       filter => 'status = ''paid'' AND st.region <> ''east''',
       window_size => '1 hour', output_mode => 'update');
SELECT "join", group_by FROM streamagg.queries WHERE name = 'by_region';
SELECT join_sql, group_by_sql, aggregates_sql FROM streamagg.query_def
 WHERE name = 'by_region';
\d by_region
-- its first batch reads every order so far; store 3 (east) is filtered out
SELECT streamagg.process('by_region') AS rows_read;
TABLE by_region ORDER BY window_start, region;
SELECT date_trunc('hour', ts) AS window_start, st.region, sum(amount) AS revenue,
       count(*) AS orders
  FROM orders JOIN stores st ON st.store_id = orders.store_id
 WHERE status = 'paid' AND st.region <> 'east'
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT num_input_rows, filtered_rows FROM streamagg.progress WHERE name = 'by_region';

-- Joined tables are read in the trigger's snapshot: a dimension change
-- affects later batches only, never rows already aggregated.  Store 1
-- moves to the west; an order of store 1 after that counts for west, the
-- earlier ones stay north.  A new store 4 without dimension row is dropped.
UPDATE stores SET region = 'west' WHERE store_id = 1;
INSERT INTO orders VALUES ('2024-05-01 10:50+00', 1, 100, 'paid'),
                          ('2024-05-01 10:55+00', 4, 1000, 'paid');
SELECT streamagg.process('by_region') AS rows_read;
TABLE by_region ORDER BY window_start, region;
SELECT batch_id, num_input_rows, filtered_rows FROM streamagg.progress
 WHERE name = 'by_region' ORDER BY batch_id;

-- 3. A left join keeps events without a match, with NULLs; several
-- matches multiply an event, as in SQL.  num_input_rows counts each
-- source row once.
CREATE TABLE promos (store_id int, promo text);
INSERT INTO promos VALUES (1, 'spring'), (1, 'vip'), (2, 'spring');
SELECT streamagg.create_query(name => 'by_promo', source => 'orders',
       event_time => 'ts', aggregates => 'count(*) AS orders, sum(amount) AS amount',
       group_by => 'p.promo', "join" => 'LEFT JOIN promos p ON p.store_id = orders.store_id',
       window_size => '1 day', output_mode => 'update');
SELECT streamagg.process('by_promo') AS rows_read;
TABLE by_promo ORDER BY window_start, promo;
SELECT date_trunc('day', ts) AS window_start, p.promo, count(*) AS orders,
       sum(amount) AS amount
  FROM orders LEFT JOIN promos p ON p.store_id = orders.store_id
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT num_input_rows, filtered_rows FROM streamagg.progress WHERE name = 'by_promo';

-- 4. Inner joins after a left join, over a view: a source row is filtered
-- when none of its joined rows passes; the others count as often as they
-- matched.
CREATE VIEW store_regions AS SELECT store_id, upper(region) AS region FROM stores;
SELECT streamagg.create_query(name => 'chain', source => 'orders',
       event_time => 'ts', aggregates => 'count(*) AS n',
       group_by => 'p.promo, r.region',
       "join" => 'LEFT JOIN promos p ON p.store_id = orders.store_id '
                 'JOIN store_regions r ON r.store_id = orders.store_id AND p.promo IS DISTINCT FROM ''vip''',
       window_size => '1 day', output_mode => 'complete');
SELECT streamagg.process('chain') AS rows_read;
SELECT * FROM chain ORDER BY window_start, promo, region;
SELECT date_trunc('day', ts) AS window_start, p.promo, r.region, count(*) AS n
  FROM orders LEFT JOIN promos p ON p.store_id = orders.store_id
  JOIN store_regions r ON r.store_id = orders.store_id AND p.promo IS DISTINCT FROM 'vip'
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT num_input_rows, filtered_rows FROM streamagg.progress WHERE name = 'chain';
-- the orders for which the join chain yields no row: filtered_rows
SELECT count(*) AS orders_without_any_row
  FROM orders o
 WHERE NOT EXISTS (SELECT FROM (VALUES (o.store_id)) v(store_id)
                     LEFT JOIN promos p ON p.store_id = v.store_id
                     JOIN store_regions r ON r.store_id = v.store_id
                                         AND p.promo IS DISTINCT FROM 'vip');

-- 5. What filter and join refuse, with nothing created.
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update', filter => 'count(*) > 1');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       filter => 'store_id IN (SELECT store_id FROM stores)');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       filter => 'generate_series(1, 2) > 1');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       filter => 'row_number() OVER () > 1');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       filter => 'true GROUP BY store_id');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update', filter => 'amount');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       "join" => 'JOIN orders o2 ON o2.store_id = orders.store_id');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       "join" => 'JOIN generate_series(1, 3) g ON g = orders.store_id');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       "join" => 'JOIN LATERAL (SELECT * FROM stores s WHERE s.store_id = orders.store_id) x ON true');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       "join" => 'JOIN (SELECT * FROM stores) x ON x.store_id = orders.store_id');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       "join" => 'RIGHT JOIN stores s ON s.store_id = orders.store_id');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       "join" => 'JOIN stores USING (store_id)');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       "join" => 'CROSS JOIN stores');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       "join" => 'JOIN stores s ON s.store_id = orders.store_id AND s.store_id IN (SELECT 1)');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       "join" => 'JOIN stores s ON true; DROP TABLE stores');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'update',
       "join" => 'WHERE true');
-- an ambiguous column is PostgreSQL's own error
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'store_id', output_mode => 'update',
       "join" => 'JOIN stores s ON s.store_id = orders.store_id');
SELECT count(*) AS queries, count(*) FILTER (WHERE name = 'bad') AS bad
  FROM streamagg.queries;
SELECT to_regclass('bad') AS no_sink;

-- 6. The owner needs SELECT on every joined relation, checked at
-- create_query and by every trigger, as for the source.
CREATE ROLE sa_pipeline_owner;
GRANT SELECT ON orders TO sa_pipeline_owner;
GRANT CREATE ON SCHEMA public TO sa_pipeline_owner;
SET ROLE sa_pipeline_owner;
SELECT streamagg.create_query(name => 'unprivileged', source => 'orders',
       event_time => 'ts', aggregates => 'count(*) AS n', group_by => 'st.region',
       "join" => 'JOIN stores st ON st.store_id = orders.store_id',
       window_size => '1 hour', output_mode => 'update');
RESET ROLE;
GRANT SELECT ON stores TO sa_pipeline_owner;
SET ROLE sa_pipeline_owner;
SELECT streamagg.create_query(name => 'privileged', source => 'orders',
       event_time => 'ts', aggregates => 'count(*) AS n', group_by => 'st.region',
       "join" => 'JOIN stores st ON st.store_id = orders.store_id',
       window_size => '1 day', output_mode => 'update');
RESET ROLE;
REVOKE SELECT ON stores FROM sa_pipeline_owner;
SELECT streamagg.process('privileged');
GRANT SELECT ON stores TO sa_pipeline_owner;
SELECT streamagg.process('privileged') AS rows_read;
TABLE privileged ORDER BY region;
SELECT streamagg.drop_query('privileged', drop_sink => true);
REVOKE ALL ON stores, orders FROM sa_pipeline_owner;
REVOKE CREATE ON SCHEMA public FROM sa_pipeline_owner;
DROP ROLE sa_pipeline_owner;

SELECT streamagg.drop_query(name, drop_sink => true) FROM streamagg.queries;
DROP VIEW store_regions;
DROP TABLE orders, stores, promos;
