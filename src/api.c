/*-------------------------------------------------------------------------
 *
 * api.c
 *	  The SQL-callable functions of the API (README "API"): create_query,
 *	  process, wait, pause, resume, drop_query, reset_query and
 *	  open_windows.
 *
 * Each runs in the caller's transaction: an error leaves nothing behind.
 * DDL on the caller's objects (the source's column and trigger, the sink)
 * runs as the caller, so PostgreSQL checks the caller's rights; rows of
 * streamagg's own tables are written as the extension owner.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
#include "pgstat.h"

#include "catalog.h"
#include "batch.h"
#include "definition.h"
#include "init.h"
#include "late_sink.h"
#include "launcher.h"
#include "monitor.h"
#include "notify.h"
#include "open_windows.h"
#include "query_cache.h"
#include "reset.h"
#include "schedule.h"
#include "security.h"
#include "shared_state.h"
#include "sink.h"
#include "source.h"
#include "subtransaction.h"
#include "trigger.h"


PG_FUNCTION_INFO_V1(sa_create_query);
PG_FUNCTION_INFO_V1(sa_process);
PG_FUNCTION_INFO_V1(sa_wait);
PG_FUNCTION_INFO_V1(sa_pause);
PG_FUNCTION_INFO_V1(sa_resume);
PG_FUNCTION_INFO_V1(sa_drop_query);
PG_FUNCTION_INFO_V1(sa_alter_query);

static void
require_argument(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
}

static bool
interval_argument(FunctionCallInfo fcinfo, int argno, const char *name,
				  int64 *value)
{
	*value = 0;
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return false;
	*value = sa_interval_usec(PG_GETARG_INTERVAL_P(argno), name);
	return true;
}

/* A window interval argument: microseconds, and months apart. */
static bool
window_argument(FunctionCallInfo fcinfo, int argno, const char *name,
				int64 *value, int32 *months)
{
	*value = 0;
	*months = 0;
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return false;
	*value = sa_window_interval(PG_GETARG_INTERVAL_P(argno), name, months);
	return true;
}

/*
 * The sink table must not be another query's (but "replacing"'s, the query
 * being defined anew): their rows would overwrite each other.  The other
 * query is named if the caller may see it.
 */
static void
check_sink_unshared(Oid sink, const SaDefinition *replacing)
{
	Oid			other_owner = InvalidOid;
	char	   *other = sa_catalog_query_of_sink(sink, &other_owner);

	if (other == NULL || (replacing && strcmp(other, replacing->name) == 0))
		return;
	if (sa_may_see_query(other_owner))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table \"%s\" is already the sink of streaming query \"%s\"",
						get_rel_name(sink), other),
				 errhint("Give this query a sink of its own.")));
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_OBJECT),
			 errmsg("table \"%s\" is already the sink of another streaming query",
					get_rel_name(sink)),
			 errhint("Give this query a sink of its own.")));
}

/* An interval argument as the user gave it, or NULL. */
static Interval *
interval_as_given(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	return PG_GETARG_INTERVAL_P(argno);
}

/* A text argument, or NULL. */
static char *
optional_text_argument(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * Record the query with the user's texts and intervals as given: a new one,
 * or with "query_id" the new definition of that query.
 */
static void
write_definition(FunctionCallInfo fcinfo, const SaDefinition *def,
				 const char *state_signature, int32 query_id)
{
	SaQueryRow	row;

	row.def = def;
	row.aggregates_text = optional_text_argument(fcinfo, 3);
	row.group_by_text = optional_text_argument(fcinfo, 4);
	row.filter_text = optional_text_argument(fcinfo, 16);
	row.join_text = optional_text_argument(fcinfo, 17);
	row.columns_text = optional_text_argument(fcinfo, 18);
	row.dedup_text = optional_text_argument(fcinfo, 19);
	row.idle_timeout = interval_as_given(fcinfo, 20);
	row.window_size = interval_as_given(fcinfo, 5);
	row.window_slide = interval_as_given(fcinfo, 6);
	row.window_offset = interval_as_given(fcinfo, 7);
	row.session_gap = interval_as_given(fcinfo, 8);
	row.watermark = interval_as_given(fcinfo, 9);
	row.trigger_interval = interval_as_given(fcinfo, 12);
	row.state_signature = state_signature;
	if (query_id > 0)
		sa_catalog_replace_query(query_id, &row);
	else
		(void) sa_catalog_insert_query(&row);
}

/*
 * The last steps of defining (or altering) a query compiled as "q": its late
 * sink, if named, found or created as the caller (as the sink is), and then
 * the query compiled again, since the batch then reads the source's
 * columns; and every statement a trigger will run checked as the owner.
 * Returns the compiled query to use from now on.
 */
static SaQuery *
finish_definition(SaDefinition *def, SaQuery *q, const char *late_sink_name)
{
	SaRoleSave	owner;

	if (late_sink_name)
	{
		def->late_sink = sa_prepare_late_sink(late_sink_name, q);
		MemoryContextDelete(q->cxt);
		sa_user_code_begin(def->owner, &owner);
		q = sa_compile_query(def);
		sa_user_code_end(&owner);
	}

	/* what every trigger will run, checked now, as the owner */
	sa_user_code_begin(def->owner, &owner);
	sa_check_batch_statement(q);
	sa_check_sink_statements(q);
	sa_check_late_sink_statement(q);
	sa_user_code_end(&owner);
	return q;
}

/*
 * Define a query from create_query's arguments (fcinfo's, in its order):
 * check everything, analyse and normalize its texts with the caller's
 * search_path, prepare its source and sinks, check as its owner every
 * statement its triggers will run, and record it.  With "replacing" (the
 * query's current definition: alter_query with reprocess), the query is
 * reset and then defined anew, keeping its id and owner.
 */
static void
define_query(FunctionCallInfo fcinfo, const SaDefinition *replacing)
{
	SaDefinition def;
	char	   *sink_name;
	char	   *sink_function;
	char	   *late_sink_name;
	SaQuery    *q;
	bool		sink_created;
	SaRoleSave	owner;

	require_argument(fcinfo, 0, "name");
	require_argument(fcinfo, 1, "source");
	require_argument(fcinfo, 10, "output_mode");

	memset(&def, 0, sizeof(def));
	def.name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	def.source = PG_GETARG_OID(1);
	def.event_time = optional_text_argument(fcinfo, 2);
	def.aggregates = optional_text_argument(fcinfo, 3);
	def.group_by = optional_text_argument(fcinfo, 4);
	def.has_window = window_argument(fcinfo, 5, "window_size", &def.window_size,
									 &def.window_size_months);
	if (!window_argument(fcinfo, 6, "window_slide", &def.window_slide,
						 &def.window_slide_months))
	{
		def.window_slide = def.window_size;
		def.window_slide_months = def.window_size_months;
	}
	else if (!def.has_window)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window_slide requires window_size")));
	if (window_argument(fcinfo, 7, "window_offset", &def.window_offset,
						&def.window_offset_months) &&
		!def.has_window)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window_offset requires window_size")));
	def.has_session = interval_argument(fcinfo, 8, "session_gap", &def.session_gap);
	def.has_watermark = interval_argument(fcinfo, 9, "watermark", &def.watermark_delay);
	def.output_mode = sa_parse_output_mode(text_to_cstring(PG_GETARG_TEXT_PP(10)));
	sink_name = PG_ARGISNULL(11) ? def.name : text_to_cstring(PG_GETARG_TEXT_PP(11));
	def.has_trigger_interval = interval_argument(fcinfo, 12, "trigger_interval",
												 &def.trigger_interval);
	sink_function = optional_text_argument(fcinfo, 13);
	def.notify_channel = optional_text_argument(fcinfo, 14);
	def.sink_merge = optional_text_argument(fcinfo, 15);
	def.filter = optional_text_argument(fcinfo, 16);
	def.join = optional_text_argument(fcinfo, 17);
	def.columns = optional_text_argument(fcinfo, 18);
	def.dedup = optional_text_argument(fcinfo, 19);
	def.has_idle_timeout = interval_argument(fcinfo, 20, "idle_timeout",
											 &def.idle_timeout);
	late_sink_name = optional_text_argument(fcinfo, 21);
	def.time_zone = optional_text_argument(fcinfo, 22);
	if (PG_NARGS() > 23 && !PG_ARGISNULL(23))
	{
		def.max_batch_rows = PG_GETARG_INT64(23);
		if (def.max_batch_rows <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_batch_rows must be positive")));
	}
	def.owner = replacing ? replacing->owner : GetUserId();

	if (sink_function && !PG_ARGISNULL(11))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sink and sink_function cannot both be given"),
				 errdetail("A query writes either to a sink table or to a function sink.")));
	if (sink_function && def.sink_merge)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sink_merge needs a sink table, not a sink_function"),
				 errhint("A function sink decides itself how rows are written.")));
	sa_check_notify_channel(&def);
	sa_validate_definition(&def);
	if (!replacing &&
		sa_load_definition_by_name(def.name, &(SaDefinition) {0}, true))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("streaming query \"%s\" already exists", def.name)));
	sa_check_source(def.source);

	/* analyse with the caller's search_path; store the normalized form */
	sa_normalize_definition(&def);
	sa_prepare_source(def.source);

	sa_user_code_begin(def.owner, &owner);
	q = sa_compile_query(&def);
	sa_user_code_end(&owner);
	sa_validate_compiled(q);
	if (sink_function)
		def.sink_function = sa_prepare_sink_function(sink_function, q);
	else
	{
		def.sink = sa_prepare_sink(sink_name, q, &sink_created);
		if (def.sink == def.source)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sink and source must be different tables")));
		check_sink_unshared(def.sink, replacing);
	}
	q->def.sink = def.sink;
	q->def.sink_function = def.sink_function;
	q = finish_definition(&def, q, late_sink_name);

	if (replacing)
	{
		/* as reset_query, then the new definition */
		sa_reset_query(replacing);
		write_definition(fcinfo, &def, q->state_signature, replacing->query_id);
	}
	else
		write_definition(fcinfo, &def, q->state_signature, 0);
	MemoryContextDelete(q->cxt);
}

/*
 * streamagg.create_query(name, source, event_time, aggregates, group_by,
 *		window_size, window_slide, window_offset, session_gap, watermark,
 *		output_mode, sink, trigger_interval, sink_function, notify_channel,
 *		sink_merge, filter, join, columns, dedup, idle_timeout, late_sink,
 *		time_zone, max_batch_rows)
 */
Datum
sa_create_query(PG_FUNCTION_ARGS)
{
	sa_require_preloaded();
	sa_forbid_in_trigger("streamagg.create_query()");
	define_query(fcinfo, NULL);
	PG_RETURN_VOID();
}

/*
 * Load a query the caller may act on (process, pause, resume, drop): the
 * caller must have the privileges of its owner.
 */
static void
load_own_query(const char *name, SaDefinition *def)
{
	sa_load_definition_by_name(name, def, false);
	if (!has_privs_of_role(GetUserId(), def->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for streaming query \"%s\"", name),
				 errdetail("Only roles with the privileges of role \"%s\" may do this.",
						   GetUserNameFromId(def->owner, false))));
}

/*
 * Load a query the caller may watch (wait): its owner's members, and
 * pg_read_all_stats, as for the views.
 */
static void
load_visible_query(const char *name, SaDefinition *def)
{
	sa_load_definition_by_name(name, def, false);
	if (!sa_may_see_query(def->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for streaming query \"%s\"", name),
				 errdetail("Only roles with the privileges of its owner or of pg_read_all_stats may see it.")));
}

static void
require_read_committed(const char *function)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s cannot run in a REPEATABLE READ or SERIALIZABLE transaction",
						function),
				 errdetail("It must see the latest committed state of the query.")));
}

/* streamagg.process(name): one trigger now, in this session. */
Datum
sa_process(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SaDefinition def;
	SaTriggerResult result;

	sa_require_preloaded();
	sa_forbid_in_trigger("streamagg.process()");
	require_read_committed("streamagg.process()");
	load_own_query(name, &def);
	result = sa_run_trigger(def.query_id);
	PG_RETURN_INT64(result.rows);
}

/*
 * Are there events committed before "snapshot" that the query has not yet
 * consumed?  Runs the batch predicate against the last consumed snapshot,
 * reading the source as the query's owner (the caller runs user code).
 */
static bool
has_pending_events(SaQuery *q, Datum snapshot)
{
	SaCheckpoint cp;
	bool		pending;

	if (!sa_catalog_read_checkpoint(q->def.query_id, &cp, true))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("streaming query \"%s\" was dropped", q->def.name)));
	SPI_connect();
	pending = sa_select_unconsumed(q, &cp, snapshot, "") > 0;
	SPI_finish();
	return pending;
}

/*
 * wait() with events pending on a query that no worker runs (it has no
 * trigger_interval, or it is paused): nothing would consume them before
 * the timeout, so say so at once (docs/operations.md, "Waiting").
 */
static void
check_someone_runs(const SaDefinition *def)
{
	if (def->paused)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("streaming query \"%s\" is paused", def->name),
				 errdetail("Events committed before the call are not consumed yet, and no worker runs a paused query."),
				 errhint("Resume it with streamagg.resume(), or run a trigger yourself with streamagg.process().")));
	if (!def->has_trigger_interval)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("streaming query \"%s\" is not scheduled", def->name),
				 errdetail("Events committed before the call are not consumed yet, and without a trigger_interval no worker runs the query: only streamagg.process() does."),
				 errhint("Run a trigger with streamagg.process(), or give the query a trigger_interval.")));
}

/*
 * streamagg.wait(name, timeout): true once every event committed before
 * the call has been consumed by a committed trigger; false on timeout.
 * An error at once if events are pending and no worker runs the query.
 */
Datum
sa_wait(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		timeout = sa_interval_usec(PG_GETARG_INTERVAL_P(1), "timeout");
	TimestampTz deadline = GetCurrentTimestamp() + timeout;
	SaDefinition def;
	SaQuery    *q;
	Datum		snapshot;
	bool		first_check = true;

	sa_require_preloaded();
	sa_forbid_in_trigger("streamagg.wait()");
	require_read_committed("streamagg.wait()");
	load_visible_query(name, &def);
	q = sa_get_compiled(def.query_id);

	/* events this transaction inserted are not committed: not waited for */
	snapshot = sa_committed_snapshot();

	sa_wake_database_worker(MyDatabaseId);
	for (;;)
	{
		long		remaining_ms;
		SaRoleSave	owner;
		bool		pending;

		CHECK_FOR_INTERRUPTS();
		sa_user_code_begin(q->def.owner, &owner);
		pending = has_pending_events(q, snapshot);
		sa_user_code_end(&owner);
		if (!pending)
			PG_RETURN_BOOL(true);
		if (first_check)
			check_someone_runs(&def);
		first_check = false;
		remaining_ms = (deadline - GetCurrentTimestamp()) / 1000;
		if (remaining_ms <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(remaining_ms, sa_wait_poll_ms), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	PG_RETURN_BOOL(false);
}

static void
set_paused(const char *name, bool paused)
{
	SaDefinition def;

	sa_forbid_in_trigger(paused ? "streamagg.pause()" : "streamagg.resume()");
	load_own_query(name, &def);
	sa_lock_query(def.query_id);
	sa_catalog_set_paused(def.query_id, paused);
}

/* streamagg.pause(name): the worker stops running the query. */
Datum
sa_pause(PG_FUNCTION_ARGS)
{
	set_paused(text_to_cstring(PG_GETARG_TEXT_PP(0)), true);
	PG_RETURN_VOID();
}

/* streamagg.resume(name): the worker runs the query again. */
Datum
sa_resume(PG_FUNCTION_ARGS)
{
	set_paused(text_to_cstring(PG_GETARG_TEXT_PP(0)), false);
	PG_RETURN_VOID();
}

/*
 * streamagg.drop_query(name, drop_sink): remove the query, its state and
 * progress; the sink too if asked.  The source keeps its streamagg_xid
 * column; its trigger goes with the last query reading it.
 */
Datum
sa_drop_query(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		drop_sink = PG_GETARG_BOOL(1);
	SaDefinition def;
	bool		source_still_used;

	sa_forbid_in_trigger("streamagg.drop_query()");
	load_own_query(name, &def);
	sa_lock_query(def.query_id);
	source_still_used = sa_catalog_delete_query(def.query_id, def.source);

	/* the sink or the source may have been dropped under the query */
	if (drop_sink && get_rel_name(def.sink) != NULL)
		sa_run_sql(psprintf("DROP TABLE %s",
							sa_qualified_relation(def.sink, "sink", name)));
	if (!source_still_used)
		sa_release_source(def.source);
	sa_forget_compiled(def.query_id);
	sa_state_forget(def.query_id);
	sa_state_forget(-def.query_id);	/* its dedup keys, if any */
	sa_schedule_forget(def.query_id);
	PG_RETURN_VOID();
}

/*
 * The parameters of alter_query (its argument numbers) that change what the
 * state holds or means: changing one needs reprocess => true.
 */
static const struct
{
	int			argno;
	const char *name;
}			state_parameters[] = {
	{1, "event_time"}, {2, "aggregates"}, {3, "group_by"},
	{4, "window_size"}, {5, "window_slide"}, {6, "window_offset"},
	{7, "session_gap"}, {9, "output_mode"}, {10, "sink"}, {15, "filter"},
	{16, "join"}, {17, "columns"}, {18, "dedup"}, {21, "time_zone"}
};

/*
 * alter_query with reprocess => true: the query's create_query arguments as
 * stored, with those alter_query was given instead (alter_query's argument
 * i is create_query's i + 1: it has no source), defined anew in place of
 * "current" (define_query).  Giving one of two exclusive parameters
 * (sink or sink_function, aggregates or columns) drops the other.
 */
static void
reprocess_query(FunctionCallInfo alter, const SaDefinition *current)
{
	LOCAL_FCINFO(args, SA_CREATE_QUERY_NARGS);
	Datum		values[SA_CREATE_QUERY_NARGS];
	bool		nulls[SA_CREATE_QUERY_NARGS];

	sa_catalog_create_arguments(current->query_id, values, nulls);
	for (int a = 1; a <= SA_CREATE_QUERY_NARGS - 2; a++)
		if (!alter->args[a].isnull)
		{
			values[a + 1] = alter->args[a].value;
			nulls[a + 1] = false;
		}
	if (!alter->args[12].isnull)	/* sink_function */
		nulls[11] = true;		/* sink */
	if (!alter->args[10].isnull)	/* sink */
		nulls[13] = true;		/* sink_function */
	if (!alter->args[17].isnull)	/* columns */
		nulls[3] = true;		/* aggregates */
	if (!alter->args[2].isnull) /* aggregates */
		nulls[18] = true;		/* columns */

	InitFunctionCallInfoData(*args, NULL, SA_CREATE_QUERY_NARGS, InvalidOid,
							 NULL, NULL);
	for (int i = 0; i < SA_CREATE_QUERY_NARGS; i++)
	{
		args->args[i].value = values[i];
		args->args[i].isnull = nulls[i];
	}
	define_query(args, current);
}

/*
 * streamagg.alter_query(name, <create_query's parameters but name and
 * source>, reprocess): change a query from its next trigger.  Parameters
 * that leave the state valid (trigger_interval, the watermark delay,
 * idle_timeout, late_sink, notify_channel, sink_function, sink_merge,
 * max_batch_rows) keep the state and the position; changing any other is
 * refused.  An omitted (NULL) parameter
 * keeps its value.  The new definition is checked as create_query checks
 * one, as the query's owner, and other backends recompile the query.
 */
Datum
sa_alter_query(PG_FUNCTION_ARGS)
{
	char	   *name;
	SaDefinition def;
	SaAlteration change;
	char	   *notify_channel;
	char	   *sink_merge;
	char	   *sink_function;
	char	   *late_sink_name;
	int64		usec;
	SaQuery    *q;
	SaRoleSave	owner;

	sa_require_preloaded();
	sa_forbid_in_trigger("streamagg.alter_query()");
	require_argument(fcinfo, 0, "name");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	load_own_query(name, &def);
	sa_lock_query(def.query_id);
	/* what the lock waited for may have changed it */
	sa_load_definition_by_id(def.query_id, &def);

	if (!PG_ARGISNULL(23) && PG_GETARG_BOOL(23))
	{
		reprocess_query(fcinfo, &def);
		PG_RETURN_VOID();
	}
	for (int i = 0; i < lengthof(state_parameters); i++)
		if (!PG_ARGISNULL(state_parameters[i].argno))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("changing %s of streaming query \"%s\" needs reprocess => true",
							state_parameters[i].name, name),
					 errdetail("The query's state was computed with the old %s.",
							   state_parameters[i].name),
					 errhint("Add reprocess => true to reset the query and reprocess what its source retains with the new definition; only trigger_interval, watermark, idle_timeout, late_sink, notify_channel, sink_function, sink_merge and max_batch_rows change while the state is kept.")));


	memset(&change, 0, sizeof(change));
	change.query_id = def.query_id;
	/* an omitted interval keeps its value: interval_argument zeroes */
	if (interval_argument(fcinfo, 11, "trigger_interval", &usec))
	{
		def.has_trigger_interval = true;
		def.trigger_interval = usec;
		change.trigger_interval = PG_GETARG_INTERVAL_P(11);
	}
	if (interval_argument(fcinfo, 8, "watermark", &usec))
	{
		def.has_watermark = true;
		def.watermark_delay = usec;
		change.watermark = PG_GETARG_INTERVAL_P(8);
	}
	if (interval_argument(fcinfo, 19, "idle_timeout", &usec))
	{
		def.has_idle_timeout = true;
		def.idle_timeout = usec;
		change.idle_timeout = PG_GETARG_INTERVAL_P(19);
	}
	late_sink_name = optional_text_argument(fcinfo, 20);
	if (!PG_ARGISNULL(22))
	{
		def.max_batch_rows = change.max_batch_rows = PG_GETARG_INT64(22);
		if (def.max_batch_rows <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_batch_rows must be positive")));
	}
	if ((notify_channel = optional_text_argument(fcinfo, 13)) != NULL)
		change.notify_channel = def.notify_channel = notify_channel;
	if ((sink_merge = optional_text_argument(fcinfo, 14)) != NULL)
		change.sink_merge = def.sink_merge = sink_merge;
	sink_function = optional_text_argument(fcinfo, 12);
	if (sink_function && def.sink_merge)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sink_merge needs a sink table, not a sink_function"),
				 errhint("A function sink decides itself how rows are written.")));
	if (change.sink_merge && !OidIsValid(def.sink))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sink_merge needs a sink table, not a sink_function")));

	sa_check_notify_channel(&def);
	sa_validate_definition(&def);

	sa_user_code_begin(def.owner, &owner);
	q = sa_compile_query(&def);
	sa_user_code_end(&owner);
	sa_validate_compiled(q);
	/* names are looked up with the caller's search_path, as at create_query */
	if (sink_function)
	{
		def.sink_function = sa_prepare_sink_function(sink_function, q);
		def.sink = InvalidOid;
		change.sink_function = def.sink_function;
	}
	q->def.sink = def.sink;
	q->def.sink_function = def.sink_function;
	q = finish_definition(&def, q, late_sink_name);
	change.late_sink = late_sink_name ? def.late_sink : InvalidOid;
	MemoryContextDelete(q->cxt);

	sa_catalog_alter_query(&change);
	PG_RETURN_VOID();
}

/*
 * streamagg.reset_query(name): the query forgets its state, watermark and
 * position and empties its table sink; its next triggers reprocess what the
 * source retains, with batch ids going on from the last one (reset.c).
 */
PG_FUNCTION_INFO_V1(sa_reset_query_sql);
Datum
sa_reset_query_sql(PG_FUNCTION_ARGS)
{
	SaDefinition def;

	sa_require_preloaded();
	sa_forbid_in_trigger("streamagg.reset_query()");
	load_own_query(text_to_cstring(PG_GETARG_TEXT_PP(0)), &def);
	sa_reset_query(&def);
	PG_RETURN_VOID();
}

/*
 * streamagg.open_windows(name, row_type anyelement) RETURNS SETOF
 * anyelement: the groups in the query's state, finalized as if emitted
 * now, as of its last committed trigger, as rows of row_type's type
 * (open_windows.c).  Needs the owner's privileges.
 */
PG_FUNCTION_INFO_V1(sa_open_windows_sql);
Datum
sa_open_windows_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SaDefinition def;

	sa_require_preloaded();
	sa_forbid_in_trigger("streamagg.open_windows()");
	require_argument(fcinfo, 0, "name");
	load_own_query(text_to_cstring(PG_GETARG_TEXT_PP(0)), &def);
	if (!type_is_rowtype(get_fn_expr_argtype(fcinfo->flinfo, 1)))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("row_type must be of a composite type"),
				 errhint("Pass NULL cast to the sink's row type, as in NULL::%s.",
						 OidIsValid(def.sink) ? get_rel_name(def.sink) : "sink_row_type")));
	InitMaterializedSRF(fcinfo, 0);
	sa_open_windows(&def, rsinfo->setDesc, rsinfo->setResult);
	return (Datum) 0;
}

/* What streamagg.unconsumed() counts, for sa_try_in_subtransaction. */
typedef struct UnconsumedCount
{
	int32		query_id;
	int64		rows;
	bool		has_oldest;
	TimestampTz oldest;
} UnconsumedCount;

static void
count_unconsumed(void *arg)
{
	UnconsumedCount *count = arg;

	count->rows = sa_unconsumed_events(sa_get_compiled(count->query_id),
									   &count->oldest, &count->has_oldest);
}

/*
 * streamagg.unconsumed(name, OUT rows, OUT oldest_event_time): the events
 * committed to the query's source that no committed trigger consumed yet,
 * and the least event time among them (monitor.c; the view
 * streamagg.overview calls it).  For the roles that may see the query.
 * Never fails for a query that cannot run (library not preloaded, source
 * gone, a definition that no longer compiles): then both are NULL, and
 * the query's last_error says why.
 */
PG_FUNCTION_INFO_V1(sa_unconsumed_sql);
Datum
sa_unconsumed_sql(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2] = {0, 0};
	bool		nulls[2] = {true, true};
	SaDefinition def;
	UnconsumedCount count;
	ErrorData  *error;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	sa_forbid_in_trigger("streamagg.unconsumed()");
	require_argument(fcinfo, 0, "name");
	load_visible_query(text_to_cstring(PG_GETARG_TEXT_PP(0)), &def);
	if (!sa_library_preloaded() || get_rel_name(def.source) == NULL)
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
	count.query_id = def.query_id;
	if (sa_try_in_subtransaction(count_unconsumed, &count, &error))
	{
		values[0] = Int64GetDatum(count.rows);
		nulls[0] = false;
		values[1] = TimestampTzGetDatum(count.oldest);
		nulls[1] = !count.has_oldest;
	}
	else
	{
		/* a cancellation is the caller's, not the query's problem */
		if (error->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			error->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(error);
		/* a compiled query may have been left half-made */
		sa_forget_compiled(def.query_id);
		FreeErrorData(error);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
