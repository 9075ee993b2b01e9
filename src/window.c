/*-------------------------------------------------------------------------
 *
 * window.c
 *	  The window formula (docs/semantics.md §1), the windows of a row for
 *	  every kind of query, the closed-by rule and the watermark rule (§3).
 *
 * This file is the only place that knows which windows a row falls into,
 * when a window is closed (for late rows, emission and eviction alike),
 * and how the watermark moves, with events or while the source is idle.  Times are
 * microseconds since the PostgreSQL epoch, as in a timestamp(tz) Datum;
 * window starts are aligned to the Unix epoch plus the window offset.
 *
 * Every window and watermark stays inside the range of timestamps,
 * [MIN_TIMESTAMP, END_TIMESTAMP): a row whose windows would leave it is
 * treated like a row without event time (sa_row_windows returns -1), and
 * a watermark below it is clamped to its start.  The arithmetic never
 * overflows: intervals are bounded at creation (sa_interval_usec) and sums
 * near the ends are checked.
 *
 * Calendar windows (time_zone, or sizes in months; §13) are the same
 * formula run on local wall-clock time, with bounds converted back
 * (calendar_row_windows); sa_row_windows chooses by q->calendar, which the
 * compiled query fixes once.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "common/int.h"
#include "pgtime.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "window.h"

/* Floor modulo: the result has the sign of the divisor (d > 0 here). */
static inline int64
floor_mod(int64 n, int64 d)
{
	int64		r = n % d;

	Assert(d > 0);
	return r < 0 ? r + d : r;
}

/*
 * (t - origin) mod d, with origin the Unix epoch plus "offset", without
 * overflow for any timestamp t: t + SA_UNIX_EPOCH_OFFSET_USEC itself may
 * not fit in int64.
 */
static inline int64
aligned_mod(int64 t, int64 offset, int64 d)
{
	int64		r = floor_mod(t, d) +
		floor_mod(SA_UNIX_EPOCH_OFFSET_USEC - offset, d);

	return r >= d ? r - d : r;
}

/* Does [start, end) lie inside the range of timestamps? */
static inline bool
window_in_range(int64 start, int64 end)
{
	return start >= MIN_TIMESTAMP && end < END_TIMESTAMP;
}

/*
 * How many windows a row can fall into: ceil(size / slide), or 1; for
 * calendar windows two more, the neighbours that a bound moved by a DST
 * change may add (calendar_row_windows).
 */
int
sa_window_count(const SaQuery *q)
{
	int64		size = q->def.window_size;
	int64		slide = q->def.window_slide;

	if (!q->def.has_window)
		return 1;
	if (q->def.window_size_months > 0)
		return 1 + 2;
	Assert(size / slide <= SA_MAX_WINDOWS_PER_ROW);
	return (int) (size / slide + (size % slide != 0)) + (q->calendar ? 2 : 0);
}

/*
 * The local wall-clock time of t in q's zone, as a timestamp taken as UTC
 * (t AT TIME ZONE zone); t itself without a zone.  False out of range.
 */
static bool
local_time(const SaQuery *q, int64 t, int64 *local)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	if (q->zone == NULL)
	{
		*local = t;
		return true;
	}
	if (timestamp2tm(t, &tz, &tm, &fsec, NULL, q->zone) != 0)
		return false;
	/* tz is the zone's offset in seconds west of UTC */
	return !pg_sub_s64_overflow(t, (int64) tz * USECS_PER_SEC, local);
}

/*
 * The instant of a local wall-clock time in q's zone (local AT TIME ZONE
 * zone, PostgreSQL's own rule for times in a DST gap or overlap); local
 * itself without a zone.  False out of range.
 */
static bool
instant_of_local(const SaQuery *q, int64 local, int64 *t)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	if (q->zone == NULL)
	{
		*t = local;
		return true;
	}
	if (timestamp2tm(local, NULL, &tm, &fsec, NULL, NULL) != 0)
		return false;
	tz = DetermineTimeZoneOffset(&tm, q->zone);
	return !pg_add_s64_overflow(local, (int64) tz * USECS_PER_SEC, t);
}

/* Months since 1970-01 of a local time (floor), and the start of a month. */
static bool
month_of(int64 local, int32 *month)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(local, NULL, &tm, &fsec, NULL, NULL) != 0)
		return false;
	*month = (tm.tm_year - 1970) * MONTHS_PER_YEAR + tm.tm_mon - 1;
	return true;
}

static bool
month_start(int32 month, int64 *local)
{
	struct pg_tm tm;
	int32		year = month >= 0 ? month / MONTHS_PER_YEAR :
		-((-month - 1) / MONTHS_PER_YEAR) - 1;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = 1970 + year;
	tm.tm_mon = month - year * MONTHS_PER_YEAR + 1;
	tm.tm_mday = 1;
	return tm2timestamp(&tm, 0, NULL, local) == 0;
}

/*
 * The local bounds of calendar window number k (counted from the one that
 * holds local time 1970-01-01 00:00 plus the offset): for days, k slides
 * from the aligned origin; for months, k sizes of months.
 */
static bool
calendar_window(const SaQuery *q, int64 k, int64 *start, int64 *end)
{
	const SaDefinition *def = &q->def;

	if (def->window_size_months > 0)
	{
		int64		first = k * def->window_size_months + def->window_offset_months;

		if (first < PG_INT32_MIN || first + def->window_size_months > PG_INT32_MAX ||
			!month_start((int32) first, start) ||
			!month_start((int32) (first + def->window_size_months), end))
			return false;
		/* the offset's days and time shift both bounds */
		*start += def->window_offset;
		*end += def->window_offset;
		return true;
	}
	/* k is bounded by the range of timestamps over a slide of days */
	*start = k * def->window_slide + def->window_offset - SA_UNIX_EPOCH_OFFSET_USEC;
	return !pg_add_s64_overflow(*start, def->window_size, end);
}

/* The number of the latest calendar window starting at or before local. */
static bool
latest_calendar_window(const SaQuery *q, int64 local, int64 *k)
{
	const SaDefinition *def = &q->def;

	if (def->window_size_months > 0)
	{
		int32		month;
		int64		shifted;

		/* before the offset's days and time, a month still counts as the last */
		if (pg_sub_s64_overflow(local, def->window_offset, &shifted) ||
			!month_of(shifted, &month))
			return false;
		month -= def->window_offset_months;
		*k = month >= 0 ? month / def->window_size_months :
			-((-month - 1) / def->window_size_months) - 1;
		return true;
	}
	*k = (local - aligned_mod(local, def->window_offset, def->window_slide) +
		  SA_UNIX_EPOCH_OFFSET_USEC - def->window_offset) / def->window_slide;
	return true;
}

/*
 * Calendar windows (docs/semantics.md §13): the formula of §1 on the local
 * wall-clock time L of t, whose windows' local bounds are then converted
 * back to instants.  A row belongs to the windows whose converted bounds
 * hold t: consecutive windows share their converted bounds, so even where
 * a bound falls in a DST gap or overlap every instant lies in exactly one
 * tumbling window.  The candidates are the windows of L and one more on
 * each side, which a bound moved by a DST change can bring in.
 */
static int
calendar_row_windows(const SaQuery *q, int64 t, int64 *starts, int64 *ends)
{
	int			count = sa_window_count(q) - 2;
	int64		local;
	int64		latest;
	int			n = 0;

	if (!local_time(q, t, &local) || !latest_calendar_window(q, local, &latest))
		return -1;
	for (int64 k = latest + 1; k >= latest - count; k--)
	{
		int64		local_start;
		int64		local_end;
		int64		start;
		int64		end;

		if (!calendar_window(q, k, &local_start, &local_end) ||
			!instant_of_local(q, local_start, &start) ||
			!instant_of_local(q, local_end, &end))
			return -1;
		if (t < start || t >= end)
			continue;
		if (!window_in_range(start, end))
			return -1;
		starts[n] = start;
		ends[n] = end;
		n++;
	}
	/* tumbling windows partition time; sliding ones cover it */
	Assert(n <= sa_window_count(q));
	Assert(n <= 1 || (q->def.window_size_months == 0 &&
					  q->def.window_size != q->def.window_slide));
	return n > 0 ? n : -1;
}

/*
 * The windows [starts[i], ends[i]) that a row at event time t falls into,
 * latest first (sa_window_count entries of room), for every kind of query:
 *	  - window_size: for slide S and size W, the windows starting at
 *		t - ((t - offset) mod S) - i*S, i = 0 .. ceil(W/S)-1, keeping those
 *		with start <= t < start + W;
 *	  - session windows: the row's own session [t, t + gap), which
 *		session.c merges with the key's others;
 *	  - no window: one group per key, bounded by t (t, t) when the event
 *		time is a group key (3.5), else (0, 0).
 * Returns how many, or -1 when one of them would leave the range of
 * timestamps.
 */
int
sa_row_windows(const SaQuery *q, int64 t, int64 *starts, int64 *ends)
{
	int64		slide = q->def.window_slide;
	int64		size = q->def.window_size;
	int64		latest;
	int			count;
	int			n = 0;

	Assert(!TIMESTAMP_NOT_FINITE(t));
	if (q->calendar)
		return calendar_row_windows(q, t, starts, ends);
	if (q->def.has_session)
	{
		starts[0] = t;
		if (pg_add_s64_overflow(t, q->def.session_gap, &ends[0]) ||
			!window_in_range(t, ends[0]))
			return -1;
		return 1;
	}
	if (!q->def.has_window)
	{
		starts[0] = ends[0] = q->event_time_key >= 0 ? t : 0;
		return 1;
	}
	/* no overflow below: intervals are shorter than SA_MAX_INTERVAL_USEC */
	latest = t - aligned_mod(t, q->def.window_offset, slide);
	count = sa_window_count(q);
	for (int i = 0; i < count; i++)
	{
		int64		start = latest - i * slide;
		int64		end;

		if (pg_add_s64_overflow(start, size, &end))
			return -1;
		if (t >= end)
			continue;			/* the last candidate, when slide does not divide size */
		if (!window_in_range(start, end))
			return -1;
		/* [start, end) holds t, and starts are aligned to the slide */
		Assert(start <= t && t < end);
		Assert(aligned_mod(start, q->def.window_offset, slide) == 0);
		starts[n] = start;
		ends[n] = end;
		n++;
	}
	Assert(n > 0 && n <= count);
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
 * be aggregated per pane first and each pane combined into its windows
 * (the windows of a pane are sa_row_windows of its start).
 */
int64
sa_pane_start(const SaQuery *q, int64 t)
{
	int64		pane = gcd64(q->def.window_size, q->def.window_slide);

	return t - aligned_mod(t, q->def.window_offset, pane);
}

/*
 * The one test behind lateness, emission and eviction: a window (a
 * session, or a windowless group bounded by its event time) is closed by a
 * watermark W when it ends at or before W.  Against W(N-1) it says that a
 * row of batch N is late for that window (docs/semantics.md §4, step 2);
 * against W(N), that batch N emits the window in append mode and evicts it
 * (step 4).
 */
bool
sa_closed_by(int64 window_end, int64 watermark)
{
	return window_end <= watermark;
}

/*
 * Does a watermark close windows of q at all (for late rows and eviction
 * alike)?  Only once there is a watermark, only for queries whose groups
 * end (a window, a session, or the event time as a key), and never in
 * complete mode, which keeps every window and takes every row.
 */
bool
sa_watermark_closes_windows(const SaQuery *q, bool has_watermark)
{
	return has_watermark && q->has_event_time_bound &&
		q->def.output_mode != SA_OUTPUT_COMPLETE;
}

/*
 * The greatest event time seen so far, after a batch: the one before it
 * (if any) or the batch's (if it had rows with an event time).
 */
bool
sa_max_event_time_after(bool has_before, int64 before, bool has_batch,
						int64 batch_max, int64 *max_seen)
{
	*max_seen = has_before && (!has_batch || before > batch_max) ?
		before : batch_max;
	return has_before || has_batch;
}

/*
 * The watermark rule (docs/semantics.md §3): W(N) = max(W(N-1), max event time
 * seen so far - delay).  It never moves back; it is NULL (false returned)
 * until the first batch with rows, and stays W(N-1) after a batch without
 * event times or for a query without a watermark.  Below the range of
 * timestamps it is the range's start: no window ends there.
 */
bool
sa_watermark_after_batch(const SaQuery *q, bool has_previous, int64 previous,
						 bool batch_has_times, int64 max_seen,
						 int64 *watermark)
{
	int64		candidate;

	*watermark = previous;
	if (!q->def.has_watermark || !batch_has_times)
		return has_previous;
	if (pg_sub_s64_overflow(max_seen, q->def.watermark_delay, &candidate) ||
		candidate < MIN_TIMESTAMP)
		candidate = MIN_TIMESTAMP;
	if (!has_previous || candidate > previous)
		*watermark = candidate;
	return true;
}

/*
 * The idle rule (docs/semantics.md §11): a trigger at time "trigger_time"
 * without events is idle when the query has an idle timeout and the last
 * trigger that had event times started (at "events_at") at least that
 * long ago.  Both times are trigger start times, wall clock.  Used both
 * to plan an idle trigger (batch.c) and to run one (trigger.c).
 */
bool
sa_source_idle(bool has_idle_timeout, int64 idle_timeout, bool has_events_at,
			   TimestampTz events_at, TimestampTz trigger_time)
{
	return has_idle_timeout && has_events_at &&
		trigger_time - events_at >= idle_timeout;
}

/*
 * The watermark of an idle trigger: event time is assumed to have kept
 * pace with the wall clock since the last trigger with event times,
 * W = max(W(N-1), M + (T - T_M) - delay), with M the greatest event time
 * seen, T_M that trigger's time and T this one's.  Returns whether it
 * moves past W(N-1) (an idle trigger that does not move it does nothing).
 * Above the range of timestamps it stops just below its end, where every
 * window has ended.
 */
bool
sa_idle_watermark(const SaQuery *q, bool has_previous, int64 previous,
				  int64 max_seen, TimestampTz events_at,
				  TimestampTz trigger_time, int64 *watermark)
{
	int64		candidate;

	Assert(q->def.has_watermark && trigger_time >= events_at);
	*watermark = previous;
	/* trigger_time - events_at is at most the age of the cluster's clock */
	if (pg_add_s64_overflow(max_seen, trigger_time - events_at, &candidate) ||
		pg_sub_s64_overflow(candidate, q->def.watermark_delay, &candidate) ||
		candidate >= END_TIMESTAMP)
		candidate = END_TIMESTAMP - 1;
	if (candidate < MIN_TIMESTAMP)
		candidate = MIN_TIMESTAMP;
	if (has_previous && candidate <= previous)
		return false;
	*watermark = candidate;
	return true;
}
