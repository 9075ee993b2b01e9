/*-------------------------------------------------------------------------
 *
 * window.c
 *	  The window formula (DESIGN.md 3.1) and the watermark rule (3.3).
 *
 * This file is the only place that knows which windows a row falls into,
 * when a window is late, and how the watermark moves.  Times are
 * microseconds since the PostgreSQL epoch, as in a timestamp(tz) Datum;
 * window starts are aligned to the Unix epoch plus the window offset.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

/* Floor modulo: the result has the sign of the divisor (d > 0 here). */
static inline int64
floor_mod(int64 n, int64 d)
{
	int64		r = n % d;

	return r < 0 ? r + d : r;
}

/* How many windows a row can fall into: ceil(size / slide). */
int
sa_window_count(const SaQuery *q)
{
	int64		size = q->def.window_size;
	int64		slide = q->def.window_slide;

	return (int) ((size + slide - 1) / slide);
}

/*
 * Fill "starts" (sa_window_count entries) with the starts of the windows
 * [start, start + size) containing t, latest first, and return how many
 * there are.  For slide S and size W a row at t belongs to the windows
 * starting at t - ((t - offset) mod S) - i*S, i = 0 .. ceil(W/S)-1, keeping
 * those with start <= t < start + W.
 */
int
sa_windows_for_time(const SaQuery *q, int64 t, int64 *starts)
{
	int64		slide = q->def.window_slide;
	int64		size = q->def.window_size;
	int64		unix_t = t + SA_UNIX_EPOCH_OFFSET_USEC;
	int64		latest = t - floor_mod(unix_t - q->def.window_offset, slide);
	int			count = sa_window_count(q);
	int			n = 0;

	for (int i = 0; i < count; i++)
	{
		int64		start = latest - i * slide;

		if (t < start + size)
			starts[n++] = start;
	}
	return n;
}

static int64
gcd64(int64 a, int64 b)
{
	while (b != 0)
	{
		int64		r = a % b;

		a = b;
		b = r;
	}
	return a;
}

/*
 * Sliding windows cut time into panes of gcd(size, slide), aligned like the
 * windows: every instant of a pane belongs to the same windows, so rows can
 * be aggregated per pane first and each pane combined into its windows.
 */
int64
sa_pane_start(const SaQuery *q, int64 t)
{
	int64		pane = gcd64(q->def.window_size, q->def.window_slide);

	return t - floor_mod(t + SA_UNIX_EPOCH_OFFSET_USEC - q->def.window_offset,
						 pane);
}

int64
sa_window_end(const SaQuery *q, int64 start)
{
	return start + q->def.window_size;
}

/*
 * A row is dropped from a window as late when the window has already closed
 * under the watermark of the previous batch: window_end <= W(N-1).  The
 * caller asks only when there is such a watermark (and not in complete mode).
 */
bool
sa_window_is_late(int64 window_end, int64 watermark_for_late_rows)
{
	return window_end <= watermark_for_late_rows;
}

/*
 * W(N) = max(W(N-1), max event time seen so far - delay): it never moves
 * back.  "has_previous" is false before the first batch with rows.
 */
int64
sa_watermark_advance(bool has_previous, int64 previous,
					 int64 max_event_time, int64 delay)
{
	int64		candidate = max_event_time - delay;

	if (has_previous && previous > candidate)
		return previous;
	return candidate;
}
