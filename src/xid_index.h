/*-------------------------------------------------------------------------
 *
 * xid_index.h
 *	  The index on a source's transaction ids (xid_index.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_XID_INDEX_H
#define STREAMAGG_XID_INDEX_H

#include "streamagg.h"

extern void sa_summarize_source_ranges(Oid source);
extern void sa_xid_index_subxact_abort(void);

#endif							/* STREAMAGG_XID_INDEX_H */
