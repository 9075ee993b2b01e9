/*-------------------------------------------------------------------------
 *
 * sink.h
 *	  Creating, checking and writing a query's sink (sink.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_SINK_H
#define STREAMAGG_SINK_H

#include "streamagg.h"

#include "access/tupdesc.h"
#include "lib/stringinfo.h"
#include "nodes/primnodes.h"

#include "output.h"
#include "utils/tuplestore.h"

/* A column of a table streamagg creates (a sink or a late sink). */
typedef struct SaColumn
{
	const char *name;
	Oid			type;
	int32		typmod;
	Oid			collation;
} SaColumn;

extern Oid	sa_prepare_sink(const char *sink_name, const SaQuery *q,
							bool *created);
extern Oid	sa_prepare_sink_function(const char *spec, const SaQuery *q);
extern void sa_build_sink_statement(SaQuery *q);
extern void sa_check_sink_statements(SaQuery *q);
extern int64 sa_sink_deliver(SaQuery *q, const SaOutput *output,
							 int64 batch_id);
extern void sa_sink_release(SaQuery *q);
extern void sa_rows_to_tuplestore(SaQuery *q, const SaOutputRow *rows,
								  int nrows, TupleDesc desc, const char *what,
								  Tuplestorestate *out);

extern void sa_check_written_table(Oid relid, const char *what,
								   const char *name);
extern void sa_set_creation_schema(RangeVar *rv, const char *what,
								   const char *name);
extern Form_pg_attribute sa_find_column(TupleDesc desc, const char *name);
extern void sa_create_table(const RangeVar *rv, const SaColumn *cols, int n,
							const char *constraint);
extern char *sa_move_insert_sql(const SaQuery *q, const char *predicate);
extern char *sa_move_figures_sql(const SaQuery *q, const char *predicate);

#endif							/* STREAMAGG_SINK_H */
