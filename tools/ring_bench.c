/* SPDX-License-Identifier: MIT */
/*
 * ring_bench - our SPSC ring (ipc/ring.h) against DPDK's rte_ring in SP/SC
 * mode, between two processes pinned to two cores, over the same memory in
 * the same run. A benchmark: it prints figures and never judges them; it
 * fails (exit 1) only when a ring loses, repeats or corrupts an entry.
 *
 * Memory. One region from mn_region_create() (hugetlbfs when huge pages are
 * free, memfd otherwise) holds a control block and eight rings, each in its
 * own section: for each implementation and each entry size (8, 16 bytes),
 * ring AB (parent A -> child B) and ring BA (B -> A). The rings are
 * formatted, then the child is forked, so both processes use one MAP_SHARED
 * mapping at the same address.
 *
 * rte_ring without EAL. rte_ring_get_memsize_elem() is arithmetic and
 * rte_ring_init() only fills the header: name, flags, sync types,
 * size/mask/capacity; `memzone` stays NULL (only rte_ring_free() reads it,
 * and we never call that). The SP/SC enqueue/dequeue paths are inline and
 * touch only prod/cons head/tail and the slots at &r[1], an address derived
 * from the ring's own: the ring stores no pointer the fast path follows,
 * so it works in any shared mapping. Nothing here calls rte_eal_init().
 * librte_ring does pull librte_eal in as a library dependency; its
 * constructors only register things (log types, tailqs, buses) that we
 * never use. The binary imports rte_ring_init and rte_ring_get_memsize_elem
 * and nothing else from DPDK.
 *
 * Like for like. Both rings are compiled in this translation unit, so with
 * DPDK's flags (-march=corei7 -include rte_config.h). rte_ring is driven
 * through the generic _elem API, rte_ring_{en,de}queue_burst_elem(), with
 * esize 8 or 16 as a compile-time constant (the same code the void * API
 * runs for 8-byte entries); its sync type, set from RING_F_SP_ENQ |
 * RING_F_SC_DEQ, selects the single-producer/consumer path at run time. Our
 * ring's entry size comes from its handle. Rings have --ring slots each;
 * rte_ring holds one entry fewer (capacity = size - 1 without
 * RING_F_EXACT_SZ). Both sides busy-poll with rte_pause() (_mm_pause() on
 * x86) when empty or full; entries are filled and checked identically.
 * Each ring is measured as it comes: rte_ring's fast path is
 * __rte_always_inline, ours is plain static inline, which GCC is free to
 * compile out of line (at -O2 it does, in this file).
 *
 * Rows; each runs for both rings with the same parameters, back to back,
 * the order of the two alternating between repetitions. Each figure is the
 * median over the repetitions of that figure, each ratio the median of the
 * per-repetition ratios:
 *   rtt     A enqueues one entry on AB, B dequeues it and enqueues it on BA,
 *           A dequeues and checks it; rdtsc before and after each round
 *           trip, converted with a rate calibrated against CLOCK_MONOTONIC.
 *           p50/p99/p99.9 are multiples of the rdtsc resolution (printed;
 *           10 ns on the 2-vCPU EPYC VMs), the mean is not.
 *   stream  B enqueues --count numbered entries on BA in bursts, retrying
 *           when full; A dequeues in bursts of the same size, checks every
 *           sequence number, and times first to last dequeue.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "log.h"
#include "region.h"
#include "ring.h"

#define COMP "ring_bench"
#define HOT static inline __attribute__((always_inline))

#define EXIT_USAGE 2
#define EXIT_SKIP 77 /* meson: test skipped (fewer than two usable CPUs) */

#define MAX_REPS 99u
#define MAX_BURST 32u
#define MAX_RING_ENTRIES (1u << 20)
#define STREAM_PATTERN 0x5a5a5a5a5a5a5a5aULL
#define STALL_NS (10ULL * 1000000000ULL) /* no progress for this long: give up */
#define SPIN_CHECK_MASK 0xffffu		 /* idle polls between liveness checks */

enum impl { IMPL_OURS = 0, IMPL_DPDK = 1, IMPL_COUNT };
static const char *const impl_name[IMPL_COUNT] = { "ours", "rte_ring" };

enum { ES_8 = 0, ES_16 = 1, ES_COUNT };   /* entry-size index */
enum { DIR_AB = 0, DIR_BA = 1 };	  /* ring direction */
enum { SIDE_A = 0, SIDE_B = 1 };	  /* parent, child */
enum { SEC_CTL = 0, SEC_RINGS = 1 };	  /* region sections, rings after ctl */
#define NSECTIONS (SEC_RINGS + IMPL_COUNT * ES_COUNT * 2)

static uint32_t es_bytes(int es)
{
	return es == ES_16 ? 16 : 8;
}

/* ---------------------------------------------------------------- options */

struct opts {
	uint64_t count;		/* entries per streaming run */
	uint64_t round_trips;	/* measured round trips per latency run */
	uint64_t warmup;	/* unmeasured round trips before them */
	uint32_t reps;
	uint32_t ring_entries;
	int cores[2];		/* A (parent), B (child) */
	bool cores_given;
	const char *memory;	/* auto | huge | memfd */
	unsigned int region_flags;
	bool json;
	bool quick;
	uint32_t calib_ms;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: ring_bench [options]\n"
"Compare machnet's SPSC ring (ipc/ring.h) with DPDK's rte_ring (SP/SC, _elem\n"
"API) between two processes pinned to two cores, over one shared region.\n"
"Prints figures; exits 1 only if a ring lost or corrupted an entry.\n"
"\n"
"  --count N        entries per streaming run (default 20000000)\n"
"  --round-trips N  measured round trips per latency run (default 200000)\n"
"  --warmup N       unmeasured round trips before them (default 20000)\n"
"  --reps R         repetitions, 1..%u; ours and rte_ring alternate which\n"
"                   goes first; each figure is the median over them (default 5)\n"
"  --ring N         slots per ring, a power of two in 2..%u (default 1024;\n"
"                   rte_ring holds N-1 entries, ours N)\n"
"  --cores A,B      CPUs for the parent (timing side) and the child (default:\n"
"                   the first two CPUs this process may use, normally 0,1)\n"
"  --memory M       region backing: auto (hugetlbfs if huge pages are free,\n"
"                   else memfd), huge (hugetlbfs or fail), memfd (default auto)\n"
"  --json           print one JSON object instead of the table\n"
"  --quick          short run for a smoke test: --count 100000 --round-trips\n"
"                   20000 --warmup 2000 --reps 2 (explicit options still win)\n"
"  --help           this text\n"
"\n"
"Rows: round-trip latency p50/p99/p99.9/mean (ns) for 8- and 16-byte entries;\n"
"streaming throughput (M entries/s, measured by the consumer) for 8- and\n"
"16-byte entries in bursts of 1 and %u. Ratio > 1 means ours is better:\n"
"throughput ours/rte_ring, latency rte_ring/ours; it is the median of the\n"
"per-repetition ratios. Compare ratios only within one run.\n"
"Exit status: 0 ok, 1 failure, 2 bad option, %d fewer than two CPUs.\n",
		MAX_REPS, MAX_RING_ENTRIES, MAX_BURST, EXIT_SKIP);
}

static int bad_option(const char *opt, const char *why, const char *arg)
{
	fprintf(stderr, "ring_bench: %s: %s, got '%s' (see --help)\n", opt, why, arg);
	return -EINVAL;
}

static int parse_u64(const char *opt, const char *arg, uint64_t min, uint64_t max,
		     uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0 || v < min ||
	    v > max) {
		char why[96];

		snprintf(why, sizeof(why), "expected an integer in %" PRIu64 "..%" PRIu64,
			 min, max);
		return bad_option(opt, why, arg);
	}
	*out = v;
	return 0;
}

static int parse_cores(const char *arg, int cores[2])
{
	uint64_t a, b;
	const char *comma = strchr(arg, ',');
	char first[32];

	if (comma == NULL || (size_t)(comma - arg) >= sizeof(first))
		return bad_option("--cores", "expected two CPU numbers 'A,B'", arg);
	memcpy(first, arg, (size_t)(comma - arg));
	first[comma - arg] = '\0';
	if (parse_u64("--cores", first, 0, CPU_SETSIZE - 1, &a) ||
	    parse_u64("--cores", comma + 1, 0, CPU_SETSIZE - 1, &b))
		return -EINVAL;
	if (a == b)
		return bad_option("--cores", "the two processes need different CPUs", arg);
	cores[0] = (int)a;
	cores[1] = (int)b;
	return 0;
}

static int parse_memory(struct opts *o, const char *arg)
{
	if (strcmp(arg, "auto") == 0)
		o->region_flags = 0;
	else if (strcmp(arg, "huge") == 0)
		o->region_flags = MN_REGION_F_REQUIRE_HUGE;
	else if (strcmp(arg, "memfd") == 0)
		o->region_flags = MN_REGION_F_NO_HUGE;
	else
		return bad_option("--memory", "expected auto, huge or memfd", arg);
	o->memory = arg;
	return 0;
}

enum { OPT_COUNT = 256, OPT_RTT, OPT_WARMUP, OPT_REPS, OPT_RING, OPT_CORES,
       OPT_MEMORY, OPT_JSON, OPT_QUICK, OPT_HELP };

static const struct option long_opts[] = {
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "round-trips", required_argument, NULL, OPT_RTT },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "reps", required_argument, NULL, OPT_REPS },
	{ "ring", required_argument, NULL, OPT_RING },
	{ "cores", required_argument, NULL, OPT_CORES },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quick", no_argument, NULL, OPT_QUICK },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Which numeric options the user set, so --quick fills only the others. */
struct given {
	bool count, rtt, warmup, reps;
};

static int parse_one(struct opts *o, struct given *g, int c, const char *arg)
{
	uint64_t v;
	int err = 0;

	switch (c) {
	case OPT_COUNT:
		err = parse_u64("--count", arg, 2, 1ULL << 40, &o->count);
		g->count = true;
		break;
	case OPT_RTT:
		err = parse_u64("--round-trips", arg, 1000, 100000000, &o->round_trips);
		g->rtt = true;
		break;
	case OPT_WARMUP:
		err = parse_u64("--warmup", arg, 0, 100000000, &o->warmup);
		g->warmup = true;
		break;
	case OPT_REPS:
		err = parse_u64("--reps", arg, 1, MAX_REPS, &v);
		o->reps = (uint32_t)v;
		g->reps = true;
		break;
	case OPT_RING:
		err = parse_u64("--ring", arg, 2, MAX_RING_ENTRIES, &v);
		if (!err && (v & (v - 1)) != 0)
			err = bad_option("--ring", "expected a power of two", arg);
		o->ring_entries = (uint32_t)v;
		break;
	case OPT_CORES:
		err = parse_cores(arg, o->cores);
		o->cores_given = true;
		break;
	case OPT_MEMORY:
		err = parse_memory(o, arg);
		break;
	case OPT_JSON:
		o->json = true;
		break;
	case OPT_QUICK:
		o->quick = true;
		break;
	default:
		err = -EINVAL;
	}
	return err;
}

static void apply_quick(struct opts *o, const struct given *g)
{
	o->calib_ms = 20;
	if (!g->count)
		o->count = 100000;
	if (!g->rtt)
		o->round_trips = 20000;
	if (!g->warmup)
		o->warmup = 2000;
	if (!g->reps)
		o->reps = 2;
}

/* Returns 0 to run, 1 after --help, -EINVAL on a bad option (reported). */
static int parse_opts(struct opts *o, int argc, char **argv)
{
	struct given g = { 0 };
	int c;

	*o = (struct opts){
		.count = 20000000, .round_trips = 200000, .warmup = 20000,
		.reps = 5, .ring_entries = 1024, .cores = { 0, 1 },
		.memory = "auto", .calib_ms = 100,
	};
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			usage(stdout);
			return 1;
		}
		if (c == '?') {
			fprintf(stderr, "ring_bench: unknown option or missing value: '%s' (see --help)\n",
				argv[optind - 1]);
			return -EINVAL;
		}
		if (parse_one(o, &g, c, optarg))
			return -EINVAL;
	}
	if (optind < argc) {
		fprintf(stderr, "ring_bench: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return -EINVAL;
	}
	if (o->quick)
		apply_quick(o, &g);
	return 0;
}

/*
 * Check --cores against the CPUs we may run on, or pick the first two of
 * them. Returns 0, -EINVAL (a named CPU is not usable) or -ENODEV (fewer
 * than two usable CPUs and none named).
 */
static int choose_cores(struct opts *o)
{
	cpu_set_t set;
	int i, n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) != 0) {
		mn_err(COMP, "sched_getaffinity: %s", strerror(errno));
		return -errno;
	}
	if (o->cores_given) {
		for (i = 0; i < 2; i++)
			if (!CPU_ISSET(o->cores[i], &set)) {
				fprintf(stderr, "ring_bench: --cores: CPU %d is not one this process may use (%d usable)\n",
					o->cores[i], CPU_COUNT(&set));
				return -EINVAL;
			}
		return 0;
	}
	for (i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &set))
			o->cores[n++] = i;
	return n == 2 ? 0 : -ENODEV;
}

/* ----------------------------------------------------------------- timing */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct timer_info {
	double ns_per_tick;	/* rdtsc tick length */
	double rdtsc_ns;	/* median cost of one rdtsc */
	double resolution_ns;	/* median step between distinct rdtsc reads */
	double clock_ns;	/* median cost of one clock_gettime() */
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median cost in ticks of a back-to-back pair of rdtsc, or of rdtsc plus clock_gettime. */
static uint64_t median_cost(bool with_clock)
{
	uint64_t d[1001];
	size_t i;

	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		uint64_t t0 = rte_rdtsc();

		if (with_clock)
			(void)now_ns();
		d[i] = rte_rdtsc() - t0;
	}
	qsort(d, sizeof(d) / sizeof(d[0]), sizeof(d[0]), cmp_u64);
	return d[sizeof(d) / sizeof(d[0]) / 2];
}

/*
 * Median non-zero step between successive rdtsc reads. Under some
 * hypervisors the TSC advances in steps of several ns (10 ns on the 2-vCPU
 * EPYC VMs), which quantises every round trip we time.
 */
static uint64_t tsc_step(void)
{
	uint64_t d[1001];
	size_t i;

	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		uint64_t a = rte_rdtsc(), b;

		while ((b = rte_rdtsc()) == a)
			;
		d[i] = b - a;
	}
	qsort(d, sizeof(d) / sizeof(d[0]), sizeof(d[0]), cmp_u64);
	return d[sizeof(d) / sizeof(d[0]) / 2];
}

/*
 * Calibrate rdtsc against CLOCK_MONOTONIC over @ms milliseconds, and
 * measure what rdtsc and clock_gettime() cost (the reason we time round
 * trips of ~100 ns with rdtsc).
 */
static int timer_calibrate(struct timer_info *ti, uint32_t ms)
{
	struct timespec nap = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
	uint64_t c0, c1, n0, n1, rdtsc_ticks;

	c0 = rte_rdtsc();
	n0 = now_ns();
	nanosleep(&nap, NULL);
	c1 = rte_rdtsc();
	n1 = now_ns();
	if (c1 <= c0 || n1 <= n0) {
		mn_err(COMP, "rdtsc does not advance (%" PRIu64 " -> %" PRIu64 ")", c0, c1);
		return -ENOTSUP;
	}
	ti->ns_per_tick = (double)(n1 - n0) / (double)(c1 - c0);
	rdtsc_ticks = median_cost(false);
	ti->rdtsc_ns = (double)rdtsc_ticks * ti->ns_per_tick;
	ti->clock_ns = (double)(median_cost(true) - rdtsc_ticks) * ti->ns_per_tick;
	ti->resolution_ns = (double)tsc_step() * ti->ns_per_tick;
	return 0;
}

/* ---------------------------------------------------------- busy polling */

/* Set in the parent when the child exits: its pollers stop waiting. */
static volatile sig_atomic_t peer_gone;

static void on_sigchld(int sig)
{
	(void)sig;
	peer_gone = 1;
}

/* Idle-poll state: pause, and now and then check the peer is still there. */
struct spin {
	uint64_t polls;
	uint64_t last_progress;
	uint64_t since_ns;
};

static void spin_init(struct spin *s)
{
	s->polls = 0;
	s->last_progress = UINT64_MAX;
	s->since_ns = now_ns();
}

static __attribute__((noinline, cold)) int spin_check(struct spin *s, uint64_t progress)
{
	uint64_t t = now_ns();

	if (peer_gone)
		return -EPIPE;
	if (progress != s->last_progress) {
		s->last_progress = progress;
		s->since_ns = t;
		return 0;
	}
	return t - s->since_ns > STALL_NS ? -ETIMEDOUT : 0;
}

/*
 * One idle poll (ring empty or full). @progress is the caller's position;
 * if it has not moved for STALL_NS, or the child has gone, fail.
 */
HOT int spin_idle(struct spin *s, uint64_t progress)
{
	rte_pause();
	if (__builtin_expect((++s->polls & SPIN_CHECK_MASK) == 0, 0))
		return spin_check(s, progress);
	return 0;
}

/* -------------------------------------------------------- shared control */

struct ctl_line {
	uint32_t v;
	uint8_t pad[124];
};

/* Section 0: a barrier, one generation counter per side on its own line. */
struct bench_ctl {
	struct ctl_line arrived[2]; /* [SIDE_A] (A) writes, [SIDE_B] (B) writes */
};

/* ------------------------------------------------------------- the rings */

/* One direction of one entry size, as seen by one side: both rings. */
struct link {
	struct mn_ring ours;
	struct rte_ring *dpdk;
};

struct side {
	int me;			/* SIDE_A or SIDE_B */
	struct link tx[ES_COUNT];
	struct link rx[ES_COUNT];
	struct bench_ctl *ctl;
	uint32_t gen;		/* barrier generation */
};

static uint32_t ring_section(enum impl impl, int es, int dir)
{
	return SEC_RINGS + ((uint32_t)impl * ES_COUNT + (uint32_t)es) * 2 + (uint32_t)dir;
}

static int region_open(struct mn_region *reg, const struct opts *o)
{
	struct mn_region_spec spec = { .kind = MN_REGION_KIND_TEST, .nsections = NSECTIONS };
	int impl, es, dir, err;

	spec.sec[SEC_CTL].tag = SEC_CTL;
	spec.sec[SEC_CTL].len = sizeof(struct bench_ctl);
	for (impl = 0; impl < IMPL_COUNT; impl++)
		for (es = 0; es < ES_COUNT; es++)
			for (dir = 0; dir < 2; dir++) {
				uint32_t i = ring_section(impl, es, dir);

				spec.sec[i].tag = i;
				spec.sec[i].len = impl == IMPL_OURS
					? mn_ring_memsize(o->ring_entries, es_bytes(es))
					: (uint64_t)rte_ring_get_memsize_elem(es_bytes(es),
									      o->ring_entries);
			}
	err = mn_region_create(reg, "ring_bench", &spec, o->region_flags);
	if (err)
		mn_err(COMP, "cannot create the shared region (--memory %s): %s", o->memory,
		       strerror(-err));
	return err;
}

static int rings_format(const struct mn_region *reg, uint32_t entries)
{
	int es, dir, err;
	uint64_t len;

	for (es = 0; es < ES_COUNT; es++)
		for (dir = 0; dir < 2; dir++) {
			void *ours = mn_region_section(reg, ring_section(IMPL_OURS, es, dir), &len);
			void *dpdk;
			char name[32];

			err = mn_ring_format(ours, len, entries, es_bytes(es));
			if (err)
				return err;
			dpdk = mn_region_section(reg, ring_section(IMPL_DPDK, es, dir), &len);
			snprintf(name, sizeof(name), "bench_%s_%u", dir == DIR_AB ? "ab" : "ba",
				 es_bytes(es));
			err = rte_ring_init(dpdk, name, entries, RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (err) {
				mn_err(COMP, "rte_ring_init(%s, %u slots): %s", name, entries,
				       strerror(-err));
				return err;
			}
		}
	return 0;
}

static int link_attach(struct link *l, const struct mn_region *reg, int es, int dir,
		       enum mn_ring_role role)
{
	uint64_t len;
	void *mem = mn_region_section(reg, ring_section(IMPL_OURS, es, dir), &len);
	int err = mn_ring_attach(&l->ours, mem, len, es_bytes(es), role);

	if (err)
		return err;
	l->dpdk = mn_region_section(reg, ring_section(IMPL_DPDK, es, dir), &len);
	return 0;
}

/* A produces on AB and consumes BA; B the other way round. */
static int side_attach(struct side *s, const struct mn_region *reg, int me)
{
	int tx_dir = me == SIDE_A ? DIR_AB : DIR_BA;
	int es, err;

	memset(s, 0, sizeof(*s));
	s->me = me;
	s->ctl = mn_region_section(reg, SEC_CTL, NULL);
	for (es = 0; es < ES_COUNT; es++) {
		err = link_attach(&s->tx[es], reg, es, tx_dir, MN_RING_PRODUCER);
		if (!err)
			err = link_attach(&s->rx[es], reg, es, !tx_dir, MN_RING_CONSUMER);
		if (err)
			return err;
	}
	return 0;
}

static bool peer_arrived(const struct side *s, uint32_t want)
{
	/*
	 * Acquire pairs with the peer's store-release in barrier(): what it
	 * did before the barrier is visible to us after it.
	 */
	return (int32_t)(__atomic_load_n(&s->ctl->arrived[!s->me].v, __ATOMIC_ACQUIRE) -
			 want) >= 0;
}

/*
 * Wait until the other side has reached the same barrier generation.
 * Returns 0, -EPIPE (child gone) or -ETIMEDOUT.
 */
static int barrier(struct side *s)
{
	uint32_t want = ++s->gen;
	struct spin sp;
	int rc;

	__atomic_store_n(&s->ctl->arrived[s->me].v, want, __ATOMIC_RELEASE);
	spin_init(&sp);
	while (!peer_arrived(s, want))
		if ((rc = spin_idle(&sp, 0)) < 0)
			/* The child arrives at the last barrier, then exits: look again. */
			return peer_arrived(s, want) ? 0 : rc;
	return 0;
}

/* ------------------------------------------------------------ hot loops */

/*
 * The loops below are instantiated once per (implementation, entry size),
 * both compile-time constants, so neither ring pays for the choice. Whether
 * a ring's own enqueue/dequeue is then inlined is up to its header.
 */
HOT int link_enq(enum impl impl, uint32_t esize, struct link *l, const void *objs,
		 uint32_t n)
{
	if (impl == IMPL_OURS)
		return mn_ring_enqueue_burst(&l->ours, objs, n);
	return (int)rte_ring_enqueue_burst_elem(l->dpdk, objs, esize, n, NULL);
}

HOT int link_deq(enum impl impl, uint32_t esize, struct link *l, void *objs, uint32_t n)
{
	if (impl == IMPL_OURS)
		return mn_ring_dequeue_burst(&l->ours, objs, n);
	return (int)rte_ring_dequeue_burst_elem(l->dpdk, objs, esize, n, NULL);
}

/* Select the instance of @fn for a run-time (impl, esize). */
#define DISPATCH(fn, impl, esize, ...)                                          \
	((impl) == IMPL_OURS                                                    \
		 ? ((esize) == 8 ? fn(IMPL_OURS, 8, __VA_ARGS__)                \
				 : fn(IMPL_OURS, 16, __VA_ARGS__))              \
		 : ((esize) == 8 ? fn(IMPL_DPDK, 8, __VA_ARGS__)                \
				 : fn(IMPL_DPDK, 16, __VA_ARGS__)))

HOT int send_one(enum impl impl, uint32_t esize, struct link *l, const void *e,
		 struct spin *sp, uint64_t progress)
{
	int rc;

	while ((rc = link_enq(impl, esize, l, e, 1)) == 0)
		if ((rc = spin_idle(sp, progress)) < 0)
			return rc;
	return rc < 0 ? rc : 0;
}

HOT int recv_one(enum impl impl, uint32_t esize, struct link *l, void *e,
		 struct spin *sp, uint64_t progress)
{
	int rc;

	while ((rc = link_deq(impl, esize, l, e, 1)) == 0)
		if ((rc = spin_idle(sp, progress)) < 0)
			return rc;
	return rc < 0 ? rc : 0;
}

static __attribute__((noinline, cold)) int rtt_mismatch(uint32_t esize, uint64_t i,
							const uint64_t *in)
{
	mn_err(COMP, "round trip %" PRIu64 " (%u B): got back {%#" PRIx64 ", %#" PRIx64
	       "}, sent {%#" PRIx64 ", %#" PRIx64 "}", i, esize, in[0],
	       esize == 16 ? in[1] : 0, i, esize == 16 ? ~i : 0);
	return -EILSEQ;
}

/* Side A of the ping-pong: @ticks receives @n round-trip times. */
HOT int pingpong_a(enum impl impl, uint32_t esize, struct side *s, uint64_t warm,
		   uint64_t n, uint64_t *ticks)
{
	int es = esize == 16 ? ES_16 : ES_8;
	uint64_t i, out[2], in[2] = { 0, 0 };
	struct spin sp;

	spin_init(&sp);
	for (i = 0; i < warm + n; i++) {
		uint64_t t0, t1;
		int rc;

		out[0] = i;
		out[1] = ~i;
		t0 = rte_rdtsc();
		rc = send_one(impl, esize, &s->tx[es], out, &sp, i);
		if (rc == 0)
			rc = recv_one(impl, esize, &s->rx[es], in, &sp, i);
		t1 = rte_rdtsc();
		if (rc < 0)
			return rc;
		if (in[0] != i || (esize == 16 && in[1] != ~i))
			return rtt_mismatch(esize, i, in);
		if (i >= warm)
			ticks[i - warm] = t1 - t0;
	}
	return 0;
}

/* Side B of the ping-pong: echo every entry back. */
HOT int pingpong_b(enum impl impl, uint32_t esize, struct side *s, uint64_t total)
{
	int es = esize == 16 ? ES_16 : ES_8;
	uint64_t i, e[2];
	struct spin sp;
	int rc;

	spin_init(&sp);
	for (i = 0; i < total; i++) {
		rc = recv_one(impl, esize, &s->rx[es], e, &sp, i);
		if (rc == 0)
			rc = send_one(impl, esize, &s->tx[es], e, &sp, i);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Entry i of a stream: {seq} (8 B) or {seq, seq ^ pattern} (16 B). */
HOT void stream_fill(uint32_t esize, uint64_t *buf, uint64_t seq, uint32_t m)
{
	uint32_t i;

	for (i = 0; i < m; i++) {
		if (esize == 8) {
			buf[i] = seq + i;
		} else {
			buf[2 * i] = seq + i;
			buf[2 * i + 1] = (seq + i) ^ STREAM_PATTERN;
		}
	}
}

/* Zero if @m entries in @buf are the stream's entries from @seq on. */
HOT uint64_t stream_check(uint32_t esize, const uint64_t *buf, uint64_t seq, uint32_t m)
{
	uint64_t bad = 0;
	uint32_t i;

	for (i = 0; i < m; i++) {
		if (esize == 8)
			bad |= buf[i] ^ (seq + i);
		else
			bad |= (buf[2 * i] ^ (seq + i)) |
			       (buf[2 * i + 1] ^ ((seq + i) ^ STREAM_PATTERN));
	}
	return bad;
}

static __attribute__((noinline, cold)) int stream_mismatch(uint32_t esize,
							   const uint64_t *buf,
							   uint64_t seq, uint32_t m)
{
	uint32_t i, w = esize / 8;

	for (i = 0; i < m && stream_check(esize, buf + i * w, seq + i, 1) == 0; i++)
		;
	mn_err(COMP, "stream (%u B): entry %" PRIu64 " arrived as {%#" PRIx64 ", %#" PRIx64
	       "} (lost, repeated or torn entry)", esize, seq + i, buf[i * w],
	       w == 2 ? buf[i * w + 1] : 0);
	return -EILSEQ;
}

/* Producer (side B): @count numbered entries in bursts of @burst. */
HOT int stream_produce(enum impl impl, uint32_t esize, struct side *s, uint32_t burst,
		       uint64_t count)
{
	struct link *tx = &s->tx[esize == 16 ? ES_16 : ES_8];
	uint64_t buf[2 * MAX_BURST], seq = 0, filled = UINT64_MAX;
	struct spin sp;
	int rc;

	spin_init(&sp);
	while (seq < count) {
		uint32_t m = count - seq < burst ? (uint32_t)(count - seq) : burst;

		if (filled != seq) {
			stream_fill(esize, buf, seq, m);
			filled = seq;
		}
		rc = link_enq(impl, esize, tx, buf, m);
		if (rc > 0)
			seq += (uint32_t)rc;
		else if (rc < 0 || (rc = spin_idle(&sp, seq)) < 0)
			return rc;
	}
	return 0;
}

/*
 * Consumer (side A): dequeue and check @count entries; *mps = M entries/s
 * from the first dequeue to the last.
 */
HOT int stream_consume(enum impl impl, uint32_t esize, struct side *s, uint32_t burst,
		       uint64_t count, double *mps)
{
	struct link *rx = &s->rx[esize == 16 ? ES_16 : ES_8];
	uint64_t buf[2 * MAX_BURST], seq = 0, first_n = 0, t_first = 0, t_last;
	struct spin sp;
	int rc;

	spin_init(&sp);
	while (seq < count) {
		rc = link_deq(impl, esize, rx, buf, burst);
		if (rc > 0) {
			if (seq == 0) {
				t_first = now_ns();
				first_n = (uint32_t)rc;
			}
			if (stream_check(esize, buf, seq, (uint32_t)rc) != 0)
				return stream_mismatch(esize, buf, seq, (uint32_t)rc);
			seq += (uint32_t)rc;
		} else if (rc < 0 || (rc = spin_idle(&sp, seq)) < 0) {
			return rc;
		}
	}
	t_last = now_ns();
	*mps = t_last > t_first ? (double)(count - first_n) * 1e3 / (double)(t_last - t_first)
				: 0.0;
	return 0;
}

/* --------------------------------------------------------- the schedule */

enum test_kind { T_RTT, T_STREAM };

struct test {
	enum test_kind kind;
	uint32_t esize;
	uint32_t burst;
};

static const struct test tests[] = {
	{ T_RTT, 8, 1 },	{ T_RTT, 16, 1 },
	{ T_STREAM, 8, 1 },	{ T_STREAM, 8, MAX_BURST },
	{ T_STREAM, 16, 1 },	{ T_STREAM, 16, MAX_BURST },
};
#define NTESTS (sizeof(tests) / sizeof(tests[0]))
#define NSTATS 4 /* rtt: p50, p99, p99.9, mean; stream: M/s in [0] */
#define NQUANTILES 3

static const double rtt_quantiles[NQUANTILES] = { 0.50, 0.99, 0.999 };
static const char *const rtt_stat_name[NSTATS] = { "p50", "p99", "p99.9", "mean" };

/* What side A collects: [test][stat][impl][rep]. */
struct results {
	double v[NTESTS][NSTATS][IMPL_COUNT][MAX_REPS];
	uint64_t *ticks; /* one latency run's samples */
	double ns_per_tick;
};

/*
 * Quantiles and mean of one latency run. The quantiles are multiples of the
 * rdtsc resolution (printed in the header); the mean is not.
 */
static void rtt_stats(struct results *res, uint64_t n, double out[NSTATS])
{
	uint64_t i, sum = 0;

	for (i = 0; i < n; i++)
		sum += res->ticks[i];
	qsort(res->ticks, n, sizeof(res->ticks[0]), cmp_u64);
	for (i = 0; i < NQUANTILES; i++)
		out[i] = (double)res->ticks[(size_t)(rtt_quantiles[i] * (double)(n - 1))] *
			 res->ns_per_tick;
	out[NQUANTILES] = (double)sum / (double)n * res->ns_per_tick;
}

static int run_test_a(struct side *s, const struct opts *o, const struct test *t,
		      enum impl impl, struct results *res, uint32_t rep)
{
	double out[NSTATS] = { 0 };
	int i, rc;

	if (t->kind == T_RTT) {
		rc = DISPATCH(pingpong_a, impl, t->esize, s, o->warmup, o->round_trips,
			      res->ticks);
		if (rc == 0)
			rtt_stats(res, o->round_trips, out);
	} else {
		rc = DISPATCH(stream_consume, impl, t->esize, s, t->burst, o->count, &out[0]);
	}
	for (i = 0; i < NSTATS; i++)
		res->v[t - tests][i][impl][rep] = out[i];
	return rc;
}

static int run_test_b(struct side *s, const struct opts *o, const struct test *t,
		      enum impl impl)
{
	if (t->kind == T_RTT)
		return DISPATCH(pingpong_b, impl, t->esize, s, o->warmup + o->round_trips);
	return DISPATCH(stream_produce, impl, t->esize, s, t->burst, o->count);
}

/* Our meaning of the errors the hot loops return. */
static const char *bench_strerror(int err)
{
	switch (err) {
	case -EILSEQ:
		return "sequence check failed";
	case -EPIPE:
		return "the child process exited";
	case -ETIMEDOUT:
		return "no progress for 10 s";
	case -EBADMSG:
		return "ring reported an impossible index";
	default:
		return strerror(-err);
	}
}

static void describe_test(const struct test *t, char *buf, size_t len)
{
	if (t->kind == T_RTT)
		snprintf(buf, len, "round trips, %u B", t->esize);
	else
		snprintf(buf, len, "stream, %u B, burst %u", t->esize, t->burst);
}

/*
 * Both sides walk the same schedule: for each repetition, each test, both
 * rings (which one first alternates), one barrier before each run.
 */
static int run_schedule(struct side *s, const struct opts *o, struct results *res)
{
	uint32_t rep, t, k;
	int rc;

	for (rep = 0; rep < o->reps; rep++)
		for (t = 0; t < NTESTS; t++)
			for (k = 0; k < IMPL_COUNT; k++) {
				enum impl impl = (enum impl)((rep + k) % IMPL_COUNT);

				rc = barrier(s);
				if (rc == 0)
					rc = s->me == SIDE_A
						? run_test_a(s, o, &tests[t], impl, res, rep)
						: run_test_b(s, o, &tests[t], impl);
				if (rc < 0) {
					char what[64];

					describe_test(&tests[t], what, sizeof(what));
					mn_err(COMP, "%s: %s, %s, repetition %u: %s",
					       s->me == SIDE_A ? "parent" : "child",
					       impl_name[impl], what, rep + 1, bench_strerror(rc));
					return rc;
				}
			}
	return barrier(s);
}

/* ------------------------------------------------------------- processes */

static int pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0) {
		mn_err(COMP, "cannot pin to CPU %d: %s", cpu, strerror(errno));
		return -errno;
	}
	return 0;
}

static int child_main(const struct mn_region *reg, const struct opts *o)
{
	struct side s;
	int err = pin_to(o->cores[SIDE_B]);

	if (!err)
		err = side_attach(&s, reg, SIDE_B);
	if (!err)
		err = run_schedule(&s, o, NULL);
	return err ? 1 : 0;
}

/* Fork the child (side B); it dies with us (PR_SET_PDEATHSIG). */
static int start_child(const struct mn_region *reg, const struct opts *o, pid_t *pid)
{
	pid_t parent = getpid();
	struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_NOCLDSTOP };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGCHLD, &sa, NULL) != 0)
		return -errno;
	fflush(NULL);
	*pid = fork();
	if (*pid < 0) {
		mn_err(COMP, "fork: %s", strerror(errno));
		return -errno;
	}
	if (*pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(1);
		_exit(child_main(reg, o));
	}
	return 0;
}

/* Reap the child; kill it first if we failed. Returns 0 if both succeeded. */
static int finish_child(pid_t pid, int err)
{
	int status;

	if (err)
		kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) < 0) {
		mn_err(COMP, "waitpid: %s", strerror(errno));
		return -errno;
	}
	if (!err && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		mn_err(COMP, "child failed (%s %d)",
		       WIFEXITED(status) ? "exit status" : "signal",
		       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return -ECHILD;
	}
	return err;
}

/*
 * Side A. The latency buffer is allocated after fork(), so that no
 * copy-on-write fault lands in a timed round trip.
 */
static int parent_main(const struct mn_region *reg, const struct opts *o,
		       struct results *res)
{
	struct side s;
	int err = pin_to(o->cores[SIDE_A]);

	if (err)
		return err;
	res->ticks = calloc(o->round_trips, sizeof(res->ticks[0]));
	if (res->ticks == NULL)
		return -ENOMEM;
	memset(res->ticks, 0xff, o->round_trips * sizeof(res->ticks[0]));
	err = side_attach(&s, reg, SIDE_A);
	if (!err)
		err = run_schedule(&s, o, res);
	free(res->ticks);
	res->ticks = NULL;
	return err;
}

/* ---------------------------------------------------------------- output */

struct machine {
	long nproc;
	char cpu[128];
	const char *relation; /* of the two cores, as this kernel sees them */
};

#define CPU_SYSFS "/sys/devices/system/cpu/cpu%d/"

/* Is @cpu in the sysfs cpulist ("0-3,8,10-11") stored in @path? */
static bool cpulist_has(const char *path, int cpu)
{
	FILE *f = fopen(path, "r");
	char buf[256], *p, *tok, *save = NULL;
	bool found = false;

	if (f == NULL)
		return false;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	for (tok = p ? strtok_r(buf, ",\n", &save) : NULL; tok && !found;
	     tok = strtok_r(NULL, ",\n", &save)) {
		int lo, hi, n = sscanf(tok, "%d-%d", &lo, &hi);

		found = (n == 1 && cpu == lo) || (n == 2 && cpu >= lo && cpu <= hi);
	}
	return found;
}

/*
 * How the two cores relate: this decides what a round trip costs. In a VM
 * it is what the guest is told; the host may place vCPUs elsewhere.
 */
static const char *core_relation(int a, int b)
{
	char path[128];
	int i;

	snprintf(path, sizeof(path), CPU_SYSFS "topology/thread_siblings_list", a);
	if (cpulist_has(path, b))
		return "SMT siblings";
	for (i = 0; i < 8; i++) {
		FILE *f;
		int level = 0;

		snprintf(path, sizeof(path), CPU_SYSFS "cache/index%d/level", a, i);
		f = fopen(path, "r");
		if (f == NULL)
			break;
		if (fscanf(f, "%d", &level) != 1)
			level = 0;
		fclose(f);
		if (level != 3)
			continue;
		snprintf(path, sizeof(path), CPU_SYSFS "cache/index%d/shared_cpu_list", a, i);
		return cpulist_has(path, b) ? "separate cores, shared L3" : "no shared L3";
	}
	return "topology unknown";
}

static void machine_read(struct machine *m, const struct opts *o)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	m->relation = core_relation(o->cores[SIDE_A], o->cores[SIDE_B]);
	snprintf(m->cpu, sizeof(m->cpu), "unknown");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
			snprintf(m->cpu, sizeof(m->cpu), "%s", colon + 2);
			m->cpu[strcspn(m->cpu, "\n")] = '\0';
			break;
		}
	}
	fclose(f);
}

struct report {
	const struct opts *o;
	const struct results *res;
	const struct mn_region *reg;
	struct timer_info ti;
	struct machine m;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, uint32_t n)
{
	double s[MAX_REPS];

	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* One output row: a (test, statistic) pair. */
struct row {
	char name[48];
	const char *unit;
	bool lower_better;
	const double *reps[IMPL_COUNT];
	double ours, dpdk, ratio;
};

/*
 * Median over the repetitions of the per-repetition ratio. The two runs of
 * a repetition are back to back, so a change in the machine between
 * repetitions (a noisy neighbour, the host moving a vCPU) cancels out;
 * a ratio of the two medians could pair figures taken minutes apart.
 */
static double paired_ratio(const struct row *r, uint32_t reps)
{
	double q[MAX_REPS];
	uint32_t i;

	for (i = 0; i < reps; i++) {
		double ours = r->reps[IMPL_OURS][i], dpdk = r->reps[IMPL_DPDK][i];

		q[i] = r->lower_better ? dpdk / ours : ours / dpdk;
	}
	return median(q, reps);
}

static uint32_t rows_build(const struct results *res, uint32_t reps, struct row *rows)
{
	uint32_t t, i, n = 0;

	for (t = 0; t < NTESTS; t++) {
		uint32_t nstats = tests[t].kind == T_RTT ? NSTATS : 1;

		for (i = 0; i < nstats; i++, n++) {
			struct row *r = &rows[n];

			if (tests[t].kind == T_RTT)
				snprintf(r->name, sizeof(r->name), "rtt %2u B %s", tests[t].esize,
					 rtt_stat_name[i]);
			else
				snprintf(r->name, sizeof(r->name), "stream %2u B burst %2u",
					 tests[t].esize, tests[t].burst);
			r->unit = tests[t].kind == T_RTT ? "ns" : "M/s";
			r->lower_better = tests[t].kind == T_RTT;
			r->reps[IMPL_OURS] = res->v[t][i][IMPL_OURS];
			r->reps[IMPL_DPDK] = res->v[t][i][IMPL_DPDK];
			r->ours = median(r->reps[IMPL_OURS], reps);
			r->dpdk = median(r->reps[IMPL_DPDK], reps);
			r->ratio = paired_ratio(r, reps);
		}
	}
	return n;
}

#define MAX_ROWS (NTESTS * NSTATS)

static const char *memory_name(const struct mn_region *reg)
{
	return reg->hugetlb ? "hugetlbfs" : "memfd";
}

static void print_table(const struct report *rp, const struct row *rows, uint32_t n)
{
	const struct opts *o = rp->o;
	uint32_t i;

	printf("# ring_bench: ipc/ring.h vs rte_ring %d.%02d.%d (SP/SC, _elem API), 2 processes\n",
	       RTE_VER_YEAR, RTE_VER_MONTH, RTE_VER_MINOR);
	printf("# machine: %ld CPUs online, %s | cores %d (timing side), %d: %s\n",
	       rp->m.nproc, rp->m.cpu, o->cores[SIDE_A], o->cores[SIDE_B], rp->m.relation);
	printf("# memory: %s region of %zu bytes (--memory %s) | ring %u slots\n",
	       memory_name(rp->reg), rp->reg->size, o->memory, o->ring_entries);
	printf("# count %" PRIu64 " | round trips %" PRIu64 " (+%" PRIu64
	       " warm-up) | reps %u, median shown, order alternates\n",
	       o->count, o->round_trips, o->warmup, o->reps);
	printf("# timer: rdtsc at %.3f GHz (vs CLOCK_MONOTONIC), resolution %.1f ns; rdtsc costs %.1f ns, clock_gettime %.1f ns\n",
	       1.0 / rp->ti.ns_per_tick, rp->ti.resolution_ns, rp->ti.rdtsc_ns, rp->ti.clock_ns);
	printf("# ratio > 1 means ours is better: throughput ours/rte_ring, latency rte_ring/ours;\n"
	       "# it is the median of the per-repetition ratios (each pair runs back to back)\n");
	printf("%-26s %5s %10s %10s %7s\n", "row", "unit", impl_name[IMPL_OURS],
	       impl_name[IMPL_DPDK], "ratio");
	for (i = 0; i < n; i++)
		printf("%-26s %5s %10.1f %10.1f %7.2f\n", rows[i].name, rows[i].unit,
		       rows[i].ours, rows[i].dpdk, rows[i].ratio);
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void json_reps(const char *key, const double *v, uint32_t n)
{
	uint32_t i;

	printf(", \"%s\": [", key);
	for (i = 0; i < n; i++)
		printf("%s%.2f", i ? ", " : "", v[i]);
	putchar(']');
}

static void print_json(const struct report *rp, const struct row *rows, uint32_t n)
{
	const struct opts *o = rp->o;
	uint32_t i;

	printf("{\"dpdk\": \"%d.%02d.%d\", \"nproc\": %ld, \"cpu\": ", RTE_VER_YEAR,
	       RTE_VER_MONTH, RTE_VER_MINOR, rp->m.nproc);
	json_string(rp->m.cpu);
	printf(", \"cores\": [%d, %d], \"cores_relation\": \"%s\", \"memory\": \"%s\", \"memory_option\": \"%s\","
	       " \"region_bytes\": %zu, \"ring_slots\": %u, \"count\": %" PRIu64
	       ", \"round_trips\": %" PRIu64 ", \"warmup\": %" PRIu64 ", \"reps\": %u,"
	       " \"tsc_ghz\": %.4f, \"tsc_resolution_ns\": %.2f, \"rdtsc_ns\": %.2f,"
	       " \"clock_gettime_ns\": %.2f,"
	       " \"ratio\": \"> 1 means ours is better: throughput ours/rte_ring, latency"
	       " rte_ring/ours; median of the per-repetition ratios\","
	       " \"rows\": [",
	       o->cores[SIDE_A], o->cores[SIDE_B], rp->m.relation, memory_name(rp->reg), o->memory,
	       rp->reg->size, o->ring_entries, o->count, o->round_trips, o->warmup,
	       o->reps, 1.0 / rp->ti.ns_per_tick, rp->ti.resolution_ns, rp->ti.rdtsc_ns,
	       rp->ti.clock_ns);
	for (i = 0; i < n; i++) {
		printf("%s\n  {\"name\": \"%s\", \"unit\": \"%s\", \"better\": \"%s\","
		       " \"ours\": %.2f, \"rte_ring\": %.2f, \"ratio\": %.3f",
		       i ? "," : "", rows[i].name, rows[i].unit,
		       rows[i].lower_better ? "lower" : "higher", rows[i].ours, rows[i].dpdk,
		       rows[i].ratio);
		json_reps("ours_reps", rows[i].reps[IMPL_OURS], o->reps);
		json_reps("rte_ring_reps", rows[i].reps[IMPL_DPDK], o->reps);
		putchar('}');
	}
	printf("]}\n");
}

static void report_print(const struct report *rp)
{
	struct row rows[MAX_ROWS];
	uint32_t n = rows_build(rp->res, rp->o->reps, rows);

	if (rp->o->json)
		print_json(rp, rows, n);
	else
		print_table(rp, rows, n);
}

/* ------------------------------------------------------------------ main */

static int bench(const struct opts *o)
{
	struct report rp = { .o = o };
	struct mn_region reg;
	struct results *res;
	pid_t child = -1;
	int err;

	machine_read(&rp.m, o);
	res = calloc(1, sizeof(*res));
	if (res == NULL)
		return -ENOMEM;
	err = timer_calibrate(&rp.ti, o->calib_ms);
	if (err)
		goto out_free;
	res->ns_per_tick = rp.ti.ns_per_tick;
	err = region_open(&reg, o);
	if (err)
		goto out_free;
	err = rings_format(&reg, o->ring_entries);
	if (err)
		goto out_unmap;
	err = start_child(&reg, o, &child);
	if (err)
		goto out_unmap;
	err = finish_child(child, parent_main(&reg, o, res));
	if (err)
		goto out_unmap;
	rp.res = res;
	rp.reg = &reg;
	report_print(&rp);
out_unmap:
	mn_region_unmap(&reg);
out_free:
	free(res);
	return err;
}

int main(int argc, char **argv)
{
	struct opts o;
	int rc = parse_opts(&o, argc, argv);

	if (rc)
		return rc > 0 ? 0 : EXIT_USAGE;
	rc = choose_cores(&o);
	if (rc == -ENODEV) {
		fprintf(stderr, "ring_bench: needs two CPUs it may run on; skipping\n");
		return EXIT_SKIP;
	}
	if (rc)
		return rc == -EINVAL ? EXIT_USAGE : 1;
	return bench(&o) ? 1 : 0;
}
