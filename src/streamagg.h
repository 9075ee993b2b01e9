/*-------------------------------------------------------------------------
 *
 * streamagg.h
 *	  What every module of streamagg shares: a query's definition and its
 *	  compiled form, and a few helpers and limits.
 *
 * Each module declares its own functions in its own header (window.h for
 * window.c, and so on); src/README.md maps the modules and how a trigger
 * runs through them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_H
#define STREAMAGG_H

#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "nodes/primnodes.h"
#include "utils/palloc.h"

/*
 * Iterate over a List of nodes of one type, as PostgreSQL 17's foreach_node:
 * "var" is declared by the loop; break and continue work as usual.
 */
#define sa_foreach_node(type, var, lst) \
	for (type *var = NULL, *var##_outer = (type *) 1; var##_outer; \
		 var##_outer = NULL) \
		for (ForEachState var##_state = {(lst), 0}; \
			 var##_state.l != NIL && \
			 var##_state.i < var##_state.l->length && \
			 (var = lfirst_node(type, &var##_state.l->elements[var##_state.i]), true); \
			 var##_state.i++)

/* The same over a List of pointers, as PostgreSQL 17's foreach_ptr. */
#define sa_foreach_ptr(type, var, lst) \
	for (type *var = NULL, *var##_outer = (type *) 1; var##_outer; \
		 var##_outer = NULL) \
		for (ForEachState var##_state = {(lst), 0}; \
			 var##_state.l != NIL && \
			 var##_state.i < var##_state.l->length && \
			 (var = (type *) lfirst(&var##_state.l->elements[var##_state.i]), true); \
			 var##_state.i++)

/*
 * Bounds checked by create_query: every interval is shorter than this
 * (100 000 years, so that no window arithmetic overflows below the range
 * of timestamps; above it, sums are checked), and a row falls into at
 * most this many sliding windows.
 */
#define SA_MAX_INTERVAL_USEC (INT64CONST(100000) * 36525 / 100 * USECS_PER_DAY)
#define SA_MAX_WINDOWS_PER_ROW 10000

/* Name of the column create_query adds to a source table. */
#define SA_XID_COLUMN "streamagg_xid"

/* Microseconds between the PostgreSQL epoch (2000) and the Unix epoch. */
#define SA_UNIX_EPOCH_OFFSET_USEC \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

/* Deform a minimal tuple into values pointing into it. */
static inline void
sa_deform_minimal(MinimalTuple mtup, TupleDesc desc, Datum *values,
				  bool *nulls)
{
	HeapTupleData htup;

	htup.t_len = mtup->t_len + MINIMAL_TUPLE_OFFSET;
	htup.t_data = (HeapTupleHeader) ((char *) mtup - MINIMAL_TUPLE_OFFSET);
	heap_deform_tuple(&htup, desc, values, nulls);
}

/*
 * A value that can be kept after the trigger, in shared memory or the
 * state log: no pointer into TOAST (expanded objects are flattened when a
 * tuple is formed).
 */
static inline Datum
sa_datum_self_contained(Datum value, bool isnull, int16 typlen)
{
	if (!isnull && typlen == -1)
	{
		struct varlena *v = (struct varlena *) DatumGetPointer(value);

		if (VARATT_IS_EXTERNAL_ONDISK(v) || VARATT_IS_EXTERNAL_INDIRECT(v))
			return PointerGetDatum(detoast_external_attr(v));
	}
	return value;
}

typedef enum SaOutputMode
{
	SA_OUTPUT_APPEND,
	SA_OUTPUT_UPDATE,
	SA_OUTPUT_COMPLETE
} SaOutputMode;

/*
 * A query's definition as stored in streamagg.query_def.  Intervals are kept
 * as microseconds; "has_*" says whether the parameter was given.  Window
 * intervals may also have months (calendar windows, docs/semantics.md §13):
 * their months apart, the rest in microseconds.
 */
typedef struct SaDefinition
{
	int32		query_id;
	char	   *name;
	Oid			source;
	char	   *event_time;
	char	   *aggregates;		/* normalized, fully qualified text; NULL
								 * for a stateless query */
	char	   *group_by;		/* normalized text, or NULL */
	char	   *filter;			/* normalized boolean expression, or NULL */
	char	   *join;			/* normalized JOIN clauses, or NULL */
	char	   *columns;		/* normalized select list of a stateless
								 * query, or NULL */
	char	   *dedup;			/* normalized dedup key expressions, or NULL */
	bool		has_window;
	int64		window_size;
	int64		window_slide;
	int64		window_offset;
	int32		window_size_months; /* > 0: monthly windows, window_size 0 */
	int32		window_slide_months;
	int32		window_offset_months;
	bool		has_session;
	int64		session_gap;
	bool		has_watermark;
	int64		watermark_delay;
	SaOutputMode output_mode;
	Oid			sink;			/* sink table, or InvalidOid */
	Oid			sink_function;	/* function sink, or InvalidOid */
	char	   *sink_merge;		/* WHEN clauses of a custom MERGE, or NULL */
	char	   *notify_channel; /* pg_notify per trigger with output, or NULL */
	bool		has_trigger_interval;
	int64		trigger_interval;
	bool		has_idle_timeout;
	int64		idle_timeout;
	Oid			late_sink;		/* table of rows dropped as late, or InvalidOid */
	char	   *time_zone;		/* zone of calendar windows, or NULL */
	int64		max_batch_rows; /* bound on a batch's events; 0: none */
	Oid			owner;
	bool		paused;
} SaDefinition;

/* One aggregate call of a query, with everything needed to call it. */
typedef struct SaAggregate
{
	char	   *name;			/* sink column */
	Oid			aggfnoid;
	Oid			resulttype;
	int32		resulttypmod;
	int16		resulttyplen;
	bool		resulttypbyval;
	int			numargs;		/* aggregated arguments */
	int			firstarg;		/* index of its first argument in a batch row,
								 * counted after the control columns */
	int			filterarg;		/* index of its FILTER value, or -1 */
	Oid			inputcollation;
	Oid			transtype;
	int16		transtyplen;
	bool		transtypbyval;
	bool		transfn_strict;
	bool		finalfn_strict;
	bool		finalfn_extra;
	Datum		initvalue;
	bool		initvalue_isnull;
	bool		has_finalfn;
	bool		has_serialfn;	/* transtype internal: stored serialized */
	bool		has_combinefn;
	bool		combinefn_strict;
	int			nulled_attno;	/* its "state made NULL" flag in the stored
								 * form (q->state_desc), or -1 */
	struct SaDistinct *distinct;	/* called with DISTINCT: its set of
									 * values (distinct.c), or NULL */
	char		finalfn_modify; /* pg_aggregate.aggfinalmodify */
	int			shares_state_of;	/* an earlier aggregate whose transition
									 * state this one uses (nodeAgg's shared
									 * transition states), or -1 */
	FmgrInfo	combinefn;
	FmgrInfo	transfn;
	FmgrInfo	finalfn;
	FmgrInfo	serialfn;
	FmgrInfo	deserialfn;
} SaAggregate;

/*
 * A compiled query: the definition plus everything derived from it that a
 * trigger needs.  Lives in its own memory context; built by definition.c.
 */
typedef struct SaSinkPlans SaSinkPlans;

typedef struct SaQuery
{
	MemoryContext cxt;
	SaDefinition def;

	/* group key */
	int			nkeys;
	char	  **key_names;
	Oid		   *key_types;
	int32	   *key_typmods;
	Oid		   *key_collations;
	FmgrInfo   *key_eq;
	FmgrInfo   *key_hash;

	/*
	 * Index of the group key that is the event-time column itself, or -1.
	 * Without window or session, such a key plays the window: its groups
	 * close, and its rows are late, by the watermark (docs/semantics.md §5).
	 */
	int			event_time_key;
	Oid			window_type;	/* of window bounds and the watermark: the
								 * event-time column's base type */

	/*
	 * Calendar windows (window.c): computed on local wall-clock time in
	 * zone (NULL: the time as it is, for a timestamp column), with bounds
	 * converted back.  Chosen once here, for time_zone or monthly sizes.
	 */
	bool		calendar;
	struct pg_tz *zone;
	bool		has_event_time_bound;	/* window, session or that key */

	/*
	 * Sliding windows whose aggregates can all be combined are updated per
	 * pane: rows are aggregated per (pane, key), then each pane is combined
	 * into the windows containing it (batch.c).
	 */
	bool		use_panes;

	/* aggregates */
	int			naggs;
	SaAggregate *aggs;

	/*
	 * A stateless query (columns, no aggregates) appends every row that
	 * passes to the sink, with these columns; it has no keys, no
	 * aggregates and no windows.
	 */
	bool		stateless;
	int			ncolumns;
	char	  **column_names;
	Oid		   *column_types;
	int32	   *column_typmods;
	Oid		   *column_collations;
	int16	   *column_typlens;
	bool	   *column_typbyvals;

	/*
	 * Deduplication: the internal query whose groups are the dedup keys
	 * seen (definition.c, compile_dedup), and where the keys are in a batch
	 * row (counted after the control columns); NULL without dedup.
	 */
	struct SaQuery *dedup;
	int			dedup_first;
	int			ndedup;

	/*
	 * Batch row layout: first batch_lead control columns (with a filter or
	 * joins: whether the row passes them; with joins, also the source row's
	 * tableoid and ctid, which identify it among the rows it joined to),
	 * then the event time, keys, aggregate arguments and FILTERs.
	 */
	int			batch_ncols;
	Oid		   *batch_types;	/* type of each batch column */
	int			batch_lead;		/* 0, 1 (passes) or 3 (passes, tableoid,
								 * ctid) */
	bool		filter_volatile;	/* the filter may change its answer */
	char	   *batch_select;	/* "SELECT ... FROM source ... WHERE " */
	char	   *xid_column;		/* the source's streamagg_xid in it */
	List	   *joined;			/* OIDs of the relations it joins */

	TupleDesc	key_desc;		/* the group key columns */
	TupleDesc	state_desc;		/* one stored state per aggregate */
	TupleDesc	group_state_desc;	/* what a group stores: state_desc, or
									 * packed sessions (one bytea) */
	char	   *state_signature;	/* the layout of that, as text */

	/* sink (sink.c) */
	char	   *sink_qualified; /* the sink table or function, quoted */
	char	   *sink_sql;		/* $1 array of sink_rowtype, $2 batch id */
	char	   *sink_insert_sql;	/* plain INSERT of rows new to the sink:
									 * table sinks with a key, or NULL */
	char	   *sink_delete_sql;	/* $1 rows to delete, or NULL */
	/*
	 * A stateless query's batch written to its sink table by one INSERT
	 * (sink.c, build_move_statements): its text and that of the query of
	 * its progress figures, each around the batch query and its predicate;
	 * or NULL.
	 */
	char	   *move_insert_head;
	char	   *move_figures_head;
	char	   *move_alias;		/* after the predicate: names the columns */
	char	   *move_passes;	/* the condition that a row passed */
	struct SaSinkPlans *sink_plans; /* the above, prepared and kept */
	Oid			sink_rowtype;
	char	   *source_qualified;

	/*
	 * Late sink (late_sink.c): with one, a batch row ends with the source's
	 * columns (all but streamagg_xid), from late_first_col on (counted after
	 * the control columns, as firstarg is), so that the rows dropped as
	 * late can be kept whole.  late_first_col is -1 without a late sink.
	 */
	int			late_first_col;
	int			late_ncols;
	char	  **late_col_names;
	struct _SPI_plan *late_sink_plan;	/* its INSERT, prepared and kept */
} SaQuery;

#endif							/* STREAMAGG_H */
