/* streamagg--0.2--0.3.sql: a cheaper index on the sources' transaction ids */

\echo Use "ALTER EXTENSION streamagg UPDATE TO '0.3'" to load this file. \quit

/*
 * streamagg_brin is BRIN with an insert that skips rows whose transaction
 * id its block range already holds (src/xid_index.c).  create_query now
 * indexes each source's streamagg_xid with it, under the same operator
 * class name.
 */
CREATE FUNCTION streamagg.xid_brin_handler(internal)
RETURNS pg_catalog.index_am_handler
AS 'MODULE_PATHNAME' LANGUAGE C;

CREATE ACCESS METHOD streamagg_brin TYPE INDEX HANDLER streamagg.xid_brin_handler;

CREATE OPERATOR CLASS streamagg.xid8_minmax_ops FOR TYPE pg_catalog.xid8 USING streamagg_brin AS
	OPERATOR 1 pg_catalog.< (pg_catalog.xid8, pg_catalog.xid8),
	OPERATOR 2 pg_catalog.<= (pg_catalog.xid8, pg_catalog.xid8),
	OPERATOR 3 pg_catalog.= (pg_catalog.xid8, pg_catalog.xid8),
	OPERATOR 4 pg_catalog.>= (pg_catalog.xid8, pg_catalog.xid8),
	OPERATOR 5 pg_catalog.> (pg_catalog.xid8, pg_catalog.xid8),
	FUNCTION 1 pg_catalog.brin_minmax_opcinfo(internal),
	FUNCTION 2 pg_catalog.brin_minmax_add_value(internal, internal, internal, internal),
	FUNCTION 3 pg_catalog.brin_minmax_consistent(internal, internal, internal),
	FUNCTION 4 pg_catalog.brin_minmax_union(internal, internal, internal);

/*
 * Rebuild the sources' indexes of 0.1 and 0.2 (plain brin, same operator
 * class name) with the new access method, under their old names and with
 * their pages_per_range; then the brin operator class has no user left.
 */
DO $$
DECLARE
	old_index record;
BEGIN
	FOR old_index IN
		SELECT i.indexrelid::pg_catalog.regclass AS index, c.relname AS name,
			   i.indrelid::pg_catalog.regclass AS source, a.attname AS column,
			   (SELECT o.option_value FROM pg_catalog.pg_options_to_table(c.reloptions) o
				 WHERE o.option_name = 'pages_per_range') AS pages_per_range
		  FROM pg_catalog.pg_index i
		  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
		  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		  JOIN pg_catalog.pg_opclass oc ON oc.oid = i.indclass[0]
		  JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod
		 WHERE i.indnatts = 1 AND oc.opcname = 'xid8_minmax_ops'
		   AND oc.opcnamespace = 'streamagg'::pg_catalog.regnamespace
		   AND am.amname = 'brin'
	LOOP
		EXECUTE pg_catalog.format('DROP INDEX %s', old_index.index);
		EXECUTE pg_catalog.format('CREATE INDEX %I ON %s USING streamagg_brin (%I streamagg.xid8_minmax_ops)%s',
								  old_index.name, old_index.source, old_index.column,
								  CASE WHEN old_index.pages_per_range IS NOT NULL
									   THEN pg_catalog.format(' WITH (pages_per_range = %s)',
															  old_index.pages_per_range)
									   ELSE '' END);
	END LOOP;
END
$$;

DROP OPERATOR FAMILY streamagg.xid8_minmax_ops USING brin;
