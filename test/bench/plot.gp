# plot.gp: the benchmark's throughput and latency as one SVG or PNG (BENCH_PLOT).
#
# run.sh calls it with -e "dir='...'; out='...'; latency_rates='500 2000';
# sustain_rates='...'" after writing, in dir:
#   plot_worker.csv   dataset, events/s of process(), GROUP BY, recompute upsert
#   plot_latency.csv  rate, percentile (0-100), commit-to-visible ms
#   plot_lag.csv      rate, seconds, unconsumed events (scenario 5; may be empty)
# A panel whose scenario did not run is left out.

set datafile separator ","
height = 420 * (1 + (sustain_rates ne ""))
if (strlen(out) > 4 && out[strlen(out) - 3:] eq ".png") {
	set terminal pngcairo size 1200, height font "sans,10"
} else {
	set terminal svg size 1200, height dynamic font "sans,11"
}
set output out
set termoption noenhanced
set key top left
set grid ytics

has_worker = system("test -s " . dir . "/plot_worker.csv && echo 1 || echo 0") + 0
has_latency = system("test -s " . dir . "/plot_latency.csv && echo 1 || echo 0") + 0
has_lag = (sustain_rates ne "")
panels = has_worker + has_latency + has_lag
if (panels == 0) { print "plot.gp: no scenario 2, 3 or 5 data to plot"; exit }
set multiplot layout (panels > 2 ? 2 : 1), (panels > 1 ? 2 : 1)

if (has_worker) {
	set title "2. worker speed: events absorbed per second (median; higher is better)"
	set key below
	set style data histograms
	set style histogram clustered gap 1
	set style fill solid 0.8 border -1
	set logscale y
	set ylabel "events / s"
	set xtics rotate by -20
	plot dir . "/plot_worker.csv" using 2:xtic(1) title "streamagg process()", \
		 "" using 3 title "GROUP BY (no output written)", \
		 "" using 4 title "recompute INSERT ... ON CONFLICT"
	unset logscale y
	unset xtics
	set xtics
	set style data lines
	set key inside top left
}

if (has_latency) {
	set title "3. commit-to-visible latency, trigger_interval '0' (every event)"
	set xlabel "percentile of events"
	set ylabel "ms"
	set logscale y
	set xrange [0:100]
	plot for [r in latency_rates] dir . "/plot_latency.csv" \
		using 2:($1 == r + 0 ? $3 : NaN) with lines linewidth 2 title r . " tx/s"
	unset logscale y
	unset xrange
	unset xlabel
}

if (has_lag) {
	set title "5. sustained load: committed events not yet consumed"
	set xlabel "seconds"
	set ylabel "events"
	plot for [r in sustain_rates] dir . "/plot_lag.csv" \
		using 2:($1 == r + 0 ? $3 : NaN) with linespoints title r . " tx/s"
}

unset multiplot
