/*-------------------------------------------------------------------------
 *
 * session.h
 *	  Session windows: the open sessions of a key (session.c).  Only
 *	  group.c calls these; the rest of the state sees groups.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_SESSION_H
#define STREAMAGG_SESSION_H

#include "group.h"

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

#endif							/* STREAMAGG_SESSION_H */
