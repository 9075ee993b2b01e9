-- Retention: events consumed by every query of a source and older than
-- keep are deleted; an event some query has not consumed never is, and a
-- query created later starts from what is retained.  NULL keeps everything.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE TABLE visits (ts timestamptz, page text);
SELECT streamagg.create_query(name => 'visits_a', source => 'visits', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'complete');
SELECT streamagg.create_query(name => 'visits_b', source => 'visits', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'page', output_mode => 'complete');
SELECT streamagg.set_retention('visits', '1 hour');
SELECT source, keep FROM streamagg.retention;

-- old events (event time far in the past) and recent ones
INSERT INTO visits VALUES ('2024-01-01', '/old'), ('2024-01-01', '/old'), (now(), '/new');

-- only visits_a consumed them: nothing may go
SELECT streamagg.process('visits_a');
SELECT streamagg.apply_retention() AS deleted;
SELECT page, count(*) FROM visits GROUP BY page ORDER BY page;

-- both consumed them: the old ones go, the recent one stays
SELECT streamagg.process('visits_b');
SELECT streamagg.apply_retention() AS deleted;
SELECT page, count(*) FROM visits GROUP BY page ORDER BY page;
SELECT events_deleted FROM streamagg.retention;

-- old events that visits_b has not consumed yet stay
INSERT INTO visits VALUES ('2024-01-02', '/late');
SELECT streamagg.process('visits_a');
SELECT streamagg.apply_retention() AS deleted;
SELECT streamagg.process('visits_b');
SELECT streamagg.apply_retention() AS deleted;

-- the sinks counted everything, once
SELECT n FROM visits_a;
SELECT page, n FROM visits_b ORDER BY page;

-- a query created now starts from what is retained
SELECT streamagg.create_query(name => 'visits_c', source => 'visits', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'complete');
SELECT streamagg.process('visits_c');
SELECT n FROM visits_c;

-- only the owner of the source may set its retention
CREATE ROLE visits_reader;
SET ROLE visits_reader;
SELECT streamagg.set_retention('visits', '1 day');
RESET ROLE;
DROP ROLE visits_reader;

-- NULL keeps everything
SELECT streamagg.set_retention('visits', NULL);
SELECT count(*) AS retentions FROM streamagg.retention;
SELECT streamagg.set_retention('visits', '-1 hour');

SELECT streamagg.drop_query(name, drop_sink => true)
  FROM unnest('{visits_a,visits_b,visits_c}'::text[]) AS name;
DROP TABLE visits;
