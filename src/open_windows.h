/*-------------------------------------------------------------------------
 *
 * open_windows.h
 *	  The open windows of a query, finalized (open_windows.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_OPEN_WINDOWS_H
#define STREAMAGG_OPEN_WINDOWS_H

#include "streamagg.h"

#include "utils/tuplestore.h"

extern void sa_open_windows(const SaDefinition *def, TupleDesc desc,
							Tuplestorestate *out);

#endif							/* STREAMAGG_OPEN_WINDOWS_H */
