/*-------------------------------------------------------------------------
 *
 * shared_state.c
 *	  The state of every query in shared memory, and the protocol that
 *	  decides whether a trigger may trust it.
 *
 * streamagg.state_log is the truth (state_log.c); it is written in the
 * trigger's transaction.  Shared memory holds a copy of it for every query,
 * in a DSA area that every backend attaches lazily: a dshash table of
 * queries (SaSharedQuery), and per query a table of groups
 * (group_store.c).  So the worker and process() in any backend share one
 * state, and a trigger never reads the log unless the copy is stale.
 *
 * The trust protocol.  Invariant: the shared state of a query equals what
 * its log describes as of its last committed batch, or is recognised as
 * stale and reloaded before use.  Only the holder of the query's lock
 * (catalog.c) reads or changes its groups.
 *	  - Before its first change a trigger records its (sub)transaction id
 *		as the writer (the group store's before_change hook), and at its
 *		end the batch id it reached (sa_state_end).
 *	  - The next trigger trusts the shared state only if its writer
 *		committed (or is its own transaction) and its batch id equals the
 *		checkpoint's last batch.
 *	  - An aborted trigger, a killed worker or a crash restart (which
 *		empties shared memory) therefore all lead to a reload from the log;
 *		so does a table laid out for another definition of the query id.
 *	  - While a reload runs, the writer is FrozenTransactionId, which no
 *		trigger trusts: an error half-way leaves the table stale.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/transam.h"
#include "access/xact.h"
#include "lib/dshash.h"
#include "miscadmin.h"
#include "storage/dsm_impl.h"
#include "storage/procarray.h"
#include "storage/shmem.h"

#include "init.h"
#include "shared_state.h"
#include "shared_table.h"
#include "state_log.h"
#include "group_store.h"
#include "group_table.h"
#include "state.h"
#include "working_set.h"

/* Fixed shared memory: where to find the DSA area and the query table. */
typedef struct SaStateShmem
{
	SaSharedTableShmem queries;
} SaStateShmem;

/*
 * Key of the query table: query ids are per database (an identity column
 * of streamagg.query_def), while the area serves the whole cluster.
 */
typedef struct SaQueryKey
{
	Oid			database;
	int32		query_id;
} SaQueryKey;

/* Shared state of one query (entry of the query table). */
typedef struct SaSharedQuery
{
	SaQueryKey	key;
	dsa_pointer groups;			/* its group table, or invalid: not loaded */
	bool		packed;			/* whether the group entries are packed */
	int64		batch_id;		/* last batch reflected, -1 for none */
	FullTransactionId writer;	/* last (sub)transaction that changed it */
	int64		ngroups;
	int64		tuple_bytes;	/* of the tuples unpacked entries point to */
	int64		min_window_end; /* no open window ends before this */
	int64		log_records;	/* in the deltas since the last snapshot */
} SaSharedQuery;

static SaStateShmem *state_shmem = NULL;

/* This backend's mapping of the area, kept for the backend's life. */
static dsa_area *state_area = NULL;
static dshash_table *query_table = NULL;

/* The key of a query of this database in the query table. */
static SaQueryKey
query_key(int32 query_id)
{
	SaQueryKey	key;

	memset(&key, 0, sizeof(key));	/* compared and hashed as bytes */
	key.database = MyDatabaseId;
	key.query_id = query_id;
	return key;
}

static dshash_parameters query_table_params = {
	sizeof(SaQueryKey), sizeof(SaSharedQuery),
	dshash_memcmp, dshash_memhash, 0
};

Size
sa_state_shmem_size(void)
{
	return MAXALIGN(sizeof(SaStateShmem));
}

void
sa_state_shmem_init(void)
{
	bool		found;

	state_shmem = ShmemInitStruct("streamagg state", sa_state_shmem_size(),
								  &found);
	if (!found)
		sa_shared_table_shmem_init(&state_shmem->queries);
}

/* Attach the area and the query table, creating them on first use. */
static void
attach_shared_state(void)
{
	sa_shared_table_attach(&state_shmem->queries, "streamagg",
						   &query_table_params, &state_area, &query_table);
}

/* Bound the area's allocations by streamagg.max_state_memory. */
static void
limit_area(void)
{
	dsa_set_size_limit(state_area, sa_max_state_memory_mb > 0 ?
					   (size_t) sa_max_state_memory_mb * 1024 * 1024 :
					   (size_t) -1);
}

/* The entry of a query that must exist (its trigger holds the lock). */
static SaSharedQuery *
find_query(int32 query_id)
{
	SaQueryKey	key = query_key(query_id);
	SaSharedQuery *sq = dshash_find(query_table, &key, true);

	if (sq == NULL)
		elog(ERROR, "shared state of streaming query %d vanished", query_id);
	return sq;
}

/*
 * Did the last writer of a shared state commit?  Its own transaction
 * counts as committed; a writer too old for the commit log is not trusted.
 */
static bool
writer_committed(FullTransactionId writer)
{
	TransactionId xid = XidFromFullTransactionId(writer);
	FullTransactionId next;
	uint32		clog_span;

	if (!FullTransactionIdIsValid(writer))
		return true;
	if (TransactionIdIsCurrentTransactionId(xid))
		return true;
	/* how far back the commit log reaches from the next transaction id */
	next = ReadNextFullTransactionId();
	clog_span = XidFromFullTransactionId(next) - ShmemVariableCache->oldestClogXid;
	if (U64FromFullTransactionId(next) - U64FromFullTransactionId(writer) >
		clog_span)
		return false;
	return !TransactionIdIsInProgress(xid) && TransactionIdDidCommit(xid);
}

/*
 * Record the current (sub)transaction as the writer of a query's shared
 * state: until it commits, no other trigger trusts the state.
 */
static void
mark_writing(void *arg)
{
	SaStateStore *store = arg;
	SaSharedQuery *sq;

	if (store->writing)
		return;
	sq = find_query(store->q->def.query_id);
	sq->writer = GetCurrentFullTransactionId();
	dshash_release_lock(query_table, sq);
	store->writing = true;
}

/* Copy a query's counters between its shared entry and a store. */
static void
counters_to_store(const SaSharedQuery *sq, SaStateStore *store)
{
	store->groups->ngroups = sq->ngroups;
	store->groups->tuple_bytes = sq->tuple_bytes;
	store->groups->min_window_end = sq->min_window_end;
	store->log_records = sq->log_records;
}

static void
counters_from_store(SaSharedQuery *sq, const SaStateStore *store)
{
	sq->ngroups = store->groups->ngroups;
	sq->tuple_bytes = store->groups->tuple_bytes;
	sq->min_window_end = store->groups->min_window_end;
	sq->log_records = store->log_records;
}

/*
 * The state of a query for a trigger that follows "committed_batch_id",
 * reloaded into shared memory when stale (see the file header).  The caller
 * holds the query's lock.  The store lives in the working set's context.
 */
SaStateStore *
sa_state_begin(SaQuery *q, SaWorkingSet *ws, int64 committed_batch_id)
{
	MemoryContext old = MemoryContextSwitchTo(ws->cxt);
	SaStateStore *store = palloc0(sizeof(SaStateStore));
	SaEntryLayout *layout = sa_entry_layout(q);
	bool		packed = sa_entry_layout_packed(layout);
	SaQueryKey	key = query_key(q->def.query_id);
	SaSharedQuery *sq;
	bool		found;
	bool		stale;

	attach_shared_state();
	limit_area();
	store->q = q;
	store->work = ws;

	sq = dshash_find_or_insert(query_table, &key, &found);
	if (!found)
	{
		sq->groups = InvalidDsaPointer;
		sq->batch_id = -1;
		sq->writer = InvalidFullTransactionId;
		sq->ngroups = 0;
		sq->tuple_bytes = 0;
		sq->min_window_end = PG_INT64_MAX;
		sq->log_records = 0;
	}
	stale = !DsaPointerIsValid(sq->groups) ||
		sq->batch_id != committed_batch_id || !writer_committed(sq->writer);
	if (!stale)
	{
		store->groups = sa_group_store_open(q, state_area, sq->groups, layout);
		/* a table laid out for another definition of this query id */
		stale = sq->packed != packed ||
			!sa_group_store_fits(store->groups, layout);
	}
	if (stale)
	{
		dsa_pointer groups;

		if (DsaPointerIsValid(sq->groups))
			sa_group_store_destroy(state_area, sq->groups, sq->packed);
		sq->groups = InvalidDsaPointer;
		groups = sa_group_store_create(state_area, layout);
		if (!DsaPointerIsValid(groups))
		{
			dshash_release_lock(query_table, sq);
			sa_report_state_memory_exceeded();
		}
		sq->groups = groups;
		sq->packed = packed;
		sq->batch_id = committed_batch_id;
		sq->ngroups = 0;
		sq->tuple_bytes = 0;
		sq->min_window_end = PG_INT64_MAX;
		sq->log_records = 0;
		/* until the replay below is complete, nobody may trust this table */
		sq->writer = FullTransactionIdFromEpochAndXid(0, FrozenTransactionId);
		store->groups = sa_group_store_open(q, state_area, groups, layout);
	}
	Assert(sa_group_store_fits(store->groups, layout));
	counters_to_store(sq, store);
	dshash_release_lock(query_table, sq);

	if (stale)
	{
		sa_state_log_replay(store);
		sq = find_query(q->def.query_id);
		sq->writer = InvalidFullTransactionId;
		counters_from_store(sq, store);
		dshash_release_lock(query_table, sq);
	}
	Assert(store->groups->ngroups == (int64) sa_gs_count(store->groups));

	/* from now on, the first change records this trigger as the writer */
	store->groups->before_change = mark_writing;
	store->groups->before_change_arg = store;
	MemoryContextSwitchTo(old);
	return store;
}

/*
 * The trigger that used "store" is done with "batch_id": record it with the
 * shared state.  It is trusted once this (sub)transaction commits.
 */
void
sa_state_end(SaStateStore *store, int64 batch_id)
{
	SaSharedQuery *sq;

	mark_writing(store);
	sq = find_query(store->q->def.query_id);
	sq->batch_id = batch_id;
	counters_from_store(sq, store);
	dshash_release_lock(query_table, sq);
	store->groups = NULL;
}

/*
 * Forget a query's shared state (the query is being dropped).  If the drop
 * rolls back, the next trigger reloads the state from streamagg.state_log.
 */
void
sa_state_forget(int32 query_id)
{
	SaQueryKey	key = query_key(query_id);
	SaSharedQuery *sq;

	/* without the preload there is no shared state */
	if (state_shmem == NULL)
		return;
	attach_shared_state();
	sq = dshash_find(query_table, &key, true);
	if (sq == NULL)
		return;
	if (DsaPointerIsValid(sq->groups))
		sa_group_store_destroy(state_area, sq->groups, sq->packed);
	dshash_delete_entry(query_table, sq);
}

/*
 * Forget the shared state of every query of a database that was dropped,
 * or whose extension was: the memory goes back to the area at once.  Like
 * any shared state, it would be reloaded from the log if the drop rolled
 * back.  A trigger still using the state would hold locks that the drop
 * waits for.
 */
void
sa_state_forget_database(Oid database)
{
	dshash_seq_status seq;
	SaSharedQuery *sq;

	/* nothing to forget without preloading, or before any trigger ran */
	if (state_shmem == NULL ||
		state_shmem->queries.area == DSM_HANDLE_INVALID)
		return;
	attach_shared_state();
	dshash_seq_init(&seq, query_table, true);
	while ((sq = dshash_seq_next(&seq)) != NULL)
	{
		if (sq->key.database != database)
			continue;
		if (DsaPointerIsValid(sq->groups))
			sa_group_store_destroy(state_area, sq->groups, sq->packed);
		dshash_delete_current(&seq);
	}
	dshash_seq_term(&seq);
}
