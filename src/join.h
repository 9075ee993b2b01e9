/*-------------------------------------------------------------------------
 *
 * join.h
 *	  The FROM clause of a query: source and stream-static joins (join.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_JOIN_H
#define STREAMAGG_JOIN_H

#include "streamagg.h"

#include "nodes/parsenodes.h"

/* How the expressions of an analysed query are written back as text. */
typedef struct SaScope
{
	Query	   *query;			/* the analysed query over the FROM clause */
	List	   *names;			/* with joins: the name of each range table
								 * entry */
	List	   *context;		/* ruleutils' deparse context */
	bool		prefix;			/* prefix columns with their relation */
} SaScope;

extern List *sa_parse_from(Oid source, const char *from);
extern SaScope sa_scope_for(Query *query, Oid source, bool has_join);
extern char *sa_scope_deparse(const SaScope *scope, Node *expr);
extern char *sa_normalized_from(const SaScope *scope);
extern char *sa_batch_from(const SaScope *scope, char **markers);
extern const char *sa_scope_source_name(const SaScope *scope);
extern List *sa_scope_joined_relations(const SaScope *scope);

#endif							/* STREAMAGG_JOIN_H */
