/* SPDX-License-Identifier: MIT */
/*
 * A producer and a consumer in two processes stream 10 million entries
 * through one ring, over a region mapped from its fd as a real peer would.
 * Every entry carries its own sequence number (the producer's count), and
 * from 16 bytes on its complement, from 24 bytes on its xor with a constant
 * (24 is the generic copy path), so the consumer proves: nothing lost,
 * nothing repeated, order kept, no torn entry.
 *
 * The ring's shared indices start just below 2^32, so every stream crosses
 * the index wrap between the two processes; at the end both must stand
 * exactly N_ENTRIES further on.
 *
 * Children die with the test process (PR_SET_PDEATHSIG); a child that fails
 * gets its partner killed, and a failing assertion kills and reaps both (the
 * teardown), so a failure stays a failure instead of becoming a timeout.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "region.h"
#include "ring.h"

#define N_ENTRIES 10000000u
#define RING_CAP 1024u
#define SPIN_BEFORE_YIELD 64
#define MAX_BURST 64u
#define MAX_ESIZE 24u
/* Where both indices start: the stream crosses 2^32 after 5001 entries. */
#define START_INDEX (UINT32_MAX - 5000u)
#define XOR_CHECK 0x5a5a5a5aa5a5a5a5ull
/* A stream that receives nothing for this long is stuck: 10 s. */
#define STALL_NS 10000000000ull

struct entry {
	uint64_t seq;
	uint64_t check; /* ~seq, esize >= 16 */
	uint64_t xcheck; /* seq ^ XOR_CHECK, esize >= 24 */
};

/* Results the consumer leaves in the region for the parent. */
struct xproc_result {
	uint64_t received;
	uint64_t bad;	     /* entries whose content != expected */
	uint64_t first_bad;  /* index of the first bad entry */
	uint64_t corrupt;    /* -EBADMSG returns */
};

enum { SEC_RING, SEC_RESULT };

struct xproc_cfg {
	uint32_t esize;
	uint32_t burst; /* 0 = random burst sizes 1..64 each call */
};

static void idle(unsigned int *spins)
{
	/* Two processes on two noisy vCPUs: yield so neither starves (LAB.md). */
	if (++*spins >= SPIN_BEFORE_YIELD) {
		*spins = 0;
		sched_yield();
	} else {
		__builtin_ia32_pause();
	}
}

static uint32_t next_burst(const struct xproc_cfg *cfg, unsigned int *seed)
{
	return cfg->burst ? cfg->burst : 1 + (uint32_t)rand_r(seed) % MAX_BURST;
}

static void fill_entries(uint8_t *buf, uint32_t esize, uint64_t seq, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct entry e = { seq + i, ~(seq + i), (seq + i) ^ XOR_CHECK };

		memcpy(buf + (size_t)i * esize, &e, esize);
	}
}

static int run_producer(int fd, const struct xproc_cfg *cfg)
{
	struct mn_region reg;
	struct mn_ring r;
	uint64_t buf[MAX_BURST * MAX_ESIZE / 8]; /* 8-byte aligned entries */
	uint64_t seq = 0;
	unsigned int spins = 0, seed = 12345;
	uint64_t len;
	void *mem;

	if (mn_region_map(&reg, fd, MN_REGION_KIND_TEST) != 0)
		return 2;
	mem = mn_region_section(&reg, SEC_RING, &len);
	if (mn_ring_attach(&r, mem, len, cfg->esize, MN_RING_PRODUCER) != 0)
		return 3;
	while (seq < N_ENTRIES) {
		uint32_t n = next_burst(cfg, &seed);
		int got;

		if (n > N_ENTRIES - seq)
			n = (uint32_t)(N_ENTRIES - seq);
		fill_entries((uint8_t *)buf, cfg->esize, seq, n);
		got = mn_ring_enqueue_burst(&r, buf, n);
		if (got < 0)
			return 4;
		if (got == 0)
			idle(&spins);
		seq += (uint64_t)got;
	}
	mn_region_unmap(&reg);
	return 0;
}

static void check_entries(struct xproc_result *res, const uint8_t *buf,
			  uint32_t esize, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct entry e = { 0, 0, 0 };
		uint64_t want = res->received + i;

		memcpy(&e, buf + (size_t)i * esize, esize);
		if (e.seq != want || (esize >= 16 && e.check != ~want) ||
		    (esize >= 24 && e.xcheck != (want ^ XOR_CHECK))) {
			if (res->bad++ == 0)
				res->first_bad = want;
		}
	}
	res->received += n;
}

static int run_consumer(int fd, const struct xproc_cfg *cfg)
{
	struct mn_region reg;
	struct xproc_result *res;
	struct mn_ring r;
	uint64_t buf[MAX_BURST * MAX_ESIZE / 8]; /* 8-byte aligned entries */
	unsigned int spins = 0, seed = 54321;
	uint64_t len;
	void *mem;

	if (mn_region_map(&reg, fd, MN_REGION_KIND_TEST) != 0)
		return 2;
	mem = mn_region_section(&reg, SEC_RING, &len);
	res = mn_region_section(&reg, SEC_RESULT, NULL);
	if (mn_ring_attach(&r, mem, len, cfg->esize, MN_RING_CONSUMER) != 0)
		return 3;
	while (res->received < N_ENTRIES) {
		int got = mn_ring_dequeue_burst(&r, buf, next_burst(cfg, &seed));

		if (got < 0) {
			res->corrupt++;
			return 4;
		}
		if (got == 0)
			idle(&spins);
		check_entries(res, (const uint8_t *)buf, cfg->esize, (uint32_t)got);
	}
	mn_region_unmap(&reg);
	return 0;
}

enum { PROD, CONS };

/*
 * The running children, and the region: the teardown kills and reaps the
 * ones still here, and unmaps, when an assertion fails.
 */
static pid_t kids[2];
static struct mn_region the_reg;

static void kill_kids(void)
{
	for (int i = 0; i < 2; i++) {
		pid_t pid = kids[i];

		kids[i] = 0;
		/* Only a pid that is still our child (running or zombie) is safe to kill. */
		if (pid > 0 && waitpid(pid, NULL, WNOHANG) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
}

static int teardown(void **state)
{
	(void)state;
	kill_kids();
	mn_region_unmap(&the_reg);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static pid_t spawn(int (*fn)(int, const struct xproc_cfg *), int fd,
		   const struct xproc_cfg *cfg, int cpu)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		cpu_set_t set;

		/* Die with the test process; it may have died before prctl(). */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(125);
		CPU_ZERO(&set);
		CPU_SET(cpu % sysconf(_SC_NPROCESSORS_ONLN), &set);
		sched_setaffinity(0, sizeof(set), &set); /* best effort */
		_exit(fn(dup(fd), cfg));
	}
	return pid;
}

/*
 * Reap both children. The first to fail gets its partner killed (a producer
 * blocked on a full ring, or a consumer waiting for entries that will never
 * come, would spin forever), and so do both when the consumer receives
 * nothing for STALL_NS (a ring wedged full on one side and empty on the
 * other). Returns with both reaped and exited 0, or fails.
 */
static void reap_kids(const struct xproc_result *res)
{
	static const char *const name[2] = { "producer", "consumer" };
	uint64_t seen = 0, stall_end = now_ns() + STALL_NS;

	while (kids[PROD] > 0 || kids[CONS] > 0) {
		uint64_t got = __atomic_load_n(&res->received, __ATOMIC_RELAXED);
		int st, who;
		pid_t pid;

		pid = waitpid(-1, &st, WNOHANG);
		if (pid < 0) {
			kill_kids();
			fail_msg("waitpid: %s", strerror(errno));
		}
		if (pid == 0) {
			if (got != seen) {
				seen = got;
				stall_end = now_ns() + STALL_NS;
			} else if (now_ns() > stall_end) {
				kill_kids();
				fail_msg("stream stuck: nothing received for 10 s, %" PRIu64
					 " of %u entries in", got, N_ENTRIES);
			}
			usleep(2000);
			continue;
		}
		who = pid == kids[PROD] ? PROD : pid == kids[CONS] ? CONS : -1;
		if (who < 0)
			continue; /* not one of ours */
		kids[who] = 0;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			kill_kids();
			fail_msg("%s ended with %s %d (corrupt %" PRIu64 ", received %" PRIu64 ")",
				 name[who], WIFEXITED(st) ? "exit" : "signal",
				 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), res->corrupt,
				 res->received);
		}
	}
}

static void stream(const struct xproc_cfg *cfg)
{
	struct mn_region_spec spec = {
		.kind = MN_REGION_KIND_TEST,
		.nsections = 2,
		.sec = { { 1, mn_ring_memsize(RING_CAP, cfg->esize) },
			 { 2, sizeof(struct xproc_result) } },
	};
	struct mn_region *reg = &the_reg;
	struct mn_ring_shm *shm;
	struct xproc_result *res;
	uint64_t len;

	assert_int_equal(mn_region_create(reg, "xproc", &spec, MN_REGION_F_NO_HUGE), 0);
	void *ring = mn_region_section(reg, SEC_RING, &len);

	assert_int_equal(mn_ring_format(ring, len, RING_CAP, cfg->esize), 0);
	/* Empty ring, indices just below the wrap; not shared yet. */
	shm = ring;
	shm->prod_tail = START_INDEX;
	shm->cons_head = START_INDEX;
	res = mn_region_section(reg, SEC_RESULT, NULL);
	kids[CONS] = spawn(run_consumer, reg->fd, cfg, 1);
	assert_true(kids[CONS] > 0);
	kids[PROD] = spawn(run_producer, reg->fd, cfg, 0);
	assert_true(kids[PROD] > 0);
	reap_kids(res);

	assert_int_equal(res->corrupt, 0);
	if (res->bad)
		fail_msg("%" PRIu64 " bad entries, first at index %" PRIu64, res->bad,
			 res->first_bad);
	assert_int_equal(res->received, N_ENTRIES);
	/* Both sides crossed 2^32 and stopped exactly N_ENTRIES on. */
	assert_int_equal(__atomic_load_n(&shm->prod_tail, __ATOMIC_ACQUIRE),
			 (uint32_t)(START_INDEX + N_ENTRIES));
	assert_int_equal(__atomic_load_n(&shm->cons_head, __ATOMIC_ACQUIRE),
			 (uint32_t)(START_INDEX + N_ENTRIES));
	mn_region_unmap(reg);
}

static void test_stream_8b_burst1(void **state)
{
	(void)state;
	stream(&(struct xproc_cfg){ .esize = 8, .burst = 1 });
}

static void test_stream_8b_burst32(void **state)
{
	(void)state;
	stream(&(struct xproc_cfg){ .esize = 8, .burst = 32 });
}

static void test_stream_16b_burst1(void **state)
{
	(void)state;
	stream(&(struct xproc_cfg){ .esize = 16, .burst = 1 });
}

static void test_stream_16b_burst32(void **state)
{
	(void)state;
	stream(&(struct xproc_cfg){ .esize = 16, .burst = 32 });
}

static void test_stream_16b_random_bursts(void **state)
{
	(void)state;
	stream(&(struct xproc_cfg){ .esize = 16, .burst = 0 });
}

static void test_stream_24b_burst1(void **state)
{
	(void)state;
	stream(&(struct xproc_cfg){ .esize = 24, .burst = 1 });
}

static void test_stream_24b_burst32(void **state)
{
	(void)state;
	stream(&(struct xproc_cfg){ .esize = 24, .burst = 32 });
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_stream_8b_burst1, teardown),
		cmocka_unit_test_teardown(test_stream_8b_burst32, teardown),
		cmocka_unit_test_teardown(test_stream_16b_burst1, teardown),
		cmocka_unit_test_teardown(test_stream_16b_burst32, teardown),
		cmocka_unit_test_teardown(test_stream_16b_random_bursts, teardown),
		cmocka_unit_test_teardown(test_stream_24b_burst1, teardown),
		cmocka_unit_test_teardown(test_stream_24b_burst32, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
