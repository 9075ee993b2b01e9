/*-------------------------------------------------------------------------
 *
 * window.h
 *	  The window formula, the closed-by rule and the watermark rule (window.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_WINDOW_H
#define STREAMAGG_WINDOW_H

#include "streamagg.h"

extern int	sa_window_count(const SaQuery *q);
extern int	sa_row_windows(const SaQuery *q, int64 t, int64 *starts,
						   int64 *ends);
extern int64 sa_pane_start(const SaQuery *q, int64 t);
extern bool sa_closed_by(int64 window_end, int64 watermark);
extern bool sa_watermark_closes_windows(const SaQuery *q, bool has_watermark);
extern bool sa_max_event_time_after(bool has_before, int64 before,
									bool has_batch, int64 batch_max,
									int64 *max_seen);
extern bool sa_watermark_after_batch(const SaQuery *q, bool has_previous,
									 int64 previous, bool batch_has_times,
									 int64 max_seen, int64 *watermark);
extern bool sa_source_idle(bool has_idle_timeout, int64 idle_timeout,
						   bool has_events_at, TimestampTz events_at,
						   TimestampTz trigger_time);
extern bool sa_idle_watermark(const SaQuery *q, bool has_previous,
							  int64 previous, int64 max_seen,
							  TimestampTz events_at, TimestampTz trigger_time,
							  int64 *watermark);

#endif							/* STREAMAGG_WINDOW_H */
