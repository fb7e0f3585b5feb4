/* SPDX-License-Identifier: MIT */
/*
 * libmachnet: the Machnet API over a channel (ipc/channel.h) and the tenant
 * control socket (ipc/tenant.h).
 *
 * One unix connection per channel: HELLO, ATTACH, then the channel's
 * control requests, one at a time under ctl_lock. The channel dies with the
 * connection, so a crashed application's flows and buffers are the
 * server's to reclaim without any bookkeeping here.
 *
 * Locks: tx_lock guards the send side of the channel handle (tx and fill
 * rings, buffer cache), rx_lock the receive side (rx and free rings, the
 * flow-event queue, the wait bookkeeping), ctl_lock the socket. None is held
 * while sleeping.
 *
 * Everything the server wrote is validated by ipc/channel.c before use.
 */
#include "machnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "ctl.h"
#include "log.h"
#include "tenant.h"

#define API __attribute__((visibility("default")))

#define CTL_TIMEOUT_MS 5000
#define CONNECT_MARGIN_MS 2000 /* beyond the server's handshake timeout */
#define DETACH_TIMEOUT_MS 500
#define EVQ_SIZE 256u	       /* flow events kept for machnet_flow_error() */
#define CHAN_MAGIC 0x4d4e4348u /* "HCNM" */

/* The public types mirror the ABI ones byte for byte. */
_Static_assert(sizeof(MachnetFlow_t) == sizeof(struct mn_chan_flow) &&
		       offsetof(MachnetFlow_t, src_ip) == offsetof(struct mn_chan_flow, src_ip) &&
		       offsetof(MachnetFlow_t, dst_ip) == offsetof(struct mn_chan_flow, dst_ip) &&
		       offsetof(MachnetFlow_t, src_port) == offsetof(struct mn_chan_flow, src_port) &&
		       offsetof(MachnetFlow_t, dst_port) == offsetof(struct mn_chan_flow, dst_port),
	       "MachnetFlow_t is struct mn_chan_flow");
_Static_assert(sizeof(MachnetIovec_t) == sizeof(struct iovec) &&
		       offsetof(MachnetIovec_t, base) == offsetof(struct iovec, iov_base) &&
		       offsetof(MachnetIovec_t, len) == offsetof(struct iovec, iov_len),
	       "MachnetIovec_t is struct iovec");

struct flow_event {
	MachnetFlow_t flow;
	int reason;
};

struct machnet_channel {
	uint32_t magic;
	struct mn_chan_app ch;

	pthread_mutex_t ctl_lock;
	int sock;		/* -1 once broken */
	uint32_t req_id;
	int ctl_busy;		/* a request is in flight (atomic) */

	pthread_mutex_t tx_lock;
	uint64_t tx_cookie;
	uint64_t tx_msgs, tx_bytes, tx_refused;

	pthread_mutex_t rx_lock;
	unsigned int waiters;	/* threads sleeping in a receive */
	bool fd_armed;		/* machnet_channel_fd() was called */
	struct flow_event evq[EVQ_SIZE];
	uint32_t ev_head, ev_count;
	uint64_t rx_msgs, rx_bytes, events, events_dropped;

	int dead;		/* the server hung up (atomic) */
};

struct config {
	char tenant[MN_CTL_NAME_MAX];
	char path[256];
};

/* ------------------------------------------------------------------------
 * Set-up
 */

static int fail(int err)
{
	errno = err;
	return -1;
}

static bool tenant_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= MN_CTL_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int read_config(struct config *cfg)
{
	const char *tenant = getenv("MACHNET_TENANT");
	const char *dir = getenv("MACHNET_RUNTIME_DIR");
	const char *level = getenv("MACHNET_LOG_LEVEL");

	if (!tenant || !*tenant)
		tenant = MACHNET_DEFAULT_TENANT;
	if (!dir || !*dir)
		dir = MACHNET_DEFAULT_RUNTIME_DIR;
	if (level && mn_log_level_parse(level) >= 0)
		mn_log_set_level((enum mn_log_level)mn_log_level_parse(level));
	if (!tenant_name_ok(tenant)) {
		mn_err("machnet", "MACHNET_TENANT=\"%s\": need 1..%d characters of [A-Za-z0-9._-], not starting with '.'",
		       tenant, MN_CTL_NAME_MAX - 1);
		return -EINVAL;
	}
	snprintf(cfg->tenant, sizeof(cfg->tenant), "%s", tenant);
	if ((size_t)snprintf(cfg->path, sizeof(cfg->path), "%s/%s.sock", dir, tenant) >=
	    sizeof(cfg->path))
		return -ENAMETOOLONG;
	return 0;
}

/* Connect and HELLO; check that the peer is the tenant's server. */
static int open_session(const struct config *cfg)
{
	struct mn_ctl_hello peer;
	int fd = mn_ctl_connect(cfg->path, CTL_TIMEOUT_MS), err;

	if (fd < 0) {
		mn_err("machnet", "cannot reach tenant \"%s\" at %s: %s", cfg->tenant, cfg->path,
		       strerror(-fd));
		return fd;
	}
	err = mn_ctl_hello(fd, MN_TENANT_ROLE_APP, cfg->tenant, &peer, CTL_TIMEOUT_MS);
	if (err >= 0 && (peer.role != MN_TENANT_ROLE_SERVER || strcmp(peer.name, cfg->tenant) != 0)) {
		mn_err("machnet", "%s answered as \"%s\" (role %" PRIu32 "), not tenant \"%s\"'s server",
		       cfg->path, peer.name, peer.role, cfg->tenant);
		err = -EPROTO;
	}
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
}

API int machnet_init(void)
{
	struct config cfg;
	int fd, err = read_config(&cfg);

	if (err)
		return fail(-err);
	fd = open_session(&cfg);
	if (fd < 0)
		return fail(-fd);
	close(fd);
	return 0;
}

/* Send one request and wait for its answer. Caller holds ctl_lock. */
static int request_locked(struct machnet_channel *c, uint16_t type, const void *req,
			  uint32_t len, struct mn_ctl_msg *resp, int timeout_ms)
{
	uint32_t id = ++c->req_id;
	size_t nspecs;
	const struct mn_ctl_spec *specs = mn_tenant_resp_specs(&nspecs);
	int err;

	if (c->sock < 0)
		return __atomic_load_n(&c->dead, __ATOMIC_RELAXED) ? -ECONNRESET : -ENOTCONN;
	__atomic_store_n(&c->ctl_busy, 1, __ATOMIC_SEQ_CST);
	err = mn_ctl_send(c->sock, type, id, 0, req, len, NULL, 0, timeout_ms);
	err = err ? err : mn_ctl_recv(c->sock, resp, timeout_ms);
	__atomic_store_n(&c->ctl_busy, 0, __ATOMIC_SEQ_CST);
	if (err) {
		/* Out of step (timeout) or gone: this connection is finished. */
		mn_err("machnet", "channel %" PRIu32 ": %s request failed: %s", c->ch.id,
		       mn_tenant_type_name(type), strerror(-err));
		close(c->sock);
		__atomic_store_n(&c->sock, -1, __ATOMIC_RELAXED);
		if (err != -ETIMEDOUT) {
			__atomic_store_n(&c->dead, 1, __ATOMIC_RELAXED);
			err = -ECONNRESET;
		}
		return err;
	}
	if (resp->hdr.type != type || resp->hdr.req_id != id)
		err = -EPROTO;
	else if (resp->hdr.status < 0)
		err = resp->hdr.status;
	else if (mn_ctl_check(resp, specs, nspecs) != 0)
		err = -EPROTO;
	if (err)
		mn_ctl_msg_free(resp);
	return err;
}

static int request(struct machnet_channel *c, uint16_t type, const void *req, uint32_t len,
		   void *out, uint32_t out_len, int timeout_ms)
{
	struct mn_ctl_msg resp;
	int err;

	pthread_mutex_lock(&c->ctl_lock);
	err = request_locked(c, type, req, len, &resp, timeout_ms);
	pthread_mutex_unlock(&c->ctl_lock);
	if (err)
		return err;
	/* mn_ctl_check() pinned the length to the type's. */
	if (out && out_len)
		memcpy(out, resp.payload, out_len);
	mn_ctl_msg_free(&resp);
	return 0;
}

static void chan_free(struct machnet_channel *c)
{
	pthread_mutex_destroy(&c->ctl_lock);
	pthread_mutex_destroy(&c->tx_lock);
	pthread_mutex_destroy(&c->rx_lock);
	c->magic = 0;
	free(c);
}

static struct machnet_channel *chan_alloc(int sock)
{
	struct machnet_channel *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_init(&c->ctl_lock, NULL);
	pthread_mutex_init(&c->tx_lock, NULL);
	pthread_mutex_init(&c->rx_lock, NULL);
	c->sock = sock;
	return c;
}

/* ATTACH on a fresh session; map what comes back. */
static int attach(struct machnet_channel *c)
{
	struct mn_tenant_attach req = { 0 };
	struct mn_ctl_msg resp;
	int fds[MN_CHAN_NFDS], err;

	err = request_locked(c, MN_TENANT_T_ATTACH, &req, sizeof(req), &resp, CTL_TIMEOUT_MS);
	if (err)
		return err;
	for (unsigned int i = 0; i < MN_CHAN_NFDS; i++)
		fds[i] = mn_ctl_take_fd(&resp, i);
	mn_ctl_msg_free(&resp);
	err = mn_chan_app_map(&c->ch, fds[MN_CHAN_FD_REGION], fds[MN_CHAN_FD_KICK],
			      fds[MN_CHAN_FD_RX]);
	if (err) {
		for (unsigned int i = 0; i < MN_CHAN_NFDS; i++)
			close(fds[i]);
		mn_err("machnet", "refused the channel the server sent: %s", strerror(-err));
	}
	return err;
}

API void *machnet_attach(void)
{
	struct machnet_channel *c;
	struct config cfg;
	int sock, err = read_config(&cfg);

	if (err)
		goto fail;
	sock = open_session(&cfg);
	if (sock < 0) {
		err = sock;
		goto fail;
	}
	c = chan_alloc(sock);
	if (!c) {
		close(sock);
		err = -ENOMEM;
		goto fail;
	}
	err = attach(c);
	if (err) {
		if (c->sock >= 0)
			close(c->sock);
		chan_free(c);
		goto fail;
	}
	c->magic = CHAN_MAGIC;
	return c;

fail:
	errno = -err;
	return NULL;
}

static struct machnet_channel *chan_of(const void *ctx)
{
	struct machnet_channel *c = (struct machnet_channel *)(uintptr_t)ctx;

	if (!c || c->magic != CHAN_MAGIC) {
		errno = EINVAL;
		return NULL;
	}
	return c;
}

API int machnet_detach(void *channel_ctx)
{
	struct machnet_channel *c = chan_of(channel_ctx);
	struct mn_tenant_chan req;
	struct mn_ctl_msg resp;

	if (!c)
		return -1;
	c->magic = 0;
	req = (struct mn_tenant_chan){ .channel_id = c->ch.id };
	/* Hand the cached buffers back, then say goodbye; the server treats a
	 * hang-up the same way, so neither step may hold us up. */
	mn_chan_app_flush_cache(&c->ch);
	mn_chan_app_kick(&c->ch);
	pthread_mutex_lock(&c->ctl_lock);
	if (request_locked(c, MN_TENANT_T_DETACH, &req, sizeof(req), &resp, DETACH_TIMEOUT_MS) == 0)
		mn_ctl_msg_free(&resp);
	if (c->sock >= 0)
		close(c->sock);
	pthread_mutex_unlock(&c->ctl_lock);
	mn_chan_app_unmap(&c->ch);
	chan_free(c);
	return 0;
}

/* ------------------------------------------------------------------------
 * Control requests
 */

static int parse_ip(const char *s, uint32_t *ip)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ip = ntohl(a.s_addr);
	return 0;
}

API int machnet_listen(void *channel_ctx, const char *local_ip, uint16_t port)
{
	struct machnet_channel *c = chan_of(channel_ctx);
	struct mn_tenant_listen req = { 0 };
	int err;

	if (!c)
		return -1;
	if (parse_ip(local_ip, &req.ip) != 0 || port == 0)
		return fail(EINVAL);
	req.channel_id = c->ch.id;
	req.port = port;
	err = request(c, MN_TENANT_T_LISTEN, &req, sizeof(req), NULL, 0, CTL_TIMEOUT_MS);
	return err ? fail(-err) : 0;
}

API int machnet_connect(void *channel_ctx, const char *local_ip, const char *remote_ip,
			uint16_t remote_port, MachnetFlow_t *flow)
{
	struct machnet_channel *c = chan_of(channel_ctx);
	struct mn_tenant_connect req = { 0 };
	struct mn_tenant_connected resp;
	int err;

	if (!c)
		return -1;
	if (!flow || parse_ip(local_ip, &req.local_ip) != 0 ||
	    parse_ip(remote_ip, &req.remote_ip) != 0 || req.remote_ip == 0 || remote_port == 0)
		return fail(EINVAL);
	req.channel_id = c->ch.id;
	req.remote_port = remote_port;
	req.timeout_ms = MACHNET_CONNECT_TIMEOUT_MS;
	err = request(c, MN_TENANT_T_CONNECT, &req, sizeof(req), &resp, sizeof(resp),
		      MACHNET_CONNECT_TIMEOUT_MS + CONNECT_MARGIN_MS);
	if (err)
		return fail(-err);
	memcpy(flow, &resp.flow, sizeof(*flow));
	return 0;
}

static void flow_req(struct mn_tenant_flow_req *req, const struct machnet_channel *c,
		     MachnetFlow_t flow)
{
	*req = (struct mn_tenant_flow_req){ .channel_id = c->ch.id };
	memcpy(&req->flow, &flow, sizeof(flow));
}

API int machnet_close(const void *channel_ctx, MachnetFlow_t flow)
{
	struct machnet_channel *c = chan_of(channel_ctx);
	struct mn_tenant_flow_req req;
	int err;

	if (!c)
		return -1;
	flow_req(&req, c, flow);
	err = request(c, MN_TENANT_T_CLOSE, &req, sizeof(req), NULL, 0, CTL_TIMEOUT_MS);
	return err ? fail(-err) : 0;
}

API int machnet_flow_stats(const void *channel_ctx, MachnetFlow_t flow,
			   struct MachnetFlowStats *stats)
{
	struct machnet_channel *c = chan_of(channel_ctx);
	struct mn_tenant_flow_req req;
	struct mn_tenant_flow_stats s;
	int err;

	if (!c)
		return -1;
	if (!stats)
		return fail(EINVAL);
	flow_req(&req, c, flow);
	err = request(c, MN_TENANT_T_FLOW_STATS, &req, sizeof(req), &s, sizeof(s), CTL_TIMEOUT_MS);
	if (err)
		return fail(-err);
	*stats = (struct MachnetFlowStats){
		.state = s.state, .srtt_us = s.srtt_us, .rttvar_us = s.rttvar_us,
		.min_rtt_us = s.min_rtt_us, .rto_us = s.rto_us, .cwnd_bytes = s.cwnd_bytes,
		.peer_window_bytes = s.peer_window_bytes, .inflight_bytes = s.inflight_bytes,
		.tx_msgs = s.tx_msgs, .tx_bytes = s.tx_bytes, .rx_msgs = s.rx_msgs,
		.rx_bytes = s.rx_bytes, .tx_pkts = s.tx_pkts, .rx_pkts = s.rx_pkts,
		.retransmits = s.retransmits, .fast_retransmits = s.fast_retransmits,
		.timeouts = s.timeouts, .age_ns = s.age_ns,
	};
	memcpy(&stats->flow, &s.flow, sizeof(stats->flow));
	return 0;
}

/* ------------------------------------------------------------------------
 * Sending
 */

/* Why the channel cannot carry data, or 0. */
static int chan_down(struct machnet_channel *c)
{
	if (__atomic_load_n(&c->dead, __ATOMIC_RELAXED))
		return -ECONNRESET;
	if (mn_chan_app_status(&c->ch, NULL) != MN_CHAN_ST_OPEN)
		return -ESHUTDOWN;
	return 0;
}

/* One message; caller holds tx_lock. */
static int send_locked(struct machnet_channel *c, const MachnetMsgHdr_t *h)
{
	int err = chan_down(c);

	if (err == 0 && (h->msg_iovlen > 0 && !h->msg_iov))
		err = -EINVAL;
	if (err == 0)
		err = mn_chan_app_send(&c->ch, (const struct mn_chan_flow *)&h->flow_info,
				       (const struct iovec *)h->msg_iov, h->msg_iovlen,
				       h->msg_size, h->flags, ++c->tx_cookie);
	if (err) {
		c->tx_refused++;
		return err;
	}
	c->tx_msgs++;
	c->tx_bytes += h->msg_size;
	return 0;
}

API int machnet_sendmmsg(const void *channel_ctx, const MachnetMsgHdr_t *msghdr_iovec, int vlen)
{
	struct machnet_channel *c = chan_of(channel_ctx);
	int sent = 0, err = 0;

	if (!c)
		return -1;
	if (vlen < 0 || (vlen > 0 && !msghdr_iovec))
		return fail(EINVAL);
	pthread_mutex_lock(&c->tx_lock);
	while (sent < vlen && (err = send_locked(c, &msghdr_iovec[sent])) == 0)
		sent++;
	if (sent)
		mn_chan_app_kick(&c->ch);
	pthread_mutex_unlock(&c->tx_lock);
	if (err)
		errno = -err;
	return sent;
}

API int machnet_sendmsg(const void *channel_ctx, const MachnetMsgHdr_t *msghdr)
{
	int sent;

	if (!msghdr)
		return fail(EINVAL);
	sent = machnet_sendmmsg(channel_ctx, msghdr, 1);
	return sent == 1 ? 0 : -1;
}

API int machnet_send(const void *channel_ctx, MachnetFlow_t flow, const void *buf, size_t len)
{
	MachnetIovec_t iov = { (void *)(uintptr_t)buf, len };
	MachnetMsgHdr_t h = { .msg_size = (uint32_t)len, .flow_info = flow, .msg_iov = &iov,
			      .msg_iovlen = 1 };

	if (len > UINT32_MAX)
		return fail(EMSGSIZE);
	if (!buf)
		return fail(EINVAL);
	return machnet_sendmsg(channel_ctx, &h);
}

/* ------------------------------------------------------------------------
 * Receiving
 */

static void poke(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: saturated, readable anyway. */
	}
}

static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to drain. */
	}
}

/* Record a flow event for machnet_flow_error(). Caller holds rx_lock. */
static void record_event(struct machnet_channel *c, const struct mn_chan_desc *d)
{
	struct flow_event ev;

	c->events++;
	switch (d->type) {
	case MN_CHAN_EV_FAILED:
	case MN_CHAN_EV_TX_REFUSED:
		ev.reason = d->status < 0 && d->status > -4096 ? -d->status : EIO;
		break;
	case MN_CHAN_EV_CLOSED:
		ev.reason = EPIPE;
		break;
	default: /* CONNECTED, ACCEPTED, and types from newer servers */
		return;
	}
	memcpy(&ev.flow, &d->flow, sizeof(ev.flow));
	if (c->ev_count == EVQ_SIZE) {
		c->ev_head = (c->ev_head + 1) % EVQ_SIZE; /* drop the oldest */
		c->ev_count--;
		c->events_dropped++;
	}
	c->evq[(c->ev_head + c->ev_count) % EVQ_SIZE] = ev;
	c->ev_count++;
}

/*
 * Take the next message into @iov; events on the way are recorded
 * (*@event set). Keeps the pollable fd honest: it is drained only when rx
 * was seen empty, and re-armed if entries turned up after the drain.
 * Returns 1, 0, or -errno. Caller holds rx_lock.
 */
static int recv_locked(struct machnet_channel *c, MachnetMsgHdr_t *h, bool *event)
{
	struct mn_chan_desc d;
	bool drained = false;
	int r;

	for (;;) {
		r = mn_chan_app_recv(&c->ch, &d, (const struct iovec *)h->msg_iov, h->msg_iovlen);
		if (r == 1 && d.type >= MN_CHAN_EV_CONNECTED) {
			record_event(c, &d);
			*event = true;
			continue;
		}
		if (r == 0 && c->fd_armed && !drained) {
			drain(c->ch.rx_fd);
			drained = true;
			continue;
		}
		break;
	}
	if (drained && r != 0 && mn_chan_app_rx_pending(&c->ch) > 0)
		poke(c->ch.rx_fd);
	if (r == 1) {
		mn_chan_app_kick(&c->ch); /* its buffers went back on free */
		h->msg_size = d.len;
		memcpy(&h->flow_info, &d.flow, sizeof(h->flow_info));
		h->flags = 0;
		c->rx_msgs++;
		c->rx_bytes += d.len;
		return 1;
	}
	if (r == -EPROTO)
		mn_chan_app_kick(&c->ch);
	if (r == 0) {
		int down = chan_down(c);

		return down ? down : 0;
	}
	return r;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * The control socket is readable while no request is in flight: the server
 * hung up (it never writes unasked). Only conclude so holding ctl_lock,
 * with the socket still readable: a response to another thread's request
 * could have made it readable a moment ago.
 */
static void check_hangup(struct machnet_channel *c)
{
	struct pollfd p;
	char b;

	if (pthread_mutex_trylock(&c->ctl_lock) != 0)
		return;
	p = (struct pollfd){ .fd = c->sock, .events = POLLIN };
	if (c->sock >= 0 && poll(&p, 1, 0) == 1 &&
	    recv(c->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) {
		mn_warn("machnet", "channel %" PRIu32 ": the protocol server hung up", c->ch.id);
		close(c->sock);
		__atomic_store_n(&c->sock, -1, __ATOMIC_RELAXED);
		__atomic_store_n(&c->dead, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&c->ctl_lock);
}

/* Sleep until rx may hold something, the server goes away, or @ms pass. */
static void wait_rx(struct machnet_channel *c, int ms)
{
	struct pollfd p[2] = {
		{ .fd = c->ch.rx_fd, .events = POLLIN },
		{ .fd = -1, .events = POLLIN },
	};
	int pending;

	pthread_mutex_lock(&c->rx_lock);
	if (c->waiters++ == 0 && !c->fd_armed)
		mn_chan_app_set_wait(&c->ch, MN_CHAN_WAIT_RX);
	/* Re-check after the seq-cst store of app_wait (ipc/channel.h). */
	pending = mn_chan_app_rx_pending(&c->ch);
	pthread_mutex_unlock(&c->rx_lock);
	if (!__atomic_load_n(&c->ctl_busy, __ATOMIC_SEQ_CST))
		p[1].fd = __atomic_load_n(&c->sock, __ATOMIC_RELAXED);
	if (pending == 0 && mn_chan_app_status(&c->ch, NULL) == MN_CHAN_ST_OPEN &&
	    poll(p, 2, ms) > 0 && p[1].revents)
		check_hangup(c);
	pthread_mutex_lock(&c->rx_lock);
	if (--c->waiters == 0 && !c->fd_armed)
		mn_chan_app_set_wait(&c->ch, 0);
	if (!c->fd_armed)
		drain(c->ch.rx_fd);
	pthread_mutex_unlock(&c->rx_lock);
}

static int recvmsg_timeout(struct machnet_channel *c, MachnetMsgHdr_t *h, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_ms() + (uint64_t)timeout_ms;

	if (h->msg_iovlen > 0 && !h->msg_iov)
		return -EINVAL;
	for (;;) {
		bool event = false;
		uint64_t now;
		int r;

		pthread_mutex_lock(&c->rx_lock);
		r = recv_locked(c, h, &event);
		pthread_mutex_unlock(&c->rx_lock);
		if (r != 0 || event || timeout_ms == 0)
			return r;
		now = now_ms();
		if (now >= deadline)
			return 0;
		wait_rx(c, deadline == UINT64_MAX ? -1 :
			   (int)(deadline - now > INT32_MAX ? INT32_MAX : deadline - now));
	}
}

API int machnet_recvmsg_timeout(const void *channel_ctx, MachnetMsgHdr_t *msghdr, int timeout_ms)
{
	struct machnet_channel *c = chan_of(channel_ctx);
	int r;

	if (!c)
		return -1;
	if (!msghdr)
		return fail(EINVAL);
	r = recvmsg_timeout(c, msghdr, timeout_ms);
	return r < 0 ? fail(-r) : r;
}

API int machnet_recvmsg(const void *channel_ctx, MachnetMsgHdr_t *msghdr)
{
	return machnet_recvmsg_timeout(channel_ctx, msghdr, 0);
}

API ssize_t machnet_recv_timeout(const void *channel_ctx, void *buf, size_t len,
				 MachnetFlow_t *flow, int timeout_ms)
{
	MachnetIovec_t iov = { buf, len };
	MachnetMsgHdr_t h = { .msg_iov = &iov, .msg_iovlen = 1 };
	int r;

	if (!buf && len > 0)
		return fail(EINVAL);
	r = machnet_recvmsg_timeout(channel_ctx, &h, timeout_ms);
	if (r <= 0)
		return r;
	if (flow)
		*flow = h.flow_info;
	return (ssize_t)h.msg_size;
}

API ssize_t machnet_recv(const void *channel_ctx, void *buf, size_t len, MachnetFlow_t *flow)
{
	return machnet_recv_timeout(channel_ctx, buf, len, flow, 0);
}

API int machnet_channel_fd(const void *channel_ctx)
{
	struct machnet_channel *c = chan_of(channel_ctx);

	if (!c)
		return -1;
	pthread_mutex_lock(&c->rx_lock);
	if (!c->fd_armed) {
		c->fd_armed = true;
		mn_chan_app_set_wait(&c->ch, MN_CHAN_WAIT_RX);
		/* Whatever arrived before the flag was visible. */
		if (mn_chan_app_rx_pending(&c->ch) != 0 ||
		    mn_chan_app_status(&c->ch, NULL) != MN_CHAN_ST_OPEN)
			poke(c->ch.rx_fd);
	}
	pthread_mutex_unlock(&c->rx_lock);
	return c->ch.rx_fd;
}

API int machnet_flow_error(const void *channel_ctx, MachnetFlow_t *flow, int *reason)
{
	struct machnet_channel *c = chan_of(channel_ctx);
	struct mn_chan_desc d;
	int found = 0;

	if (!c)
		return -1;
	pthread_mutex_lock(&c->rx_lock);
	/* Events at the head of rx, up to the first message. */
	while (mn_chan_app_peek(&c->ch, &d) == 1 && d.type >= MN_CHAN_EV_CONNECTED &&
	       mn_chan_app_recv(&c->ch, &d, NULL, 0) == 1)
		record_event(c, &d);
	if (c->ev_count) {
		struct flow_event *ev = &c->evq[c->ev_head];

		if (flow)
			*flow = ev->flow;
		if (reason)
			*reason = ev->reason;
		c->ev_head = (c->ev_head + 1) % EVQ_SIZE;
		c->ev_count--;
		found = 1;
	}
	pthread_mutex_unlock(&c->rx_lock);
	return found;
}

API int machnet_channel_counters(const void *channel_ctx, struct MachnetChannelCounters *out)
{
	struct machnet_channel *c = chan_of(channel_ctx);

	if (!c)
		return -1;
	if (!out)
		return fail(EINVAL);
	*out = (struct MachnetChannelCounters){
		.channel_id = c->ch.id, .nbufs = c->ch.nbufs,
		.buf_size = c->ch.payload + MN_CHAN_BUFHDR_SIZE, .max_msg_size = c->ch.max_msg,
	};
	pthread_mutex_lock(&c->tx_lock);
	out->bufs_cached = c->ch.ncache;
	out->tx_msgs = c->tx_msgs;
	out->tx_bytes = c->tx_bytes;
	out->tx_refused = c->tx_refused;
	out->bad_from_server = c->ch.st.bad_fill;
	pthread_mutex_unlock(&c->tx_lock);
	pthread_mutex_lock(&c->rx_lock);
	out->rx_msgs = c->rx_msgs;
	out->rx_bytes = c->rx_bytes;
	out->flow_events = c->events;
	out->events_dropped = c->events_dropped;
	out->bad_from_server += c->ch.st.bad_rx;
	pthread_mutex_unlock(&c->rx_lock);
	return 0;
}
