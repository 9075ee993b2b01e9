/*-------------------------------------------------------------------------
 *
 * shared_table.h
 *	  A dshash table in a DSA area of its own, shared by every backend
 *	  (shared_table.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_SHARED_TABLE_H
#define STREAMAGG_SHARED_TABLE_H

#include "lib/dshash.h"
#include "storage/lwlock.h"
#include "utils/dsa.h"

/* The fixed part, in the main shared memory of the module that owns it. */
typedef struct SaSharedTableShmem
{
	LWLock		lock;			/* serialises the creation of the two below */
	int			tranche_id;
	dsa_handle	area;
	dshash_table_handle table;
} SaSharedTableShmem;

extern void sa_shared_table_shmem_init(SaSharedTableShmem *shm);
extern void sa_shared_table_attach(SaSharedTableShmem *shm,
								   const char *tranche_name,
								   dshash_parameters *params,
								   dsa_area **area, dshash_table **table);

#endif							/* STREAMAGG_SHARED_TABLE_H */
