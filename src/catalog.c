/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Every read and write of streamagg's catalog tables (query_def,
 *	  checkpoint, batch_log, retention), and the per-query lock.
 *
 * The tables belong to the extension's owner and have row security for
 * everyone else; each function here reads or writes them as that owner
 * (security.c), in the caller's transaction.  Nothing here runs user code:
 * callers that delete events or write sinks switch to the query's owner
 * themselves.  streamagg.state_log is written only by the durable log
 * (state_log.c), and emptied here when a query is dropped.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "definition.h"
#include "kept_plan.h"
#include "security.h"

/*
 * The version of the catalog (the extension's SQL objects) this library
 * reads and writes.  A library installed over an older catalog refuses to
 * work until ALTER EXTENSION streamagg UPDATE brings the catalog up to it.
 */
#define SA_CATALOG_VERSION "0.7"

/*
 * Connect to SPI as the extension's owner; catalog_end undoes both.  Values
 * read must be copied out before catalog_end (SPI_datumTransfer, or built
 * in the caller's context).
 */
static void
catalog_begin(SaRoleSave *role)
{
	sa_catalog_access_begin(role);
	SPI_connect();
}

static void
catalog_end(SaRoleSave *role)
{
	SPI_finish();
	sa_catalog_access_end(role);
}

/*
 * Run a catalog statement that must succeed, with its parameters.  Its text
 * is a constant of this file: its plan is kept (kept_plan.c).
 */
static void
catalog_execute(const char *sql, int nargs, Oid *types, Datum *args,
				const char *nulls, int expected)
{
	int			ret = SPI_execute_plan(sa_kept_plan(sql, nargs, types, 0),
									   args, nulls, false, 0);

	if (ret != expected)
		elog(ERROR, "streamagg catalog statement failed (%s): %s",
			 SPI_result_code_string(ret), sql);
}

/*
 * One catalog statement on its own, as the extension's owner; returns the
 * number of rows it processed.
 */
static uint64
catalog_run(const char *sql, int nargs, Oid *types, Datum *args,
			const char *nulls, int expected)
{
	SaRoleSave	role;
	uint64		processed;

	catalog_begin(&role);
	catalog_execute(sql, nargs, types, args, nulls, expected);
	processed = SPI_processed;
	catalog_end(&role);
	return processed;
}

/* Column "col" of the first result row, and whether it is NULL. */
static Datum
result_value(int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col,
						 isnull);
}

/* Called inside SPI; a backend that saw the right version once is done. */
static void
check_catalog_version(void)
{
	static bool checked = false;
	char	   *version;

	if (checked)
		return;
	SPI_execute("SELECT extversion FROM pg_catalog.pg_extension "
				"WHERE extname = 'streamagg'", true, 1);
	if (SPI_processed != 1)
		return;					/* being dropped; the caller finds nothing */
	version = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (strcmp(version, SA_CATALOG_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("streamagg's catalog is at version %s, its library at version %s",
						version, SA_CATALOG_VERSION),
				 errhint("Run ALTER EXTENSION streamagg UPDATE in this database.")));
	checked = true;
}

/* ---- query definitions ---- */

static bool
get_interval(HeapTuple tuple, TupleDesc desc, int col, int64 *value)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	*value = isnull ? 0 : sa_interval_usec(DatumGetIntervalP(d), "interval");
	return !isnull;
}

/* A window interval column (months apart); see sa_window_interval. */
static bool
get_window_interval(HeapTuple tuple, TupleDesc desc, int col, int64 *value,
					int32 *months)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	*value = 0;
	*months = 0;
	if (!isnull)
		*value = sa_window_interval(DatumGetIntervalP(d), "interval", months);
	return !isnull;
}

#define DEFINITION_COLUMNS \
	"query_id, name, source, event_time, aggregates_sql, group_by_sql, " \
	"window_size, window_slide, window_offset, session_gap, watermark, " \
	"output_mode, sink, trigger_interval, owner, paused, sink_function, " \
	"sink_merge, notify_channel, filter_sql, join_sql, columns_sql, " \
	"dedup_sql, idle_timeout, late_sink, time_zone, max_batch_rows"

/* Fill "def" from a row of DEFINITION_COLUMNS, in the current context. */
static void
definition_from_tuple(HeapTuple tuple, TupleDesc desc, SaDefinition *def)
{
	bool		isnull;

	memset(def, 0, sizeof(*def));
	def->query_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
	def->name = SPI_getvalue(tuple, desc, 2);
	def->source = DatumGetObjectId(SPI_getbinval(tuple, desc, 3, &isnull));
	def->event_time = SPI_getvalue(tuple, desc, 4);
	def->aggregates = SPI_getvalue(tuple, desc, 5);
	def->group_by = SPI_getvalue(tuple, desc, 6);
	def->has_window = get_window_interval(tuple, desc, 7, &def->window_size,
										  &def->window_size_months);
	if (!get_window_interval(tuple, desc, 8, &def->window_slide,
							 &def->window_slide_months))
	{
		def->window_slide = def->window_size;
		def->window_slide_months = def->window_size_months;
	}
	(void) get_window_interval(tuple, desc, 9, &def->window_offset,
							   &def->window_offset_months);
	def->has_session = get_interval(tuple, desc, 10, &def->session_gap);
	def->has_watermark = get_interval(tuple, desc, 11, &def->watermark_delay);
	def->output_mode = sa_parse_output_mode(SPI_getvalue(tuple, desc, 12));
	def->sink = DatumGetObjectId(SPI_getbinval(tuple, desc, 13, &isnull));
	def->has_trigger_interval = get_interval(tuple, desc, 14,
											 &def->trigger_interval);
	def->owner = DatumGetObjectId(SPI_getbinval(tuple, desc, 15, &isnull));
	def->paused = DatumGetBool(SPI_getbinval(tuple, desc, 16, &isnull));
	def->sink_function = DatumGetObjectId(SPI_getbinval(tuple, desc, 17, &isnull));
	def->sink_merge = SPI_getvalue(tuple, desc, 18);
	def->notify_channel = SPI_getvalue(tuple, desc, 19);
	def->filter = SPI_getvalue(tuple, desc, 20);
	def->join = SPI_getvalue(tuple, desc, 21);
	def->columns = SPI_getvalue(tuple, desc, 22);
	def->dedup = SPI_getvalue(tuple, desc, 23);
	def->has_idle_timeout = get_interval(tuple, desc, 24, &def->idle_timeout);
	def->late_sink = DatumGetObjectId(SPI_getbinval(tuple, desc, 25, &isnull));
	def->time_zone = SPI_getvalue(tuple, desc, 26);
	def->max_batch_rows = DatumGetInt64(SPI_getbinval(tuple, desc, 27, &isnull));
	if (isnull)
		def->max_batch_rows = 0;
}

/*
 * Load a definition by query name or id; the strings are allocated in the
 * caller's memory context.
 */
static bool
load_definition(const char *where, Oid argtype, Datum arg, SaDefinition *def)
{
	MemoryContext caller = CurrentMemoryContext;
	bool		found;
	SaRoleSave	role;

	catalog_begin(&role);
	check_catalog_version();
	catalog_execute(psprintf("SELECT " DEFINITION_COLUMNS
							 " FROM streamagg.query_def WHERE %s", where),
					1, &argtype, &arg, NULL, SPI_OK_SELECT);
	found = SPI_processed == 1;
	if (found)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);

		definition_from_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
							  def);
		MemoryContextSwitchTo(spi);
	}
	catalog_end(&role);
	return found;
}

bool
sa_load_definition_by_name(const char *name, SaDefinition *def,
						   bool missing_ok)
{
	if (load_definition("name = $1", TEXTOID, CStringGetTextDatum(name), def))
		return true;
	if (!missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("streaming query \"%s\" does not exist", name),
				 errhint("See SELECT name FROM streamagg.queries.")));
	return false;
}

/* Does the query still exist (a worker's schedule may be a moment old)? */
bool
sa_query_exists(int32 query_id)
{
	SaDefinition def;

	return load_definition("query_id = $1", INT4OID, Int32GetDatum(query_id),
						   &def);
}

void
sa_load_definition_by_id(int32 query_id, SaDefinition *def)
{
	if (!load_definition("query_id = $1", INT4OID, Int32GetDatum(query_id),
						 def))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("streaming query %d does not exist", query_id)));
}

/* An interval argument, or NULL (nulls[i] 'n'). */
static void
interval_or_null(Interval *iv, Datum *arg, char *null)
{
	*arg = PointerGetDatum(iv);
	*null = iv ? ' ' : 'n';
}

/* A text argument, or NULL. */
static void
text_or_null(const char *s, Datum *arg, char *null)
{
	*arg = s ? CStringGetTextDatum(s) : (Datum) 0;
	*null = s ? ' ' : 'n';
}

/* An OID argument, NULL when invalid. */
static void
oid_or_null(Oid oid, Datum *arg, char *null)
{
	*arg = ObjectIdGetDatum(oid);
	*null = OidIsValid(oid) ? ' ' : 'n';
}

/*
 * Make every backend compile its queries again (query_cache.c): an UPDATE
 * of query_def sends no invalidation of its own, so send a relcache
 * invalidation of query_def, delivered at commit.
 */
static void
invalidate_compiled_queries(void)
{
	CacheInvalidateRelcacheByRelid(get_relname_relid("query_def",
													 get_namespace_oid("streamagg", false)));
}

/* The columns of a query's definition in streamagg.query_def, in order. */
#define QUERY_ROW_COLUMNS \
	"name, source, event_time, aggregates, group_by, aggregates_sql, " \
	"group_by_sql, window_size, window_slide, window_offset, session_gap, " \
	"watermark, output_mode, sink, trigger_interval, owner, sink_function, " \
	"sink_merge, notify_channel, filter, filter_sql, \"join\", join_sql, " \
	"columns, columns_sql, dedup, dedup_sql, idle_timeout, late_sink, " \
	"time_zone, max_batch_rows"
#define QUERY_ROW_NCOLUMNS 31

static const Oid query_row_types[QUERY_ROW_NCOLUMNS] = {TEXTOID, REGCLASSOID,
	TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INTERVALOID, INTERVALOID,
	INTERVALOID, INTERVALOID, INTERVALOID, TEXTOID, REGCLASSOID, INTERVALOID,
	REGROLEOID, REGPROCEDUREOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INTERVALOID, REGCLASSOID,
TEXTOID, INT8OID};

/* The values of QUERY_ROW_COLUMNS for "row". */
static void
query_row_values(const SaQueryRow *row, Datum *args, char *nulls)
{
	const SaDefinition *def = row->def;

	memset(nulls, ' ', QUERY_ROW_NCOLUMNS);
	args[0] = CStringGetTextDatum(def->name);
	args[1] = ObjectIdGetDatum(def->source);
	text_or_null(def->event_time, &args[2], &nulls[2]);
	text_or_null(row->aggregates_text, &args[3], &nulls[3]);
	text_or_null(row->group_by_text, &args[4], &nulls[4]);
	text_or_null(def->aggregates, &args[5], &nulls[5]);
	text_or_null(def->group_by, &args[6], &nulls[6]);
	interval_or_null(row->window_size, &args[7], &nulls[7]);
	interval_or_null(row->window_slide, &args[8], &nulls[8]);
	interval_or_null(row->window_offset, &args[9], &nulls[9]);
	interval_or_null(row->session_gap, &args[10], &nulls[10]);
	interval_or_null(row->watermark, &args[11], &nulls[11]);
	args[12] = CStringGetTextDatum(sa_output_mode_name(def->output_mode));
	oid_or_null(def->sink, &args[13], &nulls[13]);
	interval_or_null(row->trigger_interval, &args[14], &nulls[14]);
	args[15] = ObjectIdGetDatum(def->owner);
	oid_or_null(def->sink_function, &args[16], &nulls[16]);
	text_or_null(def->sink_merge, &args[17], &nulls[17]);
	text_or_null(def->notify_channel, &args[18], &nulls[18]);
	text_or_null(row->filter_text, &args[19], &nulls[19]);
	text_or_null(def->filter, &args[20], &nulls[20]);
	text_or_null(row->join_text, &args[21], &nulls[21]);
	text_or_null(def->join, &args[22], &nulls[22]);
	text_or_null(row->columns_text, &args[23], &nulls[23]);
	text_or_null(def->columns, &args[24], &nulls[24]);
	text_or_null(row->dedup_text, &args[25], &nulls[25]);
	text_or_null(def->dedup, &args[26], &nulls[26]);
	interval_or_null(row->idle_timeout, &args[27], &nulls[27]);
	oid_or_null(def->late_sink, &args[28], &nulls[28]);
	text_or_null(def->time_zone, &args[29], &nulls[29]);
	args[30] = Int64GetDatum(def->max_batch_rows);
	nulls[30] = def->max_batch_rows > 0 ? ' ' : 'n';
}

/*
 * Insert a new query and its empty checkpoint; returns its id.  The
 * statement trigger on query_def tells the workers (init.c).
 */
int32
sa_catalog_insert_query(const SaQueryRow *row)
{
	Datum		args[QUERY_ROW_NCOLUMNS];
	char		nulls[QUERY_ROW_NCOLUMNS];
	Oid			cptypes[2] = {INT4OID, TEXTOID};
	Datum		cpargs[2];
	SaRoleSave	role;
	int32		query_id;
	bool		isnull;

	query_row_values(row, args, nulls);
	catalog_begin(&role);
	/* no row limit: it would stop the INSERT before its statement triggers */
	catalog_execute("INSERT INTO streamagg.query_def (" QUERY_ROW_COLUMNS ") "
					"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
					"$12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, "
					"$23, $24, $25, $26, $27, $28, $29, $30, $31) "
					"RETURNING query_id",
					QUERY_ROW_NCOLUMNS, (Oid *) query_row_types, args, nulls,
					SPI_OK_INSERT_RETURNING);
	query_id = DatumGetInt32(result_value(1, &isnull));
	cpargs[0] = Int32GetDatum(query_id);
	cpargs[1] = CStringGetTextDatum(row->state_signature);
	catalog_execute("INSERT INTO streamagg.checkpoint (query_id, state_signature) "
					"VALUES ($1, $2)", 2, cptypes, cpargs, NULL, SPI_OK_INSERT);
	catalog_end(&role);
	return query_id;
}

/*
 * Replace the definition of query "query_id" by "row" (alter_query with
 * reprocess, after the query was reset), and make every backend compile
 * it again.
 */
void
sa_catalog_replace_query(int32 query_id, const SaQueryRow *row)
{
	Datum		args[QUERY_ROW_NCOLUMNS + 1];
	char		nulls[QUERY_ROW_NCOLUMNS + 1];
	Oid			types[QUERY_ROW_NCOLUMNS + 1];
	SaRoleSave	role;

	query_row_values(row, args, nulls);
	memcpy(types, query_row_types, sizeof(query_row_types));
	types[QUERY_ROW_NCOLUMNS] = INT4OID;
	args[QUERY_ROW_NCOLUMNS] = Int32GetDatum(query_id);
	nulls[QUERY_ROW_NCOLUMNS] = ' ';
	catalog_begin(&role);
	catalog_execute("UPDATE streamagg.query_def SET (" QUERY_ROW_COLUMNS ") = "
					"ROW($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
					"$14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, "
					"$26, $27, $28, $29, $30, $31) WHERE query_id = $32",
					QUERY_ROW_NCOLUMNS + 1, types, args, nulls, SPI_OK_UPDATE);
	invalidate_compiled_queries();
	catalog_end(&role);
}

/*
 * The arguments create_query was called with for query "query_id", as it
 * stored them (the texts as written, the sink, sink function and late sink
 * by name), in create_query's order: what alter_query changes with
 * reprocess.  The values are copied into the caller's memory context.
 */
void
sa_catalog_create_arguments(int32 query_id, Datum *values, bool *nulls)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(query_id);
	SaRoleSave	role;
	TupleDesc	desc;

	catalog_begin(&role);
	catalog_execute("SELECT name, source, event_time, aggregates, group_by, "
					"window_size, window_slide, window_offset, session_gap, "
					"watermark, output_mode, sink::text, trigger_interval, "
					"sink_function::text, notify_channel, sink_merge, filter, "
					"\"join\", columns, dedup, idle_timeout, late_sink::text, "
					"time_zone, max_batch_rows "
					"FROM streamagg.query_def WHERE query_id = $1",
					1, &argtype, &arg, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "streaming query %d does not exist", query_id);
	desc = SPI_tuptable->tupdesc;
	Assert(desc->natts == SA_CREATE_QUERY_NARGS);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], desc, i + 1, &nulls[i]);
		MemoryContext spi = MemoryContextSwitchTo(caller);

		values[i] = nulls[i] ? (Datum) 0 : datumCopy(d, att->attbyval, att->attlen);
		MemoryContextSwitchTo(spi);
	}
	catalog_end(&role);
}

/*
 * Apply alter_query's change to a query's definition, and make every
 * backend compile the query again (query_cache.c): an UPDATE of query_def
 * sends no invalidation of its own.  The statement trigger on query_def
 * tells the workers, for a new trigger_interval.
 */
void
sa_catalog_alter_query(const SaAlteration *change)
{
	Oid			types[9] = {INT4OID, INTERVALOID, INTERVALOID, TEXTOID, TEXTOID,
	REGPROCEDUREOID, INTERVALOID, REGCLASSOID, INT8OID};
	Datum		args[9];
	char		nulls[9];
	SaRoleSave	role;

	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int32GetDatum(change->query_id);
	interval_or_null(change->trigger_interval, &args[1], &nulls[1]);
	interval_or_null(change->watermark, &args[2], &nulls[2]);
	text_or_null(change->notify_channel, &args[3], &nulls[3]);
	text_or_null(change->sink_merge, &args[4], &nulls[4]);
	oid_or_null(change->sink_function, &args[5], &nulls[5]);
	interval_or_null(change->idle_timeout, &args[6], &nulls[6]);
	oid_or_null(change->late_sink, &args[7], &nulls[7]);
	args[8] = Int64GetDatum(change->max_batch_rows);
	nulls[8] = change->max_batch_rows > 0 ? ' ' : 'n';

	catalog_begin(&role);
	catalog_execute("UPDATE streamagg.query_def SET "
					"trigger_interval = coalesce($2, trigger_interval), "
					"watermark = coalesce($3, watermark), "
					"notify_channel = coalesce($4, notify_channel), "
					"sink_merge = coalesce($5, sink_merge), "
					"sink = CASE WHEN $6 IS NULL THEN sink END, "
					"sink_function = coalesce($6, sink_function), "
					"idle_timeout = coalesce($7, idle_timeout), "
					"late_sink = coalesce($8, late_sink), "
					"max_batch_rows = coalesce($9, max_batch_rows) "
					"WHERE query_id = $1", 9, types, args, nulls, SPI_OK_UPDATE);
	invalidate_compiled_queries();
	catalog_end(&role);
}

/*
 * Pause or resume a query.  Resuming also ends the wait before the retry
 * of a failed trigger.
 */
void
sa_catalog_set_paused(int32 query_id, bool paused)
{
	Oid			types[2] = {INT4OID, BOOLOID};
	Datum		args[2] = {Int32GetDatum(query_id), BoolGetDatum(paused)};
	SaRoleSave	role;

	catalog_begin(&role);
	catalog_execute("UPDATE streamagg.query_def SET paused = $2 WHERE query_id = $1",
					2, types, args, NULL, SPI_OK_UPDATE);
	if (!paused)
		catalog_execute("UPDATE streamagg.checkpoint SET retry_at = NULL "
						"WHERE query_id = $1", 1, types, args, NULL,
						SPI_OK_UPDATE);
	catalog_end(&role);
}

/*
 * Delete a query with its checkpoint, progress and state log (the foreign
 * keys cascade); returns whether other queries still read its source.
 */
bool
sa_catalog_delete_query(int32 query_id, Oid source)
{
	Oid			types[2] = {INT4OID, OIDOID};
	Datum		args[2] = {Int32GetDatum(query_id), ObjectIdGetDatum(source)};
	SaRoleSave	role;
	bool		source_still_used;

	catalog_begin(&role);
	catalog_execute("DELETE FROM streamagg.query_def WHERE query_id = $1",
					1, types, args, NULL, SPI_OK_DELETE);
	/* and the state of its dedup keys, under -query_id (definition.c) */
	catalog_execute("DELETE FROM streamagg.state_log WHERE query_id IN ($1, -$1)",
					1, types, args, NULL, SPI_OK_DELETE);
	catalog_execute("SELECT FROM streamagg.query_def WHERE source = $2 "
					"AND query_id <> $1 LIMIT 1", 2, types, args, NULL,
					SPI_OK_SELECT);
	source_still_used = SPI_processed > 0;
	catalog_end(&role);
	return source_still_used;
}

/*
 * The name of the query whose sink is "sink" (in the caller's context),
 * with its owner, or NULL.
 */
char *
sa_catalog_query_of_sink(Oid sink, Oid *owner)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(sink);
	SaRoleSave	role;
	char	   *name = NULL;

	catalog_begin(&role);
	catalog_execute("SELECT name, owner FROM streamagg.query_def WHERE sink = $1 LIMIT 1",
					1, &argtype, &arg, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		bool		isnull;

		name = MemoryContextStrdup(caller,
								   SPI_getvalue(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1));
		*owner = DatumGetObjectId(result_value(2, &isnull));
	}
	catalog_end(&role);
	return name;
}

/* Does any query read "source"? */
bool
sa_catalog_source_has_queries(Oid source)
{
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(source);

	return catalog_run("SELECT FROM streamagg.query_def WHERE source = $1 LIMIT 1",
					   1, &argtype, &arg, NULL, SPI_OK_SELECT) > 0;
}

/*
 * The queries the workers run: a trigger_interval, not paused; in the
 * caller's memory context, by query id.
 */
List *
sa_catalog_scheduled_queries(void)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *queries = NIL;
	SaRoleSave	role;

	catalog_begin(&role);
	catalog_execute("SELECT d.query_id, d.name, d.trigger_interval, "
					"c.retry_at > pg_catalog.now(), d.source, d.idle_timeout "
					"FROM streamagg.query_def d "
					"JOIN streamagg.checkpoint c USING (query_id) "
					"WHERE d.trigger_interval IS NOT NULL AND NOT d.paused "
					"ORDER BY d.query_id", 0, NULL, NULL, NULL, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext spi = MemoryContextSwitchTo(caller);
		SaScheduledQuery *sq = palloc0(sizeof(SaScheduledQuery));
		bool		isnull;
		Datum		retry;

		sq->query_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
		sq->name = SPI_getvalue(tuple, desc, 2);
		(void) get_interval(tuple, desc, 3, &sq->interval_usec);
		retry = SPI_getbinval(tuple, desc, 4, &isnull);
		sq->waiting_retry = !isnull && DatumGetBool(retry);
		sq->source = DatumGetObjectId(SPI_getbinval(tuple, desc, 5, &isnull));
		sq->has_idle_timeout = get_interval(tuple, desc, 6, &sq->idle_timeout);
		queries = lappend(queries, sq);
		MemoryContextSwitchTo(spi);
	}
	catalog_end(&role);
	return queries;
}

/* ---- checkpoints and progress ---- */

static int64
timestamp_or(HeapTuple tuple, TupleDesc desc, int col, bool *has)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	*has = !isnull;
	return isnull ? 0 : DatumGetTimestampTz(d);
}

/*
 * Read a query's checkpoint into *cp (snapshots and strings in the caller's
 * context).  False when the query has none (it was dropped), an error
 * unless "missing_ok".
 */
bool
sa_catalog_read_checkpoint(int32 query_id, SaCheckpoint *cp, bool missing_ok)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(query_id);
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	SaRoleSave	role;
	MemoryContext spi;

	memset(cp, 0, sizeof(*cp));
	catalog_begin(&role);
	catalog_execute("SELECT last_batch_id, consumed_snapshot, planned_batch_id, "
					"planned_snapshot, watermark, max_event_time, last_batch_at, "
					"state_signature, planned_at, max_event_time_at "
					"FROM streamagg.checkpoint WHERE query_id = $1",
					1, &argtype, &arg, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
	{
		catalog_end(&role);
		if (!missing_ok)
			elog(ERROR, "checkpoint of streaming query %d is missing", query_id);
		return false;
	}
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	d = SPI_getbinval(tuple, desc, 1, &isnull);
	cp->has_batch = !isnull;
	cp->last_batch_id = isnull ? -1 : DatumGetInt64(d);
	d = SPI_getbinval(tuple, desc, 2, &isnull);
	cp->has_consumed = !isnull;
	if (!isnull)
		cp->consumed_snapshot = SPI_datumTransfer(d, false, -1);
	d = SPI_getbinval(tuple, desc, 3, &isnull);
	cp->has_planned = !isnull;
	cp->planned_batch_id = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(tuple, desc, 4, &isnull);
	if (cp->has_planned && !isnull)
		cp->planned_snapshot = SPI_datumTransfer(d, false, -1);
	else
		cp->has_planned = false;
	cp->watermark = timestamp_or(tuple, desc, 5, &cp->has_watermark);
	cp->max_event_time = timestamp_or(tuple, desc, 6, &cp->has_max_event_time);
	cp->last_batch_at = timestamp_or(tuple, desc, 7, &cp->has_last_batch_at);
	cp->planned_at = timestamp_or(tuple, desc, 9, &cp->has_planned_at);
	cp->has_planned_at = cp->has_planned_at && cp->has_planned;
	cp->max_event_time_at = timestamp_or(tuple, desc, 10,
										 &cp->has_max_event_time_at);
	spi = MemoryContextSwitchTo(caller);
	cp->state_signature = SPI_getvalue(tuple, desc, 8);
	MemoryContextSwitchTo(spi);
	catalog_end(&role);
	return true;
}

/*
 * Plan batch "batch_id" of a query to end at "snapshot", unless that is the
 * snapshot it already consumed (nothing can have been committed since).
 * Returns whether it planned.
 */
bool
sa_catalog_plan_batch(int32 query_id, int64 batch_id, Datum snapshot,
					  TimestampTz planned_at, bool even_if_unchanged)
{
	Oid			types[5] = {INT4OID, INT8OID, PG_SNAPSHOTOID, TIMESTAMPTZOID,
	BOOLOID};
	Datum		args[5] = {Int32GetDatum(query_id), Int64GetDatum(batch_id),
		snapshot, TimestampTzGetDatum(planned_at),
	BoolGetDatum(even_if_unchanged)};

	return catalog_run("UPDATE streamagg.checkpoint SET planned_batch_id = $2, "
					   "planned_snapshot = $3, planned_at = $4 "
					   "WHERE query_id = $1 AND "
					   "($5 OR consumed_snapshot IS NULL OR "
					   "consumed_snapshot::text <> $3::text)",
					   5, types, args, NULL, SPI_OK_UPDATE) > 0;
}

/* A planned batch without rows: the snapshot is consumed, no batch counted. */
void
sa_catalog_consume_empty_plan(int32 query_id)
{
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(query_id);

	(void) catalog_run("UPDATE streamagg.checkpoint SET consumed_snapshot = planned_snapshot, "
					   "planned_batch_id = NULL, planned_snapshot = NULL, "
					   "planned_at = NULL "
					   "WHERE query_id = $1", 1, &argtype, &arg, NULL,
					   SPI_OK_UPDATE);
}

/*
 * reset_query: the query forgets its position, watermark and durable state;
 * its batch ids go on from the last one (last_batch_id is kept), and its
 * progress rows stay.  The next batch reads the source from its beginning
 * (no consumed snapshot).  Any plan and recorded error go too.
 */
void
sa_catalog_reset_query(int32 query_id)
{
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(query_id);
	SaRoleSave	role;

	catalog_begin(&role);
	catalog_execute("UPDATE streamagg.checkpoint SET consumed_snapshot = NULL, "
					"planned_batch_id = NULL, planned_snapshot = NULL, "
					"watermark = NULL, max_event_time = NULL, "
					"planned_at = NULL, max_event_time_at = NULL, "
					"state_signature = NULL, last_error = NULL, "
					"last_error_at = NULL, failures = 0, retry_at = NULL "
					"WHERE query_id = $1", 1, &argtype, &arg, NULL,
					SPI_OK_UPDATE);
	if (SPI_processed != 1)
		elog(ERROR, "checkpoint of streaming query %d is missing", query_id);
	/* and the state of its dedup keys, under -query_id (definition.c) */
	catalog_execute("DELETE FROM streamagg.state_log WHERE query_id IN ($1, -$1)",
					1, &argtype, &arg, NULL, SPI_OK_DELETE);
	catalog_end(&role);
}

/* Batches of a query that streamagg.batch_log keeps. */
#define SA_BATCH_LOG_KEEP 100

/*
 * Batch ids of a query go up by one (trigger.c asserts it), and each batch
 * adds its row here: so deleting the row SA_BATCH_LOG_KEEP batches back
 * keeps exactly the last SA_BATCH_LOG_KEEP.  That is one index probe; once
 * per SA_BATCH_LOG_KEEP batches every older row goes too, in case some
 * were left (by an older version, or a different SA_BATCH_LOG_KEEP).  A
 * range delete at every trigger was planned as a scan of the whole log,
 * dead rows included, which cost more than the rest of a small trigger.
 */
static const char *
batch_log_trim_sql(int64 batch_id)
{
	return batch_id % SA_BATCH_LOG_KEEP == 0 ?
		"DELETE FROM streamagg.batch_log WHERE query_id = $1 AND batch_id <= $2" :
		"DELETE FROM streamagg.batch_log WHERE query_id = $1 AND batch_id = $2";
}

/*
 * Step 5 of a trigger: the new checkpoint (which also clears the plan and
 * any recorded error) and the batch's row in streamagg.batch_log.
 */
void
sa_catalog_record_batch(const SaBatchRecord *rec)
{
	Oid			cptypes[8] = {INT4OID, INT8OID, PG_SNAPSHOTOID, TIMESTAMPTZOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TIMESTAMPTZOID};
	Datum		cpargs[8];
	char		cpnulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Oid			logtypes[22] = {INT4OID, INT8OID, TIMESTAMPTZOID, FLOAT8OID,
		INT8OID, FLOAT8OID, FLOAT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
		TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
	FLOAT8OID, FLOAT8OID, FLOAT8OID, INT8OID, INT8OID, INT8OID, INT8OID};
	Datum		logargs[22];
	char		lognulls[22];
	Oid			trimtypes[2] = {INT4OID, INT8OID};
	Datum		trimargs[2];
	double		since_last;
	SaRoleSave	role;

	cpargs[0] = Int32GetDatum(rec->query_id);
	cpargs[1] = Int64GetDatum(rec->batch_id);
	cpargs[2] = rec->snapshot;
	cpargs[3] = TimestampTzGetDatum(rec->watermark);
	cpnulls[3] = rec->has_watermark ? ' ' : 'n';
	cpargs[4] = TimestampTzGetDatum(rec->max_event_time);
	cpnulls[4] = rec->has_max_event_time ? ' ' : 'n';
	cpargs[5] = TimestampTzGetDatum(rec->started_at);
	cpargs[6] = CStringGetTextDatum(rec->state_signature);
	cpargs[7] = TimestampTzGetDatum(rec->max_event_time_at);
	cpnulls[7] = rec->has_max_event_time_at ? ' ' : 'n';

	memset(lognulls, ' ', sizeof(lognulls));
	logargs[0] = Int32GetDatum(rec->query_id);
	logargs[1] = Int64GetDatum(rec->batch_id);
	logargs[2] = TimestampTzGetDatum(rec->started_at);
	logargs[3] = Float8GetDatum(rec->duration_ms);
	logargs[4] = Int64GetDatum(rec->input_rows);
	since_last = rec->has_last_batch_at ?
		(double) (rec->started_at - rec->last_batch_at) / USECS_PER_SEC : 0;
	logargs[5] = Float8GetDatum(since_last > 0 ? rec->input_rows / since_last : 0);
	lognulls[5] = since_last > 0 ? ' ' : 'n';
	logargs[6] = Float8GetDatum(rec->duration_ms > 0 ?
								rec->input_rows / (rec->duration_ms / 1000.0) : 0);
	lognulls[6] = rec->duration_ms > 0 ? ' ' : 'n';
	logargs[7] = TimestampTzGetDatum(rec->event_time_min);
	logargs[8] = TimestampTzGetDatum(rec->event_time_max);
	lognulls[7] = lognulls[8] = rec->has_event_time ? ' ' : 'n';
	logargs[9] = TimestampTzGetDatum(rec->watermark);
	lognulls[9] = rec->has_watermark ? ' ' : 'n';
	logargs[10] = Int64GetDatum(rec->state_rows_total);
	logargs[11] = Int64GetDatum(rec->state_rows_updated);
	logargs[12] = Int64GetDatum(rec->late_rows);
	logargs[13] = Int64GetDatum(rec->null_time_rows);
	logargs[14] = Int64GetDatum(rec->sink_rows);
	logargs[15] = Float8GetDatum(rec->aggregate_ms);
	logargs[16] = Float8GetDatum(rec->sink_ms);
	logargs[17] = Float8GetDatum(rec->state_log_ms);
	logargs[18] = Int64GetDatum(rec->state_memory_bytes);
	logargs[19] = Int64GetDatum(rec->filtered_rows);
	logargs[20] = Int64GetDatum(rec->duplicate_rows);
	logargs[21] = Int64GetDatum(rec->late_rows_written);
	trimargs[0] = Int32GetDatum(rec->query_id);
	trimargs[1] = Int64GetDatum(rec->batch_id - SA_BATCH_LOG_KEEP);

	catalog_begin(&role);
	catalog_execute("UPDATE streamagg.checkpoint SET last_batch_id = $2, "
					"consumed_snapshot = $3, planned_batch_id = NULL, "
					"planned_snapshot = NULL, planned_at = NULL, "
					"watermark = $4, max_event_time = $5, last_batch_at = $6, "
					"state_signature = $7, max_event_time_at = $8, "
					"last_error = NULL, last_error_at = NULL, failures = 0, "
					"retry_at = NULL WHERE query_id = $1",
					8, cptypes, cpargs, cpnulls, SPI_OK_UPDATE);
	catalog_execute("INSERT INTO streamagg.batch_log VALUES "
					"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
					"$16, $17, $18, $19, $20, $21, $22)",
					22, logtypes, logargs, lognulls, SPI_OK_INSERT);
	catalog_execute(batch_log_trim_sql(rec->batch_id), 2, trimtypes, trimargs,
					NULL, SPI_OK_DELETE);
	catalog_end(&role);
}

/*
 * Record that a worker's trigger of a query failed with "message": the
 * next attempt waits 1, 2, 4... up to 30 seconds.
 */
void
sa_catalog_record_error(int32 query_id, const char *message)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		args[2] = {Int32GetDatum(query_id), CStringGetTextDatum(message)};

	(void) catalog_run("UPDATE streamagg.checkpoint SET last_error = $2, "
					   "last_error_at = pg_catalog.now(), failures = failures + 1, "
					   "retry_at = pg_catalog.now() + LEAST(30, 2 ^ LEAST(failures, 5)) "
					   "* interval '1 second' WHERE query_id = $1",
					   2, types, args, NULL, SPI_OK_UPDATE);
}

/* ---- sources and retentions ---- */

/*
 * How far the queries of "source" have consumed it: every event whose
 * transaction id is below h->horizon (valid when h->all_consumed) was
 * consumed by all of them.  Also the event-time columns they read.
 */
void
sa_catalog_source_horizon(Oid source, SaSourceHorizon *h)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(source);
	SaRoleSave	role;
	bool		isnull;
	Datum		d;

	memset(h, 0, sizeof(*h));
	catalog_begin(&role);
	catalog_execute("SELECT count(*), "
					"pg_catalog.bool_and(c.consumed_snapshot IS NOT NULL), "
					"pg_catalog.min(pg_catalog.pg_snapshot_xmin(c.consumed_snapshot)), "
					"pg_catalog.array_agg(DISTINCT d.event_time) "
					"FILTER (WHERE d.event_time IS NOT NULL) "
					"FROM streamagg.query_def d JOIN streamagg.checkpoint c USING (query_id) "
					"WHERE d.source = $1", 1, &argtype, &arg, NULL,
					SPI_OK_SELECT);
	h->nqueries = (int) DatumGetInt64(result_value(1, &isnull));
	d = result_value(2, &isnull);
	h->all_consumed = h->nqueries > 0 && !isnull && DatumGetBool(d);
	d = result_value(3, &isnull);
	if (h->all_consumed)
		h->horizon = d;			/* xid8 is passed by value */
	d = result_value(4, &isnull);
	if (!isnull)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);
		Datum	   *names;
		int			n;

		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false,
						  TYPALIGN_INT, &names, NULL, &n);
		for (int i = 0; i < n; i++)
			h->event_times = lappend(h->event_times,
									 TextDatumGetCString(names[i]));
		MemoryContextSwitchTo(spi);
	}
	catalog_end(&role);
}

/* Set (or, with "keep" NULL, remove) the retention of a source. */
void
sa_catalog_set_retention(Oid source, Interval *keep, Oid owner)
{
	Oid			types[3] = {REGCLASSOID, INTERVALOID, REGROLEOID};
	Datum		args[3] = {ObjectIdGetDatum(source), PointerGetDatum(keep),
	ObjectIdGetDatum(owner)};

	if (keep == NULL)
		(void) catalog_run("DELETE FROM streamagg.retention WHERE source = $1",
						   1, types, args, NULL, SPI_OK_DELETE);
	else
		(void) catalog_run("INSERT INTO streamagg.retention (source, keep, owner) "
						   "VALUES ($1, $2, $3) ON CONFLICT (source) DO UPDATE "
						   "SET keep = EXCLUDED.keep, owner = EXCLUDED.owner",
						   3, types, args, NULL, SPI_OK_INSERT);
}

/* The retentions of sources that still exist, in the caller's context. */
List *
sa_catalog_retentions(void)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *retentions = NIL;
	SaRoleSave	role;

	catalog_begin(&role);
	catalog_execute("SELECT r.source, r.keep, r.owner FROM streamagg.retention r "
					"JOIN pg_catalog.pg_class c ON c.oid = r.source ORDER BY 1",
					0, NULL, NULL, NULL, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext spi = MemoryContextSwitchTo(caller);
		SaRetention *r = palloc(sizeof(SaRetention));
		bool		isnull;

		r->source = DatumGetObjectId(SPI_getbinval(tuple, desc, 1, &isnull));
		r->keep = DatumGetIntervalP(datumCopy(SPI_getbinval(tuple, desc, 2, &isnull),
											  false, sizeof(Interval)));
		r->owner = DatumGetObjectId(SPI_getbinval(tuple, desc, 3, &isnull));
		retentions = lappend(retentions, r);
		MemoryContextSwitchTo(spi);
	}
	catalog_end(&role);
	return retentions;
}

/* A retention ran and deleted "deleted" events. */
void
sa_catalog_retention_ran(Oid source, int64 deleted)
{
	Oid			types[2] = {REGCLASSOID, INT8OID};
	Datum		args[2] = {ObjectIdGetDatum(source), Int64GetDatum(deleted)};

	(void) catalog_run("UPDATE streamagg.retention SET last_run_at = pg_catalog.now(), "
					   "events_deleted = events_deleted + $2 WHERE source = $1",
					   2, types, args, NULL, SPI_OK_UPDATE);
}

/* ---- the per-query lock ---- */

/*
 * Serialise all work on one query (a trigger, pause, drop) with a
 * transaction-level lock of its own kind, so that process() in a backend
 * and a worker never run the same query at once.  It writes nothing and
 * needs no transaction id.
 */
static void
query_lock_tag(LOCKTAG *tag, int32 query_id)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0x53414747, (uint32) query_id,
						 0x5341);
}

void
sa_lock_query(int32 query_id)
{
	LOCKTAG		tag;

	query_lock_tag(&tag, query_id);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* The same lock, if nobody else holds it: for workers, which move on. */
bool
sa_try_lock_query(int32 query_id)
{
	LOCKTAG		tag;

	query_lock_tag(&tag, query_id);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}
