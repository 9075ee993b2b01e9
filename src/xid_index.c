/*-------------------------------------------------------------------------
 *
 * xid_index.c
 *	  The streamagg_brin index access method: BRIN, minus the per-row cost
 *	  of inserting the same transaction id into the same block range again.
 *
 * create_query indexes each source's streamagg_xid column (DESIGN.md 4.2) so
 * that a trigger reads only the block ranges that can hold its batch.  A
 * plain BRIN index does that, but every inserted row pays for a metapage
 * read and two buffer lock pairs to learn that its range's summary already
 * holds its value: with 100 000-row statements that was a third of the
 * producer's cost.  All the rows of one transaction carry the same value, so
 * this access method is BRIN (its handler, storage, scans, vacuum and
 * operator classes) with one change: aminsert remembers, per backend, the
 * (index, block range, value) triples it has already passed to brininsert in
 * the current transaction, and skips repeats.
 *
 * Why a skipped insert loses nothing: a BRIN scan returns every page of a
 * range that is unsummarized or whose summary is consistent with the scan
 * keys.  Once brininsert has returned for a row with value X in range R,
 * R's summary contains X, or R is unsummarized; and that stays true: a
 * summary only ever widens (union), and a summarization started later reads
 * the heap with SnapshotAny after inserting its placeholder, so it sees
 * every row already in the heap, while brininsert folds X into a placeholder
 * that was already there.  (BRIN's own argument, in brin.c.)  Desummarizing a
 * range would break this, but brin_desummarize_range() accepts only indexes
 * of the built-in brin access method; so does brin_summarize_range(), which
 * is why autosummarize, which calls it from autovacuum, is refused here.
 * VACUUM still summarizes the new ranges.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/amapi.h"
#include "access/brin.h"
#include "access/brin_internal.h"
#include "storage/proc.h"
#include "utils/fmgrprotos.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(xid_brin_handler);

/*
 * One remembered insert.  Entries of an earlier transaction (another local
 * transaction id) never match, so the memo needs no reset at transaction end;
 * the relfilenode makes a REINDEX or TRUNCATE in the same transaction start
 * afresh.
 */
typedef struct CoveredRange
{
	LocalTransactionId lxid;
	Oid			index;
	Oid			relfilenode;
	BlockNumber range;
	Datum		value;
} CoveredRange;

/* Direct-mapped: a collision costs one brininsert, never a wrong skip. */
#define COVERED_SLOTS 64

static CoveredRange covered[COVERED_SLOTS];

static bytea *xid_brin_options(Datum reloptions, bool validate);
static bool xid_brin_insert(Relation index, Datum *values, bool *isnull,
							ItemPointer heap_tid, Relation heap,
							IndexUniqueCheck checkUnique, bool indexUnchanged,
							IndexInfo *indexInfo);

/* The handler of access method streamagg_brin: BRIN's, two members swapped. */
Datum
xid_brin_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *routine;

	routine = (IndexAmRoutine *)
		DatumGetPointer(DirectFunctionCall1(brinhandler, (Datum) 0));
	routine->aminsert = xid_brin_insert;
	routine->amoptions = xid_brin_options;
	PG_RETURN_POINTER(routine);
}

/* BRIN's reloptions, but autosummarize would fail in autovacuum: refuse it. */
static bytea *
xid_brin_options(Datum reloptions, bool validate)
{
	BrinOptions *options = (BrinOptions *) brinoptions(reloptions, validate);

	if (options != NULL && options->autosummarize && validate)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("index access method \"streamagg_brin\" does not support autosummarize"),
				 errhint("VACUUM summarizes new block ranges.")));
	return (bytea *) options;
}

static bool
xid_brin_insert(Relation index, Datum *values, bool *isnull,
				ItemPointer heap_tid, Relation heap,
				IndexUniqueCheck checkUnique, bool indexUnchanged,
				IndexInfo *indexInfo)
{
	BrinOptions *options = (BrinOptions *) index->rd_options;
	BlockNumber pages_per_range;
	BlockNumber range;
	CoveredRange *slot;

	/* only a single by-value key can be remembered cheaply */
	if (RelationGetDescr(index)->natts != 1 || isnull[0] ||
		!TupleDescAttr(RelationGetDescr(index), 0)->attbyval)
		return brininsert(index, values, isnull, heap_tid, heap,
						  checkUnique, indexUnchanged, indexInfo);

	pages_per_range = options ? options->pagesPerRange :
		BRIN_DEFAULT_PAGES_PER_RANGE;
	range = ItemPointerGetBlockNumber(heap_tid) / pages_per_range;
	slot = &covered[(RelationGetRelid(index) * 31 + range) % COVERED_SLOTS];
	if (slot->lxid == MyProc->lxid &&
		slot->index == RelationGetRelid(index) &&
		slot->relfilenode == index->rd_node.relNode &&
		slot->range == range &&
		slot->value == values[0])
		return false;

	brininsert(index, values, isnull, heap_tid, heap,
			   checkUnique, indexUnchanged, indexInfo);

	slot->lxid = MyProc->lxid;
	slot->index = RelationGetRelid(index);
	slot->relfilenode = index->rd_node.relNode;
	slot->range = range;
	slot->value = values[0];
	return false;
}
