/*-------------------------------------------------------------------------
 *
 * security.c
 *	  Who streamagg acts as, and with which search_path (DESIGN.md 4.6).
 *
 * User work (reading a source, evaluating expressions, calling aggregates,
 * writing a sink) runs as the role that created the query, in a restricted
 * security context.  Catalog and state writes run as the extension's owner,
 * because ordinary users cannot write those tables directly.  Everything
 * runs with search_path pinned to pg_catalog, so names resolve as they were
 * normalized at creation.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/htup_details.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "access/table.h"
#include "access/genam.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

/*
 * Switch the current user to "role" until sa_restore_role.  "restricted"
 * adds SECURITY_RESTRICTED_OPERATION, as for maintenance commands, so that
 * user code cannot change the session (SET ROLE, temporary objects...).
 */
void
sa_become_role(Oid role, bool restricted, SaRoleSave *save)
{
	int			flags = SECURITY_LOCAL_USERID_CHANGE;

	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	if (restricted)
		flags |= SECURITY_RESTRICTED_OPERATION;
	SetUserIdAndSecContext(role, save->sec_context | flags);
}

void
sa_restore_role(SaRoleSave *save)
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
 * is called with the returned nesting level, or the transaction ends.
 */
int
sa_pin_search_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

void
sa_unpin_search_path(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}
