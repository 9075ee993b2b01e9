/*-------------------------------------------------------------------------
 *
 * streamagg.h
 *	  Declarations shared by the modules of streamagg.
 *
 * The flow of one trigger is event -> batch -> state -> sink:
 *	  definition.c  compiles a query's catalog row into an SaQuery
 *	  trigger.c     runs one micro-batch (DESIGN.md 3.4) in one transaction
 *	  window.c      owns the window formula (3.1) and the watermark rule (3.3)
 *	  session.c     session windows (3.2)
 *	  aggregate.c   calls each aggregate's own support functions (4.4)
 *	  state.c       keeps open windows in shared memory and in the checkpoint
 *	                table
 *	  sink.c        creates, validates and writes the sink table (4.5), or
 *	                calls the function sink
 *	  notify.c      the notification sent per trigger with output
 *	  catalog.c     reads query definitions; the per-query lock
 *	  api.c         the SQL-callable functions (section 2)
 *	  launcher.c    the launcher and the shared registry of database workers
 *	  worker.c      the loop of a database's workers
 *	  schedule.c    when each query is due, and which worker runs it
 *	  security.c    role switching and the pinned search_path
 *	  source.c      what streamagg adds to a source, and its rules
 *	  retention.c   deleting consumed events from sources
 *	  inject.c      test-only fault injection
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
 * as microseconds; "has_*" says whether the parameter was given.
 */
typedef struct SaDefinition
{
	int32		query_id;
	char	   *name;
	Oid			source;
	char	   *event_time;
	char	   *aggregates;		/* normalized, fully qualified text */
	char	   *group_by;		/* normalized text, or NULL */
	bool		has_window;
	int64		window_size;
	int64		window_slide;
	int64		window_offset;
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
	int			numargs;		/* aggregated arguments */
	int			firstarg;		/* index of its first argument in a batch row */
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
	 * close, and its rows are late, by the watermark (DESIGN.md 3.5).
	 */
	int			event_time_key;
	Oid			window_type;	/* of window bounds and the watermark: the
								 * event-time column's base type */
	bool		has_event_time_bound;	/* window, session or that key */

	/*
	 * Sliding windows whose aggregates can all be combined are updated per
	 * pane: rows are aggregated per (pane, key), then each pane is combined
	 * into the windows containing it (trigger.c).
	 */
	bool		use_panes;

	/* aggregates */
	int			naggs;
	SaAggregate *aggs;

	/* batch row layout: event time, keys, aggregate arguments and filters */
	int			batch_ncols;
	Oid		   *batch_types;	/* type of each batch column */
	char	   *batch_select;	/* "SELECT ... FROM source WHERE " */

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
	Oid			sink_rowtype;
	char	   *source_qualified;
} SaQuery;

/* definition.c */
extern SaQuery *sa_compile_query(const SaDefinition *def);
extern void sa_normalize_definition(Oid source, const char *aggregates,
									const char *group_by,
									char **aggregates_out,
									char **group_by_out);
extern void sa_validate_definition(const SaDefinition *def);
extern void sa_check_xid_column(Oid source);
extern void sa_check_batch_statement(SaQuery *q);

/* window.c */
extern int	sa_window_count(const SaQuery *q);
extern int	sa_row_windows(const SaQuery *q, int64 t, int64 *starts,
						   int64 *ends);
extern int64 sa_pane_start(const SaQuery *q, int64 t);
extern bool sa_closed_by(int64 window_end, int64 watermark);
extern bool sa_max_event_time_after(bool has_before, int64 before,
									bool has_batch, int64 batch_max,
									int64 *max_seen);
extern bool sa_watermark_after_batch(const SaQuery *q, bool has_previous,
									 int64 previous, bool batch_has_times,
									 int64 max_seen, int64 *watermark);

/* aggregate.c */
typedef struct SaAggRuntime SaAggRuntime;
extern SaAggRuntime *sa_agg_runtime_create(void);
extern void sa_agg_runtime_destroy(SaAggRuntime *rt);
extern void sa_agg_setup(SaAggregate *agg, Aggref *aggref, const char *name,
						 int firstarg, int filterarg);
extern void sa_agg_check_privileges(const SaAggregate *agg);
extern bool sa_agg_needs_nulled_flag(const SaAggregate *agg);
extern void sa_agg_check_storable(Oid aggfnoid, Oid transtype,
								  const char *aggname);
extern void sa_agg_init(SaAggRuntime *rt, SaAggregate *agg, Datum *state,
						bool *isnull);
extern void sa_agg_advance(SaAggRuntime *rt, SaAggregate *agg,
						   Datum *state, bool *isnull,
						   Datum *args, bool *argnulls);
extern void sa_agg_combine(SaAggRuntime *rt, SaAggregate *agg,
						   Datum *state, bool *isnull,
						   Datum other, bool other_isnull);
extern Datum sa_agg_finalize(SaAggRuntime *rt, SaAggregate *agg,
							 Datum state, bool isnull, bool *result_isnull);
extern MinimalTuple sa_aggs_form_stored(SaAggRuntime *rt, const SaQuery *q,
										const Datum *live,
										const bool *livenulls);
extern void sa_aggs_deform_stored(SaAggRuntime *rt, const SaQuery *q,
								  MinimalTuple stored, Datum *live,
								  bool *livenulls);

/* security.c */
typedef struct SaRoleSave
{
	Oid			userid;
	int			sec_context;
	int			nestlevel;
} SaRoleSave;
extern void sa_user_code_begin(Oid owner, SaRoleSave *save);
extern void sa_user_code_end(SaRoleSave *save);
extern void sa_catalog_access_begin(SaRoleSave *save);
extern void sa_catalog_access_end(SaRoleSave *save);
extern Oid	sa_extension_owner(void);
extern int	sa_pin_search_path(void);
extern void sa_unpin_search_path(int nestlevel);
extern bool sa_may_see_query(Oid owner);
extern void sa_check_statement_privileges(const char *sql, int nargs,
										  Oid *argtypes);

/* catalog.c */
extern int64 sa_interval_usec(Interval *iv, const char *param);
extern SaOutputMode sa_parse_output_mode(const char *mode);
extern const char *sa_output_mode_name(SaOutputMode mode);
extern bool sa_load_definition_by_name(const char *name, SaDefinition *def,
									   bool missing_ok);
extern void sa_load_definition_by_id(int32 query_id, SaDefinition *def);
extern bool sa_query_exists(int32 query_id);
extern void sa_lock_query(int32 query_id);
extern bool sa_try_lock_query(int32 query_id);
extern char *sa_qualified_relation(Oid relid, const char *role,
								   const char *query);

/* state.c */
extern Size sa_state_shmem_size(void);
extern void sa_state_shmem_init(void);
extern void sa_state_forget(int32 query_id);
extern void sa_state_forget_database(Oid database);

/* trigger.c */
typedef struct SaTriggerResult
{
	int64		rows;			/* events consumed; 0: nothing written */
} SaTriggerResult;
extern SaTriggerResult sa_run_trigger(int32 query_id);
extern void sa_forbid_in_trigger(const char *what);
extern bool sa_plan_batch(int32 query_id);
extern Datum sa_committed_snapshot(void);
extern char *sa_batch_predicate(bool has_previous, Datum previous,
								Datum snapshot);

extern void sa_forget_compiled(int32 query_id);
extern void sa_forget_compiled_except(List *query_ids);
extern SaQuery *sa_get_compiled(int32 query_id);

/* sink.c */
extern Oid	sa_prepare_sink(const char *sink_name, const SaQuery *q,
							bool *created);
extern Oid	sa_prepare_sink_function(const char *spec, const SaQuery *q);
extern void sa_build_sink_statement(SaQuery *q);
extern void sa_check_sink_statements(SaQuery *q);

/* notify.c */
extern void sa_check_notify_channel(const SaDefinition *def);

/* launcher.c */
extern void sa_shmem_request(void);
extern void sa_shmem_startup(void);
extern void sa_register_launcher(void);
extern void sa_request_database_worker(Oid dboid);
extern void sa_wake_database_worker(Oid dboid);
extern uint64 sa_source_bucket_bit(Oid source);
extern void sa_note_source_commits(Oid dboid, uint64 mask);
extern uint64 sa_source_commit_count(Oid dboid, Oid source);
extern void sa_stop_database_worker(Oid dboid);
extern void sa_forget_database(Oid dboid);
extern uint64 sa_worker_attach(Oid dboid, int index);
extern void sa_worker_detach(Oid dboid, int index, bool idle,
							 uint64 generation);
extern void sa_worker_set_busy(Oid dboid, int index, bool busy);
extern bool sa_set_workers_wanted(Oid dboid, int index, int wanted);
PGDLLEXPORT void sa_launcher_main(Datum arg);

/* schedule.c */
typedef enum SaClaim
{
	SA_CLAIM_OK,				/* claimed: run its trigger, then release */
	SA_CLAIM_NOT_DUE,
	SA_CLAIM_BUSY,				/* another worker runs it */
	SA_CLAIM_TERMINATED			/* claimed: its last trigger was killed */
} SaClaim;
extern Size sa_schedule_shmem_size(void);
extern void sa_schedule_shmem_init(void);
extern SaClaim sa_schedule_claim(int32 query_id, int64 interval_usec,
								 uint64 commits, TimestampTz now,
								 TimestampTz *due_at);
extern void sa_schedule_release(void);
extern void sa_schedule_release_at_exit(bool terminated);
extern void sa_schedule_forget(int32 query_id);
extern void sa_schedule_forget_database(Oid database);

/* worker.c */
PGDLLEXPORT void sa_worker_main(Datum arg);

/* retention.c */
extern int64 sa_apply_retention(void);

/* inject.c */
extern Size sa_inject_shmem_size(void);
extern void sa_inject_shmem_init(void);
extern void sa_inject_fault(int32 query_id, const char *point);

/* xid_index.c */
extern void sa_summarize_source_ranges(Oid source);
extern void sa_xid_index_subxact_abort(void);

/* source.c */
extern void sa_run_sql(const char *sql);
extern void sa_check_source(Oid source);
extern void sa_prepare_source(Oid source);
extern void sa_release_source(Oid source);
extern void sa_note_source_insert(Oid source);
extern uint64 sa_take_sources_touched(void);
extern void sa_set_deleting_consumed(bool deleting);
extern void sa_check_attach_partition(Oid parent, Oid partition);

/* init.c */
#define SA_MAX_WORKERS_PER_DATABASE 8
extern int	sa_wait_poll_ms;
extern int	sa_max_state_memory_mb;
extern int	sa_trigger_timeout_ms;
extern int	sa_workers_per_database;
extern bool sa_allow_source_changes;
extern void sa_require_preloaded(void);
extern bool sa_library_preloaded(void);

#endif							/* STREAMAGG_H */
