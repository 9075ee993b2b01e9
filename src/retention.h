/*-------------------------------------------------------------------------
 *
 * retention.h
 *	  Deleting consumed events from sources (retention.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_RETENTION_H
#define STREAMAGG_RETENTION_H

#include "streamagg.h"

extern int64 sa_apply_retention(void);

#endif							/* STREAMAGG_RETENTION_H */
