/* SPDX-License-Identifier: MIT */
/*
 * machnetctl and the protocol servers: STATS and FLOWS over each tenant's
 * socket (ipc/tenant.h), as role ADMIN. Everything a server sends is
 * checked against the spec tables and the list rules before it is printed.
 */
#include "mctl_proto.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "mctl.h"

#define MAX_TENANTS 256
#define MAX_FLOWS 65536 /* the highest limits.flows */

static const char *flow_state_name(uint32_t s)
{
	static const char *const names[] = { "?", "connecting", "established", "closing",
					     "closed", "failed" };

	return s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* ---- talking to one server ---------------------------------------------------- */

static int tenant_open(const char *rundir, const char *name)
{
	char path[512];
	struct mn_ctl_hello peer;
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s.sock", rundir, name);
	fd = mn_ctl_connect(path, MCTL_TIMEOUT_MS);
	if (fd < 0)
		return fd;
	err = mn_ctl_hello(fd, MN_TENANT_ROLE_ADMIN, name, &peer, MCTL_TIMEOUT_MS);
	if (err < 0) {
		close(fd);
		/* A server that does not serve admins (older) or another tenant. */
		return err == -ENOENT ? -EPROTONOSUPPORT : err;
	}
	return fd;
}

/* One request, one checked response (status 0) in @m. */
static int ask(int fd, uint16_t type, const void *req, uint32_t len, struct mn_ctl_msg *m)
{
	size_t nspecs;
	const struct mn_ctl_spec *specs = mn_tenant_resp_specs(&nspecs);
	int err = mn_ctl_send(fd, type, 1, 0, req, len, NULL, 0, MCTL_TIMEOUT_MS);

	err = err ? err : mn_ctl_recv(fd, m, MCTL_TIMEOUT_MS);
	if (err)
		return err;
	if (m->hdr.type != type)
		err = -EPROTO;
	else if (m->hdr.status < 0)
		err = m->hdr.status;
	else
		err = mn_ctl_check(m, specs, nspecs);
	if (err)
		mn_ctl_msg_free(m);
	return err;
}

static int append_flows(struct mctl_tenant *t, const struct mn_tenant_flow_entry *e, uint32_t n)
{
	struct mn_tenant_flow_entry *grown;

	if (n == 0)
		return 0;
	grown = realloc(t->flows, (t->nflows + n) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	memcpy(grown + t->nflows, e, n * sizeof(*e));
	t->flows = grown;
	t->nflows += n;
	return 0;
}

/* Walk every flow slot; the server must make progress on each answer and
 * can list no more than the largest flow limit (limits.flows). */
static int get_flows(int fd, struct mctl_tenant *t)
{
	struct mn_tenant_flows_req req = { 0 };

	for (;;) {
		struct mn_ctl_msg m;
		const struct mn_tenant_list_hdr *h;
		int err = ask(fd, MN_TENANT_T_FLOWS, &req, sizeof(req), &m);

		if (err)
			return err;
		h = m.payload;
		if (m.hdr.len != sizeof(*h) + (size_t)h->count * sizeof(struct mn_tenant_flow_entry) ||
		    (h->next_start != MN_TENANT_LIST_END && h->next_start <= req.start)) {
			mn_ctl_msg_free(&m);
			return -EBADMSG;
		}
		err = t->nflows + h->count > MAX_FLOWS ? -EBADMSG :
							 append_flows(t, (const void *)(h + 1), h->count);
		req.start = h->next_start;
		mn_ctl_msg_free(&m);
		if (err || req.start == MN_TENANT_LIST_END)
			return err;
	}
}

static void query_one(const char *rundir, struct mctl_tenant *t, bool want_flows)
{
	struct mn_ctl_msg m;
	int fd = tenant_open(rundir, t->name);

	t->err = fd < 0 ? fd : ask(fd, MN_TENANT_T_STATS, NULL, 0, &m);
	if (t->err == 0) {
		memcpy(&t->st, m.payload, sizeof(t->st));
		mctl_printable(t->st.name, sizeof(t->st.name));
		mctl_printable(t->st.version, sizeof(t->st.version));
		mn_ctl_msg_free(&m);
		if (want_flows)
			t->flows_err = get_flows(fd, t);
	}
	if (fd >= 0)
		close(fd);
}

/* ---- finding tenants ---------------------------------------------------------- */

/* Tenant names as machnet-proto accepts them; anything else is not ours. */
static bool tenant_name_ok(const char *name, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_-", name[i]) || !name[i])
			return false;
	return true;
}

static bool add_name(struct mctl_tenant *t, int *n, const char *name, size_t len)
{
	if (len == 0 || len >= sizeof(t->name) || *n >= MAX_TENANTS || !tenant_name_ok(name, len))
		return false;
	for (int i = 0; i < *n; i++)
		if (strlen(t[i].name) == len && strncmp(t[i].name, name, len) == 0)
			return false;
	memcpy(t[*n].name, name, len);
	t[*n].name[len] = '\0';
	(*n)++;
	return true;
}

static void scan_sockets(const char *rundir, struct mctl_tenant *t, int *n)
{
	DIR *d = opendir(rundir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);

		if (len > 5 && strcmp(e->d_name + len - 5, ".sock") == 0 &&
		    strcmp(e->d_name, "nicd.sock") != 0)
			add_name(t, n, e->d_name, len - 5);
	}
	closedir(d);
}

static int cmp_tenant(const void *a, const void *b)
{
	return strcmp(((const struct mctl_tenant *)a)->name, ((const struct mctl_tenant *)b)->name);
}

int mctl_tenants_query(const char *rundir, const char *only, const char (*extra)[32],
		       uint32_t nextra, bool want_flows, struct mctl_tenant **out)
{
	struct mctl_tenant *t = calloc(MAX_TENANTS, sizeof(*t));
	int n = 0;

	if (!t)
		return -ENOMEM;
	if (only) {
		add_name(t, &n, only, strlen(only));
	} else {
		scan_sockets(rundir, t, &n);
		for (uint32_t i = 0; i < nextra; i++)
			add_name(t, &n, extra[i], strnlen(extra[i], 32));
	}
	qsort(t, (size_t)n, sizeof(*t), cmp_tenant);
	for (int i = 0; i < n; i++)
		query_one(rundir, &t[i], want_flows);
	*out = t;
	return n;
}

void mctl_tenants_free(struct mctl_tenant *t, int n)
{
	for (int i = 0; t && i < n; i++)
		free(t[i].flows);
	free(t);
}

/* ---- JSON --------------------------------------------------------------------- */

static void json_flow(const struct mn_tenant_flow_entry *e)
{
	const struct mn_tenant_flow_stats *s = &e->st;
	char lip[32], rip[32];

	mctl_ip_str(s->flow.src_ip, lip, sizeof(lip));
	mctl_ip_str(s->flow.dst_ip, rip, sizeof(rip));
	printf("{\"channel\": %" PRIu32 ", \"app_pid\": %" PRIu32 ", \"local\": \"%s:%u\", "
	       "\"remote\": \"%s:%u\", \"state\": \"%s\", \"srtt_us\": %" PRIu32
	       ", \"rttvar_us\": %" PRIu32 ", \"min_rtt_us\": %" PRIu32 ", \"rto_us\": %" PRIu32
	       ", \"cwnd_bytes\": %" PRIu32 ", \"peer_window_bytes\": %" PRIu32
	       ", \"inflight_bytes\": %" PRIu32 ", \"tx_msgs\": %" PRIu64 ", \"tx_bytes\": %" PRIu64
	       ", \"rx_msgs\": %" PRIu64 ", \"rx_bytes\": %" PRIu64 ", \"tx_pkts\": %" PRIu64
	       ", \"rx_pkts\": %" PRIu64 ", \"retransmits\": %" PRIu64
	       ", \"fast_retransmits\": %" PRIu64 ", \"timeouts\": %" PRIu64
	       ", \"spurious_timeouts\": %" PRIu64 ", \"age_s\": %.3f}",
	       e->channel_id, e->app_pid, lip, s->flow.src_port, rip, s->flow.dst_port,
	       flow_state_name(s->state), s->srtt_us, s->rttvar_us, s->min_rtt_us, s->rto_us,
	       s->cwnd_bytes, s->peer_window_bytes, s->inflight_bytes, s->tx_msgs, s->tx_bytes,
	       s->rx_msgs, s->rx_bytes, s->tx_pkts, s->rx_pkts, s->retransmits,
	       s->fast_retransmits, s->timeouts, s->spurious_timeouts, s->age_ns / 1e9);
}

static void json_counters(const struct mn_tenant_stats *s)
{
	printf("\"counters\": {\"rx_pkts\": %" PRIu64 ", \"rx_no_flow\": %" PRIu64
	       ", \"rx_bad\": %" PRIu64 ", \"rst_sent\": %" PRIu64 ", \"tx_fail\": %" PRIu64
	       ", \"flows_opened\": %" PRIu64 ", \"flows_closed\": %" PRIu64
	       ", \"flows_failed\": %" PRIu64 ", \"syn_refused\": %" PRIu64
	       ", \"halfopen_dropped\": %" PRIu64 ", \"rx_not_udp\": %" PRIu64
	       ", \"no_neigh\": %" PRIu64 ", \"deliver_full\": %" PRIu64
	       ", \"nicd_reconnects\": %" PRIu64 ", \"nicd_bad_desc\": %" PRIu64
	       ", \"channel_tx_msgs\": %" PRIu64 ", \"channel_tx_bytes\": %" PRIu64
	       ", \"channel_rx_msgs\": %" PRIu64 ", \"channel_rx_bytes\": %" PRIu64
	       ", \"channel_rx_full\": %" PRIu64 ", \"channel_bad_desc\": %" PRIu64
	       ", \"channel_bad_chain\": %" PRIu64 ", \"channel_send_capped\": %" PRIu64
	       ", \"channel_recv_capped\": %" PRIu64 "}",
	       s->rx_pkts, s->rx_no_flow, s->rx_bad, s->rst_sent, s->tx_fail, s->flows_opened,
	       s->flows_closed, s->flows_failed, s->syn_refused, s->halfopen_dropped,
	       s->rx_not_udp, s->no_neigh, s->deliver_full, s->nicd_reconnects, s->nicd_bad_desc,
	       s->ch_tx_msgs, s->ch_tx_bytes, s->ch_rx_msgs, s->ch_rx_bytes, s->ch_rx_full,
	       s->ch_bad_desc, s->ch_bad_chain, s->ch_send_capped, s->ch_recv_capped);
}

void mctl_tenants_json(const struct mctl_tenant *t, int n, bool with_flows)
{
	for (int i = 0; i < n; i++) {
		const struct mn_tenant_stats *s = &t[i].st;
		char ip[32];

		printf("%s{\"name\": \"%s\", \"up\": %s", i ? ", " : "", t[i].name,
		       t[i].err == 0 ? "true" : "false");
		if (t[i].err) {
			printf(", \"error\": \"%s\"}", strerror(-t[i].err));
			continue;
		}
		mctl_ip_str(s->ip, ip, sizeof(ip));
		printf(", \"version\": \"%s\", \"pid\": %" PRIu32 ", \"uptime_s\": %.3f, \"ip\": \"%s\", "
		       "\"nicd_connected\": %s, \"channels\": %" PRIu32 ", \"max_channels\": %" PRIu32
		       ", \"flows_active\": %" PRIu32 ", \"max_flows\": %" PRIu32 ", ",
		       s->version, s->pid, s->uptime_ns / 1e9, ip,
		       s->nicd_connected ? "true" : "false", s->channels, s->max_channels, s->flows,
		       s->max_flows);
		json_counters(s);
		if (with_flows && t[i].flows_err)
			printf(", \"flows_error\": \"%s\"", strerror(-t[i].flows_err));
		if (with_flows) {
			printf(", \"flows\": [");
			for (uint32_t f = 0; f < t[i].nflows; f++) {
				printf("%s", f ? ", " : "");
				json_flow(&t[i].flows[f]);
			}
			printf("]");
		}
		printf("}");
	}
}

/* ---- tables ------------------------------------------------------------------- */

static void nonzero(const char *tenant, const char *what, uint64_t v)
{
	if (v)
		printf("  %-12s %-22s %12" PRIu64 "\n", tenant, what, v);
}

void mctl_tenants_table(const struct mctl_tenant *t, int n)
{
	printf("%-16s %7s %-8s %8s %9s %7s %9s %12s %12s %12s %8s\n", "protocol server", "state",
	       "version", "pid", "uptime_s", "chans", "flows", "rx pkts", "tx msgs", "rx msgs",
	       "failed");
	for (int i = 0; i < n; i++) {
		const struct mn_tenant_stats *s = &t[i].st;

		if (t[i].err) {
			printf("  %-14.31s %7s  (%s)\n", t[i].name, "down", strerror(-t[i].err));
			continue;
		}
		printf("  %-14.31s %7s %-8.15s %8" PRIu32 " %9.0f %3" PRIu32 "/%-3" PRIu32 " %4" PRIu32
		       "/%-4" PRIu32 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %8" PRIu64 "\n",
		       t[i].name, s->nicd_connected ? "up" : "no-nicd", s->version, s->pid,
		       s->uptime_ns / 1e9,
		       s->channels, s->max_channels, s->flows, s->max_flows, s->rx_pkts,
		       s->ch_tx_msgs, s->ch_rx_msgs, s->flows_failed);
	}
	printf("\nprotocol server counters (non-zero):\n");
	for (int i = 0; i < n; i++) {
		const struct mn_tenant_stats *s = &t[i].st;
		const char *nm = t[i].name;

		if (t[i].err)
			continue;
		nonzero(nm, "rx_no_flow", s->rx_no_flow);
		nonzero(nm, "rx_bad", s->rx_bad);
		nonzero(nm, "rst_sent", s->rst_sent);
		nonzero(nm, "tx_fail", s->tx_fail);
		nonzero(nm, "flows_failed", s->flows_failed);
		nonzero(nm, "syn_refused", s->syn_refused);
		nonzero(nm, "halfopen_dropped", s->halfopen_dropped);
		nonzero(nm, "rx_not_udp", s->rx_not_udp);
		nonzero(nm, "no_neigh", s->no_neigh);
		nonzero(nm, "deliver_full", s->deliver_full);
		nonzero(nm, "nicd_reconnects", s->nicd_reconnects);
		nonzero(nm, "nicd_bad_desc", s->nicd_bad_desc);
		nonzero(nm, "channel_rx_full", s->ch_rx_full);
		nonzero(nm, "channel_bad_desc", s->ch_bad_desc);
		nonzero(nm, "channel_bad_chain", s->ch_bad_chain);
		nonzero(nm, "channel_send_capped", s->ch_send_capped);
		nonzero(nm, "channel_recv_capped", s->ch_recv_capped);
	}
}

void mctl_flows_table(const struct mctl_tenant *t, int n)
{
	printf("%-10s %4s %-21s %-21s %-11s %7s %7s %9s %10s %10s %12s %12s %6s %5s\n", "tenant",
	       "chan", "local", "remote", "state", "srtt_us", "rto_us", "cwnd_B", "tx_msgs",
	       "rx_msgs", "tx_bytes", "rx_bytes", "retx", "rtos");
	for (int i = 0; i < n; i++) {
		for (uint32_t f = 0; f < t[i].nflows; f++) {
			const struct mn_tenant_flow_stats *s = &t[i].flows[f].st;
			char l[40], r[40], ip[32];

			mctl_ip_str(s->flow.src_ip, ip, sizeof(ip));
			snprintf(l, sizeof(l), "%s:%u", ip, s->flow.src_port);
			mctl_ip_str(s->flow.dst_ip, ip, sizeof(ip));
			snprintf(r, sizeof(r), "%s:%u", ip, s->flow.dst_port);
			printf("%-10.31s %4" PRIu32 " %-21s %-21s %-11s %7" PRIu32 " %7" PRIu32 " %9" PRIu32
			       " %10" PRIu64 " %10" PRIu64 " %12" PRIu64 " %12" PRIu64 " %6" PRIu64
			       " %5" PRIu64 "\n",
			       t[i].name, t[i].flows[f].channel_id, l, r, flow_state_name(s->state),
			       s->srtt_us, s->rto_us, s->cwnd_bytes, s->tx_msgs, s->rx_msgs,
			       s->tx_bytes, s->rx_bytes, s->retransmits, s->timeouts);
		}
	}
}

/* ---- machnetctl flows --------------------------------------------------------- */

static const char *hint(int err)
{
	switch (err) {
	case -ENOENT:
	case -ECONNREFUSED:
		return " (not running? machnetctl tenant start NAME)";
	case -EACCES:
		return " (run as root, or as the tenant's app_uid/app_gid)";
	case -EPROTONOSUPPORT:
		return " (the server does not answer machnetctl: an older machnet-proto, or another "
		       "tenant's socket)";
	default:
		return "";
	}
}

int mctl_cmd_flows(const char *rundir, const char *only, bool json)
{
	struct mctl_tenant *t;
	int n = mctl_tenants_query(rundir, only, NULL, 0, true, &t), up = 0, first_err = 0;

	if (n < 0) {
		fprintf(stderr, "machnetctl: %s\n", strerror(-n));
		return EXIT_ERR;
	}
	for (int i = 0; i < n; i++) {
		int err = t[i].err ? t[i].err : t[i].flows_err;

		if (err == 0) {
			up++;
			continue;
		}
		if (!first_err)
			first_err = err;
		fprintf(stderr, "machnetctl: tenant %s at %s/%s.sock: %s%s\n", t[i].name, rundir,
			t[i].name, strerror(-err), hint(err));
	}
	if (json) {
		printf("{\"tenants\": [");
		mctl_tenants_json(t, n, true);
		printf("]}\n");
	} else {
		mctl_flows_table(t, n);
	}
	mctl_tenants_free(t, n);
	if (n == 0) {
		fprintf(stderr, "machnetctl: no protocol server found in %s\n", rundir);
		return EXIT_DOWN;
	}
	return up ? 0 : mctl_exit_for(first_err);
}
