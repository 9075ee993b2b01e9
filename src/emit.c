/*-------------------------------------------------------------------------
 *
 * emit.c
 *	  Step 4 of a trigger after the new watermark: close what it closes,
 *	  choose the rows the output mode emits, and finish them (final values)
 *	  for the sink and the notification (docs/semantics.md §4).
 *
 * Append mode emits the windows (or sessions) the watermark closed, once;
 * update and complete mode every window the batch changed.  Session
 * queries in complete mode emit the sessions the batch changed and delete
 * the rows of sessions it merged or extended away.  A function sink keeps
 * no rows, so in complete mode it receives the whole result table.
 *
 * Closed windows leave the shared groups here (eviction); the working set
 * notes every group that closing changed, for the durable log.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "miscadmin.h"
#include "utils/memutils.h"

#include "emit.h"
#include "window.h"
#include "aggregate.h"
#include "group.h"
#include "group_store.h"
#include "state.h"
#include "working_set.h"

/*
 * Close, in one shared group, what watermark W closes: result rows join
 * *closed, the group changes or goes.  Returns the earliest end of what
 * stays open (PG_INT64_MAX for nothing).
 */
static int64
close_group(SaStateStore *store, void *entry, int64 watermark, List **closed)
{
	SaQuery    *q = store->q;
	SaGroupStore *gs = store->groups;
	const SaEntryHead *head = entry;
	SaGroup    *group;
	MinimalTuple remaining;
	int64		min_end;
	int			nclosed = list_length(*closed);
	bool		touched;

	if (!sa_group_may_close(q, head->window_end, watermark))
		return head->window_end;
	group = sa_ws_copy_of(store->work, gs, entry, &touched);
	remaining = sa_group_close(q, group, watermark, closed, &min_end);
	if (list_length(*closed) == nclosed)
		return min_end;			/* nothing closed here */
	if (!touched)
		sa_ws_add_changed(store->work, group);
	if (remaining == NULL)
	{
		group->emptied = true;
		sa_gs_delete(gs, entry);
		return PG_INT64_MAX;
	}
	if (remaining != group->states)
		group->states_live = false;
	group->states = remaining;
	sa_gs_put(gs, entry, group);
	return min_end;
}

/*
 * Remove from the shared groups what watermark W closes (windows that end
 * at or before W, or such sessions), and return them as result rows with
 * their latest states.  Call after sa_ws_store_touched; scans only when
 * something can be closed.
 */
List *
sa_close_windows(SaStateStore *store, int64 watermark)
{
	SaGroupStore *gs = store->groups;
	uint64		position = 0;
	void	   *entry;
	List	   *closed = NIL;
	int64		min_open = PG_INT64_MAX;
	MemoryContext old;

	Assert(sa_watermark_closes_windows(store->q, true));
	if (!sa_closed_by(gs->min_window_end, watermark))
		return NIL;
	old = MemoryContextSwitchTo(store->work->cxt);
	while ((entry = sa_gs_next(gs, &position)) != NULL)
	{
		int64		open_end = close_group(store, entry, watermark, &closed);

		min_open = Min(min_open, open_end);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	gs->min_window_end = min_open;
	return closed;
}

/*
 * Every row of the result table: each shared group, or each session of it,
 * with its latest states.  Call after sa_ws_store_touched.
 */
static List *
all_rows(SaStateStore *store)
{
	SaGroupStore *gs = store->groups;
	uint64		position = 0;
	void	   *entry;
	List	   *rows = NIL;

	while ((entry = sa_gs_next(gs, &position)) != NULL)
		sa_group_rows(store->q, sa_gs_copy(gs, entry), &rows);
	return rows;
}

/* The rows the output mode emits (see the file header), as result rows. */
static void
rows_to_emit(SaStateStore *store, List *closed, List **rows, List **deleted)
{
	SaQuery    *q = store->q;
	SaWorkingSet *ws = store->work;

	if (q->def.output_mode == SA_OUTPUT_APPEND)
		*rows = closed;
	else if (q->def.output_mode == SA_OUTPUT_COMPLETE &&
			 OidIsValid(q->def.sink_function))
		*rows = all_rows(store);
	else
		for (int g = 0; g < ws->ntouched; g++)
			sa_group_changes(q, ws->touched[g], rows, deleted);
}

/*
 * A result row, finished: window and key, and unless "deletion", the final
 * value of each aggregate (into "values" and "nulls", q->naggs of each):
 * from the group's live states if they are what was stored, else from its
 * stored states.
 */
static void
finish_row(SaStateStore *store, const SaGroup *group, bool deletion,
		   Datum *values, bool *nulls, SaOutputRow *row)
{
	SaQuery    *q = store->q;

	row->window_start = group->window_start;
	row->window_end = group->window_end;
	row->keyvals = group->keyvals;
	row->keynulls = group->keynulls;
	row->fresh = group->fresh;
	row->values = NULL;
	row->nulls = NULL;
	if (deletion)
		return;
	row->values = values;
	row->nulls = nulls;
	if (group->states_live)
		sa_aggs_finalize_live(store->work->rt, q, group->work_values,
							  group->work_nulls, row->values, row->nulls);
	else
		sa_aggs_finalize_stored(store->work->rt, q, group->states,
								row->values, row->nulls);
}

/*
 * The rows of "groups", finished.  The rows' final values share two
 * arrays: there may be millions of rows (hence the huge allocations).
 */
static SaOutputRow *
finish_rows(SaStateStore *store, List *groups, bool deletion, int *n)
{
	int			naggs = store->q->naggs;
	int			nrows = list_length(groups);
	SaOutputRow *rows = palloc_extended(sizeof(SaOutputRow) * (nrows + 1),
										MCXT_ALLOC_HUGE);
	Datum	   *values = NULL;
	bool	   *nulls = NULL;

	if (!deletion)
	{
		values = palloc_extended(sizeof(Datum) * ((Size) nrows * naggs + 1),
								 MCXT_ALLOC_HUGE);
		nulls = palloc_extended(sizeof(bool) * ((Size) nrows * naggs + 1),
								MCXT_ALLOC_HUGE);
	}
	*n = 0;
	sa_foreach_ptr(SaGroup, group, groups)
	{
		finish_row(store, group, deletion, values, nulls, &rows[(*n)++]);
		if (!deletion)
		{
			values += naggs;
			nulls += naggs;
		}
	}
	return rows;
}

/*
 * The output of the trigger: the rows its output mode emits, finished, and
 * the rows to delete from the sink; "closed" is what sa_close_windows
 * returned.  In the working set's memory context.
 */
void
sa_emit_output(SaStateStore *store, List *closed, SaOutput *output)
{
	MemoryContext old = MemoryContextSwitchTo(store->work->cxt);
	List	   *rows = NIL;
	List	   *deleted = NIL;

	rows_to_emit(store, closed, &rows, &deleted);
	/* only complete mode deletes rows: sessions it merged away */
	Assert(deleted == NIL || store->q->def.output_mode == SA_OUTPUT_COMPLETE);
	output->rows = finish_rows(store, rows, false, &output->nrows);
	output->deleted = finish_rows(store, deleted, true, &output->ndeleted);
	MemoryContextSwitchTo(old);
}

/*
 * Every row of the result table that the state holds, finished as if it
 * were emitted now (open_windows.c); in the working set's memory context.
 */
void
sa_result_rows(SaStateStore *store, SaOutput *output)
{
	MemoryContext old = MemoryContextSwitchTo(store->work->cxt);

	output->rows = finish_rows(store, all_rows(store), false, &output->nrows);
	output->deleted = NULL;
	output->ndeleted = 0;
	MemoryContextSwitchTo(old);
}
