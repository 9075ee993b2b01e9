/* streamagg--0.4--0.5.sql: the state's shared memory in progress */

\echo Use "ALTER EXTENSION streamagg UPDATE TO '0.5'" to load this file. \quit

/*
 * The shared memory a query's state takes after each trigger, as Spark's
 * stateOperators.memoryUsedBytes: its group table and the tuples its
 * entries point to.  NULL for batches recorded before 0.5.
 */
ALTER TABLE streamagg.batch_log
	ADD COLUMN state_memory_bytes bigint;

CREATE OR REPLACE VIEW streamagg.progress AS
SELECT d.name, b.batch_id, b.started_at, b.duration_ms, b.num_input_rows,
	   b.input_rows_per_second, b.processed_rows_per_second,
	   b.event_time_min, b.event_time_max, b.watermark, b.state_rows_total,
	   b.state_rows_updated, b.late_rows_dropped, b.null_event_time_rows,
	   b.sink_rows_written, b.aggregate_ms, b.sink_ms, b.state_log_ms,
	   b.state_memory_bytes
  FROM streamagg.batch_log b
  JOIN streamagg.query_def d USING (query_id);
