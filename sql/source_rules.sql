-- Every row of a source is counted exactly once, or the statement that would
-- make it uncountable fails with a clear error and a hint (README, "Exactly
-- once"; src/source.c).  Each part shows the refusal and then that the sink
-- still equals plain SQL over the source's rows.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE orders (id int PRIMARY KEY, ts timestamptz, amount int);
SELECT streamagg.create_query(name => 'order_totals', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(amount) AS total', output_mode => 'complete');
INSERT INTO orders (id, ts, amount) VALUES (1, '2024-01-01', 10), (2, '2024-01-01', 20);
SELECT streamagg.process('order_totals');
CREATE VIEW order_check AS
  SELECT (SELECT n || ' rows, ' || total FROM order_totals) AS sink,
         (SELECT count(*) || ' rows, ' || sum(amount) FROM orders) AS source;

-- A row must carry the id of the transaction inserting it.  Copies of rows
-- (with their old ids), explicit values, NULL, and COPY of a table's whole
-- rows are refused where the row reaches the source's index.
INSERT INTO orders (id, ts, amount, streamagg_xid) VALUES (3, '2024-01-01', 30, NULL);
\set VERBOSITY terse
INSERT INTO orders SELECT id + 100, ts, amount, streamagg_xid FROM orders;
INSERT INTO orders (id, ts, amount, streamagg_xid)
  VALUES (3, '2024-01-01', 30, (pg_current_xact_id()::text::bigint + 1000)::text::xid8);
COPY orders (id, ts, amount, streamagg_xid) FROM STDIN;
4	2024-01-01 00:00:00+00	40	5
\.
\set VERBOSITY default
-- the same rows, with the column left to its default, are counted
INSERT INTO orders (id, ts, amount) SELECT id + 100, ts, amount FROM orders;
COPY orders (id, ts, amount) FROM STDIN;
4	2024-01-01 00:00:00+00	40
\.
SELECT streamagg.process('order_totals');
SELECT * FROM order_check;

-- A source is append-only while queries read it: an UPDATE or DELETE (or
-- the update of an upsert) would change events already counted, or still
-- to be counted, and is refused; so is TRUNCATE.
UPDATE orders SET amount = 0 WHERE id = 1;
DELETE FROM orders WHERE id = 2;
TRUNCATE orders;
INSERT INTO orders (id, ts, amount) VALUES (1, '2024-01-01', 99)
  ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount;
-- an upsert that inserts, or does nothing, is fine
INSERT INTO orders (id, ts, amount) VALUES (1, '2024-01-01', 99), (5, '2024-01-01', 50)
  ON CONFLICT (id) DO NOTHING;
SELECT streamagg.process('order_totals');
SELECT * FROM order_check;

-- Retention deletes consumed events, as before.
SELECT streamagg.set_retention('orders', '0 seconds');
SELECT streamagg.apply_retention() AS deleted;
SELECT count(*) AS left_in_source FROM orders;
SELECT streamagg.set_retention('orders', NULL);

-- streamagg.allow_source_changes lets a repair through; the results do not
-- follow it (here: the sink keeps counting the deleted events)
BEGIN;
SET LOCAL streamagg.allow_source_changes = on;
INSERT INTO orders (id, ts, amount) VALUES (6, '2024-01-01', 60);
UPDATE orders SET amount = 61 WHERE id = 6;
COMMIT;
SELECT streamagg.process('order_totals');
SELECT n, total FROM order_totals;

-- Once no query reads the source, it is an ordinary table again.
DROP VIEW order_check;
SELECT streamagg.drop_query('order_totals', drop_sink => true);
UPDATE orders SET amount = 62 WHERE id = 6;
DELETE FROM orders;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND tgname LIKE 'streamagg%';
DROP TABLE orders;

-- Partitioned sources.  Rows inserted through the parent or straight into a
-- partition are counted; a partition made LIKE the source without its
-- default would give its rows NULL, which is refused; a partition attached
-- with rows is refused, unless every row was consumed already (a partition
-- detached from this source and attached again is not counted twice).
CREATE TABLE clicks (ts timestamptz, page text) PARTITION BY RANGE (ts);
CREATE TABLE clicks_jan PARTITION OF clicks FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
SELECT streamagg.create_query(name => 'clicks_per_page', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n', group_by => 'page', output_mode => 'complete');
CREATE TABLE clicks_feb PARTITION OF clicks FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
INSERT INTO clicks (ts, page) VALUES ('2024-01-05', '/a'), ('2024-02-05', '/a');
INSERT INTO clicks_feb (ts, page) VALUES ('2024-02-06', '/b');
SELECT streamagg.process('clicks_per_page');
CREATE VIEW clicks_check AS
  SELECT (SELECT string_agg(page || ':' || n, ' ' ORDER BY page) FROM clicks_per_page) AS sink,
         (SELECT string_agg(page || ':' || n, ' ' ORDER BY page)
            FROM (SELECT page, count(*) AS n FROM clicks GROUP BY page) c) AS source;
SELECT * FROM clicks_check;
-- the triggers reach the partitions, and fire in replica mode too
SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relname LIKE 'clicks%' AND t.tgname LIKE 'streamagg%' ORDER BY 1, 2;
UPDATE clicks_feb SET page = '/c';
CREATE TABLE clicks_mar (LIKE clicks);
ALTER TABLE clicks ATTACH PARTITION clicks_mar FOR VALUES FROM ('2024-03-01') TO ('2024-04-01');
INSERT INTO clicks_mar (ts, page) VALUES ('2024-03-01', '/m');
ALTER TABLE clicks_mar ALTER COLUMN streamagg_xid SET DEFAULT pg_current_xact_id();
INSERT INTO clicks_mar (ts, page) VALUES ('2024-03-01', '/m');
CREATE TABLE clicks_apr (LIKE clicks INCLUDING DEFAULTS);
INSERT INTO clicks_apr (ts, page) VALUES ('2024-04-01', '/old');
ALTER TABLE clicks ATTACH PARTITION clicks_apr FOR VALUES FROM ('2024-04-01') TO ('2024-05-01');
SELECT streamagg.process('clicks_per_page');
SELECT * FROM clicks_check;
-- detached and attached again: its rows were counted while attached
ALTER TABLE clicks DETACH PARTITION clicks_jan;
ALTER TABLE clicks ATTACH PARTITION clicks_jan FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
SELECT streamagg.process('clicks_per_page');
SELECT * FROM clicks_check;
DROP VIEW clicks_check;
SELECT streamagg.drop_query('clicks_per_page', drop_sink => true);
DROP TABLE clicks, clicks_apr;
