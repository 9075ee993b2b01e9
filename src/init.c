/*-------------------------------------------------------------------------
 *
 * init.c
 *	  Library entry point: GUCs, shared memory hooks, the launcher's
 *	  registration and the commit hook that wakes workers.
 *
 * streamagg must be in shared_preload_libraries: its workers and shared
 * memory exist only then.  Loaded any other way -- a producer inserting into
 * a source (its wake-up trigger and its index call into the library) in a
 * server started without the preload -- it installs nothing: the insert
 * works, and what needs the workers or shared memory (create_query,
 * process, wait) fails with a hint, as CREATE EXTENSION does; the queries
 * view reports the library missing.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "utils/lsyscache.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/rel.h"

#include "init.h"
#include "inject.h"
#include "launcher.h"
#include "schedule.h"
#include "shared_state.h"
#include "source.h"
#include "trigger.h"
#include "xid_index.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

int			sa_wait_poll_ms = 10;
int			sa_max_state_memory_mb = 0;
int			sa_trigger_timeout_ms = 5 * 60 * 1000;
int			sa_workers_per_database = 2;
bool		sa_allow_source_changes = false;
int			sa_max_batch_rows_setting = 0;

/* Was the library loaded through shared_preload_libraries? */
static bool preloaded = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/*
 * Set when a query is inserted or changed (sa_query_def_changed): the
 * database needs workers once this transaction commits (a worker started
 * earlier would not see the query).
 */
static bool request_worker_at_commit = false;

PG_FUNCTION_INFO_V1(sa_query_def_changed);

/*
 * Statement trigger on streamagg.query_def: a query inserted (create_query,
 * a restore) or changed (resume) needs workers once this transaction
 * commits.
 */
Datum
sa_query_def_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("streamagg.query_def_changed() must be called as a trigger")));
	request_worker_at_commit = true;
	return PointerGetDatum(NULL);
}

/* Fail, with the hint, where the workers or shared memory are needed. */
void
sa_require_preloaded(void)
{
	if (!preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("streamagg must be loaded via shared_preload_libraries"),
				 errhint("Add streamagg to shared_preload_libraries in postgresql.conf and restart the server.")));
}

bool
sa_library_preloaded(void)
{
	return preloaded;
}

PG_FUNCTION_INFO_V1(sa_library_loaded);

/* streamagg.library_loaded(): is the library preloaded, its workers running? */
Datum
sa_library_loaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(preloaded);
}

static void
sa_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	sa_shmem_request();
	RequestAddinShmemSpace(sa_state_shmem_size());
	RequestAddinShmemSpace(sa_schedule_shmem_size());
	RequestAddinShmemSpace(sa_inject_shmem_size());
}

static void
sa_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	sa_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sa_state_shmem_init();
	sa_schedule_shmem_init();
	sa_inject_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Wake the database's worker once the producer's events are visible, or ask
 * for one once a new query is: at XACT_EVENT_COMMIT the transaction is
 * already out of the proc array.
 */
static void
sa_wakeup_xact_callback(XactEvent event, void *arg)
{
	uint64		touched;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			touched = sa_take_sources_touched();
			if (touched != 0)
				sa_note_source_commits(MyDatabaseId, touched);
			if (request_worker_at_commit)
				sa_request_database_worker(MyDatabaseId);
			else if (touched != 0)
				sa_wake_database_worker(MyDatabaseId);
			request_worker_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			(void) sa_take_sources_touched();
			request_worker_at_commit = false;
			break;
		default:
			break;
	}
}

/* Is this statement DROP EXTENSION streamagg (among others)? */
static bool
drops_this_extension(Node *parsetree)
{
	DropStmt   *drop = (DropStmt *) parsetree;
	ListCell   *lc;

	if (!IsA(parsetree, DropStmt) || drop->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, drop->objects)
	{
		if (strcmp(strVal(lfirst(lc)), "streamagg") == 0)
			return true;
	}
	return false;
}

/* ATTACH PARTITION onto a source: see sa_check_attach_partition. */
static void
check_attached_partitions(AlterTableStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		Oid			parent;

		if (cmd->subtype != AT_AttachPartition || stmt->objtype != OBJECT_TABLE)
			continue;
		parent = RangeVarGetRelid(stmt->relation, NoLock, true);
		if (OidIsValid(parent) &&
			get_attnum(parent, SA_XID_COLUMN) != InvalidAttrNumber &&
			OidIsValid(get_extension_oid("streamagg", true)))
			sa_check_attach_partition(parent,
									  RangeVarGetRelid(((PartitionCmd *) cmd->def)->name,
													   NoLock, true));
	}
}

/* The template a CREATE DATABASE copies, if it names one. */
static Oid
template_of(CreatedbStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);

		if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
			return get_database_oid(defGetString(opt), true);
	}
	return InvalidOid;
}

/*
 * DROP DATABASE waits for every backend connected to the database, our
 * workers included, and CREATE DATABASE ... TEMPLATE refuses a template
 * anyone is connected to: stop the workers first, and keep them stopped
 * while the command runs (the template's come back after it, the new
 * database's queries get workers of their own).  Once a database or the
 * extension is dropped, the shared state of its queries goes too.
 */
static void
sa_process_utility_hook(PlannedStmt *pstmt, const char *queryString,
						bool readOnlyTree, ProcessUtilityContext context,
						ParamListInfo params, QueryEnvironment *queryEnv,
						DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			dropped = InvalidOid;
	Oid			copied = InvalidOid;

	if (IsA(parsetree, DropdbStmt))
	{
		dropped = get_database_oid(((DropdbStmt *) parsetree)->dbname, true);
		if (OidIsValid(dropped))
			sa_stop_database_worker(dropped);
	}
	else if (IsA(parsetree, CreatedbStmt))
	{
		copied = template_of((CreatedbStmt *) parsetree);
		if (OidIsValid(copied))
			sa_stop_database_worker(copied);
	}
	else if (IsA(parsetree, AlterTableStmt))
		check_attached_partitions((AlterTableStmt *) parsetree);
	else if (drops_this_extension(parsetree))
		sa_forbid_in_trigger("DROP EXTENSION streamagg");
	PG_TRY();
	{
		if (prev_process_utility_hook)
			prev_process_utility_hook(pstmt, queryString, readOnlyTree,
									  context, params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree,
									context, params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		/* the database survives: its queries must go on */
		if (OidIsValid(dropped))
			sa_request_database_worker(dropped);
		if (OidIsValid(copied))
			sa_request_database_worker(copied);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (OidIsValid(copied))
	{
		Oid			created = get_database_oid(((CreatedbStmt *) parsetree)->dbname,
											   true);

		sa_request_database_worker(copied);
		if (OidIsValid(created))
			sa_request_database_worker(created);
	}
	if (OidIsValid(dropped))
	{
		sa_forget_database(dropped);
		sa_state_forget_database(dropped);
		sa_schedule_forget_database(dropped);
	}
	else if (drops_this_extension(parsetree))
	{
		sa_state_forget_database(MyDatabaseId);
		sa_schedule_forget_database(MyDatabaseId);
	}
}

/* A savepoint rolled back: the sources' index forgets what it covered. */
static void
sa_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		sa_xid_index_subxact_abort();
}

void
_PG_init(void)
{
	DefineCustomIntVariable("streamagg.wait_poll_interval",
							"How often streamagg.wait() checks for progress.",
							NULL,
							&sa_wait_poll_ms,
							10, 1, 10000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("streamagg.max_state_memory",
							"Shared memory for the state of open windows; 0 means no limit.",
							"A trigger that would exceed it fails (and is retried).",
							&sa_max_state_memory_mb,
							0, 0, INT_MAX / 2,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("streamagg.trigger_timeout",
							"Longest time a worker's trigger may run; 0 means no limit.",
							"A trigger that runs longer is cancelled, its error recorded, and retried like any failed trigger.",
							&sa_trigger_timeout_ms,
							5 * 60 * 1000, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("streamagg.workers_per_database",
							"How many workers run the scheduled queries of one database.",
							"Queries of a database run in parallel on that many workers, so that one slow query does not hold the others back.",
							&sa_workers_per_database,
							2, 1, SA_MAX_WORKERS_PER_DATABASE,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("streamagg.allow_source_changes",
							 "Lets UPDATE, DELETE, TRUNCATE and rows with foreign transaction ids reach sources.",
							 "Sources are append-only while queries read them; what this lets through is not reflected in their results (for repairs and restores).",
							 &sa_allow_source_changes,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("streamagg.max_batch_rows",
							"Most source rows one trigger reads, in whole producer transactions; 0 means no limit.",
							"A query's own max_batch_rows takes precedence.  A transaction larger than this forms a batch alone; the rest waits for the next trigger.",
							&sa_max_batch_rows_setting,
							0, 0, INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("streamagg");

	/* the sources' index works in any backend, preloaded or not */
	RegisterSubXactCallback(sa_subxact_callback, NULL);

	/* without the preload: settings only (see the file header) */
	if (!process_shared_preload_libraries_in_progress)
		return;
	preloaded = true;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sa_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sa_shmem_startup_hook;

	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = sa_process_utility_hook;

	RegisterXactCallback(sa_wakeup_xact_callback, NULL);

	if (!IsBinaryUpgrade)
		sa_register_launcher();
}
