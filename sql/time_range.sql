-- The ends of the timestamp range (DESIGN.md 3.9): no window and no
-- watermark ever leaves [4714-11-24 00:00 BC, 294277-01-01 00:00).  A row
-- whose window (or session) would leave it is skipped and counted like a
-- row without event time; a watermark below the range is its start.  So
-- the sinks and the catalog views always hold values that can be read,
-- dumped and loaded back.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TABLE edge (ts timestamptz, k text);
INSERT INTO edge VALUES
  ('4714-11-24 00:00:30+00 BC', 'low'),          -- window [00:00, 00:01) starts at the range's start
  ('294276-12-31 23:58:30+00', 'high'),           -- window [23:58, 23:59): inside
  ('294276-12-31 23:59:59.999999+00', 'last'),    -- window [23:59, 294277-01-01): its end is past the range
  ('2024-05-01 10:00+00', 'ordinary');

-- tumbling windows of a minute: three rows land, the last is skipped
SELECT streamagg.create_query(name => 'edge_minutes', source => 'edge', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', window_size => '1 minute',
       output_mode => 'update');
SELECT streamagg.process('edge_minutes');
SELECT window_start, window_end, k, n FROM edge_minutes ORDER BY window_start;
-- the same by plain SQL, over the rows whose window ends inside the range
SELECT date_trunc('minute', ts) AS window_start, k, count(*) AS n
  FROM edge WHERE ts < '294276-12-31 23:59:00+00' GROUP BY 1, 2 ORDER BY 1;
SELECT num_input_rows, null_event_time_rows, event_time_min, event_time_max
  FROM streamagg.progress WHERE name = 'edge_minutes';

-- sliding windows of a day every hour: near either end some of a row's
-- windows would leave the range (start before it, end after it), so the
-- row is skipped whole; only the ordinary row lands, in 24 windows
SELECT streamagg.create_query(name => 'edge_days', source => 'edge', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '1 day', window_slide => '1 hour',
       output_mode => 'update');
SELECT streamagg.process('edge_days');
SELECT min(window_start), max(window_end), count(*) AS windows, sum(n) AS row_windows FROM edge_days;
SELECT null_event_time_rows FROM streamagg.progress WHERE name = 'edge_days';

-- sessions: an event whose session [t, t + gap) would end past the range is
-- skipped (it used to overflow and be dropped as late)
SELECT streamagg.create_query(name => 'edge_sessions', source => 'edge', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', session_gap => '10 minutes',
       watermark => '1 minute', output_mode => 'complete');
SELECT streamagg.process('edge_sessions');
SELECT window_start, window_end, k, n FROM edge_sessions ORDER BY window_start;
SELECT late_rows_dropped, null_event_time_rows FROM streamagg.progress WHERE name = 'edge_sessions';

-- a watermark delay (about 90 000 years) longer than the distance to the
-- range's start: the watermark is the range's start, and the views stay
-- readable
CREATE TABLE old_edge (ts timestamptz, k text);
SELECT streamagg.create_query(name => 'edge_watermark', source => 'old_edge', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '1 hour', watermark => '32850000 days',
       output_mode => 'append');
INSERT INTO old_edge VALUES ('4000-01-01 00:00+00 BC', 'a');
SELECT streamagg.process('edge_watermark');
SELECT name, watermark FROM streamagg.queries WHERE name = 'edge_watermark';
SELECT watermark FROM streamagg.progress WHERE name = 'edge_watermark';

-- every value written reads back through its text form (what pg_dump and
-- a restore do; an out-of-range value would fail here)
SELECT count(*) AS values_read_back, count(DISTINCT s) AS distinct_values FROM (
  SELECT s::text::timestamptz AS s FROM (
    SELECT window_start FROM edge_minutes UNION ALL SELECT window_end FROM edge_minutes
    UNION ALL SELECT window_start FROM edge_days UNION ALL SELECT window_end FROM edge_days
    UNION ALL SELECT window_start FROM edge_sessions UNION ALL SELECT window_end FROM edge_sessions
    UNION ALL SELECT watermark FROM streamagg.queries
    UNION ALL SELECT max_event_time FROM streamagg.queries) v(s)) x;

-- timestamp (without time zone) event times have the same range: the last
-- hour's window would end at 294277-01-01, outside it
CREATE TABLE edge_local (ts timestamp);
INSERT INTO edge_local VALUES ('294276-12-31 23:59:59'), ('294276-12-31 22:30:00');
SELECT streamagg.create_query(name => 'edge_local_hours', source => 'edge_local', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '1 hour', output_mode => 'update');
SELECT streamagg.process('edge_local_hours');
SELECT window_start, window_end, n FROM edge_local_hours;
SELECT null_event_time_rows FROM streamagg.progress WHERE name = 'edge_local_hours';

SELECT streamagg.drop_query(name, drop_sink => true) FROM streamagg.queries
 WHERE name LIKE 'edge%' ORDER BY name;
DROP TABLE edge, old_edge, edge_local;
