/* SPDX-License-Identifier: MIT */
/*
 * msg_gen: machnet's message generator and benchmark, with Machnet's flags.
 *
 *   server:  msg_gen --local_ip A [--local_port P]
 *            echoes every message back to its sender, unchanged, until
 *            SIGINT/SIGTERM or --duration
 *   client:  msg_gen --local_ip A --remote_ip B [--remote_port P]
 *                    [--msg_size B] [--msg_window W] [--msg_nr N] [--flows F]
 *                    [--duration S] [--verify] [--json]
 *            opens F flows to B:P on one channel, keeps W messages in flight
 *            on each, and prints once a second
 *              [TX: R msg/s, G Gbps] [RX: R msg/s, G Gbps] [RTT us: p50 X, p99 Y, p99.9 Z] ...
 *            then a summary (or, with --json, one JSON object on stdout; the
 *            per-second lines then go to stderr).
 *
 * RTT is the time from just before machnet_send() to the echo coming out
 * of machnet_recv*() (a stamp taken after the call returned could follow
 * the echo's arrival when the thread is preempted in between), from
 * CLOCK_MONOTONIC stamps the client keeps per
 * outstanding message (a ring of --msg_window stamps per flow; messages
 * of a flow come back in order, so the n-th echo belongs to the n-th send).
 * Nothing is written into the message for it.
 *
 * --verify: message n of flow f is filled with a pattern derived from
 * (f, n) (64-bit words of a mixed counter), and every echo is compared
 * byte for byte with what message n of its flow must be: a lost,
 * repeated, reordered, truncated, cross-flow or corrupted message fails.
 *
 * Waiting is never a busy spin: machnet_recv_timeout() sleeps until the
 * server signals. Send back-pressure (-1 with EAGAIN or ENOBUFS) is handled
 * by receiving (or waiting 1 ms) and retrying.
 *
 * Signals: SIGINT/SIGTERM stop sending; the client waits up to 2 s for
 * what is outstanding, then prints its summary (a second signal: at once).
 * SIGUSR1 prints every flow's figures from the protocol server
 * (machnet_flow_stats()) to stderr; a client that gives up (--timeout) or
 * stops with messages outstanding prints them too.
 *
 * Exit status: 0 when every message sent came back (and verified, with
 * --verify) and no flow failed; 1 otherwise; 2 on a usage error.
 * The tenant comes from MACHNET_TENANT, the runtime dir from
 * MACHNET_RUNTIME_DIR (see docs/api.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "machnet.h"

#define DEFAULT_PORT 888
#define MAX_FLOWS 1024
#define MAX_WINDOW 65536
#define MAX_BAD_REPORTS 10

/* ---- options ----------------------------------------------------------- */

struct opts {
	const char *local_ip;
	const char *remote_ip;
	uint16_t local_port;
	uint16_t remote_port;
	uint32_t msg_size;
	uint32_t window;
	uint64_t msg_nr; /* 0: unlimited */
	uint32_t flows;
	double duration_s; /* 0: unlimited */
	double stall_s;	   /* give up when nothing comes back this long */
	bool verify;
	bool json;
	bool quiet;
	uint64_t corrupt_every; /* server, for testing --verify: 0 never */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: msg_gen --local_ip A [--remote_ip B] [options]\n"
		"  without --remote_ip: server, echoes every message back to its sender\n"
		"  with --remote_ip:    client, sends messages to B and measures the echoes\n"
		"options:\n"
		"  --local_ip A        this host's machnet address (required)\n"
		"  --remote_ip B       the server's address (client mode)\n"
		"  --local_port P      server: port to listen on (default %u)\n"
		"  --remote_port P     client: the server's port (default %u)\n"
		"  --msg_size B        client: bytes per message, 1..%u (default 64)\n"
		"  --msg_window W      client: messages in flight per flow (default 8)\n"
		"  --msg_nr N          client: messages to send in all (default: no limit)\n"
		"  --flows F           client: parallel flows on one channel (default 1)\n"
		"  --duration S        stop sending after S seconds (server: exit after S)\n"
		"  --verify            client: pattern per message, every echo checked byte for byte\n"
		"  --timeout S         client: fail if no echo arrives for S seconds while\n"
		"                      messages are outstanding (default 10)\n"
		"  --json              final summary as one JSON object on stdout\n"
		"                      (the once-a-second lines then go to stderr)\n"
		"  --quiet             no once-a-second lines\n"
		"  --corrupt_every N   server: flip one byte in every N-th echo (to test --verify)\n"
		"  --help              this text\n"
		"RTT: CLOCK_MONOTONIC from send to echo, stamps kept per outstanding message.\n"
		"SIGINT/SIGTERM: stop sending, wait <= 2 s for the echoes, print the summary.\n"
		"SIGUSR1: print every flow's figures from the protocol server to stderr.\n"
		"Exit: 0 if every message sent came back (and verified), 1 if not, 2 usage.\n"
		"Environment: MACHNET_TENANT (default \"default\"), MACHNET_RUNTIME_DIR.\n",
		DEFAULT_PORT, DEFAULT_PORT, MACHNET_MSG_MAX_LEN);
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!s || !*s || *s == '-')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_secs(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !(v > 0) || v > 1e7)
		return -1;
	*out = v;
	return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
	enum {
		O_LIP = 256, O_RIP, O_LPORT, O_RPORT, O_SIZE, O_WIN, O_NR, O_VERIFY, O_FLOWS,
		O_DUR, O_JSON, O_QUIET, O_TIMEOUT, O_CORRUPT,
	};
	static const struct option lo[] = {
		{ "local_ip", 1, 0, O_LIP },	{ "remote_ip", 1, 0, O_RIP },
		{ "local_port", 1, 0, O_LPORT }, { "remote_port", 1, 0, O_RPORT },
		{ "msg_size", 1, 0, O_SIZE },	{ "msg_window", 1, 0, O_WIN },
		{ "msg_nr", 1, 0, O_NR },	{ "verify", 0, 0, O_VERIFY },
		{ "flows", 1, 0, O_FLOWS },	{ "duration", 1, 0, O_DUR },
		{ "json", 0, 0, O_JSON },	{ "quiet", 0, 0, O_QUIET },
		{ "timeout", 1, 0, O_TIMEOUT }, { "corrupt_every", 1, 0, O_CORRUPT },
		{ "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct in_addr a;
	uint64_t v;
	int c;

	*o = (struct opts){ .local_port = DEFAULT_PORT, .remote_port = DEFAULT_PORT,
			    .msg_size = 64, .window = 8, .flows = 1, .stall_s = 10 };
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		const char *bad = NULL;

		switch (c) {
		case O_LIP: o->local_ip = optarg; break;
		case O_RIP: o->remote_ip = optarg; break;
		case O_LPORT:
			if (parse_u64(optarg, 1, 65535, &v))
				bad = "--local_port: 1..65535";
			o->local_port = (uint16_t)v;
			break;
		case O_RPORT:
			if (parse_u64(optarg, 1, 65535, &v))
				bad = "--remote_port: 1..65535";
			o->remote_port = (uint16_t)v;
			break;
		case O_SIZE:
			if (parse_u64(optarg, 1, MACHNET_MSG_MAX_LEN, &v))
				bad = "--msg_size: 1..8388608";
			o->msg_size = (uint32_t)v;
			break;
		case O_WIN:
			if (parse_u64(optarg, 1, MAX_WINDOW, &v))
				bad = "--msg_window: 1..65536";
			o->window = (uint32_t)v;
			break;
		case O_NR:
			if (parse_u64(optarg, 1, UINT64_MAX / 2, &v))
				bad = "--msg_nr: a positive number";
			o->msg_nr = v;
			break;
		case O_FLOWS:
			if (parse_u64(optarg, 1, MAX_FLOWS, &v))
				bad = "--flows: 1..1024";
			o->flows = (uint32_t)v;
			break;
		case O_DUR:
			if (parse_secs(optarg, &o->duration_s))
				bad = "--duration: seconds > 0";
			break;
		case O_TIMEOUT:
			if (parse_secs(optarg, &o->stall_s))
				bad = "--timeout: seconds > 0";
			break;
		case O_CORRUPT:
			if (parse_u64(optarg, 1, UINT64_MAX / 2, &v))
				bad = "--corrupt_every: a positive number";
			o->corrupt_every = v;
			break;
		case O_VERIFY: o->verify = true; break;
		case O_JSON: o->json = true; break;
		case O_QUIET: o->quiet = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
		if (bad) {
			fprintf(stderr, "msg_gen: %s (got \"%s\")\n", bad, optarg);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "msg_gen: unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	if (!o->local_ip) {
		fprintf(stderr, "msg_gen: --local_ip is required\n");
		return -1;
	}
	if (inet_pton(AF_INET, o->local_ip, &a) != 1 ||
	    (o->remote_ip && inet_pton(AF_INET, o->remote_ip, &a) != 1)) {
		fprintf(stderr, "msg_gen: addresses are dotted quads\n");
		return -1;
	}
	return 0;
}

/* ---- time, CPU, signals -------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct cpu {
	double user_s, sys_s;
};

static struct cpu cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (struct cpu){ ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
			     ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6 };
}

static volatile sig_atomic_t g_stop; /* 1: stop sending and drain; 2+: stop now */

static void on_signal(int sig)
{
	(void)sig;
	g_stop++;
}

static volatile sig_atomic_t g_dump; /* SIGUSR1: print every flow's stats */

static void on_usr1(int sig)
{
	(void)sig;
	g_dump = 1;
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ---- RTT histogram: log-linear, 1/512 relative resolution, in ns ---------- */

#define H_SUB 512u
#define H_LIN 1024u
#define H_BUCKETS (H_LIN + 54u * H_SUB)

struct hist {
	uint64_t count, sum, min, max;
	uint64_t b[H_BUCKETS];
};

static unsigned h_index(uint64_t v)
{
	unsigned bits, shift;

	if (v < H_LIN)
		return (unsigned)v;
	bits = 64u - (unsigned)__builtin_clzll(v); /* >= 11 */
	shift = bits - 10u;
	return H_LIN + (shift - 1u) * H_SUB + (unsigned)((v >> shift) - H_SUB);
}

/* The middle of bucket @i. */
static double h_value(unsigned i)
{
	unsigned shift;

	if (i < H_LIN)
		return i;
	shift = (i - H_LIN) / H_SUB + 1u;
	return ((double)((i - H_LIN) % H_SUB + H_SUB) + 0.5) * (double)(1ull << shift);
}

static void h_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static void h_add(struct hist *h, uint64_t v)
{
	h->b[h_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

/* Percentile @p (0..100) in microseconds; 0 if empty. */
static double h_pct_us(const struct hist *h, double p)
{
	uint64_t want, seen = 0;

	if (!h->count)
		return 0;
	want = (uint64_t)ceil(p / 100.0 * (double)h->count);
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want) {
			double v = h_value(i);

			/* Never outside what was seen. */
			if (v > (double)h->max)
				v = (double)h->max;
			if (v < (double)h->min)
				v = (double)h->min;
			return v / 1e3;
		}
	}
	return (double)h->max / 1e3;
}

/* ---- the pattern of message n of flow f ---------------------------------- */

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static inline uint64_t pat_seed(uint32_t flow, uint64_t seq)
{
	return mix64(((uint64_t)flow << 48) ^ seq ^ 0x6d61636e65742121ull);
}

static inline uint64_t pat_word(uint64_t seed, uint64_t k)
{
	return mix64(seed + k * 0x9e3779b97f4a7c15ull);
}

static void pat_fill(uint8_t *buf, size_t len, uint32_t flow, uint64_t seq)
{
	uint64_t seed = pat_seed(flow, seq), k;

	for (k = 0; (k + 1) * 8 <= len; k++) {
		uint64_t w = pat_word(seed, k);

		memcpy(buf + k * 8, &w, 8);
	}
	if (k * 8 < len) {
		uint64_t w = pat_word(seed, k);

		memcpy(buf + k * 8, &w, len - k * 8);
	}
}

/* Offset of the first byte that differs from the pattern, or -1. */
static long pat_check(const uint8_t *buf, size_t len, uint32_t flow, uint64_t seq)
{
	uint64_t seed = pat_seed(flow, seq), k;

	for (k = 0; (k + 1) * 8 <= len; k++) {
		uint64_t w = pat_word(seed, k), g;

		memcpy(&g, buf + k * 8, 8);
		if (g != w)
			break;
	}
	for (size_t off = k * 8; off < len; off++) {
		uint64_t w = pat_word(seed, off / 8);

		if (buf[off] != (uint8_t)(w >> (8 * (off % 8))))
			return (long)off;
	}
	return -1;
}

/* ---- common ---------------------------------------------------------------- */

static const char *ip_str(uint32_t ip, char *buf)
{
	struct in_addr a = { htonl(ip) };

	inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
	return buf;
}

static const char *flow_str(const MachnetFlow_t *f, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];

	snprintf(buf, len, "%s:%u -> %s:%u", ip_str(f->src_ip, a), f->src_port,
		 ip_str(f->dst_ip, b), f->dst_port);
	return buf;
}

static void *attach(void)
{
	void *ch;

	if (machnet_init() != 0) {
		fprintf(stderr, "msg_gen: machnet_init: %s (is machnet-proto running for tenant %s?)\n",
			strerror(errno),
			getenv("MACHNET_TENANT") ? getenv("MACHNET_TENANT") : MACHNET_DEFAULT_TENANT);
		return NULL;
	}
	ch = machnet_attach();
	if (!ch)
		fprintf(stderr, "msg_gen: machnet_attach: %s\n", strerror(errno));
	return ch;
}

/* One line of the protocol server's figures for @flow (src = local end). */
static void print_flow_stats(void *ch, const char *what, MachnetFlow_t flow)
{
	struct MachnetFlowStats st;
	char fs[96];

	flow_str(&flow, fs, sizeof(fs));
	if (machnet_flow_stats(ch, flow, &st) != 0) {
		fprintf(stderr, "msg_gen: %s %s: machnet_flow_stats: %s\n", what, fs, strerror(errno));
		return;
	}
	fprintf(stderr,
		"msg_gen: %s %s: state %u srtt %u us rto %u us cwnd %u B peer_window %u B "
		"inflight %u B tx_msgs %" PRIu64 " rx_msgs %" PRIu64 " tx_pkts %" PRIu64
		" rx_pkts %" PRIu64 " retransmits %" PRIu64 " fast %" PRIu64 " timeouts %" PRIu64 "\n",
		what, fs, st.state, st.srtt_us, st.rto_us, st.cwnd_bytes, st.peer_window_bytes,
		st.inflight_bytes, st.tx_msgs, st.rx_msgs, st.tx_pkts, st.rx_pkts, st.retransmits,
		st.fast_retransmits, st.timeouts);
}

static double gbps(uint64_t msgs, uint32_t size, double secs)
{
	return secs > 0 ? (double)msgs * size * 8.0 / secs / 1e9 : 0;
}

/* ---- server ------------------------------------------------------------------ */

static void server_dump(void *ch, const MachnetFlow_t *seen, unsigned nseen, uint64_t rx,
			uint64_t tx, uint64_t retries)
{
	g_dump = 0;
	fprintf(stderr, "msg_gen: server: received %" PRIu64 ", echoed %" PRIu64 ", %" PRIu64
		" send retries%s\n", rx, tx, retries, nseen == 64 ? " (first 64 flows below)" : "");
	for (unsigned k = 0; k < nseen; k++)
		print_flow_stats(ch, "flow", seen[k]);
}

static int run_server(const struct opts *o)
{
	size_t cap = MACHNET_MSG_MAX_LEN;
	uint8_t *buf = malloc(cap);
	uint64_t rx = 0, tx = 0, rx_bytes = 0, tx_bytes = 0, retries = 0, echo_fail = 0,
		 events = 0;
	uint64_t p_rx = 0, p_tx = 0, p_bytes = 0, p_tx_bytes = 0, t0, tick, end;
	struct cpu c0 = cpu_now(), c1;
	FILE *log = o->json ? stderr : stdout;
	MachnetFlow_t seen[64];
	unsigned nseen = 0;
	int rc = 0;
	void *ch;

	if (!buf) {
		fprintf(stderr, "msg_gen: out of memory\n");
		return 1;
	}
	ch = attach();
	if (!ch) {
		free(buf);
		return 1;
	}
	if (machnet_listen(ch, o->local_ip, o->local_port) != 0) {
		fprintf(stderr, "msg_gen: listen on %s:%u: %s\n", o->local_ip, o->local_port,
			strerror(errno));
		machnet_detach(ch);
		free(buf);
		return 1;
	}
	fprintf(log, "msg_gen: server listening on %s:%u\n", o->local_ip, o->local_port);
	fflush(log);
	t0 = tick = now_ns();
	end = o->duration_s > 0 ? t0 + (uint64_t)(o->duration_s * 1e9) : UINT64_MAX;
	while (!g_stop && now_ns() < end) {
		MachnetFlow_t flow, back, ef;
		ssize_t n = machnet_recv_timeout(ch, buf, cap, &flow, 100);
		uint64_t now;
		int reason;

		if (n > 0) {
			rx++;
			rx_bytes += (uint64_t)n;
			if (o->corrupt_every && rx % o->corrupt_every == 0)
				buf[(rx / o->corrupt_every) % (uint64_t)n] ^= 0x5a;
			back = (MachnetFlow_t){ flow.dst_ip, flow.src_ip, flow.dst_port, flow.src_port };
			if (nseen < 64 && (nseen == 0 || memcmp(&seen[nseen - 1], &back, sizeof(back)))) {
				unsigned k;

				for (k = 0; k < nseen && memcmp(&seen[k], &back, sizeof(back)); k++)
					;
				if (k == nseen)
					seen[nseen++] = back;
			}
			/* Back-pressure: the server has not taken our earlier
			 * echoes yet. Wait a little (never spin) and retry. */
			bool sent = true;

			while (machnet_send(ch, back, buf, (size_t)n) != 0) {
				if ((errno != EAGAIN && errno != ENOBUFS) || g_stop > 1) {
					char fs[96];

					echo_fail++;
					sent = false;
					if (echo_fail <= MAX_BAD_REPORTS)
						fprintf(stderr, "msg_gen: echo on %s: %s\n",
							flow_str(&back, fs, sizeof(fs)), strerror(errno));
					if (errno == ESHUTDOWN || errno == ECONNRESET)
						rc = 1;
					break;
				}
				retries++;
				if (g_dump)
					server_dump(ch, seen, nseen, rx, tx, retries);
				usleep(20);
			}
			if (rc)
				break;
			if (sent) {
				tx++;
				tx_bytes += (uint64_t)n;
			}
		} else if (n < 0) {
			fprintf(stderr, "msg_gen: recv: %s\n", strerror(errno));
			rc = 1;
			break;
		}
		while (machnet_flow_error(ch, &ef, &reason) == 1) {
			char fs[96];

			events++;
			if (!o->quiet)
				fprintf(log, "msg_gen: flow %s ended: %s\n",
					flow_str(&ef, fs, sizeof(fs)), strerror(reason));
		}
		if (g_dump)
			server_dump(ch, seen, nseen, rx, tx, retries);
		now = now_ns();
		if (now - tick >= 1000000000ull) {
			double s = (double)(now - tick) / 1e9;

			if (!o->quiet && rx != p_rx) {
				fprintf(log,
					"[RX: %.0f msg/s, %.3f Gbps] [TX: %.0f msg/s, %.3f Gbps]\n",
					(double)(rx - p_rx) / s,
					(double)(rx_bytes - p_bytes) * 8 / s / 1e9,
					(double)(tx - p_tx) / s,
					(double)(tx_bytes - p_tx_bytes) * 8 / s / 1e9);
				fflush(log);
			}
			p_rx = rx;
			p_tx = tx;
			p_bytes = rx_bytes;
			p_tx_bytes = tx_bytes;
			tick = now;
		}
	}
	c1 = cpu_now();
	{
		double secs = (double)(now_ns() - t0) / 1e9;
		double cpu = c1.user_s - c0.user_s + c1.sys_s - c0.sys_s;

		if (o->json) {
			printf("{\"mode\":\"server\",\"duration_s\":%.3f,\"received\":%" PRIu64
			       ",\"echoed\":%" PRIu64 ",\"rx_bytes\":%" PRIu64 ",\"tx_bytes\":%" PRIu64
			       ",\"echo_failed\":%" PRIu64 ",\"send_retries\":%" PRIu64
			       ",\"flow_events\":%" PRIu64
			       ",\"cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f,\"pct\":%.1f},\"ok\":%s}\n",
			       secs, rx, tx, rx_bytes, tx_bytes, echo_fail, retries, events,
			       c1.user_s - c0.user_s, c1.sys_s - c0.sys_s,
			       secs > 0 ? 100 * cpu / secs : 0, rc == 0 ? "true" : "false");
		} else {
			printf("msg_gen server summary: %.1f s, received %" PRIu64 ", echoed %" PRIu64
			       " (%" PRIu64 " failed, %" PRIu64 " send retries), %" PRIu64
			       " flow events\n"
			       "  cpu: user %.2f s, sys %.2f s (%.0f %% of one core)\n",
			       secs, rx, tx, echo_fail, retries, events, c1.user_s - c0.user_s,
			       c1.sys_s - c0.sys_s, secs > 0 ? 100 * cpu / secs : 0);
		}
	}
	machnet_detach(ch);
	free(buf);
	return rc;
}

/* ---- client ------------------------------------------------------------------ */

struct cflow {
	MachnetFlow_t flow; /* src = local end */
	uint64_t tx_seq;    /* messages sent */
	uint64_t rx_seq;    /* echoes received */
	uint64_t *stamp;    /* send time of message n at [n % window] */
	bool dead;	    /* failed: its outstanding messages are lost */
	int reason;
};

struct client {
	const struct opts *o;
	void *ch;
	struct cflow *f;
	int32_t *by_port; /* local port -> flow index, -1 */
	uint8_t *txbuf, *rxbuf;
	size_t rxcap;
	struct hist *all, *sec;
	/* totals */
	uint64_t sent, received, verified, bad, unexpected, lost, retries, blocked_waits;
	uint32_t flow_errors, bad_reports;
	/* the previous tick */
	uint64_t p_sent, p_received;
};

static uint64_t inflight(const struct client *c)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < c->o->flows; i++)
		if (!c->f[i].dead)
			n += c->f[i].tx_seq - c->f[i].rx_seq;
	return n;
}

static uint32_t alive(const struct client *c)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < c->o->flows; i++)
		n += !c->f[i].dead;
	return n;
}

static void report_bad(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report_bad(struct client *c, const char *fmt, ...)
{
	va_list ap;

	if (++c->bad_reports > MAX_BAD_REPORTS)
		return;
	va_start(ap, fmt);
	fputs("msg_gen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (c->bad_reports == MAX_BAD_REPORTS)
		fprintf(stderr, "msg_gen: (further reports suppressed)\n");
}

static void take_flow_errors(struct client *c)
{
	MachnetFlow_t ef;
	int reason;

	while (machnet_flow_error(c->ch, &ef, &reason) == 1) {
		char fs[96];
		int32_t i = c->by_port[ef.src_port];

		if (i < 0 || c->f[i].flow.dst_port != ef.dst_port ||
		    c->f[i].flow.dst_ip != ef.dst_ip) {
			fprintf(stderr, "msg_gen: event on unknown flow %s: %s\n",
				flow_str(&ef, fs, sizeof(fs)), strerror(reason));
			continue;
		}
		if (c->f[i].dead)
			continue;
		c->f[i].dead = true;
		c->f[i].reason = reason;
		c->flow_errors++;
		c->lost += c->f[i].tx_seq - c->f[i].rx_seq;
		fprintf(stderr, "msg_gen: flow %d (%s) failed: %s; %" PRIu64 " messages outstanding lost\n",
			i, flow_str(&c->f[i].flow, fs, sizeof(fs)), strerror(reason),
			c->f[i].tx_seq - c->f[i].rx_seq);
	}
}

/* One echo of @n bytes from @from. */
static void on_echo(struct client *c, ssize_t n, const MachnetFlow_t *from, uint64_t now)
{
	const struct opts *o = c->o;
	char fs[96];
	int32_t i = c->by_port[from->dst_port];
	struct cflow *f;
	uint64_t seq, rtt;

	if (i < 0 || c->f[i].flow.dst_port != from->src_port ||
	    c->f[i].flow.dst_ip != from->src_ip) {
		c->unexpected++;
		report_bad(c, "message of %zd B on unknown flow %s", n, flow_str(from, fs, sizeof(fs)));
		return;
	}
	f = &c->f[i];
	if (f->dead || f->rx_seq == f->tx_seq) {
		c->unexpected++;
		report_bad(c, "flow %d: message of %zd B with none outstanding%s", i, n,
			   f->dead ? " (flow failed)" : "");
		return;
	}
	seq = f->rx_seq++;
	rtt = now - f->stamp[seq % o->window];
	c->received++;
	h_add(c->all, rtt);
	h_add(c->sec, rtt);
	if ((size_t)n != o->msg_size) {
		c->bad++;
		report_bad(c, "flow %d message %" PRIu64 ": %zd B came back, %u sent", i, seq, n,
			   o->msg_size);
		return;
	}
	if (o->verify) {
		long off = pat_check(c->rxbuf, (size_t)n, (uint32_t)i, seq);

		if (off >= 0) {
			c->bad++;
			report_bad(c, "flow %d message %" PRIu64 " (%zd B): first wrong byte at offset %ld",
				   i, seq, n, off);
			return;
		}
		c->verified++;
	}
}

static bool may_send(const struct client *c, uint64_t now, uint64_t end)
{
	if (g_stop || now >= end)
		return false;
	return c->o->msg_nr == 0 || c->sent < c->o->msg_nr;
}

/* Fill every flow's window. Returns false when the channel pushed back. */
static bool fill(struct client *c, uint64_t end)
{
	const struct opts *o = c->o;
	uint64_t now = now_ns();

	for (uint32_t i = 0; i < o->flows; i++) {
		struct cflow *f = &c->f[i];

		while (!f->dead && f->tx_seq - f->rx_seq < o->window && may_send(c, now, end)) {
			if (o->verify)
				pat_fill(c->txbuf, o->msg_size, i, f->tx_seq);
			now = now_ns();
			if (machnet_send(c->ch, f->flow, c->txbuf, o->msg_size) != 0) {
				char fs[96];

				if (errno == EAGAIN || errno == ENOBUFS) {
					c->retries++;
					return false;
				}
				fprintf(stderr, "msg_gen: send on flow %u (%s): %s\n", i,
					flow_str(&f->flow, fs, sizeof(fs)), strerror(errno));
				f->dead = true;
				f->reason = errno;
				c->flow_errors++;
				c->lost += f->tx_seq - f->rx_seq;
				break;
			}
			f->stamp[f->tx_seq % o->window] = now;
			f->tx_seq++;
			c->sent++;
		}
	}
	return true;
}

static void tick_line(struct client *c, double secs, FILE *log)
{
	const struct opts *o = c->o;
	uint64_t tx = c->sent - c->p_sent, rx = c->received - c->p_received;

	if (!o->quiet) {
		fprintf(log,
			"[TX: %.0f msg/s, %.3f Gbps] [RX: %.0f msg/s, %.3f Gbps] "
			"[RTT us: p50 %.1f, p99 %.1f, p99.9 %.1f] [in flight %" PRIu64 "%s]\n",
			(double)tx / secs, gbps(tx, o->msg_size, secs), (double)rx / secs,
			gbps(rx, o->msg_size, secs), h_pct_us(c->sec, 50), h_pct_us(c->sec, 99),
			h_pct_us(c->sec, 99.9), inflight(c),
			c->bad + c->unexpected ? ", BAD" : "");
		fflush(log);
	}
	c->p_sent = c->sent;
	c->p_received = c->received;
	h_reset(c->sec);
}

static void print_flow_diag(struct client *c, bool all)
{
	for (uint32_t i = 0; i < c->o->flows; i++) {
		struct cflow *f = &c->f[i];
		char what[96];

		if (!all && (f->dead || f->tx_seq == f->rx_seq))
			continue;
		snprintf(what, sizeof(what), "flow %u (sent %" PRIu64 ", echoed %" PRIu64 "%s)", i,
			 f->tx_seq, f->rx_seq, f->dead ? ", failed" : "");
		print_flow_stats(c->ch, what, f->flow);
	}
}

static int run_client(const struct opts *o)
{
	struct client c = { .o = o };
	FILE *log = o->json ? stderr : stdout;
	uint64_t t0, tick, end, last_rx, t_end, stop_at = 0;
	struct cpu c0, c1;
	bool stalled = false, ok;
	int rc = 1;

	c.f = calloc(o->flows, sizeof(*c.f));
	c.by_port = malloc(65536 * sizeof(*c.by_port));
	c.txbuf = malloc(o->msg_size);
	c.rxcap = o->msg_size;
	c.rxbuf = malloc(c.rxcap);
	c.all = malloc(sizeof(*c.all));
	c.sec = malloc(sizeof(*c.sec));
	if (!c.f || !c.by_port || !c.txbuf || !c.rxbuf || !c.all || !c.sec) {
		fprintf(stderr, "msg_gen: out of memory\n");
		goto out;
	}
	for (uint32_t i = 0; i < o->flows; i++) {
		c.f[i].stamp = calloc(o->window, sizeof(uint64_t));
		if (!c.f[i].stamp) {
			fprintf(stderr, "msg_gen: out of memory\n");
			goto out;
		}
	}
	for (int i = 0; i < 65536; i++)
		c.by_port[i] = -1;
	h_reset(c.all);
	h_reset(c.sec);
	if (!o->verify)
		pat_fill(c.txbuf, o->msg_size, 0, 0);
	c.ch = attach();
	if (!c.ch)
		goto out;
	for (uint32_t i = 0; i < o->flows; i++) {
		if (machnet_connect(c.ch, o->local_ip, o->remote_ip, o->remote_port, &c.f[i].flow)) {
			fprintf(stderr, "msg_gen: connect %s -> %s:%u (flow %u): %s\n", o->local_ip,
				o->remote_ip, o->remote_port, i, strerror(errno));
			goto out;
		}
		c.by_port[c.f[i].flow.src_port] = (int32_t)i;
	}
	fprintf(log, "msg_gen: %u flow%s to %s:%u, %u B messages, window %u%s%s\n", o->flows,
		o->flows == 1 ? "" : "s", o->remote_ip, o->remote_port, o->msg_size, o->window,
		o->verify ? ", verifying" : "", o->msg_nr ? "" : " (until --duration or Ctrl-C)");
	fflush(log);

	c0 = cpu_now();
	t0 = tick = last_rx = now_ns();
	end = o->duration_s > 0 ? t0 + (uint64_t)(o->duration_s * 1e9) : UINT64_MAX;
	for (;;) {
		bool room = fill(&c, end);
		uint64_t now = now_ns(), out = inflight(&c);
		int wait_ms;
		ssize_t n;
		MachnetFlow_t from;

		if (g_stop > 1)
			break;
		if (!may_send(&c, now, end) && !stop_at)
			stop_at = now;
		if (stop_at && out == 0)
			break; /* done: everything came back */
		if (!alive(&c))
			break;
		if (out && now - last_rx > (uint64_t)(o->stall_s * 1e9)) {
			stalled = true;
			break;
		}
		if (g_stop && stop_at && now - stop_at > 2000000000ull)
			break; /* Ctrl-C / SIGTERM: 2 s to drain, then the summary */
		/* Wait for an echo: until the next tick at most; 1 ms when the
		 * channel pushed back with nothing of ours outstanding. */
		if (!room && !out) {
			c.blocked_waits++;
			wait_ms = 1;
		} else {
			uint64_t left = tick + 1000000000ull > now ? tick + 1000000000ull - now : 0;

			wait_ms = (int)(left / 1000000) + 1;
			if (wait_ms > 100)
				wait_ms = 100;
		}
		n = machnet_recv_timeout(c.ch, c.rxbuf, c.rxcap, &from, wait_ms);
		now = now_ns();
		if (n > 0) {
			last_rx = now;
			on_echo(&c, n, &from, now);
			/* Take whatever else is there before sending again. */
			while ((n = machnet_recv(c.ch, c.rxbuf, c.rxcap, &from)) > 0)
				on_echo(&c, n, &from, now_ns());
		}
		if (n < 0) {
			if (errno == EMSGSIZE) {
				/* Longer than what we sent: take it to report it. */
				uint8_t *nb = realloc(c.rxbuf, MACHNET_MSG_MAX_LEN);

				if (!nb) {
					fprintf(stderr, "msg_gen: out of memory\n");
					break;
				}
				c.rxbuf = nb;
				c.rxcap = MACHNET_MSG_MAX_LEN;
				continue;
			}
			fprintf(stderr, "msg_gen: recv: %s\n", strerror(errno));
			break;
		}
		take_flow_errors(&c);
		if (g_dump) {
			g_dump = 0;
			print_flow_diag(&c, true);
		}
		if (now - tick >= 1000000000ull) {
			tick_line(&c, (double)(now - tick) / 1e9, log);
			tick = now;
		}
	}
	t_end = now_ns();
	c1 = cpu_now();
	take_flow_errors(&c);
	if (stalled)
		fprintf(stderr, "msg_gen: no echo for %.1f s with %" PRIu64 " messages outstanding\n",
			o->stall_s, inflight(&c));
	else if (inflight(&c))
		fprintf(stderr, "msg_gen: stopped with %" PRIu64 " messages outstanding\n",
			inflight(&c));
	if (inflight(&c))
		print_flow_diag(&c, false);
	c.lost += inflight(&c); /* never came back */
	{
		double secs = (double)((stop_at ? stop_at : t_end) - t0) / 1e9;
		double wall = (double)(t_end - t0) / 1e9;
		double cpu = c1.user_s - c0.user_s + c1.sys_s - c0.sys_s;
		double mean = c.all->count ? (double)c.all->sum / (double)c.all->count / 1e3 : 0;
		double rate = wall > 0 ? (double)c.received / wall : 0;

		ok = c.sent > 0 && c.received == c.sent && c.bad == 0 && c.unexpected == 0 &&
		     c.flow_errors == 0 && !stalled && (!o->verify || c.verified == c.sent);
		if (o->json) {
			printf("{\"mode\":\"client\",\"flows\":%u,\"msg_size\":%u,\"window\":%u,"
			       "\"verify\":%s,\"duration_s\":%.3f,\"send_s\":%.3f,\"sent\":%" PRIu64
			       ",\"received\":%" PRIu64 ",\"verified\":%" PRIu64 ",\"bad\":%" PRIu64
			       ",\"unexpected\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"flow_errors\":%u"
			       ",\"send_retries\":%" PRIu64 ",\"stalled\":%s,\"rate_msgs\":%.1f"
			       ",\"gbps\":%.4f,\"rtt_us\":{\"min\":%.2f,\"p50\":%.2f,\"p99\":%.2f"
			       ",\"p999\":%.2f,\"max\":%.2f,\"mean\":%.2f},\"cpu\":{\"user_s\":%.3f"
			       ",\"sys_s\":%.3f,\"pct\":%.1f},\"ok\":%s}\n",
			       o->flows, o->msg_size, o->window, o->verify ? "true" : "false", wall,
			       secs, c.sent, c.received, c.verified, c.bad, c.unexpected, c.lost,
			       c.flow_errors, c.retries, stalled ? "true" : "false", rate,
			       gbps(c.received, o->msg_size, wall),
			       c.all->count ? (double)c.all->min / 1e3 : 0, h_pct_us(c.all, 50),
			       h_pct_us(c.all, 99), h_pct_us(c.all, 99.9),
			       (double)c.all->max / 1e3, mean, c1.user_s - c0.user_s,
			       c1.sys_s - c0.sys_s, wall > 0 ? 100 * cpu / wall : 0,
			       ok ? "true" : "false");
		} else {
			printf("msg_gen summary: %u flow%s x window %u, %u B messages, %.2f s\n"
			       "  sent %" PRIu64 ", received %" PRIu64 ", verified %" PRIu64
			       "%s, bad %" PRIu64 ", unexpected %" PRIu64 ", lost %" PRIu64
			       ", flow errors %u, send retries %" PRIu64 "\n"
			       "  rate %.0f msg/s, %.3f Gbps each way\n"
			       "  RTT us: min %.1f, p50 %.1f, p99 %.1f, p99.9 %.1f, max %.1f, mean %.1f\n"
			       "  cpu: user %.2f s, sys %.2f s (%.0f %% of one core)\n"
			       "  %s\n",
			       o->flows, o->flows == 1 ? "" : "s", o->window, o->msg_size, wall,
			       c.sent, c.received, c.verified, o->verify ? "" : " (--verify off)",
			       c.bad, c.unexpected, c.lost, c.flow_errors, c.retries, rate,
			       gbps(c.received, o->msg_size, wall),
			       c.all->count ? (double)c.all->min / 1e3 : 0, h_pct_us(c.all, 50),
			       h_pct_us(c.all, 99), h_pct_us(c.all, 99.9),
			       (double)c.all->max / 1e3, mean, c1.user_s - c0.user_s,
			       c1.sys_s - c0.sys_s, wall > 0 ? 100 * cpu / wall : 0,
			       ok ? "OK: every message came back" : "FAILED");
		}
		fflush(stdout);
		rc = ok ? 0 : 1;
	}
	for (uint32_t i = 0; i < o->flows; i++)
		if (!c.f[i].dead)
			machnet_close(c.ch, c.f[i].flow);
out:
	if (c.ch)
		machnet_detach(c.ch);
	if (c.f)
		for (uint32_t i = 0; i < o->flows; i++)
			free(c.f[i].stamp);
	free(c.f);
	free(c.by_port);
	free(c.txbuf);
	free(c.rxbuf);
	free(c.all);
	free(c.sec);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;

	if (parse(argc, argv, &o) != 0) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	install_signals();
	return o.remote_ip ? run_client(&o) : run_server(&o);
}
