/* streamagg--0.6--0.7.sql: pipelines, event time and operations (docs/pipelines.md, docs/event-time.md) */

\echo Use "ALTER EXTENSION streamagg UPDATE TO '0.7'" to load this file. \quit

/*
 * The parameters of pipelines and event time.  As for aggregates and
 * group_by, each expression is kept as the user wrote it and normalized
 * (*_sql: every name outside pg_catalog schema-qualified) for the workers.
 * A stateless query has columns instead of aggregates, and may have no
 * event time.
 */
ALTER TABLE streamagg.query_def
	ALTER COLUMN event_time DROP NOT NULL,
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
 * Idle sources (idle_timeout, docs/event-time.md): a planned batch records
 * its trigger time T (planned_at), so that a retried idle trigger computes
 * the same watermark; and the checkpoint records when the last trigger
 * with event times started (max_event_time_at, T_M).
 */
ALTER TABLE streamagg.checkpoint
	ADD COLUMN planned_at timestamptz,
	ADD COLUMN max_event_time_at timestamptz;

/*
 * alter_query: change a running query (src/api.c).  Parameters that leave
 * the state valid apply from the next trigger; the others need reprocess.
 */
CREATE FUNCTION streamagg.alter_query(
	name			 text,
	event_time		 text DEFAULT NULL,
	aggregates		 text DEFAULT NULL,
	group_by		 text DEFAULT NULL,
	window_size		 interval DEFAULT NULL,
	window_slide	 interval DEFAULT NULL,
	window_offset	 interval DEFAULT NULL,
	session_gap		 interval DEFAULT NULL,
	watermark		 interval DEFAULT NULL,
	output_mode		 text DEFAULT NULL,
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
	max_batch_rows	 bigint DEFAULT NULL,
	reprocess		 boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'sa_alter_query'
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

/*
 * Friendlier psql (docs/operations.md, "Monitoring"): the unconsumed events
 * of a query, a compact view for \watch, and a description on every object
 * a user meets (\df+, \dv+, \dt+); internal objects say so.
 */
CREATE FUNCTION streamagg.unconsumed(name text, OUT rows bigint,
									 OUT oldest_event_time timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'sa_unconsumed_sql'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW streamagg.overview WITH (security_invoker = true) AS
SELECT q.name, q.status,
	   u.rows AS unconsumed_rows,
	   pg_catalog.now() - u.oldest_event_time AS lag,
	   q.last_batch_id, q.last_batch_at,
	   p.num_input_rows AS last_batch_rows,
	   p.duration_ms AS last_batch_ms,
	   p.input_rows_per_second, p.processed_rows_per_second,
	   q.watermark, q.last_error
  FROM streamagg.queries q
  LEFT JOIN LATERAL (SELECT b.num_input_rows, b.duration_ms,
							b.input_rows_per_second, b.processed_rows_per_second
					   FROM streamagg.progress b
					  WHERE b.name = q.name
					  ORDER BY b.batch_id DESC LIMIT 1) p ON true
  LEFT JOIN LATERAL streamagg.unconsumed(q.name) u ON true;
GRANT SELECT ON streamagg.overview TO PUBLIC;

COMMENT ON FUNCTION streamagg.create_query(text, regclass, text, text, text,
	interval, interval, interval, interval, interval, text, text, interval,
	text, text, text, text, text, text, text, interval, text, text, bigint) IS
'Define a streaming query over a source table: windowed aggregates with a watermark, written to a sink by output mode. Checks everything first; on error nothing is created.';
COMMENT ON FUNCTION streamagg.process(text) IS
'Run one trigger of the query now, in this transaction (bounded by max_batch_rows if set); returns the source rows consumed. Needs the owner''s privileges.';
COMMENT ON FUNCTION streamagg.wait(text, interval) IS
'True once every event committed before the call was consumed by a committed trigger, false on timeout; an error at once if events are pending and no worker runs the query (paused, or no trigger_interval).';
COMMENT ON FUNCTION streamagg.pause(text) IS
'Stop the workers'' triggers of the query (process() still works).';
COMMENT ON FUNCTION streamagg.resume(text) IS
'Let the workers run the query again.';
COMMENT ON FUNCTION streamagg.drop_query(text, boolean) IS
'Remove the query, its state and progress; drop_sink => true drops its sink table too.';
COMMENT ON FUNCTION streamagg.reset_query(text) IS
'Forget the query''s state, watermark and position and empty its table sink, in one transaction; the next triggers reprocess what the source retains. Batch ids go on from the last one.';
COMMENT ON FUNCTION streamagg.open_windows(text, anyelement) IS
'The open windows in the query''s state, finalized as if emitted now, as of the last committed trigger; call as open_windows(''name'', NULL::sink_table).';
COMMENT ON FUNCTION streamagg.unconsumed(text) IS
'Events committed to the query''s source and not consumed yet, and the least event time among them. Reads the backlog: cheap while the query keeps up, proportional to the backlog otherwise.';
COMMENT ON FUNCTION streamagg.set_retention(regclass, interval) IS
'Delete events of a source once every query consumed them and they are older than keep (NULL: keep everything). Needs ownership of the source.';
COMMENT ON FUNCTION streamagg.apply_retention() IS
'Apply every retention of this database now; returns the events deleted (workers do it every 10 seconds).';
COMMENT ON FUNCTION streamagg.library_loaded() IS
'Whether the streamagg library is loaded via shared_preload_libraries, so that workers run.';
COMMENT ON FUNCTION streamagg.fail_next_trigger(text, text) IS
'Internal, for tests only (superuser): make the next trigger of a query fail at a given phase.';
COMMENT ON FUNCTION streamagg.source_committed() IS
'Internal: statement trigger of sources that wakes the workers. Not to be called.';
COMMENT ON FUNCTION streamagg.source_append_only() IS
'Internal: trigger that keeps sources append-only while queries read them. Not to be called.';
COMMENT ON FUNCTION streamagg.query_def_changed() IS
'Internal: trigger that tells backends a query definition changed. Not to be called.';
COMMENT ON FUNCTION streamagg.xid_brin_handler(internal) IS
'Internal: handler of the streamagg_brin index access method on sources.';
COMMENT ON ACCESS METHOD streamagg_brin IS
'BRIN for the streamagg_xid column of sources, skipping repeated inserts of one transaction''s id.';

COMMENT ON VIEW streamagg.queries IS
'One row per streaming query you may see: status, watermark, last batch, last error, and its definition.';
COMMENT ON VIEW streamagg.progress IS
'The last 100 batches of each query you may see, with the metrics of each (rows, times, watermark, state).';
COMMENT ON VIEW streamagg.overview IS
'One compact row per query for \watch: status, unconsumed rows and lag (now minus the oldest unconsumed event time), last batch, rows per second, watermark, last error. Counts the backlog on every read.';
COMMENT ON TABLE streamagg.query_def IS
'Internal catalog: query definitions (read streamagg.queries instead).';
COMMENT ON TABLE streamagg.checkpoint IS
'Internal catalog: each query''s position, plan, watermark and last error (read streamagg.queries instead).';
COMMENT ON TABLE streamagg.batch_log IS
'Internal catalog: per-batch metrics (read streamagg.progress instead).';
COMMENT ON TABLE streamagg.state_log IS
'Internal catalog: the durable state of open windows, as snapshots and deltas.';
COMMENT ON TABLE streamagg.retention IS
'One row per source with a retention (set_retention): keep, owner, last run, events deleted.';

COMMENT ON FUNCTION streamagg.alter_query(text, text, text, text, interval, interval, interval,
	interval, interval, text, text, interval, text, text, text, text, text, text, text,
	interval, text, text, bigint, boolean) IS
	'Change a running query: trigger_interval, watermark, idle_timeout, late_sink, notify_channel, sink_function, sink_merge and max_batch_rows keep its state; other changes need reprocess => true, which resets it first';
