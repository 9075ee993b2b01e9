# DDL on a source that changes the types a query computes (issue 14, item 1).
# ALTER COLUMN ... TYPE bigint on a summed int column turned the state's
# int8 sums into numeric ones (stored serialized): the worker recompiled the
# query and read the old state log with the new layout, and the server
# crashed, about a hundred times in 30 seconds.  Now the state records the
# layout it was stored with: the query fails with an error saying what
# changed, retried with backoff, the server never crashes, and changing the
# column back lets the query go on with every event counted once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;

my $node = StreamaggTest->new_node('source_ddl');
$node->safe_psql(
	'postgres', q{
	CREATE TABLE ev (ts timestamptz, k text, v int);
	SELECT streamagg.create_query(name => 'sums', source => 'ev', event_time => 'ts',
		aggregates => 'sum(v) AS total, avg(v) AS mean, count(*) AS n', group_by => 'k',
		output_mode => 'update', trigger_interval => '0');
	INSERT INTO ev (ts, k, v) SELECT '2024-01-01', 'k' || (g % 3), g FROM generate_series(1, 300) g;
});
is($node->safe_psql('postgres', "SELECT streamagg.wait('sums', '30 seconds')"),
	't', 'the query ran');
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

$node->safe_psql('postgres', 'ALTER TABLE ev ALTER COLUMN v TYPE bigint');
$node->safe_psql('postgres',
	"INSERT INTO ev (ts, k, v) VALUES ('2024-01-01', 'k0', 1000)");
ok( $node->poll_query_until(
		'postgres',
		"SELECT last_error LIKE 'the types of streaming query \"sums\" changed since its state was stored%' OR last_error LIKE 'source of streaming query \"sums\" has changed%' FROM streamagg.queries"),
	'the query fails with an error saying that its source changed');
ok( $node->poll_query_until(
		'postgres',
		"SELECT last_error LIKE 'the types of streaming query \"sums\" changed since its state was stored%' AND failures >= 2 FROM streamagg.queries"),
	'recompiled, it refuses the old state, retried with backoff');
my ($rc, $out, $err) =
  $node->psql('postgres', "SELECT streamagg.process('sums')");
like($err, qr/DETAIL:  The state holds .*states: bigint bigint\[\] bigint; the query now computes .*int8_avg_serialize/,
	'process() says what the state holds and what the query computes now');
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$started, 'the server never restarted');
ok(!$node->log_contains(qr/terminated by signal/), 'no process crashed');

$node->safe_psql('postgres', 'ALTER TABLE ev ALTER COLUMN v TYPE int');
$node->safe_psql('postgres', "SELECT streamagg.resume('sums')");
is($node->safe_psql('postgres', "SELECT streamagg.wait('sums', '60 seconds')"),
	't', 'with the column changed back, the query catches up');
is( StreamaggTest->differences(
		$node, 'postgres',
		'SELECT k, total, mean, n FROM sums',
		'SELECT k, sum(v), avg(v), count(*) FROM ev GROUP BY k'),
	'0', 'every event is counted once');
is($node->safe_psql('postgres', 'SELECT status FROM streamagg.queries'),
	'running', 'the query runs');
$node->stop;
done_testing();
