-- Stateless queries (docs/pipelines.md): columns instead of aggregates.
-- Every row that passes the filter and joins is appended to the sink
-- exactly once, with the listed expressions as columns; no windows, no
-- groups, no state.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE clicks (ts timestamptz, user_id int, url text, ms int);
CREATE TABLE users (user_id int PRIMARY KEY, country text);
INSERT INTO users VALUES (1, 'de'), (2, 'fr');

-- 1. The sink is created with the columns' names and types, and no key.
SELECT streamagg.create_query(name => 'slow_clicks', source => 'clicks',
       event_time => 'ts', aggregates => NULL,
       columns => 'ts, user_id, lower(url) AS url, ms / 1000.0 AS seconds',
       filter => 'ms >= 500');
\d slow_clicks
SELECT output_mode, columns, aggregates FROM streamagg.queries WHERE name = 'slow_clicks';

-- Batch 1: two slow clicks, a fast one, one without duration (the filter
-- is not true) and one without event time, which is appended all the same
-- (a stateless query without watermark drops nothing for its time).
INSERT INTO clicks VALUES
  ('2024-05-01 10:00+00', 1, 'HTTP://A', 700), ('2024-05-01 10:01+00', 2, 'http://b', 100),
  ('2024-05-01 10:02+00', 2, 'http://C', 1500), ('2024-05-01 10:03+00', 1, 'http://d', NULL),
  (NULL, 3, 'http://e', 900);
SELECT streamagg.process('slow_clicks') AS rows_read;
TABLE slow_clicks ORDER BY ts NULLS LAST;
SELECT batch_id, num_input_rows, filtered_rows, null_event_time_rows,
       sink_rows_written, event_time_min, event_time_max, state_rows_total
  FROM streamagg.progress WHERE name = 'slow_clicks';

-- Batch 2 appends; rows already in the sink stay as they are.
INSERT INTO clicks VALUES ('2024-05-01 09:00+00', 2, 'http://F', 800);
SELECT streamagg.process('slow_clicks') AS rows_read;
TABLE slow_clicks ORDER BY ts NULLS LAST;
-- the sink holds exactly the rows of the plain SQL over the source
SELECT ts, user_id, lower(url) AS url, ms / 1000.0 AS seconds FROM clicks
 WHERE ms >= 500
EXCEPT ALL TABLE slow_clicks;
SELECT (SELECT count(*) FROM slow_clicks) AS sink_rows,
       (SELECT count(*) FROM clicks WHERE ms >= 500) AS plain_sql_rows;

-- 2. Exactly once when a trigger fails at any point: the retry appends the
-- batch once.
INSERT INTO clicks VALUES ('2024-05-01 11:00+00', 1, 'http://g', 600);
SELECT streamagg.fail_next_trigger('slow_clicks', 'after_read');
SELECT streamagg.process('slow_clicks');
SELECT streamagg.fail_next_trigger('slow_clicks', 'during_sink');
SELECT streamagg.process('slow_clicks');
SELECT streamagg.fail_next_trigger('slow_clicks', 'before_commit');
SELECT streamagg.process('slow_clicks');
SELECT streamagg.process('slow_clicks') AS rows_read;
SELECT count(*) AS rows_of_g FROM slow_clicks WHERE url = 'http://g';
SELECT batch_id, num_input_rows, sink_rows_written FROM streamagg.progress
 WHERE name = 'slow_clicks' ORDER BY batch_id;

-- 3. With a join (inner: clicks of unknown users are filtered) and a
-- function sink, and in update mode, which behaves as append.
CREATE TYPE click_row AS (ts timestamptz, country text, url text);
CREATE TABLE received (batch_id bigint, ts timestamptz, country text, url text);
CREATE FUNCTION take_clicks(batch_id bigint, rows click_row[]) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO public.received SELECT batch_id, r.* FROM unnest(rows) r
$$;
SELECT streamagg.create_query(name => 'by_country', source => 'clicks',
       event_time => 'ts', aggregates => NULL, columns => 'ts, u.country, url',
       "join" => 'JOIN users u ON u.user_id = clicks.user_id',
       output_mode => 'update', sink_function => 'take_clicks');
SELECT streamagg.process('by_country') AS rows_read;
SELECT * FROM received ORDER BY ts NULLS LAST, url;
SELECT c.ts, u.country, c.url FROM clicks c JOIN users u ON u.user_id = c.user_id
 ORDER BY 1 NULLS LAST, 3;
SELECT num_input_rows, filtered_rows, sink_rows_written FROM streamagg.progress
 WHERE name = 'by_country';
-- a retried batch reaches the function once
INSERT INTO clicks VALUES ('2024-05-01 12:00+00', 2, 'http://h', 1);
SELECT streamagg.fail_next_trigger('by_country', 'during_sink');
SELECT streamagg.process('by_country');
SELECT streamagg.process('by_country') AS rows_read;
SELECT batch_id, count(*) FROM received GROUP BY 1 ORDER BY 1;

-- 4. Without event time at all (event_time NULL), with a table sink and a
-- join: every joined row is appended.
CREATE TABLE all_clicks (user_id int, country text);
SELECT streamagg.create_query(name => 'all_clicks', source => 'clicks',
       event_time => NULL, aggregates => NULL, columns => 'clicks.user_id, u.country',
       "join" => 'LEFT JOIN users u ON u.user_id = clicks.user_id');
SELECT streamagg.process('all_clicks') AS rows_read;
SELECT user_id, country, count(*) FROM all_clicks GROUP BY 1, 2 ORDER BY 1;
SELECT event_time_min, watermark FROM streamagg.progress WHERE name = 'all_clicks';

-- 5. What a stateless query refuses, with nothing created.
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => NULL, columns => 'ts', output_mode => 'complete');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => NULL, columns => 'ts', watermark => '1 minute');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n', columns => 'ts', output_mode => 'update');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => NULL, output_mode => 'update');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => NULL, columns => 'ts', window_size => '1 hour');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => NULL, columns => 'ts', group_by => 'url');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => NULL, columns => 'count(*) AS n');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => NULL, columns => 'generate_series(1, 2) AS g');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => NULL, columns => '(SELECT 1) AS one');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => NULL, columns => 'row_number() OVER () AS r');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => NULL, columns => 'ts, ts');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => NULL,
       aggregates => 'count(*) AS n', output_mode => 'update');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => NULL, columns => 'ts', sink_merge => 'WHEN NOT MATCHED THEN DO NOTHING');
-- an existing sink must have the columns, with their types
CREATE TABLE wrong_sink (ts timestamptz, url int);
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => NULL, columns => 'ts, url', sink => 'wrong_sink');
SELECT count(*) FILTER (WHERE name = 'bad') AS bad FROM streamagg.queries;
SELECT to_regclass('bad') AS no_sink;

SELECT streamagg.drop_query(name, drop_sink => true) FROM streamagg.queries
 WHERE sink IS NOT NULL;
SELECT streamagg.drop_query(name) FROM streamagg.queries;
DROP FUNCTION take_clicks(bigint, click_row[]);
DROP TYPE click_row;
DROP TABLE clicks, users, received, wrong_sink;
