-- A table sink gets the rows of groups that were not in the state before
-- the trigger (and, in append mode, every row: a window is emitted once)
-- with a plain INSERT, and the other rows with the upsert (DESIGN.md 4.5;
-- src/sink.c).  A group new to the state is new to the sink unless the sink
-- held rows before the query: then the INSERT's unique violation is rolled
-- back with its subtransaction and the same rows are upserted, so the sink
-- ends exactly as with the upsert alone.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE TABLE taps (ts timestamptz, k text);
SELECT streamagg.create_query(name => 'tap_counts', source => 'taps', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', window_size => '1 hour',
       output_mode => 'update');
-- a statement trigger on the sink shows which statements ran (triggers run
-- with the pinned search_path of the trigger: names are qualified)
CREATE TABLE sink_statements (batch_id bigint, op text, n int);
CREATE FUNCTION pg_temp.note_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.sink_statements
	SELECT (SELECT coalesce(max(last_batch_id), -1) + 1 FROM streamagg.queries
	         WHERE name = 'tap_counts'), TG_OP, count(*) FROM new_rows;
	RETURN NULL;
END $$;
CREATE TRIGGER note_insert AFTER INSERT ON tap_counts REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.note_statement();
CREATE TRIGGER note_update AFTER UPDATE ON tap_counts REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.note_statement();

-- batch 0: two new groups, one INSERT
INSERT INTO taps VALUES ('2024-05-01 10:00+00', 'a'), ('2024-05-01 10:05+00', 'b');
SELECT streamagg.process('tap_counts');
-- batch 1: a known group (a) is upserted, a new one (c) inserted
INSERT INTO taps VALUES ('2024-05-01 10:10+00', 'a'), ('2024-05-01 10:15+00', 'c');
SELECT streamagg.process('tap_counts');
TABLE tap_counts ORDER BY k;
SELECT batch_id, op, n FROM sink_statements ORDER BY batch_id, op;

-- The query is recreated over its old sink: its state is empty, so every
-- group is new to it, but the sink holds a, b, c.  The INSERT fails on a
-- and rolls back; the upsert writes the rows.  d is new to both.
SELECT streamagg.drop_query('tap_counts');
TRUNCATE taps, sink_statements;
SELECT streamagg.create_query(name => 'tap_counts', source => 'taps', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', window_size => '1 hour',
       output_mode => 'update');
INSERT INTO taps VALUES ('2024-05-01 10:20+00', 'a'), ('2024-05-01 10:25+00', 'd');
SELECT streamagg.process('tap_counts');
TABLE tap_counts ORDER BY k;
SELECT batch_id, op, n FROM sink_statements ORDER BY batch_id, op;
SELECT sink_rows_written FROM streamagg.progress WHERE name = 'tap_counts';

-- Another error of the INSERT is not swallowed: the trigger fails whole.
ALTER TABLE tap_counts ADD CONSTRAINT few CHECK (n < 2);
INSERT INTO taps VALUES ('2024-05-01 12:00+00', 'e'), ('2024-05-01 12:01+00', 'e');
SELECT streamagg.process('tap_counts');
SELECT last_batch_id FROM streamagg.queries WHERE name = 'tap_counts';
SELECT count(*) AS e_rows FROM tap_counts WHERE k = 'e';

SELECT streamagg.drop_query('tap_counts', drop_sink => true);
DROP TABLE taps, sink_statements;

-- The rows reach the INSERT as a tuplestore (docs/sinks.md); when it
-- outgrows work_mem it spills to a temporary file, and the upsert that
-- follows a failed INSERT reads the same rows again from there.  Here a row
-- written before the query makes the INSERT fail: every one of 20 000 keys
-- is written once, the old row overwritten, and no temporary file is left
-- (a leak would show as a WARNING).
CREATE TABLE spill_src (ts timestamptz, k int);
CREATE TABLE spill_out (window_start timestamptz NOT NULL, window_end timestamptz NOT NULL,
                        k int, n bigint, UNIQUE NULLS NOT DISTINCT (window_start, window_end, k));
INSERT INTO spill_out VALUES ('2024-05-01 10:00+00', '2024-05-01 11:00+00', 7, 999);
SELECT streamagg.create_query(name => 'spill', source => 'spill_src', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'k', window_size => '1 hour',
       output_mode => 'update', sink => 'spill_out');
INSERT INTO spill_src SELECT '2024-05-01 10:30+00', g % 20000 FROM generate_series(1, 60000) g;
SET work_mem = '64kB';
SELECT streamagg.process('spill');
RESET work_mem;
SELECT count(*) AS rows, sum(n) AS events, count(*) FILTER (WHERE n <> 3) AS wrong
  FROM spill_out;
SELECT n FROM spill_out WHERE k = 7;
SELECT streamagg.drop_query('spill', drop_sink => true);
DROP TABLE spill_src;
