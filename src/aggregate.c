/*-------------------------------------------------------------------------
 *
 * aggregate.c
 *	  Calling an aggregate's own support functions, as nodeAgg.c does.
 *
 * Each aggregate of a query is looked up in pg_aggregate once, at compile
 * time; a trigger then calls its transition function per row, its final
 * function at emission, and its serialization functions to store the state.
 * Nothing here knows about windows, keys or sinks.
 *
 * Transition and final functions see a minimal AggState as their context,
 * so that AggCheckCallContext() works, with nodeAgg's two contexts: the
 * aggregate context, where states live (a child of the trigger's context,
 * gone when the trigger ends), and a temporary context for one call, which
 * a support function may reset (AggGetTempMemoryContext).  States therefore
 * live for one trigger only; between triggers they are kept in their stored
 * form (sa_aggs_form_stored), which is self-contained.
 *
 * The rules for strict transition functions are nodeAgg's
 * (advance_transition_function): with a NULL initial value the first
 * non-NULL input becomes the state; a state that the function later made
 * NULL stays NULL, and the function is not called again.  The two NULL
 * states differ only in their Datum (SA_NO_VALUE, SA_NULLED_STATE), and in
 * the stored form by a flag per such aggregate (SaAggregate.nulled_attno).
 *
 * Aggregates that would compute the same transition state share it, as in
 * nodeAgg (find_compatible_trans): sum(x) and avg(x) advance one state per
 * row, which is serialized once and deserialized once.  The sharing
 * aggregate's entry in a states array is an alias of the shared one (the
 * same Datum), set by every function below that changes the states; its
 * stored attribute holds the same serialized value, so the stored form does
 * not depend on sharing.
 *
 * An aggregate called with DISTINCT keeps, instead of a transition state,
 * the set of its distinct arguments (distinct.c); its value is computed
 * from the set when a row is finalized, in a runtime of its own (see
 * finalize_distinct), by feeding the elements to the transition function
 * as nodeAgg does.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/htup_details.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/makefuncs.h"
#include "parser/parse_agg.h"
#include "parser/parse_coerce.h"
#include "utils/acl.h"
#include "utils/regproc.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/expandeddatum.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "aggregate.h"
#include "distinct.h"

/*
 * The Datum of a NULL state: still waiting for its first input (strict
 * transition function, NULL initial value), or made NULL by the transition
 * function, after which it stays NULL.
 */
#define SA_NO_VALUE ((Datum) 0)
#define SA_NULLED_STATE ((Datum) 1)

static void advance_transition(SaAggRuntime *rt, SaAggregate *agg,
							   Datum *state, bool *isnull, Datum *args,
							   bool *argnulls);

/* Lives in the trigger's memory context. */
struct SaAggRuntime
{
	AggState   *aggstate;		/* passed as fcinfo->context */
	ExprContext *agg_econtext;	/* its aggregate context */
	ExprContext *tmp_econtext;	/* its temporary context */
	MemoryContext aggcontext;	/* where states live */
	MemoryContext rowcontext;	/* garbage of one call, reset per call */
	MemoryContext loadcontext;	/* a stored state deserialized to be
								 * combined (load_state), reset per load */
	FunctionCallInfo fcinfo;	/* room for FUNC_MAX_ARGS arguments */
	SaAggRuntime *recompute;	/* DISTINCT values are fed here, or NULL */
};

/*
 * The aggregate context and its call machinery, for one trigger, in the
 * current memory context.  sa_agg_runtime_destroy() runs the shutdown
 * callbacks that aggregates registered (AggRegisterCallback).
 */
SaAggRuntime *
sa_agg_runtime_create(void)
{
	SaAggRuntime *rt = palloc0(sizeof(SaAggRuntime));

	rt->fcinfo = palloc0(SizeForFunctionCallInfo(FUNC_MAX_ARGS));
	rt->agg_econtext = CreateStandaloneExprContext();
	rt->tmp_econtext = CreateStandaloneExprContext();
	rt->aggcontext = rt->agg_econtext->ecxt_per_tuple_memory;
	rt->rowcontext = rt->tmp_econtext->ecxt_per_tuple_memory;
	rt->loadcontext = AllocSetContextCreate(CurrentMemoryContext,
											"streamagg state load",
											ALLOCSET_DEFAULT_SIZES);
	rt->aggstate = makeNode(AggState);
	rt->aggstate->curaggcontext = rt->agg_econtext;
	rt->aggstate->tmpcontext = rt->tmp_econtext;
	return rt;
}

/* The trigger is done with its states. */
void
sa_agg_runtime_destroy(SaAggRuntime *rt)
{
	if (rt->recompute)
		sa_agg_runtime_destroy(rt->recompute);
	FreeExprContext(rt->tmp_econtext, true);
	FreeExprContext(rt->agg_econtext, true);
	MemoryContextDelete(rt->loadcontext);
}

/*
 * Check that the current user may call the aggregate, and its owner its
 * support functions, as ExecInitAgg does.  Called when a query is compiled
 * and before every trigger, so that a revoked privilege stops the query.
 */
void
sa_agg_check_privileges(const SaAggregate *agg)
{
	AclResult	aclresult;
	HeapTuple	proc;
	Oid			aggowner;
	Oid			support[5] = {agg->transfn.fn_oid,
		agg->has_finalfn ? agg->finalfn.fn_oid : InvalidOid,
		agg->has_combinefn ? agg->combinefn.fn_oid : InvalidOid,
		agg->has_serialfn ? agg->serialfn.fn_oid : InvalidOid,
	agg->has_serialfn ? agg->deserialfn.fn_oid : InvalidOid};

	aclresult = pg_proc_aclcheck(agg->aggfnoid, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_AGGREGATE,
					   get_func_name(agg->aggfnoid));
	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(agg->aggfnoid));
	if (!HeapTupleIsValid(proc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("aggregate \"%s\" of a streaming query no longer exists",
						agg->name)));
	aggowner = ((Form_pg_proc) GETSTRUCT(proc))->proowner;
	ReleaseSysCache(proc);
	for (int i = 0; i < lengthof(support); i++)
	{
		if (!OidIsValid(support[i]))
			continue;
		aclresult = pg_proc_aclcheck(support[i], aggowner, ACL_EXECUTE);
		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, OBJECT_FUNCTION,
						   get_func_name(support[i]));
	}
}

/*
 * Fill in "agg" from the analysed aggregate call, checking that its state
 * can be stored.  "firstarg" and "filterarg" place its inputs in a batch row.
 */
void
sa_agg_setup(SaAggregate *agg, Aggref *aggref, const char *name,
			 int firstarg, int filterarg)
{
	HeapTuple	tuple;
	Form_pg_aggregate aggform;
	Oid			inputtypes[FUNC_MAX_ARGS];
	int			numargs;
	Oid			finalfn_oid;
	Oid			serialfn_oid;
	Oid			deserialfn_oid;
	Datum		initdatum;
	bool		initnull;
	Expr	   *transfnexpr;
	Expr	   *invtransfnexpr;
	Expr	   *finalfnexpr;
	Expr	   *serialfnexpr;
	Expr	   *deserialfnexpr;
	Expr	   *combinefnexpr;
	Oid			combinefn_oid;
	char	   *aggname = format_procedure(aggref->aggfnoid);

	numargs = get_aggregate_argtypes(aggref, inputtypes);

	tuple = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggref->aggfnoid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for aggregate %u", aggref->aggfnoid);
	aggform = (Form_pg_aggregate) GETSTRUCT(tuple);

	if (aggform->aggkind != AGGKIND_NORMAL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("aggregate %s is not supported", aggname),
				 errdetail("Ordered-set and hypothetical-set aggregates need all rows of a group at once.")));

	agg->name = pstrdup(name);
	agg->aggfnoid = aggref->aggfnoid;
	agg->nulled_attno = -1;
	agg->shares_state_of = -1;
	agg->finalfn_modify = aggform->aggfinalmodify;
	agg->resulttype = aggref->aggtype;
	agg->resulttypmod = -1;
	get_typlenbyval(agg->resulttype, &agg->resulttyplen, &agg->resulttypbyval);
	agg->numargs = numargs;
	agg->firstarg = firstarg;
	agg->filterarg = filterarg;
	agg->inputcollation = aggref->inputcollid;
	agg->transtype = resolve_aggregate_transtype(aggref->aggfnoid,
												 aggform->aggtranstype,
												 inputtypes, numargs);
	get_typlenbyval(agg->transtype, &agg->transtyplen, &agg->transtypbyval);
	finalfn_oid = aggform->aggfinalfn;
	serialfn_oid = aggform->aggserialfn;
	deserialfn_oid = aggform->aggdeserialfn;
	agg->finalfn_extra = aggform->aggfinalextra;
	combinefn_oid = aggform->aggcombinefn;

	/*
	 * With DISTINCT the stored state is the set of values, and a transition
	 * state lives only while a value is computed from it.
	 */
	if (aggref->aggdistinct != NIL)
		agg->distinct = sa_distinct_setup(aggref, name);
	else
		sa_agg_check_storable(aggref->aggfnoid, agg->transtype, aggname);
	agg->has_serialfn = (agg->transtype == INTERNALOID && !agg->distinct);

	/* transition function, with an expression for polymorphic lookups */
	build_aggregate_transfn_expr(inputtypes, numargs, 0,
								 aggref->aggvariadic, agg->transtype,
								 agg->inputcollation, aggform->aggtransfn,
								 InvalidOid, &transfnexpr, &invtransfnexpr);
	fmgr_info(aggform->aggtransfn, &agg->transfn);
	fmgr_info_set_expr((Node *) transfnexpr, &agg->transfn);
	agg->transfn_strict = agg->transfn.fn_strict;

	agg->has_finalfn = OidIsValid(finalfn_oid);
	if (agg->has_finalfn)
	{
		build_aggregate_finalfn_expr(inputtypes,
									 1 + (agg->finalfn_extra ? numargs : 0),
									 agg->transtype, agg->resulttype,
									 agg->inputcollation, finalfn_oid,
									 &finalfnexpr);
		fmgr_info(finalfn_oid, &agg->finalfn);
		fmgr_info_set_expr((Node *) finalfnexpr, &agg->finalfn);
		agg->finalfn_strict = agg->finalfn.fn_strict;
	}
	if (agg->has_serialfn)
	{
		build_aggregate_serialfn_expr(serialfn_oid, &serialfnexpr);
		fmgr_info(serialfn_oid, &agg->serialfn);
		fmgr_info_set_expr((Node *) serialfnexpr, &agg->serialfn);
		build_aggregate_deserialfn_expr(deserialfn_oid, &deserialfnexpr);
		fmgr_info(deserialfn_oid, &agg->deserialfn);
		fmgr_info_set_expr((Node *) deserialfnexpr, &agg->deserialfn);
	}

	agg->has_combinefn = OidIsValid(combinefn_oid);
	if (agg->has_combinefn)
	{
		/* a combine function is a transition function taking a state */
		build_aggregate_transfn_expr(&agg->transtype, 1, 0, false,
									 agg->transtype, agg->inputcollation,
									 combinefn_oid, InvalidOid,
									 &combinefnexpr, &invtransfnexpr);
		fmgr_info(combinefn_oid, &agg->combinefn);
		fmgr_info_set_expr((Node *) combinefnexpr, &agg->combinefn);
		agg->combinefn_strict = agg->combinefn.fn_strict;
	}

	/* initial value, as text in the catalog */
	initdatum = SysCacheGetAttr(AGGFNOID, tuple, Anum_pg_aggregate_agginitval,
								&initnull);
	agg->initvalue_isnull = initnull;
	agg->initvalue = (Datum) 0;
	if (!initnull)
	{
		Oid			typinput;
		Oid			typioparam;

		getTypeInputInfo(agg->transtype, &typinput, &typioparam);
		agg->initvalue = OidInputFunctionCall(typinput,
											  TextDatumGetCString(initdatum),
											  typioparam, -1);
	}
	ReleaseSysCache(tuple);

	/* same rule as CREATE AGGREGATE and nodeAgg: see ExecInitAgg */
	if (agg->transfn_strict && agg->initvalue_isnull &&
		(numargs < 1 || !IsBinaryCoercible(inputtypes[0], agg->transtype)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("aggregate %u needs to have compatible input type and transition type",
						aggref->aggfnoid)));
	sa_agg_check_privileges(agg);
}

/*
 * Can aggregates a and b share one transition state?  nodeAgg's rule: the
 * same inputs, FILTER and collation, no DISTINCT or ORDER BY, the same
 * transition, serialization and combine functions, transition type and
 * initial value, and final functions that do not modify the state.
 */
static bool
can_share_state(const SaAggregate *a, const Aggref *aref,
				const SaAggregate *b, const Aggref *bref)
{
	if (a->distinct || b->distinct || aref->aggorder != NIL ||
		bref->aggorder != NIL)
		return false;
	if (a->finalfn_modify == AGGMODIFY_READ_WRITE ||
		b->finalfn_modify == AGGMODIFY_READ_WRITE)
		return false;
	if (a->transfn.fn_oid != b->transfn.fn_oid ||
		a->transtype != b->transtype ||
		a->has_serialfn != b->has_serialfn ||
		(a->has_serialfn &&
		 (a->serialfn.fn_oid != b->serialfn.fn_oid ||
		  a->deserialfn.fn_oid != b->deserialfn.fn_oid)) ||
		a->has_combinefn != b->has_combinefn ||
		(a->has_combinefn && a->combinefn.fn_oid != b->combinefn.fn_oid))
		return false;
	if (a->initvalue_isnull != b->initvalue_isnull ||
		(!a->initvalue_isnull &&
		 !datumIsEqual(a->initvalue, b->initvalue, a->transtypbyval,
					   a->transtyplen)))
		return false;
	return a->inputcollation == b->inputcollation &&
		aref->aggvariadic == bref->aggvariadic &&
		equal(aref->args, bref->args) &&
		equal(aref->aggfilter, bref->aggfilter);
}

/*
 * Decide which aggregates of q share a transition state ("aggrefs": their
 * analysed calls, in order): each shares the first earlier one it can.
 */
void
sa_aggs_share_states(SaQuery *q, List *aggrefs)
{
	Assert(list_length(aggrefs) == q->naggs);
	for (int a = 0; a < q->naggs; a++)
	{
		Aggref	   *aref = list_nth_node(Aggref, aggrefs, a);

		q->aggs[a].shares_state_of = -1;
		for (int b = 0; b < a; b++)
			if (q->aggs[b].shares_state_of < 0 &&
				can_share_state(&q->aggs[a], aref, &q->aggs[b],
								list_nth_node(Aggref, aggrefs, b)))
			{
				q->aggs[a].shares_state_of = b;
				break;
			}
	}
}

/*
 * If aggregate a shares another's state, make its entry of a states array
 * the shared one's (which comes earlier, so it is up to date) and say so.
 */
static inline bool
alias_shared_state(const SaQuery *q, int a, Datum *states, bool *isnull)
{
	int			shared = q->aggs[a].shares_state_of;

	if (shared < 0)
		return false;
	Assert(shared < a && q->aggs[shared].shares_state_of < 0);
	states[a] = states[shared];
	isnull[a] = isnull[shared];
	return true;
}

/*
 * Can the aggregate's state be NULL in two ways that behave differently
 * (see SA_NO_VALUE)?  Then its stored form carries a flag.
 */
bool
sa_agg_needs_nulled_flag(const SaAggregate *agg)
{
	return agg->transfn_strict && agg->initvalue_isnull;
}

/*
 * A state can be kept between triggers when it is an ordinary value, or of
 * type internal with serialization functions.
 */
void
sa_agg_check_storable(Oid aggfnoid, Oid transtype, const char *aggname)
{
	HeapTuple	tuple;
	Form_pg_aggregate aggform;
	bool		serializable;

	if (transtype != INTERNALOID)
		return;
	tuple = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggfnoid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for aggregate %u", aggfnoid);
	aggform = (Form_pg_aggregate) GETSTRUCT(tuple);
	serializable = OidIsValid(aggform->aggserialfn) &&
		OidIsValid(aggform->aggdeserialfn);
	ReleaseSysCache(tuple);
	if (!serializable)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("aggregate %s cannot be used in a streaming query", aggname),
				 errdetail("Its state has type internal and it has no serialization and deserialization functions, so the state cannot be checkpointed."),
				 errhint("Use an aggregate whose state can be stored, or define SERIALFUNC and DESERIALFUNC for it.")));
}

/*
 * A fresh transition state: a copy of the initial value, in the aggregate
 * context, or a NULL state waiting for its first input.
 */
static void
init_transition(SaAggRuntime *rt, SaAggregate *agg, Datum *state,
				bool *isnull)
{
	*isnull = agg->initvalue_isnull;
	if (agg->initvalue_isnull)
		*state = SA_NO_VALUE;
	else
	{
		MemoryContext old = MemoryContextSwitchTo(rt->aggcontext);

		*state = datumCopy(agg->initvalue, agg->transtypbyval,
						   agg->transtyplen);
		MemoryContextSwitchTo(old);
	}
}

/*
 * Fresh states for every aggregate of q (init_transition), or with
 * DISTINCT an empty set in the aggregate context.
 */
void
sa_aggs_init(SaAggRuntime *rt, const SaQuery *q, Datum *states, bool *isnull)
{
	for (int a = 0; a < q->naggs; a++)
	{
		SaAggregate *agg = &q->aggs[a];

		if (alias_shared_state(q, a, states, isnull))
			continue;
		if (agg->distinct)
		{
			states[a] = PointerGetDatum(sa_distinct_set_create(agg->distinct,
															   rt->aggcontext));
			isnull[a] = false;
		}
		else
			init_transition(rt, agg, &states[a], &isnull[a]);
	}
}

/* The Datum a NULL result of a support function leaves as the state. */
static inline Datum
null_state(const SaAggregate *agg)
{
	return sa_agg_needs_nulled_flag(agg) ? SA_NULLED_STATE : SA_NO_VALUE;
}

/* Is this NULL state waiting for its first input (see SA_NO_VALUE)? */
static inline bool
waits_for_first_input(const SaAggregate *agg, Datum state, bool isnull)
{
	return isnull && agg->initvalue_isnull && state == SA_NO_VALUE;
}

/*
 * Did a strict transition function make this state NULL, so that it stays
 * NULL?
 */
static inline bool
state_is_nulled(const SaAggregate *agg, Datum state, bool isnull)
{
	return agg->transfn_strict && isnull &&
		!waits_for_first_input(agg, state, isnull);
}

/*
 * Replace a by-reference state with the value its transition function
 * returned, keeping it in the aggregate context (ExecAggTransReparent).
 */
static Datum
reparent_state(SaAggRuntime *rt, SaAggregate *agg, Datum newvalue,
			   bool newnull, Datum oldvalue, bool oldnull)
{
	MemoryContext old = MemoryContextSwitchTo(rt->aggcontext);

	if (!newnull)
	{
		if (!(DatumIsReadWriteExpandedObject(newvalue, false, agg->transtyplen) &&
			  MemoryContextGetParent(DatumGetEOHP(newvalue)->eoh_context) == rt->aggcontext))
			newvalue = datumCopy(newvalue, agg->transtypbyval,
								 agg->transtyplen);
	}
	else
		newvalue = (Datum) 0;
	if (!oldnull)
	{
		if (DatumIsReadWriteExpandedObject(oldvalue, false, agg->transtyplen))
			DeleteExpandedObject(oldvalue);
		else
			pfree(DatumGetPointer(oldvalue));
	}
	MemoryContextSwitchTo(old);
	return newvalue;
}

/*
 * Feed one row's arguments to the transition function, following nodeAgg's
 * rules for strict transition functions: rows with a NULL argument are
 * skipped; with no initial value the first non-NULL input becomes the
 * state; a state the function made NULL stays NULL.  With DISTINCT the
 * arguments join the set instead, after the same check for NULLs, which
 * nodeAgg makes before it sorts them.
 */
static void
agg_advance(SaAggRuntime *rt, SaAggregate *agg, Datum *state,
			bool *isnull, Datum *args, bool *argnulls)
{
	MemoryContext old;

	if (!agg->distinct)
	{
		advance_transition(rt, agg, state, isnull, args, argnulls);
		return;
	}
	Assert(!*isnull);
	if (agg->transfn_strict)
		for (int i = 0; i < agg->numargs; i++)
			if (argnulls[i])
				return;
	MemoryContextReset(rt->rowcontext);
	old = MemoryContextSwitchTo(rt->rowcontext);
	sa_distinct_add((SaDistinctSet *) DatumGetPointer(*state), args,
					argnulls);
	MemoryContextSwitchTo(old);
}

/*
 * Feed a batch row ("values", the batch columns) to every aggregate of a set
 * of live states, honouring FILTER.
 */
void
sa_aggs_advance(SaAggRuntime *rt, const SaQuery *q, Datum *states,
				bool *isnull, Datum *values, bool *nulls)
{
	for (int a = 0; a < q->naggs; a++)
	{
		SaAggregate *agg = &q->aggs[a];

		if (alias_shared_state(q, a, states, isnull))
			continue;
		if (agg->filterarg >= 0 &&
			(nulls[agg->filterarg] || !DatumGetBool(values[agg->filterarg])))
			continue;
		agg_advance(rt, agg, &states[a], &isnull[a],
					values + agg->firstarg, nulls + agg->firstarg);
	}
}

/* agg_advance for a transition state. */
static void
advance_transition(SaAggRuntime *rt, SaAggregate *agg, Datum *state,
				   bool *isnull, Datum *args, bool *argnulls)
{
	FunctionCallInfo fcinfo = rt->fcinfo;
	MemoryContext old;
	Datum		newvalue;

	if (agg->transfn_strict)
	{
		for (int i = 0; i < agg->numargs; i++)
			if (argnulls[i])
				return;
		if (waits_for_first_input(agg, *state, *isnull))
		{
			old = MemoryContextSwitchTo(rt->aggcontext);
			*state = datumCopy(args[0], agg->transtypbyval, agg->transtyplen);
			*isnull = false;
			MemoryContextSwitchTo(old);
			return;
		}
		if (*isnull)
			return;				/* nulled: never call it again */
	}

	MemoryContextReset(rt->rowcontext);
	old = MemoryContextSwitchTo(rt->rowcontext);
	InitFunctionCallInfoData(*fcinfo, &agg->transfn, agg->numargs + 1,
							 agg->inputcollation, (Node *) rt->aggstate, NULL);
	fcinfo->args[0].value = *state;
	fcinfo->args[0].isnull = *isnull;
	for (int i = 0; i < agg->numargs; i++)
	{
		fcinfo->args[i + 1].value = args[i];
		fcinfo->args[i + 1].isnull = argnulls[i];
	}
	newvalue = FunctionCallInvoke(fcinfo);
	MemoryContextSwitchTo(old);

	if (!agg->transtypbyval &&
		DatumGetPointer(newvalue) != DatumGetPointer(*state))
		newvalue = reparent_state(rt, agg, newvalue, fcinfo->isnull,
								  *state, *isnull);
	*isnull = fcinfo->isnull;
	*state = *isnull ? null_state(agg) : newvalue;
}

/*
 * Merge the state "other" into "state" with the combine function (panes of
 * sliding windows, session windows that merge), following nodeAgg's rules
 * for strict combine functions: a NULL input changes nothing, a state
 * still waiting for its first input takes a copy of the other.  One rule is
 * added to make a merge equal to aggregating all rows in one group: a state
 * the transition function made NULL makes the merge NULL for good.  With
 * DISTINCT the merge is the union of the sets.
 */
static void
agg_combine(SaAggRuntime *rt, SaAggregate *agg, Datum *state,
			bool *isnull, Datum other, bool other_isnull)
{
	FunctionCallInfo fcinfo = rt->fcinfo;
	MemoryContext old;
	Datum		newvalue;

	if (agg->distinct)
	{
		Assert(!*isnull && !other_isnull);
		MemoryContextReset(rt->rowcontext);
		old = MemoryContextSwitchTo(rt->rowcontext);
		sa_distinct_union((SaDistinctSet *) DatumGetPointer(*state),
						  (SaDistinctSet *) DatumGetPointer(other));
		MemoryContextSwitchTo(old);
		return;
	}
	Assert(agg->has_combinefn);
	if (state_is_nulled(agg, *state, *isnull))
		return;
	if (state_is_nulled(agg, other, other_isnull))
	{
		/* the old state stays in the aggregate context until the trigger ends */
		*state = null_state(agg);
		*isnull = true;
		return;
	}
	if (agg->combinefn_strict)
	{
		if (other_isnull)
			return;
		if (*isnull)
		{
			old = MemoryContextSwitchTo(rt->aggcontext);
			*state = agg->transtypbyval ? other :
				datumCopy(other, agg->transtypbyval, agg->transtyplen);
			*isnull = false;
			MemoryContextSwitchTo(old);
			return;
		}
	}
	MemoryContextReset(rt->rowcontext);
	old = MemoryContextSwitchTo(rt->rowcontext);
	InitFunctionCallInfoData(*fcinfo, &agg->combinefn, 2,
							 agg->inputcollation, (Node *) rt->aggstate, NULL);
	fcinfo->args[0].value = *state;
	fcinfo->args[0].isnull = *isnull;
	fcinfo->args[1].value = other;
	fcinfo->args[1].isnull = other_isnull;
	newvalue = FunctionCallInvoke(fcinfo);
	MemoryContextSwitchTo(old);
	if (!agg->transtypbyval &&
		DatumGetPointer(newvalue) != DatumGetPointer(*state))
		newvalue = reparent_state(rt, agg, newvalue, fcinfo->isnull,
								  *state, *isnull);
	*isnull = fcinfo->isnull;

	/*
	 * A non-strict combine function given two NULL states may return its
	 * first argument, a NULL pointer, as a value that is not NULL (so do
	 * numeric_avg_combine and numeric_combine in PostgreSQL 15.18):
	 * nodeAgg only finalizes such a state, whose final function takes a
	 * NULL pointer for no state, but a window's state is also serialized,
	 * and numeric_avg_serialize would follow the pointer.  An internal
	 * state that is a NULL pointer is no state: NULL.
	 */
	if (!*isnull && agg->transtype == INTERNALOID &&
		DatumGetPointer(newvalue) == NULL)
		*isnull = true;
	*state = *isnull ? null_state(agg) : newvalue;
}

/* Merge the states "others" into "states" (agg_combine), aggregate by aggregate. */
void
sa_aggs_combine(SaAggRuntime *rt, const SaQuery *q, Datum *states,
				bool *isnull, const Datum *others, const bool *other_isnull)
{
	for (int a = 0; a < q->naggs; a++)
	{
		if (alias_shared_state(q, a, states, isnull))
			continue;
		agg_combine(rt, &q->aggs[a], &states[a], &isnull[a], others[a],
					other_isnull[a]);
	}
}

/* Call a one-argument support function with the aggregate context. */
static Datum
call_support(SaAggRuntime *rt, FmgrInfo *fn, int nargs, Datum arg,
			 bool *isnull)
{
	FunctionCallInfo fcinfo = rt->fcinfo;
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, fn, nargs, InvalidOid,
							 (Node *) rt->aggstate, NULL);
	fcinfo->args[0].value = arg;
	fcinfo->args[0].isnull = false;
	if (nargs > 1)
	{
		fcinfo->args[1].value = PointerGetDatum(NULL);
		fcinfo->args[1].isnull = false;
	}
	result = FunctionCallInvoke(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

/*
 * The form in which a state is kept between triggers: the state itself, or
 * for internal states their serialization (a bytea), without pointers into
 * TOAST.  Both serialization functions are strict, as CREATE AGGREGATE
 * requires.
 */
static Datum
state_to_stored(SaAggRuntime *rt, SaAggregate *agg, Datum state)
{
	bool		resnull;
	Datum		result;

	if (!agg->has_serialfn)
		return sa_datum_self_contained(state, false, agg->transtyplen);
	result = call_support(rt, &agg->serialfn, 1, state, &resnull);
	if (resnull)
		elog(ERROR, "serialization function of aggregate %u returned NULL",
			 agg->aggfnoid);
	return sa_datum_self_contained(result, false, -1);
}

/*
 * A working state from its stored form, allocated in "cxt": the aggregate
 * context, so that transition functions may modify it in place, or a
 * temporary one for a state that is only finalized.
 */
static Datum
state_from_stored(SaAggRuntime *rt, SaAggregate *agg, Datum stored,
				  MemoryContext cxt)
{
	MemoryContext old;
	Datum		result;
	bool		resnull;

	old = MemoryContextSwitchTo(cxt);
	if (agg->has_serialfn)
	{
		result = call_support(rt, &agg->deserialfn, 2, stored, &resnull);
		if (resnull)
			elog(ERROR, "deserialization function of aggregate %u returned NULL",
				 agg->aggfnoid);
	}
	else
		result = datumCopy(stored, agg->transtypbyval, agg->transtyplen);
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * A stored state brought back as a live one that transition functions will
 * go on advancing.  PostgreSQL itself never advances a deserialized state:
 * nodeAgg only combines it into a state it started from the initial value
 * (partial aggregation), and a deserialization function may build a state
 * fit for that only: PostgreSQL 15.18's numeric_deserialize leaves
 * calcSumX2 off, so variance(numeric) and stddev(numeric) went on without
 * their sum of squares.  So, as nodeAgg does, a state with a combine
 * function starts from the initial value and the deserialized one is
 * combined into it.  Where that would make the deserialized state itself
 * the live one (a strict combine function and no initial value), or there
 * is no combine function, it is deserialized in the aggregate context.
 */
static void
load_state(SaAggRuntime *rt, SaAggregate *agg, Datum stored, Datum *live,
		   bool *livenull)
{
	Datum		loaded;

	if (!agg->has_serialfn || !agg->has_combinefn ||
		(agg->combinefn_strict && agg->initvalue_isnull))
	{
		*live = state_from_stored(rt, agg, stored, rt->aggcontext);
		*livenull = false;
		return;
	}
	MemoryContextReset(rt->loadcontext);
	loaded = state_from_stored(rt, agg, stored, rt->loadcontext);
	init_transition(rt, agg, live, livenull);
	agg_combine(rt, agg, live, livenull, loaded, false);
}

/*
 * The stored form of one group's (or session's) live states, in the current
 * memory context: a minimal tuple of q->state_desc, each state in stored
 * form, then a flag per aggregate whose state a strict transition function
 * made NULL (sa_agg_needs_nulled_flag).  A flag is NULL when not set, so
 * that tuples stored before flags existed read as "not set".
 */
MinimalTuple
sa_aggs_form_stored(SaAggRuntime *rt, const SaQuery *q, const Datum *live,
					const bool *livenulls)
{
	int			natts = q->state_desc->natts;
	MemoryContext caller;
	Datum	   *values;
	bool	   *nulls;
	MinimalTuple stored;

	/* serializations are garbage once the tuple holds them */
	MemoryContextReset(rt->rowcontext);
	caller = MemoryContextSwitchTo(rt->rowcontext);
	values = palloc0(sizeof(Datum) * natts);
	nulls = palloc(sizeof(bool) * natts);
	memset(nulls, true, sizeof(bool) * natts);
	for (int a = 0; a < q->naggs; a++)
	{
		SaAggregate *agg = &q->aggs[a];

		if (agg->distinct)
		{
			/* its set fills attribute a and one more per further argument */
			sa_distinct_to_stored((SaDistinctSet *) DatumGetPointer(live[a]),
								  values, nulls);
			Assert(!nulls[a] && agg->nulled_attno < 0);
			continue;
		}
		nulls[a] = livenulls[a];
		if (agg->shares_state_of >= 0)
		{
			/* the shared state, serialized once: it comes earlier */
			Assert(live[a] == live[agg->shares_state_of]);
			values[a] = values[agg->shares_state_of];
		}
		else if (!livenulls[a])
			values[a] = state_to_stored(rt, agg, live[a]);
		if (agg->nulled_attno >= 0)
		{
			Assert(agg->nulled_attno >= q->naggs && agg->nulled_attno < natts);
			values[agg->nulled_attno] = BoolGetDatum(true);
			nulls[agg->nulled_attno] = !state_is_nulled(agg, live[a],
														livenulls[a]);
		}
	}
	MemoryContextSwitchTo(caller);
	stored = heap_form_minimal_tuple(q->state_desc, values, nulls);
	MemoryContextReset(rt->rowcontext);
	return stored;
}

/*
 * States from their stored form (see sa_aggs_deform_stored).  With
 * "to_advance", transition functions will go on with them: they live in
 * the aggregate context (load_state); without, they are only finalized,
 * in the temporary context.
 */
static void
deform_stored(SaAggRuntime *rt, const SaQuery *q, MinimalTuple stored,
			  Datum *live, bool *livenulls, bool to_advance)
{
	MemoryContext cxt = to_advance ? rt->aggcontext : rt->rowcontext;
	int			natts = q->state_desc->natts;
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc(sizeof(bool) * natts);

	sa_deform_minimal(stored, q->state_desc, values, nulls);
	for (int a = 0; a < q->naggs; a++)
	{
		SaAggregate *agg = &q->aggs[a];

		if (agg->distinct)
		{
			live[a] = PointerGetDatum(sa_distinct_from_stored(agg->distinct,
															  values, nulls,
															  cxt));
			livenulls[a] = false;
			continue;
		}
		if (alias_shared_state(q, a, live, livenulls))
			continue;
		livenulls[a] = nulls[a];
		if (!nulls[a] && to_advance)
			load_state(rt, agg, values[a], &live[a], &livenulls[a]);
		else if (!nulls[a])
			live[a] = state_from_stored(rt, agg, values[a], cxt);
		else if (agg->nulled_attno >= 0 && !nulls[agg->nulled_attno])
			live[a] = SA_NULLED_STATE;
		else
			live[a] = SA_NO_VALUE;
	}
	pfree(values);
	pfree(nulls);
}

/*
 * Live states (in the aggregate context) from their stored form; "live" and
 * "livenulls" have room for q->naggs states.
 */
void
sa_aggs_deform_stored(SaAggRuntime *rt, const SaQuery *q, MinimalTuple stored,
					  Datum *live, bool *livenulls)
{
	deform_stored(rt, q, stored, live, livenulls, true);
}

/*
 * The aggregate's value for a transition state: its final function's
 * result, or the state itself when there is none.  Extra final arguments
 * are NULL, as in nodeAgg.  The result lives in the current memory context
 * or in the state.
 */
static Datum
finalize_transition(SaAggRuntime *rt, SaAggregate *agg, Datum state,
					bool isnull, bool *result_isnull)
{
	FunctionCallInfo fcinfo = rt->fcinfo;
	int			nargs;

	if (isnull)
		state = (Datum) 0;
	if (!agg->has_finalfn)
	{
		*result_isnull = isnull;
		return state;
	}
	nargs = 1 + (agg->finalfn_extra ? agg->numargs : 0);
	if (agg->finalfn_strict && (isnull || nargs > 1))
	{
		*result_isnull = true;
		return (Datum) 0;
	}
	InitFunctionCallInfoData(*fcinfo, &agg->finalfn, nargs,
							 agg->inputcollation, (Node *) rt->aggstate, NULL);
	fcinfo->args[0].value = state;
	fcinfo->args[0].isnull = isnull;
	for (int i = 1; i < nargs; i++)
	{
		fcinfo->args[i].value = (Datum) 0;
		fcinfo->args[i].isnull = true;
	}
	{
		Datum		result = FunctionCallInvoke(fcinfo);

		*result_isnull = fcinfo->isnull;
		return result;
	}
}

/* Feeding the elements of a DISTINCT set to a transition state. */
typedef struct FeedArg
{
	SaAggRuntime *rt;
	SaAggregate *agg;
	Datum		state;
	bool		isnull;
} FeedArg;

static void
feed_element(void *arg, Datum *values, bool *nulls)
{
	FeedArg    *f = arg;

	CHECK_FOR_INTERRUPTS();
	advance_transition(f->rt, f->agg, &f->state, &f->isnull, values, nulls);
}

/*
 * The value of an aggregate called with DISTINCT: its transition function
 * fed every element of the set, in order, from the initial state, then its
 * final function, as nodeAgg does for a group's sorted distinct inputs.
 * This runs in a runtime of its own, whose contexts are reset afterwards
 * (running the callbacks the aggregate registered), so that the caller's
 * temporary context and the trigger's states are left alone.  The result
 * is copied into the current memory context.
 */
static Datum
finalize_distinct(SaAggRuntime *rt, SaAggregate *agg, SaDistinctSet *set,
				  bool *result_isnull)
{
	FeedArg		f;
	Datum		result;

	if (rt->recompute == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(rt));

		rt->recompute = sa_agg_runtime_create();
		MemoryContextSwitchTo(old);
	}
	f.rt = rt->recompute;
	f.agg = agg;
	init_transition(f.rt, agg, &f.state, &f.isnull);
	sa_distinct_walk(set, feed_element, &f);
	result = finalize_transition(f.rt, agg, f.state, f.isnull, result_isnull);
	if (!*result_isnull)
		result = datumCopy(result, agg->resulttypbyval, agg->resulttyplen);
	ReScanExprContext(f.rt->tmp_econtext);
	ReScanExprContext(f.rt->agg_econtext);
	return result;
}

/*
 * The aggregate's value for a live state (see finalize_transition and
 * finalize_distinct), in the current memory context or in the state.
 */
Datum
sa_agg_finalize(SaAggRuntime *rt, SaAggregate *agg, Datum state, bool isnull,
				bool *result_isnull)
{
	if (agg->distinct)
		return finalize_distinct(rt, agg, (SaDistinctSet *) DatumGetPointer(state),
								 result_isnull);
	return finalize_transition(rt, agg, state, isnull, result_isnull);
}

/*
 * The final value of each aggregate of live states ("live", "livenulls"),
 * in the caller's memory context; the final functions run in the
 * runtime's temporary context, which is reset.
 */
static void
finalize_states(SaAggRuntime *rt, const SaQuery *q, Datum *live,
				bool *livenulls, Datum *results, bool *resultnulls,
				MemoryContext caller)
{
	MemoryContextSwitchTo(rt->rowcontext);
	for (int i = 0; i < q->naggs; i++)
	{
		SaAggregate *agg = &q->aggs[i];
		Datum		value = sa_agg_finalize(rt, agg, live[i], livenulls[i],
											&resultnulls[i]);

		MemoryContextSwitchTo(caller);
		results[i] = resultnulls[i] ? (Datum) 0 :
			datumCopy(value, agg->resulttypbyval, agg->resulttyplen);
		MemoryContextSwitchTo(rt->rowcontext);
	}
	MemoryContextSwitchTo(caller);
	MemoryContextReset(rt->rowcontext);
}

/*
 * The final value of each aggregate of a stored group (or session), in
 * the current memory context.  The states are brought back to life, and
 * finalized, in the runtime's temporary context, which is reset: finishing
 * many rows keeps no memory but their values.
 */
void
sa_aggs_finalize_stored(SaAggRuntime *rt, const SaQuery *q,
						MinimalTuple stored, Datum *results, bool *resultnulls)
{
	MemoryContext caller;
	Datum	   *live;
	bool	   *livenulls;

	MemoryContextReset(rt->rowcontext);
	caller = MemoryContextSwitchTo(rt->rowcontext);
	live = palloc(sizeof(Datum) * q->naggs);
	livenulls = palloc(sizeof(bool) * q->naggs);
	deform_stored(rt, q, stored, live, livenulls, false);
	finalize_states(rt, q, live, livenulls, results, resultnulls, caller);
}

/*
 * The final value of each aggregate of live states that were just stored
 * (sa_aggs_form_stored), in the current memory context: the same values as
 * sa_aggs_finalize_stored gives for the stored form, without bringing it
 * back to life.  Final functions that modify their state (which nodeAgg
 * calls once per state) are called once: the states are not used after.
 */
void
sa_aggs_finalize_live(SaAggRuntime *rt, const SaQuery *q, Datum *live,
					  bool *livenulls, Datum *results, bool *resultnulls)
{
	MemoryContextReset(rt->rowcontext);
	finalize_states(rt, q, live, livenulls, results, resultnulls,
					CurrentMemoryContext);
}
