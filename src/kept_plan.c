/*-------------------------------------------------------------------------
 *
 * kept_plan.c
 *	  Fixed statements of streamagg, prepared once per backend.
 *
 * A trigger runs a handful of statements of its own on its catalog and
 * snapshots, whose texts never change; parsing and planning them anew each
 * time cost more than running them when a batch is small.  Each text is
 * prepared at its first use and its plan kept (SPI_keepplan) for the life
 * of the backend, found again by its text.  The plan cache replans a kept
 * statement after DDL on the tables it reads, or after ANALYZE of them, so
 * a kept plan follows the catalog's growth; texts are schema-qualified, so
 * a replan resolves the same objects.
 *
 * Only texts that are constants of streamagg belong here (never one that
 * embeds a value, or a user's expression): the list is a few entries long,
 * and searched by comparing texts.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "utils/memutils.h"

#include "kept_plan.h"

typedef struct KeptPlan
{
	char	   *sql;
	int			nargs;
	SPIPlanPtr	plan;
} KeptPlan;

static List *kept_plans = NIL;	/* of KeptPlan, in TopMemoryContext */

/*
 * The kept plan of "sql" (with these argument types, and SPI cursor
 * options, which must be the same at every use of the text), prepared now
 * if this backend has not prepared it yet.  The caller is in SPI.
 */
SPIPlanPtr
sa_kept_plan(const char *sql, int nargs, Oid *argtypes, int cursor_options)
{
	KeptPlan   *kept;
	SPIPlanPtr	plan;
	MemoryContext old;

	sa_foreach_ptr(KeptPlan, k, kept_plans)
		if (strcmp(k->sql, sql) == 0)
		{
			Assert(k->nargs == nargs);
			return k->plan;
		}

	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);
	if (plan == NULL)
		elog(ERROR, "could not prepare streamagg statement (%s): %s",
			 SPI_result_code_string(SPI_result), sql);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep streamagg statement: %s", sql);
	old = MemoryContextSwitchTo(TopMemoryContext);
	kept = palloc(sizeof(KeptPlan));
	kept->sql = pstrdup(sql);
	kept->nargs = nargs;
	kept->plan = plan;
	kept_plans = lappend(kept_plans, kept);
	MemoryContextSwitchTo(old);
	return plan;
}
