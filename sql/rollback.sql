-- The state of open windows (in shared memory) always equals the last
-- committed checkpoint (DESIGN.md 4.3): a trigger whose transaction or
-- savepoint rolls back leaves no trace, and the next trigger starts again
-- from what was committed; nothing is lost or counted twice (3.8).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE TABLE readings (ts timestamptz, sensor text, v int);
SELECT streamagg.create_query(name => 'sensor_totals', source => 'readings', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(v) AS total', group_by => 'sensor',
       window_size => '1 hour', output_mode => 'update');

INSERT INTO readings VALUES ('2024-05-01 10:00+00', 's1', 1);
SELECT streamagg.process('sensor_totals');

-- A trigger rolled back with its transaction.
INSERT INTO readings VALUES ('2024-05-01 10:10+00', 's1', 10);
BEGIN;
SELECT streamagg.process('sensor_totals');
TABLE sensor_totals;
ROLLBACK;
SELECT last_batch_id FROM streamagg.queries WHERE name = 'sensor_totals';
-- the same events again, counted once
SELECT streamagg.process('sensor_totals');
TABLE sensor_totals;

-- A trigger rolled back with a savepoint, then one that commits.
INSERT INTO readings VALUES ('2024-05-01 10:20+00', 's1', 100);
BEGIN;
SAVEPOINT before_trigger;
SELECT streamagg.process('sensor_totals');
ROLLBACK TO SAVEPOINT before_trigger;
SELECT streamagg.process('sensor_totals');
COMMIT;
TABLE sensor_totals;

-- Two triggers in one transaction see each other's state.
INSERT INTO readings VALUES ('2024-05-01 10:30+00', 's2', 1000);
BEGIN;
SELECT streamagg.process('sensor_totals');
INSERT INTO readings VALUES ('2024-05-01 10:40+00', 's2', 10000);
SELECT streamagg.process('sensor_totals');   -- the insert is not committed yet
COMMIT;
SELECT streamagg.process('sensor_totals');   -- now it is
TABLE sensor_totals ORDER BY sensor;
SELECT batch_id, num_input_rows, state_rows_total FROM streamagg.progress
 WHERE name = 'sensor_totals' ORDER BY batch_id;

-- process() refuses snapshots that cannot see the latest checkpoint.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT streamagg.process('sensor_totals');
ROLLBACK;

SELECT streamagg.drop_query('sensor_totals', drop_sink => true);
DROP TABLE readings;
