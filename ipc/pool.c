/* SPDX-License-Identifier: MIT */
#include "pool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Log only the first few of each peer error: a hostile peer can't flood. */
#define LOG_FIRST 4

static int valid_geometry(uint32_t nbufs, uint32_t buf_size)
{
	return nbufs >= 1 && nbufs <= MN_POOL_MAX_BUFS && buf_size >= MN_POOL_MIN_BUF &&
	       buf_size <= MN_POOL_MAX_BUF && buf_size % 64 == 0;
}

size_t mn_pool_memsize(uint32_t nbufs, uint32_t buf_size)
{
	if (!valid_geometry(nbufs, buf_size))
		return 0;
	return MN_POOL_DATA_OFF + (size_t)nbufs * buf_size;
}

int mn_pool_format(void *mem, size_t len, uint32_t nbufs, uint32_t buf_size)
{
	struct mn_pool_shm *shm = mem;
	size_t need = mn_pool_memsize(nbufs, buf_size);

	if (need == 0) {
		mn_err("pool", "cannot format pool of %" PRIu32 " x %" PRIu32
		       " B: need 1..2^24 buffers of a multiple of 64 in 64..16 MiB",
		       nbufs, buf_size);
		return -EINVAL;
	}
	if (len < need) {
		mn_err("pool", "cannot format pool: %zu bytes available, %zu needed", len, need);
		return -ENOSPC;
	}
	memset(shm, 0, sizeof(*shm));
	shm->nbufs = nbufs;
	shm->buf_size = buf_size;
	/* Magic last: pairs with the acquire in read_header(). */
	__atomic_store_n(&shm->magic, MN_POOL_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

/* Read the shared header once and validate the copy. */
static int read_header(const void *mem, size_t len, uint32_t *nbufs, uint32_t *buf_size)
{
	const struct mn_pool_shm *shm = mem;
	uint32_t magic, n, sz;

	if (len < sizeof(*shm)) {
		mn_err("pool", "pool section of %zu bytes cannot hold its header", len);
		return -ERANGE;
	}
	/* Acquire pairs with the store-release of magic in mn_pool_format(). */
	magic = __atomic_load_n(&shm->magic, __ATOMIC_ACQUIRE);
	n = __atomic_load_n(&shm->nbufs, __ATOMIC_RELAXED);
	sz = __atomic_load_n(&shm->buf_size, __ATOMIC_RELAXED);
	if (magic != MN_POOL_MAGIC) {
		mn_err("pool", "magic 0x%08" PRIx32 ", expected 0x%08x: not a formatted pool",
		       magic, MN_POOL_MAGIC);
		return -EBADMSG;
	}
	if (!valid_geometry(n, sz)) {
		mn_err("pool", "impossible geometry: %" PRIu32 " buffers of %" PRIu32 " B", n, sz);
		return -EBADMSG;
	}
	if (mn_pool_memsize(n, sz) > len) {
		mn_err("pool", "%" PRIu32 " buffers of %" PRIu32 " B need %zu bytes, section has %zu",
		       n, sz, mn_pool_memsize(n, sz), len);
		return -ERANGE;
	}
	*nbufs = n;
	*buf_size = sz;
	return 0;
}

int mn_pool_init(struct mn_pool *p, void *mem, size_t len)
{
	uint32_t nbufs, buf_size;
	int err;

	err = read_header(mem, len, &nbufs, &buf_size);
	if (err)
		return err;
	*p = (struct mn_pool){
		.data = (uint8_t *)mem + MN_POOL_DATA_OFF,
		.nbufs = nbufs,
		.buf_size = buf_size,
	};
	p->state = calloc(nbufs, sizeof(*p->state));
	if (!p->state)
		goto fail;
	p->free_idx = malloc((size_t)nbufs * sizeof(*p->free_idx));
	if (!p->free_idx)
		goto fail_state;
	/* Lowest indices on top, so fresh pools hand out buffer 0 first. */
	for (uint32_t i = 0; i < nbufs; i++)
		p->free_idx[i] = nbufs - 1 - i;
	p->nfree = nbufs;
	return 0;

fail_state:
	free(p->state);
fail:
	mn_err("pool", "no memory for the state of %" PRIu32 " buffers", nbufs);
	*p = (struct mn_pool){ 0 };
	return -ENOMEM;
}

void mn_pool_fini(struct mn_pool *p)
{
	free(p->state);
	free(p->free_idx);
	*p = (struct mn_pool){ 0 };
}

int mn_pool_alloc(struct mn_pool *p)
{
	uint32_t idx;

	if (p->nfree == 0) {
		p->stats.alloc_fail++;
		return -ENOBUFS;
	}
	idx = p->free_idx[--p->nfree];
	p->state[idx] = MN_BUF_OWNER;
	return (int)idx;
}

static void push_free(struct mn_pool *p, uint32_t idx)
{
	p->state[idx] = MN_BUF_FREE;
	p->free_idx[p->nfree++] = idx;
}

int mn_pool_free(struct mn_pool *p, uint32_t idx)
{
	if (idx >= p->nbufs || p->state[idx] != MN_BUF_OWNER) {
		mn_err("pool", "free of buffer %" PRIu32 " (pool of %" PRIu32
		       ") that the owner does not hold (state %d): double free?",
		       idx, p->nbufs, idx < p->nbufs ? p->state[idx] : -1);
		return -EINVAL;
	}
	push_free(p, idx);
	return 0;
}

int mn_pool_lend(struct mn_pool *p, uint32_t idx)
{
	if (idx >= p->nbufs || p->state[idx] != MN_BUF_OWNER) {
		mn_err("pool", "lend of buffer %" PRIu32 " (pool of %" PRIu32
		       ") that the owner does not hold (state %d)",
		       idx, p->nbufs, idx < p->nbufs ? p->state[idx] : -1);
		return -EINVAL;
	}
	p->state[idx] = MN_BUF_PEER;
	p->nlent++;
	return 0;
}

int mn_pool_take(struct mn_pool *p, uint32_t idx)
{
	if (idx >= p->nbufs) {
		if (p->stats.bad_index++ < LOG_FIRST)
			mn_warn("pool", "peer returned buffer index %" PRIu32
				" outside the pool of %" PRIu32 ": ignored", idx, p->nbufs);
		return -ERANGE;
	}
	if (p->state[idx] != MN_BUF_PEER) {
		if (p->stats.not_lent++ < LOG_FIRST)
			mn_warn("pool", "peer returned buffer %" PRIu32
				" it does not hold (state %d): ignored", idx, p->state[idx]);
		return -EALREADY;
	}
	p->state[idx] = MN_BUF_OWNER;
	p->nlent--;
	return 0;
}

int mn_pool_state(const struct mn_pool *p, uint32_t idx)
{
	return idx < p->nbufs ? p->state[idx] : -ERANGE;
}

/* Mark in @keep every lent buffer whose descriptor waits in @r. */
static int mark_ring(struct mn_pool *p, struct mn_ring *r, uint8_t *keep)
{
	uint32_t first, count, idx;
	int err = mn_ring_pending(r, &first, &count);

	if (err)
		return err;
	for (uint32_t i = 0; i < count; i++) {
		memcpy(&idx, mn_ring_slot(r, first + i), sizeof(idx));
		if (idx >= p->nbufs || p->state[idx] != MN_BUF_PEER || keep[idx]) {
			if (idx >= p->nbufs)
				p->stats.bad_index++;
			else
				p->stats.not_lent++;
			continue;
		}
		keep[idx] = 1;
	}
	return 0;
}

int mn_pool_reclaim(struct mn_pool *p, struct mn_ring *const *rings,
		    unsigned int nrings)
{
	uint8_t *keep = calloc(p->nbufs, 1);
	int n = 0, err = 0;

	if (!keep)
		return -ENOMEM;
	for (unsigned int i = 0; i < nrings; i++) {
		err = mark_ring(p, rings[i], keep);
		if (err) {
			mn_err("pool", "cannot reclaim: ring %u of %u between owner and peer is corrupt; reformat the rings and reclaim with no rings",
			       i, nrings);
			goto out;
		}
	}
	for (uint32_t i = 0; i < p->nbufs; i++) {
		if (p->state[i] == MN_BUF_PEER && !keep[i]) {
			push_free(p, i);
			p->nlent--;
			n++;
		}
	}
	p->stats.reclaimed += (uint64_t)n;
	if (n)
		mn_info("pool", "reclaimed %d buffers from a dead peer; %" PRIu32
			" still in rings, %" PRIu32 " free", n, p->nlent, p->nfree);
out:
	free(keep);
	return err ? err : n;
}

int mn_pool_view_init(struct mn_pool_view *v, void *mem, size_t len)
{
	uint32_t nbufs, buf_size;
	int err = read_header(mem, len, &nbufs, &buf_size);

	if (err)
		return err;
	*v = (struct mn_pool_view){
		.data = (uint8_t *)mem + MN_POOL_DATA_OFF,
		.nbufs = nbufs,
		.buf_size = buf_size,
	};
	return 0;
}
