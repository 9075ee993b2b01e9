-- The event-time column itself as a group key (DESIGN.md 3.5): without a
-- window, it bounds each group like a window end.  In append mode a group
-- is written once, when the watermark reaches its event time; a row whose
-- event time is at or before the previous watermark is late and dropped.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE TABLE readings (ts timestamptz, sensor text, v int);

-- without a window, session or event-time key append mode has nothing to close
SELECT streamagg.create_query(name => 'per_instant', source => 'readings', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(v) AS total', group_by => 'sensor',
       watermark => '10 seconds', output_mode => 'append');

SELECT streamagg.create_query(name => 'per_instant', source => 'readings', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(v) AS total', group_by => 'ts, sensor',
       watermark => '10 seconds', output_mode => 'append');
\d per_instant

-- batch 1: watermark 09:59:55, nothing is closed
INSERT INTO readings VALUES ('2024-05-01 10:00:00+00', 'a', 1), ('2024-05-01 10:00:00+00', 'a', 2),
                            ('2024-05-01 10:00:05+00', 'b', 4);
SELECT streamagg.process('per_instant');
TABLE per_instant ORDER BY ts, sensor;

-- batch 2: watermark 10:00:10 closes 10:00:00 and 10:00:05
INSERT INTO readings VALUES ('2024-05-01 10:00:20+00', 'a', 8);
SELECT streamagg.process('per_instant');
TABLE per_instant ORDER BY ts, sensor;

-- batch 3: 10:00:05 is at or before the watermark: late, dropped
INSERT INTO readings VALUES ('2024-05-01 10:00:05+00', 'b', 16), ('2024-05-01 10:00:31+00', 'b', 32);
SELECT streamagg.process('per_instant');
TABLE per_instant ORDER BY ts, sensor;
SELECT batch_id, watermark, late_rows_dropped, state_rows_total, sink_rows_written
  FROM streamagg.progress WHERE name = 'per_instant' ORDER BY batch_id;

SELECT streamagg.drop_query('per_instant', drop_sink => true);
DROP TABLE readings;
