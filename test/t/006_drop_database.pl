# A database's worker never blocks DROP DATABASE (DESIGN.md 4.1): the drop
# stops the worker first and keeps it stopped; other databases' workers go on.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('drop_database');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'streamagg'\n");
$node->start;

for my $db ('doomed', 'survivor')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql(
		$db, q{
		CREATE EXTENSION streamagg;
		CREATE TABLE events (ts timestamptz, v int);
		SELECT streamagg.create_query(name => 'q', source => 'events', event_time => 'ts',
			aggregates => 'sum(v) AS s', output_mode => 'complete',
			trigger_interval => '50 ms');
		INSERT INTO events (ts, v) VALUES (now(), 1);
	});
	is($node->safe_psql($db, q{SELECT streamagg.wait('q', '30 seconds')}),
		't', "worker of $db processes its query");
}

ok( $node->poll_query_until(
		'postgres', q{
		SELECT count(*) = 2 FROM pg_stat_activity
		 WHERE backend_type = 'streamagg worker'
		   AND datname IN ('doomed', 'survivor')}),
	'both databases have a worker');

my ($rc, $stdout, $stderr) = $node->psql('postgres', 'DROP DATABASE doomed');
is($rc, 0, 'DROP DATABASE succeeds while its worker runs');
is($stderr, '', 'without error') or diag $stderr;

$node->safe_psql('survivor', q{INSERT INTO events (ts, v) VALUES (now(), 41)});
is($node->safe_psql('survivor', q{SELECT streamagg.wait('q', '30 seconds')}),
	't', 'the other database goes on');
is($node->safe_psql('survivor', 'SELECT s FROM q'), '42', 'with exact results');

$node->stop;
done_testing();
