# Randomized differential testing of streamagg against plain SQL.
#
# A *case* is a query shape (window kind, keys, aggregates, output mode,
# watermark, filter) plus data: a list of steps, each a list of producer
# transactions (some rolled back) followed by streamagg.process().  After
# every step the sink is compared with a reference computed by plain SQL
# from the committed source rows, implementing DESIGN.md section 3:
#
#   - 3.1 window assignment by floor-mod on epoch microseconds
#     (generate_series over the ceil(size/slide) candidate starts);
#   - 3.3 W(N) = max over batches <= N of (max event time) - delay, which is
#     the running max; rows with NULL or infinite event time and rows the
#     query's filter rejects never count;
#   - 3.4 a (row, window) pair of batch N is late when the window end <=
#     W(N-1) (event-time key: t <= W(N-1)); not in complete mode;
#   - append: windows with end <= W(N), update: every window with a kept
#     pair (evicted windows keep their last values, later pairs for them are
#     late anyway), complete: every window over every row;
#   - 3.2 sessions: complete mode by gaps-and-islands in SQL over all rows;
#     append mode by replaying the batches in Perl (lateness t + gap <=
#     W(N-1), merging with open sessions only, eviction of emitted sessions),
#     which gives each row's session; the aggregates are again plain SQL.
#
# The source table carries the generator's row id and step number (extra
# columns are fine for streamagg), so the reference reads exactly the
# committed rows.  Besides the sink contents, each step checks process()'s
# row count (also of a second process() with nothing new, and of the retry
# after a trigger failed by streamagg.fail_next_trigger at a random phase),
# the watermark in streamagg.queries (timestamptz sources), and once the
# sink's column names and types against the same select list in plain SQL.
# Floats are compared with a tolerance, numeric sums and averages by their
# text (so also their scale), numeric keys by value (1.5 = 1.50).
#
# Everything for one case runs as one psql script, so a case costs one psql
# start; cases run two at a time, and one that fails then is run again alone
# before it counts.  Random numbers come from perl's own drand48 (portable
# since perl 5.20), seeded per case from (seed, case number): a case is
# reproduced from the two numbers alone.  A failing case is shrunk (steps,
# transactions, rows, aggregates, keys, filter, values) while it keeps
# failing the same way, and printed as a psql script.
package StreamaggDiff;

use strict;
use warnings;

use IPC::Run;
use Time::HiRes qw(time);

my $SEC = 1_000_000;    # microseconds

# ---------------------------------------------------------------------------
# Random helpers.

sub rnd_int
{
	my ($lo, $hi) = @_;
	return $lo + int(rand($hi - $lo + 1));
}

sub pick { return $_[ int(rand(scalar @_)) ]; }

sub chance { return rand() < $_[0]; }

# wpick(weight => value, ...)
sub wpick
{
	my @pairs = @_;
	my $total = 0;
	for (my $i = 0; $i < @pairs; $i += 2) { $total += $pairs[$i]; }
	my $r = rand($total);
	for (my $i = 0; $i < @pairs; $i += 2)
	{
		return $pairs[ $i + 1 ] if ($r -= $pairs[$i]) < 0;
	}
	return $pairs[-1];
}

sub shuffle_list
{
	my @a = @_;
	for (my $i = $#a; $i > 0; $i--)
	{
		my $j = int(rand($i + 1));
		@a[ $i, $j ] = @a[ $j, $i ];
	}
	return @a;
}

sub case_seed
{
	my ($seed, $caseno) = @_;
	return ((($seed % 2147483648) * 2654435761) ^ ($caseno * 40503 + 12345)) & 0x7fffffff;
}

# ---------------------------------------------------------------------------
# Formatting.

# Exact seconds text of a number of microseconds: 2500000 -> "2.5".
sub us_seconds
{
	my ($us) = @_;
	my $neg = $us < 0 ? '-' : '';
	my $a = abs($us);
	my ($s, $f);
	{
		use integer;
		$s = $a / $SEC;
		$f = $a % $SEC;
	}
	my $t = "$s";
	if ($f)
	{
		my $fs = sprintf("%06d", $f);
		$fs =~ s/0+$//;
		$t .= ".$fs";
	}
	return "$neg$t";
}

# An interval literal for a number of microseconds, in one of its spellings.
sub interval_text
{
	my ($us) = @_;
	my $a = abs($us);
	my $neg = $us < 0 ? '-' : '';
	return "$neg" . ($a / (86400 * $SEC)) . ($a == 86400 * $SEC ? ' day' : ' days')
	  if $a && $a % (86400 * $SEC) == 0 && chance(0.5);
	return "$neg" . ($a / (3600 * $SEC)) . ' hours'
	  if $a && $a % (3600 * $SEC) == 0 && chance(0.5);
	return "$neg" . ($a / (60 * $SEC)) . ' minutes'
	  if $a && $a % (60 * $SEC) == 0 && chance(0.5);
	return "$neg" . ($a / 1000) . ' milliseconds'
	  if $a % 1000 == 0 && $a % $SEC != 0 && chance(0.3);
	return us_seconds($us) . ' seconds';
}

# A timestamp literal for microseconds since the epoch (UTC).
sub ts_literal
{
	my ($us, $with_tz) = @_;
	return 'NULL' unless defined $us;
	return "'$us'" if $us eq 'infinity' || $us eq '-infinity';
	my ($s, $f);
	{
		use integer;
		$s = $us / $SEC;
		$f = $us % $SEC;
		if ($f < 0) { $f += $SEC; $s -= 1; }
	}
	my @t = gmtime($s);
	my $txt = sprintf("%04d-%02d-%02d %02d:%02d:%02d",
		$t[5] + 1900, $t[4] + 1, $t[3], $t[2], $t[1], $t[0]);
	$txt .= sprintf(".%06d", $f) if $f;
	$txt .= '+00' if $with_tz;
	return "'$txt'";
}

sub sql_quote
{
	my ($s) = @_;
	return 'NULL' unless defined $s;
	$s =~ s/'/''/g;
	return "'$s'";
}

# ---------------------------------------------------------------------------
# Pools.

# Aggregates: sql, how to compare (value: IS DISTINCT FROM; text: the
# text form, so also the numeric scale; float: with a tolerance), and
# whether the aggregate is allowed in session windows (needs a combine
# function; all of these have one, or are called with DISTINCT).  The
# DISTINCT ones check the sets of docs/semantics.md §15, string_agg also the
# order in which their values are fed (it has no combine function and an
# unstorable state without DISTINCT, so a build without DISTINCT counts
# instead).
my @AGG_POOL = (
	[ 6, 'count(*)',                               'value' ],
	[ 2, 'count(vi)',                              'value' ],
	[ 1, 'count(vf)',                              'value' ],
	[ 3, 'sum(vi)',                                'value' ],
	[ 2, 'sum(vb)',                                'text' ],
	[ 3, 'sum(vn)',                                'text' ],
	[ 2, 'sum(vf)',                                'float' ],
	[ 2, 'avg(vi)',                                'text' ],
	[ 1, 'avg(vb)',                                'text' ],
	[ 2, 'avg(vn)',                                'text' ],
	[ 2, 'avg(vf)',                                'float' ],
	[ 2, 'min(vi)',                                'value' ],
	[ 1, 'max(vi)',                                'value' ],
	[ 1, 'min(vb)',                                'value' ],
	[ 1, 'max(vb)',                                'value' ],
	[ 1, 'min(vn)',                                'value' ],
	[ 2, 'max(vn)',                                'value' ],
	[ 1, 'min(vf)',                                'float' ],
	[ 1, 'max(vf)',                                'float' ],
	[ 1, 'min(ts)',                                'value' ],
	[ 1, 'max(ts)',                                'value' ],
	[ 2, 'count(*) FILTER (WHERE vi > 0)',         'value' ],
	[ 1, 'sum(vn) FILTER (WHERE vi % 2 = 0)',      'text' ],
	[ 1, 'max(vi) FILTER (WHERE vb < 0)',          'value' ],
	[ 1, 'avg(vf) FILTER (WHERE vn IS NOT NULL)',  'float' ],
	[ 1, 'sum(vb) FILTER (WHERE vf > 0)',          'text' ],
	[ 1, 'count(DISTINCT vi)',                     'value' ],
	[ 1, 'sum(DISTINCT vn)',                       'value' ],
	[ 1, 'count(DISTINCT vb) FILTER (WHERE vi > 0)', 'value' ],
	[ 1, 'avg(DISTINCT vf)',                       'float' ],
	[ 1, "string_agg(DISTINCT vi::text, ',')",     'text' ],
	[ 1, 'stddev(vi)',                             'value' ],
	[ 1, 'bool_or(vi > 500)',                      'value' ],);

# Query filters (the create_query parameter), with a perl twin for the
# session replay.
my @FILTER_POOL = (
	{
		sql => 'vi IS NULL OR vi % 5 <> 0',
		perl => sub { !defined $_[0]{vi} || $_[0]{vi} % 5 != 0 }
	},
	{
		sql => 'vb > 0',
		perl => sub { defined $_[0]{vb} && $_[0]{vb} > 0 }
	},
	{
		sql => 'vi < 500',
		perl => sub { defined $_[0]{vi} && $_[0]{vi} < 500 }
	},
	{
		sql => 'coalesce(vn, 1) > 0',
		perl => sub { !defined $_[0]{vn} || $_[0]{vn} > 0 }
	},);

my @FAULT_POINTS = ('after_read', 'after_state', 'during_sink', 'before_commit');

my @TIMEZONES = ('UTC', 'UTC', 'UTC', 'America/St_Johns', 'Asia/Kathmandu',
	'Europe/Berlin', 'Pacific/Chatham');

# ---------------------------------------------------------------------------
# Case generation.

sub new
{
	my ($class, %o) = @_;
	my $self = bless {
		node => $o{node},
		seed => $o{seed} // 1,
		long => $o{long} // 0,
		shrink_seconds => $o{shrink_seconds} // 30,
		case_timeout => $o{case_timeout} // 120,
		tmpdir => $o{tmpdir} // '/tmp',
		runs => 0,
	}, $class;
	return $self;
}

sub gen_case
{
	my ($self, $caseno) = @_;
	srand(case_seed($self->{seed}, $caseno));
	my $long = $self->{long};
	my %c = (seed => $self->{seed}, caseno => $caseno);

	$c{ts_type} = chance(0.8) ? 'timestamptz' : 'timestamp';
	$c{timezone} = pick(@TIMEZONES);
	$c{kind} = wpick(30 => 'tumbling', 25 => 'sliding', 22 => 'session',
		13 => 'none', 10 => 'tskey');

	# how big: rows and key cardinality
	my $huge = chance(0.04) && $long;    # the same random draws either way
	my $nrows =
	  $huge
	  ? 0
	  : wpick(15 => rnd_int(1, 10), 40 => rnd_int(11, 100),
		35 => rnd_int(101, 600), 10 => rnd_int(601, 2500));

	# window parameters (microseconds)
	my $unit;
	if ($c{kind} eq 'tumbling' || $c{kind} eq 'sliding')
	{
		my $size = $SEC * pick(1, 2, 5, 10, 10, 7, 60, 90, 3600, 86400);
		$size = pick(250_000, 1500, 500_000) if chance(0.08);
		$c{size} = $size;
		$c{slide} = $size;
		if ($c{kind} eq 'sliding')
		{
			my $slide;
			if (chance(0.6))
			{
				my $m = pick(2, 2, 3, 4, 5, 10);
				$m = 60 if chance(0.05) && !$huge;
				$slide = int($size / $m);
			}
			else
			{
				# a slide that does not divide the size
				$slide = int($size * (0.2 + 0.75 * rand()));
				$slide -= $slide % 1000 if $slide > 10000 && chance(0.7);
			}
			$slide = $size if $slide < 1;
			$slide = int($size / 4) if $huge && $size / $slide > 4;
			$c{slide} = $slide;
		}
		if (chance(0.4))
		{
			my $off = int((2 * rand() - 1) * $c{slide});
			$off -= $off % $SEC if abs($off) > $SEC && chance(0.6);
			$off = 0 if abs($off) >= $c{slide};
			$c{offset} = $off if $off;
		}
		$c{size_txt} = interval_text($c{size});
		$c{slide_txt} = interval_text($c{slide})
		  if $c{kind} eq 'sliding' || chance(0.1);
		$c{offset_txt} = interval_text($c{offset}) if $c{offset};
		$unit = $size;
	}
	elsif ($c{kind} eq 'session')
	{
		$c{gap} = $SEC * pick(1, 5, 10, 10, 30, 60, 600);
		$c{gap} = 1500 if chance(0.05);
		$c{gap_txt} = interval_text($c{gap});
		$unit = $c{gap};
	}
	else
	{
		$unit = $SEC * pick(1, 10, 60);
	}

	# output mode and watermark (DESIGN.md 3.5)
	my %modes = (
		tumbling => [ 40 => 'append', 35 => 'update', 25 => 'complete' ],
		sliding => [ 40 => 'append', 35 => 'update', 25 => 'complete' ],
		session => [ 60 => 'append', 40 => 'complete' ],
		none => [ 60 => 'update', 40 => 'complete' ],
		tskey => [ 50 => 'append', 30 => 'update', 20 => 'complete' ],);
	$c{mode} = wpick(@{ $modes{ $c{kind} } });
	if ($c{mode} eq 'append' || chance(0.5))
	{
		$c{delay} = wpick(
			15 => 0,
			55 => $unit * rnd_int(0, 3) + (chance(0.3) ? int($unit / 2) : 0),
			30 => $SEC * pick(1, 2, 3, 4, 7, 30, 120, 3600));
		$c{delay_txt} = interval_text($c{delay});
	}

	# keys
	my $nkeys;
	if ($c{kind} eq 'session') { $nkeys = wpick(75 => 1, 25 => 2); }
	elsif ($c{kind} eq 'tskey') { $nkeys = wpick(60 => 0, 40 => 1); }
	else { $nkeys = wpick(20 => 0, 55 => 1, 25 => 2); }
	$nkeys = 1 if $huge && !$nkeys;
	$c{keys} = [];
	push @{ $c{keys} }, { kind => 'ts', name => 'ts', type => $c{ts_type} }
	  if $c{kind} eq 'tskey';
	for my $i (1 .. $nkeys)
	{
		my $card =
		  $huge && $i == 1
		  ? rnd_int(3000, 100000)
		  : wpick(15 => 1, 25 => rnd_int(2, 5), 25 => rnd_int(6, 50),
			25 => rnd_int(51, 500), 10 => rnd_int(501, 3000));
		my %k = (
			kind => 'col',
			name => "k$i",
			type => pick('int', 'bigint', 'text', 'text', 'numeric'),
			card => $card,
			null_p => wpick(50 => 0, 30 => 0.05, 20 => 0.3),
			skew => chance(0.3),
			empty => chance(0.2),);
		if (chance(0.1) && !$huge)
		{
			%k = (kind => 'expr', name => 'km', type => 'int',
				expr => 'vi % 3');
		}
		push @{ $c{keys} }, \%k;
	}
	# a key name once only (km could repeat)
	my %seen;
	$c{keys} = [ grep { !$seen{ $_->{name} }++ } @{ $c{keys} } ];

	if ($huge)
	{
		my ($k1) = grep { $_->{kind} eq 'col' } @{ $c{keys} };
		my $card = $k1 ? $k1->{card} : 20000;
		$nrows = int($card * (0.5 + 1.5 * rand()));
		$nrows = 150000 if $nrows > 150000;
	}

	# aggregates
	my $naggs = wpick(30 => 1, 30 => 2, 25 => 3, 15 => rnd_int(4, 6));
	my %used;
	my @aggs;
	while (@aggs < $naggs)
	{
		my $a = wpick(map { ($_->[0] => $_) } @AGG_POOL);
		next if $used{ $a->[1] }++;
		push @aggs, { sql => $a->[1], cmp => $a->[2] };
	}
	for my $i (0 .. $#aggs) { $aggs[$i]{alias} = 'a' . ($i + 1); }
	$c{aggs} = \@aggs;

	$c{filter} = $FILTER_POOL[ int(rand(@FILTER_POOL)) ] if chance(0.15);

	# features of DESIGN.md 2.1 that the build may not have yet (see probe_features):
	# the random stream is the same either way
	delete $c{filter} if $self->{features} && !$self->{features}{filter};
	if ($self->{features} && !$self->{features}{distinct})
	{
		for (@aggs)
		{
			$_->{sql} =~ s/DISTINCT //;
			@$_{qw(sql cmp)} = ('count(vi)', 'value') if $_->{sql} =~ /^string_agg/;
		}
	}

	gen_data(\%c, $nrows, $unit, $huge);
	if ($self->{features} && !$self->{features}{inject})
	{
		delete $_->{fault} for @{ $c{steps} };
	}
	return \%c;
}

sub key_value
{
	my ($k, $idx) = @_;
	my $m = $idx - int($k->{card} / 2);
	if ($k->{type} eq 'int') { return $m; }
	if ($k->{type} eq 'bigint') { return $m * 4294967311; }
	if ($k->{type} eq 'text')
	{
		return sql_quote('') if $idx == 0 && $k->{empty};
		return sql_quote(($idx % 7 == 3 ? 'K' : 'k') . $idx);
	}
	# numeric: m/4 written with a random number of trailing zeros, so equal
	# keys arrive with different scales (1.5, 1.50, 1.500)
	my $q = abs($m);
	my $ip = int($q / 4);
	my $fr = ('', '25', '5', '75')[ $q % 4 ];
	my $zeros = '0' x rnd_int(0, 2);
	my $txt = $ip;
	$txt .= ".$fr$zeros" if $fr ne '' || $zeros ne '';
	return ($m < 0 ? '-' : '') . $txt;
}

sub gen_numeric
{
	my ($big) = @_;
	my $scale = rnd_int(0, 4);
	my $ip = $big ? join('', rnd_int(1, 9), map { rnd_int(0, 9) } 1 .. 24)
	  : rnd_int(0, 999);
	my $t = (chance(0.3) ? '-' : '') . $ip;
	$t .= '.' . join('', map { rnd_int(0, 9) } 1 .. $scale) if $scale;
	return $t;
}

sub gen_data
{
	my ($c, $nrows, $unit, $huge) = @_;

	# event-time layout
	my $base = wpick(
		80 => (1700000000 + rnd_int(0, 86400 * 30)) * $SEC,
		10 => -rnd_int(1_000_000, 300_000_000) * $SEC,
		10 => rnd_int(-3, 3) * $unit);
	# granularity of event times: a coarse grid (the window size or session
	# gap, or a fraction of it) makes window ends, touching sessions and
	# watermark equalities frequent
	my $gran = wpick(
		35 => $SEC,
		10 => 1000,
		7 => 1,
		8 => 250_000,
		15 => ($unit >= 4 ? int($unit / 4) : 1),
		25 => 'grid');
	if ($gran eq 'grid')
	{
		# on the window starts (offset + k * slide) or halfway, or on the gap
		my $g = $c->{slide} // $unit;
		$gran = $g >= 2 ? int($g / pick(1, 1, 2)) : 1;
		my $off = $c->{offset} // 0;
		my $m = ($base - $off) % $gran;    # perl's % is a floor mod here
		$base -= $m;
	}
	$gran = $SEC * pick(1, 5) if $c->{kind} eq 'tskey';
	$gran = 1 if $gran < 1;
	my $span;
	if ($c->{kind} eq 'tskey')
	{
		$span = $gran * rnd_int(1, 40);
	}
	else
	{
		$span = int($unit * pick(0.5, 2, 5, 15, 40));
		$span = int($unit * 100) if $huge;
	}
	$span = $gran if $span < $gran;
	my $order = wpick(30 => 'inorder', 30 => 'shuffled', 25 => 'late',
		5 => 'reverse', 10 => 'bursts');
	my $p_null_ts = wpick(60 => 0, 25 => 0.05, 15 => 0.2);
	my $infinite = chance(0.03);
	my $extreme = chance(0.05);
	my $p_null_v = wpick(40 => 0, 40 => 0.1, 20 => 0.4);
	my $float_kind = wpick(60 => 'quarter', 35 => 'decimal', 5 => 'special');
	$c->{order} = $order;

	my @rows;
	for my $i (1 .. $nrows)
	{
		my %r;
		$r{ts} = $base + int(rand() * $span / $gran) * $gran;
		my @kv;
		my @kid;
		for my $k (@{ $c->{keys} })
		{
			next if $k->{kind} ne 'col';
			my $idx =
			  $k->{skew}
			  ? int($k->{card} * rand()**3)
			  : int(rand($k->{card}));
			if ($k->{null_p} && chance($k->{null_p}))
			{
				push @kv, 'NULL';
				push @kid, 'N';
			}
			else
			{
				push @kv, key_value($k, $idx);
				push @kid, "v$idx";
			}
		}
		$r{kv} = \@kv;
		$r{kid} = \@kid;
		$r{vi} =
		  chance($p_null_v) ? undef
		  : $extreme && chance(0.3) ? pick(2147483647, -2147483648, 2000000000)
		  : rnd_int(-100, 1000);
		$r{vb} =
		  chance($p_null_v) ? undef
		  : $extreme && chance(0.3)
		  ? pick(9223372036854775807, -9223372036854775807 - 1,
			9000000000000000000 + rnd_int(0, 999))
		  : rnd_int(-1000000, 1000000) * pick(1, 1, 1000003);
		$r{vn} = chance($p_null_v) ? undef : gen_numeric($extreme && chance(0.3));
		if (chance($p_null_v)) { $r{vf} = undef; }
		elsif ($float_kind eq 'quarter') { $r{vf} = rnd_int(-4000, 4000) / 4; }
		elsif ($float_kind eq 'decimal' || chance(0.8))
		{
			$r{vf} = sprintf("%.3f", rand() * 2000 - 1000);
		}
		else { $r{vf} = pick('NaN', 'Infinity', '-Infinity', '-0'); }
		push @rows, \%r;
	}

	# order and steps
	my $nsteps = $huge ? rnd_int(1, 3) : wpick(15 => 1, 25 => 2, 25 => 3,
		20 => 4, 15 => rnd_int(5, 8));
	$nsteps = 1 if $nrows <= 1 && chance(0.5);
	if ($order eq 'inorder' || $order eq 'late' || $order eq 'bursts')
	{
		@rows = sort { $a->{ts} <=> $b->{ts} } @rows;
	}
	elsif ($order eq 'reverse')
	{
		@rows = sort { $b->{ts} <=> $a->{ts} } @rows;
	}
	else { @rows = shuffle_list(@rows); }

	# contiguous chunks per step (some steps may be empty)
	my @cuts = sort { $a <=> $b } map { rnd_int(0, scalar @rows) } 1 .. $nsteps - 1;
	my @steps;
	my $prev = 0;
	for my $cut (@cuts, scalar @rows)
	{
		push @steps, [ @rows[ $prev .. $cut - 1 ] ];
		$prev = $cut;
	}
	if ($order eq 'bursts')
	{
		# each step's rows shuffled within the step
		@steps = map { [ shuffle_list(@$_) ] } @steps;
	}
	if ($order eq 'late')
	{
		# some rows of later steps travel back in time
		my $p = pick(0.1, 0.2, 0.4);
		my $back = ($c->{delay} // 0) + $unit;
		for my $s (1 .. $#steps)
		{
			for my $r (@{ $steps[$s] })
			{
				next unless chance($p);
				$r->{ts} -= int(rand() * 3 * $back / $gran) * $gran;
			}
		}
	}
	for my $r (@rows)
	{
		$r->{ts} = undef if $p_null_ts && chance($p_null_ts);
	}
	if ($infinite && @rows)
	{
		$rows[ int(rand(@rows)) ]{ts} = pick('infinity', '-infinity');
	}

	# transactions per step, a few rolled back
	my $p_rollback = chance(0.2) ? 0.15 : 0;
	my $id = 0;
	$c->{steps} = [];
	for my $s (@steps)
	{
		my $ntx = @$s ? wpick(60 => 1, 30 => 2, 10 => 3) : (chance(0.3) ? 1 : 0);
		my @txs;
		my @srows = @$s;
		for my $t (1 .. $ntx)
		{
			my $take = $t == $ntx ? scalar @srows : int(rand(@srows + 1));
			my @tr = splice(@srows, 0, $take);
			$_->{id} = ++$id for @tr;
			push @txs, { rollback => chance($p_rollback) ? 1 : 0, rows => \@tr };
		}
		my %step = (txs => \@txs, twice => chance(0.1) ? 1 : 0);
		# a trigger that fails at a phase (streamagg.fail_next_trigger), then
		# is retried: on steps with rows, where every phase is reached
		my $fault = chance(0.08) ? pick(@FAULT_POINTS) : undef;
		$step{fault} = $fault if $fault && grep { !$_->{rollback} && @{ $_->{rows} } } @txs;
		push @{ $c->{steps} }, \%step;
	}
	return;
}

# ---------------------------------------------------------------------------
# SQL.

sub has_bound
{
	my ($c) = @_;
	return $c->{kind} ne 'none';
}

sub windowed
{
	my ($c) = @_;
	return $c->{kind} eq 'tumbling' || $c->{kind} eq 'sliding'
	  || $c->{kind} eq 'session';
}

sub drops_late
{
	my ($c) = @_;
	return $c->{mode} ne 'complete' && defined $c->{delay} && has_bound($c);
}

sub key_columns { return grep { $_->{kind} eq 'col' } @{ $_[0]{keys} }; }

# group_by text, key select items and key grouping expressions
sub key_select { return map { $_->{kind} eq 'expr' ? "$_->{expr} AS $_->{name}" : $_->{name} } @{ $_[0]{keys} }; }
sub key_exprs { return map { $_->{kind} eq 'expr' ? $_->{expr} : $_->{name} } @{ $_[0]{keys} }; }

sub key_norm
{
	my ($k, $col) = @_;
	return "trim_scale($col)" if $k->{type} eq 'numeric';
	return "(extract(epoch FROM $col) * 1000000)::bigint" if $k->{kind} eq 'ts';
	return $col;
}

sub create_query_sql
{
	my ($c, $n) = @_;
	my @p = (
		"name => '$n->{q}'",
		"source => '$n->{src}'",
		"event_time => 'ts'",
		'aggregates => ' . sql_quote(join(', ', map { "$_->{sql} AS $_->{alias}" } @{ $c->{aggs} })));
	push @p, 'group_by => ' . sql_quote(join(', ', key_select($c))) if @{ $c->{keys} };
	push @p, "window_size => '$c->{size_txt}'" if $c->{size_txt};
	push @p, "window_slide => '$c->{slide_txt}'" if $c->{slide_txt};
	push @p, "window_offset => '$c->{offset_txt}'" if $c->{offset_txt};
	push @p, "session_gap => '$c->{gap_txt}'" if $c->{gap_txt};
	push @p, "watermark => '$c->{delay_txt}'" if defined $c->{delay_txt};
	push @p, "output_mode => '$c->{mode}'";
	push @p, 'filter => ' . sql_quote($c->{filter}{sql}) if $c->{filter};
	push @p, "sink => '$n->{sink}'";
	return "SELECT streamagg.create_query(\n    " . join(",\n    ", @p) . ");\n";
}

sub source_columns
{
	my ($c) = @_;
	return ('id', 'batch', 'ts', (map { $_->{name} } key_columns($c)), 'vi', 'vb', 'vn', 'vf');
}

sub create_source_sql
{
	my ($c, $n) = @_;
	my @cols = ('id int', 'batch int', "ts $c->{ts_type}",
		(map { "$_->{name} $_->{type}" } key_columns($c)),
		'vi int', 'vb bigint', 'vn numeric', 'vf float8');
	return "CREATE TABLE $n->{src} (" . join(', ', @cols) . ");\n";
}

sub row_values
{
	my ($c, $r, $step) = @_;
	return '('
	  . join(', ', $r->{id}, $step, ts_literal($r->{ts}, $c->{ts_type} eq 'timestamptz'),
		@{ $r->{kv} },
		$r->{vi} // 'NULL', $r->{vb} // 'NULL', $r->{vn} // 'NULL',
		defined $r->{vf} ? "'$r->{vf}'" : 'NULL')
	  . ')';
}

sub step_insert_sql
{
	my ($c, $n, $stepno) = @_;
	my $step = $c->{steps}[ $stepno - 1 ];
	my $cols = join(', ', source_columns($c));
	my $sql = '';
	for my $tx (@{ $step->{txs} })
	{
		my @rows = @{ $tx->{rows} };
		my $multi = @rows > 500 || $tx->{rollback};
		$sql .= "BEGIN;\n" if $multi;
		while (@rows)
		{
			my @chunk = splice(@rows, 0, 500);
			$sql .= "INSERT INTO $n->{src} ($cols) VALUES\n  "
			  . join(",\n  ", map { row_values($c, $_, $stepno) } @chunk) . ";\n";
		}
		$sql .= $tx->{rollback} ? "ROLLBACK;\n" : $multi ? "COMMIT;\n" : '';
	}
	return $sql;
}

sub committed_rows
{
	my ($step) = @_;
	return map { @{ $_->{rows} } } grep { !$_->{rollback} } @{ $step->{txs} };
}

sub is_finite_ts
{
	my ($ts) = @_;
	return defined $ts && $ts ne 'infinity' && $ts ne '-infinity';
}

# The group key of a row as a perl string: the generator's key index for
# column keys (so 1.5 and 1.50 are one key, as in SQL), the value of
# vi % 3 (SQL's truncating remainder) for the expression key.
sub key_identity
{
	my ($c, $r) = @_;
	my @id;
	my $ci = 0;
	for my $k (@{ $c->{keys} })
	{
		if ($k->{kind} eq 'col') { push @id, $r->{kid}[ $ci++ ]; }
		elsif ($k->{kind} eq 'expr')
		{
			push @id, defined $r->{vi} ? 'v' . ($r->{vi} - 3 * int($r->{vi} / 3)) : 'N';
		}
	}
	return join(',', @id);
}

# Sessions in append mode, replayed batch by batch (DESIGN.md 3.2-3.4):
# returns [step, id, start, end] for every row of every session emitted by
# the end of each step.
sub session_replay
{
	my ($c) = @_;
	my $gap = $c->{gap};
	my (%open, @emitted, @out);
	my ($W, $maxT);
	my $nsteps = @{ $c->{steps} };
	for my $n (1 .. $nsteps)
	{
		my @rows = grep {
			is_finite_ts($_->{ts}) && (!$c->{filter} || $c->{filter}{perl}->($_))
		} committed_rows($c->{steps}[ $n - 1 ]);
		my $Wprev = $W;
		my %new;
		for my $r (@rows)
		{
			next if defined $Wprev && $r->{ts} + $gap <= $Wprev;    # late
			push @{ $new{ key_identity($c, $r) } },
			  [ $r->{ts}, $r->{ts} + $gap, [ $r->{id} ] ];
		}
		for my $kid (keys %new)
		{
			my @iv = sort { $a->[0] <=> $b->[0] } (@{ $open{$kid} // [] }, @{ $new{$kid} });
			my @merged;
			for my $s (@iv)
			{
				if (@merged && $s->[0] <= $merged[-1][1])
				{
					$merged[-1][1] = $s->[1] if $s->[1] > $merged[-1][1];
					push @{ $merged[-1][2] }, @{ $s->[2] };
				}
				else { push @merged, [ $s->[0], $s->[1], [ @{ $s->[2] } ] ]; }
			}
			$open{$kid} = \@merged;
		}
		for my $r (@rows)
		{
			$maxT = $r->{ts} if !defined $maxT || $r->{ts} > $maxT;
		}
		if (defined $maxT)
		{
			my $w = $maxT - $c->{delay};
			$W = $w if !defined $W || $w > $W;
		}
		if (defined $W)
		{
			for my $kid (keys %open)
			{
				my @keep;
				for my $s (@{ $open{$kid} })
				{
					if ($s->[1] <= $W) { push @emitted, $s; }
					else { push @keep, $s; }
				}
				$open{$kid} = \@keep;
			}
		}
		for my $s (@emitted)
		{
			push @out, [ $n, $_, $s->[0], $s->[1] ] for @{ $s->[2] };
		}
	}
	return \@out;
}

# The reference result after step $N: columns ws_us, we_us (windowed), the
# keys, the aggregates.
sub reference_sql
{
	my ($c, $n, $N) = @_;
	my $tus = '(extract(epoch FROM s.ts) * 1000000)::bigint';
	my $filter = $c->{filter} ? " AND ($c->{filter}{sql})" : '';
	my @ksel = key_select($c);
	my @kexp = key_exprs($c);
	my $aggs = join(', ', map { "$_->{sql} AS $_->{alias}" } @{ $c->{aggs} });
	my $delay = $c->{delay} // 0;
	my $with = "WITH rows AS (\n  SELECT s.*, $tus AS t_us FROM $n->{src} s\n"
	  . "  WHERE s.batch <= $N AND isfinite(s.ts)$filter),\n"
	  . "wm AS (\n  SELECT b, max(bm) OVER (ORDER BY b) - $delay AS w\n"
	  . "  FROM (SELECT b, (SELECT max(t_us) FROM rows r WHERE r.batch = b) AS bm\n"
	  . "        FROM generate_series(0, $N) b) x)";
	my $sel_keys = @ksel ? ', ' . join(', ', @ksel) : '';
	my $late = drops_late($c);
	my $wN = "(SELECT w FROM wm WHERE b = $N)";

	if ($c->{kind} eq 'session' && $c->{mode} eq 'append')
	{
		return "SELECT a.ws_us, a.we_us$sel_keys, $aggs\n"
		  . "FROM $n->{src} s JOIN $n->{sess} a ON a.id = s.id\n"
		  . "WHERE a.step = $N\nGROUP BY a.ws_us, a.we_us, " . join(', ', @kexp);
	}
	if ($c->{kind} eq 'session')
	{
		my $part = join(', ', @kexp);
		return "$with,\n"
		  . "ord AS (\n  SELECT r.*, CASE WHEN r.t_us <= lag(r.t_us) OVER (PARTITION BY $part ORDER BY r.t_us) + $c->{gap}\n"
		  . "    THEN 0 ELSE 1 END AS brk FROM rows r),\n"
		  . "num AS (\n  SELECT o.*, sum(o.brk) OVER (PARTITION BY $part ORDER BY o.t_us) AS sn FROM ord o)\n"
		  . "SELECT min(t_us) AS ws_us, max(t_us) + $c->{gap} AS we_us$sel_keys, $aggs\n"
		  . "FROM num GROUP BY $part, sn";
	}
	if ($c->{kind} eq 'tumbling' || $c->{kind} eq 'sliding')
	{
		my ($size, $slide, $off) = ($c->{size}, $c->{slide}, $c->{offset} // 0);
		my $nwin = int(($size + $slide - 1) / $slide);
		my $sql = "$with,\n"
		  . "pairs AS (\n  SELECT r.*, w.ws_us, w.ws_us + $size AS we_us FROM rows r\n"
		  . "  CROSS JOIN LATERAL (SELECT r.t_us - (((r.t_us - ($off)) % $slide) + $slide) % $slide - i::bigint * $slide AS ws_us\n"
		  . "                      FROM generate_series(0, $nwin - 1) i) w\n"
		  . "  WHERE w.ws_us + $size > r.t_us)\n"
		  . "SELECT ws_us, we_us$sel_keys, $aggs\nFROM pairs p\n";
		my @where;
		push @where, "NOT EXISTS (SELECT 1 FROM wm WHERE wm.b = p.batch - 1 AND p.we_us <= wm.w)"
		  if $late;
		push @where, "we_us <= $wN" if $c->{mode} eq 'append';
		$sql .= 'WHERE ' . join("\n  AND ", @where) . "\n" if @where;
		$sql .= 'GROUP BY ws_us, we_us' . join('', map { ", $_" } @kexp);
		return $sql;
	}
	# no window; with the event time as a key it bounds the group
	my $sql = "$with\nSELECT " . (@ksel ? join(', ', @ksel) . ', ' : '') . "$aggs\nFROM rows p\n";
	my @where;
	push @where, "NOT EXISTS (SELECT 1 FROM wm WHERE wm.b = p.batch - 1 AND p.t_us <= wm.w)"
	  if $late;
	push @where, "t_us <= $wN" if $c->{mode} eq 'append';
	$sql .= 'WHERE ' . join("\n  AND ", @where) . "\n" if @where;
	$sql .= @kexp ? 'GROUP BY ' . join(', ', @kexp) : 'HAVING count(*) > 0';
	return $sql;
}

# The select list of the sink, in plain SQL, for the type check.
sub shape_sql
{
	my ($c, $n) = @_;
	my @sel;
	push @sel, 'ts AS window_start', 'ts AS window_end' if windowed($c);
	push @sel, key_select($c);
	push @sel, map { "$_->{sql} AS $_->{alias}" } @{ $c->{aggs} };
	my @grp = (windowed($c) ? ('ts') : (), key_exprs($c));
	return "SELECT " . join(', ', @sel) . " FROM $n->{src}"
	  . (@grp ? ' GROUP BY ' . join(', ', @grp) : '');
}

sub attrs_sql
{
	my ($rel) = @_;
	return "SELECT row_number() OVER (ORDER BY attnum) AS i, attname::text AS n, "
	  . "format_type(atttypid, atttypmod) AS t FROM pg_attribute "
	  . "WHERE attrelid = '$rel'::regclass AND attnum > 0 AND NOT attisdropped";
}

sub diff_sql
{
	my ($c, $n, $ref) = @_;
	my @sk;
	my @rk;
	if (windowed($c))
	{
		push @sk, '(extract(epoch FROM window_start) * 1000000)::bigint',
		  '(extract(epoch FROM window_end) * 1000000)::bigint';
		push @rk, 'ws_us', 'we_us';
	}
	for my $k (@{ $c->{keys} })
	{
		push @sk, key_norm($k, $k->{name});
		push @rk, key_norm($k, $k->{name});
	}
	my @a = map { $_->{alias} } @{ $c->{aggs} };
	my $vals = 'ROW(' . join(', ', @a) . ')::text';
	my $key = sub { 'ROW(' . join(', ', @_) . ')::text' };
	my @cmp;
	for my $g (@{ $c->{aggs} })
	{
		my ($s, $r) = ("s.$g->{alias}", "r.$g->{alias}");
		if ($g->{cmp} eq 'text') { push @cmp, "${s}::text IS DISTINCT FROM ${r}::text"; }
		elsif ($g->{cmp} eq 'float')
		{
			push @cmp, "NOT ($s IS NOT DISTINCT FROM $r OR abs($s - $r) <= 1e-6 * greatest(1, abs($s), abs($r)))";
		}
		else { push @cmp, "$s IS DISTINCT FROM $r"; }
	}
	return "SELECT format('D|%s|sink=%s|expected=%s', coalesce(s.k, r.k), coalesce(s.v, '(absent)'), coalesce(r.v, '(absent)'))\n"
	  . "FROM (SELECT " . $key->(@sk) . " AS k, $vals AS v, " . join(', ', @a) . " FROM $n->{sink}) s\n"
	  . "FULL JOIN (SELECT " . $key->(@rk) . " AS k, $vals AS v, " . join(', ', @a) . " FROM $ref) r ON s.k = r.k\n"
	  . "WHERE s.k IS NULL OR r.k IS NULL OR " . join(' OR ', @cmp) . "\nORDER BY 1 LIMIT 20;\n";
}

# The whole psql script of a case.  %o: check (comparisons), cleanup,
# upto (last step).
sub case_script
{
	my ($self, $c, $n, %o) = @_;
	my $nsteps = $o{upto} // scalar @{ $c->{steps} };
	my $sql = '';
	$sql .= "SET client_min_messages = warning;\nSET application_name = 'streamagg_diff';\n"
	  . "SET statement_timeout = '" . ($self->{case_timeout} * 1000) . "';\n"
	  if $o{check};
	$sql .= "SET TimeZone = '$c->{timezone}';\n";
	$sql .= create_source_sql($c, $n);
	$sql .= create_query_sql($c, $n);
	if ($o{check})
	{
		$sql .= "\\echo \@STEP 0\n";
		$sql .= "CREATE TEMP VIEW $n->{shape} AS " . shape_sql($c, $n) . ";\n";
		$sql .= "SELECT format('T|column %s: sink %s %s, expected %s %s', coalesce(a.i, b.i), a.n, a.t, b.n, b.t)\n"
		  . "FROM (" . attrs_sql($n->{sink}) . ") a\n"
		  . "FULL JOIN (" . attrs_sql("pg_temp.$n->{shape}") . ") b ON a.i = b.i\n"
		  . "WHERE a.n IS DISTINCT FROM b.n OR a.t IS DISTINCT FROM b.t;\n";
		if ($c->{kind} eq 'session' && $c->{mode} eq 'append')
		{
			$sql .= "CREATE TEMP TABLE $n->{sess} (step int, id int, ws_us bigint, we_us bigint);\n";
			my $rep = session_replay($c);
			if (@$rep)
			{
				$sql .= "COPY $n->{sess} FROM STDIN;\n"
				  . join('', map { join("\t", @$_) . "\n" } @$rep) . "\\.\n";
			}
		}
	}
	for my $N (1 .. $nsteps)
	{
		my $step = $c->{steps}[ $N - 1 ];
		$sql .= $o{check} ? "\\echo \@STEP $N\n" : "-- step $N\n";
		$sql .= step_insert_sql($c, $n, $N);
		my $proc = "streamagg.process('$n->{q}')";
		if ($step->{fault} && committed_rows($step))
		{
			# this trigger fails and leaves nothing behind; the next one
			# processes the same batch (DESIGN.md 3.8)
			$sql .= "SELECT streamagg.fail_next_trigger('$n->{q}', '$step->{fault}');\n"
			  . "\\set ON_ERROR_STOP 0\n"
			  . ($o{check} ? "SELECT format('X|%s', $proc);\n" : "SELECT $proc;  -- fails: injected fault\n")
			  . "\\set ON_ERROR_STOP 1\n";
		}
		$sql .= $o{check} ? "SELECT format('P|%s', $proc);\n" : "SELECT $proc;\n";
		$sql .= $o{check} ? "SELECT format('P|%s', $proc);\n" : "SELECT $proc;\n"
		  if $step->{twice};
		next unless $o{check};
		my $ref = "$n->{ref}_$N";
		$sql .= "CREATE TEMP TABLE $ref AS\n" . reference_sql($c, $n, $N) . ";\n";
		$sql .= diff_sql($c, $n, $ref);
		$sql .= "SELECT format('C|%s|%s', (SELECT count(*) FROM $n->{sink}), (SELECT count(*) FROM $ref));\n";
		if (defined $c->{delay} && $c->{ts_type} eq 'timestamptz')
		{
			my $filter = $c->{filter} ? " AND ($c->{filter}{sql})" : '';
			$sql .= "SELECT format('W|watermark: streamagg %s, expected %s', q.w, r.w)\n"
			  . "FROM (SELECT (extract(epoch FROM watermark) * 1000000)::bigint AS w FROM streamagg.queries WHERE name = '$n->{q}') q,\n"
			  . "     (SELECT max((extract(epoch FROM ts) * 1000000)::bigint) - $c->{delay} AS w FROM $n->{src}\n"
			  . "      WHERE batch <= $N AND isfinite(ts)$filter) r\n"
			  . "WHERE q.w IS DISTINCT FROM r.w;\n";
		}
	}
	if ($o{cleanup})
	{
		$sql .= "\\echo \@STEP done\n";
		$sql .= "SELECT streamagg.drop_query('$n->{q}', drop_sink => true);\nDROP TABLE $n->{src} CASCADE;\n";
	}
	return $sql;
}

sub names
{
	my ($tag) = @_;
	return {
		src => "src$tag",
		q => "q$tag",
		sink => "q${tag}_out",
		shape => "shape$tag",
		sess => "sess$tag",
		ref => "ref$tag",
	};
}

# ---------------------------------------------------------------------------
# Running.

# Start one case's psql script in the background; returns a job.
sub start_case
{
	my ($self, $c) = @_;
	my $node = $self->{node};
	my $tag = '_c' . $c->{caseno} . '_' . (++$self->{runs});
	my $job = { case => $c, n => names($tag), out => '', err => '', started => time() };
	$job->{script} = $self->case_script($c, $job->{n}, check => 1, cleanup => 1);
	# the script from a file: a scalar as stdin would stay open until finish
	$job->{file} = "$self->{tmpdir}/case$tag.sql";
	open my $fh, '>', $job->{file} or die "cannot write $job->{file}: $!";
	print $fh $job->{script};
	close $fh;
	my @cmd = ($node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1',
		'-d', $node->connstr('postgres'), '-f', $job->{file});
	$job->{timer} = IPC::Run::timeout($self->{case_timeout} + 30);
	$job->{h} = IPC::Run::start(\@cmd, '<', \undef, '>', \$job->{out},
		'2>', \$job->{err}, $job->{timer});
	return $job;
}

# Whether a job's psql has exited (or timed out); never blocks.
sub job_done
{
	my ($self, $job) = @_;
	return 1 if $job->{done};
	my $h = $job->{h};
	eval { $h->pump_nb if $h->pumpable; };
	if ($@ || $job->{timer}->is_expired)
	{
		$job->{timed_out} = 1;
		eval { $h->kill_kill; };
		$job->{done} = 1;
		unlink $job->{file};
		return 1;
	}
	return 0 if $h->pumpable;
	eval { $h->finish; };
	push @{ $self->{durations} }, [ time() - $job->{started}, $job->{case}{caseno}, describe($job->{case}) ];
	$job->{rc} = $h->full_result;
	$job->{done} = 1;
	unlink $job->{file};
	return 1;
}

# The failure of a finished job ({ class, step, detail }), or undef when the
# sink agreed with the reference after every step.  Crashes and failed
# connections are classed 'crash'.
sub finish_case
{
	my ($self, $job) = @_;
	my $c = $job->{case};
	my ($out, $err) = ($job->{out}, $job->{err});
	my $step = 0;
	my %fail;
	my @detail;
	my $expect_p = [];
	my %stats;
	for my $line (split /\n/, $out)
	{
		if ($line =~ /^\@STEP (\S+)/)
		{
			$step = $1;
			if ($step ne 'done' && $step > 0)
			{
				my $st = $c->{steps}[ $step - 1 ];
				my $cnt = scalar committed_rows($st);
				$expect_p = [ $cnt, $st->{twice} ? (0) : () ];
			}
			next;
		}
		if ($line =~ /^P\|(\d+)/)
		{
			my $want = shift @$expect_p;
			if (!defined $want || $1 != $want)
			{
				$fail{step} //= $step;
				push @detail, "step $step: process() returned $1, expected " . ($want // 'no call');
			}
			next;
		}
		if ($line =~ /^X\|(\d+)/)
		{
			$fail{step} //= $step;
			push @detail, "step $step: process() returned $1 although a fault was armed at "
			  . $c->{steps}[ $step - 1 ]{fault};
			next;
		}
		if ($line =~ /^C\|(\d+)\|(\d+)/)
		{
			$stats{sink_rows} += $1;
			$stats{steps}++;
			$stats{nonempty_steps}++ if $1 > 0;
			next;
		}
		if ($line =~ /^([DWT])\|(.*)/)
		{
			$fail{step} //= $step;
			push @detail, "step $step: $2";
			next;
		}
	}
	chomp $err;
	if ($job->{timed_out})
	{
		$self->terminate_backends;
		$self->cleanup($job->{n});
		return { class => 'timeout', step => $step,
			detail => "timed out after $self->{case_timeout} s in step $step\n$err" };
	}
	if ($job->{rc})
	{
		if ($err =~ /server closed the connection|connection to server was lost|terminating connection because of crash|no connection to the server|the database system is (in recovery mode|starting up|shutting down|not yet accepting)|connection to server .* failed/)
		{
			return { class => 'crash', step => $step, n => $job->{n},
				detail => "the server crashed during step $step:\n$err" };
		}
		$self->cleanup($job->{n});
		# the last error: injected faults come before it
		my @errors = $err =~ /ERROR:\s*(.*)/g;
		my $msg = $errors[-1];
		$msg //= $err;
		(my $sig = $msg) =~ s/\d+/N/g;
		$sig =~ s/"[^"]*"/"X"/g;
		return { class => "error: $sig", step => $step,
			detail => "error during step $step:\n$err" };
	}
	$self->{stats}{$_} += $stats{$_} for keys %stats;
	if (@detail)
	{
		return { class => 'mismatch', step => $fail{step}, detail => join("\n", @detail) };
	}
	return undef;
}

# Run one case alone; returns its failure or undef.
sub run_case
{
	my ($self, $c) = @_;
	my $job = $self->start_case($c);
	select(undef, undef, undef, 0.005) until $self->job_done($job);
	my $f = $self->finish_case($job);
	if ($f && $f->{class} eq 'crash')
	{
		$self->wait_for_server;
		$self->cleanup($f->{n});
	}
	return $f;
}

# Run cases $jobs at a time.  A case that fails while others run is run
# again alone (a crash takes its neighbours down too), and that run decides.
# $report->($caseno, $case, $failure_or_undef) is called once per case.
sub run_cases
{
	my ($self, $casenos, $jobs, $report, $stop) = @_;
	my @queue = @$casenos;
	my @running;
	my @suspects;
	my $hold = 0;    # start nothing until the running cases are done
	while (@queue || @running)
	{
		last if $stop && $stop->();
		while (!$hold && @running < $jobs && @queue)
		{
			my $no = shift @queue;
			push @running, $self->start_case($self->gen_case($no));
		}
		select(undef, undef, undef, 0.005);
		my @still;
		for my $job (@running)
		{
			if (!$self->job_done($job)) { push @still, $job; next; }
			my $f = $self->finish_case($job);
			if ($f && $jobs > 1)
			{
				push @suspects, $job->{case}{caseno};
				if ($f->{class} eq 'crash') { $hold = 1; push @{ $self->{crashed} }, $f->{n}; }
				else { $self->cleanup($job->{n}); }
				next;
			}
			if ($f && $f->{class} eq 'crash')
			{
				$self->wait_for_server;
				$self->cleanup($f->{n});
			}
			$report->($job->{case}{caseno}, $job->{case}, $f);
		}
		@running = @still;
		if ($hold && !@running)
		{
			$self->wait_for_server;
			$self->cleanup($_) for @{ $self->{crashed} // [] };
			$self->{crashed} = [];
			$hold = 0;
		}
		# the suspects, alone, as soon as they are few or the queue is empty
		if (@suspects && !@running && (!@queue || $hold == 0))
		{
			for my $no (sort { $a <=> $b } @suspects)
			{
				last if $stop && $stop->();
				my $c = $self->gen_case($no);
				$report->($no, $c, $self->run_case($c));
			}
			@suspects = ();
		}
	}
	return;
}

# Which features of DESIGN.md 2.1 (second round) the build has: the
# create_query parameter `filter` and DISTINCT inside aggregates.  Cases
# leave out what is missing; returns the list of missing ones with the
# server's error.
sub probe_features
{
	my ($self) = @_;
	my %probe = (
		inject => undef,
		filter => "aggregates => 'count(*) AS n', window_size => '1 minute', "
		  . "output_mode => 'update', filter => 'v > 0'",
		distinct => "aggregates => 'count(DISTINCT v) AS n', window_size => '1 minute', "
		  . "output_mode => 'update'",);
	my @missing;
	$self->{features} = {};
	$self->{node}->safe_psql('postgres', 'CREATE TABLE probe_src (ts timestamptz, v int)');
	for my $f (sort keys %probe)
	{
		if ($f eq 'inject')
		{
			my $have = $self->{node}->safe_psql('postgres',
				"SELECT to_regproc('streamagg.fail_next_trigger') IS NOT NULL");
			$self->{features}{inject} = $have eq 't' ? 1 : 0;
			push @missing, 'inject: no streamagg.fail_next_trigger()' if $have ne 't';
			next;
		}
		my ($rc, $out, $err) = $self->{node}->psql('postgres',
			"SELECT streamagg.create_query(name => 'probe_$f', source => 'probe_src', "
			  . "event_time => 'ts', $probe{$f});\n"
			  . "SELECT streamagg.drop_query('probe_$f', drop_sink => true);");
		$self->{features}{$f} = $rc == 0 ? 1 : 0;
		$err =~ s/\n.*//s;
		push @missing, "$f: $err" if $rc;
	}
	$self->{node}->safe_psql('postgres', 'DROP TABLE probe_src');
	return @missing;
}

sub wait_for_server
{
	my ($self) = @_;
	my $node = $self->{node};
	for (1 .. 240)
	{
		my $rc = $node->psql('postgres', 'SELECT 1', stdout => \my $o, stderr => \my $e);
		return if defined $rc && $rc == 0;
		if (!-f $node->data_dir . '/postmaster.pid')
		{
			# the postmaster is gone: start it again
			$node->_update_pid(0);
			$node->start;
		}
		select(undef, undef, undef, 0.25);
	}
	die "the server did not come back after a crash";
}

sub terminate_backends
{
	my ($self) = @_;
	$self->{node}->psql('postgres',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'streamagg_diff'",
		on_error_stop => 0);
	return;
}

sub cleanup
{
	my ($self, $n) = @_;
	$self->{node}->psql('postgres',
		"SELECT streamagg.drop_query('$n->{q}', drop_sink => true);\n"
		  . "DROP TABLE IF EXISTS $n->{src}, $n->{sink} CASCADE;\n",
		on_error_stop => 0, stdout => \my $o, stderr => \my $e);
	return;
}

# ---------------------------------------------------------------------------
# Shrinking.

sub clone_case
{
	my ($c) = @_;
	my %n = %$c;
	$n{keys} = [ map { {%$_} } @{ $c->{keys} } ];
	$n{aggs} = [ map { {%$_} } @{ $c->{aggs} } ];
	$n{steps} = [
		map {
			{
				twice => $_->{twice},
				($_->{fault} ? (fault => $_->{fault}) : ()),
				txs => [ map { { rollback => $_->{rollback}, rows => [ @{ $_->{rows} } ] } } @{ $_->{txs} } ]
			}
		} @{ $c->{steps} } ];
	return \%n;
}

sub all_rows
{
	my ($c) = @_;
	return map { @{ $_->{rows} } } map { @{ $_->{txs} } } @{ $c->{steps} };
}

sub nrows
{
	my ($c) = @_;
	my $n = 0;
	$n += scalar @{ $_->{rows} } for map { @{ $_->{txs} } } @{ $c->{steps} };
	return $n;
}

# Structural simplifications of a case (not row by row), most drastic first.
sub shrink_candidates
{
	my ($c, $fail) = @_;
	my @cand;
	my $ns = @{ $c->{steps} };

	# drop the steps after the failing one
	if ($fail->{step} =~ /^\d+$/ && $fail->{step} >= 1 && $fail->{step} < $ns)
	{
		my $x = clone_case($c);
		splice(@{ $x->{steps} }, $fail->{step});
		push @cand, $x;
	}
	# drop a step, merge a step into the next
	for my $i (0 .. $ns - 1)
	{
		my $x = clone_case($c);
		splice(@{ $x->{steps} }, $i, 1);
		push @cand, $x if @{ $x->{steps} };
	}
	for my $i (0 .. $ns - 2)
	{
		my $x = clone_case($c);
		my $s = splice(@{ $x->{steps} }, $i, 1);
		unshift @{ $x->{steps}[$i]{txs} }, @{ $s->{txs} };
		push @cand, $x;
	}
	# transactions: drop rolled back or empty ones, merge a step's
	for my $si (0 .. $ns - 1)
	{
		my $txs = $c->{steps}[$si]{txs};
		for my $ti (0 .. $#$txs)
		{
			next unless $txs->[$ti]{rollback} || !@{ $txs->[$ti]{rows} };
			my $x = clone_case($c);
			splice(@{ $x->{steps}[$si]{txs} }, $ti, 1);
			push @cand, $x;
		}
		if (@$txs > 1 && !grep { $_->{rollback} } @$txs)
		{
			my $x = clone_case($c);
			$x->{steps}[$si]{txs} = [ { rollback => 0, rows => [ map { @{ $_->{rows} } } @$txs ] } ];
			push @cand, $x;
		}
		if ($c->{steps}[$si]{fault})
		{
			my $x = clone_case($c);
			delete $x->{steps}[$si]{fault};
			push @cand, $x;
		}
		if ($c->{steps}[$si]{twice})
		{
			my $x = clone_case($c);
			$x->{steps}[$si]{twice} = 0;
			push @cand, $x;
		}
	}
	# aggregates, filter, keys, time zone
	if (@{ $c->{aggs} } > 1)
	{
		for my $i (0 .. $#{ $c->{aggs} })
		{
			my $x = clone_case($c);
			splice(@{ $x->{aggs} }, $i, 1);
			push @cand, $x;
		}
	}
	for my $i (0 .. $#{ $c->{aggs} })
	{
		next if $c->{aggs}[$i]{sql} eq 'count(*)';
		my $x = clone_case($c);
		$x->{aggs}[$i] = { sql => 'count(*)', cmp => 'value', alias => $c->{aggs}[$i]{alias} };
		push @cand, $x;
	}
	if ($c->{filter})
	{
		my $x = clone_case($c);
		delete $x->{filter};
		push @cand, $x;
	}
	my $min_keys = $c->{kind} eq 'session' ? 1 : 0;
	my @keys = @{ $c->{keys} };
	if (grep({ $_->{kind} ne 'ts' } @keys) > $min_keys)
	{
		for my $i (0 .. $#keys)
		{
			next if $keys[$i]{kind} eq 'ts';
			my $x = clone_case($c);
			my ($k) = splice(@{ $x->{keys} }, $i, 1);
			if ($k->{kind} eq 'col')
			{
				my $ci = grep { $_->{kind} eq 'col' } @keys[ 0 .. $i - 1 ];
				for my $tx (map { @{ $_->{txs} } } @{ $x->{steps} })
				{
					$tx->{rows} = [
						map {
							my %r = %$_;
							$r{kv} = [ @{ $_->{kv} } ];
							$r{kid} = [ @{ $_->{kid} } ];
							splice(@{ $r{kv} }, $ci, 1);
							splice(@{ $r{kid} }, $ci, 1);
							\%r
						} @{ $tx->{rows} } ];
				}
			}
			push @cand, $x;
		}
	}
	if ($c->{timezone} ne 'UTC')
	{
		my $x = clone_case($c);
		$x->{timezone} = 'UTC';
		push @cand, $x;
	}
	# values: a value column all NULL (unless already), for a shorter script
	for my $col (qw(vf vn vb vi))
	{
		next unless grep { defined $_->{$col} } all_rows($c);
		my $x = clone_case($c);
		for my $tx (map { @{ $_->{txs} } } @{ $x->{steps} })
		{
			$tx->{rows} = [ map { { %$_, $col => undef } } @{ $tx->{rows} } ];
		}
		push @cand, $x;
	}
	return @cand;
}

# The case without the rows at positions [$from, $to) (in step order).
sub without_rows
{
	my ($c, $from, $to) = @_;
	my $x = clone_case($c);
	my $pos = 0;
	for my $tx (map { @{ $_->{txs} } } @{ $x->{steps} })
	{
		my @keep;
		for my $r (@{ $tx->{rows} })
		{
			push @keep, $r unless $pos >= $from && $pos < $to;
			$pos++;
		}
		$tx->{rows} = \@keep;
	}
	return $x;
}

# Minimize a failing case while it fails the same way (same class):
# structural passes, then ddmin over the rows, until nothing helps or the
# time is up.  Returns the smallest case, its failure and the runs used.
sub shrink
{
	my ($self, $c, $fail) = @_;
	my $deadline = time() + $self->{shrink_seconds};
	my $tries = 0;
	my $try = sub {
		my ($x) = @_;
		$tries++;
		my $f = $self->run_case($x);
		return $f && $f->{class} eq $fail->{class} ? $f : undef;
	};
	my $progress = 1;
	while ($progress && time() < $deadline)
	{
		$progress = 0;

		# structure, repeated while it helps
		my $again = 1;
		while ($again && time() < $deadline)
		{
			$again = 0;
			for my $x (shrink_candidates($c, $fail))
			{
				last if time() >= $deadline;
				if (my $f = $try->($x))
				{
					($c, $fail, $again, $progress) = ($x, $f, 1, 1);
					last;
				}
			}
		}

		# rows: remove chunks, halving their size
		my $total = nrows($c);
		my $chunk = int($total / 2) || 1;
		while ($total > 0 && time() < $deadline)
		{
			my $start = 0;
			while ($start < $total && time() < $deadline)
			{
				my $x = without_rows($c, $start, $start + $chunk);
				if (my $f = $try->($x))
				{
					($c, $fail, $progress) = ($x, $f, 1);
					$total = nrows($c);
				}
				else { $start += $chunk; }
			}
			last if $chunk == 1;
			$chunk = int($chunk / 2) || 1;
		}
	}
	return ($c, $fail, $tries);
}

# ---------------------------------------------------------------------------
# Reporting.

sub describe
{
	my ($c) = @_;
	my $w =
	    $c->{kind} eq 'tumbling' ? "tumbling $c->{size_txt}"
	  : $c->{kind} eq 'sliding' ? "sliding $c->{size_txt}/$c->{slide_txt}"
	  : $c->{kind} eq 'session' ? "session $c->{gap_txt}"
	  : $c->{kind} eq 'tskey' ? 'event-time key'
	  : 'no window';
	$w .= " offset $c->{offset_txt}" if $c->{offset_txt};
	my @k = map { $_->{kind} eq 'col' ? "$_->{type}($_->{card})" : $_->{name} } @{ $c->{keys} };
	return sprintf("%s, %s%s, keys [%s], %d aggs, %d rows in %d steps (%s)",
		$w, $c->{mode},
		defined $c->{delay_txt} ? ", watermark $c->{delay_txt}" : '',
		join(' ', @k), scalar @{ $c->{aggs} }, nrows($c), scalar @{ $c->{steps} },
		$c->{order} // '?');
}

# A psql script reproducing a case by hand, with the reference query of the
# failing step.
sub repro_sql
{
	my ($self, $c, $fail) = @_;
	my $n = {
		src => 'src', q => 'q', sink => 'q_out', shape => 'shape', sess => 'sess',
		ref => 'expected'
	};
	my $upto = ($fail->{step} // '') =~ /^\d+$/ && $fail->{step} > 0
	  ? $fail->{step} : scalar @{ $c->{steps} };
	$upto = scalar @{ $c->{steps} } if $upto > @{ $c->{steps} };
	my $sql = "-- streamagg differential test: seed $c->{seed}, case $c->{caseno}\n"
	  . "-- " . describe($c) . "\n"
	  . "-- failure ($fail->{class}):\n"
	  . join('', map { "--   $_\n" } split(/\n/, $fail->{detail}))
	  . "CREATE EXTENSION IF NOT EXISTS streamagg;\n";
	$sql .= $self->case_script($c, $n, upto => $upto);
	my @order = (1 .. (windowed($c) ? 2 : 0) + scalar @{ $c->{keys} });
	$sql .= "TABLE q_out" . (@order ? ' ORDER BY ' . join(', ', @order) : '') . ";\n";
	if ($c->{kind} eq 'session' && $c->{mode} eq 'append')
	{
		my @rep = grep { $_->[0] == $upto } @{ session_replay($c) };
		$sql .= "-- expected sessions after step $upto (DESIGN.md 3.2-3.4, replayed in perl):\n"
		  . "CREATE TEMP TABLE sess (step int, id int, ws_us bigint, we_us bigint);\n"
		  . (@rep ? "INSERT INTO sess VALUES " . join(', ', map { '(' . join(', ', @$_) . ')' } @rep) . ";\n" : '');
	}
	$sql .= "-- expected sink after step $upto (window bounds in microseconds since the epoch):\n"
	  . reference_sql($c, $n, $upto) . "\nORDER BY " . (@order ? join(', ', @order) : '1') . ";\n";
	return $sql;
}

1;
