-- A source or sink dropped under a query: its triggers fail with a clear
-- message (recorded as the query's error by the worker) instead of
-- anything worse, and drop_query still removes the query.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
CREATE TABLE orders (ts timestamptz, amount int);
SELECT streamagg.create_query(name => 'order_total', source => 'orders', event_time => 'ts',
       aggregates => 'sum(amount) AS total', output_mode => 'complete');
INSERT INTO orders VALUES ('2024-05-01', 1);
SELECT streamagg.process('order_total');

DROP TABLE order_total;
INSERT INTO orders VALUES ('2024-05-01', 2);
SELECT streamagg.process('order_total');

DROP TABLE orders;
SELECT streamagg.process('order_total');

SELECT streamagg.drop_query('order_total', drop_sink => true);
SELECT count(*) AS queries FROM streamagg.queries;
