-- Session windows (DESIGN.md 3.2): per group key, each event opens
-- [t, t + gap); sessions merge when the next starts at or before the end of
-- the current one (touching sessions merge); the merged end is the greatest.
-- Append emits a session once, when the watermark passes its end; complete
-- keeps the sink equal to the result, removing sessions merged away.  An
-- event is late when its own session [t, t + gap) ends at or before the
-- previous watermark (3.4); complete mode never drops it.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE TABLE clicks (ts timestamptz, user_id text, v int);
SELECT streamagg.create_query(name => 'sess_append', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS events, sum(v) AS total, min(ts) AS first_click',
       group_by => 'user_id', session_gap => '10 minutes', watermark => '5 minutes',
       output_mode => 'append');
SELECT streamagg.create_query(name => 'sess_complete', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS events, sum(v) AS total, min(ts) AS first_click',
       group_by => 'user_id', session_gap => '10 minutes', output_mode => 'complete');
\d sess_append

CREATE FUNCTION show(q text) RETURNS TABLE (user_id text, session text, events bigint, total bigint)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format('SELECT user_id, to_char(window_start, ''HH24:MI'') || ''-'' ||
    to_char(window_end, ''HH24:MI''), events, total FROM %I ORDER BY user_id, window_start', q);
END $$;

-- Batch 1: a at 10:00 and 10:05 (one session), b at 10:02, a again at 10:30.
-- The watermark becomes 10:25: a's first session and b's close.
INSERT INTO clicks VALUES ('2024-05-01 10:00+00', 'a', 1), ('2024-05-01 10:05+00', 'a', 2),
                          ('2024-05-01 10:02+00', 'b', 4), ('2024-05-01 10:30+00', 'a', 8);
SELECT streamagg.process('sess_append'), streamagg.process('sess_complete');
SELECT * FROM show('sess_append');
SELECT * FROM show('sess_complete');

-- Batch 2: a at 10:45 opens a session, then a at 10:38 bridges it with the
-- one at 10:30: the three merge into 10:30-10:55.  b at 10:00 is late for
-- append (its session would end at 10:10 <= 10:25); complete keeps it and
-- b's session grows to 10:00-10:12 (its 10:02-10:12 row goes).
INSERT INTO clicks VALUES ('2024-05-01 10:45+00', 'a', 16);
INSERT INTO clicks VALUES ('2024-05-01 10:38+00', 'a', 32), ('2024-05-01 10:00+00', 'b', 64);
SELECT streamagg.process('sess_append'), streamagg.process('sess_complete');
SELECT * FROM show('sess_append');
SELECT * FROM show('sess_complete');
SELECT name, batch_id, late_rows_dropped, watermark FROM streamagg.progress
 WHERE name LIKE 'sess%' ORDER BY name, batch_id;

-- A trigger rolled back leaves the stored sessions as they were.
INSERT INTO clicks VALUES ('2024-05-01 10:50+00', 'a', 128);
BEGIN;
SELECT streamagg.process('sess_append');
ROLLBACK;

-- Batch 3: c at 11:30, and d at 12:00 and 12:10 (touching sessions: they
-- merge into 12:00-12:20), move the watermark to 12:05: a's merged session
-- (now with the 10:50 click) and c's close; d's stays open.
INSERT INTO clicks VALUES ('2024-05-01 11:30+00', 'c', 256),
                          ('2024-05-01 12:00+00', 'd', 512), ('2024-05-01 12:10+00', 'd', 1024);
SELECT streamagg.process('sess_append'), streamagg.process('sess_complete');
SELECT * FROM show('sess_append');
SELECT * FROM show('sess_complete');

-- complete equals the sessions computed from scratch (gaps-and-islands)
WITH ordered AS (
  SELECT user_id, ts, v,
         CASE WHEN ts <= lag(ts) OVER w + interval '10 minutes' THEN 0 ELSE 1 END AS starts
    FROM clicks WINDOW w AS (PARTITION BY user_id ORDER BY ts)),
numbered AS (SELECT *, sum(starts) OVER (PARTITION BY user_id ORDER BY ts) AS n FROM ordered)
SELECT user_id, min(ts) AS window_start, max(ts) + interval '10 minutes' AS window_end,
       count(*) AS events, sum(v) AS total
  FROM numbered GROUP BY user_id, n
EXCEPT
SELECT user_id, window_start, window_end, events, total FROM sess_complete;

-- Many keys in one trigger (a Nexmark q11-like load: 2 000 bids of 300
-- bidders, 10-second sessions): every session equals the one plain SQL
-- finds (a new session starts when an event comes after the end of all
-- earlier ones of its key), in complete mode, and append mode emits
-- exactly those that the watermark closed.  With more than about 150 keys
-- a trigger used to keep sessions in memory it freed every 1 000 rows, and
-- crashed the server.
CREATE TABLE bids (ts timestamptz, bidder bigint, price numeric);
INSERT INTO bids
  SELECT timestamptz '2024-01-01 00:00+00' + g * interval '25 ms' + (g * 17 % 11) * interval '1 second',
         g * 104729 % 300, (g % 97) + 0.5
    FROM generate_series(1, 2000) g;
SELECT streamagg.create_query(name => 'bid_sessions', source => 'bids', event_time => 'ts',
       aggregates => 'count(*) AS bids, sum(price) AS spent', group_by => 'bidder',
       session_gap => '10 seconds', output_mode => 'complete');
SELECT streamagg.create_query(name => 'bid_sessions_closed', source => 'bids', event_time => 'ts',
       aggregates => 'count(*) AS bids, sum(price) AS spent', group_by => 'bidder',
       session_gap => '10 seconds', watermark => '4 seconds', output_mode => 'append');
SELECT streamagg.process('bid_sessions'), streamagg.process('bid_sessions_closed');
CREATE VIEW bid_sessions_expected AS
  WITH ordered AS (
    SELECT bidder, ts, price,
           max(ts + interval '10 seconds') OVER (PARTITION BY bidder ORDER BY ts
             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_end
      FROM bids),
  numbered AS (
    SELECT *, count(*) FILTER (WHERE earlier_end IS NULL OR ts > earlier_end)
                OVER (PARTITION BY bidder ORDER BY ts ROWS UNBOUNDED PRECEDING) AS session
      FROM ordered)
  SELECT min(ts) AS window_start, max(ts) + interval '10 seconds' AS window_end, bidder,
         count(*) AS bids, sum(price) AS spent
    FROM numbered GROUP BY bidder, session;
SELECT count(*) AS sessions, sum(bids) AS bids, sum(spent) AS spent FROM bid_sessions;
SELECT count(*) AS differences FROM (
  (SELECT * FROM bid_sessions EXCEPT SELECT * FROM bid_sessions_expected)
  UNION ALL
  (SELECT * FROM bid_sessions_expected EXCEPT SELECT * FROM bid_sessions)) d;
-- append: the sessions ending at or before the watermark (the last event
-- minus 4 seconds), and nothing else
SELECT watermark FROM streamagg.queries WHERE name = 'bid_sessions_closed';
SELECT count(*) AS closed_sessions FROM bid_sessions_closed;
SELECT count(*) AS differences FROM (
  (SELECT * FROM bid_sessions_closed
   EXCEPT SELECT * FROM bid_sessions_expected
           WHERE window_end <= (SELECT max(ts) - interval '4 seconds' FROM bids))
  UNION ALL
  (SELECT * FROM bid_sessions_expected
    WHERE window_end <= (SELECT max(ts) - interval '4 seconds' FROM bids)
   EXCEPT SELECT * FROM bid_sessions_closed)) d;
DROP VIEW bid_sessions_expected;
SELECT streamagg.drop_query(name, drop_sink => true)
  FROM unnest('{bid_sessions,bid_sessions_closed}'::text[]) AS name;
DROP TABLE bids;

-- session rejections: update mode, no key, an aggregate that cannot merge
CREATE FUNCTION concat_step(text, text) RETURNS text LANGUAGE sql IMMUTABLE
  AS $$ SELECT coalesce($1 || ',', '') || $2 $$;
CREATE AGGREGATE my_concat(text) (sfunc = concat_step, stype = text);
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'user_id', session_gap => '1 minute',
       output_mode => 'update');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n', session_gap => '1 minute', output_mode => 'complete');
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'my_concat(user_id) AS users', group_by => 'user_id',
       session_gap => '1 minute', output_mode => 'complete');

SELECT streamagg.drop_query(name, drop_sink => true)
  FROM unnest('{sess_append,sess_complete}'::text[]) AS name;
DROP FUNCTION show(text);
DROP AGGREGATE my_concat(text);
DROP FUNCTION concat_step(text, text);
DROP TABLE clicks;
