/*-------------------------------------------------------------------------
 *
 * sink.c
 *	  The sink table: its expected shape, creating or validating it, and
 *	  writing a trigger's rows with one set-based statement (DESIGN.md 4.5).
 *
 * A sink has window_start and window_end (for windowed queries), then the
 * group-by columns, then one column per aggregate.  Its unique key is
 * (window_start, window_end, group columns) with NULLS NOT DISTINCT, so
 * that NULL keys upsert like any other value.  Rows are passed to the
 * upsert as one array of the sink's row type.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"
#include "utils/regproc.h"
#include "utils/varlena.h"
#include "lib/stringinfo.h"

#include "state.h"

/* One expected sink column. */
typedef struct SinkColumn
{
	const char *name;
	Oid			type;
	int32		typmod;
	Oid			collation;
	bool		is_key;
} SinkColumn;

/* The columns a sink must have, in order; returns how many. */
static int
sink_columns(const SaQuery *q, SinkColumn *cols)
{
	int			n = 0;
	Oid			window_type = get_atttype(q->def.source,
										  get_attnum(q->def.source,
													 q->def.event_time));

	window_type = getBaseType(window_type);
	if (q->def.has_window || q->def.has_session)
	{
		cols[n++] = (SinkColumn) {"window_start", window_type, -1, InvalidOid, true};
		cols[n++] = (SinkColumn) {"window_end", window_type, -1, InvalidOid, true};
	}
	for (int i = 0; i < q->nkeys; i++)
		cols[n++] = (SinkColumn) {q->key_names[i], q->key_types[i],
			q->key_typmods[i], q->key_collations[i], true};
	for (int i = 0; i < q->naggs; i++)
		cols[n++] = (SinkColumn) {q->aggs[i].name, q->aggs[i].resulttype,
			q->aggs[i].resulttypmod, InvalidOid, false};
	return n;
}

static int
sink_column_capacity(const SaQuery *q)
{
	return 2 + q->nkeys + q->naggs;
}

static void
check_unique_names(SinkColumn *cols, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = 0; j < i; j++)
			if (strcmp(cols[i].name, cols[j].name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("sink column \"%s\" would appear twice",
								cols[i].name),
						 errhint("Give the group_by expressions and aggregates distinct aliases (window_start and window_end are taken).")));
}

static void
create_sink(RangeVar *rv, SinkColumn *cols, int n)
{
	StringInfoData sql;
	StringInfoData key;

	initStringInfo(&sql);
	initStringInfo(&key);
	appendStringInfo(&sql, "CREATE TABLE %s (",
					 quote_qualified_identifier(rv->schemaname, rv->relname));
	for (int i = 0; i < n; i++)
	{
		appendStringInfo(&sql, "%s%s %s", i > 0 ? ", " : "",
						 quote_identifier(cols[i].name),
						 format_type_extended(cols[i].type, cols[i].typmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN |
											  FORMAT_TYPE_FORCE_QUALIFY));
		if (OidIsValid(cols[i].collation) &&
			cols[i].collation != get_typcollation(cols[i].type))
			appendStringInfo(&sql, " COLLATE %s",
							 generate_collation_name(cols[i].collation));
		if (cols[i].is_key)
			appendStringInfo(&key, "%s%s", key.len > 0 ? ", " : "",
							 quote_identifier(cols[i].name));
	}
	if (key.len > 0)
		appendStringInfo(&sql, ", UNIQUE NULLS NOT DISTINCT (%s)", key.data);
	appendStringInfoChar(&sql, ')');

	SPI_connect();
	SPI_execute(sql.data, false, 0);
	SPI_finish();
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
	for (int i = 0; i < n; i++)
	{
		AttrNumber	attnum = get_attnum(sink, cols[i].name);
		Oid			type;

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("existing sink table \"%s\" does not fit the query", relname),
					 errdetail("It has no column \"%s\".", cols[i].name),
					 errhint("Drop the table, name another sink, or add the column with type %s.",
							 format_type_be(cols[i].type))));
		type = get_atttype(sink, attnum);
		if (type != cols[i].type)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("existing sink table \"%s\" does not fit the query", relname),
					 errdetail("Column \"%s\" has type %s, the query produces %s.",
							   cols[i].name, format_type_be(type),
							   format_type_be(cols[i].type))));
	}
	if (!has_key_index(rel, cols, n))
	{
		StringInfoData key;

		initStringInfo(&key);
		for (int i = 0; i < n; i++)
			if (cols[i].is_key)
				appendStringInfo(&key, "%s%s", key.len > 0 ? ", " : "",
								 quote_identifier(cols[i].name));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("existing sink table \"%s\" does not fit the query", relname),
				 errdetail("It has no unique index on (%s) that treats NULLs as equal.",
						   key.data),
				 errhint("Add UNIQUE NULLS NOT DISTINCT (%s).", key.data)));
	}
	table_close(rel, NoLock);
}

/*
 * Find the sink named "sink_name" and check that it fits, or create it.
 * Runs as the caller, so creating needs the caller's CREATE privilege.
 */
Oid
sa_prepare_sink(const char *sink_name, const SaQuery *q, bool *created)
{
	SinkColumn *cols = palloc(sizeof(SinkColumn) * sink_column_capacity(q));
	int			n = sink_columns(q, cols);
	List	   *names = stringToQualifiedNameList(sink_name);
	RangeVar   *rv = makeRangeVarFromNameList(names);
	Oid			sink;

	check_unique_names(cols, n);
	sink = RangeVarGetRelid(rv, AccessShareLock, true);
	*created = !OidIsValid(sink);
	if (OidIsValid(sink))
		validate_sink(sink, cols, n);
	else
	{
		Oid			nsp = RangeVarGetCreationNamespace(rv);

		rv->schemaname = get_namespace_name(nsp);
		create_sink(rv, cols, n);
		CommandCounterIncrement();
		sink = RangeVarGetRelid(rv, AccessShareLock, false);
	}
	return sink;
}

/*
 * The upsert of a trigger's rows, given as $1, an array of the sink's row
 * type.  Without any key column the sink holds one row, replaced each time.
 */
char *
sa_build_sink_upsert(SaQuery *q)
{
	SinkColumn *cols = palloc(sizeof(SinkColumn) * sink_column_capacity(q));
	int			n = sink_columns(q, cols);
	StringInfoData list;
	StringInfoData key;
	StringInfoData set;
	StringInfoData sql;

	initStringInfo(&list);
	initStringInfo(&key);
	initStringInfo(&set);
	initStringInfo(&sql);
	for (int i = 0; i < n; i++)
	{
		const char *name = quote_identifier(cols[i].name);

		appendStringInfo(&list, "%s%s", i > 0 ? ", " : "", name);
		if (cols[i].is_key)
			appendStringInfo(&key, "%s%s", key.len > 0 ? ", " : "", name);
		else
			appendStringInfo(&set, "%s%s = EXCLUDED.%s",
							 set.len > 0 ? ", " : "", name, name);
	}
	q->sink_qualified = sa_qualified_relation(q->def.sink, "sink", q->def.name);
	q->sink_rowtype = get_rel_type_id(q->def.sink);
	if (key.len == 0)
		appendStringInfo(&sql, "WITH cleared AS (DELETE FROM %s) ",
						 q->sink_qualified);
	appendStringInfo(&sql, "INSERT INTO %s AS t (%s) SELECT %s FROM pg_catalog.unnest($1) AS r",
					 q->sink_qualified, list.data, list.data);
	if (key.len > 0)
		appendStringInfo(&sql, " ON CONFLICT (%s) DO UPDATE SET %s",
						 key.data, set.data);
	q->sink_upsert_sql = sql.data;
	return sql.data;
}

/*
 * Build the array of sink rows for "groups": window, keys and, if
 * "with_values", the final values of the aggregates.  Returns the array
 * (of the sink's row type) and sets *argtype to its type.
 */
static Datum
sink_rows_array(SaQuery *q, SaStateStore *store, SaGroup **groups,
				int ngroups, bool with_values, Oid *argtype)
{
	Relation	rel;
	TupleDesc	desc;
	SinkColumn *cols;
	int			n;
	AttrNumber *attnums;
	Datum	   *values;
	bool	   *nulls;
	Datum	   *rows;
	Datum	   *aggvalues = palloc(sizeof(Datum) * q->naggs);
	bool	   *aggnulls = palloc(sizeof(bool) * q->naggs);

	cols = palloc(sizeof(SinkColumn) * sink_column_capacity(q));
	n = sink_columns(q, cols);
	(void) sa_qualified_relation(q->def.sink, "sink", q->def.name);
	rel = table_open(q->def.sink, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	attnums = palloc(sizeof(AttrNumber) * n);
	for (int i = 0; i < n; i++)
	{
		attnums[i] = get_attnum(q->def.sink, cols[i].name);
		if (attnums[i] == InvalidAttrNumber ||
			TupleDescAttr(desc, attnums[i] - 1)->atttypid != cols[i].type)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("sink table \"%s\" no longer fits query \"%s\"",
							RelationGetRelationName(rel), q->def.name),
					 errdetail("Column \"%s\" is missing or has changed type.",
							   cols[i].name)));
	}
	values = palloc0(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	rows = palloc(sizeof(Datum) * ngroups);
	for (int g = 0; g < ngroups; g++)
	{
		SaGroup    *group = groups[g];
		int			c = 0;
		HeapTuple	tuple;

		memset(nulls, true, sizeof(bool) * desc->natts);
		if (q->def.has_window || q->def.has_session)
		{
			values[attnums[c] - 1] = TimestampTzGetDatum(group->window_start);
			nulls[attnums[c++] - 1] = false;
			values[attnums[c] - 1] = TimestampTzGetDatum(group->window_end);
			nulls[attnums[c++] - 1] = false;
		}
		for (int i = 0; i < q->nkeys; i++, c++)
		{
			values[attnums[c] - 1] = group->keyvals[i];
			nulls[attnums[c] - 1] = group->keynulls[i];
		}
		if (with_values)
		{
			sa_state_finalize(store, group, aggvalues, aggnulls);
			for (int i = 0; i < q->naggs; i++, c++)
			{
				values[attnums[c] - 1] = aggvalues[i];
				nulls[attnums[c] - 1] = aggnulls[i];
			}
		}
		tuple = heap_form_tuple(desc, values, nulls);
		rows[g] = heap_copy_tuple_as_datum(tuple, desc);
	}
	table_close(rel, NoLock);

	*argtype = get_array_type(q->sink_rowtype);
	return PointerGetDatum(construct_array(rows, ngroups, q->sink_rowtype,
										   -1, false, TYPALIGN_DOUBLE));
}

/*
 * Write the final values of "groups" (an array of SaGroup pointers) to the
 * sink with one statement; returns the number of rows written.
 */
int64
sa_write_sink(SaQuery *q, SaStateStore *store, SaGroup **groups,
			  int ngroups)
{
	Oid			argtype;
	Datum		arg;
	int			ret;

	if (ngroups == 0)
		return 0;
	arg = sink_rows_array(q, store, groups, ngroups, true, &argtype);
	SPI_connect();
	ret = SPI_execute_with_args(q->sink_upsert_sql, 1, &argtype, &arg, NULL,
								false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "sink upsert failed: %s", SPI_result_code_string(ret));
	SPI_finish();
	return ngroups;
}

/*
 * Delete the sink rows of "rows" (SaGroups: window and key), with one
 * statement: in complete mode, the rows of sessions merged away.  Keys
 * match as in the sink's unique key, NULL equal to NULL; the window bounds
 * (the first two columns, never NULL) with "=", so the key's index serves.
 */
int64
sa_delete_sink_rows(SaQuery *q, List *rows)
{
	SinkColumn *cols;
	int			n;
	StringInfoData sql;
	Oid			argtype;
	Datum		arg;
	SaGroup   **groups;
	int			ngroups = list_length(rows);
	int			g = 0;
	ListCell   *lc;

	if (ngroups == 0)
		return 0;
	groups = palloc(sizeof(SaGroup *) * ngroups);
	foreach(lc, rows)
		groups[g++] = lfirst(lc);
	arg = sink_rows_array(q, NULL, groups, ngroups, false, &argtype);

	cols = palloc(sizeof(SinkColumn) * sink_column_capacity(q));
	n = sink_columns(q, cols);
	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s AS t USING pg_catalog.unnest($1) AS r WHERE true",
					 q->sink_qualified);
	for (int i = 0; i < n; i++)
		if (cols[i].is_key)
			appendStringInfo(&sql, " AND t.%s %s r.%s",
							 quote_identifier(cols[i].name),
							 i < 2 ? "=" : "IS NOT DISTINCT FROM",
							 quote_identifier(cols[i].name));
	SPI_connect();
	if (SPI_execute_with_args(sql.data, 1, &argtype, &arg, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "sink delete failed");
	SPI_finish();
	return ngroups;
}
