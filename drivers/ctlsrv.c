/* SPDX-License-Identifier: MIT */
/*
 * nicd's control sockets: <runtime>/nicd.sock, one connection per protocol
 * server (and short-lived admin connections). Requests are answered
 * inline, except RESOLVE, which waits for ARP and is answered from
 * csrv_neigh_resolved() or csrv_tick(), and PING (drivers/ping.c), which
 * waits for ARP and then for the echo reply.
 *
 * Requests are read without waiting (mn_ctl_recv_nb: a client that stops
 * mid-message holds only its own connection) and answers are sent without
 * waiting (NICD_CTL_TIMEOUT_MS), so no client can stall the data path.
 * Only users the socket's mode admits can connect.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_ethdev.h>

#include "ctl.h"
#include "log.h"
#include "nicd.h"

#ifndef MACHNET_VERSION
#define MACHNET_VERSION "0.1.0"
#endif

#define EV_LISTEN 1ull
#define EV_CLIENT 2ull
#define EV_KICK 3ull
#define EV(type, idx) (((type) << 32) | (uint32_t)(idx))

static const struct mn_ctl_spec specs[] = {
	{ MN_CTL_T_HELLO, sizeof(struct mn_ctl_hello), sizeof(struct mn_ctl_hello), 0 },
	{ MN_CTL_T_PING, 0, 0, 0 },
	{ MN_PORT_T_REGISTER, sizeof(struct mn_port_register), sizeof(struct mn_port_register),
	  MN_PORT_NFDS },
	{ MN_PORT_T_CLAIM, sizeof(struct mn_port_claim), sizeof(struct mn_port_claim), 0 },
	{ MN_PORT_T_RELEASE, sizeof(struct mn_port_claim), sizeof(struct mn_port_claim), 0 },
	{ MN_PORT_T_RESOLVE, sizeof(struct mn_port_resolve), sizeof(struct mn_port_resolve), 0 },
	{ MN_PORT_T_STATS, 0, 0, 0 },
	{ MN_PORT_T_INFO, 0, 0, 0 },
	{ MN_PORT_T_PORTS, 0, 0, 0 },
	{ MN_PORT_T_NEIGH, 0, 0, 0 },
	{ MN_PORT_T_PING, sizeof(struct mn_port_ping), sizeof(struct mn_port_ping), 0 },
};

uint64_t nicd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t nicd_next_hop(const struct nicd *n, uint32_t ip)
{
	for (unsigned int i = 0; i < n->cfg.nips; i++) {
		uint32_t mask = n->cfg.prefix_len[i] ? ~0u << (32 - n->cfg.prefix_len[i]) : 0;

		if ((n->cfg.ips[i] & mask) == (ip & mask))
			return ip;
	}
	return n->cfg.gateway;
}

static int reply(struct nicd *n, int ci, const struct mn_ctl_hdr *req, int32_t status,
		 const void *payload, uint32_t len)
{
	int err = mn_ctl_send(n->clients[ci].fd, req->type, req->req_id, status, payload,
			      len, NULL, 0, NICD_CTL_TIMEOUT_MS);

	if (status < 0)
		n->st.refused++;
	return err;
}

/* ---- clients ------------------------------------------------------------ */

static void fail_pending(struct nicd *n, int ci)
{
	for (int i = 0; i < NICD_MAX_PENDING; i++)
		if (n->pending[i].used && n->pending[i].client == ci)
			n->pending[i].used = false;
}

static void client_close(struct nicd *n, int ci, const char *why)
{
	struct nicd_client *c = &n->clients[ci];

	if (c->tenant >= 0) {
		struct tnt *t = &n->tenants[c->tenant];
		unsigned int ports = pt_release_all(n->pt, t->id);

		epoll_ctl(n->epfd, EPOLL_CTL_DEL, t->kick_fd, NULL);
		tnt_detach(t);
		t->fd = -1;
		mn_info("ctl", "tenant %s (pid %d) gone (%s): %u ports released, port unmapped",
			t->cfg->name, (int)c->pid, why, ports);
	}
	fail_pending(n, ci);
	ping_forget_client(n, ci);
	mn_ctl_rx_fini(&c->rx);
	epoll_ctl(n->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	*c = (struct nicd_client){ .fd = -1, .tenant = -1 };
}

static void accept_clients(struct nicd *n)
{
	for (;;) {
		int fd = accept4(n->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), ci;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
		struct nicd_client *c;

		if (fd < 0)
			return;
		for (ci = 0; ci < NICD_MAX_CLIENTS && n->clients[ci].fd >= 0; ci++)
			;
		if (ci == NICD_MAX_CLIENTS) {
			mn_warn("ctl", "refusing a connection: %d clients already", NICD_MAX_CLIENTS);
			n->st.refused++;
			close(fd);
			continue;
		}
		c = &n->clients[ci];
		*c = (struct nicd_client){ .fd = fd, .tenant = -1, .since_ns = nicd_now_ns() };
		mn_ctl_rx_init(&c->rx);
		mn_ctl_reserve_sndbuf(fd); /* answers never wait (NICD_CTL_TIMEOUT_MS) */
		if (mn_ctl_peer_cred(fd, &c->pid, &c->uid, &c->gid) != 0) {
			client_close(n, ci, "no credentials");
			continue;
		}
		ev.data.u64 = EV(EV_CLIENT, ci);
		epoll_ctl(n->epfd, EPOLL_CTL_ADD, fd, &ev);
	}
}

/* ---- requests ----------------------------------------------------------- */

static int tenant_by_name(const struct nicd *n, const char *name)
{
	for (unsigned int i = 0; i < n->cfg.ntenants; i++)
		if (strcmp(n->cfg.tenants[i].name, name) == 0)
			return (int)i;
	return -1;
}

static bool creds_allowed(const struct nicd_tenant_cfg *tc, const struct nicd_client *c)
{
	/* root may serve any tenant: it could read the config anyway. */
	if (c->uid == 0)
		return true;
	return (tc->uid == (uid_t)-1 || tc->uid == c->uid) &&
	       (tc->gid == (gid_t)-1 || tc->gid == c->gid);
}

static int on_hello(struct nicd *n, int ci, const struct mn_ctl_msg *m)
{
	struct nicd_client *c = &n->clients[ci];
	struct mn_ctl_hello h, mine = { .min_version = MN_CTL_VERSION,
					.max_version = MN_CTL_VERSION };
	int ti;

	memcpy(&h, m->payload, sizeof(h));
	h.name[MN_CTL_NAME_MAX - 1] = '\0';
	if (h.min_version > MN_CTL_VERSION || h.max_version < MN_CTL_VERSION) {
		mn_warn("ctl", "pid %d speaks ctl versions %u..%u, we speak %u", (int)c->pid,
			h.min_version, h.max_version, MN_CTL_VERSION);
		return reply(n, ci, &m->hdr, -EPROTONOSUPPORT, NULL, 0) ?: -EPROTONOSUPPORT;
	}
	if (h.role == MN_PORT_ROLE_PROTO) {
		ti = tenant_by_name(n, h.name);
		if (ti < 0 || !creds_allowed(&n->cfg.tenants[ti], c)) {
			mn_warn("ctl", "pid %d (uid %u gid %u) may not serve tenant '%s': %s",
				(int)c->pid, (unsigned int)c->uid, (unsigned int)c->gid, h.name,
				ti < 0 ? "no such tenant in the configuration" : "credentials not allowed");
			return reply(n, ci, &m->hdr, ti < 0 ? -ENOENT : -EACCES, NULL, 0) ?: -EACCES;
		}
		if (n->tenants[ti].fd >= 0) {
			mn_warn("ctl", "tenant %s already has a protocol server (pid %d); refusing pid %d",
				h.name, (int)n->tenants[ti].pid, (int)c->pid);
			return reply(n, ci, &m->hdr, -EBUSY, NULL, 0) ?: -EBUSY;
		}
		n->tenants[ti].fd = c->fd;
		n->tenants[ti].pid = c->pid;
		c->tenant = ti;
	} else if (h.role != MN_PORT_ROLE_ADMIN) {
		return reply(n, ci, &m->hdr, -EINVAL, NULL, 0) ?: -EINVAL;
	}
	c->role = h.role;
	mine.role = 0;
	snprintf(mine.name, sizeof(mine.name), "machnet-nicd");
	return mn_ctl_send(c->fd, MN_CTL_T_HELLO, m->hdr.req_id, 0, &mine, sizeof(mine), NULL, 0,
			   NICD_CTL_TIMEOUT_MS);
}

static int on_register(struct nicd *n, int ci, struct mn_ctl_msg *m)
{
	struct nicd_client *c = &n->clients[ci];
	struct tnt *t = &n->tenants[c->tenant];
	struct mn_port_registered out = { 0 };
	struct epoll_event ev = { .events = EPOLLIN };
	struct mn_port_register req;
	int err;

	memcpy(&req, m->payload, sizeof(req));
	if (t->connected)
		return reply(n, ci, &m->hdr, -EALREADY, NULL, 0);
	err = tnt_attach(t, &req, m->fds, n->port.nqueues, n->port.mtu + 14u,
			 n->cfg.nframes_max, c->uid == 0);
	if (err)
		return reply(n, ci, &m->hdr, err, NULL, 0);
	ev.data.u64 = EV(EV_KICK, c->tenant);
	epoll_ctl(n->epfd, EPOLL_CTL_ADD, t->kick_fd, &ev);
	memcpy(out.mac, n->port.mac, 6);
	out.mtu = n->port.mtu;
	out.nqueues = n->port.nqueues;
	out.tx_csum = 1;
	out.generation = n->generation;
	n->st.registrations++;
	mn_info("ctl", "tenant %s registered by pid %d: %u queue(s), %u frames of %u B",
		t->cfg->name, (int)c->pid, req.nqueues, req.nframes, req.frame_size);
	return reply(n, ci, &m->hdr, 0, &out, sizeof(out));
}

static int on_claim(struct nicd *n, int ci, const struct mn_ctl_msg *m, bool claim)
{
	const struct nicd_tenant_cfg *tc = n->tenants[n->clients[ci].tenant].cfg;
	struct pt_allow allow = { tc->ips, tc->nips, (const uint16_t(*)[2])tc->ranges, tc->nranges };
	struct mn_port_claim cl;
	int err;

	memcpy(&cl, m->payload, sizeof(cl));
	err = claim ? pt_claim(n->pt, (uint16_t)n->clients[ci].tenant, cl.ip, cl.port_lo,
			       cl.port_hi, &allow)
		    : pt_release(n->pt, (uint16_t)n->clients[ci].tenant, cl.ip, cl.port_lo,
				 cl.port_hi);
	if (err)
		mn_warn("ctl", "tenant %s: %s %u.%u.%u.%u:%u-%u refused: %s", tc->name,
			claim ? "claim" : "release", cl.ip >> 24, (cl.ip >> 16) & 255,
			(cl.ip >> 8) & 255, cl.ip & 255, cl.port_lo, cl.port_hi, strerror(-err));
	return reply(n, ci, &m->hdr, err, NULL, 0);
}

static int answer_resolve(struct nicd *n, int ci, uint32_t req_id, uint32_t ip,
			  uint32_t hop, const uint8_t *mac, int status)
{
	struct mn_port_neigh out = { .ip = ip, .next_hop = hop };
	struct mn_ctl_hdr h = { .type = MN_PORT_T_RESOLVE, .req_id = req_id };

	if (status == 0)
		memcpy(out.mac, mac, 6);
	else
		n->st.resolve_fail++;
	return reply(n, ci, &h, status, status == 0 ? &out : NULL, status == 0 ? sizeof(out) : 0);
}

static int on_resolve(struct nicd *n, int ci, const struct mn_ctl_msg *m)
{
	struct mn_port_resolve r;
	uint8_t mac[6];
	bool need = false;
	uint32_t hop;
	int err;

	memcpy(&r, m->payload, sizeof(r));
	hop = nicd_next_hop(n, r.ip);
	if (hop == 0)
		return answer_resolve(n, ci, m->hdr.req_id, r.ip, 0, NULL, -ENETUNREACH);
	err = neigh_lookup(n->neigh, hop, nicd_now_ns(), mac, &need);
	if (need)
		dp_send_arp_request(n, hop);
	if (err != -EAGAIN)
		return answer_resolve(n, ci, m->hdr.req_id, r.ip, hop, mac, err);
	for (int i = 0; i < NICD_MAX_PENDING; i++) {
		if (!n->pending[i].used) {
			n->pending[i] = (struct nicd_pending){
				.used = true, .client = ci, .req_id = m->hdr.req_id, .ip = r.ip,
				.next_hop = hop,
				.deadline_ns = nicd_now_ns() + n->cfg.arp_timeout_ms * 1000000ull,
			};
			return 0;
		}
	}
	return answer_resolve(n, ci, m->hdr.req_id, r.ip, hop, NULL, -EBUSY);
}

static int on_stats(struct nicd *n, int ci, const struct mn_ctl_msg *m)
{
	static uint8_t buf[MN_CTL_MAX_PAYLOAD];
	struct mn_port_stats_hdr *h = (void *)buf;
	struct mn_port_tenant_stats *ts;
	struct rte_eth_stats es;
	size_t len = sizeof(*h) + n->port.nqueues * sizeof(struct mn_port_counters) +
		     n->cfg.ntenants * sizeof(*ts);

	_Static_assert(sizeof(struct mn_port_stats_hdr) +
			       MN_PORT_MAX_QUEUES * sizeof(struct mn_port_counters) +
			       NICD_MAX_TENANTS * sizeof(struct mn_port_tenant_stats) <=
		       MN_CTL_MAX_PAYLOAD, "stats fit one message");
	*h = n->st;
	h->nqueues = n->port.nqueues;
	h->ntenants = n->cfg.ntenants;
	h->uptime_ns = nicd_now_ns() - n->start_ns;
	if (dport_stats(&n->port, &es) == 0) {
		h->nic_ipackets = es.ipackets;
		h->nic_opackets = es.opackets;
		h->nic_ibytes = es.ibytes;
		h->nic_obytes = es.obytes;
		h->nic_imissed = es.imissed;
		h->nic_ierrors = es.ierrors;
		h->nic_oerrors = es.oerrors;
		h->nic_rx_nombuf = es.rx_nombuf;
	}
	memcpy(h + 1, n->queue_c, n->port.nqueues * sizeof(struct mn_port_counters));
	ts = (void *)(buf + sizeof(*h) + n->port.nqueues * sizeof(struct mn_port_counters));
	for (unsigned int i = 0; i < n->cfg.ntenants; i++) {
		const struct tnt *t = &n->tenants[i];

		memset(&ts[i], 0, sizeof(ts[i]));
		snprintf(ts[i].name, sizeof(ts[i].name), "%s", t->cfg->name);
		ts[i].connected = t->connected;
		ts[i].pid = t->connected ? (uint32_t)t->pid : 0;
		ts[i].nclaims = pt_count(n->pt, t->id);
		ts[i].c = t->c;
	}
	return reply(n, ci, &m->hdr, 0, buf, (uint32_t)len);
}

/* Copy a string into a fixed field, cut and NUL-terminated. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t len = strnlen(src, size - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
}

static int on_info(struct nicd *n, int ci, const struct mn_ctl_msg *m)
{
	struct mn_port_info in = { 0 };

	snprintf(in.version, sizeof(in.version), "%s", MACHNET_VERSION);
	copy_str(in.driver, sizeof(in.driver), n->port.driver);
	copy_str(in.device, sizeof(in.device), n->cfg.device);
	memcpy(in.mac, n->port.mac, 6);
	in.mtu = n->port.mtu;
	in.nqueues = n->port.nqueues;
	in.poll_mode = (uint16_t)n->cfg.poll_mode;
	in.nips = n->cfg.nips;
	memcpy(in.ips, n->cfg.ips, sizeof(in.ips[0]) * n->cfg.nips);
	memcpy(in.prefix_len, n->cfg.prefix_len, n->cfg.nips);
	in.gateway = n->cfg.gateway;
	in.generation = n->generation;
	in.pid = (uint32_t)getpid();
	in.uptime_ns = nicd_now_ns() - n->start_ns;
	return reply(n, ci, &m->hdr, 0, &in, sizeof(in));
}

static uint8_t list_buf[MN_CTL_MAX_PAYLOAD];

struct list_ctx {
	const struct nicd *n;
	struct mn_port_list_hdr *h;
};

static void add_claim(uint16_t tenant, uint32_t ip, uint16_t lo, uint16_t hi, void *ctx)
{
	struct list_ctx *lc = ctx;
	struct mn_port_claim_entry *e = (void *)(lc->h + 1);

	if (lc->h->count >= MN_PORT_MAX_LIST_CLAIMS) {
		lc->h->flags |= MN_PORT_LIST_F_TRUNCATED;
		return;
	}
	e += lc->h->count++;
	memset(e, 0, sizeof(*e));
	if (tenant < lc->n->cfg.ntenants)
		copy_str(e->tenant, sizeof(e->tenant), lc->n->tenants[tenant].cfg->name);
	else
		snprintf(e->tenant, sizeof(e->tenant), "#%u", tenant);
	e->ip = ip;
	e->port_lo = lo;
	e->port_hi = hi;
}

static int on_ports(struct nicd *n, int ci, const struct mn_ctl_msg *m)
{
	struct list_ctx lc = { n, (void *)list_buf };

	*lc.h = (struct mn_port_list_hdr){ 0 };
	pt_foreach_claim(n->pt, add_claim, &lc);
	return reply(n, ci, &m->hdr, 0, list_buf,
		     (uint32_t)(sizeof(*lc.h) + lc.h->count * sizeof(struct mn_port_claim_entry)));
}

static void add_neigh(uint32_t ip, const uint8_t mac[6], int state, uint64_t age_ns, void *ctx)
{
	struct list_ctx *lc = ctx;
	struct mn_port_neigh_entry *e = (void *)(lc->h + 1);

	if (lc->h->count >= MN_PORT_MAX_LIST_NEIGH) {
		lc->h->flags |= MN_PORT_LIST_F_TRUNCATED;
		return;
	}
	e += lc->h->count++;
	memset(e, 0, sizeof(*e));
	e->ip = ip;
	memcpy(e->mac, mac, 6);
	e->state = (uint16_t)state;
	e->age_ms = age_ns / 1000000u;
}

static int on_neigh(struct nicd *n, int ci, const struct mn_ctl_msg *m)
{
	struct list_ctx lc = { n, (void *)list_buf };

	*lc.h = (struct mn_port_list_hdr){ 0 };
	neigh_foreach(n->neigh, nicd_now_ns(), add_neigh, &lc);
	return reply(n, ci, &m->hdr, 0, list_buf,
		     (uint32_t)(sizeof(*lc.h) + lc.h->count * sizeof(struct mn_port_neigh_entry)));
}

/* Which requests each role may make after HELLO. */
static bool allowed(const struct nicd_client *c, uint16_t type)
{
	switch (type) {
	case MN_CTL_T_PING:
	case MN_PORT_T_STATS:
	case MN_PORT_T_INFO:
	case MN_PORT_T_PORTS:
	case MN_PORT_T_NEIGH:
	case MN_PORT_T_PING:
		return true;
	case MN_PORT_T_REGISTER:
	case MN_PORT_T_CLAIM:
	case MN_PORT_T_RELEASE:
	case MN_PORT_T_RESOLVE:
		return c->role == MN_PORT_ROLE_PROTO;
	default:
		return false;
	}
}

static int dispatch(struct nicd *n, int ci, struct mn_ctl_msg *m)
{
	struct nicd_client *c = &n->clients[ci];
	struct tnt *t = c->tenant >= 0 ? &n->tenants[c->tenant] : NULL;

	if (c->role == 0)
		return m->hdr.type == MN_CTL_T_HELLO ? on_hello(n, ci, m) : -EPROTO;
	if (!allowed(c, m->hdr.type))
		return reply(n, ci, &m->hdr, -EPERM, NULL, 0);
	if ((m->hdr.type == MN_PORT_T_CLAIM || m->hdr.type == MN_PORT_T_RELEASE ||
	     m->hdr.type == MN_PORT_T_RESOLVE) && !(t && t->connected))
		return reply(n, ci, &m->hdr, -ENOTCONN, NULL, 0);
	switch (m->hdr.type) {
	case MN_CTL_T_PING:
		return reply(n, ci, &m->hdr, 0, NULL, 0);
	case MN_PORT_T_REGISTER:
		return on_register(n, ci, m);
	case MN_PORT_T_CLAIM:
		return on_claim(n, ci, m, true);
	case MN_PORT_T_RELEASE:
		return on_claim(n, ci, m, false);
	case MN_PORT_T_RESOLVE:
		return on_resolve(n, ci, m);
	case MN_PORT_T_STATS:
		return on_stats(n, ci, m);
	case MN_PORT_T_PORTS:
		return on_ports(n, ci, m);
	case MN_PORT_T_NEIGH:
		return on_neigh(n, ci, m);
	case MN_PORT_T_PING:
		return ping_request(n, ci, m);
	default:
		return on_info(n, ci, m);
	}
}

/* Requests that have arrived whole; a partial one waits for more bytes. A
 * few per event at most: level-triggered epoll brings the rest. */
static void client_readable(struct nicd *n, int ci)
{
	for (int k = 0; k < 4; k++) {
		struct mn_ctl_msg m;
		int err = mn_ctl_recv_nb(n->clients[ci].fd, &n->clients[ci].rx, &m);

		if (err == 0)
			return;
		if (err == 1) {
			err = mn_ctl_check(&m, specs, sizeof(specs) / sizeof(specs[0]));
			if (err == 0)
				err = dispatch(n, ci, &m);
			mn_ctl_msg_free(&m);
		}
		if (err < 0) {
			if (err != -EPIPE)
				n->st.refused++;
			client_close(n, ci, err == -EPIPE ? "hang-up" : strerror(-err));
			return;
		}
	}
}

static void drain_kick(struct nicd *n, int ti)
{
	uint64_t v;

	if (read(n->tenants[ti].kick_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already drained. */
	}
}

int csrv_poll(struct nicd *n, int64_t timeout_ns)
{
	struct epoll_event ev[32];
	struct timespec ts = { .tv_sec = timeout_ns / 1000000000,
			       .tv_nsec = timeout_ns % 1000000000 };
	int nev = epoll_pwait2(n->epfd, ev, 32, &ts, NULL);

	for (int i = 0; i < nev; i++) {
		uint32_t type = (uint32_t)(ev[i].data.u64 >> 32), idx = (uint32_t)ev[i].data.u64;

		if (type == EV_LISTEN)
			accept_clients(n);
		else if (type == EV_KICK)
			drain_kick(n, (int)idx);
		else if (n->clients[idx].fd >= 0)
			client_readable(n, (int)idx);
	}
	return nev < 0 ? -errno : nev;
}

/* ---- resolution ----------------------------------------------------------- */

void csrv_neigh_resolved(struct nicd *n, uint32_t ip, const uint8_t mac[6])
{
	for (int i = 0; i < NICD_MAX_PENDING; i++) {
		struct nicd_pending *p = &n->pending[i];

		if (p->used && p->next_hop == ip) {
			p->used = false;
			answer_resolve(n, p->client, p->req_id, p->ip, ip, mac, 0);
		}
	}
	ping_neigh_resolved(n, ip, mac);
}

static void send_arp(uint32_t ip, void *ctx)
{
	dp_send_arp_request(ctx, ip);
}

static void neigh_failed(uint32_t ip, void *ctx)
{
	struct nicd *n = ctx;

	for (int i = 0; i < NICD_MAX_PENDING; i++) {
		struct nicd_pending *p = &n->pending[i];

		if (p->used && p->next_hop == ip) {
			p->used = false;
			answer_resolve(n, p->client, p->req_id, p->ip, ip, NULL, -EHOSTUNREACH);
		}
	}
	ping_neigh_failed(n, ip);
}

void csrv_tick(struct nicd *n)
{
	uint64_t now = nicd_now_ns();

	neigh_tick(n->neigh, now, send_arp, neigh_failed, n);
	for (int i = 0; i < NICD_MAX_PENDING; i++) {
		struct nicd_pending *p = &n->pending[i];

		if (p->used && now > p->deadline_ns) {
			p->used = false;
			answer_resolve(n, p->client, p->req_id, p->ip, p->next_hop, NULL,
				       -EHOSTUNREACH);
		}
	}
	ping_tick(n, now);
	for (int i = 0; i < NICD_MAX_CLIENTS; i++) {
		const struct nicd_client *c = &n->clients[i];

		if (c->fd >= 0 && c->role == 0 && now - c->since_ns > NICD_HELLO_NS) {
			n->st.refused++;
			client_close(n, i, "no HELLO within 5 s");
		}
	}
}

/* ---- setup ---------------------------------------------------------------- */

int csrv_open(struct nicd *n)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV(EV_LISTEN, 0) };
	char path[sizeof(n->cfg.runtime_dir) + 16];

	for (int i = 0; i < NICD_MAX_CLIENTS; i++)
		n->clients[i] = (struct nicd_client){ .fd = -1, .tenant = -1 };
	if (mkdir(n->cfg.runtime_dir, 0755) != 0 && errno != EEXIST) {
		mn_err("ctl", "cannot create runtime directory %s: %s", n->cfg.runtime_dir,
		       strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/nicd.sock", n->cfg.runtime_dir);
	n->listen_fd = mn_ctl_listen(path, 0660);
	if (n->listen_fd < 0) {
		mn_err("ctl", "cannot listen on %s: %s%s", path, strerror(-n->listen_fd),
		       n->listen_fd == -EADDRINUSE ? " (another machnet-nicd is running)" : "");
		return n->listen_fd;
	}
	n->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (n->epfd < 0 || epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->listen_fd, &ev) != 0) {
		int err = -errno;

		close(n->listen_fd);
		return err;
	}
	mn_info("ctl", "listening on %s", path);
	return 0;
}

void csrv_close(struct nicd *n)
{
	char path[sizeof(n->cfg.runtime_dir) + 16];

	for (int i = 0; i < NICD_MAX_CLIENTS; i++)
		if (n->clients[i].fd >= 0)
			client_close(n, i, "shutdown");
	close(n->epfd);
	close(n->listen_fd);
	snprintf(path, sizeof(path), "%s/nicd.sock", n->cfg.runtime_dir);
	unlink(path);
}
