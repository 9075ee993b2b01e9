/*-------------------------------------------------------------------------
 *
 * inject.h
 *	  Test-only fault injection (inject.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_INJECT_H
#define STREAMAGG_INJECT_H

#include "streamagg.h"

extern Size sa_inject_shmem_size(void);
extern void sa_inject_shmem_init(void);
extern void sa_inject_fault(int32 query_id, const char *point);

#endif							/* STREAMAGG_INJECT_H */
