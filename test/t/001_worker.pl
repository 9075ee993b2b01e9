# DESIGN.md section 2 and 4.1: a query with a trigger_interval is run by the
# background workers, with no streamagg.process() call; streamagg.wait()
# returns true once they processed everything committed before the call; the
# processes show in pg_stat_activity as "streamagg launcher" and "streamagg
# worker ..."; pause() stops a query (status 'paused', nothing processed) and
# resume() restarts it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;

my $node = StreamaggTest->new_node('worker');

# Event times are seconds since the Unix epoch: 10-second windows [10, 20), ...
$node->safe_psql(
	'postgres', q{
	CREATE TABLE events (ts timestamptz, k text, v int);
	SELECT streamagg.create_query(
		name => 'q', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
		window_size => '10 seconds', output_mode => 'update',
		sink => 'q_out', trigger_interval => '100 ms');
});

my $sink_query = q{
	SELECT extract(epoch FROM window_start)::int,
		   extract(epoch FROM window_end)::int, k, n, s
	  FROM q_out ORDER BY 1, 3};

$node->safe_psql(
	'postgres', q{
	INSERT INTO events (ts, k, v) VALUES
		(to_timestamp(10), 'a', 1), (to_timestamp(12), 'a', 2),
		(to_timestamp(15), 'b', 4), (to_timestamp(25), 'a', 8);
});

is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '30 seconds')}),
	't', 'wait() returns true once the worker processed the rows');
is( $node->safe_psql('postgres', $sink_query),
	"10|20|a|2|3\n10|20|b|1|4\n20|30|a|1|8",
	'the worker wrote the sink without any process() call');
is( $node->safe_psql(
		'postgres', q{SELECT status, last_error IS NULL, last_batch_id IS NOT NULL
		  FROM streamagg.queries WHERE name = 'q'}),
	'running|t|t',
	'the query is running without error');

# The background processes.
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_stat_activity
		  WHERE backend_type = 'streamagg launcher'}),
	'1',
	'pg_stat_activity shows the streamagg launcher');
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) >= 1 FROM pg_stat_activity
		  WHERE backend_type LIKE 'streamagg worker%'}),
	'pg_stat_activity shows a streamagg worker');

# Pause: rows inserted now are not processed.
$node->safe_psql('postgres', q{SELECT streamagg.pause('q')});
is( $node->safe_psql(
		'postgres', q{SELECT status FROM streamagg.queries WHERE name = 'q'}),
	'paused',
	'status is paused after pause()');
my $batch_before = $node->safe_psql('postgres',
	q{SELECT last_batch_id FROM streamagg.queries WHERE name = 'q'});

$node->safe_psql(
	'postgres', q{
	INSERT INTO events (ts, k, v) VALUES
		(to_timestamp(11), 'a', 16), (to_timestamp(31), 'c', 32);
});
# wait() on a paused query with rows pending says so at once: no worker
# would consume them before the timeout (docs/operations.md, "Waiting")
my ($rc, $out, $err) = $node->psql('postgres',
	q{SELECT streamagg.wait('q', '1 hour')});
like($err, qr/streaming query "q" is paused/,
	'wait() on a paused query with new rows refuses at once');
# a second, running query over the same source shows that the workers went
# round (and consumed the new rows) while q stayed paused
$node->safe_psql(
	'postgres', q{
	SELECT streamagg.create_query(name => 'clock', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n', output_mode => 'complete',
		trigger_interval => '100 ms');
});
is($node->safe_psql('postgres', q{SELECT streamagg.wait('clock', '30 seconds')}),
	't', 'another query of the source runs meanwhile');
$node->safe_psql('postgres', q{SELECT streamagg.drop_query('clock', true)});
is( $node->safe_psql('postgres', $sink_query),
	"10|20|a|2|3\n10|20|b|1|4\n20|30|a|1|8",
	'a paused query does not change its sink');
is( $node->safe_psql(
		'postgres', q{SELECT last_batch_id FROM streamagg.queries WHERE name = 'q'}),
	$batch_before,
	'a paused query runs no batch');

# Resume: the worker processes what was inserted meanwhile.
$node->safe_psql('postgres', q{SELECT streamagg.resume('q')});
is( $node->safe_psql(
		'postgres', q{SELECT status FROM streamagg.queries WHERE name = 'q'}),
	'running',
	'status is running after resume()');
is($node->safe_psql('postgres', q{SELECT streamagg.wait('q', '30 seconds')}),
	't', 'wait() returns true after resume()');
is( $node->safe_psql('postgres', $sink_query),
	"10|20|a|3|19\n10|20|b|1|4\n20|30|a|1|8\n30|40|c|1|32",
	'after resume() the worker processed the rows inserted while paused');

$node->stop;
done_testing();
