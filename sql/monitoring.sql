-- Friendlier psql (docs/operations.md, "Monitoring" and "Waiting"):
-- wait() says at once when nobody runs a query, the view
-- streamagg.overview gives one compact row per query for \watch, and every
-- object a user meets describes itself (\df+, \dv+).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE visits (ts timestamptz, page text);
-- no trigger_interval: only process() runs it
SELECT streamagg.create_query(name => 'by_page', source => 'visits', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'page', output_mode => 'update');

-- nothing pending: wait() is satisfied at once
SELECT streamagg.wait('by_page', '1 minute');
-- events pending and no worker runs the query: an error at once, not after
-- the minute
INSERT INTO visits VALUES ('2024-05-01 10:00+00', '/a'), ('2024-05-01 10:05+00', '/a'),
                          ('2024-05-01 10:07+00', '/b');
SELECT clock_timestamp() AS before_wait \gset
SELECT streamagg.wait('by_page', '1 minute');
SELECT clock_timestamp() - :'before_wait' < interval '30 seconds' AS answered_at_once;

-- the compact view: 3 unconsumed rows; the lag is now minus the oldest
-- unconsumed event time
SELECT name, status, unconsumed_rows, lag = now() - timestamptz '2024-05-01 10:00+00' AS lag_from_oldest,
       last_batch_id, last_batch_rows, watermark, last_error
  FROM streamagg.overview;
SELECT * FROM streamagg.unconsumed('by_page');
SELECT streamagg.process('by_page');
-- caught up: nothing unconsumed, no lag; the last batch read 3 rows
SELECT name, status, unconsumed_rows, lag, last_batch_id, last_batch_rows,
       last_batch_ms > 0 AS timed, processed_rows_per_second > 0 AS has_rate
  FROM streamagg.overview;
SELECT streamagg.wait('by_page', '1 minute');

-- a scheduled but paused query: the same, naming the pause
SELECT streamagg.create_query(name => 'by_page_live', source => 'visits', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'page', output_mode => 'update',
       trigger_interval => '1 hour');
SELECT streamagg.pause('by_page_live');
SELECT streamagg.wait('by_page_live', '1 minute');
SELECT name, status, unconsumed_rows FROM streamagg.overview ORDER BY name;
SELECT streamagg.drop_query('by_page_live', true);

-- a query whose source is gone still has its row (the counts are unknown),
-- so the view never fails for one broken query
CREATE TABLE gone (ts timestamptz);
SELECT streamagg.create_query(name => 'on_gone', source => 'gone', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'complete');
SET client_min_messages = warning;
DROP TABLE gone;
RESET client_min_messages;
SELECT name, unconsumed_rows, lag FROM streamagg.overview ORDER BY name;
SELECT streamagg.drop_query('on_gone', true);

-- nor for a query that no longer compiles: here its owner lost the right
-- to read its source.  Counting fails inside a subtransaction, which is
-- rolled back; the counts are NULL and the caller's transaction goes on.
CREATE ROLE sa_monitor_owner;
GRANT CREATE ON SCHEMA public TO sa_monitor_owner;
SET ROLE sa_monitor_owner;
CREATE TABLE unreadable (ts timestamptz);
SELECT streamagg.create_query(name => 'on_unreadable', source => 'unreadable',
       event_time => 'ts', aggregates => 'count(*) AS n', output_mode => 'complete');
INSERT INTO unreadable VALUES ('2024-05-01 10:00+00');
RESET ROLE;
BEGIN;
SELECT * FROM streamagg.unconsumed('on_unreadable');
REVOKE SELECT ON unreadable FROM sa_monitor_owner;
ALTER TABLE unreadable OWNER TO CURRENT_USER;
SELECT * FROM streamagg.unconsumed('on_unreadable');
SELECT name, unconsumed_rows FROM streamagg.overview ORDER BY name;
SELECT count(*) AS still_in_transaction FROM unreadable;
COMMIT;
SELECT streamagg.drop_query('on_unreadable', true);
DROP TABLE unreadable;
REVOKE CREATE ON SCHEMA public FROM sa_monitor_owner;
DROP ROLE sa_monitor_owner;

-- every function, view and table of the extension describes itself;
-- internal ones say so in their description
SELECT p.oid::regprocedure AS undescribed_function FROM pg_proc p
 WHERE p.pronamespace = 'streamagg'::regnamespace
   AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT c.oid::regclass AS undescribed_relation FROM pg_class c
 WHERE c.relnamespace = 'streamagg'::regnamespace AND c.relkind IN ('r', 'v')
   AND obj_description(c.oid, 'pg_class') IS NULL;
SELECT p.proname AS internal_function FROM pg_proc p
 WHERE p.pronamespace = 'streamagg'::regnamespace
   AND obj_description(p.oid, 'pg_proc') LIKE 'Internal%' ORDER BY 1;
SELECT obj_description('streamagg.overview'::regclass, 'pg_class');

SELECT streamagg.drop_query('by_page', true);
DROP TABLE visits;
