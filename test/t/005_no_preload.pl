# streamagg must be preloaded (issue: CREATE EXTENSION without the library
# in shared_preload_libraries fails with a hint saying how to preload it),
# and nothing of the extension is left behind by the failed attempt.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
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
done_testing();
