# Helpers shared by the TAP tests of streamagg (test/t/*.pl).
#
#   my $node = StreamaggTest->new_node('name', 'restart_after_crash = on');
#   my $p = StreamaggTest->start_producers($node, 'events', rate => 200);
#   StreamaggTest->stop_producers($p);
#   StreamaggTest->sink_matches_source($node, 'events', 'q_out', '10 seconds');
#   StreamaggTest->create_slow_aggregate($node);
#   my $pid = StreamaggTest->worker_in_slow_batch($node, 'events');
package StreamaggTest;

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# A started node with streamagg preloaded and the extension created in the
# "postgres" database. Extra lines are appended to postgresql.conf.
sub new_node
{
	my ($class, $name, @conf) = @_;

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		join("\n", "shared_preload_libraries = 'streamagg'", @conf) . "\n");
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION streamagg');
	return $node;
}

# Start pgbench in the background as a stream of producers on table
# $source (ts timestamptz, k text, v int): 4 clients, $params{rate}
# transactions per second in total, until stop_producers or until the server
# goes away (pgbench clients then abort, which is expected). The mix:
#   - 5-row inserts, committed at once;
#   - 1-row inserts that sleep before committing, so that transactions
#     commit out of order;
#   - inserts that roll back (v = 1000000: would show in any sum).
# With savepoints => 1 (the source then needs a column "uid int UNIQUE"),
# also transactions that roll back a savepoint per statement, as psql's
# ON_ERROR_ROLLBACK, JDBC autosave or PL/pgSQL EXCEPTION blocks do, and
# inserts that hit unique violations: in EXCEPTION blocks, and with
# ON CONFLICT DO NOTHING racing each other (speculative inserts killed).
# Event times are spread over 2 minutes from 2023-11-14 22:13:20 UTC.
sub start_producers
{
	my ($class, $node, $source, %params) = @_;
	my $rate = $params{rate} // 200;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	my @weights = ('insert.sql@8', 'slow.sql@3', 'rollback.sql@1');

	my %scripts = (
		'insert.sql' => qq{
\\set k random(0, 9)
\\set v random(1, 1000)
\\set t random(0, 119)
INSERT INTO $source (ts, k, v)
  SELECT to_timestamp(1700000000 + :t), 'k' || :k, :v + g
  FROM generate_series(1, 5) g;
},
		'slow.sql' => qq{
\\set k random(0, 9)
\\set v random(1, 1000)
\\set t random(0, 119)
BEGIN;
INSERT INTO $source (ts, k, v) VALUES (to_timestamp(1700000000 + :t), 'k' || :k, :v);
SELECT pg_sleep(0.05);
COMMIT;
},
		'rollback.sql' => qq{
\\set k random(0, 9)
\\set t random(0, 119)
BEGIN;
INSERT INTO $source (ts, k, v) VALUES (to_timestamp(1700000000 + :t), 'k' || :k, 1000000);
ROLLBACK;
});
	if ($params{savepoints})
	{
		$scripts{'savepoint.sql'} = qq{
\\set k random(0, 9)
\\set v random(1, 1000)
\\set t random(0, 119)
BEGIN;
SAVEPOINT a;
INSERT INTO $source (ts, k, v) VALUES (to_timestamp(1700000000 + :t), 'k' || :k, 1000000);
ROLLBACK TO a;
INSERT INTO $source (ts, k, v) VALUES (to_timestamp(1700000000 + :t), 'k' || :k, :v);
SAVEPOINT b;
INSERT INTO $source (ts, k, v) VALUES (to_timestamp(1700000000 + :t), 'k' || :k, :v + 1);
RELEASE b;
SAVEPOINT c;
INSERT INTO $source (ts, k, v) VALUES (to_timestamp(1700000000 + :t), 'k' || :k, 1000000);
ROLLBACK TO c;
COMMIT;
};
		$scripts{'conflict.sql'} = qq{
\\set k random(0, 9)
\\set v random(1, 1000)
\\set t random(0, 119)
\\set u random(1, 3000)
DO \$\$
BEGIN
	BEGIN
		INSERT INTO $source (ts, k, v, uid) VALUES (to_timestamp(1700000000 + :t), 'k' || :k, :v, :u);
	EXCEPTION WHEN unique_violation THEN
		INSERT INTO $source (ts, k, v) VALUES (to_timestamp(1700000000 + :t), 'k' || :k, :v);
	END;
END \$\$;
INSERT INTO $source (ts, k, v, uid) VALUES (to_timestamp(1700000000 + :t), 'k' || :k, :v, :u + 3000)
  ON CONFLICT (uid) DO NOTHING;
};
		push @weights, 'savepoint.sql@2', 'conflict.sql@3';
	}
	while (my ($file, $text) = each %scripts)
	{
		PostgreSQL::Test::Utils::append_to_file("$dir/$file", $text);
	}

	my $p = { out => '', err => '' };
	$p->{handle} = IPC::Run::start(
		[
			$node->installed_command('pgbench'), '-n',
			'-c', '4',
			'-T', '300',
			'-R', $rate,
			(map { ('-f', "$dir/$_") } @weights),
			'-h', $node->host,
			'-p', $node->port,
			'postgres'
		],
		'<', \undef,
		'>', \$p->{out},
		'2>', \$p->{err},
		IPC::Run::timeout(2 * $PostgreSQL::Test::Utils::timeout_default));
	return $p;
}

# Stop the producers: at once if they still run, otherwise (the server was
# restarted under them) collect their exit. Their exit status is not
# checked: clients abort when the server goes away. SIGTERM, not SIGINT:
# pgbench ignores SIGINT when started from a background job.
sub stop_producers
{
	my ($class, $p) = @_;

	eval { $p->{handle}->kill_kill(grace => 5); };
	eval { $p->{handle}->finish; };
	note "pgbench: $p->{err}" if $p->{err} ne '';
	return;
}

# Poll until $source has at least $n rows (the producers are running).
sub wait_for_rows
{
	my ($class, $node, $source, $n) = @_;

	$node->poll_query_until('postgres',
		"SELECT count(*) >= $n FROM $source")
	  or die "timed out waiting for $n rows in $source";
	return;
}

# An aggregate public.count_slowly(int) that counts rows like count(*), but
# sleeps 2 seconds on a row with value -1. A query using it, fed such a
# "marker" row, is for sure in the middle of a batch while the marker's row is
# aggregated: the place to crash, restart or kill.
sub create_slow_aggregate
{
	my ($class, $node) = @_;

	$node->safe_psql(
		'postgres', q{
		CREATE FUNCTION public.count_slowly(state bigint, v int)
		RETURNS bigint LANGUAGE plpgsql AS $$
		BEGIN
			IF v = -1 THEN
				PERFORM pg_sleep(2);
			END IF;
			RETURN state + 1;
		END $$;
		CREATE AGGREGATE public.count_slowly(int) (
			SFUNC = public.count_slowly, STYPE = bigint, INITCOND = '0');
	});
	return;
}

# Insert a marker row (v = -1) into $source and return the pid of the
# streamagg worker once it sleeps in count_slowly, in the middle of the batch.
sub worker_in_slow_batch
{
	my ($class, $node, $source) = @_;
	my $sleeping = q{
		SELECT pid FROM pg_stat_activity
		 WHERE backend_type LIKE 'streamagg worker%' AND wait_event = 'PgSleep'};

	$node->safe_psql('postgres',
		"INSERT INTO $source (ts, k, v) VALUES (to_timestamp(1700000000), 'k0', -1)");
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM ($sleeping) w")
	  or die "the streamagg worker did not reach the marker row";
	return $node->safe_psql('postgres', $sleeping);
}

# How many rows differ between the results of two queries, both ways and
# counting duplicates: 0 when a sink ($actual) holds exactly what plain SQL
# computes from its source ($expected).
sub differences
{
	my ($class, $node, $db, $actual, $expected) = @_;

	return $node->safe_psql($db,
		"SELECT count(*) FROM (($actual EXCEPT ALL $expected) UNION ALL ($expected EXCEPT ALL $actual)) d"
	);
}

# Check, after streamagg.wait(), that an update-mode sink without watermark
# (count(*) AS n, sum(v) AS s, group by k, tumbling windows of $size) holds
# exactly the aggregates of every committed event of $source: same totals,
# and the same rows window by window. Nothing lost, nothing counted twice.
sub sink_matches_source
{
	my ($class, $node, $source, $sink, $size, $name) = @_;

	is( $node->safe_psql(
			'postgres',
			"SELECT coalesce(sum(n), 0) || ' rows, sum ' || coalesce(sum(s), 0)
			   FROM $sink"),
		$node->safe_psql(
			'postgres',
			"SELECT count(*) || ' rows, sum ' || coalesce(sum(v), 0)
			   FROM $source"),
		"$name: sink totals equal source totals");

	my $expected = qq{
		SELECT to_timestamp(floor(extract(epoch FROM ts)
								  / extract(epoch FROM interval '$size'))
							* extract(epoch FROM interval '$size')) AS window_start,
			   k, count(*) AS n, sum(v) AS s
		  FROM $source GROUP BY 1, 2};
	my $actual = "SELECT window_start, k, n, s FROM $sink";
	is( $node->safe_psql(
			'postgres', qq{
		SELECT string_agg(side || ' ' || r::text, E'\\n' ORDER BY r::text)
		  FROM ((SELECT 'only in sink:', r FROM ($actual EXCEPT ALL $expected) r)
				UNION ALL
				(SELECT 'missing in sink:', r FROM ($expected EXCEPT ALL $actual) r))
			   AS d(side, r)}),
		'',
		"$name: sink equals source window by window");
	return;
}

1;
