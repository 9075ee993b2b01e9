/* streamagg--0.3--0.4.sql: the state checkpoint becomes a log of changes; phase times in progress */

\echo Use "ALTER EXTENSION streamagg UPDATE TO '0.4'" to load this file. \quit

/*
 * The durable state of a query (src/state.c): the latest snapshot of its
 * groups and, after it, one delta per trigger holding the groups that
 * trigger changed or removed.  Records are packed in "records" (format in
 * state.c): a trigger writes one row per 8 MB of changes instead of one
 * row per group, and never updates a row in place.
 */
CREATE TABLE streamagg.state_log (
	query_id int NOT NULL,
	batch_id bigint NOT NULL,	/* the trigger that wrote it */
	part	 int NOT NULL,		/* chunk of that trigger's records */
	snapshot boolean NOT NULL,	/* all groups after batch_id, or its changes */
	groups	 int NOT NULL,		/* records in this chunk */
	records	 bytea NOT NULL,
	PRIMARY KEY (query_id, batch_id, part)
);
/*
 * Records compress well (minimal tuple headers, small integers): with lz4,
 * 100 000 groups took 1.8 MB instead of 11 MB and were written in 36-49 ms
 * instead of 59-91 ms.  pglz costs more than it saves: without lz4 in the
 * server, the records are stored uncompressed.
 */
DO $$
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_settings
			   WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
		ALTER TABLE streamagg.state_log ALTER COLUMN records SET COMPRESSION lz4;
	ELSE
		ALTER TABLE streamagg.state_log ALTER COLUMN records SET STORAGE EXTERNAL;
	END IF;
END
$$;

SELECT pg_catalog.pg_extension_config_dump('streamagg.state_log', '');
REVOKE ALL ON streamagg.state_log FROM PUBLIC;

/*
 * The rows of the old checkpoint table become each query's first snapshot,
 * at its last committed batch, in parts of 50 000 groups.  A record is
 * window_start, window_end (int8, network order, as timestamptz_send
 * writes them), then the key and the states, each an int4 length and the
 * bytes: the same minimal tuples streamagg.state held.
 */
INSERT INTO streamagg.state_log (query_id, batch_id, part, snapshot, groups, records)
SELECT s.query_id, coalesce(c.last_batch_id, -1), s.part, true, count(*),
	   pg_catalog.string_agg(pg_catalog.timestamptz_send(s.window_start) ||
							 pg_catalog.timestamptz_send(s.window_end) ||
							 pg_catalog.int4send(pg_catalog.octet_length(s.group_key)) ||
							 s.group_key ||
							 pg_catalog.int4send(pg_catalog.octet_length(s.agg_states)) ||
							 s.agg_states, ''::bytea)
  FROM (SELECT st.*, (pg_catalog.row_number() OVER (PARTITION BY st.query_id) - 1) / 50000 AS part
		  FROM streamagg.state st) s
  JOIN streamagg.checkpoint c ON c.query_id = s.query_id
 GROUP BY s.query_id, coalesce(c.last_batch_id, -1), s.part;

ALTER EXTENSION streamagg DROP TABLE streamagg.state;
DROP TABLE streamagg.state;

/*
 * Where a trigger's time went, as Spark's durationMs does: reading the
 * batch and aggregating it into the state, writing the sink, and writing
 * the state log.  NULL for batches recorded before 0.4.
 */
ALTER TABLE streamagg.batch_log
	ADD COLUMN aggregate_ms double precision,
	ADD COLUMN sink_ms double precision,
	ADD COLUMN state_log_ms double precision;

CREATE OR REPLACE VIEW streamagg.progress AS
SELECT d.name, b.batch_id, b.started_at, b.duration_ms, b.num_input_rows,
	   b.input_rows_per_second, b.processed_rows_per_second,
	   b.event_time_min, b.event_time_max, b.watermark, b.state_rows_total,
	   b.state_rows_updated, b.late_rows_dropped, b.null_event_time_rows,
	   b.sink_rows_written, b.aggregate_ms, b.sink_ms, b.state_log_ms
  FROM streamagg.batch_log b
  JOIN streamagg.query_def d USING (query_id);
