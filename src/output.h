/*-------------------------------------------------------------------------
 *
 * output.h
 *	  The output of a trigger as emit.c hands it to the sink and the
 *	  notification: finished rows, nothing of the state.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_OUTPUT_H
#define STREAMAGG_OUTPUT_H

#include "streamagg.h"

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
	bool		delivered;		/* nrows rows were written to the sink by
								 * the batch read itself (rows is NULL) */
} SaOutput;

#endif							/* STREAMAGG_OUTPUT_H */
