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
 * across a restart is a content mismatch. Neither side takes that index from
 * its ring handle: a peer reads, once at attach, where the shared indices
 * stand and counts the entries it has produced or consumed since; the owner
 * counts from the ring's format. So an mn_ring_attach() that resumes at the
 * wrong index (skipping an entry, or overwriting a published one) shows up as
 * a mismatch instead of moving the expectation along with it.
 *
 * Each cycle waits for the new peer to attach before its random timer
 * starts, so every kill hits a peer that is streaming. Children die with the
 * test process (PR_SET_PDEATHSIG), and a failing assertion in the owner kills
 * and reaps the running peer (the teardown), so a failure stays a failure
 * instead of becoming a timeout.
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
#include <sys/prctl.h>
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
#define WAIT_NS 10000000000ull /* bound on waiting for a peer: 10 s */

enum { SEC_POOL, SEC_TO_PEER, SEC_FROM_PEER, SEC_STATE };

/* Written by peers, read by the owner. */
struct peer_state {
	uint64_t freeze;   /* owner: the next peer freezes after one burst */
	uint64_t frozen;   /* peer: frozen, holding `held` buffers */
	uint64_t held;
	uint64_t started;  /* peers attached to both rings */
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
	/*
	 * Peer only, private. The bases are read from the rings' shared memory
	 * at attach, apart from the handles; the counts are the peer's own.
	 */
	uint32_t to_peer_base;	 /* to_peer cons_head: our first entry */
	uint32_t from_peer_base; /* from_peer prod_tail: index of our first entry */
	uint64_t consumed;	 /* entries taken from to_peer */
	uint64_t produced;	 /* entries published on from_peer */
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

		s->consumed += n;
		for (uint32_t i = 0; i < n; i++) {
			struct bufdata *b = mn_pool_view_buf(v, d[i].idx, 0, sizeof(*b));
			/* Not from_peer.pos: see the top of the file. */
			uint64_t seq = (uint64_t)s->from_peer_base + s->produced + kept;

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
		s->produced += kept;
	}
}

/* tx: check each buffer holds its index on to_peer, then return it. */
static void peer_tx(struct side *s, struct mn_pool_view *v, unsigned int seed)
{
	struct mn_desc d[MAX_BURST];

	for (;;) {
		/* Not to_peer.pos: see the top of the file. */
		uint32_t first = (uint32_t)(s->to_peer_base + s->consumed);
		uint32_t n = take_some(&s->to_peer, d, &seed, s->st);

		s->consumed += n;
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
		s->produced += n;
	}
}

/* The shared index a side resumes at, read straight from the ring. */
static uint32_t shared_index(void *ring_mem, enum mn_ring_role role)
{
	struct mn_ring_shm *shm = ring_mem;

	/* Acquire pairs with the ring's store-release of the index. */
	return role == MN_RING_PRODUCER ? __atomic_load_n(&shm->prod_tail, __ATOMIC_ACQUIRE)
					: __atomic_load_n(&shm->cons_head, __ATOMIC_ACQUIRE);
}

static void peer_main(int fd, peer_fn fn, unsigned int seed)
{
	struct mn_pool_view v;
	struct side s = { 0 };
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
	/* Only we move it, and our predecessor is dead: it stays put. */
	s.to_peer_base = shared_index(mem, MN_RING_CONSUMER);
	mem = mn_region_section(&s.reg, SEC_FROM_PEER, &len);
	if (mn_ring_attach(&s.from_peer, mem, len, sizeof(struct mn_desc), MN_RING_PRODUCER))
		_exit(2);
	s.from_peer_base = shared_index(mem, MN_RING_PRODUCER);
	__atomic_add_fetch(&s.st->started, 1, __ATOMIC_RELEASE);
	fn(&s, &v, seed);
}

/*
 * The running peer, if any: the teardown kills and reaps it when an assertion
 * fails between spawn and reaping.
 */
static pid_t live_peer;

/* Forget @pid once reaped (or found not to be our child any more). */
static void peer_reaped(pid_t pid)
{
	if (live_peer == pid)
		live_peer = 0;
}

static void kill_live_peer(void)
{
	pid_t pid = live_peer;

	live_peer = 0;
	/* Only a pid that is still our child (running or zombie) is safe to kill. */
	if (pid > 0 && waitpid(pid, NULL, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

static pid_t spawn_peer(int fd, peer_fn fn, unsigned int seed)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		int myfd;

		/* Die with the test process; it may have died before prctl(). */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(2);
		myfd = dup(fd);
		if (myfd < 0)
			_exit(2);
		peer_main(myfd, fn, seed);
		_exit(0);
	}
	if (pid > 0)
		live_peer = pid;
	return pid;
}

static void describe_status(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "status 0x%x", (unsigned int)st);
}

struct owner {
	struct side s;
	struct mn_pool pool;
	uint64_t rx_expected; /* rx: next from_peer index the owner expects */
	uint64_t tx_next;     /* tx: to_peer index of the next entry, own count */
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
			uint32_t seq = (uint32_t)o->tx_next;

			*(struct bufdata *)mn_pool_buf(&o->pool, (uint32_t)idx) =
				(struct bufdata){ seq, ~(uint64_t)seq };
		}
		assert_int_equal(mn_pool_lend(&o->pool, (uint32_t)idx), 0);
		/* RING_CAP == NBUFS: there is always room. */
		assert_int_equal(mn_ring_enqueue(&o->s.to_peer, &d), 1);
		o->tx_next++;
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

/* Fail at once, with its status, if the peer ended on its own. */
static void check_alive(struct owner *o, pid_t pid, const char *doing)
{
	char how[32];
	int st;

	if (waitpid(pid, &st, WNOHANG) != pid)
		return;
	peer_reaped(pid);
	describe_status(st, how, sizeof(how));
	fail_msg("peer %d ended (%s) while %s (ring_err %" PRIu64 ", bad %" PRIu64 ")",
		 (int)pid, how, doing, o->s.st->ring_err, o->s.st->bad);
}

/* Wait (bounded) until the new peer has attached to both rings. */
static void wait_started(struct owner *o, pid_t pid, uint64_t want)
{
	uint64_t end = now_ns() + WAIT_NS;

	/* Acquire pairs with the release increment in peer_main(). */
	while (__atomic_load_n(&o->s.st->started, __ATOMIC_ACQUIRE) < want) {
		check_alive(o, pid, "attaching");
		if (now_ns() > end)
			fail_msg("peer %d did not attach within 10 s", (int)pid);
		owner_lend_all(o);
		if (owner_collect(o) == 0)
			idle();
	}
	assert_int_equal(o->s.st->started, want);
}

/* Wait (bounded) until the frozen peer holds its buffers. */
static void wait_frozen(struct owner *o, pid_t pid)
{
	uint64_t end = now_ns() + WAIT_NS;

	/* Acquire pairs with the release store in maybe_freeze(). */
	while (!__atomic_load_n(&o->s.st->frozen, __ATOMIC_ACQUIRE)) {
		check_alive(o, pid, "waiting for it to freeze");
		if (now_ns() > end)
			fail_msg("peer did not take a burst within 10 s");
		owner_lend_all(o);
		if (owner_collect(o) == 0)
			idle();
	}
}

static void kill_peer(struct owner *o, pid_t pid)
{
	char how[32];
	pid_t got;
	int st;

	assert_int_equal(kill(pid, SIGKILL), 0);
	got = waitpid(pid, &st, 0);
	peer_reaped(pid);
	assert_int_equal(got, pid);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
		describe_status(st, how, sizeof(how));
		fail_msg("peer %d ended with %s before the kill (ring_err %" PRIu64
			 ", bad %" PRIu64 ")", (int)pid, how, o->s.st->ring_err, o->s.st->bad);
	}
}

/* Static, so that the teardown can release it after a failed assertion. */
static struct owner the_owner;

static void kill_cycles(bool rx)
{
	peer_fn fn = rx ? peer_rx : peer_tx;
	unsigned int seed = (unsigned int)getpid();
	uint64_t delivered, frozen_cycles = 0;
	struct owner *o = &the_owner;
	struct peer_state *st;

	owner_setup(o, rx);
	st = o->s.st;
	for (int c = 0; c < CYCLES; c++) {
		bool freeze = c % FREEZE_EVERY == 0;
		uint64_t before;
		pid_t pid;

		st->freeze = freeze;
		st->frozen = 0;
		pid = spawn_peer(o->s.reg.fd, fn, seed + (unsigned int)c);
		assert_true(pid > 0);
		/* The timer starts once the peer streams: no kill before attach. */
		wait_started(o, pid, (uint64_t)c + 1);
		if (freeze)
			wait_frozen(o, pid);
		else
			run_until(o, now_ns() + 200000u + (uint64_t)(rand_r(&seed) % 4000) * 1000u);
		kill_peer(o, pid);
		before = o->reclaimed;
		after_kill(o);
		if (freeze) {
			/* Exactly the buffers the dead peer had in its hands. */
			assert_int_equal(o->reclaimed - before, st->held);
			frozen_cycles++;
		}
	}
	delivered = rx ? o->rx_expected : o->tx_next - pending(&o->s.to_peer);
	if (st->bad)
		fail_msg("%" PRIu64 " bad entries seen by peers, first at %" PRIu64,
			 st->bad, st->first_bad);
	print_message("%s: %d kills (%" PRIu64 " of frozen peers), %" PRIu64
		      " entries delivered, %" PRIu64 " verified by peers, %" PRIu64
		      " buffers reclaimed, %" PRIu64 " peers started\n",
		      rx ? "rx" : "tx", CYCLES, frozen_cycles, delivered, st->verified,
		      o->reclaimed, st->started);
	assert_int_equal(st->started, CYCLES);
	assert_true(delivered > 0);
	if (!rx) {
		/*
		 * The peers checked what they took: all of it, except at most
		 * the burst in hand of each killed peer.
		 */
		assert_true(st->verified > 0);
		assert_true(st->verified <= delivered);
		assert_true(st->verified + (uint64_t)CYCLES * MAX_BURST >= delivered);
	}
	mn_pool_fini(&o->pool);
	mn_region_unmap(&o->s.reg);
}

/* After a failed assertion: no peer left spinning, no region left mapped. */
static int teardown(void **state)
{
	(void)state;
	kill_live_peer();
	mn_pool_fini(&the_owner.pool);
	mn_region_unmap(&the_owner.s.reg);
	return 0;
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
		cmocka_unit_test_teardown(test_kill_data_producer_repeatedly, teardown),
		cmocka_unit_test_teardown(test_kill_data_consumer_repeatedly, teardown),
	};

	mn_log_set_level(MN_LOG_WARN); /* reclaim logs at info every cycle */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
