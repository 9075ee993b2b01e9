/*-------------------------------------------------------------------------
 *
 * open_windows.c
 *	  open_windows(name, row_type): the groups a query holds in its state,
 *	  with their values finalized as if they were emitted now, as of its
 *	  last committed trigger (docs/output-modes.md, "Seeing open windows").
 *
 * The state is read from its durable log (state_log.c), not from shared
 * memory: the shared copy belongs to whoever holds the query's lock, and a
 * running trigger changes it in place.  The log is read with the caller's
 * snapshot, in which the last committed trigger wrote its delta (or
 * snapshot) together with its checkpoint, so the result is exactly the
 * state after that trigger, however long the current one runs, and the
 * call never waits for it or holds it back.  The price is a replay of the
 * log per call, O(state), into a private DSA area that goes with the call
 * (on error too: the area is owned by the transaction's resource owner).
 *
 * Finalizing runs aggregates' final functions and the key types' code,
 * so the whole call runs as the query's owner (security.c); the caller
 * needs the owner's privileges, as for process().  The rows come out in
 * the caller's row type, which must have the sink's columns (as the row
 * type of a function sink must).
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/dsa.h"
#include "utils/lsyscache.h"

#include "catalog.h"
#include "emit.h"
#include "group_store.h"
#include "open_windows.h"
#include "query_cache.h"
#include "security.h"
#include "sink.h"
#include "state.h"
#include "state_log.h"
#include "working_set.h"

/* The LWLock tranche of this backend's private areas, once registered. */
static int	private_tranche = 0;

/*
 * The state of q after its last committed trigger, rebuilt from its log
 * in the private area "area", in the working set "ws".
 */
static SaStateStore *
state_from_log(SaQuery *q, SaWorkingSet *ws, dsa_area *area)
{
	SaEntryLayout *layout = sa_entry_layout(q);
	SaStateStore *store = palloc0(sizeof(SaStateStore));

	store->q = q;
	store->work = ws;
	store->groups = sa_group_store_open(q, area,
										sa_group_store_create(area, layout),
										layout);
	sa_state_log_replay(store);
	Assert(store->groups->ngroups == (int64) sa_gs_count(store->groups));
	return store;
}

/*
 * Put the open windows of query "def" into "out" as tuples of "desc".
 * The caller has checked the privileges.
 */
void
sa_open_windows(const SaDefinition *def, TupleDesc desc, Tuplestorestate *out)
{
	SaQuery    *q = sa_get_compiled(def->query_id);
	SaCheckpoint cp;
	SaRoleSave	owner;
	SaWorkingSet *ws;
	SaStateStore *store;
	SaOutput	output;
	dsa_area   *area;

	(void) sa_catalog_read_checkpoint(q->def.query_id, &cp, false);
	/* a state stored for other types cannot be read (trigger.c says why) */
	if (cp.state_signature != NULL && cp.has_batch &&
		strcmp(cp.state_signature, q->state_signature) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the types of streaming query \"%s\" changed since its state was stored",
						q->def.name),
				 errdetail("The state holds %s; the query now computes %s.",
						   cp.state_signature, q->state_signature)));

	if (private_tranche == 0)
	{
		private_tranche = LWLockNewTrancheId();
		LWLockRegisterTranche(private_tranche, "streamagg open_windows");
	}
	sa_user_code_begin(q->def.owner, &owner);
	ws = sa_working_set_create(q);
	area = dsa_create(private_tranche);
	store = state_from_log(q, ws, area);
	sa_result_rows(store, &output);
	sa_rows_to_tuplestore(q, output.rows, output.nrows, desc,
						  psprintf("row type %s", format_type_be(desc->tdtypeid)),
						  out);
	dsa_detach(area);
	sa_working_set_destroy(ws);
	sa_user_code_end(&owner);
}
