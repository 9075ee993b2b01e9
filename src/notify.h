/*-------------------------------------------------------------------------
 *
 * notify.h
 *	  The notification a trigger with output sends (notify.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_NOTIFY_H
#define STREAMAGG_NOTIFY_H

#include "streamagg.h"

#include "output.h"

extern void sa_check_notify_channel(const SaDefinition *def);
extern void sa_notify_output(SaQuery *q, int64 batch_id,
							 const SaOutput *output, bool has_watermark,
							 int64 watermark);

#endif							/* STREAMAGG_NOTIFY_H */
