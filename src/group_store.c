/*-------------------------------------------------------------------------
 *
 * group_store.c
 *	  The layout of a query's groups in shared memory: one entry per group
 *	  in a group table (group_table.c) in the state's DSA area.
 *
 * An entry is packed when every key column and every stored state has a
 * fixed length (count, sum of integers, min and max of most types...):
 * window bounds, a null bitmap and each value at its own aligned offset,
 * nothing else.  Otherwise (text keys, numeric or array states, sessions)
 * the entry holds the window bounds and a pointer to one DSA allocation
 * with the key tuple and the states tuple (minimal tuples, the same bytes
 * as in the log).
 *
 * Only the holder of the query's lock uses its table, so nothing here
 * locks.  Running out of streamagg.max_state_memory is reported with the
 * table unchanged.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/htup_details.h"
#include "utils/datum.h"
#include "utils/memutils.h"

#include "group_store.h"
#include "init.h"
#include "group.h"
#include "group_table.h"

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
struct SaEntryLayout
{
	bool		packed;
	uint32		size;			/* of an entry */
	uint32	   *offsets;		/* packed: key columns, then states */
	int16	   *lens;
	bool	   *byvals;
};

#define ENTRY_NULLS(entry) ((bits8 *) (entry) + sizeof(SaEntryHead))

/* A (window, key) to look up, from local values. */
typedef struct SaGroupProbe
{
	int64		window_start;
	int64		window_end;
	const Datum *values;
	const bool *nulls;
} SaGroupProbe;

/* Attribute i of a group: a key column, or after them a stored state. */
static Form_pg_attribute
group_attribute(SaQuery *q, int i)
{
	return i < q->nkeys ? TupleDescAttr(q->key_desc, i) :
		TupleDescAttr(q->group_state_desc, i - q->nkeys);
}

/*
 * The layout of a query's group entries: packed when every key column and
 * stored state has a fixed length (session groups store a bytea, so they
 * never are).
 */
SaEntryLayout *
sa_entry_layout(SaQuery *q)
{
	SaEntryLayout *layout = palloc0(sizeof(SaEntryLayout));
	int			natts = q->nkeys + q->group_state_desc->natts;
	uint32		offset;

	layout->packed = true;
	for (int i = 0; i < natts && layout->packed; i++)
		layout->packed = group_attribute(q, i)->attlen > 0;
	Assert(!(layout->packed && q->def.has_session));
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

bool
sa_entry_layout_packed(const SaEntryLayout *layout)
{
	return layout->packed;
}

uint32
sa_entry_layout_size(const SaEntryLayout *layout)
{
	return layout->size;
}

/*
 * The n values of a packed entry from attribute "first" on (key
 * columns, then states); by-reference values point into the entry.
 */
static void
packed_values(const SaEntryLayout *layout, const char *entry, int first,
			  int n, Datum *values, bool *nulls)
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
packed_store(const SaEntryLayout *layout, char *entry, int first, int n,
			 const Datum *values, const bool *nulls)
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
ref_key(dsa_area *area, const SaEntryRef *ref)
{
	Assert(DsaPointerIsValid(ref->tuples));
	return dsa_get_address(area, ref->tuples);
}

static MinimalTuple
ref_states(dsa_area *area, const SaEntryRef *ref)
{
	MinimalTuple key = ref_key(area, ref);

	return (MinimalTuple) ((char *) key + MAXALIGN(key->t_len));
}

static Size
ref_size(dsa_area *area, const SaEntryRef *ref)
{
	return MAXALIGN(ref_key(area, ref)->t_len) + ref_states(area, ref)->t_len;
}

/* The key values of an entry; by-reference values point into the area. */
void
sa_gs_key_values(SaGroupStore *gs, const void *entry, Datum *values,
				 bool *nulls)
{
	if (gs->layout->packed)
		packed_values(gs->layout, entry, 0, gs->q->nkeys, values, nulls);
	else
		sa_deform_minimal(ref_key(gs->area, entry), gs->q->key_desc, values,
						  nulls);
}

/* Does a shared entry hold the (window, key) of a probe? */
static bool
entry_matches(const void *entry, const void *probe_arg, void *store_arg)
{
	const SaEntryHead *head = entry;
	const SaGroupProbe *probe = probe_arg;
	SaGroupStore *gs = store_arg;

	if (head->window_start != probe->window_start ||
		head->window_end != probe->window_end)
		return false;
	sa_gs_key_values(gs, entry, gs->match_values, gs->match_nulls);
	return sa_group_keys_equal(gs->q, gs->match_values, gs->match_nulls,
							   probe->values, probe->nulls);
}

/* The shared entry of a (window, key), or NULL. */
void *
sa_gs_find(SaGroupStore *gs, int64 window_start, int64 window_end,
		   uint32 hash, const Datum *values, const bool *nulls)
{
	SaGroupProbe probe;

	probe.window_start = window_start;
	probe.window_end = window_end;
	probe.values = values;
	probe.nulls = nulls;
	return sa_gt_find(gs->table, hash, entry_matches, &probe, gs);
}

/* The state does not fit in the area: say so, naming the limit. */
void
sa_report_state_memory_exceeded(void)
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
	SaGroupStore *gs = arg;

	errcontext("storing the state of streaming query \"%s\" in shared memory (streamagg.max_state_memory: %d MB, 0 = no limit)",
			   gs->q->def.name, sa_max_state_memory_mb);
}

void
sa_gs_push_write_context(SaGroupStore *gs, ErrorContextCallback *cb)
{
	cb->callback = state_write_context;
	cb->arg = gs;
	cb->previous = error_context_stack;
	error_context_stack = cb;
}

/* The trust protocol's hook runs before the first change (group_store.h). */
static void
before_change(SaGroupStore *gs)
{
	if (gs->before_change)
	{
		void		(*hook) (void *) = gs->before_change;

		gs->before_change = NULL;
		hook(gs->before_change_arg);
	}
}

static void
free_ref_tuples(SaGroupStore *gs, SaEntryRef *ref)
{
	if (!DsaPointerIsValid(ref->tuples))
		return;
	gs->tuple_bytes -= ref_size(gs->area, ref);
	dsa_free(gs->area, ref->tuples);
	ref->tuples = InvalidDsaPointer;
}

/*
 * Make "key" and "states" the tuples of an unpacked entry; states of an
 * unchanged length are overwritten in place.  False when out of memory,
 * with the entry unchanged.
 */
static bool
store_ref_tuples(SaGroupStore *gs, SaEntryRef *ref, MinimalTuple key,
				 MinimalTuple states)
{
	Size		keyspace = MAXALIGN(key->t_len);
	dsa_pointer dp;
	char	   *at;

	if (DsaPointerIsValid(ref->tuples))
	{
		MinimalTuple old = ref_states(gs->area, ref);

		if (old->t_len == states->t_len)
		{
			/* a group's states may be the entry's own (working_set.c) */
			if (old != states)
				memcpy(old, states, states->t_len);
			return true;
		}
	}
	dp = dsa_allocate_extended(gs->area, keyspace + states->t_len,
							   DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(dp))
		return false;
	at = dsa_get_address(gs->area, dp);
	memcpy(at, key, key->t_len);
	memcpy(at + keyspace, states, states->t_len);
	free_ref_tuples(gs, ref);
	ref->tuples = dp;
	gs->tuple_bytes += keyspace + states->t_len;
	return true;
}

/*
 * Write a group's stored states (and, for a new entry, its key) into its
 * shared entry; "entry" NULL adds one.  Running out of
 * streamagg.max_state_memory is reported, with the table unchanged.
 *
 * Returns the states as the entry now holds them: the tuple in the area
 * for an unpacked entry (valid until the entry next changes), else
 * group->states.  The caller may drop its own copy for the former.
 */
MinimalTuple
sa_gs_put(SaGroupStore *gs, void *entry, const SaGroup *group)
{
	SaQuery    *q = gs->q;
	SaEntryLayout *layout = gs->layout;
	bool		added = entry == NULL;

	Assert(group->states != NULL);
	before_change(gs);
	if (added)
	{
		entry = sa_gt_insert(gs->table, group->hash);
		if (entry == NULL)
			sa_report_state_memory_exceeded();
		((SaEntryHead *) entry)->window_start = group->window_start;
		((SaEntryHead *) entry)->window_end = group->window_end;
		gs->ngroups++;
	}
	Assert(((SaEntryHead *) entry)->window_start == group->window_start &&
		   ((SaEntryHead *) entry)->window_end == group->window_end);
	if (layout->packed)
	{
		if (added)
			packed_store(layout, entry, 0, q->nkeys, group->keyvals,
						 group->keynulls);
		sa_deform_minimal(group->states, q->group_state_desc,
						  gs->state_values, gs->state_nulls);
		packed_store(layout, entry, q->nkeys, q->group_state_desc->natts,
					 gs->state_values, gs->state_nulls);
		return group->states;
	}
	if (!store_ref_tuples(gs, entry, group->key, group->states))
	{
		if (added)
		{
			sa_gt_delete(gs->table, entry);
			gs->ngroups--;
		}
		sa_report_state_memory_exceeded();
	}
	return ref_states(gs->area, entry);
}

/* Remove a shared entry. */
void
sa_gs_delete(SaGroupStore *gs, void *entry)
{
	before_change(gs);
	if (!gs->layout->packed)
		free_ref_tuples(gs, entry);
	sa_gt_delete(gs->table, entry);
	gs->ngroups--;
	Assert(gs->ngroups >= 0);
}

/* Make room for n more entries at once; false when out of memory. */
bool
sa_gs_reserve(SaGroupStore *gs, uint64 n)
{
	return sa_gt_reserve(gs->table, n);
}

/* The next entry after *position (start at 0), or NULL at the end. */
void *
sa_gs_next(SaGroupStore *gs, uint64 *position)
{
	return sa_gt_next(gs->table, position);
}

/*
 * The key and states tuples of an entry: pointers into the area for an
 * unpacked entry, tuples formed in the current memory context for a packed
 * one.
 */
void
sa_gs_tuples(SaGroupStore *gs, const void *entry, MinimalTuple *key,
			 MinimalTuple *states)
{
	SaQuery    *q = gs->q;

	if (!gs->layout->packed)
	{
		*key = ref_key(gs->area, entry);
		*states = ref_states(gs->area, entry);
		return;
	}
	packed_values(gs->layout, entry, 0, q->nkeys, gs->match_values,
				  gs->match_nulls);
	*key = heap_form_minimal_tuple(q->key_desc, gs->match_values,
								   gs->match_nulls);
	packed_values(gs->layout, entry, q->nkeys, q->group_state_desc->natts,
				  gs->state_values, gs->state_nulls);
	*states = heap_form_minimal_tuple(q->group_state_desc, gs->state_values,
									  gs->state_nulls);
}

/*
 * A local copy of a shared group (key and stored states), in the current
 * memory context.
 */
SaGroup *
sa_gs_copy(SaGroupStore *gs, const void *entry)
{
	SaQuery    *q = gs->q;
	const SaEntryHead *head = entry;
	SaGroup    *group = sa_group_new(q, head->window_start, head->window_end,
									 sa_gt_hash(entry));
	MinimalTuple key;
	MinimalTuple states;

	sa_gs_tuples(gs, entry, &key, &states);
	if (!gs->layout->packed)
	{
		group->key = palloc(key->t_len);
		memcpy(group->key, key, key->t_len);
		group->states = palloc(states->t_len);
		memcpy(group->states, states, states->t_len);
	}
	else
	{
		group->key = key;
		group->states = states;
	}
	sa_deform_minimal(group->key, q->key_desc, group->keyvals, group->keynulls);
	return group;
}

uint64
sa_gs_count(SaGroupStore *gs)
{
	return sa_gt_count(gs->table);
}

/*
 * Bytes of shared memory the groups take: the table and the tuples its
 * entries point to.
 */
int64
sa_gs_memory(SaGroupStore *gs)
{
	return (int64) sa_gt_bytes(gs->table) + gs->tuple_bytes;
}

/* A handle on an existing group table, for one trigger (current context). */
SaGroupStore *
sa_group_store_open(SaQuery *q, dsa_area *area, dsa_pointer table,
					SaEntryLayout *layout)
{
	SaGroupStore *gs = palloc0(sizeof(SaGroupStore));
	int			nstates = q->group_state_desc->natts;

	gs->q = q;
	gs->area = area;
	gs->table = sa_gt_attach(area, table);
	gs->layout = layout;
	gs->match_values = palloc(sizeof(Datum) * (q->nkeys + 1));
	gs->match_nulls = palloc(sizeof(bool) * (q->nkeys + 1));
	gs->state_values = palloc(sizeof(Datum) * (nstates + 1));
	gs->state_nulls = palloc(sizeof(bool) * (nstates + 1));
	gs->min_window_end = PG_INT64_MAX;
	return gs;
}

/* Are the store's entries of the size "layout" says? */
bool
sa_group_store_fits(SaGroupStore *gs, const SaEntryLayout *layout)
{
	return sa_gt_entry_size(gs->table) == MAXALIGN(layout->size);
}

/*
 * A new, empty group table for entries of "layout"; an invalid pointer
 * when out of memory.
 */
dsa_pointer
sa_group_store_create(dsa_area *area, const SaEntryLayout *layout)
{
	return sa_gt_create(area, layout->size);
}

/* Free a group table and everything its entries point to. */
void
sa_group_store_destroy(dsa_area *area, dsa_pointer table, bool packed)
{
	SaGroupTable *groups = sa_gt_attach(area, table);

	if (!packed)
	{
		uint64		position = 0;
		SaEntryRef *ref;

		while ((ref = sa_gt_next(groups, &position)) != NULL)
			if (DsaPointerIsValid(ref->tuples))
				dsa_free(area, ref->tuples);
	}
	sa_gt_destroy(groups);
}
