/*-------------------------------------------------------------------------
 *
 * query_cache.c
 *	  This backend's compiled queries, by query id.
 *
 * A query is compiled on first use (as its owner: compiling runs type
 * input functions) and kept, with its prepared sink statements, until
 * something it was compiled from changes.  PostgreSQL's invalidation
 * callbacks say when: a relcache invalidation of its source, its sink, its
 * late sink, a relation it joins, or streamagg.query_def (alter_query sends
 * one; and dropping and creating the extension again makes a new
 * query_def, whose query ids start again at 1), and any change to pg_proc or
 * pg_type (its aggregates, operators, sink function and types).  A
 * callback only marks entries stale, since one may be in use by the
 * running trigger; a stale entry is freed and compiled anew at its next
 * lookup.  The caller of sa_get_compiled holds the query's lock or only
 * reads the definition (wait), so a trigger never sees its compiled query
 * freed under it.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "catalog/namespace.h"
#include "utils/catcache.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "definition.h"
#include "query_cache.h"
#include "late_sink.h"
#include "security.h"
#include "sink.h"

typedef struct CompiledEntry
{
	int32		query_id;
	SaQuery    *q;
	Oid			query_def;		/* streamagg.query_def it was read from */
	bool		stale;
} CompiledEntry;

static HTAB *compiled = NULL;

/* Relations a compiled query depends on changed: mark its entry stale. */
static void
relation_changed(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	CompiledEntry *entry;

	hash_seq_init(&seq, compiled);
	while ((entry = hash_seq_search(&seq)) != NULL)
		if (!OidIsValid(relid) || relid == entry->q->def.source ||
			relid == entry->q->def.sink || relid == entry->query_def ||
			relid == entry->q->def.late_sink ||
			list_member_oid(entry->q->joined, relid))
			entry->stale = true;
}

/* Functions or types changed: every compiled query may depend on them. */
static void
catalog_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS seq;
	CompiledEntry *entry;

	hash_seq_init(&seq, compiled);
	while ((entry = hash_seq_search(&seq)) != NULL)
		entry->stale = true;
}

static void
create_cache(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(CompiledEntry);
	compiled = hash_create("streamagg compiled queries", 16, &ctl,
						   HASH_ELEM | HASH_BLOBS);
	CacheRegisterRelcacheCallback(relation_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, catalog_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(TYPEOID, catalog_changed, (Datum) 0);
}

/*
 * The compiled form of a query, compiled now if there is none or the one
 * there is stale.
 */
SaQuery *
sa_get_compiled(int32 query_id)
{
	CompiledEntry *entry;
	bool		found;

	if (compiled == NULL)
		create_cache();
	/* take in invalidations that arrived since the last statement */
	AcceptInvalidationMessages();
	entry = hash_search(compiled, &query_id, HASH_FIND, &found);
	if (found && entry->stale)
	{
		sa_forget_compiled(query_id);
		found = false;
	}
	if (!found)
	{
		SaDefinition def;
		SaQuery    *q;
		SaRoleSave	owner;
		Oid			query_def;
		MemoryContext old;

		sa_load_definition_by_id(query_id, &def);
		query_def = get_relname_relid("query_def",
									  get_namespace_oid("streamagg", false));

		/* compiling runs type input functions: user code */
		sa_user_code_begin(def.owner, &owner);
		q = sa_compile_query(&def);
		old = MemoryContextSwitchTo(q->cxt);
		sa_build_sink_statement(q);
		MemoryContextSwitchTo(old);
		sa_user_code_end(&owner);
		MemoryContextSetParent(q->cxt, TopMemoryContext);
		entry = hash_search(compiled, &query_id, HASH_ENTER, &found);
		entry->q = q;
		entry->query_def = query_def;
		entry->stale = false;
	}
	return entry->q;
}

/* Drop this backend's compiled form of a query: it is compiled anew. */
void
sa_forget_compiled(int32 query_id)
{
	CompiledEntry *entry;

	if (compiled == NULL)
		return;
	entry = hash_search(compiled, &query_id, HASH_FIND, NULL);
	if (entry)
	{
		SaQuery    *q = entry->q;

		hash_search(compiled, &query_id, HASH_REMOVE, NULL);
		sa_sink_release(q);
		sa_late_sink_release(q);
		MemoryContextDelete(q->cxt);
	}
}

/* Forget the compiled queries whose id is not in "query_ids" (dropped). */
void
sa_forget_compiled_except(List *query_ids)
{
	HASH_SEQ_STATUS seq;
	CompiledEntry *entry;
	List	   *gone = NIL;
	ListCell   *lc;

	if (compiled == NULL)
		return;
	hash_seq_init(&seq, compiled);
	while ((entry = hash_seq_search(&seq)) != NULL)
		if (!list_member_int(query_ids, entry->query_id))
			gone = lappend_int(gone, entry->query_id);
	foreach(lc, gone)
		sa_forget_compiled(lfirst_int(lc));
	list_free(gone);
}
