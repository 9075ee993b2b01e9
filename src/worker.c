/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database worker: runs each scheduled query on its
 *	  trigger_interval, each trigger in its own transaction.
 *
 * The loop (a state machine per query, in prose):
 *	  - a query is due when its interval has passed since its last run, or,
 *	    with trigger_interval '0', when producers committed into its source
 *	    since its last run (their commit sets our latch and moves the
 *	    source's commit counter), and at least every second as a safety net;
 *	  - a paused query is never due; a failing one not before its retry_at;
 *	  - each trigger first records the batch it will process (its id and
 *	    snapshot) in a transaction of its own, so that whatever happens next
 *	    the retry reads the same events (DESIGN.md 3.8);
 *	  - a trigger that fails is logged, its transaction aborted, and its
 *	    error, failure count and retry time (exponential backoff, at most
 *	    30 s) recorded in streamagg.checkpoint;
 *	  - when the database has no scheduled query left, the worker exits.
 * Memory used by the loop is reset every round; nothing outlives a trigger
 * but the compiled queries and state caches (trigger.c, state.c).
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
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
#include "utils/timestamp.h"

/* With trigger_interval '0', poll at least this often. */
#define ZERO_INTERVAL_POLL_MS 1000

/* Longest wait between two rounds, to notice new queries. */
#define MAX_NAP_MS 1000

/* How often the worker applies retention (retention.c). */
#define RETENTION_INTERVAL_MS 10000

/* One scheduled query as the worker sees it. */
typedef struct ScheduledQuery
{
	int32		query_id;
	char	   *name;
	Oid			source;
	int64		interval_usec;
	bool		due_to_retry;	/* retry_at has passed */
	bool		waiting_retry;	/* retry_at is in the future */
	TimestampTz retry_at;
} ScheduledQuery;

/* When each query last ran, by query id: lives for the worker's life. */
typedef struct LastRun
{
	int32		query_id;
	TimestampTz at;
	uint64		source_commits; /* count seen by the last run */
} LastRun;

static Oid	worker_dboid;
static uint64 worker_generation;
static bool worker_idle_exit = false;

static void
worker_detach(int code, Datum arg)
{
	sa_worker_detach(worker_dboid, worker_idle_exit, worker_generation);
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
	if (OidIsValid(get_extension_oid("streamagg", true)))
	{
		SPI_connect();
		SPI_execute("SELECT d.query_id, d.name, "
					"extract(epoch FROM d.trigger_interval)::float8 * 1e6, "
					"c.retry_at, d.source FROM streamagg.query_def d "
					"JOIN streamagg.checkpoint c USING (query_id) "
					"WHERE d.trigger_interval IS NOT NULL AND NOT d.paused "
					"ORDER BY d.query_id", true, 0);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			MemoryContext old = MemoryContextSwitchTo(cxt);
			ScheduledQuery *sq = palloc0(sizeof(ScheduledQuery));
			bool		isnull;
			Datum		retry;

			sq->query_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
			sq->name = SPI_getvalue(tuple, desc, 2);
			sq->interval_usec = (int64) DatumGetFloat8(SPI_getbinval(tuple, desc, 3, &isnull));
			sq->source = DatumGetObjectId(SPI_getbinval(tuple, desc, 5, &isnull));
			retry = SPI_getbinval(tuple, desc, 4, &isnull);
			if (!isnull)
			{
				sq->retry_at = DatumGetTimestampTz(retry);
				sq->waiting_retry = sq->retry_at > GetCurrentTimestamp();
			}
			queries = lappend(queries, sq);
			MemoryContextSwitchTo(old);
		}
		SPI_finish();
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

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
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
	ScheduledQuery *sq;
	bool		planned;
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
	run->planned = sa_plan_batch(run->sq->query_id);
}

static void
trigger_step(void *arg)
{
	TriggerRun *run = arg;

	run->rows = sa_run_trigger(run->sq->query_id).rows;
}

/* Record a failed trigger (see the file header). */
static void
record_error_step(void *arg)
{
	TriggerRun *run = arg;
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		args[2];

	args[0] = Int32GetDatum(run->sq->query_id);
	args[1] = CStringGetTextDatum(run->error);
	SPI_connect();
	SPI_execute_with_args("UPDATE streamagg.checkpoint SET last_error = $2, "
						  "last_error_at = pg_catalog.now(), failures = failures + 1, "
						  "retry_at = pg_catalog.now() + LEAST(30, 2 ^ LEAST(failures, 5)) "
						  "* interval '1 second' WHERE query_id = $1",
						  2, types, args, NULL, false, 0);
	SPI_finish();
}

/*
 * Run one trigger: plan the batch, then process it, each in its own
 * transaction.  Returns the rows consumed, or -1 if it failed.
 */
static int64
run_trigger(ScheduledQuery *sq)
{
	TriggerRun	run = {sq, false, NULL, 0};
	char	   *activity = psprintf("streamagg trigger of query %s", sq->name);

	run.error = run_in_transaction(plan_step, &run, activity);
	if (run.error == NULL && run.planned)
		run.error = run_in_transaction(trigger_step, &run, activity);
	if (run.error == NULL)
		return run.rows;

	/* recompile before the next attempt; state.c sees the abort itself */
	sa_forget_compiled(sq->query_id);
	(void) run_in_transaction(record_error_step, &run,
							  "streamagg recording an error");
	return -1;
}

static void
retention_step(void *arg)
{
	(void) sa_apply_retention();
}

static LastRun *
last_run_of(HTAB *runs, int32 query_id)
{
	bool		found;
	LastRun    *run = hash_search(runs, &query_id, HASH_ENTER, &found);

	if (!found)
	{
		run->at = 0;
		run->source_commits = 0;
	}
	return run;
}

/*
 * Drop what the worker keeps for queries no longer scheduled (dropped or
 * paused), so that nothing accumulates over months.
 */
static void
forget_unscheduled(List *queries, HTAB *runs)
{
	List	   *ids = NIL;
	ListCell   *lc;
	HASH_SEQ_STATUS seq;
	LastRun    *run;

	foreach(lc, queries)
		ids = lappend_int(ids, ((ScheduledQuery *) lfirst(lc))->query_id);
	sa_forget_compiled_except(ids);
	hash_seq_init(&seq, runs);
	while ((run = hash_seq_search(&seq)) != NULL)
		if (!list_member_int(ids, run->query_id))
			hash_search(runs, &run->query_id, HASH_REMOVE, NULL);
	list_free(ids);
}

void
sa_worker_main(Datum arg)
{
	MemoryContext roundcxt;
	HTAB	   *runs;
	HASHCTL		ctl;
	TimestampTz last_retention = 0;

	worker_dboid = DatumGetObjectId(arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	pqsignal(SIGINT, StatementCancelHandler);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(worker_dboid, InvalidOid, 0);

	worker_generation = sa_worker_attach(worker_dboid);
	before_shmem_exit(worker_detach, (Datum) 0);

	roundcxt = AllocSetContextCreate(TopMemoryContext, "streamagg worker round",
									 ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(LastRun);
	runs = hash_create("streamagg last runs", 16, &ctl, HASH_ELEM | HASH_BLOBS);

	for (;;)
	{
		List	   *queries;
		ListCell   *lc;
		TimestampTz now;
		long		nap_ms = MAX_NAP_MS;

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
			worker_idle_exit = true;
			proc_exit(0);
		}
		forget_unscheduled(queries, runs);

		foreach(lc, queries)
		{
			ScheduledQuery *sq = lfirst(lc);
			LastRun    *run = last_run_of(runs, sq->query_id);
			int64		wait_usec;
			uint64		commits;
			bool		due;

			CHECK_FOR_INTERRUPTS();
			if (sq->waiting_retry)
				continue;
			now = GetCurrentTimestamp();
			commits = sa_source_commit_count(worker_dboid, sq->source);
			if (sq->interval_usec == 0)
				due = commits != run->source_commits ||
					now - run->at >= ZERO_INTERVAL_POLL_MS * 1000L;
			else
				due = now - run->at >= sq->interval_usec;
			if (due)
			{
				int64		rows;

				/* commits after this read are seen by the next round */
				run->source_commits = commits;
				run->at = now;
				rows = run_trigger(sq);
				/* with interval 0, come straight back while events flow */
				if (sq->interval_usec == 0 && rows > 0)
					nap_ms = 0;
			}
			wait_usec = (sq->interval_usec == 0 ? ZERO_INTERVAL_POLL_MS * 1000L :
						 sq->interval_usec) - (GetCurrentTimestamp() - run->at);
			nap_ms = Min(nap_ms, Max(wait_usec / 1000, 0));
		}

		if (TimestampDifferenceExceeds(last_retention, GetCurrentTimestamp(),
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
