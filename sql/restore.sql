-- A query's position in its source is a snapshot of transaction ids.
-- Restored by pg_dump into another cluster, whose transaction ids start
-- lower, it would make batches skip events; streamagg refuses to run such
-- a query instead, and says how to recover.  (pg_upgrade keeps transaction
-- ids, so upgrades are not affected.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
CREATE TABLE moves (ts timestamptz, n int);
SELECT streamagg.create_query(name => 'moves_total', source => 'moves', event_time => 'ts',
       aggregates => 'sum(n) AS total', output_mode => 'complete');
INSERT INTO moves VALUES ('2024-05-01', 1);
SELECT streamagg.process('moves_total');

-- what a restore into a younger cluster looks like
UPDATE streamagg.checkpoint SET consumed_snapshot = '4000000000:4000000000:';
INSERT INTO moves VALUES ('2024-05-01', 2);
SELECT streamagg.process('moves_total');
TABLE moves_total;

-- resetting the query reads every event still in the source, and its batch
-- ids go on (docs/operations.md, "Backup and restore")
SELECT streamagg.reset_query('moves_total');
SELECT streamagg.process('moves_total');
TABLE moves_total;
SELECT last_batch_id FROM streamagg.queries WHERE name = 'moves_total';

SELECT streamagg.drop_query('moves_total', drop_sink => true);
DROP TABLE moves;
