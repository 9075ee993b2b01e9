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

#include "catalog.h"
#include "definition.h"
#include "retention.h"
#include "security.h"
#include "source.h"
#include "trigger.h"

PG_FUNCTION_INFO_V1(sa_set_retention);
PG_FUNCTION_INFO_V1(sa_apply_retention_sql);

/* streamagg.set_retention(source regclass, keep interval) */
Datum
sa_set_retention(PG_FUNCTION_ARGS)
{
	Oid			source;
	Interval   *keep = NULL;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source must not be NULL")));
	source = PG_GETARG_OID(0);
	if (!pg_class_ownercheck(source, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(source));
	if (!PG_ARGISNULL(1))
	{
		keep = PG_GETARG_INTERVAL_P(1);
		if (keep->month < 0 || keep->day < 0 || keep->time < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("keep must not be negative")));
	}
	sa_forbid_in_trigger("streamagg.set_retention()");
	sa_catalog_set_retention(source, keep, GetUserId());
	PG_RETURN_VOID();
}

/*
 * Delete the consumed, old events of one source; returns how many.  The
 * DELETE runs the source's triggers and policies, so it runs as user code
 * of the retention's owner.
 */
static int64
apply_to_source(const SaRetention *r)
{
	SaSourceHorizon h;
	StringInfoData sql;
	SaRoleSave	role;
	int64		deleted;

	sa_catalog_source_horizon(r->source, &h);
	if (!h.all_consumed)
		return 0;				/* no query, or one that has not run yet */

	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s WHERE (%s IS NULL OR %s < $1)",
					 sa_relation_name(r->source),
					 SA_XID_COLUMN, SA_XID_COLUMN);
	sa_foreach_ptr(char, column, h.event_times)
	{
		const char *col = quote_identifier(column);

		appendStringInfo(&sql, " AND (%s IS NULL OR %s < pg_catalog.now() - $2)",
						 col, col);
	}

	/* sources are append-only (source.c), but for these deletes */
	sa_user_code_begin(r->owner, &role);
	sa_set_deleting_consumed(true);
	PG_TRY();
	{
		Oid			types[2] = {XID8OID, INTERVALOID};
		Datum		args[2] = {h.horizon, IntervalPGetDatum(r->keep)};

		SPI_connect();
		if (SPI_execute_with_args(sql.data, 2, types, args, NULL, false, 0) !=
			SPI_OK_DELETE)
			elog(ERROR, "could not delete consumed events of \"%s\"",
				 get_rel_name(r->source));
		deleted = SPI_processed;
		SPI_finish();
	}
	PG_FINALLY();
	{
		sa_set_deleting_consumed(false);
	}
	PG_END_TRY();
	sa_user_code_end(&role);
	return deleted;
}

/* Apply every retention of this database; returns the events deleted. */
int64
sa_apply_retention(void)
{
	int64		total = 0;
	int			nestlevel = sa_pin_search_path();

	sa_forbid_in_trigger("streamagg.apply_retention()");
	sa_foreach_ptr(SaRetention, r, sa_catalog_retentions())
	{
		int64		deleted = apply_to_source(r);

		sa_catalog_retention_ran(r->source, deleted);
		total += deleted;
	}
	sa_unpin_search_path(nestlevel);
	return total;
}

/* streamagg.apply_retention(): apply retention now; returns events deleted. */
Datum
sa_apply_retention_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(sa_apply_retention());
}
