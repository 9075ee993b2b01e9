-- Deduplication (docs/semantics.md §10, docs/pipelines.md): a row whose
-- dedup key was already seen is dropped.  Of the rows of one batch with the
-- same new key, the one with the least event time is kept.  With a
-- watermark of delay D, a row with t <= W(N-1) is late, and a kept key is
-- forgotten once W(N) >= t + D; without a watermark keys are kept forever.
-- Keys compare like group keys: NULL equals NULL.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamagg;
RESET client_min_messages;
SET timezone = 'UTC';

CREATE TABLE payments (ts timestamptz, payment_id int, account text, amount numeric);

-- 1. A stateless query with dedup and a 10-minute watermark.
SELECT streamagg.create_query(name => 'unique_payments', source => 'payments',
       event_time => 'ts', aggregates => NULL,
       columns => 'ts, payment_id, account, amount', dedup => 'payment_id',
       watermark => '10 minutes');

-- Batch 0: payment 1 arrives twice (a client retried; the earlier copy at
-- 10:00 is kept), payments 2 and 3 once, a payment without event time
-- (dropped: with a watermark every row needs one), and payment 7 with a
-- NULL key twice (NULL equals NULL: one is kept).
INSERT INTO payments VALUES
  ('2024-05-01 10:05+00', 1, 'acme', 10.00), ('2024-05-01 10:00+00', 1, 'acme', 10.50),
  ('2024-05-01 10:10+00', 2, 'bolt', 20.00), ('2024-05-01 10:20+00', 3, 'core', 30.00),
  (NULL, 4, 'acme', 1.00),
  ('2024-05-01 10:01+00', NULL, 'null-a', 1.00), ('2024-05-01 10:02+00', NULL, 'null-b', 2.00);
SELECT streamagg.process('unique_payments') AS rows_read;
TABLE unique_payments ORDER BY ts;
-- the earliest row of each key, in plain SQL
SELECT DISTINCT ON (payment_id) ts, payment_id, account, amount
  FROM payments WHERE ts IS NOT NULL ORDER BY payment_id, ts;
-- W(0) = 10:20 - 10 min = 10:10: payment 1 (kept at 10:00) is forgotten
-- (10:00 + 10 min <= 10:10); the NULL key (10:01) stays until W >= 10:11,
-- payment 2 (10:10) until W >= 10:20, payment 3 until W >= 10:30: 3 keys
SELECT batch_id, num_input_rows, duplicate_rows_dropped, late_rows_dropped,
       null_event_time_rows, sink_rows_written, watermark, state_rows_total
  FROM streamagg.progress WHERE name = 'unique_payments' ORDER BY batch_id;

-- Batch 1: payment 1 again at 10:40 (its key was forgotten: accepted),
-- payment 3 again at 10:41 (still known: a duplicate, and it does not move
-- the watermark), payment 5 at 10:05 (late: 10:05 <= W(0)), payment 2 at
-- 10:09 (late and a duplicate: counted as late).
INSERT INTO payments VALUES
  ('2024-05-01 10:40+00', 1, 'acme', 100.00), ('2024-05-01 10:41+00', 3, 'core', 300.00),
  ('2024-05-01 10:05+00', 5, 'dyn', 5.00), ('2024-05-01 10:09+00', 2, 'bolt', 2.00);
SELECT streamagg.process('unique_payments') AS rows_read;
TABLE unique_payments ORDER BY ts;
SELECT batch_id, num_input_rows, duplicate_rows_dropped, late_rows_dropped,
       sink_rows_written, watermark, state_rows_total
  FROM streamagg.progress WHERE name = 'unique_payments' ORDER BY batch_id;

-- The same by hand in plain SQL over the same rows: batch 1's rows are
-- those of the last producer transaction; of them, the earliest per key
-- that is not late (t > W(0) = 10:10) and whose key batch 0 did not keep
-- with t + 10 min > W(0).
SELECT DISTINCT ON (payment_id) ts, payment_id, account, amount
  FROM payments p
 WHERE streamagg_xid = (SELECT max(streamagg_xid) FROM payments)
   AND ts > '2024-05-01 10:10+00'
   AND payment_id NOT IN (SELECT payment_id FROM unique_payments
                           WHERE ts < '2024-05-01 10:40+00' AND payment_id IS NOT NULL
                             AND ts + interval '10 minutes' > '2024-05-01 10:10+00')
 ORDER BY payment_id, ts;

-- 2. An aggregating query with dedup: duplicates are not counted.
SELECT streamagg.create_query(name => 'revenue', source => 'payments',
       event_time => 'ts', aggregates => 'count(*) AS payments, sum(amount) AS revenue',
       group_by => 'account', dedup => 'payment_id', window_size => '1 hour',
       watermark => '10 minutes', output_mode => 'update');
SELECT streamagg.process('revenue') AS rows_read;
TABLE revenue ORDER BY account;
-- its first batch reads every payment at once: of each key the earliest
-- row counts (nothing is late in a first batch); in plain SQL
SELECT account, count(*) AS payments, sum(amount) AS revenue
  FROM (SELECT DISTINCT ON (payment_id) * FROM payments WHERE ts IS NOT NULL
         ORDER BY payment_id, ts) kept
 GROUP BY account ORDER BY account;
SELECT num_input_rows, duplicate_rows_dropped, late_rows_dropped, null_event_time_rows
  FROM streamagg.progress WHERE name = 'revenue';

-- 3. Without a watermark keys are kept forever (and a stateless query
-- without watermark appends rows without event time).
SELECT streamagg.create_query(name => 'first_seen', source => 'payments',
       event_time => 'ts', aggregates => NULL, columns => 'payment_id, account',
       dedup => 'account');
SELECT streamagg.process('first_seen') AS rows_read;
INSERT INTO payments VALUES ('2030-01-01 00:00+00', 8, 'acme', 1.00),
                            ('2030-01-01 00:00+00', 9, 'new', 1.00);
SELECT streamagg.process('first_seen') AS rows_read;
SELECT account FROM first_seen ORDER BY account;
SELECT batch_id, num_input_rows, duplicate_rows_dropped, state_rows_total
  FROM streamagg.progress WHERE name = 'first_seen' ORDER BY batch_id;

-- 4. Dedup keys are expressions over the source's and joined columns,
-- applied after the filter.
CREATE TABLE accounts (account text PRIMARY KEY, owner text);
INSERT INTO accounts VALUES ('acme', 'ann'), ('bolt', 'bob'), ('core', 'ann'), ('dyn', 'dan');
SELECT streamagg.create_query(name => 'one_per_owner', source => 'payments',
       event_time => 'ts', aggregates => NULL, columns => 'ts, a.owner, amount',
       "join" => 'JOIN accounts a ON a.account = payments.account',
       filter => 'amount < 100', dedup => 'a.owner, date_trunc(''day'', ts)');
SELECT streamagg.process('one_per_owner') AS rows_read;
TABLE one_per_owner ORDER BY ts;
SELECT DISTINCT ON (a.owner, date_trunc('day', ts)) ts, a.owner, amount
  FROM payments p JOIN accounts a ON a.account = p.account WHERE amount < 100
 ORDER BY a.owner, date_trunc('day', ts), ts;

-- 5. Rejections, with nothing created.
CREATE TABLE odd (ts timestamptz, b bit varying, p point);
SELECT streamagg.create_query(name => 'bad', source => 'odd', event_time => 'ts',
       aggregates => NULL, columns => 'ts', dedup => 'b');
SELECT streamagg.create_query(name => 'bad', source => 'odd', event_time => 'ts',
       aggregates => NULL, columns => 'ts', dedup => 'p');
SELECT streamagg.create_query(name => 'bad', source => 'odd', event_time => NULL,
       aggregates => NULL, columns => 'ts', dedup => 'ts');
SELECT streamagg.create_query(name => 'bad', source => 'odd', event_time => 'ts',
       aggregates => NULL, columns => 'ts', dedup => 'count(*)');
SELECT streamagg.create_query(name => 'bad', source => 'odd', event_time => 'ts',
       aggregates => NULL, columns => 'ts', dedup => 'ts, (SELECT 1)');
SELECT count(*) FILTER (WHERE name = 'bad') AS bad FROM streamagg.queries;

-- 6. Filter, join and dedup together, with a fault at every phase of a
-- trigger: the retry folds the same batch once, and the result equals
-- the plain SQL over the same rows.
CREATE TABLE clicks (ts timestamptz, click_id int, user_id int, ms int);
CREATE TABLE users (user_id int PRIMARY KEY, plan text);
INSERT INTO users VALUES (1, 'free'), (2, 'pro'), (3, 'pro');
SELECT streamagg.create_query(name => 'pro_clicks', source => 'clicks',
       event_time => 'ts', aggregates => 'count(*) AS clicks, sum(ms) AS ms',
       group_by => 'u.plan', "join" => 'JOIN users u ON u.user_id = clicks.user_id',
       filter => 'ms > 0', dedup => 'click_id', window_size => '1 hour',
       watermark => '1 hour', output_mode => 'update');
INSERT INTO clicks VALUES ('2024-05-01 10:00+00', 1, 1, 10), ('2024-05-01 10:01+00', 1, 1, 10),
  ('2024-05-01 10:02+00', 2, 2, 20), ('2024-05-01 10:03+00', 3, 4, 30),
  ('2024-05-01 10:04+00', 4, 3, 0), ('2024-05-01 10:05+00', 5, 3, 50);
SELECT streamagg.fail_next_trigger('pro_clicks', 'after_read');
SELECT streamagg.process('pro_clicks');
SELECT streamagg.fail_next_trigger('pro_clicks', 'after_state');
SELECT streamagg.process('pro_clicks');
SELECT streamagg.fail_next_trigger('pro_clicks', 'during_sink');
SELECT streamagg.process('pro_clicks');
SELECT streamagg.fail_next_trigger('pro_clicks', 'before_commit');
SELECT streamagg.process('pro_clicks');
SELECT streamagg.process('pro_clicks') AS rows_read;
-- batch 1 repeats click 5 (a duplicate) and adds click 6
INSERT INTO clicks VALUES ('2024-05-01 10:06+00', 5, 3, 50), ('2024-05-01 10:07+00', 6, 2, 60);
SELECT streamagg.fail_next_trigger('pro_clicks', 'during_sink');
SELECT streamagg.process('pro_clicks');
SELECT streamagg.process('pro_clicks') AS rows_read;
TABLE pro_clicks ORDER BY plan;
SELECT date_trunc('hour', ts) AS window_start, u.plan, count(*) AS clicks, sum(ms) AS ms
  FROM (SELECT DISTINCT ON (click_id) * FROM clicks c
         WHERE ms > 0 AND EXISTS (SELECT FROM users u WHERE u.user_id = c.user_id)
         ORDER BY click_id, ts) kept
  JOIN users u ON u.user_id = kept.user_id
 GROUP BY 1, 2 ORDER BY 2;
SELECT batch_id, num_input_rows, filtered_rows, duplicate_rows_dropped
  FROM streamagg.progress WHERE name = 'pro_clicks' ORDER BY batch_id;

-- 7. Rows without a usable event time (NULL, infinite): with a watermark
-- they are dropped (null_event_time_rows); without one a stateless query
-- appends them, once per key.
CREATE TABLE odd_times (ts timestamptz, k int);
SELECT streamagg.create_query(name => 'odd_wm', source => 'odd_times', event_time => 'ts',
       aggregates => NULL, columns => 'ts, k', dedup => 'k', watermark => '1 minute');
SELECT streamagg.create_query(name => 'odd_nowm', source => 'odd_times', event_time => 'ts',
       aggregates => NULL, columns => 'ts, k', dedup => 'k');
INSERT INTO odd_times VALUES ('infinity', 1), ('-infinity', 2), (NULL, 3),
                             ('2024-05-01 10:00+00', 4), ('-infinity', 2);
SELECT streamagg.process('odd_wm') AS rows_wm, streamagg.process('odd_nowm') AS rows_nowm;
TABLE odd_wm ORDER BY k;
TABLE odd_nowm ORDER BY k;
SELECT name, num_input_rows, null_event_time_rows, duplicate_rows_dropped,
       event_time_min, event_time_max
  FROM streamagg.progress WHERE name LIKE 'odd%' ORDER BY name;

SELECT streamagg.drop_query(name, drop_sink => true) FROM streamagg.queries;
-- dropping a query drops the state of its dedup keys
SELECT count(*) AS state_log_rows FROM streamagg.state_log;
DROP TABLE payments, accounts, odd, clicks, users, odd_times;
