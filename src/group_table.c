/*-------------------------------------------------------------------------
 *
 * group_table.c
 *	  A compact hash table of fixed-size entries in a DSA area, used by one
 *	  backend at a time: the shared groups of a query (group_store.c).
 *
 * dshash would serve, but it pays for a concurrency that the state does not
 * use (only the holder of a query's lock touches its groups): a lock taken
 * per lookup, a DSA allocation with its own header per entry, and a bucket
 * array of 8-byte pointers kept at most 3/4 full.  Here the entries are
 * packed side by side in chunks of SA_GT_CHUNK_ENTRIES and numbered densely
 * from 0; an open-addressing index of 4-byte slots (entry number + 1, or 0
 * for empty) finds them, probing linearly from slot (hash & mask).  Every
 * entry starts with a small header holding its hash, so that the index can
 * be rebuilt, and the table walked, from the entries alone.
 *
 * Invariants:
 *	- the index holds the number of every entry in use and of no other
 *	  entry, and is at most 3/4 full, so every probe ends at an empty slot;
 *	- an entry in use is reachable from its home slot without crossing an
 *	  empty slot: deletion shifts later entries of the cluster back instead
 *	  of leaving tombstones;
 *	- entries not in use form a free list through their headers, reused
 *	  before new numbers are handed out;
 *	- entries do not move, except those of chunk 0 while it grows to its
 *	  full size (small tables start small): a pointer to an entry is valid
 *	  until the next insertion.
 *
 * Allocations that fail (streamagg.max_state_memory) make the operation
 * return NULL with the table unchanged; the caller reports it.  Nothing here
 * locks: the caller guarantees that one backend at a time uses a table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "group_table.h"

#define SA_GT_MAGIC 0x53414754
#define SA_GT_CHUNK_SHIFT 10
#define SA_GT_CHUNK_ENTRIES (1 << SA_GT_CHUNK_SHIFT)
#define SA_GT_FIRST_ENTRIES 16	/* of chunk 0, at first */
#define SA_GT_FIRST_SLOTS 64	/* of the index, at first */
#define SA_GT_FIRST_CHUNKS 4	/* room in the chunk directory, at first */
#define SA_GT_IN_USE PG_UINT32_MAX
#define SA_GT_MAX_ENTRIES ((uint64) PG_UINT32_MAX - 1)

/* The table in the area; its handle is the DSA pointer to this. */
typedef struct GtControl
{
	uint32		magic;
	uint32		entry_size;		/* of the caller's part, MAXALIGNed */
	dsa_pointer self;
	uint64		nused;			/* entries in use */
	uint64		nentries;		/* numbers handed out, in use or free */
	uint64		bytes;			/* allocated for the table */
	uint32		free_head;		/* first free entry number + 1, or 0 */
	uint32		chunk0_entries; /* room in chunk 0 */
	uint32		nchunks;
	uint32		chunks_room;	/* of the chunk directory */
	uint64		index_mask;		/* slots - 1, slots a power of 2 */
	dsa_pointer index;			/* uint32 per slot */
	dsa_pointer chunks;			/* dsa_pointer per chunk */
} GtControl;

/* Header of every entry; the caller's part follows, MAXALIGNed. */
typedef struct GtHeader
{
	uint32		hash;
	uint32		next_free;		/* SA_GT_IN_USE, or next free number + 1 */
} GtHeader;

#define GT_HEADER_SIZE MAXALIGN(sizeof(GtHeader))
#define ENTRY_OF(header) ((void *) ((char *) (header) + GT_HEADER_SIZE))
#define HEADER_OF(entry) ((GtHeader *) ((char *) (entry) - GT_HEADER_SIZE))

/* A backend's handle on a table, in the memory context it was attached in. */
struct SaGroupTable
{
	dsa_area   *area;
	GtControl  *ctl;
	uint32	   *index;			/* address of ctl->index */
	char	  **chunk;			/* addresses of the chunks, filled lazily */
	uint32		chunk_room;		/* length of chunk[] */
	Size		stride;			/* bytes per entry, header included */
};

dsa_pointer
sa_gt_create(dsa_area *area, uint32 entry_size)
{
	int			flags = DSA_ALLOC_NO_OOM | DSA_ALLOC_ZERO;
	dsa_pointer self = dsa_allocate_extended(area, sizeof(GtControl), flags);
	dsa_pointer index = InvalidDsaPointer;
	dsa_pointer chunks = InvalidDsaPointer;
	GtControl  *ctl;

	if (DsaPointerIsValid(self))
		index = dsa_allocate_extended(area, SA_GT_FIRST_SLOTS * sizeof(uint32),
									  flags);
	if (DsaPointerIsValid(index))
		chunks = dsa_allocate_extended(area,
									   SA_GT_FIRST_CHUNKS * sizeof(dsa_pointer),
									   flags);
	if (!DsaPointerIsValid(chunks))
	{
		if (DsaPointerIsValid(index))
			dsa_free(area, index);
		if (DsaPointerIsValid(self))
			dsa_free(area, self);
		return InvalidDsaPointer;
	}
	ctl = dsa_get_address(area, self);
	ctl->magic = SA_GT_MAGIC;
	ctl->entry_size = MAXALIGN(entry_size);
	ctl->self = self;
	ctl->index_mask = SA_GT_FIRST_SLOTS - 1;
	ctl->index = index;
	ctl->chunks_room = SA_GT_FIRST_CHUNKS;
	ctl->chunks = chunks;
	ctl->bytes = sizeof(GtControl) + SA_GT_FIRST_SLOTS * sizeof(uint32) +
		SA_GT_FIRST_CHUNKS * sizeof(dsa_pointer);
	return self;
}

SaGroupTable *
sa_gt_attach(dsa_area *area, dsa_pointer handle)
{
	SaGroupTable *table = palloc(sizeof(SaGroupTable));

	table->area = area;
	table->ctl = dsa_get_address(area, handle);
	if (table->ctl->magic != SA_GT_MAGIC)
		elog(ERROR, "streamagg: shared group table is corrupt");
	table->index = dsa_get_address(area, table->ctl->index);
	table->chunk_room = table->ctl->chunks_room;
	table->chunk = palloc0(sizeof(char *) * table->chunk_room);
	table->stride = GT_HEADER_SIZE + table->ctl->entry_size;
	return table;
}

/* Free the table; the caller has freed what its entries point to. */
void
sa_gt_destroy(SaGroupTable *table)
{
	GtControl  *ctl = table->ctl;
	dsa_pointer *chunks = dsa_get_address(table->area, ctl->chunks);

	for (uint32 c = 0; c < ctl->nchunks; c++)
		dsa_free(table->area, chunks[c]);
	dsa_free(table->area, ctl->chunks);
	dsa_free(table->area, ctl->index);
	ctl->magic = 0;
	dsa_free(table->area, ctl->self);
	pfree(table->chunk);
	pfree(table);
}

uint32
sa_gt_entry_size(SaGroupTable *table)
{
	return table->ctl->entry_size;
}

uint64
sa_gt_count(SaGroupTable *table)
{
	return table->ctl->nused;
}

/* Bytes the table has allocated (not counting what its entries point to). */
uint64
sa_gt_bytes(SaGroupTable *table)
{
	return table->ctl->bytes;
}

static dsa_pointer
gt_allocate(SaGroupTable *table, Size size, int flags)
{
	dsa_pointer dp = dsa_allocate_extended(table->area, size,
										   DSA_ALLOC_NO_OOM | DSA_ALLOC_HUGE | flags);

	if (DsaPointerIsValid(dp))
		table->ctl->bytes += size;
	return dp;
}

static void
gt_free(SaGroupTable *table, dsa_pointer dp, Size size)
{
	dsa_free(table->area, dp);
	table->ctl->bytes -= size;
}

static inline GtHeader *
entry_header(SaGroupTable *table, uint32 number)
{
	uint32		c = number >> SA_GT_CHUNK_SHIFT;

	if (unlikely(table->chunk[c] == NULL))
	{
		dsa_pointer *chunks = dsa_get_address(table->area, table->ctl->chunks);

		table->chunk[c] = dsa_get_address(table->area, chunks[c]);
	}
	return (GtHeader *) (table->chunk[c] +
						 (Size) (number & (SA_GT_CHUNK_ENTRIES - 1)) * table->stride);
}

/* Put an entry number into the first empty slot from its home slot. */
static inline void
index_add(uint32 *index, uint64 mask, uint32 hash, uint32 number)
{
	uint64		s = hash & mask;

	while (index[s] != 0)
		s = (s + 1) & mask;
	index[s] = number + 1;
}

void *
sa_gt_find(SaGroupTable *table, uint32 hash, SaGroupTableMatch match,
		   const void *probe, void *arg)
{
	uint64		mask = table->ctl->index_mask;

	for (uint64 s = hash & mask;; s = (s + 1) & mask)
	{
		uint32		slot = table->index[s];
		GtHeader   *header;

		if (slot == 0)
			return NULL;
		header = entry_header(table, slot - 1);
		if (header->hash == hash && match(ENTRY_OF(header), probe, arg))
			return ENTRY_OF(header);
	}
}

/* Rebuild the index from the entries with "slots" slots (a power of 2). */
static bool
grow_index(SaGroupTable *table, uint64 slots)
{
	GtControl  *ctl = table->ctl;
	dsa_pointer dp = gt_allocate(table, slots * sizeof(uint32), DSA_ALLOC_ZERO);
	uint32	   *index;

	if (!DsaPointerIsValid(dp))
		return false;
	index = dsa_get_address(table->area, dp);
	for (uint64 n = 0; n < ctl->nentries; n++)
	{
		GtHeader   *header = entry_header(table, (uint32) n);

		if (header->next_free == SA_GT_IN_USE)
			index_add(index, slots - 1, header->hash, (uint32) n);
	}
	gt_free(table, ctl->index, (ctl->index_mask + 1) * sizeof(uint32));
	ctl->index = dp;
	ctl->index_mask = slots - 1;
	table->index = index;
	return true;
}

/* Make room for entry number ctl->nentries. */
static bool
room_for_new_entry(SaGroupTable *table)
{
	GtControl  *ctl = table->ctl;
	uint64		n = ctl->nentries;
	uint32		c = (uint32) (n >> SA_GT_CHUNK_SHIFT);
	dsa_pointer *chunks = dsa_get_address(table->area, ctl->chunks);
	dsa_pointer dp;

	if (n >= SA_GT_MAX_ENTRIES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("streamagg: too many groups in the state of one query")));
	if (c == 0)
	{
		/* chunk 0 grows by doubling, so that small tables stay small */
		uint32		room = ctl->chunk0_entries;
		uint32		new_room = room == 0 ? SA_GT_FIRST_ENTRIES : room * 2;

		if (n < room)
			return true;
		dp = gt_allocate(table, new_room * table->stride, 0);
		if (!DsaPointerIsValid(dp))
			return false;
		if (room > 0)
		{
			memcpy(dsa_get_address(table->area, dp), entry_header(table, 0),
				   room * table->stride);
			gt_free(table, chunks[0], room * table->stride);
		}
		chunks[0] = dp;
		table->chunk[0] = NULL;
		ctl->chunk0_entries = new_room;
		ctl->nchunks = 1;
		return true;
	}
	if (c < ctl->nchunks)
		return true;
	if (ctl->nchunks == ctl->chunks_room)
	{
		uint32		room = ctl->chunks_room * 2;

		dp = gt_allocate(table, room * sizeof(dsa_pointer), DSA_ALLOC_ZERO);
		if (!DsaPointerIsValid(dp))
			return false;
		memcpy(dsa_get_address(table->area, dp), chunks,
			   ctl->nchunks * sizeof(dsa_pointer));
		gt_free(table, ctl->chunks, ctl->chunks_room * sizeof(dsa_pointer));
		ctl->chunks = dp;
		ctl->chunks_room = room;
		chunks = dsa_get_address(table->area, dp);
	}
	if (table->chunk_room < ctl->chunks_room)
	{
		table->chunk = repalloc(table->chunk, sizeof(char *) * ctl->chunks_room);
		memset(table->chunk + table->chunk_room, 0,
			   sizeof(char *) * (ctl->chunks_room - table->chunk_room));
		table->chunk_room = ctl->chunks_room;
	}
	dp = gt_allocate(table, SA_GT_CHUNK_ENTRIES * table->stride, 0);
	if (!DsaPointerIsValid(dp))
		return false;
	chunks[c] = dp;
	ctl->nchunks = c + 1;
	return true;
}

/*
 * Make room in the index for "n" more entries, so that inserting them
 * rebuilds it at most once.  False when out of memory.
 */
bool
sa_gt_reserve(SaGroupTable *table, uint64 n)
{
	GtControl  *ctl = table->ctl;
	uint64		slots = ctl->index_mask + 1;

	while ((ctl->nused + n) * 4 > slots * 3)
		slots *= 2;
	return slots == ctl->index_mask + 1 || grow_index(table, slots);
}

/*
 * A new entry for "hash", zeroed; the caller knows that its key is not in
 * the table.  NULL when out of memory.
 */
void *
sa_gt_insert(SaGroupTable *table, uint32 hash)
{
	GtControl  *ctl = table->ctl;
	GtHeader   *header;
	uint32		n;

	if ((ctl->nused + 1) * 4 > (ctl->index_mask + 1) * 3 &&
		!grow_index(table, (ctl->index_mask + 1) * 2))
		return NULL;
	if (ctl->free_head != 0)
	{
		n = ctl->free_head - 1;
		header = entry_header(table, n);
		ctl->free_head = header->next_free;
	}
	else
	{
		if (!room_for_new_entry(table))
			return NULL;
		n = (uint32) ctl->nentries++;
		header = entry_header(table, n);
	}
	header->hash = hash;
	header->next_free = SA_GT_IN_USE;
	memset(ENTRY_OF(header), 0, ctl->entry_size);
	index_add(table->index, ctl->index_mask, hash, n);
	ctl->nused++;
	return ENTRY_OF(header);
}

/* Remove an entry (the caller has freed what it points to). */
void
sa_gt_delete(SaGroupTable *table, void *entry)
{
	GtControl  *ctl = table->ctl;
	GtHeader   *header = HEADER_OF(entry);
	uint64		mask = ctl->index_mask;
	uint64		hole = header->hash & mask;
	uint32		n;

	/* the entry's slot: on the probe path from its home slot */
	while (table->index[hole] == 0 ||
		   entry_header(table, table->index[hole] - 1) != header)
	{
		if (table->index[hole] == 0)
			elog(ERROR, "streamagg: shared group table is corrupt");
		hole = (hole + 1) & mask;
	}
	n = table->index[hole] - 1;

	/*
	 * Backward shift: an entry later in the cluster moves into the hole if
	 * the hole is on its own probe path, leaving a hole where it was.
	 */
	for (uint64 s = (hole + 1) & mask; table->index[s] != 0; s = (s + 1) & mask)
	{
		uint64		home = entry_header(table, table->index[s] - 1)->hash & mask;

		if (((s - home) & mask) >= ((s - hole) & mask))
		{
			table->index[hole] = table->index[s];
			hole = s;
		}
	}
	table->index[hole] = 0;
	header->next_free = ctl->free_head;
	ctl->free_head = n + 1;
	ctl->nused--;
}

/*
 * The next entry in use from *position (start at 0), or NULL at the end.
 * The entry returned may be deleted before the next call; entries inserted
 * meanwhile may or may not be returned.
 */
void *
sa_gt_next(SaGroupTable *table, uint64 *position)
{
	while (*position < table->ctl->nentries)
	{
		GtHeader   *header = entry_header(table, (uint32) (*position)++);

		if (header->next_free == SA_GT_IN_USE)
			return ENTRY_OF(header);
	}
	return NULL;
}

/* The hash an entry was inserted with. */
uint32
sa_gt_hash(const void *entry)
{
	return HEADER_OF(entry)->hash;
}
