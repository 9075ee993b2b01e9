/*-------------------------------------------------------------------------
 *
 * definition.c
 *	  Checking a query definition and compiling it for triggers.
 *
 * The aggregates and group_by texts are analysed by PostgreSQL's own parser
 * as the target lists of "SELECT ... FROM source".  At creation they are
 * normalized: deparsed with search_path pinned to pg_catalog, so that every
 * function, operator and type outside pg_catalog is schema-qualified.  The
 * stored normalized texts are what workers compile, with the same pinned
 * search_path, so that a query means the same thing wherever it runs.
 *
 * This file owns the rejections of docs/semantics.md §6 that concern parameters
 * and expressions; sink.c owns those about an existing sink.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_oper.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "pgtime.h"
#include "utils/regproc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/typcache.h"
#include "lib/stringinfo.h"

#include "aggregate.h"
#include "batch.h"
#include "definition.h"
#include "distinct.h"
#include "join.h"
#include "late_sink.h"
#include "security.h"

/*
 * The FROM clause expressions are analysed over: the source, followed by
 * the join clauses.  When the user creates the query, "text" is the source
 * and the user's join text; once normalized, the stored join text, which
 * starts with the source.  "tree" is its raw parse tree (join.c).
 */
typedef struct SaFrom
{
	Oid			source;
	bool		has_join;
	char	   *text;
	List	   *tree;
} SaFrom;

static SaFrom
from_clause(Oid source, const char *join, bool normalized)
{
	SaFrom		from;

	from.source = source;
	from.has_join = join != NULL;
	if (join == NULL)
		from.text = sa_relation_name(source);
	else if (normalized)
		from.text = pstrdup(join);
	else
		from.text = psprintf("%s %s", sa_relation_name(source), join);
	from.tree = sa_parse_from(source, from.text);
	return from;
}

/*
 * An error context for errors found in the text of a parameter inside a
 * statement that streamagg built around it ("arg" is an SaTextContext):
 * the error points into that statement, not into the caller's
 * create_query(...) call, and names the parameter.
 */
void
sa_text_error_context(void *arg)
{
	SaTextContext *tc = arg;
	int			position = geterrposition();

	if (position > 0)
	{
		errposition(0);
		internalerrposition(position);
		internalerrquery(tc->sql);
	}
	errcontext("%s", tc->what);
}

static Query *
analyze_parameter(RawStmt *rawstmt, const char *sql, const char *param)
{
	SaTextContext tc = {sql, psprintf("%s of a streaming query", param)};
	ErrorContextCallback callback;
	Query	   *query;

	callback.callback = sa_text_error_context;
	callback.arg = &tc;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	query = parse_analyze_fixedparams(rawstmt, sql, NULL, 0, NULL);
	error_context_stack = callback.previous;
	return query;
}

/*
 * Parse and analyse "SELECT <targets> FROM <from> [WHERE <where>]", making
 * sure that the user's text is only what parameter "param" may hold: one
 * statement whose FROM clause is exactly from's, with nothing else.
 */
static Query *
analyze_over_from(const SaFrom *from, const char *targets, const char *where,
				  const char *param)
{
	char	   *sql;
	List	   *raw;
	RawStmt    *rawstmt;
	SelectStmt *select;

	sql = psprintf("SELECT %s\nFROM %s%s%s", targets, from->text,
				   where ? "\nWHERE " : "", where ? where : "");
	raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	rawstmt = list_length(raw) == 1 ? linitial_node(RawStmt, raw) : NULL;
	select = (rawstmt && IsA(rawstmt->stmt, SelectStmt)) ?
		(SelectStmt *) rawstmt->stmt : NULL;
	if (select == NULL || select->op != SETOP_NONE ||
		select->distinctClause || select->intoClause ||
		!equal(select->fromClause, from->tree) ||
		(select->whereClause != NULL) != (where != NULL) ||
		select->groupClause || select->havingClause ||
		select->windowClause || select->valuesLists || select->sortClause ||
		select->limitOffset || select->limitCount || select->lockingClause ||
		select->withClause)
	{
		if (where != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("%s must be one boolean expression", param),
					 errdetail("Got: %s", where)));
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("%s must be a comma-separated list of expressions", param),
				 errdetail("Got: %s", targets)));
	}
	return analyze_parameter(rawstmt, sql, param);
}

/* Reject what a query cannot compute row by row. */
static void
check_no_unsupported_nodes(Query *query, const char *param)
{
	if (query->hasSubLinks)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("subqueries are not supported in %s", param)));
	if (query->hasWindowFuncs)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("window functions are not supported in %s", param)));
	if (query->hasTargetSRFs)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-returning functions are not supported in %s", param)));
}

/*
 * Row expressions (group_by, columns, dedup): no aggregates, subqueries,
 * set-returning or window functions; with "named", each must have a name,
 * which becomes a sink column's.
 */
static List *
analyze_row_expressions(const SaFrom *from, const char *text,
						const char *param, bool named)
{
	Query	   *query = analyze_over_from(from, text, NULL, param);

	check_no_unsupported_nodes(query, param);
	if (query->hasAggs)
		ereport(ERROR,
				(errcode(ERRCODE_GROUPING_ERROR),
				 errmsg("aggregate functions are not allowed in %s", param)));
	if (query->targetList == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must name at least one expression", param)));
	sa_foreach_node(TargetEntry, te, query->targetList)
	{
		if (named && strcmp(te->resname, "?column?") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s expression needs a name", param),
					 errhint("Write the expression with an alias, as in \"lower(page) AS page\".")));
	}
	return query->targetList;
}

/*
 * The filter: one expression, true for the rows the query keeps.  The
 * parser refuses aggregates, window and set-returning functions in WHERE.
 */
static Node *
analyze_filter(const SaFrom *from, const char *filter)
{
	Query	   *query = analyze_over_from(from, "", filter, "filter");

	check_no_unsupported_nodes(query, "filter");
	Assert(query->jointree->quals != NULL);
	return query->jointree->quals;
}

/* The aggregate calls, each a bare call that streamagg can maintain. */
static List *
analyze_aggregates(const SaFrom *from, const char *aggregates)
{
	Query	   *query = analyze_over_from(from, aggregates, NULL, "aggregates");

	check_no_unsupported_nodes(query, "aggregates");
	if (query->targetList == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aggregates must name at least one aggregate"),
				 errhint("For example: count(*) AS events.")));
	sa_foreach_node(TargetEntry, te, query->targetList)
	{
		Aggref	   *aggref;

		if (!IsA(te->expr, Aggref))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" in aggregates is not an aggregate call",
							te->resname),
					 errdetail("Each item of aggregates must be one aggregate function call, such as sum(amount) AS revenue."),
					 errhint("Compute expressions over aggregates when reading the sink.")));
		aggref = (Aggref *) te->expr;
		if (aggref->aggkind != AGGKIND_NORMAL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("ordered-set aggregate \"%s\" is not supported",
							te->resname)));
		/* DISTINCT is kept as a set of values: distinct.c */
		if (aggref->aggorder != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("ORDER BY inside aggregate \"%s\" is not supported",
							te->resname),
					 errdetail("Rows of a stream arrive in no defined order.")));
	}
	return query->targetList;
}

/*
 * Deparse analysed expressions back to text, each followed by its alias
 * when "named".  The caller has pinned the search_path.
 */
static char *
deparse_target_list(const SaScope *scope, List *targets, bool named)
{
	StringInfoData buf;

	initStringInfo(&buf);
	sa_foreach_node(TargetEntry, te, targets)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, sa_scope_deparse(scope, (Node *) te->expr));
		if (named)
			appendStringInfo(&buf, " AS %s", quote_identifier(te->resname));
	}
	return buf.data;
}

/*
 * An interval parameter as microseconds.  Months are refused: windows must
 * have a fixed length (docs/semantics.md §6); a day counts as 24 hours.  So is
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

/*
 * A window interval (window_size, window_slide, window_offset): months
 * apart in *months, which calendar windows allow (docs/semantics.md §13;
 * the rules are checked by sa_validate_definition), and the rest as
 * microseconds, bounded as sa_interval_usec bounds them.
 */
int64
sa_window_interval(Interval *iv, const char *param, int32 *months)
{
	Interval	rest = *iv;

	if (iv->month >= SA_MAX_INTERVAL_USEC / (31 * USECS_PER_DAY) ||
		iv->month <= -SA_MAX_INTERVAL_USEC / (31 * USECS_PER_DAY))
		ereport(ERROR,
				(errcode(ERRCODE_INTERVAL_FIELD_OVERFLOW),
				 errmsg("%s is out of range", param),
				 errdetail("Intervals must be shorter than 100000 years.")));
	*months = iv->month;
	rest.month = 0;
	return sa_interval_usec(&rest, param);
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

/*
 * The schema-qualified, quoted name of a query's source or sink, or an
 * error saying that the table is gone (it was dropped under the query).
 */
char *
sa_qualified_relation(Oid relid, const char *role, const char *query)
{
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("%s table of streaming query \"%s\" no longer exists",
						role, query),
				 errhint("Drop the query with streamagg.drop_query(), and create it again if needed.")));
	return sa_relation_name(relid);
}

/* The schema-qualified, quoted name of a relation that exists. */
char *
sa_relation_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* A definition's texts, analysed over its FROM clause. */
typedef struct Analysed
{
	SaFrom		from;
	SaScope		scope;			/* to write them back as text */
	List	   *aggregates;		/* target lists, or NIL */
	List	   *group_by;
	List	   *columns;
	List	   *dedup;
	Node	   *filter;			/* or NULL */
} Analysed;

/*
 * Analyse every text of "def" over its FROM clause: as the user wrote them
 * (create_query), or their "normalized" forms (compiling).  Which rules
 * each parameter follows is decided here only.
 */
static void
analyze_definition(const SaDefinition *def, bool normalized, Analysed *a)
{
	Query	   *over_from;

	memset(a, 0, sizeof(*a));
	a->from = from_clause(def->source, def->join, normalized);
	over_from = analyze_over_from(&a->from, "", NULL, "join");
	check_no_unsupported_nodes(over_from, "join");
	a->scope = sa_scope_for(over_from, def->source, a->from.has_join);
	if (def->aggregates)
		a->aggregates = analyze_aggregates(&a->from, def->aggregates);
	if (def->group_by)
		a->group_by = analyze_row_expressions(&a->from, def->group_by,
											  "group_by", true);
	if (def->columns)
		a->columns = analyze_row_expressions(&a->from, def->columns,
											 "columns", true);
	if (def->dedup)
		a->dedup = analyze_row_expressions(&a->from, def->dedup, "dedup", false);
	if (def->filter)
		a->filter = analyze_filter(&a->from, def->filter);
}

/*
 * Analyse the user's texts with the caller's search_path and replace them
 * in def by their normalized forms (see the file header).
 */
void
sa_normalize_definition(SaDefinition *def)
{
	Analysed	a;
	int			nestlevel;

	analyze_definition(def, false, &a);
	nestlevel = sa_pin_search_path();
	if (def->aggregates)
		def->aggregates = deparse_target_list(&a.scope, a.aggregates, true);
	if (def->group_by)
		def->group_by = deparse_target_list(&a.scope, a.group_by, true);
	if (def->columns)
		def->columns = deparse_target_list(&a.scope, a.columns, true);
	if (def->dedup)
		def->dedup = deparse_target_list(&a.scope, a.dedup, false);
	if (def->filter)
		def->filter = sa_scope_deparse(&a.scope, a.filter);
	if (def->join)
		def->join = sa_normalized_from(&a.scope);
	sa_unpin_search_path(nestlevel);
}

/*
 * A stateless query appends each row that passes to its sink, once: it
 * has no groups, windows or state to complete or merge, and without dedup
 * no row is ever late, so a watermark would do nothing.
 */
static void
validate_stateless(const SaDefinition *def)
{
	const char *what = NULL;

	if (def->group_by != NULL)
		what = "group_by";
	else if (def->has_window)
		what = "window_size";
	else if (def->has_session)
		what = "session_gap";
	else if (def->sink_merge != NULL)
		what = "sink_merge";
	if (what != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a stateless query cannot have %s", what),
				 errdetail("A query with columns instead of aggregates appends each row to its sink as it is.")));
	if (def->output_mode == SA_OUTPUT_COMPLETE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("complete output mode is not allowed for a stateless query"),
				 errdetail("A stateless query keeps no result table to write again each time."),
				 errhint("Use output_mode 'append'.")));
	if (def->has_watermark && def->dedup == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a stateless query without dedup cannot have a watermark"),
				 errdetail("It never drops late rows, so a watermark would do nothing."),
				 errhint("Remove the watermark, or give dedup keys whose memory it bounds.")));
}

/*
 * time_zone (docs/semantics.md §13): a zone PostgreSQL knows, and fixed or
 * calendar windows, not sessions.  Its event-time column must be a
 * timestamp with time zone (sa_validate_compiled).
 */
static void
validate_time_zone(const SaDefinition *def)
{
	if (def->has_session)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time_zone cannot be combined with session_gap"),
				 errdetail("Sessions are measured in elapsed time, not on the calendar.")));
	if (!def->has_window)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time_zone requires window_size"),
				 errdetail("time_zone makes windows follow a local calendar.")));
	if (pg_tzset(def->time_zone) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" is not recognized", def->time_zone),
				 errhint("Use a name from pg_timezone_names, such as 'Europe/Berlin'.")));
}

/*
 * Monthly windows (docs/semantics.md §13): window_size in whole months (a
 * year is 12), tumbling, with window_offset made of whole months shorter
 * than the size and a part shorter than 28 days (a month's first days).
 * They need time_zone or a timestamp column (sa_validate_compiled).
 */
static void
validate_monthly_windows(const SaDefinition *def)
{
	if (def->window_size_months == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window_slide and window_offset may contain months only when window_size is in months"),
				 errhint("For windows of days, give the offset in days or hours.")));
	if (def->window_size_months <= 0 || def->window_size != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window_size with months must be whole months or years"),
				 errdetail("Got %d months and %lld microseconds.",
						   def->window_size_months,
						   (long long) def->window_size)));
	if (def->window_slide_months != def->window_size_months ||
		def->window_slide != def->window_size)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("sliding windows in months are not supported"),
				 errdetail("Windows of months or years are tumbling."),
				 errhint("Leave window_slide NULL, or use windows of whole days.")));
	if (def->window_offset_months < 0 ||
		def->window_offset_months >= def->window_size_months ||
		def->window_offset < 0 || def->window_offset >= 28 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window_offset of monthly windows must be whole months shorter than window_size, plus less than 28 days"),
				 errhint("For quarters from February: window_size '3 months', window_offset '1 month'; for months from the 1st at 06:00: window_offset '6 hours'.")));
}

/*
 * Check the parameters of a definition (docs/semantics.md §5, §6) before
 * anything is created.  Intervals arrive as microseconds: intervals with
 * months were rejected when they were converted (api.c).
 */
void
sa_validate_definition(const SaDefinition *def)
{
	if (def->aggregates == NULL && def->columns == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("aggregates must not be NULL"),
				 errhint("A query without aggregates lists its output in columns.")));
	if (def->aggregates != NULL && def->columns != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("columns cannot be combined with aggregates"),
				 errdetail("columns lists the output of a stateless query, which has aggregates => NULL.")));
	if (def->event_time == NULL && (def->columns == NULL || def->dedup != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event_time must not be NULL"),
				 errdetail("Only a stateless query without dedup can do without event time.")));
	if (def->columns != NULL)
		validate_stateless(def);

	/* a name is also the default sink's name: an identifier, untruncated */
	if (def->name[0] == '\0' || strlen(def->name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("name must be 1 to %d bytes long", NAMEDATALEN - 1),
				 errdetail("The name is also the default name of the sink table.")));
	if (def->has_session && def->has_window)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("session_gap cannot be combined with window_size"),
				 errhint("A query has either fixed windows (window_size, window_slide) or session windows (session_gap).")));
	if (def->has_session && def->output_mode == SA_OUTPUT_UPDATE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("update output mode is not allowed with session windows"),
				 errdetail("A session can merge with others, so rows already written could not be taken back."),
				 errhint("Use output_mode 'append' or 'complete'.")));
	if (def->has_session && def->group_by == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("session windows need at least one group_by column")));
	if (def->has_session && def->session_gap <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("session_gap must be positive")));
	if (def->time_zone != NULL)
		validate_time_zone(def);
	if (def->has_window &&
		(def->window_size_months != 0 || def->window_slide_months != 0 ||
		 def->window_offset_months != 0))
		validate_monthly_windows(def);
	else if (def->has_window)
	{
		if (def->window_size <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("window_size must be positive")));
		if (def->window_slide <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("window_slide must be positive")));
		if (def->window_slide > def->window_size)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("window_slide must not be larger than window_size")));
		if (def->window_size / def->window_slide >= SA_MAX_WINDOWS_PER_ROW)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("window_size must be less than %d times window_slide",
							SA_MAX_WINDOWS_PER_ROW),
					 errdetail("Each row falls into window_size / window_slide windows."),
					 errhint("Use a larger window_slide.")));
		if (def->window_offset >= def->window_slide ||
			def->window_offset <= -def->window_slide)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the absolute value of window_offset must be smaller than window_slide")));
		if (def->time_zone != NULL &&
			(def->window_size % USECS_PER_DAY != 0 ||
			 def->window_slide % USECS_PER_DAY != 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("with time_zone, window_size and window_slide must be whole days, months or years"),
					 errdetail("Calendar windows run from local midnight to local midnight (plus window_offset)."),
					 errhint("Use '1 day', '7 days' for a week, '1 month'; or leave time_zone NULL for windows of fixed length.")));
	}
	if (def->has_watermark && def->watermark_delay < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("watermark must not be negative")));
	if (def->has_idle_timeout && !def->has_watermark)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idle_timeout requires a watermark"),
				 errdetail("An idle source advances the watermark; without a watermark there is none to advance."),
				 errhint("Give a watermark, or leave idle_timeout NULL.")));
	if (def->has_idle_timeout && def->idle_timeout <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idle_timeout must be positive")));
	if (def->has_trigger_interval && def->trigger_interval < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trigger_interval must not be negative")));
	if (def->output_mode == SA_OUTPUT_APPEND && !def->has_watermark &&
		def->columns == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("append output mode requires a watermark"),
				 errdetail("In append mode a window is written once, when the watermark closes it; without a watermark no window ever closes."),
				 errhint("Give a watermark, or use output_mode 'update' or 'complete'.")));
}

/* Look up the event-time column: it must exist and be a timestamp. */
static Oid
event_time_type(Oid source, const char *column)
{
	AttrNumber	attnum = get_attnum(source, column);
	Oid			type;

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						column, get_rel_name(source)),
				 errhint("event_time names a column of the source table.")));
	type = getBaseType(get_atttype(source, attnum));
	if (type != TIMESTAMPTZOID && type != TIMESTAMPOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("event_time column \"%s\" must be of type timestamp with time zone or timestamp",
						column),
				 errdetail("Column \"%s\" has type %s.", column,
						   format_type_be(get_atttype(source, attnum)))));
	return get_atttype(source, attnum);
}

/*
 * The source's streamagg_xid column must still be there, and of type xid8:
 * batches are read by comparing it with snapshots, with the built-in
 * operators only (another type would bring its own casts and operators).
 */
void
sa_check_xid_column(Oid source)
{
	AttrNumber	attnum = get_attnum(source, SA_XID_COLUMN);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("source \"%s\" has lost its column \"%s\"",
						get_rel_name(source), SA_XID_COLUMN),
				 errhint("Drop the queries of this source and create them again.")));
	if (get_atttype(source, attnum) != XID8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of source \"%s\" must be of type xid8",
						SA_XID_COLUMN, get_rel_name(source)),
				 errdetail("It has type %s.",
						   format_type_be(get_atttype(source, attnum))),
				 errhint("Streaming queries read their batches by this column; change it back to xid8, or drop the queries of this source and create them again.")));
}

/* How many batch columns the aggregates need: arguments and filters. */
static int
count_aggregate_inputs(List *aggs)
{
	int			n = 0;

	sa_foreach_node(TargetEntry, te, aggs)
	{
		Aggref	   *aggref = (Aggref *) te->expr;

		n += list_length(aggref->args) + (aggref->aggfilter ? 1 : 0);
	}
	return n;
}

/*
 * The stored form of a group's states (aggregate.c, sa_aggs_form_stored):
 * one attribute per aggregate, its state or, for internal states, their
 * serialization; then one flag per aggregate whose state can be made NULL
 * for good, whose index the aggregate records.  An aggregate called with
 * DISTINCT stores its set instead (distinct.c): the array of its first
 * argument in its own attribute, those of its other arguments in further
 * attributes after the aggregates.  New attributes only ever go at the
 * end: a stored tuple with fewer reads them as NULL.
 */
static TupleDesc
stored_states_desc(SaQuery *q)
{
	int			nextra = 0;
	TupleDesc	desc;
	int			next;

	for (int a = 0; a < q->naggs; a++)
	{
		SaAggregate *agg = &q->aggs[a];

		if (agg->distinct)
			nextra += sa_distinct_nargs(agg->distinct) - 1;
		else
			nextra += sa_agg_needs_nulled_flag(agg);
	}
	desc = CreateTemplateTupleDesc(q->naggs + nextra);
	next = q->naggs;
	for (int a = 0; a < q->naggs; a++)
	{
		SaAggregate *agg = &q->aggs[a];

		if (agg->distinct)
		{
			for (int i = 0; i < sa_distinct_nargs(agg->distinct); i++)
			{
				int			attno = i == 0 ? a : next++;

				sa_distinct_set_attno(agg->distinct, i, attno);
				TupleDescInitEntry(desc, attno + 1,
								   i == 0 ? agg->name :
								   psprintf("%s distinct %d", agg->name, i + 1),
								   sa_distinct_stored_type(agg->distinct, i),
								   -1, 0);
			}
			continue;
		}
		TupleDescInitEntry(desc, a + 1, agg->name,
						   agg->has_serialfn ? BYTEAOID : agg->transtype,
						   -1, 0);
		if (sa_agg_needs_nulled_flag(agg))
		{
			agg->nulled_attno = next++;
			TupleDescInitEntry(desc, agg->nulled_attno + 1,
							   psprintf("%s nulled", agg->name), BOOLOID,
							   -1, 0);
		}
	}
	Assert(next == desc->natts);
	return desc;
}

/*
 * What the stored state of q is made of, as text: its key columns (types,
 * typmods, collations) and its stored states (types, and the functions that
 * serialize internal ones), and whether groups hold sessions.  The state
 * log and shared memory are read only by a query with the same signature
 * (trigger.c, check_state_signature): DDL on the source can change the types a query computes,
 * and bytes stored for one layout must never be read with another.
 */
static char *
state_signature(SaQuery *q)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, q->def.has_session ? "sessions; keys:" : "keys:");
	for (int i = 0; i < q->nkeys; i++)
		appendStringInfo(&buf, " %s collation %u",
						 format_type_with_typemod(q->key_types[i], q->key_typmods[i]),
						 q->key_collations[i]);
	appendStringInfoString(&buf, "; states:");
	for (int i = 0; i < q->naggs; i++)
	{
		SaAggregate *agg = &q->aggs[i];

		if (agg->distinct)
		{
			sa_distinct_describe(agg->distinct, &buf);
			continue;
		}
		appendStringInfo(&buf, " %s", format_type_be(agg->transtype));
		if (agg->has_serialfn)
			appendStringInfo(&buf, " via %s", format_procedure(agg->serialfn.fn_oid));
		if (agg->nulled_attno >= 0)
			appendStringInfoString(&buf, " nullable");
	}
	return buf.data;
}

/* The batch query's select list as it is built: text and column types. */
typedef struct BatchColumns
{
	StringInfoData sql;
	SaScope		scope;			/* for deparsing over the FROM clause */
} BatchColumns;

/* Add a column, given as text of type "type", to the batch's select list. */
static void
append_batch_text(SaQuery *q, BatchColumns *cols, const char *text, Oid type)
{
	if (q->batch_ncols > 0)
		appendStringInfoString(&cols->sql, ", ");
	appendStringInfoString(&cols->sql, text);
	q->batch_types[q->batch_ncols++] = type;
}

/* Add an expression to the batch query's select list. */
static void
append_batch_column(SaQuery *q, BatchColumns *cols, Node *expr)
{
	append_batch_text(q, cols, sa_scope_deparse(&cols->scope, expr),
					  exprType(expr));
}

/*
 * The source, which must still exist (locked for the rest of the
 * transaction), its event-time column and its transaction id column.
 * Returns the type of the event-time column.
 */
static Oid
compile_source(SaQuery *q)
{
	Relation	rel;
	Oid			et_type;

	q->source_qualified = sa_qualified_relation(q->def.source, "source",
												q->def.name);
	rel = table_open(q->def.source, AccessShareLock);
	table_close(rel, NoLock);
	/* a stateless query may do without: its rows have a NULL event time */
	et_type = q->def.event_time ?
		event_time_type(q->def.source, q->def.event_time) : TIMESTAMPTZOID;
	q->window_type = getBaseType(et_type);
	sa_check_xid_column(q->def.source);
	return et_type;
}

/*
 * The group key: per column its type, collation and the equality and hash
 * functions of its type (as GROUP BY by hashing uses), whether it is the
 * event-time column itself, and its batch column.
 */
static void
compile_keys(SaQuery *q, List *keys, const char *param, SaQuery *batch_q,
			 BatchColumns *cols)
{
	AttrNumber	event_time = q->def.event_time ?
		get_attnum(q->def.source, q->def.event_time) : InvalidAttrNumber;
	int			i = 0;

	q->nkeys = list_length(keys);
	q->event_time_key = -1;
	q->key_names = palloc0(sizeof(char *) * (q->nkeys + 1));
	q->key_types = palloc0(sizeof(Oid) * (q->nkeys + 1));
	q->key_typmods = palloc0(sizeof(int32) * (q->nkeys + 1));
	q->key_collations = palloc0(sizeof(Oid) * (q->nkeys + 1));
	q->key_eq = palloc0(sizeof(FmgrInfo) * (q->nkeys + 1));
	q->key_hash = palloc0(sizeof(FmgrInfo) * (q->nkeys + 1));
	q->key_desc = CreateTemplateTupleDesc(q->nkeys);
	sa_foreach_node(TargetEntry, te, keys)
	{
		Node	   *expr = (Node *) te->expr;
		Oid			eqop;
		Oid			hashfn;
		bool		hashable;

		q->key_names[i] = pstrdup(te->resname);
		if (IsA(expr, Var) && ((Var *) expr)->varno == 1 &&
			((Var *) expr)->varattno == event_time)
			q->event_time_key = i;
		q->key_types[i] = exprType(expr);
		q->key_typmods[i] = exprTypmod(expr);
		q->key_collations[i] = exprCollation(expr);
		get_sort_group_operators(q->key_types[i], false, true, false,
								 NULL, &eqop, NULL, &hashable);
		if (!hashable || !get_op_hash_functions(eqop, &hashfn, NULL))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("%s column \"%s\" of type %s cannot be compared by hashing",
							param, te->resname, format_type_be(q->key_types[i])),
					 errdetail("Keys are compared with the hash equality of their type, as GROUP BY compares them.")));
		fmgr_info(get_opcode(eqop), &q->key_eq[i]);
		fmgr_info(hashfn, &q->key_hash[i]);
		TupleDescInitEntry(q->key_desc, i + 1, te->resname, q->key_types[i],
						   q->key_typmods[i], 0);
		TupleDescInitEntryCollation(q->key_desc, i + 1, q->key_collations[i]);
		append_batch_column(batch_q, cols, expr);
		i++;
	}
	q->has_event_time_bound = q->def.has_window || q->def.has_session ||
		q->event_time_key >= 0;
}

/* The aggregates: their support functions, and their batch columns. */
static void
compile_aggregates(SaQuery *q, List *aggs, BatchColumns *cols)
{
	int			i = 0;
	List	   *aggrefs = NIL;

	q->naggs = list_length(aggs);
	q->aggs = palloc0(sizeof(SaAggregate) * q->naggs);
	sa_foreach_node(TargetEntry, te, aggs)
	{
		Aggref	   *aggref = (Aggref *) te->expr;
		int			firstarg = q->batch_ncols - q->batch_lead;
		int			filterarg = -1;

		sa_foreach_node(TargetEntry, arg, aggref->args)
			append_batch_column(q, cols, (Node *) arg->expr);
		if (aggref->aggfilter)
		{
			filterarg = q->batch_ncols - q->batch_lead;
			append_batch_column(q, cols, (Node *) aggref->aggfilter);
		}
		sa_agg_setup(&q->aggs[i++], aggref, te->resname, firstarg, filterarg);
		aggrefs = lappend(aggrefs, aggref);
	}
	sa_aggs_share_states(q, aggrefs);
}

/*
 * The columns of a stateless query, and their batch columns, which come
 * right after the event time.
 */
static void
compile_columns(SaQuery *q, List *columns, BatchColumns *cols)
{
	int			i = 0;

	q->stateless = columns != NIL;
	q->ncolumns = list_length(columns);
	q->column_names = palloc0(sizeof(char *) * (q->ncolumns + 1));
	q->column_types = palloc0(sizeof(Oid) * (q->ncolumns + 1));
	q->column_typmods = palloc0(sizeof(int32) * (q->ncolumns + 1));
	q->column_collations = palloc0(sizeof(Oid) * (q->ncolumns + 1));
	q->column_typlens = palloc0(sizeof(int16) * (q->ncolumns + 1));
	q->column_typbyvals = palloc0(sizeof(bool) * (q->ncolumns + 1));
	sa_foreach_node(TargetEntry, te, columns)
	{
		Node	   *expr = (Node *) te->expr;

		q->column_names[i] = pstrdup(te->resname);
		q->column_types[i] = exprType(expr);
		q->column_typmods[i] = exprTypmod(expr);
		q->column_collations[i] = exprCollation(expr);
		get_typlenbyval(q->column_types[i], &q->column_typlens[i],
						&q->column_typbyvals[i]);
		append_batch_column(q, cols, expr);
		i++;
	}
}

/*
 * With a late sink, a batch row ends with the source's own columns (all
 * but streamagg_xid, late_sink.c), so that a row dropped as late can be
 * kept whole.  Without one the batch reads only what the windows need.
 */
static void
compile_late_columns(SaQuery *q, List *attnums, BatchColumns *cols)
{
	ListCell   *lc;
	int			i = 0;

	q->late_first_col = -1;
	if (!OidIsValid(q->def.late_sink))
		return;
	q->late_first_col = q->batch_ncols - q->batch_lead;
	q->late_ncols = list_length(attnums);
	q->late_col_names = palloc(sizeof(char *) * (q->late_ncols + 1));
	foreach(lc, attnums)
	{
		AttrNumber	attnum = lfirst_int(lc);
		Oid			type;
		int32		typmod;
		Oid			collation;

		get_atttypetypmodcoll(q->def.source, attnum, &type, &typmod,
							  &collation);
		q->late_col_names[i++] = get_attname(q->def.source, attnum, false);
		append_batch_column(q, cols, (Node *) makeVar(1, attnum, type, typmod,
													  collation, 0));
	}
}

/*
 * How groups are stored: one stored state per aggregate, and for session
 * queries all open sessions of a key packed in one bytea; and that layout
 * as text, the state signature.
 */
static void
compile_state_layout(SaQuery *q)
{
	q->state_desc = stored_states_desc(q);
	if (q->def.has_session)
	{
		q->group_state_desc = CreateTemplateTupleDesc(1);
		TupleDescInitEntry(q->group_state_desc, 1, "sessions", BYTEAOID, -1, 0);
	}
	else
		q->group_state_desc = q->state_desc;
	q->state_signature = state_signature(q);
}

/*
 * The batch's FROM clause and its control columns (see SaQuery): with
 * joins, the source row's identity and whether it passes the inner joins
 * (read as left joins, join.c) and the filter; with a filter alone,
 * whether it passes.  Returns the FROM clause.
 */
static const char *
compile_from(SaQuery *q, BatchColumns *cols, Node *filter)
{
	const char *from = q->source_qualified;
	char	   *passes = NULL;

	q->xid_column = SA_XID_COLUMN;
	q->filter_volatile = filter && contain_volatile_functions(filter);
	if (q->def.join)
	{
		const char *source = sa_scope_source_name(&cols->scope);

		from = sa_batch_from(&cols->scope, &passes);
		q->joined = sa_scope_joined_relations(&cols->scope);
		q->xid_column = psprintf("%s.%s", source, SA_XID_COLUMN);
		if (filter)
			passes = psprintf("%s AND (%s) IS TRUE", passes,
							  sa_scope_deparse(&cols->scope, filter));
		append_batch_text(q, cols, passes, BOOLOID);
		append_batch_text(q, cols, psprintf("%s.tableoid", source), OIDOID);
		append_batch_text(q, cols, psprintf("%s.ctid", source), TIDOID);
	}
	else if (filter)
		append_batch_text(q, cols,
						  psprintf("(%s) IS TRUE",
								   sa_scope_deparse(&cols->scope, filter)),
						  BOOLOID);
	q->batch_lead = q->batch_ncols;
	Assert(q->batch_lead == 0 || q->batch_lead == 1 || q->batch_lead == 3);
	return from;
}

/*
 * Deduplication (docs/semantics.md §10) keeps the keys it has seen as the
 * groups of a second, internal query, q->dedup: a session query over the
 * dedup keys whose state lives beside q's (in shared memory and the state
 * log, under query id -q's), so that it is durable, exactly once and bounded
 * like any state.  A kept row of event time t opens the key's one session,
 * [t - 1 microsecond, t + D): the watermark closes it, and the key is
 * forgotten, exactly when W >= t + D (the closed-by rule of §3).  Without
 * a watermark nothing closes it.  The dedup keys are batch columns of q,
 * after its other columns.
 */
static void
compile_dedup(SaQuery *q, const SaFrom *from, List *keys, BatchColumns *cols)
{
	SaQuery    *dq = palloc0(sizeof(SaQuery));
	BatchColumns unused;

	dq->cxt = q->cxt;
	dq->def = q->def;
	dq->def.query_id = -q->def.query_id;
	dq->def.has_window = false;
	dq->def.has_session = true;
	dq->def.session_gap = (q->def.has_watermark ? q->def.watermark_delay : 0) + 1;
	dq->def.output_mode = SA_OUTPUT_APPEND;
	dq->def.aggregates = "pg_catalog.count(*) AS seen";
	dq->def.group_by = dq->def.columns = dq->def.dedup = NULL;
	dq->source_qualified = q->source_qualified;
	dq->window_type = q->window_type;
	dq->xid_column = q->xid_column;

	/* the key columns: dq's key metadata, q's batch columns */
	q->dedup_first = q->batch_ncols - q->batch_lead;
	compile_keys(dq, keys, "dedup", q, cols);
	q->ndedup = dq->nkeys;
	/* dq reads no batch of its own: its aggregate takes no argument */
	dq->batch_types = palloc(sizeof(Oid));
	initStringInfo(&unused.sql);
	unused.scope = cols->scope;
	compile_aggregates(dq, analyze_aggregates(from, dq->def.aggregates), &unused);
	Assert(dq->naggs == 1 && dq->aggs[0].numargs == 0 && dq->batch_ncols == 0);
	compile_state_layout(dq);
	q->dedup = dq;
}

/*
 * Sliding windows are folded per pane when that pays: a row falls into
 * several windows, and every aggregate can combine (a DISTINCT one always
 * can: its sets are united, with copies of the pane's values).  A strict
 * combine function would adopt a pane's internal state as a window's
 * state, and one pane feeds several windows: those aggregates go row by
 * row.
 */
static bool
folds_by_panes(const SaQuery *q)
{
	if (!q->def.has_window || q->def.window_slide >= q->def.window_size)
		return false;
	/* panes of local days are not all the same length (DST) */
	if (q->calendar)
		return false;
	for (int i = 0; i < q->naggs; i++)
		if (q->aggs[i].distinct)
			continue;
		else if (!q->aggs[i].has_combinefn ||
			(q->aggs[i].combinefn_strict && q->aggs[i].transtype == INTERNALOID))
			return false;
	return true;
}

/*
 * Compile a stored definition: analyse its normalized texts (with the
 * pinned search_path), look up its key operators and aggregates, lay out
 * its state and build the batch query.  The result and everything it
 * points to live in a new memory context under the current one.
 */
static char *
copy_or_null(const char *s)
{
	return s ? pstrdup(s) : NULL;
}

SaQuery *
sa_compile_query(const SaDefinition *def)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "streamagg query",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	SaQuery    *q = palloc0(sizeof(SaQuery));
	int			nestlevel = sa_pin_search_path();
	Analysed	a;
	List	   *late_attnums = NIL;
	Oid			et_type;
	const char *batch_from;
	BatchColumns cols;

	q->cxt = cxt;
	q->def = *def;
	q->def.name = pstrdup(def->name);
	q->def.event_time = copy_or_null(def->event_time);
	q->def.sink_merge = copy_or_null(def->sink_merge);
	q->def.notify_channel = copy_or_null(def->notify_channel);
	q->def.filter = copy_or_null(def->filter);
	q->def.join = copy_or_null(def->join);
	q->def.columns = copy_or_null(def->columns);
	q->def.dedup = copy_or_null(def->dedup);
	q->def.time_zone = copy_or_null(def->time_zone);

	et_type = compile_source(q);
	q->calendar = def->has_window &&
		(def->time_zone != NULL || def->window_size_months > 0);
	if (def->time_zone != NULL)
	{
		q->zone = pg_tzset(def->time_zone);
		if (q->zone == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("time zone \"%s\" of streaming query \"%s\" is not recognized",
							def->time_zone, def->name)));
	}
	analyze_definition(def, true, &a);
	cols.scope = a.scope;
	if (OidIsValid(def->late_sink))
		late_attnums = sa_late_source_columns(def->source);

	/*
	 * batch columns: the control columns, the event time, the keys, the
	 * aggregates' inputs or the columns, with a late sink the source's
	 * columns, and the dedup keys
	 */
	q->batch_types = palloc(sizeof(Oid) * (3 + 1 + list_length(a.group_by) +
										   count_aggregate_inputs(a.aggregates) +
										   list_length(a.columns) +
										   list_length(late_attnums) +
										   list_length(a.dedup)));
	initStringInfo(&cols.sql);
	batch_from = compile_from(q, &cols, a.filter);
	if (def->event_time == NULL)
		append_batch_text(q, &cols, "NULL::pg_catalog.timestamptz", et_type);
	else if (a.from.has_join)
		append_batch_text(q, &cols,
						  psprintf("%s.%s", sa_scope_source_name(&cols.scope),
								   quote_identifier(def->event_time)),
						  et_type);
	else
		append_batch_text(q, &cols, quote_identifier(def->event_time), et_type);
	compile_keys(q, a.group_by, "group_by", q, &cols);
	compile_aggregates(q, a.aggregates, &cols);
	compile_columns(q, a.columns, &cols);
	compile_late_columns(q, late_attnums, &cols);
	if (def->dedup)
		compile_dedup(q, &a.from, a.dedup, &cols);
	compile_state_layout(q);
	if (q->dedup)
		q->state_signature = psprintf("%s; dedup %s", q->state_signature,
									  q->dedup->state_signature);
	q->use_panes = folds_by_panes(q);
	/* the batch query without its predicate: see sa_batch_predicate() */
	q->batch_select = psprintf("SELECT %s FROM %s WHERE ", cols.sql.data,
							   batch_from);
	sa_unpin_search_path(nestlevel);
	MemoryContextSwitchTo(old);
	return q;
}

/*
 * The rejections of docs/semantics.md §5 and §6 that need the compiled
 * query (which aggregates, which keys): checked by create_query right
 * after compiling.
 */
void
sa_validate_compiled(const SaQuery *q)
{
	/* names in messages as the stored texts have them */
	int			nestlevel = sa_pin_search_path();

	for (int i = 0; i < q->naggs; i++)
		if (q->def.has_session && !q->aggs[i].has_combinefn &&
			!q->aggs[i].distinct)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("aggregate \"%s\" cannot be used with session windows",
							q->aggs[i].name),
					 errdetail("Merging two sessions combines their states, and aggregate %s has no combine function.",
							   format_procedure(q->aggs[i].aggfnoid))));
	if (q->def.time_zone != NULL && q->window_type != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("time_zone requires an event_time column of type timestamp with time zone"),
				 errdetail("Column \"%s\" is a timestamp without time zone: its values are already local times.",
						   q->def.event_time),
				 errhint("Leave time_zone NULL: windows of days, months and years then follow the column's own calendar.")));
	if (q->def.window_size_months > 0 && q->def.time_zone == NULL &&
		q->window_type == TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window_size in months requires time_zone"),
				 errdetail("Where a month begins depends on the time zone."),
				 errhint("Give time_zone, for example 'UTC' or 'Europe/Berlin'.")));
	if (q->def.output_mode == SA_OUTPUT_APPEND && !q->has_event_time_bound &&
		!q->stateless)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("append output mode requires a window, session windows, or the event-time column as a group key"),
				 errdetail("In append mode a row is written once, when the watermark passes its event time bound."),
				 errhint("Give window_size or session_gap, or add \"%s\" to group_by.",
						 q->def.event_time)));
	sa_unpin_search_path(nestlevel);
}

/*
 * Check, as the query's owner, that a trigger may run the query's batch
 * read: SELECT on the source and EXECUTE on every function of the
 * aggregates' arguments, their FILTERs and the group_by expressions
 * (security.c).  The executor checks the same at every trigger.
 */
void
sa_check_batch_statement(SaQuery *q)
{
	Oid			argtypes[2] = {PG_SNAPSHOTOID, PG_SNAPSHOTOID};

	sa_check_statement_privileges(psprintf("%s%s", q->batch_select,
										   sa_batch_predicate(q->xid_column, false,
															  (Datum) 0, (Datum) 0)),
								  2, argtypes, NULL);
}
