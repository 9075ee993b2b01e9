/*-------------------------------------------------------------------------
 *
 * inject.c
 *	  Test-only fault injection: make the next trigger of a query fail at a
 *	  named point, so that tests can show that a failure at any phase leaves
 *	  nothing behind and that the retry processes the same batch.
 *
 * streamagg.fail_next_trigger(name, phase) arms a one-shot fault in shared
 * memory (so it reaches the worker); the trigger that passes the named
 * point disarms it and raises an error.  Superuser only.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "miscadmin.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "catalog.h"
#include "init.h"
#include "inject.h"

#define MAX_ARMED_FAULTS 16

/* The points of a trigger where a fault can be injected, in order. */
static const char *const fault_points[] = {
	"after_read",				/* batch read and folded into live states */
	"after_state",				/* shared state updated */
	"during_sink",				/* sink rows written */
	"before_commit",			/* checkpoint and progress recorded */
	NULL
};

typedef struct ArmedFault
{
	int32		query_id;		/* 0: free */
	int			point;
} ArmedFault;

typedef struct FaultShmem
{
	slock_t		mutex;
	ArmedFault	faults[MAX_ARMED_FAULTS];
} FaultShmem;

static FaultShmem *fault_shmem = NULL;

Size
sa_inject_shmem_size(void)
{
	return MAXALIGN(sizeof(FaultShmem));
}

void
sa_inject_shmem_init(void)
{
	bool		found;

	fault_shmem = ShmemInitStruct("streamagg faults", sa_inject_shmem_size(),
								  &found);
	if (!found)
	{
		memset(fault_shmem, 0, sizeof(FaultShmem));
		SpinLockInit(&fault_shmem->mutex);
	}
}

static int
fault_point_number(const char *name)
{
	for (int i = 0; fault_points[i]; i++)
		if (strcmp(fault_points[i], name) == 0)
			return i;
	return -1;
}

/* Raise the armed fault of this query at this point, if any (one shot). */
void
sa_inject_fault(int32 query_id, const char *point)
{
	int			number = fault_point_number(point);
	bool		fire = false;

	Assert(number >= 0);
	SpinLockAcquire(&fault_shmem->mutex);
	for (int i = 0; i < MAX_ARMED_FAULTS; i++)
		if (fault_shmem->faults[i].query_id == query_id &&
			fault_shmem->faults[i].point == number)
		{
			fault_shmem->faults[i].query_id = 0;
			fire = true;
			break;
		}
	SpinLockRelease(&fault_shmem->mutex);
	if (fire)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("streamagg: injected fault at %s", point)));
}

PG_FUNCTION_INFO_V1(sa_fail_next_trigger);

/* streamagg.fail_next_trigger(name, phase) */
Datum
sa_fail_next_trigger(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *point = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			number = fault_point_number(point);
	SaDefinition def;
	bool		armed = false;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers may inject faults")));
	sa_require_preloaded();
	if (number < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown fault point \"%s\"", point),
				 errhint("Use after_read, after_state, during_sink or before_commit.")));
	sa_load_definition_by_name(name, &def, false);
	SpinLockAcquire(&fault_shmem->mutex);
	for (int i = 0; i < MAX_ARMED_FAULTS && !armed; i++)
		if (fault_shmem->faults[i].query_id == 0)
		{
			fault_shmem->faults[i].query_id = def.query_id;
			fault_shmem->faults[i].point = number;
			armed = true;
		}
	SpinLockRelease(&fault_shmem->mutex);
	if (!armed)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many armed faults")));
	PG_RETURN_VOID();
}
