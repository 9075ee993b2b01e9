/*-------------------------------------------------------------------------
 *
 * group.c
 *	  What a group of the state is, for window and session queries alike:
 *	  its identity (hash and key equality, as GROUP BY has them), folding a
 *	  row into it, and moving its states between their live form (during a
 *	  trigger) and their stored form (in shared memory and the log).
 *
 * This is the one interface the state (working_set.c, group_store.c,
 * state_log.c, emit.c) uses to handle groups; only here does a window
 * query differ from a session query, whose groups hold the open sessions
 * of a key (session.c).
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "utils/memutils.h"

#include "group.h"
#include "session.h"
#include "window.h"
#include "aggregate.h"

/* Hash of a (window, key), consistent with the key types' equality. */
uint32
sa_group_hash(const SaQuery *q, int64 window_start, int64 window_end,
			  const Datum *keyvals, const bool *keynulls)
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

/* Are two group keys equal?  NULL equals NULL, as in GROUP BY. */
bool
sa_group_keys_equal(const SaQuery *q, const Datum *av, const bool *an,
					const Datum *bv, const bool *bn)
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

/*
 * A new group of (window, key) with room for its key values and live
 * states, in one allocation in the current memory context.
 */
SaGroup *
sa_group_new(const SaQuery *q, int64 window_start, int64 window_end,
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
 * Live states of a group, in the current memory context: its stored
 * states, or initial states for a new group.
 */
void
sa_group_unpack(SaAggRuntime *rt, SaQuery *q, SaGroup *group)
{
	if (q->def.has_session)
		sa_sessions_unpack(rt, q, group);
	else if (group->states)
		sa_aggs_deform_stored(rt, q, group->states, group->work_values,
							  group->work_nulls);
	else
		sa_aggs_init(rt, q, group->work_values, group->work_nulls);
}

/*
 * Fold a batch row (event time "t", then the batch columns) into a group's
 * live states: a window's, or those of the session the event falls into
 * (opening or merging sessions).
 */
void
sa_group_advance(SaAggRuntime *rt, SaQuery *q, SaGroup *group, int64 t,
				 Datum *values, bool *nulls)
{
	if (q->def.has_session)
	{
		SaSession  *session = sa_session_for_event(rt, q, group, t);

		sa_aggs_advance(rt, q, session->values, session->nulls, values,
						nulls);
	}
	else
		sa_aggs_advance(rt, q, group->work_values, group->work_nulls,
						values, nulls);
}

/* Combine the live states of a pane into a window group's. */
void
sa_group_combine(SaAggRuntime *rt, SaQuery *q, SaGroup *group,
				 const SaGroup *pane)
{
	Assert(!q->def.has_session && q->use_panes);
	sa_aggs_combine(rt, q, group->work_values, group->work_nulls,
					pane->work_values, pane->work_nulls);
}

/*
 * The stored form of a group's live states (q->group_state_desc), in the
 * current memory context; *min_end is the earliest end of its windows.
 */
MinimalTuple
sa_group_pack(SaAggRuntime *rt, SaQuery *q, SaGroup *group, int64 *min_end)
{
	if (q->def.has_session)
		return sa_sessions_pack(rt, q, group, min_end);
	*min_end = group->window_end;
	return sa_aggs_form_stored(rt, q, group->work_values, group->work_nulls);
}

/* The earliest end of the windows of a stored group. */
int64
sa_group_stored_min_end(SaQuery *q, int64 window_end, MinimalTuple states)
{
	return q->def.has_session ? sa_sessions_min_end(q, states) : window_end;
}

/*
 * Can watermark W close anything in a group whose entry has this window
 * end?  A window group only if its own window; a session group's entry
 * says nothing (its window is (0, 0)), so its sessions must be looked at.
 */
bool
sa_group_may_close(const SaQuery *q, int64 window_end, int64 watermark)
{
	return q->def.has_session || sa_closed_by(window_end, watermark);
}

/*
 * Close what watermark W closes in a group (with its stored states): a
 * window group whose end is <= W entirely, a session group each session
 * whose end is <= W.  What closes is appended to *closed as result rows.
 * Returns the stored form of what stays open, with its earliest end in
 * *min_end, or NULL when nothing stays.  A group with nothing to close is
 * returned unchanged (the same "states").
 */
MinimalTuple
sa_group_close(SaQuery *q, SaGroup *group, int64 watermark, List **closed,
			   int64 *min_end)
{
	if (q->def.has_session)
		return sa_sessions_close(q, group, watermark, closed, min_end);
	*min_end = group->window_end;
	if (!sa_closed_by(group->window_end, watermark))
		return group->states;
	*closed = lappend(*closed, group);
	*min_end = PG_INT64_MAX;
	return NULL;
}

/* Every row of the result table a group holds: itself, or its sessions. */
void
sa_group_rows(SaQuery *q, SaGroup *group, List **rows)
{
	if (q->def.has_session)
		sa_sessions_all(q, group, rows);
	else
		*rows = lappend(*rows, group);
}

/*
 * The rows of a touched group that this trigger changed (to upsert), and
 * those that it merged away (to delete; session queries only).
 */
void
sa_group_changes(SaQuery *q, SaGroup *group, List **upserts, List **deletes)
{
	if (q->def.has_session)
		sa_sessions_changes(q, group, upserts, deletes);
	else
		*upserts = lappend(*upserts, group);
}
