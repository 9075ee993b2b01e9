# A trigger that fails at any phase leaves nothing behind, and its retry
# processes exactly the same batch: same batch_id, same events, even when
# more events were committed in between (DESIGN.md 3.8).  The worker records
# each planned batch before processing it; faults are injected with the
# test-only streamagg.fail_next_trigger(name, phase).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use StreamaggTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = StreamaggTest->new_node('fault_injection');
$node->safe_psql(
	'postgres', q{
	CREATE TABLE events (ts timestamptz, k text, v int);
	SELECT streamagg.create_query(
		name => 'q', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
		window_size => '10 seconds', output_mode => 'update',
		trigger_interval => '100 ms');
});

my $value = 0;
for my $phase ('after_read', 'after_state', 'during_sink', 'before_commit')
{
	$node->safe_psql('postgres',
		"SELECT streamagg.fail_next_trigger('q', '$phase')");

	# batch A: three events, processed by a trigger that fails at $phase
	my @a = map { ++$value } 1 .. 3;
	$node->safe_psql('postgres',
		"INSERT INTO events (ts, k, v) SELECT to_timestamp(100 + v), 'k' || v % 2, v "
		  . "FROM unnest(ARRAY[" . join(',', @a) . "]) v");
	ok( $node->poll_query_until(
			'postgres', q{SELECT status = 'failing' FROM streamagg.queries WHERE name = 'q'}),
		"$phase: the query is failing");
	like(
		$node->safe_psql(
			'postgres', q{SELECT last_error FROM streamagg.queries WHERE name = 'q'}),
		qr/injected fault at $phase/,
		"$phase: the error is recorded");
	my $planned = $node->safe_psql('postgres',
		q{SELECT planned_batch_id FROM streamagg.checkpoint c
		    JOIN streamagg.query_def USING (query_id) WHERE name = 'q'});
	isnt($planned, '', "$phase: the failed batch stays planned");

	# batch B, committed while batch A waits for its retry
	my $b = ++$value;
	$node->safe_psql('postgres',
		"INSERT INTO events (ts, k, v) VALUES (to_timestamp(100 + $b), 'k' || $b % 2, $b)");

	ok( $node->poll_query_until(
			'postgres',
			"SELECT last_batch_id >= $planned FROM streamagg.queries WHERE name = 'q'"),
		"$phase: the retry succeeds");
	is( $node->safe_psql(
			'postgres',
			"SELECT num_input_rows FROM streamagg.progress WHERE name = 'q' AND batch_id = $planned"),
		'3',
		"$phase: the retry processed exactly the events of the failed batch");
	is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '30 seconds')}),
		't', "$phase: everything is processed");
	is( $node->safe_psql(
			'postgres', q{SELECT status, last_error IS NULL FROM streamagg.queries WHERE name = 'q'}),
		'running|t',
		"$phase: the error is cleared");
	is( $node->safe_psql(
			'postgres', q{SELECT sum(n) || ' ' || sum(s) FROM q}),
		$node->safe_psql(
			'postgres', q{SELECT count(*) || ' ' || sum(v) FROM events}),
		"$phase: the sink equals the source, nothing lost or counted twice");
}

$node->stop;
done_testing();
