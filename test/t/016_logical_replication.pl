# Sources and logical replication (issue 14, item 5).  A publisher's source
# replicated to a subscriber's source: streamagg_xid carried the publisher's
# transaction ids into the subscriber, where they meant nothing (10 of 10
# rows lost after the subscription was disabled for a while), and apply
# workers did not wake the subscriber's workers.
#
# Now: a publication that leaves streamagg_xid out (a column list) lets the
# subscriber's default stamp each row with the applying transaction's id,
# the index's insert path wakes the subscriber's workers, and every
# replicated row is counted once, also across a disabled subscription.  A
# publication that sends streamagg_xid is refused row by row by the
# subscriber's source, with the reason in its log, rather than counted
# wrongly; and a source takes only inserts (publish = 'insert').
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;

my $publisher = StreamaggTest->new_node('publisher', 'wal_level = logical',
	'max_wal_senders = 10', 'max_replication_slots = 10', 'max_worker_processes = 16');
my $subscriber = StreamaggTest->new_node('subscriber', 'max_worker_processes = 16');

my $table = 'CREATE TABLE ev (ts timestamptz, k text, v int)';
my $query = q{SELECT streamagg.create_query(name => 'totals', source => 'ev', event_time => 'ts',
	aggregates => 'count(*) AS n, sum(v) AS s', group_by => 'k',
	output_mode => 'complete', trigger_interval => '0')};
$publisher->safe_psql('postgres', "$table; $query");
$subscriber->safe_psql('postgres', "$table; $query");

$publisher->safe_psql('postgres',
	"CREATE PUBLICATION events FOR TABLE ev (ts, k, v) WITH (publish = 'insert')");
my $connstr = $publisher->connstr . ' dbname=postgres';
$subscriber->safe_psql('postgres',
	"CREATE SUBSCRIPTION events CONNECTION '$connstr' PUBLICATION events");
$subscriber->wait_for_subscription_sync($publisher, 'events');

sub publish
{
	my ($from, $to) = @_;
	for my $i ($from .. $to)
	{
		$publisher->safe_psql('postgres',
			"INSERT INTO ev (ts, k, v) SELECT '2024-01-01', 'k' || (g % 3), g FROM generate_series($i * 10, $i * 10 + 9) g"
		);
	}
	return;
}

# rows that differ between the sink and plain SQL over the source
sub sink_differences
{
	my ($node, $db) = @_;
	return StreamaggTest->differences($node, $db, 'SELECT k, n, s FROM totals',
		'SELECT k, count(*), sum(v) FROM ev GROUP BY k');
}

publish(1, 20);
$publisher->wait_for_catchup('events');
is($subscriber->safe_psql('postgres', 'SELECT count(*) FROM ev'), '200',
	'the subscriber received every row');
is($subscriber->safe_psql('postgres', "SELECT streamagg.wait('totals', '10 seconds')"),
	't', 'the subscriber\'s query consumed them');
is(sink_differences($subscriber, 'postgres'), '0',
	'the subscriber\'s sink counts every replicated row once');
is($subscriber->safe_psql('postgres',
		'SELECT count(*) FROM ev e WHERE e.streamagg_xid IS NULL'),
	'0', 'replicated rows carry the subscriber\'s transaction ids');

# the subscription disabled for a while, then enabled again
$subscriber->safe_psql('postgres', 'ALTER SUBSCRIPTION events DISABLE');
publish(21, 30);
$subscriber->safe_psql('postgres',
	"INSERT INTO ev (ts, k, v) VALUES ('2024-01-01', 'local', 1)");
is($subscriber->safe_psql('postgres', "SELECT streamagg.wait('totals', '10 seconds')"),
	't', 'a local event is consumed meanwhile');
$subscriber->safe_psql('postgres', 'ALTER SUBSCRIPTION events ENABLE');
$publisher->wait_for_catchup('events');
is($subscriber->safe_psql('postgres', "SELECT streamagg.wait('totals', '10 seconds')"),
	't', 'the rows replicated after the pause are consumed');
is(sink_differences($subscriber, 'postgres'), '0',
	'... each once: the sink still equals the source');
is($subscriber->safe_psql('postgres', 'SELECT count(*) FROM ev'), '301',
	'the subscriber has every row');

# a row replicated while the worker idles is processed
my $before = $subscriber->safe_psql('postgres',
	"SELECT last_batch_id FROM streamagg.queries WHERE name = 'totals'");
publish(31, 31);
$publisher->wait_for_catchup('events');
ok( $subscriber->poll_query_until(
		'postgres',
		"SELECT last_batch_id > $before FROM streamagg.queries WHERE name = 'totals'"),
	'the replicated row was processed');

# a publication that sends streamagg_xid: refused row by row, with the reason
$publisher->safe_psql('postgres',
	"CREATE TABLE ev2 (ts timestamptz, k text, v int);
	 SELECT streamagg.create_query(name => 'totals2', source => 'ev2', event_time => 'ts',
		aggregates => 'count(*) AS n', output_mode => 'complete');
	 CREATE PUBLICATION everything FOR TABLE ev2");
$subscriber->safe_psql('postgres',
	"CREATE TABLE ev2 (ts timestamptz, k text, v int);
	 SELECT streamagg.create_query(name => 'totals2', source => 'ev2', event_time => 'ts',
		aggregates => 'count(*) AS n', output_mode => 'complete');
	 CREATE SUBSCRIPTION everything CONNECTION '$connstr' PUBLICATION everything
	   WITH (copy_data = false)");
$publisher->safe_psql('postgres',
	"INSERT INTO ev2 (ts, k, v) VALUES ('2024-01-01', 'x', 1)");
ok( $subscriber->wait_for_log(
		qr/a row inserted into source "ev2" must carry its transaction's id in "streamagg_xid"/),
	'the subscriber refuses rows carrying the publisher\'s transaction ids, and says why');
is($subscriber->safe_psql('postgres', 'SELECT count(*) FROM ev2'), '0',
	'none of them reached the source');

$subscriber->stop;
$publisher->stop;
done_testing();
