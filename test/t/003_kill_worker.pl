# DESIGN.md 3.8 (exactly once) and 4.3: killing the streamagg worker with
# SIGKILL in the middle of a stream (and of a batch) loses and double counts
# nothing. The postmaster answers a killed backend with a crash restart of
# all backends (restart_after_crash = on); shared memory state is rebuilt
# from the last committed checkpoint, and the worker resumes.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;

my $node = StreamaggTest->new_node('kill_worker', 'restart_after_crash = on');

# count_slowly lets the test hold the worker in a batch (see StreamaggTest).
StreamaggTest->create_slow_aggregate($node);
$node->safe_psql(
	'postgres', q{
	CREATE TABLE events (ts timestamptz, k text, v int);
	SELECT streamagg.create_query(
		name => 'q', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s, public.count_slowly(v) AS slow_n',
		group_by => 'k', window_size => '10 seconds', output_mode => 'update',
		sink => 'q_out', trigger_interval => '50 ms');
});

my $worker_pid_query = q{
	SELECT pid FROM pg_stat_activity
	 WHERE backend_type LIKE 'streamagg worker%' AND datname = 'postgres'};

# Kill the worker twice while producers are running: in round 1 for sure in
# the middle of a batch (it sleeps in count_slowly), in round 2 wherever it
# is.
for my $round (1 .. 2)
{
	my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM events');
	my $producers = StreamaggTest->start_producers($node, 'events');
	StreamaggTest->wait_for_rows($node, 'events', $before + 1000);

	my $pid;
	if ($round == 1)
	{
		$pid = StreamaggTest->worker_in_slow_batch($node, 'events');
	}
	else
	{
		$node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM ($worker_pid_query) w")
		  or die "no streamagg worker in pg_stat_activity";
		$pid = $node->safe_psql('postgres', $worker_pid_query);
	}
	ok(kill('KILL', $pid), "round $round: SIGKILL sent to worker $pid");

	# The postmaster restarts every backend; the producers' connections die.
	StreamaggTest->stop_producers($producers);
	ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
		"round $round: the server accepts connections after the crash restart");
	ok( $node->poll_query_until(
			'postgres', "SELECT count(*) = 1 FROM ($worker_pid_query) w
			   WHERE pid <> $pid"),
		"round $round: a new worker is running");
}

# The stream goes on after the kills.
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM events');
my $producers = StreamaggTest->start_producers($node, 'events');
StreamaggTest->wait_for_rows($node, 'events', $before + 500);
StreamaggTest->stop_producers($producers);

ok( $node->log_contains(
		qr/background worker "streamagg worker[^"]*" \(PID \d+\) was terminated by signal 9/),
	'the server log shows the killed worker');
is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '60 seconds')}),
	't', 'wait() returns true after the worker was killed');
StreamaggTest->sink_matches_source($node, 'events', 'q_out', '10 seconds',
	'after killing the worker');
is($node->safe_psql('postgres', 'SELECT count(*) FROM q_out WHERE slow_n <> n'),
	'0', 'count_slowly agrees with count(*)');
is( $node->safe_psql(
		'postgres', q{SELECT status, last_error FROM streamagg.queries
		  WHERE name = 'q'}),
	'running|',
	'the query is running without error');

$node->stop;
done_testing();
