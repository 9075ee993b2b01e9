/*-------------------------------------------------------------------------
 *
 * shared_table.c
 *	  A dshash table in a DSA area of its own, created by the first backend
 *	  that needs it and attached lazily by every other one for the rest of
 *	  its life, as pgstat_shmem.c shares its hash table.
 *
 * The fixed part (SaSharedTableShmem) lives in the main shared memory of
 * the module that owns the table (shared_state.c, schedule.c), initialised at
 * startup; after a crash restart it starts empty, and so does the table.
 * An area of its own lets each module bound its memory (or not) alone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/dsm_impl.h"
#include "utils/memutils.h"

#include "shared_table.h"

/* Called once, by the shared memory startup hook, for a fresh struct. */
void
sa_shared_table_shmem_init(SaSharedTableShmem *shm)
{
	shm->tranche_id = LWLockNewTrancheId();
	LWLockInitialize(&shm->lock, shm->tranche_id);
	shm->area = DSM_HANDLE_INVALID;
	shm->table = InvalidDsaPointer;
}

/*
 * Attach this backend to the table, creating the area and the table on
 * first use; *area and *table stay valid for the backend's life.
 */
void
sa_shared_table_attach(SaSharedTableShmem *shm, const char *tranche_name,
					   dshash_parameters *params, dsa_area **area,
					   dshash_table **table)
{
	MemoryContext old;

	if (*table != NULL)
		return;
	old = MemoryContextSwitchTo(TopMemoryContext);
	LWLockRegisterTranche(shm->tranche_id, tranche_name);
	params->tranche_id = shm->tranche_id;
	LWLockAcquire(&shm->lock, LW_EXCLUSIVE);
	if (shm->area == DSM_HANDLE_INVALID)
	{
		*area = dsa_create(shm->tranche_id);
		dsa_pin(*area);
		dsa_pin_mapping(*area);
		*table = dshash_create(*area, params, NULL);
		shm->table = dshash_get_hash_table_handle(*table);
		shm->area = dsa_get_handle(*area);
	}
	else
	{
		*area = dsa_attach(shm->area);
		dsa_pin_mapping(*area);
		*table = dshash_attach(*area, params, shm->table, NULL);
	}
	LWLockRelease(&shm->lock);
	MemoryContextSwitchTo(old);
}
