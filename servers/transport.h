/* SPDX-License-Identifier: MIT */
/*
 * tp: the machnet transport core. Flows between two hosts carry whole
 * messages (1 B .. 8 MiB) reliably and in order over the wire format of
 * wire.h: handshake with connection ids, segmentation and reassembly,
 * cumulative ACK + SACK, fast retransmit, RFC 6298 RTO with back-off and
 * a retry limit, FIN close, RST, keepalive and idle timeout, congestion
 * control (cc.h) and a receive window. docs/wire.md describes the
 * protocol; this header describes the code.
 *
 * Pure C: no I/O, no clock, no allocation, no heap pointers in its state.
 *  - Time comes in as now_ns arguments (a monotonic nanosecond clock:
 *    CLOCK_MONOTONIC, which a restarted process on the same boot shares).
 *  - Packets go out, and message bytes move, through callbacks
 *    (struct tp_ops): the core never touches a message buffer.
 *  - All state lives in one caller-provided memory block (tp_memsize()),
 *    made of plain data addressed by index:
 *
 *      +--------------------+ 0
 *      | struct tp_shm      |  magic, version, geometry, cfg, stats, rng
 *      +--------------------+ off_flows
 *      | tp_flow[max_flows] |  flow control blocks
 *      +--------------------+ off_txm
 *      | tp_txmsg[F][tx_msgs]   per-flow send queue of messages
 *      +--------------------+ off_txp
 *      | tp_txpkt[F][tx_wnd]    per-flow unacked packets, by seq % tx_wnd
 *      +--------------------+ off_rxm
 *      | tp_rxmsg[F][rx_wnd]    per-flow reassembly, by msg_id % rx_wnd
 *      +--------------------+ off_rxb
 *      | u64[F][rx_wnd/64]  |  per-flow received-packet bitmap, seq % rx_wnd
 *      +--------------------+ off_hconn, off_htuple
 *      | u32[nbuckets] x 2  |  hash heads: by local conn id, by 4-tuple
 *      +--------------------+ off_listen
 *      | tp_listen[max_listen]
 *      +--------------------+ size
 *
 *    The block can be a shared, named region: a restarted protocol server
 *    maps it and calls tp_attach() (only header and geometry are checked
 *    there today; adopting state after a crash is a later issue).
 *    struct tp itself is a process-local handle of pointers into it.
 *
 * Flow lookup: by local connection id (every packet but a SYN) and by
 * 4-tuple (SYN, tp_connect), chained hash tables with 2 * max_flows
 * buckets (at least 64). Creating a flow scans for a free slot: O(max_flows).
 * tp_timer() visits every flow: O(max_flows) per call, fine for the few
 * thousand flows of one tenant; a timer wheel is the next step beyond.
 *
 * Reentrancy: the callbacks run inside tp_* calls and must not call tp_*
 * on the same instance (queue the work and do it after the call returns),
 * except the read-only tp_flow_info(), tp_flow_lookup() and tp_stats().
 * Not thread-safe: one thread drives one instance.
 */
#ifndef MN_SERVERS_TRANSPORT_H
#define MN_SERVERS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc.h"
#include "wire.h"

#define TP_SHM_MAGIC 0x54535054u /* "TPST" */
#define TP_SHM_VERSION 1u
#define TP_NONE UINT32_MAX	  /* "no flow": flow argument of a flow-less send */
#define TP_DUPTHRESH 3u		  /* SACKed packets above a hole that make it lost */

/* Addresses of a flow, host byte order, seen from this side. */
struct tp_tuple {
	uint32_t local_ip;
	uint32_t remote_ip;
	uint16_t local_port;
	uint16_t remote_port;
};

struct tp_cfg {
	uint32_t max_flows;    /* flow slots, 1 .. 65536 */
	uint32_t max_listen;   /* listening addresses, 1 .. 1024 */
	uint32_t tx_msgs;      /* send queue per flow, messages, power of two 2 .. 65536 */
	uint32_t tx_wnd;       /* unacked packets per flow, power of two 8 .. 65536 */
	uint32_t rx_wnd;       /* reassembly window per flow, packets, power of two 64 .. 65536 */
	uint32_t mss;	       /* payload bytes per DATA packet, 1 .. WIRE_MAX_PAYLOAD */
	uint32_t max_msg;      /* largest message either way, 1 .. WIRE_MAX_MSG */
	uint32_t max_retries;  /* RTO expiries in a row with no word from the peer, 1 .. 64 */
	uint64_t rto_init_ns;  /* RTO before the first RTT sample (SYN, SYN-ACK) */
	uint64_t rto_min_ns;   /* RTO clamp (RFC 6298 uses 1 s; a datacenter far less) */
	uint64_t rto_max_ns;
	uint64_t keepalive_ns; /* probe a silent established flow this often; 0: never */
	uint64_t idle_ns;      /* fail a flow whose peer was silent this long; 0: never */
	uint64_t time_wait_ns; /* linger after a close to re-ACK the peer's FIN; 0: never */
	uint64_t seed;	       /* seeds connection ids and ISNs: use getrandom() */
	struct cc_cfg cc;
};

/* What a flow tells the glue (flow_event). */
enum tp_event {
	TP_EV_ESTABLISHED = 1, /* our tp_connect() completed */
	TP_EV_ACCEPTED = 2,    /* a peer's connect to one of our listen addresses completed */
	TP_EV_CLOSED = 3,      /* closed: reason TP_R_NONE (graceful) or TP_R_ABORTED */
	TP_EV_FAILED = 4,      /* failed: reason says why */
};

enum tp_reason {
	TP_R_NONE = 0,
	TP_R_TIMEOUT = 1,      /* max_retries RTOs with no word from the peer */
	TP_R_RESET = 2,	       /* the peer reset the flow (or forgot it: restarted) */
	TP_R_REFUSED = 3,      /* nobody listens at the remote address */
	TP_R_IDLE = 4,	       /* the peer was silent for idle_ns */
	TP_R_NO_RESOURCES = 5, /* the peer had no flow slot */
	TP_R_MSG_REFUSED = 6,  /* a message the receiver can never take */
	TP_R_PROTO = 7,	       /* the peer broke the protocol */
	TP_R_ABORTED = 8,      /* tp_abort() here or on the peer */
};

/*
 * Callbacks, process-local. @ctx is the pointer given to tp_init/attach.
 * @flow is the flow index (TP_NONE for packets that belong to no flow: RSTs
 * answering unknown connections). Message handles are the glue's: opaque
 * 64-bit values the core only stores and passes back.
 */
struct tp_ops {
	/*
	 * send_pkt - build and transmit one frame to @t (seen from this side:
	 * from local to remote): Ethernet/IPv4/UDP headers, wire_encode(@h),
	 * then @len payload bytes copied from tx message @handle at offset @off
	 * (@len == 0: no payload, @handle meaningless). Returns 0, or -errno if
	 * the frame could not be queued (no buffer): nothing is committed then
	 * and the core tries again later (a later tp_* call or tp_timer()).
	 */
	int (*send_pkt)(void *ctx, uint32_t flow, const struct tp_tuple *t,
			const struct wire_hdr *h, uint64_t handle, uint32_t off, uint32_t len);
	/*
	 * rx_msg_alloc - a buffer for an incoming message of @msg_len bytes
	 * (1 .. cfg.max_msg). @head: it is the next message the flow delivers;
	 * otherwise it arrived ahead of an earlier one, and it can be
	 * delivered only after that one: an allocator with a bounded budget
	 * must keep room for the head (a later message holding the head's
	 * room would block the flow for good). 0 and *handle set; -ENOBUFS
	 * (or any error but -EMSGSIZE) when none now: the packet is dropped
	 * unacked, counted, and the flow advertises a zero window until
	 * tp_rx_ready() or a later allocation succeeds; -EMSGSIZE when such a
	 * message can never be taken: the flow is reset (TP_R_MSG_REFUSED).
	 */
	int (*rx_msg_alloc)(void *ctx, uint32_t flow, uint32_t msg_len, bool head,
			    uint64_t *handle);
	/* rx_msg_write - copy @len bytes to offset @off of message @handle (in bounds). */
	void (*rx_msg_write)(void *ctx, uint32_t flow, uint64_t handle, uint32_t off,
			     const void *src, uint32_t len);
	/* rx_msg_deliver - message @handle is whole: hand it to the application (in order). */
	void (*rx_msg_deliver)(void *ctx, uint32_t flow, uint64_t handle, uint32_t len);
	/* rx_msg_free - drop a message that will not be delivered (flow ended). */
	void (*rx_msg_free)(void *ctx, uint32_t flow, uint64_t handle);
	/*
	 * tx_msg_done - the core is done with tx message @handle: @status 0
	 * (the peer acknowledged all of it) or -errno (the flow ended first:
	 * -ETIMEDOUT, -ECONNRESET, -ECONNREFUSED, -ECONNABORTED, -EMSGSIZE,
	 * -EPROTO). Called in send order, before the flow's last event.
	 */
	void (*tx_msg_done)(void *ctx, uint32_t flow, uint64_t handle, int status);
	/*
	 * flow_event - see enum tp_event. After TP_EV_CLOSED / TP_EV_FAILED
	 * the flow index is no longer the application's: the core may reuse
	 * it at once, or keep it in TP_TIME_WAIT for a while first (tp_* calls
	 * on it then answer -ENOTCONN). tp_flow_info() still works inside
	 * the callback.
	 */
	void (*flow_event)(void *ctx, uint32_t flow, enum tp_event ev, enum tp_reason reason);
};

/* Counters of the whole instance (packets that belong to no flow, mostly). */
struct tp_stats {
	uint64_t rx_pkts;		  /* handed to tp_rx_pkt() */
	uint64_t rx_bad[WIRE_E_NR];	  /* refused by wire_decode(), by enum wire_err */
	uint64_t rx_no_flow;		  /* no flow with that dst_conn (answered with RST) */
	uint64_t rx_bad_tuple;		  /* conn id known, addresses not its flow's */
	uint64_t rx_bad_conn;		  /* src_conn is not the flow's peer */
	uint64_t rx_bad_state;		  /* a type the flow's state does not take */
	uint64_t rx_rst_ignored;	  /* RST for nothing we know */
	uint64_t syn_no_listener;	  /* SYN refused: nobody listens (RST) */
	uint64_t syn_no_slot;		  /* SYN refused: no free flow (RST) */
	uint64_t syn_challenged;	  /* SYN for a live 4-tuple: challenge ACK sent */
	uint64_t syn_dup;		  /* SYN of a flow already up (ignored) */
	uint64_t halfopen_dropped;	  /* SYN_RCVD flows that timed out or were reset */
	uint64_t tw_reclaimed;		  /* TIME_WAIT slots taken early for new flows */
	uint64_t rst_sent;
	uint64_t tx_fail;		  /* send_pkt refused a frame */
	uint64_t flows_opened;
	uint64_t flows_closed;
	uint64_t flows_failed;
	uint64_t flows_active;		  /* gauge: slots not free (TIME_WAIT included) */
};

/* Counters of one flow. Drops are by reason; nothing is dropped uncounted. */
struct tp_flow_stats {
	uint64_t tx_pkts;	   /* DATA/FIN transmissions, retransmissions included */
	uint64_t tx_bytes;	   /* payload bytes sent (first transmissions) */
	uint64_t tx_msgs;	   /* messages acknowledged */
	uint64_t tx_ctrl;	   /* ACK, SYN, SYN-ACK and probe packets sent */
	uint64_t retx_rto;	   /* retransmissions after an RTO */
	uint64_t retx_fast;	   /* retransmissions after SACK loss detection */
	uint64_t rto_fired;	   /* RTO expiries */
	uint64_t probes;	   /* zero-window and keepalive probes */
	uint64_t rx_pkts;	   /* valid packets received on the flow */
	uint64_t rx_bytes;	   /* new payload bytes accepted */
	uint64_t rx_msgs;	   /* messages delivered */
	uint64_t rx_dup;	   /* DATA/FIN already received (dropped, acked) */
	uint64_t rx_beyond_wnd;	   /* DATA/FIN beyond the reassembly window (dropped) */
	uint64_t rx_nobuf;	   /* DATA dropped: rx_msg_alloc() had no buffer */
	uint64_t rx_bad_msg;	   /* DATA dropped: msg_id out of range, msg_len mismatch */
	uint64_t rx_bad_ack;	   /* packets dropped: ack beyond what we sent */
	uint64_t rx_ooo;	   /* DATA accepted out of order */
	uint64_t acks_sent;	   /* pure ACKs */
	uint64_t rto_spurious;	   /* RTOs undone: the peer acked an older transmission */
};

/* A snapshot of one flow for the glue and tools. */
struct tp_flow_info {
	uint32_t state;		/* enum tp_state (transport.c); 0 = free */
	uint32_t local_conn;
	uint32_t peer_conn;
	struct tp_tuple tuple;
	uint64_t srtt_ns;
	uint64_t rttvar_ns;
	uint64_t rto_ns;	/* current, back-off included */
	double cwnd;		/* packets */
	uint32_t inflight;	/* packets in the network (not acked, SACKed or lost) */
	uint32_t unacked;	/* snd_nxt - snd_una */
	uint32_t tx_queued;	/* messages queued and not yet acknowledged */
	uint32_t peer_wnd;	/* last window the peer advertised */
	uint32_t retries;	/* RTO expiries since the peer was last heard */
	bool closing;		/* established, and a FIN queued, sent or received */
	uint64_t created_ns;	/* the `now` of the call that created the flow */
	uint64_t min_rtt_ns;	/* lowest RTT sample; 0 before the first */
	struct tp_flow_stats stats;
};

/* Flow states (also in struct tp_flow_info.state). */
enum tp_state {
	TP_FREE = 0,
	TP_SYN_SENT = 1,   /* connect: SYN sent, waiting for SYN-ACK */
	TP_SYN_RCVD = 2,   /* accept: SYN-ACK sent, waiting for the peer's first packet */
	TP_ESTABLISHED = 3, /* data both ways; closing is tracked by flags (docs/wire.md) */
	TP_TIME_WAIT = 4,  /* closed and announced; lingers to re-ACK the peer's FIN */
};

struct tp_shm;
struct tp_flow;
struct tp_txmsg;
struct tp_txpkt;
struct tp_rxmsg;
struct tp_listen;

/* Process-local handle: pointers into the state block and the callbacks. */
struct tp {
	struct tp_shm *shm;
	const struct tp_cfg *cfg; /* inside shm */
	struct tp_flow *flows;
	struct tp_txmsg *txm;
	struct tp_txpkt *txp;
	struct tp_rxmsg *rxm;
	uint64_t *rxb;
	uint32_t *hconn;
	uint32_t *htuple;
	struct tp_listen *listen;
	const struct tp_ops *ops;
	void *ctx;
};

/* tp_cfg_default - defaults of docs/wire.md (MSS for a 1500-byte MTU, ...). */
void tp_cfg_default(struct tp_cfg *cfg);

/* tp_cfg_check - 0, or -EINVAL naming the bad field in the log. */
int tp_cfg_check(const struct tp_cfg *cfg);

/* tp_memsize - bytes of state @cfg needs, 0 if @cfg is invalid. */
size_t tp_memsize(const struct tp_cfg *cfg);

/*
 * tp_init - format a fresh state block in @mem (@len bytes, 64-byte
 * aligned) for @cfg, and open @t on it with callbacks @ops / @ctx (every
 * callback is required). Returns 0, -EINVAL (cfg, alignment, missing
 * callback) or -ENOSPC (@len < tp_memsize()).
 */
int tp_init(struct tp *t, void *mem, size_t len, const struct tp_cfg *cfg,
	    const struct tp_ops *ops, void *ctx);

/*
 * tp_attach - open @t on a state block formatted by tp_init() (possibly by
 * another, earlier process). Checks magic, version and geometry against
 * @len. Returns 0, -EBADMSG or -ERANGE (logged).
 */
int tp_attach(struct tp *t, void *mem, size_t len, const struct tp_ops *ops, void *ctx);

/*
 * tp_listen / tp_unlisten - accept SYNs to (@ip, @port); @ip 0 means any
 * local address. Flows already accepted are not affected by unlisten.
 * Returns 0; -EEXIST / -ENOENT; -ENOSPC (max_listen reached).
 */
int tp_listen(struct tp *t, uint32_t ip, uint16_t port);
int tp_unlisten(struct tp *t, uint32_t ip, uint16_t port);

/*
 * tp_connect - open a flow to @tuple: sends a SYN, then TP_EV_ESTABLISHED
 * or TP_EV_FAILED (TP_R_REFUSED, TP_R_TIMEOUT, ...) follows. Messages may
 * be queued at once (tp_send_msg) and go out when the flow is up.
 * Returns the flow index (>= 0), -EADDRINUSE (a flow has that 4-tuple),
 * -ENOSPC (no free flow slot), -EINVAL (port 0, ip 0).
 */
int tp_connect(struct tp *t, const struct tp_tuple *tuple, uint64_t now_ns);

/*
 * tp_send_msg - queue message @handle of @len bytes on @flow. The core
 * reads it only through send_pkt and reports with tx_msg_done().
 * Returns 0; -EAGAIN (the flow's send queue holds tx_msgs messages:
 * back-pressure, try again after a tx_msg_done); -EPIPE (the flow is
 * closing); -ENOTCONN (not a flow the application knows); -EMSGSIZE
 * (@len 0 or > max_msg).
 */
int tp_send_msg(struct tp *t, uint32_t flow, uint64_t handle, uint32_t len,
		uint64_t now_ns);

/*
 * tp_close - graceful close: messages already queued are still sent and
 * acknowledged, then a FIN; the peer closes its side the same way; then
 * TP_EV_CLOSED (or TP_EV_FAILED if that cannot complete). New sends get
 * -EPIPE. Returns 0, -EALREADY (already closing), -ENOTCONN.
 */
int tp_close(struct tp *t, uint32_t flow, uint64_t now_ns);

/*
 * tp_abort - reset the flow now: RST to the peer, queued messages fail
 * with -ECONNABORTED, TP_EV_CLOSED with TP_R_ABORTED. Returns 0 or -ENOTCONN.
 */
int tp_abort(struct tp *t, uint32_t flow, uint64_t now_ns);

/*
 * tp_rx_pkt - one received UDP payload (@pkt, @len bytes) whose addresses,
 * seen from this side, are @tuple (local = destination). Decodes, finds
 * the flow, acts, answers (ACK, RST, SYN-ACK) through send_pkt.
 * Returns 0 if the packet was taken by a flow or answered, -EBADMSG
 * (refused by the decoder), -ENOENT (no flow, RST sent or not), -EPROTO
 * (dropped by a flow's checks). Every refusal is counted.
 */
int tp_rx_pkt(struct tp *t, const struct tp_tuple *tuple, const void *pkt, size_t len,
	      uint64_t now_ns);

/*
 * tp_rx_ready - the glue has message buffers again for @flow (after
 * rx_msg_alloc refused): reopen the window and tell the peer now.
 * Returns 0 or -ENOTCONN.
 */
int tp_rx_ready(struct tp *t, uint32_t flow, uint64_t now_ns);

/*
 * tp_timer - run every timer due at @now_ns (retransmission, SYN and
 * probe timers, keepalive, idle timeout, pacing, sends that send_pkt
 * refused earlier). Returns the earliest next deadline (UINT64_MAX: none).
 * O(max_flows); call it when the returned deadline passes and after any
 * other tp_* call may have armed a timer (cheap when nothing is due).
 */
uint64_t tp_timer(struct tp *t, uint64_t now_ns);

/* tp_flow_lookup - index of the flow with @tuple, or -ENOENT. */
int tp_flow_lookup(const struct tp *t, const struct tp_tuple *tuple);

/* tp_flow_info - snapshot of @flow. Returns 0 or -ENOENT (free slot, bad index). */
int tp_flow_info(const struct tp *t, uint32_t flow, struct tp_flow_info *out);

/* tp_stats - instance counters. */
void tp_stats(const struct tp *t, struct tp_stats *out);

/* Names for logs, tools and tests. */
const char *tp_event_name(enum tp_event ev);
const char *tp_reason_name(enum tp_reason r);

#endif /* MN_SERVERS_TRANSPORT_H */
