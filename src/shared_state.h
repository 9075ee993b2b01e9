/*-------------------------------------------------------------------------
 *
 * shared_state.h
 *	  The state of every query in shared memory, and when a trigger may
 *	  trust it (shared_state.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_SHARED_STATE_H
#define STREAMAGG_SHARED_STATE_H

#include "streamagg.h"

#include "state.h"

extern Size sa_state_shmem_size(void);
extern void sa_state_shmem_init(void);
extern SaStateStore *sa_state_begin(SaQuery *q, SaWorkingSet *ws,
									int64 committed_batch_id);
extern void sa_state_end(SaStateStore *store, int64 batch_id);
extern void sa_state_forget(int32 query_id);
extern void sa_state_forget_database(Oid database);

#endif							/* STREAMAGG_SHARED_STATE_H */
