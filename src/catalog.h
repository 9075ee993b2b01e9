/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  Reads and writes of streamagg's catalog tables, and the per-query
 *	  lock (catalog.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_CATALOG_H
#define STREAMAGG_CATALOG_H

#include "streamagg.h"

#include "datatype/timestamp.h"

/* A new query as streamagg.query_def stores it. */
typedef struct SaQueryRow
{
	const SaDefinition *def;	/* checked; aggregates and group_by normalized */
	/* the expressions as the user wrote them, or NULL */
	const char *aggregates_text;
	const char *group_by_text;
	const char *filter_text;
	const char *join_text;
	const char *columns_text;
	const char *dedup_text;
	/* the intervals as the user gave them, or NULL */
	Interval   *window_size;
	Interval   *window_slide;
	Interval   *window_offset;
	Interval   *session_gap;
	Interval   *watermark;
	Interval   *trigger_interval;
	Interval   *idle_timeout;
	const char *state_signature;
} SaQueryRow;

/*
 * What alter_query changes in a query's row of streamagg.query_def: the
 * fields that are set (not NULL / valid).
 */
typedef struct SaAlteration
{
	int32		query_id;
	Interval   *trigger_interval;
	Interval   *watermark;
	Interval   *idle_timeout;
	Oid			late_sink;
	int64		max_batch_rows; /* 0: unchanged */
	const char *notify_channel;
	const char *sink_merge;
	Oid			sink_function;	/* and then sink becomes NULL */
} SaAlteration;

/* The progress of a query's stream: its row of streamagg.checkpoint. */
typedef struct SaCheckpoint
{
	bool		has_batch;
	int64		last_batch_id;	/* -1 before the first batch */
	bool		has_consumed;
	Datum		consumed_snapshot;	/* NULL before the first batch */
	bool		has_planned;
	int64		planned_batch_id;
	Datum		planned_snapshot;
	bool		has_planned_at;
	TimestampTz planned_at;		/* the planned trigger's time T */
	bool		has_watermark;
	int64		watermark;
	bool		has_max_event_time;
	int64		max_event_time;
	bool		has_max_event_time_at;
	TimestampTz max_event_time_at;	/* T_M: time of the last trigger with
									 * event times */
	bool		has_last_batch_at;
	TimestampTz last_batch_at;
	char	   *state_signature;	/* NULL: not recorded (before 0.6) */
} SaCheckpoint;

/* What a trigger records of its batch (docs/semantics.md §7). */
typedef struct SaBatchRecord
{
	int32		query_id;
	int64		batch_id;
	Datum		snapshot;		/* consumed now */
	bool		has_watermark;
	int64		watermark;
	bool		has_max_event_time;
	int64		max_event_time;
	bool		has_max_event_time_at;
	TimestampTz max_event_time_at;
	const char *state_signature;
	TimestampTz started_at;
	double		duration_ms;
	bool		has_last_batch_at;	/* of the batch before */
	TimestampTz last_batch_at;
	int64		input_rows;
	bool		has_event_time;
	int64		event_time_min;
	int64		event_time_max;
	int64		state_rows_total;
	int64		state_rows_updated;
	int64		late_rows;
	int64		null_time_rows;
	int64		sink_rows;
	double		aggregate_ms;
	double		sink_ms;
	double		state_log_ms;
	int64		state_memory_bytes;
	int64		filtered_rows;
	int64		duplicate_rows;
	int64		late_rows_written;
} SaBatchRecord;

/* A scheduled, unpaused query, as the workers see it. */
typedef struct SaScheduledQuery
{
	int32		query_id;
	char	   *name;
	Oid			source;
	int64		interval_usec;
	bool		has_idle_timeout;
	int64		idle_timeout;
	bool		waiting_retry;	/* retry_at is in the future */
} SaScheduledQuery;

/* A retention of a source (streamagg.retention). */
typedef struct SaRetention
{
	Oid			source;
	Interval   *keep;
	Oid			owner;
} SaRetention;

/* The consumption of a source by its queries. */
typedef struct SaSourceHorizon
{
	int			nqueries;
	bool		all_consumed;	/* every query has consumed a batch */
	Datum		horizon;		/* if so, the xid8 below which all of them
								 * consumed every event */
	List	   *event_times;	/* the event-time columns its queries read */
} SaSourceHorizon;

/* query definitions */
extern bool sa_load_definition_by_name(const char *name, SaDefinition *def,
									   bool missing_ok);
extern void sa_load_definition_by_id(int32 query_id, SaDefinition *def);
extern bool sa_query_exists(int32 query_id);
extern int32 sa_catalog_insert_query(const SaQueryRow *row);
extern void sa_catalog_alter_query(const SaAlteration *change);
extern void sa_catalog_replace_query(int32 query_id, const SaQueryRow *row);

/* create_query's arguments, as sa_catalog_create_arguments returns them */
#define SA_CREATE_QUERY_NARGS 24
extern void sa_catalog_create_arguments(int32 query_id, Datum *values,
										bool *nulls);
extern void sa_catalog_set_paused(int32 query_id, bool paused);
extern bool sa_catalog_delete_query(int32 query_id, Oid source);
extern char *sa_catalog_query_of_sink(Oid sink, Oid *owner);
extern bool sa_catalog_source_has_queries(Oid source);
extern List *sa_catalog_scheduled_queries(void);

/* checkpoints and progress */
extern bool sa_catalog_read_checkpoint(int32 query_id, SaCheckpoint *cp,
									   bool missing_ok);
extern bool sa_catalog_plan_batch(int32 query_id, int64 batch_id,
								  Datum snapshot, TimestampTz planned_at,
								  bool even_if_unchanged);
extern void sa_catalog_consume_empty_plan(int32 query_id);
extern void sa_catalog_record_batch(const SaBatchRecord *rec);
extern void sa_catalog_record_error(int32 query_id, const char *message);
extern void sa_catalog_reset_query(int32 query_id);

/* sources and retentions */
extern void sa_catalog_source_horizon(Oid source, SaSourceHorizon *h);
extern void sa_catalog_set_retention(Oid source, Interval *keep, Oid owner);
extern List *sa_catalog_retentions(void);
extern void sa_catalog_retention_ran(Oid source, int64 deleted);

/* the per-query lock */
extern void sa_lock_query(int32 query_id);
extern bool sa_try_lock_query(int32 query_id);

#endif							/* STREAMAGG_CATALOG_H */
