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
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "parser/parse_oper.h"
#include "parser/parser.h"
#include "utils/builtins.h"
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
#include "security.h"

/*
 * Parse and analyse "SELECT <targets> FROM <source>", making sure that the
 * text is only a target list: one statement, reading only the source.
 */
static Query *
analyze_target_list(Oid source, const char *targets, const char *param)
{
	char	   *sql;
	List	   *raw;
	RawStmt    *rawstmt;
	SelectStmt *select;

	sql = psprintf("SELECT %s\nFROM %s", targets,
				   sa_relation_name(source));
	raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	rawstmt = list_length(raw) == 1 ? linitial_node(RawStmt, raw) : NULL;
	select = (rawstmt && IsA(rawstmt->stmt, SelectStmt)) ?
		(SelectStmt *) rawstmt->stmt : NULL;
	if (select == NULL || select->op != SETOP_NONE ||
		select->distinctClause || select->intoClause ||
		list_length(select->fromClause) != 1 ||
		!IsA(linitial(select->fromClause), RangeVar) ||
		RangeVarGetRelid(linitial_node(RangeVar, select->fromClause),
						 NoLock, true) != source ||
		select->whereClause || select->groupClause || select->havingClause ||
		select->windowClause || select->valuesLists || select->sortClause ||
		select->limitOffset || select->limitCount || select->lockingClause ||
		select->withClause)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("%s must be a comma-separated list of expressions", param),
				 errdetail("Got: %s", targets)));
	return parse_analyze_fixedparams(rawstmt, sql, NULL, 0, NULL);
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

/* The group_by expressions, each checked to be groupable. */
static List *
analyze_group_by(Oid source, const char *group_by)
{
	Query	   *query = analyze_target_list(source, group_by, "group_by");

	check_no_unsupported_nodes(query, "group_by");
	if (query->hasAggs)
		ereport(ERROR,
				(errcode(ERRCODE_GROUPING_ERROR),
				 errmsg("aggregate functions are not allowed in group_by")));
	sa_foreach_node(TargetEntry, te, query->targetList)
	{
		if (strcmp(te->resname, "?column?") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("group_by expression needs a name"),
					 errhint("Write the expression with an alias, as in \"lower(page) AS page\".")));
	}
	return query->targetList;
}

/* The aggregate calls, each a bare call that streamagg can maintain. */
static List *
analyze_aggregates(Oid source, const char *aggregates)
{
	Query	   *query = analyze_target_list(source, aggregates, "aggregates");

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
		if (aggref->aggdistinct != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("DISTINCT inside aggregate \"%s\" is not supported",
							te->resname),
					 errdetail("A streaming aggregate sees each row once and keeps no set of seen values.")));
		if (aggref->aggorder != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("ORDER BY inside aggregate \"%s\" is not supported",
							te->resname),
					 errdetail("Rows of a stream arrive in no defined order.")));
	}
	return query->targetList;
}

/* Deparse analysed expressions back to text, each followed by its alias. */
static char *
deparse_target_list(Oid source, List *targets)
{
	List	   *context = deparse_context_for(get_rel_name(source), source);
	StringInfoData buf;
	int			nestlevel = sa_pin_search_path();

	initStringInfo(&buf);
	sa_foreach_node(TargetEntry, te, targets)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfo(&buf, "%s AS %s",
						 deparse_expression((Node *) te->expr, context,
											false, false),
						 quote_identifier(te->resname));
	}
	sa_unpin_search_path(nestlevel);
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

/*
 * Analyse the user's texts with the caller's search_path and return them
 * normalized (see the file header).
 */
void
sa_normalize_definition(Oid source, const char *aggregates,
						const char *group_by, char **aggregates_out,
						char **group_by_out)
{
	*aggregates_out = deparse_target_list(source,
										  analyze_aggregates(source, aggregates));
	*group_by_out = NULL;
	if (group_by != NULL)
		*group_by_out = deparse_target_list(source,
											analyze_group_by(source, group_by));
}

/* A parameter of the 0.7 API whose feature is still being built. */
static void
reject_not_yet_supported(const char *param, bool given)
{
	if (given)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is not supported yet", param)));
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
	reject_not_yet_supported("filter", def->filter != NULL);
	reject_not_yet_supported("join", def->join != NULL);
	reject_not_yet_supported("columns", def->columns != NULL);
	reject_not_yet_supported("dedup", def->dedup != NULL);
	reject_not_yet_supported("idle_timeout", def->has_idle_timeout);
	reject_not_yet_supported("time_zone", def->time_zone != NULL);

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
	if (def->has_window)
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
	}
	if (def->has_watermark && def->watermark_delay < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("watermark must not be negative")));
	if (def->has_trigger_interval && def->trigger_interval < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trigger_interval must not be negative")));
	if (def->output_mode == SA_OUTPUT_APPEND && !def->has_watermark)
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
 * for good, whose index the aggregate records.  New attributes only ever
 * go at the end: a stored tuple with fewer reads them as NULL.
 */
static TupleDesc
stored_states_desc(SaQuery *q)
{
	int			nflags = 0;
	TupleDesc	desc;
	int			next;

	for (int a = 0; a < q->naggs; a++)
		nflags += sa_agg_needs_nulled_flag(&q->aggs[a]);
	desc = CreateTemplateTupleDesc(q->naggs + nflags);
	next = q->naggs;
	for (int a = 0; a < q->naggs; a++)
	{
		SaAggregate *agg = &q->aggs[a];

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
	List	   *context;		/* for deparsing over the source */
} BatchColumns;

/* Add an expression to the batch query's select list. */
static void
append_batch_column(SaQuery *q, BatchColumns *cols, Node *expr)
{
	if (q->batch_ncols > 0)
		appendStringInfoString(&cols->sql, ", ");
	appendStringInfoString(&cols->sql,
						   deparse_expression(expr, cols->context, false, false));
	q->batch_types[q->batch_ncols++] = exprType(expr);
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
	et_type = event_time_type(q->def.source, q->def.event_time);
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
compile_keys(SaQuery *q, List *keys, BatchColumns *cols)
{
	AttrNumber	event_time = get_attnum(q->def.source, q->def.event_time);
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
		if (IsA(expr, Var) && ((Var *) expr)->varattno == event_time)
			q->event_time_key = i;
		q->key_types[i] = exprType(expr);
		q->key_typmods[i] = exprTypmod(expr);
		q->key_collations[i] = exprCollation(expr);
		get_sort_group_operators(q->key_types[i], false, true, false,
								 NULL, &eqop, NULL, &hashable);
		if (!hashable || !get_op_hash_functions(eqop, &hashfn, NULL))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("group_by column \"%s\" of type %s cannot be grouped by hashing",
							te->resname, format_type_be(q->key_types[i]))));
		fmgr_info(get_opcode(eqop), &q->key_eq[i]);
		fmgr_info(hashfn, &q->key_hash[i]);
		TupleDescInitEntry(q->key_desc, i + 1, te->resname, q->key_types[i],
						   q->key_typmods[i], 0);
		TupleDescInitEntryCollation(q->key_desc, i + 1, q->key_collations[i]);
		append_batch_column(q, cols, expr);
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

	q->naggs = list_length(aggs);
	q->aggs = palloc0(sizeof(SaAggregate) * q->naggs);
	sa_foreach_node(TargetEntry, te, aggs)
	{
		Aggref	   *aggref = (Aggref *) te->expr;
		int			firstarg = q->batch_ncols;
		int			filterarg = -1;

		sa_foreach_node(TargetEntry, arg, aggref->args)
			append_batch_column(q, cols, (Node *) arg->expr);
		if (aggref->aggfilter)
		{
			filterarg = q->batch_ncols;
			append_batch_column(q, cols, (Node *) aggref->aggfilter);
		}
		sa_agg_setup(&q->aggs[i++], aggref, te->resname, firstarg, filterarg);
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
 * Sliding windows are folded per pane when that pays: a row falls into
 * several windows, and every aggregate can combine.  A strict combine
 * function would adopt a pane's internal state as a window's state, and one
 * pane feeds several windows: those aggregates go row by row.
 */
static bool
folds_by_panes(const SaQuery *q)
{
	if (!q->def.has_window || q->def.window_slide >= q->def.window_size)
		return false;
	for (int i = 0; i < q->naggs; i++)
		if (!q->aggs[i].has_combinefn ||
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
SaQuery *
sa_compile_query(const SaDefinition *def)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "streamagg query",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	SaQuery    *q = palloc0(sizeof(SaQuery));
	int			nestlevel = sa_pin_search_path();
	List	   *keys = NIL;
	List	   *aggs;
	Oid			et_type;
	BatchColumns cols;

	q->cxt = cxt;
	q->def = *def;
	q->def.name = pstrdup(def->name);
	q->def.event_time = pstrdup(def->event_time);
	if (def->sink_merge)
		q->def.sink_merge = pstrdup(def->sink_merge);
	if (def->notify_channel)
		q->def.notify_channel = pstrdup(def->notify_channel);

	et_type = compile_source(q);
	if (def->group_by)
		keys = analyze_group_by(def->source, def->group_by);
	aggs = analyze_aggregates(def->source, def->aggregates);

	/* batch columns: the event time, the keys, the aggregates' inputs */
	q->batch_types = palloc(sizeof(Oid) * (1 + list_length(keys) +
										   count_aggregate_inputs(aggs)));
	q->batch_types[q->batch_ncols++] = et_type;
	initStringInfo(&cols.sql);
	appendStringInfoString(&cols.sql, quote_identifier(def->event_time));
	cols.context = deparse_context_for(get_rel_name(def->source), def->source);

	compile_keys(q, keys, &cols);
	compile_aggregates(q, aggs, &cols);
	compile_state_layout(q);
	q->use_panes = folds_by_panes(q);
	/* the batch query without its predicate: see sa_batch_predicate() */
	q->batch_select = psprintf("SELECT %s FROM %s WHERE ", cols.sql.data,
							   q->source_qualified);

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
		if (q->def.has_session && !q->aggs[i].has_combinefn)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("aggregate \"%s\" cannot be used with session windows",
							q->aggs[i].name),
					 errdetail("Merging two sessions combines their states, and aggregate %s has no combine function.",
							   format_procedure(q->aggs[i].aggfnoid))));
	if (q->def.output_mode == SA_OUTPUT_APPEND && !q->has_event_time_bound)
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
										   sa_batch_predicate(false, (Datum) 0,
															  (Datum) 0)),
								  2, argtypes);
}
