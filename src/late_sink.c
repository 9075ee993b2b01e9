/*-------------------------------------------------------------------------
 *
 * late_sink.c
 *	  The late sink: the table that keeps the source rows a trigger drops as
 *	  late (docs/semantics.md §12, docs/event-time.md).
 *
 * A late sink has the source's columns (same names and types, without
 * streamagg_xid), then late_batch_id bigint and late_watermark, the
 * watermark W(N-1) that made the row late, of the event-time column's
 * (base) type.  create_query creates it, or checks that an existing table
 * has those columns (it may have more: they get their defaults).
 *
 * Which rows are late is decided by batch.c (a row late for at least one
 * of its windows, or for its session); this file only keeps them
 * (sa_late_rows_add, during the batch read) and writes them with one
 * kept INSERT per chunk, in the trigger's transaction, as the query's
 * owner.  A retried batch reads the same rows against the same W(N-1), so
 * it writes the same late rows: exactly once, like the sink.
 *
 * This file does not decide lateness, and knows nothing of windows.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/typcache.h"
#include "utils/varlena.h"

#include "definition.h"
#include "late_sink.h"
#include "sink.h"
#include "security.h"

#define LATE_BATCH_ID_COLUMN "late_batch_id"
#define LATE_WATERMARK_COLUMN "late_watermark"

/* Rows written by one execution of the INSERT, at most. */
#define LATE_ROWS_PER_STATEMENT 10000

/* The late rows of one trigger; lives in its own context (cxt). */
struct SaLateRows
{
	MemoryContext cxt;
	TupleDesc	desc;			/* the source's columns, as in a batch row */
	List	   *rows;			/* HeapTuples of desc, self-contained */
};

/*
 * The source's columns that a late sink receives: every live column but
 * streamagg_xid, in the table's order.  Returns their attribute numbers.
 */
List *
sa_late_source_columns(Oid source)
{
	Relation	rel = table_open(source, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *attnums = NIL;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), SA_XID_COLUMN) == 0)
			continue;
		if (strcmp(NameStr(att->attname), LATE_BATCH_ID_COLUMN) == 0 ||
			strcmp(NameStr(att->attname), LATE_WATERMARK_COLUMN) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("source \"%s\" has a column named \"%s\", which a late sink adds",
							RelationGetRelationName(rel), NameStr(att->attname)),
					 errhint("Rename the source's column, or use no late_sink.")));
		attnums = lappend_int(attnums, att->attnum);
	}
	table_close(rel, NoLock);
	return attnums;
}

/* The columns of q's late sink, in order (palloc'd); *n is how many. */
static SaColumn *
late_columns(Oid source, Oid watermark_type, int *n)
{
	List	   *attnums = sa_late_source_columns(source);
	SaColumn   *cols = palloc(sizeof(SaColumn) * (list_length(attnums) + 2));
	int			c = 0;
	ListCell   *lc;

	foreach(lc, attnums)
	{
		AttrNumber	attnum = lfirst_int(lc);

		cols[c].name = get_attname(source, attnum, false);
		get_atttypetypmodcoll(source, attnum, &cols[c].type, &cols[c].typmod,
							  &cols[c].collation);
		c++;
	}
	cols[c++] = (SaColumn) {LATE_BATCH_ID_COLUMN, INT8OID, -1, InvalidOid};
	cols[c++] = (SaColumn) {LATE_WATERMARK_COLUMN, watermark_type, -1, InvalidOid};
	*n = c;
	return cols;
}

/* Does the row type "desc" have every column of "cols", typed alike? */
static void
check_late_columns(TupleDesc desc, const char *relname, SaColumn *cols,
				   int n, const char *query)
{
	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = sa_find_column(desc, cols[i].name);

		if (att == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("late sink \"%s\" does not fit streaming query \"%s\"",
							relname, query),
					 errdetail("It has no column \"%s\".", cols[i].name),
					 errhint("Add the column with type %s, or name another late sink.",
							 format_type_be(cols[i].type))));
		if (att->atttypid != cols[i].type)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("late sink \"%s\" does not fit streaming query \"%s\"",
							relname, query),
					 errdetail("Column \"%s\" has type %s; the query writes %s.",
							   cols[i].name, format_type_be(att->atttypid),
							   format_type_be(cols[i].type))));
	}
}

/*
 * Find the late sink named "name" and check that it fits the query's
 * source, or create it.  It is neither the source nor the sink (q->def.sink
 * is set: the sink is prepared first).  Runs as the caller (creating needs the caller's
 * CREATE privilege).  The owner's INSERT privilege is checked by
 * sa_check_late_sink_statement.
 */
Oid
sa_prepare_late_sink(const char *name, const SaQuery *q)
{
	int			n;
	SaColumn   *cols = late_columns(q->def.source, q->window_type, &n);
	RangeVar   *rv = makeRangeVarFromNameList(stringToQualifiedNameList(name));
	Oid			relid = RangeVarGetRelid(rv, AccessShareLock, true);

	if (OidIsValid(relid) && relid == q->def.source)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("late sink and source must be different tables")));
	if (OidIsValid(relid) && relid == q->def.sink)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("late sink and sink must be different tables")));
	if (OidIsValid(relid))
	{
		Relation	rel;

		sa_check_written_table(relid, "late sink", name);
		rel = table_open(relid, AccessShareLock);
		if (rel->rd_rel->relkind != RELKIND_RELATION &&
			rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("late sink \"%s\" is not a table",
							RelationGetRelationName(rel))));
		check_late_columns(RelationGetDescr(rel), RelationGetRelationName(rel),
						   cols, n, q->def.name);
		table_close(rel, NoLock);
	}
	else
	{
		sa_set_creation_schema(rv, "late sink", name);
		sa_create_table(rv, cols, n, NULL);
		CommandCounterIncrement();
		relid = RangeVarGetRelid(rv, AccessShareLock, false);
	}
	return relid;
}

/*
 * The INSERT of late rows: $1 is an array of the late sink's row type with
 * the query's columns filled in (the others are not listed, so they get
 * their defaults).
 */
static char *
late_insert_sql(const SaQuery *q)
{
	int			n;
	SaColumn   *cols = late_columns(q->def.source, q->window_type, &n);
	StringInfoData list;

	initStringInfo(&list);
	for (int i = 0; i < n; i++)
		appendStringInfo(&list, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(cols[i].name));
	return psprintf("INSERT INTO %s (%s) SELECT %s FROM pg_catalog.unnest($1) AS r",
					sa_qualified_relation(q->def.late_sink, "late sink",
										  q->def.name),
					list.data, list.data);
}

/*
 * Check at create_query, as the query's owner, that a trigger may run the
 * INSERT into the late sink (INSERT privilege on it).
 */
void
sa_check_late_sink_statement(SaQuery *q)
{
	Oid			argtype;

	if (!OidIsValid(q->def.late_sink))
		return;
	argtype = get_array_type(get_rel_type_id(q->def.late_sink));
	sa_check_statement_privileges(late_insert_sql(q), 1, &argtype, NULL);
}

/* The compiled query goes: free its kept plan. */
void
sa_late_sink_release(SaQuery *q)
{
	if (q->late_sink_plan != NULL)
		SPI_freeplan(q->late_sink_plan);
	q->late_sink_plan = NULL;
}

/*
 * The late rows of a trigger of q, kept in a new context under "parent";
 * NULL when q has no late sink.
 */
SaLateRows *
sa_late_rows_create(SaQuery *q, MemoryContext parent)
{
	SaLateRows *late;
	MemoryContext cxt;
	MemoryContext old;

	if (q->late_first_col < 0)
		return NULL;
	cxt = AllocSetContextCreate(parent, "streamagg late rows",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	late = palloc0(sizeof(SaLateRows));
	late->cxt = cxt;
	late->desc = CreateTemplateTupleDesc(q->late_ncols);
	for (int i = 0; i < q->late_ncols; i++)
		TupleDescInitEntry(late->desc, i + 1, q->late_col_names[i],
						   q->batch_types[q->batch_lead + q->late_first_col + i],
						   -1, 0);
	MemoryContextSwitchTo(old);
	return late;
}

/*
 * Keep a batch row that was dropped as late: its source columns, copied
 * (and detoasted) into the late rows' context.
 */
void
sa_late_rows_add(SaLateRows *late, const SaQuery *q, Datum *values,
				 bool *nulls)
{
	MemoryContext old = MemoryContextSwitchTo(late->cxt);
	Datum	   *own = palloc(sizeof(Datum) * q->late_ncols);

	for (int i = 0; i < q->late_ncols; i++)
		own[i] = sa_datum_self_contained(values[q->late_first_col + i],
										 nulls[q->late_first_col + i],
										 TupleDescAttr(late->desc, i)->attlen);
	late->rows = lappend(late->rows,
						 heap_form_tuple(late->desc, own,
										 nulls + q->late_first_col));
	MemoryContextSwitchTo(old);
}

/* Run the kept INSERT with "rows" as $1, preparing it at first use. */
static void
insert_late_rows(SaQuery *q, Oid rowtype, Datum rows)
{
	Oid			argtype = get_array_type(rowtype);
	int			ret;

	SPI_connect();
	if (q->late_sink_plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(late_insert_sql(q), 1, &argtype);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare the late sink statement of streaming query \"%s\"",
				 q->def.name);
		q->late_sink_plan = plan;
	}
	ret = SPI_execute_plan(q->late_sink_plan, &rows, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "late sink statement of streaming query \"%s\" failed: %s",
			 q->def.name, SPI_result_code_string(ret));
	SPI_finish();
}

/*
 * Write the kept late rows of batch "batch_id", which the watermark
 * W(N-1) "watermark" made late, into the late sink, in the current
 * transaction, as the current user (the trigger runs as the query's
 * owner).  Returns how many rows were written.
 */
int64
sa_late_rows_write(SaQuery *q, SaLateRows *late, int64 batch_id,
				   int64 watermark)
{
	Oid			rowtype;
	TupleDesc	desc;
	int			n;
	SaColumn   *cols;
	int		   *positions;
	Datum	   *values;
	bool	   *nulls;
	Datum	   *rowvalues;
	bool	   *rownulls;
	Datum	   *tuples;
	int			ntuples = 0;
	int64		written = 0;
	ListCell   *lc;

	if (late == NULL || late->rows == NIL)
		return 0;

	/* the late sink, dropped or altered since: say so, by name */
	(void) sa_qualified_relation(q->def.late_sink, "late sink", q->def.name);
	rowtype = get_rel_type_id(q->def.late_sink);
	desc = lookup_rowtype_tupdesc_copy(rowtype, -1);
	cols = late_columns(q->def.source, q->window_type, &n);
	/* the source's columns as compiled, then the two late_* columns */
	if (n != q->late_ncols + 2)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("source of streaming query \"%s\" has changed",
						q->def.name),
				 errdetail("Its columns changed while the query was compiled.")));
	check_late_columns(desc, get_rel_name(q->def.late_sink), cols, n,
					   q->def.name);
	positions = palloc(sizeof(int) * n);
	for (int i = 0; i < n; i++)
		positions[i] = sa_find_column(desc, cols[i].name)->attnum - 1;

	values = palloc0(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	rowvalues = palloc(sizeof(Datum) * q->late_ncols);
	rownulls = palloc(sizeof(bool) * q->late_ncols);
	tuples = palloc(sizeof(Datum) * Min(list_length(late->rows),
										LATE_ROWS_PER_STATEMENT));
	foreach(lc, late->rows)
	{
		HeapTuple	row = lfirst(lc);

		heap_deform_tuple(row, late->desc, rowvalues, rownulls);
		memset(nulls, true, sizeof(bool) * desc->natts);
		for (int i = 0; i < q->late_ncols; i++)
		{
			values[positions[i]] = rowvalues[i];
			nulls[positions[i]] = rownulls[i];
		}
		values[positions[n - 2]] = Int64GetDatum(batch_id);
		nulls[positions[n - 2]] = false;
		values[positions[n - 1]] = TimestampTzGetDatum(watermark);
		nulls[positions[n - 1]] = false;
		tuples[ntuples++] = heap_copy_tuple_as_datum(heap_form_tuple(desc, values, nulls),
													 desc);
		if (ntuples == LATE_ROWS_PER_STATEMENT || lnext(late->rows, lc) == NULL)
		{
			CHECK_FOR_INTERRUPTS();
			insert_late_rows(q, rowtype,
							 PointerGetDatum(construct_array(tuples, ntuples, rowtype,
															 -1, false,
															 TYPALIGN_DOUBLE)));
			written += ntuples;
			ntuples = 0;
		}
	}
	/* each kept row is written once */
	Assert(written == list_length(late->rows));
	FreeTupleDesc(desc);
	return written;
}
