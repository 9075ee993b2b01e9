/*-------------------------------------------------------------------------
 *
 * security.h
 *	  Whose rights user code and catalog access run with (security.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_SECURITY_H
#define STREAMAGG_SECURITY_H

#include "streamagg.h"

#include "utils/queryenvironment.h"

typedef struct SaRoleSave
{
	Oid			userid;
	int			sec_context;
	int			nestlevel;
} SaRoleSave;
extern void sa_user_code_begin(Oid owner, SaRoleSave *save);
extern void sa_user_code_end(SaRoleSave *save);
extern void sa_catalog_access_begin(SaRoleSave *save);
extern void sa_catalog_access_end(SaRoleSave *save);
extern Oid	sa_extension_owner(void);
extern int	sa_pin_search_path(void);
extern void sa_unpin_search_path(int nestlevel);
extern bool sa_may_see_query(Oid owner);
extern void sa_check_statement_privileges(const char *sql, int nargs,
										  Oid *argtypes,
										  EphemeralNamedRelation rows);

#endif							/* STREAMAGG_SECURITY_H */
