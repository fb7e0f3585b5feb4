/* SPDX-License-Identifier: MIT */
/*
 * <runtime>/<tenant>.sock: applications attach channels and ask for
 * listens, connects, closes and flow figures (ipc/tenant.h). Every request
 * is answered at once except CONNECT, answered by pctl_connect_done() when
 * the handshake ends.
 *
 * Requests are read without waiting (mn_ctl_recv_nb: a peer that stops
 * mid-message holds only its own connection) and answers are sent without
 * waiting (PROTO_REPLY_TIMEOUT_MS), so a slow or stalled peer cannot stall
 * the data path, which runs in this same thread. Known limit: LISTEN,
 * CONNECT (to a next hop not yet known) and a channel's end ask nicd
 * synchronously (portc, up to PROTO_CTL_TIMEOUT_MS while nicd answers).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "proto.h"

#define EV_LISTEN 1ull
#define EV_CONN 2ull
#define EV_KICK 3ull
#define EV_PORT 4ull
#define EV(type, idx) (((type) << 32) | (uint32_t)(idx))

uint64_t proto_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int reply(struct proto *p, int ci, const struct mn_ctl_hdr *req, int32_t status,
		 const void *payload, uint32_t len)
{
	return mn_ctl_send(p->conns[ci].fd, req->type, req->req_id, status,
			   status < 0 ? NULL : payload, status < 0 ? 0 : len, NULL, 0,
			   PROTO_REPLY_TIMEOUT_MS);
}

/* ---- listens --------------------------------------------------------------- */

int pctl_listener(const struct proto *p, uint32_t ip, uint16_t port)
{
	for (int i = 0; i < PROTO_MAX_LISTENS; i++) {
		const struct proto_listen *l = &p->listens[i];

		if (l->used && l->port == port && (l->ip == 0 || l->ip == ip))
			return l->conn;
	}
	return -1;
}

static void release_listens(struct proto *p, int ci)
{
	for (int i = 0; i < PROTO_MAX_LISTENS; i++) {
		struct proto_listen *l = &p->listens[i];

		if (l->used && l->conn == ci) {
			portc_release(&p->port, p->cfg.ip, l->port, l->port, PROTO_CTL_TIMEOUT_MS);
			l->used = false;
		}
	}
}

static int on_listen(struct proto *p, int ci, const struct mn_ctl_msg *m)
{
	struct mn_tenant_listen req;
	int free_slot = -1, err;

	memcpy(&req, m->payload, sizeof(req));
	if (req.port == 0)
		return -EINVAL;
	if (req.ip != 0 && req.ip != p->cfg.ip)
		return -EADDRNOTAVAIL;
	if (req.port < p->cfg.listen_ports.lo || req.port > p->cfg.listen_ports.hi)
		return -EACCES;
	for (int i = 0; i < PROTO_MAX_LISTENS; i++) {
		struct proto_listen *l = &p->listens[i];

		if (l->used && l->port == req.port)
			return l->conn == ci ? 0 : -EADDRINUSE;
		if (!l->used && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		return -ENOSPC;
	err = portc_claim(&p->port, p->cfg.ip, req.port, req.port, PROTO_CTL_TIMEOUT_MS);
	if (err == 0) {
		err = pnet_listen(p, req.ip, req.port);
		if (err)
			portc_release(&p->port, p->cfg.ip, req.port, req.port, PROTO_CTL_TIMEOUT_MS);
	}
	if (err) {
		mn_warn("ctl", "nicd refused port %u for channel %" PRIu32 ": %s", req.port,
			p->conns[ci].channel_id, strerror(-err));
		return err == -ENOTCONN ? -EAGAIN : -EADDRINUSE;
	}
	p->listens[free_slot] = (struct proto_listen){
		.used = true, .ip = req.ip, .port = req.port, .conn = ci,
	};
	return 0;
}

/* ---- connections -------------------------------------------------------------- */

/* STATS reports channel counters since start: detached channels' too. */
static void stats_add(struct mn_chan_srv_stats *to, const struct mn_chan_srv_stats *st)
{
	to->tx_msgs += st->tx_msgs;
	to->tx_bytes += st->tx_bytes;
	to->rx_msgs += st->rx_msgs;
	to->rx_bytes += st->rx_bytes;
	to->rx_full += st->rx_full;
	to->bad_desc += st->bad_desc;
	to->bad_chain += st->bad_chain;
	to->send_capped += st->send_capped;
	to->recv_capped += st->recv_capped;
}

static void conn_close(struct proto *p, int ci, const char *why)
{
	struct proto_conn *c = &p->conns[ci];

	if (c->attached) {
		p->nattached--;
		stats_add(&p->gone, &c->srv.st);
		pnet_channel_gone(p, ci);
		release_listens(p, ci);
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->srv.kick_fd, NULL);
		mn_chan_srv_close(&c->srv, -ESHUTDOWN);
		mn_chan_srv_destroy(&c->srv);
		mn_info("ctl", "channel %" PRIu32 " of pid %d detached (%s)", c->channel_id,
			(int)c->pid, why);
	}
	free(c->idx);
	mn_ctl_rx_fini(&c->rx);
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	*c = (struct proto_conn){ .fd = -1 };
}

static bool creds_allowed(const struct proto *p, const struct proto_conn *c)
{
	return c->uid == 0 ||
	       ((p->cfg.app_uid == PROTO_ANY_UID || p->cfg.app_uid == c->uid) &&
		(p->cfg.app_gid == PROTO_ANY_GID || p->cfg.app_gid == c->gid));
}

static void accept_conns(struct proto *p)
{
	for (;;) {
		int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), ci;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
		struct proto_conn *c;

		if (fd < 0)
			return;
		for (ci = 0; ci < (int)p->nconns && p->conns[ci].fd >= 0; ci++)
			;
		if (ci == (int)p->nconns) {
			mn_warn_rl("ctl", "refusing a connection: all %u slots in use (limits.channels "
				   "%u, plus %u for machnetctl)", p->nconns, p->cfg.channels,
				   PROTO_ADMIN_CONNS);
			close(fd);
			continue;
		}
		c = &p->conns[ci];
		*c = (struct proto_conn){ .fd = fd, .since_ns = proto_now_ns() };
		mn_ctl_rx_init(&c->rx);
		mn_ctl_reserve_sndbuf(fd); /* answers never wait (PROTO_REPLY_TIMEOUT_MS) */
		if (mn_ctl_peer_cred(fd, &c->pid, &c->uid, &c->gid) != 0) {
			close(fd);
			c->fd = -1;
			continue;
		}
		c->allowed = creds_allowed(p, c);
		ev.data.u64 = EV(EV_CONN, ci);
		epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
	}
}

/* Connections that said HELLO as applications. */
static uint32_t app_conns(const struct proto *p)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < p->nconns; i++)
		n += p->conns[i].fd >= 0 && p->conns[i].hello && !p->conns[i].admin;
	return n;
}

static int on_hello(struct proto *p, int ci, const struct mn_ctl_msg *m)
{
	struct mn_ctl_hello h, mine = { .min_version = MN_CTL_VERSION,
					.max_version = MN_CTL_VERSION,
					.role = MN_TENANT_ROLE_SERVER };
	struct proto_conn *c = &p->conns[ci];
	int32_t status = 0;

	memcpy(&h, m->payload, sizeof(h));
	h.name[MN_CTL_NAME_MAX - 1] = '\0';
	snprintf(mine.name, sizeof(mine.name), "%s", p->cfg.name);
	if (h.min_version > MN_CTL_VERSION || h.max_version < MN_CTL_VERSION)
		status = -EPROTONOSUPPORT;
	else if ((h.role != MN_TENANT_ROLE_APP && h.role != MN_TENANT_ROLE_ADMIN) ||
		 strcmp(h.name, p->cfg.name) != 0)
		status = -ENOENT;
	else if (h.role == MN_TENANT_ROLE_APP && app_conns(p) >= p->cfg.channels)
		status = -EMFILE; /* the slots beyond stay machnetctl's */
	c->admin = h.role == MN_TENANT_ROLE_ADMIN;
	if (!c->allowed)
		mn_warn_rl("ctl", "pid %d (uid %u gid %u) may not use tenant %s: requests get -EACCES",
			   (int)c->pid, (unsigned int)c->uid, (unsigned int)c->gid, p->cfg.name);
	c->hello = status == 0;
	return mn_ctl_send(c->fd, MN_CTL_T_HELLO, m->hdr.req_id, status, status ? NULL : &mine,
			   status ? 0 : sizeof(mine), NULL, 0, PROTO_REPLY_TIMEOUT_MS) ?: status;
}

static int on_attach(struct proto *p, int ci, const struct mn_ctl_msg *m)
{
	struct proto_conn *c = &p->conns[ci];
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV(EV_KICK, ci) };
	struct mn_chan_params cp = {
		.channel_id = ++p->next_channel_id,
		.nbufs = p->cfg.channel_buffers,
		.buf_size = p->cfg.buffer_size,
		.max_msg_size = p->cfg.max_msg_size,
		.server_gen = p->server_gen,
		/* Half for receiving: queued sends never starve reassembly. */
		.recv_bufs = p->cfg.channel_buffers / 2,
	};
	struct mn_tenant_attached out;
	int fds[MN_CHAN_NFDS], err;

	if (c->attached)
		return reply(p, ci, &m->hdr, -EBUSY, NULL, 0);
	if (p->nattached >= p->cfg.channels) {
		mn_warn_rl("ctl", "pid %d: no channel left (limits.channels = %u)", (int)c->pid,
			   p->cfg.channels);
		return reply(p, ci, &m->hdr, -EMFILE, NULL, 0);
	}
	err = mn_chan_srv_create(&c->srv, &cp);
	if (err)
		return reply(p, ci, &m->hdr, err == -EINVAL ? -EINVAL : -ENOMEM, NULL, 0);
	c->idx = calloc(c->srv.max_chain, sizeof(*c->idx));
	if (!c->idx) {
		mn_chan_srv_destroy(&c->srv);
		return reply(p, ci, &m->hdr, -ENOMEM, NULL, 0);
	}
	c->attached = true;
	p->nattached++;
	c->channel_id = cp.channel_id;
	pnet_refill(&c->srv);
	epoll_ctl(p->epfd, EPOLL_CTL_ADD, c->srv.kick_fd, &ev);
	out = (struct mn_tenant_attached){
		.channel_id = cp.channel_id, .nbufs = cp.nbufs, .buf_size = cp.buf_size,
		.max_msg_size = cp.max_msg_size, .server_gen = p->server_gen,
		.server_pid = (uint32_t)getpid(),
	};
	fds[MN_CHAN_FD_REGION] = c->srv.reg.fd;
	fds[MN_CHAN_FD_KICK] = c->srv.kick_fd;
	fds[MN_CHAN_FD_RX] = c->srv.rx_fd;
	mn_info("ctl", "channel %" PRIu32 " attached by pid %d: %u buffers of %u B",
		cp.channel_id, (int)c->pid, cp.nbufs, cp.buf_size);
	return mn_ctl_send(c->fd, MN_TENANT_T_ATTACH, m->hdr.req_id, 0, &out, sizeof(out), fds,
			   MN_CHAN_NFDS, PROTO_REPLY_TIMEOUT_MS);
}

static int on_connect(struct proto *p, int ci, const struct mn_ctl_msg *m)
{
	struct proto_conn *c = &p->conns[ci];
	struct mn_tenant_connect req;
	struct mn_chan_flow flow;
	int err;

	memcpy(&req, m->payload, sizeof(req));
	if (c->connect_pending)
		return reply(p, ci, &m->hdr, -EALREADY, NULL, 0);
	err = pnet_connect(p, ci, &req, &flow);
	if (err == -EINPROGRESS) {
		c->connect_pending = true;
		c->connect_req_id = m->hdr.req_id;
		return 0;
	}
	if (err == 0) {
		struct mn_tenant_connected out = { .flow = flow };

		return reply(p, ci, &m->hdr, 0, &out, sizeof(out));
	}
	return reply(p, ci, &m->hdr, err, NULL, 0);
}

void pctl_connect_done(struct proto *p, int ci, int status, const struct mn_chan_flow *flow)
{
	struct proto_conn *c = &p->conns[ci];
	struct mn_tenant_connected out = { 0 };
	struct mn_ctl_hdr h = { .type = MN_TENANT_T_CONNECT };

	if (c->fd < 0 || !c->connect_pending)
		return;
	c->connect_pending = false;
	h.req_id = c->connect_req_id;
	if (flow)
		out.flow = *flow;
	if (reply(p, ci, &h, status, &out, sizeof(out)) < 0)
		conn_close(p, ci, "connect answer failed");
}

static int on_flow_req(struct proto *p, int ci, const struct mn_ctl_msg *m)
{
	struct mn_tenant_flow_req req;
	struct mn_tenant_flow_stats st;
	int err;

	memcpy(&req, m->payload, sizeof(req));
	if (m->hdr.type == MN_TENANT_T_CLOSE)
		return reply(p, ci, &m->hdr, pnet_close_flow(p, ci, &req.flow), NULL, 0);
	err = pnet_flow_stats(p, ci, &req.flow, &st);
	return reply(p, ci, &m->hdr, err, &st, sizeof(st));
}

/* ---- admin requests (machnetctl) --------------------------------------------- */

static int on_stats(struct proto *p, int ci, const struct mn_ctl_msg *m)
{
	struct mn_tenant_stats out = { 0 };
	struct mn_chan_srv_stats sum;

	snprintf(out.name, sizeof(out.name), "%s", p->cfg.name);
	snprintf(out.version, sizeof(out.version), "%s", MACHNET_VERSION);
	out.pid = (uint32_t)getpid();
	out.ip = p->cfg.ip;
	out.uptime_ns = proto_now_ns() - p->start_ns;
	out.server_gen = p->server_gen;
	out.channels = p->nattached;
	out.max_channels = p->cfg.channels;
	out.nicd_connected = p->port.sock >= 0;
	out.nicd_reconnects = p->port.reconnects;
	out.nicd_bad_desc = p->port.bad_desc;
	pnet_stats(p, &out);
	sum = p->gone;
	for (uint32_t i = 0; i < p->nconns; i++)
		if (p->conns[i].attached)
			stats_add(&sum, &p->conns[i].srv.st);
	out.ch_tx_msgs = sum.tx_msgs;
	out.ch_tx_bytes = sum.tx_bytes;
	out.ch_rx_msgs = sum.rx_msgs;
	out.ch_rx_bytes = sum.rx_bytes;
	out.ch_rx_full = sum.rx_full;
	out.ch_bad_desc = sum.bad_desc;
	out.ch_bad_chain = sum.bad_chain;
	out.ch_send_capped = sum.send_capped;
	out.ch_recv_capped = sum.recv_capped;
	return reply(p, ci, &m->hdr, 0, &out, sizeof(out));
}

static int on_flows(struct proto *p, int ci, const struct mn_ctl_msg *m)
{
	struct mn_tenant_flows_req req;
	struct mn_tenant_list_hdr *h;
	uint32_t max;
	size_t len;
	int err;

	memcpy(&req, m->payload, sizeof(req));
	max = req.max == 0 || req.max > MN_TENANT_MAX_LIST_FLOWS ? MN_TENANT_MAX_LIST_FLOWS : req.max;
	len = sizeof(*h) + (size_t)max * sizeof(struct mn_tenant_flow_entry);
	h = malloc(len);
	if (!h)
		return reply(p, ci, &m->hdr, -ENOMEM, NULL, 0);
	h->count = pnet_flows(p, req.start, max, (struct mn_tenant_flow_entry *)(h + 1),
			      &h->next_start);
	err = reply(p, ci, &m->hdr, 0, h,
		    (uint32_t)(sizeof(*h) + h->count * sizeof(struct mn_tenant_flow_entry)));
	free(h);
	return err;
}

static int dispatch_admin(struct proto *p, int ci, struct mn_ctl_msg *m)
{
	switch (m->hdr.type) {
	case MN_TENANT_T_STATS:
		return on_stats(p, ci, m);
	case MN_TENANT_T_FLOWS:
		return on_flows(p, ci, m);
	default:
		return reply(p, ci, &m->hdr, -EBADF, NULL, 0);
	}
}

static uint32_t channel_of(const struct mn_ctl_msg *m)
{
	uint32_t id;

	/* Every request but ATTACH and PING starts with the channel id. */
	memcpy(&id, m->payload, sizeof(id));
	return id;
}

static int dispatch(struct proto *p, int ci, struct mn_ctl_msg *m)
{
	struct proto_conn *c = &p->conns[ci];

	if (!c->hello)
		return m->hdr.type == MN_CTL_T_HELLO ? on_hello(p, ci, m) : -EPROTO;
	if (m->hdr.type == MN_CTL_T_PING)
		return reply(p, ci, &m->hdr, 0, NULL, 0);
	if (!c->allowed) {
		/* Answered so that it learns why; then its slot is freed. */
		reply(p, ci, &m->hdr, -EACCES, NULL, 0);
		return -EACCES;
	}
	if (c->admin)
		return dispatch_admin(p, ci, m);
	if (m->hdr.type == MN_TENANT_T_STATS || m->hdr.type == MN_TENANT_T_FLOWS)
		return reply(p, ci, &m->hdr, -EBADF, NULL, 0);
	if (m->hdr.type == MN_TENANT_T_ATTACH)
		return on_attach(p, ci, m);
	if (!c->attached || channel_of(m) != c->channel_id)
		return reply(p, ci, &m->hdr, -EBADF, NULL, 0);
	switch (m->hdr.type) {
	case MN_TENANT_T_DETACH:
		reply(p, ci, &m->hdr, 0, NULL, 0);
		return -ECONNRESET; /* the caller closes it */
	case MN_TENANT_T_LISTEN:
		return reply(p, ci, &m->hdr, on_listen(p, ci, m), NULL, 0);
	case MN_TENANT_T_CONNECT:
		return on_connect(p, ci, m);
	default:
		return on_flow_req(p, ci, m);
	}
}

/* Requests that have arrived whole; a partial one waits for more bytes. A
 * few per event at most: level-triggered epoll brings the rest. */
static void conn_readable(struct proto *p, int ci)
{
	size_t nspecs;
	const struct mn_ctl_spec *specs = mn_tenant_req_specs(&nspecs);
	static const struct mn_ctl_spec hello = { MN_CTL_T_HELLO, sizeof(struct mn_ctl_hello),
						  sizeof(struct mn_ctl_hello), 0 };

	for (int k = 0; k < 4; k++) {
		struct mn_ctl_msg m;
		int err = mn_ctl_recv_nb(p->conns[ci].fd, &p->conns[ci].rx, &m);

		if (err == 0)
			return;
		if (err == 1) {
			err = m.hdr.type == MN_CTL_T_HELLO ? mn_ctl_check(&m, &hello, 1)
							   : mn_ctl_check(&m, specs, nspecs);
			if (err == 0)
				err = dispatch(p, ci, &m);
			mn_ctl_msg_free(&m);
		}
		if (err < 0) {
			conn_close(p, ci, err == -EPIPE ? "hang-up" : err == -ECONNRESET ? "detach" :
					  strerror(-err));
			return;
		}
	}
}

/* Empty an eventfd; the ring it stands for is read by the next pass. */
static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing was pending. */
	}
}

/* Connections past PROTO_HELLO_NS without a HELLO, or refused, are closed
 * (checked about once a second). */
static void reap_silent(struct proto *p)
{
	uint64_t now = proto_now_ns();

	if (now - p->reaped_ns < 1000000000ull)
		return;
	p->reaped_ns = now;
	for (uint32_t i = 0; i < p->nconns; i++) {
		struct proto_conn *c = &p->conns[i];

		if (c->fd >= 0 && (!c->hello || !c->allowed) && now - c->since_ns > PROTO_HELLO_NS)
			conn_close(p, (int)i, c->hello ? "refused peer still connected" :
							 "no HELLO within 5 s");
	}
}

int pctl_poll(struct proto *p, int64_t timeout_ns)
{
	struct epoll_event ev[32];
	struct timespec ts = { .tv_sec = timeout_ns / 1000000000,
			       .tv_nsec = timeout_ns % 1000000000 };
	int nev = epoll_pwait2(p->epfd, ev, 32, &ts, NULL);

	for (int i = 0; i < nev; i++) {
		uint32_t type = (uint32_t)(ev[i].data.u64 >> 32), idx = (uint32_t)ev[i].data.u64;

		if (type == EV_LISTEN)
			accept_conns(p);
		else if (type == EV_CONN && p->conns[idx].fd >= 0)
			conn_readable(p, (int)idx);
		else if (type == EV_KICK && p->conns[idx].attached)
			mn_chan_srv_sleep_done(&p->conns[idx].srv);
		else if (type == EV_PORT)
			drain(p->port.rx_fd); /* level-triggered: it must be read */
	}
	reap_silent(p);
	return nev < 0 ? -errno : nev;
}

int pctl_open(struct proto *p)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV(EV_LISTEN, 0) };
	char path[sizeof(p->cfg.runtime_dir) + PROTO_NAME_MAX + 8];

	p->conns = calloc(p->nconns, sizeof(*p->conns));
	if (!p->conns)
		return -ENOMEM;
	for (uint32_t i = 0; i < p->nconns; i++)
		p->conns[i].fd = -1;
	if (mkdir(p->cfg.runtime_dir, 0755) != 0 && errno != EEXIST) {
		mn_err("ctl", "cannot create runtime directory %s: %s", p->cfg.runtime_dir,
		       strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/%s.sock", p->cfg.runtime_dir, p->cfg.name);
	/* Anyone may connect; SO_PEERCRED against app_uid/app_gid decides. */
	p->listen_fd = mn_ctl_listen(path, 0666);
	if (p->listen_fd < 0) {
		mn_err("ctl", "cannot listen on %s: %s%s", path, strerror(-p->listen_fd),
		       p->listen_fd == -EADDRINUSE ? " (this tenant's server already runs)" : "");
		return p->listen_fd;
	}
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0 || epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->listen_fd, &ev) != 0)
		return -errno;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = EV(EV_PORT, 0) };
	epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->port.rx_fd, &ev);
	mn_info("ctl", "tenant %s: applications attach at %s", p->cfg.name, path);
	return 0;
}

void pctl_close(struct proto *p)
{
	char path[sizeof(p->cfg.runtime_dir) + PROTO_NAME_MAX + 8];

	for (uint32_t i = 0; p->conns && i < p->nconns; i++)
		if (p->conns[i].fd >= 0)
			conn_close(p, (int)i, "shutdown");
	free(p->conns);
	p->conns = NULL;
	close(p->epfd);
	close(p->listen_fd);
	snprintf(path, sizeof(path), "%s/%s.sock", p->cfg.runtime_dir, p->cfg.name);
	unlink(path);
}
