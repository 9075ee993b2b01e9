# Idle sources (docs/semantics.md §11, docs/event-time.md): the worker runs
# idle triggers for a scheduled query by itself, without any process() call,
# and closes the last windows in append mode; an idle trigger that fails at
# any phase is retried with the trigger time recorded in its plan, so that
# it moves the watermark to exactly the same point and emits the same rows.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use StreamaggTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = StreamaggTest->new_node('idle_sources');
$node->safe_psql('postgres',
	q{CREATE TABLE events (ts timestamptz, k text, v int)});

# The worker alone closes an idle query's windows.
$node->safe_psql(
	'postgres', q{
	SELECT streamagg.create_query(
		name => 'by_worker', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
		window_size => '2 seconds', watermark => '0 seconds',
		idle_timeout => '1 second', trigger_interval => '100 ms');
	INSERT INTO events VALUES (to_timestamp(1000.5), 'a', 1),
	                          (to_timestamp(1001), 'a', 2),
	                          (to_timestamp(1001), 'b', 3);
});
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) = 2 FROM by_worker}),
	'the worker emits the last windows of an idle source');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(k || ':' || n || ':' || s, ' ' ORDER BY k)
		                FROM by_worker WHERE window_start = to_timestamp(1000)}),
	'a:2:3 b:1:3',
	'with the values of the events');
is( $node->safe_psql(
		'postgres', q{SELECT num_input_rows || ' ' || sink_rows_written
		                FROM streamagg.progress WHERE name = 'by_worker'
		               ORDER BY batch_id LIMIT 1 OFFSET 1}),
	'0 2',
	'by an idle trigger: a batch without input rows');
$node->safe_psql('postgres',
	q{SELECT streamagg.drop_query('by_worker', drop_sink => true)});

# An idle trigger fails at each phase; its retry emits the same rows.
my $base = 2000;
for my $phase ('after_read', 'after_state', 'during_sink', 'before_commit')
{
	my $q = "idle_$phase";
	$base += 100;
	# a source of its own: a query's first batch reads all of its source
	$node->safe_psql(
		'postgres', qq{
		CREATE TABLE "events_$phase" (ts timestamptz, k text, v int);
		SELECT streamagg.create_query(
			name => '$q', source => 'events_$phase', event_time => 'ts',
			aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
			window_size => '2 seconds', watermark => '0 seconds',
			idle_timeout => '3 seconds', trigger_interval => '100 ms');
		INSERT INTO "events_$phase" VALUES (to_timestamp($base.5), 'a', 10),
		                          (to_timestamp($base + 1), 'b', 20),
		                          (to_timestamp($base + 1.5), 'a', 30);
	});
	# W = base + 1.5 s: the window [base, base + 2 s) stays open
	is($node->safe_psql('postgres', qq{SELECT streamagg.wait('$q', '30 seconds')}),
		't', "$phase: the events are processed");
	# armed within the idle timeout: the next trigger is the idle one
	$node->safe_psql('postgres',
		"SELECT streamagg.fail_next_trigger('$q', '$phase')");
	ok( $node->poll_query_until(
			'postgres', qq{SELECT status = 'failing' FROM streamagg.queries WHERE name = '$q'}),
		"$phase: the idle trigger fails");
	# paused, so that the retry waits while the failed trigger is inspected
	$node->safe_psql('postgres', qq{SELECT streamagg.pause('$q')});
	like(
		$node->safe_psql(
			'postgres', qq{SELECT last_error FROM streamagg.queries WHERE name = '$q'}),
		qr/injected fault at $phase/,
		"$phase: the error is recorded");
	is($node->safe_psql('postgres', qq{SELECT count(*) FROM "$q"}),
		'0', "$phase: nothing of the failed trigger remains");

	# the plan holds the trigger time T; the watermark it must give
	my ($planned, $expected) = split /\|/,
	  $node->safe_psql(
		'postgres', qq{SELECT c.planned_batch_id,
		                      c.max_event_time + (c.planned_at - c.max_event_time_at)
		                 FROM streamagg.checkpoint c
		                 JOIN streamagg.query_def USING (query_id) WHERE name = '$q'});
	isnt($planned, '', "$phase: the failed idle trigger stays planned");
	$node->safe_psql('postgres', qq{SELECT streamagg.resume('$q')});

	ok( $node->poll_query_until(
			'postgres',
			"SELECT last_batch_id >= $planned FROM streamagg.queries WHERE name = '$q'"),
		"$phase: the retry succeeds");
	is( $node->safe_psql(
			'postgres',
			qq{SELECT num_input_rows || ' ' || (watermark = '$expected')
			     FROM streamagg.progress WHERE name = '$q' AND batch_id = $planned}),
		'0 true',
		"$phase: the retry is an idle trigger with the planned time's watermark");
	# the windows that watermark closes, by plain SQL over the source
	is( $node->safe_psql(
			'postgres', qq{SELECT string_agg(window_start || ' ' || k || ' ' || n || ' ' || s, ', '
			                               ORDER BY window_start, k) FROM "$q"}),
		$node->safe_psql(
			'postgres', qq{SELECT string_agg(w || ' ' || k || ' ' || n || ' ' || s, ', ' ORDER BY w, k)
			                 FROM (SELECT date_bin('2 seconds', ts, 'epoch') AS w, k,
			                              count(*) AS n, sum(v) AS s
			                         FROM "events_$phase" GROUP BY 1, 2) r
			                WHERE w + interval '2 seconds' <= '$expected'}),
		"$phase: the retry emits exactly the windows its watermark closes");
	isnt($node->safe_psql('postgres', qq{SELECT count(*) FROM "$q"}),
		'0', "$phase: and it emits something");
	$node->safe_psql('postgres',
		qq{SELECT streamagg.drop_query('$q', drop_sink => true)});
}

$node->stop;
done_testing();
