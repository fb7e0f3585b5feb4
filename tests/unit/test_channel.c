/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for ipc/channel: geometry refusals, mapping validation, chain
 * building and walking (forged chains, loops, out-of-range indices, bad
 * headers), server-side take-back (double returns, forgeries), iovec copies
 * both ways, full rings on both sides, events, the wake-up handshake and
 * channel close. Both sides run in this process on one region mapped twice.
 */
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "channel.h"

#define NBUFS 64u
#define BUF_SIZE 128u
#define PAYLOAD (BUF_SIZE - MN_CHAN_BUFHDR_SIZE) /* 112 */
#define MAX_MSG 1000u				 /* 9 buffers */

struct fx {
	struct mn_chan_srv s;
	struct mn_chan_app a;
	uint32_t sidx[NBUFS];
};

static const struct mn_chan_flow FLOW = { 0x0a000001, 0x0a000002, 40000, 7000 };

static struct mn_chan_params params(uint32_t nbufs, uint32_t buf_size, uint32_t max_msg)
{
	return (struct mn_chan_params){
		.channel_id = 7, .nbufs = nbufs, .buf_size = buf_size,
		.max_msg_size = max_msg, .server_gen = 3, .region_flags = MN_REGION_F_NO_HUGE,
	};
}

/* Map the application side from duplicates of the server's fds. */
static int app_map_dup(struct mn_chan_app *a, const struct mn_chan_srv *s)
{
	int r = dup(s->reg.fd), k = dup(s->kick_fd), x = dup(s->rx_fd);
	int err = mn_chan_app_map(a, r, k, x);

	if (err) {
		close(r);
		close(k);
		close(x);
	}
	return err;
}

static void fx_open(struct fx *f, uint32_t nbufs, uint32_t max_msg)
{
	struct mn_chan_params p = params(nbufs, BUF_SIZE, max_msg);

	memset(f, 0, sizeof(*f));
	assert_int_equal(mn_chan_srv_create(&f->s, &p), 0);
	assert_int_equal(app_map_dup(&f->a, &f->s), 0);
}

static void fx_close(struct fx *f)
{
	mn_chan_app_unmap(&f->a);
	mn_chan_srv_destroy(&f->s);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fx_open(f, NBUFS, MAX_MSG);
	*state = f;
	tu_log_reset();
	return 0;
}

static int teardown(void **state)
{
	fx_close(*state);
	free(*state);
	return 0;
}

static void fill_pattern(uint8_t *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 8));
}

static uint32_t count_state(const struct mn_pool *p, int st)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < p->nbufs; i++)
		n += mn_pool_state(p, i) == st;
	return n;
}

/* Server-side allocation of @n buffers, linked for @len bytes. */
static void srv_chain(struct fx *f, uint32_t len, uint32_t *idx)
{
	int n = mn_chan_srv_chain_alloc(&f->s, len, 0, idx);

	assert_int_equal(n, (int)mn_chan_nbufs_for(len, PAYLOAD));
}

static struct mn_chan_bufhdr *hdr_of(struct fx *f, uint32_t idx)
{
	return mn_pool_view_buf(&f->s.view, idx, 0, MN_CHAN_BUFHDR_SIZE);
}

/* ---- geometry and mapping ---- */

static void test_create_refuses_geometry(void **state)
{
	struct mn_chan_srv s;
	struct {
		uint32_t nbufs, buf_size, max_msg;
	} bad[] = {
		{ 1, 128, 100 },		 /* too few buffers */
		{ 64, 100, 100 },		 /* buffer size not a multiple of 64 */
		{ 64, 128, 0 },			 /* no message fits */
		{ 64, 128, MN_CHAN_MAX_MSG + 1 }, /* over 8 MiB */
		{ 8, 128, 8 * PAYLOAD + 1 },	 /* a max message needs more than the pool */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mn_chan_params p = params(bad[i].nbufs, bad[i].buf_size, bad[i].max_msg);

		assert_int_equal(mn_chan_srv_create(&s, &p), -EINVAL);
		assert_int_equal(s.kick_fd, -1);
		mn_chan_srv_destroy(&s); /* harmless after a failure */
	}
}

static void test_map_geometry(void **state)
{
	struct fx *f = *state;

	assert_int_equal(f->a.id, 7);
	assert_int_equal(f->a.nbufs, NBUFS);
	assert_int_equal(f->a.payload, PAYLOAD);
	assert_int_equal(f->a.max_msg, MAX_MSG);
	assert_int_equal(f->a.max_chain, 9);
	assert_int_equal(f->a.server_gen, 3);
	assert_int_equal(f->s.ctrl->ring_cap, NBUFS);
	assert_int_equal(f->s.ctrl->rx_cap, 2 * NBUFS);
	assert_int_equal(mn_ring_capacity(&f->a.rx), 2 * NBUFS);
	assert_int_equal(mn_chan_app_status(&f->a, NULL), MN_CHAN_ST_OPEN);
}

/* A control block that lies is refused; the fds stay the caller's. */
static void test_map_refuses_bad_ctrl(void **state)
{
	struct fx *f = *state;
	struct mn_chan_app a;
	struct {
		size_t off;
		uint32_t val;
	} lies[] = {
		{ offsetof(struct mn_chan_ctrl, magic), 0xdeadbeef },
		{ offsetof(struct mn_chan_ctrl, max_msg_size), 0 },
		{ offsetof(struct mn_chan_ctrl, max_msg_size), MN_CHAN_MAX_MSG + 1 },
		{ offsetof(struct mn_chan_ctrl, max_chain), 3 }, /* != ceil(1000/112) */
		{ offsetof(struct mn_chan_ctrl, max_chain), NBUFS + 1 },
	};
	int fds_before = tu_count_fds();

	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		uint32_t *field = (uint32_t *)((uint8_t *)f->s.ctrl + lies[i].off), saved = *field;

		*field = lies[i].val;
		assert_int_equal(app_map_dup(&a, &f->s), -EBADMSG);
		*field = saved;
		assert_int_equal(tu_count_fds(), fds_before);
	}
	assert_int_equal(app_map_dup(&a, &f->s), 0);
	mn_chan_app_unmap(&a);
	assert_int_equal(tu_count_fds(), fds_before);
}

static void test_map_refuses_other_kind(void **state)
{
	struct mn_region r;
	struct mn_region_spec spec = { .kind = MN_REGION_KIND_TEST, .nsections = 1,
				       .sec = { { 1, 4096 } } };
	struct mn_chan_app a;
	int fd;

	(void)state;
	assert_int_equal(mn_region_create(&r, "t", &spec, MN_REGION_F_NO_HUGE), 0);
	fd = dup(r.fd);
	assert_int_equal(mn_chan_app_map(&a, fd, -1, -1), -EPROTOTYPE);
	assert_true(tu_fd_is_open(fd));
	close(fd);
	mn_region_unmap(&r);
}

/* ---- chains ---- */

static void test_chain_link_walk(void **state)
{
	struct fx *f = *state;
	const uint32_t lens[] = { 1, PAYLOAD - 1, PAYLOAD, PAYLOAD + 1, 5 * PAYLOAD, MAX_MSG };
	uint32_t idx[16], got[16];

	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		uint32_t n = mn_chan_nbufs_for(lens[k], PAYLOAD);

		/* Any indices, any order: a chain is only its links. */
		for (uint32_t i = 0; i < n; i++)
			idx[i] = (i * 13 + 5) % NBUFS;
		assert_int_equal(mn_chan_chain_link(&f->a.view, idx, n, lens[k]), 0);
		assert_int_equal(mn_chan_chain_walk(&f->a.view, idx[0], n, lens[k], got), 0);
		assert_memory_equal(idx, got, n * sizeof(uint32_t));
		assert_int_equal(hdr_of(f, idx[n - 1])->next, MN_CHAN_NIL);
	}
}

static void test_chain_shape_refused(void **state)
{
	struct fx *f = *state;
	uint32_t idx[4] = { 1, 2, 3, 4 }, got[4];

	assert_int_equal(mn_chan_chain_link(&f->a.view, idx, 2, 0), -EINVAL);
	assert_int_equal(mn_chan_chain_link(&f->a.view, idx, 2, PAYLOAD), -EINVAL);
	assert_int_equal(mn_chan_chain_link(&f->a.view, idx, 1, PAYLOAD + 1), -EINVAL);
	assert_int_equal(mn_chan_chain_walk(&f->a.view, 1, 0, 0, got), -EINVAL);
	assert_int_equal(mn_chan_chain_walk(&f->a.view, 1, 3, PAYLOAD, got), -EINVAL);
	idx[1] = NBUFS;
	assert_int_equal(mn_chan_chain_link(&f->a.view, idx, 2, PAYLOAD + 1), -ERANGE);
}

/* Forged links: every kind is caught, and the walk never takes more than n steps. */
static void test_chain_walk_forged(void **state)
{
	struct fx *f = *state;
	uint32_t idx[4] = { 10, 11, 12, 13 }, got[16];
	uint32_t len = 3 * PAYLOAD + 5; /* 4 buffers */

	/* Out of range in the middle. */
	assert_int_equal(mn_chan_chain_link(&f->a.view, idx, 4, len), 0);
	hdr_of(f, 11)->next = NBUFS + 100;
	assert_int_equal(mn_chan_chain_walk(&f->a.view, 10, 4, len, got), -ERANGE);
	/* First index out of range, and the NIL index itself. */
	assert_int_equal(mn_chan_chain_walk(&f->a.view, NBUFS, 4, len, got), -ERANGE);
	assert_int_equal(mn_chan_chain_walk(&f->a.view, MN_CHAN_NIL, 4, len, got), -ERANGE);
	/* A short buffer in the middle (chains are dense). */
	assert_int_equal(mn_chan_chain_link(&f->a.view, idx, 4, len), 0);
	hdr_of(f, 11)->len = PAYLOAD - 1;
	assert_int_equal(mn_chan_chain_walk(&f->a.view, 10, 4, len, got), -EBADMSG);
	/* A length larger than the buffer. */
	assert_int_equal(mn_chan_chain_link(&f->a.view, idx, 4, len), 0);
	hdr_of(f, 13)->len = 0xffffffff;
	assert_int_equal(mn_chan_chain_walk(&f->a.view, 10, 4, len, got), -EBADMSG);
	/* Ends early. */
	assert_int_equal(mn_chan_chain_link(&f->a.view, idx, 4, len), 0);
	hdr_of(f, 12)->next = MN_CHAN_NIL;
	assert_int_equal(mn_chan_chain_walk(&f->a.view, 10, 4, len, got), -EBADMSG);
	/* Does not end. */
	assert_int_equal(mn_chan_chain_link(&f->a.view, idx, 4, len), 0);
	hdr_of(f, 13)->next = 20;
	assert_int_equal(mn_chan_chain_walk(&f->a.view, 10, 4, len, got), -EBADMSG);
	/* A loop back to the start: stops after n steps, refused. */
	assert_int_equal(mn_chan_chain_link(&f->a.view, idx, 4, len), 0);
	hdr_of(f, 11)->next = 10;
	assert_int_equal(mn_chan_chain_walk(&f->a.view, 10, 4, len, got), -EBADMSG);
	/* A buffer pointing at itself, claiming a huge message. */
	hdr_of(f, 30)->next = 30;
	hdr_of(f, 30)->len = PAYLOAD;
	assert_int_equal(mn_chan_chain_walk(&f->a.view, 30, 9, MAX_MSG, got), -EBADMSG);
}

static void test_chain_read_write(void **state)
{
	struct fx *f = *state;
	uint32_t idx[9];
	uint8_t in[MAX_MSG], out[MAX_MSG];

	srv_chain(f, MAX_MSG, idx);
	fill_pattern(in, sizeof(in), 1);
	/* Written in uneven pieces, read back in others. */
	for (uint32_t off = 0; off < MAX_MSG;) {
		uint32_t k = off % 3 == 0 ? 77 : 150;

		k = k > MAX_MSG - off ? MAX_MSG - off : k;
		assert_int_equal(mn_chan_chain_write(&f->s.view, idx, 9, off, in + off, k), 0);
		off += k;
	}
	for (uint32_t off = 0; off < MAX_MSG; off += 100)
		assert_int_equal(mn_chan_chain_read(&f->s.view, idx, 9, off, out + off, 100), 0);
	assert_memory_equal(in, out, MAX_MSG);
	/* Beyond the chain's room (9 * 112 = 1008 bytes). */
	assert_int_equal(mn_chan_chain_write(&f->s.view, idx, 9, 1000, in, 9), -ERANGE);
	assert_int_equal(mn_chan_chain_read(&f->s.view, idx, 9, 0xfffffff0u, out, 0x20), -ERANGE);
	assert_int_equal(mn_chan_chain_read(&f->s.view, idx, 9, 1000, out, 8), 0);
}

static void test_iov_copy(void **state)
{
	struct fx *f = *state;
	uint8_t in[MAX_MSG], out[MAX_MSG + 10];
	uint32_t idx[9];
	struct iovec src[5] = {
		{ in, 0 }, { in, 1 }, { in + 1, 300 }, { in + 301, 0 }, { in + 301, MAX_MSG - 301 },
	};
	struct iovec dst[4] = {
		{ out, 111 }, { out + 111, 0 }, { out + 111, 2 }, { out + 113, MAX_MSG + 10 - 113 },
	};

	fill_pattern(in, sizeof(in), 9);
	memset(out, 0, sizeof(out));
	srv_chain(f, MAX_MSG, idx);
	assert_int_equal(mn_chan_chain_from_iov(&f->s.view, idx, 9, src, 5, MAX_MSG), 0);
	assert_int_equal(mn_chan_chain_to_iov(&f->s.view, idx, 9, MAX_MSG, dst, 4), 0);
	assert_memory_equal(in, out, MAX_MSG);
	assert_int_equal(out[MAX_MSG], 0); /* nothing beyond the message */
	/* The chain is a valid message to a reader. */
	assert_int_equal(mn_chan_chain_walk(&f->a.view, idx[0], 9, MAX_MSG, f->sidx), 0);
	/* Too little room out: nothing copied. */
	dst[3].iov_len = MAX_MSG - 114;
	memset(out, 0, sizeof(out));
	assert_int_equal(mn_chan_chain_to_iov(&f->s.view, idx, 9, MAX_MSG, dst, 4), -EMSGSIZE);
	assert_int_equal(out[0], 0);
	/* Too few bytes in. */
	assert_int_equal(mn_chan_chain_from_iov(&f->s.view, idx, 9, src, 4, MAX_MSG), -EINVAL);
	/* Iovecs longer than the message: only len bytes are taken. */
	assert_int_equal(mn_chan_chain_from_iov(&f->s.view, idx, 1, src + 4, 1, 10), 0);
	assert_int_equal(mn_chan_iov_len(src, 5), MAX_MSG);
}

/* ---- both sides ---- */

static void app_send_ok(struct fx *f, const void *buf, uint32_t len, uint64_t cookie)
{
	struct iovec iov = { (void *)(uintptr_t)buf, len };

	assert_int_equal(mn_chan_app_send(&f->a, &FLOW, &iov, 1, len, 0, cookie), 0);
}

/* A message goes app -> server, comes back as rx with the flow swapped, and
 * every buffer returns to the server's free list afterwards. */
static void test_roundtrip_accounting(void **state)
{
	struct fx *f = *state;
	struct mn_chan_flow back = { FLOW.dst_ip, FLOW.src_ip, FLOW.dst_port, FLOW.src_port };
	uint8_t in[MAX_MSG], out[MAX_MSG];
	struct iovec oiov = { out, sizeof(out) };
	struct mn_chan_desc d;

	fill_pattern(in, sizeof(in), 3);
	assert_int_equal(mn_chan_srv_refill(&f->s, 32), 32);
	assert_int_equal(mn_chan_srv_refill(&f->s, 32), 0); /* already topped up */
	app_send_ok(f, in, MAX_MSG, 99);
	assert_int_equal(mn_chan_srv_tx_take(&f->s, &d, f->sidx), 1);
	assert_int_equal(d.len, MAX_MSG);
	assert_int_equal(d.nbufs, 9);
	assert_int_equal(d.cookie, 99);
	assert_memory_equal(&d.flow, &FLOW, sizeof(FLOW));
	for (uint32_t i = 0; i < 9; i++)
		assert_int_equal(mn_pool_state(&f->s.pool, f->sidx[i]), MN_BUF_OWNER);
	assert_int_equal(mn_chan_srv_tx_take(&f->s, &d, f->sidx), 0);
	/* Loop back: the same chain, delivered. */
	assert_int_equal(mn_chan_srv_deliver(&f->s, &back, f->sidx, 9, MAX_MSG, 5), 1);
	memset(&d, 0, sizeof(d));
	assert_int_equal(mn_chan_app_recv(&f->a, &d, &oiov, 1), 1);
	assert_int_equal(d.type, MN_CHAN_D_MSG);
	assert_memory_equal(&d.flow, &back, sizeof(back));
	assert_memory_equal(in, out, MAX_MSG);
	assert_int_equal(mn_chan_app_recv(&f->a, &d, &oiov, 1), 0);
	/* Chain back on free, cache flushed: the server holds everything. */
	assert_int_equal(mn_chan_srv_free_poll(&f->s, 100), 9);
	mn_chan_app_flush_cache(&f->a);
	mn_chan_srv_free_poll(&f->s, 100);
	/* Whatever is still on fill is lent; everything else is free. */
	assert_int_equal(mn_pool_nlent(&f->s.pool), (uint32_t)mn_ring_count(&f->s.fill));
	assert_int_equal(count_state(&f->s.pool, MN_BUF_OWNER), 0);
	assert_int_equal(f->s.st.bad_chain + f->s.st.bad_desc + f->a.st.bad_rx, 0);
}

/* The application puts a descriptor straight on its tx ring. */
static void app_forge_tx(struct fx *f, uint32_t idx, uint32_t nbufs, uint32_t len, uint16_t type)
{
	struct mn_chan_desc d = { .idx = idx, .nbufs = nbufs, .len = len, .type = type,
				  .flow = FLOW, .cookie = 42 };

	assert_int_equal(mn_ring_enqueue(&f->a.tx, &d), 1);
}

static void expect_refused(struct fx *f, int err)
{
	struct mn_chan_desc d;

	assert_int_equal(mn_chan_srv_tx_take(&f->s, &d, f->sidx), err);
	assert_int_equal(d.cookie, 42);
}

/* Forged tx: out of range, never lent, lying descriptor fields. */
static void test_srv_refuses_forged_tx(void **state)
{
	struct fx *f = *state;
	uint32_t free_before;

	mn_chan_srv_refill(&f->s, 8);
	free_before = mn_pool_nfree(&f->s.pool);
	app_forge_tx(f, NBUFS + 3, 1, 10, MN_CHAN_D_MSG);
	expect_refused(f, -EPROTO);
	app_forge_tx(f, MN_CHAN_NIL, 1, 10, MN_CHAN_D_MSG);
	expect_refused(f, -EPROTO);
	app_forge_tx(f, 60, 1, 10, MN_CHAN_D_MSG); /* never lent */
	expect_refused(f, -EPROTO);
	assert_int_equal(f->s.pool.stats.not_lent, 1);
	app_forge_tx(f, 0, 1, 10, MN_CHAN_D_BUF); /* wrong type */
	expect_refused(f, -EPROTO);
	app_forge_tx(f, 0, 1, 0, MN_CHAN_D_MSG); /* empty */
	expect_refused(f, -EPROTO);
	app_forge_tx(f, 0, 10, MAX_MSG + 1, MN_CHAN_D_MSG); /* too long */
	expect_refused(f, -EMSGSIZE);
	app_forge_tx(f, 0, 2, 10, MN_CHAN_D_MSG); /* nbufs lies */
	expect_refused(f, -EPROTO);
	assert_int_equal(f->s.st.bad_desc, 3);
	assert_true(f->s.st.bad_chain >= 4);
	/* Nothing changed hands. */
	assert_int_equal(mn_pool_nfree(&f->s.pool), free_before);
	assert_int_equal(mn_pool_nlent(&f->s.pool), 8);
}

/* The same message handed over twice: the second is refused. */
static void test_srv_refuses_double_return(void **state)
{
	struct fx *f = *state;
	uint8_t in[300];
	struct mn_chan_desc d;

	fill_pattern(in, sizeof(in), 4);
	mn_chan_srv_refill(&f->s, 8);
	app_send_ok(f, in, sizeof(in), 42);
	assert_int_equal(mn_chan_srv_tx_take(&f->s, &d, f->sidx), 1);
	/* The application replays the descriptor it just sent. */
	assert_int_equal(mn_ring_enqueue(&f->a.tx, &d), 1);
	expect_refused(f, -EPROTO);
	/* The server still holds the first copy's buffers, untouched. */
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(mn_pool_state(&f->s.pool, f->sidx[i]), MN_BUF_OWNER);
	/* Free ring: the same buffer twice; the second is refused. */
	mn_chan_srv_chain_free(&f->s, f->sidx, 3);
	{
		uint32_t b = f->a.cache[f->a.ncache - 1];
		struct mn_chan_desc g = { .idx = b, .nbufs = 1, .type = MN_CHAN_D_BUF };
		uint64_t bad = f->s.st.bad_chain;

		assert_int_equal(mn_ring_enqueue(&f->a.free, &g), 1);
		assert_int_equal(mn_ring_enqueue(&f->a.free, &g), 1);
		assert_int_equal(mn_chan_srv_free_poll(&f->s, 10), 1);
		assert_int_equal(f->s.st.bad_chain, bad + 1);
		assert_int_equal(mn_pool_state(&f->s.pool, b), MN_BUF_FREE);
		f->a.ncache--; /* the application gave it away behind its cache */
	}
}

/* A tx chain that loops or lies in a header: refused, the buffers that came
 * back validly are freed, the server is never confused about ownership. */
static void test_srv_refuses_bad_tx_chain(void **state)
{
	struct fx *f = *state;
	uint32_t a, b;

	mn_chan_srv_refill(&f->s, 8);
	app_send_ok(f, "x", 1, 0); /* moves buffers into the application's cache */
	{
		struct mn_chan_desc d;

		assert_int_equal(mn_chan_srv_tx_take(&f->s, &d, f->sidx), 1);
		mn_chan_srv_chain_free(&f->s, f->sidx, 1);
	}
	assert_true(f->a.ncache >= 2);
	a = f->a.cache[--f->a.ncache];
	b = f->a.cache[--f->a.ncache];
	/* a -> b -> a: a loop dressed as a 3-buffer message. */
	*hdr_of(f, a) = (struct mn_chan_bufhdr){ .next = b, .len = PAYLOAD };
	*hdr_of(f, b) = (struct mn_chan_bufhdr){ .next = a, .len = PAYLOAD };
	app_forge_tx(f, a, 3, 3 * PAYLOAD, MN_CHAN_D_MSG);
	expect_refused(f, -EPROTO);
	assert_int_equal(mn_pool_state(&f->s.pool, a), MN_BUF_FREE);
	assert_int_equal(mn_pool_state(&f->s.pool, b), MN_BUF_FREE);
	/* Headers that lie about lengths. */
	mn_chan_srv_refill(&f->s, 8);
	app_send_ok(f, "x", 1, 0);
	{
		struct mn_chan_desc d;

		assert_int_equal(mn_chan_srv_tx_take(&f->s, &d, f->sidx), 1);
		mn_chan_srv_chain_free(&f->s, f->sidx, 1);
	}
	a = f->a.cache[--f->a.ncache];
	b = f->a.cache[--f->a.ncache];
	*hdr_of(f, a) = (struct mn_chan_bufhdr){ .next = b, .len = PAYLOAD - 1 };
	*hdr_of(f, b) = (struct mn_chan_bufhdr){ .next = MN_CHAN_NIL, .len = 2 };
	app_forge_tx(f, a, 2, PAYLOAD + 1, MN_CHAN_D_MSG);
	expect_refused(f, -EPROTO);
	assert_int_equal(mn_pool_state(&f->s.pool, a), MN_BUF_FREE);
	/* b was never reached: still the application's. */
	assert_int_equal(mn_pool_state(&f->s.pool, b), MN_BUF_PEER);
}

/* No buffers: -ENOBUFS, and the cache is as it was. */
static void test_send_without_buffers(void **state)
{
	struct fx *f = *state;
	uint8_t in[MAX_MSG];

	fill_pattern(in, sizeof(in), 5);
	assert_int_equal(mn_chan_srv_refill(&f->s, 4), 4);
	{
		struct iovec iov = { in, MAX_MSG };

		assert_int_equal(mn_chan_app_send(&f->a, &FLOW, &iov, 1, MAX_MSG, 0, 0), -ENOBUFS);
		assert_int_equal(f->a.ncache, 4);
		iov.iov_len = 10;
		assert_int_equal(mn_chan_app_send(&f->a, &FLOW, &iov, 1, 11, 0, 0), -EINVAL);
		assert_int_equal(mn_chan_app_send(&f->a, &FLOW, &iov, 1, 0, 0, 0), -EINVAL);
	}
	app_send_ok(f, in, 4 * PAYLOAD, 0);
	assert_int_equal(f->a.ncache, 0);
	{
		struct iovec iov = { in, 1 };

		assert_int_equal(mn_chan_app_send(&f->a, &FLOW, &iov, 1, 1, 0, 0), -ENOBUFS);
	}
	/* Oversized messages are refused before any buffer is taken. */
	{
		struct iovec iov = { in, MAX_MSG };

		mn_chan_srv_refill(&f->s, 20);
		assert_int_equal(mn_chan_app_send(&f->a, &FLOW, &iov, 1, MAX_MSG + 1, 0, 0), -EMSGSIZE);
	}
}

/* tx full (only a broken peer can make it so): -EAGAIN, buffers kept. */
static void test_send_tx_full(void **state)
{
	struct fx *f = *state;
	uint32_t cached;

	mn_chan_srv_refill(&f->s, 8);
	app_send_ok(f, "a", 1, 0);
	while (mn_ring_count(&f->a.tx) < (int)NBUFS)
		app_forge_tx(f, 0, 1, 1, MN_CHAN_D_MSG);
	cached = f->a.ncache;
	{
		struct iovec iov = { "bb", 2 };

		assert_int_equal(mn_chan_app_send(&f->a, &FLOW, &iov, 1, 2, 0, 0), -EAGAIN);
	}
	assert_int_equal(f->a.ncache, cached);
}

/* rx full: deliveries and events say so and change nothing. */
static void test_rx_full(void **state)
{
	struct fx *f = *state;
	uint32_t idx[1];
	uint32_t nfree;

	for (uint32_t i = 0; i < 2 * NBUFS; i++)
		assert_int_equal(mn_chan_srv_post(&f->s, MN_CHAN_EV_CLOSED, &FLOW, 0, i), 1);
	assert_int_equal(mn_chan_srv_post(&f->s, MN_CHAN_EV_CLOSED, &FLOW, 0, 0), 0);
	srv_chain(f, 10, idx);
	nfree = mn_pool_nfree(&f->s.pool);
	assert_int_equal(mn_chan_srv_deliver(&f->s, &FLOW, idx, 1, 10, 0), 0);
	assert_int_equal(mn_pool_state(&f->s.pool, idx[0]), MN_BUF_OWNER);
	assert_int_equal(mn_pool_nfree(&f->s.pool), nfree);
	assert_int_equal(f->s.st.rx_full, 2);
	assert_int_equal(mn_chan_srv_post(&f->s, 3, &FLOW, 0, 0), -EINVAL);
}

/* Too small a buffer: the message stays, then comes with a big one. */
static void test_recv_too_small_keeps_message(void **state)
{
	struct fx *f = *state;
	uint8_t in[500], out[500];
	struct iovec small = { out, 499 }, big = { out, sizeof(out) };
	struct mn_chan_desc d;
	uint32_t idx[5];

	fill_pattern(in, sizeof(in), 6);
	srv_chain(f, sizeof(in), idx);
	assert_int_equal(mn_chan_chain_write(&f->s.view, idx, 5, 0, in, sizeof(in)), 0);
	assert_int_equal(mn_chan_srv_deliver(&f->s, &FLOW, idx, 5, sizeof(in), 0), 1);
	assert_int_equal(mn_chan_app_recv(&f->a, &d, &small, 1), -EMSGSIZE);
	assert_int_equal(d.len, sizeof(in));
	assert_int_equal(mn_chan_app_rx_pending(&f->a), 1);
	assert_int_equal(mn_chan_app_recv(&f->a, &d, &big, 1), 1);
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(mn_chan_app_rx_pending(&f->a), 0);
}

static void test_events(void **state)
{
	struct fx *f = *state;
	struct mn_chan_desc d;

	assert_int_equal(mn_chan_srv_post(&f->s, MN_CHAN_EV_FAILED, &FLOW, -ETIMEDOUT, 0), 1);
	assert_int_equal(mn_chan_app_recv(&f->a, &d, NULL, 0), 1);
	assert_int_equal(d.type, MN_CHAN_EV_FAILED);
	assert_int_equal(d.status, -ETIMEDOUT);
	assert_int_equal(d.idx, MN_CHAN_NIL);
	assert_memory_equal(&d.flow, &FLOW, sizeof(FLOW));
	assert_int_equal(mn_chan_app_recv(&f->a, &d, NULL, 0), 0);
}

/* The server puts garbage on rx: the application refuses it, never crashes. */
static void test_app_refuses_forged_rx(void **state)
{
	struct fx *f = *state;
	uint8_t out[MAX_MSG];
	struct iovec iov = { out, sizeof(out) };
	struct mn_chan_desc d, bad[] = {
		{ .idx = NBUFS + 5, .nbufs = 1, .len = 10, .type = MN_CHAN_D_MSG },
		{ .idx = 0, .nbufs = 1, .len = 0, .type = MN_CHAN_D_MSG },
		{ .idx = 0, .nbufs = 1, .len = MAX_MSG + 1, .type = MN_CHAN_D_MSG },
		{ .idx = 0, .nbufs = 3, .len = 10, .type = MN_CHAN_D_MSG },
		{ .idx = 0, .nbufs = 1, .len = 10, .type = 9 },
	};
	uint32_t idx[3];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(mn_ring_enqueue(&f->s.rx, &bad[i]), 1);
		assert_int_equal(mn_chan_app_recv(&f->a, &d, &iov, 1), -EPROTO);
	}
	/* A real chain whose headers the server then breaks: a loop. */
	srv_chain(f, 3 * PAYLOAD, idx);
	assert_int_equal(mn_chan_srv_deliver(&f->s, &FLOW, idx, 3, 3 * PAYLOAD, 0), 1);
	hdr_of(f, idx[1])->next = idx[0];
	assert_int_equal(mn_chan_app_recv(&f->a, &d, &iov, 1), -EPROTO);
	assert_int_equal(f->a.st.bad_rx, 6);
	/* The chain went back on free anyway; the server takes what it lent
	 * (idx[0], idx[1]) and refuses the loop back into idx[0]. */
	mn_chan_srv_free_poll(&f->s, 10);
	assert_int_equal(mn_pool_state(&f->s.pool, idx[0]), MN_BUF_FREE);
	assert_int_equal(mn_pool_state(&f->s.pool, idx[1]), MN_BUF_FREE);
	assert_int_equal(mn_pool_state(&f->s.pool, idx[2]), MN_BUF_PEER);
	assert_int_equal(mn_chan_app_recv(&f->a, &d, &iov, 1), 0);
}

/* An impossible producer index is reported, not followed. */
static void test_app_corrupt_rx_ring(void **state)
{
	struct fx *f = *state;
	struct mn_chan_desc d;

	f->s.rx.shm->prod_tail = 5 * NBUFS;
	assert_int_equal(mn_chan_app_recv(&f->a, &d, NULL, 0), -EBADMSG);
	assert_int_equal(mn_chan_app_rx_pending(&f->a), -EBADMSG);
}

static bool fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

static void drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) > 0)
		;
}

/* Wake-ups go out only to a side that asked for them. */
static void test_wakeup_handshake(void **state)
{
	struct fx *f = *state;
	uint32_t idx[1];

	/* Server -> application: nothing while the application polls. */
	srv_chain(f, 10, idx);
	assert_int_equal(mn_chan_srv_deliver(&f->s, &FLOW, idx, 1, 10, 0), 1);
	mn_chan_srv_wake(&f->s);
	assert_false(fd_readable(f->a.rx_fd));
	/* The application waits for rx: the next delivery wakes it. */
	mn_chan_app_set_wait(&f->a, MN_CHAN_WAIT_RX);
	assert_int_equal(mn_chan_srv_post(&f->s, MN_CHAN_EV_CLOSED, &FLOW, 0, 0), 1);
	mn_chan_srv_wake(&f->s);
	assert_true(fd_readable(f->a.rx_fd));
	drain(f->a.rx_fd);
	/* A refill does not wake an rx waiter, does wake a fill waiter. */
	mn_chan_srv_refill(&f->s, 4);
	mn_chan_srv_wake(&f->s);
	assert_false(fd_readable(f->a.rx_fd));
	mn_chan_app_set_wait(&f->a, MN_CHAN_WAIT_FILL);
	mn_chan_srv_refill(&f->s, 8);
	mn_chan_srv_wake(&f->s);
	assert_true(fd_readable(f->a.rx_fd));
	drain(f->a.rx_fd);
	/* Nothing published since: no second write. */
	mn_chan_srv_wake(&f->s);
	assert_false(fd_readable(f->a.rx_fd));

	/* Application -> server. */
	assert_true(mn_chan_srv_sleep_prepare(&f->s));
	app_send_ok(f, "z", 1, 0);
	mn_chan_app_kick(&f->a);
	assert_true(fd_readable(f->s.kick_fd));
	mn_chan_srv_sleep_done(&f->s);
	assert_false(fd_readable(f->s.kick_fd));
	assert_true(mn_chan_srv_pending(&f->s));
	/* Work waiting: the server must not sleep, and nobody needs to kick. */
	assert_false(mn_chan_srv_sleep_prepare(&f->s));
	mn_chan_app_kick(&f->a);
	assert_false(fd_readable(f->s.kick_fd));
}

static void test_close(void **state)
{
	struct fx *f = *state;
	int32_t reason = 0;

	mn_chan_srv_refill(&f->s, 8);
	mn_chan_srv_close(&f->s, -ESHUTDOWN);
	assert_true(fd_readable(f->a.rx_fd)); /* whatever app_wait says */
	assert_int_equal(mn_chan_app_status(&f->a, &reason), MN_CHAN_ST_CLOSED);
	assert_int_equal(reason, -ESHUTDOWN);
	{
		struct iovec iov = { "q", 1 };

		assert_int_equal(mn_chan_app_send(&f->a, &FLOW, &iov, 1, 1, 0, 0), -ESHUTDOWN);
	}
	/* Unknown status values read as closed. */
	f->s.ctrl->status = 77;
	assert_int_equal(mn_chan_app_status(&f->a, NULL), MN_CHAN_ST_CLOSED);
}

/*
 * Send and receive budgets: half the pool for each. Queued sends never take
 * the receive half, reassembly never takes the send half, and buffers go
 * back to the side that gave them out; a received chain sent on tx moves
 * to the send side.
 */
static void test_budgets(void **state)
{
	struct fx *f = *state;
	struct mn_chan_params p = params(NBUFS, BUF_SIZE, MAX_MSG);
	static uint8_t in[MAX_MSG], out[MAX_MSG];
	struct iovec oiov = { out, sizeof(out) };
	uint32_t rx[3][9];
	struct mn_chan_desc d;

	fx_close(f);
	p.recv_bufs = NBUFS / 2;
	memset(f, 0, sizeof(*f));
	assert_int_equal(mn_chan_srv_create(&f->s, &p), 0);
	assert_int_equal(app_map_dup(&f->a, &f->s), 0);
	fill_pattern(in, sizeof(in), 5);

	/* Fill stops at the send half, whatever the target. */
	assert_int_equal(mn_chan_srv_refill(&f->s, NBUFS), NBUFS / 2);
	assert_true(f->s.st.send_capped > 0);
	/* Three 9-buffer messages fit in the receive half; a fourth does not,
	 * though the send half's lent buffers are not the reason. */
	for (int i = 0; i < 3; i++)
		srv_chain(f, MAX_MSG, rx[i]);
	assert_int_equal(mn_chan_srv_recv_room(&f->s), 5);
	assert_int_equal(mn_chan_srv_chain_alloc(&f->s, MAX_MSG, 0, f->sidx), -ENOBUFS);
	assert_int_equal(f->s.st.recv_capped, 1);
	/* The application sends three messages from its half; the fourth finds
	 * no buffers, and refills lend nothing more while the three are held. */
	for (uint64_t k = 0; k < 3; k++) {
		app_send_ok(f, in, MAX_MSG, k);
		assert_int_equal(mn_chan_srv_tx_take(&f->s, &d, f->sidx + 9 * k), 1);
	}
	assert_int_equal(mn_chan_app_send(&f->a, &FLOW, &(struct iovec){ in, MAX_MSG }, 1,
					  MAX_MSG, 0, 3), -ENOBUFS);
	assert_int_equal(mn_chan_srv_refill(&f->s, NBUFS), 0);
	assert_int_equal(f->s.held[MN_CHAN_SIDE_SEND], NBUFS / 2);
	assert_int_equal(f->s.held[MN_CHAN_SIDE_RECV], 27);
	/* Delivered and consumed: the receive half is whole again. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(mn_chan_srv_deliver(&f->s, &FLOW, rx[i], 9, MAX_MSG, 0), 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(mn_chan_app_recv(&f->a, &d, &oiov, 1), 1);
	assert_int_equal(mn_chan_srv_free_poll(&f->s, 64), 27);
	assert_int_equal(f->s.held[MN_CHAN_SIDE_RECV], 0);
	assert_int_equal(mn_chan_srv_recv_room(&f->s), NBUFS / 2);
	/* The sends complete: the send half lends again. */
	mn_chan_srv_chain_free(&f->s, f->sidx, 27);
	assert_int_equal(f->s.held[MN_CHAN_SIDE_SEND], 5);
	assert_int_equal(mn_chan_srv_refill(&f->s, NBUFS), NBUFS / 2 - 5);
	/* A received chain put straight on tx counts for sending from then on. */
	srv_chain(f, MAX_MSG, rx[0]);
	assert_int_equal(mn_chan_srv_deliver(&f->s, &FLOW, rx[0], 9, MAX_MSG, 0), 1);
	assert_int_equal(mn_chan_app_peek(&f->a, &d), 1);
	app_forge_tx(f, d.idx, 9, MAX_MSG, MN_CHAN_D_MSG);
	assert_int_equal(mn_chan_srv_tx_take(&f->s, &d, f->sidx), 1);
	assert_int_equal(f->s.held[MN_CHAN_SIDE_RECV], 0);
	assert_int_equal(f->s.held[MN_CHAN_SIDE_SEND], NBUFS / 2 + 9);
	mn_chan_srv_chain_free(&f->s, f->sidx, 9);
	assert_int_equal(f->s.held[MN_CHAN_SIDE_SEND] + f->s.held[MN_CHAN_SIDE_NONE], NBUFS);
	assert_int_equal(f->s.st.bad_chain + f->s.st.bad_desc + f->a.st.bad_rx, 0);
}

/*
 * Messages ahead of their flow's head leave room for a largest message;
 * the head may use it. Refusals come from the budget, not from a pool
 * short of buffers (it has plenty free here).
 */
static void test_budget_keeps_room_for_the_head(void **state)
{
	struct fx *f = *state;
	struct mn_chan_params p = params(NBUFS, BUF_SIZE, MAX_MSG);
	uint32_t a[9], b[9], h[9];

	fx_close(f);
	p.recv_bufs = NBUFS / 2;
	memset(f, 0, sizeof(*f));
	assert_int_equal(mn_chan_srv_create(&f->s, &p), 0);
	assert_int_equal(app_map_dup(&f->a, &f->s), 0);
	assert_int_equal(mn_chan_srv_chain_alloc(&f->s, MAX_MSG, MN_CHAN_ALLOC_AHEAD, a), 9);
	assert_int_equal(mn_chan_srv_chain_alloc(&f->s, MAX_MSG, MN_CHAN_ALLOC_AHEAD, b), 9);
	/* 14 left: a third one ahead would leave less than 9. */
	assert_int_equal(mn_chan_srv_chain_alloc(&f->s, MAX_MSG, MN_CHAN_ALLOC_AHEAD, h), -ENOBUFS);
	assert_int_equal(f->s.st.recv_capped, 1);
	assert_true(mn_pool_nfree(&f->s.pool) >= 40);
	/* The head takes the kept room; then the receive half is spent. */
	assert_int_equal(mn_chan_srv_chain_alloc(&f->s, MAX_MSG, 0, h), 9);
	assert_int_equal(mn_chan_srv_recv_room(&f->s), 5);
	assert_int_equal(mn_chan_srv_chain_alloc(&f->s, MAX_MSG, 0, f->sidx), -ENOBUFS);
	assert_int_equal(f->s.st.recv_capped, 2);
	assert_true(mn_pool_nfree(&f->s.pool) >= 30);
	mn_chan_srv_chain_free(&f->s, a, 9);
	mn_chan_srv_chain_free(&f->s, b, 9);
	mn_chan_srv_chain_free(&f->s, h, 9);
	assert_int_equal(f->s.held[MN_CHAN_SIDE_RECV], 0);
	assert_int_equal(mn_pool_nfree(&f->s.pool), NBUFS);
}

/* recv_bufs must leave a largest message room on both sides. */
static void test_budgets_refused(void **state)
{
	const uint32_t bad[] = { 8, NBUFS - 8, NBUFS + 6 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mn_chan_params p = params(NBUFS, BUF_SIZE, MAX_MSG);
		struct mn_chan_srv s;

		p.recv_bufs = bad[i];
		assert_int_equal(mn_chan_srv_create(&s, &p), -EINVAL);
		assert_log_contains("buffers reserved for receiving");
	}
}

/* Table-driven: messages of many sizes round-trip with intact content, and
 * every buffer comes home. */
static void test_sizes_table(void **state)
{
	struct fx *f = *state;
	const uint32_t sizes[] = { 1, 2, 63, 111, 112, 113, 224, 225, 500, 999, 1000 };
	static uint8_t in[MAX_MSG], out[MAX_MSG];
	struct iovec oiov = { out, sizeof(out) };

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct mn_chan_desc d;

		fill_pattern(in, sizes[k], (unsigned int)k);
		mn_chan_srv_refill(&f->s, 16);
		app_send_ok(f, in, sizes[k], k);
		assert_int_equal(mn_chan_srv_tx_take(&f->s, &d, f->sidx), 1);
		assert_int_equal(mn_chan_srv_deliver(&f->s, &d.flow, f->sidx, d.nbufs, d.len, 0), 1);
		assert_int_equal(mn_chan_app_recv(&f->a, &d, &oiov, 1), 1);
		assert_int_equal(d.len, sizes[k]);
		assert_memory_equal(in, out, sizes[k]);
		mn_chan_srv_free_poll(&f->s, 64);
	}
	mn_chan_app_flush_cache(&f->a);
	mn_chan_srv_free_poll(&f->s, 64);
	assert_int_equal(mn_pool_nlent(&f->s.pool), (uint32_t)mn_ring_count(&f->s.fill));
	assert_int_equal(f->s.st.bad_chain + f->a.st.bad_rx, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_refuses_geometry),
		cmocka_unit_test_setup_teardown(test_map_geometry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_refuses_bad_ctrl, setup, teardown),
		cmocka_unit_test(test_map_refuses_other_kind),
		cmocka_unit_test_setup_teardown(test_chain_link_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_shape_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_walk_forged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iov_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_accounting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_srv_refuses_forged_tx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_srv_refuses_double_return, setup, teardown),
		cmocka_unit_test_setup_teardown(test_srv_refuses_bad_tx_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_without_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_tx_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recv_too_small_keeps_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_app_refuses_forged_rx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_app_corrupt_rx_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wakeup_handshake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sizes_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budgets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_keeps_room_for_the_head, setup, teardown),
		cmocka_unit_test(test_budgets_refused),
	};

	return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
