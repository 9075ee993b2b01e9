/*-------------------------------------------------------------------------
 *
 * state.h
 *	  The state of one query as a trigger holds it: its shared groups, the
 *	  trigger's working set, and where its durable log stands.
 *
 * The parts live in their own modules: shared_state.c (the shared area
 * and the trust protocol), group_store.c (the groups' entries),
 * working_set.c (the trigger's copies), state_log.c (the durable log) and
 * emit.c (closing and emission).  src/README.md tells how they fit.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_STATE_H
#define STREAMAGG_STATE_H

#include "streamagg.h"

#include "group_store.h"
#include "working_set.h"

typedef struct SaStateStore
{
	SaQuery    *q;
	SaGroupStore *groups;		/* the shared groups of the query */
	SaWorkingSet *work;			/* the trigger's copies */
	int64		log_records;	/* in streamagg.state_log since its snapshot */
	bool		writing;		/* this trigger is recorded as the writer */
} SaStateStore;

#endif							/* STREAMAGG_STATE_H */
