/*-------------------------------------------------------------------------
 *
 * group_table.h
 *	  A compact hash table of fixed-size entries in a DSA area, used by one
 *	  backend at a time (group_table.c): the shared groups of a query.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMAGG_GROUP_TABLE_H
#define STREAMAGG_GROUP_TABLE_H

#include "utils/dsa.h"

typedef struct SaGroupTable SaGroupTable;

/* Does the entry (whose hash equals the probe's) hold the probe's key? */
typedef bool (*SaGroupTableMatch) (const void *entry, const void *probe,
								   void *arg);

extern dsa_pointer sa_gt_create(dsa_area *area, uint32 entry_size);
extern SaGroupTable *sa_gt_attach(dsa_area *area, dsa_pointer handle);
extern void sa_gt_destroy(SaGroupTable *table);
extern uint32 sa_gt_entry_size(SaGroupTable *table);
extern uint64 sa_gt_count(SaGroupTable *table);
extern uint64 sa_gt_bytes(SaGroupTable *table);
extern void *sa_gt_find(SaGroupTable *table, uint32 hash,
						SaGroupTableMatch match, const void *probe,
						void *arg);
extern bool sa_gt_reserve(SaGroupTable *table, uint64 n);
extern void *sa_gt_insert(SaGroupTable *table, uint32 hash);
extern void sa_gt_delete(SaGroupTable *table, void *entry);
extern void *sa_gt_next(SaGroupTable *table, uint64 *position);
extern uint32 sa_gt_hash(const void *entry);

#endif							/* STREAMAGG_GROUP_TABLE_H */
