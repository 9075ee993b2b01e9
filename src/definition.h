/*-------------------------------------------------------------------------
 *
 * definition.h
 *	  Checking a query definition and compiling it (definition.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_DEFINITION_H
#define STREAMAGG_DEFINITION_H

#include "streamagg.h"

/* Where an error in a parameter's text is: see sa_text_error_context. */
typedef struct SaTextContext
{
	const char *sql;			/* the statement holding the text */
	const char *what;			/* the context line: which parameter */
} SaTextContext;

extern void sa_text_error_context(void *arg);
extern SaQuery *sa_compile_query(const SaDefinition *def);
extern void sa_validate_compiled(const SaQuery *q);
extern void sa_normalize_definition(SaDefinition *def);
extern void sa_validate_definition(const SaDefinition *def);
extern void sa_check_xid_column(Oid source);
extern void sa_check_batch_statement(SaQuery *q);

extern int64 sa_interval_usec(Interval *iv, const char *param);
extern int64 sa_window_interval(Interval *iv, const char *param,
								int32 *months);
extern SaOutputMode sa_parse_output_mode(const char *mode);
extern const char *sa_output_mode_name(SaOutputMode mode);
extern char *sa_qualified_relation(Oid relid, const char *role,
								   const char *query);
extern char *sa_relation_name(Oid relid);

#endif							/* STREAMAGG_DEFINITION_H */
