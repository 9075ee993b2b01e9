/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The workers of a database: each runs the scheduled queries that are
 *	  due, each trigger in its own transaction.
 *
 * A database has a pool of workers (launcher.c); any worker may run any of
 * its queries, one trigger at a time.  The loop of each, as a state
 * machine per query in prose:
 *	  - a paused query is never due, a failing one not before its retry_at;
 *	    otherwise the due rule and the claim are schedule.c's: a worker runs
 *	    a due query only once it has claimed it, so no two workers run one
 *	    query and none runs a query another has just run;
 *	  - each trigger first records the batch it will process (its id and
 *	    snapshot) in a transaction of its own, so that whatever happens next
 *	    the retry reads the same events (docs/semantics.md §8).  Both transactions
 *	    only try the query's lock: if process() holds it, the worker moves
 *	    on and comes back;
 *	  - a trigger runs for at most streamagg.trigger_timeout: then it is
 *	    cancelled, and cancelled again every second while user code catches
 *	    the cancellation; a trigger still running after twice the timeout
 *	    ends its worker (the launcher starts another), and the next worker
 *	    to claim the query records that as its error;
 *	  - a trigger that fails is logged, with the query and database named,
 *	    its transaction aborted, and its error, failure count and retry time
 *	    (exponential backoff, at most 30 s) recorded in streamagg.checkpoint;
 *	  - worker 0 exits when the database has no scheduled query left, the
 *	    others when the pool is larger than the queries need.
 * Memory used by the loop is reset every round; nothing outlives a trigger
 * but the compiled queries and state caches (query_cache.c, shared_state.c).
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"
#include "catalog.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "init.h"
#include "launcher.h"
#include "query_cache.h"
#include "retention.h"
#include "schedule.h"
#include "trigger.h"
#include "worker.h"

/* Longest wait between two rounds, to notice new queries. */
#define MAX_NAP_MS 1000

/* How often the worker applies retention (retention.c). */
#define RETENTION_INTERVAL_MS 10000

/* While a trigger overruns streamagg.trigger_timeout, cancel it this often. */
#define CANCEL_REPEAT_MS 1000

static Oid	worker_dboid;
static int	worker_index;
static char *worker_dbname;		/* lives in TopMemoryContext */
static uint64 worker_generation;
static bool worker_idle_exit = false;

/*
 * How many times the running trigger's timeout fired: 1 cancels it, more
 * cancel it again; once the trigger has overrun by a whole timeout, the
 * worker is terminated instead.  Set by the timeout handler.
 */
static volatile sig_atomic_t trigger_overruns = 0;
static TimeoutId trigger_timeout_id;

static void
trigger_timeout_handler(void)
{
	int			repeats = Max(sa_trigger_timeout_ms / CANCEL_REPEAT_MS, 1);

	trigger_overruns++;
	if (trigger_overruns > repeats)
		ProcDiePending = true;
	else
		QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

static void
worker_exit(int code, Datum arg)
{
	/* a trigger that overran by a whole timeout is why we exit */
	sa_schedule_release_at_exit(trigger_overruns >
								Max(sa_trigger_timeout_ms / CANCEL_REPEAT_MS, 1));
	sa_worker_detach(worker_dboid, worker_index, worker_idle_exit,
					 worker_generation);
}

/*
 * The scheduled, unpaused queries of this database, or NIL when the
 * extension is not installed.  Runs its own transaction.
 */
static List *
load_schedule(MemoryContext cxt)
{
	List	   *queries = NIL;
	MemoryContext caller = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (worker_dbname == NULL)
		worker_dbname = MemoryContextStrdup(TopMemoryContext,
											get_database_name(MyDatabaseId));
	if (OidIsValid(get_extension_oid("streamagg", true)))
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		queries = sa_catalog_scheduled_queries();
		MemoryContextSwitchTo(old);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* commit leaves TopMemoryContext current: allocate nothing there */
	MemoryContextSwitchTo(caller);
	return queries;
}

/* What one step of the worker runs in its own transaction. */
typedef void (*TransactionStep) (void *arg);

/*
 * The worker's error boundary: run step(arg) in a transaction of its own.
 * On error the error is logged and the transaction aborted, and its message
 * is returned (in the caller's memory context); NULL means success.
 */
static char *
run_in_transaction(TransactionStep step, void *arg, const char *activity)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *message = NULL;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	PG_TRY();
	{
		step(arg);
		PopActiveSnapshot();
		CommitTransactionCommand();
		/* commit leaves TopMemoryContext current: allocate nothing there */
		MemoryContextSwitchTo(cxt);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		RESUME_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		message = edata->message;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	return message;
}

/* The state of one trigger run across its transactions. */
typedef struct TriggerRun
{
	SaScheduledQuery *sq;
	bool		busy;			/* process() holds the query's lock */
	bool		planned;
	bool		bounded;		/* the plan left events for later */
	const char *error;
	int64		rows;
} TriggerRun;

/*
 * Plan the next batch (sa_plan_batch).  Its commit need not wait for the
 * disk: if it is lost in a crash, so is every trace of the batch it planned.
 */
static void
plan_step(void *arg)
{
	TriggerRun *run = arg;

	(void) set_config_option("synchronous_commit", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	run->busy = !sa_try_lock_query(run->sq->query_id);
	/* dropped since the schedule was read: nothing to do */
	if (!run->busy && sa_query_exists(run->sq->query_id))
		run->planned = sa_plan_batch(run->sq, &run->bounded);
}

static void
trigger_step(void *arg)
{
	TriggerRun *run = arg;

	run->busy = !sa_try_lock_query(run->sq->query_id);
	if (!run->busy && sa_query_exists(run->sq->query_id))
		run->rows = sa_run_trigger(run->sq->query_id).rows;
}

/* Record a failed trigger (see the file header). */
static void
record_error_step(void *arg)
{
	TriggerRun *run = arg;

	sa_catalog_record_error(run->sq->query_id, run->error);
}

static void
record_error(TriggerRun *run)
{
	/* recompile before the next attempt; shared_state.c sees the abort itself */
	sa_forget_compiled(run->sq->query_id);
	(void) run_in_transaction(record_error_step, run,
							  "streamagg recording an error");
}

/* Every error of a trigger names its query and database in the log. */
static void
trigger_error_context(void *arg)
{
	SaScheduledQuery *sq = arg;

	errcontext("streamagg trigger of query \"%s\" in database \"%s\"",
			   sq->name, worker_dbname);
}

/*
 * Arm the trigger timeout (see the file header); cleared by
 * disarm_trigger_timeout, which also drops a cancellation that arrived
 * after the trigger ended.
 */
static void
arm_trigger_timeout(void)
{
	trigger_overruns = 0;
	if (sa_trigger_timeout_ms > 0)
		enable_timeout_every(trigger_timeout_id,
							 TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														 sa_trigger_timeout_ms),
							 CANCEL_REPEAT_MS);
}

static void
disarm_trigger_timeout(void)
{
	disable_timeout(trigger_timeout_id, false);
	if (trigger_overruns > 0)
		QueryCancelPending = false;
}

/*
 * Run one trigger of a claimed query: plan the batch, then process it,
 * each in its own transaction.  Returns the rows consumed, or -1 if it
 * failed (the failure is recorded); *more says that max_batch_rows left
 * committed events for the next trigger, *busy that the query's lock was
 * taken (by process(), reset_query()...), so that nothing ran.
 */
static int64
run_trigger(SaScheduledQuery *sq, bool *more, bool *busy)
{
	TriggerRun	run = {sq, false, false, false, NULL, 0};
	char	   *activity = psprintf("streamagg trigger of query %s", sq->name);
	ErrorContextCallback errcb;

	errcb.callback = trigger_error_context;
	errcb.arg = sq;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	sa_worker_set_busy(worker_dboid, worker_index, true);
	arm_trigger_timeout();

	run.error = run_in_transaction(plan_step, &run, activity);
	if (run.error == NULL && run.planned && !run.busy)
		run.error = run_in_transaction(trigger_step, &run, activity);

	disarm_trigger_timeout();
	error_context_stack = errcb.previous;
	if (run.error != NULL && trigger_overruns > 0)
	{
		run.error = psprintf("trigger ran longer than streamagg.trigger_timeout (%d ms) and was cancelled",
							 sa_trigger_timeout_ms);
		ereport(LOG,
				(errmsg("streamagg trigger of query \"%s\" in database \"%s\" was cancelled after streamagg.trigger_timeout (%d ms); it will be retried",
						sq->name, worker_dbname, sa_trigger_timeout_ms)));
	}
	if (run.error != NULL)
		record_error(&run);
	sa_worker_set_busy(worker_dboid, worker_index, false);
	*more = run.error == NULL && run.bounded && run.rows > 0;
	*busy = run.error == NULL && run.busy;
	return run.error == NULL ? run.rows : -1;
}

/*
 * The last trigger of a query that this worker just claimed ignored its
 * cancellation and ended its worker: record that as the query's error, so
 * that it is retried only after the backoff.
 */
static void
record_termination(SaScheduledQuery *sq)
{
	TriggerRun	run = {sq, false, false, false, NULL, 0};

	run.error = psprintf("trigger ran longer than twice streamagg.trigger_timeout (%d ms), ignoring cancellation, and its worker was terminated",
						 sa_trigger_timeout_ms);
	ereport(LOG,
			(errmsg("streamagg: a trigger of query \"%s\" in database \"%s\" was terminated with its worker; it will be retried",
					sq->name, worker_dbname)));
	record_error(&run);
}

static void
retention_step(void *arg)
{
	(void) sa_apply_retention();
}

void
sa_worker_main(Datum arg)
{
	MemoryContext roundcxt;
	TimestampTz last_retention = 0;

	worker_dboid = DatumGetObjectId(arg);
	memcpy(&worker_index, MyBgworkerEntry->bgw_extra, sizeof(worker_index));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	pqsignal(SIGINT, StatementCancelHandler);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(worker_dboid, InvalidOid, 0);
	trigger_timeout_id = RegisterTimeout(USER_TIMEOUT, trigger_timeout_handler);

	worker_generation = sa_worker_attach(worker_dboid, worker_index);
	/* before_shmem_exit: the shared tables (DSA) are still mapped then */
	before_shmem_exit(worker_exit, (Datum) 0);

	roundcxt = AllocSetContextCreate(TopMemoryContext, "streamagg worker round",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		List	   *queries;
		ListCell   *lc;
		long		nap_ms = MAX_NAP_MS;
		List	   *ids = NIL;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextReset(roundcxt);
		MemoryContextSwitchTo(roundcxt);

		queries = load_schedule(roundcxt);
		if (queries == NIL)
		{
			worker_idle_exit = worker_index == 0;
			proc_exit(0);
		}
		if (!sa_set_workers_wanted(worker_dboid, worker_index,
								   Min(list_length(queries),
									   sa_workers_per_database)))
			proc_exit(0);

		foreach(lc, queries)
		{
			SaScheduledQuery *sq = lfirst(lc);
			TimestampTz now = GetCurrentTimestamp();
			TimestampTz due_at;
			SaClaim		claim;

			CHECK_FOR_INTERRUPTS();
			ids = lappend_int(ids, sq->query_id);
			if (sq->waiting_retry)
				continue;
			claim = sa_schedule_claim(sq->query_id, sq->interval_usec,
									  sa_source_commit_count(worker_dboid,
															 sq->source),
									  now, &due_at);
			if (claim == SA_CLAIM_OK)
			{
				bool		more;
				bool		busy;
				int64		rows = run_trigger(sq, &more, &busy);

				/*
				 * A bounded batch left a backlog: run it again at once.  The
				 * lock was taken: try again next round, not after the interval.
				 */
				if (more || busy)
					sa_schedule_mark_due_now();
				if (more)
					nap_ms = 0;
				sa_schedule_release();
				/* with interval 0, come straight back while events flow */
				if (sq->interval_usec == 0 && rows > 0)
					nap_ms = 0;
			}
			else if (claim == SA_CLAIM_TERMINATED)
			{
				record_termination(sq);
				sa_schedule_release();
			}
			nap_ms = Min(nap_ms,
						 Max((due_at - GetCurrentTimestamp()) / 1000, 0));
		}
		/* compiled queries of dropped or paused queries go */
		sa_forget_compiled_except(ids);

		if (worker_index == 0 &&
			TimestampDifferenceExceeds(last_retention, GetCurrentTimestamp(),
									   RETENTION_INTERVAL_MS))
		{
			/* errors are logged only: retention is retried next time */
			(void) run_in_transaction(retention_step, NULL,
									  "streamagg retention");
			last_retention = GetCurrentTimestamp();
		}

		if (nap_ms > 0)
		{
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 nap_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}
