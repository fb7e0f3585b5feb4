/* SPDX-License-Identifier: MIT */
/*
 * The protocol server's data side: frames from nicd go to the transport,
 * messages from channels go to the transport, and the transport's
 * callbacks build frames and move message bytes in and out of channel
 * buffer chains.
 *
 * Message handles are indices into a table of message slots; each slot
 * holds the chain of one message (allocated per message: a known cost on
 * the path of large messages, kept simple until it is measured).
 *
 * Known limits: a restarted server formats its state afresh (adopting it
 * is a later issue); next hops are learned from received
 * frames and resolved through nicd synchronously at connect time.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "pkt.h"
#include "proto.h"
#include "transport.h"

#define BURST 32u
#define ETH_IP_UDP 42u
#define RESOLVE_MS 1000
#define TIMER_SLACK_NS 50000ull

/*
 * A message the transport holds (its handle is the slot index). Plain data
 * in the tenant state region, like the transport's own state: the chain is
 * named by its channel and first buffer, its links live in the channel's
 * region, so a restarted server can find every unacknowledged or
 * half-reassembled message again. The per-slot index array (idx[] in
 * struct proto_net) is only a process-local cache of the chain.
 */
struct pmsg {
	int32_t ci;	     /* channel slot; -1: free slot */
	uint32_t channel_id; /* the channel's id (stable across a restart) */
	uint32_t n;	     /* buffers */
	uint32_t len;	     /* bytes */
	uint32_t first;	     /* first buffer of the chain */
	uint32_t next_free;
	struct mn_chan_desc d; /* tx: the descriptor, for a retry or a refusal */
};
_Static_assert(sizeof(struct pmsg) == 24 + sizeof(struct mn_chan_desc), "pmsg is shared state");

struct pflow {
	int ci;		/* owning channel, -1 */
	bool connecting; /* a CONNECT waits for the handshake */
	bool timed_out;	 /* ... and its time is up: the abort answers -ETIMEDOUT */
	uint64_t connect_deadline;
	bool rx_blocked; /* rx_msg_alloc refused: call tp_rx_ready later */
	uint32_t rx_need; /* receive room that lets a refused message through */
};

struct proto_net {
	struct tp tp;
	struct tp_cfg tcfg;
	struct mn_region state; /* kind TENANT: the transport's state block */
	struct pflow *flows;
	struct pmsg *msgs;	/* in the state region */
	uint32_t **idx;		/* process-local chain caches, one per slot */
	uint32_t nmsgs;
	uint32_t free_head;
	int *stalled;	   /* per channel: a tx message slot the transport refused (-EAGAIN), or -1 */
	uint64_t deadline; /* next transport timer */
	bool timers_dirty;
	uint64_t port_checked; /* last look for a nicd hang-up */
	uint32_t rx_blocked;   /* flows waiting for receive buffers */
	uint32_t nconnecting;  /* flows whose CONNECT waits for the handshake */
	uint16_t next_eph;
	uint64_t rx_not_udp;
	uint64_t deliver_full;
	uint64_t no_neigh;
};

/* ---- message slots ------------------------------------------------------------ */

static int msg_get(struct proto_net *n, int ci, uint32_t count)
{
	uint32_t s = n->free_head;
	struct pmsg *m;

	if (s == UINT32_MAX)
		return -ENOBUFS;
	m = &n->msgs[s];
	n->idx[s] = malloc((size_t)count * sizeof(**n->idx));
	if (!n->idx[s])
		return -ENOMEM;
	n->free_head = m->next_free;
	m->ci = ci;
	m->n = count;
	return (int)s;
}

static void msg_put(struct proto_net *n, uint32_t s)
{
	struct pmsg *m = &n->msgs[s];

	free(n->idx[s]);
	n->idx[s] = NULL;
	*m = (struct pmsg){ .ci = -1, .next_free = n->free_head };
	n->free_head = s;
}

/* The channel server of a message, or NULL if the channel is gone. */
static struct mn_chan_srv *msg_srv(struct proto *p, const struct pmsg *m)
{
	return m->ci >= 0 && p->conns[m->ci].attached ? &p->conns[m->ci].srv : NULL;
}

/* ---- neighbours -------------------------------------------------------------- */

static const uint8_t *neigh_find(struct proto *p, uint32_t ip)
{
	for (int i = 0; i < PROTO_MAX_NEIGH; i++)
		if (p->neigh[i].valid && p->neigh[i].ip == ip)
			return p->neigh[i].mac;
	return NULL;
}

static void neigh_learn(struct proto *p, uint32_t ip, const uint8_t mac[6])
{
	int slot = (int)(ip % PROTO_MAX_NEIGH);

	for (int i = 0; i < PROTO_MAX_NEIGH; i++) {
		if (p->neigh[i].valid && p->neigh[i].ip == ip) {
			slot = i;
			break;
		}
	}
	p->neigh[slot].ip = ip;
	memcpy(p->neigh[slot].mac, mac, 6);
	p->neigh[slot].valid = true;
}

/* ---- transport callbacks ------------------------------------------------------- */

static void put_be16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static void put_be32(uint8_t *b, uint32_t v)
{
	put_be16(b, (uint16_t)(v >> 16));
	put_be16(b + 2, (uint16_t)v);
}

/* Ethernet/IPv4/UDP headers for @udp_len bytes of UDP payload; nicd fills
 * in both checksums (MN_PKT_F_TX_CSUM). */
static void frame_headers(uint8_t *f, const uint8_t smac[6], const uint8_t dmac[6],
			  const struct tp_tuple *t, uint32_t udp_len)
{
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	put_be16(f + 12, 0x0800);
	f[14] = 0x45;
	f[15] = 0;
	put_be16(f + 16, (uint16_t)(20 + 8 + udp_len));
	put_be16(f + 18, 0);
	put_be16(f + 20, 0x4000); /* DF */
	f[22] = 64;
	f[23] = 17;
	put_be16(f + 24, 0);
	put_be32(f + 26, t->local_ip);
	put_be32(f + 30, t->remote_ip);
	put_be16(f + 34, t->local_port);
	put_be16(f + 36, t->remote_port);
	put_be16(f + 38, (uint16_t)(8 + udp_len));
	put_be16(f + 40, 0);
}

static int cb_send_pkt(void *ctx, uint32_t flow, const struct tp_tuple *t,
		       const struct wire_hdr *h, uint64_t handle, uint32_t off, uint32_t len)
{
	struct proto *p = ctx;
	struct proto_net *n = p->net;
	const uint8_t *dmac = neigh_find(p, t->remote_ip);
	struct mn_pkt_desc d;
	uint8_t *f;

	(void)flow;
	if (!dmac) {
		n->no_neigh++;
		return -EHOSTUNREACH;
	}
	if (ETH_IP_UDP + WIRE_HDR_LEN + len > p->port.frame_size || portc_alloc(&p->port, &d) != 0)
		return -ENOBUFS;
	f = portc_frame(&p->port, &d);
	frame_headers(f, p->port.info.mac, dmac, t, WIRE_HDR_LEN + len);
	wire_encode(h, f + ETH_IP_UDP);
	if (len) {
		struct pmsg *m = &n->msgs[handle];
		struct mn_chan_srv *s = msg_srv(p, m);

		if (!s || mn_chan_chain_read(&s->view, n->idx[m - n->msgs], m->n, off,
					     f + ETH_IP_UDP + WIRE_HDR_LEN, len) != 0) {
			portc_free(&p->port, &d);
			return -EIO;
		}
	}
	d.len = ETH_IP_UDP + WIRE_HDR_LEN + len;
	d.flags = MN_PKT_F_TX_CSUM;
	if (portc_tx(&p->port, 0, &d, 1) != 1) {
		portc_free(&p->port, &d);
		return -ENOBUFS;
	}
	return 0;
}

/* The channel of a flow; an accepted flow belongs to its listener. */
static int flow_channel(struct proto *p, uint32_t flow)
{
	struct proto_net *n = p->net;
	struct tp_flow_info fi;

	if (n->flows[flow].ci >= 0)
		return n->flows[flow].ci;
	if (tp_flow_info(&n->tp, flow, &fi) != 0)
		return -1;
	n->flows[flow].ci = pctl_listener(p, fi.tuple.local_ip, fi.tuple.local_port);
	return n->flows[flow].ci;
}

static int cb_rx_msg_alloc(void *ctx, uint32_t flow, uint32_t msg_len, bool head,
			   uint64_t *handle)
{
	struct proto *p = ctx;
	struct proto_net *n = p->net;
	int ci = flow_channel(p, flow), s, got;
	struct mn_chan_srv *srv;
	uint32_t need;

	if (ci < 0 || !p->conns[ci].attached)
		return -EMSGSIZE; /* nobody can ever take it: reset the flow */
	srv = &p->conns[ci].srv;
	if (msg_len > srv->max_msg)
		return -EMSGSIZE;
	s = msg_get(n, ci, mn_chan_nbufs_for(msg_len, srv->payload));
	if (s < 0)
		goto blocked;
	got = mn_chan_srv_chain_alloc(srv, msg_len, head ? 0 : MN_CHAN_ALLOC_AHEAD, n->idx[s]);
	if (got < 0) {
		msg_put(n, (uint32_t)s);
		goto blocked;
	}
	n->msgs[s].len = msg_len;
	n->msgs[s].first = n->idx[s][0];
	n->msgs[s].channel_id = p->conns[ci].channel_id;
	*handle = (uint64_t)s;
	return 0;
blocked:
	/* Room that lets some refused message of the flow through: the
	 * smallest since the flow was last let go. */
	need = mn_chan_nbufs_for(msg_len, srv->payload) + (head ? 0 : srv->max_chain);
	if (!n->flows[flow].rx_blocked) {
		n->flows[flow].rx_blocked = true;
		n->flows[flow].rx_need = need;
		n->rx_blocked++;
	} else if (need < n->flows[flow].rx_need) {
		n->flows[flow].rx_need = need;
	}
	return -ENOBUFS;
}

static void cb_rx_msg_write(void *ctx, uint32_t flow, uint64_t handle, uint32_t off,
			    const void *src, uint32_t len)
{
	struct proto *p = ctx;
	struct proto_net *n = p->net;
	struct pmsg *m = &n->msgs[handle];
	struct mn_chan_srv *s = msg_srv(p, m);

	(void)flow;
	if (s)
		mn_chan_chain_write(&s->view, n->idx[m - n->msgs], m->n, off, src, len);
}

static struct mn_chan_flow chan_flow(const struct tp_tuple *t, bool from_remote)
{
	struct mn_chan_flow f = { t->local_ip, t->remote_ip, t->local_port, t->remote_port };

	if (from_remote)
		f = (struct mn_chan_flow){ t->remote_ip, t->local_ip, t->remote_port, t->local_port };
	return f;
}

static void cb_rx_msg_deliver(void *ctx, uint32_t flow, uint64_t handle, uint32_t len)
{
	struct proto *p = ctx;
	struct proto_net *n = p->net;
	struct pmsg *m = &n->msgs[handle];
	struct mn_chan_srv *s = msg_srv(p, m);
	struct tp_flow_info fi;

	if (s && tp_flow_info(&n->tp, flow, &fi) == 0) {
		struct mn_chan_flow cf = chan_flow(&fi.tuple, true);

		/* rx holds every buffer twice over: full only if events piled up. */
		if (mn_chan_srv_deliver(s, &cf, n->idx[m - n->msgs], m->n, len, handle) != 1) {
			n->deliver_full++;
			mn_warn_rl("net", "channel %" PRIu32 ": rx ring full, a %" PRIu32
				   "-byte message dropped", s->id, len);
			mn_chan_srv_chain_free(s, n->idx[m - n->msgs], m->n);
		}
	}
	msg_put(n, (uint32_t)handle);
}

static void cb_rx_msg_free(void *ctx, uint32_t flow, uint64_t handle)
{
	struct proto *p = ctx;
	struct proto_net *n = p->net;
	struct pmsg *m = &n->msgs[handle];
	struct mn_chan_srv *s = msg_srv(p, m);

	(void)flow;
	if (s)
		mn_chan_srv_chain_free(s, n->idx[m - n->msgs], m->n);
	msg_put(n, (uint32_t)handle);
}

static void cb_tx_msg_done(void *ctx, uint32_t flow, uint64_t handle, int status)
{
	struct proto *p = ctx;
	struct proto_net *n = p->net;
	struct pmsg *m = &n->msgs[handle];
	struct mn_chan_srv *s = msg_srv(p, m);

	(void)flow;
	(void)status; /* a failure reaches the application as the flow's event */
	if (s)
		mn_chan_srv_chain_free(s, n->idx[m - n->msgs], m->n);
	msg_put(n, (uint32_t)handle);
}

static int reason_errno(enum tp_reason r)
{
	switch (r) {
	case TP_R_NONE: return 0;
	case TP_R_TIMEOUT: return -ETIMEDOUT;
	case TP_R_IDLE: return -ETIMEDOUT;
	case TP_R_RESET: return -ECONNRESET;
	case TP_R_REFUSED: return -ECONNREFUSED;
	case TP_R_ABORTED: return -ECONNABORTED;
	case TP_R_MSG_REFUSED: return -EMSGSIZE;
	case TP_R_NO_RESOURCES: return -ENOSPC;
	default: return -EPROTO;
	}
}

static void post(struct proto *p, int ci, uint16_t type, const struct tp_tuple *t, int32_t st)
{
	struct mn_chan_flow cf = chan_flow(t, false);

	if (ci >= 0 && p->conns[ci].attached &&
	    mn_chan_srv_post(&p->conns[ci].srv, type, &cf, st, 0) != 1)
		mn_warn_rl("net", "channel %" PRIu32 ": rx ring full, flow event %u lost",
			   p->conns[ci].channel_id, type);
}

static void cb_flow_event(void *ctx, uint32_t flow, enum tp_event ev, enum tp_reason reason)
{
	struct proto *p = ctx;
	struct proto_net *n = p->net;
	struct pflow *pf = &n->flows[flow];
	struct tp_flow_info fi;
	struct mn_chan_flow cf;
	int ci = flow_channel(p, flow);

	if (tp_flow_info(&n->tp, flow, &fi) != 0)
		return;
	cf = chan_flow(&fi.tuple, false);
	switch (ev) {
	case TP_EV_ESTABLISHED:
		if (pf->connecting) {
			pf->connecting = false;
			n->nconnecting--;
			pctl_connect_done(p, ci, 0, &cf);
		}
		return;
	case TP_EV_ACCEPTED:
		post(p, ci, MN_CHAN_EV_ACCEPTED, &fi.tuple, 0);
		return;
	case TP_EV_CLOSED:
	case TP_EV_FAILED:
		if (pf->connecting) {
			n->nconnecting--;
			pctl_connect_done(p, ci, pf->timed_out ? -ETIMEDOUT :
						 reason_errno(reason) ?: -ECONNRESET, NULL);
		} else if (ev == TP_EV_CLOSED && reason == TP_R_NONE)
			post(p, ci, MN_CHAN_EV_CLOSED, &fi.tuple, 0);
		else
			post(p, ci, MN_CHAN_EV_FAILED, &fi.tuple, reason_errno(reason));
		if (pf->rx_blocked)
			n->rx_blocked--;
		*pf = (struct pflow){ .ci = -1 };
		return;
	}
}

static const struct tp_ops ops = {
	.send_pkt = cb_send_pkt,
	.rx_msg_alloc = cb_rx_msg_alloc,
	.rx_msg_write = cb_rx_msg_write,
	.rx_msg_deliver = cb_rx_msg_deliver,
	.rx_msg_free = cb_rx_msg_free,
	.tx_msg_done = cb_tx_msg_done,
	.flow_event = cb_flow_event,
};

/* ---- frames from nicd ----------------------------------------------------------- */

static unsigned int rx_frames(struct proto *p, uint64_t now)
{
	struct proto_net *n = p->net;
	struct mn_pkt_desc d[BURST];
	int got = portc_rx(&p->port, 0, d, BURST);

	for (int i = 0; i < got; i++) {
		const uint8_t *f = portc_frame(&p->port, &d[i]);
		struct pkt_info pi;
		enum mn_drop why;

		/* nicd verified the checksums (MN_PKT_F_CSUM_OK). */
		if (pkt_parse(f, d[i].len, 0, &pi, &why) == PKT_UDP) {
			struct tp_tuple t = { pi.dst_ip, pi.src_ip, pi.dst_port, pi.src_port };

			/* Replies go back the way this came: a peer, or the gateway. */
			neigh_learn(p, pi.src_ip, pi.src_mac);
			tp_rx_pkt(&n->tp, &t, f + pi.payload_off, pi.payload_len, now);
			n->timers_dirty = true;
		} else {
			n->rx_not_udp++;
		}
		portc_free(&p->port, &d[i]);
	}
	portc_poll_comp(&p->port, 0, NULL);
	return got > 0 ? (unsigned int)got : 0;
}

/* ---- messages from channels -------------------------------------------------------- */

/*
 * Buffers kept on a channel's fill ring: enough for one largest message and
 * a burst, no more. The send half of the pool bounds what is lent in all
 * (ipc/channel.h, budgets); the receive half is never lent on fill.
 */
uint32_t pnet_fill_target(const struct mn_chan_srv *s)
{
	uint32_t want = s->max_chain + 32;

	return want < s->pool.nbufs ? want : s->pool.nbufs;
}

void pnet_refill(struct mn_chan_srv *s)
{
	mn_chan_srv_refill(s, pnet_fill_target(s));
}

/* Hand message slot @s to its flow; false if the transport pushes back. */
static bool tx_submit(struct proto *p, int ci, int s, const struct mn_chan_desc *d,
		      uint64_t now)
{
	struct proto_net *n = p->net;
	struct tp_tuple t = { d->flow.src_ip, d->flow.dst_ip, d->flow.src_port, d->flow.dst_port };
	int flow = tp_flow_lookup(&n->tp, &t), err;

	if (flow < 0 || n->flows[flow].ci != ci) {
		err = -ENOTCONN;
	} else {
		err = tp_send_msg(&n->tp, (uint32_t)flow, (uint64_t)s, n->msgs[s].len, now);
		n->timers_dirty = true;
		if (err == -EAGAIN)
			return false;
	}
	if (err) {
		mn_chan_srv_post(&p->conns[ci].srv, MN_CHAN_EV_TX_REFUSED, &d->flow, err, d->cookie);
		mn_chan_srv_chain_free(&p->conns[ci].srv, n->idx[s], n->msgs[s].n);
		msg_put(n, (uint32_t)s);
	}
	return true;
}

static unsigned int tx_channel(struct proto *p, int ci, uint64_t now)
{
	struct proto_net *n = p->net;
	struct proto_conn *c = &p->conns[ci];
	unsigned int work = 0;
	struct mn_chan_desc d;

	if (n->stalled[ci] >= 0) {
		if (!tx_submit(p, ci, n->stalled[ci], &n->msgs[n->stalled[ci]].d, now))
			return 0;
		n->stalled[ci] = -1;
		work++;
	}
	for (unsigned int i = 0; i < BURST; i++) {
		int rc = mn_chan_srv_tx_take(&c->srv, &d, c->idx), s;

		if (rc == 0)
			break;
		work++;
		if (rc < 0) {
			if (rc == -EBADMSG)
				break;
			mn_chan_srv_post(&c->srv, MN_CHAN_EV_TX_REFUSED, &d.flow, rc, d.cookie);
			continue;
		}
		s = msg_get(n, ci, d.nbufs);
		if (s < 0) {
			mn_chan_srv_post(&c->srv, MN_CHAN_EV_TX_REFUSED, &d.flow, -ENOBUFS, d.cookie);
			mn_chan_srv_chain_free(&c->srv, c->idx, d.nbufs);
			continue;
		}
		memcpy(n->idx[s], c->idx, d.nbufs * sizeof(*c->idx));
		n->msgs[s].len = d.len;
		n->msgs[s].first = d.idx;
		n->msgs[s].channel_id = c->channel_id;
		n->msgs[s].d = d;
		if (!tx_submit(p, ci, s, &d, now)) {
			n->stalled[ci] = s;
			break;
		}
	}
	return work;
}

/* Let the flows of channel @ci whose refused message fits now try again
 * (a window update asks their peers to retransmit). */
static void rx_unblock(struct proto *p, int ci, uint64_t now)
{
	struct proto_net *n = p->net;
	uint32_t room = mn_chan_srv_recv_room(&p->conns[ci].srv);

	for (uint32_t f = 0; f < n->tcfg.max_flows; f++) {
		if (n->flows[f].ci == ci && n->flows[f].rx_blocked && n->flows[f].rx_need <= room) {
			n->flows[f].rx_blocked = false;
			n->rx_blocked--;
			tp_rx_ready(&n->tp, f, now);
			n->timers_dirty = true;
		}
	}
}

static unsigned int channels(struct proto *p, uint64_t now)
{
	unsigned int work = 0;

	for (uint32_t ci = 0; ci < p->nconns; ci++) {
		struct proto_conn *c = &p->conns[ci];
		int freed;

		if (!c->attached)
			continue;
		work += tx_channel(p, (int)ci, now);
		freed = mn_chan_srv_free_poll(&c->srv, 256);
		if (freed > 0)
			work += (unsigned int)freed;
		/* Received chains come back on free: retry blocked receives
		 * when the receive half has room again. */
		if (p->net->rx_blocked && (freed > 0 || mn_chan_srv_recv_room(&c->srv) >= c->srv.max_chain))
			rx_unblock(p, (int)ci, now);
		pnet_refill(&c->srv);
		mn_chan_srv_wake(&c->srv);
	}
	return work;
}

/* CONNECTs past their timeout_ms end now: the flow is aborted (RST) and
 * the request answered -ETIMEDOUT (from cb_flow_event). */
static void connect_timeouts(struct proto *p, uint64_t now)
{
	struct proto_net *n = p->net;

	for (uint32_t f = 0; f < n->tcfg.max_flows && n->nconnecting; f++) {
		struct pflow *pf = &n->flows[f];

		if (pf->connecting && now >= pf->connect_deadline) {
			pf->timed_out = true;
			tp_abort(&n->tp, f, now);
			n->timers_dirty = true;
		}
	}
}

unsigned int pnet_poll(struct proto *p)
{
	struct proto_net *n = p->net;
	uint64_t now = proto_now_ns();
	unsigned int work;

	/* A hang-up check is a syscall: once a millisecond is plenty. */
	if (now - n->port_checked >= 1000000ull) {
		portc_check(&p->port);
		n->port_checked = now;
		if (n->nconnecting)
			connect_timeouts(p, now);
	}
	work = rx_frames(p, now) + channels(p, now);
	/*
	 * tp_timer() scans every flow slot. Calls that may arm a timer only
	 * pull the next scan to within TIMER_SLACK_NS instead of forcing one
	 * per pass: sends and acks go out inline, and the timers (RTO >= 1 ms,
	 * probes, keepalive, retries of refused sends) tolerate the slack.
	 */
	if (n->timers_dirty) {
		if (n->deadline > now + TIMER_SLACK_NS)
			n->deadline = now + TIMER_SLACK_NS;
		n->timers_dirty = false;
	}
	if (now >= n->deadline) {
		n->deadline = tp_timer(&n->tp, now);
		for (uint32_t ci = 0; ci < p->nconns; ci++)
			if (p->conns[ci].attached)
				mn_chan_srv_wake(&p->conns[ci].srv);
	}
	return work;
}

bool pnet_pending(struct proto *p)
{
	return mn_ring_count(&p->port.q[0].rx) > 0 ||
	       p->net->deadline <= proto_now_ns() + 20000;
}

uint64_t pnet_next_deadline(struct proto *p)
{
	return p->net->deadline;
}

/* ---- requests from applications --------------------------------------------------- */

static int find_flow(struct proto *p, int ci, const struct mn_chan_flow *f)
{
	struct proto_net *n = p->net;
	struct tp_tuple t = { f->src_ip, f->dst_ip, f->src_port, f->dst_port };
	int flow = tp_flow_lookup(&n->tp, &t);

	if (flow < 0) { /* the flow of a received message: swapped */
		t = (struct tp_tuple){ f->dst_ip, f->src_ip, f->dst_port, f->src_port };
		flow = tp_flow_lookup(&n->tp, &t);
	}
	return flow >= 0 && flow_channel(p, (uint32_t)flow) == ci ? flow : -ENOENT;
}

static int pick_ephemeral(struct proto *p, uint32_t lip, uint32_t rip, uint16_t rport)
{
	struct proto_net *n = p->net;
	uint32_t span = (uint32_t)p->cfg.ephemeral_ports.hi - p->cfg.ephemeral_ports.lo + 1;

	for (uint32_t i = 0; i < span; i++) {
		uint16_t port = (uint16_t)(p->cfg.ephemeral_ports.lo +
					   (n->next_eph + i) % span);
		struct tp_tuple t = { lip, rip, port, rport };

		if (tp_flow_lookup(&n->tp, &t) < 0) {
			n->next_eph = (uint16_t)((n->next_eph + i + 1) % span);
			return port;
		}
	}
	return -EADDRINUSE;
}

int pnet_connect(struct proto *p, int ci, const struct mn_tenant_connect *req,
		 struct mn_chan_flow *flow)
{
	struct proto_net *n = p->net;
	uint32_t lip = req->local_ip ? req->local_ip : p->cfg.ip;
	uint8_t mac[6];
	int port, f, err;
	struct tp_tuple t;

	if (req->flags & MN_TENANT_CONNECT_F_ASYNC)
		return -EOPNOTSUPP;
	if (req->remote_ip == 0 || req->remote_port == 0 || req->flags)
		return -EINVAL;
	if (lip != p->cfg.ip)
		return -EADDRNOTAVAIL;
	port = req->local_port ? req->local_port :
				 pick_ephemeral(p, lip, req->remote_ip, req->remote_port);
	if (port < 0)
		return port;
	if (!neigh_find(p, req->remote_ip)) {
		/* Synchronous, bounded by nicd's ARP timeout (known limit). */
		err = portc_resolve(&p->port, req->remote_ip, mac, RESOLVE_MS);
		if (err)
			return err == -ENOTCONN ? -EAGAIN : -EHOSTUNREACH;
		neigh_learn(p, req->remote_ip, mac);
	}
	t = (struct tp_tuple){ lip, req->remote_ip, (uint16_t)port, req->remote_port };
	f = tp_connect(&n->tp, &t, proto_now_ns());
	n->timers_dirty = true;
	if (f < 0)
		return f == -ENOSPC ? -EMFILE : f;
	n->flows[f] = (struct pflow){
		.ci = ci, .connecting = true,
		.connect_deadline = proto_now_ns() +
				    (req->timeout_ms ? req->timeout_ms : PROTO_CONNECT_MS) * 1000000ull,
	};
	n->nconnecting++;
	*flow = (struct mn_chan_flow){ lip, req->remote_ip, (uint16_t)port, req->remote_port };
	return -EINPROGRESS;
}

int pnet_listen(struct proto *p, uint32_t ip, uint16_t port)
{
	int err = tp_listen(&p->net->tp, ip, port);

	return err == -EEXIST ? 0 : err;
}

int pnet_close_flow(struct proto *p, int ci, const struct mn_chan_flow *flow)
{
	int f = find_flow(p, ci, flow), err;

	if (f < 0)
		return -ENOENT;
	err = tp_close(&p->net->tp, (uint32_t)f, proto_now_ns());
	p->net->timers_dirty = true;
	return err == -EALREADY ? 0 : err;
}

static uint32_t us(uint64_t ns)
{
	return ns / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(ns / 1000);
}

/* A failed flow is gone at once (its channel got MN_CHAN_EV_FAILED), so
 * MN_TENANT_FLOW_FAILED never shows here. */
static uint32_t flow_state(const struct tp_flow_info *fi)
{
	switch (fi->state) {
	case TP_ESTABLISHED:
		return fi->closing ? MN_TENANT_FLOW_CLOSING : MN_TENANT_FLOW_ESTABLISHED;
	case TP_TIME_WAIT:
		return MN_TENANT_FLOW_CLOSED;
	default:
		return MN_TENANT_FLOW_CONNECTING;
	}
}

static void flow_figures(struct proto *p, const struct tp_flow_info *fip,
			 struct mn_tenant_flow_stats *out)
{
	const struct tp_flow_info fi = *fip;

	*out = (struct mn_tenant_flow_stats){
		.flow = chan_flow(&fi.tuple, false),
		.state = flow_state(&fi),
		.srtt_us = us(fi.srtt_ns),
		.rttvar_us = us(fi.rttvar_ns),
		.min_rtt_us = us(fi.min_rtt_ns),
		.age_ns = proto_now_ns() - fi.created_ns,
		.rto_us = us(fi.rto_ns),
		.cwnd_bytes = (uint32_t)(fi.cwnd * p->net->tcfg.mss),
		.peer_window_bytes = fi.peer_wnd * p->net->tcfg.mss,
		.inflight_bytes = fi.inflight * p->net->tcfg.mss,
		.tx_msgs = fi.stats.tx_msgs,
		.tx_bytes = fi.stats.tx_bytes,
		.rx_msgs = fi.stats.rx_msgs,
		.rx_bytes = fi.stats.rx_bytes,
		.tx_pkts = fi.stats.tx_pkts,
		.rx_pkts = fi.stats.rx_pkts,
		.retransmits = fi.stats.retx_rto + fi.stats.retx_fast,
		.fast_retransmits = fi.stats.retx_fast,
		.timeouts = fi.stats.rto_fired,
		.spurious_timeouts = fi.stats.rto_spurious,
	};
}

int pnet_flow_stats(struct proto *p, int ci, const struct mn_chan_flow *flow,
		    struct mn_tenant_flow_stats *out)
{
	int f = find_flow(p, ci, flow);
	struct tp_flow_info fi;

	if (f < 0 || tp_flow_info(&p->net->tp, (uint32_t)f, &fi) != 0)
		return -ENOENT;
	flow_figures(p, &fi, out);
	return 0;
}

uint32_t pnet_flows(struct proto *p, uint32_t start, uint32_t max,
		    struct mn_tenant_flow_entry *out, uint32_t *next)
{
	struct proto_net *n = p->net;
	uint32_t count = 0, f;

	for (f = start; f < n->tcfg.max_flows && count < max; f++) {
		struct tp_flow_info fi;
		int ci = n->flows[f].ci;

		if (tp_flow_info(&n->tp, f, &fi) != 0)
			continue;
		out[count] = (struct mn_tenant_flow_entry){ 0 };
		if (ci >= 0 && p->conns[ci].attached) {
			out[count].channel_id = p->conns[ci].channel_id;
			out[count].app_pid = (uint32_t)p->conns[ci].pid;
		}
		flow_figures(p, &fi, &out[count].st);
		count++;
	}
	*next = f < n->tcfg.max_flows ? f : MN_TENANT_LIST_END;
	return count;
}

void pnet_stats(struct proto *p, struct mn_tenant_stats *out)
{
	struct proto_net *n = p->net;
	struct tp_stats st;
	uint64_t bad = 0;

	tp_stats(&n->tp, &st);
	for (unsigned int i = 0; i < WIRE_E_NR; i++)
		bad += st.rx_bad[i];
	out->flows = (uint32_t)st.flows_active;
	out->max_flows = n->tcfg.max_flows;
	out->rx_pkts = st.rx_pkts;
	out->rx_no_flow = st.rx_no_flow;
	out->rx_bad = bad + st.rx_bad_tuple + st.rx_bad_conn + st.rx_bad_state;
	out->rst_sent = st.rst_sent;
	out->tx_fail = st.tx_fail;
	out->flows_opened = st.flows_opened;
	out->flows_closed = st.flows_closed;
	out->flows_failed = st.flows_failed;
	out->syn_refused = st.syn_no_listener + st.syn_no_slot;
	out->halfopen_dropped = st.halfopen_dropped;
	out->rx_not_udp = n->rx_not_udp;
	out->no_neigh = n->no_neigh;
	out->deliver_full = n->deliver_full;
}

void pnet_channel_gone(struct proto *p, int ci)
{
	struct proto_net *n = p->net;
	uint64_t now = proto_now_ns();

	if (n->stalled[ci] >= 0) {
		msg_put(n, (uint32_t)n->stalled[ci]);
		n->stalled[ci] = -1;
	}
	/* The application is gone: its flows end now (RST), their messages
	 * with them. Buffers go with the channel's region. */
	for (uint32_t f = 0; f < n->tcfg.max_flows; f++) {
		if (n->flows[f].ci == ci) {
			if (n->flows[f].connecting)
				n->nconnecting--;
			n->flows[f].connecting = false;
			tp_abort(&n->tp, f, now);
			if (n->flows[f].rx_blocked)
				n->rx_blocked--;
			n->flows[f] = (struct pflow){ .ci = -1 };
		}
	}
	/* The aborts returned every message through the callbacks; nothing of
	 * this channel should be left, but never leak a slot. */
	for (uint32_t s = 0; s < n->nmsgs; s++)
		if (n->msgs[s].ci == ci)
			msg_put(n, s);
	for (int i = 0; i < PROTO_MAX_LISTENS; i++)
		if (p->listens[i].used && p->listens[i].conn == ci)
			tp_unlisten(&n->tp, p->listens[i].ip, p->listens[i].port);
	n->timers_dirty = true;
}

/* ---- diagnostics ------------------------------------------------------------------- */

void pnet_dump(struct proto *p)
{
	struct proto_net *n = p->net;
	struct tp_stats st;
	unsigned int shown = 0;

	tp_stats(&n->tp, &st);
	mn_info("net", "transport: rx %" PRIu64 " pkts, no flow %" PRIu64 ", bad tuple %" PRIu64
		", bad conn %" PRIu64 ", bad state %" PRIu64 ", rst sent %" PRIu64 ", tx fail %" PRIu64
		", flows opened %" PRIu64 " closed %" PRIu64 " failed %" PRIu64,
		st.rx_pkts, st.rx_no_flow, st.rx_bad_tuple, st.rx_bad_conn, st.rx_bad_state,
		st.rst_sent, st.tx_fail, st.flows_opened, st.flows_closed, st.flows_failed);
	mn_info("net", "glue: rx not udp %" PRIu64 ", deliveries refused (rx full) %" PRIu64
		", sends without a next hop %" PRIu64, n->rx_not_udp, n->deliver_full, n->no_neigh);
	for (uint32_t f = 0; f < n->tcfg.max_flows && shown < 64; f++) {
		struct tp_flow_info fi;
		const struct tp_flow_stats *fs = &fi.stats;

		if (tp_flow_info(&n->tp, f, &fi) != 0)
			continue;
		shown++;
		mn_info("net", "flow %" PRIu32 " %u.%u.%u.%u:%u -> %u.%u.%u.%u:%u state %" PRIu32
			" channel %d: srtt %" PRIu64 " us rto %" PRIu64 " us cwnd %.2f inflight %" PRIu32
			" queued %" PRIu32 " peer_wnd %" PRIu32 "; tx %" PRIu64 " pkts %" PRIu64
			" msgs, retx rto %" PRIu64 " fast %" PRIu64 ", rto fired %" PRIu64
			" (spurious %" PRIu64 ")"
			"; rx %" PRIu64 " pkts %" PRIu64 " msgs, dup %" PRIu64 " ooo %" PRIu64
			" beyond wnd %" PRIu64 " nobuf %" PRIu64 " bad msg %" PRIu64 " bad ack %" PRIu64,
			f, fi.tuple.local_ip >> 24, (fi.tuple.local_ip >> 16) & 255,
			(fi.tuple.local_ip >> 8) & 255, fi.tuple.local_ip & 255, fi.tuple.local_port,
			fi.tuple.remote_ip >> 24, (fi.tuple.remote_ip >> 16) & 255,
			(fi.tuple.remote_ip >> 8) & 255, fi.tuple.remote_ip & 255, fi.tuple.remote_port,
			fi.state, n->flows[f].ci, fi.srtt_ns / 1000, fi.rto_ns / 1000, fi.cwnd,
			fi.inflight, fi.tx_queued, fi.peer_wnd, fs->tx_pkts, fs->tx_msgs, fs->retx_rto,
			fs->retx_fast, fs->rto_fired, fs->rto_spurious, fs->rx_pkts, fs->rx_msgs, fs->rx_dup, fs->rx_ooo,
			fs->rx_beyond_wnd, fs->rx_nobuf, fs->rx_bad_msg, fs->rx_bad_ack);
	}
}

/* ---- set-up ------------------------------------------------------------------------ */

static void transport_cfg(const struct proto_cfg *c, struct tp_cfg *t)
{
	tp_cfg_default(t);
	t->max_flows = c->flows;
	t->max_listen = PROTO_MAX_LISTENS;
	t->max_msg = c->max_msg_size;
	t->max_retries = c->max_retries;
	t->rto_init_ns = c->rto_init_us * 1000ull;
	t->rto_min_ns = c->rto_min_us * 1000ull;
	t->rto_max_ns = c->rto_max_us * 1000ull;
	t->keepalive_ns = c->keepalive_ms * 1000000ull;
	t->idle_ns = c->idle_timeout_ms * 1000000ull;
	t->cc.mode = c->cc == PROTO_CC_FIXED ? CC_FIXED : CC_SWIFT;
	t->cc.fixed_cwnd = c->window;
	t->cc.max_cwnd = c->window < t->tx_wnd ? c->window : t->tx_wnd;
	t->cc.init_cwnd = c->init_window;
	t->cc.target_ns = c->target_delay_us * 1000ull;
	/*
	 * Swift may shrink a window below one packet and pace (incast). On
	 * shared vCPUs a scheduling hiccup inflates one RTT sample to
	 * milliseconds, and at cwnd 0.01 the pacing gap (100 x srtt) stalled
	 * flows for seconds (seen in msg_gen). One packet per RTT is the floor
	 * here until the incast case is measured on real hardware.
	 */
	t->cc.min_cwnd = 1.0;
	if (getrandom(&t->seed, sizeof(t->seed), 0) != sizeof(t->seed))
		t->seed = proto_now_ns();
}

int pnet_open(struct proto *p)
{
	struct proto_net *n = calloc(1, sizeof(*n));
	size_t len;
	int err = -ENOMEM;

	if (!n)
		return -ENOMEM;
	p->net = n;
	transport_cfg(&p->cfg, &n->tcfg);
	len = tp_memsize(&n->tcfg);
	if (len == 0) {
		mn_err("net", "the transport settings are inconsistent (see the message above)");
		return -EINVAL;
	}
	n->nmsgs = p->cfg.flows * n->tcfg.tx_msgs + p->cfg.channels * 64u;
	/*
	 * The transport's state is plain data addressed by index, in a shared
	 * region of its own, so that a restarted server can adopt it (a later
	 * step: today each start formats it afresh).
	 */
	{
		struct mn_region_spec spec = {
			.kind = MN_REGION_KIND_TENANT, .nsections = 2,
			.sec = { { 1, len }, { 2, (uint64_t)n->nmsgs * sizeof(struct pmsg) } },
		};
		char name[64];

		snprintf(name, sizeof(name), "machnet-state-%s", p->cfg.name);
		err = mn_region_create(&n->state, name, &spec, 0);
		if (err)
			return err;
	}
	n->flows = calloc(n->tcfg.max_flows, sizeof(*n->flows));
	n->msgs = mn_region_section(&n->state, 1, NULL);
	n->idx = calloc(n->nmsgs, sizeof(*n->idx));
	n->stalled = calloc(p->nconns, sizeof(*n->stalled));
	if (!n->flows || !n->idx || !n->stalled)
		return -ENOMEM;
	for (uint32_t f = 0; f < n->tcfg.max_flows; f++)
		n->flows[f].ci = -1;
	for (uint32_t s = 0; s < n->nmsgs; s++)
		n->msgs[s] = (struct pmsg){ .ci = -1, .next_free = s + 1 < n->nmsgs ? s + 1 : UINT32_MAX };
	for (uint32_t ci = 0; ci < p->nconns; ci++)
		n->stalled[ci] = -1;
	err = tp_init(&n->tp, mn_region_section(&n->state, 0, NULL), len, &n->tcfg, &ops, p);
	if (err)
		return err;
	/* Every local port of the tenant at once: listen and ephemeral. */
	err = portc_claim(&p->port, p->cfg.ip, p->cfg.ephemeral_ports.lo,
			  p->cfg.ephemeral_ports.hi, PROTO_CTL_TIMEOUT_MS);
	if (err && err != -ENOTCONN) {
		mn_err("net", "nicd refused the ephemeral ports %u-%u: %s; check [tenant.%s] ports in nicd.ini",
		       p->cfg.ephemeral_ports.lo, p->cfg.ephemeral_ports.hi, strerror(-err),
		       p->cfg.name);
		return err;
	}
	n->deadline = UINT64_MAX;
	mn_info("net", "transport: %u flows, %s congestion control, mss %u, %zu bytes of state",
		n->tcfg.max_flows, proto_cc_name(p->cfg.cc), n->tcfg.mss, len);
	return 0;
}

void pnet_close(struct proto *p)
{
	struct proto_net *n = p->net;

	if (!n)
		return;
	if (n->idx)
		for (uint32_t s = 0; s < n->nmsgs; s++)
			free(n->idx[s]);
	free(n->idx);
	free(n->flows);
	free(n->stalled);
	mn_region_unmap(&n->state);
	free(n);
	p->net = NULL;
}
