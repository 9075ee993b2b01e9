-- Writing to a remote PostgreSQL through postgres_fdw from a function sink
-- (docs/sinks.md).  postgres_fdw commits the remote transaction just before
-- the local one, so a batch can reach the remote side and still be
-- replayed (if the local commit then fails): the remote target must be
-- idempotent per batch.  Here it is an append-only table keyed by
-- (batch_id, window, key), written with ON CONFLICT DO NOTHING, and read
-- through a view that keeps each window's row from its latest batch.
-- The "remote" database is another database of this cluster.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
DROP DATABASE IF EXISTS streamagg_remote;
RESET client_min_messages;
SET timezone = 'UTC';
\set home :DBNAME
CREATE DATABASE streamagg_remote;

\c streamagg_remote
SET timezone = 'UTC';
CREATE TABLE page_totals (batch_id bigint, window_start timestamptz, window_end timestamptz,
                          page text, n bigint,
                          PRIMARY KEY (batch_id, window_start, page));
CREATE VIEW page_totals_latest AS
SELECT DISTINCT ON (window_start, page) window_start, window_end, page, n, batch_id
  FROM page_totals ORDER BY window_start, page, batch_id DESC;

\c :home
SET timezone = 'UTC';
DO $$
BEGIN
    EXECUTE format('CREATE SERVER remote_pg FOREIGN DATA WRAPPER postgres_fdw '
                   'OPTIONS (dbname %L, host %L, port %L)', 'streamagg_remote',
                   split_part(current_setting('unix_socket_directories'), ',', 1),
                   current_setting('port'));
END $$;
CREATE USER MAPPING FOR CURRENT_USER SERVER remote_pg;
CREATE SCHEMA remote;
IMPORT FOREIGN SCHEMA public LIMIT TO (page_totals) FROM SERVER remote_pg INTO remote;

CREATE TABLE views (ts timestamptz, page text);
CREATE TYPE page_count AS (window_start timestamptz, window_end timestamptz, page text, n bigint);
CREATE FUNCTION ship_to_remote(batch_id bigint, rows page_count[]) RETURNS void
LANGUAGE sql SET search_path = public AS $$
    INSERT INTO remote.page_totals
    SELECT batch_id, r.window_start, r.window_end, r.page, r.n FROM unnest(rows) AS r
    ON CONFLICT DO NOTHING
$$;
SELECT streamagg.create_query(name => 'remote_counts', source => 'views', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'page', window_size => '1 hour',
       output_mode => 'update', sink_function => 'ship_to_remote');
-- the same query into a local table, to compare with
SELECT streamagg.create_query(name => 'local_counts', source => 'views', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'page', window_size => '1 hour',
       output_mode => 'update');

INSERT INTO views VALUES ('2024-05-01 10:00+00', 'home'), ('2024-05-01 10:10+00', 'home'),
                         ('2024-05-01 10:20+00', 'cart');
SELECT streamagg.process('remote_counts'), streamagg.process('local_counts');

-- A trigger that fails after writing to the remote side: the remote
-- transaction is rolled back with the local one, and the retry writes the
-- batch once.
INSERT INTO views VALUES ('2024-05-01 10:30+00', 'home'), ('2024-05-01 11:05+00', 'cart');
SELECT streamagg.fail_next_trigger('remote_counts', 'before_commit');
\set VERBOSITY terse
SELECT streamagg.process('remote_counts');
\set VERBOSITY default
SELECT count(*) AS remote_rows_after_failure FROM remote.page_totals;
SELECT streamagg.process('remote_counts'), streamagg.process('local_counts');
SELECT batch_id, window_start, page, n FROM remote.page_totals ORDER BY batch_id, window_start, page;

-- A replay of batch 1 whose remote write had committed (as after a failed
-- local commit) adds nothing.
SELECT ship_to_remote(1, ARRAY(SELECT ROW(window_start, window_end, page, n)::page_count
                                 FROM remote.page_totals WHERE batch_id = 1));
SELECT count(*) AS remote_rows_after_replay FROM remote.page_totals;

-- The remote latest view equals the local sink.
\c streamagg_remote
CREATE TABLE local_copy (window_start timestamptz, window_end timestamptz, page text, n bigint);
\c :home
SET timezone = 'UTC';
IMPORT FOREIGN SCHEMA public LIMIT TO (page_totals_latest, local_copy) FROM SERVER remote_pg INTO remote;
INSERT INTO remote.local_copy SELECT * FROM local_counts;
SELECT count(*) AS differences FROM (
    (SELECT window_start, window_end, page, n FROM remote.page_totals_latest
     EXCEPT SELECT * FROM remote.local_copy)
    UNION ALL
    (SELECT * FROM remote.local_copy
     EXCEPT SELECT window_start, window_end, page, n FROM remote.page_totals_latest)) AS d;

SELECT streamagg.drop_query('remote_counts');
SELECT streamagg.drop_query('local_counts', drop_sink => true);
-- postgres_fdw keeps its connection open; close it to drop the database
SELECT postgres_fdw_disconnect_all();
DROP SCHEMA remote CASCADE;
DROP USER MAPPING FOR CURRENT_USER SERVER remote_pg;
DROP SERVER remote_pg;
DROP TABLE views;
DROP FUNCTION ship_to_remote;
DROP TYPE page_count;
DROP DATABASE streamagg_remote;
