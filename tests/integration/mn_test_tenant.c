/* SPDX-License-Identifier: MIT */
/*
 * mn_test_tenant: a stand-in protocol server for nicd's integration tests
 * and benchmark. It registers a port with machnet-nicd, claims one UDP
 * port and moves raw UDP frames:
 *
 *   recv      count and verify datagrams (payload pattern below)
 *   send      send datagrams of sizes min..max to --to IP:PORT
 *   echo      send every datagram back to where it came from
 *   spoof     send frames nicd must refuse (source IP, source MAC)
 *   pingpong  one datagram at a time to an echo server, RTT percentiles
 *
 * Payload pattern: u32 seq, u32 size, then byte i = (seq + i) & 0xff;
 * payloads under 8 bytes are byte i = (0xa5 + i) & 0xff.
 * The last line printed is "RESULT key=value ...", for the test scripts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pkt.h"
#include "portc.h"

#define BURST 32u
#define HDR_LEN 42u /* Ethernet + IPv4 + UDP */

struct opts {
	const char *mode;
	const char *runtime_dir;
	const char *tenant;
	uint32_t ip;
	uint16_t port;
	uint32_t to_ip;
	uint16_t to_port;
	uint32_t count;
	uint32_t min_size, max_size;
	uint32_t timeout_ms;
	uint32_t spoof_ip;
	uint32_t frames;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mn_test_tenant --mode MODE --tenant NAME --ip A.B.C.D --port P [options]\n"
		"modes: recv, send, echo, spoof, pingpong\n"
		"  --runtime-dir DIR   nicd's runtime directory (default /run/machnet)\n"
		"  --to A.B.C.D:P      destination (send, spoof, pingpong)\n"
		"  --count N           datagrams to send or expect (default 1000)\n"
		"  --min-size B        smallest payload, >= 1 (default 1)\n"
		"  --max-size B        largest payload (default 1472)\n"
		"  --timeout-ms MS     give up after (default 10000); echo runs until then\n"
		"  --spoof-ip A.B.C.D  source address for spoof mode\n"
		"  --frames N          frames in the port pool (power of two, default 4096)\n"
		"  -h, --help\n");
}

static int parse_ipport(const char *s, uint32_t *ip, uint16_t *port)
{
	char buf[64], *colon;
	struct in_addr a;

	snprintf(buf, sizeof(buf), "%s", s);
	colon = strchr(buf, ':');
	if (colon) {
		*colon = '\0';
		*port = (uint16_t)strtoul(colon + 1, NULL, 10);
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	*ip = ntohl(a.s_addr);
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "mode", 1, 0, 'm' },	     { "runtime-dir", 1, 0, 'r' },
		{ "tenant", 1, 0, 't' },     { "ip", 1, 0, 'i' },
		{ "port", 1, 0, 'p' },	     { "to", 1, 0, 'T' },
		{ "count", 1, 0, 'n' },	     { "min-size", 1, 0, 'a' },
		{ "max-size", 1, 0, 'b' },   { "timeout-ms", 1, 0, 'w' },
		{ "spoof-ip", 1, 0, 's' },   { "frames", 1, 0, 'f' },
		{ "help", 0, 0, 'h' },	     { 0, 0, 0, 0 },
	};
	uint16_t dummy;
	int c;

	*o = (struct opts){ .runtime_dir = "/run/machnet", .count = 1000, .min_size = 1,
			    .max_size = 1472, .timeout_ms = 10000, .frames = 4096 };
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'm': o->mode = optarg; break;
		case 'r': o->runtime_dir = optarg; break;
		case 't': o->tenant = optarg; break;
		case 'i': if (parse_ipport(optarg, &o->ip, &dummy)) return -EINVAL; break;
		case 'p': o->port = (uint16_t)strtoul(optarg, NULL, 10); break;
		case 'T': if (parse_ipport(optarg, &o->to_ip, &o->to_port)) return -EINVAL; break;
		case 'n': o->count = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'a': o->min_size = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'b': o->max_size = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'w': o->timeout_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 's': if (parse_ipport(optarg, &o->spoof_ip, &dummy)) return -EINVAL; break;
		case 'f': o->frames = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
	}
	if (!o->mode || !o->tenant || !o->ip || !o->port || o->min_size > o->max_size ||
	    o->max_size > 1472 || o->min_size < 1)
		return -EINVAL;
	return 0;
}

static void fill_payload(uint8_t *p, uint32_t seq, uint32_t size)
{
	if (size < 8) {
		for (uint32_t i = 0; i < size; i++)
			p[i] = (uint8_t)(0xa5 + i);
		return;
	}
	memcpy(p, &seq, 4);
	memcpy(p + 4, &size, 4);
	for (uint32_t i = 8; i < size; i++)
		p[i] = (uint8_t)(seq + i);
}

static bool check_payload(const uint8_t *p, uint32_t len, uint32_t *seq)
{
	uint32_t size;

	if (len < 8) {
		*seq = 0;
		for (uint32_t i = 0; i < len; i++)
			if (p[i] != (uint8_t)(0xa5 + i))
				return false;
		return len > 0;
	}
	memcpy(seq, p, 4);
	memcpy(&size, p + 4, 4);
	if (size != len)
		return false;
	for (uint32_t i = 8; i < len; i++)
		if (p[i] != (uint8_t)(*seq + i))
			return false;
	return true;
}

/* Keep the port alive: reconnect after a nicd restart, take completions. */
static void service(struct portc *pc, uint32_t *refused)
{
	portc_check(pc);
	portc_poll_comp(pc, 0, refused);
}

static int send_frame(struct portc *pc, const struct opts *o, const uint8_t dmac[6],
		      uint32_t src_ip, const uint8_t *smac, const void *payload, uint32_t plen)
{
	struct mn_pkt_desc d;
	uint32_t refused = 0;

	while (portc_alloc(pc, &d) != 0) {
		service(pc, &refused);
		if (stop)
			return -EINTR;
	}
	d.len = pkt_build_udp(portc_frame(pc, &d), pc->frame_size, smac, dmac, src_ip, o->to_ip,
			      o->port, o->to_port, payload, plen);
	d.flags = MN_PKT_F_TX_CSUM;
	while (portc_tx(pc, 0, &d, 1) != 1) {
		service(pc, &refused);
		if (stop)
			return -EINTR;
	}
	return 0;
}

static int resolve(struct portc *pc, uint32_t ip, uint8_t mac[6], uint32_t timeout_ms)
{
	uint64_t end = now_ns() + timeout_ms * 1000000ull;
	int err;

	do {
		err = portc_resolve(pc, ip, mac, 2000);
		if (err == 0)
			return 0;
		portc_check(pc);
		usleep(10000);
	} while (now_ns() < end && !stop);
	fprintf(stderr, "mn_test_tenant: cannot resolve the destination: %s\n", strerror(-err));
	return err;
}

static int mode_send(struct portc *pc, const struct opts *o)
{
	uint8_t dmac[6], payload[1500];
	uint32_t refused = 0, size = o->min_size;
	int err = resolve(pc, o->to_ip, dmac, o->timeout_ms);

	if (err)
		return err;
	for (uint32_t seq = 0; seq < o->count && !stop; seq++) {
		fill_payload(payload, seq, size);
		err = send_frame(pc, o, dmac, o->ip, pc->info.mac, payload, size);
		if (err)
			return err;
		size = size >= o->max_size ? o->min_size : size + 1;
		if (seq % 64 == 63)
			usleep(200); /* the kernel peer's socket buffer is finite */
		service(pc, &refused);
	}
	for (int i = 0; i < 100; i++) {
		service(pc, &refused);
		usleep(1000);
	}
	printf("RESULT sent=%" PRIu32 " refused=%" PRIu32 "\n", o->count, refused);
	return refused ? -EIO : 0;
}

static int rx_loop(struct portc *pc, const struct opts *o, bool echo)
{
	uint64_t end = now_ns() + o->timeout_ms * 1000000ull;
	uint32_t ok = 0, bad = 0, refused = 0;
	struct mn_pkt_desc d[BURST];

	while (!stop && now_ns() < end && (echo || ok + bad < o->count)) {
		int n = portc_rx(pc, 0, d, BURST);

		for (int i = 0; i < n; i++) {
			uint8_t *f = portc_frame(pc, &d[i]);
			struct pkt_info pi;
			enum mn_drop why;
			uint32_t seq;

			if (pkt_parse(f, d[i].len, 0, &pi, &why) != PKT_UDP ||
			    !check_payload(f + pi.payload_off, pi.payload_len, &seq)) {
				bad++;
			} else {
				ok++;
			}
			if (echo) {
				struct opts back = *o;

				back.to_ip = pi.src_ip;
				back.to_port = pi.src_port;
				send_frame(pc, &back, pi.src_mac, pi.dst_ip, pi.dst_mac,
					   f + pi.payload_off, pi.payload_len);
			}
			portc_free(pc, &d[i]);
		}
		if (n <= 0)
			usleep(50);
		service(pc, &refused);
	}
	printf("RESULT ok=%" PRIu32 " bad=%" PRIu32 " reconnects=%" PRIu64 "\n", ok, bad,
	       pc->reconnects);
	return (!echo && ok != o->count) || bad ? -EIO : 0;
}

/* Frames nicd must refuse: a source IP we did not claim, a foreign MAC. */
static int mode_spoof(struct portc *pc, const struct opts *o)
{
	static const uint8_t fake_mac[6] = { 0x02, 0xde, 0xad, 0xbe, 0xef, 0x01 };
	uint8_t dmac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, payload[64];
	uint32_t refused = 0;

	fill_payload(payload, 0, sizeof(payload));
	send_frame(pc, o, dmac, o->spoof_ip, pc->info.mac, payload, sizeof(payload));
	send_frame(pc, o, dmac, o->ip, fake_mac, payload, sizeof(payload));
	for (int i = 0; i < 200 && refused < 2; i++) {
		service(pc, &refused);
		usleep(1000);
	}
	printf("RESULT sent=2 refused=%" PRIu32 "\n", refused);
	return refused == 2 ? 0 : -EIO;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int mode_pingpong(struct portc *pc, const struct opts *o)
{
	uint64_t *rtt = calloc(o->count, sizeof(*rtt)), t0, start;
	uint8_t dmac[6], payload[1500];
	uint32_t done = 0, lost = 0, refused = 0, size = o->min_size;
	struct mn_pkt_desc d[BURST];
	int err = rtt ? resolve(pc, o->to_ip, dmac, o->timeout_ms) : -ENOMEM;
	double cpu0 = cpu_s();

	start = now_ns();
	while (!err && done + lost < o->count && !stop) {
		bool got = false;

		fill_payload(payload, done + lost, size);
		t0 = now_ns();
		send_frame(pc, o, dmac, o->ip, pc->info.mac, payload, size);
		while (!got && now_ns() - t0 < 200000000ull) {
			int n = portc_rx(pc, 0, d, BURST);

			for (int i = 0; i < n; i++) {
				portc_free(pc, &d[i]);
				got = true;
			}
			portc_poll_comp(pc, 0, &refused);
			/* More pollers than cores collapse unless idle ones yield. */
			if (n <= 0)
				sched_yield();
		}
		if (got)
			rtt[done++] = now_ns() - t0;
		else
			lost++;
	}
	if (!err && done) {
		double secs = (double)(now_ns() - start) / 1e9;

		qsort(rtt, done, sizeof(*rtt), cmp_u64);
		printf("RESULT rtts=%" PRIu32 " lost=%" PRIu32 " rate=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f cpu_pct=%.0f\n",
		       done, lost, done / secs, rtt[done / 2] / 1e3, rtt[(uint64_t)done * 99 / 100] / 1e3,
		       rtt[(uint64_t)done * 999 / 1000] / 1e3, 100.0 * (cpu_s() - cpu0) / secs);
	}
	free(rtt);
	return err ? err : (done ? 0 : -EIO);
}

int main(int argc, char **argv)
{
	struct portc pc;
	struct opts o;
	int err;

	if (parse_opts(argc, argv, &o) != 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	err = portc_create(&pc, o.tenant, o.runtime_dir, 1, o.frames, 2048);
	err = err ? err : portc_connect(&pc, 2000);
	err = err ? err : portc_claim(&pc, o.ip, o.port, o.port, 2000);
	if (err) {
		fprintf(stderr, "mn_test_tenant: cannot set up the port with nicd: %s\n", strerror(-err));
		return 1;
	}
	printf("READY\n");
	fflush(stdout);
	if (strcmp(o.mode, "recv") == 0)
		err = rx_loop(&pc, &o, false);
	else if (strcmp(o.mode, "echo") == 0)
		err = rx_loop(&pc, &o, true);
	else if (strcmp(o.mode, "send") == 0)
		err = mode_send(&pc, &o);
	else if (strcmp(o.mode, "spoof") == 0)
		err = mode_spoof(&pc, &o);
	else if (strcmp(o.mode, "pingpong") == 0)
		err = mode_pingpong(&pc, &o);
	else
		err = -EINVAL;
	portc_destroy(&pc);
	return err ? 1 : 0;
}
