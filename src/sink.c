/*-------------------------------------------------------------------------
 *
 * sink.c
 *	  Where a trigger's rows go: the sink table (created or validated, then
 *	  written with one set-based upsert, or with the user's MERGE clauses),
 *	  or a function sink called once per trigger with the batch id and the
 *	  rows (docs/sinks.md).
 *
 * A sink row has window_start and window_end (for windowed queries), then
 * the group-by columns, then one column per aggregate; a stateless query's
 * sink row has its columns, and its sink table no key.  A sink table's
 * unique key is (window_start, window_end, group columns) with NULLS NOT
 * DISTINCT, so that NULL keys upsert like any other value.  A statement
 * that inserts into a sink table reads its rows from a tuplestore of the
 * table's row type, registered as the ephemeral named relation
 * streamagg_sink_rows (as a trigger's transition table is), so that each
 * row is formed once; other statements (MERGE, DELETE, the sink function)
 * get $1, one array of the sink's row type (the table's, or the element
 * type of the function's second argument), and the batch id as $2.  Extra
 * columns of that row type are left NULL.
 *
 * The statements are built when the query is compiled, prepared at their
 * first use and kept with the compiled query (SPI_keepplan); the plan cache
 * replans them after DDL on the sink, and executing them checks the
 * owner's privileges every time.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/heap.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"
#include "utils/regproc.h"
#include "utils/varlena.h"
#include "lib/stringinfo.h"

#include "batch.h"
#include "definition.h"
#include "security.h"
#include "sink.h"
#include "subtransaction.h"
#include "output.h"

/* The relation a sink INSERT reads its rows from (see the header). */
#define SINK_ROWS_RELATION "streamagg_sink_rows"

/* One expected sink column. */
typedef struct SinkColumn
{
	const char *name;
	Oid			type;
	int32		typmod;
	Oid			collation;
	bool		is_key;
	bool		is_window;		/* window_start or window_end: never NULL */
} SinkColumn;

/* The columns a sink row must have, in order (palloc'd); *n is how many. */
static SinkColumn *
sink_columns(const SaQuery *q, int *ncols)
{
	SinkColumn *cols = palloc(sizeof(SinkColumn) *
							  (2 + q->nkeys + q->naggs + q->ncolumns));
	int			n = 0;

	if (q->def.has_window || q->def.has_session)
	{
		cols[n++] = (SinkColumn) {"window_start", q->window_type, -1, InvalidOid, true, true};
		cols[n++] = (SinkColumn) {"window_end", q->window_type, -1, InvalidOid, true, true};
	}
	for (int i = 0; i < q->nkeys; i++)
		cols[n++] = (SinkColumn) {q->key_names[i], q->key_types[i],
			q->key_typmods[i], q->key_collations[i], true, false};
	for (int i = 0; i < q->naggs; i++)
		cols[n++] = (SinkColumn) {q->aggs[i].name, q->aggs[i].resulttype,
			q->aggs[i].resulttypmod, InvalidOid, false, false};
	for (int i = 0; i < q->ncolumns; i++)
		cols[n++] = (SinkColumn) {q->column_names[i], q->column_types[i],
			q->column_typmods[i], q->column_collations[i], false, false};
	*ncols = n;
	return cols;
}

/* The live column of "desc" named "name", or NULL. */
Form_pg_attribute
sa_find_column(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att;
	}
	return NULL;
}

/* The key columns, quoted, as a list "a, b"; "" when there is none. */
static char *
key_column_list(const SinkColumn *cols, int n)
{
	StringInfoData list;

	initStringInfo(&list);
	for (int i = 0; i < n; i++)
		if (cols[i].is_key)
			appendStringInfo(&list, "%s%s", list.len > 0 ? ", " : "",
							 quote_identifier(cols[i].name));
	return list.data;
}

/*
 * The condition that a sink row "t" has the window and key of row "r",
 * as the sink's unique key sees it: NULL equal to NULL.  Window bounds are
 * never NULL and key columns declared NOT NULL in the sink's row type
 * cannot be, so those compare with "=" (the key's index can serve); the
 * others with IS NOT DISTINCT FROM.  "true" without key columns.
 */
static char *
key_match_condition(const SaQuery *q, const SinkColumn *cols, int n,
					const char *r)
{
	TupleDesc	desc = lookup_rowtype_tupdesc(q->sink_rowtype, -1);
	StringInfoData on;

	initStringInfo(&on);
	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = sa_find_column(desc, cols[i].name);
		const char *name = quote_identifier(cols[i].name);
		bool		never_null = cols[i].is_window || (att && att->attnotnull);

		if (!cols[i].is_key)
			continue;
		appendStringInfo(&on, "%st.%s %s %s.%s", on.len > 0 ? " AND " : "",
						 name, never_null ? "=" : "IS NOT DISTINCT FROM",
						 r, name);
	}
	ReleaseTupleDesc(desc);
	return on.len > 0 ? on.data : "true";
}

/* Sink columns must be distinct, and none named like a system column. */
static void
check_column_names(SinkColumn *cols, int n)
{
	for (int i = 0; i < n; i++)
	{
		if (SystemAttributeByName(cols[i].name) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("sink column \"%s\" would have the name of a system column",
							cols[i].name),
					 errhint("Give the expression another alias.")));
		for (int j = 0; j < i; j++)
			if (strcmp(cols[i].name, cols[j].name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("sink column \"%s\" would appear twice",
								cols[i].name),
						 errhint("Give the expressions distinct aliases (window_start and window_end are taken).")));
	}
}

/*
 * Append "name type [COLLATE c]" for a column of a table streamagg
 * creates: the type schema-qualified, the collation only when it is not
 * the type's own.
 */
static void
append_column_definition(StringInfo sql, const SaColumn *col)
{
	appendStringInfo(sql, "%s %s", quote_identifier(col->name),
					 format_type_extended(col->type, col->typmod,
										  FORMAT_TYPE_TYPEMOD_GIVEN |
										  FORMAT_TYPE_FORCE_QUALIFY));
	if (OidIsValid(col->collation) &&
		col->collation != get_typcollation(col->type))
		appendStringInfo(sql, " COLLATE %s",
						 generate_collation_name(col->collation));
}

/*
 * Create table "rv" (schema set, see sa_set_creation_schema) as the
 * current user, with columns "cols" and, unless NULL, a table constraint.
 */
void
sa_create_table(const RangeVar *rv, const SaColumn *cols, int n,
				const char *constraint)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (",
					 quote_qualified_identifier(rv->schemaname, rv->relname));
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(&sql, ", ");
		append_column_definition(&sql, &cols[i]);
	}
	if (constraint)
		appendStringInfo(&sql, ", %s", constraint);
	appendStringInfoChar(&sql, ')');
	SPI_connect();
	if (SPI_execute(sql.data, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create table \"%s\"", rv->relname);
	SPI_finish();
}

static void
create_sink(RangeVar *rv, SinkColumn *cols, int n)
{
	char	   *key = key_column_list(cols, n);
	SaColumn   *table_cols = palloc(sizeof(SaColumn) * n);

	for (int i = 0; i < n; i++)
		table_cols[i] = (SaColumn) {cols[i].name, cols[i].type, cols[i].typmod,
									cols[i].collation};
	sa_create_table(rv, table_cols, n, key[0] == '\0' ? NULL :
					psprintf("UNIQUE NULLS NOT DISTINCT (%s)", key));
}

/* Does the sink have a unique index on exactly the key columns? */
static bool
has_key_index(Relation rel, SinkColumn *cols, int n)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	int			nkeys = 0;
	bool		found = false;

	for (int i = 0; i < n; i++)
		nkeys += cols[i].is_key;
	if (nkeys == 0)
		return true;
	foreach(lc, indexes)
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID,
											ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index index;
		bool		matches;
		bool		nulls_ok;

		if (!HeapTupleIsValid(tuple))
			continue;
		index = (Form_pg_index) GETSTRUCT(tuple);
		matches = index->indisunique && index->indisvalid &&
			index->indnkeyatts == nkeys &&
			heap_attisnull(tuple, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(tuple, Anum_pg_index_indexprs, NULL);
		nulls_ok = index->indnullsnotdistinct;
		for (int k = 0; matches && k < nkeys; k++)
		{
			AttrNumber	attnum = index->indkey.values[k];
			bool		is_key = false;

			for (int i = 0; i < n; i++)
				if (cols[i].is_key &&
					get_attnum(RelationGetRelid(rel), cols[i].name) == attnum)
					is_key = true;
			matches = is_key;
		}
		if (matches && !nulls_ok)
		{
			/* NULLS DISTINCT is fine when no key column can be NULL */
			nulls_ok = true;
			for (int k = 0; k < nkeys; k++)
			{
				AttrNumber	attnum = index->indkey.values[k];

				if (!TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attnotnull)
					nulls_ok = false;
			}
		}
		ReleaseSysCache(tuple);
		if (matches && nulls_ok)
		{
			found = true;
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * Check that the row type "desc" has every expected column with its type;
 * "what" names it in the error ("existing sink table "x"", ...).
 */
static void
check_columns(TupleDesc desc, const char *what, SinkColumn *cols, int n)
{
	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = sa_find_column(desc, cols[i].name);

		if (att == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("%s does not fit the query", what),
					 errdetail("It has no column \"%s\".", cols[i].name),
					 errhint("Name another sink, or add the column with type %s.",
							 format_type_be(cols[i].type))));
		if (att->atttypid != cols[i].type)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("%s does not fit the query", what),
					 errdetail("Column \"%s\" has type %s, the query produces %s.",
							   cols[i].name, format_type_be(att->atttypid),
							   format_type_be(cols[i].type))));
	}
}

static void
validate_sink(Oid sink, SinkColumn *cols, int n)
{
	Relation	rel = table_open(sink, AccessShareLock);
	const char *relname = RelationGetRelationName(rel);

	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("sink \"%s\" is not a table", relname)));
	check_columns(RelationGetDescr(rel),
				  psprintf("existing sink table \"%s\"", relname), cols, n);
	if (!has_key_index(rel, cols, n))
	{
		char	   *key = key_column_list(cols, n);

		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("existing sink table \"%s\" does not fit the query", relname),
				 errdetail("It has no unique index on (%s) that treats NULLs as equal.",
						   key),
				 errhint("Add UNIQUE NULLS NOT DISTINCT (%s).", key)));
	}
	table_close(rel, NoLock);
}

/*
 * A table streamagg writes to ("what": "sink", "late sink") must not be
 * temporary: workers cannot see another session's temporary tables.
 */
static void
refuse_temporary(const char *what, const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s \"%s\" would be a temporary table", what, name),
			 errdetail("Workers cannot see another session's temporary tables, and they disappear with it."),
			 errhint("Use an ordinary table.")));
}

/*
 * For an existing table "relid" named "name" that streamagg will write to:
 * refuse a temporary one.
 */
void
sa_check_written_table(Oid relid, const char *what, const char *name)
{
	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
		refuse_temporary(what, name);
}

/*
 * For a table "rv" (named "name") that streamagg is about to create: set
 * the schema it goes to, as CREATE TABLE would choose it, refusing a
 * temporary one.
 */
void
sa_set_creation_schema(RangeVar *rv, const char *what, const char *name)
{
	Oid			nsp = RangeVarGetCreationNamespace(rv);

	if (isAnyTempNamespace(nsp) || rv->relpersistence == RELPERSISTENCE_TEMP)
		refuse_temporary(what, name);
	rv->schemaname = get_namespace_name(nsp);
}

/*
 * Find the sink named "sink_name" and check that it fits, or create it.
 * Runs as the caller, so creating needs the caller's CREATE privilege.
 */
Oid
sa_prepare_sink(const char *sink_name, const SaQuery *q, bool *created)
{
	int			n;
	SinkColumn *cols = sink_columns(q, &n);
	List	   *names = stringToQualifiedNameList(sink_name);
	RangeVar   *rv = makeRangeVarFromNameList(names);
	Oid			sink;

	check_column_names(cols, n);
	sink = RangeVarGetRelid(rv, AccessShareLock, true);
	*created = !OidIsValid(sink);
	if (OidIsValid(sink))
	{
		sa_check_written_table(sink, "sink", sink_name);
		validate_sink(sink, cols, n);
	}
	else
	{
		sa_set_creation_schema(rv, "sink", sink_name);
		create_sink(rv, cols, n);
		CommandCounterIncrement();
		sink = RangeVarGetRelid(rv, AccessShareLock, false);
	}
	return sink;
}

/*
 * Find the function sink "spec" (a name, or a name with argument types) and
 * check that it takes (bigint, rows sinkrow[]) where sinkrow is a composite
 * type with the query's columns.  The caller must be allowed to execute it.
 */
Oid
sa_prepare_sink_function(const char *spec, const SaQuery *q)
{
	Oid			fn;
	HeapTuple	tuple;
	Form_pg_proc proc;
	Oid			rowtype = InvalidOid;
	int			n;
	SinkColumn *cols = sink_columns(q, &n);
	TupleDesc	desc;
	AclResult	aclresult;

	check_column_names(cols, n);
	/* a name, not an OID (which regprocin would also take) */
	if (strspn(spec, "0123456789- ") == strlen(spec))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sink_function must name a function, not \"%s\"", spec)));
	fn = DatumGetObjectId(DirectFunctionCall1(strchr(spec, '(') ?
											  regprocedurein : regprocin,
											  CStringGetDatum(spec)));
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("sink function \"%s\" does not exist", spec)));
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	if (proc->prokind == PROKIND_FUNCTION && !proc->proretset &&
		proc->pronargs == 2 && proc->proargtypes.values[0] == INT8OID)
		rowtype = get_element_type(proc->proargtypes.values[1]);
	ReleaseSysCache(tuple);
	if (!OidIsValid(rowtype) || !type_is_rowtype(rowtype) ||
		rowtype == RECORDOID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("sink function %s must take (batch_id bigint, rows sinkrow[])",
						format_procedure(fn)),
				 errdetail("sinkrow is a composite type (CREATE TYPE, or a table's row type) with the query's output columns."),
				 errhint("See streamagg's docs/sinks.md for an example.")));
	aclresult = pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(fn));

	desc = lookup_rowtype_tupdesc(rowtype, -1);
	check_columns(desc, psprintf("row type %s of sink function %s",
								 format_type_be(rowtype), format_procedure(fn)),
				  cols, n);
	ReleaseTupleDesc(desc);
	return fn;
}

/* Does a trigger of q delete sink rows (sessions merged away)? */
static bool
deletes_sink_rows(const SaQuery *q)
{
	return OidIsValid(q->def.sink) && q->def.has_session &&
		q->def.output_mode == SA_OUTPUT_COMPLETE;
}

/*
 * A stateless query whose rows need no look at each (no join to count
 * source rows by, no dedup, a filter that gives the same answer when
 * evaluated again) appends its batch to its sink table with one INSERT ...
 * SELECT over the batch query, as fast as the statement a user would
 * write; a second, cheap query over the same batch (the same rows: sources
 * are append-only) gives the progress figures: the rows read, and the
 * least and greatest event time of those that passed.  Both are the batch
 * query with its predicate (batch.c) between q->move_*_head and
 * q->move_alias, which names its columns p (passes), t (event time) and c0
 * ... (the sink's columns).  As for other queries, the figures take only
 * finite event times.
 */
static void
build_move_statements(SaQuery *q, const SinkColumn *cols, int n)
{
	StringInfoData names;
	StringInfoData list;
	StringInfoData alias;

	Assert(n == q->ncolumns);
	initStringInfo(&names);
	initStringInfo(&list);
	initStringInfo(&alias);
	appendStringInfoString(&alias, q->batch_lead == 1 ? ") b(p, t" : ") b(t");
	for (int i = 0; i < n; i++)
	{
		appendStringInfo(&names, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(cols[i].name));
		appendStringInfo(&list, "%sc%d", i > 0 ? ", " : "", i);
		appendStringInfo(&alias, ", c%d", i);
	}
	appendStringInfoChar(&alias, ')');
	q->move_passes = q->batch_lead == 1 ? "p" : "true";
	q->move_alias = alias.data;
	q->move_insert_head = psprintf("INSERT INTO %s (%s) SELECT %s FROM (%s",
								   q->sink_qualified, names.data, list.data,
								   q->batch_select);
	q->move_figures_head = psprintf("SELECT pg_catalog.count(*), "
									"pg_catalog.min(t) FILTER (WHERE %s AND pg_catalog.isfinite(t)), "
									"pg_catalog.max(t) FILTER (WHERE %s AND pg_catalog.isfinite(t)) "
									"FROM (%s",
									q->move_passes, q->move_passes,
									q->batch_select);
}

/* The INSERT of build_move_statements for the batch of "predicate". */
char *
sa_move_insert_sql(const SaQuery *q, const char *predicate)
{
	return psprintf("%s%s%s WHERE %s", q->move_insert_head, predicate,
					q->move_alias, q->move_passes);
}

/* The query of its progress figures. */
char *
sa_move_figures_sql(const SaQuery *q, const char *predicate)
{
	return psprintf("%s%s%s", q->move_figures_head, predicate, q->move_alias);
}

/*
 * The statements of a query's sink, stored in q (built in q's memory
 * context):
 *	  - sink_sql delivers a trigger's rows: for a sink table one upsert
 *		reading SINK_ROWS_RELATION, and without any key column the table
 *		holds one row, replaced each time; for a stateless query a plain
 *		INSERT; with sink_merge, the MERGE with the query's clauses (target
 *		alias t, row alias s) of $1, an array of q->sink_rowtype; for a
 *		function sink, SELECT fn($2, $1), $2 being the batch id;
 *	  - sink_insert_sql, a plain INSERT for rows new to a table sink with a
 *		key (window queries), which skips ON CONFLICT's probe;
 *	  - sink_delete_sql deletes rows by window and key ($1): the rows of
 *		sessions merged away, in complete mode.
 */
void
sa_build_sink_statement(SaQuery *q)
{
	int			n;
	SinkColumn *cols = sink_columns(q, &n);
	char	   *key = key_column_list(cols, n);
	StringInfoData list;
	StringInfoData set;
	StringInfoData sql;

	if (OidIsValid(q->def.sink_function))
	{
		HeapTuple	tuple = SearchSysCache1(PROCOID,
											ObjectIdGetDatum(q->def.sink_function));
		Form_pg_proc proc;

		if (!HeapTupleIsValid(tuple))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("sink function of streaming query \"%s\" no longer exists",
							q->def.name),
					 errhint("Drop the query with streamagg.drop_query(), and create it again if needed.")));
		proc = (Form_pg_proc) GETSTRUCT(tuple);
		q->sink_rowtype = get_element_type(proc->proargtypes.values[1]);
		q->sink_qualified = quote_qualified_identifier(get_namespace_name(proc->pronamespace),
													   NameStr(proc->proname));
		q->sink_sql = psprintf("SELECT %s($2, $1)", q->sink_qualified);
		ReleaseSysCache(tuple);
		return;
	}

	q->sink_qualified = sa_qualified_relation(q->def.sink, "sink", q->def.name);
	q->sink_rowtype = get_rel_type_id(q->def.sink);
	if (deletes_sink_rows(q))
		q->sink_delete_sql = psprintf("DELETE FROM %s AS t USING pg_catalog.unnest($1) AS r WHERE %s",
									  q->sink_qualified,
									  key_match_condition(q, cols, n, "r"));
	if (q->def.sink_merge)
	{
		q->sink_sql = psprintf("MERGE INTO %s AS t USING pg_catalog.unnest($1) AS s ON %s %s",
							   q->sink_qualified,
							   key_match_condition(q, cols, n, "s"),
							   q->def.sink_merge);
		return;
	}

	if (q->stateless && q->batch_lead <= 1 && q->def.dedup == NULL &&
		!q->filter_volatile)
		build_move_statements(q, cols, n);

	initStringInfo(&list);
	initStringInfo(&set);
	for (int i = 0; i < n; i++)
	{
		const char *name = quote_identifier(cols[i].name);

		appendStringInfo(&list, "%s%s", i > 0 ? ", " : "", name);
		if (!cols[i].is_key)
			appendStringInfo(&set, "%s%s = EXCLUDED.%s",
							 set.len > 0 ? ", " : "", name, name);
	}
	initStringInfo(&sql);
	/* a global aggregate's one row is replaced; a stateless query appends */
	if (key[0] == '\0' && !q->stateless)
		appendStringInfo(&sql, "WITH cleared AS (DELETE FROM %s) ",
						 q->sink_qualified);
	appendStringInfo(&sql, "INSERT INTO %s AS t (%s) SELECT %s FROM " SINK_ROWS_RELATION " AS r",
					 q->sink_qualified, list.data, list.data);
	if (key[0] != '\0')
	{
		if (!q->def.has_session)
			q->sink_insert_sql = pstrdup(sql.data);
		appendStringInfo(&sql, " ON CONFLICT (%s) DO UPDATE SET %s",
						 key, set.data);
	}
	q->sink_sql = sql.data;
}

/* The statements of a sink, by what they do. */
typedef enum SinkStatement
{
	SINK_WRITE,					/* sink_sql */
	SINK_INSERT_NEW,			/* sink_insert_sql */
	SINK_DELETE,				/* sink_delete_sql */
	SINK_NSTATEMENTS
} SinkStatement;

/* Their plans, prepared at first use and kept with the compiled query. */
struct SaSinkPlans
{
	SPIPlanPtr	plans[SINK_NSTATEMENTS];
};

static const char *
sink_statement_sql(const SaQuery *q, SinkStatement which)
{
	switch (which)
	{
		case SINK_WRITE:
			return q->sink_sql;
		case SINK_INSERT_NEW:
			return q->sink_insert_sql;
		case SINK_DELETE:
			return q->sink_delete_sql;
		case SINK_NSTATEMENTS:
			break;
	}
	return NULL;
}

/*
 * Does the statement read its rows from SINK_ROWS_RELATION (an INSERT into
 * a sink table), rather than from the array $1?
 */
static bool
reads_rows_relation(const SaQuery *q, SinkStatement which)
{
	return which != SINK_DELETE && q->def.sink_merge == NULL &&
		!OidIsValid(q->def.sink_function);
}

/*
 * SINK_ROWS_RELATION holding "rows" (a tuplestore of "desc", or NULL for
 * none, to analyse a statement), for SPI_register_relation.
 */
static EphemeralNamedRelation
rows_relation(TupleDesc desc, Tuplestorestate *rows)
{
	EphemeralNamedRelation enr = palloc0(sizeof(EphemeralNamedRelationData));

	enr->md.name = SINK_ROWS_RELATION;
	enr->md.reliddesc = InvalidOid;
	enr->md.tupdesc = desc;
	enr->md.enrtype = ENR_NAMED_TUPLESTORE;
	enr->md.enrtuples = rows ? tuplestore_tuple_count(rows) : 0;
	enr->reldata = rows;
	return enr;
}

/*
 * Whether a sink statement always gets the generic plan.  A statement that
 * only inserts the rows, or passes them to the sink function, has one plan
 * whatever the rows are, and a custom plan would copy the array of rows
 * into the plan as a constant, every time.  A statement that joins the rows
 * with the sink (DELETE, MERGE) keeps the plan cache's choice, so that the
 * number of rows can pick the join.
 */
static bool
sink_plan_is_generic(const SaQuery *q, SinkStatement which)
{
	return which != SINK_DELETE && q->def.sink_merge == NULL;
}

/* The parameters of a sink statement: none, ($1 rows), or ($1 rows, $2 batch id). */
static int
sink_statement_nargs(const SaQuery *q, SinkStatement which)
{
	if (reads_rows_relation(q, which))
		return 0;
	return which == SINK_DELETE ? 1 : 2;
}

/*
 * The kept plan of a sink statement, prepared now if it is the first use;
 * the caller is in SPI.  A statement must be one statement, whatever the
 * MERGE clauses hold.
 */
static SPIPlanPtr
sink_plan(SaQuery *q, SinkStatement which)
{
	const char *sql = sink_statement_sql(q, which);
	Oid			argtypes[2] = {get_array_type(q->sink_rowtype), INT8OID};
	int			options = sink_plan_is_generic(q, which) ? CURSOR_OPT_GENERIC_PLAN : 0;
	SPIPlanPtr	plan;

	Assert(sql != NULL);
	if (q->sink_plans == NULL)
		q->sink_plans = MemoryContextAllocZero(q->cxt, sizeof(SaSinkPlans));
	if (q->sink_plans->plans[which] != NULL)
		return q->sink_plans->plans[which];
	plan = SPI_prepare_cursor(sql, sink_statement_nargs(q, which), argtypes,
							  options);
	if (plan == NULL)
		elog(ERROR, "could not prepare the sink statement of streaming query \"%s\": %s",
			 q->def.name, SPI_result_code_string(SPI_result));
	if (list_length(SPI_plan_get_plan_sources(plan)) != 1)
		elog(ERROR, "sink statement of streaming query \"%s\" is not one statement",
			 q->def.name);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep the sink statement of streaming query \"%s\"",
			 q->def.name);
	q->sink_plans->plans[which] = plan;
	return plan;
}

/* The compiled query goes: free its kept plans. */
void
sa_sink_release(SaQuery *q)
{
	if (q->sink_plans == NULL)
		return;
	for (int i = 0; i < SINK_NSTATEMENTS; i++)
		if (q->sink_plans->plans[i] != NULL)
			SPI_freeplan(q->sink_plans->plans[i]);
	pfree(q->sink_plans);
	q->sink_plans = NULL;
}

/*
 * The rows of a sink statement: a tuplestore for one that reads
 * SINK_ROWS_RELATION, else an array.
 */
typedef struct SinkRows
{
	Datum		array;
	Tuplestorestate *store;
	TupleDesc	desc;			/* of the tuplestore */
} SinkRows;

/* Run a sink statement with "rows" and "batch_id" ($2). */
static void
execute_sink_statement(SaQuery *q, SinkStatement which, const SinkRows *rows,
					   int64 batch_id)
{
	Datum		args[2] = {rows->array, Int64GetDatum(batch_id)};
	int			ret;

	Assert(reads_rows_relation(q, which) == (rows->store != NULL));
	SPI_connect();
	if (rows->store &&
		SPI_register_relation(rows_relation(rows->desc, rows->store)) < 0)
		elog(ERROR, "could not register the rows of the sink statement");
	ret = SPI_execute_plan(sink_plan(q, which), args, NULL, false, 0);
	if (ret < 0)
		elog(ERROR, "sink statement of streaming query \"%s\" failed: %s",
			 q->def.name, SPI_result_code_string(ret));
	SPI_finish();
}

/*
 * Check at create_query every statement a trigger will run on the sink, as
 * user code of the query's owner (search_path pinned, as in a trigger): a
 * custom MERGE is parsed and analysed now, so that a mistake in its WHEN
 * clauses is reported by create_query instead of by every trigger (and the
 * clauses must not end the statement and start another); and the owner
 * must have the privileges that each statement needs.
 */
void
sa_check_sink_statements(SaQuery *q)
{
	ErrorContextCallback context;
	SaTextContext merge;
	Oid			argtypes[2];
	EphemeralNamedRelation rows = NULL;

	sa_build_sink_statement(q);
	argtypes[0] = get_array_type(q->sink_rowtype);
	argtypes[1] = INT8OID;
	/* errors in the MERGE point into its text */
	merge.sql = q->sink_sql;
	merge.what = psprintf("sink_merge of streaming query \"%s\"", q->def.name);
	context.callback = sa_text_error_context;
	context.arg = &merge;
	context.previous = error_context_stack;
	if (q->def.sink_merge)
	{
		List	   *raw;

		error_context_stack = &context;
		raw = raw_parser(q->sink_sql, RAW_PARSE_DEFAULT);
		if (list_length(raw) != 1 ||
			!IsA(linitial_node(RawStmt, raw)->stmt, MergeStmt))
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("sink_merge must hold only the WHEN clauses of one MERGE statement")));
	}
	if (reads_rows_relation(q, SINK_WRITE) || q->sink_insert_sql)
		rows = rows_relation(lookup_rowtype_tupdesc_copy(q->sink_rowtype, -1),
							 NULL);
	sa_check_statement_privileges(q->sink_sql,
								  sink_statement_nargs(q, SINK_WRITE), argtypes,
								  reads_rows_relation(q, SINK_WRITE) ? rows : NULL);
	error_context_stack = context.previous;
	if (q->sink_insert_sql)
		sa_check_statement_privileges(q->sink_insert_sql, 0, NULL, rows);
	if (q->sink_delete_sql)
		sa_check_statement_privileges(q->sink_delete_sql, 1, argtypes, NULL);
	if (q->move_insert_head)
	{
		argtypes[0] = argtypes[1] = PG_SNAPSHOTOID;
		sa_check_statement_privileges(sa_move_insert_sql(q,
														 sa_batch_predicate(q->xid_column, false,
																			(Datum) 0, (Datum) 0)),
									  2, argtypes, NULL);
	}
}

/*
 * Where each sink column (sink_columns' order) is in the row type "desc";
 * an error naming the type if one is missing or has changed type.
 */
static int *
sink_column_positions(SaQuery *q, TupleDesc desc, Oid rowtype)
{
	int			n;
	SinkColumn *cols = sink_columns(q, &n);
	int		   *positions = palloc(sizeof(int) * n);

	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = sa_find_column(desc, cols[i].name);

		if (att == NULL || att->atttypid != cols[i].type)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("sink row type %s no longer fits query \"%s\"",
							format_type_be(rowtype), q->def.name),
					 errdetail("Column \"%s\" is missing or has changed type.",
							   cols[i].name)));
		positions[i] = att->attnum - 1;
	}
	return positions;
}

/*
 * One result row as the values of a tuple of "desc": window, keys and, if
 * "with_values", the final values at "positions" (sink_column_positions),
 * other columns NULL.
 */
static void
fill_sink_row(SaQuery *q, TupleDesc desc, const int *positions,
			  const SaOutputRow *row, bool with_values, Datum *values,
			  bool *nulls)
{
	int			c = 0;

	memset(nulls, true, sizeof(bool) * desc->natts);
	if (q->def.has_window || q->def.has_session)
	{
		values[positions[c]] = TimestampTzGetDatum(row->window_start);
		nulls[positions[c++]] = false;
		values[positions[c]] = TimestampTzGetDatum(row->window_end);
		nulls[positions[c++]] = false;
	}
	for (int i = 0; i < q->nkeys; i++, c++)
	{
		values[positions[c]] = row->keyvals[i];
		nulls[positions[c]] = row->keynulls[i];
	}
	if (with_values)
	{
		/* the final values of the aggregates, or the stateless columns */
		Assert(row->values != NULL);
		for (int i = 0; i < q->naggs + q->ncolumns; i++, c++)
		{
			values[positions[c]] = row->values[i];
			nulls[positions[c]] = row->nulls[i];
		}
	}
}

/*
 * The rows of a sink statement for "rows" (window, keys and, if
 * "with_values", the final values), as values of q->sink_rowtype (other
 * columns NULL): in a tuplestore if the statement reads
 * SINK_ROWS_RELATION, else in an array.
 */
static SinkRows
sink_rows(SaQuery *q, SinkStatement which, const SaOutputRow *rows,
		  int nrows, bool with_values)
{
	SinkRows	result = {(Datum) 0, NULL, NULL};
	TupleDesc	desc;
	int		   *positions;
	Datum	   *values;
	bool	   *nulls;

	/* a sink table dropped or altered since: say so, by name */
	if (OidIsValid(q->def.sink))
		(void) sa_qualified_relation(q->def.sink, "sink", q->def.name);
	desc = lookup_rowtype_tupdesc_copy(q->sink_rowtype, -1);
	positions = sink_column_positions(q, desc, q->sink_rowtype);
	values = palloc0(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	if (reads_rows_relation(q, which))
	{
		result.desc = desc;
		result.store = tuplestore_begin_heap(false, false, work_mem);
		for (int r = 0; r < nrows; r++)
		{
			fill_sink_row(q, desc, positions, &rows[r], with_values, values,
						  nulls);
			tuplestore_putvalues(result.store, desc, values, nulls);
		}
	}
	else
	{
		Datum	   *tuples = palloc(sizeof(Datum) * nrows);

		for (int r = 0; r < nrows; r++)
		{
			fill_sink_row(q, desc, positions, &rows[r], with_values, values,
						  nulls);
			tuples[r] = heap_copy_tuple_as_datum(heap_form_tuple(desc, values, nulls),
												 desc);
		}
		result.array = PointerGetDatum(construct_array(tuples, nrows,
													   q->sink_rowtype, -1,
													   false, TYPALIGN_DOUBLE));
		FreeTupleDesc(desc);
	}
	return result;
}

/* The statements are done with "rows": a tuplestore's files go now. */
static void
end_sink_rows(SinkRows *rows)
{
	if (rows->store)
		tuplestore_end(rows->store);
	rows->store = NULL;
}

/*
 * For open_windows: put "rows", finished, into "out" as tuples of "desc",
 * a row type that must have the query's sink columns (named "what" in the
 * error if it does not); its other columns are NULL.
 */
void
sa_rows_to_tuplestore(SaQuery *q, const SaOutputRow *rows, int nrows,
					  TupleDesc desc, const char *what,
					  Tuplestorestate *out)
{
	int			n;
	SinkColumn *cols = sink_columns(q, &n);
	int		   *positions;
	Datum	   *values = palloc0(sizeof(Datum) * (desc->natts + 1));
	bool	   *nulls = palloc(sizeof(bool) * (desc->natts + 1));

	check_columns(desc, what, cols, n);
	positions = sink_column_positions(q, desc, desc->tdtypeid);
	for (int r = 0; r < nrows; r++)
	{
		fill_sink_row(q, desc, positions, &rows[r], true, values, nulls);
		tuplestore_putvalues(out, desc, values, nulls);
	}
}

/* The plain INSERT of rows new to the sink, for sa_try_in_subtransaction. */
typedef struct NewRowsInsert
{
	SaQuery    *q;
	const SinkRows *rows;
	int64		batch_id;
} NewRowsInsert;

static void
run_insert_new(void *arg)
{
	NewRowsInsert *insert = arg;

	execute_sink_statement(insert->q, SINK_INSERT_NEW, insert->rows,
						   insert->batch_id);
}

/*
 * Insert "rows", new to the sink, with the plain INSERT, in a
 * subtransaction.  If the sink holds one of them after all (a row written
 * before the query existed, or by hand), the unique violation rolls the
 * subtransaction back, and false tells the caller to upsert them.  Any
 * other error propagates.
 */
static bool
insert_new_rows(SaQuery *q, const SinkRows *rows, int64 batch_id)
{
	NewRowsInsert insert = {q, rows, batch_id};
	ErrorData  *error;

	if (sa_try_in_subtransaction(run_insert_new, &insert, &error))
		return true;
	if (error->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
		ReThrowError(error);
	FreeErrorData(error);
	return false;
}

/*
 * Write the rows of an output with set-based statements.  A table sink
 * with a key gets its rows new to the sink (groups that were not in the
 * state before this trigger, or every row in append mode, which emits a
 * window once) with a plain INSERT, which skips ON CONFLICT's probe of the
 * key before each row, and the others with the upsert.  A group not in the
 * state is not in the sink either, unless the sink held rows before the
 * query: a closed window gets no more rows (they are late), and the state
 * keeps every window it does not close.
 */
static void
write_rows(SaQuery *q, const SaOutput *output, int64 batch_id)
{
	bool		all_new = q->def.output_mode == SA_OUTPUT_APPEND;
	SaOutputRow *fresh;
	SaOutputRow *known;
	int			nfresh = 0;
	int			nknown = 0;

	if (q->sink_insert_sql == NULL)
	{
		SinkRows	rows = sink_rows(q, SINK_WRITE, output->rows,
									 output->nrows, true);

		execute_sink_statement(q, SINK_WRITE, &rows, batch_id);
		end_sink_rows(&rows);
		return;
	}
	fresh = palloc(sizeof(SaOutputRow) * output->nrows);
	known = palloc(sizeof(SaOutputRow) * output->nrows);
	for (int r = 0; r < output->nrows; r++)
	{
		if (all_new || output->rows[r].fresh)
			fresh[nfresh++] = output->rows[r];
		else
			known[nknown++] = output->rows[r];
	}
	/* both statements read SINK_ROWS_RELATION: the same rows serve both */
	Assert(reads_rows_relation(q, SINK_INSERT_NEW) &&
		   reads_rows_relation(q, SINK_WRITE));
	if (nfresh > 0)
	{
		SinkRows	rows = sink_rows(q, SINK_INSERT_NEW, fresh, nfresh, true);

		if (!insert_new_rows(q, &rows, batch_id))
			execute_sink_statement(q, SINK_WRITE, &rows, batch_id);
		end_sink_rows(&rows);
	}
	if (nknown > 0)
	{
		SinkRows	rows = sink_rows(q, SINK_WRITE, known, nknown, true);

		execute_sink_statement(q, SINK_WRITE, &rows, batch_id);
		end_sink_rows(&rows);
	}
}

/*
 * Deliver the output of batch "batch_id" to the sink: first delete the
 * rows to delete (with one statement), then write the rows.  A function
 * sink is called only when there is output.  Returns the rows written.
 */
int64
sa_sink_deliver(SaQuery *q, const SaOutput *output, int64 batch_id)
{
	if (output->delivered)
		return output->nrows;
	if (output->ndeleted > 0)
	{
		SinkRows	rows = sink_rows(q, SINK_DELETE, output->deleted,
									 output->ndeleted, false);

		Assert(deletes_sink_rows(q));
		execute_sink_statement(q, SINK_DELETE, &rows, batch_id);
		end_sink_rows(&rows);
	}
	if (output->nrows > 0)
		write_rows(q, output, batch_id);
	return output->nrows;
}
