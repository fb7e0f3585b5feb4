/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for ipc/pool: geometry and header refusals, the ownership
 * state machine (alloc, free, lend, take), the peer's bounds-checked view,
 * and reclaim after peer death with descriptors still in rings.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>

#include "pool.h"
#include "ring.h"

#define NBUFS 16u
#define BUF_SIZE 128u

struct fixture {
	void *mem;
	size_t len;
	struct mn_pool p;
};

static void pool_new(struct fixture *f, uint32_t nbufs, uint32_t buf_size)
{
	f->len = mn_pool_memsize(nbufs, buf_size);
	assert_int_not_equal(f->len, 0);
	f->mem = malloc(f->len);
	assert_non_null(f->mem);
	memset(f->mem, 0xee, f->len);
	assert_int_equal(mn_pool_format(f->mem, f->len, nbufs, buf_size), 0);
	assert_int_equal(mn_pool_init(&f->p, f->mem, f->len), 0);
}

static void pool_free(struct fixture *f)
{
	mn_pool_fini(&f->p);
	free(f->mem);
	f->mem = NULL;
}

static struct mn_pool_shm *shm(const struct fixture *f)
{
	return f->mem;
}

/* Alloc @n buffers (indices into @idx, may be NULL) and lend the first @lend. */
static void alloc_lend(struct fixture *f, uint32_t n, uint32_t lend, uint32_t *idx)
{
	for (uint32_t i = 0; i < n; i++) {
		int b = mn_pool_alloc(&f->p);

		assert_true(b >= 0);
		if (idx)
			idx[i] = (uint32_t)b;
		if (i < lend)
			assert_int_equal(mn_pool_lend(&f->p, (uint32_t)b), 0);
	}
}

static uint32_t count_state(const struct mn_pool *p, int st)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < p->nbufs; i++)
		n += mn_pool_state(p, i) == st;
	return n;
}

/* The counters agree with the per-buffer states and add up to nbufs. */
static void check_accounting(const struct mn_pool *p)
{
	uint32_t nfree = count_state(p, MN_BUF_FREE);
	uint32_t nlent = count_state(p, MN_BUF_PEER);
	uint32_t nowner = count_state(p, MN_BUF_OWNER);

	assert_int_equal(mn_pool_nfree(p), nfree);
	assert_int_equal(mn_pool_nlent(p), nlent);
	assert_int_equal(nfree + nlent + nowner, p->nbufs);
}

/* Snapshot of everything a refused call must leave alone. */
struct snapshot {
	uint32_t nfree, nlent;
	uint8_t state[NBUFS];
};

static void snap(const struct mn_pool *p, struct snapshot *s)
{
	s->nfree = mn_pool_nfree(p);
	s->nlent = mn_pool_nlent(p);
	for (uint32_t i = 0; i < NBUFS; i++)
		s->state[i] = (uint8_t)mn_pool_state(p, i);
}

static void assert_unchanged(const struct mn_pool *p, const struct snapshot *before)
{
	struct snapshot now;

	snap(p, &now);
	assert_memory_equal(&now, before, sizeof(now));
}

/* ---- geometry, format, init -------------------------------------------- */

static void test_memsize_of_valid_geometries(void **state)
{
	(void)state;
	assert_int_equal(mn_pool_memsize(1, 64), MN_POOL_DATA_OFF + 64);
	assert_int_equal(mn_pool_memsize(NBUFS, BUF_SIZE), MN_POOL_DATA_OFF + NBUFS * BUF_SIZE);
	assert_int_equal(mn_pool_memsize(3, 192), MN_POOL_DATA_OFF + 576);
	assert_int_equal(mn_pool_memsize(MN_POOL_MAX_BUFS, MN_POOL_MAX_BUF),
			 MN_POOL_DATA_OFF + (size_t)MN_POOL_MAX_BUFS * MN_POOL_MAX_BUF);
}

static void test_memsize_rejects_invalid_geometries(void **state)
{
	static const struct {
		uint32_t nbufs, buf_size;
	} bad[] = {
		{ 0, 64 },	{ MN_POOL_MAX_BUFS + 1, 64 }, { UINT32_MAX, 64 },
		{ 1, 0 },	{ 1, 32 },		      { 1, 63 },
		{ 1, 96 },	{ 1, 65 },		      { 1, MN_POOL_MAX_BUF + 64 },
		{ 1, UINT32_MAX },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (mn_pool_memsize(bad[i].nbufs, bad[i].buf_size) != 0)
			fail_msg("memsize(%u, %u) accepted", bad[i].nbufs, bad[i].buf_size);
}

static void test_format_writes_header(void **state)
{
	struct fixture f;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	assert_int_equal(shm(&f)->magic, MN_POOL_MAGIC);
	assert_int_equal(shm(&f)->nbufs, NBUFS);
	assert_int_equal(shm(&f)->buf_size, BUF_SIZE);
	pool_free(&f);
}

static void test_format_refuses_bad_geometry(void **state)
{
	uint8_t mem[8192];

	(void)state;
	tu_log_reset();
	assert_int_equal(mn_pool_format(mem, sizeof(mem), 0, 64), -EINVAL);
	assert_log_contains("0 x 64");
	assert_int_equal(mn_pool_format(mem, sizeof(mem), 1, 100), -EINVAL);
	assert_int_equal(mn_pool_format(mem, sizeof(mem), 1, 32), -EINVAL);
}

static void test_format_refuses_short_memory(void **state)
{
	uint8_t mem[8192];
	size_t need = mn_pool_memsize(4, 64);

	(void)state;
	tu_log_reset();
	assert_int_equal(mn_pool_format(mem, need - 1, 4, 64), -ENOSPC);
	assert_log_contains("needed");
	assert_int_equal(mn_pool_format(mem, 0, 4, 64), -ENOSPC);
	assert_int_equal(mn_pool_format(mem, need, 4, 64), 0);
}

static void test_init_starts_with_all_buffers_free(void **state)
{
	struct fixture f;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	assert_int_equal(mn_pool_nfree(&f.p), NBUFS);
	assert_int_equal(mn_pool_nlent(&f.p), 0);
	for (uint32_t i = 0; i < NBUFS; i++)
		assert_int_equal(mn_pool_state(&f.p, i), MN_BUF_FREE);
	check_accounting(&f.p);
	pool_free(&f);
}

static void test_init_refuses_unformatted_memory(void **state)
{
	struct fixture f;
	struct mn_pool p;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	memset(f.mem, 0, sizeof(struct mn_pool_shm));
	tu_log_reset();
	assert_int_equal(mn_pool_init(&p, f.mem, f.len), -EBADMSG);
	assert_log_contains("magic");
	pool_free(&f);
}

static void test_init_refuses_impossible_geometry(void **state)
{
	struct fixture f;
	struct mn_pool p;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	shm(&f)->buf_size = 100;
	tu_log_reset();
	assert_int_equal(mn_pool_init(&p, f.mem, f.len), -EBADMSG);
	assert_log_contains("geometry");
	shm(&f)->buf_size = BUF_SIZE;
	shm(&f)->nbufs = 0;
	assert_int_equal(mn_pool_init(&p, f.mem, f.len), -EBADMSG);
	pool_free(&f);
}

static void test_init_refuses_pool_larger_than_len(void **state)
{
	struct fixture f;
	struct mn_pool p;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	tu_log_reset();
	assert_int_equal(mn_pool_init(&p, f.mem, f.len - 1), -ERANGE);
	assert_log_contains("bytes");
	/* A forged count that would reach past the section. */
	shm(&f)->nbufs = NBUFS + 1;
	assert_int_equal(mn_pool_init(&p, f.mem, f.len), -ERANGE);
	pool_free(&f);
}

static void test_init_refuses_len_below_header(void **state)
{
	struct fixture f;
	struct mn_pool p;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	assert_int_equal(mn_pool_init(&p, f.mem, sizeof(struct mn_pool_shm) - 1), -ERANGE);
	assert_int_equal(mn_pool_init(&p, f.mem, 0), -ERANGE);
	pool_free(&f);
}

static void test_fini_is_safe_on_zeroed_handle_and_twice(void **state)
{
	struct mn_pool p = { 0 };
	struct fixture f;

	(void)state;
	mn_pool_fini(&p);
	pool_new(&f, NBUFS, BUF_SIZE);
	mn_pool_fini(&f.p);
	mn_pool_fini(&f.p);
	free(f.mem);
}

static void test_buf_addresses_are_inside_and_disjoint(void **state)
{
	struct fixture f;
	uint8_t *base;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	base = (uint8_t *)f.mem + MN_POOL_DATA_OFF;
	for (uint32_t i = 0; i < NBUFS; i++)
		assert_ptr_equal(mn_pool_buf(&f.p, i), base + (size_t)i * BUF_SIZE);
	assert_true((uint8_t *)mn_pool_buf(&f.p, NBUFS - 1) + BUF_SIZE ==
		    (uint8_t *)f.mem + f.len);
	assert_null(mn_pool_buf(&f.p, NBUFS));
	assert_null(mn_pool_buf(&f.p, UINT32_MAX));
	pool_free(&f);
}

/* ---- alloc and free ---------------------------------------------------- */

static void test_alloc_all_then_enobufs(void **state)
{
	struct fixture f;
	uint8_t seen[NBUFS] = { 0 };

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	for (uint32_t i = 0; i < NBUFS; i++) {
		int b = mn_pool_alloc(&f.p);

		assert_in_range(b, 0, NBUFS - 1);
		assert_int_equal(seen[b], 0);
		seen[b] = 1;
		assert_int_equal(mn_pool_state(&f.p, (uint32_t)b), MN_BUF_OWNER);
	}
	assert_int_equal(mn_pool_nfree(&f.p), 0);
	assert_int_equal(mn_pool_alloc(&f.p), -ENOBUFS);
	assert_int_equal(f.p.stats.alloc_fail, 1);
	assert_int_equal(mn_pool_alloc(&f.p), -ENOBUFS);
	assert_int_equal(f.p.stats.alloc_fail, 2);
	check_accounting(&f.p);
	pool_free(&f);
}

static void test_free_returns_buffer_for_reuse(void **state)
{
	struct fixture f;
	int b;

	(void)state;
	pool_new(&f, 1, 64);
	b = mn_pool_alloc(&f.p);
	assert_int_equal(b, 0);
	assert_int_equal(mn_pool_alloc(&f.p), -ENOBUFS);
	assert_int_equal(mn_pool_free(&f.p, (uint32_t)b), 0);
	assert_int_equal(mn_pool_state(&f.p, 0), MN_BUF_FREE);
	assert_int_equal(mn_pool_nfree(&f.p), 1);
	assert_int_equal(mn_pool_alloc(&f.p), 0);
	pool_free(&f);
}

static void test_double_free_is_refused(void **state)
{
	struct fixture f;
	struct snapshot s;
	int b;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	b = mn_pool_alloc(&f.p);
	assert_int_equal(mn_pool_free(&f.p, (uint32_t)b), 0);
	snap(&f.p, &s);
	tu_log_reset();
	assert_int_equal(mn_pool_free(&f.p, (uint32_t)b), -EINVAL);
	assert_log_contains("double free");
	assert_unchanged(&f.p, &s);
	pool_free(&f);
}

static void test_free_of_never_allocated_buffer_is_refused(void **state)
{
	struct fixture f;
	struct snapshot s;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	snap(&f.p, &s);
	assert_int_equal(mn_pool_free(&f.p, 3), -EINVAL);
	assert_unchanged(&f.p, &s);
	pool_free(&f);
}

static void test_free_out_of_range_is_refused(void **state)
{
	struct fixture f;
	struct snapshot s;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 2, 0, NULL);
	snap(&f.p, &s);
	assert_int_equal(mn_pool_free(&f.p, NBUFS), -EINVAL);
	assert_int_equal(mn_pool_free(&f.p, UINT32_MAX), -EINVAL);
	assert_unchanged(&f.p, &s);
	pool_free(&f);
}

static void test_free_of_lent_buffer_is_refused(void **state)
{
	struct fixture f;
	struct snapshot s;
	uint32_t idx;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 1, 1, &idx);
	snap(&f.p, &s);
	assert_int_equal(mn_pool_free(&f.p, idx), -EINVAL);
	assert_int_equal(mn_pool_state(&f.p, idx), MN_BUF_PEER);
	assert_unchanged(&f.p, &s);
	pool_free(&f);
}

/* ---- lend and take ----------------------------------------------------- */

static void test_lend_then_take_round_trip(void **state)
{
	struct fixture f;
	int b;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	b = mn_pool_alloc(&f.p);
	assert_int_equal(mn_pool_lend(&f.p, (uint32_t)b), 0);
	assert_int_equal(mn_pool_state(&f.p, (uint32_t)b), MN_BUF_PEER);
	assert_int_equal(mn_pool_nlent(&f.p), 1);
	check_accounting(&f.p);
	assert_int_equal(mn_pool_take(&f.p, (uint32_t)b), 0);
	assert_int_equal(mn_pool_state(&f.p, (uint32_t)b), MN_BUF_OWNER);
	assert_int_equal(mn_pool_nlent(&f.p), 0);
	assert_int_equal(mn_pool_free(&f.p, (uint32_t)b), 0);
	assert_int_equal(mn_pool_nfree(&f.p), NBUFS);
	check_accounting(&f.p);
	pool_free(&f);
}

static void test_lend_of_free_buffer_is_refused(void **state)
{
	struct fixture f;
	struct snapshot s;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	snap(&f.p, &s);
	assert_int_equal(mn_pool_lend(&f.p, 0), -EINVAL);
	assert_unchanged(&f.p, &s);
	pool_free(&f);
}

static void test_lend_twice_is_refused(void **state)
{
	struct fixture f;
	struct snapshot s;
	uint32_t idx;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 1, 1, &idx);
	snap(&f.p, &s);
	assert_int_equal(mn_pool_lend(&f.p, idx), -EINVAL);
	assert_unchanged(&f.p, &s);
	pool_free(&f);
}

static void test_lend_out_of_range_is_refused(void **state)
{
	struct fixture f;
	struct snapshot s;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	snap(&f.p, &s);
	assert_int_equal(mn_pool_lend(&f.p, NBUFS), -EINVAL);
	assert_unchanged(&f.p, &s);
	pool_free(&f);
}

static void test_take_out_of_range_is_refused_and_counted(void **state)
{
	struct fixture f;
	struct snapshot s;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 4, 2, NULL);
	snap(&f.p, &s);
	tu_log_reset();
	assert_int_equal(mn_pool_take(&f.p, NBUFS), -ERANGE);
	assert_int_equal(f.p.stats.bad_index, 1);
	assert_log_contains("outside");
	assert_int_equal(mn_pool_take(&f.p, UINT32_MAX), -ERANGE);
	assert_int_equal(f.p.stats.bad_index, 2);
	assert_int_equal(f.p.stats.not_lent, 0);
	assert_unchanged(&f.p, &s);
	pool_free(&f);
}

static void test_take_of_buffer_not_lent_is_refused_and_counted(void **state)
{
	struct fixture f;
	struct snapshot s;
	uint32_t idx[2];

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 2, 1, idx); /* idx[0] lent, idx[1] owner-held */
	snap(&f.p, &s);
	tu_log_reset();
	assert_int_equal(mn_pool_take(&f.p, idx[1]), -EALREADY);
	assert_int_equal(f.p.stats.not_lent, 1);
	assert_log_contains("does not hold");
	/* A free buffer is not the peer's either. */
	assert_int_equal(mn_pool_state(&f.p, NBUFS - 1), MN_BUF_FREE);
	assert_int_equal(mn_pool_take(&f.p, NBUFS - 1), -EALREADY);
	assert_int_equal(f.p.stats.not_lent, 2);
	assert_int_equal(f.p.stats.bad_index, 0);
	assert_unchanged(&f.p, &s);
	pool_free(&f);
}

static void test_take_twice_is_refused(void **state)
{
	struct fixture f;
	struct snapshot s;
	uint32_t idx;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 1, 1, &idx);
	assert_int_equal(mn_pool_take(&f.p, idx), 0);
	snap(&f.p, &s);
	assert_int_equal(mn_pool_take(&f.p, idx), -EALREADY);
	assert_int_equal(f.p.stats.not_lent, 1);
	assert_unchanged(&f.p, &s);
	pool_free(&f);
}

static void test_state_out_of_range_is_erange(void **state)
{
	struct fixture f;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	assert_int_equal(mn_pool_state(&f.p, NBUFS), -ERANGE);
	assert_int_equal(mn_pool_state(&f.p, UINT32_MAX), -ERANGE);
	pool_free(&f);
}

/* ---- peer view --------------------------------------------------------- */

static void test_view_init_reads_geometry(void **state)
{
	struct fixture f;
	struct mn_pool_view v;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	assert_int_equal(mn_pool_view_init(&v, f.mem, f.len), 0);
	assert_int_equal(v.nbufs, NBUFS);
	assert_int_equal(v.buf_size, BUF_SIZE);
	for (uint32_t i = 0; i < NBUFS; i++)
		assert_ptr_equal(mn_pool_view_buf(&v, i, 0, BUF_SIZE), mn_pool_buf(&f.p, i));
	pool_free(&f);
}

static void test_view_init_refuses_bad_magic(void **state)
{
	struct fixture f;
	struct mn_pool_view v;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	shm(&f)->magic = ~MN_POOL_MAGIC;
	tu_log_reset();
	assert_int_equal(mn_pool_view_init(&v, f.mem, f.len), -EBADMSG);
	assert_log_contains("magic");
	pool_free(&f);
}

static void test_view_init_refuses_bad_geometry(void **state)
{
	struct fixture f;
	struct mn_pool_view v;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	shm(&f)->buf_size = 0;
	assert_int_equal(mn_pool_view_init(&v, f.mem, f.len), -EBADMSG);
	shm(&f)->buf_size = BUF_SIZE;
	shm(&f)->nbufs = MN_POOL_MAX_BUFS + 1;
	assert_int_equal(mn_pool_view_init(&v, f.mem, f.len), -EBADMSG);
	pool_free(&f);
}

static void test_view_init_refuses_pool_larger_than_len(void **state)
{
	struct fixture f;
	struct mn_pool_view v;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	assert_int_equal(mn_pool_view_init(&v, f.mem, f.len - 1), -ERANGE);
	assert_int_equal(mn_pool_view_init(&v, f.mem, 8), -ERANGE);
	shm(&f)->buf_size = 2 * BUF_SIZE; /* forged: twice the section */
	assert_int_equal(mn_pool_view_init(&v, f.mem, f.len), -ERANGE);
	pool_free(&f);
}

static void test_view_buf_checks_bounds(void **state)
{
	struct fixture f;
	struct mn_pool_view v;
	uint8_t *b1;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	assert_int_equal(mn_pool_view_init(&v, f.mem, f.len), 0);
	b1 = mn_pool_buf(&f.p, 1);
	/* Inside. */
	assert_ptr_equal(mn_pool_view_buf(&v, 1, 0, BUF_SIZE), b1);
	assert_ptr_equal(mn_pool_view_buf(&v, 1, 10, BUF_SIZE - 10), b1 + 10);
	assert_ptr_equal(mn_pool_view_buf(&v, 1, BUF_SIZE - 1, 1), b1 + BUF_SIZE - 1);
	assert_ptr_equal(mn_pool_view_buf(&v, NBUFS - 1, 0, 1), mn_pool_buf(&f.p, NBUFS - 1));
	/* Index. */
	assert_null(mn_pool_view_buf(&v, NBUFS, 0, 1));
	assert_null(mn_pool_view_buf(&v, UINT32_MAX, 0, 1));
	/* Offset, length, and their sum. */
	assert_null(mn_pool_view_buf(&v, 1, BUF_SIZE + 1, 0));
	assert_null(mn_pool_view_buf(&v, 1, 0, BUF_SIZE + 1));
	assert_null(mn_pool_view_buf(&v, 1, 1, BUF_SIZE));
	assert_null(mn_pool_view_buf(&v, 1, BUF_SIZE, 1));
	assert_null(mn_pool_view_buf(&v, 1, UINT32_MAX, 1));
	assert_null(mn_pool_view_buf(&v, 1, UINT32_MAX, UINT32_MAX));
	assert_null(mn_pool_view_buf(&v, 1, 1, UINT32_MAX));
	assert_null(mn_pool_view_buf(&v, 1, 64, UINT32_MAX - 63)); /* wraps to 0 */
	pool_free(&f);
}

/* ---- reclaim ----------------------------------------------------------- */

struct ring_pair {
	void *mem;
	size_t len;
	struct mn_ring owner, peer;
};

/* A pool ring of struct mn_desc; the owner holds @owner_role. */
static void ring_pair_new(struct ring_pair *rp, uint32_t capacity, enum mn_ring_role owner_role)
{
	enum mn_ring_role peer_role =
		owner_role == MN_RING_PRODUCER ? MN_RING_CONSUMER : MN_RING_PRODUCER;

	rp->len = mn_ring_memsize(capacity, sizeof(struct mn_desc));
	rp->mem = malloc(rp->len);
	assert_non_null(rp->mem);
	assert_int_equal(mn_ring_format(rp->mem, rp->len, capacity, sizeof(struct mn_desc)), 0);
	assert_int_equal(mn_ring_attach(&rp->owner, rp->mem, rp->len, sizeof(struct mn_desc),
					owner_role), 0);
	assert_int_equal(mn_ring_attach(&rp->peer, rp->mem, rp->len, sizeof(struct mn_desc),
					peer_role), 0);
}

static void ring_pair_free(struct ring_pair *rp)
{
	free(rp->mem);
	rp->mem = NULL;
}

static void put(struct mn_ring *r, uint32_t idx)
{
	struct mn_desc d = { .idx = idx, .len = 1 };

	assert_int_equal(mn_ring_enqueue(r, &d), 1);
}

static void test_reclaim_without_rings_frees_all_lent(void **state)
{
	struct fixture f;

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 10, 7, NULL); /* 7 lent, 3 owner-held, 6 free */
	assert_int_equal(mn_pool_reclaim(&f.p, NULL, 0), 7);
	assert_int_equal(mn_pool_nlent(&f.p), 0);
	assert_int_equal(mn_pool_nfree(&f.p), 13);
	assert_int_equal(count_state(&f.p, MN_BUF_OWNER), 3);
	assert_int_equal(f.p.stats.reclaimed, 7);
	check_accounting(&f.p);
	/* Nothing left to reclaim. */
	assert_int_equal(mn_pool_reclaim(&f.p, NULL, 0), 0);
	assert_int_equal(f.p.stats.reclaimed, 7);
	pool_free(&f);
}

/*
 * 10 buffers allocated, 0..7 lent. Fill ring (owner produces): 0, 1, 2, 3
 * put, the peer took 0 and 1 off it. Rx ring (owner consumes): the peer put
 * 4 and 5 back. The dead peer held 0, 1, 6, 7 in its hands: those come back;
 * 2, 3 (fill) and 4, 5 (rx) stay lent where the rings hold them.
 */
static void test_reclaim_keeps_buffers_pending_in_rings(void **state)
{
	struct fixture f;
	struct ring_pair fill, rx;
	struct mn_ring *rings[2];
	struct mn_desc d;
	uint32_t idx[10];

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 10, 8, idx);
	ring_pair_new(&fill, 8, MN_RING_PRODUCER);
	ring_pair_new(&rx, 8, MN_RING_CONSUMER);
	for (int i = 0; i < 4; i++)
		put(&fill.owner, idx[i]);
	assert_int_equal(mn_ring_dequeue(&fill.peer, &d), 1);
	assert_int_equal(mn_ring_dequeue(&fill.peer, &d), 1);
	put(&rx.peer, idx[4]);
	put(&rx.peer, idx[5]);
	rings[0] = &fill.owner;
	rings[1] = &rx.owner;

	assert_int_equal(mn_pool_reclaim(&f.p, rings, 2), 4);
	for (int i = 0; i < 10; i++) {
		int want = i < 2 || i == 6 || i == 7 ? MN_BUF_FREE
			 : i < 6			   ? MN_BUF_PEER
							   : MN_BUF_OWNER;

		assert_int_equal(mn_pool_state(&f.p, idx[i]), want);
	}
	assert_int_equal(mn_pool_nlent(&f.p), 4);
	assert_int_equal(mn_pool_nfree(&f.p), NBUFS - 10 + 4);
	assert_int_equal(mn_pool_nfree(&f.p) + mn_pool_nlent(&f.p) +
				 count_state(&f.p, MN_BUF_OWNER), NBUFS);
	assert_int_equal(f.p.stats.reclaimed, 4);
	check_accounting(&f.p);
	/* The rings were read, not consumed. */
	assert_int_equal(mn_ring_count(&fill.owner), 2);
	assert_int_equal(mn_ring_count(&rx.owner), 2);
	/* What the rx ring still holds is the peer's to give back: take works. */
	assert_int_equal(mn_ring_dequeue(&rx.owner, &d), 1);
	assert_int_equal(mn_pool_take(&f.p, d.idx), 0);
	assert_int_equal(mn_ring_dequeue(&rx.owner, &d), 1);
	assert_int_equal(mn_pool_take(&f.p, d.idx), 0);
	ring_pair_free(&fill);
	ring_pair_free(&rx);
	pool_free(&f);
}

static void test_reclaim_skips_forged_index_in_ring(void **state)
{
	struct fixture f;
	struct ring_pair rx;
	struct mn_ring *rings[1];
	uint32_t idx[4];

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 4, 4, idx);
	ring_pair_new(&rx, 8, MN_RING_CONSUMER);
	put(&rx.peer, NBUFS);	   /* out of range */
	put(&rx.peer, UINT32_MAX); /* out of range */
	put(&rx.peer, idx[0]);
	rings[0] = &rx.owner;
	assert_int_equal(mn_pool_reclaim(&f.p, rings, 1), 3);
	assert_int_equal(f.p.stats.bad_index, 2);
	assert_int_equal(f.p.stats.not_lent, 0);
	assert_int_equal(mn_pool_state(&f.p, idx[0]), MN_BUF_PEER);
	assert_int_equal(mn_pool_nlent(&f.p), 1);
	check_accounting(&f.p);
	ring_pair_free(&rx);
	pool_free(&f);
}

static void test_reclaim_skips_duplicate_index_in_ring(void **state)
{
	struct fixture f;
	struct ring_pair rx, fill;
	struct mn_ring *rings[2];
	uint32_t idx[4];

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 4, 4, idx);
	ring_pair_new(&rx, 8, MN_RING_CONSUMER);
	ring_pair_new(&fill, 8, MN_RING_PRODUCER);
	put(&rx.peer, idx[1]);
	put(&rx.peer, idx[1]); /* the same buffer returned twice */
	put(&fill.owner, idx[2]);
	put(&rx.peer, idx[2]); /* and one both in fill and in rx */
	rings[0] = &fill.owner;
	rings[1] = &rx.owner;
	assert_int_equal(mn_pool_reclaim(&f.p, rings, 2), 2); /* idx[0], idx[3] */
	assert_int_equal(f.p.stats.not_lent, 2);
	assert_int_equal(f.p.stats.bad_index, 0);
	assert_int_equal(mn_pool_state(&f.p, idx[1]), MN_BUF_PEER);
	assert_int_equal(mn_pool_state(&f.p, idx[2]), MN_BUF_PEER);
	assert_int_equal(mn_pool_state(&f.p, idx[0]), MN_BUF_FREE);
	assert_int_equal(mn_pool_state(&f.p, idx[3]), MN_BUF_FREE);
	check_accounting(&f.p);
	ring_pair_free(&rx);
	ring_pair_free(&fill);
	pool_free(&f);
}

static void test_reclaim_skips_index_not_lent_in_ring(void **state)
{
	struct fixture f;
	struct ring_pair rx;
	struct mn_ring *rings[1];
	uint32_t idx[3];

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 3, 2, idx); /* idx[2] owner-held */
	ring_pair_new(&rx, 8, MN_RING_CONSUMER);
	put(&rx.peer, idx[2]);
	put(&rx.peer, NBUFS - 1); /* free */
	rings[0] = &rx.owner;
	assert_int_equal(mn_pool_reclaim(&f.p, rings, 1), 2);
	assert_int_equal(f.p.stats.not_lent, 2);
	assert_int_equal(mn_pool_state(&f.p, idx[2]), MN_BUF_OWNER);
	assert_int_equal(mn_pool_state(&f.p, NBUFS - 1), MN_BUF_FREE);
	check_accounting(&f.p);
	ring_pair_free(&rx);
	pool_free(&f);
}

static void test_reclaim_with_corrupt_ring_reclaims_nothing(void **state)
{
	struct fixture f;
	struct ring_pair fill, rx;
	struct mn_ring *rings[2];
	struct snapshot s;
	uint32_t idx[6];

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 6, 6, idx);
	ring_pair_new(&fill, 8, MN_RING_PRODUCER);
	ring_pair_new(&rx, 8, MN_RING_CONSUMER);
	put(&fill.owner, idx[0]);
	/* The dying peer scribbled its producer index: 100 entries in 8 slots. */
	((struct mn_ring_shm *)rx.mem)->prod_tail = 100;
	rings[0] = &fill.owner; /* a good ring first: its marks must not count */
	rings[1] = &rx.owner;
	snap(&f.p, &s);
	tu_log_reset();
	assert_int_equal(mn_pool_reclaim(&f.p, rings, 2), -EBADMSG);
	assert_log_contains("corrupt");
	assert_unchanged(&f.p, &s);
	assert_int_equal(f.p.stats.reclaimed, 0);
	/* The caller reformats the rings and reclaims with none. */
	assert_int_equal(mn_pool_reclaim(&f.p, NULL, 0), 6);
	assert_int_equal(mn_pool_nfree(&f.p), NBUFS);
	check_accounting(&f.p);
	ring_pair_free(&fill);
	ring_pair_free(&rx);
	pool_free(&f);
}

static void test_reclaim_reads_first_field_of_larger_descriptors(void **state)
{
	struct fixture f;
	struct mn_ring_shm *shm16;
	struct mn_ring owner, peer;
	struct mn_ring *rings[1];
	uint32_t idx[3];
	struct {
		uint32_t idx, len;
		uint64_t cookie;
	} d = { 0 };
	size_t len = mn_ring_memsize(4, sizeof(d));

	(void)state;
	pool_new(&f, NBUFS, BUF_SIZE);
	alloc_lend(&f, 3, 3, idx);
	shm16 = malloc(len);
	assert_non_null(shm16);
	assert_int_equal(mn_ring_format(shm16, len, 4, sizeof(d)), 0);
	assert_int_equal(mn_ring_attach(&owner, shm16, len, sizeof(d), MN_RING_CONSUMER), 0);
	assert_int_equal(mn_ring_attach(&peer, shm16, len, sizeof(d), MN_RING_PRODUCER), 0);
	d.idx = idx[1];
	d.cookie = idx[2]; /* must not be mistaken for an index */
	assert_int_equal(mn_ring_enqueue(&peer, &d), 1);
	rings[0] = &owner;
	assert_int_equal(mn_pool_reclaim(&f.p, rings, 1), 2);
	assert_int_equal(mn_pool_state(&f.p, idx[1]), MN_BUF_PEER);
	assert_int_equal(mn_pool_state(&f.p, idx[2]), MN_BUF_FREE);
	free(shm16);
	pool_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memsize_of_valid_geometries),
		cmocka_unit_test(test_memsize_rejects_invalid_geometries),
		cmocka_unit_test(test_format_writes_header),
		cmocka_unit_test(test_format_refuses_bad_geometry),
		cmocka_unit_test(test_format_refuses_short_memory),
		cmocka_unit_test(test_init_starts_with_all_buffers_free),
		cmocka_unit_test(test_init_refuses_unformatted_memory),
		cmocka_unit_test(test_init_refuses_impossible_geometry),
		cmocka_unit_test(test_init_refuses_pool_larger_than_len),
		cmocka_unit_test(test_init_refuses_len_below_header),
		cmocka_unit_test(test_fini_is_safe_on_zeroed_handle_and_twice),
		cmocka_unit_test(test_buf_addresses_are_inside_and_disjoint),
		cmocka_unit_test(test_alloc_all_then_enobufs),
		cmocka_unit_test(test_free_returns_buffer_for_reuse),
		cmocka_unit_test(test_double_free_is_refused),
		cmocka_unit_test(test_free_of_never_allocated_buffer_is_refused),
		cmocka_unit_test(test_free_out_of_range_is_refused),
		cmocka_unit_test(test_free_of_lent_buffer_is_refused),
		cmocka_unit_test(test_lend_then_take_round_trip),
		cmocka_unit_test(test_lend_of_free_buffer_is_refused),
		cmocka_unit_test(test_lend_twice_is_refused),
		cmocka_unit_test(test_lend_out_of_range_is_refused),
		cmocka_unit_test(test_take_out_of_range_is_refused_and_counted),
		cmocka_unit_test(test_take_of_buffer_not_lent_is_refused_and_counted),
		cmocka_unit_test(test_take_twice_is_refused),
		cmocka_unit_test(test_state_out_of_range_is_erange),
		cmocka_unit_test(test_view_init_reads_geometry),
		cmocka_unit_test(test_view_init_refuses_bad_magic),
		cmocka_unit_test(test_view_init_refuses_bad_geometry),
		cmocka_unit_test(test_view_init_refuses_pool_larger_than_len),
		cmocka_unit_test(test_view_buf_checks_bounds),
		cmocka_unit_test(test_reclaim_without_rings_frees_all_lent),
		cmocka_unit_test(test_reclaim_keeps_buffers_pending_in_rings),
		cmocka_unit_test(test_reclaim_skips_forged_index_in_ring),
		cmocka_unit_test(test_reclaim_skips_duplicate_index_in_ring),
		cmocka_unit_test(test_reclaim_skips_index_not_lent_in_ring),
		cmocka_unit_test(test_reclaim_with_corrupt_ring_reclaims_nothing),
		cmocka_unit_test(test_reclaim_reads_first_field_of_larger_descriptors),
	};

	return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
