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
 * A (window, group key) touched by a trigger: a local copy of the shared
 * group (or a new one), with live aggregate states.  Lives in the trigger's
 * memory context.  For session queries the window is (0, 0) and the group
 * holds every open session of its key.
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
	/* session queries */
	SaSession  *sessions;		/* sorted by start, never touching */
	int			nsessions;
	int			session_cap;
	List	   *retired;		/* int64[2] bounds of sessions merged away */
	bool		emptied;		/* every session closed: delete the group */
	bool		fresh;			/* not in the state before this trigger */
	int64		rows;			/* panes: rows aggregated into it */
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
struct SaGroupTable;
struct SaEntryLayout;

/* A trigger's handle on the shared state of its query (see state.c). */
typedef struct SaStateStore
{
	SaQuery    *q;
	SaTriggerWork *work;
	struct sagroups_hash *local;	/* the touched groups, by key */
	struct sagroups_hash *panes;	/* panes of this batch, by key */
	List	   *pane_list;		/* the same, in order */
	List	   *closed_groups;	/* session groups changed by closing only */
	struct SaGroupTable *groups;	/* the shared groups */
	struct SaEntryLayout *layout;	/* of their entries */
	Datum	   *match_values;	/* room to compare a shared key */
	bool	   *match_nulls;
	Datum	   *state_values;	/* room to pack stored states */
	bool	   *state_nulls;
	int64		ngroups;
	int64		tuple_bytes;	/* of DSA memory the entries point to */
	int64		min_window_end; /* no open window ends before this */
	int64		log_records;	/* in streamagg.state_log since its snapshot */
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
extern SaGroup *sa_state_touch_pane(SaStateStore *store, int64 pane_start,
									Datum *keyvals, bool *keynulls);
extern void sa_state_store_touched(SaStateStore *store);
extern void sa_state_finalize(SaStateStore *store, SaGroup *group,
							  Datum *results, bool *resultnulls);
extern List *sa_state_close(SaStateStore *store, int64 watermark);
extern void sa_state_checkpoint(SaStateStore *store, int64 batch_id,
								bool evicting, int64 watermark, List *closed);
extern void sa_state_end(SaStateStore *store, int64 batch_id);
extern int64 sa_state_size(SaStateStore *store);
extern int64 sa_state_memory(SaStateStore *store);
extern List *sa_state_all_rows(SaStateStore *store);

/* session.c */
extern void sa_sessions_unpack(SaAggRuntime *rt, SaQuery *q, SaGroup *group);
extern SaSession *sa_session_for_event(SaAggRuntime *rt, SaQuery *q,
									   SaGroup *group, int64 t);
extern MinimalTuple sa_sessions_pack(SaAggRuntime *rt, SaQuery *q,
									 SaGroup *group, int64 *min_end);
extern void sa_sessions_changes(SaQuery *q, SaGroup *group, List **upserts,
								List **deletes);
extern MinimalTuple sa_sessions_close(SaQuery *q, SaGroup *group,
									  int64 watermark, List **closed,
									  int64 *min_end);
extern int64 sa_sessions_min_end(SaQuery *q, MinimalTuple group_states);
extern void sa_sessions_all(SaQuery *q, SaGroup *group, List **rows);

/* notify.c */
extern void sa_notify_output(SaQuery *q, int64 batch_id, SaGroup **groups,
							 int ngroups, bool has_watermark, int64 watermark);

/* sink.c */
extern int64 sa_write_sink(SaQuery *q, SaStateStore *store,
						   SaGroup **groups, int ngroups, int64 batch_id);
extern int64 sa_delete_sink_rows(SaQuery *q, List *rows);

#endif							/* STREAMAGG_STATE_H */
