/* SPDX-License-Identifier: MIT */
/*
 * A producer and a consumer in two processes stream 10 million entries
 * through one ring, over a region mapped from its fd as a real peer would.
 * Every entry carries its own index (and its complement, for 16-byte
 * entries), so the consumer proves: nothing lost, nothing repeated, order
 * kept, no torn entry.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "region.h"
#include "ring.h"

#define N_ENTRIES 10000000u
#define RING_CAP 1024u
#define SPIN_BEFORE_YIELD 64

struct entry16 {
	uint64_t seq;
	uint64_t check;
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
	return cfg->burst ? cfg->burst : 1 + (uint32_t)rand_r(seed) % 64;
}

static void fill_entries(uint8_t *buf, uint32_t esize, uint64_t seq, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct entry16 e = { seq + i, ~(seq + i) };

		memcpy(buf + (size_t)i * esize, &e, esize);
	}
}

static int run_producer(int fd, const struct xproc_cfg *cfg)
{
	struct mn_region reg;
	struct mn_ring r;
	uint8_t buf[64 * 16];
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
		fill_entries(buf, cfg->esize, seq, n);
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
		struct entry16 e = { 0, 0 };
		uint64_t want = res->received + i;

		memcpy(&e, buf + (size_t)i * esize, esize);
		if (e.seq != want || (esize == 16 && e.check != ~want)) {
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
	uint8_t buf[64 * 16];
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
		check_entries(res, buf, cfg->esize, (uint32_t)got);
	}
	mn_region_unmap(&reg);
	return 0;
}

static pid_t spawn(int (*fn)(int, const struct xproc_cfg *), int fd,
		   const struct xproc_cfg *cfg, int cpu)
{
	pid_t pid = fork();

	if (pid == 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu % sysconf(_SC_NPROCESSORS_ONLN), &set);
		sched_setaffinity(0, sizeof(set), &set); /* best effort */
		_exit(fn(dup(fd), cfg));
	}
	return pid;
}

static int wait_status(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void stream(const struct xproc_cfg *cfg)
{
	struct mn_region_spec spec = {
		.kind = MN_REGION_KIND_TEST,
		.nsections = 2,
		.sec = { { 1, mn_ring_memsize(RING_CAP, cfg->esize) },
			 { 2, sizeof(struct xproc_result) } },
	};
	struct mn_region reg;
	struct xproc_result *res;
	pid_t cons, prod;
	uint64_t len;

	assert_int_equal(mn_region_create(&reg, "xproc", &spec, MN_REGION_F_NO_HUGE), 0);
	void *ring = mn_region_section(&reg, SEC_RING, &len);

	assert_int_equal(mn_ring_format(ring, len, RING_CAP, cfg->esize), 0);
	cons = spawn(run_consumer, reg.fd, cfg, 1);
	prod = spawn(run_producer, reg.fd, cfg, 0);
	assert_true(cons > 0 && prod > 0);
	assert_int_equal(wait_status(prod), 0);
	assert_int_equal(wait_status(cons), 0);

	res = mn_region_section(&reg, SEC_RESULT, NULL);
	assert_int_equal(res->corrupt, 0);
	if (res->bad)
		fail_msg("%" PRIu64 " bad entries, first at index %" PRIu64, res->bad,
			 res->first_bad);
	assert_int_equal(res->received, N_ENTRIES);
	mn_region_unmap(&reg);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_8b_burst1),
		cmocka_unit_test(test_stream_8b_burst32),
		cmocka_unit_test(test_stream_16b_burst1),
		cmocka_unit_test(test_stream_16b_burst32),
		cmocka_unit_test(test_stream_16b_random_bursts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
