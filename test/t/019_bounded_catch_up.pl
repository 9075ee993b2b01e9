# Catching up, and then reprocessing after reset_query, a large retained
# source in bounded triggers (docs/operations.md, "Catching up in bounded
# batches" and "Resetting a query"; docs/semantics.md §8):
# a query created over a source that already holds many events, with
# max_batch_rows, works through them as a series of committed triggers of
# whole producer transactions, back to back (its trigger_interval of one
# hour is not waited for while a backlog remains), while producers keep
# inserting; a worker killed with SIGKILL and a server crash in the middle
# lose and double count nothing, and the sink ends equal to a
# recomputation over the source.  Then the query is reset while producers
# insert: it reprocesses the whole source in bounded triggers, with batch
# ids going on, through a crash in the middle, and ends equal again.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;

my $node = StreamaggTest->new_node('bounded_catch_up', 'restart_after_crash = on');
StreamaggTest->create_slow_aggregate($node);

# The retained history: 20 000 rows from before the query (no transaction
# id: one indivisible group, larger than the bound, so a batch of its own),
# then 40 producer transactions of 5 000 rows.  Transactions 10 and 25 each
# hold one marker row (v = -1) on which count_slowly sleeps 2 seconds, so
# the worker is surely in the middle of the catch-up, inside a batch, when
# it is killed and when the server crashes.
$node->safe_psql('postgres', q{
	CREATE TABLE events (ts timestamptz, k text, v int);
	INSERT INTO events SELECT to_timestamp(1700000000 + g % 120), 'k' || g % 10, g % 1000
	  FROM generate_series(1, 20000) g;
});
my $history = join '', map {
	my $marker = ($_ == 10 || $_ == 25) ? ' UNION ALL SELECT to_timestamp(1700000000), \'k0\', -1' : '';
	"INSERT INTO events SELECT to_timestamp(1700000000 + (g * $_) % 120), 'k' || g % 10, g % 997"
	  . " FROM generate_series(1, " . ($marker ? 4999 : 5000) . ") g$marker;\n"
} 1 .. 40;

$node->safe_psql('postgres', q{
	SELECT streamagg.create_query(
		name => 'q', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s, public.count_slowly(v) AS slow_n',
		group_by => 'k', window_size => '10 seconds', output_mode => 'update',
		sink => 'q_out', trigger_interval => '1 hour', max_batch_rows => 12000);
	SELECT streamagg.pause('q');
});
# paused while the history is written, so that it is a backlog
$node->safe_psql('postgres', $history);
my $producers = StreamaggTest->start_producers($node, 'events', rate => 100);
$node->safe_psql('postgres', q{SELECT streamagg.resume('q')});

my $sleeping = q{
	SELECT pid FROM pg_stat_activity
	 WHERE backend_type LIKE 'streamagg worker%' AND wait_event = 'PgSleep'};

# 1. SIGKILL the worker in the middle of the batch holding the first marker.
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($sleeping) w")
  or die 'the worker did not reach the first marker';
my $pid = $node->safe_psql('postgres', $sleeping);
my $consumed = $node->safe_psql('postgres',
	q{SELECT coalesce(sum(num_input_rows), 0) FROM streamagg.progress WHERE name = 'q'});
ok($consumed > 20000 && $consumed < 220000,
	"in the middle of the catch-up when the worker is killed ($consumed rows consumed)");
kill 'KILL', $pid;
ok(1, 'worker killed with SIGKILL inside a bounded batch');

# 2. Crash the server in the middle of the batch holding the second marker
# (the first one is retried and sleeps again after the kill: wait past it).
$node->poll_query_until('postgres', q{
	SELECT coalesce(sum(num_input_rows), 0) > 20000 + 12 * 5000
	  FROM streamagg.progress WHERE name = 'q'})
  or die 'the catch-up did not resume after the kill';
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($sleeping) w")
  or die 'the worker did not reach the second marker';
$node->stop('immediate');
StreamaggTest->stop_producers($producers);
$node->start;
ok(1, 'server crashed (immediate stop) inside a bounded batch');

# 3. More producers after recovery, then everything is consumed without
# waiting for the hour of trigger_interval.
$producers = StreamaggTest->start_producers($node, 'events', rate => 100);
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM events');
StreamaggTest->wait_for_rows($node, 'events', $before + 300);
StreamaggTest->stop_producers($producers);
is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '120 seconds')}),
	't', 'the backlog drains in back-to-back triggers');

StreamaggTest->sink_matches_source($node, 'events', 'q_out', '10 seconds',
	'after a bounded catch-up with a kill and a crash');
is($node->safe_psql('postgres', 'SELECT count(*) FROM q_out WHERE slow_n <> n'),
	'0', 'count_slowly agrees with count(*)');

# Every batch holds whole transactions within the bound, except the first:
# the rows from before the query, one group larger than the bound.
is( $node->safe_psql(
		'postgres', q{
		SELECT num_input_rows FROM streamagg.progress
		 WHERE name = 'q' AND batch_id = 0}),
	'20000', 'the rows from before the query form the first batch alone');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM streamagg.progress
		 WHERE name = 'q' AND batch_id > 0 AND num_input_rows > 12000}),
	'0', 'no later batch exceeds max_batch_rows');
# 200 000 rows of history in batches of two 5 000-row transactions at most
cmp_ok( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM streamagg.progress WHERE name = 'q'}),
	'>=', 21, 'the history was consumed in many batches');
is( $node->safe_psql(
		'postgres', q{SELECT status, last_error FROM streamagg.queries WHERE name = 'q'}),
	'running|', 'the query runs without error');

# 4. Reprocess everything after reset_query while producers insert; crash
# in the middle of it (in the batch of the first marker, met again).
my $last_before = $node->safe_psql('postgres',
	q{SELECT last_batch_id FROM streamagg.queries WHERE name = 'q'});
$producers = StreamaggTest->start_producers($node, 'events', rate => 100);
# the sink is looked at in the reset's transaction: once it commits, a worker
# may write the first reprocessed batch before another statement would look
is( $node->safe_psql(
		'postgres', q{
		BEGIN;
		SELECT 'reset' FROM streamagg.reset_query('q');
		SELECT count(*) FROM q_out;
		COMMIT;}),
	"reset\n0", 'reset_query emptied the sink');
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($sleeping) w")
  or die 'the reprocessing did not reach the first marker';
$consumed = $node->safe_psql('postgres',
	"SELECT coalesce(sum(num_input_rows), 0) FROM streamagg.progress WHERE name = 'q' AND batch_id > $last_before");
ok($consumed > 20000 && $consumed < 220000,
	"in the middle of reprocessing when the server crashes ($consumed rows reprocessed)");
$node->stop('immediate');
StreamaggTest->stop_producers($producers);
$node->start;
is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '120 seconds')}),
	't', 'the reprocessing resumes after the crash and drains');
StreamaggTest->sink_matches_source($node, 'events', 'q_out', '10 seconds',
	'after reprocessing with a crash');
is( $node->safe_psql(
		'postgres', qq{
		SELECT min(batch_id) || ' ' || (array_agg(num_input_rows ORDER BY batch_id))[1]
		  FROM streamagg.progress WHERE name = 'q' AND batch_id > $last_before}),
	($last_before + 1) . ' 20000',
	'batch ids went on after the reset, and the first batch reread the rows from before the query');
is( $node->safe_psql(
		'postgres', qq{
		SELECT count(*) FROM streamagg.progress
		 WHERE name = 'q' AND batch_id > $last_before + 1 AND num_input_rows > 12000}),
	'0', 'no reprocessing batch exceeds max_batch_rows');

$node->stop;
done_testing();
