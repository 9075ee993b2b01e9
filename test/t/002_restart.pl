# DESIGN.md 3.8 (exactly once) and 4.3: no committed event is lost or counted
# twice across server restarts, fast (clean shutdown) or immediate (crash,
# then recovery), even when they happen in the middle of a stream of
# producers that commit out of order and roll back; the worker picks the
# stream up again from its last committed checkpoint.
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
# end up holding the aggregates of every committed event.
$node->safe_psql(
	'postgres', q{
	CREATE TABLE events (ts timestamptz, k text, v int);
	SELECT streamagg.create_query(
		name => 'q', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
		window_size => '10 seconds', output_mode => 'update',
		sink => 'q_out', trigger_interval => '0');
});

# 1. Fast restart in the middle of the stream.
my $producers = StreamaggTest->start_producers($node, 'events');
StreamaggTest->wait_for_rows($node, 'events', 1000);
$node->restart;
StreamaggTest->stop_producers($producers);
ok($node->safe_psql('postgres', 'SELECT count(*) FROM events') > 0,
	'rows were inserted before the fast restart');

# 2. Crash (immediate stop) in the middle of the stream, then recovery.
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM events');
$producers = StreamaggTest->start_producers($node, 'events');
StreamaggTest->wait_for_rows($node, 'events', $before + 1000);
$node->stop('immediate');
StreamaggTest->stop_producers($producers);
$node->start;

# 3. The stream goes on after recovery.
$before = $node->safe_psql('postgres', 'SELECT count(*) FROM events');
$producers = StreamaggTest->start_producers($node, 'events');
StreamaggTest->wait_for_rows($node, 'events', $before + 500);
StreamaggTest->stop_producers($producers);

is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '60 seconds')}),
	't', 'wait() returns true after the restarts');
StreamaggTest->sink_matches_source($node, 'events', 'q_out', '10 seconds',
	'after fast and immediate restarts');
is( $node->safe_psql(
		'postgres', q{SELECT status, last_error FROM streamagg.queries
		  WHERE name = 'q'}),
	'running|',
	'the query is running without error');

$node->stop;
done_testing();
