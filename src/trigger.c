/*-------------------------------------------------------------------------
 *
 * trigger.c
 *	  One trigger of a query: DESIGN.md 3.4, steps 1 to 5, in the caller's
 *	  transaction.
 *
 *	  1. read the batch: the events committed between the snapshot the last
 *	     trigger consumed and a new one (or the planned one, on a retry);
 *	  2. skip rows with a NULL event time, drop rows of windows that the
 *	     previous watermark W(N-1) has closed (not in complete mode);
 *	  3. update the state of every (window, key) the rows fall into (sliding
 *	     windows per pane, sessions by merging: window.c, session.c);
 *	  4. compute W(N) and emit to the sink by output mode, then evict;
 *	  5. record the checkpoint and the batch's progress.
 *
 * The caller commits: source position, state, sink and progress become
 * visible together or not at all.  A batch with no rows writes nothing.
 * The query's lock serialises triggers of one query across backends.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "state.h"


/* Progress of the stream as recorded in streamagg.checkpoint. */
typedef struct Checkpoint
{
	bool		has_batch;
	int64		last_batch_id;
	Datum		consumed_snapshot;	/* NULL before the first batch */
	bool		has_consumed;
	bool		has_planned;
	int64		planned_batch_id;
	Datum		planned_snapshot;
	bool		has_watermark;
	int64		watermark;
	bool		has_max_event_time;
	int64		max_event_time;
	bool		has_last_batch_at;
	TimestampTz last_batch_at;
	char	   *state_signature;	/* NULL: not recorded (before 0.6) */
} Checkpoint;

/* Counters of one batch (DESIGN.md 3.7). */
typedef struct BatchCounts
{
	int64		input_rows;
	int64		late_rows;
	int64		null_time_rows;
	bool		has_event_time;
	int64		event_time_min;
	int64		event_time_max;
	int64		sink_rows;
} BatchCounts;

/*
 * Compiled queries of this backend, by query id.  Query ids start again at
 * 1 when the extension is dropped and created again, which also creates a
 * new streamagg.query_def: an entry is valid for the catalog it was
 * compiled from.
 */
typedef struct CompiledEntry
{
	int32		query_id;
	Oid			catalog;		/* streamagg.query_def */
	SaQuery    *q;
} CompiledEntry;

static HTAB *compiled = NULL;

static Oid
query_def_relid(void)
{
	return get_relname_relid("query_def", get_namespace_oid("streamagg", true));
}

/* The compiled form of a query, compiled on first use in this backend. */
SaQuery *
sa_get_compiled(int32 query_id)
{
	CompiledEntry *entry;
	bool		found;

	if (compiled == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(CompiledEntry);
		compiled = hash_create("streamagg compiled queries", 16, &ctl,
							   HASH_ELEM | HASH_BLOBS);
	}
	entry = hash_search(compiled, &query_id, HASH_FIND, &found);
	if (found && entry->catalog != query_def_relid())
	{
		sa_forget_compiled(query_id);
		found = false;
	}
	if (!found)
	{
		SaDefinition def;
		SaQuery    *q;
		SaRoleSave	owner;
		MemoryContext old;

		sa_load_definition_by_id(query_id, &def);

		/* compiling runs type input functions: user code */
		sa_user_code_begin(def.owner, &owner);
		q = sa_compile_query(&def);
		old = MemoryContextSwitchTo(q->cxt);
		sa_build_sink_statement(q);
		MemoryContextSwitchTo(old);
		sa_user_code_end(&owner);
		MemoryContextSetParent(q->cxt, TopMemoryContext);
		entry = hash_search(compiled, &query_id, HASH_ENTER, &found);
		entry->catalog = query_def_relid();
		entry->q = q;
	}
	return entry->q;
}

/* Drop this backend's compiled form of a query: it is compiled anew. */
void
sa_forget_compiled(int32 query_id)
{
	CompiledEntry *entry;

	if (compiled == NULL)
		return;
	entry = hash_search(compiled, &query_id, HASH_FIND, NULL);
	if (entry)
	{
		SaQuery    *q = entry->q;

		hash_search(compiled, &query_id, HASH_REMOVE, NULL);
		MemoryContextDelete(q->cxt);
	}
}

/* Forget the compiled queries whose id is not in "query_ids" (dropped). */
void
sa_forget_compiled_except(List *query_ids)
{
	HASH_SEQ_STATUS seq;
	CompiledEntry *entry;
	List	   *gone = NIL;
	ListCell   *lc;

	if (compiled == NULL)
		return;
	hash_seq_init(&seq, compiled);
	while ((entry = hash_seq_search(&seq)) != NULL)
		if (!list_member_int(query_ids, entry->query_id))
			gone = lappend_int(gone, entry->query_id);
	foreach(lc, gone)
		sa_forget_compiled(lfirst_int(lc));
	list_free(gone);
}

static int64
timestamp_or(HeapTuple tuple, TupleDesc desc, int col, bool *has)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	*has = !isnull;
	return isnull ? 0 : DatumGetTimestampTz(d);
}

static void
read_checkpoint(int32 query_id, Checkpoint *cp)
{
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(query_id);
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	SaRoleSave	role;

	sa_catalog_access_begin(&role);
	SPI_connect();
	SPI_execute_with_args("SELECT last_batch_id, consumed_snapshot, planned_batch_id, "
						  "planned_snapshot, watermark, max_event_time, last_batch_at, state_signature "
						  "FROM streamagg.checkpoint WHERE query_id = $1",
						  1, &argtype, &arg, NULL, false, 1);
	if (SPI_processed != 1)
		elog(ERROR, "checkpoint of streaming query %d is missing", query_id);
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(cp, 0, sizeof(*cp));
	d = SPI_getbinval(tuple, desc, 1, &isnull);
	cp->has_batch = !isnull;
	cp->last_batch_id = isnull ? -1 : DatumGetInt64(d);
	d = SPI_getbinval(tuple, desc, 2, &isnull);
	cp->has_consumed = !isnull;
	if (!isnull)
		cp->consumed_snapshot = SPI_datumTransfer(d, false, -1);
	d = SPI_getbinval(tuple, desc, 3, &isnull);
	cp->has_planned = !isnull;
	cp->planned_batch_id = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(tuple, desc, 4, &isnull);
	if (cp->has_planned && !isnull)
		cp->planned_snapshot = SPI_datumTransfer(d, false, -1);
	else
		cp->has_planned = false;
	cp->watermark = timestamp_or(tuple, desc, 5, &cp->has_watermark);
	cp->max_event_time = timestamp_or(tuple, desc, 6, &cp->has_max_event_time);
	cp->last_batch_at = timestamp_or(tuple, desc, 7, &cp->has_last_batch_at);
	cp->state_signature = SPI_getvalue(tuple, desc, 8);
	SPI_finish();
	sa_catalog_access_end(&role);
}

/*
 * The snapshot a new batch ends at: every transaction committed now,
 * with the current transaction counted as still running if it has a
 * transaction id.  process() may run in a transaction that inserted into
 * the source: its own events are not committed, so they belong to a later
 * batch, and its id must stay in the snapshot's running list, or the
 * predicate of later batches would take it for consumed (DESIGN.md 4.2).
 */
Datum
sa_committed_snapshot(void)
{
	bool		isnull;
	Datum		snapshot;

	SPI_connect();
	if (SPI_execute("SELECT CASE WHEN x IS NULL OR x >= pg_catalog.pg_snapshot_xmax(s) THEN s "
					"ELSE (LEAST(pg_catalog.pg_snapshot_xmin(s), x)::text || ':' || "
					"pg_catalog.pg_snapshot_xmax(s)::text || ':' || "
					"(SELECT pg_catalog.string_agg(v::text, ',' ORDER BY v) FROM "
					"(SELECT pg_catalog.pg_snapshot_xip(s) UNION SELECT x) u(v)))::pg_catalog.pg_snapshot "
					"END FROM (SELECT pg_catalog.pg_current_snapshot(), "
					"pg_catalog.pg_current_xact_id_if_assigned()) n(s, x)",
					false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not take the snapshot of a batch");
	snapshot = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull),
								 false, -1);
	SPI_finish();
	return snapshot;
}

/*
 * Receives the rows of a batch straight from the executor (no copies) and
 * folds each into the state.  Per-row garbage goes to rowcxt, reset every
 * ROW_RESET_INTERVAL rows; whatever must last is copied by state.c and
 * aggregate.c into the trigger's context.
 */
typedef struct BatchReceiver
{
	DestReceiver pub;
	SaQuery    *q;
	SaStateStore *store;
	SaTriggerWork *work;
	BatchCounts *counts;
	int64	   *starts;			/* windows of the current row */
	int64	   *ends;
	bool		late_check;
	int64		watermark_for_late_rows;
	MemoryContext rowcxt;
	int			rows_since_reset;
} BatchReceiver;

#define ROW_RESET_INTERVAL 1000

/* Feed a row to every aggregate of a state, honouring FILTER. */
static void
advance_aggregates(BatchReceiver *r, Datum *states, bool *statenulls,
				   Datum *values, bool *nulls)
{
	SaQuery    *q = r->q;

	for (int a = 0; a < q->naggs; a++)
	{
		SaAggregate *agg = &q->aggs[a];

		if (agg->filterarg >= 0 &&
			(nulls[agg->filterarg] || !DatumGetBool(values[agg->filterarg])))
			continue;
		sa_agg_advance(r->work->rt, agg, &states[a], &statenulls[a],
					   values + agg->firstarg, nulls + agg->firstarg);
	}
}

/*
 * Steps 2 and 3 for one row: its windows, late rows, the aggregates.  A
 * row without event time, or whose windows would leave the range of
 * timestamps, is skipped and counted (null_event_time_rows).
 */
static void
fold_row(BatchReceiver *r, Datum *values, bool *nulls)
{
	SaQuery    *q = r->q;
	BatchCounts *counts = r->counts;
	int64		t = DatumGetTimestampTz(values[0]);
	int			nwindows;

	counts->input_rows++;
	if (nulls[0] || TIMESTAMP_NOT_FINITE(t) ||
		(nwindows = sa_row_windows(q, t, r->starts, r->ends)) < 0)
	{
		counts->null_time_rows++;
		return;
	}
	if (!counts->has_event_time || t < counts->event_time_min)
		counts->event_time_min = t;
	if (!counts->has_event_time || t > counts->event_time_max)
		counts->event_time_max = t;
	counts->has_event_time = true;

	if (q->def.has_session)
	{
		SaGroup    *group;
		SaSession  *session;

		/* a session event is late when its own session [t, t + gap) is */
		if (r->late_check &&
			sa_closed_by(r->ends[0], r->watermark_for_late_rows))
		{
			counts->late_rows++;
			return;
		}
		group = sa_state_touch(r->store, 0, 0, values + 1, nulls + 1);
		session = sa_session_for_event(r->work->rt, q, group, t);
		advance_aggregates(r, session->values, session->nulls, values, nulls);
		return;
	}

	if (q->use_panes)
	{
		SaGroup    *pane = sa_state_touch_pane(r->store, sa_pane_start(q, t),
											   values + 1, nulls + 1);

		pane->rows++;
		advance_aggregates(r, pane->work_values, pane->work_nulls, values,
						   nulls);
		return;
	}
	for (int w = 0; w < nwindows; w++)
	{
		SaGroup    *group;

		if (r->late_check &&
			sa_closed_by(r->ends[w], r->watermark_for_late_rows))
		{
			counts->late_rows++;
			continue;
		}
		group = sa_state_touch(r->store, r->starts[w], r->ends[w], values + 1,
							   nulls + 1);
		advance_aggregates(r, group->work_values, group->work_nulls, values,
						   nulls);
	}
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
	ListCell   *lc;

	foreach(lc, r->store->pane_list)
	{
		SaGroup    *pane = lfirst(lc);
		int			nwindows = sa_row_windows(q, pane->window_start, r->starts,
											  r->ends);

		/* its rows' windows were in range, and they are the pane's */
		Assert(nwindows > 0);
		for (int w = 0; w < nwindows; w++)
		{
			SaGroup    *group;

			CHECK_FOR_INTERRUPTS();
			if (r->late_check &&
				sa_closed_by(r->ends[w], r->watermark_for_late_rows))
			{
				r->counts->late_rows += pane->rows;
				continue;
			}
			group = sa_state_touch(r->store, r->starts[w], r->ends[w],
								   pane->keyvals, pane->keynulls);
			for (int a = 0; a < q->naggs; a++)
				sa_agg_combine(r->work->rt, &q->aggs[a],
							   &group->work_values[a], &group->work_nulls[a],
							   pane->work_values[a], pane->work_nulls[a]);
		}
	}
}

static bool
batch_receive(TupleTableSlot *slot, DestReceiver *self)
{
	BatchReceiver *r = (BatchReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(r->rowcxt);

	CHECK_FOR_INTERRUPTS();
	slot_getallattrs(slot);
	fold_row(r, slot->tts_values, slot->tts_isnull);
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
 * The state of a query was stored for the types it computed then (see
 * state_signature in definition.c); DDL on its source may have changed
 * them since.  Then the stored state must not be read: refuse to run,
 * saying what changed.
 */
static void
check_state_signature(SaQuery *q, const Checkpoint *cp)
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
			 errhint("Change the source's columns back, or drop the query and create it again (its first batch reads every event still in the source).")));
}

/*
 * A consumed snapshot from the future means transaction ids restarted: the
 * catalog was restored from a dump into another cluster.  Batches would
 * then skip events, so refuse to run rather than lose them.
 */
static void
check_snapshot_order(SaQuery *q, const Checkpoint *cp, Datum snapshot)
{
	Oid			types[2] = {PG_SNAPSHOTOID, PG_SNAPSHOTOID};
	Datum		args[2] = {cp->consumed_snapshot, snapshot};
	bool		isnull;
	bool		ahead;

	if (!cp->has_consumed)
		return;
	SPI_connect();
	SPI_execute_with_args("SELECT pg_catalog.pg_snapshot_xmax($1) > pg_catalog.pg_snapshot_xmax($2)",
						  2, types, args, NULL, true, 1);
	ahead = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	if (ahead)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("checkpoint of streaming query \"%s\" is ahead of this server's transaction ids",
						q->def.name),
				 errdetail("The query's position in its source was recorded by another cluster, probably before a dump and restore."),
				 errhint("Drop the query and create it again; its first batch reads every event still in the source.")));
}

/*
 * The predicate, over the source, of the batch between the snapshot $1
 * (previous, consumed) and $2 (new) (DESIGN.md 4.2): rows whose inserting
 * transaction is visible in $2 and was not in $1.  Those are the rows of
 * transactions from $1's xmax on, plus those of the transactions that were
 * still running at $1 (its xip list) and are visible in $2; they are
 * written out as constants, so that the index on the transaction id
 * serves every part and no old event is read again, however long a
 * producer's transaction stays open.  Rows from before the source was
 * prepared have no transaction id and belong to the first batch.
 */
char *
sa_batch_predicate(bool has_previous, Datum previous, Datum snapshot)
{
	StringInfoData buf;
	Oid			types[2] = {PG_SNAPSHOTOID, PG_SNAPSHOTOID};
	Datum		args[2] = {previous, snapshot};

	initStringInfo(&buf);
	if (!has_previous)
	{
		appendStringInfo(&buf, "%s IS NULL OR pg_catalog.pg_visible_in_snapshot(%s, $2)",
						 SA_XID_COLUMN, SA_XID_COLUMN);
		return buf.data;
	}
	appendStringInfo(&buf, "pg_catalog.pg_visible_in_snapshot(%s, $2) AND "
					 "(%s >= pg_catalog.pg_snapshot_xmax($1) AND "
					 "%s < pg_catalog.pg_snapshot_xmax($2)",
					 SA_XID_COLUMN, SA_XID_COLUMN, SA_XID_COLUMN);
	SPI_connect();
	SPI_execute_with_args("SELECT x::text FROM pg_catalog.pg_snapshot_xip($1) x "
						  "WHERE pg_catalog.pg_visible_in_snapshot(x, $2)",
						  2, types, args, NULL, false, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
		appendStringInfo(&buf, " OR %s = '%s'::pg_catalog.xid8", SA_XID_COLUMN,
						 SPI_getvalue(SPI_tuptable->vals[i],
									  SPI_tuptable->tupdesc, 1));
	SPI_finish();
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * Steps 1 to 3: read the batch and fold it into the state.  Runs as the
 * query's owner.
 */
static void
consume_batch(SaQuery *q, SaStateStore *store, SaTriggerWork *work,
			  const Checkpoint *cp, Datum new_snapshot, BatchCounts *counts)
{
	BatchReceiver r;
	SPIExecuteOptions options;
	ParamListInfo params = makeParamList(2);
	char	   *sql;
	int			ret;

	memset(&r, 0, sizeof(r));
	r.pub.receiveSlot = batch_receive;
	r.pub.rStartup = batch_startup;
	r.pub.rShutdown = batch_shutdown;
	r.pub.rDestroy = batch_destroy;
	r.pub.mydest = DestNone;
	r.q = q;
	r.store = store;
	r.work = work;
	r.counts = counts;
	r.starts = palloc(sizeof(int64) * sa_window_count(q));
	r.ends = palloc(sizeof(int64) * sa_window_count(q));
	r.late_check = q->def.output_mode != SA_OUTPUT_COMPLETE &&
		q->has_event_time_bound && cp->has_watermark;
	r.watermark_for_late_rows = cp->watermark;
	r.rowcxt = AllocSetContextCreate(work->cxt, "streamagg row",
									 ALLOCSET_DEFAULT_SIZES);

	params->params[0].value = cp->consumed_snapshot;
	params->params[0].isnull = !cp->has_consumed;
	params->params[0].pflags = PARAM_FLAG_CONST;
	params->params[0].ptype = PG_SNAPSHOTOID;
	params->params[1].value = new_snapshot;
	params->params[1].isnull = false;
	params->params[1].pflags = PARAM_FLAG_CONST;
	params->params[1].ptype = PG_SNAPSHOTOID;

	/*
	 * read_only false: the executor takes a snapshot newer than
	 * new_snapshot, so every row of the batch is visible to it.
	 */
	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = false;
	options.dest = (DestReceiver *) &r;

	sql = psprintf("%s%s", q->batch_select,
				   sa_batch_predicate(cp->has_consumed, cp->consumed_snapshot,
									  new_snapshot));
	SPI_connect();
	/* with a receiver of its own SPI reports SPI_OK_UTILITY, not SELECT */
	ret = SPI_execute_extended(sql, &options);
	if (ret < 0)
		elog(ERROR, "batch query failed: %s", SPI_result_code_string(ret));
	SPI_finish();
	if (q->use_panes)
		fold_panes(&r);
}

/* Milliseconds a trigger spent in each phase (the progress view shows them). */
typedef struct PhaseTimes
{
	double		aggregate_ms;	/* steps 1-3: read the batch, update the state */
	double		sink_ms;		/* step 4: write the sink, notify */
	double		state_log_ms;	/* step 5: write the state log */
} PhaseTimes;

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

/* Step 5: the checkpoint and the batch's progress row. */
static void
record_progress(SaQuery *q, int64 batch_id, Datum snapshot,
				bool has_watermark, int64 watermark,
				bool has_max, int64 max_event_time,
				const Checkpoint *cp, const BatchCounts *counts,
				TimestampTz started_at, double duration_ms,
				const PhaseTimes *phases, int64 state_total,
				int64 state_updated, int64 state_bytes)
{
	Oid			cptypes[7] = {INT4OID, INT8OID, PG_SNAPSHOTOID, TIMESTAMPTZOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID};
	Datum		cpargs[7];
	char		cpnulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Oid			logtypes[19] = {INT4OID, INT8OID, TIMESTAMPTZOID, FLOAT8OID,
		INT8OID, FLOAT8OID, FLOAT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
		TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
	FLOAT8OID, FLOAT8OID, FLOAT8OID, INT8OID};
	Datum		logargs[19];
	char		lognulls[19];
	double		since_last;
	SaRoleSave	role;

	cpargs[0] = Int32GetDatum(q->def.query_id);
	cpargs[1] = Int64GetDatum(batch_id);
	cpargs[2] = snapshot;
	cpargs[3] = TimestampTzGetDatum(watermark);
	cpnulls[3] = has_watermark ? ' ' : 'n';
	cpargs[4] = TimestampTzGetDatum(max_event_time);
	cpnulls[4] = has_max ? ' ' : 'n';
	cpargs[5] = TimestampTzGetDatum(started_at);
	cpargs[6] = CStringGetTextDatum(q->state_signature);

	memset(lognulls, ' ', sizeof(lognulls));
	logargs[0] = Int32GetDatum(q->def.query_id);
	logargs[1] = Int64GetDatum(batch_id);
	logargs[2] = TimestampTzGetDatum(started_at);
	logargs[3] = Float8GetDatum(duration_ms);
	logargs[4] = Int64GetDatum(counts->input_rows);
	since_last = cp->has_last_batch_at ?
		(double) (started_at - cp->last_batch_at) / USECS_PER_SEC : 0;
	logargs[5] = Float8GetDatum(since_last > 0 ? counts->input_rows / since_last : 0);
	lognulls[5] = since_last > 0 ? ' ' : 'n';
	logargs[6] = Float8GetDatum(duration_ms > 0 ?
								counts->input_rows / (duration_ms / 1000.0) : 0);
	lognulls[6] = duration_ms > 0 ? ' ' : 'n';
	logargs[7] = TimestampTzGetDatum(counts->event_time_min);
	logargs[8] = TimestampTzGetDatum(counts->event_time_max);
	lognulls[7] = lognulls[8] = counts->has_event_time ? ' ' : 'n';
	logargs[9] = TimestampTzGetDatum(watermark);
	lognulls[9] = has_watermark ? ' ' : 'n';
	logargs[10] = Int64GetDatum(state_total);
	logargs[11] = Int64GetDatum(state_updated);
	logargs[12] = Int64GetDatum(counts->late_rows);
	logargs[13] = Int64GetDatum(counts->null_time_rows);
	logargs[14] = Int64GetDatum(counts->sink_rows);
	logargs[15] = Float8GetDatum(phases->aggregate_ms);
	logargs[16] = Float8GetDatum(phases->sink_ms);
	logargs[17] = Float8GetDatum(phases->state_log_ms);
	logargs[18] = Int64GetDatum(state_bytes);

	sa_catalog_access_begin(&role);
	SPI_connect();
	SPI_execute_with_args("UPDATE streamagg.checkpoint SET last_batch_id = $2, "
						  "consumed_snapshot = $3, planned_batch_id = NULL, "
						  "planned_snapshot = NULL, watermark = $4, "
						  "max_event_time = $5, last_batch_at = $6, "
						  "state_signature = $7, "
						  "last_error = NULL, last_error_at = NULL, failures = 0, "
						  "retry_at = NULL WHERE query_id = $1",
						  7, cptypes, cpargs, cpnulls, false, 0);
	SPI_execute_with_args("INSERT INTO streamagg.batch_log VALUES "
						  "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
						  "$16, $17, $18, $19)",
						  19, logtypes, logargs, lognulls, false, 0);
	SPI_execute_with_args("DELETE FROM streamagg.batch_log "
						  "WHERE query_id = $1 AND batch_id <= $2 - 100",
						  2, logtypes, logargs, NULL, false, 0);
	SPI_finish();
	sa_catalog_access_end(&role);
}

/* A planned batch without rows: the snapshot is consumed, no batch counted. */
static void
consume_empty_plan(int32 query_id)
{
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(query_id);
	SaRoleSave	role;

	sa_catalog_access_begin(&role);
	SPI_connect();
	SPI_execute_with_args("UPDATE streamagg.checkpoint SET consumed_snapshot = planned_snapshot, "
						  "planned_batch_id = NULL, planned_snapshot = NULL "
						  "WHERE query_id = $1", 1, &argtype, &arg, NULL, false, 0);
	SPI_finish();
	sa_catalog_access_end(&role);
}

/*
 * Record, in the current transaction, the batch that the next trigger of a
 * query will process: its batch id and snapshot (DESIGN.md 3.8, 4.2).  The
 * worker commits this before running the trigger, so that a retry after an
 * error, a kill or a crash reads exactly the same events.  Returns false
 * when nothing can have been committed since the last trigger (the new
 * snapshot equals the consumed one): then there is nothing to run.
 */
bool
sa_plan_batch(int32 query_id)
{
	Checkpoint	cp;
	Datum		snapshot;
	Oid			types[4] = {INT4OID, INT8OID, PG_SNAPSHOTOID, PG_SNAPSHOTOID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	SaRoleSave	role;
	bool		changed;
	bool		isnull;

	sa_lock_query(query_id);
	read_checkpoint(query_id, &cp);
	if (cp.has_planned)
		return true;
	snapshot = sa_committed_snapshot();
	args[0] = Int32GetDatum(query_id);
	args[1] = Int64GetDatum(cp.last_batch_id + 1);
	args[2] = snapshot;
	args[3] = cp.consumed_snapshot;
	nulls[3] = cp.has_consumed ? ' ' : 'n';

	sa_catalog_access_begin(&role);
	SPI_connect();
	SPI_execute_with_args("SELECT $4 IS NULL OR $3::text <> $4::text",
						  4, types, args, nulls, true, 1);
	changed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));
	if (changed)
		SPI_execute_with_args("UPDATE streamagg.checkpoint SET planned_batch_id = $2, "
							  "planned_snapshot = $3 WHERE query_id = $1",
							  4, types, args, nulls, false, 0);
	SPI_finish();
	sa_catalog_access_end(&role);
	return changed;
}

/*
 * Step 4: the rows to write to the sink, by output mode (DESIGN.md 3.4):
 * append writes the windows (or sessions) the watermark closed, once;
 * update and complete write every window changed by this batch.  Session
 * queries in complete mode write the sessions changed by this batch and
 * delete ("retired") the rows of sessions it merged or extended away.  A
 * function sink keeps no rows, so in complete mode it receives the whole
 * result table.
 */
static int
groups_to_emit(SaQuery *q, SaStateStore *store, SaTriggerWork *work,
			   List *closed, SaGroup ***emit, List **retired)
{
	List	   *rows = NIL;
	int			n = 0;
	ListCell   *lc;

	if (q->def.output_mode == SA_OUTPUT_APPEND)
		rows = closed;
	else if (q->def.output_mode == SA_OUTPUT_COMPLETE &&
			 OidIsValid(q->def.sink_function))
		rows = sa_state_all_rows(store);
	else if (q->def.has_session)
	{
		for (int g = 0; g < work->ntouched; g++)
			sa_sessions_changes(q, work->touched[g], &rows, retired);
	}
	else
	{
		*emit = work->touched;
		return work->ntouched;
	}
	*emit = palloc(sizeof(SaGroup *) * (list_length(rows) + 1));
	foreach(lc, rows)
		(*emit)[n++] = (SaGroup *) lfirst(lc);
	return n;
}

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

/*
 * Steps 1 to 5 of the trigger of "q" (see the file header), as its owner.
 */
static SaTriggerResult
trigger_steps(SaQuery *q)
{
	SaTriggerResult result = {0};
	int32		query_id = q->def.query_id;
	Checkpoint	cp;
	Datum		new_snapshot;
	int64		batch_id;
	SaStateStore *store;
	SaTriggerWork work;
	BatchCounts counts;
	TimestampTz started_at = GetCurrentTimestamp();
	instr_time	start_time;
	instr_time	lap;
	PhaseTimes	phases;
	bool		has_watermark;
	bool		has_max_seen;
	int64		max_seen;
	bool		evicting;
	int64		watermark = 0;
	List	   *closed = NIL;
	List	   *retired = NIL;
	SaGroup   **emit;
	int			nemit;
	MemoryContext old;

	INSTR_TIME_SET_CURRENT(start_time);
	lap = start_time;
	/* a compiled query outlives DDL: say so if its source was dropped */
	(void) sa_qualified_relation(q->def.source, "source", q->def.name);
	for (int a = 0; a < q->naggs; a++)
		sa_agg_check_privileges(&q->aggs[a]);

	read_checkpoint(query_id, &cp);
	check_state_signature(q, &cp);
	new_snapshot = cp.has_planned ? cp.planned_snapshot : sa_committed_snapshot();
	batch_id = cp.has_planned ? cp.planned_batch_id : cp.last_batch_id + 1;
	check_snapshot_order(q, &cp, new_snapshot);

	memset(&work, 0, sizeof(work));
	work.cxt = AllocSetContextCreate(CurrentMemoryContext, "streamagg trigger",
									 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work.cxt);
	work.rt = sa_agg_runtime_create();
	work.touched_size = 64;
	work.touched = palloc(sizeof(SaGroup *) * work.touched_size);
	memset(&counts, 0, sizeof(counts));

	store = sa_state_begin(q, &work, cp.last_batch_id);

	/* so that the batch read skips the ranges filled by older events */
	sa_summarize_source_ranges(q->def.source);

	/* steps 1-3 */
	consume_batch(q, store, &work, &cp, new_snapshot, &counts);

	if (counts.input_rows == 0)
	{
		/* nothing to do; a planned batch that turned out empty is consumed */
		if (cp.has_planned)
			consume_empty_plan(query_id);
		sa_agg_runtime_destroy(work.rt);
		MemoryContextSwitchTo(old);
		MemoryContextDelete(work.cxt);
		return result;
	}

	sa_inject_fault(query_id, "after_read");

	/* step 4: the new watermark, emission and eviction */
	has_max_seen = sa_max_event_time_after(cp.has_max_event_time,
										   cp.max_event_time,
										   counts.has_event_time,
										   counts.event_time_max, &max_seen);
	has_watermark = sa_watermark_after_batch(q, cp.has_watermark, cp.watermark,
											 counts.has_event_time, max_seen,
											 &watermark);
	evicting = has_watermark && q->has_event_time_bound &&
		q->def.output_mode != SA_OUTPUT_COMPLETE;
	sa_state_store_touched(store);
	if (evicting)
		closed = sa_state_close(store, watermark);
	nemit = groups_to_emit(q, store, &work, closed, &emit, &retired);
	sa_inject_fault(query_id, "after_state");
	phases.aggregate_ms = lap_ms(&lap);

	(void) sa_delete_sink_rows(q, retired);
	counts.sink_rows = sa_write_sink(q, store, emit, nemit, batch_id);
	sa_notify_output(q, batch_id, emit, nemit, has_watermark, watermark);
	sa_inject_fault(query_id, "during_sink");
	phases.sink_ms = lap_ms(&lap);

	/* step 5 */
	sa_state_checkpoint(store, batch_id, evicting, watermark, closed);
	phases.state_log_ms = lap_ms(&lap);
	INSTR_TIME_SUBTRACT(lap, start_time);
	record_progress(q, batch_id, new_snapshot, has_watermark, watermark,
					has_max_seen, max_seen, &cp,
					&counts, started_at, INSTR_TIME_GET_MILLISEC(lap), &phases,
					sa_state_size(store), work.ntouched,
					sa_state_memory(store));
	sa_state_end(store, batch_id);
	sa_inject_fault(query_id, "before_commit");

	sa_agg_runtime_destroy(work.rt);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work.cxt);

	result.rows = counts.input_rows;
	return result;
}

/*
 * Run one trigger of a query in the current transaction.  Everything runs
 * as the query's owner, in a security-restricted operation whose settings
 * are rolled back at the end (security.c); streamagg's catalog is read and
 * written as the extension's owner, by the narrow calls that need it.
 * Errors propagate: the caller's transaction aborts and nothing of the
 * batch remains.
 */
SaTriggerResult
sa_run_trigger(int32 query_id)
{
	SaTriggerResult result;
	SaQuery    *q;
	SaRoleSave	owner;

	sa_forbid_in_trigger("a trigger");
	sa_lock_query(query_id);
	q = sa_get_compiled(query_id);
	sa_user_code_begin(q->def.owner, &owner);
	running_trigger_query = query_id;
	PG_TRY();
	{
		result = trigger_steps(q);
	}
	PG_FINALLY();
	{
		running_trigger_query = 0;
	}
	PG_END_TRY();
	sa_user_code_end(&owner);
	return result;
}
