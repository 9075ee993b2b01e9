/*-------------------------------------------------------------------------
 *
 * trigger.c
 *	  One trigger of a query, in the caller's transaction: the steps of
 *	  docs/semantics.md §4.
 *
 *	  1. read the batch: the events committed between the snapshot the last
 *	     trigger consumed and a new one, or the planned one (batch.c);
 *	  2. skip rows with a NULL event time, drop rows of windows that the
 *	     previous watermark W(N-1) closed (batch.c);
 *	  3. update the groups of the windows (or sessions) the rows fall into
 *	     (batch.c, working_set.c, group.c);
 *	  4. compute W(N) (window.c), close what it closes and choose the rows
 *	     to emit by output mode (emit.c), write them to the sink (sink.c)
 *	     and notify (notify.c);
 *	  5. make the state durable (state_log.c), record the checkpoint and
 *	     the batch's progress (catalog.c), and let the shared state trust
 *	     this trigger once it commits (shared_state.c).
 *
 * The caller commits: source position, state, sink and progress become
 * visible together or not at all.  A batch with no rows writes nothing,
 * unless the source is idle (docs/semantics.md §11): then the trigger
 * moves the watermark as if event time kept pace with the wall clock, and
 * steps 4 and 5 run as for any batch (an idle trigger).
 * The query's lock serialises triggers of one query across backends.  The
 * whole trigger runs as the query's owner (security.c).
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "batch_limit.h"
#include "catalog.h"
#include "definition.h"
#include "emit.h"
#include "inject.h"
#include "late_sink.h"
#include "notify.h"
#include "query_cache.h"
#include "security.h"
#include "shared_state.h"
#include "sink.h"
#include "state_log.h"
#include "trigger.h"
#include "window.h"
#include "xid_index.h"
#include "aggregate.h"
#include "group_store.h"
#include "state.h"
#include "working_set.h"

/* One trigger as it runs. */
typedef struct Trigger
{
	SaQuery    *q;
	SaCheckpoint cp;			/* as the last batch left it */
	Datum		snapshot;		/* where this batch ends */
	int64		batch_id;
	bool		bounded;		/* max_batch_rows left events for later */
	SaWorkingSet *work;
	SaStateStore *state;
	SaWorkingSet *dedup_work;	/* with dedup: the keys seen (q->dedup) */
	SaStateStore *dedup_state;
	SaBatchCounts counts;		/* steps 1-3 */
	SaLateRows *late;			/* rows dropped as late, for the late sink */
	bool		has_max_event_time; /* after this batch */
	int64		max_event_time;
	bool		has_watermark;	/* W(N) */
	int64		watermark;
	SaOutput	output;			/* step 4 */
	int64		sink_rows;
	TimestampTz started_at;
	TimestampTz trigger_time;	/* T: the planned time, or started_at */
	instr_time	start;
	instr_time	lap;
	double		aggregate_ms;	/* steps 1-3 and choosing the output */
	double		sink_ms;		/* writing the sink, notifying */
	double		state_log_ms;	/* step 5: the state log */
} Trigger;

/*
 * Is this backend inside a trigger?  User code run by a trigger must not
 * start another trigger, nor drop or change a query, while the state of
 * the first is in use (see sa_forbid_in_trigger).
 */
static int32 running_trigger_query = 0;

void
sa_forbid_in_trigger(const char *what)
{
	if (running_trigger_query != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s cannot be called while a trigger of a streaming query runs",
						what),
				 errdetail("It was called by user code of streaming query %d.",
						   running_trigger_query)));
}

/* Milliseconds since *since; *since becomes now. */
static double
lap_ms(instr_time *since)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, *since);
	INSTR_TIME_ADD(*since, now);
	return INSTR_TIME_GET_MILLISEC(now);
}

/*
 * The state of a query was stored for the types it computed then (see
 * state_signature in definition.c); DDL on its source may have changed
 * them since.  Then the stored state must not be read: refuse to run,
 * saying what changed.
 */
static void
check_state_signature(SaQuery *q, const SaCheckpoint *cp)
{
	/* nothing stored yet, or before 0.6: the next checkpoint records it */
	if (cp->state_signature == NULL || !cp->has_batch ||
		strcmp(cp->state_signature, q->state_signature) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("the types of streaming query \"%s\" changed since its state was stored",
					q->def.name),
			 errdetail("The state holds %s; the query now computes %s.",
					   cp->state_signature, q->state_signature),
			 errhint("Change the source's columns back, or reset the query with streamagg.reset_query() (its next batch reads every event still in the source).")));
}

/*
 * Before step 1: check that the query can still run as compiled, find
 * where its last batch ended and where this one ends (the planned batch,
 * if any), and open its state.
 */
static void
start_trigger(Trigger *t, SaQuery *q)
{
	memset(t, 0, sizeof(*t));
	t->q = q;
	t->started_at = GetCurrentTimestamp();
	INSTR_TIME_SET_CURRENT(t->start);
	t->lap = t->start;

	/* a compiled query outlives DDL: say so if its source was dropped */
	(void) sa_qualified_relation(q->def.source, "source", q->def.name);
	for (int a = 0; a < q->naggs; a++)
		sa_agg_check_privileges(&q->aggs[a]);

	(void) sa_catalog_read_checkpoint(q->def.query_id, &t->cp, false);
	check_state_signature(q, &t->cp);
	/* a plan made before may have been bounded: say so (see worker.c) */
	t->bounded = t->cp.has_planned;
	t->snapshot = t->cp.has_planned ? t->cp.planned_snapshot :
		sa_next_batch_snapshot(q, &t->cp, &t->bounded);
	t->batch_id = t->cp.has_planned ? t->cp.planned_batch_id :
		t->cp.last_batch_id + 1;
	/* a retried trigger keeps the time of its plan (idle triggers use it) */
	t->trigger_time = t->cp.has_planned_at ? t->cp.planned_at : t->started_at;
	/* batches are numbered without gaps: a plan is for the next one */
	Assert(t->batch_id == t->cp.last_batch_id + 1);
	sa_check_snapshot_order(q, &t->cp, t->snapshot);

	t->work = sa_working_set_create(q);
	t->state = sa_state_begin(q, t->work, t->cp.last_batch_id);
	if (q->dedup)
	{
		t->dedup_work = sa_working_set_create(q->dedup);
		t->dedup_state = sa_state_begin(q->dedup, t->dedup_work,
										t->cp.last_batch_id);
	}
}

/*
 * Steps 1 to 3; false when the batch has no rows (nothing is written yet).
 */
static bool
read_batch(Trigger *t)
{
	/* so that the batch read skips the ranges filled by older events */
	sa_summarize_source_ranges(t->q->def.source);
	t->late = sa_late_rows_create(t->q, t->work->cxt);
	sa_fold_batch(t->state, t->dedup_state, &t->cp, t->snapshot, t->late,
				  &t->counts, &t->output);
	if (t->counts.input_rows == 0)
		return false;
	/* rows are late only against a watermark W(N-1) */
	Assert(t->cp.has_watermark || t->counts.late_rows == 0);
	t->counts.late_rows_written = sa_late_rows_write(t->q, t->late,
													 t->batch_id,
													 t->cp.watermark);
	sa_inject_fault(t->q->def.query_id, "after_read");
	sa_ws_store_touched(t->work, t->state->groups);
	if (t->dedup_state)
		sa_ws_store_touched(t->dedup_work, t->dedup_state->groups);
	return true;
}

/* Step 4, first: the greatest event time so far, and W(N). */
static void
advance_watermark(Trigger *t)
{
	Assert(t->counts.input_rows > 0);
	t->has_max_event_time =
		sa_max_event_time_after(t->cp.has_max_event_time,
								t->cp.max_event_time,
								t->counts.has_event_time,
								t->counts.event_time_max, &t->max_event_time);
	t->has_watermark = sa_watermark_after_batch(t->q, t->cp.has_watermark,
												t->cp.watermark,
												t->counts.has_event_time,
												t->max_event_time,
												&t->watermark);
	/* the watermark never moves back */
	Assert(!t->cp.has_watermark ||
		   (t->has_watermark && t->watermark >= t->cp.watermark));
}

/*
 * A batch without rows: when the source is idle and the idle watermark
 * moves past W(N-1), this is an idle trigger (true), which then emits and
 * records like any other.  Otherwise nothing is written (false), but a
 * planned batch that turned out empty is consumed.  A worker's (planned)
 * trigger keeps the worker's cadence of idle triggers
 * (sa_idle_trigger_due); process() applies the idle rule alone.
 */
static bool
advance_idle_watermark(Trigger *t)
{
	SaQuery    *q = t->q;
	bool		idle;

	Assert(t->counts.input_rows == 0);
	if (t->cp.has_planned)
		idle = sa_idle_trigger_due(&t->cp, q->def.has_idle_timeout,
								   q->def.idle_timeout, t->trigger_time);
	else
		idle = sa_source_idle(q->def.has_idle_timeout, q->def.idle_timeout,
							  t->cp.has_max_event_time_at,
							  t->cp.max_event_time_at, t->trigger_time);
	if (idle && t->cp.has_max_event_time &&
		sa_idle_watermark(q, t->cp.has_watermark, t->cp.watermark,
						  t->cp.max_event_time, t->cp.max_event_time_at,
						  t->trigger_time, &t->watermark))
	{
		t->has_watermark = true;
		t->has_max_event_time = true;
		t->max_event_time = t->cp.max_event_time;
		/* the watermark never moves back */
		Assert(!t->cp.has_watermark || t->watermark > t->cp.watermark);
		sa_inject_fault(q->def.query_id, "after_read");
		return true;
	}
	if (t->cp.has_planned)
		sa_catalog_consume_empty_plan(q->def.query_id);
	return false;
}

/* Step 4: close what W(N) closes, emit by output mode, notify. */
static void
emit_output(Trigger *t)
{
	SaQuery    *q = t->q;
	List	   *closed = NIL;

	/* a stateless query's output is its batch's rows (batch.c) */
	if (sa_watermark_closes_windows(q, t->has_watermark))
		closed = sa_close_windows(t->state, t->watermark);
	if (!q->stateless)
		sa_emit_output(t->state, closed, &t->output);
	/* dedup forgets the keys W(N) closes (compile_dedup in definition.c) */
	if (t->dedup_state &&
		sa_watermark_closes_windows(q->dedup, t->has_watermark))
		(void) sa_close_windows(t->dedup_state, t->watermark);
	sa_inject_fault(q->def.query_id, "after_state");
	t->aggregate_ms = lap_ms(&t->lap);

	t->sink_rows = sa_sink_deliver(q, &t->output, t->batch_id);
	sa_notify_output(q, t->batch_id, &t->output, t->has_watermark,
					 t->watermark);
	sa_inject_fault(q->def.query_id, "during_sink");
	t->sink_ms = lap_ms(&t->lap);
}

/* Step 5: the state log, the checkpoint and the batch's progress. */
static void
record_checkpoint(Trigger *t)
{
	SaBatchRecord rec;
	instr_time	total;

	sa_state_log_write(t->state, t->batch_id);
	if (t->dedup_state)
		sa_state_log_write(t->dedup_state, t->batch_id);
	t->state_log_ms = lap_ms(&t->lap);

	memset(&rec, 0, sizeof(rec));
	rec.query_id = t->q->def.query_id;
	rec.batch_id = t->batch_id;
	rec.snapshot = t->snapshot;
	rec.has_watermark = t->has_watermark;
	rec.watermark = t->watermark;
	rec.has_max_event_time = t->has_max_event_time;
	rec.max_event_time = t->max_event_time;
	/* T_M: this trigger's time if it saw event times, else as before */
	rec.has_max_event_time_at = t->counts.has_event_time ||
		t->cp.has_max_event_time_at;
	rec.max_event_time_at = t->counts.has_event_time ? t->trigger_time :
		t->cp.max_event_time_at;
	rec.state_signature = t->q->state_signature;
	rec.started_at = t->started_at;
	total = t->lap;
	INSTR_TIME_SUBTRACT(total, t->start);
	rec.duration_ms = INSTR_TIME_GET_MILLISEC(total);
	rec.has_last_batch_at = t->cp.has_last_batch_at;
	rec.last_batch_at = t->cp.last_batch_at;
	rec.input_rows = t->counts.input_rows;
	rec.has_event_time = t->counts.has_event_time;
	rec.event_time_min = t->counts.event_time_min;
	rec.event_time_max = t->counts.event_time_max;
	rec.state_rows_total = t->state->groups->ngroups;
	rec.state_rows_updated = t->work->ntouched;
	rec.late_rows = t->counts.late_rows;
	rec.null_time_rows = t->counts.null_time_rows;
	rec.filtered_rows = t->counts.filtered_rows;
	rec.duplicate_rows = t->counts.duplicate_rows;
	rec.late_rows_written = t->counts.late_rows_written;
	rec.sink_rows = t->sink_rows;
	rec.aggregate_ms = t->aggregate_ms;
	rec.sink_ms = t->sink_ms;
	rec.state_log_ms = t->state_log_ms;
	rec.state_memory_bytes = sa_gs_memory(t->state->groups);
	if (t->dedup_state)
	{
		rec.state_rows_total += t->dedup_state->groups->ngroups;
		rec.state_memory_bytes += sa_gs_memory(t->dedup_state->groups);
	}
	sa_catalog_record_batch(&rec);

	sa_state_end(t->state, t->batch_id);
	if (t->dedup_state)
		sa_state_end(t->dedup_state, t->batch_id);
	sa_inject_fault(t->q->def.query_id, "before_commit");
}

/*
 * Run one trigger of a query in the current transaction, as its owner, in
 * a security-restricted operation whose settings are rolled back at the
 * end (security.c); streamagg's catalog is read and written as the
 * extension's owner, by the narrow calls that need it.  Errors propagate:
 * the caller's transaction aborts and nothing of the batch remains.
 */
SaTriggerResult
sa_run_trigger(int32 query_id)
{
	SaTriggerResult result;
	SaQuery    *q;
	Trigger		t;
	SaRoleSave	owner;

	sa_forbid_in_trigger("a trigger");
	sa_lock_query(query_id);
	q = sa_get_compiled(query_id);
	sa_user_code_begin(q->def.owner, &owner);
	running_trigger_query = query_id;
	PG_TRY();
	{
		start_trigger(&t, q);
		if (read_batch(&t))		/* steps 1-3 */
		{
			advance_watermark(&t);	/* step 4 */
			emit_output(&t);
			record_checkpoint(&t);	/* step 5 */
		}
		else if (advance_idle_watermark(&t))	/* an idle trigger */
		{
			emit_output(&t);
			record_checkpoint(&t);
		}
		sa_working_set_destroy(t.work);
		if (t.dedup_work)
			sa_working_set_destroy(t.dedup_work);
	}
	PG_FINALLY();
	{
		running_trigger_query = 0;
	}
	PG_END_TRY();
	sa_user_code_end(&owner);
	result.rows = t.counts.input_rows;
	result.more = t.bounded && t.counts.input_rows > 0;
	return result;
}
