/* SPDX-License-Identifier: MIT */
/*
 * kill -9 a ring peer at random points while it streams, many times over.
 *
 * The test process owns a buffer pool and two rings, like a protocol server
 * with its port: `to_peer` (owner produces) and `from_peer` (peer produces).
 * A forked peer maps the region from its fd and shuttles buffers:
 *  - rx scenario: the peer is the data producer. It takes empty buffers
 *    from to_peer, writes into each the index its descriptor will have on
 *    from_peer, and publishes them there; the owner checks every buffer.
 *  - tx scenario: the peer is the data consumer. The owner writes into each
 *    buffer the index of its descriptor on to_peer; the peer checks them and
 *    returns the buffers on from_peer.
 * After each kill the owner checks the rings are consistent, reclaims the
 * buffers the dead peer held and verifies that every buffer is accounted
 * for (free, or in a ring); a new peer then resumes where the rings stand.
 * Every FREEZE_EVERY-th peer freezes right after taking a burst and says how
 * many buffers it holds; it is killed there, and the reclaim must return
 * exactly that many (the random kills cannot promise to hit a peer holding
 * buffers on a loaded machine; this does).
 * Because each entry's content is its ring index, any lost or repeated entry
 * across a restart is a content mismatch.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "pool.h"
#include "region.h"
#include "ring.h"

#define NBUFS 256u
#define BUF_SIZE 128u
#define RING_CAP 256u /* == NBUFS: a ring can always take every buffer */
#define CYCLES 300
#define MAX_BURST 32u
#define FREEZE_EVERY 5

enum { SEC_POOL, SEC_TO_PEER, SEC_FROM_PEER, SEC_STATE };

/* Written by peers, read by the owner. */
struct peer_state {
	uint64_t freeze;   /* owner: the next peer freezes after one burst */
	uint64_t frozen;   /* peer: frozen, holding `held` buffers */
	uint64_t held;
	uint64_t started;
	uint64_t verified; /* tx: buffers whose content matched */
	uint64_t bad;	   /* tx: content mismatches; rx/tx: invalid descriptors */
	uint64_t first_bad;
	uint64_t ring_err;
};

struct bufdata {
	uint64_t seq;
	uint64_t check;
};

struct side {
	struct mn_region reg;
	struct mn_ring to_peer;
	struct mn_ring from_peer;
	struct peer_state *st;
};

typedef void (*peer_fn)(struct side *s, struct mn_pool_view *v, unsigned int seed);

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void idle(void)
{
	sched_yield(); /* 2 vCPUs, two pollers: never starve the other side */
}

/* Keep buffers in hand a little, so kills often find the peer holding some. */
static void hold(unsigned int *seed)
{
	for (unsigned int i = rand_r(seed) % 2000; i > 0; i--)
		__builtin_ia32_pause();
}

static void put_all(struct mn_ring *r, const struct mn_desc *d, uint32_t n,
		    struct peer_state *st)
{
	while (n > 0) {
		int got = mn_ring_enqueue_burst(r, d, n);

		if (got < 0) {
			st->ring_err++;
			_exit(3);
		}
		if (got == 0)
			idle();
		d += got;
		n -= (uint32_t)got;
	}
}

/* Stop for good, holding @n buffers, until the owner kills us. */
static void maybe_freeze(struct peer_state *st, uint32_t n)
{
	if (n == 0 || !__atomic_load_n(&st->freeze, __ATOMIC_ACQUIRE))
		return;
	st->held = n;
	/* Release pairs with the owner's acquire load of frozen. */
	__atomic_store_n(&st->frozen, 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
}

static uint32_t take_some(struct mn_ring *r, struct mn_desc *d, unsigned int *seed,
			  struct peer_state *st)
{
	int got = mn_ring_dequeue_burst(r, d, 1 + (uint32_t)rand_r(seed) % MAX_BURST);

	if (got < 0) {
		st->ring_err++;
		_exit(3);
	}
	if (got == 0)
		idle();
	return (uint32_t)got;
}

/* rx: fill buffers from to_peer with their index on from_peer. */
static void peer_rx(struct side *s, struct mn_pool_view *v, unsigned int seed)
{
	struct mn_desc d[MAX_BURST];

	for (;;) {
		uint32_t n = take_some(&s->to_peer, d, &seed, s->st), kept = 0;

		for (uint32_t i = 0; i < n; i++) {
			struct bufdata *b = mn_pool_view_buf(v, d[i].idx, 0, sizeof(*b));
			uint64_t seq = s->from_peer.pos + kept;

			if (!b) {
				s->st->bad++;
				continue;
			}
			*b = (struct bufdata){ seq, ~seq };
			d[kept++] = (struct mn_desc){ d[i].idx, sizeof(*b) };
		}
		maybe_freeze(s->st, n);
		hold(&seed);
		put_all(&s->from_peer, d, kept, s->st);
	}
}

/* tx: check each buffer holds its index on to_peer, then return it. */
static void peer_tx(struct side *s, struct mn_pool_view *v, unsigned int seed)
{
	struct mn_desc d[MAX_BURST];

	for (;;) {
		uint32_t first = s->to_peer.pos;
		uint32_t n = take_some(&s->to_peer, d, &seed, s->st);

		for (uint32_t i = 0; i < n; i++) {
			struct bufdata *b = mn_pool_view_buf(v, d[i].idx, 0, sizeof(*b));
			uint32_t want = first + i;

			if (!b || (uint32_t)b->seq != want || (uint32_t)~b->check != want) {
				if (s->st->bad++ == 0)
					s->st->first_bad = want;
				continue;
			}
			s->st->verified++;
		}
		maybe_freeze(s->st, n);
		hold(&seed);
		put_all(&s->from_peer, d, n, s->st);
	}
}

static void peer_main(int fd, peer_fn fn, unsigned int seed)
{
	struct mn_pool_view v;
	struct side s;
	uint64_t len;
	void *mem;

	if (mn_region_map(&s.reg, fd, MN_REGION_KIND_TEST) != 0)
		_exit(2);
	s.st = mn_region_section(&s.reg, SEC_STATE, NULL);
	mem = mn_region_section(&s.reg, SEC_POOL, &len);
	if (mn_pool_view_init(&v, mem, len) != 0)
		_exit(2);
	mem = mn_region_section(&s.reg, SEC_TO_PEER, &len);
	if (mn_ring_attach(&s.to_peer, mem, len, sizeof(struct mn_desc), MN_RING_CONSUMER))
		_exit(2);
	mem = mn_region_section(&s.reg, SEC_FROM_PEER, &len);
	if (mn_ring_attach(&s.from_peer, mem, len, sizeof(struct mn_desc), MN_RING_PRODUCER))
		_exit(2);
	__atomic_add_fetch(&s.st->started, 1, __ATOMIC_RELEASE);
	fn(&s, &v, seed);
}

static pid_t spawn_peer(int fd, peer_fn fn, unsigned int seed)
{
	pid_t pid = fork();

	if (pid == 0) {
		int myfd = dup(fd);

		if (myfd < 0)
			_exit(2);
		peer_main(myfd, fn, seed);
		_exit(0);
	}
	return pid;
}

struct owner {
	struct side s;
	struct mn_pool pool;
	uint64_t rx_expected; /* rx: next from_peer index the owner expects */
	uint64_t reclaimed;
	bool rx;
};

static void owner_setup(struct owner *o, bool rx)
{
	size_t ring_len = mn_ring_memsize(RING_CAP, sizeof(struct mn_desc));
	struct mn_region_spec spec = {
		.kind = MN_REGION_KIND_TEST,
		.nsections = 4,
		.sec = { { 1, mn_pool_memsize(NBUFS, BUF_SIZE) }, { 2, ring_len },
			 { 3, ring_len }, { 4, sizeof(struct peer_state) } },
	};
	uint64_t len;
	void *mem;

	memset(o, 0, sizeof(*o));
	o->rx = rx;
	assert_int_equal(mn_region_create(&o->s.reg, "crash", &spec, MN_REGION_F_NO_HUGE), 0);
	o->s.st = mn_region_section(&o->s.reg, SEC_STATE, NULL);
	mem = mn_region_section(&o->s.reg, SEC_POOL, &len);
	assert_int_equal(mn_pool_format(mem, len, NBUFS, BUF_SIZE), 0);
	assert_int_equal(mn_pool_init(&o->pool, mem, len), 0);
	mem = mn_region_section(&o->s.reg, SEC_TO_PEER, &len);
	assert_int_equal(mn_ring_format(mem, len, RING_CAP, sizeof(struct mn_desc)), 0);
	assert_int_equal(mn_ring_attach(&o->s.to_peer, mem, len, sizeof(struct mn_desc),
					MN_RING_PRODUCER), 0);
	mem = mn_region_section(&o->s.reg, SEC_FROM_PEER, &len);
	assert_int_equal(mn_ring_format(mem, len, RING_CAP, sizeof(struct mn_desc)), 0);
	assert_int_equal(mn_ring_attach(&o->s.from_peer, mem, len, sizeof(struct mn_desc),
					MN_RING_CONSUMER), 0);
}

/* Lend every free buffer through to_peer (tx: with its index written in). */
static void owner_lend_all(struct owner *o)
{
	int idx;

	while ((idx = mn_pool_alloc(&o->pool)) >= 0) {
		struct mn_desc d = { (uint32_t)idx, sizeof(struct bufdata) };

		if (!o->rx) {
			uint32_t seq = o->s.to_peer.pos;

			*(struct bufdata *)mn_pool_buf(&o->pool, (uint32_t)idx) =
				(struct bufdata){ seq, ~(uint64_t)seq };
		}
		assert_int_equal(mn_pool_lend(&o->pool, (uint32_t)idx), 0);
		/* RING_CAP == NBUFS: there is always room. */
		assert_int_equal(mn_ring_enqueue(&o->s.to_peer, &d), 1);
	}
}

/* Take back what the peer returned; rx: check each buffer's content. */
static uint32_t owner_collect(struct owner *o)
{
	struct mn_desc d[MAX_BURST];
	int n = mn_ring_dequeue_burst(&o->s.from_peer, d, MAX_BURST);

	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		assert_int_equal(mn_pool_take(&o->pool, d[i].idx), 0);
		if (o->rx) {
			struct bufdata *b = mn_pool_buf(&o->pool, d[i].idx);

			if (b->seq != o->rx_expected || b->check != ~o->rx_expected)
				fail_msg("rx entry %" PRIu64 " holds %" PRIu64, o->rx_expected,
					 b->seq);
			o->rx_expected++;
		}
		assert_int_equal(mn_pool_free(&o->pool, d[i].idx), 0);
	}
	return (uint32_t)n;
}

static void run_until(struct owner *o, uint64_t deadline)
{
	while (now_ns() < deadline) {
		owner_lend_all(o);
		if (owner_collect(o) == 0)
			idle();
	}
}

static uint32_t pending(struct mn_ring *r)
{
	uint32_t first, count;

	/* The survivor must find the ring consistent whatever the kill hit. */
	assert_int_equal(mn_ring_pending(r, &first, &count), 0);
	assert_true(count <= RING_CAP);
	return count;
}

static void after_kill(struct owner *o)
{
	struct mn_ring *rings[] = { &o->s.to_peer, &o->s.from_peer };
	int n;

	while (owner_collect(o) > 0)
		;
	n = mn_pool_reclaim(&o->pool, rings, 2);
	assert_true(n >= 0);
	o->reclaimed += (uint64_t)n;
	/* Every buffer is free or waits in a ring; none is lost with the peer. */
	assert_int_equal(mn_pool_nlent(&o->pool),
			 pending(&o->s.to_peer) + pending(&o->s.from_peer));
	assert_int_equal(mn_pool_nfree(&o->pool) + mn_pool_nlent(&o->pool), NBUFS);
	assert_int_equal(o->s.st->ring_err, 0);
	assert_int_equal(o->pool.stats.bad_index + o->pool.stats.not_lent, 0);
}

/* Wait (bounded) until the frozen peer holds its buffers. */
static void wait_frozen(struct owner *o)
{
	uint64_t end = now_ns() + 10000000000ull;

	/* Acquire pairs with the release store in maybe_freeze(). */
	while (!__atomic_load_n(&o->s.st->frozen, __ATOMIC_ACQUIRE)) {
		if (now_ns() > end)
			fail_msg("peer did not take a burst within 10 s");
		owner_lend_all(o);
		if (owner_collect(o) == 0)
			idle();
	}
}

static void kill_cycles(bool rx)
{
	peer_fn fn = rx ? peer_rx : peer_tx;
	unsigned int seed = (unsigned int)getpid();
	uint64_t delivered, frozen_cycles = 0;
	struct owner o;

	owner_setup(&o, rx);
	for (int c = 0; c < CYCLES; c++) {
		bool freeze = c % FREEZE_EVERY == 0;
		uint64_t before;
		pid_t pid;
		int st;

		o.s.st->freeze = freeze;
		o.s.st->frozen = 0;
		pid = spawn_peer(o.s.reg.fd, fn, seed + (unsigned int)c);
		assert_true(pid > 0);
		if (freeze)
			wait_frozen(&o);
		else
			run_until(&o, now_ns() + 200000u + (uint64_t)(rand_r(&seed) % 4000) * 1000u);
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		before = o.reclaimed;
		after_kill(&o);
		if (freeze) {
			/* Exactly the buffers the dead peer had in its hands. */
			assert_int_equal(o.reclaimed - before, o.s.st->held);
			frozen_cycles++;
		}
	}
	delivered = rx ? o.rx_expected : o.s.to_peer.pos - pending(&o.s.to_peer);
	if (o.s.st->bad)
		fail_msg("%" PRIu64 " bad entries seen by peers, first at %" PRIu64,
			 o.s.st->bad, o.s.st->first_bad);
	print_message("%s: %d kills (%" PRIu64 " of frozen peers), %" PRIu64
		      " entries delivered, %" PRIu64 " buffers reclaimed, %" PRIu64 " peers started\n",
		      rx ? "rx" : "tx", CYCLES, frozen_cycles, delivered, o.reclaimed,
		      o.s.st->started);
	assert_true(delivered > 0);
	mn_pool_fini(&o.pool);
	mn_region_unmap(&o.s.reg);
}

static void test_kill_data_producer_repeatedly(void **state)
{
	(void)state;
	kill_cycles(true);
}

static void test_kill_data_consumer_repeatedly(void **state)
{
	(void)state;
	kill_cycles(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill_data_producer_repeatedly),
		cmocka_unit_test(test_kill_data_consumer_repeatedly),
	};

	mn_log_set_level(MN_LOG_WARN); /* reclaim logs at info every cycle */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
