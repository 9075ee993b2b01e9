/*-------------------------------------------------------------------------
 *
 * subtransaction.c
 *	  Running a step that may fail without failing the caller.
 *
 * A step whose error the caller wants to look at, and perhaps survive,
 * runs in an internal subtransaction, as PL/pgSQL runs a block with an
 * EXCEPTION clause: an error rolls back what the step did (its rows,
 * locks and buffers), and leaves the caller's transaction as it was.
 * The caller then rethrows the error or handles it.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/xact.h"
#include "utils/resowner.h"

#include "subtransaction.h"

/*
 * Run body(arg) in an internal subtransaction.  True when it committed.
 * On an error the subtransaction is rolled back and false returned, with
 * the error, copied into the caller's memory context, in *error: the
 * caller rethrows it (ReThrowError) or frees it.  The caller's memory
 * context and resource owner are current again either way.
 */
bool
sa_try_in_subtransaction(void (*body) (void *arg), void *arg,
						 ErrorData **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		committed = true;

	*error = NULL;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		body(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		*error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		committed = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return committed;
}
