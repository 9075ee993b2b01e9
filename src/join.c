/*-------------------------------------------------------------------------
 *
 * join.c
 *	  The FROM clause of a query: its source, and the stream-static joins
 *	  that read dimension tables beside it (docs/pipelines.md).
 *
 * A query's expressions (aggregates, group_by, filter, columns, dedup) are
 * analysed over "FROM <source> <join clauses>".  The join clauses must be a
 * chain of "[INNER | LEFT] JOIN <table or view> [alias] ON <condition>"
 * starting at the source: no function, subquery, LATERAL, USING, NATURAL
 * or CROSS join, and never the source itself (sa_parse_from checks the raw
 * parse tree).
 *
 * With joins, expressions are normalized with every column prefixed by its
 * relation's name, as chosen by ruleutils for the range table (the same
 * names every time for the same FROM clause), and the normalized FROM
 * clause spells out every relation schema-qualified with exactly those
 * names as aliases.  Without joins the texts stay as they were before joins
 * existed: unprefixed, over the source alone.
 *
 * A batch counts the source rows it read, and filters or joins drop some of
 * them (filtered_rows).  So that every source row reaches the trigger even
 * when an inner join has no match for it, the batch reads inner joins as
 * left joins plus a marker per inner join that is true when it matched
 * (sa_batch_from).  Left-deep chains make that exact: the rows of
 * "X JOIN r ON c" are the rows of "X LEFT JOIN r ON c" whose r matched, and
 * rows extended from an unmatched row are dropped by the same marker.
 *
 * This file does not decide what a trigger does with the rows (batch.c).
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "optimizer/optimizer.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"

#include "definition.h"
#include "join.h"

/* Reject one item of the join chain that is not a plain relation. */
static void
check_joined_item(Node *item, Oid source)
{
	RangeVar   *rv;
	Oid			relid;
	char		relkind;

	if (IsA(item, RangeFunction))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a join to a function is not supported"),
				 errhint("Join a table or a view.")));
	if (IsA(item, RangeSubselect))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a join to a subquery is not supported"),
				 errhint("Join a table or a view; a view can hold the subquery.")));
	if (!IsA(item, RangeVar))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("join must join tables or views one by one"),
				 errhint("Write each join as [INNER | LEFT] JOIN <table> [alias] ON <condition>, without parentheses.")));
	rv = (RangeVar *) item;
	relid = RangeVarGetRelid(rv, NoLock, false);
	if (relid == source)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a join to the source itself is not supported"),
				 errdetail("A stream-static join reads a table beside the stream; the source's rows are the stream.")));
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" cannot be joined", rv->relname),
				 errhint("Join a table or a view.")));
}

/*
 * Check one join of the chain and, recursively, those before it; the
 * innermost left item must be the source.
 */
static void
check_join_chain(Node *node, Oid source)
{
	JoinExpr   *j;

	if (IsA(node, RangeVar))
	{
		if (RangeVarGetRelid((RangeVar *) node, NoLock, true) != source)
			elog(ERROR, "the FROM clause of a streaming query must start with its source");
		return;
	}
	if (!IsA(node, JoinExpr))
		check_joined_item(node, source);
	j = (JoinExpr *) node;
	if (j->alias != NULL || j->join_using_alias != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("an alias for a join is not supported"),
				 errhint("Refer to the columns of each relation by its own name or alias.")));
	if (j->jointype != JOIN_INNER && j->jointype != JOIN_LEFT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("only INNER and LEFT joins are supported"),
				 errdetail("Every event of the stream is kept or dropped by its own matches; RIGHT and FULL joins would add rows without an event.")));
	if (j->isNatural || j->usingClause != NIL || j->quals == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("each join needs an ON condition"),
				 errhint("Write NATURAL, USING and CROSS joins as JOIN ... ON <condition>.")));
	if (IsA(j->rarg, RangeSubselect) && ((RangeSubselect *) j->rarg)->lateral)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("LATERAL joins are not supported"),
				 errdetail("A stream-static join reads a table or a view, not a subquery per event.")));
	if (IsA(j->rarg, RangeFunction) && ((RangeFunction *) j->rarg)->lateral)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("LATERAL joins are not supported"),
				 errdetail("A stream-static join reads a table or a view, not a function per event.")));
	check_joined_item(j->rarg, source);
	check_join_chain(j->larg, source);
}

/*
 * The raw FROM clause of "SELECT FROM <from>", checked to be the source
 * followed by a chain of joins.  Statements that analyse expressions over
 * the same FROM compare their FROM clause with this one (equal() ignores
 * locations), so that no expression text can change what is read.
 */
List *
sa_parse_from(Oid source, const char *from)
{
	char	   *sql = psprintf("SELECT\nFROM %s", from);
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	RawStmt    *rawstmt = list_length(raw) == 1 ? linitial_node(RawStmt, raw) : NULL;
	SelectStmt *select = (rawstmt && IsA(rawstmt->stmt, SelectStmt)) ?
	(SelectStmt *) rawstmt->stmt : NULL;

	if (select == NULL || select->op != SETOP_NONE ||
		list_length(select->fromClause) != 1 ||
		select->whereClause || select->groupClause || select->havingClause ||
		select->windowClause || select->sortClause || select->limitOffset ||
		select->limitCount || select->lockingClause || select->withClause ||
		select->distinctClause || select->intoClause || select->valuesLists)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("join must be a list of JOIN clauses"),
				 errdetail("Got: %s", from)));
	check_join_chain(linitial(select->fromClause), source);
	return select->fromClause;
}

/*
 * How expressions over a FROM clause are written back as text: over the
 * source alone, unprefixed (deparse_context_for); over joins, each column
 * prefixed by the name ruleutils gives its relation in the range table.
 */
SaScope
sa_scope_for(Query *query, Oid source, bool has_join)
{
	SaScope		scope;
	PlannedStmt *pstmt;

	scope.query = query;
	scope.prefix = has_join;
	if (!has_join)
	{
		scope.names = NIL;
		scope.context = deparse_context_for(get_rel_name(source), source);
		return scope;
	}
	/* a plan tree's context knows only the range table, which is all we need */
	pstmt = makeNode(PlannedStmt);
	pstmt->rtable = query->rtable;
	scope.names = select_rtable_names_for_explain(query->rtable, NULL);
	scope.context = deparse_context_for_plan_tree(pstmt, scope.names);
	return scope;
}

/* An analysed expression of scope's query, as text. */
char *
sa_scope_deparse(const SaScope *scope, Node *expr)
{
	if (scope->prefix)
		expr = flatten_join_alias_vars(scope->query, expr);
	return deparse_expression(expr, scope->context, scope->prefix, false);
}

/* The name of the relation with range table index rtindex in scope. */
static const char *
scope_name(const SaScope *scope, int rtindex)
{
	return quote_identifier(list_nth(scope->names, rtindex - 1));
}

/*
 * The marker of an inner join read as a left join: true when relation
 * rtindex matched.  A table's ctid is never NULL on a matched row; other
 * relations have no ctid, and their whole row is NULL only when it was
 * NULL-extended (IS DISTINCT FROM NULL tests the row itself, not its
 * fields).
 */
static char *
match_marker(const SaScope *scope, RangeTblEntry *rte, int rtindex)
{
	char		relkind = get_rel_relkind(rte->relid);

	if (relkind == RELKIND_RELATION || relkind == RELKIND_MATVIEW ||
		relkind == RELKIND_PARTITIONED_TABLE)
		return psprintf("%s.ctid IS NOT NULL", scope_name(scope, rtindex));
	return psprintf("%s IS DISTINCT FROM NULL", scope_name(scope, rtindex));
}

/*
 * Write the FROM item "node" of scope's query: relations schema-qualified
 * with their scope names as aliases, joins with their conditions.  With
 * "markers" non-NULL, inner joins are written as left joins and their
 * match markers appended to *markers.
 */
static void
append_from_item(StringInfo buf, const SaScope *scope, Node *node,
				 List **markers)
{
	JoinExpr   *j;
	bool		as_left;

	if (IsA(node, RangeTblRef))
	{
		int			rtindex = ((RangeTblRef *) node)->rtindex;
		RangeTblEntry *rte = rt_fetch(rtindex, scope->query->rtable);

		Assert(rte->rtekind == RTE_RELATION);
		appendStringInfo(buf, "%s%s AS %s", rte->inh ? "" : "ONLY ",
						 sa_relation_name(rte->relid), scope_name(scope, rtindex));
		return;
	}
	j = castNode(JoinExpr, node);
	Assert(IsA(j->rarg, RangeTblRef));
	append_from_item(buf, scope, j->larg, markers);
	as_left = j->jointype == JOIN_LEFT || markers != NULL;
	appendStringInfoString(buf, as_left ? " LEFT JOIN " : " JOIN ");
	append_from_item(buf, scope, j->rarg, markers);
	appendStringInfo(buf, " ON %s", sa_scope_deparse(scope, j->quals));
	if (markers != NULL && j->jointype == JOIN_INNER)
	{
		int			rtindex = ((RangeTblRef *) j->rarg)->rtindex;

		*markers = lappend(*markers,
						   match_marker(scope, rt_fetch(rtindex, scope->query->rtable),
										rtindex));
	}
}

/* The only FROM item of scope's query. */
static Node *
from_item(const SaScope *scope)
{
	Assert(list_length(scope->query->jointree->fromlist) == 1);
	return linitial(scope->query->jointree->fromlist);
}

/* The FROM clause of scope's query, normalized (see the file header). */
char *
sa_normalized_from(const SaScope *scope)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_from_item(&buf, scope, from_item(scope), NULL);
	return buf.data;
}

/*
 * The FROM clause a batch reads: inner joins as left joins; *markers gets
 * the condition, as text, that every inner join matched ("true" without
 * inner joins).
 */
char *
sa_batch_from(const SaScope *scope, char **markers)
{
	StringInfoData buf;
	List	   *list = NIL;

	initStringInfo(&buf);
	append_from_item(&buf, scope, from_item(scope), &list);
	*markers = list == NIL ? "true" : "";
	if (list != NIL)
	{
		StringInfoData all;

		initStringInfo(&all);
		sa_foreach_ptr(char, marker, list)
			appendStringInfo(&all, "%s(%s)", all.len > 0 ? " AND " : "", marker);
		*markers = all.data;
	}
	return buf.data;
}

/* The name of the source in scope's query (its first relation). */
const char *
sa_scope_source_name(const SaScope *scope)
{
	return scope_name(scope, 1);
}

/* The OIDs of the relations scope's query joins to its source. */
List *
sa_scope_joined_relations(const SaScope *scope)
{
	List	   *relids = NIL;
	int			rtindex = 0;

	sa_foreach_node(RangeTblEntry, rte, scope->query->rtable)
	{
		/* the source is the first entry; joins have entries of their own */
		if (++rtindex > 1 && rte->rtekind == RTE_RELATION)
			relids = lappend_oid(relids, rte->relid);
	}
	return relids;
}
