/*-------------------------------------------------------------------------
 *
 * monitor.c
 *	  What the monitoring view streamagg.overview computes beyond the
 *	  catalog: a query's unconsumed events (docs/operations.md,
 *	  "Monitoring").
 *
 * The unconsumed events of a query are those a trigger starting now would
 * read without a bound: the batch predicate (batch.c) between the snapshot
 * the query consumed and every transaction committed now.  Counting them
 * reads them: through the source's BRIN index only the block ranges of the
 * backlog, so the cost is small while the query keeps up and grows with
 * the backlog when it does not.  The source is read as the query's owner
 * (the caller only needs to be allowed to see the query, as for wait()).
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "catalog.h"
#include "monitor.h"
#include "security.h"

/*
 * The number of events of q not consumed yet, and the least event time
 * among them (*has_oldest false when there is none, or none has one).  A
 * timestamp without time zone is taken as UTC (docs/semantics.md §1).
 */
int64
sa_unconsumed_events(SaQuery *q, TimestampTz *oldest, bool *has_oldest)
{
	SaCheckpoint cp;
	SaRoleSave	owner;
	Datum		snapshot;
	bool		isnull;
	int64		rows;
	char	   *event_time;

	/* a stateless query may have no event time: then no oldest one */
	if (q->def.event_time == NULL)
		event_time = "NULL::pg_catalog.timestamptz";
	else if (q->window_type == TIMESTAMPOID)
		event_time = psprintf("%s AT TIME ZONE 'UTC'",
							  quote_identifier(q->def.event_time));
	else
		event_time = pstrdup(quote_identifier(q->def.event_time));

	*has_oldest = false;
	if (!sa_catalog_read_checkpoint(q->def.query_id, &cp, true))
		return 0;
	snapshot = sa_committed_snapshot();
	sa_user_code_begin(q->def.owner, &owner);
	SPI_connect();
	(void) sa_select_unconsumed(q, &cp, snapshot,
								psprintf("pg_catalog.count(*), pg_catalog.min(%s)",
										 event_time));
	rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	*oldest = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 2,
												&isnull));
	*has_oldest = !isnull;
	SPI_finish();
	sa_user_code_end(&owner);
	return rows;
}
