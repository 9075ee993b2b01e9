/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The launcher and the shared registry of database workers (launcher.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_LAUNCHER_H
#define STREAMAGG_LAUNCHER_H

#include "streamagg.h"

extern void sa_shmem_request(void);
extern void sa_shmem_startup(void);
extern void sa_register_launcher(void);
extern void sa_request_database_worker(Oid dboid);
extern void sa_wake_database_worker(Oid dboid);
extern uint64 sa_source_bucket_bit(Oid source);
extern void sa_note_source_commits(Oid dboid, uint64 mask);
extern uint64 sa_source_commit_count(Oid dboid, Oid source);
extern void sa_stop_database_worker(Oid dboid);
extern void sa_forget_database(Oid dboid);
extern uint64 sa_worker_attach(Oid dboid, int index);
extern void sa_worker_detach(Oid dboid, int index, bool idle,
							 uint64 generation);
extern void sa_worker_set_busy(Oid dboid, int index, bool busy);
extern bool sa_set_workers_wanted(Oid dboid, int index, int wanted);
PGDLLEXPORT void sa_launcher_main(Datum arg);

#endif							/* STREAMAGG_LAUNCHER_H */
