-- Upgrading (README, Operations): ALTER EXTENSION streamagg UPDATE brings
-- the catalog of an older version up to the library's.  Until then the
-- library refuses to work on the old catalog, with a hint, rather than
-- misread it.  A new installation runs the same scripts (0.1, then the
-- updates to 0.2 and 0.3), so every other test also tests the upgrade path.
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
-- a source as create_query of 0.1 and 0.2 prepared it (a brin index), and
-- one indexed by hand with its own pages_per_range
ALTER TABLE ev ADD COLUMN streamagg_xid xid8 DEFAULT pg_current_xact_id();
CREATE INDEX ON ev USING brin (streamagg_xid streamagg.xid8_minmax_ops)
  WITH (autosummarize = on);
CREATE TABLE ev2 (ts timestamptz, streamagg_xid xid8 DEFAULT pg_current_xact_id());
CREATE INDEX ev2_xid ON ev2 USING brin (streamagg_xid streamagg.xid8_minmax_ops)
  WITH (pages_per_range = 4);
SELECT * FROM pg_extension_update_paths('streamagg') WHERE path IS NOT NULL ORDER BY source, target;
ALTER EXTENSION streamagg UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'streamagg';
-- 0.3 rebuilt the sources' brin indexes with streamagg_brin, under their
-- names, keeping pages_per_range (and dropping autosummarize)
SELECT indexrelid::regclass AS index, am.amname, c.reloptions
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
 WHERE indrelid IN ('ev'::regclass, 'ev2'::regclass) ORDER BY 1::text;
SELECT count(*) AS brin_opclasses_left FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
 WHERE oc.opcname = 'xid8_minmax_ops' AND am.amname = 'brin';
SELECT streamagg.create_query(name => 'q', source => 'ev', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', output_mode => 'complete',
       notify_channel => 'q_changed');
INSERT INTO ev VALUES ('2024-05-01 10:00+00', 'a'), ('2024-05-01 10:01+00', 'a');
SELECT streamagg.process('q');
TABLE q;
SELECT name, sink, sink_function, sink_merge, notify_channel FROM streamagg.queries;
SELECT streamagg.drop_query('q', drop_sink => true);
DROP TABLE ev2;
\c :home
DROP DATABASE streamagg_upgrade;
