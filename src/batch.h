/*-------------------------------------------------------------------------
 *
 * batch.h
 *	  The batch of a trigger: which events it reads, and folding them into
 *	  the state (batch.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_BATCH_H
#define STREAMAGG_BATCH_H

#include "streamagg.h"
#include "output.h"

#include "catalog.h"
#include "late_sink.h"
#include "state.h"

/* Counters of one batch (docs/semantics.md §7). */
typedef struct SaBatchCounts
{
	int64		input_rows;
	int64		late_rows;
	int64		null_time_rows;
	int64		filtered_rows;	/* dropped by filter or an inner join */
	int64		duplicate_rows; /* dropped by dedup */
	int64		late_rows_written;	/* into the late sink */
	bool		has_event_time;
	int64		event_time_min;
	int64		event_time_max;
} SaBatchCounts;

extern Datum sa_committed_snapshot(void);
extern uint64 sa_select_unconsumed(const SaQuery *q, const SaCheckpoint *cp,
								   Datum snapshot, const char *targets);
extern char *sa_batch_predicate(const char *xid_column, bool has_previous,
								Datum previous, Datum snapshot);
extern bool sa_idle_trigger_due(const SaCheckpoint *cp, bool has_idle_timeout,
								int64 idle_timeout, TimestampTz now);
extern bool sa_plan_batch(const SaScheduledQuery *sq, bool *bounded);
extern void sa_check_snapshot_order(SaQuery *q, const SaCheckpoint *cp,
									Datum snapshot);
extern void sa_fold_batch(SaStateStore *store, SaStateStore *dedup,
						  const SaCheckpoint *cp, Datum snapshot,
						  SaLateRows *late, SaBatchCounts *counts,
						  SaOutput *appended);

#endif							/* STREAMAGG_BATCH_H */
