/* SPDX-License-Identifier: MIT */
/*
 * mn_pool: fixed-size buffers in shared memory, addressed by index, owned by
 * one process (the region's creator) and lent to one peer through rings.
 *
 *   pool section
 *   +----------------------+------------------------------------------+
 *   | struct mn_pool_shm   | buf 0 | buf 1 | ...         | buf nbufs-1 |
 *   | (c) 64 B, then pad   |                                           |
 *   +----------------------+------------------------------------------+
 *   0                      MN_POOL_DATA_OFF (4096)
 *   buffer i starts at MN_POOL_DATA_OFF + i * buf_size from the section.
 *
 * The owner keeps, in private memory, who holds each buffer: itself (free or
 * in use) or the peer. It lends buffers by putting descriptors on rings to
 * the peer (e.g. fill, tx) and gets them back on rings from the peer (rx,
 * completion). Every descriptor on a pool ring starts with the 32-bit buffer
 * index (struct mn_desc); nothing else in it is the pool's business.
 *
 * Trust: indices coming back from the peer pass mn_pool_take(), which
 * refuses an index out of range or one the peer does not hold (a double
 * return, or a forged index), and counts it; the peer side uses
 * mn_pool_view_buf(), which bounds-checks index, offset and length.
 *
 * Peer death: mn_pool_reclaim() returns to the free list every buffer the
 * dead peer held, except those still sitting in the rings between the two
 * (a restarted peer will find those exactly where the rings stand).
 */
#ifndef MN_IPC_POOL_H
#define MN_IPC_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

#define MN_POOL_MAGIC 0x4c4f4f50u /* "POOL" */
#define MN_POOL_DATA_OFF 4096u
#define MN_POOL_MIN_BUF 64u
#define MN_POOL_MAX_BUF (1u << 24)
#define MN_POOL_MAX_BUFS (1u << 24)

struct mn_pool_shm {
	uint32_t magic;	   /* (c) MN_POOL_MAGIC */
	uint32_t nbufs;	   /* (c) number of buffers */
	uint32_t buf_size; /* (c) bytes per buffer, multiple of 64 */
	uint32_t reserved[13];
};
_Static_assert(sizeof(struct mn_pool_shm) == 64, "pool header is ABI");

/*
 * The minimal pool-ring descriptor (8 bytes). Larger descriptors used by
 * other modules keep `idx` as their first field.
 */
struct mn_desc {
	uint32_t idx; /* buffer index */
	uint32_t len; /* bytes used, meaning set by the ring's user */
};
_Static_assert(sizeof(struct mn_desc) == 8 && offsetof(struct mn_desc, idx) == 0,
	       "pool descriptors start with the buffer index");

/* Private holder of each buffer. */
enum mn_buf_state {
	MN_BUF_FREE = 0,  /* on the owner's free list */
	MN_BUF_OWNER = 1, /* allocated by the owner */
	MN_BUF_PEER = 2,  /* lent to the peer (in a ring or in its hands) */
};

struct mn_pool_stats {
	uint64_t bad_index;   /* peer returned an index >= nbufs */
	uint64_t not_lent;    /* peer returned a buffer it did not hold */
	uint64_t reclaimed;   /* buffers recovered from dead peers */
	uint64_t alloc_fail;  /* mn_pool_alloc() found the free list empty */
};

/* Owner-side handle (process-local). */
struct mn_pool {
	uint8_t *data;	    /* buffer 0 */
	uint32_t nbufs;	    /* private copy */
	uint32_t buf_size;  /* private copy */
	uint8_t *state;	    /* enum mn_buf_state per buffer */
	uint32_t *free_idx; /* LIFO of free buffer indices */
	uint32_t nfree;
	uint32_t nlent;	    /* buffers in MN_BUF_PEER */
	struct mn_pool_stats stats;
};

/* Peer-side view (process-local): bounds only, no ownership. */
struct mn_pool_view {
	uint8_t *data;
	uint32_t nbufs;
	uint32_t buf_size;
};

/*
 * mn_pool_memsize - bytes a pool section needs, or 0 if @nbufs is outside
 * 1..2^24 or @buf_size is not a multiple of 64 in 64..16 MiB.
 */
size_t mn_pool_memsize(uint32_t nbufs, uint32_t buf_size);

/*
 * mn_pool_format - write an empty pool header in @mem (@len bytes) before
 * the region is shared. Returns 0, -EINVAL (geometry) or -ENOSPC.
 */
int mn_pool_format(void *mem, size_t len, uint32_t nbufs, uint32_t buf_size);

/*
 * mn_pool_init - open the owner side of the pool formatted in @mem: all
 * buffers free. Allocates the private state (freed by mn_pool_fini()).
 * Returns 0, -EBADMSG/-ERANGE (header invalid or larger than @len, logged),
 * -ENOMEM. Not thread-safe: one owner thread at a time.
 */
int mn_pool_init(struct mn_pool *p, void *mem, size_t len);

/* Free the private state. Safe on a zeroed handle. */
void mn_pool_fini(struct mn_pool *p);

/*
 * mn_pool_alloc - take a free buffer: MN_BUF_FREE -> MN_BUF_OWNER.
 * Returns its index (>= 0) or -ENOBUFS (counted in stats.alloc_fail).
 */
int mn_pool_alloc(struct mn_pool *p);

/*
 * mn_pool_free - give back a buffer the owner holds: -> MN_BUF_FREE.
 * Returns 0, or -EINVAL (index out of range, or not held by the owner:
 * a double free in the owner's own code, logged).
 */
int mn_pool_free(struct mn_pool *p, uint32_t idx);

/*
 * mn_pool_lend - mark an owner-held buffer as lent, just before its
 * descriptor is put on a ring to the peer. MN_BUF_OWNER -> MN_BUF_PEER.
 * Returns 0 or -EINVAL (not held by the owner).
 */
int mn_pool_lend(struct mn_pool *p, uint32_t idx);

/*
 * mn_pool_take - validate an index the peer handed back (read from a ring
 * from the peer) and take the buffer back: MN_BUF_PEER -> MN_BUF_OWNER.
 * Returns 0; -ERANGE (index >= nbufs, counted in stats.bad_index) or
 * -EALREADY (the peer does not hold it, counted in stats.not_lent). On
 * error nothing changes. Logs the first few of each.
 */
int mn_pool_take(struct mn_pool *p, uint32_t idx);

/*
 * mn_pool_reclaim - the peer died: free every buffer lent to it except those
 * whose descriptors still wait in @rings (rings between owner and peer, the
 * owner's handles of either role). Call it after the peer is gone and
 * BEFORE a replacement attaches: buffers a new peer already took from a
 * ring would look held by nobody and be freed under it. Descriptors in those rings are read, not
 * consumed; one with an invalid or duplicate index is skipped and counted.
 * Returns the number of buffers reclaimed, or -EBADMSG if a ring's indices
 * are inconsistent (nothing is reclaimed then: the caller should reformat
 * the rings, after which mn_pool_reclaim(p, NULL, 0) frees every lent
 * buffer). Needs a scratch array of one byte per buffer: -ENOMEM.
 */
int mn_pool_reclaim(struct mn_pool *p, struct mn_ring *const *rings,
		    unsigned int nrings);

/*
 * mn_pool_buf - address of buffer @idx for the owner; NULL if out of range.
 */
static inline void *mn_pool_buf(const struct mn_pool *p, uint32_t idx)
{
	if (idx >= p->nbufs)
		return NULL;
	return p->data + (size_t)idx * p->buf_size;
}

/* Counts by holder. */
static inline uint32_t mn_pool_nfree(const struct mn_pool *p)
{
	return p->nfree;
}

static inline uint32_t mn_pool_nlent(const struct mn_pool *p)
{
	return p->nlent;
}

/* Holder of @idx (MN_BUF_*), or -ERANGE. */
int mn_pool_state(const struct mn_pool *p, uint32_t idx);

/*
 * mn_pool_view_init - open the peer side of a pool: reads and validates the
 * header once. Returns 0, -EBADMSG (magic or geometry), -ERANGE (pool larger
 * than @len). Logs the field and values.
 */
int mn_pool_view_init(struct mn_pool_view *v, void *mem, size_t len);

/*
 * mn_pool_view_buf - peer side: address of bytes [@off, @off + @len) of
 * buffer @idx, or NULL if the index or the range falls outside (an index
 * from the owner is as untrusted as one from the peer). The bytes are live
 * shared memory the owner can change at any time: copy what a decision
 * depends on, then check the copy.
 */
static inline void *mn_pool_view_buf(const struct mn_pool_view *v, uint32_t idx,
				     uint32_t off, uint32_t len)
{
	if (idx >= v->nbufs || off > v->buf_size || len > v->buf_size - off)
		return NULL;
	return v->data + (size_t)idx * v->buf_size + off;
}

#endif /* MN_IPC_POOL_H */
