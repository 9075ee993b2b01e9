/*-------------------------------------------------------------------------
 *
 * working_set.h
 *	  The groups one trigger works on: local copies of the groups its
 *	  batch touches, and panes of sliding windows (working_set.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_WORKING_SET_H
#define STREAMAGG_WORKING_SET_H

#include "streamagg.h"

#include "group.h"
#include "group_store.h"

struct sagroups_hash;

/* What one trigger works with; everything lives in cxt. */
typedef struct SaWorkingSet
{
	SaQuery    *q;
	MemoryContext cxt;
	SaAggRuntime *rt;
	SaGroup   **touched;		/* by the batch, in the order touched */
	int			ntouched;
	int			touched_size;
	struct sagroups_hash *local;	/* the same, by (window, key) */
	struct sagroups_hash *panes;	/* panes of this batch, by (pane, key) */
	List	   *pane_list;		/* the same, in order */
	List	   *closed_only;	/* groups changed by closing only */
} SaWorkingSet;

extern SaWorkingSet *sa_working_set_create(SaQuery *q);
extern void sa_working_set_destroy(SaWorkingSet *ws);
extern SaGroup *sa_ws_touch(SaWorkingSet *ws, SaGroupStore *gs,
							int64 window_start, int64 window_end,
							Datum *keyvals, bool *keynulls);
extern SaGroup *sa_ws_touch_pane(SaWorkingSet *ws, int64 pane_start,
								 Datum *keyvals, bool *keynulls);
extern SaGroup *sa_ws_copy_of(SaWorkingSet *ws, SaGroupStore *gs,
							  const void *entry, bool *touched);
extern void sa_ws_add_changed(SaWorkingSet *ws, SaGroup *group);
extern void sa_ws_store_touched(SaWorkingSet *ws, SaGroupStore *gs);

#endif							/* STREAMAGG_WORKING_SET_H */
