/*-------------------------------------------------------------------------
 *
 * monitor.h
 *	  A query's unconsumed events, for monitoring (monitor.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_MONITOR_H
#define STREAMAGG_MONITOR_H

#include "streamagg.h"

extern int64 sa_unconsumed_events(SaQuery *q, TimestampTz *oldest,
								  bool *has_oldest);

#endif							/* STREAMAGG_MONITOR_H */
