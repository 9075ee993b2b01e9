-- The state of open windows lives in shared memory, bounded by
-- streamagg.max_state_memory: a trigger that would exceed it fails with a
-- clear message and leaves nothing behind; with more memory the same batch
-- goes through.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
CREATE TABLE wide (ts timestamptz, k int);
SELECT streamagg.create_query(name => 'many_keys', source => 'wide', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', output_mode => 'update');
-- many keys: the limit bounds the shared area, and earlier tests of the
-- suite leave free space in it, which a small state would fit into
INSERT INTO wide SELECT '2024-05-01', g FROM generate_series(1, 300000) g;

ALTER SYSTEM SET streamagg.max_state_memory = '1MB';
SELECT pg_reload_conf();
SELECT pg_sleep(0.1);
SHOW streamagg.max_state_memory;
SELECT streamagg.process('many_keys');
SELECT count(*) AS sink_rows FROM many_keys;

ALTER SYSTEM RESET streamagg.max_state_memory;
SELECT pg_reload_conf();
SELECT pg_sleep(0.1);
SHOW streamagg.max_state_memory;
SELECT streamagg.process('many_keys');
SELECT count(*) AS sink_rows, sum(n) AS events FROM many_keys;

SELECT streamagg.drop_query('many_keys', drop_sink => true);
DROP TABLE wide;
