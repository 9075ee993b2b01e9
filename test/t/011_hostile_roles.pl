# Hostile roles (DESIGN.md 3.9, docs/security.md).  Mallory is an ordinary
# role that can create tables, functions, types and aggregates in her own
# schema.  Through every path where streamagg touches an object she owns --
# indexes on her source, her aggregates' state types, the column types and
# policies of her source, her sink's triggers, her retention -- she plants a
# function, m.pwn(), that records who runs it and, if that role is a
# superuser, makes her one.  Each attack is run the way a victim would run
# it: by the worker (the bootstrap superuser), by a superuser calling
# process() or wait(), by a monitoring role.  After each one she is still not
# a superuser and her code ran only as herself.
#
# Then the attacks on other roles' queries: settings changed by her
# aggregates do not leak into the next trigger, her stuck triggers are ended
# by streamagg.trigger_timeout and do not hold Alice's query back, and she
# sees nothing of Alice's queries.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggTest;
use Test::More;

my $node = StreamaggTest->new_node('hostile',
	"streamagg.trigger_timeout = '2s'", "timezone = 'UTC'");

$node->safe_psql(
	'postgres', q{
	CREATE ROLE mallory LOGIN;
	CREATE ROLE alice LOGIN;
	CREATE ROLE monitor LOGIN IN ROLE pg_read_all_stats;
	CREATE SCHEMA m AUTHORIZATION mallory;
	CREATE SCHEMA a AUTHORIZATION alice;
	GRANT USAGE ON SCHEMA m TO PUBLIC;
});

# The canary: records who runs it; as a superuser it makes mallory one.
$node->safe_psql(
	'postgres', q{
	SET ROLE mallory;
	CREATE TABLE m.seen (who text, path text);
	GRANT INSERT, SELECT ON m.seen TO PUBLIC;
	CREATE FUNCTION m.pwn(path text) RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO m.seen VALUES (current_user, path);
		IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
			ALTER ROLE mallory SUPERUSER;
		END IF;
		RETURN true;
	EXCEPTION WHEN OTHERS THEN
		RETURN true;
	END $$;
	CREATE TABLE m.src (ts timestamptz, v int);
});

sub mallory_is_superuser
{
	return $node->safe_psql('postgres',
		"SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'");
}

# Who ran mallory's code along one path (sorted, distinct).
sub ran_as
{
	my ($path) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(DISTINCT who, ',' ORDER BY who), '(nobody)')
		   FROM m.seen WHERE path = '$path'");
}

# Each attack starts from a clean slate, whatever the previous one achieved.
# (retried: a successful attack may be changing the role concurrently)
sub attack_begins
{
	for my $try (1 .. 50)
	{
		return
		  if $node->psql('postgres',
			'ALTER ROLE mallory NOSUPERUSER; TRUNCATE m.seen') == 0;
	}
	die 'could not reset mallory';
}

sub as_mallory
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', "SET ROLE mallory; $sql");
}

# --- 1. Index expressions and predicates on the source -------------------
# Summarizing the source's block ranges must not evaluate indexes that the
# source's owner wrote: neither as the worker's superuser, nor as another
# role whose query reads the source (alice's).
attack_begins();
as_mallory(
	q{
	CREATE FUNCTION m.idx(x xid8) RETURNS xid8 IMMUTABLE LANGUAGE plpgsql AS $$
	BEGIN PERFORM m.pwn('index'); RETURN x; END $$;
	CREATE FUNCTION m.pred(x xid8) RETURNS boolean IMMUTABLE LANGUAGE plpgsql AS $$
	BEGIN PERFORM m.pwn('index'); RETURN true; END $$;
	SELECT streamagg.create_query(name => 'mq', source => 'm.src', event_time => 'ts',
		aggregates => 'count(*) AS n', output_mode => 'update', sink => 'm.mq_out');
	CREATE INDEX m_src_expr ON m.src USING streamagg_brin
		((m.idx(streamagg_xid)) streamagg.xid8_minmax_ops) WITH (pages_per_range = 1);
	CREATE INDEX m_src_pred ON m.src USING streamagg_brin
		(streamagg_xid streamagg.xid8_minmax_ops) WITH (pages_per_range = 1)
		WHERE m.pred(streamagg_xid);
	GRANT SELECT ON m.src TO alice;
});
$node->safe_psql('postgres', q{
	SET ROLE alice;
	SELECT streamagg.create_query(name => 'aq_on_m', source => 'm.src', event_time => 'ts',
		aggregates => 'count(*) AS n', output_mode => 'update', sink => 'a.aq_on_m_out',
		trigger_interval => '0');
});
# Inserting rows runs a table's index expressions as the inserting role:
# that is PostgreSQL's rule, so here mallory is the only producer.
as_mallory(
	"INSERT INTO m.src (ts, v) SELECT '2024-01-01', g FROM generate_series(1, 3000) g");
is($node->safe_psql('postgres', "SELECT streamagg.wait('aq_on_m', '30 seconds')"),
	't', "the worker processed alice's query of the source with hostile indexes");
as_mallory(
	"INSERT INTO m.src (ts, v) SELECT '2024-01-01', g FROM generate_series(1, 3000) g");
$node->safe_psql('postgres',
	"SELECT streamagg.process('aq_on_m'); SELECT streamagg.process('mq')");
is(mallory_is_superuser(), 'f',
	'index expressions and predicates: mallory is not superuser');
is(ran_as('index'), 'mallory',
	'index expressions and predicates ran only as their owner');
is($node->safe_psql('postgres', 'SELECT sum(n) FROM m.mq_out'),
	'6000', 'the query counted every row');
is($node->safe_psql('postgres', 'SELECT sum(n) FROM a.aq_on_m_out'),
	'6000', "alice's query counted every row");
$node->safe_psql('postgres', "SELECT streamagg.drop_query('aq_on_m')");
as_mallory('DROP INDEX m.m_src_expr, m.m_src_pred');

# --- 2. Input functions reached by compiling a query -----------------------
# The initial value of an aggregate's state is read by its type's input
# function, here a domain whose check runs mallory's code.
as_mallory(
	q{
	CREATE FUNCTION m.chk(bigint) RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN PERFORM m.pwn('compile'); RETURN true; END $$;
	CREATE DOMAIN m.counter AS bigint CHECK (m.chk(VALUE));
	CREATE FUNCTION m.step(m.counter, int) RETURNS m.counter LANGUAGE sql
		AS 'SELECT ($1 + 1)::bigint::m.counter';
	CREATE AGGREGATE m.cnt(int) (sfunc = m.step, stype = m.counter, initcond = '0');
	SELECT streamagg.create_query(name => 'mq_domain', source => 'm.src', event_time => 'ts',
		aggregates => 'm.cnt(v) AS n', output_mode => 'update', sink => 'm.mq_domain_out',
		trigger_interval => '0');
});
attack_begins();
as_mallory("INSERT INTO m.src (ts, v) VALUES ('2024-01-01', 1)");
is($node->safe_psql('postgres', "SELECT streamagg.wait('mq_domain', '30 seconds')"),
	't', 'the worker compiled and ran the query');
# a new session compiles the query again, as a superuser calls process()
$node->safe_psql('postgres', "SELECT streamagg.process('mq_domain')");
is(mallory_is_superuser(), 'f', 'domain input functions: mallory is not superuser');
is(ran_as('compile'), 'mallory', 'domain checks ran only as their owner');

# --- 3. wait() reads the source: as the query's owner, never the caller ---
# An RLS policy of the source would run its function as a monitoring role
# calling wait(); a cast planted on streamagg_xid as a superuser.
as_mallory(
	q{
	CREATE FUNCTION m.pol() RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN PERFORM m.pwn('wait'); RETURN true; END $$;
	GRANT SELECT ON m.src TO PUBLIC;
	ALTER TABLE m.src ENABLE ROW LEVEL SECURITY;
	CREATE POLICY everything ON m.src USING (m.pol());
});
attack_begins();
# paused, so that wait() finds pending events and reads them
$node->safe_psql('postgres', "SELECT streamagg.pause('mq'); SELECT streamagg.pause('mq_domain')");
as_mallory("INSERT INTO m.src (ts, v) VALUES ('2024-01-01', 1)");
$node->psql('postgres', "SET ROLE monitor; SELECT streamagg.wait('mq', '1 second')");
isnt(ran_as('wait'), 'monitor', 'wait() never runs source policies as the caller');
unlike(ran_as('wait'), qr/monitor/, 'wait() ran nothing as the monitoring role');
as_mallory('DROP POLICY everything ON m.src; ALTER TABLE m.src DISABLE ROW LEVEL SECURITY');

as_mallory(
	q{
	CREATE TYPE m.x8 AS (x xid8);
	CREATE FUNCTION m.tox(m.x8) RETURNS xid8 LANGUAGE plpgsql AS $$
	BEGIN PERFORM m.pwn('cast'); RETURN $1.x; END $$;
	CREATE CAST (m.x8 AS xid8) WITH FUNCTION m.tox(m.x8) AS IMPLICIT;
});
attack_begins();
my ($idx) = $node->safe_psql('postgres',
	"SELECT indexrelid::regclass FROM pg_index WHERE indrelid = 'm.src'::regclass");
as_mallory(
	qq{
	DROP INDEX $idx;
	ALTER TABLE m.src ALTER COLUMN streamagg_xid DROP DEFAULT,
		ALTER COLUMN streamagg_xid TYPE m.x8 USING ROW(streamagg_xid)::m.x8,
		ALTER COLUMN streamagg_xid SET DEFAULT ROW(pg_catalog.pg_current_xact_id())::m.x8;
});
as_mallory("INSERT INTO m.src (ts, v) VALUES ('2024-01-01', 1)");
$node->psql('postgres', "SELECT streamagg.wait('mq', '1 second')");
$node->psql('postgres', "SELECT streamagg.process('mq')");
is(mallory_is_superuser(), 'f', 'casts on the source: mallory is not superuser');
unlike(ran_as('cast'), qr/postgres/, 'casts on the source never ran as the superuser');
my ($rc, $out, $err) = $node->psql('postgres', "SELECT streamagg.process('mq')");
like($err, qr/streamagg_xid/, 'a source whose streamagg_xid is no longer xid8 is refused, naming the column');

# --- 4. Settings changed by user code do not outlive its trigger ---------
# Mallory's aggregates call set_config(..., false): in the worker that runs
# Alice's query next, TimeZone would shift Alice's day buckets, and
# default_transaction_read_only would stop every query of the database.
as_mallory(
	q{
	CREATE TABLE m.src2 (ts timestamptz, v int);
	SELECT streamagg.create_query(name => 'mq_tz', source => 'm.src2', event_time => 'ts',
		aggregates => $$count(*) FILTER (WHERE pg_catalog.set_config('TimeZone', 'Pacific/Kiritimati', false) IS NOT NULL) AS n$$,
		output_mode => 'update', sink => 'm.mq_tz_out', trigger_interval => '0');
	SELECT streamagg.create_query(name => 'mq_ro', source => 'm.src2', event_time => 'ts',
		aggregates => $$count(*) FILTER (WHERE pg_catalog.set_config('default_transaction_read_only', 'on', false) IS NOT NULL) AS n$$,
		output_mode => 'update', sink => 'm.mq_ro_out', trigger_interval => '0');
});
$node->safe_psql(
	'postgres', q{
	SET ROLE alice;
	CREATE TABLE a.src (ts timestamptz, v int);
	SELECT streamagg.create_query(name => 'aq', source => 'a.src', event_time => 'ts',
		aggregates => 'count(*) AS n', group_by => 'date_trunc(''day'', ts)::text AS day',
		output_mode => 'update', sink => 'a.aq_out', trigger_interval => '0');
});
as_mallory("INSERT INTO m.src2 VALUES ('2024-05-01 20:00+00', 1)");
is($node->safe_psql('postgres',
		"SELECT streamagg.wait('mq_tz', '30 seconds') AND streamagg.wait('mq_ro', '30 seconds')"),
	't', "mallory's setting-changing queries ran");
$node->safe_psql('postgres',
	"SET ROLE alice; INSERT INTO a.src VALUES ('2024-05-01 20:00+00', 1)");
is($node->safe_psql('postgres', "SELECT streamagg.wait('aq', '30 seconds')"),
	't', "alice's query still runs after mallory's set default_transaction_read_only");
is($node->safe_psql('postgres', 'SELECT day, n FROM a.aq_out'),
	'2024-05-01 00:00:00+00|1',
	"alice's day buckets are computed in the server's TimeZone, not mallory's");
$node->safe_psql('postgres', "SELECT streamagg.pause('mq_tz')");
as_mallory("INSERT INTO m.src2 VALUES ('2024-05-01 21:00+00', 1)");
is( $node->safe_psql(
		'postgres', "SELECT streamagg.process('mq_tz'); SHOW TimeZone"),
	"1\nUTC", "process() of her query leaves the caller's TimeZone alone");
is($node->safe_psql('postgres',
		"SELECT string_agg(DISTINCT status, ',') FROM streamagg.queries WHERE name IN ('aq', 'mq_ro')"),
	'running', 'the queries run, without errors');

# --- 5. A stuck trigger holds back only its own query ------------------
# streamagg.trigger_timeout (2 s here) cancels it, the error is recorded and
# the query retried after a backoff; the database's other queries run on
# the pool's other workers meanwhile.
as_mallory(
	q{
	CREATE TABLE m.src3 (ts timestamptz, v int);
	SELECT streamagg.create_query(name => 'mq_slow', source => 'm.src3', event_time => 'ts',
		aggregates => 'count(*) FILTER (WHERE pg_catalog.pg_sleep(60) IS NOT NULL) AS n',
		output_mode => 'update', sink => 'm.mq_slow_out', trigger_interval => '0');
	INSERT INTO m.src3 VALUES ('2024-05-01', 1);
});
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
  or die 'the slow trigger did not start';
$node->safe_psql('postgres',
	"SET ROLE alice; INSERT INTO a.src VALUES ('2024-05-02 10:00+00', 1)");
is($node->safe_psql('postgres', "SELECT streamagg.wait('aq', '10 seconds')"),
	't', "alice's query runs while mallory's trigger sleeps");
ok( $node->poll_query_until(
		'postgres',
		"SELECT last_error LIKE '%streamagg.trigger_timeout (2000 ms)%' FROM streamagg.queries WHERE name = 'mq_slow'"),
	'the slow trigger is cancelled after streamagg.trigger_timeout, with that error');
ok( $node->log_contains(
		qr/ERROR:  canceling statement due to user request\n[^\n]*CONTEXT:(?:[^\n]*\n\t)*[^\n]*streamagg trigger of query "mq_slow" in database "postgres"/
	),
	'the log names the query and the database of the failed trigger');
$node->safe_psql('postgres', "SELECT streamagg.drop_query('mq_slow')");

# A trigger that catches its cancellation is cancelled again every second,
# and after twice the timeout its worker is terminated; the next worker
# records that as the query's error.
as_mallory(
	q{
	CREATE FUNCTION m.stubborn() RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
		LOOP
			BEGIN
				PERFORM pg_catalog.pg_sleep(60);
			EXCEPTION WHEN query_canceled THEN
				NULL;
			END;
		END LOOP;
	END $$;
	TRUNCATE m.src3;
	SELECT streamagg.create_query(name => 'mq_stubborn', source => 'm.src3', event_time => 'ts',
		aggregates => 'count(*) FILTER (WHERE m.stubborn()) AS n',
		output_mode => 'update', sink => 'm.mq_stubborn_out', trigger_interval => '0');
	INSERT INTO m.src3 VALUES ('2024-05-01', 1);
});
$node->safe_psql('postgres',
	"SET ROLE alice; INSERT INTO a.src VALUES ('2024-05-03 10:00+00', 1)");
is($node->safe_psql('postgres', "SELECT streamagg.wait('aq', '10 seconds')"),
	't', "alice's query runs while mallory's trigger ignores cancellation");
ok( $node->poll_query_until(
		'postgres',
		"SELECT last_error LIKE '%its worker was terminated%' FROM streamagg.queries WHERE name = 'mq_stubborn'"),
	'a trigger that ignores cancellation ends its worker, and that is recorded');
ok($node->log_contains(qr/terminating background worker "streamagg worker/),
	'the worker was terminated');
$node->safe_psql('postgres', "SELECT streamagg.pause('mq_stubborn')");
$node->safe_psql('postgres',
	"SET ROLE alice; INSERT INTO a.src VALUES ('2024-05-04 10:00+00', 1)");
is($node->safe_psql('postgres', "SELECT streamagg.wait('aq', '10 seconds')"),
	't', "alice's query goes on with the pool restarted");
is($node->safe_psql('postgres', 'SELECT sum(n) FROM a.aq_out'),
	'4', "alice's sink counted each of her events once");

# --- 6. Sinks: function sinks, triggers on sink tables --------------------
# They run as the query's owner, restricted, when a superuser calls
# process(); a deferred trigger, which would fire at the caller's commit as
# the caller, is refused (PostgreSQL forbids queuing one in a
# security-restricted operation).
as_mallory(
	q{
	CREATE TABLE m.src4 (ts timestamptz, v int);
	CREATE TYPE m.row4 AS (n bigint);
	CREATE FUNCTION m.sink4(batch_id bigint, rows m.row4[]) RETURNS void
		LANGUAGE plpgsql AS $$ BEGIN PERFORM m.pwn('sink'); END $$;
	SELECT streamagg.create_query(name => 'mq_fsink', source => 'm.src4', event_time => 'ts',
		aggregates => 'count(*) AS n', output_mode => 'complete',
		sink_function => 'm.sink4');
	CREATE TABLE m.tsink (n bigint);
	CREATE FUNCTION m.on_sink() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM m.pwn('sink'); RETURN NULL; END $$;
	CREATE TRIGGER on_sink AFTER INSERT ON m.tsink FOR EACH ROW EXECUTE FUNCTION m.on_sink();
	SELECT streamagg.create_query(name => 'mq_tsink', source => 'm.src4', event_time => 'ts',
		aggregates => 'count(*) AS n', output_mode => 'complete', sink => 'm.tsink');
	CREATE TABLE m.dsink (n bigint);
	CREATE CONSTRAINT TRIGGER on_dsink AFTER INSERT ON m.dsink
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION m.on_sink();
	SELECT streamagg.create_query(name => 'mq_dsink', source => 'm.src4', event_time => 'ts',
		aggregates => 'count(*) AS n', output_mode => 'complete', sink => 'm.dsink');
	INSERT INTO m.src4 VALUES ('2024-05-01', 1);
});
attack_begins();
$node->safe_psql('postgres',
	"SELECT streamagg.process('mq_fsink'); SELECT streamagg.process('mq_tsink')");
($rc, $out, $err) = $node->psql('postgres', "SELECT streamagg.process('mq_dsink')");
like($err, qr/cannot fire deferred trigger within security-restricted operation/,
	'a deferred trigger on the sink is refused instead of firing at the caller\'s commit');
is(mallory_is_superuser(), 'f', 'sinks: mallory is not superuser');
is(ran_as('sink'), 'mallory', 'sink functions and sink triggers ran as the owner');

# --- 7. Retention deletes as the retention's owner --------------------------
as_mallory(
	q{
	CREATE FUNCTION m.on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM m.pwn('retention'); RETURN NULL; END $$;
	CREATE TRIGGER on_delete AFTER DELETE ON m.src4 FOR EACH STATEMENT
		EXECUTE FUNCTION m.on_delete();
	SELECT streamagg.set_retention('m.src4', '0 seconds');
});
attack_begins();
# every query of the source consumed its events (the refused one goes)
$node->safe_psql('postgres', "SELECT streamagg.drop_query('mq_dsink')");
is($node->safe_psql('postgres', 'SELECT streamagg.apply_retention() > 0'),
	't', 'a superuser applies every retention, which deletes events');
is(mallory_is_superuser(), 'f', 'retention: mallory is not superuser');
is(ran_as('retention'), 'mallory', 'the source\'s delete trigger ran as the retention\'s owner');

# --- 8. What mallory sees of alice --------------------------------------------
is($node->safe_psql('postgres',
		"SET ROLE mallory; SELECT count(*) FROM streamagg.queries WHERE owner = 'alice'::regrole"),
	'0', 'mallory sees none of alice\'s queries');
is($node->safe_psql('postgres',
		"SET ROLE mallory; SELECT count(*) FROM streamagg.progress p JOIN streamagg.query_def d USING (name) WHERE d.owner = 'alice'::regrole"),
	'0', '... nor their progress');
($rc, $out, $err) = $node->psql('postgres', "SET ROLE mallory; SELECT streamagg.process('aq')");
like($err, qr/permission denied for streaming query "aq"/, '... and may not run them');
is($node->safe_psql('postgres',
		"SET ROLE monitor; SELECT count(*) > 0 FROM streamagg.queries WHERE owner = 'alice'::regrole"),
	't', 'a member of pg_read_all_stats sees them');

$node->stop;
done_testing();
