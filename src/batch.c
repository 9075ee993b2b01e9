/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  The batch of a trigger: the events it reads, and steps 1 to 3 of the
 *	  trigger (docs/semantics.md §4), which fold them into the state.
 *
 * A batch is the events committed between the snapshot the last trigger
 * consumed and a new one: rows whose inserting transaction (the source's
 * streamagg_xid column) is visible in the new snapshot and was not in the
 * old (sa_batch_predicate).  A worker plans its batch (sa_plan_batch) and
 * commits the plan before running the trigger, so that a retry after an
 * error, a kill or a crash reads exactly the same events.
 *
 * Rows come straight from the executor into a DestReceiver and are folded
 * one by one: rows without event time are skipped, rows of windows that
 * the previous watermark closed are late (not in complete mode), the others
 * update the groups of their windows (or sessions) in the working set.
 * A row late for at least one of its windows (or for its session) is kept
 * for the late sink, once, when the query has one (late_sink.c).
 * Sliding windows whose aggregates combine are folded per pane, and each
 * pane then into its windows (sa_row_windows).
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "storage/itemptr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "kept_plan.h"
#include "output.h"
#include "batch_limit.h"
#include "catalog.h"
#include "query_cache.h"
#include "security.h"
#include "window.h"
#include "aggregate.h"
#include "group.h"
#include "late_sink.h"
#include "sink.h"
#include "state.h"
#include "working_set.h"

/*
 * The snapshot a new batch ends at: every transaction committed now,
 * with the current transaction counted as still running if it has a
 * transaction id.  process() may run in a transaction that inserted into
 * the source: its own events are not committed, so they belong to a later
 * batch, and its id must stay in the snapshot's running list, or the
 * predicate of later batches would take it for consumed (see the file header).
 */
Datum
sa_committed_snapshot(void)
{
	const char *sql =
	"SELECT CASE WHEN x IS NULL OR x >= pg_catalog.pg_snapshot_xmax(s) THEN s "
	"ELSE (LEAST(pg_catalog.pg_snapshot_xmin(s), x)::text || ':' || "
	"pg_catalog.pg_snapshot_xmax(s)::text || ':' || "
	"(SELECT pg_catalog.string_agg(v::text, ',' ORDER BY v) FROM "
	"(SELECT pg_catalog.pg_snapshot_xip(s) UNION SELECT x) u(v)))::pg_catalog.pg_snapshot "
	"END FROM (SELECT pg_catalog.pg_current_snapshot(), "
	"pg_catalog.pg_current_xact_id_if_assigned()) n(s, x)";
	bool		isnull;
	Datum		snapshot;

	SPI_connect();
	if (SPI_execute_plan(sa_kept_plan(sql, 0, NULL, 0), NULL, NULL, false,
						 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not take the snapshot of a batch");
	snapshot = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull),
								 false, -1);
	SPI_finish();
	return snapshot;
}

/*
 * Is an idle trigger of a scheduled query due at "now"?  The source must be
 * idle (sa_source_idle), and the worker runs idle triggers at most once per
 * idle_timeout (since the last recorded trigger, with events or idle), so
 * that an idle query does not record a batch at every trigger_interval.
 * process() is not bound by this cadence.
 */
bool
sa_idle_trigger_due(const SaCheckpoint *cp, bool has_idle_timeout,
					int64 idle_timeout, TimestampTz now)
{
	return sa_source_idle(has_idle_timeout, idle_timeout,
						  cp->has_max_event_time_at, cp->max_event_time_at,
						  now) &&
		(!cp->has_last_batch_at || now - cp->last_batch_at >= idle_timeout);
}

/*
 * Record, in the current transaction, the batch that the next trigger of a
 * scheduled query will process: its batch id, snapshot and trigger time T
 * (docs/semantics.md §8, §11).  The snapshot is bounded by max_batch_rows
 * (batch_limit.c; *bounded says whether events were left for a later
 * batch, or may have been: a plan made before is kept as it is).  Returns
 * false when nothing can have been committed since the last trigger (the
 * new snapshot equals the consumed one) and no idle trigger is due
 * (sa_idle_trigger_due): then there is nothing to run.  An idle trigger is
 * planned with T, so that its retry computes the same watermark and emits
 * the same rows.
 */
bool
sa_plan_batch(const SaScheduledQuery *sq, bool *bounded)
{
	SaCheckpoint cp;
	TimestampTz now = GetCurrentTimestamp();
	SaQuery    *q;
	SaRoleSave	owner;
	Datum		snapshot;

	sa_lock_query(sq->query_id);
	(void) sa_catalog_read_checkpoint(sq->query_id, &cp, false);
	*bounded = cp.has_planned;
	if (cp.has_planned)
		return true;
	q = sa_get_compiled(sq->query_id);
	/* a bound is found by reading the source: as the query's owner */
	sa_user_code_begin(q->def.owner, &owner);
	snapshot = sa_next_batch_snapshot(q, &cp, bounded);
	sa_user_code_end(&owner);
	return sa_catalog_plan_batch(sq->query_id, cp.last_batch_id + 1,
								 snapshot, now,
								 sa_idle_trigger_due(&cp, sq->has_idle_timeout,
													 sq->idle_timeout, now));
}

/*
 * A consumed snapshot from the future means transaction ids restarted: the
 * catalog was restored from a dump into another cluster.  Batches would
 * then skip events, so refuse to run rather than lose them.
 */
void
sa_check_snapshot_order(SaQuery *q, const SaCheckpoint *cp, Datum snapshot)
{
	Oid			types[2] = {PG_SNAPSHOTOID, PG_SNAPSHOTOID};
	Datum		args[2] = {cp->consumed_snapshot, snapshot};
	bool		isnull;
	bool		ahead;

	if (!cp->has_consumed)
		return;
	SPI_connect();
	SPI_execute_plan(sa_kept_plan("SELECT pg_catalog.pg_snapshot_xmax($1) > pg_catalog.pg_snapshot_xmax($2)",
								  2, types, 0),
					 args, NULL, true, 1);
	ahead = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	if (ahead)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("checkpoint of streaming query \"%s\" is ahead of this server's transaction ids",
						q->def.name),
				 errdetail("The query's position in its source was recorded by another cluster, probably before a dump and restore."),
				 errhint("Reset it with streamagg.reset_query(): its next batch reads every event still in the source, and its batch ids go on.")));
}

/*
 * The predicate, over the source, of the batch between the snapshot $1
 * (previous, consumed) and $2 (new), with the source's streamagg_xid
 * column written "xid_column": rows whose inserting
 * transaction is visible in $2 and was not in $1.  Those are the rows of
 * transactions from $1's xmax on, plus those of the transactions that were
 * still running at $1 (its xip list) and are visible in $2; they are
 * written out as constants, so that the index on the transaction id
 * serves every part and no old event is read again, however long a
 * producer's transaction stays open.  Rows from before the source was
 * prepared have no transaction id and belong to the first batch.
 */
char *
sa_batch_predicate(const char *xid_column, bool has_previous, Datum previous,
				   Datum snapshot)
{
	StringInfoData buf;
	Oid			types[2] = {PG_SNAPSHOTOID, PG_SNAPSHOTOID};
	Datum		args[2] = {previous, snapshot};

	initStringInfo(&buf);
	if (!has_previous)
	{
		appendStringInfo(&buf, "%s IS NULL OR pg_catalog.pg_visible_in_snapshot(%s, $2)",
						 xid_column, xid_column);
		return buf.data;
	}
	appendStringInfo(&buf, "pg_catalog.pg_visible_in_snapshot(%s, $2) AND "
					 "(%s >= pg_catalog.pg_snapshot_xmax($1) AND "
					 "%s < pg_catalog.pg_snapshot_xmax($2)",
					 xid_column, xid_column, xid_column);
	SPI_connect();
	SPI_execute_plan(sa_kept_plan("SELECT x::text FROM pg_catalog.pg_snapshot_xip($1) x "
								  "WHERE pg_catalog.pg_visible_in_snapshot(x, $2)",
								  2, types, 0),
					 args, NULL, false, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
		appendStringInfo(&buf, " OR %s = '%s'::pg_catalog.xid8", xid_column,
						 SPI_getvalue(SPI_tuptable->vals[i],
									  SPI_tuptable->tupdesc, 1));
	SPI_finish();
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * Under SPI (the caller connected): "SELECT targets ... LIMIT 1" over the
 * source's events that a batch from the checkpoint's consumed snapshot up
 * to "snapshot" would read (sa_batch_predicate).  Returns the rows it got
 * (0 or 1), left in SPI_tuptable.  For monitoring and wait(), not for the
 * batch itself.
 */
uint64
sa_select_unconsumed(const SaQuery *q, const SaCheckpoint *cp, Datum snapshot,
					 const char *targets)
{
	Oid			argtypes[2] = {PG_SNAPSHOTOID, PG_SNAPSHOTOID};
	Datum		args[2] = {cp->consumed_snapshot, snapshot};
	char		nulls[2] = {cp->has_consumed ? ' ' : 'n', ' '};
	char	   *sql = psprintf("SELECT %s FROM %s WHERE %s LIMIT 1", targets,
							   q->source_qualified,
							   sa_batch_predicate(SA_XID_COLUMN,
												  cp->has_consumed,
												  cp->consumed_snapshot,
												  snapshot));

	if (SPI_execute_with_args(sql, 2, argtypes, args, nulls, false, 1) !=
		SPI_OK_SELECT)
		elog(ERROR, "could not read the unconsumed events of streaming query \"%s\"",
			 q->def.name);
	return SPI_processed;
}

/*
 * With joins a source row reaches the batch once per row it joined to, or
 * once with NULLs (join.c reads inner joins as left joins), so the rows
 * seen are kept by identity, (tableoid, ctid), to count each source row
 * once: in num_input_rows, and in filtered_rows when none of its joined
 * rows passed the inner joins and the filter.
 */
typedef struct SourceRowKey
{
	Oid			tableoid;
	ItemPointerData ctid;
} SourceRowKey;

typedef struct SourceRow
{
	SourceRowKey key;
	char		status;			/* for simplehash */
	bool		passed;			/* one of its joined rows passed */
} SourceRow;

static inline uint32
source_row_hash(SourceRowKey key)
{
	return hash_combine(murmurhash32(key.tableoid),
						murmurhash32(ItemPointerGetBlockNumberNoCheck(&key.ctid) ^
									 ((uint32) ItemPointerGetOffsetNumberNoCheck(&key.ctid) << 24)));
}

#define SH_PREFIX source_rows
#define SH_ELEMENT_TYPE SourceRow
#define SH_KEY_TYPE SourceRowKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) source_row_hash(k)
#define SH_EQUAL(tb, a, b) ((a).tableoid == (b).tableoid && \
							ItemPointerEquals(&(a).ctid, &(b).ctid))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * Receives the rows of a batch straight from the executor (no copies) and
 * folds each into the state.  Per-row garbage goes to rowcxt, reset every
 * ROW_RESET_INTERVAL rows; whatever must last is copied by the working
 * set, session.c and aggregate.c into the trigger's context.
 */
typedef struct BatchReceiver
{
	DestReceiver pub;
	SaQuery    *q;
	SaStateStore *store;
	SaBatchCounts *counts;
	struct source_rows_hash *source_rows;	/* with joins: the source rows
											 * seen */
	SaOutput   *appended;		/* a stateless query's rows, in the working
								 * set's context */
	int			appended_size;
	SaStateStore *dedup;		/* the dedup keys seen, or NULL */
	bool		dedup_late_check;	/* the previous watermark applies */
	int64	   *starts;			/* windows of the current row */
	int64	   *ends;
	bool		late_check;		/* the previous watermark closes windows */
	int64		previous_watermark;
	SaLateRows *late;			/* rows kept for the late sink, or NULL */
	MemoryContext rowcxt;
	int			rows_since_reset;
} BatchReceiver;

#define ROW_RESET_INTERVAL 1000

/* Is a row late for a window ending at window_end (step 2)? */
static inline bool
late_for(BatchReceiver *r, int64 window_end)
{
	return r->late_check && sa_closed_by(window_end, r->previous_watermark);
}

/*
 * With a late sink, keep a row that is late for at least one of its
 * "nwindows" windows (a session row has one, its own session): once,
 * however many of its windows are closed.
 */
static inline void
keep_if_late(BatchReceiver *r, int nwindows, Datum *values, bool *nulls)
{
	if (r->late == NULL)
		return;
	for (int w = 0; w < nwindows; w++)
		if (late_for(r, r->ends[w]))
		{
			sa_late_rows_add(r->late, r->q, values, nulls);
			return;
		}
}

/* The group of (window, key) of a row, in the working set. */
static inline SaGroup *
touch(BatchReceiver *r, int64 window_start, int64 window_end, Datum *keyvals,
	  bool *keynulls)
{
	return sa_ws_touch(r->store->work, r->store->groups, window_start,
					   window_end, keyvals, keynulls);
}

/* The batch's least and greatest event time, of rows that passed. */
static inline void
note_event_time(SaBatchCounts *counts, int64 t)
{
	if (!counts->has_event_time || t < counts->event_time_min)
		counts->event_time_min = t;
	if (!counts->has_event_time || t > counts->event_time_max)
		counts->event_time_max = t;
	counts->has_event_time = true;
}

/*
 * Steps 2 and 3 for one row that passed the joins and the filter: its
 * windows, late rows, the aggregates.  A row without event time, or whose windows would leave the range of
 * timestamps, is skipped and counted (null_event_time_rows).
 */
static void
fold_row(BatchReceiver *r, Datum *values, bool *nulls)
{
	SaQuery    *q = r->q;
	SaAggRuntime *rt = r->store->work->rt;
	SaBatchCounts *counts = r->counts;
	int64		t = DatumGetTimestampTz(values[0]);
	int			nwindows;

	if (nulls[0] || TIMESTAMP_NOT_FINITE(t) ||
		(nwindows = sa_row_windows(q, t, r->starts, r->ends)) < 0)
	{
		counts->null_time_rows++;
		return;
	}
	note_event_time(counts, t);
	keep_if_late(r, nwindows, values, nulls);

	if (q->def.has_session)
	{
		/* a session event is late when its own session [t, t + gap) is */
		if (late_for(r, r->ends[0]))
			counts->late_rows++;
		else
			sa_group_advance(rt, q, touch(r, 0, 0, values + 1, nulls + 1), t,
							 values, nulls);
		return;
	}

	if (q->use_panes)
	{
		SaGroup    *pane = sa_ws_touch_pane(r->store->work, sa_pane_start(q, t),
											values + 1, nulls + 1);

		pane->rows++;
		sa_group_advance(rt, q, pane, t, values, nulls);
		return;
	}
	for (int w = 0; w < nwindows; w++)
	{
		if (late_for(r, r->ends[w]))
			counts->late_rows++;
		else
			sa_group_advance(rt, q, touch(r, r->starts[w], r->ends[w],
										  values + 1, nulls + 1),
							 t, values, nulls);
	}
}

/*
 * A stateless query's row that passed: the row itself, its columns copied
 * out of the executor's slot, is the output.  Its event time, if any,
 * only feeds the progress figures.
 */
static void
append_row(BatchReceiver *r, Datum *values, bool *nulls)
{
	SaQuery    *q = r->q;
	SaOutput   *out = r->appended;
	SaOutputRow *row;
	MemoryContext old = MemoryContextSwitchTo(r->store->work->cxt);

	Assert(q->stateless);
	/* the figures, as for other queries, take only finite event times */
	if (!nulls[0] && !TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(values[0])))
		note_event_time(r->counts, DatumGetTimestampTz(values[0]));
	if (out->nrows == r->appended_size)
	{
		r->appended_size = Max(1024, r->appended_size * 2);
		out->rows = out->rows ?
			repalloc_huge(out->rows, sizeof(SaOutputRow) * r->appended_size) :
			palloc_extended(sizeof(SaOutputRow) * r->appended_size,
							MCXT_ALLOC_HUGE);
	}
	row = &out->rows[out->nrows++];
	memset(row, 0, sizeof(*row));
	row->values = palloc(sizeof(Datum) * q->ncolumns);
	row->nulls = palloc(sizeof(bool) * q->ncolumns);
	row->fresh = true;
	for (int i = 0; i < q->ncolumns; i++)
	{
		row->nulls[i] = nulls[1 + i];
		row->values[i] = nulls[1 + i] ? (Datum) 0 :
			datumCopy(values[1 + i], q->column_typbyvals[i], q->column_typlens[i]);
	}
	MemoryContextSwitchTo(old);
}

/*
 * Sliding windows by panes: combine each pane of the batch into every
 * window containing it that is not late.  A pane's rows all fall into the
 * same windows (those of its start), so lateness is counted per (row,
 * window) as row by row.
 */
static void
fold_panes(BatchReceiver *r)
{
	SaQuery    *q = r->q;

	sa_foreach_ptr(SaGroup, pane, r->store->work->pane_list)
	{
		int			nwindows = sa_row_windows(q, pane->window_start, r->starts,
											  r->ends);

		/* its rows' windows were in range, and they are the pane's */
		Assert(nwindows > 0);
		for (int w = 0; w < nwindows; w++)
		{
			CHECK_FOR_INTERRUPTS();
			if (late_for(r, r->ends[w]))
				r->counts->late_rows += pane->rows;
			else
				sa_group_combine(r->store->work->rt, q,
								 touch(r, r->starts[w], r->ends[w],
									   pane->keyvals, pane->keynulls),
								 pane);
		}
	}
}

/*
 * Deduplication (docs/semantics.md §10) of a row that passed the joins and
 * the filter: false when it is dropped, as late (its event time t is
 * closed by W(N-1): stricter than a window's lateness, so a row kept here
 * is never late for its windows), without event time (when the query
 * needs one), or as a duplicate: its key is in the dedup state, from an
 * earlier batch or an earlier row of this one.  The batch is read in
 * event-time order, so of the rows of a new key the one with the least
 * event time is kept.  A kept row opens its key's session (see
 * compile_dedup in definition.c).
 */
static bool
dedup_keeps(BatchReceiver *r, Datum *values, bool *nulls)
{
	SaQuery    *q = r->q;
	SaWorkingSet *work = r->dedup->work;
	SaGroup    *seen;
	int64		t = nulls[0] ? 0 : DatumGetTimestampTz(values[0]);
	bool		no_time = nulls[0] || TIMESTAMP_NOT_FINITE(t);

	/* rows without a usable event time, as in fold_row */
	if (no_time && (!q->stateless || q->def.has_watermark))
	{
		r->counts->null_time_rows++;
		return false;
	}
	if (!no_time && r->dedup_late_check &&
		sa_closed_by(t, r->previous_watermark))
	{
		r->counts->late_rows++;
		if (r->late)
			sa_late_rows_add(r->late, q, values, nulls);
		return false;
	}
	seen = sa_ws_touch(work, r->dedup->groups, 0, 0, values + q->dedup_first,
					   nulls + q->dedup_first);
	if (seen->nsessions > 0)
	{
		r->counts->duplicate_rows++;
		return false;
	}
	/* without a watermark the session never closes: any time will do */
	sa_group_advance(work->rt, q->dedup, seen, no_time ? 0 : t - 1, values,
					 nulls);
	Assert(seen->nsessions == 1);
	return true;
}

/*
 * One row of the batch query: count it, drop it if it does not pass the
 * joins and the filter (see SaQuery's control columns), fold it otherwise.
 */
static void
receive_row(BatchReceiver *r, Datum *values, bool *nulls)
{
	int			lead = r->q->batch_lead;
	bool		passes = lead == 0 || DatumGetBool(values[0]);

	Assert(lead == 0 || !nulls[0]);
	if (lead == 3)
	{
		SourceRowKey key;
		SourceRow  *row;
		bool		found;

		key.tableoid = DatumGetObjectId(values[1]);
		key.ctid = *(ItemPointer) DatumGetPointer(values[2]);
		row = source_rows_insert(r->source_rows, key, &found);
		if (!found)
		{
			r->counts->input_rows++;
			row->passed = false;
		}
		row->passed |= passes;
	}
	else
	{
		r->counts->input_rows++;
		if (!passes)
			r->counts->filtered_rows++;
	}
	if (passes && r->dedup)
		passes = dedup_keeps(r, values + lead, nulls + lead);
	if (passes && r->q->stateless)
		append_row(r, values + lead, nulls + lead);
	else if (passes)
		fold_row(r, values + lead, nulls + lead);
}

/* With joins: the source rows none of whose joined rows passed. */
static int64
source_rows_filtered(struct source_rows_hash *rows)
{
	source_rows_iterator it;
	SourceRow  *row;
	int64		filtered = 0;

	source_rows_start_iterate(rows, &it);
	while ((row = source_rows_iterate(rows, &it)) != NULL)
		filtered += !row->passed;
	return filtered;
}

static bool
batch_receive(TupleTableSlot *slot, DestReceiver *self)
{
	BatchReceiver *r = (BatchReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(r->rowcxt);

	CHECK_FOR_INTERRUPTS();
	slot_getallattrs(slot);
	receive_row(r, slot->tts_values, slot->tts_isnull);
	MemoryContextSwitchTo(old);
	if (++r->rows_since_reset >= ROW_RESET_INTERVAL)
	{
		MemoryContextReset(r->rowcxt);
		r->rows_since_reset = 0;
	}
	return true;
}

/* Check that the batch query still yields the types the query was compiled for. */
static void
batch_startup(DestReceiver *self, int operation, TupleDesc desc)
{
	SaQuery    *q = ((BatchReceiver *) self)->q;

	for (int i = 0; i < q->batch_ncols; i++)
		if (desc->natts != q->batch_ncols ||
			TupleDescAttr(desc, i)->atttypid != q->batch_types[i])
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("source of streaming query \"%s\" has changed",
							q->def.name),
					 errdetail("A column used by the query has a different type than when the query was compiled.")));
}

static void
batch_shutdown(DestReceiver *self)
{
}

static void
batch_destroy(DestReceiver *self)
{
}

/*
 * A stateless query's batch written to its sink table by one INSERT, and
 * its progress figures read by a second query over the same rows (see
 * build_move_statements in sink.c): the rows written are the output,
 * already delivered; only their number is kept.
 */
static void
move_batch(SaQuery *q, const char *predicate, ParamListInfo params,
		   SaBatchCounts *counts, SaOutput *moved)
{
	SPIExecuteOptions options;
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	uint64		written;

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = false;
	SPI_connect();
	if (SPI_execute_extended(sa_move_insert_sql(q, predicate), &options) !=
		SPI_OK_INSERT)
		elog(ERROR, "could not move the batch of streaming query \"%s\"",
			 q->def.name);
	written = SPI_processed;
	if (SPI_execute_extended(sa_move_figures_sql(q, predicate), &options) !=
		SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not count the batch of streaming query \"%s\"",
			 q->def.name);
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	counts->input_rows = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
	Assert(counts->input_rows >= (int64) written);
	counts->filtered_rows = counts->input_rows - written;
	d = SPI_getbinval(tuple, desc, 2, &isnull);
	if (!isnull)
	{
		note_event_time(counts, DatumGetTimestampTz(d));
		note_event_time(counts,
						DatumGetTimestampTz(SPI_getbinval(tuple, desc, 3, &isnull)));
	}
	SPI_finish();
	moved->nrows = written;
	moved->delivered = true;
}

/*
 * Steps 1 to 3: read the batch that ends at "snapshot" and fold it into
 * the working set; a stateless query's rows go to "appended" instead.
 * With dedup, "dedup" is the state of the dedup keys.  Rows dropped as
 * late go to "late" when it is not NULL.  Runs as the query's owner.
 */
void
sa_fold_batch(SaStateStore *store, SaStateStore *dedup,
			  const SaCheckpoint *cp, Datum snapshot, SaLateRows *late,
			  SaBatchCounts *counts, SaOutput *appended)
{
	SaQuery    *q = store->q;
	BatchReceiver r;
	SPIExecuteOptions options;
	ParamListInfo params = makeParamList(2);
	char	   *predicate;
	char	   *sql;
	int			ret;

	params->params[0].value = cp->consumed_snapshot;
	params->params[0].isnull = !cp->has_consumed;
	params->params[0].pflags = PARAM_FLAG_CONST;
	params->params[0].ptype = PG_SNAPSHOTOID;
	params->params[1].value = snapshot;
	params->params[1].isnull = false;
	params->params[1].pflags = PARAM_FLAG_CONST;
	params->params[1].ptype = PG_SNAPSHOTOID;

	predicate = sa_batch_predicate(q->xid_column, cp->has_consumed,
								   cp->consumed_snapshot, snapshot);
	if (q->move_insert_head)
	{
		move_batch(q, predicate, params, counts, appended);
		return;
	}

	memset(&r, 0, sizeof(r));
	r.pub.receiveSlot = batch_receive;
	r.pub.rStartup = batch_startup;
	r.pub.rShutdown = batch_shutdown;
	r.pub.rDestroy = batch_destroy;
	r.pub.mydest = DestNone;
	r.q = q;
	r.store = store;
	r.counts = counts;
	r.appended = appended;
	r.dedup = dedup;
	if (dedup)
		r.dedup_late_check = sa_watermark_closes_windows(q->dedup,
														 cp->has_watermark);
	r.starts = palloc(sizeof(int64) * sa_window_count(q));
	r.ends = palloc(sizeof(int64) * sa_window_count(q));
	r.late_check = sa_watermark_closes_windows(q, cp->has_watermark);
	r.previous_watermark = cp->watermark;
	r.late = late;
	r.rowcxt = AllocSetContextCreate(store->work->cxt, "streamagg row",
									 ALLOCSET_DEFAULT_SIZES);
	if (q->batch_lead == 3)
		r.source_rows = source_rows_create(store->work->cxt, 1024, NULL);

	/*
	 * read_only false: the executor takes a snapshot newer than
	 * snapshot, so every row of the batch is visible to it.
	 */
	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = false;
	options.dest = (DestReceiver *) &r;

	/* dedup keeps the earliest row of a key: see dedup_keeps() */
	sql = psprintf("%s(%s)%s", q->batch_select, predicate,
				   q->dedup ? psprintf(" ORDER BY %d", q->batch_lead + 1) : "");
	SPI_connect();
	/* with a receiver of its own SPI reports SPI_OK_UTILITY, not SELECT */
	ret = SPI_execute_extended(sql, &options);
	if (ret < 0)
		elog(ERROR, "batch query failed: %s", SPI_result_code_string(ret));
	SPI_finish();
	if (r.source_rows)
	{
		counts->filtered_rows += source_rows_filtered(r.source_rows);
		source_rows_destroy(r.source_rows);
	}
	if (q->use_panes)
		fold_panes(&r);
	MemoryContextDelete(r.rowcxt);
}

