-- A custom MERGE into the sink table (sink_merge, docs/sinks.md), for what
-- ON CONFLICT cannot say.  sink_merge holds the WHEN clauses of the MERGE
-- that writes each trigger's rows: "t" is the sink's row, "s" the row the
-- trigger delivers.  The rows are matched on the sink's key (NULL matching
-- NULL, as in the key).  The whole statement is checked by create_query.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE stock_moves (ts timestamptz, item text, delta int);

-- Delete an item's row when its stock drops to zero (and do not insert
-- items that have none).
SELECT streamagg.create_query(name => 'in_stock', source => 'stock_moves', event_time => 'ts',
       aggregates => 'sum(delta) AS on_hand', group_by => 'item', output_mode => 'update',
       sink_merge => $$WHEN MATCHED AND s.on_hand = 0 THEN DELETE
                       WHEN MATCHED THEN UPDATE SET on_hand = s.on_hand
                       WHEN NOT MATCHED AND s.on_hand <> 0 THEN
                            INSERT (item, on_hand) VALUES (s.item, s.on_hand)$$);

-- Keep the highest stock ever seen beside the current one, in an existing
-- sink with a column of its own; its key is declared NOT NULL, so the MERGE
-- matches with "=" and can use the key's index.
CREATE TABLE stock_peaks (item text NOT NULL PRIMARY KEY, on_hand bigint, peak bigint);
SELECT streamagg.create_query(name => 'peaks', source => 'stock_moves', event_time => 'ts',
       aggregates => 'sum(delta) AS on_hand', group_by => 'item', output_mode => 'update',
       sink => 'stock_peaks',
       sink_merge => $$WHEN MATCHED THEN
                            UPDATE SET on_hand = s.on_hand, peak = greatest(t.peak, s.on_hand)
                       WHEN NOT MATCHED AND s.item IS NOT NULL THEN
                            INSERT VALUES (s.item, s.on_hand, s.on_hand)$$);
SELECT name, sink, sink_merge IS NOT NULL AS has_merge FROM streamagg.queries ORDER BY name;

INSERT INTO stock_moves VALUES ('2024-05-01 10:00+00', 'apple', 5), ('2024-05-01 10:01+00', 'pear', 2),
                               ('2024-05-01 10:02+00', 'plum', 0), ('2024-05-01 10:03+00', NULL, 4);
SELECT streamagg.process('in_stock'), streamagg.process('peaks');
TABLE in_stock ORDER BY item;
TABLE stock_peaks ORDER BY item;

-- pear sells out: its row goes; apple drops, then rises; the NULL item's
-- row is updated in place (NULL matches NULL), not inserted twice.
INSERT INTO stock_moves VALUES ('2024-05-01 11:00+00', 'pear', -2), ('2024-05-01 11:01+00', 'apple', -4),
                               ('2024-05-01 11:02+00', NULL, 1);
SELECT streamagg.process('in_stock'), streamagg.process('peaks');
TABLE in_stock ORDER BY item;
TABLE stock_peaks ORDER BY item;
INSERT INTO stock_moves VALUES ('2024-05-01 12:00+00', 'apple', 2), ('2024-05-01 12:01+00', 'pear', 7);
SELECT streamagg.process('in_stock'), streamagg.process('peaks');
TABLE in_stock ORDER BY item;
TABLE stock_peaks ORDER BY item;
SELECT sink_rows_written FROM streamagg.progress WHERE name = 'in_stock' ORDER BY batch_id;

-- Rejected at create_query, with nothing created (not even the sink).
SELECT streamagg.create_query(name => 'bad', source => 'stock_moves', event_time => 'ts',
       aggregates => 'sum(delta) AS on_hand', group_by => 'item', output_mode => 'update',
       sink_merge => 'WHEN MATCHED THEN UPDATE SET no_such_column = 1');
SELECT streamagg.create_query(name => 'bad', source => 'stock_moves', event_time => 'ts',
       aggregates => 'sum(delta) AS on_hand', group_by => 'item', output_mode => 'update',
       sink_merge => 'WHEN MATCHED THEN DELETE; DROP TABLE stock_moves');
SELECT streamagg.create_query(name => 'bad', source => 'stock_moves', event_time => 'ts',
       aggregates => 'sum(delta) AS on_hand', group_by => 'item', output_mode => 'update',
       sink_merge => 'WHEN MATCHED THEN DELETE ) AS x (');
SELECT count(*) AS bad_queries FROM streamagg.queries WHERE name = 'bad';
SELECT count(*) AS bad_tables FROM pg_class WHERE relname = 'bad';

SELECT streamagg.drop_query('in_stock', drop_sink => true);
SELECT streamagg.drop_query('peaks');
DROP TABLE stock_peaks, stock_moves;
