# A user-defined aggregate with an internal state (kept through its
# serialization functions, DESIGN.md 4.4) survives a restart and a crash:
# after each, the state is reloaded from streamagg.state_log and the stream goes
# on with exactly the values a plain GROUP BY gives over all the events.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use StreamaggTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = StreamaggTest->new_node('internal_state');
$node->safe_psql(
	'postgres', q{
	CREATE AGGREGATE my_avg(numeric) (sfunc = numeric_avg_accum, stype = internal,
		finalfunc = numeric_avg, serialfunc = numeric_avg_serialize,
		deserialfunc = numeric_avg_deserialize, combinefunc = numeric_avg_combine);
	CREATE TABLE measures (ts timestamptz, k int, x numeric);
	SELECT streamagg.create_query(name => 'q', source => 'measures', event_time => 'ts',
		aggregates => 'my_avg(x) AS mean, count(*) AS n', group_by => 'k',
		window_size => '1 hour', output_mode => 'update');
});

my $expected = q{
	SELECT string_agg(k || ':' || n || ':' || mean, ',' ORDER BY k) FROM (
		SELECT k, count(*) AS n, avg(x) AS mean FROM measures GROUP BY k) e};
my $actual = q{SELECT string_agg(k || ':' || n || ':' || mean, ',' ORDER BY k) FROM q};

my $batch = 0;
for my $stop ('none', 'fast', 'immediate')
{
	if ($stop ne 'none')
	{
		$node->stop($stop);
		$node->start;
	}
	$batch++;
	$node->safe_psql('postgres',
		"INSERT INTO measures SELECT '2024-05-01 10:00+00', g % 3, g / 7.0 + $batch "
		  . "FROM generate_series(1, 100) g");
	$node->safe_psql('postgres', q{SELECT streamagg.process('q')});
	is($node->safe_psql('postgres', $actual),
		$node->safe_psql('postgres', $expected),
		"after stop '$stop': my_avg continues from its stored state");
}

$node->stop;
done_testing();
