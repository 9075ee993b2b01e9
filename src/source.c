/*-------------------------------------------------------------------------
 *
 * source.c
 *	  What streamagg adds to a table that queries read (a source), and the
 *	  rules it keeps there so that every row is counted exactly once.
 *
 * The first query on a table prepares it (see batch.c for why):
 *	  - a column streamagg_xid xid8 DEFAULT pg_current_xact_id(): each row's
 *	    inserting transaction, by which batches are read;
 *	  - a streamagg_brin index on it (xid_index.c), of 32-page block ranges
 *	    (SA_XID_PAGES_PER_RANGE), whose insert path also
 *	    refuses rows that carry another transaction's id and notes the
 *	    source for the wake-up at commit;
 *	  - a statement trigger after INSERT that notes the source too
 *	    (streamagg_source_committed);
 *	  - triggers that keep the source append-only while queries read it
 *	    (streamagg_source_append_only): UPDATE, DELETE and TRUNCATE would
 *	    change or remove events that were counted, or are still to be, and
 *	    are refused, except retention's own deletes of consumed events and
 *	    what a role does with streamagg.allow_source_changes on.  They fire
 *	    in replica mode too (ENABLE ALWAYS), so a subscriber's source takes
 *	    only inserts.
 * Attaching a partition with rows to a source is refused too (those rows
 * would carry ids the queries consider consumed, or NULL), unless every row
 * was consumed by every query of the source already: a partition detached
 * from this source and attached again is not counted twice.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"
#include "catalog.h"

#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "definition.h"
#include "init.h"
#include "launcher.h"
#include "source.h"

#define COMMITTED_TRIGGER "streamagg_source_committed"
#define APPEND_ONLY_TRIGGER "streamagg_source_append_only"
#define NO_TRUNCATE_TRIGGER "streamagg_source_no_truncate"

/*
 * Block ranges of the index on streamagg_xid.  A trigger reads every page
 * of the ranges that may hold its batch, at least the last partial one and
 * the last whole one (summarized by the next trigger): with BRIN's 128 pages
 * that was up to 256 pages, some 40 000 rows, however small the batch.  A
 * scan also reads one summary per range of the table: 32 pages keeps both
 * small up to about 10^8 rows (20 000 summaries, about 4 ms).
 */
#define SA_XID_PAGES_PER_RANGE 32

/*
 * The sources (as buckets of their OIDs) the current transaction inserted
 * into; at commit their commit counters move and their workers are woken
 * (init.c).
 */
static uint64 sources_touched = 0;

/* Set while retention deletes consumed events (retention.c). */
static bool deleting_consumed = false;

/* Run one SQL command as the current user, through SPI. */
void
sa_run_sql(const char *sql)
{
	SPI_connect();
	if (SPI_execute(sql, false, 0) < 0)
		elog(ERROR, "could not run: %s", sql);
	SPI_finish();
}

/* Does "relid" have a trigger of that name (calling which function)? */
static bool
has_trigger(Oid relid, const char *name, bool other_function)
{
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(name)};
	bool		found;

	SPI_connect();
	SPI_execute_with_args(other_function ?
						  "SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2 "
						  "AND tgfoid NOT IN ('streamagg.source_committed()'::pg_catalog.regprocedure, "
						  "'streamagg.source_append_only()'::pg_catalog.regprocedure)" :
						  "SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2",
						  2, argtypes, args, NULL, false, 1);
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/*
 * Check that "source" can be a source for the current user: an existing,
 * permanent table, which the user may read.  A streamagg_xid column it
 * already has must be of type xid8, and triggers of the names streamagg
 * uses must be streamagg's.
 */
void
sa_check_source(Oid source)
{
	char		relkind = get_rel_relkind(source);
	char	   *relname = get_rel_name(source);
	const char *names[3] = {COMMITTED_TRIGGER, APPEND_ONLY_TRIGGER,
	NO_TRUNCATE_TRIGGER};
	AclResult	aclresult;

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("source relation with OID %u does not exist", source)));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("source \"%s\" is not a table", relname)));
	if (get_rel_persistence(source) == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source \"%s\" is a temporary table", relname),
				 errdetail("Workers cannot see another session's temporary tables, and they disappear with it."),
				 errhint("Use an ordinary table.")));
	aclresult = pg_class_aclcheck(source, GetUserId(), ACL_SELECT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, relname);
	if (get_attnum(source, SA_XID_COLUMN) != InvalidAttrNumber)
		sa_check_xid_column(source);
	for (int i = 0; i < lengthof(names); i++)
		if (has_trigger(source, names[i], true))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("source \"%s\" already has a trigger named \"%s\"",
							relname, names[i]),
					 errdetail("streamagg adds a trigger of that name to its sources."),
					 errhint("Rename that trigger.")));
}

/*
 * Make a table a source (see the file header).  Rows already in the table
 * get NULL in streamagg_xid and belong to the first batch of every query;
 * adding the column does not rewrite the table.  What is missing is added
 * as the caller, who must then own the table.
 */
void
sa_prepare_source(Oid source)
{
	char	   *qualified = sa_relation_name(source);
	bool		has_column = get_attnum(source, SA_XID_COLUMN) != InvalidAttrNumber;
	bool		has_committed = has_trigger(source, COMMITTED_TRIGGER, false);
	bool		has_append_only = has_trigger(source, APPEND_ONLY_TRIGGER, false);
	bool		has_no_truncate = has_trigger(source, NO_TRUNCATE_TRIGGER, false);
	bool		has_index;
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(source);

	SPI_connect();
	SPI_execute_with_args("SELECT FROM pg_catalog.pg_index i "
						  "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid "
						  "AND a.attnum = i.indkey[0] "
						  "WHERE i.indrelid = $1 AND a.attname = '" SA_XID_COLUMN "'",
						  1, &argtype, &arg, NULL, false, 1);
	has_index = SPI_processed > 0;
	SPI_finish();

	if (has_column && has_committed && has_append_only && has_no_truncate &&
		has_index)
		return;
	if (!pg_class_ownercheck(source, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("source \"%s\" is not prepared for streaming queries, and only its owner may prepare it",
						get_rel_name(source)),
				 errdetail("The first query on a table adds a column, an index and triggers to it."),
				 errhint("Ask the owner of the table to create the first streaming query on it.")));
	if (!has_column)
		sa_run_sql(psprintf("ALTER TABLE %s ADD COLUMN %s pg_catalog.xid8, "
						 "ALTER COLUMN %s SET DEFAULT pg_catalog.pg_current_xact_id()",
						 qualified, SA_XID_COLUMN, SA_XID_COLUMN));
	if (!has_committed)
		sa_run_sql(psprintf("CREATE TRIGGER %s AFTER INSERT ON %s FOR EACH STATEMENT "
						 "EXECUTE FUNCTION streamagg.source_committed()",
						 COMMITTED_TRIGGER, qualified));
	if (!has_append_only)
		sa_run_sql(psprintf("CREATE TRIGGER %s BEFORE UPDATE OR DELETE ON %s FOR EACH ROW "
						 "EXECUTE FUNCTION streamagg.source_append_only(); "
						 "ALTER TABLE %s ENABLE ALWAYS TRIGGER %s",
						 APPEND_ONLY_TRIGGER, qualified, qualified,
						 APPEND_ONLY_TRIGGER));
	if (!has_no_truncate)
		sa_run_sql(psprintf("CREATE TRIGGER %s BEFORE TRUNCATE ON %s FOR EACH STATEMENT "
						 "EXECUTE FUNCTION streamagg.source_append_only(); "
						 "ALTER TABLE %s ENABLE ALWAYS TRIGGER %s",
						 NO_TRUNCATE_TRIGGER, qualified, qualified,
						 NO_TRUNCATE_TRIGGER));
	if (!has_index)
		sa_run_sql(psprintf("CREATE INDEX ON %s "
						 "USING streamagg_brin (%s streamagg.xid8_minmax_ops) "
						 "WITH (pages_per_range = %d)",
						 qualified, SA_XID_COLUMN, SA_XID_PAGES_PER_RANGE));
	CommandCounterIncrement();
}

/*
 * The last query of a source was dropped: its triggers go, if the caller
 * owns the source (a role that may only read a table must not take its
 * exclusive lock).  Otherwise they stay, and do nothing while no query
 * reads the source; the column and the index always stay.
 */
void
sa_release_source(Oid source)
{
	char	   *qualified;

	if (get_rel_name(source) == NULL ||
		!pg_class_ownercheck(source, GetUserId()))
		return;
	qualified = sa_relation_name(source);
	sa_run_sql(psprintf("DROP TRIGGER IF EXISTS %s ON %s; "
					 "DROP TRIGGER IF EXISTS %s ON %s; "
					 "DROP TRIGGER IF EXISTS %s ON %s",
					 COMMITTED_TRIGGER, qualified, APPEND_ONLY_TRIGGER, qualified,
					 NO_TRUNCATE_TRIGGER, qualified));
}

/* The source a table belongs to: itself, or its top partitioned table. */
static Oid
source_of(Relation rel)
{
	if (rel->rd_rel->relispartition)
		return llast_oid(get_partition_ancestors(RelationGetRelid(rel)));
	return RelationGetRelid(rel);
}

/* The current transaction inserted into "source" (xid_index.c, triggers). */
void
sa_note_source_insert(Oid source)
{
	sources_touched |= sa_source_bucket_bit(source);
}

/* The sources noted since the last call: at commit or abort (init.c). */
uint64
sa_take_sources_touched(void)
{
	uint64		touched = sources_touched;

	sources_touched = 0;
	return touched;
}

/* Retention deletes consumed events of a source (retention.c). */
void
sa_set_deleting_consumed(bool deleting)
{
	deleting_consumed = deleting;
}

/*
 * Do queries read "source"?  Asked once per source and transaction (a
 * changing row asks for each row).
 */
static bool
source_has_queries(Oid source)
{
	static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
	static Oid	cached_source = InvalidOid;
	static bool cached_answer = false;

	if (cached_lxid == MyProc->lxid && cached_source == source)
		return cached_answer;
	cached_answer = sa_catalog_source_has_queries(source);
	cached_lxid = MyProc->lxid;
	cached_source = source;
	return cached_answer;
}

PG_FUNCTION_INFO_V1(sa_source_committed);

/*
 * Statement-level AFTER INSERT trigger on sources: it only notes the
 * source; the cost for producers is one call per statement.
 */
Datum
sa_source_committed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("streamagg.source_committed() must be called as a trigger")));
	sa_note_source_insert(source_of(((TriggerData *) fcinfo->context)->tg_relation));
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(sa_source_append_only);

/*
 * BEFORE UPDATE OR DELETE (per row) and BEFORE TRUNCATE trigger on sources:
 * while queries read the source, changing or removing its events is
 * refused (see the file header).
 */
Datum
sa_source_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	const char *what;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("streamagg.source_append_only() must be called as a trigger")));
	event = trigdata->tg_event;
	if (TRIGGER_FIRED_BY_UPDATE(event))
		what = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(event))
		what = "DELETE";
	else
		what = "TRUNCATE";
	if (!sa_allow_source_changes &&
		!(deleting_consumed && TRIGGER_FIRED_BY_DELETE(event)) &&
		source_has_queries(source_of(trigdata->tg_relation)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s on source \"%s\" is not allowed: streaming queries read it",
						what, RelationGetRelationName(trigdata->tg_relation)),
				 errdetail("A source is append-only: its events are counted once, when they are inserted, and changes or deletions are never taken back from the results."),
				 errhint("Delete consumed events with streamagg.set_retention(). To change a source anyway (its results will not follow), set streamagg.allow_source_changes to on.")));
	if (TRIGGER_FIRED_FOR_STATEMENT(event))
		return PointerGetDatum(NULL);
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(event) ?
						   trigdata->tg_newtuple : trigdata->tg_trigtuple);
}

/*
 * ALTER TABLE source ATTACH PARTITION partition: refused if the partition
 * has a row that some query of the source has not consumed (see the file
 * header).  Called by the utility hook before the command runs.
 */
void
sa_check_attach_partition(Oid parent, Oid partition)
{
	SaSourceHorizon h;
	bool		uncounted;

	if (sa_allow_source_changes || !OidIsValid(partition) ||
		get_attnum(partition, SA_XID_COLUMN) == InvalidAttrNumber)
		return;
	sa_catalog_source_horizon(parent, &h);
	if (h.nqueries == 0)
		return;

	/* as the caller, who owns both tables */
	SPI_connect();
	{
		Oid			xidtype = XID8OID;
		char		nulls = h.all_consumed ? ' ' : 'n';

		SPI_execute_with_args(psprintf("SELECT FROM %s WHERE %s IS NULL OR $1 IS NULL OR %s >= $1 LIMIT 1",
									   sa_relation_name(partition), SA_XID_COLUMN,
									   SA_XID_COLUMN),
							  1, &xidtype, &h.horizon, &nulls, true, 1);
	}
	uncounted = SPI_processed > 0;
	SPI_finish();
	if (uncounted)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("partition \"%s\" has rows that the streaming queries of \"%s\" would never count",
						get_rel_name(partition), get_rel_name(parent)),
				 errdetail("Rows attached with a partition keep the transaction ids they had, which the queries' positions in the source have passed, or NULL."),
				 errhint("Attach the partition empty and insert its rows through the source, without streamagg_xid in the column list.")));
}
