# DISTINCT inside aggregates (docs/semantics.md §15) keeps, per group, the set
# of distinct values seen.  That set is state like any other: it survives a
# clean restart, a crash (immediate stop) and a worker killed with SIGKILL in
# the middle of a batch.  Each time the state is reloaded from
# streamagg.state_log, and afterwards every sink equals the same GROUP BY in
# plain SQL over all committed events: a value seen before the restart is
# not counted again after it, and none is lost.  Tumbling (update), sliding
# (update, folded by panes) and session (complete) windows, run by the
# workers.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use StreamaggTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = StreamaggTest->new_node('distinct_restart', 'restart_after_crash = on');

# count_slowly sleeps on v = -1, so that the worker can be killed in the
# middle of a batch (StreamaggTest::worker_in_slow_batch).
StreamaggTest->create_slow_aggregate($node);

my $aggs = q{count(*) AS n, count(DISTINCT v) AS users, sum(DISTINCT v % 97) AS s, }
  . q{string_agg(DISTINCT (v % 13)::text, ',') AS tags, }
  . q{count(DISTINCT v) FILTER (WHERE v % 2 = 0) AS even_users};
$node->safe_psql(
	'postgres', qq{
	CREATE TABLE events (ts timestamptz, k text, v int);
	SELECT streamagg.create_query(name => 'tumbling', source => 'events', event_time => 'ts',
		aggregates => \$aggs\$$aggs, public.count_slowly(v) AS slow_n\$aggs\$, group_by => 'k',
		window_size => '1 minute', output_mode => 'update', trigger_interval => '50 ms');
	SELECT streamagg.create_query(name => 'sliding', source => 'events', event_time => 'ts',
		aggregates => \$aggs\$$aggs\$aggs\$, group_by => 'k', window_size => '1 minute',
		window_slide => '20 seconds', output_mode => 'update', trigger_interval => '50 ms');
	SELECT streamagg.create_query(name => 'sessions', source => 'events', event_time => 'ts',
		aggregates => \$aggs\$$aggs\$aggs\$, group_by => 'k', session_gap => '5 seconds',
		output_mode => 'complete', trigger_interval => '50 ms');
});

# The same aggregates in plain SQL.
my $ref_aggs = q{count(*) AS n, count(DISTINCT v) AS users, sum(DISTINCT v % 97) AS s,
	string_agg(DISTINCT (v % 13)::text, ',') AS tags,
	count(DISTINCT v) FILTER (WHERE v % 2 = 0) AS even_users};
my %reference = (
	tumbling => qq{
		SELECT date_bin('1 minute', ts, 'epoch') AS window_start,
			   date_bin('1 minute', ts, 'epoch') + interval '1 minute' AS window_end,
			   k, $ref_aggs, count(*) AS slow_n
		  FROM events GROUP BY 1, 2, k},
	sliding => qq{
		SELECT w.s AS window_start, w.s + interval '1 minute' AS window_end, k, $ref_aggs
		  FROM events, LATERAL (SELECT date_bin('20 seconds', ts, 'epoch') - i * interval '20 seconds'
								  FROM generate_series(0, 2) i) w(s)
		 GROUP BY w.s, k},
	sessions => qq{
		SELECT min(ts) AS window_start, max(ts) + interval '5 seconds' AS window_end, k, $ref_aggs
		  FROM (SELECT *, sum(starts) OVER (PARTITION BY k ORDER BY ts) AS session
				  FROM (SELECT *, CASE WHEN ts <= lag(ts) OVER (PARTITION BY k ORDER BY ts)
											+ interval '5 seconds' THEN 0 ELSE 1 END AS starts
						  FROM events) m) s
		 GROUP BY k, session});

# Wait until the workers have processed every committed event, then compare
# each sink with its reference, row by row (as text).
sub check_sinks
{
	my ($name) = @_;
	for my $q (sort keys %reference)
	{
		is($node->safe_psql('postgres', "SELECT streamagg.wait('$q', '60 seconds')"),
			't', "$name: $q processed everything");
		is( StreamaggTest->differences(
				$node, 'postgres', "SELECT sink_row::text FROM $q sink_row",
				"SELECT ref_row::text FROM ($reference{$q}) ref_row"),
			'0',
			"$name: $q equals GROUP BY over all events");
	}
	return;
}

# Events of round $r: 300 rows over 3 keys and 2 minutes, whose values
# repeat those of earlier rounds (v in 0 .. 199) and bring some new ones
# (v = 1000 * r + ...): the distinct counts grow only by the new values.
sub insert_round
{
	my ($r) = @_;
	$node->safe_psql(
		'postgres', qq{
		INSERT INTO events
		SELECT to_timestamp(1700000000 + (g * 7 + $r) % 120), 'k' || g % 3,
			   CASE WHEN g % 10 = 0 THEN 1000 * $r + g ELSE (g * 31 + $r) % 200 END
		  FROM generate_series(1, 300) g});
	return;
}

insert_round(1);
check_sinks('before any restart');
my $users_before = $node->safe_psql('postgres',
	"SELECT sum(users) FROM tumbling");

# 1. A clean restart: shared memory is empty, the state comes from the log.
$node->restart;
check_sinks('after a clean restart, no new events');
is($node->safe_psql('postgres', "SELECT sum(users) FROM tumbling"),
	$users_before, 'the restart alone changes no value');
insert_round(2);
check_sinks('after a clean restart');

# 2. A crash: immediate stop, recovery, reload from the log.
$node->stop('immediate');
$node->start;
insert_round(3);
check_sinks('after a crash');

# 3. The tumbling query's worker killed with SIGKILL in the middle of a
# batch (asleep in count_slowly on the marker row v = -1): the postmaster
# restarts every backend, the batch is retried with the same events.
insert_round(4);
my $pid = StreamaggTest->worker_in_slow_batch($node, 'events');
ok(kill('KILL', $pid), "SIGKILL sent to worker $pid in the middle of a batch");
ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
	'the server accepts connections after the crash restart');
insert_round(5);
check_sinks('after the worker was killed');
ok( $node->log_contains(
		qr/background worker "streamagg worker[^"]*" \(PID \d+\) was terminated by signal 9/),
	'the server log shows the killed worker');

# The sets really hold values from every round: a value of round 1 is still
# counted once in its window, together with the new values of round 5.
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM tumbling t
		 WHERE t.users <> (SELECT count(DISTINCT v) FROM events e
							WHERE e.k = t.k AND e.ts >= t.window_start AND e.ts < t.window_end)}),
	'0', 'distinct users per window are exact after every kind of restart');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(status || coalesce(' ' || last_error, ''), '; ' ORDER BY name)
		  FROM streamagg.queries}),
	'running; running; running', 'the queries are running, without errors');

$node->stop;
done_testing();
