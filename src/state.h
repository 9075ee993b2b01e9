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

/* One (window, group key) and its aggregate states. */
typedef struct SaGroup
{
	int64		window_start;
	int64		window_end;
	uint32		hash;
	bool		persisted;		/* has a row in streamagg.state */
	MinimalTuple key;			/* group key columns (q->key_desc) */
	Datum	   *keyvals;		/* point into key */
	bool	   *keynulls;
	MinimalTuple states;		/* stored states (q->state_desc), or NULL */
	/* live states, valid while touched_in equals the store's trigger_seq */
	uint64		touched_in;
	Datum	   *work_values;
	bool	   *work_nulls;
} SaGroup;

struct sagroups_hash;

/* The cached state of one query in this backend (see state.c). */
typedef struct SaStateStore
{
	int32		query_id;		/* hash key: must be first */
	SaQuery    *q;
	MemoryContext cxt;
	struct sagroups_hash *groups;
	int64		ngroups;
	int64		batch_id;		/* last batch reflected, -1 for none */
	bool		valid;
	bool		dirty;
	uint64		trigger_seq;
	int64		min_window_end; /* no open window ends before this */
} SaStateStore;

/* What one trigger works with; everything lives in cxt. */
typedef struct SaTriggerWork
{
	MemoryContext cxt;
	SaAggRuntime *rt;
	SaGroup   **touched;
	int			ntouched;
	int			touched_size;
} SaTriggerWork;

extern uint32 sa_group_hash(SaQuery *q, int64 window_start, int64 window_end,
							Datum *keyvals, bool *keynulls);
extern SaStateStore *sa_state_begin(SaQuery *q, int64 committed_batch_id);
extern void sa_state_forget(int32 query_id);
extern SaGroup *sa_state_touch(SaStateStore *store, SaTriggerWork *work,
							   int64 window_start, int64 window_end,
							   Datum *keyvals, bool *keynulls);
extern void sa_state_store_touched(SaStateStore *store, SaTriggerWork *work);
extern void sa_state_finalize(SaStateStore *store, SaTriggerWork *work,
							  SaGroup *group, Datum *results,
							  bool *resultnulls);
extern List *sa_state_closed_groups(SaStateStore *store, int64 watermark);
extern void sa_state_evict(SaStateStore *store, List *groups);
extern void sa_state_checkpoint(SaStateStore *store, SaTriggerWork *work,
								bool has_watermark, int64 watermark);
extern void sa_state_end(SaStateStore *store, int64 batch_id);
extern int64 sa_state_size(SaStateStore *store);

/* sink.c */
extern int64 sa_write_sink(SaQuery *q, SaStateStore *store,
						   SaTriggerWork *work, SaGroup **groups,
						   int ngroups);

#endif							/* STREAMAGG_STATE_H */
