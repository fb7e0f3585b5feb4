/* SPDX-License-Identifier: MIT */
/*
 * mn_ring: lock-free single-producer/single-consumer ring of fixed-size
 * entries in shared memory.
 *
 *   offset  0  +----------------------------------+
 *              | magic, esize, capacity   (c)     |  line 0, read-only
 *        128   +----------------------------------+
 *              | prod_tail                (P)     |  producer's line
 *        256   +----------------------------------+
 *              | cons_head                (C)     |  consumer's line
 *        384   +----------------------------------+
 *              | slot[0] ... slot[capacity-1]     |  (P) writes, (C) reads
 *              +----------------------------------+
 *   (c) formatter, before the ring is shared; (P) producer; (C) consumer.
 *
 * Indices run free modulo 2^32; slot = index & (capacity - 1). The ring is
 * empty when prod_tail == cons_head and full when prod_tail - cons_head ==
 * capacity. Each index has its own 128-byte block so the two sides never
 * share a cache line (nor an adjacent-line prefetch pair).
 *
 * Who may touch which slot when: slots in [cons_head, prod_tail) belong to
 * the consumer, all others to the producer. A side publishes a hand-over by
 * a store-release of its own index, and learns of the other side's by a
 * load-acquire of the other index.
 *
 * Trust: the peer may be buggy or hostile. Each handle keeps its own index
 * and the geometry (capacity, entry size) in private memory, taken once at
 * attach; the only shared value read afterwards is the other side's index,
 * and one that cannot be (more than capacity away) makes the call fail with
 * -EBADMSG instead of reading or writing outside the ring. Entry contents
 * are the user's to validate.
 *
 * A side that dies mid-burst leaves nothing half-published: its index moves
 * by one store-release after the slots are written (or read). A new process
 * attaching in the same role resumes at the published index.
 */
#ifndef MN_IPC_RING_H
#define MN_IPC_RING_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#define MN_RING_MAGIC 0x474e524du /* "MRNG" */
#define MN_RING_HDR_SIZE 384u
#define MN_RING_MAX_ESIZE 256u
#define MN_RING_MAX_CAPACITY (1u << 28)

struct mn_ring_shm {
	uint32_t magic;	    /* (c) MN_RING_MAGIC */
	uint32_t esize;	    /* (c) bytes per entry: multiple of 8, <= 256 */
	uint32_t capacity;  /* (c) entries, power of two, 2 .. 2^28 */
	uint32_t reserved0[29];
	uint32_t prod_tail; /* (P) next index to produce; store-release */
	uint32_t reserved1[31];
	uint32_t cons_head; /* (C) next index to consume; store-release */
	uint32_t reserved2[31];
	uint64_t slots[];   /* (P) write, (C) read; see above */
};

_Static_assert(offsetof(struct mn_ring_shm, prod_tail) == 128, "ring layout is ABI");
_Static_assert(offsetof(struct mn_ring_shm, cons_head) == 256, "ring layout is ABI");
_Static_assert(offsetof(struct mn_ring_shm, slots) == MN_RING_HDR_SIZE,
	       "ring layout is ABI");
_Static_assert(offsetof(struct mn_ring_shm, prod_tail) % 64 == 0 &&
		       offsetof(struct mn_ring_shm, cons_head) % 64 == 0,
	       "indices must sit on their own cache lines");

enum mn_ring_role {
	MN_RING_PRODUCER = 1,
	MN_RING_CONSUMER = 2,
};

/* Process-local handle of one side; never shared. */
struct mn_ring {
	struct mn_ring_shm *shm;
	uint8_t *slots;
	uint32_t capacity; /* private copy, validated at attach */
	uint32_t mask;
	uint32_t esize;	   /* private copy, validated at attach */
	uint32_t pos;	   /* our own index: producer tail / consumer head */
	uint32_t other;	   /* last value read of the other side's index */
	uint32_t role;
	uint64_t corrupt;  /* calls that found an impossible index */
};

/*
 * mn_ring_memsize - bytes needed for a ring of @capacity entries of @esize
 * bytes, or 0 if the geometry is invalid (capacity not a power of two in
 * [2, 2^28], esize not a multiple of 8 in [8, 256]).
 */
size_t mn_ring_memsize(uint32_t capacity, uint32_t esize);

/*
 * mn_ring_format - initialise an empty ring in @mem (@len bytes, 8-byte
 * aligned). Call before the memory is shared; not concurrent-safe.
 * Returns 0, -EINVAL (geometry, alignment) or -ENOSPC (@len too small).
 */
int mn_ring_format(void *mem, size_t len, uint32_t capacity, uint32_t esize);

/*
 * mn_ring_attach - open one side of a ring that another process may share.
 * @r:     handle to fill.
 * @mem:   the ring (inside a mapped region), @len bytes available there.
 * @esize: entry size the caller uses; must match the ring's.
 * @role:  MN_RING_PRODUCER or MN_RING_CONSUMER; at most one live handle per
 *         role per ring.
 * Reads the geometry once, validates it against @len and @esize, and checks
 * that the published indices are consistent; resumes at the index the
 * previous holder of @role published.
 * Returns 0; -EBADMSG (magic, capacity, indices more than capacity apart),
 * -EPROTOTYPE (entry size differs), -ERANGE (ring larger than @len),
 * -EINVAL (@role, alignment). Logs the field and values on failure.
 */
int mn_ring_attach(struct mn_ring *r, void *mem, size_t len, uint32_t esize,
		   enum mn_ring_role role);

/*
 * mn_ring_pending - the range of indices published but not yet consumed,
 * read fresh from shared memory: [*first, *first + *count).
 * Either role may call it (the pool uses it to see which buffers still sit
 * in a ring). Returns 0 or -EBADMSG if the indices are inconsistent.
 */
int mn_ring_pending(struct mn_ring *r, uint32_t *first, uint32_t *count);

/*
 * mn_ring_slot - address of the slot holding index @idx (any value; it is
 * masked). Only meaningful for indices mn_ring_pending() reported.
 */
static inline const void *mn_ring_slot(const struct mn_ring *r, uint32_t idx)
{
	return r->slots + (size_t)(idx & r->mask) * r->esize;
}

/* Cold path: count and log an impossible index. Returns -EBADMSG. */
int mn_ring__corrupt(struct mn_ring *r, const char *what, uint32_t mine,
		     uint32_t theirs);

/*
 * The fast path is forced inline, as rte_ring's is: an out-of-line call per
 * operation cost 5-40 % in tools/ring_bench and kept the compiler from
 * folding the entry size.
 */
#define MN_RING_INLINE static inline __attribute__((always_inline))

/*
 * Slot copies: at most two straight runs (up to the end of the slot array,
 * then from its start), with the geometry passed in registers, so the
 * compiler neither masks every index nor reloads the handle after each
 * store. Fixed-size memcpy()s compile to plain moves and stay clear of
 * strict aliasing whatever type the caller's entries have.
 *
 * Inlined into a caller that passes one 8-byte entry, GCC cannot see that
 * the entry size (checked at attach against the size the caller declared)
 * rules out the 16-byte and generic branches, and warns that they would
 * read past the caller's object. They cannot run; the warning is silenced
 * for these helpers only.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic ignored "-Wstringop-overread"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

MN_RING_INLINE void mn_ring__run(uint8_t *dst, const uint8_t *src, uint32_t n, uint32_t es)
{
	switch (es) {
	case 8:
		for (uint32_t i = 0; i < n; i++)
			memcpy(dst + 8 * (size_t)i, src + 8 * (size_t)i, 8);
		break;
	case 16:
		for (uint32_t i = 0; i < n; i++)
			memcpy(dst + 16 * (size_t)i, src + 16 * (size_t)i, 16);
		break;
	default:
		memcpy(dst, src, (size_t)n * es);
	}
}

MN_RING_INLINE void mn_ring__copy_in(struct mn_ring *r, uint32_t idx, const void *objs,
				     uint32_t n)
{
	uint8_t *slots = r->slots;
	uint32_t es = r->esize, cap = r->capacity, at = idx & r->mask;
	uint32_t first = cap - at < n ? cap - at : n;

	mn_ring__run(slots + (size_t)at * es, (const uint8_t *)objs, first, es);
	if (first < n)
		mn_ring__run(slots, (const uint8_t *)objs + (size_t)first * es, n - first, es);
}

MN_RING_INLINE void mn_ring__copy_out(const struct mn_ring *r, uint32_t idx, void *objs,
				      uint32_t n)
{
	const uint8_t *slots = r->slots;
	uint32_t es = r->esize, cap = r->capacity, at = idx & r->mask;
	uint32_t first = cap - at < n ? cap - at : n;

	mn_ring__run((uint8_t *)objs, slots + (size_t)at * es, first, es);
	if (first < n)
		mn_ring__run((uint8_t *)objs + (size_t)first * es, slots, n - first, es);
}

#pragma GCC diagnostic pop

/*
 * mn_ring_enqueue_burst - producer: append up to @n entries from @objs
 * (@n * esize bytes, 8-byte aligned).
 * Returns the number appended (0 when full), or -EBADMSG if the consumer's
 * index is impossible. Producer handle only; not thread-safe.
 */
MN_RING_INLINE int mn_ring_enqueue_burst(struct mn_ring *r, const void *objs,
					uint32_t n)
{
	uint32_t free_slots = r->capacity - (r->pos - r->other);

	if (free_slots < n) {
		/*
		 * Acquire pairs with the store-release of cons_head in
		 * mn_ring_dequeue_burst(): the consumer finished reading the
		 * slots it released before we overwrite them.
		 */
		uint32_t cons = __atomic_load_n(&r->shm->cons_head, __ATOMIC_ACQUIRE);

		if (__builtin_expect(r->pos - cons > r->capacity, 0))
			return mn_ring__corrupt(r, "cons_head", r->pos, cons);
		r->other = cons;
		free_slots = r->capacity - (r->pos - cons);
		if (n > free_slots)
			n = free_slots;
		if (n == 0)
			return 0;
	}
	mn_ring__copy_in(r, r->pos, objs, n);
	r->pos += n;
	/*
	 * Release pairs with the load-acquire of prod_tail in
	 * mn_ring_dequeue_burst(): the slots written above are visible before
	 * the consumer sees the new tail.
	 */
	__atomic_store_n(&r->shm->prod_tail, r->pos, __ATOMIC_RELEASE);
	return (int)n;
}

/*
 * mn_ring_dequeue_burst - consumer: remove up to @n entries into @objs.
 * Returns the number removed (0 when empty), or -EBADMSG if the producer's
 * index is impossible. Consumer handle only; not thread-safe.
 */
MN_RING_INLINE int mn_ring_dequeue_burst(struct mn_ring *r, void *objs, uint32_t n)
{
	uint32_t avail = r->other - r->pos;

	if (avail < n) {
		/*
		 * Acquire pairs with the store-release of prod_tail in
		 * mn_ring_enqueue_burst(): slot contents up to the tail are
		 * visible once we see the tail.
		 */
		uint32_t prod = __atomic_load_n(&r->shm->prod_tail, __ATOMIC_ACQUIRE);

		if (__builtin_expect(prod - r->pos > r->capacity, 0))
			return mn_ring__corrupt(r, "prod_tail", r->pos, prod);
		r->other = prod;
		avail = prod - r->pos;
		if (n > avail)
			n = avail;
		if (n == 0)
			return 0;
	}
	mn_ring__copy_out(r, r->pos, objs, n);
	r->pos += n;
	/*
	 * Release pairs with the load-acquire of cons_head in
	 * mn_ring_enqueue_burst(): our reads of the slots complete before the
	 * producer may reuse them.
	 */
	__atomic_store_n(&r->shm->cons_head, r->pos, __ATOMIC_RELEASE);
	return (int)n;
}

/* Single-entry conveniences: 1 on success, 0 full/empty, -EBADMSG. */
static inline int mn_ring_enqueue(struct mn_ring *r, const void *obj)
{
	return mn_ring_enqueue_burst(r, obj, 1);
}

static inline int mn_ring_dequeue(struct mn_ring *r, void *obj)
{
	return mn_ring_dequeue_burst(r, obj, 1);
}

/*
 * mn_ring_count - entries waiting, read fresh (either role); -EBADMSG if
 * the indices are inconsistent.
 */
int mn_ring_count(struct mn_ring *r);

/* mn_ring_capacity - capacity taken at attach. */
static inline uint32_t mn_ring_capacity(const struct mn_ring *r)
{
	return r->capacity;
}

#endif /* MN_IPC_RING_H */
