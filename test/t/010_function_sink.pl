# A function sink run by the worker (docs/sinks.md; DESIGN.md 3.8): when the
# function raises, the trigger rolls back, the error shows in
# streamagg.queries (status 'failing', last_error), and the worker retries
# the batch with the same batch id and the same rows.  A sink that is
# idempotent per batch id (an upsert guarded by batch_id) then holds every
# committed event exactly once, even with producers running and failures
# recurring.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;

my $node = StreamaggTest->new_node('function_sink');

# The function fails on the first call for every batch whose id is in
# fail_every (batch_id % m = r); the sequences remember across rollbacks
# which batch failed last and how many calls failed.
$node->safe_psql(
	'postgres', q{
	CREATE TABLE events (ts timestamptz, k text, v int);
	CREATE TYPE out_row AS (window_start timestamptz, window_end timestamptz,
							k text, n bigint, s bigint);
	CREATE TABLE f_out (window_start timestamptz, window_end timestamptz,
						k text, n bigint, s bigint, batch_id bigint NOT NULL,
						UNIQUE NULLS NOT DISTINCT (window_start, window_end, k));
	CREATE TABLE fail_every (m int, r int);
	INSERT INTO fail_every VALUES (1000000, 1);
	CREATE SEQUENCE failed_batch MINVALUE -1 START -1;
	CREATE SEQUENCE failures;
	CREATE FUNCTION deliver(batch_id bigint, rows out_row[]) RETURNS void
	LANGUAGE plpgsql SET search_path = public AS $$
	BEGIN
		IF EXISTS (SELECT FROM fail_every WHERE batch_id % m = r)
		   AND (SELECT last_value FROM failed_batch) <> batch_id THEN
			PERFORM setval('failed_batch', batch_id);
			PERFORM nextval('failures');
			RAISE EXCEPTION 'sink unavailable for batch %', batch_id;
		END IF;
		INSERT INTO f_out AS t SELECT r.*, batch_id FROM unnest(rows) AS r
		ON CONFLICT (window_start, window_end, k) DO UPDATE
		   SET n = EXCLUDED.n, s = EXCLUDED.s, batch_id = EXCLUDED.batch_id
		 WHERE t.batch_id < EXCLUDED.batch_id;
	END $$;
	SELECT streamagg.create_query(
		name => 'q', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
		window_size => '10 seconds', output_mode => 'update',
		sink_function => 'deliver', trigger_interval => '100 ms');
});

# Batch 0 goes through.
$node->safe_psql('postgres',
	q{INSERT INTO events VALUES (to_timestamp(10), 'a', 1), (to_timestamp(11), 'a', 2)});
is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '30 seconds')}),
	't', 'first batch delivered');
is($node->safe_psql('postgres', q{SELECT k, n, s, batch_id FROM f_out}),
	'a|2|3|0', 'the function received batch 0');

# Batch 1 fails once, is seen failing, and is retried by the worker.
$node->safe_psql('postgres',
	q{INSERT INTO events VALUES (to_timestamp(12), 'a', 4), (to_timestamp(25), 'b', 8)});
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'failing' AND last_error LIKE '%sink unavailable for batch 1%'
		  FROM streamagg.queries WHERE name = 'q'}),
	'status failing, with the function\'s error in last_error');
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'running' AND last_error IS NULL
		  FROM streamagg.queries WHERE name = 'q'}),
	'the worker retried the batch and the query runs again');
is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '30 seconds')}),
	't', 'the failed batch was delivered');
is( $node->safe_psql(
		'postgres', q{SELECT k, n, s, batch_id FROM f_out ORDER BY window_start, k}),
	"a|3|7|1\nb|1|8|1",
	'the retry delivered batch 1 with every row of the failed call');
is($node->safe_psql('postgres', q{SELECT last_value FROM failed_batch}),
	'1', 'the failed call had the same batch id as the retry');
is( $node->safe_psql(
		'postgres', q{SELECT batch_id, num_input_rows FROM streamagg.progress
		  WHERE name = 'q' ORDER BY batch_id}),
	"0|2\n1|2",
	'each batch recorded once, the retried one with its two events');

# Producers run while every third batch fails once.
$node->safe_psql('postgres', q{UPDATE fail_every SET m = 3, r = 2});
my $producers = StreamaggTest->start_producers($node, 'events', rate => 100);
ok( $node->poll_query_until(
		'postgres', q{SELECT last_value >= 3 FROM failures}),
	'several batches failed while producers ran');
StreamaggTest->stop_producers($producers);
is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '60 seconds')}),
	't', 'everything committed was delivered');
StreamaggTest->sink_matches_source($node, 'events', 'f_out', '10 seconds',
	'function sink with failures');

$node->stop;
done_testing();
