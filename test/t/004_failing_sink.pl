# DESIGN.md 3.8 and 4.1: a batch that fails (here: the sink rejects a row) is
# rolled back, the error is shown in streamagg.queries (status 'failing',
# last_error), and the worker retries it, with exactly the same events and
# the same batch_id, until it succeeds: once the user fixes the sink, nothing
# is lost or counted twice, last_error is NULL again and status 'running'.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;

my $node = StreamaggTest->new_node('failing_sink');

# The sink exists beforehand, with the columns and the key streamagg expects,
# and a CHECK constraint that rejects any window with 3 or more rows.
$node->safe_psql(
	'postgres', q{
	CREATE TABLE events (ts timestamptz, k text, v int);
	CREATE TABLE q_out (
		window_start timestamptz,
		window_end	 timestamptz,
		k			 text,
		n			 bigint,
		s			 bigint,
		UNIQUE NULLS NOT DISTINCT (window_start, window_end, k),
		CONSTRAINT q_out_n_small CHECK (n < 3));
	SELECT streamagg.create_query(
		name => 'q', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
		window_size => '10 seconds', output_mode => 'update',
		sink => 'q_out', trigger_interval => '100 ms');
});

my $sink_query = q{
	SELECT extract(epoch FROM window_start)::int, k, n, s
	  FROM q_out ORDER BY 1, 2};
my $status_query = q{
	SELECT status, last_error IS NULL FROM streamagg.queries WHERE name = 'q'};

# A batch the sink accepts.
$node->safe_psql(
	'postgres', q{
	INSERT INTO events (ts, k, v) VALUES
		(to_timestamp(10), 'a', 1), (to_timestamp(11), 'a', 2);
});
is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '30 seconds')}),
	't', 'first batch processed');
is($node->safe_psql('postgres', $sink_query),
	'10|a|2|3', 'first batch in the sink');
my $good_batch = $node->safe_psql('postgres',
	q{SELECT last_batch_id FROM streamagg.queries WHERE name = 'q'});

# A batch the sink rejects: window [10, 20) of 'a' would have n = 4.
$node->safe_psql(
	'postgres', q{
	INSERT INTO events (ts, k, v) VALUES
		(to_timestamp(12), 'a', 4), (to_timestamp(13), 'a', 8),
		(to_timestamp(25), 'b', 16);
});
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'failing' FROM streamagg.queries
		  WHERE name = 'q'}),
	'status becomes failing');
like(
	$node->safe_psql(
		'postgres',
		q{SELECT last_error FROM streamagg.queries WHERE name = 'q'}),
	qr/q_out_n_small/,
	'last_error names the violated constraint');
is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '1 second')}),
	'f', 'wait() returns false while the batch fails');
is($node->safe_psql('postgres', $sink_query),
	'10|a|2|3', 'nothing of the failed batch is in the sink');
is( $node->safe_psql(
		'postgres', q{SELECT last_batch_id FROM streamagg.queries WHERE name = 'q'}),
	$good_batch,
	'the failed batch is not recorded as done');

# Events committed while the batch fails belong to a later batch.
$node->safe_psql(
	'postgres', q{
	INSERT INTO events (ts, k, v) VALUES (to_timestamp(26), 'b', 32);
});

# The user fixes the sink; the retry succeeds.
$node->safe_psql('postgres',
	'ALTER TABLE q_out DROP CONSTRAINT q_out_n_small');
ok($node->poll_query_until('postgres', $status_query, 'running|t'),
	'status is running and last_error NULL after the sink was fixed');
is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '30 seconds')}),
	't', 'wait() returns true after the retry');
is( $node->safe_psql('postgres', $sink_query),
	"10|a|4|15\n20|b|2|48",
	'the sink holds every event exactly once');
StreamaggTest->sink_matches_source($node, 'events', 'q_out', '10 seconds',
	'after the failing batch');

# The retried batch had the same batch_id and the same events.
is( $node->safe_psql(
		'postgres', qq{SELECT num_input_rows FROM streamagg.progress
		  WHERE name = 'q' AND batch_id = $good_batch + 1}),
	'3',
	'the retried batch has the next batch_id and exactly the failed events');

$node->stop;
done_testing();
