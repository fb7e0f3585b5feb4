/* SPDX-License-Identifier: MIT */
/*
 * machnetctl: the admin CLI. This first version talks to machnet-nicd:
 *   status          is nicd up; version, device, addresses, poll mode
 *   stats [--json]  port, queue and tenant counters, drops by reason
 * Exit codes: 0 ok, 1 the server answered with an error, 2 usage,
 * 3 nicd not running, 4 permission denied.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "port.h"

#ifndef MACHNET_VERSION
#define MACHNET_VERSION "0.1.0"
#endif

#define TIMEOUT_MS 2000
#define EXIT_ERR 1
#define EXIT_USAGE 2
#define EXIT_DOWN 3
#define EXIT_PERM 4

static const char *const poll_names[] = { "busy", "yield", "adaptive" };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: machnetctl [--runtime-dir DIR] COMMAND [--json]\n"
		"commands:\n"
		"  status         whether machnet-nicd runs; version, device, addresses, poll mode\n"
		"  stats          port, queue and tenant counters with drops by reason\n"
		"options:\n"
		"  -r, --runtime-dir DIR  where the servers' sockets are (default /run/machnet)\n"
		"  -j, --json             one JSON object instead of tables\n"
		"  -h, --help             this text;  -V, --version\n"
		"exit status: 0 ok, 1 error answered, 2 usage, 3 not running, 4 permission denied\n");
}

static int exit_for(int err)
{
	if (err == -ENOENT || err == -ECONNREFUSED)
		return EXIT_DOWN;
	if (err == -EACCES || err == -EPERM)
		return EXIT_PERM;
	return EXIT_ERR;
}

static int nicd_open(const char *rundir)
{
	char path[512];
	struct mn_ctl_hello peer;
	int fd, err;

	snprintf(path, sizeof(path), "%s/nicd.sock", rundir);
	fd = mn_ctl_connect(path, TIMEOUT_MS);
	if (fd < 0) {
		fprintf(stderr, "machnetctl: cannot reach machnet-nicd at %s: %s%s\n", path,
			strerror(-fd),
			fd == -ENOENT || fd == -ECONNREFUSED ? " (is it running? systemctl status machnet-nicd)" :
			fd == -EACCES ? " (run as root or as a member of the socket's group)" : "");
		return fd;
	}
	err = mn_ctl_hello(fd, MN_PORT_ROLE_ADMIN, "machnetctl", &peer, TIMEOUT_MS);
	if (err < 0) {
		fprintf(stderr, "machnetctl: machnet-nicd refused us: %s\n", strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

static int request(int fd, uint16_t type, struct mn_ctl_msg *m)
{
	int err = mn_ctl_send(fd, type, 1, 0, NULL, 0, NULL, 0, TIMEOUT_MS);

	err = err ? err : mn_ctl_recv(fd, m, TIMEOUT_MS);
	if (err)
		return err;
	if (m->hdr.type != type || m->hdr.status < 0) {
		err = m->hdr.status < 0 ? m->hdr.status : -EPROTO;
		mn_ctl_msg_free(m);
	}
	return err;
}

static void ip_str(uint32_t ip, char *buf, size_t len)
{
	struct in_addr a = { htonl(ip) };

	inet_ntop(AF_INET, &a, buf, (socklen_t)len);
}

static void mac_str(const uint8_t *m, char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_counters(const struct mn_port_counters *c)
{
	printf("\"rx_pkts\": %" PRIu64 ", \"rx_bytes\": %" PRIu64 ", \"tx_pkts\": %" PRIu64
	       ", \"tx_bytes\": %" PRIu64 ", \"drops\": {",
	       c->rx_pkts, c->rx_bytes, c->tx_pkts, c->tx_bytes);
	for (unsigned int i = 0; i < MN_DROP_MAX; i++)
		printf("%s\"%s\": %" PRIu64, i ? ", " : "", mn_drop_name(i), c->drops[i]);
	printf("}");
}

static void json_info(const struct mn_port_info *in)
{
	char mac[32];

	mac_str(in->mac, mac, sizeof(mac));
	printf("\"nicd\": {\"version\": \"%s\", \"pid\": %" PRIu32 ", \"uptime_s\": %.3f, "
	       "\"driver\": \"%s\", \"device\": \"%s\", \"mac\": \"%s\", \"mtu\": %u, "
	       "\"nqueues\": %u, \"poll_mode\": \"%s\", \"generation\": %" PRIu32 ", \"ips\": [",
	       in->version, in->pid, in->uptime_ns / 1e9, in->driver, in->device, mac, in->mtu,
	       in->nqueues, in->poll_mode < 3 ? poll_names[in->poll_mode] : "?", in->generation);
	for (uint32_t i = 0; i < in->nips && i < 8; i++) {
		char ip[32];

		ip_str(in->ips[i], ip, sizeof(ip));
		printf("%s\"%s/%u\"", i ? ", " : "", ip, in->prefix_len[i]);
	}
	printf("]}");
}

static void json_stats(const struct mn_port_info *in, const struct mn_port_stats_hdr *h,
		       const struct mn_port_counters *q, const struct mn_port_tenant_stats *t)
{
	printf("{");
	json_info(in);
	printf(", \"nic\": {\"ipackets\": %" PRIu64 ", \"opackets\": %" PRIu64 ", \"ibytes\": %" PRIu64
	       ", \"obytes\": %" PRIu64 ", \"imissed\": %" PRIu64 ", \"ierrors\": %" PRIu64
	       ", \"oerrors\": %" PRIu64 ", \"rx_nombuf\": %" PRIu64 "}",
	       h->nic_ipackets, h->nic_opackets, h->nic_ibytes, h->nic_obytes, h->nic_imissed,
	       h->nic_ierrors, h->nic_oerrors, h->nic_rx_nombuf);
	printf(", \"arp\": {\"rx\": %" PRIu64 ", \"req_tx\": %" PRIu64 ", \"reply_tx\": %" PRIu64 "}",
	       h->arp_rx, h->arp_req_tx, h->arp_reply_tx);
	printf(", \"icmp_echo_tx\": %" PRIu64 ", \"resolve_fail\": %" PRIu64
	       ", \"registrations\": %" PRIu64 ", \"refused\": %" PRIu64 ", \"wakeups\": %" PRIu64,
	       h->icmp_echo_tx, h->resolve_fail, h->registrations, h->refused, h->wakeups);
	printf(", \"port\": {");
	json_counters(&h->port);
	printf("}, \"queues\": [");
	for (uint32_t i = 0; i < h->nqueues; i++) {
		printf("%s{\"queue\": %" PRIu32 ", ", i ? ", " : "", i);
		json_counters(&q[i]);
		printf("}");
	}
	printf("], \"tenants\": [");
	for (uint32_t i = 0; i < h->ntenants; i++) {
		printf("%s{\"name\": \"%.31s\", \"connected\": %s, \"pid\": %" PRIu32 ", \"nclaims\": %" PRIu32 ", ",
		       i ? ", " : "", t[i].name, t[i].connected ? "true" : "false", t[i].pid,
		       t[i].nclaims);
		json_counters(&t[i].c);
		printf("}");
	}
	printf("]}\n");
}

/* ---- tables ------------------------------------------------------------------ */

static void table_drops(const char *who, const struct mn_port_counters *c)
{
	for (unsigned int i = 0; i < MN_DROP_MAX; i++)
		if (c->drops[i])
			printf("  %-12s %-14s %12" PRIu64 "\n", who, mn_drop_name(i), c->drops[i]);
}

static void table_stats(const struct mn_port_stats_hdr *h, const struct mn_port_counters *q,
			const struct mn_port_tenant_stats *t)
{
	printf("%-14s %9s %12s %14s %12s %14s\n", "", "state", "rx pkts", "rx bytes", "tx pkts",
	       "tx bytes");
	printf("%-14s %9s %12" PRIu64 " %14" PRIu64 " %12" PRIu64 " %14" PRIu64 "\n", "port", "up",
	       h->port.rx_pkts, h->port.rx_bytes, h->port.tx_pkts, h->port.tx_bytes);
	for (uint32_t i = 0; i < h->nqueues; i++)
		printf("  queue %-6" PRIu32 " %9s %12" PRIu64 " %14" PRIu64 " %12" PRIu64 " %14" PRIu64 "\n",
		       i, "", q[i].rx_pkts, q[i].rx_bytes, q[i].tx_pkts, q[i].tx_bytes);
	for (uint32_t i = 0; i < h->ntenants; i++)
		printf("  tenant %-6.31s %9s %12" PRIu64 " %14" PRIu64 " %12" PRIu64 " %14" PRIu64 "\n",
		       t[i].name, t[i].connected ? "up" : "down", t[i].c.rx_pkts, t[i].c.rx_bytes,
		       t[i].c.tx_pkts, t[i].c.tx_bytes);
	printf("\nnic: rx %" PRIu64 " tx %" PRIu64 " missed %" PRIu64 " errors rx %" PRIu64 " tx %" PRIu64
	       "; arp rx %" PRIu64 " requests %" PRIu64 " replies %" PRIu64 "; echo replies %" PRIu64 "\n",
	       h->nic_ipackets, h->nic_opackets, h->nic_imissed, h->nic_ierrors, h->nic_oerrors,
	       h->arp_rx, h->arp_req_tx, h->arp_reply_tx, h->icmp_echo_tx);
	printf("\ndrops (non-zero):\n");
	table_drops("port", &h->port);
	for (uint32_t i = 0; i < h->ntenants; i++)
		table_drops(t[i].name, &t[i].c);
}

static void table_status(const struct mn_port_info *in)
{
	char mac[32], ip[32];

	mac_str(in->mac, mac, sizeof(mac));
	printf("machnet-nicd %s: up %.0f s, pid %" PRIu32 ", generation %08" PRIx32 "\n", in->version,
	       in->uptime_ns / 1e9, in->pid, in->generation);
	printf("  device     %s (%s)\n  mac        %s\n  mtu        %u\n  queues     %u\n  poll mode  %s\n",
	       in->device, in->driver, mac, in->mtu, in->nqueues,
	       in->poll_mode < 3 ? poll_names[in->poll_mode] : "?");
	for (uint32_t i = 0; i < in->nips && i < 8; i++) {
		ip_str(in->ips[i], ip, sizeof(ip));
		printf("  address    %s/%u\n", ip, in->prefix_len[i]);
	}
}

static int valid_stats(const struct mn_ctl_msg *m)
{
	const struct mn_port_stats_hdr *h = m->payload;

	if (m->hdr.len < sizeof(*h) || h->nqueues > MN_PORT_MAX_QUEUES || h->ntenants > 4096 ||
	    m->hdr.len != sizeof(*h) + h->nqueues * sizeof(struct mn_port_counters) +
				  h->ntenants * sizeof(struct mn_port_tenant_stats))
		return -EBADMSG;
	return 0;
}

static int cmd(const char *rundir, const char *what, bool json)
{
	struct mn_ctl_msg info, st;
	struct mn_port_info in;
	int fd = nicd_open(rundir), err;

	if (fd < 0) {
		if (json && strcmp(what, "status") == 0)
			printf("{\"nicd\": null, \"error\": \"%s\"}\n", strerror(-fd));
		return exit_for(fd);
	}
	err = request(fd, MN_PORT_T_INFO, &info);
	if (err == 0 && info.hdr.len != sizeof(in))
		err = -EBADMSG;
	if (err) {
		fprintf(stderr, "machnetctl: INFO failed: %s\n", strerror(-err));
		close(fd);
		return exit_for(err);
	}
	memcpy(&in, info.payload, sizeof(in));
	in.version[sizeof(in.version) - 1] = in.driver[sizeof(in.driver) - 1] = '\0';
	in.device[sizeof(in.device) - 1] = '\0';
	mn_ctl_msg_free(&info);
	if (strcmp(what, "status") == 0) {
		if (json) {
			printf("{");
			json_info(&in);
			printf("}\n");
		} else {
			table_status(&in);
		}
		close(fd);
		return 0;
	}
	err = request(fd, MN_PORT_T_STATS, &st);
	err = err ? err : valid_stats(&st);
	close(fd);
	if (err) {
		fprintf(stderr, "machnetctl: STATS failed: %s\n", strerror(-err));
		return exit_for(err);
	}
	{
		const struct mn_port_stats_hdr *h = st.payload;
		const struct mn_port_counters *q = (const void *)(h + 1);
		const struct mn_port_tenant_stats *t = (const void *)(q + h->nqueues);

		if (json)
			json_stats(&in, h, q, t);
		else
			table_stats(h, q, t);
	}
	mn_ctl_msg_free(&st);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "runtime-dir", 1, 0, 'r' }, { "json", 0, 0, 'j' },
		{ "help", 0, 0, 'h' },	      { "version", 0, 0, 'V' },
		{ 0, 0, 0, 0 },
	};
	const char *rundir = "/run/machnet";
	bool json = false;
	int c;

	while ((c = getopt_long(argc, argv, "+r:jhV", lo, NULL)) != -1) {
		switch (c) {
		case 'r': rundir = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("machnetctl %s\n", MACHNET_VERSION); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	/* Options may also follow the command ("stats --json"). */
	for (int i = optind + 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0) {
			json = true;
		} else {
			fprintf(stderr, "machnetctl: unexpected argument '%s'\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc || (strcmp(argv[optind], "status") && strcmp(argv[optind], "stats"))) {
		usage(stderr);
		return EXIT_USAGE;
	}
	mn_log_set_level(MN_LOG_WARN);
	return cmd(rundir, argv[optind], json);
}
