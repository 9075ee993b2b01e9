/*-------------------------------------------------------------------------
 *
 * retention.c
 *	  Removing consumed events from sources, so that they do not pile up.
 *
 * streamagg.set_retention(source, keep) asks that events of a source be
 * deleted once every query of the source has consumed them and their event
 * time is older than "keep" (for every event-time column the queries use;
 * NULL event times count as old).  NULL keeps everything, the default.
 *
 * An event is consumed by a query when its transaction is visible in the
 * query's consumed snapshot; every transaction id below that snapshot's
 * xmin is.  So an event whose id is below the smallest xmin over the
 * source's queries is consumed by all of them, and nothing a query has not
 * consumed (a planned batch included) is ever deleted.  Events from before
 * the source was prepared (no transaction id) go once every query has run.
 *
 * The worker applies retention every RETENTION_INTERVAL; anyone may call
 * streamagg.apply_retention().  The DELETE runs as the role that set the
 * retention, which owns the source.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "lib/stringinfo.h"

PG_FUNCTION_INFO_V1(sa_set_retention);
PG_FUNCTION_INFO_V1(sa_apply_retention_sql);

/* streamagg.set_retention(source regclass, keep interval) */
Datum
sa_set_retention(PG_FUNCTION_ARGS)
{
	Oid			source;
	SaRoleSave	role;
	Oid			types[3] = {REGCLASSOID, INTERVALOID, REGROLEOID};
	Datum		args[3];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source must not be NULL")));
	source = PG_GETARG_OID(0);
	if (!pg_class_ownercheck(source, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(source));
	if (!PG_ARGISNULL(1))
	{
		Interval   *keep = PG_GETARG_INTERVAL_P(1);

		if (keep->month < 0 || keep->day < 0 || keep->time < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("keep must not be negative")));
	}
	args[0] = ObjectIdGetDatum(source);
	args[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	args[2] = ObjectIdGetDatum(GetUserId());

	sa_forbid_in_trigger("streamagg.set_retention()");
	sa_catalog_access_begin(&role);
	SPI_connect();
	if (PG_ARGISNULL(1))
		SPI_execute_with_args("DELETE FROM streamagg.retention WHERE source = $1",
							  1, types, args, NULL, false, 0);
	else
		SPI_execute_with_args("INSERT INTO streamagg.retention (source, keep, owner) "
							  "VALUES ($1, $2, $3) ON CONFLICT (source) DO UPDATE "
							  "SET keep = EXCLUDED.keep, owner = EXCLUDED.owner",
							  3, types, args, NULL, false, 0);
	SPI_finish();
	sa_catalog_access_end(&role);
	PG_RETURN_VOID();
}

/*
 * Delete the consumed, old events of one source; returns how many.  The
 * caller is connected to SPI and runs as the extension owner; the DELETE
 * runs the source's triggers and policies, so it runs as user code of the
 * retention's owner.
 */
static int64
apply_to_source(Oid source, Datum keep, Oid owner)
{
	Oid			argtype = REGCLASSOID;
	Datum		arg = ObjectIdGetDatum(source);
	Datum		horizon;
	bool		isnull;
	bool		all_consumed;
	StringInfoData sql;
	SaRoleSave	role;
	int64		deleted;

	/* the smallest consumed xmin, if every query of the source has run */
	SPI_execute_with_args("SELECT pg_catalog.min(pg_catalog.pg_snapshot_xmin(c.consumed_snapshot)), "
						  "pg_catalog.bool_and(c.consumed_snapshot IS NOT NULL), "
						  "pg_catalog.array_agg(DISTINCT d.event_time) "
						  "FROM streamagg.query_def d JOIN streamagg.checkpoint c USING (query_id) "
						  "WHERE d.source = $1", 1, &argtype, &arg, NULL, false, 1);
	all_consumed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 2, &isnull));
	if (isnull || !all_consumed)
		return 0;				/* no query, or one that has not run yet */
	horizon = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
							&isnull);

	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s WHERE (%s IS NULL OR %s < $1)",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(source)),
												get_rel_name(source)),
					 SA_XID_COLUMN, SA_XID_COLUMN);
	{
		ArrayType  *columns = DatumGetArrayTypeP(SPI_getbinval(SPI_tuptable->vals[0],
															   SPI_tuptable->tupdesc,
															   3, &isnull));
		Datum	   *names;
		int			n;

		deconstruct_array(columns, TEXTOID, -1, false, TYPALIGN_INT, &names,
						  NULL, &n);
		for (int i = 0; i < n; i++)
		{
			const char *col = quote_identifier(TextDatumGetCString(names[i]));

			appendStringInfo(&sql, " AND (%s IS NULL OR %s < pg_catalog.now() - $2)",
							 col, col);
		}
	}

	/* sources are append-only (source.c), but for these deletes */
	sa_user_code_begin(owner, &role);
	sa_set_deleting_consumed(true);
	PG_TRY();
	{
		Oid			types[2] = {XID8OID, INTERVALOID};
		Datum		args[2] = {horizon, keep};

		if (SPI_execute_with_args(sql.data, 2, types, args, NULL, false, 0) !=
			SPI_OK_DELETE)
			elog(ERROR, "could not delete consumed events of \"%s\"",
				 get_rel_name(source));
		deleted = SPI_processed;
	}
	PG_FINALLY();
	{
		sa_set_deleting_consumed(false);
	}
	PG_END_TRY();
	sa_user_code_end(&role);
	return deleted;
}

/*
 * Apply every retention of this database; returns the events deleted.
 * Runs as the extension owner, each DELETE as the retention's owner.
 */
int64
sa_apply_retention(void)
{
	SaRoleSave	role;
	int64		total = 0;
	int			nestlevel = sa_pin_search_path();
	SPITupleTable *retentions;
	uint64		n;

	sa_forbid_in_trigger("streamagg.apply_retention()");
	sa_catalog_access_begin(&role);
	SPI_connect();
	SPI_execute("SELECT r.source, r.keep, r.owner FROM streamagg.retention r "
				"JOIN pg_catalog.pg_class c ON c.oid = r.source ORDER BY 1",
				false, 0);
	retentions = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tuple = retentions->vals[i];
		bool		isnull;
		Oid			source = DatumGetObjectId(SPI_getbinval(tuple, retentions->tupdesc, 1, &isnull));
		Datum		keep = SPI_getbinval(tuple, retentions->tupdesc, 2, &isnull);
		Oid			owner = DatumGetObjectId(SPI_getbinval(tuple, retentions->tupdesc, 3, &isnull));
		int64		deleted = apply_to_source(source, keep, owner);
		Oid			types[2] = {REGCLASSOID, INT8OID};
		Datum		args[2] = {ObjectIdGetDatum(source), Int64GetDatum(deleted)};

		SPI_execute_with_args("UPDATE streamagg.retention SET last_run_at = pg_catalog.now(), "
							  "events_deleted = events_deleted + $2 WHERE source = $1",
							  2, types, args, NULL, false, 0);
		total += deleted;
	}
	SPI_finish();
	sa_catalog_access_end(&role);
	sa_unpin_search_path(nestlevel);
	return total;
}

/* streamagg.apply_retention(): apply retention now; returns events deleted. */
Datum
sa_apply_retention_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(sa_apply_retention());
}
