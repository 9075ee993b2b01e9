/* streamagg--0.1--0.2.sql: sinks beyond a table (docs/sinks.md) */

\echo Use "ALTER EXTENSION streamagg UPDATE TO '0.2'" to load this file. \quit

/*
 * A query writes either to a sink table (sink) or to a function sink
 * (sink_function), never both.  sink_merge holds the WHEN clauses of a
 * custom MERGE into the sink table; notify_channel the channel of one
 * pg_notify per trigger with output.
 */
ALTER TABLE streamagg.query_def
	ALTER COLUMN sink DROP NOT NULL,
	ADD COLUMN sink_function regprocedure,
	ADD COLUMN sink_merge text,
	ADD COLUMN notify_channel text,
	ADD CONSTRAINT query_def_one_sink
		CHECK ((sink IS NULL) <> (sink_function IS NULL)),
	ADD CONSTRAINT query_def_merge_into_table
		CHECK (sink_merge IS NULL OR sink IS NOT NULL);

CREATE OR REPLACE VIEW streamagg.queries AS
SELECT d.name, d.source, d.sink, d.output_mode,
	   CASE WHEN d.paused THEN 'paused'
			WHEN c.last_error IS NOT NULL THEN 'failing'
			ELSE 'running' END AS status,
	   c.watermark, c.last_batch_id, c.last_batch_at, c.last_error,
	   c.last_error_at, c.failures, c.retry_at, c.max_event_time,
	   d.event_time, d.aggregates, d.group_by, d.window_size, d.window_slide,
	   d.window_offset, d.session_gap, d.watermark AS watermark_delay,
	   d.trigger_interval, d.owner, d.created_at, d.query_id,
	   d.sink_function, d.sink_merge, d.notify_channel
  FROM streamagg.query_def d
  JOIN streamagg.checkpoint c USING (query_id);

/* create_query gains sink_function, notify_channel and sink_merge. */
DROP FUNCTION streamagg.create_query(text, regclass, text, text, text,
	interval, interval, interval, interval, interval, text, text, interval);

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
	sink_merge		 text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'sa_create_query'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
