/* SPDX-License-Identifier: MIT */
#include "ring.h"

#include <errno.h>
#include <inttypes.h>

#include "log.h"

static int valid_geometry(uint32_t capacity, uint32_t esize)
{
	return capacity >= 2 && capacity <= MN_RING_MAX_CAPACITY &&
	       (capacity & (capacity - 1)) == 0 && esize >= 8 &&
	       esize <= MN_RING_MAX_ESIZE && esize % 8 == 0;
}

size_t mn_ring_memsize(uint32_t capacity, uint32_t esize)
{
	if (!valid_geometry(capacity, esize))
		return 0;
	return MN_RING_HDR_SIZE + (size_t)capacity * esize;
}

int mn_ring_format(void *mem, size_t len, uint32_t capacity, uint32_t esize)
{
	struct mn_ring_shm *shm = mem;
	size_t need = mn_ring_memsize(capacity, esize);

	if (need == 0 || ((uintptr_t)mem & 7) != 0) {
		mn_err("ring", "cannot format ring: capacity %" PRIu32 " esize %" PRIu32
		       " (need a power of two in [2, 2^28] and a multiple of 8 in [8, %u], 8-byte aligned memory)",
		       capacity, esize, MN_RING_MAX_ESIZE);
		return -EINVAL;
	}
	if (len < need) {
		mn_err("ring", "cannot format ring: %zu bytes available, %zu needed for %" PRIu32
		       " x %" PRIu32 " B", len, need, capacity, esize);
		return -ENOSPC;
	}
	memset(shm, 0, MN_RING_HDR_SIZE);
	shm->esize = esize;
	shm->capacity = capacity;
	/* Magic last: a reader that sees it sees the geometry too. */
	__atomic_store_n(&shm->magic, MN_RING_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

int mn_ring_attach(struct mn_ring *r, void *mem, size_t len, uint32_t esize,
		   enum mn_ring_role role)
{
	struct mn_ring_shm *shm = mem;
	uint32_t magic, cap, es, prod, cons;

	if ((role != MN_RING_PRODUCER && role != MN_RING_CONSUMER) ||
	    ((uintptr_t)mem & 7) != 0) {
		mn_err("ring", "attach: bad arguments (role %d, mem %p)", (int)role, mem);
		return -EINVAL;
	}
	if (len < MN_RING_HDR_SIZE) {
		mn_err("ring", "attach: %zu bytes available, less than the %u-byte ring header",
		       len, MN_RING_HDR_SIZE);
		return -ERANGE;
	}
	/* Acquire pairs with the store-release of magic in mn_ring_format(). */
	magic = __atomic_load_n(&shm->magic, __ATOMIC_ACQUIRE);
	cap = __atomic_load_n(&shm->capacity, __ATOMIC_RELAXED);
	es = __atomic_load_n(&shm->esize, __ATOMIC_RELAXED);
	if (magic != MN_RING_MAGIC) {
		mn_err("ring", "attach: magic 0x%08" PRIx32 ", expected 0x%08x (not a ring, or not formatted)",
		       magic, MN_RING_MAGIC);
		return -EBADMSG;
	}
	if (!valid_geometry(cap, es)) {
		mn_err("ring", "attach: impossible geometry capacity %" PRIu32 " esize %" PRIu32,
		       cap, es);
		return -EBADMSG;
	}
	if (es != esize) {
		mn_err("ring", "attach: entry size %" PRIu32 " B, caller uses %" PRIu32 " B",
		       es, esize);
		return -EPROTOTYPE;
	}
	if (mn_ring_memsize(cap, es) > len) {
		mn_err("ring", "attach: ring of %" PRIu32 " x %" PRIu32 " B needs %zu bytes, only %zu available",
		       cap, es, mn_ring_memsize(cap, es), len);
		return -ERANGE;
	}
	prod = __atomic_load_n(&shm->prod_tail, __ATOMIC_ACQUIRE);
	cons = __atomic_load_n(&shm->cons_head, __ATOMIC_ACQUIRE);
	if (prod - cons > cap) {
		mn_err("ring", "attach: prod_tail %" PRIu32 " and cons_head %" PRIu32
		       " are more than capacity %" PRIu32 " apart: ring corrupt",
		       prod, cons, cap);
		return -EBADMSG;
	}
	*r = (struct mn_ring){
		.shm = shm,
		.slots = (uint8_t *)shm + MN_RING_HDR_SIZE,
		.capacity = cap,
		.mask = cap - 1,
		.esize = es,
		.pos = role == MN_RING_PRODUCER ? prod : cons,
		.other = role == MN_RING_PRODUCER ? cons : prod,
		.role = role,
	};
	return 0;
}

int mn_ring__corrupt(struct mn_ring *r, const char *what, uint32_t mine,
		     uint32_t theirs)
{
	/* Log the first few only: a hostile peer must not flood the log. */
	if (r->corrupt++ < 4)
		mn_err("ring", "%s %" PRIu32 " is impossible with our index %" PRIu32
		       " and capacity %" PRIu32 ": peer corrupted the ring (event %" PRIu64 ")",
		       what, theirs, mine, r->capacity, r->corrupt);
	return -EBADMSG;
}

int mn_ring_pending(struct mn_ring *r, uint32_t *first, uint32_t *count)
{
	uint32_t prod, cons;

	/* Acquire pairs with the release stores of both indices. */
	if (r->role == MN_RING_PRODUCER) {
		prod = r->pos;
		cons = __atomic_load_n(&r->shm->cons_head, __ATOMIC_ACQUIRE);
		if (prod - cons > r->capacity)
			return mn_ring__corrupt(r, "cons_head", prod, cons);
	} else {
		cons = r->pos;
		prod = __atomic_load_n(&r->shm->prod_tail, __ATOMIC_ACQUIRE);
		if (prod - cons > r->capacity)
			return mn_ring__corrupt(r, "prod_tail", cons, prod);
	}
	*first = cons;
	*count = prod - cons;
	return 0;
}

int mn_ring_count(struct mn_ring *r)
{
	uint32_t first, count;
	int rc = mn_ring_pending(r, &first, &count);

	return rc < 0 ? rc : (int)count;
}
