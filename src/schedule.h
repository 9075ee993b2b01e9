/*-------------------------------------------------------------------------
 *
 * schedule.h
 *	  When each query is due, and which worker runs it (schedule.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_SCHEDULE_H
#define STREAMAGG_SCHEDULE_H

#include "streamagg.h"

typedef enum SaClaim
{
	SA_CLAIM_OK,				/* claimed: run its trigger, then release */
	SA_CLAIM_NOT_DUE,
	SA_CLAIM_BUSY,				/* another worker runs it */
	SA_CLAIM_TERMINATED			/* claimed: its last trigger was killed */
} SaClaim;
extern Size sa_schedule_shmem_size(void);
extern void sa_schedule_shmem_init(void);
extern SaClaim sa_schedule_claim(int32 query_id, int64 interval_usec,
								 uint64 commits, TimestampTz now,
								 TimestampTz *due_at);
extern void sa_schedule_mark_due_now(void);
extern void sa_schedule_make_due(int32 query_id);
extern void sa_schedule_release(void);
extern void sa_schedule_release_at_exit(bool terminated);
extern void sa_schedule_forget(int32 query_id);
extern void sa_schedule_forget_database(Oid database);

#endif							/* STREAMAGG_SCHEDULE_H */
