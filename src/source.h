/*-------------------------------------------------------------------------
 *
 * source.h
 *	  What streamagg adds to a source, and its rules (source.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_SOURCE_H
#define STREAMAGG_SOURCE_H

#include "streamagg.h"

extern void sa_run_sql(const char *sql);
extern void sa_check_source(Oid source);
extern void sa_prepare_source(Oid source);
extern void sa_release_source(Oid source);
extern void sa_note_source_insert(Oid source);
extern uint64 sa_take_sources_touched(void);
extern void sa_set_deleting_consumed(bool deleting);
extern void sa_check_attach_partition(Oid parent, Oid partition);

#endif							/* STREAMAGG_SOURCE_H */
