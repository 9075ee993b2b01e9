/*-------------------------------------------------------------------------
 *
 * batch_limit.c
 *	  max_batch_rows: where a bounded batch ends (docs/operations.md,
 *	  "Catching up in bounded batches").
 *
 * A batch is the events between two snapshots, P (consumed by the last
 * trigger) and the new one (batch.c).  Without a bound the new one is S,
 * every transaction committed now.  With a bound of M rows the batch takes
 * the producer transactions that S adds to P in transaction-id order, whole,
 * while their rows total at most M, and always at least the first; the
 * others wait for the next trigger.  That batch is written as a snapshot B
 * that takes the transactions left for later for still running, so that
 * planning, retrying, the batch predicate and the retention horizon all work
 * on B as they do on S, unchanged.
 *
 * The candidates are the transactions visible in S and not in P that have
 * rows in the source: first the rows without a transaction id (the source's
 * rows from before it was prepared; only in the first batch, as one
 * indivisible group), then those of P's running list (all below P's xmax),
 * then those from P's xmax on.  Their rows are counted from the source
 * (count per streamagg_xid, which the BRIN index serves), from P's xmax up
 * in ranges of transaction ids that grow while the count stays under the
 * bound, so a trigger reads about the rows it takes, not the whole backlog.
 *
 * With y the first candidate not taken, B is
 *	  xmax(B) = max(y, xmax(P))
 *	  xip(B)  = (xip(S) below xmax(B))  +  (candidates not taken below xmax(B))
 *	  xmin(B) = the least of xip(B), or xmax(B)
 * and the invariant (checked by check_bound_snapshot) is
 *	  visible(P)  is a subset of  visible(B)  is a subset of  visible(S),
 *	  and a candidate is visible in B exactly when it was taken.
 * The first inclusion is what the batch predicate relies on: it enumerates
 * the transactions not visible in P as "P's running list, or at or after
 * P's xmax", so a transaction P saw must never turn invisible again (that
 * is why xmax(B) never goes below xmax(P) even when the batch ends inside
 * P's running list).  The second one means B takes nothing that S would
 * not, and xmin(B) >= xmin(P) follows, so the retention horizon (the least
 * xmin of the consumed snapshots) never moves back.  Transactions visible
 * in S without rows in the source (they ended before S and will never have
 * any) may fall on either side.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/xid8.h"

#include "batch.h"
#include "batch_limit.h"
#include "init.h"
#include "xid_index.h"

/* A snapshot's parts, as numbers (pg_snapshot's text form). */
typedef struct SnapshotParts
{
	uint64		xmin;
	uint64		xmax;
	int			nxip;
	uint64	   *xip;			/* ascending */
} SnapshotParts;

/* A candidate transaction and its rows in the source. */
typedef struct Candidate
{
	bool		no_xid;			/* the rows without a transaction id */
	uint64		xid;
	int64		rows;
} Candidate;

typedef struct Candidates
{
	Candidate  *items;			/* in transaction-id order, no_xid first */
	int			n;
	int			size;
	int64		total;			/* rows of all of them */
} Candidates;

/* The first range of transaction ids counted from P's xmax on. */
#define FIRST_RANGE_XIDS 16

/* The bound of a query: its own max_batch_rows, or the setting; 0: none. */
int64
sa_max_batch_rows(const SaDefinition *def)
{
	return def->max_batch_rows > 0 ? def->max_batch_rows :
		(int64) sa_max_batch_rows_setting;
}

static void
parse_snapshot(Datum snapshot, SnapshotParts *parts)
{
	char	   *text = DatumGetCString(DirectFunctionCall1(pg_snapshot_out,
														   snapshot));
	char	   *p = text;
	int			size = 8;

	parts->xmin = strtou64(p, &p, 10);
	Assert(*p == ':');
	parts->xmax = strtou64(p + 1, &p, 10);
	Assert(*p == ':');
	p++;
	parts->nxip = 0;
	parts->xip = palloc(sizeof(uint64) * size);
	while (*p != '\0')
	{
		if (parts->nxip == size)
		{
			size *= 2;
			parts->xip = repalloc(parts->xip, sizeof(uint64) * size);
		}
		parts->xip[parts->nxip++] = strtou64(p, &p, 10);
		if (*p == ',')
			p++;
	}
	pfree(text);
}

/* As pg_visible_in_snapshot() decides it. */
static bool
visible_in(const SnapshotParts *s, uint64 xid)
{
	if (xid < s->xmin)
		return true;
	if (xid >= s->xmax)
		return false;
	for (int i = 0; i < s->nxip; i++)
		if (s->xip[i] == xid)
			return false;
	return true;
}

static void
add_candidate(Candidates *c, bool no_xid, uint64 xid, int64 rows)
{
	if (c->n == c->size)
	{
		/*
		 * Counting runs inside SPI, whose memory SPI_finish frees; the
		 * candidates are read after it, so they live in the caller's
		 * memory (SPI_palloc; repalloc keeps a chunk's context).
		 */
		c->size = Max(16, c->size * 2);
		c->items = c->items ? repalloc(c->items, sizeof(Candidate) * c->size) :
			SPI_palloc(sizeof(Candidate) * c->size);
	}
	/* kept in transaction-id order, the group without one first */
	Assert(c->n == 0 || (!no_xid && (c->items[c->n - 1].no_xid ||
									  c->items[c->n - 1].xid < xid)));
	c->items[c->n].no_xid = no_xid;
	c->items[c->n].xid = xid;
	c->items[c->n].rows = rows;
	c->n++;
	c->total += rows;
}

/*
 * Count the rows per transaction of a counting statement whose result is
 * (streamagg_xid, count) in transaction-id order; append those of the
 * transactions visible in S.  Returns the rows counted.
 */
static int64
count_rows(Candidates *c, const SnapshotParts *s, const char *sql, int nargs,
		   Oid *types, Datum *args)
{
	int64		counted = 0;

	/*
	 * Not read-only: a snapshot taken now, after S, sees every row of the
	 * transactions S sees committed (the caller's may be older than S).
	 */
	if (SPI_execute_with_args(sql, nargs, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not count the rows of a batch");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		xid = SPI_getbinval(SPI_tuptable->vals[i],
										SPI_tuptable->tupdesc, 1, &isnull);
		int64		rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													   SPI_tuptable->tupdesc,
													   2, &isnull));
		uint64		x = U64FromFullTransactionId(DatumGetFullTransactionId(xid));

		/* committed after S: not a candidate (cheaper here than per row) */
		if (!visible_in(s, x))
			continue;
		add_candidate(c, false, x, rows);
		counted += rows;
	}
	return counted;
}

/*
 * How many of the candidates, in order, a batch bounded by "limit" takes:
 * whole transactions while their rows total at most limit, and always the
 * first.
 */
static int
taken_count(const Candidates *c, int64 limit)
{
	int64		rows;
	int			taken;

	if (c->n == 0)
		return 0;
	rows = c->items[0].rows;
	for (taken = 1; taken < c->n && rows + c->items[taken].rows <= limit; taken++)
		rows += c->items[taken].rows;
	return taken;
}

/*
 * Collect the candidates of the batch from P to S in transaction-id order,
 * until one of them is left for later (the batch is bounded) or every one
 * is counted.  Returns true when the batch takes every candidate.  Runs as
 * the query's owner.
 */
static bool
collect_candidates(SaQuery *q, bool has_previous, const SnapshotParts *prev,
				   const SnapshotParts *s, int64 limit, Candidates *c)
{
	StringInfoData sql;
	Oid			types[2] = {XID8OID, XID8OID};
	Datum		args[2];
	uint64		lo;
	uint64		span = FIRST_RANGE_XIDS;
	bool		first = true;

	initStringInfo(&sql);
	if (!has_previous)
	{
		/* the first batch: rows from before the source was prepared */
		int64		rows;
		bool		isnull;

		appendStringInfo(&sql, "SELECT pg_catalog.count(*) FROM %s WHERE %s IS NULL",
						 q->source_qualified, SA_XID_COLUMN);
		if (SPI_execute(sql.data, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not count the rows of a batch");
		rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
		if (rows > 0)
			add_candidate(c, true, 0, rows);
		lo = U64FromFullTransactionId(FirstNormalFullTransactionId);
	}
	else
	{
		/* transactions P saw running and S sees committed */
		resetStringInfo(&sql);
		appendStringInfo(&sql, "SELECT %s, pg_catalog.count(*) FROM %s WHERE %s IN (",
						 SA_XID_COLUMN, q->source_qualified, SA_XID_COLUMN);
		for (int i = 0; i < prev->nxip; i++)
			if (visible_in(s, prev->xip[i]))
			{
				appendStringInfo(&sql, "%s'" UINT64_FORMAT "'::pg_catalog.xid8",
								 first ? "" : ", ", prev->xip[i]);
				first = false;
			}
		appendStringInfo(&sql, ") GROUP BY 1 ORDER BY 1");
		if (!first)
			(void) count_rows(c, s, sql.data, 0, NULL, NULL);
		lo = prev->xmax;
	}

	/*
	 * Then ranges of transaction ids from there to S's xmax.  A range that
	 * found rows sizes the next one by their density, to about the rows
	 * still wanted, but never more than twice as large: the overshoot past
	 * the bound stays about one range's rows.
	 */
	resetStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s, pg_catalog.count(*) FROM %s "
					 "WHERE %s >= $1 AND %s < $2 GROUP BY 1 ORDER BY 1",
					 SA_XID_COLUMN, q->source_qualified, SA_XID_COLUMN,
					 SA_XID_COLUMN);
	while (taken_count(c, limit) == c->n && lo < s->xmax)
	{
		uint64		hi = (s->xmax - lo > span) ? lo + span : s->xmax;
		int64		found;

		CHECK_FOR_INTERRUPTS();
		args[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(lo));
		args[1] = FullTransactionIdGetDatum(FullTransactionIdFromU64(hi));
		found = count_rows(c, s, sql.data, 2, types, args);
		if (found > 0 && c->total <= limit)
		{
			double		wanted = (double) (limit + 1 - c->total) * (hi - lo) / found;

			span = (uint64) Max(1.0, Min(wanted, 2.0 * span));
		}
		else
			span *= 2;
		lo = hi;
	}
	return taken_count(c, limit) == c->n;
}

#ifdef USE_ASSERT_CHECKING
static bool
in_running_list(const SnapshotParts *s, uint64 xid)
{
	for (int i = 0; i < s->nxip; i++)
		if (s->xip[i] == xid)
			return true;
	return false;
}

/* The invariant of the file header. */
static void
check_bound_snapshot(bool has_previous, const SnapshotParts *prev,
					 const SnapshotParts *s, const SnapshotParts *b,
					 const Candidates *c, int taken)
{
	/* visible(P) within visible(B): nothing P saw is taken back */
	if (has_previous)
	{
		Assert(b->xmax >= prev->xmax);
		Assert(b->xmin >= prev->xmin);
		for (int i = 0; i < b->nxip; i++)
			Assert(b->xip[i] >= prev->xmax || in_running_list(prev, b->xip[i]));
	}
	/* visible(B) within visible(S): nothing S does not see is taken */
	Assert(b->xmax <= s->xmax);
	for (int i = 0; i < s->nxip; i++)
		Assert(s->xip[i] >= b->xmax || in_running_list(b, s->xip[i]));
	/* a candidate is in the batch exactly when it was taken */
	for (int i = 0; i < c->n; i++)
		Assert(c->items[i].no_xid || visible_in(b, c->items[i].xid) == (i < taken));
}
#endif

/*
 * The snapshot the next batch of q ends at: S, every transaction committed
 * now (sa_committed_snapshot), or with a bound (sa_max_batch_rows) that S
 * would exceed, the snapshot B of the file header; *bounded says which.
 * Runs as the query's owner, inside the query's lock.
 */
Datum
sa_next_batch_snapshot(SaQuery *q, const SaCheckpoint *cp, bool *bounded)
{
	Datum		snapshot = sa_committed_snapshot();
	int64		limit = sa_max_batch_rows(&q->def);
	SnapshotParts prev = {0};
	SnapshotParts s;
	SnapshotParts b;
	Candidates	c = {0};
	int			taken;
	uint64		next;
	StringInfoData text;
	Datum		result;
	int			nestlevel;
	bool		all_taken;

	*bounded = false;
	if (limit <= 0)
		return snapshot;
	if (cp->has_consumed)
		parse_snapshot(cp->consumed_snapshot, &prev);
	parse_snapshot(snapshot, &s);

	/* so that the counts read only the ranges of new events */
	sa_summarize_source_ranges(q->def.source);

	/*
	 * Counting is a short scan: parallel workers cost more than they save
	 * (the setting is undone at the end of the nest level).
	 */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("max_parallel_workers_per_gather", "0",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	SPI_connect();
	all_taken = collect_candidates(q, cp->has_consumed, &prev, &s, limit, &c);
	SPI_finish();
	AtEOXact_GUC(false, nestlevel);
	if (all_taken)
		return snapshot;

	/* the counting stopped at the first transaction left for later */
	taken = taken_count(&c, limit);
	Assert(taken < c.n && !c.items[taken].no_xid);
	next = c.items[taken].xid;

	b.xmax = Max(next, prev.xmax);
	b.nxip = 0;
	b.xip = palloc(sizeof(uint64) * (s.nxip + c.n));
	for (int i = 0; i < s.nxip && s.xip[i] < b.xmax; i++)
		b.xip[b.nxip++] = s.xip[i];
	for (int i = taken; i < c.n && c.items[i].xid < b.xmax; i++)
		b.xip[b.nxip++] = c.items[i].xid;
	/* both parts ascend; sort them together (pg_snapshot wants them sorted) */
	for (int i = 1; i < b.nxip; i++)
		for (int j = i; j > 0 && b.xip[j - 1] > b.xip[j]; j--)
		{
			uint64		tmp = b.xip[j];

			b.xip[j] = b.xip[j - 1];
			b.xip[j - 1] = tmp;
		}
	b.xmin = b.nxip > 0 ? b.xip[0] : b.xmax;
#ifdef USE_ASSERT_CHECKING
	check_bound_snapshot(cp->has_consumed, &prev, &s, &b, &c, taken);
#endif

	initStringInfo(&text);
	appendStringInfo(&text, UINT64_FORMAT ":" UINT64_FORMAT ":", b.xmin, b.xmax);
	for (int i = 0; i < b.nxip; i++)
		appendStringInfo(&text, "%s" UINT64_FORMAT, i > 0 ? "," : "", b.xip[i]);
	result = DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(text.data));
	*bounded = true;
	return result;
}
