-- Bounded batches (docs/operations.md, "Catching up in bounded batches"):
-- with max_batch_rows a trigger takes whole producer transactions, in
-- transaction-id order, while their rows total at most the bound, and
-- always at least one; the others wait for the next trigger.  A
-- transaction larger than the bound forms a batch alone.  The result does
-- not depend on where batches end: the sink after the backlog is drained is
-- the same plain GROUP BY as without a bound.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

-- tx names the producer transaction of each row
CREATE TABLE orders (ts timestamptz, tx text, amount int);
-- two rows from before create_query: they carry no transaction id and form
-- one group of their own, which the first batch always takes
INSERT INTO orders VALUES ('2024-05-01 10:00:00+00', 'old', 1),
                          ('2024-05-01 10:00:01+00', 'old', 1);
SELECT streamagg.create_query(name => 'per_tx', source => 'orders', event_time => 'ts',
       aggregates => 'count(*) AS n, sum(amount) AS total', group_by => 'tx',
       window_size => '1 hour', output_mode => 'update', max_batch_rows => 4);
SELECT max_batch_rows FROM streamagg.queries WHERE name = 'per_tx';

-- five producer transactions of 3, 2, 5, 1 and 2 rows
INSERT INTO orders SELECT '2024-05-01 10:01:00+00', 't1', 10 FROM generate_series(1, 3);
INSERT INTO orders SELECT '2024-05-01 10:02:00+00', 't2', 100 FROM generate_series(1, 2);
INSERT INTO orders SELECT '2024-05-01 10:03:00+00', 't3', 1000 FROM generate_series(1, 5);
INSERT INTO orders SELECT '2024-05-01 10:04:00+00', 't4', 10000 FROM generate_series(1, 1);
INSERT INTO orders SELECT '2024-05-01 10:05:00+00', 't5', 100000 FROM generate_series(1, 2);

-- batch 0: the old rows (2); adding t1 would make 5 > 4
SELECT streamagg.process('per_tx');
SELECT tx, n, total FROM per_tx ORDER BY tx;
-- batch 1: t1 (3); t1 + t2 would make 5
SELECT streamagg.process('per_tx');
SELECT tx, n, total FROM per_tx ORDER BY tx;
-- batch 2: t2 (2); t2 + t3 would make 7
SELECT streamagg.process('per_tx');
-- batch 3: t3 alone, larger than the bound: a transaction is never split
SELECT streamagg.process('per_tx');
SELECT tx, n, total FROM per_tx ORDER BY tx;
-- batch 4: t4 and t5 together (3 rows)
SELECT streamagg.process('per_tx');
-- nothing is left
SELECT streamagg.process('per_tx');

-- each batch's num_input_rows, and which transactions each one took (the
-- sink's rows are upserted: their batch is the one that last changed them)
SELECT batch_id, num_input_rows, event_time_min, event_time_max
  FROM streamagg.progress WHERE name = 'per_tx' ORDER BY batch_id;
-- the sink equals the plain computation
SELECT tx, n, total FROM per_tx
EXCEPT SELECT tx, count(*), sum(amount) FROM orders GROUP BY tx;
SELECT count(*) AS sink_rows, sum(n) AS rows_counted FROM per_tx;

-- The setting streamagg.max_batch_rows bounds queries that have no bound of
-- their own (workers use the server's value, process() the session's).
CREATE TABLE clicks (ts timestamptz, page text);
SELECT streamagg.create_query(name => 'clicks_count', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'complete');
INSERT INTO clicks SELECT '2024-05-01 10:00:00+00', 'a' FROM generate_series(1, 3);
INSERT INTO clicks SELECT '2024-05-01 10:00:00+00', 'b' FROM generate_series(1, 3);
INSERT INTO clicks SELECT '2024-05-01 10:00:00+00', 'c' FROM generate_series(1, 3);
SHOW streamagg.max_batch_rows;
SET streamagg.max_batch_rows = 6;
-- process() called repeatedly drains the backlog: 6, then 3, then nothing
SELECT streamagg.process('clicks_count');
SELECT n FROM clicks_count;
SELECT streamagg.process('clicks_count');
SELECT n FROM clicks_count;
SELECT streamagg.process('clicks_count');
-- a query's own bound wins over the setting: per_tx keeps 4, so it takes t6
-- (3 rows) and leaves t7 (3 more) for later
INSERT INTO orders SELECT '2024-05-01 10:06:00+00', 't6', 1 FROM generate_series(1, 3);
INSERT INTO orders SELECT '2024-05-01 10:06:00+00', 't7', 1 FROM generate_series(1, 3);
SELECT streamagg.process('per_tx');
RESET streamagg.max_batch_rows;
-- without a bound, one trigger takes everything committed
INSERT INTO clicks SELECT '2024-05-01 10:00:00+00', 'd' FROM generate_series(1, 3);
INSERT INTO clicks SELECT '2024-05-01 10:00:00+00', 'e' FROM generate_series(1, 3);
SELECT streamagg.process('clicks_count');
SELECT n FROM clicks_count;

-- a bound must be positive
SELECT streamagg.create_query(name => 'bad', source => 'clicks', event_time => 'ts',
       aggregates => 'count(*) AS n', output_mode => 'complete', max_batch_rows => 0);
SET streamagg.max_batch_rows = -1;

SELECT streamagg.drop_query('per_tx', true);
SELECT streamagg.drop_query('clicks_count', true);
DROP TABLE orders, clicks;
