/*-------------------------------------------------------------------------
 *
 * state.h
 *	  The state of open windows, shared by state.c and trigger.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_STATE_H
#define STREAMAGG_STATE_H

#include "streamagg.h"

#include "access/htup.h"

/*
 * A (window, group key) touched by a trigger: a local copy of the shared
 * group (or a new one), with live aggregate states.  Lives in the trigger's
 * memory context.
 */
typedef struct SaGroup
{
	int64		window_start;
	int64		window_end;
	uint32		hash;
	MinimalTuple key;			/* group key columns (q->key_desc) */
	Datum	   *keyvals;		/* point into key */
	bool	   *keynulls;
	MinimalTuple states;		/* stored states (q->state_desc), or NULL */
	Datum	   *work_values;	/* live states */
	bool	   *work_nulls;
} SaGroup;

/* What one trigger works with; everything lives in cxt. */
typedef struct SaTriggerWork
{
	MemoryContext cxt;
	SaAggRuntime *rt;
	SaGroup   **touched;
	int			ntouched;
	int			touched_size;
} SaTriggerWork;

struct sagroups_hash;
struct dshash_table;

/* A trigger's handle on the shared state of its query (see state.c). */
typedef struct SaStateStore
{
	SaQuery    *q;
	SaTriggerWork *work;
	struct sagroups_hash *local;	/* the touched groups, by key */
	struct dshash_table *groups;	/* the shared groups */
	int64		ngroups;
	int64		min_window_end; /* no open window ends before this */
	int64		batch_id;
	bool		writing;		/* writer recorded */
} SaStateStore;

extern uint32 sa_group_hash(SaQuery *q, int64 window_start, int64 window_end,
							Datum *keyvals, bool *keynulls);
extern SaStateStore *sa_state_begin(SaQuery *q, SaTriggerWork *work,
									int64 committed_batch_id);
extern SaGroup *sa_state_touch(SaStateStore *store, int64 window_start,
							   int64 window_end, Datum *keyvals,
							   bool *keynulls);
extern void sa_state_store_touched(SaStateStore *store);
extern void sa_state_finalize(SaStateStore *store, SaGroup *group,
							  Datum *results, bool *resultnulls);
extern List *sa_state_close_windows(SaStateStore *store, int64 watermark);
extern void sa_state_checkpoint(SaStateStore *store, bool has_watermark,
								int64 watermark);
extern void sa_state_end(SaStateStore *store, int64 batch_id);
extern int64 sa_state_size(SaStateStore *store);

/* sink.c */
extern int64 sa_write_sink(SaQuery *q, SaStateStore *store,
						   SaGroup **groups, int ngroups);

#endif							/* STREAMAGG_STATE_H */
