/*-------------------------------------------------------------------------
 *
 * kept_plan.h
 *	  Fixed statements of streamagg, prepared once per backend
 *	  (kept_plan.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_KEPT_PLAN_H
#define STREAMAGG_KEPT_PLAN_H

#include "executor/spi.h"

extern SPIPlanPtr sa_kept_plan(const char *sql, int nargs, Oid *argtypes,
							   int cursor_options);

#endif							/* STREAMAGG_KEPT_PLAN_H */
