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

#define SA_MAX_DATABASES 64

/* Restart a worker that exited with an error after this long. */
#define WORKER_RESTART_DELAY_MS 5000

/*
 * Commits into sources are counted per bucket of source OIDs, so that with
 * trigger_interval '0' the worker runs only the queries whose source moved.
 */
#define SA_SOURCE_BUCKETS 64

typedef struct SaDatabaseSlot
{
	pg_atomic_uint64 source_commits[SA_SOURCE_BUCKETS];
	Oid			dboid;			/* InvalidOid: slot free */
	bool		wanted;			/* should have a worker */
	uint64		request_generation; /* bumped by each request */
	pid_t		worker_pid;		/* 0: none attached */
	int			worker_procno;	/* for its latch; -1: none */
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
			shared->slots[i].worker_procno = -1;
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
		free_slot->worker_pid = 0;
		free_slot->worker_procno = -1;
	}
	return create ? free_slot : NULL;
}

static void
set_latch_of(int procno)
{
	if (procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/* Ask the launcher for a worker in a database. */
void
sa_request_database_worker(Oid dboid)
{
	SaDatabaseSlot *slot;
	int			launcher;
	int			worker = -1;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, true);
	if (slot)
	{
		slot->wanted = true;
		slot->request_generation++;
		worker = slot->worker_procno;
	}
	launcher = shared->launcher_procno;
	SpinLockRelease(&shared->mutex);
	if (slot == NULL)
		ereport(WARNING,
				(errmsg("streamagg cannot run workers in more than %d databases",
						SA_MAX_DATABASES)));
	set_latch_of(launcher);
	set_latch_of(worker);
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

/* Wake a database's worker, if it has one: new events were committed. */
void
sa_wake_database_worker(Oid dboid)
{
	SaDatabaseSlot *slot;
	int			worker = -1;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, false);
	if (slot)
		worker = slot->worker_procno;
	SpinLockRelease(&shared->mutex);
	set_latch_of(worker);
}

/*
 * Stop a database's worker and keep it stopped (DROP DATABASE).  Waits up
 * to 10 seconds for it to exit.
 */
void
sa_stop_database_worker(Oid dboid)
{
	SaDatabaseSlot *slot;
	pid_t		pid = 0;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, false);
	if (slot)
	{
		slot->wanted = false;
		slot->request_generation++;
		pid = slot->worker_pid;
	}
	SpinLockRelease(&shared->mutex);
	if (pid == 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 1000; i++)
	{
		bool		gone;

		SpinLockAcquire(&shared->mutex);
		gone = slot->worker_pid != pid;
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
	if (slot && slot->worker_pid == 0 && !slot->wanted)
		slot->dboid = InvalidOid;
	SpinLockRelease(&shared->mutex);
}

/* Called by a worker once connected: its latch can now be set. */
uint64
sa_worker_attach(Oid dboid)
{
	SaDatabaseSlot *slot;
	uint64		generation = 0;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, true);
	if (slot)
	{
		slot->worker_pid = MyProcPid;
		slot->worker_procno = MyProc->pgprocno;
		generation = slot->request_generation;
	}
	SpinLockRelease(&shared->mutex);
	return generation;
}

/*
 * Called by a worker that exits.  "idle" says it found nothing to run: the
 * slot is then unmarked, unless a request came after "generation".
 */
void
sa_worker_detach(Oid dboid, bool idle, uint64 generation)
{
	SaDatabaseSlot *slot;

	SpinLockAcquire(&shared->mutex);
	slot = find_slot(dboid, false);
	if (slot && slot->worker_pid == MyProcPid)
	{
		slot->worker_pid = 0;
		slot->worker_procno = -1;
		if (idle && slot->request_generation == generation)
			slot->wanted = false;
	}
	SpinLockRelease(&shared->mutex);
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

/* Mark every database that accepts connections as wanting a worker. */
static void
request_all_databases(void)
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
		sa_request_database_worker(lfirst_oid(lc));
	list_free(dboids);
}

static BackgroundWorkerHandle *
start_worker(Oid dboid)
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
	snprintf(worker.bgw_name, BGW_MAXLEN, "streamagg worker for database %u",
			 dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "streamagg worker");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(LOG,
				(errmsg("streamagg launcher could not start a worker for database %u",
						dboid),
				 errhint("Consider raising max_worker_processes.")));
		return NULL;
	}
	return handle;
}

/*
 * The launcher: start a worker for each wanted database that has none,
 * and restart workers that exited while still wanted, after a delay.
 */
void
sa_launcher_main(Datum arg)
{
	BackgroundWorkerHandle *handles[SA_MAX_DATABASES] = {0};
	TimestampTz not_before[SA_MAX_DATABASES] = {0};

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	SpinLockAcquire(&shared->mutex);
	shared->launcher_pid = MyProcPid;
	shared->launcher_procno = MyProc->pgprocno;
	SpinLockRelease(&shared->mutex);

	request_all_databases();

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
			pid_t		pid;

			SpinLockAcquire(&shared->mutex);
			dboid = shared->slots[i].dboid;
			wanted = shared->slots[i].wanted;
			SpinLockRelease(&shared->mutex);
			if (handles[i] &&
				GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED)
			{
				pfree(handles[i]);
				handles[i] = NULL;
				/* exited while still wanted: it failed, restart it later */
				if (wanted)
					not_before[i] = TimestampTzPlusMilliseconds(now,
																WORKER_RESTART_DELAY_MS);
			}
			if (OidIsValid(dboid) && wanted && handles[i] == NULL)
			{
				/* a fresh request is served at once, a restart after a delay */
				if (now >= not_before[i] || not_before[i] == 0)
					handles[i] = start_worker(dboid);
			}
			if (handles[i] == NULL && !wanted)
				not_before[i] = 0;
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
