/*-------------------------------------------------------------------------
 *
 * xid_index.c
 *	  The streamagg_brin index access method: BRIN, minus the per-row cost
 *	  of inserting the same transaction id into the same block range again.
 *
 * create_query indexes each source's streamagg_xid column (batch.c) so
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
 * R's summary contains X, or R is unsummarized; and that stays true while
 * the row lives: a summary only ever widens (union), and a summarization
 * started later reads the heap with SnapshotAny after inserting its
 * placeholder, so it sees every live row already in the heap, while
 * brininsert folds X into a placeholder that was already there.  (BRIN's
 * own argument, in brin.c.)  A row that dies before R is summarized breaks
 * it: the summary may then lack X while the transaction goes on inserting
 * X into R.  So the memo forgets everything when a subtransaction aborts
 * (a savepoint rolled back), and never remembers a row inserted
 * speculatively (INSERT ... ON CONFLICT may still kill it).  The memo takes
 * R from the block-range size of BRIN's metapage, not from the index's
 * options, which ALTER INDEX changes before a REINDEX rebuilds the index
 * with it.  Desummarizing a range would break the argument too, but
 * brin_desummarize_range() accepts only indexes of the built-in brin access
 * method; so does brin_summarize_range(), which is why autosummarize, which
 * calls it from autovacuum, is refused here.
 *
 * The insert path sees every row that reaches a source, whichever way
 * (INSERT, COPY, logical replication, a partition's own inserts), so it is
 * where two rules are kept: a row's streamagg_xid must be the id of the
 * transaction inserting it (a copied, explicit or NULL value would be
 * counted wrongly or never: such rows are refused, unless
 * streamagg.allow_source_changes is on), and the commit of that
 * transaction wakes the workers of the source (init.c), even where the
 * source's statement trigger does not fire.
 *
 * Instead, each trigger summarizes its source's new ranges before reading
 * its batch, once the source has grown by a whole range since this backend
 * last did so (sa_summarize_source_ranges).  Without that a trigger's bitmap
 * scan would return every range filled since the last VACUUM: the cost of
 * a trigger would grow with the history instead of the batch.  Only indexes
 * of streamagg's own shape are summarized (the plain streamagg_xid column,
 * no expression, no predicate: nothing that runs code of the table's
 * owner), and as the table's owner in a security-restricted operation, as
 * brin_summarize_range() does since CVE-2022-1552.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/amapi.h"
#include "access/brin.h"
#include "access/brin_internal.h"
#include "access/brin_page.h"
#include "access/genam.h"
#include "access/table.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "commands/defrem.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "init.h"
#include "security.h"
#include "source.h"
#include "xid_index.h"

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

/*
 * What this backend knows of one build of a streamagg_brin index: its
 * block-range size, read from its metapage as BRIN uses it, whether it is a
 * source's index on streamagg_xid, and that source (for a partition, its
 * top partitioned table).  Direct-mapped by index OID.
 */
typedef struct IndexFacts
{
	Oid			index;
	Oid			relfilenode;
	BlockNumber pages_per_range;
	bool		on_source_xid;
	Oid			source;
} IndexFacts;

#define FACTS_SLOTS 16

static IndexFacts facts[FACTS_SLOTS];

/*
 * Per index, the block up to which this backend summarized (or found
 * summarized) every whole range.  Direct-mapped: a collision costs one
 * more summarization pass, which skips the ranges already summarized.
 */
typedef struct SummarizedUpTo
{
	Oid			index;
	BlockNumber blocks;
} SummarizedUpTo;

#define SUMMARIZED_SLOTS 16

static SummarizedUpTo summarized[SUMMARIZED_SLOTS];

static bytea *xid_brin_options(Datum reloptions, bool validate);
static IndexBuildResult *xid_brin_build(Relation heap, Relation index,
										IndexInfo *indexInfo);
static void xid_brin_buildempty(Relation index);
static bool xid_brin_insert(Relation index, Datum *values, bool *isnull,
							ItemPointer heap_tid, Relation heap,
							IndexUniqueCheck checkUnique, bool indexUnchanged,
							IndexInfo *indexInfo);

/*
 * The handler of access method streamagg_brin: BRIN's, five members
 * swapped (the cost estimate: xid_index_cost.c).
 */
Datum
xid_brin_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *routine;

	routine = (IndexAmRoutine *)
		DatumGetPointer(DirectFunctionCall1(brinhandler, (Datum) 0));
	routine->ambuild = xid_brin_build;
	routine->ambuildempty = xid_brin_buildempty;
	routine->aminsert = xid_brin_insert;
	routine->amoptions = xid_brin_options;
	routine->amcostestimate = sa_xid_brin_costestimate;
	PG_RETURN_POINTER(routine);
}

/* The block-range size in the index's metapage: the one BRIN uses. */
static BlockNumber
metapage_pages_per_range(Relation index)
{
	Buffer		buf = ReadBuffer(index, BRIN_METAPAGE_BLKNO);
	BrinMetaPageData *meta;
	BlockNumber pages_per_range;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	meta = (BrinMetaPageData *) PageGetContents(BufferGetPage(buf));
	pages_per_range = meta->pagesPerRange;
	UnlockReleaseBuffer(buf);
	if (pages_per_range == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has no block-range size in its metapage",
						RelationGetRelationName(index))));
	return pages_per_range;
}

/*
 * Is "index" on the plain streamagg_xid column of "heap", without
 * expressions or a predicate: the kind of index create_query makes on a
 * source?  Summarizing it runs no user code.
 */
static bool
is_source_xid_index(Relation index, Oid heap)
{
	return index->rd_index->indnatts == 1 &&
		index->rd_index->indkey.values[0] == get_attnum(heap, SA_XID_COLUMN) &&
		heap_attisnull(index->rd_indextuple, Anum_pg_index_indexprs, NULL) &&
		heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL);
}

static IndexFacts *
index_facts(Relation index, Relation heap)
{
	IndexFacts *f = &facts[RelationGetRelid(index) % FACTS_SLOTS];

	if (f->index == RelationGetRelid(index) &&
		f->relfilenode == index->rd_node.relNode)
		return f;
	f->index = InvalidOid;		/* until complete */
	f->pages_per_range = metapage_pages_per_range(index);
	f->on_source_xid = is_source_xid_index(index, RelationGetRelid(heap));
	f->source = RelationGetRelid(heap);
	if (heap->rd_rel->relispartition)
		f->source = llast_oid(get_partition_ancestors(RelationGetRelid(heap)));
	f->relfilenode = index->rd_node.relNode;
	f->index = RelationGetRelid(index);
	return f;
}

/* A savepoint was rolled back: what its rows covered may be gone. */
void
sa_xid_index_subxact_abort(void)
{
	memset(covered, 0, sizeof(covered));
}

/*
 * Was the heap row at "tid" inserted speculatively (INSERT ... ON CONFLICT),
 * so that it may still be killed?  Tables of another access method are
 * treated as if always so: nothing is remembered for them.
 */
static bool
inserted_speculatively(Relation heap, ItemPointer tid)
{
	Buffer		buf;
	Page		page;
	ItemId		lp;
	bool		speculative = false;

	if (heap->rd_tableam != GetHeapamTableAmRoutine())
		return true;
	buf = ReadBuffer(heap, ItemPointerGetBlockNumber(tid));
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	lp = PageGetItemId(page, ItemPointerGetOffsetNumber(tid));
	if (ItemIdIsNormal(lp))
		speculative = HeapTupleHeaderIsSpeculative((HeapTupleHeader) PageGetItem(page, lp));
	UnlockReleaseBuffer(buf);
	return speculative;
}

/*
 * A row reaching a source must carry its inserting transaction's id (see
 * the file header); streamagg.allow_source_changes lets others in, for
 * repairs and restores, uncounted or counted late.
 */
static void
check_row_xid(Relation heap, Datum value, bool isnull)
{
	FullTransactionId inserter = GetTopFullTransactionIdIfAny();

	if (!isnull && FullTransactionIdIsValid(inserter) &&
		U64FromFullTransactionId(inserter) == DatumGetUInt64(value))
		return;
	if (sa_allow_source_changes)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("a row inserted into source \"%s\" must carry its transaction's id in \"%s\"",
					RelationGetRelationName(heap), SA_XID_COLUMN),
			 isnull ?
			 errdetail("The row has NULL there.") :
			 errdetail("The row has %llu there, its transaction is %llu.",
					   (unsigned long long) DatumGetUInt64(value),
					   (unsigned long long) U64FromFullTransactionId(inserter)),
			 errhint("Leave \"%s\" out of the column list of INSERT or COPY, so that its default fills it (rows copied between tables need an explicit column list).",
					 SA_XID_COLUMN)));
}

/*
 * BRIN's build and insert read the index's options with
 * BrinGetPagesPerRange() and BrinGetAutoSummarize(), which assert that the
 * index belongs to the brin access method: on a server built with
 * assertions, every CREATE INDEX and every insert into a source would fail
 * that assertion and take the server down.  Our options are BRIN's own
 * (xid_brin_options returns brinoptions' result), so while BRIN's code runs
 * on one of our indexes, the index's relcache entry names the brin access
 * method, and names ours again afterwards, error or not.  Nothing in those
 * calls looks the access method up by its OID: the relcache entry already
 * holds BRIN's routine and support functions.
 */
static IndexBuildResult *
xid_brin_build(Relation heap, Relation index, IndexInfo *indexInfo)
{
	Oid			am = index->rd_rel->relam;
	IndexBuildResult *result;

	index->rd_rel->relam = BRIN_AM_OID;
	PG_TRY();
	{
		result = brinbuild(heap, index, indexInfo);
	}
	PG_FINALLY();
	{
		index->rd_rel->relam = am;
	}
	PG_END_TRY();
	return result;
}

/* The init fork of an index on an unlogged source; see xid_brin_build. */
static void
xid_brin_buildempty(Relation index)
{
	Oid			am = index->rd_rel->relam;

	index->rd_rel->relam = BRIN_AM_OID;
	PG_TRY();
	{
		brinbuildempty(index);
	}
	PG_FINALLY();
	{
		index->rd_rel->relam = am;
	}
	PG_END_TRY();
}

/* brininsert, for a row the memo did not skip; see xid_brin_build. */
static void
brin_insert(Relation index, Datum *values, bool *isnull,
			ItemPointer heap_tid, Relation heap, IndexUniqueCheck checkUnique,
			bool indexUnchanged, IndexInfo *indexInfo)
{
	Oid			am = index->rd_rel->relam;

	index->rd_rel->relam = BRIN_AM_OID;
	PG_TRY();
	{
		(void) brininsert(index, values, isnull, heap_tid, heap, checkUnique,
						  indexUnchanged, indexInfo);
	}
	PG_FINALLY();
	{
		index->rd_rel->relam = am;
	}
	PG_END_TRY();
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
				 errhint("Triggers of streaming queries and VACUUM summarize new block ranges.")));
	return (bytea *) options;
}

static bool
xid_brin_insert(Relation index, Datum *values, bool *isnull,
				ItemPointer heap_tid, Relation heap,
				IndexUniqueCheck checkUnique, bool indexUnchanged,
				IndexInfo *indexInfo)
{
	IndexFacts *f = index_facts(index, heap);
	BlockNumber range;
	CoveredRange *slot;

	if (f->on_source_xid)
	{
		check_row_xid(heap, values[0], isnull[0]);
		sa_note_source_insert(f->source);
	}

	/* only a single by-value key can be remembered cheaply */
	if (RelationGetDescr(index)->natts != 1 || isnull[0] ||
		!TupleDescAttr(RelationGetDescr(index), 0)->attbyval)
	{
		brin_insert(index, values, isnull, heap_tid, heap, checkUnique,
					indexUnchanged, indexInfo);
		return false;
	}

	range = ItemPointerGetBlockNumber(heap_tid) / f->pages_per_range;
	slot = &covered[(RelationGetRelid(index) * 31 + range) % COVERED_SLOTS];
	if (slot->lxid == MyProc->lxid &&
		slot->index == RelationGetRelid(index) &&
		slot->relfilenode == index->rd_node.relNode &&
		slot->range == range &&
		slot->value == values[0])
		return false;

	brin_insert(index, values, isnull, heap_tid, heap, checkUnique,
				indexUnchanged, indexInfo);

	if (inserted_speculatively(heap, heap_tid))
		return false;
	slot->lxid = MyProc->lxid;
	slot->index = RelationGetRelid(index);
	slot->relfilenode = index->rd_node.relNode;
	slot->range = range;
	slot->value = values[0];
	return false;
}

/*
 * Summarize the whole block ranges of one index that are not summarized
 * yet, as VACUUM does (brinvacuumcleanup, which also tidies the index's
 * pages).  Returns false, having done nothing, when another backend holds
 * a conflicting lock (a VACUUM, an ANALYZE, another summarizer): the next
 * trigger tries again.
 */
static bool
summarize_index(Relation heap, Oid indexid)
{
	IndexVacuumInfo info;
	Relation	index;

	if (!ConditionalLockRelation(heap, ShareUpdateExclusiveLock))
		return false;
	if (!ConditionalLockRelationOid(indexid, ShareUpdateExclusiveLock))
	{
		UnlockRelation(heap, ShareUpdateExclusiveLock);
		return false;
	}
	index = index_open(indexid, NoLock);
	memset(&info, 0, sizeof(info));
	info.index = index;
	info.estimated_count = true;
	info.message_level = DEBUG2;
	info.num_heap_tuples = -1;
	pfree(brinvacuumcleanup(&info, NULL));
	index_close(index, NoLock);
	/* like VACUUM, let the next summarizer in before this transaction ends */
	UnlockRelationOid(indexid, ShareUpdateExclusiveLock);
	UnlockRelation(heap, ShareUpdateExclusiveLock);
	return true;
}

/*
 * One table's part of sa_summarize_source_ranges: its streamagg_xid
 * indexes, if it has grown by a whole range since this backend last looked.
 */
static void
summarize_table_ranges(Oid table, Oid am)
{
	Relation	heap = table_open(table, AccessShareLock);
	List	   *indexes = RelationGetIndexList(heap);
	BlockNumber blocks = RelationGetNumberOfBlocks(heap);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Oid			indexid = lfirst_oid(lc);
		SummarizedUpTo *slot = &summarized[indexid % SUMMARIZED_SLOTS];
		Relation	index = index_open(indexid, AccessShareLock);
		bool		ours = index->rd_rel->relam == am && index->rd_index->indisvalid &&
			is_source_xid_index(index, table);
		BlockNumber per_range = ours ? index_facts(index, heap)->pages_per_range : 0;
		SaRoleSave	table_owner;
		bool		done;

		index_close(index, NoLock);
		if (!ours)
			continue;
		if (slot->index != indexid || slot->blocks > blocks)
		{
			slot->index = indexid;
			slot->blocks = 0;
		}
		if (blocks - slot->blocks < per_range)
			continue;
		sa_user_code_begin(heap->rd_rel->relowner, &table_owner);
		done = summarize_index(heap, indexid);
		sa_user_code_end(&table_owner);
		if (!done)
			continue;
		/* brinsummarize leaves out the last range while it is partial */
		slot->blocks = blocks - blocks % per_range;
	}
	list_free(indexes);
	table_close(heap, NoLock);
}

/*
 * Before a trigger reads its batch: summarize the new whole block ranges of
 * the source's streamagg_brin indexes (of each partition, for a partitioned
 * source).  A range is summarized once; batch reads then skip it unless it
 * holds the batch's transactions.
 */
void
sa_summarize_source_ranges(Oid source)
{
	Oid			am = get_index_am_oid("streamagg_brin", true);
	List	   *tables;
	ListCell   *lc;

	if (!OidIsValid(am))
		return;
	if (get_rel_relkind(source) == RELKIND_PARTITIONED_TABLE)
		tables = find_all_inheritors(source, AccessShareLock, NULL);
	else
		tables = list_make1_oid(source);
	foreach(lc, tables)
	{
		if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_RELATION)
			summarize_table_ranges(lfirst_oid(lc), am);
	}
	list_free(tables);
}
