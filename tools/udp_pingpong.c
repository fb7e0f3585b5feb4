/* SPDX-License-Identifier: MIT */
/*
 * udp_pingpong: kernel UDP ping-pong, the baseline machnet is measured
 * against, and the echo server at the far end of nicd's benchmark.
 *
 *   udp_pingpong echo --port P [--busy] [--duration S]
 *   udp_pingpong ping --to A.B.C.D:P [--count N] [--size B] [--busy]
 *
 * ping sends one datagram at a time and prints
 *   RESULT rtts=N lost=L rate=R p50_us=.. p99_us=.. p999_us=.. cpu_pct=..
 * --busy polls with MSG_DONTWAIT instead of blocking.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct opts {
	bool echo;
	bool busy;
	struct sockaddr_in to;
	uint16_t port;
	uint32_t count;
	uint32_t size;
	uint32_t duration_s;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: udp_pingpong echo --port P [--busy] [--duration S]\n"
		   "       udp_pingpong ping --to A.B.C.D:P [--count N] [--size B] [--busy]\n"
		   "Kernel UDP ping-pong, the baseline machnet is measured against.\n"
		   "  echo             answer every datagram on port P, until --duration S (3600)\n"
		   "  ping             send --count N (10000) datagrams of --size B (64) bytes to\n"
		   "                   A.B.C.D:P, one at a time; print\n"
		   "                   RESULT rtts= lost= rate= p50_us= p99_us= p999_us= cpu_pct=\n"
		   "  --busy           poll with MSG_DONTWAIT instead of blocking\n"
		   "  -h, --help       this text\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "port", 1, 0, 'p' }, { "to", 1, 0, 't' },	  { "count", 1, 0, 'n' },
		{ "size", 1, 0, 's' }, { "busy", 0, 0, 'b' },	  { "duration", 1, 0, 'd' },
		{ "help", 0, 0, 'h' }, { 0, 0, 0, 0 },
	};
	char host[64], *colon;
	int c;

	*o = (struct opts){ .count = 10000, .size = 64, .duration_s = 3600 };
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		exit(0);
	}
	if (argc < 2)
		return -EINVAL;
	o->echo = strcmp(argv[1], "echo") == 0;
	if (!o->echo && strcmp(argv[1], "ping") != 0)
		return -EINVAL;
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'p': o->port = (uint16_t)atoi(optarg); break;
		case 'n': o->count = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 's': o->size = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'b': o->busy = true; break;
		case 'd': o->duration_s = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 't':
			snprintf(host, sizeof(host), "%s", optarg);
			colon = strchr(host, ':');
			if (!colon)
				return -EINVAL;
			*colon = '\0';
			o->to.sin_family = AF_INET;
			o->to.sin_port = htons((uint16_t)atoi(colon + 1));
			if (inet_pton(AF_INET, host, &o->to.sin_addr) != 1)
				return -EINVAL;
			break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
	}
	if ((o->echo && !o->port) || (!o->echo && !o->to.sin_port) || o->size == 0 ||
	    o->size > 65507 || o->count == 0)
		return -EINVAL;
	return 0;
}

/* One datagram, waiting at most @timeout_ns; -1 on timeout. */
static ssize_t recv_one(int fd, void *buf, size_t len, struct sockaddr_in *from, bool busy,
			uint64_t timeout_ns)
{
	socklen_t fl = sizeof(*from);
	uint64_t end = now_ns() + timeout_ns;

	for (;;) {
		ssize_t n = recvfrom(fd, buf, len, busy ? MSG_DONTWAIT : 0, (void *)from, &fl);

		if (n >= 0)
			return n;
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		if (now_ns() > end)
			return -1;
	}
}

static int run_echo(int fd, const struct opts *o)
{
	char buf[65536];
	uint64_t end = now_ns() + o->duration_s * 1000000000ull;
	struct sockaddr_in from;

	while (now_ns() < end) {
		ssize_t n = recv_one(fd, buf, sizeof(buf), &from, o->busy, 1000000000ull);

		if (n >= 0)
			sendto(fd, buf, (size_t)n, 0, (void *)&from, sizeof(from));
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int run_ping(int fd, const struct opts *o)
{
	uint64_t *rtt = calloc(o->count, sizeof(*rtt)), start;
	char *buf = calloc(1, 65536);
	uint32_t done = 0, lost = 0;
	double cpu0 = cpu_s();
	struct sockaddr_in from;

	if (!rtt || !buf)
		return 1;
	start = now_ns();
	for (uint32_t i = 0; i < o->count; i++) {
		uint64_t t0 = now_ns();

		memcpy(buf, &i, sizeof(i));
		sendto(fd, buf, o->size, 0, (const void *)&o->to, sizeof(o->to));
		if (recv_one(fd, buf, 65536, &from, o->busy, 200000000ull) < 0)
			lost++;
		else
			rtt[done++] = now_ns() - t0;
	}
	if (done) {
		double secs = (double)(now_ns() - start) / 1e9;

		qsort(rtt, done, sizeof(*rtt), cmp_u64);
		printf("RESULT rtts=%" PRIu32 " lost=%" PRIu32 " rate=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f cpu_pct=%.0f\n",
		       done, lost, done / secs, rtt[done / 2] / 1e3,
		       rtt[(uint64_t)done * 99 / 100] / 1e3, rtt[(uint64_t)done * 999 / 1000] / 1e3,
		       100.0 * (cpu_s() - cpu0) / secs);
	}
	free(rtt);
	free(buf);
	return done ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct opts o;
	int fd;

	if (parse(argc, argv, &o) != 0) {
		usage(stderr);
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	a.sin_port = htons(o.port);
	if (fd < 0 || bind(fd, (void *)&a, sizeof(a)) != 0) {
		perror("udp_pingpong: socket/bind");
		return 1;
	}
	return o.echo ? run_echo(fd, &o) : run_ping(fd, &o);
}
