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

#include "state.h"

/* A row of the result table, finished: window, key, final values. */
typedef struct SaOutputRow
{
	int64		window_start;
	int64		window_end;
	Datum	   *keyvals;
	bool	   *keynulls;
	Datum	   *values;			/* one per aggregate; NULL for a deletion */
	bool	   *nulls;
	bool		fresh;			/* its group was not in the state before */
} SaOutputRow;

/* The output of one trigger. */
typedef struct SaOutput
{
	SaOutputRow *rows;			/* to write to the sink */
	int			nrows;
	SaOutputRow *deleted;		/* to delete from the sink (windows and keys) */
	int			ndeleted;
} SaOutput;

extern List *sa_close_windows(SaStateStore *store, int64 watermark);
extern void sa_emit_output(SaStateStore *store, List *closed,
						   SaOutput *output);

#endif							/* STREAMAGG_EMIT_H */
