/*-------------------------------------------------------------------------
 *
 * reset.c
 *	  reset_query: a query starts over from what its source retains
 *	  (docs/operations.md, "Resetting a query").
 *
 * In the caller's transaction, holding the query's lock (so that no
 * trigger of it runs meanwhile, and none starts before the commit):
 *	  - the checkpoint forgets the consumed snapshot, the plan, the
 *	    watermark and the greatest event time, but keeps last_batch_id:
 *	    batch ids are never reused, so sinks guarded by batch id keep
 *	    accepting what the next batches write;
 *	  - the durable state (streamagg.state_log) is deleted, and the copy in
 *	    shared memory dropped (sa_state_forget): the next trigger finds no
 *	    copy and replays the log, which is empty.  The trust protocol alone
 *	    would not see the change, since the last batch id stays the same;
 *	  - a table sink is emptied, as the query's owner (the rows are the
 *	    query's: a sink is never shared), so that the sink ends as a new
 *	    query over the same events would leave it.  A function sink is
 *	    not touched: its next calls carry the new batch ids.
 * Everything is transactional but the shared copy: if the reset rolls
 * back, the next trigger rebuilds the copy from the restored log.  A crash
 * empties shared memory anyway.  A scheduled query is made due at once
 * (schedule.c), so that reprocessing starts without waiting for its
 * trigger_interval.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "miscadmin.h"
#include "utils/lsyscache.h"

#include "catalog.h"
#include "launcher.h"
#include "schedule.h"
#include "definition.h"
#include "reset.h"
#include "security.h"
#include "shared_state.h"
#include "source.h"

/*
 * Reset the query "def" in the current transaction.  The caller checked
 * that the current user has the owner's privileges.
 */
void
sa_reset_query(const SaDefinition *def)
{
	sa_lock_query(def->query_id);
	sa_catalog_reset_query(def->query_id);
	if (OidIsValid(def->sink))
	{
		SaRoleSave	owner;
		char	   *sink = sa_qualified_relation(def->sink, "sink", def->name);

		sa_user_code_begin(def->owner, &owner);
		sa_run_sql(psprintf("DELETE FROM %s", sink));
		sa_user_code_end(&owner);
	}
	sa_state_forget(def->query_id);
	sa_state_forget(-def->query_id);	/* its dedup keys, if any */
	/* a scheduled query starts reprocessing now, not after its interval */
	if (def->has_trigger_interval)
	{
		sa_schedule_make_due(def->query_id);
		sa_wake_database_worker(MyDatabaseId);
	}
}
