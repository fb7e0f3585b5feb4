/* SPDX-License-Identifier: MIT */
/*
 * hello_world: the smallest machnet application, as in Machnet.
 *   server:  hello_world --local_ip A [--port P]
 *            prints every message it receives and sends it back
 *   client:  hello_world --local_ip A --remote_ip B [--port P] [--msg TEXT]
 *            sends TEXT, waits for the echo, prints it, exits 0
 * The tenant comes from MACHNET_TENANT, the runtime dir from
 * MACHNET_RUNTIME_DIR.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machnet.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: hello_world --local_ip A [--remote_ip B] [--port P] [--msg TEXT] [--count N]\n"
		   "  without --remote_ip: serve (print and echo every message) until killed\n"
		   "  with --remote_ip: send TEXT N times, print each echo, exit 0 if all came back\n");
}

static int serve(void *ch, const char *lip, uint16_t port)
{
	char buf[65536];

	if (machnet_listen(ch, lip, port) != 0) {
		fprintf(stderr, "hello_world: listen on %s:%u: %s\n", lip, port, strerror(errno));
		return 1;
	}
	printf("listening on %s:%u\n", lip, port);
	fflush(stdout);
	for (;;) {
		MachnetFlow_t flow, back;
		ssize_t n = machnet_recv_timeout(ch, buf, sizeof(buf) - 1, &flow, 1000);

		if (n < 0) {
			fprintf(stderr, "hello_world: recv: %s\n", strerror(errno));
			return 1;
		}
		if (n == 0)
			continue;
		buf[n] = '\0';
		printf("received %zd bytes: %s\n", n, buf);
		fflush(stdout);
		back = (MachnetFlow_t){ flow.dst_ip, flow.src_ip, flow.dst_port, flow.src_port };
		if (machnet_send(ch, back, buf, (size_t)n) != 0)
			fprintf(stderr, "hello_world: echo: %s\n", strerror(errno));
	}
}

static int client(void *ch, const char *lip, const char *rip, uint16_t port, const char *msg,
		  int count)
{
	MachnetFlow_t flow, from;
	char buf[65536];

	if (machnet_connect(ch, lip, rip, port, &flow) != 0) {
		fprintf(stderr, "hello_world: connect %s -> %s:%u: %s\n", lip, rip, port,
			strerror(errno));
		return 1;
	}
	for (int i = 0; i < count; i++) {
		ssize_t n;

		if (machnet_send(ch, flow, msg, strlen(msg)) != 0) {
			fprintf(stderr, "hello_world: send: %s\n", strerror(errno));
			return 1;
		}
		n = machnet_recv_timeout(ch, buf, sizeof(buf) - 1, &from, 5000);
		if (n <= 0) {
			fprintf(stderr, "hello_world: no echo within 5 s (%s)\n",
				n < 0 ? strerror(errno) : "timeout");
			return 1;
		}
		buf[n] = '\0';
		printf("echo %d: %s\n", i + 1, buf);
	}
	machnet_close(ch, flow);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "local_ip", 1, 0, 'l' }, { "remote_ip", 1, 0, 'r' }, { "port", 1, 0, 'p' },
		{ "msg", 1, 0, 'm' },	   { "count", 1, 0, 'n' },     { "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *lip = NULL, *rip = NULL, *msg = "Hello World!";
	uint16_t port = 888;
	int count = 1, c, rc;
	void *ch;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'l': lip = optarg; break;
		case 'r': rip = optarg; break;
		case 'p': port = (uint16_t)atoi(optarg); break;
		case 'm': msg = optarg; break;
		case 'n': count = atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!lip || count < 1) {
		usage(stderr);
		return 2;
	}
	if (machnet_init() != 0) {
		fprintf(stderr, "hello_world: machnet_init: %s (is machnet-proto running?)\n",
			strerror(errno));
		return 1;
	}
	ch = machnet_attach();
	if (!ch) {
		fprintf(stderr, "hello_world: machnet_attach: %s\n", strerror(errno));
		return 1;
	}
	rc = rip ? client(ch, lip, rip, port, msg, count) : serve(ch, lip, port);
	/* Not in Machnet's API: gives the channel back and frees its state. */
	machnet_detach(ch);
	return rc;
}
