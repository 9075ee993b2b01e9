/*-------------------------------------------------------------------------
 *
 * reset.h
 *	  reset_query (reset.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_RESET_H
#define STREAMAGG_RESET_H

#include "streamagg.h"

extern void sa_reset_query(const SaDefinition *def);

#endif							/* STREAMAGG_RESET_H */
