-- The index on a source's transaction ids (DESIGN.md 4.2, src/xid_index.c):
-- create_query indexes streamagg_xid with the streamagg_brin access method,
-- BRIN whose insert skips the rows of a transaction after the first one in
-- each block range.  A trigger reads its batch through that index, so every
-- block range holding a row of a transaction must stay findable by that
-- transaction's id, even when the range was summarized before the
-- transaction inserted into it.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

-- create_query adds the column and the index
CREATE TABLE readings (ts timestamptz, sensor int, filler text);
SELECT streamagg.create_query(name => 'readings_per_sensor', source => 'readings',
       event_time => 'ts', aggregates => 'count(*) AS n', group_by => 'sensor',
       output_mode => 'complete');
SELECT indexrelid::regclass AS index, am.amname, pg_get_indexdef(indexrelid) AS definition
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
 WHERE indrelid = 'readings'::regclass;
SELECT streamagg.drop_query('readings_per_sensor', drop_sink => true);

-- autosummarize would fail later in autovacuum (brin_summarize_range takes
-- only brin indexes): it is refused when the index is created or altered
CREATE INDEX ON readings USING streamagg_brin (streamagg_xid streamagg.xid8_minmax_ops)
  WITH (autosummarize = on);
ALTER INDEX readings_streamagg_xid_idx SET (autosummarize = on);

-- A source indexed by hand with one page per block range, so that a
-- transaction's rows spread over many ranges.  create_query keeps an
-- existing index on streamagg_xid.
DROP TABLE readings;
CREATE TABLE readings (ts timestamptz, sensor int, filler text,
                       streamagg_xid xid8 DEFAULT pg_current_xact_id());
CREATE INDEX readings_xid ON readings
  USING streamagg_brin (streamagg_xid streamagg.xid8_minmax_ops) WITH (pages_per_range = 1);
SELECT streamagg.create_query(name => 'readings_per_sensor', source => 'readings',
       event_time => 'ts', aggregates => 'count(*) AS n', group_by => 'sensor',
       output_mode => 'complete');
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'readings'::regclass;

-- 2000 rows of sensor 1 fill about 40 pages; VACUUM summarizes every range
-- with that transaction's id.  Once they are consumed and deleted (by
-- retention: sources are append-only), the next VACUUM frees the pages, but
-- the summaries stay.
INSERT INTO readings SELECT '2024-01-01', 1, repeat('x', 100) FROM generate_series(1, 2000);
SELECT count(DISTINCT (ctid::text::point)[0]) > 30 AS many_pages FROM readings;
VACUUM readings;
SELECT streamagg.process('readings_per_sensor');
SELECT streamagg.set_retention('readings', '0 seconds');
SELECT streamagg.apply_retention() AS deleted;
VACUUM readings;

-- One transaction of sensor 2 refills the freed space: its rows land in
-- summarized ranges, many rows per range; only the first of each range
-- reaches the summary.  A savepoint rolled back first (its summary update
-- stays: BRIN updates are not transactional) must not hide the rest.
BEGIN;
SAVEPOINT s;
INSERT INTO readings VALUES ('2024-01-01', 9, 'rolled back');
ROLLBACK TO s;
INSERT INTO readings SELECT '2024-01-01', 2, repeat('y', 100) FROM generate_series(1, 1500);
SELECT pg_current_xact_id() AS sensor_2_xid \gset
COMMIT;
SELECT count(DISTINCT (ctid::text::point)[0]) > 20 AS spread_over_many_ranges
  FROM readings WHERE sensor = 2;

-- through the index alone, every row of that transaction is found
SET enable_seqscan = off;
PREPARE rows_of(xid8) AS SELECT count(*) FROM readings WHERE streamagg_xid = $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE rows_of('1');
EXECUTE rows_of(:'sensor_2_xid');
RESET plan_cache_mode;

-- and the trigger, reading its batch the same way, counts all of them once
SELECT streamagg.process('readings_per_sensor');
SELECT sensor, n FROM readings_per_sensor ORDER BY sensor;

-- Each trigger first summarizes the whole ranges its source filled since
-- the last one (autosummarize is not available), so that later batch reads
-- skip the ranges of old events: to find the newest event, the index
-- leaves one page to read (lossy=1), not every page of the 2000 older events.
SET streamagg.allow_source_changes = on;
TRUNCATE readings;
RESET streamagg.allow_source_changes;
INSERT INTO readings SELECT '2024-01-01', 3, repeat('z', 100) FROM generate_series(1, 2000);
SELECT streamagg.process('readings_per_sensor');
INSERT INTO readings VALUES ('2024-01-01', 4, 'newest') RETURNING streamagg_xid AS newest_xid \gset
SET plan_cache_mode = force_generic_plan;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE rows_of(:'newest_xid');
RESET plan_cache_mode;
SELECT streamagg.process('readings_per_sensor');
SELECT sensor, n FROM readings_per_sensor ORDER BY sensor;

-- ALTER INDEX ... SET (pages_per_range) is accepted, but BRIN goes on with
-- the value its metapage holds until REINDEX; the insert memo takes its
-- block ranges from there too, or it would take two of BRIN's ranges for
-- one and skip the second.
-- (TRUNCATE would rebuild the index with the new value: refill instead.)
ALTER INDEX readings_xid SET (pages_per_range = 2);
INSERT INTO readings SELECT '2024-01-01', 6, repeat('x', 100) FROM generate_series(1, 2000);
VACUUM readings;
SELECT streamagg.process('readings_per_sensor');
SELECT streamagg.apply_retention() AS deleted;
VACUUM readings;
INSERT INTO readings SELECT '2024-01-01', 7, repeat('y', 100) FROM generate_series(1, 1500);
SELECT streamagg_xid AS sensor_7_xid FROM readings WHERE sensor = 7 LIMIT 1 \gset
EXECUTE rows_of(:'sensor_7_xid');
SELECT streamagg.process('readings_per_sensor');
SELECT sensor, n FROM readings_per_sensor WHERE sensor IN (6, 7) ORDER BY sensor;
RESET enable_seqscan;

SELECT streamagg.set_retention('readings', NULL);
SELECT streamagg.drop_query('readings_per_sensor', drop_sink => true);
DROP TABLE readings;

-- The planner reads a batch through the index even where ANALYZE has not
-- measured the correlation of streamagg_xid (src/xid_index_cost.c): the
-- ids grow with time and rows go to the end of the table, so a run of ids
-- lies in few block ranges.  Here a table held 200 000 rows before its
-- first query: their streamagg_xid is NULL, and ANALYZE finds no
-- correlation to report.  BRIN's own estimate assumed that a scan would
-- visit every block range, and every trigger read the whole table.
CREATE TABLE history (ts timestamptz, v int);
INSERT INTO history SELECT '2024-01-01', g FROM generate_series(1, 200000) g;
SELECT streamagg.create_query(name => 'history_count', source => 'history',
       event_time => 'ts', aggregates => 'count(*) AS n', output_mode => 'complete');
SELECT streamagg.process('history_count');
ANALYZE history;
SELECT null_frac, correlation FROM pg_stats
 WHERE tablename = 'history' AND attname = 'streamagg_xid';
EXPLAIN (COSTS OFF)
  SELECT count(*) FROM history WHERE streamagg_xid >= '1000'::xid8 AND streamagg_xid < '1010'::xid8;
-- the same before any ANALYZE: a new table filled by producers
CREATE TABLE fresh_events (ts timestamptz, v int);
SELECT streamagg.create_query(name => 'fresh_count', source => 'fresh_events',
       event_time => 'ts', aggregates => 'count(*) AS n', output_mode => 'complete');
INSERT INTO fresh_events SELECT '2024-01-01', g FROM generate_series(1, 200000) g;
SELECT count(*) AS statistics FROM pg_stats WHERE tablename = 'fresh_events';
EXPLAIN (COSTS OFF)
  SELECT count(*) FROM fresh_events WHERE streamagg_xid >= '1000'::xid8 AND streamagg_xid < '1010'::xid8;
-- and the batches are what they were: every row counted once
INSERT INTO history VALUES ('2024-01-02', 0);
SELECT streamagg.process('history_count'), streamagg.process('fresh_count');
SELECT (SELECT n FROM history_count) AS history_n, (SELECT n FROM fresh_count) AS fresh_n;
SELECT streamagg.drop_query('history_count', drop_sink => true);
SELECT streamagg.drop_query('fresh_count', drop_sink => true);
DROP TABLE history;
DROP TABLE fresh_events;
