-- open_windows (docs/output-modes.md, "Seeing open windows"): the groups a
-- query holds in its state, with their values finalized as if emitted now,
-- as of its last committed trigger, in the sink's columns.  In append mode
-- that is what the sink does not hold yet.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE clicks (ts timestamptz, page text, ms int);
SELECT streamagg.create_query(name => 'per_page', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS hits, avg(ms) AS avg_ms', group_by => 'page',
       window_size => '10 minutes', watermark => '5 minutes', output_mode => 'append');

-- before any trigger: no state, no rows
SELECT * FROM streamagg.open_windows('per_page', NULL::per_page);

INSERT INTO clicks VALUES ('2024-05-01 10:01+00', '/a', 10), ('2024-05-01 10:02+00', '/a', 20),
                          ('2024-05-01 10:03+00', '/b', 5), ('2024-05-01 10:12+00', '/a', 1);
SELECT streamagg.process('per_page');
-- watermark 10:07: nothing closed, so the append sink is empty ...
SELECT count(*) AS sink_rows FROM per_page;
-- ... and the open windows show their counts (avg's final function ran)
SELECT * FROM streamagg.open_windows('per_page', NULL::per_page) ORDER BY window_start, page;
-- the same from the source, with plain SQL
SELECT date_bin('10 minutes', ts, '1970-01-01') AS window_start, page, count(*) AS hits,
       avg(ms) AS avg_ms
  FROM clicks GROUP BY 1, 2 ORDER BY 1, 2;

-- the watermark moves to 10:20: 10:00-10:10 is emitted and leaves the state
INSERT INTO clicks VALUES ('2024-05-01 10:25+00', '/b', 7);
SELECT streamagg.process('per_page');
TABLE per_page ORDER BY window_start, page;
SELECT * FROM streamagg.open_windows('per_page', NULL::per_page) ORDER BY window_start, page;

-- as of the last committed trigger: the trigger's own transaction sees its
-- change, and after a rollback nobody does
INSERT INTO clicks VALUES ('2024-05-01 10:26+00', '/b', 9);
BEGIN;
SELECT streamagg.process('per_page');
SELECT window_start, page, hits FROM streamagg.open_windows('per_page', NULL::per_page)
 ORDER BY window_start, page;
ROLLBACK;
SELECT window_start, page, hits FROM streamagg.open_windows('per_page', NULL::per_page)
 ORDER BY window_start, page;

-- any row type with the sink's columns works (extra columns are NULL);
-- one without them is refused, saying which column is missing
CREATE TYPE page_view AS (page text, hits bigint, window_start timestamptz,
                          window_end timestamptz, avg_ms numeric, note text);
SELECT * FROM streamagg.open_windows('per_page', NULL::page_view) ORDER BY window_start, page;
CREATE TYPE too_small AS (page text, hits bigint);
SELECT * FROM streamagg.open_windows('per_page', NULL::too_small);
SELECT * FROM streamagg.open_windows('per_page', NULL::int);

-- only roles with the owner's privileges may look
CREATE ROLE windows_stranger;
SET ROLE windows_stranger;
SELECT * FROM streamagg.open_windows('per_page', NULL::per_page);
RESET ROLE;
DROP ROLE windows_stranger;

SELECT streamagg.drop_query('per_page', true);
DROP TABLE clicks;
DROP TYPE page_view, too_small;
