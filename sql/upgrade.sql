-- Upgrading (README, Operations): ALTER EXTENSION streamagg UPDATE brings
-- the catalog of an older version up to the library's.  Until then the
-- library refuses to work on the old catalog, with a hint, rather than
-- misread it.  A new installation runs the same scripts (0.1, then the
-- update to 0.2), so every other test also tests the upgrade path.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS streamagg_upgrade;
RESET client_min_messages;
\set home :DBNAME
CREATE DATABASE streamagg_upgrade;
\c streamagg_upgrade
SET timezone = 'UTC';
CREATE EXTENSION streamagg VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'streamagg';
CREATE TABLE ev (ts timestamptz, k text);
SELECT streamagg.create_query(name => 'q', source => 'ev', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', output_mode => 'complete');
SELECT * FROM pg_extension_update_paths('streamagg') WHERE path IS NOT NULL ORDER BY source, target;
ALTER EXTENSION streamagg UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'streamagg';
SELECT streamagg.create_query(name => 'q', source => 'ev', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', output_mode => 'complete',
       notify_channel => 'q_changed');
INSERT INTO ev VALUES ('2024-05-01 10:00+00', 'a'), ('2024-05-01 10:01+00', 'a');
SELECT streamagg.process('q');
TABLE q;
SELECT name, sink, sink_function, sink_merge, notify_channel FROM streamagg.queries;
SELECT streamagg.drop_query('q', drop_sink => true);
\c :home
DROP DATABASE streamagg_upgrade;
