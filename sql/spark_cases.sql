-- The public Spark cases of DESIGN.md section 5 (EventTimeWatermarkSuite):
-- 5-second tumbling windows, 10-second watermark, count(*); the event time
-- is the value in seconds since the epoch.  Each step inserts (and commits),
-- then runs one trigger, then shows the sink as [start,end) in epoch seconds.
-- Events are counted only once committed: process() in the inserting
-- transaction would not see them yet.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE events (value int, ts timestamptz GENERATED ALWAYS AS (to_timestamp(value)) STORED);
CREATE FUNCTION sink_of(q text) RETURNS TABLE (window_ text, count bigint)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT format(''[%%s,%%s)'', extract(epoch FROM window_start)::int,
                   extract(epoch FROM window_end)::int), n FROM %I ORDER BY window_start', q);
END $$;

-- Append: a window is written once, when the watermark passes its end.
SELECT streamagg.create_query(name => 'spark_append', source => 'events', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '5 seconds', watermark => '10 seconds',
       output_mode => 'append');
INSERT INTO events (value) SELECT unnest('{10,11,12,13,14,15}'::int[]);  -- {}
SELECT streamagg.process('spark_append') AS rows;
SELECT * FROM sink_of('spark_append');
INSERT INTO events (value) SELECT unnest('{25}'::int[]);  -- {[10,15):5}
SELECT streamagg.process('spark_append') AS rows;
SELECT * FROM sink_of('spark_append');
INSERT INTO events (value) SELECT unnest('{10}'::int[]);  -- unchanged: 10 is late
SELECT streamagg.process('spark_append') AS rows;
SELECT * FROM sink_of('spark_append');
SELECT late_rows_dropped FROM streamagg.progress WHERE name = 'spark_append' ORDER BY batch_id;
SELECT streamagg.drop_query('spark_append', drop_sink => true);
TRUNCATE events;

-- Update: every changed window is written with its current count.
SELECT streamagg.create_query(name => 'spark_update', source => 'events', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '5 seconds', watermark => '10 seconds',
       output_mode => 'update');
INSERT INTO events (value) SELECT unnest('{10,11,12,13,14,15}'::int[]);  -- {[10,15):5, [15,20):1}
SELECT streamagg.process('spark_update') AS rows;
SELECT * FROM sink_of('spark_update');
INSERT INTO events (value) SELECT unnest('{25}'::int[]);  -- + [25,30):1
SELECT streamagg.process('spark_update') AS rows;
SELECT * FROM sink_of('spark_update');
INSERT INTO events (value) SELECT unnest('{10,25}'::int[]);  -- [25,30):2, the 10 is late
SELECT streamagg.process('spark_update') AS rows;
SELECT * FROM sink_of('spark_update');
INSERT INTO events (value) SELECT unnest('{10}'::int[]);  -- unchanged
SELECT streamagg.process('spark_update') AS rows;
SELECT * FROM sink_of('spark_update');
SELECT streamagg.drop_query('spark_update', drop_sink => true);
TRUNCATE events;

-- Complete: the sink is the whole result; complete mode never drops rows.
SELECT streamagg.create_query(name => 'spark_complete', source => 'events', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '5 seconds', watermark => '10 seconds',
       output_mode => 'complete');
INSERT INTO events (value) SELECT unnest('{10,11,12}'::int[]);  -- {[10,15):3}
SELECT streamagg.process('spark_complete') AS rows;
SELECT * FROM sink_of('spark_complete');
INSERT INTO events (value) SELECT unnest('{25}'::int[]);  -- + [25,30):1
SELECT streamagg.process('spark_complete') AS rows;
SELECT * FROM sink_of('spark_complete');
INSERT INTO events (value) SELECT unnest('{25}'::int[]);  -- [25,30):2
SELECT streamagg.process('spark_complete') AS rows;
SELECT * FROM sink_of('spark_complete');
INSERT INTO events (value) SELECT unnest('{10}'::int[]);  -- [10,15):4
SELECT streamagg.process('spark_complete') AS rows;
SELECT * FROM sink_of('spark_complete');
INSERT INTO events (value) SELECT unnest('{25}'::int[]);  -- [25,30):3
SELECT streamagg.process('spark_complete') AS rows;
SELECT * FROM sink_of('spark_complete');
SELECT streamagg.drop_query('spark_complete', drop_sink => true);

DROP FUNCTION sink_of(text);
DROP TABLE events;
