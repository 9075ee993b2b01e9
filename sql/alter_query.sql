-- alter_query (README, API): a running query changes from its next trigger.
-- Parameters that leave the state valid change with the state and position
-- kept; the new definition is checked as create_query checks one; anything
-- the state depends on is refused, with a hint, and nothing changes.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE visits (ts timestamptz, page text);
SELECT streamagg.create_query(name => 'hits', source => 'visits', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'page', window_size => '1 hour',
       watermark => '10 minutes', output_mode => 'append');
-- paused, so that the worker does not run it once it has a trigger_interval:
-- process() runs it here
SELECT streamagg.pause('hits');
INSERT INTO visits VALUES ('2024-05-01 10:00+00', 'a'), ('2024-05-01 10:30+00', 'a');
SELECT streamagg.process('hits') AS rows_read;
SELECT watermark, watermark_delay, trigger_interval, last_batch_id FROM streamagg.queries;

-- 1. A new watermark delay applies from the next trigger with events: the
-- watermark is max(W(N-1), max event time - new delay), and never moves back.
SELECT streamagg.alter_query('hits', watermark => '1 hour', trigger_interval => '1 hour');
SELECT watermark, watermark_delay, trigger_interval, last_batch_id FROM streamagg.queries;
INSERT INTO visits VALUES ('2024-05-01 11:25+00', 'a');
SELECT streamagg.process('hits') AS rows_read;
-- 11:25 - 1 hour = 10:25: the watermark moves from 10:20 to 10:25 and
-- [10:00, 11:00) is still open (with the old delay it would have closed)
SELECT watermark, last_batch_id FROM streamagg.queries;
TABLE hits;
-- the state was kept: the window counts all three visits when it closes
INSERT INTO visits VALUES ('2024-05-01 12:05+00', 'b');
SELECT streamagg.process('hits') AS rows_read;
TABLE hits ORDER BY window_start, page;

-- 2. A late sink and an idle timeout added to the running query.
SELECT streamagg.alter_query('hits', late_sink => 'visits_late', idle_timeout => '1 hour');
SELECT late_sink, idle_timeout FROM streamagg.queries;
INSERT INTO visits VALUES ('2024-05-01 09:00+00', 'c');
SELECT streamagg.process('hits') AS rows_read;
SELECT ts, page, late_batch_id, late_watermark FROM visits_late;

-- 3. notify_channel, max_batch_rows, and a function sink instead of the
-- sink table (the table stays, no longer written).
CREATE TYPE hits_row AS (window_start timestamptz, window_end timestamptz, page text, n bigint);
CREATE TABLE delivered (batch_id bigint, page text, n bigint);
CREATE FUNCTION deliver(batch_id bigint, rows hits_row[]) RETURNS void LANGUAGE sql
  AS $$ INSERT INTO public.delivered SELECT batch_id, r.page, r.n FROM unnest(rows) r $$;
SELECT streamagg.alter_query('hits', notify_channel => 'hits_done', max_batch_rows => 1000,
                             sink_function => 'deliver');
SELECT sink, sink_function, notify_channel, max_batch_rows FROM streamagg.queries;
INSERT INTO visits VALUES ('2024-05-01 14:00+00', 'd');
SELECT streamagg.process('hits') AS rows_read;
-- [12:00, 13:00) closed: delivered to the function
TABLE delivered;
SELECT count(*) AS rows_in_old_sink_table FROM hits;

-- 4. What would change the meaning of the state is refused, and nothing
-- changes; so is a new definition that does not hold together.
SELECT streamagg.alter_query('hits', aggregates => 'count(DISTINCT page) AS pages');
SELECT streamagg.alter_query('hits', window_size => '2 hours');
SELECT streamagg.alter_query('hits', group_by => 'lower(page) AS page');
SELECT streamagg.alter_query('hits', filter => 'page <> ''x''');
SELECT streamagg.alter_query('hits', output_mode => 'update');
SELECT streamagg.alter_query('hits', sink_merge => 'WHEN MATCHED THEN DO NOTHING');
SELECT streamagg.alter_query('hits', watermark => '-1 hour');
SELECT streamagg.alter_query('hits', max_batch_rows => 0);
SELECT streamagg.alter_query('hits', trigger_interval => '1 month');
SELECT streamagg.alter_query('hits', late_sink => 'visits');
SELECT streamagg.alter_query('nope', trigger_interval => '1 second');
SELECT watermark_delay, trigger_interval, aggregates, window_size, output_mode
  FROM streamagg.queries;

-- 5. reprocess => true: the query is reset (state, watermark and position
-- forgotten, its table sink emptied) and defined anew, keeping its name,
-- owner and batch ids; its next trigger reprocesses every event the source
-- retains.  Here with new aggregates, update mode and a new sink table.
SELECT last_batch_id AS batch_before FROM streamagg.queries WHERE name = 'hits' \gset
SELECT streamagg.alter_query('hits', aggregates => 'count(*) AS n, min(ts) AS first_visit',
       output_mode => 'update', sink => 'hits_v2', reprocess => true);
SELECT aggregates, output_mode, sink, sink_function, watermark, last_batch_id = :batch_before AS same_last_batch
  FROM streamagg.queries WHERE name = 'hits';
SELECT streamagg.process('hits') AS rows_read;
SELECT batch_id = :batch_before + 1 AS batch_ids_go_on FROM streamagg.progress
 WHERE name = 'hits' ORDER BY batch_id DESC LIMIT 1;
-- the same as a new query with that definition over the same events
SELECT streamagg.create_query(name => 'fresh', source => 'visits', event_time => 'ts',
       aggregates => 'count(*) AS n, min(ts) AS first_visit', group_by => 'page',
       window_size => '1 hour', watermark => '1 hour', output_mode => 'update',
       max_batch_rows => 1000);
SELECT streamagg.process('fresh') AS rows_read;
TABLE hits_v2 ORDER BY window_start, page;
(TABLE hits_v2 EXCEPT ALL TABLE fresh) UNION ALL (TABLE fresh EXCEPT ALL TABLE hits_v2);
-- an invalid new definition is refused and changes nothing
SELECT streamagg.alter_query('hits', session_gap => '5 minutes', reprocess => true);
SELECT aggregates, output_mode, sink FROM streamagg.queries WHERE name = 'hits';

-- 6. Only roles with the owner's privileges may alter a query.
CREATE ROLE sa_alter_other;
SET ROLE sa_alter_other;
SELECT streamagg.alter_query('hits', trigger_interval => '1 second');
RESET ROLE;
DROP ROLE sa_alter_other;

SELECT streamagg.drop_query('hits', drop_sink => true);
SELECT streamagg.drop_query('fresh', drop_sink => true);
DROP FUNCTION deliver(bigint, hits_row[]);
DROP TYPE hits_row;
DROP TABLE visits, visits_late, delivered, hits;
