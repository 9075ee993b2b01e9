/*-------------------------------------------------------------------------
 *
 * trigger.h
 *	  One trigger of a query (trigger.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_TRIGGER_H
#define STREAMAGG_TRIGGER_H

#include "streamagg.h"

typedef struct SaTriggerResult
{
	int64		rows;			/* events consumed; 0: nothing written */
	bool		more;			/* max_batch_rows left (or may have left)
								 * committed events for the next trigger */
} SaTriggerResult;

extern SaTriggerResult sa_run_trigger(int32 query_id);
extern void sa_forbid_in_trigger(const char *what);

#endif							/* STREAMAGG_TRIGGER_H */
