/*-------------------------------------------------------------------------
 *
 * subtransaction.h
 *	  Running a step that may fail without failing the caller
 *	  (subtransaction.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_SUBTRANSACTION_H
#define STREAMAGG_SUBTRANSACTION_H

#include "streamagg.h"

extern bool sa_try_in_subtransaction(void (*body) (void *arg), void *arg,
									 ErrorData **error);

#endif							/* STREAMAGG_SUBTRANSACTION_H */
