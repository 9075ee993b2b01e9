# DESIGN.md 3.8 (exactly once) and 4.3: no committed event is lost or counted
# twice across server restarts, fast (clean shutdown) or immediate (crash,
# then recovery), even when they happen in the middle of a batch and of a
# stream of producers that commit out of order and roll back; the worker
# picks the stream up again from its last committed checkpoint, and the
# interrupted batch is done again exactly once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;

my $node = StreamaggTest->new_node('restart');

# Update mode without watermark: nothing is ever evicted, so the sink must
# end up holding the aggregates of every committed event. count_slowly lets
# the test hold the worker in the middle of a batch (see StreamaggTest).
StreamaggTest->create_slow_aggregate($node);
$node->safe_psql(
	'postgres', q{
	CREATE TABLE events (ts timestamptz, k text, v int);
	SELECT streamagg.create_query(
		name => 'q', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s, public.count_slowly(v) AS slow_n',
		group_by => 'k', window_size => '10 seconds', output_mode => 'update',
		sink => 'q_out', trigger_interval => '0');
});

# 1. Fast restart in the middle of the stream and of a batch.
my $producers = StreamaggTest->start_producers($node, 'events');
StreamaggTest->wait_for_rows($node, 'events', 1000);
$node->poll_query_until('postgres',
	q{SELECT last_batch_id IS NOT NULL FROM streamagg.queries WHERE name = 'q'})
  or die 'no batch processed';
StreamaggTest->worker_in_slow_batch($node, 'events');
$node->restart;
StreamaggTest->stop_producers($producers);
ok(1, 'fast restart while the worker was in the middle of a batch');

# 2. Crash (immediate stop) in the middle of the stream and of a batch, then
# recovery.
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM events');
$producers = StreamaggTest->start_producers($node, 'events');
StreamaggTest->wait_for_rows($node, 'events', $before + 1000);
StreamaggTest->worker_in_slow_batch($node, 'events');
$node->stop('immediate');
StreamaggTest->stop_producers($producers);
$node->start;
ok(1, 'immediate stop while the worker was in the middle of a batch');

# 3. The stream goes on after recovery.
$before = $node->safe_psql('postgres', 'SELECT count(*) FROM events');
$producers = StreamaggTest->start_producers($node, 'events');
StreamaggTest->wait_for_rows($node, 'events', $before + 500);
StreamaggTest->stop_producers($producers);

is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '60 seconds')}),
	't', 'wait() returns true after the restarts');
StreamaggTest->sink_matches_source($node, 'events', 'q_out', '10 seconds',
	'after fast and immediate restarts');
is($node->safe_psql('postgres', 'SELECT count(*) FROM q_out WHERE slow_n <> n'),
	'0', 'count_slowly agrees with count(*)');
is( $node->safe_psql(
		'postgres', q{SELECT status, last_error FROM streamagg.queries
		  WHERE name = 'q'}),
	'running|',
	'the query is running without error');

$node->stop;
done_testing();
