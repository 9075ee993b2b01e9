# streamagg must be preloaded: CREATE EXTENSION without the library in
# shared_preload_libraries fails with a hint saying how to preload it, and
# nothing of the extension is left behind by the failed attempt.
#
# A server restarted without the preload keeps its producers working: the
# sources' trigger and index still load the library, which then installs
# nothing; the queries report that no worker runs them, process() refuses
# with the hint, and once the preload is back every event inserted
# meanwhile is counted.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->start;

my ($rc, $stdout, $stderr) =
  $node->psql('postgres', 'CREATE EXTENSION streamagg');
isnt($rc, 0, 'CREATE EXTENSION fails without preloading');
like($stderr, qr/streamagg must be loaded via shared_preload_libraries/,
	'the error says why');
like($stderr, qr/HINT:.*shared_preload_libraries.*restart/,
	'the hint says how to preload it');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_namespace WHERE nspname = 'streamagg'"),
	'0', 'no schema is left behind');

$node->stop;

my $source = StreamaggTest->new_node('preload_removed');
$source->safe_psql(
	'postgres', q{
	CREATE TABLE ev (ts timestamptz, v int);
	SELECT streamagg.create_query(name => 'q', source => 'ev', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s', output_mode => 'complete',
		trigger_interval => '0');
	INSERT INTO ev VALUES ('2024-01-01', 1);
});
is($source->safe_psql('postgres', "SELECT streamagg.wait('q', '30 seconds')"),
	't', 'the query runs with the preload');

$source->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$source->restart;
($rc, $stdout, $stderr) = $source->psql('postgres',
	"INSERT INTO ev SELECT '2024-01-01', g FROM generate_series(2, 1000) g");
is($rc, 0, 'producers insert into the source without the preload');
is($stderr, '', '... without an error or warning');
$source->safe_psql('postgres', "INSERT INTO ev VALUES ('2024-01-01', 1001)");
is( $source->safe_psql(
		'postgres', 'SELECT status, last_error FROM streamagg.queries'),
	'failing|streamagg is not loaded via shared_preload_libraries: no worker runs this query',
	'the queries say that no worker runs them');
($rc, $stdout, $stderr) =
  $source->psql('postgres', "SELECT streamagg.process('q')");
like($stderr, qr/streamagg must be loaded via shared_preload_libraries.*\n.*HINT:.*restart/s,
	'process() refuses with the hint');

$source->adjust_conf('postgresql.conf', 'shared_preload_libraries', "'streamagg'");
$source->restart;
is($source->safe_psql('postgres', "SELECT streamagg.wait('q', '30 seconds')"),
	't', 'with the preload back, the worker catches up');
is($source->safe_psql('postgres', 'SELECT n, s FROM q'),
	'1001|501501', 'every event inserted without the preload is counted');
is($source->safe_psql('postgres', 'SELECT status FROM streamagg.queries'),
	'running', 'the query runs again');
$source->stop;
done_testing();
