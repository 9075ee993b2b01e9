-- Security (DESIGN.md 4.6): a query runs with the privileges of the role
-- that created it, never as superuser, even when a superuser or the worker
-- runs it; creating one needs SELECT on the source and the right to create
-- or write the sink; streamagg's catalog is not writable directly.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE ROLE sa_alice;
CREATE ROLE sa_bob;
CREATE SCHEMA sa_shop AUTHORIZATION sa_alice;
GRANT USAGE, CREATE ON SCHEMA sa_shop TO sa_bob;

SET ROLE sa_alice;
CREATE TABLE sa_shop.orders (ts timestamptz, amount int);
-- current_user as a group key shows who evaluates the query's expressions
SELECT streamagg.create_query(name => 'alice_q', source => 'sa_shop.orders', event_time => 'ts',
       aggregates => 'sum(amount) AS total', group_by => 'current_user::text AS who',
       output_mode => 'complete', sink => 'sa_shop.alice_totals');
INSERT INTO sa_shop.orders (ts, amount) VALUES ('2024-05-01', 5);
RESET ROLE;

-- a superuser runs alice's trigger: it still runs as alice
SELECT streamagg.process('alice_q');
SELECT who, total FROM sa_shop.alice_totals;
SELECT tableowner FROM pg_tables WHERE tablename = 'alice_totals';
SELECT name, owner FROM streamagg.queries;

-- bob may neither run nor drop nor pause alice's query
SET ROLE sa_bob;
SELECT streamagg.process('alice_q');
SELECT streamagg.drop_query('alice_q');
SELECT streamagg.pause('alice_q');
-- nor read her source
SELECT streamagg.create_query(name => 'bob_q', source => 'sa_shop.orders', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'complete', sink => 'sa_shop.bob_counts');
-- nor write streamagg's catalog behind the API's back
UPDATE streamagg.checkpoint SET last_batch_id = 42;
DELETE FROM streamagg.state_log;
INSERT INTO streamagg.query_def (name) VALUES ('forged');
RESET ROLE;

-- with SELECT on the source bob may stream it into his own sink
GRANT SELECT ON sa_shop.orders TO sa_bob;
SET ROLE sa_bob;
SELECT streamagg.create_query(name => 'bob_q', source => 'sa_shop.orders', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'current_user::text AS who',
       output_mode => 'complete', sink => 'sa_shop.bob_counts');
SELECT streamagg.process('bob_q');
SELECT who, n FROM sa_shop.bob_counts;
RESET ROLE;

-- each role sees the definitions, errors and progress of its own queries
-- only (and of roles it has the privileges of); pg_read_all_stats sees all
SELECT name, owner FROM streamagg.queries ORDER BY name;
SET ROLE sa_bob;
SELECT name, owner, status FROM streamagg.queries ORDER BY name;
SELECT name, batch_id, num_input_rows FROM streamagg.progress ORDER BY name;
SELECT count(*) AS definitions_bob_reads FROM streamagg.query_def;
SELECT count(*) AS checkpoints_bob_reads FROM streamagg.checkpoint;
-- waiting on alice's query is refused like the rest
SELECT streamagg.wait('alice_q', '1 second');
RESET ROLE;
SELECT streamagg.set_retention('sa_shop.orders', '1 day');
GRANT pg_read_all_stats TO sa_bob;
SET ROLE sa_bob;
SELECT name, owner FROM streamagg.queries ORDER BY name;
SELECT source, keep FROM streamagg.retention;
SELECT streamagg.wait('alice_q', '1 second');
-- seeing is not acting
SELECT streamagg.process('alice_q');
RESET ROLE;
REVOKE pg_read_all_stats FROM sa_bob;
SELECT streamagg.set_retention('sa_shop.orders', NULL);

-- revoking bob's SELECT stops his query, with the reason
REVOKE SELECT ON sa_shop.orders FROM sa_bob;
INSERT INTO sa_shop.orders (ts, amount) VALUES ('2024-05-01', 7);
\set VERBOSITY terse
SELECT streamagg.process('bob_q');
\set VERBOSITY default

-- bob may drop his query, the last one on alice's source; the source's
-- triggers stay, since only alice may take her table's exclusive lock to
-- drop them (they do nothing while no query reads it)
SELECT streamagg.drop_query('alice_q', drop_sink => true);
SET ROLE sa_bob;
SELECT streamagg.drop_query('bob_q', drop_sink => true);
RESET ROLE;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'sa_shop.orders'::regclass ORDER BY tgname;
DROP TABLE sa_shop.orders;
DROP SCHEMA sa_shop;
DROP ROLE sa_alice;
DROP ROLE sa_bob;
