-- reset_query (docs/operations.md, "Resetting a query"): in one
-- transaction a query forgets its state, watermark and position, and its
-- table sink is emptied; the next triggers reprocess every event the source
-- still holds.  Batch ids are never reused: the next batch id is the last
-- one plus 1, so a function sink guarded by batch id keeps accepting rows.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE sales (ts timestamptz, store text, amount int);
CREATE TYPE sales_row AS (window_start timestamptz, window_end timestamptz,
                          store text, n bigint, revenue bigint);
-- the guarded upsert of docs/sinks.md: a row only moves forward in batch ids
CREATE TABLE store_stats (window_start timestamptz, window_end timestamptz, store text,
                          n bigint, revenue bigint, batch_id bigint,
                          PRIMARY KEY (window_start, window_end, store));
CREATE FUNCTION deliver(batch_id bigint, rows sales_row[]) RETURNS void
LANGUAGE sql SET search_path = public AS $$
    INSERT INTO store_stats AS t SELECT r.*, batch_id FROM unnest(rows) AS r
    ON CONFLICT (window_start, window_end, store) DO UPDATE
       SET n = EXCLUDED.n, revenue = EXCLUDED.revenue, batch_id = EXCLUDED.batch_id
     WHERE t.batch_id < EXCLUDED.batch_id
$$;

-- an append query with a table sink, and the same aggregation in update mode
-- into the guarded function sink
SELECT streamagg.create_query(name => 'hourly', source => 'sales', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(amount) AS revenue', group_by => 'store',
       window_size => '1 hour', watermark => '10 minutes', output_mode => 'append');
SELECT streamagg.create_query(name => 'hourly_fn', source => 'sales', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(amount) AS revenue', group_by => 'store',
       window_size => '1 hour', output_mode => 'update', sink_function => 'deliver');

INSERT INTO sales VALUES ('2024-05-01 10:05+00', 'a', 10), ('2024-05-01 10:20+00', 'b', 20);
SELECT streamagg.process('hourly'), streamagg.process('hourly_fn');
INSERT INTO sales VALUES ('2024-05-01 10:30+00', 'a', 5), ('2024-05-01 11:15+00', 'a', 1);
SELECT streamagg.process('hourly'), streamagg.process('hourly_fn');
INSERT INTO sales VALUES ('2024-05-01 11:20+00', 'b', 7);
SELECT streamagg.process('hourly'), streamagg.process('hourly_fn');
-- the 10:00 windows were emitted (watermark 11:10); 11:00 is open
TABLE hourly ORDER BY window_start, store;
SELECT window_start, store, n, revenue, batch_id FROM store_stats ORDER BY window_start, store;
SELECT name, last_batch_id, watermark, max_event_time FROM streamagg.queries ORDER BY name;

-- A reset that rolls back changes nothing: the next trigger goes on from
-- batch 2 with its state (the shared copy is rebuilt from the log).
BEGIN;
SELECT streamagg.reset_query('hourly');
SELECT count(*) AS sink_rows_inside FROM hourly;
ROLLBACK;
INSERT INTO sales VALUES ('2024-05-01 11:25+00', 'a', 2);
SELECT streamagg.process('hourly');
SELECT name, last_batch_id, watermark FROM streamagg.queries WHERE name = 'hourly';

-- The reset: the sink is empty, the watermark and position are gone, the
-- last batch id stays.
SELECT streamagg.reset_query('hourly'), streamagg.reset_query('hourly_fn');
SELECT count(*) AS sink_rows FROM hourly;
SELECT name, last_batch_id, watermark, max_event_time, status FROM streamagg.queries ORDER BY name;

-- A late-looking event (10:10, before the old watermark): after the reset
-- no watermark drops it.
INSERT INTO sales VALUES ('2024-05-01 10:10+00', 'b', 100);
-- The next batch reads every event in the source, with the next batch id.
SELECT streamagg.process('hourly'), streamagg.process('hourly_fn');
SELECT name, batch_id, num_input_rows, watermark FROM streamagg.progress
 WHERE batch_id >= 3 ORDER BY name, batch_id;
-- The guarded function sink received the new batch and took it: the row of
-- (10:00, b) now counts 2 (it would have stayed at 1 if batch ids had
-- started again at 0).
SELECT window_start, store, n, revenue, batch_id FROM store_stats ORDER BY window_start, store;
-- against the plain computation over the source
SELECT store_stats.store, store_stats.n = s.n AND store_stats.revenue = s.revenue AS equal
  FROM store_stats
  JOIN (SELECT date_trunc('hour', ts) AS window_start, store, count(*) AS n, sum(amount) AS revenue
          FROM sales GROUP BY 1, 2) s USING (window_start, store)
 ORDER BY window_start, store;

-- The table sink after reprocessing equals what a new query over the same
-- events gives.
SELECT streamagg.create_query(name => 'hourly_new', source => 'sales', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(amount) AS revenue', group_by => 'store',
       window_size => '1 hour', watermark => '10 minutes', output_mode => 'append');
SELECT streamagg.process('hourly_new');
TABLE hourly ORDER BY window_start, store;
SELECT count(*) AS differences FROM
  ((TABLE hourly EXCEPT TABLE hourly_new) UNION ALL (TABLE hourly_new EXCEPT TABLE hourly)) d;
SELECT a.name, a.watermark = b.watermark AS same_watermark
  FROM streamagg.queries a, streamagg.queries b
 WHERE a.name = 'hourly' AND b.name = 'hourly_new';

-- Only roles with the owner's privileges may reset a query.
CREATE ROLE reset_stranger;
SET ROLE reset_stranger;
SELECT streamagg.reset_query('hourly');
RESET ROLE;
DROP ROLE reset_stranger;
SELECT streamagg.reset_query('no_such_query');

SELECT streamagg.drop_query('hourly', true);
SELECT streamagg.drop_query('hourly_fn');
SELECT streamagg.drop_query('hourly_new', true);
DROP TABLE sales, store_stats;
DROP FUNCTION deliver;
DROP TYPE sales_row;
