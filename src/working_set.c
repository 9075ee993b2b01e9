/*-------------------------------------------------------------------------
 *
 * working_set.c
 *	  The groups one trigger works on.
 *
 * A trigger works on its own copy of the groups it touches (SaGroup, in
 * the trigger's memory context, found through a local hash table): rows of
 * one group within a batch never reach shared memory; each touched group
 * is read from it once and written back once (sa_ws_store_touched).
 * Sliding windows whose aggregates combine are folded per pane first
 * (panes never reach shared memory).  Groups that only closing changes
 * join the set too, so that the durable log sees every change
 * (state_log.c).
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/htup_details.h"
#include "miscadmin.h"
#include "utils/datum.h"
#include "utils/memutils.h"

#include "working_set.h"

/* Local hash of groups, keyed by the group's (window, key). */
typedef struct SaGroupEntry
{
	SaGroup    *group;
	uint32		hash;
	char		status;
} SaGroupEntry;

static bool
group_equal(SaQuery *q, const SaGroup *a, const SaGroup *b)
{
	return a->window_start == b->window_start &&
		a->window_end == b->window_end &&
		sa_group_keys_equal(q, a->keyvals, a->keynulls, b->keyvals,
							b->keynulls);
}

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

#include "aggregate.h"
#include "group.h"
#include "group_store.h"
#include "group_table.h"

/*
 * A new working set for a trigger of q, in a memory context of its own
 * under the current one.
 */
SaWorkingSet *
sa_working_set_create(SaQuery *q)
{
	MemoryContext cxt = GenerationContextCreate(CurrentMemoryContext,
												"streamagg trigger",
												0, ALLOCSET_DEFAULT_INITSIZE,
												ALLOCSET_DEFAULT_MAXSIZE);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	SaWorkingSet *ws = palloc0(sizeof(SaWorkingSet));

	ws->q = q;
	ws->cxt = cxt;
	ws->rt = sa_agg_runtime_create();
	ws->touched_size = 64;
	ws->touched = palloc(sizeof(SaGroup *) * ws->touched_size);
	ws->local = sagroups_create(cxt, 256, q);
	ws->panes = q->use_panes ? sagroups_create(cxt, 256, q) : NULL;
	MemoryContextSwitchTo(old);
	return ws;
}

/* The trigger is done: its aggregates' callbacks run, its memory goes. */
void
sa_working_set_destroy(SaWorkingSet *ws)
{
	sa_agg_runtime_destroy(ws->rt);
	MemoryContextDelete(ws->cxt);
}

/* A probe of the set's hash tables for (window, key), with its hash. */
static void
make_probe(SaGroup *probe, SaQuery *q, int64 window_start, int64 window_end,
		   Datum *keyvals, bool *keynulls)
{
	probe->window_start = window_start;
	probe->window_end = window_end;
	probe->keyvals = keyvals;
	probe->keynulls = keynulls;
	probe->hash = sa_group_hash(q, window_start, window_end, keyvals,
								keynulls);
}

/*
 * The group for (window, key) in one of the set's hash tables, or NULL;
 * *hash is set to the hash of (window, key) either way.
 */
static SaGroup *
find_local(struct sagroups_hash *table, SaQuery *q, int64 window_start,
		   int64 window_end, Datum *keyvals, bool *keynulls, uint32 *hash)
{
	SaGroup		probe;
	SaGroupEntry *entry;

	make_probe(&probe, q, window_start, window_end, keyvals, keynulls);
	*hash = probe.hash;
	entry = sagroups_lookup(table, &probe);
	return entry ? entry->group : NULL;
}

/* Add a group, already in the set's hash table, to the touched ones. */
static void
add_touched(SaWorkingSet *ws, SaGroup *group)
{
	if (ws->ntouched == ws->touched_size)
	{
		ws->touched_size *= 2;
		ws->touched = repalloc(ws->touched,
							   sizeof(SaGroup *) * ws->touched_size);
	}
	ws->touched[ws->ntouched++] = group;
}

/*
 * The group for (window, key) of a batch row, with live states: found in
 * the set, else copied from the shared groups, else new.  Key values may
 * point into the row.
 */
SaGroup *
sa_ws_touch(SaWorkingSet *ws, SaGroupStore *gs, int64 window_start,
			int64 window_end, Datum *keyvals, bool *keynulls)
{
	SaQuery    *q = ws->q;
	uint32		hash;
	SaGroup    *group;
	SaGroup		probe;
	SaGroupEntry *entry;
	void	   *shared;
	MemoryContext old;
	bool		found;

	/*
	 * One probe finds the group or makes its entry, which holds the probe
	 * until the group exists.  Nothing below inserts into the table, and an
	 * error ends the trigger with its working set.
	 */
	make_probe(&probe, q, window_start, window_end, keyvals, keynulls);
	hash = probe.hash;
	entry = sagroups_insert_hash(ws->local, &probe, hash, &found);
	if (found)
		return entry->group;
	entry->hash = hash;

	old = MemoryContextSwitchTo(ws->cxt);
	shared = sa_gs_find(gs, window_start, window_end, hash, keyvals, keynulls);
	if (shared)
		group = sa_gs_copy(gs, shared);
	else
	{
		/* gs->match_values is free again once sa_gs_find returned */
		Datum	   *vals = gs->match_values;

		group = sa_group_new(q, window_start, window_end, hash);
		group->fresh = true;
		for (int i = 0; i < q->nkeys; i++)
			vals[i] = sa_datum_self_contained(keyvals[i], keynulls[i],
											  TupleDescAttr(q->key_desc, i)->attlen);
		group->key = heap_form_minimal_tuple(q->key_desc, vals, keynulls);
		sa_deform_minimal(group->key, q->key_desc, group->keyvals,
						  group->keynulls);
	}
	sa_group_unpack(ws->rt, q, group);
	Assert(entry->group == &probe);
	entry->group = group;
	add_touched(ws, group);
	MemoryContextSwitchTo(old);
	return group;
}

/*
 * A pane of this batch for a row (sliding windows, see q->use_panes): a
 * group of the set's own, never in shared memory, with states started
 * from the initial values.  Key values may point into the row.
 */
SaGroup *
sa_ws_touch_pane(SaWorkingSet *ws, int64 pane_start, Datum *keyvals,
				 bool *keynulls)
{
	SaQuery    *q = ws->q;
	uint32		hash;
	SaGroup    *pane;
	SaGroupEntry *entry;
	MemoryContext old;
	bool		found;

	Assert(q->use_panes);
	pane = find_local(ws->panes, q, pane_start, pane_start, keyvals,
					  keynulls, &hash);
	if (pane)
		return pane;

	old = MemoryContextSwitchTo(ws->cxt);
	pane = sa_group_new(q, pane_start, pane_start, hash);
	for (int i = 0; i < q->nkeys; i++)
	{
		pane->keynulls[i] = keynulls[i];
		pane->keyvals[i] = keynulls[i] ? (Datum) 0 :
			datumCopy(keyvals[i], TupleDescAttr(q->key_desc, i)->attbyval,
					  TupleDescAttr(q->key_desc, i)->attlen);
	}
	sa_group_unpack(ws->rt, q, pane);
	entry = sagroups_insert(ws->panes, pane, &found);
	entry->hash = pane->hash;
	ws->pane_list = lappend(ws->pane_list, pane);
	MemoryContextSwitchTo(old);
	return pane;
}

/*
 * The set's copy of a shared group: the touched copy if the batch touched
 * it (*touched true), else a new copy in the set's memory context, which
 * joins the set only if sa_ws_add_changed says so.
 */
SaGroup *
sa_ws_copy_of(SaWorkingSet *ws, SaGroupStore *gs, const void *entry,
			  bool *touched)
{
	const SaEntryHead *head = entry;
	SaGroup		probe;
	SaGroupEntry *local;
	SaGroup    *group;
	MemoryContext old;

	probe.window_start = head->window_start;
	probe.window_end = head->window_end;
	probe.hash = sa_gt_hash(entry);
	probe.keyvals = gs->match_values;
	probe.keynulls = gs->match_nulls;
	sa_gs_key_values(gs, entry, probe.keyvals, probe.keynulls);
	local = sagroups_lookup(ws->local, &probe);
	*touched = local != NULL;
	if (local)
		return local->group;
	old = MemoryContextSwitchTo(ws->cxt);
	group = sa_gs_copy(gs, entry);
	MemoryContextSwitchTo(old);
	return group;
}

/*
 * A group the batch did not touch was changed (by closing): it joins the
 * set, so that the log records the change.
 */
void
sa_ws_add_changed(SaWorkingSet *ws, SaGroup *group)
{
	MemoryContext old = MemoryContextSwitchTo(ws->cxt);

	ws->closed_only = lappend(ws->closed_only, group);
	MemoryContextSwitchTo(old);
}

/*
 * Store the live states of every touched group back: in stored form into
 * the shared groups, and in the group.  A fresh group was not there when
 * the trigger touched it, and only this trigger changes the state: it is
 * added without a lookup.
 *
 * A window group of an unpacked store keeps no stored copy of its own:
 * its states are formed in scratch memory, reused from group to group,
 * and group->states then points at the tuple in the area.  That tuple
 * stays as it is while the entry exists: the query's lock keeps other
 * triggers out, and close_group in emit.c changes the entry only through
 * sa_gs_put (which copies before it frees) or deletes it, marking the
 * group emptied; the row of an emptied window group is finished from its
 * live states, and the log records it as gone.  This saves a fresh
 * allocation per group: with 1e6 events in 400 000 groups, 21 000 page
 * faults of 200 000.  A session group keeps its own (its sessions point
 * into it).
 */
void
sa_ws_store_touched(SaWorkingSet *ws, SaGroupStore *gs)
{
	SaQuery    *q = ws->q;
	bool		states_in_area = !q->def.has_session &&
		!sa_entry_layout_packed(gs->layout);
	MemoryContext pack_cxt = ws->cxt;
	ErrorContextCallback errcb;
	uint64		fresh = 0;

	if (ws->ntouched == 0)
		return;
	if (states_in_area)
		pack_cxt = AllocSetContextCreate(ws->cxt, "streamagg stored states",
										 ALLOCSET_SMALL_SIZES);
	for (int g = 0; g < ws->ntouched; g++)
		fresh += ws->touched[g]->fresh;
	sa_gs_push_write_context(gs, &errcb);
	/* the index grows once for the fresh groups, not once per doubling */
	if (!sa_gs_reserve(gs, fresh))
		sa_report_state_memory_exceeded();
	error_context_stack = errcb.previous;
	for (int g = 0; g < ws->ntouched; g++)
	{
		SaGroup    *group = ws->touched[g];
		void	   *entry = NULL;
		int64		min_end;
		MinimalTuple stored;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(pack_cxt);
		group->states = sa_group_pack(ws->rt, q, group, &min_end);
		MemoryContextSwitchTo(old);
		group->states_live = !q->def.has_session;
		gs->min_window_end = Min(gs->min_window_end, min_end);
		sa_gs_push_write_context(gs, &errcb);
		if (!group->fresh)
			entry = sa_gs_find(gs, group->window_start, group->window_end,
							   group->hash, group->keyvals, group->keynulls);
		Assert(group->fresh || entry != NULL);
		stored = sa_gs_put(gs, entry, group);
		error_context_stack = errcb.previous;
		if (states_in_area)
		{
			group->states = stored;
			MemoryContextReset(pack_cxt);
		}
		Assert(group->states != NULL);
	}
	if (states_in_area)
		MemoryContextDelete(pack_cxt);
}
