/*-------------------------------------------------------------------------
 *
 * aggregate.h
 *	  Calling an aggregate's own support functions (aggregate.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_AGGREGATE_H
#define STREAMAGG_AGGREGATE_H

#include "streamagg.h"

typedef struct SaAggRuntime SaAggRuntime;
extern SaAggRuntime *sa_agg_runtime_create(void);
extern void sa_agg_runtime_destroy(SaAggRuntime *rt);
extern void sa_agg_setup(SaAggregate *agg, Aggref *aggref, const char *name,
						 int firstarg, int filterarg);
extern void sa_agg_check_privileges(const SaAggregate *agg);
extern bool sa_agg_needs_nulled_flag(const SaAggregate *agg);
extern void sa_agg_check_storable(Oid aggfnoid, Oid transtype,
								  const char *aggname);
extern void sa_aggs_share_states(SaQuery *q, List *aggrefs);
extern void sa_aggs_init(SaAggRuntime *rt, const SaQuery *q, Datum *states,
						 bool *isnull);
extern void sa_aggs_advance(SaAggRuntime *rt, const SaQuery *q,
							Datum *states, bool *isnull,
							Datum *values, bool *nulls);
extern void sa_aggs_combine(SaAggRuntime *rt, const SaQuery *q,
							Datum *states, bool *isnull,
							const Datum *others, const bool *other_isnull);
extern Datum sa_agg_finalize(SaAggRuntime *rt, SaAggregate *agg,
							 Datum state, bool isnull, bool *result_isnull);
extern MinimalTuple sa_aggs_form_stored(SaAggRuntime *rt, const SaQuery *q,
										const Datum *live,
										const bool *livenulls);
extern void sa_aggs_finalize_stored(SaAggRuntime *rt, const SaQuery *q,
									MinimalTuple stored, Datum *results,
									bool *resultnulls);
extern void sa_aggs_finalize_live(SaAggRuntime *rt, const SaQuery *q,
								  Datum *live, bool *livenulls,
								  Datum *results, bool *resultnulls);
extern void sa_aggs_deform_stored(SaAggRuntime *rt, const SaQuery *q,
								  MinimalTuple stored, Datum *live,
								  bool *livenulls);

#endif							/* STREAMAGG_AGGREGATE_H */
