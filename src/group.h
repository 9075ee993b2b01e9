/*-------------------------------------------------------------------------
 *
 * group.h
 *	  A group of a query's state: one (window, group key) with its
 *	  aggregate states, or for session queries one key with its open
 *	  sessions (group.c, session.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_GROUP_H
#define STREAMAGG_GROUP_H

#include "streamagg.h"
#include "aggregate.h"

/* An open session window of a key, live during a trigger (session.c). */
typedef struct SaSession
{
	int64		start;
	int64		end;
	int64		orig_start;		/* bounds when the trigger began */
	int64		orig_end;
	bool		existed;		/* stored before this trigger */
	bool		changed;		/* by this trigger */
	Datum	   *values;			/* live states */
	bool	   *nulls;
	MinimalTuple states;		/* stored states, once packed */
} SaSession;

/*
 * A group as a trigger holds it: a local copy of a shared group (or a new
 * one), in the trigger's memory context.  "states" is the stored form
 * (q->group_state_desc); work_values and work_nulls the live states while
 * the trigger folds rows into them.  For session queries the window is
 * (0, 0) and the group holds every open session of its key.
 *
 * The same struct carries a row of the result table on its way to
 * emission: then window and key are the row's, and "states" the stored
 * states (q->state_desc) of that window or session.
 */
typedef struct SaGroup
{
	int64		window_start;
	int64		window_end;
	MinimalTuple key;			/* group key columns (q->key_desc) */
	Datum	   *keyvals;		/* point into key */
	bool	   *keynulls;
	MinimalTuple states;		/* stored states, or NULL */
	Datum	   *work_values;	/* live states */
	bool	   *work_nulls;
	int64		rows;			/* panes: rows aggregated into it */
	/* session queries */
	SaSession  *sessions;		/* sorted by start, never touching */
	List	   *retired;		/* int64[2] bounds of sessions merged away */
	int			nsessions;
	int			session_cap;
	/* the narrow fields last, so that no padding falls between them */
	uint32		hash;
	bool		emptied;		/* closed entirely: the group goes */
	bool		fresh;			/* not in the state before this trigger */
	bool		states_live;	/* work_values hold what "states" was
								 * packed from, and nothing uses them after
								 * the row is finished (window groups the
								 * trigger touched, once stored) */
} SaGroup;

/* identity */
extern uint32 sa_group_hash(const SaQuery *q, int64 window_start,
							int64 window_end, const Datum *keyvals,
							const bool *keynulls);
extern bool sa_group_keys_equal(const SaQuery *q, const Datum *av,
								const bool *an, const Datum *bv,
								const bool *bn);
extern SaGroup *sa_group_new(const SaQuery *q, int64 window_start,
							 int64 window_end, uint32 hash);

/* states, for windows and sessions alike */
extern void sa_group_unpack(SaAggRuntime *rt, SaQuery *q, SaGroup *group);
extern void sa_group_advance(SaAggRuntime *rt, SaQuery *q, SaGroup *group,
							 int64 t, Datum *values, bool *nulls);
extern void sa_group_combine(SaAggRuntime *rt, SaQuery *q, SaGroup *group,
							 const SaGroup *pane);
extern MinimalTuple sa_group_pack(SaAggRuntime *rt, SaQuery *q,
								  SaGroup *group, int64 *min_end);
extern int64 sa_group_stored_min_end(SaQuery *q, int64 window_end,
									 MinimalTuple states);
extern bool sa_group_may_close(const SaQuery *q, int64 window_end,
							   int64 watermark);
extern MinimalTuple sa_group_close(SaQuery *q, SaGroup *group,
								   int64 watermark, List **closed,
								   int64 *min_end);
extern void sa_group_rows(SaQuery *q, SaGroup *group, List **rows);
extern void sa_group_changes(SaQuery *q, SaGroup *group, List **upserts,
							 List **deletes);

#endif							/* STREAMAGG_GROUP_H */
