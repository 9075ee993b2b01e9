/*-------------------------------------------------------------------------
 *
 * state_log.c
 *	  The durable state of a query: streamagg.state_log.
 *
 * The log holds, per query, a snapshot of every group after some batch and
 * then one delta per later trigger: the groups it changed, and those it
 * removed.  A trigger therefore writes what it touched, packed into a few
 * rows, never one row per group, and never looks a group up on disk.  When
 * the deltas since the snapshot hold more records than the state has
 * groups (plus SA_LOG_SLACK), the trigger writes a new snapshot instead of
 * its delta and deletes the older rows: a snapshot costs O(state) once per
 * O(state) logged records, and a replay reads at most about twice the
 * state.  This is the delta-and-snapshot scheme of Spark's state store.
 *
 * Format.  A row is (query_id, batch_id, part, snapshot, groups, records):
 * "records" is a bytea of "groups" records, each one group: window_start
 * and window_end (int64), then its key and its states, each an int32
 * length and the bytes of the minimal tuple (q->key_desc,
 * q->group_state_desc); a states length of -1 says that the group is gone.
 * Integers are in network byte order (pqformat), as the update script from
 * 0.3 wrote them with timestamptz_send and int4send.  A trigger's records
 * are inserted in rows of about SA_LOG_CHUNK_BYTES, numbered by "part".
 *
 * The log is written in the trigger's transaction, as the extension's
 * owner; replay reads the latest snapshot, then every later delta in batch
 * order.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "kept_plan.h"
#include "security.h"
#include "state_log.h"
#include "group.h"
#include "group_store.h"
#include "state.h"
#include "working_set.h"

/*
 * The INSERT of a row forms its records into one heap tuple (zeroed, then
 * copied) before TOAST compresses and splits them: rows of 1 MB keep that
 * memory small enough to be reused from one row to the next.  With 8 MB
 * rows every row's tuple was fresh memory, and logging 400 000 groups
 * (90 MB of records) took 560-700 ms instead of 113-130 ms.
 */
#define SA_LOG_CHUNK_BYTES (1024 * 1024)

/* Logged records a query may have beyond its groups before a snapshot. */
#define SA_LOG_SLACK 10000

typedef struct LogWriter
{
	int32		query_id;
	int64		batch_id;
	bool		snapshot;
	int32		part;			/* of the next row */
	int32		nrecords;		/* in buf */
	int64		written;		/* in the rows inserted */
	StringInfoData buf;			/* a varlena header, then records */
} LogWriter;

static void
log_start_row(LogWriter *w)
{
	resetStringInfo(&w->buf);
	appendStringInfoSpaces(&w->buf, VARHDRSZ);
	w->nrecords = 0;
}

static void
log_begin(LogWriter *w, SaQuery *q, int64 batch_id, bool snapshot)
{
	w->query_id = q->def.query_id;
	w->batch_id = batch_id;
	w->snapshot = snapshot;
	w->part = 0;
	w->written = 0;
	initStringInfo(&w->buf);
	log_start_row(w);
}

/*
 * The statement inserting a row of the log.  Its generic plan takes the
 * records as a parameter; a custom plan would copy them (megabytes) into
 * the plan as a constant.
 */
static SPIPlanPtr
log_insert_plan(void)
{
	Oid			types[6] = {INT4OID, INT8OID, INT4OID, BOOLOID, INT4OID, BYTEAOID};

	return sa_kept_plan("INSERT INTO streamagg.state_log "
						"(query_id, batch_id, part, snapshot, groups, records) "
						"VALUES ($1, $2, $3, $4, $5, $6)",
						6, types, CURSOR_OPT_GENERIC_PLAN);
}

/* Insert the records collected so far as one row; the caller is in SPI. */
static void
log_flush(LogWriter *w)
{
	Datum		args[6];
	SaRoleSave	role;

	if (w->nrecords == 0)
		return;
	SET_VARSIZE(w->buf.data, w->buf.len);
	args[0] = Int32GetDatum(w->query_id);
	args[1] = Int64GetDatum(w->batch_id);
	args[2] = Int32GetDatum(w->part);
	args[3] = BoolGetDatum(w->snapshot);
	args[4] = Int32GetDatum(w->nrecords);
	args[5] = PointerGetDatum(w->buf.data);
	sa_catalog_access_begin(&role);
	if (SPI_execute_plan(log_insert_plan(), args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write streamagg.state_log");
	sa_catalog_access_end(&role);
	w->written += w->nrecords;
	w->part++;
	log_start_row(w);
}

static void
log_append_tuple(StringInfo buf, MinimalTuple mtup)
{
	pq_sendint32(buf, mtup->t_len);
	appendBinaryStringInfo(buf, (char *) mtup, mtup->t_len);
}

/* Log a group with its stored states, or as gone when "states" is NULL. */
static void
log_record(LogWriter *w, int64 window_start, int64 window_end,
		   MinimalTuple key, MinimalTuple states)
{
	pq_sendint64(&w->buf, window_start);
	pq_sendint64(&w->buf, window_end);
	log_append_tuple(&w->buf, key);
	if (states)
		log_append_tuple(&w->buf, states);
	else
		pq_sendint32(&w->buf, (uint32) -1);
	w->nrecords++;
	if (w->buf.len >= SA_LOG_CHUNK_BYTES)
		log_flush(w);
}

/* The next minimal tuple of a row's records (an aligned copy), or NULL. */
static MinimalTuple
log_read_tuple(StringInfo msg)
{
	int32		len = (int32) pq_getmsgint(msg, 4);
	MinimalTuple mtup;

	if (len < 0)
		return NULL;
	if (len < (int32) SizeofMinimalTupleHeader)
		elog(ERROR, "corrupt record in streamagg.state_log: tuple of %d bytes", len);
	mtup = palloc(len);
	memcpy(mtup, pq_getmsgbytes(msg, len), len);
	if (mtup->t_len != (uint32) len)
		elog(ERROR, "corrupt record in streamagg.state_log: tuple length %u, recorded %d",
			 mtup->t_len, len);
	return mtup;
}

/*
 * Replay a logged group into the shared groups: its stored states, or,
 * when "states" is NULL, its removal.
 */
static void
replay_group(SaStateStore *store, int64 ws, int64 we, MinimalTuple key,
			 MinimalTuple states)
{
	SaQuery    *q = store->q;
	SaGroupStore *gs = store->groups;
	SaGroup		group;
	void	   *entry;

	memset(&group, 0, sizeof(group));
	group.window_start = ws;
	group.window_end = we;
	group.key = key;
	group.states = states;
	group.keyvals = palloc(sizeof(Datum) * (q->nkeys + 1));
	group.keynulls = palloc(sizeof(bool) * (q->nkeys + 1));
	sa_deform_minimal(key, q->key_desc, group.keyvals, group.keynulls);
	group.hash = sa_group_hash(q, ws, we, group.keyvals, group.keynulls);
	entry = sa_gs_find(gs, ws, we, group.hash, group.keyvals, group.keynulls);
	if (states == NULL)
	{
		if (entry != NULL)		/* else removed before it was ever logged */
			sa_gs_delete(gs, entry);
		return;
	}
	sa_gs_put(gs, entry, &group);
	gs->min_window_end = Min(gs->min_window_end,
							 sa_group_stored_min_end(q, we, states));
}

/* Replay one row of the log; returns its records. */
static int32
replay_row(SaStateStore *store, bytea *records)
{
	StringInfoData msg;
	int32		n = 0;

	msg.data = VARDATA_ANY(records);
	msg.len = msg.maxlen = VARSIZE_ANY_EXHDR(records);
	msg.cursor = 0;
	while (msg.cursor < msg.len)
	{
		int64		ws = pq_getmsgint64(&msg);
		int64		we = pq_getmsgint64(&msg);
		MinimalTuple key = log_read_tuple(&msg);
		MinimalTuple states = log_read_tuple(&msg);

		if (key == NULL)
			elog(ERROR, "corrupt record in streamagg.state_log: no key");
		replay_group(store, ws, we, key, states);
		n++;
	}
	return n;
}

/*
 * Rebuild a query's shared groups (empty) from its log: the latest
 * snapshot, then the deltas after it in batch order.
 */
void
sa_state_log_replay(SaStateStore *store)
{
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(store->q->def.query_id);
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "streamagg replay",
												 ALLOCSET_DEFAULT_SIZES);
	Portal		portal;
	ErrorContextCallback errcb;
	SaRoleSave	role;

	Assert(store->groups->ngroups == 0 && store->log_records == 0);
	sa_gs_push_write_context(store->groups, &errcb);
	SPI_connect();
	sa_catalog_access_begin(&role);
	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT snapshot, groups, records FROM streamagg.state_log "
									   "WHERE query_id = $1 AND batch_id >= coalesce("
									   "(SELECT max(batch_id) FROM streamagg.state_log "
									   "WHERE query_id = $1 AND snapshot), -1) "
									   "ORDER BY batch_id, part",
									   1, &argtype, &arg, NULL, false, 0);
	sa_catalog_access_end(&role);
	for (;;)
	{
		/* rows are up to SA_LOG_CHUNK_BYTES: fetch few at a time */
		sa_catalog_access_begin(&role);
		SPI_cursor_fetch(portal, true, 4);
		sa_catalog_access_end(&role);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			MemoryContext old = MemoryContextSwitchTo(rowcxt);
			bool		isnull;
			bool		snapshot = DatumGetBool(SPI_getbinval(tuple, desc, 1, &isnull));
			int32		groups = DatumGetInt32(SPI_getbinval(tuple, desc, 2, &isnull));
			int32		replayed;

			CHECK_FOR_INTERRUPTS();
			replayed = replay_row(store,
								  DatumGetByteaPP(SPI_getbinval(tuple, desc, 3, &isnull)));
			if (replayed != groups)
				elog(ERROR, "corrupt row in streamagg.state_log: %d records, %d recorded",
					 replayed, groups);
			if (!snapshot)
				store->log_records += replayed;
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	MemoryContextDelete(rowcxt);
	error_context_stack = errcb.previous;
}

/*
 * Log a snapshot of every shared group (after this trigger's changes); the
 * caller is in SPI.  Packed groups are formed into tuples in a context
 * reset as the records go.
 */
static void
log_snapshot(SaStateStore *store, LogWriter *w)
{
	SaGroupStore *gs = store->groups;
	MemoryContext tuples = AllocSetContextCreate(CurrentMemoryContext,
												 "streamagg snapshot",
												 ALLOCSET_DEFAULT_SIZES);
	uint64		position = 0;
	int64		n = 0;
	void	   *entry;

	if (sa_gs_count(gs) != (uint64) gs->ngroups)
		elog(ERROR, "shared state of streaming query \"%s\" holds %llu groups, not %lld",
			 store->q->def.name, (unsigned long long) sa_gs_count(gs),
			 (long long) gs->ngroups);
	while ((entry = sa_gs_next(gs, &position)) != NULL)
	{
		SaEntryHead *head = entry;
		MemoryContext old = MemoryContextSwitchTo(tuples);
		MinimalTuple key;
		MinimalTuple states;

		sa_gs_tuples(gs, entry, &key, &states);
		MemoryContextSwitchTo(old);
		log_record(w, head->window_start, head->window_end, key, states);
		if (++n % 1024 == 0)
			MemoryContextReset(tuples);
		CHECK_FOR_INTERRUPTS();
	}
	log_flush(w);
	MemoryContextDelete(tuples);
}

/*
 * Log a delta: every group of the working set (touched by the batch, or
 * changed by closing), with its stored states, or as gone when closing
 * emptied it.
 */
static void
log_delta(SaStateStore *store, LogWriter *w)
{
	SaWorkingSet *ws = store->work;

	for (int g = 0; g < ws->ntouched; g++)
	{
		SaGroup    *group = ws->touched[g];

		log_record(w, group->window_start, group->window_end, group->key,
				   group->emptied ? NULL : group->states);
	}
	sa_foreach_ptr(SaGroup, group, ws->closed_only)
		log_record(w, group->window_start, group->window_end, group->key,
				   group->emptied ? NULL : group->states);
	log_flush(w);
}

/*
 * Make the trigger's changes durable (see the file header): its delta,
 * or, when the log has grown past the state, a snapshot that replaces the
 * older rows.  Call after the shared groups hold every change.
 */
void
sa_state_log_write(SaStateStore *store, int64 batch_id)
{
	SaQuery    *q = store->q;
	SaWorkingSet *ws = store->work;
	int64		changes = ws->ntouched + list_length(ws->closed_only);
	LogWriter	w;

	SPI_connect();
	if (store->log_records + changes > store->groups->ngroups + SA_LOG_SLACK)
	{
		Oid			types[2] = {INT4OID, INT8OID};
		Datum		args[2] = {Int32GetDatum(q->def.query_id),
		Int64GetDatum(batch_id)};
		SaRoleSave	role;

		log_begin(&w, q, batch_id, true);
		log_snapshot(store, &w);
		sa_catalog_access_begin(&role);
		if (SPI_execute_with_args("DELETE FROM streamagg.state_log "
								  "WHERE query_id = $1 AND batch_id < $2",
								  2, types, args, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not trim streamagg.state_log");
		sa_catalog_access_end(&role);
		store->log_records = 0;
	}
	else
	{
		log_begin(&w, q, batch_id, false);
		log_delta(store, &w);
		Assert(w.written == changes);
		store->log_records += w.written;
	}
	SPI_finish();
}
