/*-------------------------------------------------------------------------
 *
 * late_sink.h
 *	  The table that keeps the rows dropped as late (late_sink.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_LATE_SINK_H
#define STREAMAGG_LATE_SINK_H

#include "streamagg.h"

typedef struct SaLateRows SaLateRows;

extern List *sa_late_source_columns(Oid source);
extern Oid	sa_prepare_late_sink(const char *name, const SaQuery *q);
extern void sa_check_late_sink_statement(SaQuery *q);
extern void sa_late_sink_release(SaQuery *q);
extern SaLateRows *sa_late_rows_create(SaQuery *q, MemoryContext parent);
extern void sa_late_rows_add(SaLateRows *late, const SaQuery *q,
							 Datum *values, bool *nulls);
extern int64 sa_late_rows_write(SaQuery *q, SaLateRows *late, int64 batch_id,
								int64 watermark);

#endif							/* STREAMAGG_LATE_SINK_H */
