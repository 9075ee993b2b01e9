# The postgres_exporter query file docs/monitoring/queries.yaml
# (docs/operations.md, "Monitoring"): every query in it runs, as a role
# with pg_monitor only, and returns exactly the columns its metrics list,
# labels as text and every other metric as a number, one row per streaming
# query (one that ran and one that never did).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Scalar::Util qw(looks_like_number);
use StreamaggTest;
use Test::More;

# The file, read in the strict layout it is written in: a query name at
# column 0, "query: |" and its lines indented by 4, then "metrics:" and
# "    - column:" each followed by its "usage:".
my $file = "$FindBin::RealBin/../../docs/monitoring/queries.yaml";
open my $fh, '<', $file or die "cannot read $file: $!";
my (%queries, @order, $name, $in_query, $column);
while (my $line = <$fh>)
{
	next if $line =~ /^\s*#/ || $line =~ /^\s*$/;
	if ($line =~ /^(\w+):\s*$/)
	{
		$name = $1;
		push @order, $name;
		$queries{$name} = { sql => '', metrics => [] };
		$in_query = 0;
	}
	elsif ($line =~ /^  query: \|\s*$/) { $in_query = 1; }
	elsif ($line =~ /^  metrics:\s*$/) { $in_query = 0; }
	elsif ($in_query && $line =~ /^    (.*)$/) { $queries{$name}{sql} .= "$1\n"; }
	elsif ($line =~ /^    - (\w+):\s*$/)
	{
		$column = { name => $1 };
		push @{ $queries{$name}{metrics} }, $column;
	}
	elsif ($line =~ /^        usage: "(\w+)"\s*$/) { $column->{usage} = $1; }
	elsif ($line =~ /^        description: ".+"\s*$/) { $column->{described} = 1; }
	else { die "unexpected line in $file: $line"; }
}
close $fh;
ok(@order >= 2, 'the query file has queries: ' . join(', ', @order));

my $node = StreamaggTest->new_node('monitoring');
$node->safe_psql(
	'postgres', q{
	CREATE TABLE events (ts timestamptz, k text, v int);
	SELECT streamagg.create_query(name => 'ok_q', source => 'events', event_time => 'ts',
		aggregates => 'count(*) AS n', group_by => 'k', window_size => '1 minute',
		watermark => '10 seconds', output_mode => 'append');
	SELECT streamagg.create_query(name => 'never_run', source => 'events', event_time => 'ts',
		aggregates => 'sum(v) AS s', output_mode => 'complete');
	INSERT INTO events VALUES ('2024-05-01 10:00:00+00', 'a', 1), ('2024-05-01 10:02:00+00', 'b', 2);
	SELECT streamagg.process('ok_q');
	INSERT INTO events VALUES ('2024-05-01 10:03:00+00', 'a', 3);
	CREATE ROLE exporter LOGIN IN ROLE pg_monitor;
});

for my $q (@order)
{
	my $spec = $queries{$q};
	ok($spec->{sql} =~ /\bSELECT\b/i, "$q: has a query");
	ok(!grep({ !$_->{usage} || !$_->{described} } @{ $spec->{metrics} }),
		"$q: every metric has a usage and a description");
	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT coalesce(json_agg(r), '[]') FROM ($spec->{sql}) r",
		extra_params => [ '-U', 'exporter' ]);
	is($rc, 0, "$q: runs as a pg_monitor role") or diag $err;
	my $rows = decode_json($out || '[]');
	ok(@$rows > 0, "$q: returns rows (" . scalar(@$rows) . ')');
	my @expected = sort map { $_->{name} } @{ $spec->{metrics} };
	for my $row (@$rows)
	{
		is_deeply([ sort keys %$row ], \@expected,
			"$q: columns are the metrics, for query " . ($row->{query} // '?'));
		for my $m (@{ $spec->{metrics} })
		{
			my $v = $row->{ $m->{name} };
			if ($m->{usage} eq 'LABEL')
			{
				ok(defined $v && $v ne '', "$q: label $m->{name} is set ($v)");
			}
			else
			{
				ok(defined $v && looks_like_number($v),
					"$q: $m->{name} is a number for $row->{query}");
			}
		}
	}
}

# the values of the overview query for the query that ran: 1 unconsumed row
my ($rc, $out) = $node->psql('postgres',
	"SELECT unconsumed_rows, last_batch_id, last_batch_rows, failing FROM ($queries{streamagg_query}{sql}) r WHERE query = 'ok_q'",
	extra_params => [ '-U', 'exporter' ]);
is($out, '1|0|2|0', 'streamagg_query: ok_q has 1 unconsumed row, ran batch 0 of 2 rows, not failing');
($rc, $out) = $node->psql('postgres',
	"SELECT unconsumed_rows, last_batch_id FROM ($queries{streamagg_query}{sql}) r WHERE query = 'never_run'",
	extra_params => [ '-U', 'exporter' ]);
is($out, '3|-1', 'streamagg_query: never_run has 3 unconsumed rows and no batch');

$node->stop;
done_testing();
