/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for ipc/ring: geometry, format and attach refusals, burst
 * semantics, wrap-around of the free-running indices, entry sizes, and
 * detection of a peer that corrupts its index.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>

#include "ring.h"

struct fixture {
	void *mem;
	size_t len;
	struct mn_ring prod, cons;
};

/* malloc'd (so 16-byte aligned) and formatted, nobody attached. */
static void ring_new(struct fixture *f, uint32_t capacity, uint32_t esize)
{
	f->len = mn_ring_memsize(capacity, esize);
	assert_int_not_equal(f->len, 0);
	f->mem = malloc(f->len);
	assert_non_null(f->mem);
	memset(f->mem, 0xee, f->len);
	assert_int_equal(mn_ring_format(f->mem, f->len, capacity, esize), 0);
}

static void ring_attach_both(struct fixture *f, uint32_t esize)
{
	assert_int_equal(mn_ring_attach(&f->prod, f->mem, f->len, esize, MN_RING_PRODUCER), 0);
	assert_int_equal(mn_ring_attach(&f->cons, f->mem, f->len, esize, MN_RING_CONSUMER), 0);
}

static struct mn_ring_shm *shm(const struct fixture *f)
{
	return f->mem;
}

static void ring_free(struct fixture *f)
{
	free(f->mem);
	f->mem = NULL;
}

/* ---- geometry and format ----------------------------------------------- */

static void test_memsize_of_valid_geometries(void **state)
{
	(void)state;
	assert_int_equal(mn_ring_memsize(2, 8), MN_RING_HDR_SIZE + 16);
	assert_int_equal(mn_ring_memsize(1024, 16), MN_RING_HDR_SIZE + 16384);
	assert_int_equal(mn_ring_memsize(4, 24), MN_RING_HDR_SIZE + 96);
	assert_int_equal(mn_ring_memsize(8, MN_RING_MAX_ESIZE), MN_RING_HDR_SIZE + 2048);
	assert_int_equal(mn_ring_memsize(MN_RING_MAX_CAPACITY, MN_RING_MAX_ESIZE),
			 MN_RING_HDR_SIZE + (size_t)MN_RING_MAX_CAPACITY * MN_RING_MAX_ESIZE);
}

static void test_memsize_rejects_invalid_geometries(void **state)
{
	static const struct {
		uint32_t capacity, esize;
	} bad[] = {
		{ 0, 8 },	{ 1, 8 },	 { 3, 8 },	       { 6, 8 },
		{ 1000, 8 },	{ MN_RING_MAX_CAPACITY * 2, 8 },	{ 1u << 31, 8 },
		{ UINT32_MAX, 8 }, { 8, 0 },	 { 8, 4 },	       { 8, 12 },
		{ 8, 7 },	{ 8, MN_RING_MAX_ESIZE + 8 },		{ 8, UINT32_MAX },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (mn_ring_memsize(bad[i].capacity, bad[i].esize) != 0)
			fail_msg("memsize(%u, %u) accepted", bad[i].capacity, bad[i].esize);
}

static void test_format_writes_empty_ring(void **state)
{
	struct fixture f;

	(void)state;
	ring_new(&f, 16, 24);
	assert_int_equal(shm(&f)->magic, MN_RING_MAGIC);
	assert_int_equal(shm(&f)->capacity, 16);
	assert_int_equal(shm(&f)->esize, 24);
	assert_int_equal(shm(&f)->prod_tail, 0);
	assert_int_equal(shm(&f)->cons_head, 0);
	ring_free(&f);
}

static void test_format_resets_stale_indices(void **state)
{
	struct fixture f;

	(void)state;
	ring_new(&f, 8, 8);
	shm(&f)->prod_tail = 77;
	shm(&f)->cons_head = 3;
	assert_int_equal(mn_ring_format(f.mem, f.len, 8, 8), 0);
	assert_int_equal(shm(&f)->prod_tail, 0);
	assert_int_equal(shm(&f)->cons_head, 0);
	ring_free(&f);
}

static void test_format_refuses_bad_geometry(void **state)
{
	uint64_t mem[512];

	(void)state;
	tu_log_reset();
	assert_int_equal(mn_ring_format(mem, sizeof(mem), 3, 8), -EINVAL);
	assert_log_contains("capacity");
	assert_int_equal(mn_ring_format(mem, sizeof(mem), 0, 8), -EINVAL);
	assert_int_equal(mn_ring_format(mem, sizeof(mem), 8, 12), -EINVAL);
	assert_int_equal(mn_ring_format(mem, sizeof(mem), 8, 0), -EINVAL);
	assert_int_equal(mn_ring_format(mem, sizeof(mem), 2, MN_RING_MAX_ESIZE + 8), -EINVAL);
}

static void test_format_refuses_misaligned_memory(void **state)
{
	uint64_t mem[512];

	(void)state;
	assert_int_equal(mn_ring_format((uint8_t *)mem + 4, sizeof(mem) - 4, 8, 8), -EINVAL);
}

static void test_format_refuses_short_memory(void **state)
{
	uint64_t mem[512];
	size_t need = mn_ring_memsize(8, 8);

	(void)state;
	tu_log_reset();
	assert_int_equal(mn_ring_format(mem, need - 1, 8, 8), -ENOSPC);
	assert_log_contains("needed");
	assert_int_equal(mn_ring_format(mem, 0, 8, 8), -ENOSPC);
	assert_int_equal(mn_ring_format(mem, need, 8, 8), 0);
}

/* ---- attach ------------------------------------------------------------ */

static void test_attach_refuses_unformatted_memory(void **state)
{
	struct fixture f;
	struct mn_ring r;

	(void)state;
	ring_new(&f, 8, 8);
	memset(f.mem, 0, f.len);
	tu_log_reset();
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len, 8, MN_RING_CONSUMER), -EBADMSG);
	assert_log_contains("magic");
	ring_free(&f);
}

static void test_attach_refuses_impossible_capacity(void **state)
{
	struct fixture f;
	struct mn_ring r;

	(void)state;
	ring_new(&f, 8, 8);
	shm(&f)->capacity = 3;
	tu_log_reset();
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len, 8, MN_RING_CONSUMER), -EBADMSG);
	assert_log_contains("capacity");
	shm(&f)->capacity = 0;
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len, 8, MN_RING_PRODUCER), -EBADMSG);
	ring_free(&f);
}

static void test_attach_refuses_other_entry_size(void **state)
{
	struct fixture f;
	struct mn_ring r;

	(void)state;
	ring_new(&f, 8, 16);
	tu_log_reset();
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len, 8, MN_RING_PRODUCER), -EPROTOTYPE);
	assert_log_contains("entry size");
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len, 24, MN_RING_CONSUMER), -EPROTOTYPE);
	ring_free(&f);
}

static void test_attach_refuses_len_too_small(void **state)
{
	struct fixture f;
	struct mn_ring r;

	(void)state;
	ring_new(&f, 8, 8);
	tu_log_reset();
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len - 1, 8, MN_RING_PRODUCER), -ERANGE);
	assert_log_contains("bytes");
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len, 8, MN_RING_PRODUCER), 0);
	ring_free(&f);
}

static void test_attach_refuses_len_below_header(void **state)
{
	struct fixture f;
	struct mn_ring r;

	(void)state;
	ring_new(&f, 8, 8);
	assert_int_equal(mn_ring_attach(&r, f.mem, MN_RING_HDR_SIZE - 8, 8, MN_RING_PRODUCER),
			 -ERANGE);
	assert_int_equal(mn_ring_attach(&r, f.mem, 0, 8, MN_RING_CONSUMER), -ERANGE);
	ring_free(&f);
}

static void test_attach_refuses_indices_too_far_apart(void **state)
{
	struct fixture f;
	struct mn_ring r;

	(void)state;
	ring_new(&f, 8, 8);
	shm(&f)->prod_tail = 9;
	tu_log_reset();
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len, 8, MN_RING_CONSUMER), -EBADMSG);
	assert_log_contains("prod_tail");
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len, 8, MN_RING_PRODUCER), -EBADMSG);
	ring_free(&f);
}

static void test_attach_refuses_cons_head_ahead_of_prod_tail(void **state)
{
	struct fixture f;
	struct mn_ring r;

	(void)state;
	ring_new(&f, 8, 8);
	shm(&f)->prod_tail = 100;
	shm(&f)->cons_head = 101;
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len, 8, MN_RING_PRODUCER), -EBADMSG);
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len, 8, MN_RING_CONSUMER), -EBADMSG);
	ring_free(&f);
}

static void test_attach_refuses_bad_role(void **state)
{
	struct fixture f;
	struct mn_ring r;

	(void)state;
	ring_new(&f, 8, 8);
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len, 8, (enum mn_ring_role)0), -EINVAL);
	assert_int_equal(mn_ring_attach(&r, f.mem, f.len, 8, (enum mn_ring_role)3), -EINVAL);
	ring_free(&f);
}

static void test_attach_refuses_misaligned_memory(void **state)
{
	struct fixture f;
	struct mn_ring r;

	(void)state;
	ring_new(&f, 8, 8);
	assert_int_equal(mn_ring_attach(&r, (uint8_t *)f.mem + 4, f.len - 4, 8,
					MN_RING_CONSUMER), -EINVAL);
	ring_free(&f);
}

static void test_attach_accepts_full_ring(void **state)
{
	struct fixture f;
	uint64_t v = 1;

	(void)state;
	ring_new(&f, 8, 8);
	shm(&f)->prod_tail = 1008;
	shm(&f)->cons_head = 1000;
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_count(&f.prod), 8);
	assert_int_equal(mn_ring_enqueue(&f.prod, &v), 0);
	ring_free(&f);
}

static void test_capacity_is_reported(void **state)
{
	struct fixture f;

	(void)state;
	ring_new(&f, 64, 16);
	ring_attach_both(&f, 16);
	assert_int_equal(mn_ring_capacity(&f.prod), 64);
	assert_int_equal(mn_ring_capacity(&f.cons), 64);
	ring_free(&f);
}

/* ---- enqueue / dequeue ------------------------------------------------- */

static void test_single_enqueue_dequeue(void **state)
{
	struct fixture f;
	uint64_t in = 0x0123456789abcdefull, out = 0;

	(void)state;
	ring_new(&f, 4, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue(&f.prod, &in), 1);
	assert_int_equal(mn_ring_dequeue(&f.cons, &out), 1);
	assert_int_equal(out, in);
	assert_int_equal(mn_ring_dequeue(&f.cons, &out), 0);
	ring_free(&f);
}

static void test_burst_round_trip_in_order(void **state)
{
	struct fixture f;
	uint64_t in[6], out[6] = { 0 };

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	for (int i = 0; i < 6; i++)
		in[i] = 1000 + (uint64_t)i;
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 6), 6);
	assert_int_equal(shm(&f)->prod_tail, 6);
	assert_int_equal(mn_ring_dequeue_burst(&f.cons, out, 6), 6);
	assert_int_equal(shm(&f)->cons_head, 6);
	assert_memory_equal(out, in, sizeof(in));
	ring_free(&f);
}

static void test_enqueue_partial_when_nearly_full(void **state)
{
	struct fixture f;
	uint64_t in[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out[8];

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 6), 6);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in + 6, 4), 2);
	assert_int_equal(mn_ring_count(&f.prod), 8);
	assert_int_equal(mn_ring_dequeue_burst(&f.cons, out, 8), 8);
	assert_memory_equal(out, in, sizeof(in));
	ring_free(&f);
}

static void test_dequeue_partial_when_nearly_empty(void **state)
{
	struct fixture f;
	uint64_t in[3] = { 7, 8, 9 }, out[8] = { 0 };

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 3), 3);
	assert_int_equal(mn_ring_dequeue_burst(&f.cons, out, 8), 3);
	assert_memory_equal(out, in, sizeof(in));
	assert_int_equal(out[3], 0);
	ring_free(&f);
}

static void test_enqueue_on_full_ring_returns_0(void **state)
{
	struct fixture f;
	uint64_t in[4] = { 1, 2, 3, 4 }, extra = 5;

	(void)state;
	ring_new(&f, 4, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 4), 4);
	assert_int_equal(mn_ring_enqueue(&f.prod, &extra), 0);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 4), 0);
	assert_int_equal(shm(&f)->prod_tail, 4);
	ring_free(&f);
}

static void test_dequeue_on_empty_ring_returns_0(void **state)
{
	struct fixture f;
	uint64_t out[4] = { 0 };

	(void)state;
	ring_new(&f, 4, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_dequeue(&f.cons, out), 0);
	assert_int_equal(mn_ring_dequeue_burst(&f.cons, out, 4), 0);
	assert_int_equal(shm(&f)->cons_head, 0);
	ring_free(&f);
}

static void test_enqueue_burst_beyond_capacity_is_clamped(void **state)
{
	struct fixture f;
	uint64_t in[20] = { 0 };

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 20), 8);
	ring_free(&f);
}

static void test_producer_reuses_space_freed_by_consumer(void **state)
{
	struct fixture f;
	uint64_t in[4] = { 1, 2, 3, 4 }, out[4];

	(void)state;
	ring_new(&f, 4, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 4), 4);
	assert_int_equal(mn_ring_dequeue_burst(&f.cons, out, 3), 3);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 4), 3);
	assert_int_equal(mn_ring_dequeue_burst(&f.cons, out, 4), 4);
	assert_int_equal(out[0], 4);
	assert_int_equal(out[1], 1);
	assert_int_equal(out[3], 3);
	ring_free(&f);
}

/* Many small rounds starting just below 2^32: both indices wrap to 0. */
static void test_wraps_across_index_boundary(void **state)
{
	struct fixture f;
	uint64_t next_in = 0, next_out = 0, buf[5];

	(void)state;
	ring_new(&f, 8, 8);
	shm(&f)->prod_tail = 0xfffffff0u;
	shm(&f)->cons_head = 0xfffffff0u;
	ring_attach_both(&f, 8);
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < 5; i++)
			buf[i] = next_in++;
		assert_int_equal(mn_ring_enqueue_burst(&f.prod, buf, 5), 5);
		assert_int_equal(mn_ring_count(&f.cons), 5);
		memset(buf, 0, sizeof(buf));
		assert_int_equal(mn_ring_dequeue_burst(&f.cons, buf, 5), 5);
		for (int i = 0; i < 5; i++)
			assert_int_equal(buf[i], next_out++);
	}
	assert_int_equal(shm(&f)->prod_tail, (uint32_t)(0xfffffff0u + 50));
	assert_int_equal(shm(&f)->cons_head, (uint32_t)(0xfffffff0u + 50));
	ring_free(&f);
}

/* Fill to exactly full while prod_tail wraps and cons_head has not. */
static void test_full_ring_across_index_boundary(void **state)
{
	struct fixture f;
	uint64_t in[8], out[8], extra = 99;
	uint32_t first, count;

	(void)state;
	ring_new(&f, 8, 8);
	shm(&f)->prod_tail = 0xfffffffcu;
	shm(&f)->cons_head = 0xfffffffcu;
	ring_attach_both(&f, 8);
	for (int i = 0; i < 8; i++)
		in[i] = 0xa0 + (uint64_t)i;
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 8), 8);
	assert_int_equal(shm(&f)->prod_tail, 4);
	assert_int_equal(mn_ring_enqueue(&f.prod, &extra), 0);
	assert_int_equal(mn_ring_pending(&f.cons, &first, &count), 0);
	assert_int_equal(first, 0xfffffffcu);
	assert_int_equal(count, 8);
	assert_int_equal(mn_ring_dequeue_burst(&f.cons, out, 8), 8);
	assert_memory_equal(out, in, sizeof(in));
	assert_int_equal(mn_ring_count(&f.prod), 0);
	ring_free(&f);
}

/* Entry @seq of @esize bytes: every byte depends on both. */
static void fill_entry(uint8_t *e, uint32_t esize, uint32_t seq)
{
	for (uint32_t b = 0; b < esize; b++)
		e[b] = (uint8_t)(seq * 31 + b);
}

static void check_entry(const uint8_t *e, uint32_t esize, uint32_t seq)
{
	for (uint32_t b = 0; b < esize; b++)
		if (e[b] != (uint8_t)(seq * 31 + b))
			fail_msg("esize %u entry %u byte %u: 0x%02x", esize, seq, b, e[b]);
}

/*
 * Entries of @esize bytes: rounds of 1..5 so bursts straddle the slot
 * wrap, then one burst that fills the ring exactly.
 */
static void round_trip_esize(uint32_t esize)
{
	enum { CAP = 8 };
	static uint8_t in[CAP * MN_RING_MAX_ESIZE], out[CAP * MN_RING_MAX_ESIZE];
	struct fixture f;
	uint32_t seq_in = 0, seq_out = 0;

	ring_new(&f, CAP, esize);
	ring_attach_both(&f, esize);
	for (uint32_t round = 0; round <= 12; round++) {
		uint32_t n = round == 12 ? CAP : 1 + round % 5;

		for (uint32_t e = 0; e < n; e++)
			fill_entry(in + e * esize, esize, seq_in++);
		assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, n), (int)n);
		memset(out, 0, sizeof(out));
		assert_int_equal(mn_ring_dequeue_burst(&f.cons, out, n), (int)n);
		for (uint32_t e = 0; e < n; e++)
			check_entry(out + e * esize, esize, seq_out++);
	}
	ring_free(&f);
}

static void test_entries_of_8_bytes_round_trip(void **state)
{
	(void)state;
	round_trip_esize(8);
}

static void test_entries_of_16_bytes_round_trip(void **state)
{
	(void)state;
	round_trip_esize(16);
}

static void test_entries_of_24_bytes_round_trip(void **state)
{
	(void)state;
	round_trip_esize(24);
}

static void test_entries_of_256_bytes_round_trip(void **state)
{
	(void)state;
	round_trip_esize(MN_RING_MAX_ESIZE);
}

/* A 24-byte entry lands in its own slot and nowhere else. */
static void test_generic_esize_writes_only_its_slot(void **state)
{
	struct fixture f;
	uint8_t in[24], *slots;

	(void)state;
	ring_new(&f, 4, 24);
	memset((uint8_t *)f.mem + MN_RING_HDR_SIZE, 0, 4 * 24);
	ring_attach_both(&f, 24);
	memset(in, 0x77, sizeof(in));
	assert_int_equal(mn_ring_enqueue(&f.prod, in), 1);
	slots = (uint8_t *)f.mem + MN_RING_HDR_SIZE;
	for (int b = 0; b < 4 * 24; b++)
		assert_int_equal(slots[b], b < 24 ? 0x77 : 0);
	ring_free(&f);
}

/* ---- counts and re-attach ---------------------------------------------- */

static void test_count_and_pending_from_both_roles(void **state)
{
	struct fixture f;
	uint64_t in[3] = { 11, 22, 33 }, out;
	uint32_t first, count;

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_count(&f.prod), 0);
	assert_int_equal(mn_ring_count(&f.cons), 0);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 3), 3);
	assert_int_equal(mn_ring_count(&f.prod), 3);
	assert_int_equal(mn_ring_count(&f.cons), 3);
	assert_int_equal(mn_ring_dequeue(&f.cons, &out), 1);
	assert_int_equal(mn_ring_count(&f.prod), 2);
	assert_int_equal(mn_ring_count(&f.cons), 2);
	assert_int_equal(mn_ring_pending(&f.prod, &first, &count), 0);
	assert_int_equal(first, 1);
	assert_int_equal(count, 2);
	memcpy(&out, mn_ring_slot(&f.prod, first), sizeof(out));
	assert_int_equal(out, 22);
	assert_int_equal(mn_ring_pending(&f.cons, &first, &count), 0);
	assert_int_equal(first, 1);
	assert_int_equal(count, 2);
	memcpy(&out, mn_ring_slot(&f.cons, first + 1), sizeof(out));
	assert_int_equal(out, 33);
	ring_free(&f);
}

/* Each side counts from its own private index, whatever shm says of it. */
static void test_count_uses_own_index_not_shared_copy(void **state)
{
	struct fixture f;
	uint64_t in[3] = { 1, 2, 3 }, out;

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 3), 3);
	assert_int_equal(mn_ring_dequeue(&f.cons, &out), 1);
	shm(&f)->prod_tail = 7; /* scribbled by the consumer */
	assert_int_equal(mn_ring_count(&f.prod), 2);
	shm(&f)->prod_tail = 3;
	shm(&f)->cons_head = 0; /* scribbled by the producer */
	assert_int_equal(mn_ring_count(&f.cons), 2);
	ring_free(&f);
}

static void test_new_producer_resumes_at_published_tail(void **state)
{
	struct fixture f;
	struct mn_ring p2;
	uint64_t in[5] = { 1, 2, 3, 4, 5 }, out[5];

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 3), 3);
	/* The first producer dies; its successor appends after its entries. */
	assert_int_equal(mn_ring_attach(&p2, f.mem, f.len, 8, MN_RING_PRODUCER), 0);
	assert_int_equal(mn_ring_enqueue_burst(&p2, in + 3, 2), 2);
	assert_int_equal(mn_ring_dequeue_burst(&f.cons, out, 5), 5);
	assert_memory_equal(out, in, sizeof(in));
	ring_free(&f);
}

static void test_new_consumer_resumes_at_published_head(void **state)
{
	struct fixture f;
	struct mn_ring c2;
	uint64_t in[5] = { 1, 2, 3, 4, 5 }, out[5] = { 0 };

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 5), 5);
	assert_int_equal(mn_ring_dequeue_burst(&f.cons, out, 2), 2);
	assert_int_equal(mn_ring_attach(&c2, f.mem, f.len, 8, MN_RING_CONSUMER), 0);
	assert_int_equal(mn_ring_count(&c2), 3);
	assert_int_equal(mn_ring_dequeue_burst(&c2, out, 5), 3);
	assert_int_equal(out[0], 3);
	assert_int_equal(out[2], 5);
	ring_free(&f);
}

/* ---- corruption by the peer -------------------------------------------- */

static void test_consumer_refuses_prod_tail_beyond_capacity(void **state)
{
	struct fixture f;
	uint64_t in[2] = { 1, 2 }, out[4] = { 0 }, zero[4] = { 0 };

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 2), 2);
	shm(&f)->prod_tail = 9; /* 9 entries in a ring of 8 */
	tu_log_reset();
	assert_int_equal(mn_ring_dequeue_burst(&f.cons, out, 4), -EBADMSG);
	assert_memory_equal(out, zero, sizeof(out));
	assert_int_equal(shm(&f)->cons_head, 0);
	assert_int_equal(f.cons.corrupt, 1);
	assert_log_contains("prod_tail");
	assert_int_equal(mn_ring_dequeue(&f.cons, out), -EBADMSG);
	assert_int_equal(f.cons.corrupt, 2);
	ring_free(&f);
}

static void test_consumer_refuses_prod_tail_behind_its_head(void **state)
{
	struct fixture f;
	uint64_t in[2] = { 1, 2 }, out[2];

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 2), 2);
	assert_int_equal(mn_ring_dequeue_burst(&f.cons, out, 2), 2);
	shm(&f)->prod_tail = 1; /* moved backwards */
	assert_int_equal(mn_ring_dequeue(&f.cons, out), -EBADMSG);
	assert_int_equal(shm(&f)->cons_head, 2);
	assert_int_equal(f.cons.corrupt, 1);
	ring_free(&f);
}

static void test_producer_refuses_cons_head_ahead_of_its_tail(void **state)
{
	struct fixture f;
	uint64_t in[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, more = 9;
	uint8_t slots[8 * 8];

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 8), 8);
	memcpy(slots, (uint8_t *)f.mem + MN_RING_HDR_SIZE, sizeof(slots));
	shm(&f)->cons_head = 9; /* consumed one more than was produced */
	tu_log_reset();
	assert_int_equal(mn_ring_enqueue(&f.prod, &more), -EBADMSG);
	assert_int_equal(shm(&f)->prod_tail, 8);
	assert_memory_equal((uint8_t *)f.mem + MN_RING_HDR_SIZE, slots, sizeof(slots));
	assert_int_equal(f.prod.corrupt, 1);
	assert_log_contains("cons_head");
	ring_free(&f);
}

static void test_producer_refuses_cons_head_too_far_behind(void **state)
{
	struct fixture f;
	uint64_t in[8] = { 0 };

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	assert_int_equal(mn_ring_enqueue_burst(&f.prod, in, 8), 8);
	shm(&f)->cons_head = UINT32_MAX; /* 9 behind prod_tail */
	assert_int_equal(mn_ring_enqueue(&f.prod, in), -EBADMSG);
	assert_int_equal(shm(&f)->prod_tail, 8);
	ring_free(&f);
}

static void test_corrupt_counter_counts_every_event(void **state)
{
	struct fixture f;
	uint64_t out;

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	shm(&f)->prod_tail = 1000;
	for (int i = 0; i < 10; i++)
		assert_int_equal(mn_ring_dequeue(&f.cons, &out), -EBADMSG);
	assert_int_equal(f.cons.corrupt, 10);
	assert_int_equal(f.prod.corrupt, 0);
	ring_free(&f);
}

static void test_count_and_pending_refuse_corrupt_indices(void **state)
{
	struct fixture f;
	uint32_t first = 123, count = 456;

	(void)state;
	ring_new(&f, 8, 8);
	ring_attach_both(&f, 8);
	shm(&f)->prod_tail = 9;
	assert_int_equal(mn_ring_count(&f.cons), -EBADMSG);
	assert_int_equal(mn_ring_pending(&f.cons, &first, &count), -EBADMSG);
	assert_int_equal(first, 123);
	assert_int_equal(count, 456);
	shm(&f)->prod_tail = 0;
	shm(&f)->cons_head = 1;
	assert_int_equal(mn_ring_count(&f.prod), -EBADMSG);
	assert_int_equal(mn_ring_pending(&f.prod, &first, &count), -EBADMSG);
	assert_int_equal(f.prod.corrupt, 2);
	ring_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memsize_of_valid_geometries),
		cmocka_unit_test(test_memsize_rejects_invalid_geometries),
		cmocka_unit_test(test_format_writes_empty_ring),
		cmocka_unit_test(test_format_resets_stale_indices),
		cmocka_unit_test(test_format_refuses_bad_geometry),
		cmocka_unit_test(test_format_refuses_misaligned_memory),
		cmocka_unit_test(test_format_refuses_short_memory),
		cmocka_unit_test(test_attach_refuses_unformatted_memory),
		cmocka_unit_test(test_attach_refuses_impossible_capacity),
		cmocka_unit_test(test_attach_refuses_other_entry_size),
		cmocka_unit_test(test_attach_refuses_len_too_small),
		cmocka_unit_test(test_attach_refuses_len_below_header),
		cmocka_unit_test(test_attach_refuses_indices_too_far_apart),
		cmocka_unit_test(test_attach_refuses_cons_head_ahead_of_prod_tail),
		cmocka_unit_test(test_attach_refuses_bad_role),
		cmocka_unit_test(test_attach_refuses_misaligned_memory),
		cmocka_unit_test(test_attach_accepts_full_ring),
		cmocka_unit_test(test_capacity_is_reported),
		cmocka_unit_test(test_single_enqueue_dequeue),
		cmocka_unit_test(test_burst_round_trip_in_order),
		cmocka_unit_test(test_enqueue_partial_when_nearly_full),
		cmocka_unit_test(test_dequeue_partial_when_nearly_empty),
		cmocka_unit_test(test_enqueue_on_full_ring_returns_0),
		cmocka_unit_test(test_dequeue_on_empty_ring_returns_0),
		cmocka_unit_test(test_enqueue_burst_beyond_capacity_is_clamped),
		cmocka_unit_test(test_producer_reuses_space_freed_by_consumer),
		cmocka_unit_test(test_wraps_across_index_boundary),
		cmocka_unit_test(test_full_ring_across_index_boundary),
		cmocka_unit_test(test_entries_of_8_bytes_round_trip),
		cmocka_unit_test(test_entries_of_16_bytes_round_trip),
		cmocka_unit_test(test_entries_of_24_bytes_round_trip),
		cmocka_unit_test(test_entries_of_256_bytes_round_trip),
		cmocka_unit_test(test_generic_esize_writes_only_its_slot),
		cmocka_unit_test(test_count_and_pending_from_both_roles),
		cmocka_unit_test(test_count_uses_own_index_not_shared_copy),
		cmocka_unit_test(test_new_producer_resumes_at_published_tail),
		cmocka_unit_test(test_new_consumer_resumes_at_published_head),
		cmocka_unit_test(test_consumer_refuses_prod_tail_beyond_capacity),
		cmocka_unit_test(test_consumer_refuses_prod_tail_behind_its_head),
		cmocka_unit_test(test_producer_refuses_cons_head_ahead_of_its_tail),
		cmocka_unit_test(test_producer_refuses_cons_head_too_far_behind),
		cmocka_unit_test(test_corrupt_counter_counts_every_event),
		cmocka_unit_test(test_count_and_pending_refuse_corrupt_indices),
	};

	return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
