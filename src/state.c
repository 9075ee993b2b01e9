/*-------------------------------------------------------------------------
 *
 * state.c
 *	  The state of open windows: one group per (window, group key), cached
 *	  in memory and made durable in streamagg.state.
 *
 * The checkpoint table streamagg.state is the truth; it is written in the
 * trigger's transaction.  A backend that runs triggers keeps a cache of the
 * whole state of each query it ran, which is valid only while it reflects
 * the last committed batch:
 *	  - a trigger marks the cache dirty before changing it;
 *	  - at commit a dirty cache becomes clean; at abort (of the transaction
 *	    or of any subtransaction) a dirty cache becomes invalid;
 *	  - before use, a cache that is invalid, or whose batch id differs from
 *	    the checkpoint's (another backend ran a trigger), is reloaded.
 * So after an error, a kill or a crash the state equals the last committed
 * checkpoint.
 *
 * Between triggers a group holds its aggregate states in stored form (a
 * minimal tuple whose bytes are also what streamagg.state holds); a trigger
 * works on live states in its own memory context ("touching" a group) and
 * stores them back at its end.  Keys are compared with the types' own
 * equality and hash functions, as GROUP BY does.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "state.h"

/* simplehash of groups, keyed by the group itself */
typedef struct SaGroupEntry
{
	SaGroup    *group;
	uint32		hash;
	char		status;
} SaGroupEntry;

static bool group_equal(SaQuery *q, const SaGroup *a, const SaGroup *b);

#define SH_PREFIX sagroups
#define SH_ELEMENT_TYPE SaGroupEntry
#define SH_KEY_TYPE SaGroup *
#define SH_KEY group
#define SH_HASH_KEY(tb, key) ((key)->hash)
#define SH_EQUAL(tb, a, b) group_equal((SaQuery *) (tb)->private_data, a, b)
#define SH_SCOPE static inline
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_DEFINE
#define SH_DECLARE
#include "lib/simplehash.h"

/* All state caches of this backend, by query id. */
static HTAB *stores = NULL;

static bool
group_equal(SaQuery *q, const SaGroup *a, const SaGroup *b)
{
	if (a->window_start != b->window_start || a->window_end != b->window_end)
		return false;
	for (int i = 0; i < q->nkeys; i++)
	{
		if (a->keynulls[i] || b->keynulls[i])
		{
			if (a->keynulls[i] != b->keynulls[i])
				return false;
			continue;
		}
		if (!DatumGetBool(FunctionCall2Coll(&q->key_eq[i],
											q->key_collations[i],
											a->keyvals[i], b->keyvals[i])))
			return false;
	}
	return true;
}

/* Hash of a (window, key), consistent with group_equal. */
uint32
sa_group_hash(SaQuery *q, int64 window_start, int64 window_end,
			  Datum *keyvals, bool *keynulls)
{
	uint32		hash = hash_bytes_uint32((uint32) window_start) ^
		hash_bytes_uint32((uint32) (window_start >> 32));

	hash = hash_combine(hash, hash_bytes_uint32((uint32) window_end));
	for (int i = 0; i < q->nkeys; i++)
	{
		uint32		h = 0x9e3779b9;

		if (!keynulls[i])
			h = DatumGetUInt32(FunctionCall1Coll(&q->key_hash[i],
												 q->key_collations[i],
												 keyvals[i]));
		hash = hash_combine(hash, h);
	}
	return hash;
}

/* A value that can be kept after the trigger: no pointer into TOAST. */
static Datum
self_contained(Datum value, bool isnull, int16 typlen)
{
	if (!isnull && typlen == -1)
	{
		struct varlena *v = (struct varlena *) DatumGetPointer(value);

		if (VARATT_IS_EXTERNAL_ONDISK(v) || VARATT_IS_EXTERNAL_INDIRECT(v))
			return PointerGetDatum(detoast_external_attr(v));
	}
	return value;
}

/* Deform a minimal tuple into values pointing into it. */
static void
deform_minimal(MinimalTuple mtup, TupleDesc desc, Datum *values, bool *nulls)
{
	HeapTupleData htup;

	htup.t_len = mtup->t_len + MINIMAL_TUPLE_OFFSET;
	htup.t_data = (HeapTupleHeader) ((char *) mtup - MINIMAL_TUPLE_OFFSET);
	heap_deform_tuple(&htup, desc, values, nulls);
}

/*
 * Make a group in the store's context from its key tuple; the key values
 * point into that tuple.
 */
static SaGroup *
group_create(SaStateStore *store, int64 window_start, int64 window_end,
			 MinimalTuple key, uint32 hash)
{
	SaQuery    *q = store->q;
	SaGroup    *group;
	bool		found;
	SaGroupEntry *entry;

	group = MemoryContextAllocZero(store->cxt,
								   sizeof(SaGroup) +
								   q->nkeys * (sizeof(Datum) + sizeof(bool)));
	group->window_start = window_start;
	group->window_end = window_end;
	group->hash = hash;
	group->key = key;
	group->keyvals = (Datum *) (group + 1);
	group->keynulls = (bool *) (group->keyvals + q->nkeys);
	deform_minimal(key, q->key_desc, group->keyvals, group->keynulls);
	entry = sagroups_insert(store->groups, group, &found);
	Assert(!found);
	entry->hash = hash;
	store->ngroups++;
	if (window_end < store->min_window_end)
		store->min_window_end = window_end;
	return group;
}

static void
group_free(SaStateStore *store, SaGroup *group)
{
	sagroups_delete(store->groups, group);
	if (group->states)
		pfree(group->states);
	pfree(group->key);
	pfree(group);
	store->ngroups--;
}

static void
store_reset(SaStateStore *store)
{
	if (store->cxt)
		MemoryContextDelete(store->cxt);
	store->cxt = AllocSetContextCreate(TopMemoryContext, "streamagg state",
									   ALLOCSET_DEFAULT_SIZES);
	store->groups = sagroups_create(store->cxt, 1024, store->q);
	store->ngroups = 0;
	store->min_window_end = PG_INT64_MAX;
	store->valid = false;
	store->dirty = false;
	store->batch_id = -1;
}

/* Copy a bytea's payload into a new, aligned minimal tuple. */
static MinimalTuple
minimal_from_bytea(MemoryContext cxt, bytea *b)
{
	Size		len = VARSIZE_ANY_EXHDR(b);
	MinimalTuple mtup = MemoryContextAlloc(cxt, len);

	memcpy(mtup, VARDATA_ANY(b), len);
	Assert(mtup->t_len == len);
	return mtup;
}

static bytea *
bytea_from_minimal(MinimalTuple mtup)
{
	bytea	   *b = palloc(VARHDRSZ + mtup->t_len);

	SET_VARSIZE(b, VARHDRSZ + mtup->t_len);
	memcpy(VARDATA(b), mtup, mtup->t_len);
	return b;
}

/* Rebuild the cache from streamagg.state. */
static void
store_load(SaStateStore *store, int64 committed_batch_id)
{
	SaQuery    *q = store->q;
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(q->def.query_id);
	Datum	   *keyvals = palloc(sizeof(Datum) * (q->nkeys + 1));
	bool	   *keynulls = palloc(sizeof(bool) * (q->nkeys + 1));
	Portal		portal;

	store_reset(store);
	SPI_connect();
	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT window_start, window_end, group_key, agg_states "
									   "FROM streamagg.state WHERE query_id = $1",
									   1, &argtype, &arg, NULL, false, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		ws = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 1, &isnull));
			int64		we = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 2, &isnull));
			MinimalTuple key = minimal_from_bytea(store->cxt,
												  DatumGetByteaPP(SPI_getbinval(tuple, desc, 3, &isnull)));
			SaGroup    *group;

			deform_minimal(key, q->key_desc, keyvals, keynulls);
			group = group_create(store, ws, we, key,
								 sa_group_hash(q, ws, we, keyvals, keynulls));
			group->states = minimal_from_bytea(store->cxt,
											   DatumGetByteaPP(SPI_getbinval(tuple, desc, 4, &isnull)));
			group->persisted = true;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	store->batch_id = committed_batch_id;
	store->valid = true;
}

/*
 * The state of a query, valid for the batch after "committed_batch_id", and
 * marked dirty: the caller is about to change it in this transaction.
 */
SaStateStore *
sa_state_begin(SaQuery *q, int64 committed_batch_id)
{
	SaStateStore *store;
	bool		found;

	if (stores == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(SaStateStore);
		stores = hash_create("streamagg states", 16, &ctl,
							 HASH_ELEM | HASH_BLOBS);
	}
	store = hash_search(stores, &q->def.query_id, HASH_ENTER, &found);
	if (!found)
	{
		memset(((char *) store) + sizeof(int32), 0,
			   sizeof(SaStateStore) - sizeof(int32));
		store->q = q;
		store_reset(store);
	}
	store->q = q;
	store->groups->private_data = q;
	if (!store->valid || store->batch_id != committed_batch_id)
		store_load(store, committed_batch_id);
	store->dirty = true;
	store->trigger_seq++;
	return store;
}

/* Forget a query's cache (the query was dropped or recompiled). */
void
sa_state_forget(int32 query_id)
{
	SaStateStore *store;

	if (stores == NULL)
		return;
	store = hash_search(stores, &query_id, HASH_FIND, NULL);
	if (store)
	{
		MemoryContextDelete(store->cxt);
		hash_search(stores, &query_id, HASH_REMOVE, NULL);
	}
}

/*
 * The group for (window, key) of a batch row, created if new, with live
 * states in the trigger's context.  Key values may point into the row.
 */
SaGroup *
sa_state_touch(SaStateStore *store, SaTriggerWork *work, int64 window_start,
			   int64 window_end, Datum *keyvals, bool *keynulls)
{
	SaQuery    *q = store->q;
	SaGroup		probe;
	SaGroup    *group;
	MemoryContext old;

	probe.window_start = window_start;
	probe.window_end = window_end;
	probe.keyvals = keyvals;
	probe.keynulls = keynulls;
	probe.hash = sa_group_hash(q, window_start, window_end, keyvals, keynulls);
	{
		SaGroupEntry *entry = sagroups_lookup(store->groups, &probe);

		group = entry ? entry->group : NULL;
	}
	if (group == NULL)
	{
		Datum	   *vals = palloc(sizeof(Datum) * (q->nkeys + 1));
		MinimalTuple key;

		for (int i = 0; i < q->nkeys; i++)
			vals[i] = self_contained(keyvals[i], keynulls[i],
									 TupleDescAttr(q->key_desc, i)->attlen);
		old = MemoryContextSwitchTo(store->cxt);
		key = heap_form_minimal_tuple(q->key_desc, vals, keynulls);
		MemoryContextSwitchTo(old);
		group = group_create(store, window_start, window_end, key,
							 probe.hash);
	}

	if (group->touched_in != store->trigger_seq)
	{
		Datum	   *stored = NULL;
		bool	   *storednulls = NULL;

		old = MemoryContextSwitchTo(work->cxt);
		group->touched_in = store->trigger_seq;
		group->work_values = palloc(sizeof(Datum) * q->naggs);
		group->work_nulls = palloc(sizeof(bool) * q->naggs);
		if (group->states)
		{
			stored = palloc(sizeof(Datum) * q->naggs);
			storednulls = palloc(sizeof(bool) * q->naggs);
			deform_minimal(group->states, q->state_desc, stored, storednulls);
		}
		for (int i = 0; i < q->naggs; i++)
		{
			if (stored)
			{
				group->work_nulls[i] = storednulls[i];
				group->work_values[i] = sa_agg_from_stored(work->rt, &q->aggs[i],
														   stored[i], storednulls[i]);
			}
			else
				sa_agg_init(&q->aggs[i], &group->work_values[i],
							&group->work_nulls[i]);
		}
		if (work->ntouched == work->touched_size)
		{
			work->touched_size *= 2;
			work->touched = repalloc(work->touched,
									 sizeof(SaGroup *) * work->touched_size);
		}
		work->touched[work->ntouched++] = group;
		MemoryContextSwitchTo(old);
	}
	return group;
}

/* Store the live states of every touched group back in stored form. */
void
sa_state_store_touched(SaStateStore *store, SaTriggerWork *work)
{
	SaQuery    *q = store->q;
	Datum	   *values = palloc(sizeof(Datum) * q->naggs);

	for (int g = 0; g < work->ntouched; g++)
	{
		SaGroup    *group = work->touched[g];
		MinimalTuple states;
		MemoryContext old;

		for (int i = 0; i < q->naggs; i++)
		{
			SaAggregate *agg = &q->aggs[i];

			values[i] = sa_agg_to_stored(work->rt, agg, group->work_values[i],
										 group->work_nulls[i]);
			values[i] = self_contained(values[i], group->work_nulls[i],
									   agg->has_serialfn ? -1 : agg->transtyplen);
		}
		old = MemoryContextSwitchTo(store->cxt);
		states = heap_form_minimal_tuple(q->state_desc, values,
										 group->work_nulls);
		MemoryContextSwitchTo(old);
		if (group->states)
			pfree(group->states);
		group->states = states;
	}
}

/*
 * The final value of each aggregate of a group (in stored form), in the
 * current memory context.
 */
void
sa_state_finalize(SaStateStore *store, SaTriggerWork *work, SaGroup *group,
				  Datum *results, bool *resultnulls)
{
	SaQuery    *q = store->q;
	Datum	   *stored = palloc(sizeof(Datum) * q->naggs);
	bool	   *storednulls = palloc(sizeof(bool) * q->naggs);

	deform_minimal(group->states, q->state_desc, stored, storednulls);
	for (int i = 0; i < q->naggs; i++)
	{
		Datum		live = sa_agg_from_stored(work->rt, &q->aggs[i], stored[i],
											  storednulls[i]);

		results[i] = sa_agg_finalize(work->rt, &q->aggs[i], live,
									 storednulls[i], &resultnulls[i]);
	}
}

/*
 * Collect the groups whose window ends at or before "watermark": they are
 * closed.  Only scans when some window can be closed.
 */
List *
sa_state_closed_groups(SaStateStore *store, int64 watermark)
{
	sagroups_iterator it;
	SaGroupEntry *entry;
	List	   *closed = NIL;
	int64		min_open = PG_INT64_MAX;

	if (store->min_window_end > watermark)
		return NIL;
	sagroups_start_iterate(store->groups, &it);
	while ((entry = sagroups_iterate(store->groups, &it)) != NULL)
	{
		if (entry->group->window_end <= watermark)
			closed = lappend(closed, entry->group);
		else if (entry->group->window_end < min_open)
			min_open = entry->group->window_end;
	}
	store->min_window_end = min_open;
	return closed;
}

/* Remove closed groups from the cache (the caller deletes their rows). */
void
sa_state_evict(SaStateStore *store, List *groups)
{
	ListCell   *lc;

	foreach(lc, groups)
		group_free(store, (SaGroup *) lfirst(lc));
}

/*
 * Write the touched groups that stay open to streamagg.state, with one
 * set-based upsert, and delete the rows of windows closed by "watermark".
 */
void
sa_state_checkpoint(SaStateStore *store, SaTriggerWork *work,
					bool has_watermark, int64 watermark)
{
	SaQuery    *q = store->q;
	Datum	   *starts = palloc(sizeof(Datum) * (work->ntouched + 1));
	Datum	   *ends = palloc(sizeof(Datum) * (work->ntouched + 1));
	Datum	   *keys = palloc(sizeof(Datum) * (work->ntouched + 1));
	Datum	   *states = palloc(sizeof(Datum) * (work->ntouched + 1));
	int			n = 0;

	for (int g = 0; g < work->ntouched; g++)
	{
		SaGroup    *group = work->touched[g];

		if (has_watermark && group->window_end <= watermark &&
			q->def.output_mode != SA_OUTPUT_COMPLETE)
			continue;
		starts[n] = TimestampTzGetDatum(group->window_start);
		ends[n] = TimestampTzGetDatum(group->window_end);
		keys[n] = PointerGetDatum(bytea_from_minimal(group->key));
		states[n] = PointerGetDatum(bytea_from_minimal(group->states));
		group->persisted = true;
		n++;
	}

	SPI_connect();
	if (has_watermark && q->def.output_mode != SA_OUTPUT_COMPLETE)
	{
		Oid			types[2] = {INT4OID, TIMESTAMPTZOID};
		Datum		args[2] = {Int32GetDatum(q->def.query_id),
		TimestampTzGetDatum(watermark)};

		SPI_execute_with_args("DELETE FROM streamagg.state WHERE query_id = $1 "
							  "AND window_start < $2 AND window_end <= $2",
							  2, types, args, NULL, false, 0);
	}
	if (n > 0)
	{
		Oid			types[5] = {INT4OID, TIMESTAMPTZARRAYOID,
		TIMESTAMPTZARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID};
		Datum		args[5];

		args[0] = Int32GetDatum(q->def.query_id);
		args[1] = PointerGetDatum(construct_array(starts, n, TIMESTAMPTZOID,
												  8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[2] = PointerGetDatum(construct_array(ends, n, TIMESTAMPTZOID,
												  8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[3] = PointerGetDatum(construct_array(keys, n, BYTEAOID,
												  -1, false, TYPALIGN_INT));
		args[4] = PointerGetDatum(construct_array(states, n, BYTEAOID,
												  -1, false, TYPALIGN_INT));
		SPI_execute_with_args("INSERT INTO streamagg.state AS s "
							  "SELECT $1, w.s, w.e, w.k, w.v "
							  "FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), "
							  "pg_catalog.unnest($4), pg_catalog.unnest($5)) AS w(s, e, k, v) "
							  "ON CONFLICT (query_id, window_start, window_end, group_key) "
							  "DO UPDATE SET agg_states = EXCLUDED.agg_states",
							  5, types, args, NULL, false, 0);
	}
	SPI_finish();
}

/* Mark the cache as reflecting "batch_id" once this transaction commits. */
void
sa_state_end(SaStateStore *store, int64 batch_id)
{
	store->batch_id = batch_id;
}

int64
sa_state_size(SaStateStore *store)
{
	return store->ngroups;
}

/*
 * Commit makes dirty caches clean; abort of the transaction or of any
 * subtransaction makes them invalid (see the file header).
 */
static void
state_xact_callback(XactEvent event, void *arg)
{
	HASH_SEQ_STATUS seq;
	SaStateStore *store;
	bool		commit;

	if (stores == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			commit = true;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			commit = false;
			break;
		default:
			return;
	}
	hash_seq_init(&seq, stores);
	while ((store = hash_seq_search(&seq)) != NULL)
	{
		if (store->dirty && !commit)
			store->valid = false;
		store->dirty = false;
	}
}

static void
state_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS seq;
	SaStateStore *store;

	if (stores == NULL || event != SUBXACT_EVENT_ABORT_SUB)
		return;
	hash_seq_init(&seq, stores);
	while ((store = hash_seq_search(&seq)) != NULL)
		if (store->dirty)
			store->valid = false;
}

void
sa_state_xact_callback_init(void)
{
	RegisterXactCallback(state_xact_callback, NULL);
	RegisterSubXactCallback(state_subxact_callback, NULL);
}
