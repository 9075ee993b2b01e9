/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Reading query definitions from streamagg.query_def, and the lock that
 *	  serialises everything done to one query.
 *
 * Writes to the catalog are made by the modules that own them (api.c for
 * definitions, trigger.c for checkpoints and progress); reads and writes
 * alike run as the extension owner (security.c).
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

/*
 * An interval parameter as microseconds.  Months are refused: windows must
 * have a fixed length (DESIGN.md 3.6); a day counts as 24 hours.  So is
 * anything as long as SA_MAX_INTERVAL_USEC (100 000 years), which no window
 * or watermark could use inside the range of timestamps.
 */
int64
sa_interval_usec(Interval *iv, const char *param)
{
	int64		days;
	int64		usec;

	if (iv->month != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not contain months or years", param),
				 errdetail("Calendar months have no fixed length, so windows would not be aligned."),
				 errhint("Use days, hours, minutes or seconds.")));
	if (pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &days) ||
		pg_add_s64_overflow(days, iv->time, &usec) ||
		usec >= SA_MAX_INTERVAL_USEC || usec <= -SA_MAX_INTERVAL_USEC)
		ereport(ERROR,
				(errcode(ERRCODE_INTERVAL_FIELD_OVERFLOW),
				 errmsg("%s is out of range", param),
				 errdetail("Intervals must be shorter than 100000 years.")));
	return usec;
}

SaOutputMode
sa_parse_output_mode(const char *mode)
{
	if (strcmp(mode, "append") == 0)
		return SA_OUTPUT_APPEND;
	if (strcmp(mode, "update") == 0)
		return SA_OUTPUT_UPDATE;
	if (strcmp(mode, "complete") == 0)
		return SA_OUTPUT_COMPLETE;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown output mode \"%s\"", mode),
			 errhint("Use 'append', 'update' or 'complete'.")));
	return SA_OUTPUT_APPEND;	/* keep compiler quiet */
}

const char *
sa_output_mode_name(SaOutputMode mode)
{
	switch (mode)
	{
		case SA_OUTPUT_APPEND:
			return "append";
		case SA_OUTPUT_UPDATE:
			return "update";
		case SA_OUTPUT_COMPLETE:
			return "complete";
	}
	return "?";
}

static bool
get_interval(HeapTuple tuple, TupleDesc desc, int col, int64 *value)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	*value = isnull ? 0 : sa_interval_usec(DatumGetIntervalP(d), "interval");
	return !isnull;
}

#define DEFINITION_COLUMNS \
	"query_id, name, source, event_time, aggregates_sql, group_by_sql, " \
	"window_size, window_slide, window_offset, session_gap, watermark, " \
	"output_mode, sink, trigger_interval, owner, paused, sink_function, " \
	"sink_merge, notify_channel"

/* Fill "def" from the current row of a DEFINITION_COLUMNS query. */
static void
definition_from_tuple(HeapTuple tuple, TupleDesc desc, SaDefinition *def)
{
	bool		isnull;
	char	   *group_by;

	memset(def, 0, sizeof(*def));
	def->query_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
	def->name = SPI_getvalue(tuple, desc, 2);
	def->source = DatumGetObjectId(SPI_getbinval(tuple, desc, 3, &isnull));
	def->event_time = SPI_getvalue(tuple, desc, 4);
	def->aggregates = SPI_getvalue(tuple, desc, 5);
	group_by = SPI_getvalue(tuple, desc, 6);
	def->group_by = group_by;
	def->has_window = get_interval(tuple, desc, 7, &def->window_size);
	if (!get_interval(tuple, desc, 8, &def->window_slide))
		def->window_slide = def->window_size;
	(void) get_interval(tuple, desc, 9, &def->window_offset);
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
}

/*
 * The version of the catalog (the extension's SQL objects) this library
 * reads and writes.  A library installed over an older catalog refuses to
 * work until ALTER EXTENSION streamagg UPDATE brings the catalog up to it.
 */
#define SA_CATALOG_VERSION "0.6"

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

	sa_catalog_access_begin(&role);
	SPI_connect();
	check_catalog_version();
	SPI_execute_with_args(psprintf("SELECT " DEFINITION_COLUMNS
								   " FROM streamagg.query_def WHERE %s", where),
						  1, &argtype, &arg, NULL, false, 1);
	found = SPI_processed == 1;
	if (found)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);

		definition_from_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
							  def);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	sa_catalog_access_end(&role);
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

/*
 * The schema-qualified, quoted name of a query's source or sink, or an
 * error saying that the table is gone (it was dropped under the query).
 */
char *
sa_qualified_relation(Oid relid, const char *role, const char *query)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("%s table of streaming query \"%s\" no longer exists",
						role, query),
				 errhint("Drop the query with streamagg.drop_query(), and create it again if needed.")));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  relname);
}

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
