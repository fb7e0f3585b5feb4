/* SPDX-License-Identifier: MIT */
/*
 * The transport core. Reading order: state layout, helpers, sending
 * (flush), receiving (ACK side, then DATA side), the connection state
 * machine (SYN, SYN-ACK, RST, close), timers, then the public API.
 * docs/wire.md is the protocol these functions implement.
 */
#include "transport.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "log.h"

/* ---- state layout (everything in the caller's block, by index) ---- */

struct tp_shm {
	uint32_t magic;	  /* TP_SHM_MAGIC, written last by tp_init() */
	uint32_t version; /* TP_SHM_VERSION */
	uint64_t size;	  /* bytes of the block in use */
	uint64_t off_flows, off_txm, off_txp, off_rxm, off_rxb;
	uint64_t off_hconn, off_htuple, off_listen;
	uint32_t nbuckets; /* per hash table, power of two */
	uint32_t nflows;   /* flows not TP_FREE */
	uint64_t rng;	   /* splitmix64 state */
	struct tp_cfg cfg;
	struct tp_stats stats;
};

struct tp_listen {
	uint32_t ip; /* 0: any */
	uint16_t port;
	uint16_t used;
};

/* One queued message; its index (free-running) is its msg_id. */
struct tp_txmsg {
	uint64_t handle;
	uint32_t len;
	uint32_t seg_off;  /* bytes already cut into packets */
	uint32_t last_seq; /* sequence number of its last packet, once seg_off == len */
	uint32_t pad;
};

#define TXP_SACKED 0x01	  /* the peer reported it in a SACK bitmap */
#define TXP_LOST 0x02	  /* deemed lost, waiting to be retransmitted */
#define TXP_LOST_RTO 0x04 /* ... by the retransmission timer (for stats) */
#define TXP_FIN 0x08	  /* the FIN, not a DATA fragment */

/* One unacked packet, at slot seq % tx_wnd. */
struct tp_txpkt {
	uint64_t tx_ns;	   /* last transmission */
	uint32_t msg_id;
	uint32_t frag_off;
	uint32_t tx_order; /* per-flow transmission counter at the last transmission */
	uint16_t len;
	uint8_t flags;	   /* TXP_* */
	uint8_t tx_count;
};

/* One message being reassembled, at slot msg_id % rx_wnd. */
struct tp_rxmsg {
	uint64_t handle;
	uint32_t msg_id;
	uint32_t len;
	uint32_t rcvd; /* new payload bytes written so far */
	uint32_t used;
};

/* Flow flags. Closing is flags on TP_ESTABLISHED (docs/wire.md, "Close"). */
#define FF_ACTIVE 0x0001      /* we connected (events: ESTABLISHED, not ACCEPTED) */
#define FF_FIN_QUEUED 0x0002  /* close requested: a FIN follows the queued data */
#define FF_FIN_SENT 0x0004    /* the FIN has sequence number fin_seq */
#define FF_PEER_FIN_SEEN 0x0008 /* the peer's FIN (peer_fin_seq) arrived, maybe out of order */
#define FF_PEER_FIN 0x0010    /* ... and everything before it: the peer is done */
#define FF_RX_BLOCKED 0x0020  /* rx_msg_alloc() refused: advertise a zero window */
#define FF_ECHO 0x0040	      /* ts_recent not echoed yet */
#define FF_TX_BLOCKED 0x0080  /* send_pkt() refused a frame: tp_timer() retries */
#define FF_PEER_WND0 0x0100   /* the peer's last window was zero */
#define FF_RTT_VALID 0x0200   /* srtt/rttvar hold a measurement */

struct tp_flow {
	uint32_t state; /* enum tp_state */
	uint32_t flags; /* FF_* */
	struct tp_tuple tuple;
	uint32_t local_conn;
	uint32_t peer_conn;
	uint32_t next_conn;  /* hash chain by local_conn (flow index, TP_NONE ends) */
	uint32_t next_tuple; /* hash chain by tuple */
	/* send side: sequence numbers run free modulo 2^32 */
	uint32_t iss;	    /* our initial sequence number */
	uint32_t snd_una;   /* oldest unacked */
	uint32_t snd_nxt;   /* next new */
	uint32_t snd_edge;  /* new packets only below ack + wnd the peer sent */
	uint32_t peer_wnd;
	uint32_t fin_seq;
	uint32_t tx_head;   /* oldest message not yet acked (msg_id) */
	uint32_t tx_seg;    /* next message to cut into packets */
	uint32_t tx_tail;   /* next free message slot */
	uint32_t n_sacked;  /* unacked packets SACKed */
	uint32_t n_lost;    /* unacked packets marked TXP_LOST */
	uint32_t lost_scan; /* no TXP_LOST packet below this seq (>= snd_una) */
	uint32_t tx_order;  /* transmissions so far */
	uint32_t rack_order; /* highest tx_order the peer has acked or SACKed */
	uint32_t retries;   /* RTO expiries since the peer was last heard */
	uint32_t pad0;
	uint64_t rto_deadline; /* 0: not armed */
	uint64_t rto_ns;       /* current, back-off included */
	uint64_t srtt_ns;
	uint64_t rttvar_ns;
	uint64_t pace_next_ns; /* cwnd < 1: no new transmission before this */
	struct cc_state cc;
	/* receive side */
	uint32_t rcv_nxt;      /* next sequence number expected */
	uint32_t rx_next_msg;  /* next msg_id to deliver */
	uint32_t n_ooo;	       /* packets received beyond rcv_nxt */
	uint32_t peer_fin_seq;
	uint64_t ts_recent;    /* ts of the last packet to echo */
	uint64_t last_rx_ns;   /* the peer was last heard */
	uint64_t ka_sent_ns;   /* last keepalive probe */
	uint64_t tw_deadline;  /* TP_TIME_WAIT: the slot is freed then */
	uint64_t created_ns;   /* when the slot was taken */
	uint64_t min_rtt_ns;   /* lowest RTT sample; 0 before the first */
	uint64_t undo_ts;      /* first RTO of a recovery, to tell a spurious one; 0: none */
	double undo_cwnd;      /* cwnd before that RTO */
	struct tp_flow_stats stats;
};

/* Serial-number arithmetic on free-running 32-bit sequence numbers. */
static inline int seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static inline int seq_le(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}

#define PEER_WND_MAX (1u << 24) /* a larger advertised window is taken as this */
#define RTT_SAMPLE_MAX (60ull * 1000000000ull) /* samples above are bogus echoes */
#define TX_RETRY_NS 1000u	/* send_pkt() refused: try again this soon */

static inline struct tp_flow_stats *fstats(struct tp_flow *f)
{
	return &f->stats;
}

static inline uint32_t fidx(const struct tp *t, const struct tp_flow *f)
{
	return (uint32_t)(f - t->flows);
}

static inline struct tp_txmsg *txmsg(const struct tp *t, const struct tp_flow *f, uint32_t id)
{
	return &t->txm[(size_t)fidx(t, f) * t->cfg->tx_msgs + (id & (t->cfg->tx_msgs - 1))];
}

static inline struct tp_txpkt *txpkt(const struct tp *t, const struct tp_flow *f, uint32_t seq)
{
	return &t->txp[(size_t)fidx(t, f) * t->cfg->tx_wnd + (seq & (t->cfg->tx_wnd - 1))];
}

static inline struct tp_rxmsg *rxmsg(const struct tp *t, const struct tp_flow *f, uint32_t id)
{
	return &t->rxm[(size_t)fidx(t, f) * t->cfg->rx_wnd + (id & (t->cfg->rx_wnd - 1))];
}

static inline uint64_t *rxbits(const struct tp *t, const struct tp_flow *f)
{
	return &t->rxb[(size_t)fidx(t, f) * (t->cfg->rx_wnd / 64)];
}

static inline int rx_test(const struct tp *t, const struct tp_flow *f, uint32_t seq)
{
	uint32_t b = seq & (t->cfg->rx_wnd - 1);

	return (rxbits(t, f)[b / 64] >> (b % 64)) & 1;
}

static inline void rx_set(const struct tp *t, const struct tp_flow *f, uint32_t seq)
{
	uint32_t b = seq & (t->cfg->rx_wnd - 1);

	rxbits(t, f)[b / 64] |= 1ull << (b % 64);
}

static inline void rx_clear(const struct tp *t, const struct tp_flow *f, uint32_t seq)
{
	uint32_t b = seq & (t->cfg->rx_wnd - 1);

	rxbits(t, f)[b / 64] &= ~(1ull << (b % 64));
}

/* Packets in the network: sent, not acked, not SACKed, not deemed lost. */
static inline uint32_t inflight(const struct tp_flow *f)
{
	return (f->snd_nxt - f->snd_una) - f->n_sacked - f->n_lost;
}

static uint64_t rng_next(struct tp *t)
{
	/* splitmix64: state in the block so that ids stay unique across adoption. */
	uint64_t z = (t->shm->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- flow lookup: two chained hash tables of flow indices ---- */

static uint32_t hash_conn(const struct tp *t, uint32_t conn)
{
	return (uint32_t)(((uint64_t)conn * 0x9e3779b97f4a7c15ull) >> 32) & (t->shm->nbuckets - 1);
}

static uint32_t hash_tuple(const struct tp *t, const struct tp_tuple *tu)
{
	uint64_t x = ((uint64_t)tu->local_ip << 32 | tu->remote_ip) * 0x9e3779b97f4a7c15ull;

	x ^= ((uint64_t)tu->local_port << 16 | tu->remote_port) * 0xc2b2ae3d27d4eb4full;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return (uint32_t)x & (t->shm->nbuckets - 1);
}

static int tuple_eq(const struct tp_tuple *a, const struct tp_tuple *b)
{
	return a->local_ip == b->local_ip && a->remote_ip == b->remote_ip &&
	       a->local_port == b->local_port && a->remote_port == b->remote_port;
}

static struct tp_flow *lookup_conn(const struct tp *t, uint32_t conn)
{
	uint32_t i = t->hconn[hash_conn(t, conn)];

	while (i != TP_NONE) {
		if (t->flows[i].local_conn == conn)
			return &t->flows[i];
		i = t->flows[i].next_conn;
	}
	return NULL;
}

static struct tp_flow *lookup_tuple(const struct tp *t, const struct tp_tuple *tu)
{
	uint32_t i = t->htuple[hash_tuple(t, tu)];

	while (i != TP_NONE) {
		if (tuple_eq(&t->flows[i].tuple, tu))
			return &t->flows[i];
		i = t->flows[i].next_tuple;
	}
	return NULL;
}

static void hash_insert(struct tp *t, struct tp_flow *f)
{
	uint32_t *hc = &t->hconn[hash_conn(t, f->local_conn)];
	uint32_t *ht = &t->htuple[hash_tuple(t, &f->tuple)];

	f->next_conn = *hc;
	*hc = fidx(t, f);
	f->next_tuple = *ht;
	*ht = fidx(t, f);
}

static void hash_remove(struct tp *t, struct tp_flow *f)
{
	uint32_t me = fidx(t, f);
	uint32_t *p = &t->hconn[hash_conn(t, f->local_conn)];

	while (*p != TP_NONE && *p != me)
		p = &t->flows[*p].next_conn;
	if (*p == me)
		*p = f->next_conn;
	p = &t->htuple[hash_tuple(t, &f->tuple)];
	while (*p != TP_NONE && *p != me)
		p = &t->flows[*p].next_tuple;
	if (*p == me)
		*p = f->next_tuple;
}

static void flow_release(struct tp *t, struct tp_flow *f)
{
	hash_remove(t, f);
	f->state = TP_FREE;
	t->shm->nflows--;
}

/*
 * A fresh flow slot with its arrays cleared, or NULL. O(max_flows).
 * (The flow control block is named before its helpers below: see flow_end.)
 */
static struct tp_flow *flow_alloc(struct tp *t, const struct tp_tuple *tu, uint64_t now)
{
	const struct tp_cfg *c = t->cfg;
	struct tp_flow *f = NULL;
	uint32_t conn;

	struct tp_flow *tw = NULL;

	for (uint32_t i = 0; i < c->max_flows; i++) {
		struct tp_flow *g = &t->flows[i];

		if (g->state == TP_FREE) {
			f = g;
			break;
		}
		if (g->state == TP_TIME_WAIT && (!tw || g->tw_deadline < tw->tw_deadline))
			tw = g;
	}
	if (!f && tw) {
		/* Out of slots: the oldest lingering flow goes first (its peer
		 * then gets an RST, which on_rst() reads as a close). */
		flow_release(t, tw);
		t->shm->stats.tw_reclaimed++;
		f = tw;
	}
	if (!f)
		return NULL;
	memset(f, 0, sizeof(*f));
	memset(txmsg(t, f, 0), 0, (size_t)c->tx_msgs * sizeof(struct tp_txmsg));
	memset(txpkt(t, f, 0), 0, (size_t)c->tx_wnd * sizeof(struct tp_txpkt));
	memset(rxmsg(t, f, 0), 0, (size_t)c->rx_wnd * sizeof(struct tp_rxmsg));
	memset(rxbits(t, f), 0, (size_t)c->rx_wnd / 8);
	/* Random, non-zero, unique among live flows: a new incarnation never
	 * reuses the id of the one before it on the same 4-tuple (2^-32). */
	do
		conn = (uint32_t)rng_next(t);
	while (conn == 0 || lookup_conn(t, conn));
	f->local_conn = conn;
	f->tuple = *tu;
	f->created_ns = now;
	f->iss = (uint32_t)rng_next(t);
	f->snd_una = f->snd_nxt = f->lost_scan = f->iss;
	f->rto_ns = c->rto_init_ns;
	f->last_rx_ns = now;
	f->ka_sent_ns = now;
	cc_init(&f->cc, &c->cc);
	hash_insert(t, f);
	t->shm->nflows++;
	t->shm->stats.flows_opened++;
	return f;
}

static int flow_live(const struct tp *t, uint32_t flow)
{
	return flow < t->cfg->max_flows && t->flows[flow].state != TP_FREE;
}

/* A flow the application may act on: connecting or established. */
static struct tp_flow *app_flow(struct tp *t, uint32_t flow)
{
	if (flow >= t->cfg->max_flows)
		return NULL;
	if (t->flows[flow].state != TP_SYN_SENT && t->flows[flow].state != TP_ESTABLISHED)
		return NULL;
	return &t->flows[flow];
}

/* ---- sending ---- */

static uint32_t adv_wnd(const struct tp *t, const struct tp_flow *f)
{
	return (f->flags & FF_RX_BLOCKED) ? 0 : t->cfg->rx_wnd;
}

/* Bit i: packet rcv_nxt + 1 + i is here (rcv_nxt itself never is). */
static uint64_t sack_bits(const struct tp *t, const struct tp_flow *f)
{
	uint32_t n = t->cfg->rx_wnd - 1 < WIRE_SACK_BITS ? t->cfg->rx_wnd - 1 : WIRE_SACK_BITS;
	uint64_t bits = 0;

	if (f->n_ooo == 0)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (rx_test(t, f, f->rcv_nxt + 1 + i))
			bits |= 1ull << i;
	return bits;
}

static void hdr_init(const struct tp *t, const struct tp_flow *f, struct wire_hdr *h,
		     uint8_t type, uint64_t now)
{
	*h = (struct wire_hdr){
		.magic = WIRE_MAGIC,
		.version = WIRE_VERSION,
		.type = type,
		.src_conn = f->local_conn,
		.dst_conn = f->peer_conn,
		.seq = f->snd_nxt,
		.ts = now,
	};
	if (type == WIRE_SYN)
		return;
	h->ack = f->rcv_nxt;
	h->sack = sack_bits(t, f);
	h->wnd = adv_wnd(t, f);
	if (f->flags & FF_ECHO) {
		h->flags |= WIRE_F_ECHO;
		h->ts_echo = f->ts_recent;
	}
}

/* Hand one packet to the glue. The timestamp is echoed at most once. */
static int xmit(struct tp *t, struct tp_flow *f, const struct wire_hdr *h, uint64_t handle,
		uint32_t off, uint32_t len)
{
	int err = t->ops->send_pkt(t->ctx, fidx(t, f), &f->tuple, h, handle, off, len);

	if (err) {
		t->shm->stats.tx_fail++;
		return err;
	}
	if (h->flags & WIRE_F_ECHO)
		f->flags &= ~FF_ECHO;
	return 0;
}

/* SYN, SYN-ACK, ACK (with @flags: ACKREQ for probes). */
static int send_ctrl(struct tp *t, struct tp_flow *f, uint8_t type, uint16_t flags, uint64_t now)
{
	struct wire_hdr h;

	hdr_init(t, f, &h, type, now);
	h.flags |= flags;
	if (type == WIRE_SYN || type == WIRE_SYNACK) {
		h.seq = f->iss;
		h.wnd = adv_wnd(t, f);
	}
	fstats(f)->tx_ctrl++;
	if (type == WIRE_ACK)
		fstats(f)->acks_sent++;
	return xmit(t, f, &h, 0, 0, 0);
}

/* RST answering @in (a packet for no flow we have), from our side of @tu. */
static void send_rst_reply(struct tp *t, const struct tp_tuple *tu, const struct wire_hdr *in,
			   uint32_t reason, uint64_t now)
{
	struct wire_hdr h = {
		.magic = WIRE_MAGIC,
		.version = WIRE_VERSION,
		.type = WIRE_RST,
		.src_conn = in->dst_conn,
		.dst_conn = in->src_conn,
		.msg_id = reason,
		.ts = now,
	};

	if (t->ops->send_pkt(t->ctx, TP_NONE, tu, &h, 0, 0, 0))
		t->shm->stats.tx_fail++;
	else
		t->shm->stats.rst_sent++;
}

static void send_rst(struct tp *t, struct tp_flow *f, uint32_t reason, uint64_t now)
{
	struct wire_hdr h;

	if (f->peer_conn == 0)
		return; /* SYN_SENT: the peer has no flow to reset */
	h = (struct wire_hdr){ .magic = WIRE_MAGIC, .version = WIRE_VERSION, .type = WIRE_RST,
			       .src_conn = f->local_conn, .dst_conn = f->peer_conn,
			       .msg_id = reason, .ts = now };
	if (xmit(t, f, &h, 0, 0, 0) == 0)
		t->shm->stats.rst_sent++;
}

static void rto_arm(struct tp_flow *f, uint64_t now)
{
	f->rto_deadline = now + f->rto_ns;
}

/* (Re)transmit the packet at @seq; its slot is filled. Commits only on success. */
static int send_seq(struct tp *t, struct tp_flow *f, uint32_t seq, int retx, uint64_t now)
{
	struct tp_txpkt *p = txpkt(t, f, seq);
	uint64_t handle = 0;
	struct wire_hdr h;
	int err;

	hdr_init(t, f, &h, (p->flags & TXP_FIN) ? WIRE_FIN : WIRE_DATA, now);
	h.seq = seq;
	if (!(p->flags & TXP_FIN)) {
		const struct tp_txmsg *m = txmsg(t, f, p->msg_id);

		h.msg_id = p->msg_id;
		h.msg_len = m->len;
		h.frag_off = p->frag_off;
		h.payload_len = p->len;
		handle = m->handle;
	}
	if (retx)
		h.flags |= WIRE_F_RETX;
	err = xmit(t, f, &h, handle, p->frag_off, p->len);
	if (err)
		return err;
	p->tx_ns = now;
	p->tx_order = ++f->tx_order;
	if (p->tx_count < UINT8_MAX)
		p->tx_count++;
	fstats(f)->tx_pkts++;
	if (f->cc.cwnd < 1.0)
		f->pace_next_ns = now + cc_pace_gap_ns(&f->cc, f->srtt_ns ? f->srtt_ns : f->rto_ns);
	return 0;
}

/* Lowest packet waiting for retransmission (n_lost > 0). */
static uint32_t first_lost(const struct tp *t, struct tp_flow *f)
{
	uint32_t seq = seq_lt(f->lost_scan, f->snd_una) ? f->snd_una : f->lost_scan;

	while (seq_lt(seq, f->snd_nxt) && !(txpkt(t, f, seq)->flags & TXP_LOST))
		seq++;
	f->lost_scan = seq;
	return seq;
}

static int retransmit_one(struct tp *t, struct tp_flow *f, uint64_t now)
{
	uint32_t seq = first_lost(t, f);
	struct tp_txpkt *p = txpkt(t, f, seq);
	int err;

	err = send_seq(t, f, seq, 1, now);
	if (err)
		return err;
	if (p->flags & TXP_LOST_RTO)
		fstats(f)->retx_rto++;
	else
		fstats(f)->retx_fast++;
	p->flags &= ~(TXP_LOST | TXP_LOST_RTO);
	f->n_lost--;
	f->lost_scan = seq + 1;
	return 0;
}

/* Work not yet given a sequence number: message bytes, or the FIN. */
static int has_new(const struct tp_flow *f)
{
	return f->tx_seg != f->tx_tail ||
	       (f->flags & (FF_FIN_QUEUED | FF_FIN_SENT)) == FF_FIN_QUEUED;
}

/* Room for a new sequence number: our tracking ring and the peer's window. */
static int wnd_open(const struct tp *t, const struct tp_flow *f)
{
	return f->snd_nxt - f->snd_una < t->cfg->tx_wnd && seq_lt(f->snd_nxt, f->snd_edge);
}

/* Cut the next packet (a fragment, or the FIN) at snd_nxt and send it. */
static int send_new(struct tp *t, struct tp_flow *f, uint64_t now)
{
	uint32_t seq = f->snd_nxt;
	struct tp_txpkt *p = txpkt(t, f, seq);
	struct tp_txmsg *m = NULL;
	int err;

	*p = (struct tp_txpkt){ 0 };
	if (f->tx_seg != f->tx_tail) {
		uint32_t left;

		m = txmsg(t, f, f->tx_seg);
		left = m->len - m->seg_off;
		p->msg_id = f->tx_seg;
		p->frag_off = m->seg_off;
		p->len = (uint16_t)(left < t->cfg->mss ? left : t->cfg->mss);
	} else {
		p->flags = TXP_FIN;
	}
	err = send_seq(t, f, seq, 0, now);
	if (err)
		return err;
	f->snd_nxt++;
	if (!m) {
		f->fin_seq = seq;
		f->flags |= FF_FIN_SENT;
		return 0;
	}
	fstats(f)->tx_bytes += p->len;
	m->seg_off += p->len;
	if (m->seg_off == m->len) {
		m->last_seq = seq;
		f->tx_seg++;
	}
	return 0;
}

/* The window may let another packet go now (cwnd < 1: one at a time, paced). */
static int cwnd_allows(const struct tp_flow *f, uint64_t now)
{
	if (f->cc.cwnd >= 1.0)
		return (double)inflight(f) < f->cc.cwnd;
	return inflight(f) == 0 && now >= f->pace_next_ns;
}

/* Needs the retransmission timer: unacked packets, or a closed window to probe. */
static int needs_timer(const struct tp *t, const struct tp_flow *f)
{
	return f->snd_una != f->snd_nxt || (has_new(f) && !wnd_open(t, f));
}

/*
 * Send what the windows allow: retransmissions first (lowest first), then
 * new packets. Returns the number of packets sent.
 */
static unsigned int flush(struct tp *t, struct tp_flow *f, uint64_t now)
{
	unsigned int sent = 0;

	if (f->state != TP_ESTABLISHED)
		return 0;
	f->flags &= ~FF_TX_BLOCKED;
	while (cwnd_allows(f, now)) {
		int err;

		if (f->n_lost)
			err = retransmit_one(t, f, now);
		else if (has_new(f) && wnd_open(t, f))
			err = send_new(t, f, now);
		else
			break;
		if (err) {
			f->flags |= FF_TX_BLOCKED;
			break;
		}
		sent++;
	}
	if (f->rto_deadline == 0 && needs_timer(t, f))
		rto_arm(f, now);
	return sent;
}

/* ---- ending a flow ---- */

static int reason_errno(enum tp_reason r)
{
	switch (r) {
	case TP_R_NONE:
		return 0;
	case TP_R_TIMEOUT:
	case TP_R_IDLE:
		return -ETIMEDOUT;
	case TP_R_REFUSED:
	case TP_R_NO_RESOURCES:
		return -ECONNREFUSED;
	case TP_R_MSG_REFUSED:
		return -EMSGSIZE;
	case TP_R_PROTO:
		return -EPROTO;
	case TP_R_ABORTED:
		return -ECONNABORTED;
	case TP_R_RESET:
	default:
		return -ECONNRESET;
	}
}

/*
 * Finish @f: report every message not yet acked, drop every partial
 * message, announce (flows still in SYN_RCVD were never announced), and
 * free the slot, or keep it in TP_TIME_WAIT until @linger_until (0: free
 * now) to acknowledge the peer's retransmissions.
 */
static void flow_end(struct tp *t, struct tp_flow *f, enum tp_event ev, enum tp_reason reason,
		     uint64_t linger_until)
{
	uint32_t fi = fidx(t, f);
	int status = reason_errno(reason);

	/* A graceful close has no message left; anything else did not make it. */
	if (status == 0)
		status = -ECONNABORTED;
	for (; f->tx_head != f->tx_tail; f->tx_head++)
		t->ops->tx_msg_done(t->ctx, fi, txmsg(t, f, f->tx_head)->handle, status);
	for (uint32_t i = 0; i < t->cfg->rx_wnd; i++) {
		struct tp_rxmsg *r = rxmsg(t, f, f->rx_next_msg + i);

		if (r->used) {
			r->used = 0;
			t->ops->rx_msg_free(t->ctx, fi, r->handle);
		}
	}
	if (ev == TP_EV_CLOSED)
		t->shm->stats.flows_closed++;
	else
		t->shm->stats.flows_failed++;
	if (f->state == TP_SYN_RCVD)
		t->shm->stats.halfopen_dropped++;
	else
		t->ops->flow_event(t->ctx, fi, ev, reason);
	if (linger_until) {
		f->state = TP_TIME_WAIT;
		f->tw_deadline = linger_until;
		f->rto_deadline = 0;
		return;
	}
	flow_release(t, f);
}

static void flow_fail(struct tp *t, struct tp_flow *f, enum tp_reason reason,
		      uint32_t rst_reason, uint64_t now)
{
	if (rst_reason)
		send_rst(t, f, rst_reason, now);
	flow_end(t, f, TP_EV_FAILED, reason, 0);
}

/*
 * Both FINs are through: ours acked, the peer's received in order. If the
 * last step was our ACK of the peer's FIN (@acked_peer), that ACK may be
 * lost and the peer will retransmit: linger in TP_TIME_WAIT to answer
 * (the application is told at once; the slot stays taken). If the last
 * step was the ACK of our FIN, the peer has everything: free at once.
 */
static int maybe_finish(struct tp *t, struct tp_flow *f, int acked_peer, uint64_t now)
{
	uint64_t tw = t->cfg->time_wait_ns;

	if (!(f->flags & FF_FIN_SENT) || !(f->flags & FF_PEER_FIN) ||
	    !seq_lt(f->fin_seq, f->snd_una))
		return 0;
	flow_end(t, f, TP_EV_CLOSED, TP_R_NONE, acked_peer && tw ? now + tw : 0);
	return 1;
}

/* ---- receiving: the ACK half of every packet ---- */

static void rtt_sample(struct tp *t, struct tp_flow *f, uint64_t r)
{
	const struct tp_cfg *c = t->cfg;
	uint64_t rto;

	if (f->min_rtt_ns == 0 || r < f->min_rtt_ns)
		f->min_rtt_ns = r ? r : 1;
	/* RFC 6298 section 2, in integer nanoseconds. */
	if (!(f->flags & FF_RTT_VALID)) {
		f->srtt_ns = r;
		f->rttvar_ns = r / 2;
		f->flags |= FF_RTT_VALID;
	} else {
		uint64_t d = f->srtt_ns > r ? f->srtt_ns - r : r - f->srtt_ns;

		f->rttvar_ns = (3 * f->rttvar_ns + d) / 4;
		f->srtt_ns = (7 * f->srtt_ns + r) / 8;
	}
	rto = f->srtt_ns + 4 * f->rttvar_ns;
	if (rto < c->rto_min_ns)
		rto = c->rto_min_ns;
	if (rto > c->rto_max_ns)
		rto = c->rto_max_ns;
	f->rto_ns = rto; /* a fresh sample also ends any back-off */
}

/* An echoed timestamp from our own clock: the RTT, or 0 if implausible. */
static uint64_t echo_rtt(const struct wire_hdr *h, uint64_t now)
{
	if (!(h->flags & WIRE_F_ECHO) || h->ts_echo > now || now - h->ts_echo > RTT_SAMPLE_MAX)
		return 0;
	return now - h->ts_echo ? now - h->ts_echo : 1;
}

static void rack_update(struct tp_flow *f, const struct tp_txpkt *p)
{
	if (seq_lt(f->rack_order, p->tx_order))
		f->rack_order = p->tx_order;
}

static uint32_t on_sack(struct tp *t, struct tp_flow *f, const struct wire_hdr *h)
{
	uint64_t bits = h->sack;
	uint32_t newly = 0;

	while (bits) {
		uint32_t i = (uint32_t)__builtin_ctzll(bits);
		uint32_t seq = h->ack + 1 + i;
		struct tp_txpkt *p;

		bits &= bits - 1;
		if (!seq_lt(seq, f->snd_nxt))
			break; /* bits beyond what we sent: ignored */
		p = txpkt(t, f, seq);
		if (p->flags & TXP_SACKED)
			continue;
		if (p->flags & TXP_LOST) {
			p->flags &= ~(TXP_LOST | TXP_LOST_RTO);
			f->n_lost--;
		}
		p->flags |= TXP_SACKED;
		f->n_sacked++;
		rack_update(f, p);
		newly++;
	}
	return newly;
}

/*
 * SACK-based loss detection (RFC 6675 IsLost, with a RACK-style guard):
 * a packet is lost when at least TP_DUPTHRESH packets above it were
 * SACKed and something sent after its last transmission got through.
 * The guard keeps a retransmission from being declared lost again by
 * SACKs that predate it.
 */
static void detect_loss(struct tp *t, struct tp_flow *f, uint64_t now)
{
	uint32_t above = 0, lost = 0;

	for (uint32_t seq = f->snd_nxt; seq != f->snd_una;) {
		struct tp_txpkt *p = txpkt(t, f, --seq);

		if (p->flags & TXP_SACKED) {
			above++;
		} else if (!(p->flags & TXP_LOST) && above >= TP_DUPTHRESH &&
			   seq_lt(p->tx_order, f->rack_order)) {
			p->flags |= TXP_LOST;
			f->n_lost++;
			lost++;
			if (seq_lt(seq, f->lost_scan))
				f->lost_scan = seq;
		}
	}
	if (lost)
		cc_on_loss(&f->cc, &t->cfg->cc, now);
}

/* Every unacked, un-SACKed packet is to be sent again (RTO, window reopened). */
static void mark_all_lost(struct tp *t, struct tp_flow *f, uint8_t why)
{
	for (uint32_t seq = f->snd_una; seq != f->snd_nxt; seq++) {
		struct tp_txpkt *p = txpkt(t, f, seq);

		if (!(p->flags & (TXP_SACKED | TXP_LOST))) {
			p->flags |= TXP_LOST | why;
			f->n_lost++;
		}
	}
	f->lost_scan = f->snd_una;
}

/* Messages whose every packet is acked are done, in order. */
static void complete_msgs(struct tp *t, struct tp_flow *f)
{
	while (f->tx_head != f->tx_seg) {
		struct tp_txmsg *m = txmsg(t, f, f->tx_head);

		if (!seq_lt(m->last_seq, f->snd_una))
			break;
		f->tx_head++;
		fstats(f)->tx_msgs++;
		t->ops->tx_msg_done(t->ctx, fidx(t, f), m->handle, 0);
	}
}

static void update_window(struct tp *t, struct tp_flow *f, const struct wire_hdr *h)
{
	uint32_t wnd = h->wnd > PEER_WND_MAX ? PEER_WND_MAX : h->wnd;

	f->snd_edge = h->ack + wnd;
	f->peer_wnd = wnd;
	if (wnd == 0) {
		f->flags |= FF_PEER_WND0;
	} else if (f->flags & FF_PEER_WND0) {
		/* The receiver dropped what it had no buffer for; it has now. */
		f->flags &= ~FF_PEER_WND0;
		mark_all_lost(t, f, 0);
	}
}

/*
 * The first cumulative acknowledgment after an RTO (Eifel, RFC 3522): if it echoes
 * a timestamp older than the RTO, the peer got the original transmission,
 * so the timeout was spurious (a delay, e.g. a descheduled peer, not a
 * loss). Then the window goes back to what it was, and packets marked lost
 * by the timer but not resent yet are not resent. The RTO itself is not
 * restored: the sample of this ACK already set it from the long RTT.
 * Otherwise (a retransmission's echo, or none) the loss stands.
 */
static void rto_check_spurious(struct tp *t, struct tp_flow *f, const struct wire_hdr *h)
{
	bool spurious = (h->flags & WIRE_F_ECHO) && h->ts_echo < f->undo_ts;

	if (spurious) {
		if (f->cc.cwnd < f->undo_cwnd)
			f->cc.cwnd = f->undo_cwnd;
		for (uint32_t seq = f->snd_una; seq != f->snd_nxt; seq++) {
			struct tp_txpkt *p = txpkt(t, f, seq);

			if ((p->flags & (TXP_LOST | TXP_LOST_RTO)) == (TXP_LOST | TXP_LOST_RTO)) {
				p->flags &= ~(TXP_LOST | TXP_LOST_RTO);
				f->n_lost--;
			}
		}
		fstats(f)->rto_spurious++;
	}
	f->undo_ts = 0;
}

/*
 * The acknowledgment fields of a packet from the peer. Returns -EPROTO if
 * it acknowledges what we never sent (the packet is dropped), else 0.
 */
static int on_ack(struct tp *t, struct tp_flow *f, const struct wire_hdr *h, uint64_t now)
{
	uint32_t newly = 0;
	uint64_t rtt = 0;
	int advanced = 0;

	if (seq_lt(f->snd_nxt, h->ack)) {
		fstats(f)->rx_bad_ack++;
		return -EPROTO;
	}
	if (seq_lt(h->ack, f->snd_una))
		return 0; /* an old ACK overtaken by newer ones: nothing new in it */
	while (f->snd_una != h->ack) {
		struct tp_txpkt *p = txpkt(t, f, f->snd_una);

		if (p->flags & TXP_SACKED) {
			f->n_sacked--;
		} else {
			newly++;
			rack_update(f, p);
		}
		if (p->flags & TXP_LOST)
			f->n_lost--;
		p->flags = 0;
		f->snd_una++;
		advanced = 1;
	}
	if (h->sack)
		newly += on_sack(t, f, h);
	update_window(t, f, h);
	if (newly && (rtt = echo_rtt(h, now)) != 0)
		rtt_sample(t, f, rtt);
	if (advanced) {
		complete_msgs(t, f);
		f->rto_deadline = 0; /* restarted below or by flush() if still needed */
		if (needs_timer(t, f))
			rto_arm(f, now);
	}
	if (newly)
		cc_on_ack(&f->cc, &t->cfg->cc, newly, rtt, now);
	if (advanced && f->undo_ts)
		rto_check_spurious(t, f, h);
	if (f->n_sacked)
		detect_loss(t, f, now);
	return 0;
}

/* ---- receiving: the DATA half ---- */

/* Deliver every whole message at the head of the reassembly window. */
static void deliver_ready(struct tp *t, struct tp_flow *f)
{
	for (;;) {
		struct tp_rxmsg *r = rxmsg(t, f, f->rx_next_msg);

		if (!r->used || r->msg_id != f->rx_next_msg || r->rcvd != r->len)
			return;
		r->used = 0;
		f->rx_next_msg++;
		fstats(f)->rx_msgs++;
		t->ops->rx_msg_deliver(t->ctx, fidx(t, f), r->handle, r->len);
	}
}

enum { FRAG_OK = 0, FRAG_DROP = 1, FRAG_FLOW_GONE = 2 };

/* Store one new fragment in its message (allocated on the first fragment seen). */
static int take_fragment(struct tp *t, struct tp_flow *f, const struct wire_hdr *h,
			 const uint8_t *payload, uint64_t now)
{
	struct tp_rxmsg *r;

	if (h->msg_len > t->cfg->max_msg) {
		flow_fail(t, f, TP_R_MSG_REFUSED, WIRE_RST_MSG_REFUSED, now);
		return FRAG_FLOW_GONE;
	}
	if (h->msg_id - f->rx_next_msg >= t->cfg->rx_wnd ||
	    ((f->flags & FF_PEER_FIN_SEEN) && seq_lt(f->peer_fin_seq, h->seq))) {
		fstats(f)->rx_bad_msg++;
		return FRAG_DROP;
	}
	r = rxmsg(t, f, h->msg_id);
	if (!r->used) {
		uint64_t handle = 0;
		int err = t->ops->rx_msg_alloc(t->ctx, fidx(t, f), h->msg_len,
					       h->msg_id == f->rx_next_msg, &handle);

		if (err == -EMSGSIZE) {
			flow_fail(t, f, TP_R_MSG_REFUSED, WIRE_RST_MSG_REFUSED, now);
			return FRAG_FLOW_GONE;
		}
		if (err) {
			fstats(f)->rx_nobuf++;
			f->flags |= FF_RX_BLOCKED;
			return FRAG_DROP;
		}
		f->flags &= ~FF_RX_BLOCKED;
		*r = (struct tp_rxmsg){ .handle = handle, .msg_id = h->msg_id,
					.len = h->msg_len, .used = 1 };
	} else if (r->len != h->msg_len || r->len - r->rcvd < h->payload_len) {
		fstats(f)->rx_bad_msg++;
		return FRAG_DROP;
	}
	t->ops->rx_msg_write(t->ctx, fidx(t, f), r->handle, h->frag_off, payload, h->payload_len);
	r->rcvd += h->payload_len;
	fstats(f)->rx_bytes += h->payload_len;
	return FRAG_OK;
}

/* The peer's FIN and everything before it are in: its side is done. */
static void on_peer_fin(struct tp_flow *f)
{
	f->flags |= FF_PEER_FIN;
	f->flags |= FF_FIN_QUEUED; /* close our side once our queue drains */
}

/* A DATA or FIN packet. Returns FRAG_FLOW_GONE if the flow was failed. */
static int on_data(struct tp *t, struct tp_flow *f, const struct wire_hdr *h,
		   const uint8_t *payload, uint64_t now)
{
	uint32_t seq = h->seq;

	if (seq_lt(seq, f->rcv_nxt)) {
		fstats(f)->rx_dup++;
		return FRAG_DROP;
	}
	if (seq - f->rcv_nxt >= t->cfg->rx_wnd) {
		fstats(f)->rx_beyond_wnd++;
		return FRAG_DROP;
	}
	if (rx_test(t, f, seq)) { /* never true for rcv_nxt itself */
		fstats(f)->rx_dup++;
		return FRAG_DROP;
	}
	if (h->type == WIRE_DATA) {
		int r = take_fragment(t, f, h, payload, now);

		if (r != FRAG_OK)
			return r;
	} else {
		f->flags |= FF_PEER_FIN_SEEN;
		f->peer_fin_seq = seq;
	}
	if (seq != f->rcv_nxt) {
		rx_set(t, f, seq);
		f->n_ooo++;
		fstats(f)->rx_ooo++;
	} else {
		f->rcv_nxt++;
		while (f->n_ooo && rx_test(t, f, f->rcv_nxt)) {
			rx_clear(t, f, f->rcv_nxt);
			f->rcv_nxt++;
			f->n_ooo--;
		}
	}
	deliver_ready(t, f);
	if ((f->flags & (FF_PEER_FIN_SEEN | FF_PEER_FIN)) == FF_PEER_FIN_SEEN &&
	    seq_lt(f->peer_fin_seq, f->rcv_nxt))
		on_peer_fin(f);
	return FRAG_OK;
}

/* ---- the connection state machine ---- */

static void establish(struct tp *t, struct tp_flow *f, const struct wire_hdr *h, uint64_t now)
{
	uint64_t rtt = echo_rtt(h, now);

	f->state = TP_ESTABLISHED;
	f->rto_deadline = 0;
	f->retries = 0;
	if (rtt)
		rtt_sample(t, f, rtt);
	else
		f->rto_ns = t->cfg->rto_init_ns;
	t->ops->flow_event(t->ctx, fidx(t, f),
			   (f->flags & FF_ACTIVE) ? TP_EV_ESTABLISHED : TP_EV_ACCEPTED, TP_R_NONE);
}

static void take_echo(struct tp_flow *f, const struct wire_hdr *h)
{
	f->ts_recent = h->ts;
	f->flags |= FF_ECHO;
}

static const struct tp_listen *find_listener(const struct tp *t, uint32_t ip, uint16_t port)
{
	for (uint32_t i = 0; i < t->cfg->max_listen; i++) {
		const struct tp_listen *l = &t->listen[i];

		if (l->used && l->port == port && (l->ip == 0 || l->ip == ip))
			return l;
	}
	return NULL;
}

/*
 * A SYN. For a 4-tuple with a live flow: a retransmitted SYN (same peer
 * conn id) is answered again; a new incarnation replaces a half-open or
 * finished flow, and otherwise gets a challenge ACK on the old flow (the
 * peer, if it restarted, answers that with an RST that ends the old
 * flow; its next SYN then finds the 4-tuple free).
 */
static int on_syn(struct tp *t, const struct tp_tuple *tu, const struct wire_hdr *h,
		  uint64_t now)
{
	struct tp_flow *f = lookup_tuple(t, tu);

	if (f) {
		if (f->state == TP_SYN_SENT) {
			t->shm->stats.rx_bad_state++; /* simultaneous open: not supported */
			return -EPROTO;
		}
		if (f->peer_conn == h->src_conn) {
			if (f->state == TP_SYN_RCVD) {
				take_echo(f, h);
				send_ctrl(t, f, WIRE_SYNACK, 0, now);
			} else {
				t->shm->stats.syn_dup++;
			}
			return 0;
		}
		if (f->state == TP_TIME_WAIT) {
			flow_release(t, f);
		} else if (f->state == TP_SYN_RCVD) {
			flow_end(t, f, TP_EV_FAILED, TP_R_RESET, 0);
		} else if (f->flags & FF_PEER_FIN) {
			/* The old incarnation had finished: as on an RST (on_rst). */
			if ((f->flags & FF_FIN_SENT) && seq_le(f->fin_seq, f->snd_una))
				flow_end(t, f, TP_EV_CLOSED, TP_R_NONE, 0);
			else
				flow_end(t, f, TP_EV_FAILED, TP_R_RESET, 0);
		} else {
			t->shm->stats.syn_challenged++;
			send_ctrl(t, f, WIRE_ACK, 0, now);
			return 0;
		}
	}
	if (!find_listener(t, tu->local_ip, tu->local_port)) {
		t->shm->stats.syn_no_listener++;
		send_rst_reply(t, tu, h, WIRE_RST_NO_LISTENER, now);
		return -ENOENT;
	}
	f = flow_alloc(t, tu, now);
	if (!f) {
		t->shm->stats.syn_no_slot++;
		send_rst_reply(t, tu, h, WIRE_RST_NO_RESOURCES, now);
		return -ENOENT;
	}
	f->state = TP_SYN_RCVD;
	f->peer_conn = h->src_conn;
	f->rcv_nxt = h->seq;
	f->snd_edge = f->snd_una + (h->wnd > PEER_WND_MAX ? PEER_WND_MAX : h->wnd);
	f->peer_wnd = h->wnd;
	f->stats.rx_pkts++;
	take_echo(f, h);
	send_ctrl(t, f, WIRE_SYNACK, 0, now);
	rto_arm(f, now);
	return 0;
}

static void on_synack(struct tp *t, struct tp_flow *f, const struct wire_hdr *h, uint64_t now)
{
	f->peer_conn = h->src_conn;
	f->rcv_nxt = h->seq;
	f->last_rx_ns = now;
	f->stats.rx_pkts++;
	update_window(t, f, h);
	take_echo(f, h);
	establish(t, f, h, now);
	if (flush(t, f, now) == 0)
		send_ctrl(t, f, WIRE_ACK, 0, now);
}

static enum tp_reason rst_reason(uint32_t why)
{
	switch (why) {
	case WIRE_RST_NO_LISTENER:
		return TP_R_REFUSED;
	case WIRE_RST_NO_RESOURCES:
		return TP_R_NO_RESOURCES;
	case WIRE_RST_ABORT:
		return TP_R_ABORTED;
	case WIRE_RST_MSG_REFUSED:
		return TP_R_MSG_REFUSED;
	case WIRE_RST_PROTO:
		return TP_R_PROTO;
	default:
		return TP_R_RESET;
	}
}

/*
 * An RST must name our conn id and the peer's (0 for the answer to a
 * SYN): 64 bits a blind attacker has to guess. An RST that arrives when
 * only our FIN is unacked and the peer's FIN is in means the peer
 * finished and forgot the flow (its ACK of our FIN was lost): a close.
 */
static int on_rst(struct tp *t, const struct tp_tuple *tu, const struct wire_hdr *h,
		  uint64_t now)
{
	struct tp_flow *f = lookup_conn(t, h->dst_conn);

	(void)now;
	if (!f || !tuple_eq(&f->tuple, tu) ||
	    h->src_conn != (f->state == TP_SYN_SENT ? 0 : f->peer_conn)) {
		t->shm->stats.rx_rst_ignored++;
		return -ENOENT;
	}
	if (f->state == TP_TIME_WAIT)
		flow_release(t, f);
	else if ((f->flags & (FF_FIN_SENT | FF_PEER_FIN)) == (FF_FIN_SENT | FF_PEER_FIN) &&
		 f->snd_una == f->fin_seq)
		flow_end(t, f, TP_EV_CLOSED, TP_R_NONE, 0);
	else
		flow_end(t, f, TP_EV_FAILED, rst_reason(h->msg_id), 0);
	return 0;
}

/*
 * TP_TIME_WAIT: everything is delivered and acknowledged both ways; a
 * retransmission from the peer means our last ACK was lost: ACK again
 * (cumulatively, the FIN included) and linger on.
 */
static int on_time_wait_pkt(struct tp *t, struct tp_flow *f, const struct wire_hdr *h,
			    uint64_t now)
{
	if (h->type == WIRE_DATA || h->type == WIRE_FIN || (h->flags & WIRE_F_ACKREQ)) {
		take_echo(f, h);
		send_ctrl(t, f, WIRE_ACK, 0, now);
		f->tw_deadline = now + t->cfg->time_wait_ns;
	}
	return 0;
}

/* SYN-ACK, DATA, ACK or FIN from the flow's peer (conn ids and tuple checked). */
static int on_flow_pkt(struct tp *t, struct tp_flow *f, const struct wire_hdr *h,
		       const uint8_t *payload, uint64_t now)
{
	unsigned int need_ack = 0;

	f->last_rx_ns = now;
	f->retries = 0;
	fstats(f)->rx_pkts++;
	if (h->type == WIRE_SYNACK) {
		/* Our ACK of it was lost (or this is a copy): answer again. */
		if (f->state != TP_SYN_RCVD) {
			take_echo(f, h);
			send_ctrl(t, f, WIRE_ACK, 0, now);
			return 0;
		}
		t->shm->stats.rx_bad_state++;
		return -EPROTO;
	}
	if (on_ack(t, f, h, now))
		return -EPROTO;
	if (f->state == TP_SYN_RCVD)
		establish(t, f, h, now);
	if (h->type == WIRE_DATA || h->type == WIRE_FIN) {
		take_echo(f, h);
		need_ack = 1;
		if (on_data(t, f, h, payload, now) == FRAG_FLOW_GONE)
			return 0;
	} else if (h->flags & WIRE_F_ACKREQ) {
		take_echo(f, h);
		need_ack = 1;
	}
	/* Answer first: the ACK of the peer's FIN goes out even if we finish. */
	if (flush(t, f, now) == 0 && need_ack)
		send_ctrl(t, f, WIRE_ACK, 0, now);
	maybe_finish(t, f, need_ack, now);
	return 0;
}

/* ---- timers ---- */

static void on_rto(struct tp *t, struct tp_flow *f, uint64_t now)
{
	const struct tp_cfg *c = t->cfg;

	f->rto_deadline = 0;
	f->retries++;
	fstats(f)->rto_fired++;
	if (f->retries > c->max_retries) {
		flow_fail(t, f, TP_R_TIMEOUT, WIRE_RST_TIMEOUT, now);
		return;
	}
	f->rto_ns = f->rto_ns * 2 > c->rto_max_ns ? c->rto_max_ns : f->rto_ns * 2;
	switch (f->state) {
	case TP_SYN_SENT:
		send_ctrl(t, f, WIRE_SYN, 0, now);
		rto_arm(f, now);
		return;
	case TP_SYN_RCVD:
		send_ctrl(t, f, WIRE_SYNACK, 0, now);
		rto_arm(f, now);
		return;
	default:
		break;
	}
	if (f->snd_una != f->snd_nxt) {
		/* Remember the first RTO of this recovery: an ACK echoing an
		 * older transmission will show it spurious. Only from a clean
		 * state: not on a zero window (the receiver dropped what it had
		 * no room for), not with losses already marked (an undo must
		 * unmark only what this timer marked). */
		if (f->undo_ts == 0 && !(f->flags & FF_PEER_WND0) && f->n_lost == 0) {
			f->undo_ts = now;
			f->undo_cwnd = f->cc.cwnd;
		}
		/* A receiver out of buffers is not congestion. */
		if (!(f->flags & FF_PEER_WND0))
			cc_on_rto(&f->cc, &c->cc, now);
		mark_all_lost(t, f, TXP_LOST_RTO);
		f->pace_next_ns = now; /* at least one packet goes now */
	} else if (needs_timer(t, f)) {
		fstats(f)->probes++;
		send_ctrl(t, f, WIRE_ACK, WIRE_F_ACKREQ, now);
	}
	flush(t, f, now);
	if (f->rto_deadline == 0 && needs_timer(t, f))
		rto_arm(f, now);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Keepalive, idle timeout, pacing and refused sends of one established flow. */
static uint64_t flow_timers(struct tp *t, struct tp_flow *f, uint64_t now)
{
	const struct tp_cfg *c = t->cfg;
	uint64_t next = UINT64_MAX;

	if (c->idle_ns) {
		/* (A clock behind last_rx_ns, e.g. after adoption, is not idleness.) */
		if (now > f->last_rx_ns && now - f->last_rx_ns >= c->idle_ns) {
			flow_fail(t, f, TP_R_IDLE, WIRE_RST_TIMEOUT, now);
			return UINT64_MAX;
		}
		next = f->last_rx_ns + c->idle_ns;
	}
	if (c->keepalive_ns && f->snd_una == f->snd_nxt) {
		uint64_t due = (f->last_rx_ns > f->ka_sent_ns ? f->last_rx_ns : f->ka_sent_ns) +
			       c->keepalive_ns;

		if (now >= due) {
			f->ka_sent_ns = now;
			fstats(f)->probes++;
			send_ctrl(t, f, WIRE_ACK, WIRE_F_ACKREQ, now);
			due = now + c->keepalive_ns;
		}
		next = min64(next, due);
	}
	if ((f->flags & FF_TX_BLOCKED) || (f->cc.cwnd < 1.0 && now >= f->pace_next_ns))
		flush(t, f, now);
	if (f->flags & FF_TX_BLOCKED)
		next = min64(next, now + TX_RETRY_NS);
	else if (f->cc.cwnd < 1.0 && (has_new(f) || f->n_lost) && f->pace_next_ns > now)
		next = min64(next, f->pace_next_ns);
	return next;
}

uint64_t tp_timer(struct tp *t, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t i = 0; i < t->cfg->max_flows; i++) {
		struct tp_flow *f = &t->flows[i];

		if (f->state == TP_FREE)
			continue;
		if (f->state == TP_TIME_WAIT) {
			if (now >= f->tw_deadline)
				flow_release(t, f);
			else
				next = min64(next, f->tw_deadline);
			continue;
		}
		if (f->rto_deadline && now >= f->rto_deadline) {
			on_rto(t, f, now);
			if (f->state == TP_FREE)
				continue;
		}
		if (f->state == TP_ESTABLISHED) {
			next = min64(next, flow_timers(t, f, now));
			if (f->state == TP_FREE)
				continue;
		}
		if (f->rto_deadline)
			next = min64(next, f->rto_deadline);
	}
	return next;
}

/* ---- public API ---- */

void tp_cfg_default(struct tp_cfg *cfg)
{
	*cfg = (struct tp_cfg){
		.max_flows = 1024,
		.max_listen = 16,
		.tx_msgs = 64,
		.tx_wnd = 256,
		.rx_wnd = 256,
		.mss = WIRE_MSS_1500,
		.max_msg = WIRE_MAX_MSG,
		.max_retries = 15,
		.rto_init_ns = 10000000,    /* 10 ms */
		.rto_min_ns = 1000000,	    /* 1 ms */
		.rto_max_ns = 1000000000,   /* 1 s */
		.keepalive_ns = 1000000000, /* 1 s */
		.idle_ns = 10000000000ull,  /* 10 s */
		.time_wait_ns = 2000000000, /* 2 s = 2 x rto_max */
		.seed = 0,
	};
	cc_cfg_default(&cfg->cc);
	cfg->cc.max_cwnd = cfg->tx_wnd;
}

static int is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static int cfg_bad(const char *field, uint64_t v)
{
	mn_err("transport", "invalid setting %s = %" PRIu64, field, v);
	return -EINVAL;
}

int tp_cfg_check(const struct tp_cfg *c)
{
	if (c->max_flows < 1 || c->max_flows > 65536)
		return cfg_bad("max_flows (1..65536)", c->max_flows);
	if (c->max_listen < 1 || c->max_listen > 1024)
		return cfg_bad("max_listen (1..1024)", c->max_listen);
	if (!is_pow2(c->tx_msgs) || c->tx_msgs < 2 || c->tx_msgs > 65536)
		return cfg_bad("tx_msgs (power of two, 2..65536)", c->tx_msgs);
	if (!is_pow2(c->tx_wnd) || c->tx_wnd < 8 || c->tx_wnd > 65536)
		return cfg_bad("tx_wnd (power of two, 8..65536)", c->tx_wnd);
	if (!is_pow2(c->rx_wnd) || c->rx_wnd < 64 || c->rx_wnd > 65536)
		return cfg_bad("rx_wnd (power of two, 64..65536)", c->rx_wnd);
	if (c->mss < 1 || c->mss > WIRE_MAX_PAYLOAD)
		return cfg_bad("mss (1..65443)", c->mss);
	if (c->max_msg < 1 || c->max_msg > WIRE_MAX_MSG)
		return cfg_bad("max_msg (1..8 MiB)", c->max_msg);
	if (c->max_retries < 1 || c->max_retries > 64)
		return cfg_bad("max_retries (1..64)", c->max_retries);
	if (c->rto_min_ns == 0 || c->rto_min_ns > c->rto_max_ns)
		return cfg_bad("rto_min_ns (0 < min <= max)", c->rto_min_ns);
	if (c->rto_init_ns < c->rto_min_ns || c->rto_init_ns > c->rto_max_ns)
		return cfg_bad("rto_init_ns (min..max)", c->rto_init_ns);
	if (c->rto_max_ns > 3600ull * 1000000000ull)
		return cfg_bad("rto_max_ns (<= 1 h)", c->rto_max_ns);
	if (c->time_wait_ns > 3600ull * 1000000000ull)
		return cfg_bad("time_wait_ns (<= 1 h)", c->time_wait_ns);
	return cc_cfg_check(&c->cc);
}

static size_t align64(size_t v)
{
	return (v + 63) & ~(size_t)63;
}

/* Offsets of every array for @c; returns the total size. */
static size_t layout(const struct tp_cfg *c, struct tp_shm *s)
{
	uint32_t nb = 64;
	size_t off = align64(sizeof(struct tp_shm));
	size_t F = c->max_flows;

	while (nb < 2 * c->max_flows)
		nb *= 2;
	s->nbuckets = nb;
	s->off_flows = off;
	off = align64(off + F * sizeof(struct tp_flow));
	s->off_txm = off;
	off = align64(off + F * c->tx_msgs * sizeof(struct tp_txmsg));
	s->off_txp = off;
	off = align64(off + F * c->tx_wnd * sizeof(struct tp_txpkt));
	s->off_rxm = off;
	off = align64(off + F * c->rx_wnd * sizeof(struct tp_rxmsg));
	s->off_rxb = off;
	off = align64(off + F * (c->rx_wnd / 8));
	s->off_hconn = off;
	off = align64(off + nb * sizeof(uint32_t));
	s->off_htuple = off;
	off = align64(off + nb * sizeof(uint32_t));
	s->off_listen = off;
	off = align64(off + c->max_listen * sizeof(struct tp_listen));
	s->size = off;
	return off;
}

size_t tp_memsize(const struct tp_cfg *cfg)
{
	struct tp_shm s;

	if (tp_cfg_check(cfg))
		return 0;
	return layout(cfg, &s);
}

static void open_handle(struct tp *t, void *mem, const struct tp_ops *ops, void *ctx)
{
	struct tp_shm *s = mem;
	uint8_t *b = mem;

	*t = (struct tp){
		.shm = s,
		.cfg = &s->cfg,
		.flows = (struct tp_flow *)(b + s->off_flows),
		.txm = (struct tp_txmsg *)(b + s->off_txm),
		.txp = (struct tp_txpkt *)(b + s->off_txp),
		.rxm = (struct tp_rxmsg *)(b + s->off_rxm),
		.rxb = (uint64_t *)(b + s->off_rxb),
		.hconn = (uint32_t *)(b + s->off_hconn),
		.htuple = (uint32_t *)(b + s->off_htuple),
		.listen = (struct tp_listen *)(b + s->off_listen),
		.ops = ops,
		.ctx = ctx,
	};
}

static int ops_ok(const struct tp_ops *o)
{
	return o && o->send_pkt && o->rx_msg_alloc && o->rx_msg_write && o->rx_msg_deliver &&
	       o->rx_msg_free && o->tx_msg_done && o->flow_event;
}

int tp_init(struct tp *t, void *mem, size_t len, const struct tp_cfg *cfg,
	    const struct tp_ops *ops, void *ctx)
{
	struct tp_shm *s = mem;
	size_t need;

	if (((uintptr_t)mem & 63) || !ops_ok(ops)) {
		mn_err("transport", "state block must be 64-byte aligned and every callback set");
		return -EINVAL;
	}
	need = tp_memsize(cfg);
	if (need == 0)
		return -EINVAL;
	if (len < need) {
		mn_err("transport", "state block of %zu bytes, %zu needed", len, need);
		return -ENOSPC;
	}
	memset(mem, 0, need);
	layout(cfg, s);
	s->version = TP_SHM_VERSION;
	s->cfg = *cfg;
	if (s->cfg.cc.max_cwnd > cfg->tx_wnd)
		s->cfg.cc.max_cwnd = cfg->tx_wnd;
	if (s->cfg.cc.fixed_cwnd > cfg->tx_wnd)
		s->cfg.cc.fixed_cwnd = cfg->tx_wnd;
	if (s->cfg.cc.init_cwnd > s->cfg.cc.max_cwnd)
		s->cfg.cc.init_cwnd = s->cfg.cc.max_cwnd;
	s->rng = cfg->seed;
	open_handle(t, mem, ops, ctx);
	for (uint32_t i = 0; i < s->nbuckets; i++)
		t->hconn[i] = t->htuple[i] = TP_NONE;
	__atomic_store_n(&s->magic, TP_SHM_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

int tp_attach(struct tp *t, void *mem, size_t len, const struct tp_ops *ops, void *ctx)
{
	struct tp_shm *s = mem;
	struct tp_shm want;

	if (((uintptr_t)mem & 63) || !ops_ok(ops))
		return -EINVAL;
	if (len < sizeof(*s)) {
		mn_err("transport", "state block of %zu bytes cannot hold its header", len);
		return -ERANGE;
	}
	if (__atomic_load_n(&s->magic, __ATOMIC_ACQUIRE) != TP_SHM_MAGIC ||
	    s->version != TP_SHM_VERSION || tp_cfg_check(&s->cfg)) {
		mn_err("transport", "state block: magic 0x%08" PRIx32 " version %" PRIu32
		       ", expected 0x%08x version %u with a valid configuration",
		       s->magic, s->version, TP_SHM_MAGIC, TP_SHM_VERSION);
		return -EBADMSG;
	}
	want = *s;
	if (layout(&s->cfg, &want) != s->size || want.off_listen != s->off_listen ||
	    want.nbuckets != s->nbuckets || want.off_flows != s->off_flows) {
		mn_err("transport", "state block geometry does not match its configuration");
		return -EBADMSG;
	}
	if (s->size > len) {
		mn_err("transport", "state block needs %" PRIu64 " bytes, %zu mapped", s->size, len);
		return -ERANGE;
	}
	open_handle(t, mem, ops, ctx);
	return 0;
}

int tp_listen(struct tp *t, uint32_t ip, uint16_t port)
{
	struct tp_listen *free_slot = NULL;

	for (uint32_t i = 0; i < t->cfg->max_listen; i++) {
		struct tp_listen *l = &t->listen[i];

		if (l->used && l->ip == ip && l->port == port)
			return -EEXIST;
		if (!l->used && !free_slot)
			free_slot = l;
	}
	if (!free_slot)
		return -ENOSPC;
	*free_slot = (struct tp_listen){ .ip = ip, .port = port, .used = 1 };
	return 0;
}

int tp_unlisten(struct tp *t, uint32_t ip, uint16_t port)
{
	for (uint32_t i = 0; i < t->cfg->max_listen; i++) {
		struct tp_listen *l = &t->listen[i];

		if (l->used && l->ip == ip && l->port == port) {
			l->used = 0;
			return 0;
		}
	}
	return -ENOENT;
}

int tp_connect(struct tp *t, const struct tp_tuple *tuple, uint64_t now)
{
	struct tp_flow *f;

	if (!tuple->local_ip || !tuple->remote_ip || !tuple->local_port || !tuple->remote_port)
		return -EINVAL;
	f = lookup_tuple(t, tuple);
	if (f && f->state != TP_TIME_WAIT)
		return -EADDRINUSE;
	if (f)
		flow_release(t, f); /* a new incarnation on the old 4-tuple */
	f = flow_alloc(t, tuple, now);
	if (!f)
		return -ENOSPC;
	f->state = TP_SYN_SENT;
	f->flags |= FF_ACTIVE;
	send_ctrl(t, f, WIRE_SYN, 0, now);
	rto_arm(f, now);
	return (int)fidx(t, f);
}

int tp_send_msg(struct tp *t, uint32_t flow, uint64_t handle, uint32_t len, uint64_t now)
{
	struct tp_flow *f;
	struct tp_txmsg *m;

	f = app_flow(t, flow);
	if (!f)
		return -ENOTCONN;
	if (f->flags & FF_FIN_QUEUED)
		return -EPIPE;
	if (len == 0 || len > t->cfg->max_msg)
		return -EMSGSIZE;
	if (f->tx_tail - f->tx_head >= t->cfg->tx_msgs)
		return -EAGAIN;
	m = txmsg(t, f, f->tx_tail);
	*m = (struct tp_txmsg){ .handle = handle, .len = len };
	f->tx_tail++;
	flush(t, f, now);
	return 0;
}

int tp_close(struct tp *t, uint32_t flow, uint64_t now)
{
	struct tp_flow *f;

	f = app_flow(t, flow);
	if (!f)
		return -ENOTCONN;
	if (f->flags & FF_FIN_QUEUED)
		return -EALREADY;
	f->flags |= FF_FIN_QUEUED;
	flush(t, f, now);
	return 0;
}

int tp_abort(struct tp *t, uint32_t flow, uint64_t now)
{
	struct tp_flow *f;

	f = app_flow(t, flow);
	if (!f)
		return -ENOTCONN;
	send_rst(t, f, WIRE_RST_ABORT, now);
	flow_end(t, f, TP_EV_CLOSED, TP_R_ABORTED, 0);
	return 0;
}

int tp_rx_ready(struct tp *t, uint32_t flow, uint64_t now)
{
	struct tp_flow *f;

	f = app_flow(t, flow);
	if (!f)
		return -ENOTCONN;
	if (f->flags & FF_RX_BLOCKED) {
		f->flags &= ~FF_RX_BLOCKED;
		if (f->state == TP_ESTABLISHED)
			send_ctrl(t, f, WIRE_ACK, 0, now); /* the window update */
	}
	return 0;
}

int tp_rx_pkt(struct tp *t, const struct tp_tuple *tuple, const void *pkt, size_t len,
	      uint64_t now)
{
	struct tp_stats *st = &t->shm->stats;
	struct wire_hdr h;
	struct tp_flow *f;
	int err;

	st->rx_pkts++;
	err = wire_decode(&h, pkt, len);
	if (err) {
		st->rx_bad[-err]++;
		return -EBADMSG;
	}
	if (h.type == WIRE_SYN)
		return on_syn(t, tuple, &h, now);
	if (h.type == WIRE_RST)
		return on_rst(t, tuple, &h, now);
	f = lookup_conn(t, h.dst_conn);
	if (!f) {
		st->rx_no_flow++;
		send_rst_reply(t, tuple, &h, WIRE_RST_NO_CONN, now);
		return -ENOENT;
	}
	if (!tuple_eq(&f->tuple, tuple)) {
		st->rx_bad_tuple++;
		return -EPROTO;
	}
	if (f->state == TP_SYN_SENT) {
		if (h.type != WIRE_SYNACK || h.ack != f->iss) {
			st->rx_bad_state++;
			return -EPROTO;
		}
		on_synack(t, f, &h, now);
		return 0;
	}
	if (h.src_conn != f->peer_conn) {
		st->rx_bad_conn++;
		return -EPROTO;
	}
	if (f->state == TP_TIME_WAIT)
		return on_time_wait_pkt(t, f, &h, now);
	return on_flow_pkt(t, f, &h, (const uint8_t *)pkt + WIRE_HDR_LEN, now);
}

int tp_flow_lookup(const struct tp *t, const struct tp_tuple *tuple)
{
	const struct tp_flow *f = lookup_tuple(t, tuple);

	return f ? (int)fidx(t, f) : -ENOENT;
}

int tp_flow_info(const struct tp *t, uint32_t flow, struct tp_flow_info *out)
{
	const struct tp_flow *f;

	if (!flow_live(t, flow))
		return -ENOENT;
	f = &t->flows[flow];
	*out = (struct tp_flow_info){
		.state = f->state,
		.local_conn = f->local_conn,
		.peer_conn = f->peer_conn,
		.tuple = f->tuple,
		.srtt_ns = f->srtt_ns,
		.rttvar_ns = f->rttvar_ns,
		.rto_ns = f->rto_ns,
		.cwnd = f->cc.cwnd,
		.inflight = inflight(f),
		.unacked = f->snd_nxt - f->snd_una,
		.tx_queued = f->tx_tail - f->tx_head,
		.peer_wnd = f->peer_wnd,
		.retries = f->retries,
		.closing = (f->flags & (FF_FIN_QUEUED | FF_FIN_SENT | FF_PEER_FIN_SEEN)) != 0,
		.created_ns = f->created_ns,
		.min_rtt_ns = f->min_rtt_ns,
		.stats = f->stats,
	};
	return 0;
}

void tp_stats(const struct tp *t, struct tp_stats *out)
{
	*out = t->shm->stats;
	out->flows_active = t->shm->nflows;
}

const char *tp_event_name(enum tp_event ev)
{
	switch (ev) {
	case TP_EV_ESTABLISHED:
		return "established";
	case TP_EV_ACCEPTED:
		return "accepted";
	case TP_EV_CLOSED:
		return "closed";
	case TP_EV_FAILED:
		return "failed";
	}
	return "?";
}

const char *tp_reason_name(enum tp_reason r)
{
	static const char *const names[] = {
		[TP_R_NONE] = "none",	       [TP_R_TIMEOUT] = "retries exhausted",
		[TP_R_RESET] = "reset by peer", [TP_R_REFUSED] = "refused (no listener)",
		[TP_R_IDLE] = "idle timeout",  [TP_R_NO_RESOURCES] = "peer out of flows",
		[TP_R_MSG_REFUSED] = "message refused", [TP_R_PROTO] = "protocol error",
		[TP_R_ABORTED] = "aborted",
	};

	if ((unsigned int)r >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[r];
}
