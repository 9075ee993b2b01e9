/*-------------------------------------------------------------------------
 *
 * state.c
 *	  The state of open windows: one group per (window, group key), kept in
 *	  shared memory and made durable in streamagg.state_log.
 *
 * The checkpoint table streamagg.state_log is the truth; it is written in
 * the trigger's transaction.  Shared memory holds a copy of it for every
 * query, in a DSA area that every backend attaches lazily: a dshash table
 * of queries, and per query a table of groups (group_table.c).  So the
 * worker and process() in any backend share one state.
 *
 * A group's entry in that table is packed when every key column and every
 * stored state has a fixed length (count, sum of integers, min and max of
 * most types...): window bounds, a null bitmap and each value at its own
 * aligned offset, nothing else.  Otherwise (text keys, numeric or array
 * states, sessions) the entry holds the window bounds and a pointer to one
 * DSA allocation with the key tuple and the states tuple (minimal tuples,
 * the same bytes as in the log).
 *
 * The log holds, per query, a snapshot of every group after some batch and
 * then one delta per later trigger: the groups it changed, and those it
 * removed.  A trigger therefore writes what it touched, packed into a few
 * rows, never one row per group, and never looks a group up on disk.  When
 * the deltas since the snapshot hold more records than the state has
 * groups (plus SA_LOG_SLACK), the trigger writes a new snapshot instead of
 * its delta and deletes the older rows: a snapshot costs O(state) once per
 * O(state) logged records, and a reload reads at most about twice the
 * state.  This is the delta-and-snapshot scheme of Spark's state store.
 *
 * Invariant: the shared state of a query equals what its log describes as
 * of its last committed batch, or is recognised as stale and reloaded
 * before use.  Only the holder of the query's lock (catalog.c) reads or
 * changes its groups.
 * Before its first change a trigger records its (sub)transaction id as the
 * writer; the next trigger trusts the shared state only if that writer
 * committed (or is its own transaction) and its batch id equals the
 * checkpoint's.  An aborted trigger, a killed worker or a crash restart
 * (which empties shared memory) therefore all lead to a reload from the
 * log.
 *
 * A trigger works on its own copy of the groups it touches (SaGroup, in the
 * trigger's memory context, found through a local hash table): rows of one
 * group within a batch never reach shared memory; each touched group is
 * read from it once and written back once.  Keys are compared with the
 * types' own equality and hash functions, as GROUP BY does.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "lib/dshash.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "storage/dsm_impl.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/dsa.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "group_table.h"
#include "shared_table.h"
#include "state.h"

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

/* Every entry of a group table starts with its window. */
typedef struct SaEntryHead
{
	int64		window_start;
	int64		window_end;
} SaEntryHead;

/*
 * An entry that is not packed: the window, and one DSA allocation holding
 * the key tuple, then (at a MAXALIGNed offset) the states tuple.
 */
typedef struct SaEntryRef
{
	SaEntryHead head;
	dsa_pointer tuples;
} SaEntryRef;

/*
 * Where a group's fields are in its entry.  A packed entry is an
 * SaEntryHead, a null bitmap of natts bits, then each key column and each
 * stored state at its offset (aligned as the type requires; the entry
 * itself is MAXALIGNed).
 */
typedef struct SaEntryLayout
{
	bool		packed;
	uint32		size;			/* of an entry */
	uint32	   *offsets;		/* packed: key columns, then states */
	int16	   *lens;
	bool	   *byvals;
} SaEntryLayout;

#define ENTRY_NULLS(entry) ((bits8 *) (entry) + sizeof(SaEntryHead))

/* A (window, key) to look up, from local values. */
typedef struct SaGroupProbe
{
	int64		window_start;
	int64		window_end;
	Datum	   *values;
	bool	   *nulls;
} SaGroupProbe;

/* Local hash of the groups touched by a trigger, keyed by the group. */
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

static bool
key_values_equal(SaQuery *q, Datum *av, bool *an, Datum *bv, bool *bn)
{
	for (int i = 0; i < q->nkeys; i++)
	{
		if (an[i] || bn[i])
		{
			if (an[i] != bn[i])
				return false;
			continue;
		}
		if (!DatumGetBool(FunctionCall2Coll(&q->key_eq[i],
											q->key_collations[i],
											av[i], bv[i])))
			return false;
	}
	return true;
}

static bool
group_equal(SaQuery *q, const SaGroup *a, const SaGroup *b)
{
	return a->window_start == b->window_start &&
		a->window_end == b->window_end &&
		key_values_equal(q, a->keyvals, a->keynulls, b->keyvals, b->keynulls);
}

/* Attribute i of a group: a key column, or after them a stored state. */
static Form_pg_attribute
group_attribute(SaQuery *q, int i)
{
	return i < q->nkeys ? TupleDescAttr(q->key_desc, i) :
		TupleDescAttr(q->state_desc, i - q->nkeys);
}

/*
 * The layout of a query's group entries: packed when every key column and
 * stored state has a fixed length (and the query has no sessions, whose
 * states vary in length).
 */
static SaEntryLayout *
entry_layout(SaQuery *q)
{
	SaEntryLayout *layout = palloc0(sizeof(SaEntryLayout));
	int			natts = q->nkeys + q->state_desc->natts;
	uint32		offset;

	layout->packed = !q->def.has_session;
	for (int i = 0; i < natts && layout->packed; i++)
		layout->packed = group_attribute(q, i)->attlen > 0;
	if (!layout->packed)
	{
		layout->size = sizeof(SaEntryRef);
		return layout;
	}
	layout->offsets = palloc(sizeof(uint32) * (natts + 1));
	layout->lens = palloc(sizeof(int16) * (natts + 1));
	layout->byvals = palloc(sizeof(bool) * (natts + 1));
	offset = sizeof(SaEntryHead) + BITMAPLEN(natts);
	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = group_attribute(q, i);

		offset = att_align_nominal(offset, att->attalign);
		layout->offsets[i] = offset;
		layout->lens[i] = att->attlen;
		layout->byvals[i] = att->attbyval;
		offset += att->attlen;
	}
	layout->size = MAXALIGN(offset);
	return layout;
}

/*
 * The n values of a packed entry from attribute "first" on (key
 * columns, then states); by-reference values point into the entry.
 */
static void
packed_values(SaEntryLayout *layout, const char *entry, int first, int n,
			  Datum *values, bool *nulls)
{
	const bits8 *bits = ENTRY_NULLS(entry);

	for (int i = 0; i < n; i++)
	{
		int			a = first + i;

		nulls[i] = (bits[a >> 3] & (1 << (a & 7))) != 0;
		values[i] = nulls[i] ? (Datum) 0 :
			fetch_att(entry + layout->offsets[a], layout->byvals[a],
					  layout->lens[a]);
	}
}

/* Store n values into a packed entry from attribute "first" on. */
static void
packed_store(SaEntryLayout *layout, char *entry, int first, int n,
			 Datum *values, bool *nulls)
{
	bits8	   *bits = ENTRY_NULLS(entry);

	for (int i = 0; i < n; i++)
	{
		int			a = first + i;
		char	   *at = entry + layout->offsets[a];

		if (nulls[i])
		{
			bits[a >> 3] |= 1 << (a & 7);
			continue;
		}
		bits[a >> 3] &= ~(1 << (a & 7));
		if (layout->byvals[a])
			store_att_byval(at, values[i], layout->lens[a]);
		else
			memcpy(at, DatumGetPointer(values[i]), layout->lens[a]);
	}
}

/* The key and states tuples of an unpacked entry, in the area. */
static MinimalTuple
ref_key(const SaEntryRef *ref)
{
	return dsa_get_address(state_area, ref->tuples);
}

static MinimalTuple
ref_states(const SaEntryRef *ref)
{
	MinimalTuple key = ref_key(ref);

	return (MinimalTuple) ((char *) key + MAXALIGN(key->t_len));
}

static Size
ref_size(const SaEntryRef *ref)
{
	return MAXALIGN(ref_key(ref)->t_len) + ref_states(ref)->t_len;
}

/* The key values of an entry; by-reference values point into the area. */
static void
entry_key_values(SaStateStore *store, const void *entry, Datum *values,
				 bool *nulls)
{
	if (store->layout->packed)
		packed_values(store->layout, entry, 0, store->q->nkeys, values, nulls);
	else
		sa_deform_minimal(ref_key(entry), store->q->key_desc, values, nulls);
}

/* Does a shared entry hold the (window, key) of a probe? */
static bool
entry_matches(const void *entry, const void *probe_arg, void *store_arg)
{
	const SaEntryHead *head = entry;
	const SaGroupProbe *probe = probe_arg;
	SaStateStore *store = store_arg;

	if (head->window_start != probe->window_start ||
		head->window_end != probe->window_end)
		return false;
	entry_key_values(store, entry, store->match_values, store->match_nulls);
	return key_values_equal(store->q, store->match_values, store->match_nulls,
							probe->values, probe->nulls);
}

/* The shared entry of a (window, key), or NULL. */
static void *
find_shared(SaStateStore *store, int64 window_start, int64 window_end,
			uint32 hash, Datum *values, bool *nulls)
{
	SaGroupProbe probe;

	probe.window_start = window_start;
	probe.window_end = window_end;
	probe.values = values;
	probe.nulls = nulls;
	return sa_gt_find(store->groups, hash, entry_matches, &probe, store);
}

/* Hash of a (window, key), consistent with the key types' equality. */
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

/* The state does not fit in the area: say so, naming the limit. */
static void
report_state_memory_exceeded(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("streamagg state is larger than streamagg.max_state_memory (%d MB)",
					sa_max_state_memory_mb),
			 errdetail("Open windows of all queries share this memory."),
			 errhint("Raise streamagg.max_state_memory, or use a watermark so that closed windows are evicted.")));
}

/* Error context of writes into shared memory: which query, what limit. */
static void
state_write_context(void *arg)
{
	SaStateStore *store = arg;

	errcontext("storing the state of streaming query \"%s\" in shared memory (streamagg.max_state_memory: %d MB, 0 = no limit)",
			   store->q->def.name, sa_max_state_memory_mb);
}

static void
push_write_context(ErrorContextCallback *cb, SaStateStore *store)
{
	cb->callback = state_write_context;
	cb->arg = store;
	cb->previous = error_context_stack;
	error_context_stack = cb;
}

/* Bound the area's allocations by streamagg.max_state_memory. */
static void
limit_area(void)
{
	dsa_set_size_limit(state_area, sa_max_state_memory_mb > 0 ?
					   (size_t) sa_max_state_memory_mb * 1024 * 1024 :
					   (size_t) -1);
}

static void
free_ref_tuples(SaStateStore *store, SaEntryRef *ref)
{
	if (!DsaPointerIsValid(ref->tuples))
		return;
	store->tuple_bytes -= ref_size(ref);
	dsa_free(state_area, ref->tuples);
	ref->tuples = InvalidDsaPointer;
}

/*
 * Make "key" and "states" the tuples of an unpacked entry; states of an
 * unchanged length are overwritten in place.  False when out of memory,
 * with the entry unchanged.  "key" may be the entry's own key tuple.
 */
static bool
store_ref_tuples(SaStateStore *store, SaEntryRef *ref, MinimalTuple key,
				 MinimalTuple states)
{
	Size		keyspace = MAXALIGN(key->t_len);
	dsa_pointer dp;
	char	   *at;

	if (DsaPointerIsValid(ref->tuples))
	{
		MinimalTuple old = ref_states(ref);

		if (old->t_len == states->t_len)
		{
			memcpy(old, states, states->t_len);
			return true;
		}
	}
	dp = dsa_allocate_extended(state_area, keyspace + states->t_len,
							   DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(dp))
		return false;
	at = dsa_get_address(state_area, dp);
	memcpy(at, key, key->t_len);
	memcpy(at + keyspace, states, states->t_len);
	free_ref_tuples(store, ref);
	ref->tuples = dp;
	store->tuple_bytes += keyspace + states->t_len;
	return true;
}

/*
 * Write a group's stored states (and, for a new entry, its key) into its
 * shared entry; "entry" NULL adds one.  Running out of
 * streamagg.max_state_memory is reported, with the table unchanged.
 */
static void
store_shared(SaStateStore *store, void *entry, int64 window_start,
			 int64 window_end, uint32 hash, MinimalTuple key, Datum *keyvals,
			 bool *keynulls, MinimalTuple states)
{
	SaQuery    *q = store->q;
	SaEntryLayout *layout = store->layout;
	bool		added = entry == NULL;

	if (added)
	{
		entry = sa_gt_insert(store->groups, hash);
		if (entry == NULL)
			report_state_memory_exceeded();
		((SaEntryHead *) entry)->window_start = window_start;
		((SaEntryHead *) entry)->window_end = window_end;
		store->ngroups++;
	}
	if (layout->packed)
	{
		if (added)
			packed_store(layout, entry, 0, q->nkeys, keyvals, keynulls);
		sa_deform_minimal(states, q->state_desc, store->state_values,
						  store->state_nulls);
		packed_store(layout, entry, q->nkeys, q->state_desc->natts,
					 store->state_values, store->state_nulls);
	}
	else if (!store_ref_tuples(store, entry, key, states))
	{
		if (added)
		{
			sa_gt_delete(store->groups, entry);
			store->ngroups--;
		}
		report_state_memory_exceeded();
	}
}

/* Remove a shared entry. */
static void
delete_shared(SaStateStore *store, void *entry)
{
	if (!store->layout->packed)
		free_ref_tuples(store, entry);
	sa_gt_delete(store->groups, entry);
	store->ngroups--;
}

/* Free a query's group table and everything it points to. */
static void
destroy_group_table(dsa_pointer handle, bool packed)
{
	SaGroupTable *groups = sa_gt_attach(state_area, handle);

	if (!packed)
	{
		uint64		position = 0;
		SaEntryRef *ref;

		while ((ref = sa_gt_next(groups, &position)) != NULL)
			if (DsaPointerIsValid(ref->tuples))
				dsa_free(state_area, ref->tuples);
	}
	sa_gt_destroy(groups);
}

/*
 * Replay a logged group into a (new) shared table: its stored states, or,
 * when "states" is NULL, its removal.
 */
static void
apply_logged_group(SaStateStore *store, int64 ws, int64 we, MinimalTuple key,
				   MinimalTuple states)
{
	SaQuery    *q = store->q;
	Datum	   *values = palloc(sizeof(Datum) * (q->nkeys + 1));
	bool	   *nulls = palloc(sizeof(bool) * (q->nkeys + 1));
	uint32		hash;
	void	   *entry;

	sa_deform_minimal(key, q->key_desc, values, nulls);
	hash = sa_group_hash(q, ws, we, values, nulls);
	entry = find_shared(store, ws, we, hash, values, nulls);
	if (states == NULL)
	{
		if (entry != NULL)		/* else removed before it was ever logged */
			delete_shared(store, entry);
		return;
	}
	store_shared(store, entry, ws, we, hash, key, values, nulls, states);
	if (q->def.has_session)
		we = sa_sessions_min_end(q, states);
	store->min_window_end = Min(store->min_window_end, we);
}

/*
 * Records of streamagg.state_log.  A record is one group: window_start and
 * window_end (int64), then its key and its states, each an int32 length
 * and the bytes of the minimal tuple; a states length of -1 says that the
 * group is gone.  Integers are in network byte order (pqformat), as the
 * update script from 0.3 wrote them with timestamptz_send and int4send.
 * A trigger's records are inserted in rows of about SA_LOG_CHUNK_BYTES.
 */
#define SA_LOG_CHUNK_BYTES (8 * 1024 * 1024)

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

/* Insert the records collected so far as one row; the caller is in SPI. */
static void
log_flush(LogWriter *w)
{
	Oid			types[6] = {INT4OID, INT8OID, INT4OID, BOOLOID, INT4OID, BYTEAOID};
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
	SPI_execute_with_args("INSERT INTO streamagg.state_log "
						  "(query_id, batch_id, part, snapshot, groups, records) "
						  "VALUES ($1, $2, $3, $4, $5, $6)",
						  6, types, args, NULL, false, 0);
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

/* Apply one row of the log to a (new) shared table; returns its records. */
static int32
apply_log_row(SaStateStore *store, bytea *records)
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
		apply_logged_group(store, ws, we, key, states);
		n++;
	}
	return n;
}

/*
 * Rebuild a query's shared state from streamagg.state_log: its latest
 * snapshot, then the deltas after it in batch order.
 */
static void
load_shared_state(SaStateStore *store)
{
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(store->q->def.query_id);
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "streamagg load",
												 ALLOCSET_DEFAULT_SIZES);
	Portal		portal;
	ErrorContextCallback errcb;
	SaRoleSave	role;

	push_write_context(&errcb, store);
	store->ngroups = 0;
	store->min_window_end = PG_INT64_MAX;
	store->log_records = 0;
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
			int32		applied;

			applied = apply_log_row(store,
									DatumGetByteaPP(SPI_getbinval(tuple, desc, 3, &isnull)));
			if (applied != groups)
				elog(ERROR, "corrupt row in streamagg.state_log: %d records, %d recorded",
					 applied, groups);
			if (!snapshot)
				store->log_records += applied;
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
 * The state of a query for a trigger that follows "committed_batch_id",
 * reloaded into shared memory when stale (see the file header).  The caller
 * holds the query's lock.  The store lives in "work->cxt".
 */
SaStateStore *
sa_state_begin(SaQuery *q, SaTriggerWork *work, int64 committed_batch_id)
{
	SaStateStore *store = palloc0(sizeof(SaStateStore));
	SaQueryKey	key = query_key(q->def.query_id);
	SaSharedQuery *sq;
	bool		found;
	bool		stale;

	attach_shared_state();
	limit_area();
	store->q = q;
	store->work = work;
	store->local = sagroups_create(work->cxt, 256, q);
	store->panes = q->use_panes ? sagroups_create(work->cxt, 256, q) : NULL;
	store->layout = entry_layout(q);
	store->match_values = palloc(sizeof(Datum) * (q->nkeys + 1));
	store->match_nulls = palloc(sizeof(bool) * (q->nkeys + 1));
	store->state_values = palloc(sizeof(Datum) * (q->state_desc->natts + 1));
	store->state_nulls = palloc(sizeof(bool) * (q->state_desc->natts + 1));

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
		store->groups = sa_gt_attach(state_area, sq->groups);
		/* a table laid out for another definition of this query id */
		stale = sq->packed != store->layout->packed ||
			sa_gt_entry_size(store->groups) != MAXALIGN(store->layout->size);
	}
	if (stale)
	{
		dsa_pointer groups;

		if (DsaPointerIsValid(sq->groups))
			destroy_group_table(sq->groups, sq->packed);
		sq->groups = InvalidDsaPointer;
		groups = sa_gt_create(state_area, store->layout->size);
		if (!DsaPointerIsValid(groups))
		{
			dshash_release_lock(query_table, sq);
			report_state_memory_exceeded();
		}
		store->groups = sa_gt_attach(state_area, groups);
		sq->groups = groups;
		sq->packed = store->layout->packed;
		sq->batch_id = committed_batch_id;
		sq->ngroups = 0;
		sq->tuple_bytes = 0;
		/* until the load below is complete, nobody may trust this table */
		sq->writer = FullTransactionIdFromEpochAndXid(0, FrozenTransactionId);
	}
	store->ngroups = sq->ngroups;
	store->tuple_bytes = sq->tuple_bytes;
	store->min_window_end = sq->min_window_end;
	store->log_records = sq->log_records;
	dshash_release_lock(query_table, sq);

	if (stale)
	{
		load_shared_state(store);
		sq = dshash_find(query_table, &key, true);
		sq->writer = InvalidFullTransactionId;
		sq->ngroups = store->ngroups;
		sq->tuple_bytes = store->tuple_bytes;
		sq->min_window_end = store->min_window_end;
		sq->log_records = store->log_records;
		dshash_release_lock(query_table, sq);
	}
	store->batch_id = committed_batch_id;
	return store;
}

/*
 * Before the first change of the shared state in this trigger, record the
 * current (sub)transaction as its writer.
 */
static void
mark_writing(SaStateStore *store)
{
	SaQueryKey	key = query_key(store->q->def.query_id);
	SaSharedQuery *sq;

	if (store->writing)
		return;
	sq = dshash_find(query_table, &key, true);
	if (sq == NULL)
		elog(ERROR, "shared state of streaming query %d vanished",
			 store->q->def.query_id);
	sq->writer = GetCurrentFullTransactionId();
	dshash_release_lock(query_table, sq);
	store->writing = true;
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
		destroy_group_table(sq->groups, sq->packed);
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
			destroy_group_table(sq->groups, sq->packed);
		dshash_delete_current(&seq);
	}
	dshash_seq_term(&seq);
}

/*
 * The group for (window, key) in one of a trigger's own hash tables, or
 * NULL; *hash is set to the hash of (window, key) either way.
 */
static SaGroup *
find_local(struct sagroups_hash *table, SaQuery *q, int64 window_start,
		   int64 window_end, Datum *keyvals, bool *keynulls, uint32 *hash)
{
	SaGroup		probe;
	SaGroupEntry *entry;

	probe.window_start = window_start;
	probe.window_end = window_end;
	probe.keyvals = keyvals;
	probe.keynulls = keynulls;
	probe.hash = sa_group_hash(q, window_start, window_end, keyvals, keynulls);
	*hash = probe.hash;
	entry = sagroups_lookup(table, &probe);
	return entry ? entry->group : NULL;
}

/*
 * A new local group of (window, key) with room for its key values and
 * live states, in one allocation in the current memory context.
 */
static SaGroup *
new_local_group(SaQuery *q, int64 window_start, int64 window_end,
				uint32 hash)
{
	SaGroup    *group = palloc0(sizeof(SaGroup) +
								(q->nkeys + q->naggs) * (sizeof(Datum) + sizeof(bool)));

	group->window_start = window_start;
	group->window_end = window_end;
	group->hash = hash;
	group->keyvals = (Datum *) (group + 1);
	group->work_values = group->keyvals + q->nkeys;
	group->keynulls = (bool *) (group->work_values + q->naggs);
	group->work_nulls = group->keynulls + q->nkeys;
	return group;
}

/*
 * The key and states tuples of a packed entry, formed in the current
 * memory context (forming copies the values out of the area).
 */
static void
packed_tuples(SaStateStore *store, const void *entry, MinimalTuple *key,
			  MinimalTuple *states)
{
	SaQuery    *q = store->q;

	packed_values(store->layout, entry, 0, q->nkeys, store->match_values,
				  store->match_nulls);
	*key = heap_form_minimal_tuple(q->key_desc, store->match_values,
								   store->match_nulls);
	packed_values(store->layout, entry, q->nkeys, q->state_desc->natts,
				  store->state_values, store->state_nulls);
	*states = heap_form_minimal_tuple(q->state_desc, store->state_values,
									  store->state_nulls);
}

/*
 * A local copy of a shared group (key and stored states), in the current
 * memory context.
 */
static SaGroup *
copy_of_shared_group(SaStateStore *store, const void *entry)
{
	SaQuery    *q = store->q;
	const SaEntryHead *head = entry;
	SaGroup    *group = new_local_group(q, head->window_start, head->window_end,
										sa_gt_hash(entry));

	if (store->layout->packed)
		packed_tuples(store, entry, &group->key, &group->states);
	else
	{
		MinimalTuple key = ref_key(entry);
		MinimalTuple states = ref_states(entry);

		group->key = palloc(key->t_len);
		memcpy(group->key, key, key->t_len);
		group->states = palloc(states->t_len);
		memcpy(group->states, states, states->t_len);
	}
	sa_deform_minimal(group->key, q->key_desc, group->keyvals, group->keynulls);
	return group;
}

/*
 * The group for (window, key) of a batch row, with live states in the
 * trigger's context: found in the trigger's own hash, else copied from
 * shared memory, else new.  Key values may point into the row.
 */
SaGroup *
sa_state_touch(SaStateStore *store, int64 window_start, int64 window_end,
			   Datum *keyvals, bool *keynulls)
{
	SaQuery    *q = store->q;
	SaTriggerWork *work = store->work;
	uint32		hash;
	SaGroup    *group;
	SaGroupEntry *entry;
	void	   *shared;
	MemoryContext old;
	bool		found;

	group = find_local(store->local, q, window_start, window_end, keyvals,
					   keynulls, &hash);
	if (group)
		return group;

	old = MemoryContextSwitchTo(work->cxt);
	shared = find_shared(store, window_start, window_end, hash, keyvals,
						 keynulls);
	if (shared)
		group = copy_of_shared_group(store, shared);
	else
	{
		/* store->match_values is free again once find_shared returned */
		Datum	   *vals = store->match_values;

		group = new_local_group(q, window_start, window_end, hash);
		group->fresh = true;
		for (int i = 0; i < q->nkeys; i++)
			vals[i] = sa_datum_self_contained(keyvals[i], keynulls[i],
									 TupleDescAttr(q->key_desc, i)->attlen);
		group->key = heap_form_minimal_tuple(q->key_desc, vals, keynulls);
		sa_deform_minimal(group->key, q->key_desc, group->keyvals,
					   group->keynulls);
	}

	/* live states, from the stored ones or the initial values */
	if (q->def.has_session)
		sa_sessions_unpack(work->rt, q, group);
	else if (group->states)
		sa_aggs_deform_stored(work->rt, q, group->states, group->work_values,
							  group->work_nulls);
	else
		for (int i = 0; i < q->naggs; i++)
			sa_agg_init(work->rt, &q->aggs[i], &group->work_values[i],
						&group->work_nulls[i]);

	entry = sagroups_insert(store->local, group, &found);
	entry->hash = group->hash;
	if (work->ntouched == work->touched_size)
	{
		work->touched_size *= 2;
		work->touched = repalloc(work->touched,
								 sizeof(SaGroup *) * work->touched_size);
	}
	work->touched[work->ntouched++] = group;
	MemoryContextSwitchTo(old);
	return group;
}

/* The stored form of a touched group's live states (trigger's context). */
static MinimalTuple
stored_form(SaStateStore *store, SaGroup *group)
{
	SaQuery    *q = store->q;
	SaAggRuntime *rt = store->work->rt;
	MemoryContext old = MemoryContextSwitchTo(store->work->cxt);
	MinimalTuple states;

	if (q->def.has_session)
	{
		int64		min_end;

		states = sa_sessions_pack(rt, q, group, &min_end);
		store->min_window_end = Min(store->min_window_end, min_end);
	}
	else
	{
		states = sa_aggs_form_stored(rt, q, group->work_values,
									 group->work_nulls);
		store->min_window_end = Min(store->min_window_end, group->window_end);
	}
	MemoryContextSwitchTo(old);
	return states;
}

/*
 * Write a group's stored states into shared memory, adding it if new.  A
 * fresh group was not there when the trigger touched it, and only this
 * trigger changes the state: it is added without a lookup.
 */
static void
write_shared_group(SaStateStore *store, SaGroup *group)
{
	void	   *entry = NULL;

	if (!group->fresh)
		entry = find_shared(store, group->window_start, group->window_end,
							group->hash, group->keyvals, group->keynulls);
	store_shared(store, entry, group->window_start, group->window_end,
				 group->hash, group->key, group->keyvals, group->keynulls,
				 group->states);
}

/*
 * A pane of this batch for a row (sliding windows, see q->use_panes): a
 * group of the trigger's own, never in shared memory, with states started
 * from the initial values.  Key values may point into the row.
 */
SaGroup *
sa_state_touch_pane(SaStateStore *store, int64 pane_start, Datum *keyvals,
					bool *keynulls)
{
	SaQuery    *q = store->q;
	uint32		hash;
	SaGroup    *pane;
	SaGroupEntry *entry;
	MemoryContext old;
	bool		found;

	pane = find_local(store->panes, q, pane_start, pane_start, keyvals,
					  keynulls, &hash);
	if (pane)
		return pane;

	old = MemoryContextSwitchTo(store->work->cxt);
	pane = new_local_group(q, pane_start, pane_start, hash);
	for (int i = 0; i < q->nkeys; i++)
	{
		pane->keynulls[i] = keynulls[i];
		pane->keyvals[i] = keynulls[i] ? (Datum) 0 :
			datumCopy(keyvals[i], TupleDescAttr(q->key_desc, i)->attbyval,
					  TupleDescAttr(q->key_desc, i)->attlen);
	}
	for (int i = 0; i < q->naggs; i++)
		sa_agg_init(store->work->rt, &q->aggs[i], &pane->work_values[i],
					&pane->work_nulls[i]);
	entry = sagroups_insert(store->panes, pane, &found);
	entry->hash = pane->hash;
	store->pane_list = lappend(store->pane_list, pane);
	MemoryContextSwitchTo(old);
	return pane;
}

/*
 * Store the live states of every touched group back: in stored form in the
 * group, and into shared memory.
 */
void
sa_state_store_touched(SaStateStore *store)
{
	SaTriggerWork *work = store->work;
	ErrorContextCallback errcb;
	uint64		fresh = 0;

	for (int g = 0; g < work->ntouched; g++)
	{
		work->touched[g]->states = stored_form(store, work->touched[g]);
		fresh += work->touched[g]->fresh;
	}
	if (work->ntouched == 0)
		return;
	mark_writing(store);
	push_write_context(&errcb, store);
	/* the index grows once for the fresh groups, not once per doubling */
	if (!sa_gt_reserve(store->groups, fresh))
		report_state_memory_exceeded();
	for (int g = 0; g < work->ntouched; g++)
		write_shared_group(store, work->touched[g]);
	error_context_stack = errcb.previous;
}

/*
 * The final value of each aggregate of a group, from its stored states, in
 * the current memory context.
 */
void
sa_state_finalize(SaStateStore *store, SaGroup *group, Datum *results,
				  bool *resultnulls)
{
	SaQuery    *q = store->q;
	Datum	   *live = palloc(sizeof(Datum) * q->naggs);
	bool	   *livenulls = palloc(sizeof(bool) * q->naggs);

	sa_aggs_deform_stored(store->work->rt, q, group->states, live, livenulls);
	for (int i = 0; i < q->naggs; i++)
		results[i] = sa_agg_finalize(store->work->rt, &q->aggs[i], live[i],
									 livenulls[i], &resultnulls[i]);
	pfree(live);
	pfree(livenulls);
}

/*
 * Close a window group if the watermark passed its end: a local copy joins
 * "closed" (for emission) and the shared group goes.  Returns the end of
 * the group if it stays open, else PG_INT64_MAX.
 */
static int64
close_window_group(SaStateStore *store, void *entry, int64 watermark,
				   List **closed)
{
	int64		window_end = ((SaEntryHead *) entry)->window_end;

	if (!sa_closed_by(window_end, watermark))
		return window_end;
	*closed = lappend(*closed, copy_of_shared_group(store, entry));
	delete_shared(store, entry);
	return PG_INT64_MAX;
}

/*
 * Close the sessions of a key that the watermark passed: their rows join
 * "closed"; the group keeps its other sessions, or goes when none is left.
 * The change is noted on the trigger's copy of the group (touched, or added
 * to closed_groups) so that the checkpoint writes it.  Returns the earliest
 * end of the sessions left.
 */
static int64
close_session_group(SaStateStore *store, SaEntryRef *ref, int64 watermark,
					List **closed)
{
	SaQuery    *q = store->q;
	SaGroup		probe;
	SaGroupEntry *entry;
	SaGroup    *group;
	MinimalTuple remaining;
	int64		min_end;
	int			nclosed = list_length(*closed);

	/* the trigger's copy of the group, or a new one */
	probe.window_start = ref->head.window_start;
	probe.window_end = ref->head.window_end;
	probe.hash = sa_gt_hash(ref);
	probe.keyvals = palloc(sizeof(Datum) * (q->nkeys + 1));
	probe.keynulls = palloc(sizeof(bool) * (q->nkeys + 1));
	entry_key_values(store, ref, probe.keyvals, probe.keynulls);
	entry = sagroups_lookup(store->local, &probe);
	group = entry ? entry->group : copy_of_shared_group(store, ref);
	remaining = sa_sessions_close(q, group, watermark, closed, &min_end);
	if (list_length(*closed) == nclosed)
		return min_end;			/* nothing closed here */

	if (!entry)
		store->closed_groups = lappend(store->closed_groups, group);
	if (remaining == NULL)
	{
		group->emptied = true;
		delete_shared(store, ref);
		return PG_INT64_MAX;
	}
	group->states = remaining;
	if (!store_ref_tuples(store, ref, ref_key(ref), remaining))
		report_state_memory_exceeded();
	return min_end;
}

/*
 * Remove from shared memory what the watermark closes, and return local
 * copies of it (with the latest states) for emission: groups whose window
 * ends at or before "watermark", or, for session queries, such sessions.
 * Scans only when something can be closed.
 */
List *
sa_state_close(SaStateStore *store, int64 watermark)
{
	uint64		position = 0;
	void	   *entry;
	List	   *closed = NIL;
	int64		min_open = PG_INT64_MAX;
	MemoryContext old;

	if (!sa_closed_by(store->min_window_end, watermark))
		return NIL;
	mark_writing(store);
	old = MemoryContextSwitchTo(store->work->cxt);
	while ((entry = sa_gt_next(store->groups, &position)) != NULL)
	{
		int64		open_end = store->q->def.has_session ?
			close_session_group(store, entry, watermark, &closed) :
			close_window_group(store, entry, watermark, &closed);

		min_open = Min(min_open, open_end);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	store->min_window_end = min_open;
	return closed;
}

/*
 * Local copies of every row of the result table: each shared group, or each
 * session of it, with its latest states.  Complete mode delivers these to a
 * function sink; call after sa_state_store_touched, which makes the shared
 * groups current.
 */
List *
sa_state_all_rows(SaStateStore *store)
{
	uint64		position = 0;
	void	   *entry;
	List	   *rows = NIL;
	MemoryContext old = MemoryContextSwitchTo(store->work->cxt);

	while ((entry = sa_gt_next(store->groups, &position)) != NULL)
	{
		SaGroup    *group = copy_of_shared_group(store, entry);

		if (store->q->def.has_session)
			sa_sessions_all(store->q, group, &rows);
		else
			rows = lappend(rows, group);
	}
	MemoryContextSwitchTo(old);
	return rows;
}

/*
 * Log a snapshot of every shared group (after this trigger's changes); the
 * caller is in SPI.  Packed groups are formed into tuples in a context
 * reset as the records go.
 */
static void
log_snapshot(SaStateStore *store, LogWriter *w)
{
	MemoryContext tuples = AllocSetContextCreate(CurrentMemoryContext,
												 "streamagg snapshot",
												 ALLOCSET_DEFAULT_SIZES);
	uint64		position = 0;
	int64		n = 0;
	void	   *entry;

	if (sa_gt_count(store->groups) != (uint64) store->ngroups)
		elog(ERROR, "shared state of streaming query \"%s\" holds %llu groups, not %lld",
			 store->q->def.name,
			 (unsigned long long) sa_gt_count(store->groups),
			 (long long) store->ngroups);
	while ((entry = sa_gt_next(store->groups, &position)) != NULL)
	{
		SaEntryHead *head = entry;

		if (store->layout->packed)
		{
			MemoryContext old = MemoryContextSwitchTo(tuples);
			MinimalTuple key;
			MinimalTuple states;

			packed_tuples(store, entry, &key, &states);
			MemoryContextSwitchTo(old);
			log_record(w, head->window_start, head->window_end, key, states);
			if (++n % 1024 == 0)
				MemoryContextReset(tuples);
		}
		else
			log_record(w, head->window_start, head->window_end,
					   ref_key(entry), ref_states(entry));
		CHECK_FOR_INTERRUPTS();
	}
	log_flush(w);
	MemoryContextDelete(tuples);
}

/*
 * Make the trigger's changes durable in streamagg.state_log (see the file
 * header): a delta with the groups it touched that stay open and the groups
 * it removed, that is the windows closed by "watermark" when "evicting"
 * ("closed") and the session groups left without sessions; or, when the
 * log has grown past the state, a snapshot that replaces the older rows.
 */
void
sa_state_checkpoint(SaStateStore *store, int64 batch_id, bool evicting,
					int64 watermark, List *closed)
{
	SaQuery    *q = store->q;
	SaTriggerWork *work = store->work;
	bool		windows_closed = evicting && !q->def.has_session;
	int64		changes = work->ntouched + list_length(store->closed_groups) +
		(windows_closed ? list_length(closed) : 0);
	LogWriter	w;
	ListCell   *lc;

	SPI_connect();
	if (store->log_records + changes > store->ngroups + SA_LOG_SLACK)
	{
		Oid			types[2] = {INT4OID, INT8OID};
		Datum		args[2] = {Int32GetDatum(q->def.query_id),
		Int64GetDatum(batch_id)};

		SaRoleSave	role;

		log_begin(&w, q, batch_id, true);
		log_snapshot(store, &w);
		sa_catalog_access_begin(&role);
		SPI_execute_with_args("DELETE FROM streamagg.state_log "
							  "WHERE query_id = $1 AND batch_id < $2",
							  2, types, args, NULL, false, 0);
		sa_catalog_access_end(&role);
		store->log_records = 0;
		SPI_finish();
		return;
	}

	log_begin(&w, q, batch_id, false);
	lc = list_head(store->closed_groups);
	for (int g = 0; g < work->ntouched || lc != NULL; g++)
	{
		SaGroup    *group;

		if (g < work->ntouched)
			group = work->touched[g];
		else
		{
			group = lfirst(lc);
			lc = lnext(store->closed_groups, lc);
		}
		if (group->emptied)
			log_record(&w, group->window_start, group->window_end,
					   group->key, NULL);
		else if (!(windows_closed && sa_closed_by(group->window_end, watermark)))
			log_record(&w, group->window_start, group->window_end,
					   group->key, group->states);
	}
	if (windows_closed)
	{
		foreach(lc, closed)
		{
			SaGroup    *group = lfirst(lc);

			log_record(&w, group->window_start, group->window_end,
					   group->key, NULL);
		}
	}
	log_flush(&w);
	store->log_records += w.written;
	SPI_finish();
}

/*
 * The trigger that used "store" is done with "batch_id": record it with the
 * shared state.  It is trusted once this (sub)transaction commits.
 */
void
sa_state_end(SaStateStore *store, int64 batch_id)
{
	SaQueryKey	key = query_key(store->q->def.query_id);
	SaSharedQuery *sq;

	mark_writing(store);
	sq = dshash_find(query_table, &key, true);
	if (sq == NULL)
		elog(ERROR, "shared state of streaming query %d vanished",
			 store->q->def.query_id);
	sq->batch_id = batch_id;
	sq->ngroups = store->ngroups;
	sq->tuple_bytes = store->tuple_bytes;
	sq->min_window_end = store->min_window_end;
	sq->log_records = store->log_records;
	dshash_release_lock(query_table, sq);
	store->groups = NULL;
}

int64
sa_state_size(SaStateStore *store)
{
	return store->ngroups;
}

/*
 * Bytes of shared memory the state of the store's query takes: its group
 * table and the tuples its entries point to.
 */
int64
sa_state_memory(SaStateStore *store)
{
	return (int64) sa_gt_bytes(store->groups) + store->tuple_bytes;
}
