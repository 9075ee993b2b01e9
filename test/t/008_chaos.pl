# Exactly once under chaos (DESIGN.md 3.8): random producers (several
# sessions, 5-row and 1-row transactions, slow commits so that they commit
# out of order, rollbacks, savepoints rolled back statement by statement,
# unique violations caught in PL/pgSQL EXCEPTION blocks, ON CONFLICT DO
# NOTHING inserts racing each other) while the server is stopped in immediate mode and
# the worker is killed with SIGKILL, three times each, and retention deletes
# consumed events all along.  Afterwards two queries over the source equal,
# window by window, a ledger of every committed event (kept by an ordinary
# trigger in the producers' transactions): nothing lost, nothing counted
# twice, and retention never removed an event before both queries had it.
# Two stateless queries move the events that pass a filter (one of them
# through a join to a dimension table) to sink tables: each sink holds
# exactly the ledger's rows that pass, each once.  A third keeps the first
# row of each (k, v) (dedup without watermark, its keys kept in the state
# across the crashes): its sink holds each distinct (k, v) once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;

my $node = StreamaggTest->new_node('chaos', 'restart_after_crash = on');
$node->safe_psql(
	'postgres', q{
	CREATE TABLE events (ts timestamptz, k text, v int, uid int UNIQUE);
	CREATE TABLE ledger (ts timestamptz, k text, v int);
	CREATE FUNCTION keep_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO ledger SELECT ts, k, v FROM new_rows;
		RETURN NULL;
	END $$;
	CREATE TRIGGER keep_ledger AFTER INSERT ON events
		REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
		EXECUTE FUNCTION keep_ledger();
	SELECT streamagg.create_query(
		name => 'q10', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s',
		group_by => 'k', window_size => '10 seconds', output_mode => 'update',
		sink => 'q10_out', trigger_interval => '0');
	SELECT streamagg.create_query(
		name => 'q30', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n, sum(v) AS s',
		group_by => 'k', window_size => '30 seconds', output_mode => 'complete',
		sink => 'q30_out', trigger_interval => '200 ms');
	CREATE TABLE key_groups (k text PRIMARY KEY, grp int);
	INSERT INTO key_groups SELECT 'k' || i, i % 3 FROM generate_series(0, 99) i;
	SELECT streamagg.create_query(
		name => 'moved', source => 'events', event_time => 'ts',
		aggregates => NULL, columns => 'ts, k, v', filter => 'v % 3 <> 0',
		trigger_interval => '0');
	SELECT streamagg.create_query(
		name => 'joined', source => 'events', event_time => 'ts',
		aggregates => NULL, columns => 'ts, events.k, v, g.grp',
		"join" => 'JOIN key_groups g ON g.k = events.k', filter => 'g.grp <> 1',
		trigger_interval => '100 ms');
	SELECT streamagg.create_query(
		name => 'distinct_kv', source => 'events', event_time => 'ts',
		aggregates => NULL, columns => 'k, v', dedup => 'k, v',
		trigger_interval => '0');
	SELECT streamagg.set_retention('events', '0 seconds');
});

# one of the database's workers (two queries: a pool of two)
my $worker_pid_query = q{
	SELECT pid FROM pg_stat_activity
	 WHERE backend_type LIKE 'streamagg worker%' AND datname = 'postgres'
	 ORDER BY random() LIMIT 1};

for my $round (1 .. 6)
{
	my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM ledger');
	my $producers = StreamaggTest->start_producers($node, 'events', savepoints => 1);
	StreamaggTest->wait_for_rows($node, 'ledger', $before + 700 + int(rand(700)));
	# retention runs while producers and the worker do
	$node->safe_psql('postgres', 'SELECT streamagg.apply_retention()');

	if ($round % 2)
	{
		$node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM ($worker_pid_query) w")
		  or die "no streamagg worker in pg_stat_activity";
		my $pid = $node->safe_psql('postgres', $worker_pid_query);
		ok(kill('KILL', $pid), "round $round: worker $pid killed");
		StreamaggTest->stop_producers($producers);
		ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
			"round $round: the server is back after the crash restart");
	}
	else
	{
		$node->stop('immediate');
		StreamaggTest->stop_producers($producers);
		$node->start;
		pass("round $round: the server was stopped in immediate mode and started");
	}
}

is($node->safe_psql('postgres', q{SELECT streamagg.wait('q10', '90 seconds')}),
	't', 'q10 caught up');
is($node->safe_psql('postgres', q{SELECT streamagg.wait('q30', '90 seconds')}),
	't', 'q30 caught up');
StreamaggTest->sink_matches_source($node, 'ledger', 'q10_out', '10 seconds',
	'q10 after the chaos');
StreamaggTest->sink_matches_source($node, 'ledger', 'q30_out', '30 seconds',
	'q30 after the chaos');
for my $q ('moved', 'joined', 'distinct_kv')
{
	is($node->safe_psql('postgres', "SELECT streamagg.wait('$q', '90 seconds')"),
		't', "$q caught up");
}
# each stateless sink holds exactly the rows it should: EXCEPT ALL both
# ways is empty, and the sink is not
my %expected_rows = (
	moved => q{SELECT ts, k, v FROM ledger WHERE v % 3 <> 0},
	joined => q{SELECT l.ts, l.k, l.v, g.grp FROM ledger l
		JOIN key_groups g ON g.k = l.k WHERE g.grp <> 1},
	distinct_kv => q{SELECT DISTINCT k, v FROM ledger});
for my $q (sort keys %expected_rows)
{
	my $expected = $expected_rows{$q};
	is( $node->safe_psql(
			'postgres', qq{
		SELECT (SELECT count(*) FROM (($expected) EXCEPT ALL TABLE $q) a),
		       (SELECT count(*) FROM (TABLE $q EXCEPT ALL ($expected)) b),
		       (SELECT count(*) > 0 FROM $q)}),
		'0|0|t', "$q holds each row it should exactly once");
}

# retention removed consumed events meanwhile (and only those: see above)
$node->safe_psql('postgres', 'SELECT streamagg.apply_retention()');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM events'), '<',
	$node->safe_psql('postgres', 'SELECT count(*) FROM ledger'),
	'retention deleted consumed events');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(DISTINCT status, ',') FROM streamagg.queries}),
	'running', 'all queries run without error');

$node->stop;
done_testing();
