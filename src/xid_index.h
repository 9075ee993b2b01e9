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

#include "nodes/pathnodes.h"

extern void sa_summarize_source_ranges(Oid source);
extern void sa_xid_index_subxact_abort(void);

/* xid_index_cost.c */
extern void sa_xid_brin_costestimate(PlannerInfo *root, IndexPath *path,
									 double loop_count, Cost *indexStartupCost,
									 Cost *indexTotalCost,
									 Selectivity *indexSelectivity,
									 double *indexCorrelation,
									 double *indexPages);

#endif							/* STREAMAGG_XID_INDEX_H */
