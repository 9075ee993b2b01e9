/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The loop of a database's workers (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_WORKER_H
#define STREAMAGG_WORKER_H

#include "streamagg.h"

PGDLLEXPORT void sa_worker_main(Datum arg);

#endif							/* STREAMAGG_WORKER_H */
