/*-------------------------------------------------------------------------
 *
 * init.h
 *	  Settings, hooks and the shared memory of the library (init.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_INIT_H
#define STREAMAGG_INIT_H

#include "streamagg.h"

#define SA_MAX_WORKERS_PER_DATABASE 8
extern int	sa_wait_poll_ms;
extern int	sa_max_state_memory_mb;
extern int	sa_trigger_timeout_ms;
extern int	sa_workers_per_database;
extern bool sa_allow_source_changes;
extern int	sa_max_batch_rows_setting;
extern void sa_require_preloaded(void);
extern bool sa_library_preloaded(void);

#endif							/* STREAMAGG_INIT_H */
