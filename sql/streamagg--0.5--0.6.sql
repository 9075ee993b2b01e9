/* streamagg--0.5--0.6.sql: each role sees only its own queries; the library may be missing */

\echo Use "ALTER EXTENSION streamagg UPDATE TO '0.6'" to load this file. \quit

/*
 * Whether the library was loaded through shared_preload_libraries.  Loaded
 * any other way (a producer's insert into a source, in a server started
 * without the preload) it no longer fails, so that producers keep working;
 * the views say that no worker runs.
 */
CREATE FUNCTION streamagg.library_loaded()
RETURNS boolean
AS 'MODULE_PATHNAME', 'sa_library_loaded'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

/* Creating the extension, or updating it, still needs the preload. */
DO $$
BEGIN
	IF NOT streamagg.library_loaded() THEN
		RAISE EXCEPTION 'streamagg must be loaded via shared_preload_libraries'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Add streamagg to shared_preload_libraries in postgresql.conf and restart the server.';
	END IF;
END
$$;

/*
 * A role sees the definitions, errors, progress and retentions of the
 * queries whose owner it has the privileges of, and all of them with
 * pg_read_all_stats, as pg_stat_activity shows other sessions.  The views
 * run as their caller so that these policies apply; streamagg itself reads
 * its catalog as the tables' owner, to which they do not apply.
 */
ALTER TABLE streamagg.query_def ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible_queries ON streamagg.query_def FOR SELECT
	USING (pg_catalog.pg_has_role(owner, 'USAGE') OR
		   pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE'));

ALTER TABLE streamagg.checkpoint ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible_queries ON streamagg.checkpoint FOR SELECT
	USING (EXISTS (SELECT FROM streamagg.query_def d
					WHERE d.query_id = checkpoint.query_id));

ALTER TABLE streamagg.batch_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible_queries ON streamagg.batch_log FOR SELECT
	USING (EXISTS (SELECT FROM streamagg.query_def d
					WHERE d.query_id = batch_log.query_id));

ALTER TABLE streamagg.retention ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible_retentions ON streamagg.retention FOR SELECT
	USING (pg_catalog.pg_has_role(owner, 'USAGE') OR
		   pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE'));

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
	   d.sink_function, d.sink_merge, d.notify_channel
  FROM streamagg.query_def d
  JOIN streamagg.checkpoint c USING (query_id);

ALTER VIEW streamagg.progress SET (security_invoker = true);

/*
 * Sources are append-only while queries read them (src/source.c): UPDATE,
 * DELETE and TRUNCATE are refused, but for retention's deletes of consumed
 * events and with streamagg.allow_source_changes on.  The triggers fire in
 * replica mode too.  create_query adds them to new sources; existing
 * sources get them here.
 */
CREATE FUNCTION streamagg.source_append_only()
RETURNS trigger
AS 'MODULE_PATHNAME', 'sa_source_append_only'
LANGUAGE C;

DO $$
DECLARE
	src record;
BEGIN
	FOR src IN
		SELECT DISTINCT t.tgrelid::pg_catalog.regclass AS source
		  FROM pg_catalog.pg_trigger t
		 WHERE t.tgname = 'streamagg_source_committed'
		   AND t.tgfoid = 'streamagg.source_committed()'::pg_catalog.regprocedure
		   AND NOT t.tgisinternal
	LOOP
		EXECUTE pg_catalog.format('CREATE TRIGGER streamagg_source_append_only '
								  'BEFORE UPDATE OR DELETE ON %s FOR EACH ROW '
								  'EXECUTE FUNCTION streamagg.source_append_only()', src.source);
		EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER streamagg_source_append_only',
								  src.source);
		EXECUTE pg_catalog.format('CREATE TRIGGER streamagg_source_no_truncate '
								  'BEFORE TRUNCATE ON %s FOR EACH STATEMENT '
								  'EXECUTE FUNCTION streamagg.source_append_only()', src.source);
		EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER streamagg_source_no_truncate',
								  src.source);
	END LOOP;
END
$$;

/*
 * A query inserted or resumed needs workers once its transaction commits,
 * whoever inserted it: create_query and resume, or a restore of the
 * catalog (pg_restore loads it with COPY, which fires this trigger).
 */
CREATE FUNCTION streamagg.query_def_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'sa_query_def_changed'
LANGUAGE C;

CREATE TRIGGER query_def_changed AFTER INSERT OR UPDATE ON streamagg.query_def
	FOR EACH STATEMENT EXECUTE FUNCTION streamagg.query_def_changed();

/*
 * The layout the state of each query was stored with (src/definition.c):
 * after DDL changes the types a query computes, its triggers refuse to read
 * the old state instead of misreading it.  Recorded by create_query, and
 * by the next trigger of an older query.
 */
ALTER TABLE streamagg.checkpoint ADD COLUMN state_signature text;
