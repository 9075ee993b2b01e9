/*-------------------------------------------------------------------------
 *
 * distinct.h
 *	  DISTINCT inside aggregates: the set of distinct arguments a group has
 *	  seen, its order and its stored form (distinct.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_DISTINCT_H
#define STREAMAGG_DISTINCT_H

#include "streamagg.h"

#include "lib/stringinfo.h"

typedef struct SaDistinct SaDistinct;
typedef struct SaDistinctSet SaDistinctSet;

/* Called for each element of a set, in order: one value per argument. */
typedef void (*SaDistinctVisitor) (void *arg, Datum *values, bool *nulls);

/* compile time */
extern SaDistinct *sa_distinct_setup(Aggref *aggref, const char *name);
extern int	sa_distinct_nargs(const SaDistinct *d);
extern Oid	sa_distinct_stored_type(const SaDistinct *d, int arg);
extern void sa_distinct_set_attno(SaDistinct *d, int arg, int attno);
extern int	sa_distinct_attno(const SaDistinct *d, int arg);
extern void sa_distinct_describe(const SaDistinct *d, StringInfo buf);

/* sets */
extern SaDistinctSet *sa_distinct_set_create(const SaDistinct *d,
											 MemoryContext cxt);
extern void sa_distinct_add(SaDistinctSet *set, Datum *values, bool *nulls);
extern void sa_distinct_union(SaDistinctSet *set, const SaDistinctSet *other);
extern void sa_distinct_walk(const SaDistinctSet *set,
							 SaDistinctVisitor visit, void *arg);
extern void sa_distinct_to_stored(const SaDistinctSet *set, Datum *stored,
								  bool *storednulls);
extern SaDistinctSet *sa_distinct_from_stored(const SaDistinct *d,
											  const Datum *stored,
											  const bool *storednulls,
											  MemoryContext cxt);

#endif							/* STREAMAGG_DISTINCT_H */
