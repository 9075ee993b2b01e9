/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database worker: runs each scheduled query on its
 *	  trigger_interval, each trigger in its own transaction.
 *
 * The loop (a state machine per query, in prose):
 *	  - a query is due when its interval has passed since its last run, or,
 *	    with trigger_interval '0', when a producer's commit set our latch (and
 *	    at least every second, as a safety net);
 *	  - a paused query is never due; a failing one not before its retry_at;
 *	  - a trigger that fails is logged, its transaction aborted, and its
 *	    error, failure count, retry time (exponential backoff, at most 30 s)
 *	    and planned batch recorded in streamagg.checkpoint, so that the retry
 *	    reads the same events (DESIGN.md 3.8);
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
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* With trigger_interval '0', poll at least this often. */
#define ZERO_INTERVAL_POLL_MS 1000

/* Longest wait between two rounds, to notice new queries. */
#define MAX_NAP_MS 1000

/* One scheduled query as the worker sees it. */
typedef struct ScheduledQuery
{
	int32		query_id;
	char	   *name;
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

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (OidIsValid(get_extension_oid("streamagg", true)))
	{
		SPI_connect();
		SPI_execute("SELECT d.query_id, d.name, "
					"extract(epoch FROM d.trigger_interval)::float8 * 1e6, "
					"c.retry_at FROM streamagg.query_def d "
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
	return queries;
}

/* Record a failed trigger (see the file header), in its own transaction. */
static void
record_error(int32 query_id, const char *message)
{
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		Oid			types[4] = {INT4OID, TEXTOID, INT8OID, PG_SNAPSHOTOID};
		Datum		args[4];
		char		nulls[4] = {' ', ' ', ' ', ' '};
		SaPlannedBatch plan = sa_last_planned_batch();

		args[0] = Int32GetDatum(query_id);
		args[1] = CStringGetTextDatum(message);
		args[2] = Int64GetDatum(plan.batch_id);
		args[3] = plan.snapshot;
		if (plan.query_id != query_id || plan.snapshot == (Datum) 0)
			nulls[2] = nulls[3] = 'n';
		SPI_connect();
		SPI_execute_with_args("UPDATE streamagg.checkpoint SET last_error = $2, "
							  "last_error_at = pg_catalog.now(), failures = failures + 1, "
							  "retry_at = pg_catalog.now() + LEAST(30, 2 ^ LEAST(failures, 5)) "
							  "* interval '1 second', "
							  "planned_batch_id = CASE WHEN planned_snapshot IS NULL THEN $3 ELSE planned_batch_id END, "
							  "planned_snapshot = COALESCE(planned_snapshot, $4) "
							  "WHERE query_id = $1",
							  4, types, args, nulls, false, 0);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
}

/*
 * Run one trigger in its own transaction; returns the rows consumed, or -1
 * if it failed.  This is the worker's error boundary.
 */
static int64
run_trigger(ScheduledQuery *sq)
{
	MemoryContext cxt = CurrentMemoryContext;
	int64		rows = -1;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, psprintf("streamagg trigger of query %s",
												   sq->name));
	PG_TRY();
	{
		SaTriggerResult result = sa_run_trigger(sq->query_id);

		PopActiveSnapshot();
		CommitTransactionCommand();
		rows = result.rows;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		/* recompile before the next attempt; state.c sees the abort */
		sa_forget_compiled(sq->query_id);
		record_error(sq->query_id, edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	return rows;
}

static LastRun *
last_run_of(HTAB *runs, int32 query_id)
{
	bool		found;
	LastRun    *run = hash_search(runs, &query_id, HASH_ENTER, &found);

	if (!found)
		run->at = 0;
	return run;
}

void
sa_worker_main(Datum arg)
{
	MemoryContext roundcxt;
	HTAB	   *runs;
	HASHCTL		ctl;
	bool		woken = true;

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
		int			events;

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

		foreach(lc, queries)
		{
			ScheduledQuery *sq = lfirst(lc);
			LastRun    *run = last_run_of(runs, sq->query_id);
			int64		wait_usec;
			bool		due;

			CHECK_FOR_INTERRUPTS();
			if (sq->waiting_retry)
				continue;
			now = GetCurrentTimestamp();
			if (sq->interval_usec == 0)
				due = woken || now - run->at >= ZERO_INTERVAL_POLL_MS * 1000L;
			else
				due = now - run->at >= sq->interval_usec;
			if (due)
			{
				int64		rows;

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

		woken = false;
		if (nap_ms > 0)
		{
			events = WaitLatch(MyLatch,
							   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   nap_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			woken = (events & WL_LATCH_SET) != 0;
		}
		else
			woken = true;
	}
}
