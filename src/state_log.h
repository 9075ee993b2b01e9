/*-------------------------------------------------------------------------
 *
 * state_log.h
 *	  The durable state of a query: snapshots and deltas in
 *	  streamagg.state_log (state_log.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_STATE_LOG_H
#define STREAMAGG_STATE_LOG_H

#include "streamagg.h"

#include "state.h"

extern void sa_state_log_replay(SaStateStore *store);
extern void sa_state_log_write(SaStateStore *store, int64 batch_id);

#endif							/* STREAMAGG_STATE_LOG_H */
