-- The seed example of DESIGN.md section 5, in all three output modes:
-- hourly revenue, 15-minute watermark, the watermark shown after each batch.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE sales (ts timestamptz, amount numeric, store text);
SELECT streamagg.create_query(name => 'revenue_' || mode, source => 'sales',
       event_time => 'ts', aggregates => 'sum(amount) AS revenue',
       window_size => '1 hour', watermark => '15 minutes',
       output_mode => mode)
  FROM unnest(ARRAY['append', 'update', 'complete']) AS mode;

-- The sink has the window, then one column per aggregate, and the unique key.
\d revenue_update

-- Batch 1: $15 at 14:40, $10 at 14:30, $30 at 15:10 -> watermark 14:55.
INSERT INTO sales (ts, amount) VALUES
  ('2024-05-01 14:40+00', 15), ('2024-05-01 14:30+00', 10), ('2024-05-01 15:10+00', 30);
SELECT streamagg.process('revenue_append') AS append_rows,
       streamagg.process('revenue_update') AS update_rows,
       streamagg.process('revenue_complete') AS complete_rows;
SELECT name, watermark, last_batch_id FROM streamagg.queries ORDER BY name;
-- append emits nothing: no window has closed yet
TABLE revenue_append;
-- update and complete show [14:00,15:00) $25 and [15:00,16:00) $30
TABLE revenue_update ORDER BY window_start;
TABLE revenue_complete ORDER BY window_start;

-- Batch 2: $20 at 15:20 -> watermark 15:05.
INSERT INTO sales (ts, amount) VALUES ('2024-05-01 15:20+00', 20);
SELECT streamagg.process('revenue_append') AS append_rows,
       streamagg.process('revenue_update') AS update_rows,
       streamagg.process('revenue_complete') AS complete_rows;
SELECT name, watermark, last_batch_id FROM streamagg.queries ORDER BY name;
-- append emits the closed window [14:00,15:00) $25, once
TABLE revenue_append;
-- update wrote only the changed window [15:00,16:00) $50: one sink row
TABLE revenue_update ORDER BY window_start;
SELECT batch_id, sink_rows_written FROM streamagg.progress
 WHERE name = 'revenue_update' ORDER BY batch_id;
-- complete shows both windows
TABLE revenue_complete ORDER BY window_start;

-- The state of closed windows is evicted in append and update, never in complete.
SELECT DISTINCT ON (name) name, state_rows_total AS open_windows
  FROM streamagg.progress ORDER BY name, batch_id DESC;

-- A trigger with no new events writes nothing and consumes nothing.
SELECT streamagg.process('revenue_update');
SELECT name, last_batch_id FROM streamagg.queries WHERE name = 'revenue_update';

SELECT streamagg.drop_query('revenue_' || mode, drop_sink => true)
  FROM unnest(ARRAY['append', 'update', 'complete']) AS mode;
DROP TABLE sales;
