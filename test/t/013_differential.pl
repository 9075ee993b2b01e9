# Randomized differential test (test/perl/StreamaggDiff.pm): random query
# shapes (tumbling, sliding with and without offsets, session windows, no
# window, the event time as a key; int, bigint, text, numeric and expression
# keys with 1 to 100 000 values and NULLs; count, sum, avg, min, max, ... over
# int, bigint, numeric, float8, with FILTER clauses; append, update and
# complete output modes where DESIGN.md 3.5 allows them) and random data
# (in order, shuffled, late rows, NULL event times and values, rolled-back
# producers, several INSERT + streamagg.process() steps), checked after every
# step against plain SQL over the committed source rows.
#
# In the suite: a fixed seed, a few hundred small cases.  `make differential`
# runs thousands with a random seed (and, rarely, up to 100 000 keys):
#
#   make differential [SEED=n] [CASES=n] [CASE=n] [LONG=0]
#
# Environment (what the make variables set):
#   STREAMAGG_DIFF_SEED            the seed (default 20240501; empty: random)
#   STREAMAGG_DIFF_CASES           how many cases (300; 3000 when long)
#   STREAMAGG_DIFF_CASE            run that case only
#   STREAMAGG_DIFF_LONG            1: large cases too (a case is the same in
#                                  both modes unless it is a large one)
#   STREAMAGG_DIFF_SHRINK_SECONDS  time spent minimizing a failing case
#   STREAMAGG_DIFF_MAX_FAILURES    stop after that many kinds of failure (10)
#   STREAMAGG_DIFF_JOBS            cases run at once (2)
#
# A failing case prints the seed, the case number, what differs and a psql
# script reproducing it (minimized), also written to
# tmp_check/differential/seed_<seed>_case_<n>.sql.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StreamaggDiff;
use StreamaggTest;
use Test::More;
use Time::HiRes qw(time);

my $long = $ENV{STREAMAGG_DIFF_LONG} // 0;
# the suite's fixed seed; `make differential` without SEED= passes an empty
# one: a random seed
my $seed = $ENV{STREAMAGG_DIFF_SEED} // 20240501;
$seed = int(rand(2**31 - 1)) + 1 if $seed eq '';
die "STREAMAGG_DIFF_SEED must be a number" unless $seed =~ /^\d+$/;
my $cases = $ENV{STREAMAGG_DIFF_CASES} || ($long ? 3000 : 300);
my $only = $ENV{STREAMAGG_DIFF_CASE};
$only = undef if defined $only && $only eq '';
my $jobs = $ENV{STREAMAGG_DIFF_JOBS} || 2;
# stop after this many kinds of failures (or ten times as many failures)
my $max_failures = $ENV{STREAMAGG_DIFF_MAX_FAILURES} || 10;
my $shrink_seconds = $ENV{STREAMAGG_DIFF_SHRINK_SECONDS} // ($long || defined $only ? 90 : 15);
# minimize the first failure of each kind, in the suite only the first one
# (the others are printed as they are)
my $max_shrunk = $long || defined $only ? 1000 : 1;

diag("streamagg differential test: seed $seed, "
	  . (defined $only ? "case $only" : "$cases cases")
	  . ($long ? ' (long)' : ''));

# a crash (one finding of this test) restarts the server, the next case goes on
my $node = StreamaggTest->new_node('differential', 'restart_after_crash = on',
	'log_statement = none');
my $diff = StreamaggDiff->new(
	node => $node,
	seed => $seed,
	long => $long,
	shrink_seconds => $shrink_seconds,
	case_timeout => $long ? 600 : 120,
	tmpdir => PostgreSQL::Test::Utils::tempdir);

# DESIGN.md 2.1 features the build does not have yet are left out of the
# cases (with the same random choices otherwise), and said so.
my @missing = $diff->probe_features;
diag("left out, not accepted by this build (DESIGN.md 2.1):\n  " . join("\n  ", @missing))
  if @missing;

my $outdir = "$PostgreSQL::Test::Utils::tmp_check/differential";
mkdir $outdir;

# A long script (a bug that needs many rows) is shown abridged: the file has it all.
sub abridged
{
	my ($text) = @_;
	my @lines = split /\n/, $text;
	return $text if @lines <= 150;
	return join("\n", @lines[ 0 .. 59 ],
		'-- ... ' . (@lines - 100) . ' more lines in the script file ...',
		@lines[ $#lines - 39 .. $#lines ]) . "\n";
}

my $start = time();
my @failures;
my %signatures;
my $stopped = 0;
my $shrunk = 0;
my $report = sub {
	my ($caseno, $case, $fail) = @_;
	my $desc = StreamaggDiff::describe($case);
	if (!$fail)
	{
		pass("case $caseno: $desc");
		return;
	}

	# a failure like earlier ones (same class, window kind and output mode)
	# is listed in one line after the third
	my $sig = "$fail->{class}; $case->{kind}, $case->{mode}";
	my $nth = ++$signatures{$sig};
	push @failures, "seed $seed case $caseno: $fail->{class} at step $fail->{step} ($case->{kind}, $case->{mode})";
	fail("case $caseno: $desc");
	if ($nth > 3)
	{
		diag("FAILURE: seed $seed case $caseno ($sig: seen $nth times)");
		return;
	}

	# minimize while it fails the same way
	my ($small, $sfail, $tries) = ($case, $fail, 0);
	if ($nth == 1 && $shrunk++ < $max_shrunk && $shrink_seconds > 0)
	{
		($small, $sfail, $tries) = $diff->shrink($case, $fail);
	}
	my $repro = $diff->repro_sql($small, $sfail);
	my $file = "$outdir/seed_${seed}_case_$caseno.sql";
	unlink $file;
	PostgreSQL::Test::Utils::append_to_file($file, $repro);
	diag("FAILURE: seed $seed case $caseno ($fail->{class})\n"
		  . "  reproduce: make differential SEED=$seed CASE=$caseno" . ($long ? '' : ' LONG=0') . "\n"
		  . "  $desc\n"
		  . "  " . join("\n  ", split(/\n/, $fail->{detail})) . "\n"
		  . ($small != $case
			? "  minimized in $tries runs to: " . StreamaggDiff::describe($small) . "\n"
			: '')
		  . "  script: $file\n"
		  . abridged($repro));
};
my $stop = sub {
	return 0 if keys %signatures < $max_failures && @failures < 10 * $max_failures;
	diag("stopping after " . scalar(@failures) . " failures") unless $stopped++;
	return 1;
};
$diff->run_cases([ defined $only ? ($only) : (1 .. $cases) ], $jobs, $report, $stop);

diag(sprintf("%d cases in %.1f s (%d steps compared, %d with a non-empty sink, %d sink rows in all), %d failed%s",
		defined $only ? 1 : $cases, time() - $start,
		$diff->{stats}{steps} // 0, $diff->{stats}{nonempty_steps} // 0,
		$diff->{stats}{sink_rows} // 0, scalar @failures,
		@failures ? ":\n  " . join("\n  ", @failures) : ''));

my @slow = sort { $b->[0] <=> $a->[0] } @{ $diff->{durations} // [] };
note(sprintf("slowest: %.2f s, case %d: %s", @$_)) for grep { defined } @slow[ 0 .. 9 ];

$diff->wait_for_server;
$node->stop;
done_testing();
