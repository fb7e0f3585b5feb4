/* SPDX-License-Identifier: MIT */
/*
 * machnetctl: the admin CLI. It talks to machnet-nicd and manages the
 * protocol servers (machnet-proto, one per tenant):
 *   status                 is nicd up; version, device, addresses, poll mode;
 *                          each protocol server up/down, version, uptime
 *   stats [--json]         port, queue and tenant counters, drops by reason,
 *                          and each protocol server's counters and flows
 *   flows [NAME] [--json]  every flow of the protocol servers (mctl_proto.c)
 *   stats --watch [S]      the same every S seconds (default 1) until Ctrl-C
 *   ports [--json]         nicd's port claims (tenant, address, port range)
 *   arp [--json]           nicd's neighbour cache (address, MAC, state, age)
 *   ping [-c N] [-i MS] [-W MS] [-s SIZE] [--json] IP
 *                          ICMP echo sent by nicd through its port, like ping
 *   tenant start NAME      spawn machnet-proto -c CONFIG_DIR/NAME.ini, detached
 *                          (log DIR/NAME.log, pid DIR/NAME.pid), wait until
 *                          DIR/NAME.sock answers HELLO + PING (5 s)
 *   tenant stop NAME       SIGTERM it (SIGKILL after 5 s), remove the pid file
 *   tenant restart NAME    stop (if running), then start
 *   tenant list [NAME]     tenants found in DIR / CONFIG_DIR: up/down, pid, uptime
 * Under systemd (machnet-proto@NAME active; for start, also enabled),
 * start/stop/restart go through systemctl instead.
 * Exit codes: 0 ok, 1 the server answered with an error (or a tenant did
 * not come up), 2 usage, 3 not running (nicd, or the tenant for stop),
 * 4 permission denied.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "mctl.h"
#include "mctl_proto.h"
#include "port.h"
#include "tenant.h"

#ifndef MACHNET_VERSION
#define MACHNET_VERSION "0.1.0"
#endif

#define TENANT_WAIT_MS 5000
#define PROTO_TENANTS_DIR "/etc/machnet/tenants" /* as servers/proto_config.h */

static const char *const poll_names[] = { "busy", "yield", "adaptive" };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: machnetctl [OPTIONS] COMMAND [ARGS] [--json]\n"
		"commands:\n"
		"  status                whether machnet-nicd runs; version, device, addresses, poll\n"
		"                        mode; each protocol server up/down, version, uptime\n"
		"  stats                 nicd's port, queue and tenant counters with drops by reason;\n"
		"                        each protocol server's counters and flows\n"
		"  flows [NAME]          the flows of every protocol server (or of tenant NAME): addresses,\n"
		"                        state, RTT, RTO, cwnd, messages, bytes, retransmits, timeouts\n"
		"  stats --watch [SECONDS]  redraw every SECONDS (default 1) until Ctrl-C; with --json\n"
		"                        one object per interval\n"
		"  ports                 port claims in nicd: tenant, address, port range\n"
		"  arp                   nicd's neighbour cache: address, MAC, state, age\n"
		"  ping [-c COUNT] [-i INTERVAL_MS] [-W TIMEOUT_MS] [-s SIZE] IP\n"
		"                        ICMP echo requests to IP sent by machnet-nicd through its port\n"
		"                        (not the kernel), one at a time: COUNT (default 4), INTERVAL_MS\n"
		"                        (1000) after each answer, each waiting TIMEOUT_MS (1..10000,\n"
		"                        default 1000) for its reply once sent, SIZE data bytes (56); a\n"
		"                        line per echo and a summary; exit 0 if any reply came, 1 if none\n"
		"  tenant start NAME     spawn machnet-proto -c CONFIG_DIR/NAME.ini detached (log\n"
		"                        DIR/NAME.log, pid DIR/NAME.pid); wait up to 5 s for DIR/NAME.sock\n"
		"                        to answer; exit 1 with the log's tail if it does not\n"
		"  tenant stop NAME      SIGTERM the server (SIGKILL after 5 s); exit 3 if not running\n"
		"  tenant restart NAME   stop (if running), then start\n"
		"  tenant list [NAME]    tenants in DIR and CONFIG_DIR: up/down, pid, uptime\n"
		"  When machnet-proto@NAME is active under systemd (or, for start, enabled),\n"
		"  start/stop/restart use systemctl.\n"
		"options:\n"
		"  -r, --runtime-dir DIR  where the servers' sockets are (default /run/machnet); also\n"
		"                         passed to machnet-proto when given\n"
		"  -c, --config-dir DIR   tenant configs NAME.ini (default " PROTO_TENANTS_DIR ")\n"
		"  -p, --proto PATH       the machnet-proto binary (default: next to machnetctl, or PATH)\n"
		"  -j, --json             one JSON object instead of tables\n"
		"  -h, --help             this text;  -V, --version\n"
		"exit status: 0 ok, 1 error answered or tenant failed to start, 2 usage,\n"
		"             3 not running, 4 permission denied\n");
}

static int nicd_open(const char *rundir)
{
	char path[512];
	struct mn_ctl_hello peer;
	int fd, err;

	snprintf(path, sizeof(path), "%s/nicd.sock", rundir);
	fd = mn_ctl_connect(path, MCTL_TIMEOUT_MS);
	if (fd < 0) {
		fprintf(stderr, "machnetctl: cannot reach machnet-nicd at %s: %s%s\n", path,
			strerror(-fd),
			fd == -ENOENT || fd == -ECONNREFUSED ? " (is it running? systemctl status machnet-nicd)" :
			fd == -EACCES ? " (run as root or as a member of the socket's group)" : "");
		return fd;
	}
	err = mn_ctl_hello(fd, MN_PORT_ROLE_ADMIN, "machnetctl", &peer, MCTL_TIMEOUT_MS);
	if (err < 0) {
		fprintf(stderr, "machnetctl: machnet-nicd refused us: %s\n", strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

static int request(int fd, uint16_t type, struct mn_ctl_msg *m)
{
	int err = mn_ctl_send(fd, type, 1, 0, NULL, 0, NULL, 0, MCTL_TIMEOUT_MS);

	err = err ? err : mn_ctl_recv(fd, m, MCTL_TIMEOUT_MS);
	if (err)
		return err;
	if (m->hdr.type != type || m->hdr.status < 0) {
		err = m->hdr.status < 0 ? m->hdr.status : -EPROTO;
		mn_ctl_msg_free(m);
	}
	return err;
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

		mctl_ip_str(in->ips[i], ip, sizeof(ip));
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
	printf("]");
}

/* ---- tables ------------------------------------------------------------------ */

static void table_drops(const char *who, const struct mn_port_counters *c)
{
	for (unsigned int i = 0; i < MN_DROP_MAX; i++)
		if (c->drops[i])
			printf("  %-12.31s %-14s %12" PRIu64 "\n", who, mn_drop_name(i), c->drops[i]);
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

/*
 * The protocol servers: those with a socket in @rundir and those nicd knows
 * (@t, @nt: a tenant registered with nicd but without a socket is down).
 */
static void servers_out(const char *rundir, const struct mn_port_tenant_stats *t, uint32_t nt,
			bool flows, bool json)
{
	char (*names)[32] = calloc(nt ? nt : 1, sizeof(*names));
	struct mctl_tenant *s = NULL;
	int n;

	for (uint32_t i = 0; names && i < nt; i++)
		snprintf(names[i], sizeof(names[i]), "%.31s", t[i].name);
	n = mctl_tenants_query(rundir, NULL, (const char (*)[32])names, names ? nt : 0, flows, &s);
	free(names);
	if (n < 0) {
		fprintf(stderr, "machnetctl: protocol servers: %s\n", strerror(-n));
		n = 0;
	}
	if (json) {
		printf(", \"servers\": [");
		mctl_tenants_json(s, n, flows);
		printf("]");
	} else if (n > 0) {
		printf("\n");
		mctl_tenants_table(s, n);
		if (flows) {
			printf("\nflows:\n");
			mctl_flows_table(s, n);
		}
	}
	mctl_tenants_free(s, n);
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
		mctl_ip_str(in->ips[i], ip, sizeof(ip));
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
		/* Protocol servers keep running without nicd: still show them. */
		if (strcmp(what, "status") == 0) {
			if (json)
				printf("{\"nicd\": null, \"error\": \"%s\"", strerror(-fd));
			else
				printf("machnet-nicd: down (%s)\n", strerror(-fd));
			servers_out(rundir, NULL, 0, false, json);
			if (json)
				printf("}\n");
		}
		return mctl_exit_for(fd);
	}
	err = request(fd, MN_PORT_T_INFO, &info);
	if (err == 0 && info.hdr.len != sizeof(in))
		err = -EBADMSG;
	if (err) {
		fprintf(stderr, "machnetctl: INFO failed: %s\n", strerror(-err));
		close(fd);
		return mctl_exit_for(err);
	}
	memcpy(&in, info.payload, sizeof(in));
	mctl_printable(in.version, sizeof(in.version));
	mctl_printable(in.driver, sizeof(in.driver));
	mctl_printable(in.device, sizeof(in.device));
	mn_ctl_msg_free(&info);
	if (strcmp(what, "status") == 0) {
		close(fd);
		if (json) {
			printf("{");
			json_info(&in);
		} else {
			table_status(&in);
		}
		servers_out(rundir, NULL, 0, false, json);
		if (json)
			printf("}\n");
		return 0;
	}
	err = request(fd, MN_PORT_T_STATS, &st);
	err = err ? err : valid_stats(&st);
	close(fd);
	if (err) {
		fprintf(stderr, "machnetctl: STATS failed: %s\n", strerror(-err));
		return mctl_exit_for(err);
	}
	{
		const struct mn_port_stats_hdr *h = st.payload;
		const struct mn_port_counters *q = (const void *)(h + 1);
		struct mn_port_tenant_stats *t = (void *)((char *)st.payload + sizeof(*h) +
							  h->nqueues * sizeof(*q));

		for (uint32_t i = 0; i < h->ntenants; i++)
			mctl_printable(t[i].name, sizeof(t[i].name));
		if (json)
			json_stats(&in, h, q, t);
		else
			table_stats(h, q, t);
		servers_out(rundir, t, h->ntenants, true, json);
		if (json)
			printf("}\n");
	}
	mn_ctl_msg_free(&st);
	return 0;
}

/* ---- stats --watch ------------------------------------------------------------ */

static volatile sig_atomic_t stop_watch;

static void on_sigint(int sig)
{
	(void)sig;
	stop_watch = 1;
}

/* Redraw (or print one JSON object) every @secs until SIGINT/SIGTERM. */
static int watch_stats(const char *rundir, bool json, double secs)
{
	struct sigaction sa = { .sa_handler = on_sigint };
	int rc = 0;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!stop_watch) {
		struct timespec ts = { .tv_sec = (time_t)secs,
				       .tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9) };

		if (!json)
			printf("\033[H\033[2J");
		rc = cmd(rundir, "stats", json);
		fflush(stdout);
		if (rc)
			return rc;
		while (!stop_watch && nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	return 0;
}

/* ---- ports, arp ---------------------------------------------------------------- */

static const char *neigh_state_name(unsigned int s)
{
	static const char *const names[] = { "?", "incomplete", "reachable", "stale", "failed" };

	return s < 5 ? names[s] : "?";
}

static int cmd_list(const char *rundir, bool ports, bool json)
{
	const size_t esz = ports ? sizeof(struct mn_port_claim_entry) : sizeof(struct mn_port_neigh_entry);
	const struct mn_port_list_hdr *h;
	struct mn_ctl_msg m;
	int fd = nicd_open(rundir), err;
	char ip[32], mac[32];

	if (fd < 0)
		return mctl_exit_for(fd);
	err = request(fd, ports ? MN_PORT_T_PORTS : MN_PORT_T_NEIGH, &m);
	close(fd);
	if (err == 0) {
		h = m.payload;
		if (m.hdr.len < sizeof(*h) || m.hdr.len != sizeof(*h) + (size_t)h->count * esz) {
			mn_ctl_msg_free(&m);
			err = -EBADMSG;
		}
	}
	if (err) {
		fprintf(stderr, "machnetctl: %s failed: %s%s\n", ports ? "PORTS" : "NEIGH",
			strerror(-err), err == -EBADMSG || err == -EINVAL ?
			" (is machnet-nicd older than machnetctl?)" : "");
		return mctl_exit_for(err);
	}
	if (json)
		printf("{\"truncated\": %s, \"%s\": [",
		       h->flags & MN_PORT_LIST_F_TRUNCATED ? "true" : "false", ports ? "ports" : "neighbours");
	else if (ports)
		printf("%-16s %-15s %s\n", "tenant", "address", "ports");
	else
		printf("%-15s %-17s %-10s %s\n", "address", "mac", "state", "age");
	for (uint32_t i = 0; i < h->count; i++) {
		if (ports) {
			struct mn_port_claim_entry *e = (void *)((char *)m.payload + sizeof(*h) + i * esz);

			mctl_printable(e->tenant, sizeof(e->tenant));
			mctl_ip_str(e->ip, ip, sizeof(ip));
			if (json)
				printf("%s{\"tenant\": \"%.31s\", \"ip\": \"%s\", \"port_lo\": %u, \"port_hi\": %u}",
				       i ? ", " : "", e->tenant, ip, e->port_lo, e->port_hi);
			else if (e->port_lo == e->port_hi)
				printf("%-16.31s %-15s %u\n", e->tenant, ip, e->port_lo);
			else
				printf("%-16.31s %-15s %u-%u\n", e->tenant, ip, e->port_lo, e->port_hi);
		} else {
			const struct mn_port_neigh_entry *e = (const void *)((const char *)(h + 1) + i * esz);

			mctl_ip_str(e->ip, ip, sizeof(ip));
			mac_str(e->mac, mac, sizeof(mac));
			if (json)
				printf("%s{\"ip\": \"%s\", \"mac\": \"%s\", \"state\": \"%s\", \"age_ms\": %" PRIu64 "}",
				       i ? ", " : "", ip, mac, neigh_state_name(e->state), e->age_ms);
			else
				printf("%-15s %-17s %-10s %.1f s\n", ip, mac, neigh_state_name(e->state),
				       e->age_ms / 1e3);
		}
	}
	if (json)
		printf("]}\n");
	else if (h->flags & MN_PORT_LIST_F_TRUNCATED)
		printf("(list truncated to %" PRIu32 " entries)\n", h->count);
	mn_ctl_msg_free(&m);
	return 0;
}

/* ---- tenants: machnet-proto processes ----------------------------------------- */

struct tctx {
	const char *rundir, *confdir, *proto;
	bool rundir_given, json;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* DIR/NAME.EXT into @out; a path too long is cut (and then simply not found). */
static void tpath(char *out, size_t len, const char *dir, const char *name, const char *ext)
{
	if ((size_t)snprintf(out, len, "%s/%s%s", dir, name, ext) >= len)
		out[len - 1] = '\0';
}

static bool valid_name(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len >= MN_CTL_NAME_MAX)
		return false;
	for (const char *c = n; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
			return false;
	return true;
}

/* 0 if the tenant socket at @path answers HELLO (as machnetctl, for @name) and PING. */
static int tenant_ping(const char *path, const char *name, int timeout_ms)
{
	struct mn_ctl_hello peer;
	struct mn_ctl_msg m;
	int fd = mn_ctl_connect(path, timeout_ms), err;

	if (fd < 0)
		return fd;
	/* As an admin: admin slots stay free when every channel is in use. */
	err = mn_ctl_hello(fd, MN_TENANT_ROLE_ADMIN, name, &peer, timeout_ms);
	if (err > 0) /* the agreed version */
		err = 0;
	if (err == 0)
		err = mn_ctl_send(fd, MN_CTL_T_PING, 1, 0, NULL, 0, NULL, 0, timeout_ms);
	if (err == 0) {
		err = mn_ctl_recv(fd, &m, timeout_ms);
		if (err == 0) {
			if (m.hdr.type != MN_CTL_T_PING)
				err = -EPROTO;
			else if (m.hdr.status < 0)
				err = m.hdr.status;
			mn_ctl_msg_free(&m);
		}
	}
	close(fd);
	return err;
}

/* The pid in DIR/NAME.pid, 0 if none. */
static pid_t read_pid(const char *pidfile)
{
	FILE *f = fopen(pidfile, "r");
	long v = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%ld", &v) != 1 || v <= 0 || v > INT_MAX)
		v = 0;
	fclose(f);
	return (pid_t)v;
}

/* Process state letter from /proc/PID/stat ('\0' if gone) and its start time in ticks. */
static char proc_state(pid_t pid, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	char st = '\0';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return '\0';
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) != NULL) {
		unsigned long long t = 0;

		/* ") S ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
		 *  stime cutime cstime priority nice nthreads itrealvalue starttime" */
		if (sscanf(p + 1, " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s"
				  " %*s %*s %llu", &st, &t) >= 1 && start)
			*start = t;
	}
	fclose(f);
	return st;
}

static bool alive(pid_t pid)
{
	char st = proc_state(pid, NULL);

	return st != '\0' && st != 'Z' && st != 'X';
}

/* Whether @pid runs machnet-proto (argv[0]'s basename). */
static bool is_proto(pid_t pid)
{
	char path[64], buf[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(basename(buf), "machnet-proto") != NULL;
}

/* Seconds since @pid started, < 0 if unknown. */
static double uptime_of(pid_t pid)
{
	unsigned long long start = 0;
	double up = -1;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;

	if (!proc_state(pid, &start) || hz <= 0 || !start)
		return -1;
	f = fopen("/proc/uptime", "r");
	if (!f)
		return -1;
	if (fscanf(f, "%lf", &up) != 1)
		up = -1;
	fclose(f);
	return up < 0 ? -1 : up - (double)start / (double)hz;
}

/* The running machnet-proto of the pid file, 0 if none. */
static pid_t running_pid(const char *pidfile)
{
	pid_t pid = read_pid(pidfile);

	return pid > 0 && alive(pid) && is_proto(pid) ? pid : 0;
}

/* Runs argv with stdout/stderr to /dev/null (unless @loud); its exit status, -1 if not run. */
static int run_quiet(char *const argv[], bool loud)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			if (!loud) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* systemctl is-active / is-enabled --quiet machnet-proto@NAME, if systemd runs. */
static bool unit_is(const char *what, const char *name)
{
	char unit[128], w[16];
	char *argv[] = { "systemctl", w, "--quiet", unit, NULL };

	if (access("/run/systemd/system", F_OK) != 0)
		return false;
	snprintf(unit, sizeof(unit), "machnet-proto@%s", name);
	snprintf(w, sizeof(w), "%s", what);
	return run_quiet(argv, false) == 0;
}

static bool under_systemd(const char *name)
{
	return unit_is("is-active", name);
}

static int systemctl(const char *verb, const char *name)
{
	char unit[128], v[16];
	char *argv[] = { "systemctl", v, unit, NULL };
	int rc;

	snprintf(unit, sizeof(unit), "machnet-proto@%s", name);
	snprintf(v, sizeof(v), "%s", verb);
	printf("tenant %s: managed by systemd: systemctl %s %s\n", name, verb, unit);
	fflush(stdout);
	rc = run_quiet(argv, true);
	if (rc != 0)
		fprintf(stderr, "machnetctl: systemctl %s %s failed (status %d); see journalctl -u %s\n",
			verb, unit, rc, unit);
	return rc == 0 ? 0 : EXIT_ERR;
}

static bool executable_file(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/* The machnet-proto binary: --proto, next to us (or the build tree's servers/), or PATH. */
static int find_proto(const struct tctx *t, char *out, size_t len)
{
	char self[PATH_MAX], *dir;
	const char *path = getenv("PATH");
	ssize_t n;

	if (t->proto) {
		snprintf(out, len, "%s", t->proto);
		return executable_file(out) ? 0 : -ENOENT;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		dir = dirname(self);
		snprintf(out, len, "%s/machnet-proto", dir);
		if (executable_file(out))
			return 0;
		snprintf(out, len, "%s/../servers/machnet-proto", dir); /* the build tree */
		if (executable_file(out)) {
			char *r = realpath(out, NULL);

			if (r) {
				snprintf(out, len, "%s", r);
				free(r);
			}
			return 0;
		}
	}
	while (path && *path) {
		const char *e = strchr(path, ':');
		int l = e ? (int)(e - path) : (int)strlen(path);

		snprintf(out, len, "%.*s/machnet-proto", l, l ? path : ".");
		if (executable_file(out))
			return 0;
		path = e ? e + 1 : NULL;
	}
	return -ENOENT;
}

static void print_tail(const char *logfile, int lines)
{
	char buf[16384];
	ssize_t n;
	int fd = open(logfile, O_RDONLY | O_CLOEXEC), seen = 0;
	off_t size;
	char *p;

	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(buf) - 1)
		lseek(fd, size - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	p = buf + n;
	if (p > buf && p[-1] == '\n')
		p--;
	while (p > buf) {
		if (p[-1] == '\n' && ++seen == lines)
			break;
		p--;
	}
	fprintf(stderr, "--- last lines of %s:\n%s", logfile, p);
	if (buf[n - 1] != '\n')
		fputc('\n', stderr);
}

static int tenant_start(const struct tctx *t, const char *name)
{
	char conf[PATH_MAX], sock[PATH_MAX], pidf[PATH_MAX], logf[PATH_MAX], bin[PATH_MAX], tmp[PATH_MAX];
	pid_t pid;
	long long deadline;
	int err = -ETIMEDOUT, st, fd;
	FILE *f;

	if (under_systemd(name)) {
		printf("tenant %s: already running under systemd (machnet-proto@%s is active)\n", name,
		       name);
		return 0;
	}
	tpath(conf, sizeof(conf), t->confdir, name, ".ini");
	tpath(sock, sizeof(sock), t->rundir, name, ".sock");
	tpath(pidf, sizeof(pidf), t->rundir, name, ".pid");
	tpath(logf, sizeof(logf), t->rundir, name, ".log");
	pid = running_pid(pidf);
	if (pid) {
		printf("tenant %s: already running (pid %d)\n", name, (int)pid);
		return 0;
	}
	if (tenant_ping(sock, name, 500) == 0) {
		printf("tenant %s: already running (%s answers; not started by machnetctl)\n", name, sock);
		return 0;
	}
	/* An enabled unit means the admin chose systemd for this tenant (its
	 * unit names the config and runtime directory, not our options). */
	if (unit_is("is-enabled", name))
		return systemctl("start", name);
	if (access(conf, R_OK) != 0) {
		fprintf(stderr, "machnetctl: tenant %s: cannot read %s: %s\n", name, conf, strerror(errno));
		return errno == EACCES ? EXIT_PERM : EXIT_ERR;
	}
	if (find_proto(t, bin, sizeof(bin)) < 0) {
		fprintf(stderr, "machnetctl: machnet-proto not found%s%s (next to machnetctl, nor in PATH); "
				"use --proto PATH\n", t->proto ? " at " : "", t->proto ? t->proto : "");
		return EXIT_ERR;
	}
	if (mkdir(t->rundir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "machnetctl: cannot create %s: %s\n", t->rundir, strerror(errno));
		return errno == EACCES ? EXIT_PERM : EXIT_ERR;
	}
	fd = open(logf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0) {
		fprintf(stderr, "machnetctl: cannot open %s: %s\n", logf, strerror(errno));
		return errno == EACCES ? EXIT_PERM : EXIT_ERR;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "machnetctl: fork: %s\n", strerror(errno));
		close(fd);
		return EXIT_ERR;
	}
	if (pid == 0) {
		char *argv[8];
		int a = 0, nul = open("/dev/null", O_RDONLY);

		setsid();
		if (nul >= 0)
			dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		argv[a++] = bin;
		argv[a++] = "-c";
		argv[a++] = conf;
		if (t->rundir_given) {
			argv[a++] = "--runtime-dir";
			argv[a++] = (char *)t->rundir;
		}
		argv[a] = NULL;
		execv(bin, argv);
		dprintf(2, "machnetctl: cannot run %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	close(fd);
	tpath(tmp, sizeof(tmp), t->rundir, name, ".pid.tmp");
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f) != 0 || rename(tmp, pidf) != 0)
		fprintf(stderr, "machnetctl: warning: cannot write %s: %s\n", pidf, strerror(errno));
	printf("tenant %s: starting %s -c %s (pid %d, log %s)\n", name, bin, conf, (int)pid, logf);
	fflush(stdout);
	deadline = now_ms() + TENANT_WAIT_MS;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid) {
			fprintf(stderr, "machnetctl: tenant %s: machnet-proto exited during start-up (%s %d)\n",
				name, WIFEXITED(st) ? "status" : "signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			print_tail(logf, 15);
			unlink(pidf);
			return EXIT_ERR;
		}
		err = tenant_ping(sock, name, 300);
		if (err == 0)
			break;
		if (now_ms() >= deadline)
			break;
		sleep_ms(50);
	}
	if (err) {
		fprintf(stderr, "machnetctl: tenant %s: %s did not answer within %d s (%s); "
				"machnet-proto (pid %d) left running\n",
			name, sock, TENANT_WAIT_MS / 1000, strerror(-err), (int)pid);
		print_tail(logf, 15);
		return EXIT_ERR;
	}
	printf("tenant %s: up (pid %d, socket %s)\n", name, (int)pid, sock);
	return 0;
}

static int tenant_stop(const struct tctx *t, const char *name, bool quiet_if_down)
{
	char pidf[PATH_MAX];
	pid_t pid;
	long long deadline;
	bool killed = false;

	if (under_systemd(name))
		return systemctl("stop", name);
	tpath(pidf, sizeof(pidf), t->rundir, name, ".pid");
	pid = read_pid(pidf);
	if (pid > 0 && alive(pid) && !is_proto(pid)) {
		fprintf(stderr, "machnetctl: tenant %s: pid %d in %s is not machnet-proto: stale pid file removed\n",
			name, (int)pid, pidf);
		pid = 0;
		unlink(pidf);
	} else if (pid > 0 && !alive(pid)) {
		pid = 0;
		unlink(pidf);
	}
	if (pid <= 0) {
		if (!quiet_if_down)
			fprintf(stderr, "machnetctl: tenant %s: not running (no live pid in %s)\n", name, pidf);
		return EXIT_DOWN;
	}
	if (kill(pid, SIGTERM) < 0) {
		fprintf(stderr, "machnetctl: tenant %s: kill %d: %s\n", name, (int)pid, strerror(errno));
		return errno == EPERM ? EXIT_PERM : EXIT_ERR;
	}
	deadline = now_ms() + TENANT_WAIT_MS;
	while (alive(pid)) {
		if (now_ms() >= deadline) {
			if (killed) {
				fprintf(stderr, "machnetctl: tenant %s: pid %d survives SIGKILL\n", name, (int)pid);
				return EXIT_ERR;
			}
			fprintf(stderr, "machnetctl: tenant %s: pid %d ignored SIGTERM for %d s: sending SIGKILL\n",
				name, (int)pid, TENANT_WAIT_MS / 1000);
			kill(pid, SIGKILL);
			killed = true;
			deadline = now_ms() + 2000;
		}
		sleep_ms(20);
	}
	unlink(pidf);
	printf("tenant %s: stopped (pid %d%s)\n", name, (int)pid, killed ? ", killed" : "");
	return 0;
}

static int tenant_restart(const struct tctx *t, const char *name)
{
	int rc;

	if (under_systemd(name))
		return systemctl("restart", name);
	rc = tenant_stop(t, name, true);
	if (rc != 0 && rc != EXIT_DOWN)
		return rc;
	return tenant_start(t, name);
}

/* Whether @path looks like a tenant config (has a [tenant] section). */
static bool tenant_conf(const char *path)
{
	char line[512];
	bool yes = false;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (!yes && fgets(line, sizeof(line), f)) {
		char *p = line;

		while (*p == ' ' || *p == '\t')
			p++;
		yes = strncmp(p, "[tenant]", 8) == 0;
	}
	fclose(f);
	return yes;
}

#define LIST_MAX 256

static int add_names(const char *dir, const char *const *exts, char (*names)[MN_CTL_NAME_MAX], int n,
		     bool confs)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return n;
	while ((e = readdir(d)) != NULL && n < LIST_MAX) {
		char nm[MN_CTL_NAME_MAX], path[PATH_MAX];
		const char *dot = strrchr(e->d_name, '.');
		bool match = false, dup = false;

		if (!dot || dot == e->d_name || (size_t)(dot - e->d_name) >= sizeof(nm))
			continue;
		for (int i = 0; exts[i]; i++)
			match |= strcmp(dot, exts[i]) == 0;
		if (!match)
			continue;
		snprintf(nm, sizeof(nm), "%.*s", (int)(dot - e->d_name), e->d_name);
		if (!valid_name(nm) || strcmp(nm, "nicd") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (confs && !tenant_conf(path))
			continue;
		for (int i = 0; i < n && !dup; i++)
			dup = strcmp(names[i], nm) == 0;
		if (!dup)
			snprintf(names[n++], MN_CTL_NAME_MAX, "%s", nm);
	}
	closedir(d);
	return n;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int tenant_list(const struct tctx *t, const char *only)
{
	static const char *const rt_exts[] = { ".sock", ".pid", NULL };
	static const char *const conf_exts[] = { ".ini", NULL };
	static char names[LIST_MAX][MN_CTL_NAME_MAX];
	int n = 0;

	if (only) {
		snprintf(names[n++], MN_CTL_NAME_MAX, "%s", only);
	} else {
		n = add_names(t->rundir, rt_exts, names, n, false);
		n = add_names(t->confdir, conf_exts, names, n, true);
		qsort(names, (size_t)n, sizeof(names[0]), cmp_names);
	}
	if (t->json)
		printf("{\"runtime_dir\": \"%s\", \"config_dir\": \"%s\", \"tenants\": [", t->rundir,
		       t->confdir);
	else
		printf("%-20s %-5s %8s %10s  %s\n", "TENANT", "STATE", "PID", "UPTIME", "SOCKET");
	for (int i = 0; i < n; i++) {
		char sock[PATH_MAX], pidf[PATH_MAX], pidbuf[16] = "-", upbuf[32] = "-";
		pid_t pid;
		bool up;
		double upt = -1;

		tpath(sock, sizeof(sock), t->rundir, names[i], ".sock");
		tpath(pidf, sizeof(pidf), t->rundir, names[i], ".pid");
		up = tenant_ping(sock, names[i], 500) == 0;
		pid = running_pid(pidf);
		if (pid) {
			snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
			upt = uptime_of(pid);
			if (upt >= 0)
				snprintf(upbuf, sizeof(upbuf), "%.0fs", upt);
		}
		if (t->json) {
			printf("%s{\"name\": \"%s\", \"state\": \"%s\", \"up\": %s, \"pid\": ", i ? ", " : "",
			       names[i], up ? "up" : "down", up ? "true" : "false");
			if (pid)
				printf("%d", (int)pid);
			else
				printf("null");
			printf(", \"uptime_s\": ");
			if (upt >= 0)
				printf("%.1f", upt);
			else
				printf("null");
			printf(", \"socket\": \"%s\"}", sock);
		} else {
			printf("%-20s %-5s %8s %10s  %s\n", names[i], up ? "up" : "down", pidbuf, upbuf, sock);
		}
	}
	if (t->json)
		printf("]}\n");
	else if (n == 0)
		printf("(no tenants in %s or %s)\n", t->rundir, t->confdir);
	return 0;
}

static int tenant_cmd(struct tctx *t, int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : NULL, *name = argc > 1 ? argv[1] : NULL;

	if (!verb || argc > 2) {
		fprintf(stderr, "machnetctl: usage: tenant start|stop|restart NAME | tenant list [NAME]\n");
		return EXIT_USAGE;
	}
	if (name && !valid_name(name)) {
		fprintf(stderr, "machnetctl: bad tenant name '%s' ([a-z0-9_-], 1..31 characters)\n", name);
		return EXIT_USAGE;
	}
	if (strcmp(verb, "list") == 0)
		return tenant_list(t, name);
	if (!name) {
		fprintf(stderr, "machnetctl: tenant %s needs a NAME\n", verb);
		return EXIT_USAGE;
	}
	if (strcmp(verb, "start") == 0)
		return tenant_start(t, name);
	if (strcmp(verb, "stop") == 0)
		return tenant_stop(t, name, false);
	if (strcmp(verb, "restart") == 0)
		return tenant_restart(t, name);
	fprintf(stderr, "machnetctl: unknown tenant command '%s' (start, stop, restart, list)\n", verb);
	return EXIT_USAGE;
}

/* ---- ping: ICMP echo sent by machnet-nicd through its port --------------------- */

#define PING_SLACK_MS 65000 /* beyond -W: nicd's ARP limit (60 s at most) and a margin */

struct ping_opts {
	const char *target;
	uint32_t ip; /* host order */
	unsigned int count, interval_ms, timeout_ms, size;
	bool json;
};

struct ping_tally {
	unsigned int sent, received;
	double min_ms, max_ms, sum_ms;
	int fatal;	   /* the error that ended the run, 0 if none */
	char fatal_msg[200];
};

static volatile sig_atomic_t ping_stop;

static void ping_on_sigint(int sig)
{
	(void)sig;
	ping_stop = 1;
}

static int ping_uint(const char *opt, const char *s, unsigned int lo, unsigned int hi,
		     unsigned int *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end || errno || v < lo || v > hi) {
		fprintf(stderr, "machnetctl: ping %s wants a number %u..%u, not '%s'\n", opt, lo, hi, s);
		return -EINVAL;
	}
	*out = (unsigned int)v;
	return 0;
}

/* Parse "ping [OPTIONS] IP" (@argv[0] is "ping"). Returns 0, 1 (help shown)
 * or -EINVAL (reported). */
static int ping_parse(int argc, char **argv, struct ping_opts *o)
{
	static const struct option lo[] = {
		{ "count", 1, 0, 'c' }, { "interval", 1, 0, 'i' }, { "timeout", 1, 0, 'W' },
		{ "size", 1, 0, 's' },	{ "json", 0, 0, 'j' },	   { "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct in_addr a;
	int c, err = 0;

	optind = 0; /* glibc: start over on this argv */
	opterr = 0;
	while (err == 0 && (c = getopt_long(argc, argv, ":c:i:W:s:jh", lo, NULL)) != -1) {
		switch (c) {
		case 'c': err = ping_uint("-c", optarg, 1, 1000000, &o->count); break;
		case 'i': err = ping_uint("-i", optarg, 0, 3600000, &o->interval_ms); break;
		case 'W': err = ping_uint("-W", optarg, 1, MN_PORT_PING_MAX_TIMEOUT_MS, &o->timeout_ms); break;
		case 's': err = ping_uint("-s", optarg, 0, MN_PORT_PING_MAX_SIZE, &o->size); break;
		case 'j': o->json = true; break;
		case 'h': usage(stdout); return 1;
		default:
			fprintf(stderr, "machnetctl: ping: %s '%s'\n",
				c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (err)
		return err;
	if (optind != argc - 1) {
		fprintf(stderr, "machnetctl: usage: ping [-c COUNT] [-i INTERVAL_MS] [-W TIMEOUT_MS] "
			"[-s SIZE] [--json] IP\n");
		return -EINVAL;
	}
	o->target = argv[optind];
	if (inet_pton(AF_INET, o->target, &a) != 1) {
		fprintf(stderr, "machnetctl: ping: '%s' is not an IPv4 address (names are not resolved)\n",
			o->target);
		return -EINVAL;
	}
	o->ip = ntohl(a.s_addr);
	return 0;
}

/* Wait until @fd is readable, up to @ms; -EINTR once Ctrl-C was pressed. */
static int ping_wait(int fd, long long ms)
{
	long long end = now_ms() + ms;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (;;) {
		long long left = end - now_ms();
		int r;

		if (ping_stop)
			return -EINTR;
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* One echo: send PING with @seq, wait for its answer. Returns 0 with @pong
 * filled, the status nicd answered, or a transport error. */
static int ping_one(int fd, const struct ping_opts *o, uint32_t seq, struct mn_port_pong *pong)
{
	struct mn_port_ping req = { .ip = o->ip, .size = (uint16_t)o->size,
				    .timeout_ms = o->timeout_ms, .seq = seq };
	struct mn_ctl_msg m;
	int err = mn_ctl_send(fd, MN_PORT_T_PING, seq, 0, &req, sizeof(req), NULL, 0, MCTL_TIMEOUT_MS);

	err = err ? err : ping_wait(fd, (long long)o->timeout_ms + PING_SLACK_MS);
	err = err ? err : mn_ctl_recv(fd, &m, MCTL_TIMEOUT_MS);
	if (err)
		return err;
	if (m.hdr.type != MN_PORT_T_PING || m.hdr.req_id != seq)
		err = -EPROTO;
	else if (m.hdr.status < 0)
		err = m.hdr.status;
	else if (m.hdr.len != sizeof(*pong))
		err = -EBADMSG;
	if (err == 0) {
		memcpy(pong, m.payload, sizeof(*pong));
		if (pong->seq != seq || pong->ip != o->ip)
			err = -EBADMSG;
	}
	mn_ctl_msg_free(&m);
	return err;
}

/* Sleep @ms unless Ctrl-C comes first. */
static void ping_pause(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (!ping_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A failed echo that does not end the run: its name for JSON and its line. */
static const char *ping_miss(int err, const struct ping_opts *o, char *line, size_t len)
{
	switch (err) {
	case -ETIMEDOUT:
		snprintf(line, len, "no reply within %u ms", o->timeout_ms);
		return "timeout";
	case -EHOSTUNREACH:
		snprintf(line, len, "unreachable: no ARP answer from the next hop (no such host on "
			 "the subnet, or the gateway is down)");
		return "unreachable";
	case -EBUSY:
		snprintf(line, len, "machnet-nicd has too many pings in flight; not sent");
		return "busy";
	case -ENOBUFS:
		snprintf(line, len, "machnet-nicd could not send it (no buffer, or the NIC queue is full)");
		return "no_buffers";
	default:
		return NULL;
	}
}

/* Why the run stops at @err, for the user. */
static void ping_fatal(struct ping_tally *t, int err, const struct ping_opts *o)
{
	const char *hint = "";

	if (err == -EMSGSIZE)
		hint = " (-s is larger than machnet-nicd's MTU - 28)";
	else if (err == -ENETUNREACH)
		hint = " (on none of machnet-nicd's subnets and no gateway configured; see machnetctl status)";
	else if (err == -EINVAL)
		hint = " (not a unicast address of another host, or a value machnet-nicd refuses; see its log)";
	else if (err == -EPERM || err == -EACCES)
		hint = " (machnet-nicd does not allow this connection to ping)";
	else if (err == -EPIPE || err == -ECONNABORTED || err == -EPROTO)
		hint = " (machnet-nicd hung up: stopped, or older than machnetctl and without PING?)";
	t->fatal = err;
	snprintf(t->fatal_msg, sizeof(t->fatal_msg), "ping %s failed: %s%s", o->target,
		 strerror(-err), hint);
}

static void ping_count_reply(struct ping_tally *t, double ms)
{
	t->min_ms = t->received == 0 || ms < t->min_ms ? ms : t->min_ms;
	t->max_ms = t->received == 0 || ms > t->max_ms ? ms : t->max_ms;
	t->sum_ms += ms;
	t->received++;
}

/* Print one echo's outcome (a line, or a JSON array element). */
static void ping_print(const struct ping_opts *o, uint32_t seq, int err,
		       const struct mn_port_pong *p, const char *miss, const char *line, bool first)
{
	double ms = err ? 0 : p->rtt_ns / 1e6;

	if (o->json && err == 0)
		printf("%s{\"seq\": %" PRIu32 ", \"status\": \"reply\", \"bytes\": %u, \"ttl\": %u, "
		       "\"time_ms\": %.3f}", first ? "" : ", ", seq, p->bytes, p->ttl, ms);
	else if (o->json)
		printf("%s{\"seq\": %" PRIu32 ", \"status\": \"%s\", \"message\": \"%s\"}",
		       first ? "" : ", ", seq, miss, line);
	else if (err == 0)
		printf("%u bytes from %s: seq=%" PRIu32 " ttl=%u time=%.3f ms\n", p->bytes, o->target,
		       seq, p->ttl, ms);
	else
		printf("%s: seq=%" PRIu32 " %s\n", o->target, seq, line);
	fflush(stdout);
}

static void ping_summary(const struct ping_opts *o, const struct ping_tally *t)
{
	double loss = t->sent ? 100.0 * (t->sent - t->received) / t->sent : 0;
	double avg = t->received ? t->sum_ms / t->received : 0;

	if (o->json) {
		printf("], \"sent\": %u, \"received\": %u, \"loss_pct\": %.1f, \"rtt_ms\": ", t->sent,
		       t->received, loss);
		if (t->received)
			printf("{\"min\": %.3f, \"avg\": %.3f, \"max\": %.3f}", t->min_ms, avg, t->max_ms);
		else
			printf("null");
		if (t->fatal)
			printf(", \"error\": \"%s\"}\n", t->fatal_msg);
		else
			printf(", \"error\": null}\n");
		return;
	}
	printf("--- %s ping statistics (through machnet-nicd) ---\n%u sent, %u received, %.0f%% loss",
	       o->target, t->sent, t->received, loss);
	if (t->received)
		printf(", rtt min/avg/max = %.3f/%.3f/%.3f ms", t->min_ms, avg, t->max_ms);
	printf("\n");
}

/* Send the echoes one at a time until done, Ctrl-C, or an error that ends the run. */
static void ping_run(int fd, const struct ping_opts *o, struct ping_tally *t)
{
	for (uint32_t seq = 1; seq <= o->count && !ping_stop; seq++) {
		struct mn_port_pong pong;
		const char *miss;
		char line[160] = "";
		int err;

		if (seq > 1)
			ping_pause(o->interval_ms);
		if (ping_stop)
			break;
		err = ping_one(fd, o, seq, &pong);
		if (err == -EINTR) {
			t->sent++; /* it left; Ctrl-C came before the answer */
			break;
		}
		miss = ping_miss(err, o, line, sizeof(line));
		if (err && !miss) {
			ping_fatal(t, err, o);
			break;
		}
		ping_print(o, seq, err, &pong, miss, line, t->sent == 0);
		t->sent++;
		if (err == 0)
			ping_count_reply(t, pong.rtt_ns / 1e6);
	}
}

static int cmd_ping(const char *rundir, int argc, char **argv, bool json)
{
	struct ping_opts o = { .count = 4, .interval_ms = 1000, .timeout_ms = 1000, .size = 56,
			       .json = json };
	struct sigaction sa = { .sa_handler = ping_on_sigint }; /* no SA_RESTART: waits end */
	struct ping_tally t = { 0 };
	int fd, err = ping_parse(argc, argv, &o);

	if (err)
		return err > 0 ? 0 : EXIT_USAGE;
	mn_log_set_level(MN_LOG_WARN);
	fd = nicd_open(rundir);
	if (fd < 0) {
		if (o.json)
			printf("{\"target\": \"%s\", \"sent\": 0, \"received\": 0, \"error\": "
			       "\"cannot reach machnet-nicd: %s\"}\n", o.target, strerror(-fd));
		return mctl_exit_for(fd);
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (o.json)
		printf("{\"target\": \"%s\", \"size\": %u, \"timeout_ms\": %u, \"results\": [", o.target,
		       o.size, o.timeout_ms);
	else
		printf("PING %s through machnet-nicd: %u data bytes\n", o.target, o.size);
	fflush(stdout);
	ping_run(fd, &o, &t);
	close(fd);
	if (t.fatal)
		fprintf(stderr, "machnetctl: %s\n", t.fatal_msg);
	/* Refused outright: the error says it all (JSON still closes its object). */
	if (!t.fatal || t.sent || o.json)
		ping_summary(&o, &t);
	fflush(stdout);
	if (t.fatal)
		return mctl_exit_for(t.fatal);
	if (t.received == 0)
		fprintf(stderr, "machnetctl: no reply from %s\n", o.target);
	return t.received ? 0 : EXIT_ERR;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "runtime-dir", 1, 0, 'r' }, { "config-dir", 1, 0, 'c' }, { "proto", 1, 0, 'p' },
		{ "json", 0, 0, 'j' },	      { "help", 0, 0, 'h' },	   { "version", 0, 0, 'V' },
		{ 0, 0, 0, 0 },
	};
	struct tctx t = { .rundir = "/run/machnet", .confdir = PROTO_TENANTS_DIR };
	char *args[8];
	int nargs = 0, c;
	double watch = 0;

	while ((c = getopt_long(argc, argv, "+r:c:p:jhV", lo, NULL)) != -1) {
		switch (c) {
		case 'r': t.rundir = optarg; t.rundir_given = true; break;
		case 'c': t.confdir = optarg; break;
		case 'p': t.proto = optarg; break;
		case 'j': t.json = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("machnetctl %s\n", MACHNET_VERSION); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* ping has options of its own (-c is its count there). */
	if (strcmp(argv[optind], "ping") == 0)
		return cmd_ping(t.rundir, argc - optind, argv + optind, t.json);
	/* --json may also follow the command ("stats --json"). */
	for (int i = optind + 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0) {
			t.json = true;
		} else if (strcmp(argv[i], "--watch") == 0 || strcmp(argv[i], "-w") == 0) {
			char *end;

			watch = 1.0;
			if (i + 1 < argc && argv[i + 1][0] != '-') {
				watch = strtod(argv[i + 1], &end);
				if (*end || !(watch >= 0.1 && watch <= 86400)) {
					fprintf(stderr, "machnetctl: --watch wants seconds (0.1..86400), not '%s'\n",
						argv[i + 1]);
					return EXIT_USAGE;
				}
				i++;
			}
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' || nargs == (int)(sizeof(args) / sizeof(args[0]))) {
			fprintf(stderr, "machnetctl: unexpected argument '%s'\n", argv[i]);
			return EXIT_USAGE;
		} else {
			args[nargs++] = argv[i];
		}
	}
	mn_log_set_level(MN_LOG_WARN);
	if (strcmp(argv[optind], "tenant") == 0)
		return tenant_cmd(&t, nargs, args);
	if (strcmp(argv[optind], "ports") == 0 || strcmp(argv[optind], "arp") == 0) {
		if (nargs) {
			fprintf(stderr, "machnetctl: unexpected argument '%s'\n", args[0]);
			return EXIT_USAGE;
		}
		return cmd_list(t.rundir, argv[optind][0] == 'p', t.json);
	}
	if (strcmp(argv[optind], "flows") == 0) {
		if (nargs > 1 || (nargs == 1 && !valid_name(args[0]))) {
			fprintf(stderr, "machnetctl: flows takes at most one tenant name, not '%s'\n",
				args[nargs - 1]);
			return EXIT_USAGE;
		}
		return mctl_cmd_flows(t.rundir, nargs ? args[0] : NULL, t.json);
	}
	if (strcmp(argv[optind], "status") && strcmp(argv[optind], "stats")) {
		fprintf(stderr, "machnetctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (nargs) {
		fprintf(stderr, "machnetctl: unexpected argument '%s'\n", args[0]);
		return EXIT_USAGE;
	}
	if (watch > 0 && strcmp(argv[optind], "stats")) {
		fprintf(stderr, "machnetctl: --watch is for stats\n");
		return EXIT_USAGE;
	}
	if (watch > 0)
		return watch_stats(t.rundir, t.json, watch);
	return cmd(t.rundir, argv[optind], t.json);
}
