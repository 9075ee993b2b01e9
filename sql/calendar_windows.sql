-- Calendar windows (docs/semantics.md §13, docs/event-time.md): with
-- time_zone, windows follow the local calendar: a day runs from local
-- midnight to local midnight (23 or 25 hours on DST days), months and
-- years have their own lengths, and the sink holds the exact local bounds
-- as instants.  Each result is compared with date_trunc(..., zone) in
-- plain SQL.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

-- One event every hour, from 2024-03-29 to 2024-04-02 and from 2024-10-25
-- to 2024-10-29 (UTC): around both DST changes of Europe/Berlin
-- (2024-03-31: 23-hour day; 2024-10-27: 25-hour day).
CREATE TABLE readings (ts timestamptz, v int);
INSERT INTO readings
SELECT ts, 1 FROM generate_series('2024-03-29 00:00+00', '2024-04-02 00:00+00', interval '1 hour') ts
UNION ALL
SELECT ts, 1 FROM generate_series('2024-10-25 00:00+00', '2024-10-29 00:00+00', interval '1 hour') ts;

SELECT streamagg.create_query(name => 'berlin_days', source => 'readings',
       event_time => 'ts', aggregates => 'count(*) AS n, sum(v) AS s',
       window_size => '1 day', time_zone => 'Europe/Berlin',
       output_mode => 'complete');
SELECT streamagg.process('berlin_days');
-- Local days, shown in Berlin time: 2024-03-31 has 23 hourly events,
-- 2024-10-27 has 25.
SET timezone = 'Europe/Berlin';
SELECT window_start, window_end, window_end - window_start AS length, n
  FROM berlin_days ORDER BY window_start;
-- the same by plain SQL: local days by date_trunc in the zone
SELECT date_trunc('day', ts, 'Europe/Berlin') AS window_start,
       count(*) AS n
  FROM readings GROUP BY 1 ORDER BY 1;
-- equal, row for row
SELECT count(*) AS differences FROM (
  (SELECT window_start, n FROM berlin_days
   EXCEPT SELECT date_trunc('day', ts, 'Europe/Berlin'), count(*) FROM readings GROUP BY 1)
  UNION ALL
  (SELECT date_trunc('day', ts, 'Europe/Berlin'), count(*) FROM readings GROUP BY 1
   EXCEPT SELECT window_start, n FROM berlin_days)) d;
-- every bound is local midnight, and consecutive windows share bounds
SELECT count(*) FILTER (WHERE window_start::time <> '00:00' OR window_end::time <> '00:00') AS not_midnight
  FROM berlin_days;
SET timezone = 'UTC';

-- A business day from 06:00 (window_offset '6 hours'), in New York.
SELECT streamagg.create_query(name => 'ny_business_days', source => 'readings',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 day', window_offset => '6 hours',
       time_zone => 'America/New_York', output_mode => 'complete');
SELECT streamagg.process('ny_business_days');
-- plain SQL: the local day of ts - 6 h (local), plus 6 hours local
SELECT count(*) AS differences FROM (
  (SELECT window_start, n FROM ny_business_days
   EXCEPT SELECT (date_trunc('day', (ts AT TIME ZONE 'America/New_York') - interval '6 hours')
                  + interval '6 hours') AT TIME ZONE 'America/New_York', count(*)
            FROM readings GROUP BY 1)
  UNION ALL
  (SELECT (date_trunc('day', (ts AT TIME ZONE 'America/New_York') - interval '6 hours')
           + interval '6 hours') AT TIME ZONE 'America/New_York', count(*)
     FROM readings GROUP BY 1
   EXCEPT SELECT window_start, n FROM ny_business_days)) d;
SELECT count(*) AS windows, sum(n) AS events FROM ny_business_days;

-- Weeks ('7 days') sliding by a day, in Berlin: each local day's events
-- count in the 7 weeks that hold it.  Compared with plain SQL over local
-- days.
SELECT streamagg.create_query(name => 'berlin_weeks', source => 'readings',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '7 days', window_slide => '1 day',
       time_zone => 'Europe/Berlin', output_mode => 'complete');
SELECT streamagg.process('berlin_weeks');
SELECT count(*) AS differences FROM (
  (SELECT window_start, window_end, n FROM berlin_weeks
   EXCEPT
   SELECT w AT TIME ZONE 'Europe/Berlin', (w + interval '7 days') AT TIME ZONE 'Europe/Berlin', count(*)
     FROM readings,
          LATERAL generate_series(date_trunc('day', ts AT TIME ZONE 'Europe/Berlin') - interval '6 days',
                                  date_trunc('day', ts AT TIME ZONE 'Europe/Berlin'), interval '1 day') w
    GROUP BY 1, 2)
  UNION ALL
  (SELECT w AT TIME ZONE 'Europe/Berlin', (w + interval '7 days') AT TIME ZONE 'Europe/Berlin', count(*)
     FROM readings,
          LATERAL generate_series(date_trunc('day', ts AT TIME ZONE 'Europe/Berlin') - interval '6 days',
                                  date_trunc('day', ts AT TIME ZONE 'Europe/Berlin'), interval '1 day') w
    GROUP BY 1, 2
   EXCEPT SELECT window_start, window_end, n FROM berlin_weeks)) d;
-- the week holding both DST days' neighbours: [2024-03-26, 2024-04-02) local
SET timezone = 'Europe/Berlin';
SELECT window_start, window_end, window_end - window_start AS length, n
  FROM berlin_weeks WHERE window_start = '2024-03-26 00:00';
SET timezone = 'UTC';

-- Months in two zones, one event every 6 hours through 2024: the month of
-- an event depends on the zone (2024-01-31 23:00 UTC is February in Tokyo).
CREATE TABLE orders (ts timestamptz, amount int);
INSERT INTO orders
SELECT ts, 1 FROM generate_series('2024-01-01 05:00+00', '2024-12-31 23:00+00', interval '6 hours') ts;
SELECT streamagg.create_query(name => 'months_' || zone_tag, source => 'orders',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 month', time_zone => zone, output_mode => 'update')
  FROM (VALUES ('tokyo', 'Asia/Tokyo'), ('la', 'America/Los_Angeles')) z(zone_tag, zone);
SELECT streamagg.process('months_tokyo'), streamagg.process('months_la');
SELECT to_char(window_start AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI') AS tokyo_start,
       to_char(window_end AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI') AS tokyo_end, n
  FROM months_tokyo ORDER BY window_start;
SELECT (SELECT count(*) FROM (
          (SELECT window_start, n FROM months_tokyo
           EXCEPT SELECT date_trunc('month', ts, 'Asia/Tokyo'), count(*) FROM orders GROUP BY 1)
          UNION ALL
          (SELECT date_trunc('month', ts, 'Asia/Tokyo'), count(*) FROM orders GROUP BY 1
           EXCEPT SELECT window_start, n FROM months_tokyo)) a) AS tokyo_differences,
       (SELECT count(*) FROM (
          (SELECT window_start, n FROM months_la
           EXCEPT SELECT date_trunc('month', ts, 'America/Los_Angeles'), count(*) FROM orders GROUP BY 1)
          UNION ALL
          (SELECT date_trunc('month', ts, 'America/Los_Angeles'), count(*) FROM orders GROUP BY 1
           EXCEPT SELECT window_start, n FROM months_la)) b) AS la_differences;
-- the first months differ between the zones
SELECT (SELECT n FROM months_tokyo ORDER BY window_start LIMIT 1) AS tokyo_january,
       (SELECT n FROM months_la ORDER BY window_start LIMIT 1) AS la_first_month,
       (SELECT window_start FROM months_la ORDER BY window_start LIMIT 1) AS la_first_start;
-- every window ends where the next month begins, locally
SELECT count(*) AS wrong_ends FROM months_la
 WHERE window_end <> (date_trunc('month', window_start, 'America/Los_Angeles') AT TIME ZONE 'America/Los_Angeles'
                      + interval '1 month') AT TIME ZONE 'America/Los_Angeles';

-- Quarters from February (window_offset '1 month') and years, in UTC.
SELECT streamagg.create_query(name => 'quarters', source => 'orders',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '3 months', window_offset => '1 month',
       time_zone => 'UTC', output_mode => 'complete');
SELECT streamagg.create_query(name => 'years', source => 'orders',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 year', time_zone => 'UTC', output_mode => 'complete');
SELECT streamagg.process('quarters'), streamagg.process('years');
SELECT window_start, window_end, n FROM quarters ORDER BY window_start;
SELECT date_trunc('quarter', ts - interval '1 month') + interval '1 month' AS window_start, count(*) AS n
  FROM orders GROUP BY 1 ORDER BY 1;
TABLE years;

-- Append mode: a local day is emitted when the watermark passes its local
-- end.  Berlin's 2024-10-27 ends at 2024-10-27 23:00 UTC.
CREATE TABLE taps (ts timestamptz);
SELECT streamagg.create_query(name => 'daily_taps', source => 'taps',
       event_time => 'ts', aggregates => 'count(*) AS n',
       window_size => '1 day', time_zone => 'Europe/Berlin', watermark => '0 seconds');
INSERT INTO taps VALUES ('2024-10-26 22:30+00'), ('2024-10-27 22:59+00');
SELECT streamagg.process('daily_taps');
SELECT count(*) AS emitted FROM daily_taps;   -- W = 22:59 UTC: still open
INSERT INTO taps VALUES ('2024-10-27 23:00+00');
SELECT streamagg.process('daily_taps');
TABLE daily_taps;

-- A timestamp (without time zone) column takes months without time_zone:
-- its values are local times already.
CREATE TABLE local_sales (at timestamp, amount int);
INSERT INTO local_sales VALUES ('2024-01-31 23:59', 1), ('2024-02-01 00:00', 2),
                               ('2024-02-29 12:00', 3), ('2024-03-01 00:00', 4);
SELECT streamagg.create_query(name => 'local_months', source => 'local_sales',
       event_time => 'at', aggregates => 'sum(amount) AS amount',
       window_size => '1 month', output_mode => 'complete');
SELECT streamagg.process('local_months');
TABLE local_months ORDER BY window_start;
SELECT date_trunc('month', at) AS window_start, sum(amount) FROM local_sales GROUP BY 1 ORDER BY 1;

SELECT streamagg.drop_query(name, drop_sink => true)
  FROM unnest(ARRAY['berlin_days', 'ny_business_days', 'berlin_weeks',
                    'months_tokyo', 'months_la', 'quarters', 'years',
                    'daily_taps', 'local_months']) AS name;

-- Rejections: each with a clear message, nothing created.
-- months on a timestamptz column without time_zone
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '1 month', output_mode => 'update');
-- time_zone with session windows
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'amount', session_gap => '1 hour',
       watermark => '1 hour', time_zone => 'Europe/Berlin');
-- time_zone on a timestamp (without time zone) column
SELECT streamagg.create_query(name => 'bad', source => 'local_sales', event_time => 'at',
       aggregates => 'count(*) AS n', window_size => '1 day', time_zone => 'Europe/Berlin',
       output_mode => 'update');
-- sliding month windows
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '3 months', window_slide => '1 month',
       time_zone => 'UTC', output_mode => 'update');
-- an unknown zone
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '1 day', time_zone => 'Mars/Olympus_Mons',
       output_mode => 'update');
-- a watermark delay in months
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '1 month', time_zone => 'UTC',
       watermark => '1 month');
-- with time_zone, sizes that are not whole days
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '12 hours', time_zone => 'UTC',
       output_mode => 'update');
-- a month and some days; an offset of a whole size
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '1 month 2 days', time_zone => 'UTC',
       output_mode => 'update');
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '1 month', window_offset => '1 month',
       time_zone => 'UTC', output_mode => 'update');
-- an offset in months on windows of days
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', window_size => '1 day', window_offset => '1 month',
       time_zone => 'UTC', output_mode => 'update');
-- time_zone without windows
SELECT streamagg.create_query(name => 'bad', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'ts', time_zone => 'UTC',
       output_mode => 'update');
SELECT count(*) AS queries, to_regclass('bad') AS sink FROM streamagg.queries;

DROP TABLE readings, orders, taps, local_sales;
