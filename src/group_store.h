/*-------------------------------------------------------------------------
 *
 * group_store.h
 *	  The shared groups of one query: their entries in a group table in
 *	  DSA, packed or pointing to tuples (group_store.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_GROUP_STORE_H
#define STREAMAGG_GROUP_STORE_H

#include "streamagg.h"

#include "utils/dsa.h"

#include "group.h"
#include "group_table.h"

/* Every entry of a group table starts with its window. */
typedef struct SaEntryHead
{
	int64		window_start;
	int64		window_end;
} SaEntryHead;

typedef struct SaEntryLayout SaEntryLayout;

/*
 * A trigger's handle on the group table of its query.  The counters are
 * kept with the shared state between triggers (shared_state.c).
 */
typedef struct SaGroupStore
{
	SaQuery    *q;
	dsa_area   *area;
	SaGroupTable *table;
	SaEntryLayout *layout;
	Datum	   *match_values;	/* room to compare a shared key */
	bool	   *match_nulls;
	Datum	   *state_values;	/* room to pack stored states */
	bool	   *state_nulls;
	int64		ngroups;
	int64		tuple_bytes;	/* of DSA memory the entries point to */
	int64		min_window_end; /* no open window ends before this */

	/*
	 * Called once, before the first change to the table (then cleared):
	 * the trust protocol of shared_state.c records the writer there.
	 */
	void		(*before_change) (void *arg);
	void	   *before_change_arg;
} SaGroupStore;

extern SaEntryLayout *sa_entry_layout(SaQuery *q);
extern bool sa_entry_layout_packed(const SaEntryLayout *layout);
extern uint32 sa_entry_layout_size(const SaEntryLayout *layout);

extern SaGroupStore *sa_group_store_open(SaQuery *q, dsa_area *area,
										 dsa_pointer table,
										 SaEntryLayout *layout);
extern bool sa_group_store_fits(SaGroupStore *gs,
								const SaEntryLayout *layout);
extern dsa_pointer sa_group_store_create(dsa_area *area,
										 const SaEntryLayout *layout);
extern void sa_group_store_destroy(dsa_area *area, dsa_pointer table,
								   bool packed);

extern void *sa_gs_find(SaGroupStore *gs, int64 window_start,
						int64 window_end, uint32 hash, const Datum *values,
						const bool *nulls);
extern MinimalTuple sa_gs_put(SaGroupStore *gs, void *entry,
							   const SaGroup *group);
extern void sa_gs_delete(SaGroupStore *gs, void *entry);
extern bool sa_gs_reserve(SaGroupStore *gs, uint64 n);
extern void *sa_gs_next(SaGroupStore *gs, uint64 *position);
extern SaGroup *sa_gs_copy(SaGroupStore *gs, const void *entry);
extern void sa_gs_key_values(SaGroupStore *gs, const void *entry,
							 Datum *values, bool *nulls);
extern void sa_gs_tuples(SaGroupStore *gs, const void *entry,
						 MinimalTuple *key, MinimalTuple *states);
extern uint64 sa_gs_count(SaGroupStore *gs);
extern int64 sa_gs_memory(SaGroupStore *gs);
extern void sa_gs_push_write_context(SaGroupStore *gs,
									 ErrorContextCallback *cb);
extern void sa_report_state_memory_exceeded(void);

#endif							/* STREAMAGG_GROUP_STORE_H */
