/*-------------------------------------------------------------------------
 *
 * distinct.c
 *	  DISTINCT inside aggregates (docs/semantics.md §15): per group, the set
 *	  of distinct arguments seen, in the order nodeAgg feeds them.
 *
 * The value of an aggregate called with DISTINCT depends only on the set of
 * distinct argument values of its group: nodeAgg sorts the inputs with each
 * argument's default sort operator (the aggregate's aggdistinct clauses,
 * NULLs where they put them), skips those equal to the one before, and
 * feeds the rest to the transition function in that order
 * (process_ordered_aggregate_single and _multi).  So a group keeps that set
 * instead of a transition state, and aggregate.c computes the value from
 * it whenever a row is emitted, feeding the elements in the same order.
 * Merging two groups (panes of sliding windows, sessions) is the union of
 * their sets, whatever combine function the aggregate has.
 *
 * Elements are compared with the sort operators' comparison functions
 * (SortSupport); equality by them is the equality of the same btree
 * operator family, which is what nodeAgg uses to skip duplicates.  Which
 * of two equal values with different forms (numeric 1.0 and 1.00) is kept
 * is left open, as in PostgreSQL, where it depends on the sort.  Which
 * rows reach the set at all (FILTER, NULL arguments of strict transition
 * functions) is decided by the callers, group.c and aggregate.c.
 *
 * A set lives in one memory context: the elements read from its stored
 * form (sorted, searched by bisection) and, in a red-black tree, those
 * added since.  Its stored form, in shared memory and the state log, is
 * one sorted array per argument (argument i of element k is element k of
 * array i), in attributes of the query's stored states that definition.c
 * assigns (the first in the aggregate's own attribute).  So the set is
 * counted in state_memory_bytes like any state, and bounded by
 * streamagg.max_state_memory.
 *
 * This file knows nothing of transition functions, windows or groups.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "catalog/pg_type.h"
#include "lib/rbtree.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/sortsupport.h"

#include "distinct.h"

/* What a query compiles for one aggregate called with DISTINCT. */
struct SaDistinct
{
	int			nargs;
	Oid		   *argtypes;
	int16	   *typlens;
	bool	   *typbyvals;
	char	   *typaligns;
	Oid		   *arraytypes;
	int		   *attnos;			/* stored attribute of each argument's
								 * array (0-based), set by definition.c */
	/* the order of elements: argument keyargs[k] compared by sortkeys[k] */
	int		   *keyargs;
	Oid		   *sortops;
	SortSupportData *sortkeys;
};

/* Lives in its memory context, with everything it points to. */
struct SaDistinctSet
{
	const SaDistinct *d;
	MemoryContext cxt;
	int			nbase;			/* elements of the stored form, sorted */
	Datum	   *base_values;	/* nbase * nargs values, element after
								 * element */
	bool	   *base_nulls;
	RBTree	   *added;			/* elements added since, none in base */
	int64		nadded;
};

/* An element added to a set: its nargs values, then nargs NULL flags. */
typedef struct AddedElement
{
	RBTNode		rbtnode;
	Datum		values[FLEXIBLE_ARRAY_MEMBER];
} AddedElement;

#define ELEMENT_NULLS(element, nargs) ((bool *) ((element)->values + (nargs)))

static Size
element_size(const SaDistinct *d)
{
	return offsetof(AddedElement, values) +
		d->nargs * (sizeof(Datum) + sizeof(bool));
}

/*
 * The arguments of an aggregate called with DISTINCT, and their order as
 * the parser gave it (aggdistinct: one clause per argument, since DISTINCT
 * applies to all of them).  A type without an array type cannot be
 * stored, nor can anonymous records, whose type exists only in one
 * backend.  Allocates in the current memory context (the query's).
 */
SaDistinct *
sa_distinct_setup(Aggref *aggref, const char *name)
{
	SaDistinct *d = palloc0(sizeof(SaDistinct));
	int			nargs = list_length(aggref->args);
	int			k = 0;

	Assert(aggref->aggdistinct != NIL);
	d->nargs = nargs;
	d->argtypes = palloc(sizeof(Oid) * nargs);
	d->typlens = palloc(sizeof(int16) * nargs);
	d->typbyvals = palloc(sizeof(bool) * nargs);
	d->typaligns = palloc(sizeof(char) * nargs);
	d->arraytypes = palloc(sizeof(Oid) * nargs);
	d->attnos = palloc(sizeof(int) * nargs);
	d->keyargs = palloc(sizeof(int) * nargs);
	d->sortops = palloc(sizeof(Oid) * nargs);
	d->sortkeys = palloc0(sizeof(SortSupportData) * nargs);

	sa_foreach_node(TargetEntry, arg, aggref->args)
	{
		int			i = arg->resno - 1;
		Oid			type = exprType((Node *) arg->expr);

		Assert(i >= 0 && i < nargs && !arg->resjunk);
		d->argtypes[i] = type;
		get_typlenbyvalalign(type, &d->typlens[i], &d->typbyvals[i],
							 &d->typaligns[i]);
		d->arraytypes[i] = get_array_type(type);
		d->attnos[i] = -1;
		if (type == RECORDOID)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("DISTINCT over values of type %s is not supported in aggregate \"%s\"",
							format_type_be(type), name),
					 errdetail("The type of an anonymous row exists only in one session, so its values cannot be stored."),
					 errhint("Give the row's fields as separate arguments, or cast the row to a composite type.")));
		if (!OidIsValid(d->arraytypes[i]))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("DISTINCT over values of type %s is not supported in aggregate \"%s\"",
							format_type_be(type), name),
					 errdetail("A streaming query stores the distinct values of a group as an array, and there are no arrays of type %s.",
							   format_type_be(type)),
					 errhint("Aggregate another form of the values, such as their text.")));
	}

	sa_foreach_node(SortGroupClause, clause, aggref->aggdistinct)
	{
		TargetEntry *arg = get_sortgroupclause_tle(clause, aggref->args);
		SortSupport ssup = &d->sortkeys[k];

		if (k >= nargs || !OidIsValid(clause->sortop))
			elog(ERROR, "unexpected DISTINCT clause in aggregate \"%s\"", name);
		d->keyargs[k] = arg->resno - 1;
		d->sortops[k] = clause->sortop;
		ssup->ssup_cxt = CurrentMemoryContext;
		ssup->ssup_collation = exprCollation((Node *) arg->expr);
		ssup->ssup_nulls_first = clause->nulls_first;
		ssup->ssup_attno = k + 1;
		ssup->abbreviate = false;
		PrepareSortSupportFromOrderingOp(clause->sortop, ssup);
		k++;
	}
	if (k != nargs)
		elog(ERROR, "aggregate \"%s\" has %d arguments but %d DISTINCT clauses",
			 name, nargs, k);
	return d;
}

int
sa_distinct_nargs(const SaDistinct *d)
{
	return d->nargs;
}

/* The type of the stored array of an argument. */
Oid
sa_distinct_stored_type(const SaDistinct *d, int arg)
{
	Assert(arg >= 0 && arg < d->nargs);
	return d->arraytypes[arg];
}

/* Where the stored array of an argument goes (definition.c decides). */
void
sa_distinct_set_attno(SaDistinct *d, int arg, int attno)
{
	Assert(arg >= 0 && arg < d->nargs);
	d->attnos[arg] = attno;
}

int
sa_distinct_attno(const SaDistinct *d, int arg)
{
	Assert(arg >= 0 && arg < d->nargs && d->attnos[arg] >= 0);
	return d->attnos[arg];
}

/*
 * The stored form as text, for the state signature (definition.c): the
 * arguments' types and collations and the operators that order them.
 */
void
sa_distinct_describe(const SaDistinct *d, StringInfo buf)
{
	appendStringInfoString(buf, " distinct(");
	for (int k = 0; k < d->nargs; k++)
	{
		int			i = d->keyargs[k];

		appendStringInfo(buf, "%s%s collation %u by %u%s",
						 k > 0 ? ", " : "", format_type_be(d->argtypes[i]),
						 d->sortkeys[k].ssup_collation, d->sortops[k],
						 d->sortkeys[k].ssup_nulls_first ? " nulls first" : "");
	}
	appendStringInfoChar(buf, ')');
}

/*
 * Compare two elements in the order of the aggregate's DISTINCT clauses;
 * 0 means equal (NULL equals NULL, as DISTINCT has it).
 */
static int
compare_elements(const SaDistinct *d, const Datum *av, const bool *an,
				 const Datum *bv, const bool *bn)
{
	for (int k = 0; k < d->nargs; k++)
	{
		int			i = d->keyargs[k];
		int			c = ApplySortComparator(av[i], an[i], bv[i], bn[i],
											&d->sortkeys[k]);

		if (c != 0)
			return c;
	}
	return 0;
}

static int
compare_added(const RBTNode *a, const RBTNode *b, void *arg)
{
	const SaDistinct *d = ((SaDistinctSet *) arg)->d;
	const AddedElement *ea = (const AddedElement *) a;
	const AddedElement *eb = (const AddedElement *) b;

	return compare_elements(d, ea->values, ELEMENT_NULLS(ea, d->nargs),
							eb->values, ELEMENT_NULLS(eb, d->nargs));
}

/* An element equal to one in the tree changes nothing. */
static void
keep_existing(RBTNode *existing, const RBTNode *newdata, void *arg)
{
}

static RBTNode *
alloc_added(void *arg)
{
	SaDistinctSet *set = arg;

	return MemoryContextAlloc(set->cxt, element_size(set->d));
}

/* A new empty set in cxt. */
SaDistinctSet *
sa_distinct_set_create(const SaDistinct *d, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	SaDistinctSet *set = palloc0(sizeof(SaDistinctSet));

	set->d = d;
	set->cxt = cxt;
	/* elements are never freed: they go with the context */
	set->added = rbt_create(element_size(d), compare_added, keep_existing,
							alloc_added, NULL, set);
	MemoryContextSwitchTo(old);
	return set;
}

/* Is the element among those of the stored form?  By bisection. */
static bool
base_contains(const SaDistinctSet *set, const Datum *values, const bool *nulls)
{
	int			nargs = set->d->nargs;
	int			lo = 0;
	int			hi = set->nbase;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = compare_elements(set->d, set->base_values + mid * nargs,
										 set->base_nulls + mid * nargs,
										 values, nulls);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * A value that the set can keep: in its memory context, neither toasted nor
 * expanded nor with a short header, so that arrays and comparisons take it
 * as it is.
 */
static Datum
keepable_value(const SaDistinctSet *set, int arg, Datum value)
{
	MemoryContext old = MemoryContextSwitchTo(set->cxt);
	const SaDistinct *d = set->d;
	Datum		result;

	if (d->typlens[arg] == -1 &&
		VARATT_IS_EXTENDED(DatumGetPointer(value)))
		result = PointerGetDatum(detoast_attr((struct varlena *) DatumGetPointer(value)));
	else
		result = datumCopy(value, d->typbyvals[arg], d->typlens[arg]);
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * Add an element (one value per argument) unless the set has an equal
 * one.  The values are copied when they are new; the caller's may be
 * anywhere.  Garbage of comparisons goes to the current memory context.
 */
void
sa_distinct_add(SaDistinctSet *set, Datum *values, bool *nulls)
{
	const SaDistinct *d = set->d;
	AddedElement *probe;
	AddedElement *element;
	bool		isnew;

	if (base_contains(set, values, nulls))
		return;
	probe = palloc(element_size(d));
	memcpy(probe->values, values, sizeof(Datum) * d->nargs);
	memcpy(ELEMENT_NULLS(probe, d->nargs), nulls, sizeof(bool) * d->nargs);
	element = (AddedElement *) rbt_insert(set->added, &probe->rbtnode, &isnew);
	pfree(probe);
	if (!isnew)
		return;
	/* the tree's copy points to the caller's values: keep them */
	for (int i = 0; i < d->nargs; i++)
		if (!nulls[i] && !d->typbyvals[i])
			element->values[i] = keepable_value(set, i, values[i]);
	set->nadded++;
}

/*
 * Call visit for every element, in the order nodeAgg feeds the transition
 * function: a merge of the stored elements and the added ones.  The
 * values passed point into the set.
 */
void
sa_distinct_walk(const SaDistinctSet *set, SaDistinctVisitor visit, void *arg)
{
	const SaDistinct *d = set->d;
	int			nargs = d->nargs;
	RBTreeIterator iter;
	AddedElement *next;
	int			b = 0;

	rbt_begin_iterate(set->added, LeftRightWalk, &iter);
	next = (AddedElement *) rbt_iterate(&iter);
	while (b < set->nbase || next != NULL)
	{
		Datum	   *bv = set->base_values + b * nargs;
		bool	   *bn = set->base_nulls + b * nargs;

		if (next == NULL ||
			(b < set->nbase &&
			 compare_elements(d, bv, bn, next->values,
							  ELEMENT_NULLS(next, nargs)) < 0))
		{
			visit(arg, bv, bn);
			b++;
		}
		else
		{
			/* added elements are never equal to stored ones */
			Assert(b >= set->nbase ||
				   compare_elements(d, bv, bn, next->values,
									ELEMENT_NULLS(next, nargs)) > 0);
			visit(arg, next->values, ELEMENT_NULLS(next, nargs));
			next = (AddedElement *) rbt_iterate(&iter);
		}
	}
}

static void
add_visitor(void *arg, Datum *values, bool *nulls)
{
	sa_distinct_add((SaDistinctSet *) arg, values, nulls);
}

/* Add every element of "other" to "set" (both of the same aggregate). */
void
sa_distinct_union(SaDistinctSet *set, const SaDistinctSet *other)
{
	Assert(set != other && set->d == other->d);
	sa_distinct_walk(other, add_visitor, set);
}

/* The arrays of a stored form as they are filled. */
typedef struct StoredArrays
{
	const SaDistinct *d;
	Datum	  **values;			/* per argument */
	bool	  **nulls;
	int			n;
} StoredArrays;

static void
collect_visitor(void *arg, Datum *values, bool *nulls)
{
	StoredArrays *s = arg;

	for (int i = 0; i < s->d->nargs; i++)
	{
		s->values[i][s->n] = values[i];
		s->nulls[i][s->n] = nulls[i];
	}
	s->n++;
}

/*
 * The stored form of a set, in the current memory context: one sorted
 * array per argument, each at its attribute of "stored" (see the file
 * header).
 */
void
sa_distinct_to_stored(const SaDistinctSet *set, Datum *stored,
					  bool *storednulls)
{
	const SaDistinct *d = set->d;
	int64		total = set->nbase + set->nadded;
	StoredArrays s;

	if (total > MaxArraySize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a group of a streaming query has more than %d distinct values",
						(int) MaxArraySize)));
	s.d = d;
	s.n = 0;
	s.values = palloc(sizeof(Datum *) * d->nargs);
	s.nulls = palloc(sizeof(bool *) * d->nargs);
	for (int i = 0; i < d->nargs; i++)
	{
		s.values[i] = palloc(sizeof(Datum) * (total + 1));
		s.nulls[i] = palloc(sizeof(bool) * (total + 1));
	}
	sa_distinct_walk(set, collect_visitor, &s);
	Assert(s.n == total);
	for (int i = 0; i < d->nargs; i++)
	{
		int			dims[1] = {s.n};
		int			lbs[1] = {1};
		ArrayType  *array;

		array = s.n == 0 ? construct_empty_array(d->argtypes[i]) :
			construct_md_array(s.values[i], s.nulls[i], 1, dims, lbs,
							   d->argtypes[i], d->typlens[i],
							   d->typbyvals[i], d->typaligns[i]);
		stored[d->attnos[i]] = PointerGetDatum(array);
		storednulls[d->attnos[i]] = false;
	}
}

/*
 * A set from its stored form (the attributes of a stored states tuple), in
 * cxt.  Arrays of different lengths are corruption.
 */
SaDistinctSet *
sa_distinct_from_stored(const SaDistinct *d, const Datum *stored,
						const bool *storednulls, MemoryContext cxt)
{
	SaDistinctSet *set = sa_distinct_set_create(d, cxt);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	int			nargs = d->nargs;
	int			n = -1;

	for (int i = 0; i < nargs; i++)
	{
		int			attno = d->attnos[i];
		Datum	   *elements = NULL;
		bool	   *elementnulls = NULL;
		int			count = 0;

		if (!storednulls[attno])
		{
			ArrayType  *array = DatumGetArrayTypePCopy(stored[attno]);

			if (ARR_ELEMTYPE(array) != d->argtypes[i] || ARR_NDIM(array) > 1)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("stored DISTINCT values have an unexpected form")));
			deconstruct_array(array, d->argtypes[i], d->typlens[i],
							  d->typbyvals[i], d->typaligns[i], &elements,
							  &elementnulls, &count);
		}
		if (n >= 0 && count != n)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("stored DISTINCT values have arrays of different lengths")));
		if (n < 0)
		{
			n = count;
			set->base_values = palloc(sizeof(Datum) * (n * nargs + 1));
			set->base_nulls = palloc(sizeof(bool) * (n * nargs + 1));
		}
		for (int e = 0; e < count; e++)
		{
			set->base_values[e * nargs + i] = elements[e];
			set->base_nulls[e * nargs + i] = elementnulls[e];
		}
	}
	set->nbase = n;
	MemoryContextSwitchTo(old);

#ifdef USE_ASSERT_CHECKING
	/* what a group stored it wrote sorted, without duplicates */
	for (int e = 1; e < set->nbase; e++)
		Assert(compare_elements(d, set->base_values + (e - 1) * nargs,
								set->base_nulls + (e - 1) * nargs,
								set->base_values + e * nargs,
								set->base_nulls + e * nargs) < 0);
#endif
	return set;
}
