/*-------------------------------------------------------------------------
 *
 * batch_limit.h
 *	  max_batch_rows: where a bounded batch ends (batch_limit.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_BATCH_LIMIT_H
#define STREAMAGG_BATCH_LIMIT_H

#include "streamagg.h"

#include "catalog.h"

extern int64 sa_max_batch_rows(const SaDefinition *def);
extern Datum sa_next_batch_snapshot(SaQuery *q, const SaCheckpoint *cp,
									bool *bounded);

#endif							/* STREAMAGG_BATCH_LIMIT_H */
