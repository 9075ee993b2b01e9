# A scheduled query restored into a new database of the same cluster runs
# without a server restart (issue 14, item 8: it never ran until a restart
# or resume(), while its status said 'running').  Restoring loads
# streamagg's catalog with COPY, which fires the catalog's trigger that asks
# for workers.  A database created from a template with queries is found by
# the launcher, and CREATE DATABASE ... TEMPLATE is not refused because the
# template's workers are connected to it.  In every copy, every event is
# counted once: those consumed before the copy are not counted again.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;

my $node = StreamaggTest->new_node('restore_db');
$node->safe_psql(
	'postgres', q{
	CREATE DATABASE origin;
});
$node->safe_psql(
	'origin', q{
	CREATE EXTENSION streamagg;
	CREATE TABLE ev (ts timestamptz, k text, v int);
	SELECT streamagg.create_query(name => 'totals', source => 'ev', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
		output_mode => 'complete', trigger_interval => '0');
	INSERT INTO ev (ts, k, v) SELECT '2024-01-01', 'k' || (g % 4), g FROM generate_series(1, 100) g;
});
is($node->safe_psql('origin', "SELECT streamagg.wait('totals', '30 seconds')"),
	't', 'the query runs in its database');

# rows that differ between the sink and plain SQL over the source
sub sink_differences
{
	my ($node, $db) = @_;
	return StreamaggTest->differences($node, $db, 'SELECT k, n, s FROM totals',
		'SELECT k, count(*), sum(v) FROM ev GROUP BY k');
}

# pg_dump and restore into a new database
my $dump = $node->basedir . '/origin.dump';
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('origin') ],
	'pg_dump of a database with a scheduled query');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(
	[ 'pg_restore', '-d', $node->connstr('restored'), $dump ],
	'pg_restore into a new database');
$node->safe_psql('restored',
	"INSERT INTO ev (ts, k, v) SELECT '2024-01-01', 'k' || (g % 4), g FROM generate_series(101, 150) g");
is($node->safe_psql('restored', "SELECT streamagg.wait('totals', '30 seconds')"),
	't', 'the restored query runs without a restart');
is(sink_differences($node, 'restored'), '0',
	'the restored sink counts every event once');
is($node->safe_psql('restored', 'SELECT status, last_batch_id > 0 FROM streamagg.queries'),
	'running|t', 'the restored query went on from its restored position');

# a database created from a template that has queries and workers
$node->safe_psql('postgres', 'CREATE DATABASE copied TEMPLATE origin');
pass('CREATE DATABASE ... TEMPLATE is not refused because of the template\'s workers');
$node->safe_psql('copied',
	"INSERT INTO ev (ts, k, v) SELECT '2024-01-01', 'k' || (g % 4), g FROM generate_series(101, 120) g");
is($node->safe_psql('copied', "SELECT streamagg.wait('totals', '60 seconds')"),
	't', 'the copied query runs');
is(sink_differences($node, 'copied'), '0',
	'the copied sink counts every event once');

# and the template's own query goes on
$node->safe_psql('origin',
	"INSERT INTO ev (ts, k, v) VALUES ('2024-01-01', 'k9', 9)");
is($node->safe_psql('origin', "SELECT streamagg.wait('totals', '30 seconds')"),
	't', 'the template\'s query runs again');
is(sink_differences($node, 'origin'), '0',
	'the template\'s sink counts every event once');

$node->stop;
done_testing();
