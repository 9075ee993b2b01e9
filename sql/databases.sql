-- Queries of different databases never share state (DESIGN.md 4.3): query
-- ids are numbered per database, and the shared memory that holds open
-- windows serves the whole cluster, so it keys each query's state by its
-- database as well.  Here a query with id 1 in each of two new databases
-- counts its own events only, batch after batch.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS streamagg_db1;
DROP DATABASE IF EXISTS streamagg_db2;
RESET client_min_messages;
\set home :DBNAME
CREATE DATABASE streamagg_db1;
CREATE DATABASE streamagg_db2;
\c streamagg_db1
CREATE EXTENSION streamagg;
CREATE TABLE ev (ts timestamptz, k text);
SELECT streamagg.create_query(name => 'q', source => 'ev', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', window_size => '1 hour',
       output_mode => 'update', trigger_interval => '1 day');
SELECT query_id FROM streamagg.query_def;
\c streamagg_db2
CREATE EXTENSION streamagg;
CREATE TABLE ev (ts timestamptz, k text);
SELECT streamagg.create_query(name => 'q', source => 'ev', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', window_size => '1 hour',
       output_mode => 'update', trigger_interval => '1 day');
SELECT query_id FROM streamagg.query_def;
-- batches 0, 1, 2 alternate between the databases, at the same batch ids
\c streamagg_db1
INSERT INTO ev VALUES ('2024-05-01 10:00+00', 'one');
SELECT streamagg.process('q');
\c streamagg_db2
INSERT INTO ev VALUES ('2024-05-01 10:00+00', 'two');
SELECT streamagg.process('q');
\c streamagg_db1
INSERT INTO ev VALUES ('2024-05-01 10:00+00', 'one');
SELECT streamagg.process('q');
\c streamagg_db2
INSERT INTO ev VALUES ('2024-05-01 10:00+00', 'two');
SELECT streamagg.process('q');
\c streamagg_db1
INSERT INTO ev VALUES ('2024-05-01 10:00+00', 'one');
SELECT streamagg.process('q');
TABLE q;
\c streamagg_db2
INSERT INTO ev VALUES ('2024-05-01 10:00+00', 'two');
SELECT streamagg.process('q');
TABLE q;

-- Dropping a database, or the extension, frees the shared state of its
-- queries at once (not at the next restart).  With room for about one
-- state of 10 000 groups, each of db1's and db2's queries gets that room
-- in turn only if the other's state was freed.
\c :home
ALTER SYSTEM SET streamagg.max_state_memory = '3MB';
SELECT pg_reload_conf();
\c streamagg_db1
SHOW streamagg.max_state_memory;
INSERT INTO ev SELECT '2024-05-01 11:00+00', g::text FROM generate_series(1, 10000) g;
SELECT streamagg.process('q');
\c :home
DROP DATABASE streamagg_db1;
\c streamagg_db2
INSERT INTO ev SELECT '2024-05-01 11:00+00', g::text FROM generate_series(1, 10000) g;
SELECT streamagg.process('q');
DROP EXTENSION streamagg CASCADE;
DROP TABLE q;
CREATE EXTENSION streamagg;
SELECT streamagg.create_query(name => 'q', source => 'ev', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', window_size => '1 hour',
       output_mode => 'update', trigger_interval => '1 day');
-- the worker runs its first trigger at once
SELECT streamagg.wait('q', '30 seconds');
SELECT count(*) AS groups, sum(n) AS events FROM q;
\c :home
ALTER SYSTEM RESET streamagg.max_state_memory;
SELECT pg_reload_conf();
DROP DATABASE streamagg_db2;
