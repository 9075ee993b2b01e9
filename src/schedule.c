/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  When each scheduled query last started a trigger, and which worker is
 *	  running it now.
 *
 * The workers of a database share this, so that any of them can run any
 * query -- one stuck query holds back only the worker running it -- and
 * none runs a query that another has just run.  There is one entry per
 * (database, query) in a shared hash table (shared_table.c), made at the
 * query's first claim and removed when the query is dropped, or its
 * database or extension.
 *
 * Invariants:
 *	  - an entry is claimed (runner != 0) only while its runner lives: the
 *	    runner releases it when its trigger is done, and at exit however it
 *	    exits (sa_schedule_release_at_exit, a before_shmem_exit callback);
 *	    a crash restart empties the table;
 *	  - a worker claims at most one query at a time;
 *	  - a claim records the start time and the source commits seen, so the
 *	    due rule (schedule_due, the one place it is written) sees every
 *	    trigger, whichever worker ran it.
 *
 * process() does not claim: it serialises with the workers through the
 * query's lock (catalog.c), which a worker only tries.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "miscadmin.h"
#include "storage/dsm_impl.h"
#include "storage/shmem.h"

#include "shared_table.h"
#include "schedule.h"

/* With trigger_interval '0', run at least this often (a safety net). */
#define ZERO_INTERVAL_POLL_USEC (1000 * 1000L)

typedef struct SaScheduleKey
{
	Oid			database;
	int32		query_id;
} SaScheduleKey;

typedef struct SaScheduleEntry
{
	SaScheduleKey key;
	TimestampTz last_start;		/* of the last trigger, 0: never */
	uint64		commits_seen;	/* source commits counted at that start */
	pid_t		runner;			/* worker running it now, 0: none */
	bool		runner_terminated;	/* the last runner was terminated */
	bool		due_now;		/* due at once, whatever the interval: its
								 * last trigger left a backlog
								 * (max_batch_rows), or could not run, or
								 * the query was reset */
} SaScheduleEntry;

typedef struct SaScheduleShmem
{
	SaSharedTableShmem entries;
} SaScheduleShmem;

static SaScheduleShmem *schedule_shmem = NULL;
static dsa_area *schedule_area = NULL;
static dshash_table *schedule_table = NULL;

static dshash_parameters schedule_params = {
	sizeof(SaScheduleKey), sizeof(SaScheduleEntry),
	dshash_memcmp, dshash_memhash, 0
};

/* The query this worker has claimed, or 0. */
static int32 claimed_query = 0;

Size
sa_schedule_shmem_size(void)
{
	return MAXALIGN(sizeof(SaScheduleShmem));
}

void
sa_schedule_shmem_init(void)
{
	bool		found;

	schedule_shmem = ShmemInitStruct("streamagg schedule",
									 sa_schedule_shmem_size(), &found);
	if (!found)
		sa_shared_table_shmem_init(&schedule_shmem->entries);
}

static void
attach_schedule(void)
{
	sa_shared_table_attach(&schedule_shmem->entries, "streamagg schedule",
						   &schedule_params, &schedule_area, &schedule_table);
}

static SaScheduleKey
schedule_key(Oid database, int32 query_id)
{
	SaScheduleKey key;

	memset(&key, 0, sizeof(key));	/* compared and hashed as bytes */
	key.database = database;
	key.query_id = query_id;
	return key;
}

/*
 * The entry of query "query_id" of this database, locked exclusively; a
 * new one has never run and is not due at once.
 */
static SaScheduleEntry *
entry_of(int32 query_id)
{
	SaScheduleKey key = schedule_key(MyDatabaseId, query_id);
	SaScheduleEntry *entry;
	bool		found;

	attach_schedule();
	entry = dshash_find_or_insert(schedule_table, &key, &found);
	if (!found)
	{
		entry->last_start = 0;
		entry->commits_seen = 0;
		entry->runner = 0;
		entry->runner_terminated = false;
		entry->due_now = false;
	}
	return entry;
}

/*
 * The due rule: a query with a trigger_interval is due once the interval
 * has passed since its last trigger started; with trigger_interval '0',
 * once a producer committed into its source since then, and at least every
 * ZERO_INTERVAL_POLL_USEC.  A query marked due_now is due at once,
 * whatever its interval: one whose last trigger was bounded by
 * max_batch_rows and left events for later (so that a backlog drains in
 * back-to-back triggers), one whose last trigger found the query's lock
 * taken (process(), reset_query()...), and one just reset.  *due_at says
 * when it will be due otherwise.
 */
static bool
schedule_due(const SaScheduleEntry *entry, int64 interval_usec,
			 uint64 commits, TimestampTz now, TimestampTz *due_at)
{
	int64		period = interval_usec > 0 ? interval_usec :
		ZERO_INTERVAL_POLL_USEC;

	*due_at = entry->last_start + period;
	if (entry->last_start == 0 || entry->due_now)
		return true;
	if (interval_usec == 0 && commits != entry->commits_seen)
		return true;
	return now >= *due_at;
}

/*
 * Claim query "query_id" of this database for a trigger that starts "now",
 * when it is due and nobody runs it.  "commits" is its source's commit
 * count read before the claim.  *due_at is set to when to look again.
 */
SaClaim
sa_schedule_claim(int32 query_id, int64 interval_usec, uint64 commits,
				  TimestampTz now, TimestampTz *due_at)
{
	SaScheduleEntry *entry;
	SaClaim		claim;

	Assert(claimed_query == 0);
	entry = entry_of(query_id);
	if (entry->runner != 0)
	{
		*due_at = now + ZERO_INTERVAL_POLL_USEC;
		claim = SA_CLAIM_BUSY;
	}
	else if (entry->runner_terminated)
	{
		*due_at = now;
		claim = SA_CLAIM_TERMINATED;
	}
	else if (!schedule_due(entry, interval_usec, commits, now, due_at))
		claim = SA_CLAIM_NOT_DUE;
	else
	{
		entry->last_start = now;
		entry->commits_seen = commits;
		entry->due_now = false;
		(void) schedule_due(entry, interval_usec, commits, now, due_at);
		claim = SA_CLAIM_OK;
	}
	if (claim == SA_CLAIM_OK || claim == SA_CLAIM_TERMINATED)
	{
		entry->runner = MyProcPid;
		entry->runner_terminated = false;
		claimed_query = query_id;
	}
	dshash_release_lock(schedule_table, entry);
	return claim;
}

/* Release this worker's claim; "terminated" marks its trigger killed. */
static void
release_claim(bool terminated)
{
	SaScheduleKey key = schedule_key(MyDatabaseId, claimed_query);
	SaScheduleEntry *entry;

	if (claimed_query == 0)
		return;
	attach_schedule();
	entry = dshash_find(schedule_table, &key, true);
	if (entry != NULL)
	{
		if (entry->runner == MyProcPid)
		{
			entry->runner = 0;
			entry->runner_terminated = terminated;
		}
		dshash_release_lock(schedule_table, entry);
	}
	claimed_query = 0;
}

/*
 * The claimed query is due again at once (see schedule_due): its trigger
 * stopped at max_batch_rows with committed events left, or could not take
 * the query's lock.
 */
void
sa_schedule_mark_due_now(void)
{
	Assert(claimed_query != 0);
	sa_schedule_make_due(claimed_query);
}

/*
 * Query "query_id" of this database is due at once, whoever claims it
 * next: reset_query calls this so that a scheduled query starts
 * reprocessing without waiting for its trigger_interval.  (Before the reset
 * commits, a worker that claims the query finds its lock taken, and marks
 * it due again.)
 */
void
sa_schedule_make_due(int32 query_id)
{
	SaScheduleEntry *entry;

	if (schedule_shmem == NULL)
		return;
	entry = entry_of(query_id);
	entry->due_now = true;
	dshash_release_lock(schedule_table, entry);
}

/* The trigger of the claimed query is done (or failed and was recorded). */
void
sa_schedule_release(void)
{
	release_claim(false);
}

/*
 * At the worker's exit: release its claim.  "terminated" says that it is
 * exiting because its trigger ignored cancellation (worker.c), which the
 * next worker to claim the query records as the query's error.
 */
void
sa_schedule_release_at_exit(bool terminated)
{
	release_claim(terminated);
}

/* Forget a dropped query (its id may be used again after DROP EXTENSION). */
void
sa_schedule_forget(int32 query_id)
{
	SaScheduleKey key = schedule_key(MyDatabaseId, query_id);

	if (schedule_shmem == NULL)
		return;
	attach_schedule();
	(void) dshash_delete_key(schedule_table, &key);
}

/* Forget every query of a database that was dropped, or whose extension was. */
void
sa_schedule_forget_database(Oid database)
{
	dshash_seq_status seq;
	SaScheduleEntry *entry;

	if (schedule_shmem == NULL ||
		schedule_shmem->entries.area == DSM_HANDLE_INVALID)
		return;
	attach_schedule();
	dshash_seq_init(&seq, schedule_table, true);
	while ((entry = dshash_seq_next(&seq)) != NULL)
		if (entry->key.database == database)
			dshash_delete_current(&seq);
	dshash_seq_term(&seq);
}
