/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher and the shared registry of per-database workers.
 *
 * Shared memory holds one slot per database that wants a worker.  Anyone
 * may ask for a worker (create_query, resume) by marking the slot wanted
 * and setting the launcher's latch; the launcher starts a dynamic
 * background worker for each wanted slot that has none.  At start (also
 * after a crash restart) the launcher marks every connectable database
 * wanted: a worker that finds no scheduled query there exits and unmarks
 * its slot, unless someone asked again meanwhile (request_generation).
 *
 * Producers wake a database's worker through its latch (init.c), and DROP
 * DATABASE first stops the worker so that it does not block the drop.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "port/atomics.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "init.h"
#include "launcher.h"
#include "worker.h"

#define SA_MAX_DATABASES 64

/* Restart a worker that exited with an error after this long. */
#define WORKER_RESTART_DELAY_MS 5000

/* How often the launcher looks for databases it has never seen. */
#define NEW_DATABASE_SCAN_MS 10000

/*
 * Commits into sources are counted per bucket of source OIDs, so that with
 * trigger_interval '0' the worker runs only the queries whose source moved.
 */
#define SA_SOURCE_BUCKETS 64

/* One worker of a database's pool. */
typedef struct SaWorkerSlot
{
	pid_t		pid;			/* 0: none attached */
	int			procno;			/* for its latch; -1: none */
	bool		busy;			/* running a trigger */
	bool		exited_idle;	/* its last worker found nothing to do */
} SaWorkerSlot;

typedef struct SaDatabaseSlot
{
	pg_atomic_uint64 source_commits[SA_SOURCE_BUCKETS];
	Oid			dboid;			/* InvalidOid: slot free */
	bool		wanted;			/* should have workers */
	uint64		request_generation; /* bumped by each request */
	int			workers_wanted; /* size of its pool, 1 .. max */
	SaWorkerSlot workers[SA_MAX_WORKERS_PER_DATABASE];
} SaDatabaseSlot;

typedef struct SaShared
{
	slock_t		mutex;			/* protects everything below */
	pid_t		launcher_pid;
	int			launcher_procno;
	SaDatabaseSlot slots[SA_MAX_DATABASES];
} SaShared;

static SaShared *shared = NULL;

void
sa_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(SaShared)));
}

/* Create or attach the shared registry; on a crash restart it starts empty. */
void
sa_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("streamagg", sizeof(SaShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(SaShared));
		SpinLockInit(&shared->mutex);
		shared->launcher_procno = -1;
		for (int i = 0; i < SA_MAX_DATABASES; i++)
		{
			for (int w = 0; w < SA_MAX_WORKERS_PER_DATABASE; w++)
				shared->slots[i].workers[w].procno = -1;
			for (int b = 0; b < SA_SOURCE_BUCKETS; b++)
				pg_atomic_init_u64(&shared->slots[i].source_commits[b], 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* The slot of a database, optionally taking a free one; mutex held. */
static SaDatabaseSlot *
find_slot(Oid dboid, bool create)
{
	SaDatabaseSlot *free_slot = NULL;

	for (int i = 0; i < SA_MAX_DATABASES; i++)
	{
		SaDatabaseSlot *slot = &shared->slots[i];

		if (slot->dboid == dboid)
			return slot;
		if (free_slot == NULL && slot->dboid == InvalidOid)
			free_slot = slot;
	}
	if (create && free_slot)
	{
		free_slot->dboid = dboid;
		free_slot->wanted = false;
		free_slot->workers_wanted = 1;
		for (int w = 0; w < SA_MAX_WORKERS_PER_DATABASE; w++)
		{
			free_slot->workers[w].pid = 0;
			free_slot->workers[w].procno = -1;
			free_slot->workers[w].busy = false;
			free_slot->workers[w].exited_idle = false;
		}
	}
	return create ? free_slot : NULL;
}

/* Does the slot have a worker attached?  Mutex held. */
static bool
has_workers(SaDatabaseSlot *slot)
{
	for (int w = 0; w < SA_MAX_WORKERS_PER_DATABASE; w++)
		if (slot->workers[w].pid != 0)
			return true;
	return false;
}

/*
 * The latches to set to wake a database's pool: one idle worker's, or, if
 * every worker is busy, all of them (each looks again when done).  Mutex
 * held; fills procnos (SA_MAX_WORKERS_PER_DATABASE entries, -1 unused).
 */
static void
workers_to_wake(SaDatabaseSlot *slot, bool all, int *procnos)
{
	int			n = 0;

	for (int w = 0; w < SA_MAX_WORKERS_PER_DATABASE; w++)
		procnos[w] = -1;
	for (int w = 0; w < SA_MAX_WORKERS_PER_DATABASE && !all; w++)
		if (slot->workers[w].procno >= 0 && !slot->workers[w].busy)
		{
			procnos[0] = slot->workers[w].procno;
			return;
		}
	for (int w = 0; w < SA_MAX_WORKERS_PER_DATABASE; w++)
		if (slot->workers[w].procno >= 0)
			procnos[n++] = slot->workers[w].procno;
}

static void
set_latch_of(int procno)
{
	if (procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

static void
set_latches_of(int *procnos)
{
	for (int w = 0; w < SA_MAX_WORKERS_PER_DATABASE; w++)
		set_latch_of(procnos[w]);
}

/* Ask the launcher for workers in a database (and wake those it has). */
void
sa_request_database_worker(Oid dboid)
{
	SaDatabaseSlot *slot;
	int			launcher;
	int			workers[SA_MAX_WORKERS_PER_DATABASE];

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, true);
	if (slot)
	{
		slot->wanted = true;
		slot->request_generation++;
		workers_to_wake(slot, true, workers);
	}
	launcher = shared->launcher_procno;
	SpinLockRelease(&shared->mutex);
	if (slot == NULL)
	{
		ereport(WARNING,
				(errmsg("streamagg cannot run workers in more than %d databases",
						SA_MAX_DATABASES)));
		return;
	}
	set_latch_of(launcher);
	set_latches_of(workers);
}

/* The slot of a database, if it has one. */
static SaDatabaseSlot *
slot_of(Oid dboid)
{
	SaDatabaseSlot *slot;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, false);
	SpinLockRelease(&shared->mutex);
	return slot;
}

/* The bit of a source's bucket, for sa_note_source_commits. */
uint64
sa_source_bucket_bit(Oid source)
{
	return UINT64CONST(1) << (source % SA_SOURCE_BUCKETS);
}

/* Count a commit into the sources of the buckets in "mask". */
void
sa_note_source_commits(Oid dboid, uint64 mask)
{
	/* a slot is never freed while its database exists */
	SaDatabaseSlot *slot = slot_of(dboid);

	if (slot == NULL)
		return;
	for (int b = 0; b < SA_SOURCE_BUCKETS; b++)
		if (mask & (UINT64CONST(1) << b))
			pg_atomic_fetch_add_u64(&slot->source_commits[b], 1);
}

/* How many commits went into the bucket of "source" (it only grows). */
uint64
sa_source_commit_count(Oid dboid, Oid source)
{
	SaDatabaseSlot *slot = slot_of(dboid);

	if (slot == NULL)
		return 0;
	return pg_atomic_read_u64(&slot->source_commits[source % SA_SOURCE_BUCKETS]);
}

/*
 * Wake a database's pool, if it has one: new events were committed.  One
 * idle worker is enough; with none idle, each looks when done.
 */
void
sa_wake_database_worker(Oid dboid)
{
	SaDatabaseSlot *slot;
	int			workers[SA_MAX_WORKERS_PER_DATABASE];

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, false);
	if (slot)
		workers_to_wake(slot, false, workers);
	SpinLockRelease(&shared->mutex);
	if (slot)
		set_latches_of(workers);
}

/*
 * Stop a database's workers and keep them stopped (DROP DATABASE).  Waits
 * up to 10 seconds for them to exit.
 */
void
sa_stop_database_worker(Oid dboid)
{
	SaDatabaseSlot *slot;
	pid_t		pids[SA_MAX_WORKERS_PER_DATABASE] = {0};

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, false);
	if (slot)
	{
		slot->wanted = false;
		slot->request_generation++;
		for (int w = 0; w < SA_MAX_WORKERS_PER_DATABASE; w++)
			pids[w] = slot->workers[w].pid;
	}
	SpinLockRelease(&shared->mutex);
	if (slot == NULL)
		return;
	for (int w = 0; w < SA_MAX_WORKERS_PER_DATABASE; w++)
		if (pids[w] != 0)
			kill(pids[w], SIGTERM);
	for (int i = 0; i < 1000; i++)
	{
		bool		gone;

		SpinLockAcquire(&shared->mutex);
		gone = !has_workers(slot);
		SpinLockRelease(&shared->mutex);
		if (gone)
			break;
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
}

/* A dropped database's slot becomes free. */
void
sa_forget_database(Oid dboid)
{
	SaDatabaseSlot *slot;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, false);
	if (slot && !has_workers(slot) && !slot->wanted)
		slot->dboid = InvalidOid;
	SpinLockRelease(&shared->mutex);
}

/* Called by worker "index" once connected: its latch can now be set. */
uint64
sa_worker_attach(Oid dboid, int index)
{
	SaDatabaseSlot *slot;
	uint64		generation = 0;

	Assert(index >= 0 && index < SA_MAX_WORKERS_PER_DATABASE);
	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, true);
	if (slot)
	{
		slot->workers[index].pid = MyProcPid;
		slot->workers[index].procno = MyProc->pgprocno;
		slot->workers[index].busy = false;
		slot->workers[index].exited_idle = false;
		generation = slot->request_generation;
	}
	SpinLockRelease(&shared->mutex);
	return generation;
}

/*
 * Called by worker "index" when it exits.  "idle" says worker 0 found
 * nothing to run: the slot is then unmarked, unless a request came after
 * "generation".
 */
void
sa_worker_detach(Oid dboid, int index, bool idle, uint64 generation)
{
	SaDatabaseSlot *slot;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, false);
	if (slot && slot->workers[index].pid == MyProcPid)
	{
		slot->workers[index].pid = 0;
		slot->workers[index].procno = -1;
		slot->workers[index].busy = false;
		slot->workers[index].exited_idle = idle;
		if (index == 0 && idle && slot->request_generation == generation)
			slot->wanted = false;
	}
	SpinLockRelease(&shared->mutex);
}

/* Worker "index" starts or ends a trigger (for sa_wake_database_worker). */
void
sa_worker_set_busy(Oid dboid, int index, bool busy)
{
	SaDatabaseSlot *slot;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, false);
	if (slot && slot->workers[index].pid == MyProcPid)
		slot->workers[index].busy = busy;
	SpinLockRelease(&shared->mutex);
}

/*
 * A worker saw how many workers the database's scheduled queries need:
 * "wanted", at least 1.  Returns whether worker "index" is still needed.
 */
bool
sa_set_workers_wanted(Oid dboid, int index, int wanted)
{
	SaDatabaseSlot *slot;
	int			launcher = -1;

	Assert(wanted >= 1 && wanted <= SA_MAX_WORKERS_PER_DATABASE);
	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, false);
	if (slot && slot->workers_wanted != wanted)
	{
		if (wanted > slot->workers_wanted)
			launcher = shared->launcher_procno;
		slot->workers_wanted = wanted;
	}
	SpinLockRelease(&shared->mutex);
	set_latch_of(launcher);
	return index < wanted;
}

/* Register the launcher; called from _PG_init while preloading. */
void
sa_register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "streamagg");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "sa_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "streamagg launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "streamagg launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * Mark every database that accepts connections as wanting workers, or,
 * with "only_new", those the registry has never seen: a database created
 * from a template that had queries, for example, has no other way to ask.
 */
static void
request_databases(bool only_new)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	List	   *dboids = NIL;
	ListCell   *lc;
	MemoryContext caller = CurrentMemoryContext;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);

		/* the list must outlive the transaction */
		if (db->datallowconn && !db->datistemplate)
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			dboids = lappend_oid(dboids, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();

	foreach(lc, dboids)
	{
		bool		known;

		SpinLockAcquire(&shared->mutex);
		known = find_slot(lfirst_oid(lc), false) != NULL;
		SpinLockRelease(&shared->mutex);
		if (!only_new || !known)
			sa_request_database_worker(lfirst_oid(lc));
	}
	list_free(dboids);
}

static BackgroundWorkerHandle *
start_worker(Oid dboid, int index)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "streamagg");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "sa_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN,
			 "streamagg worker %d for database %u", index, dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "streamagg worker");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	memcpy(worker.bgw_extra, &index, sizeof(index));
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(LOG,
				(errmsg("streamagg launcher could not start worker %d for database %u",
						index, dboid),
				 errhint("Consider raising max_worker_processes.")));
		return NULL;
	}
	return handle;
}

/*
 * The launcher: keep the pool of each wanted database running, restarting
 * a worker that exited while still needed after a delay.
 */
void
sa_launcher_main(Datum arg)
{
	BackgroundWorkerHandle *handles[SA_MAX_DATABASES][SA_MAX_WORKERS_PER_DATABASE] = {{0}};
	TimestampTz not_before[SA_MAX_DATABASES][SA_MAX_WORKERS_PER_DATABASE] = {{0}};
	TimestampTz last_scan;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	SpinLockAcquire(&shared->mutex);
	shared->launcher_pid = MyProcPid;
	shared->launcher_procno = MyProc->pgprocno;
	SpinLockRelease(&shared->mutex);

	request_databases(false);
	last_scan = GetCurrentTimestamp();

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		for (int i = 0; i < SA_MAX_DATABASES; i++)
		{
			Oid			dboid;
			bool		wanted;
			int			pool;
			bool		exited_idle[SA_MAX_WORKERS_PER_DATABASE];

			SpinLockAcquire(&shared->mutex);
			dboid = shared->slots[i].dboid;
			wanted = shared->slots[i].wanted;
			pool = shared->slots[i].workers_wanted;
			for (int w = 0; w < SA_MAX_WORKERS_PER_DATABASE; w++)
				exited_idle[w] = shared->slots[i].workers[w].exited_idle;
			SpinLockRelease(&shared->mutex);

			for (int w = 0; w < SA_MAX_WORKERS_PER_DATABASE; w++)
			{
				bool		needed = OidIsValid(dboid) && wanted &&
					(w == 0 || w < pool);
				pid_t		pid;

				if (handles[i][w] &&
					GetBackgroundWorkerPid(handles[i][w], &pid) == BGWH_STOPPED)
				{
					pfree(handles[i][w]);
					handles[i][w] = NULL;

					/*
					 * Exited while still needed, without finding nothing to
					 * do: it failed, restart it later.  (Idle, it exited just
					 * before a new request: start another at once.)
					 */
					if (needed && !exited_idle[w])
						not_before[i][w] =
							TimestampTzPlusMilliseconds(now, WORKER_RESTART_DELAY_MS);
				}
				/* a fresh request is served at once, a restart after a delay */
				if (needed && handles[i][w] == NULL &&
					(not_before[i][w] == 0 || now >= not_before[i][w]))
					handles[i][w] = start_worker(dboid, w);
				if (handles[i][w] == NULL && !needed)
					not_before[i][w] = 0;
			}
		}

		if (TimestampDifferenceExceeds(last_scan, now, NEW_DATABASE_SCAN_MS))
		{
			request_databases(true);
			last_scan = now;
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
