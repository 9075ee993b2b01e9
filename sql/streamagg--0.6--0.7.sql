/* streamagg--0.6--0.7.sql: pipelines, event time and operations (docs/pipelines.md, docs/event-time.md) */

\echo Use "ALTER EXTENSION streamagg UPDATE TO '0.7'" to load this file. \quit

/*
 * The parameters of pipelines and event time.  As for aggregates and
 * group_by, each expression is kept as the user wrote it and normalized
 * (*_sql: every name outside pg_catalog schema-qualified) for the workers.
 * A stateless query has columns instead of aggregates.
 */
ALTER TABLE streamagg.query_def
	ALTER COLUMN aggregates DROP NOT NULL,
	ALTER COLUMN aggregates_sql DROP NOT NULL,
	ADD COLUMN filter text,
	ADD COLUMN filter_sql text,
	ADD COLUMN "join" text,
	ADD COLUMN join_sql text,
	ADD COLUMN columns text,
	ADD COLUMN columns_sql text,
	ADD COLUMN dedup text,
	ADD COLUMN dedup_sql text,
	ADD COLUMN idle_timeout interval,
	ADD COLUMN late_sink regclass,
	ADD COLUMN time_zone text,
	ADD COLUMN max_batch_rows bigint,
	ADD CONSTRAINT query_def_aggregates_or_columns
		CHECK ((aggregates_sql IS NULL) <> (columns_sql IS NULL)),
	ADD CONSTRAINT query_def_max_batch_rows_positive
		CHECK (max_batch_rows > 0);

/* Progress gains what filters, dedup and the late sink did. */
ALTER TABLE streamagg.batch_log
	ADD COLUMN filtered_rows bigint NOT NULL DEFAULT 0,
	ADD COLUMN duplicate_rows_dropped bigint NOT NULL DEFAULT 0,
	ADD COLUMN late_rows_written bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE VIEW streamagg.progress WITH (security_invoker = true) AS
SELECT d.name, b.batch_id, b.started_at, b.duration_ms, b.num_input_rows,
	   b.input_rows_per_second, b.processed_rows_per_second,
	   b.event_time_min, b.event_time_max, b.watermark, b.state_rows_total,
	   b.state_rows_updated, b.late_rows_dropped, b.null_event_time_rows,
	   b.sink_rows_written, b.aggregate_ms, b.sink_ms, b.state_log_ms,
	   b.state_memory_bytes, b.filtered_rows, b.duplicate_rows_dropped,
	   b.late_rows_written
  FROM streamagg.batch_log b
  JOIN streamagg.query_def d USING (query_id);

CREATE OR REPLACE VIEW streamagg.queries WITH (security_invoker = true) AS
SELECT d.name, d.source, d.sink, d.output_mode,
	   CASE WHEN d.paused THEN 'paused'
			WHEN c.last_error IS NOT NULL OR NOT streamagg.library_loaded() THEN 'failing'
			ELSE 'running' END AS status,
	   c.watermark, c.last_batch_id, c.last_batch_at,
	   CASE WHEN streamagg.library_loaded() THEN c.last_error
			ELSE 'streamagg is not loaded via shared_preload_libraries: no worker runs this query'
	   END AS last_error,
	   c.last_error_at, c.failures, c.retry_at, c.max_event_time,
	   d.event_time, d.aggregates, d.group_by, d.window_size, d.window_slide,
	   d.window_offset, d.session_gap, d.watermark AS watermark_delay,
	   d.trigger_interval, d.owner, d.created_at, d.query_id,
	   d.sink_function, d.sink_merge, d.notify_channel,
	   d.filter, d."join", d.columns, d.dedup, d.idle_timeout, d.late_sink,
	   d.time_zone, d.max_batch_rows
  FROM streamagg.query_def d
  JOIN streamagg.checkpoint c USING (query_id);

/* create_query gains the parameters above; aggregates may be NULL. */
DROP FUNCTION streamagg.create_query(text, regclass, text, text, text,
	interval, interval, interval, interval, interval, text, text, interval,
	text, text, text);

CREATE FUNCTION streamagg.create_query(
	name			 text,
	source			 regclass,
	event_time		 text,
	aggregates		 text,
	group_by		 text DEFAULT NULL,
	window_size		 interval DEFAULT NULL,
	window_slide	 interval DEFAULT NULL,
	window_offset	 interval DEFAULT NULL,
	session_gap		 interval DEFAULT NULL,
	watermark		 interval DEFAULT NULL,
	output_mode		 text DEFAULT 'append',
	sink			 text DEFAULT NULL,
	trigger_interval interval DEFAULT NULL,
	sink_function	 text DEFAULT NULL,
	notify_channel	 text DEFAULT NULL,
	sink_merge		 text DEFAULT NULL,
	filter			 text DEFAULT NULL,
	"join"			 text DEFAULT NULL,
	columns			 text DEFAULT NULL,
	dedup			 text DEFAULT NULL,
	idle_timeout	 interval DEFAULT NULL,
	late_sink		 text DEFAULT NULL,
	time_zone		 text DEFAULT NULL,
	max_batch_rows	 bigint DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'sa_create_query'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

/*
 * reset_query (docs/operations.md, "Resetting a query"): forget a query's
 * state, watermark and position, empty its table sink; batch ids go on.
 */
CREATE FUNCTION streamagg.reset_query(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'sa_reset_query_sql'
LANGUAGE C STRICT VOLATILE;

/*
 * open_windows (docs/output-modes.md, "Seeing open windows"): the groups in
 * a query's state, finalized as if emitted now, as of its last committed
 * trigger, as rows of the caller's row type (NULL::sink_table).
 */
CREATE FUNCTION streamagg.open_windows(name text, row_type anyelement)
RETURNS SETOF anyelement
AS 'MODULE_PATHNAME', 'sa_open_windows_sql'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
