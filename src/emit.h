/*-------------------------------------------------------------------------
 *
 * emit.h
 *	  What a trigger closes and what it emits: the rows it hands to the
 *	  sink and the notification, with their final values (emit.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_EMIT_H
#define STREAMAGG_EMIT_H

#include "streamagg.h"

#include "output.h"
#include "state.h"

extern List *sa_close_windows(SaStateStore *store, int64 watermark);
extern void sa_result_rows(SaStateStore *store, SaOutput *output);
extern void sa_emit_output(SaStateStore *store, List *closed,
						   SaOutput *output);

#endif							/* STREAMAGG_EMIT_H */
