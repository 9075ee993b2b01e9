/*-------------------------------------------------------------------------
 *
 * security.c
 *	  Who streamagg acts as, with which settings (docs/security.md).
 *
 * Two identities, never more:
 *	  - user code (reading a source, evaluating expressions, type input and
 *	    output functions, aggregates and their support functions, sink
 *	    statements and functions) runs as the query's owner, in a
 *	    security-restricted operation, with search_path pinned and inside a
 *	    GUC nest level that is always rolled back: the way VACUUM, REFRESH
 *	    MATERIALIZED VIEW and brin_summarize_range() run the code of a
 *	    table's owner.  So a query's code can neither act as the worker's
 *	    superuser nor as the role that called process() or wait(), and a
 *	    setting it changes (set_config(), SET inside a function) is undone
 *	    before anything else runs;
 *	  - streamagg's own catalog tables are read and written as the
 *	    extension's owner, by statements of this extension only, because no
 *	    other role may write them.
 *
 * Both switches nest and are undone by an error as well: transaction abort
 * restores the user id, the security context and every GUC nest level.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_extension.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "security.h"

/* Pin search_path to pg_catalog, then pg_temp, in the current nest level. */
static void
pin_search_path(void)
{
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Start running user code as "owner" (see the file header) until
 * sa_user_code_end(save).  Calls nest.
 */
void
sa_user_code_begin(Oid owner, SaRoleSave *save)
{
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", owner),
				 errdetail("The role that owns this streaming query was dropped."),
				 errhint("Drop the query with streamagg.drop_query() and create it again as an existing role.")));
	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	SetUserIdAndSecContext(owner, save->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save->nestlevel = NewGUCNestLevel();
	pin_search_path();
}

/* Roll back every setting the user code changed, and switch back. */
void
sa_user_code_end(SaRoleSave *save)
{
	AtEOXact_GUC(false, save->nestlevel);
	SetUserIdAndSecContext(save->userid, save->sec_context);
}

/*
 * Act as the extension's owner to read or write streamagg's catalog tables,
 * until sa_catalog_access_end(save).  A security-restricted context stays
 * restricted.
 */
void
sa_catalog_access_begin(SaRoleSave *save)
{
	Oid			owner = sa_extension_owner();

	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	SetUserIdAndSecContext(owner, save->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE);
	save->nestlevel = 0;
}

void
sa_catalog_access_end(SaRoleSave *save)
{
	SetUserIdAndSecContext(save->userid, save->sec_context);
}

/* The role that owns the extension, and so its catalog tables. */
Oid
sa_extension_owner(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	Oid			owner = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("streamagg"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"streamagg\" is not installed in this database")));
	return owner;
}

/*
 * Pin search_path to pg_catalog (then pg_temp) until sa_unpin_search_path
 * is called with the returned nesting level: for work that runs no user
 * code but must resolve names as streamagg wrote them (deparsing).
 * Settings changed meanwhile are rolled back too.
 */
int
sa_pin_search_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	pin_search_path();
	return nestlevel;
}

void
sa_unpin_search_path(int nestlevel)
{
	AtEOXact_GUC(false, nestlevel);
}

/*
 * May the current user see the query owned by "owner" (its definition,
 * errors and progress)?  Members of the owner, and of pg_read_all_stats.
 */
bool
sa_may_see_query(Oid owner)
{
	return has_privs_of_role(GetUserId(), owner) ||
		has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
}

/* EXECUTE on one function used by a statement (check_functions_in_node). */
static bool
check_execute(Oid funcid, void *context)
{
	AclResult	aclresult = pg_proc_aclcheck(funcid, GetUserId(), ACL_EXECUTE);

	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(funcid));
	return false;
}

static bool
check_execute_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	(void) check_functions_in_node(node, check_execute, context);
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, check_execute_walker,
								 context, 0);
	return expression_tree_walker(node, check_execute_walker, context);
}

/*
 * Check, as the executor will at every trigger, that the current user may
 * run "sql" (with parameters of "argtypes", and the ephemeral relation
 * "rows" if not NULL, which must be empty): SELECT, INSERT, UPDATE or
 * DELETE on every relation it touches, EXECUTE on every function it calls.
 * create_query calls this for the statements a trigger runs, as the query's
 * owner, so that a query that could never run is refused at once.
 */
void
sa_check_statement_privileges(const char *sql, int nargs, Oid *argtypes,
							  EphemeralNamedRelation rows)
{
	SPIPlanPtr	plan;
	CachedPlan *cplan;
	ListCell   *lc;

	SPI_connect();
	if (rows && SPI_register_relation(rows) < 0)
		elog(ERROR, "could not register the rows of a statement");
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare a statement of a streaming query: %s",
			 SPI_result_code_string(SPI_result));
	foreach(lc, SPI_plan_get_plan_sources(plan))
	{
		CachedPlanSource *source = lfirst(lc);
		ListCell   *lq;

		foreach(lq, source->query_list)
			(void) check_execute_walker(lfirst(lq), NULL);
	}
	/*
	 * The planned statement lists every relation, subqueries' included.
	 * The plan is not saved, so its cached plan has no resource owner.
	 */
	cplan = SPI_plan_get_cached_plan(plan);
	if (cplan == NULL)
		elog(ERROR, "a statement of a streaming query is not one statement");
	foreach(lc, cplan->stmt_list)
		(void) ExecCheckRTPerms(lfirst_node(PlannedStmt, lc)->rtable, true);
	ReleaseCachedPlan(cplan, NULL);
	SPI_freeplan(plan);
	SPI_finish();
}
