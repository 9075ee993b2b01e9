/*-------------------------------------------------------------------------
 *
 * query_cache.h
 *	  This backend's compiled queries (query_cache.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_QUERY_CACHE_H
#define STREAMAGG_QUERY_CACHE_H

#include "streamagg.h"

extern SaQuery *sa_get_compiled(int32 query_id);
extern void sa_forget_compiled(int32 query_id);
extern void sa_forget_compiled_except(List *query_ids);

#endif							/* STREAMAGG_QUERY_CACHE_H */
