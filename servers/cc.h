/* SPDX-License-Identifier: MIT */
/*
 * cc: per-flow congestion control of the machnet transport.
 *
 * Two modes, chosen per tenant (struct cc_cfg.mode):
 *
 *  CC_SWIFT  a delay-based controller of the Swift family (Kumar et al.,
 *            SIGCOMM 2020). Each ACK carries one delay sample (the RTT
 *            measured from the echoed timestamp). Below the target delay
 *            the window grows additively (ai packets per RTT); above it,
 *            it shrinks multiplicatively in proportion to the excess,
 *            at most once per RTT and by at most max_mdf. Loss and RTO
 *            shrink it too. The window may fall below one packet: the
 *            transport then paces, one packet every rtt / cwnd.
 *            Unlike the paper, whose target is an absolute fabric delay
 *            configured for a known topology, the target is by default
 *            relative: the flow's minimum RTT (its propagation and host
 *            floor, re-learned every min_rtt_win_ns) plus target_ns of
 *            queueing. VMs of one tenant sit at unknown distances;
 *            an absolute target below a path's floor would starve it.
 *            target_abs = 1 restores the paper's absolute target.
 *  CC_FIXED  a constant window of fixed_cwnd packets: no reaction to
 *            delay or loss; only the receiver window and retransmission
 *            limit the sender.
 *
 * The equations, parameters and defaults are in docs/wire.md
 * ("Congestion control"); cc_cfg_default() is the code of that table.
 *
 * State is plain data (no pointers) so that it can live in the tenant's
 * shared state region. Time is passed in. Not thread-safe: the caller
 * serialises calls per flow.
 */
#ifndef MN_SERVERS_CC_H
#define MN_SERVERS_CC_H

#include <stdint.h>

enum cc_mode {
	CC_SWIFT = 0,
	CC_FIXED = 1,
};

struct cc_cfg {
	uint32_t mode;		 /* enum cc_mode */
	uint32_t retx_reset;	 /* consecutive RTOs that drop cwnd to min_cwnd */
	uint32_t target_abs;	 /* 1: target_ns is absolute (Swift); 0: above min RTT */
	uint32_t pad;
	uint64_t min_rtt_win_ns; /* relative target: forget the min RTT after this */
	double init_cwnd;	 /* packets, at flow start */
	double min_cwnd;	 /* packets, > 0; below 1 means pacing */
	double max_cwnd;	 /* packets; the transport clamps it to its tx window */
	double fixed_cwnd;	 /* CC_FIXED: the window, packets */
	double ai;		 /* additive increase, packets per RTT */
	double beta;		 /* multiplicative decrease per unit of excess delay */
	double max_mdf;		 /* largest decrease factor in one step, (0, 1) */
	uint64_t target_ns;	 /* target delay (queueing allowance if relative) */
	uint64_t fs_range_ns;	 /* flow scaling: extra target at small windows */
	double fs_min_cwnd;	 /* window getting the whole fs_range */
	double fs_max_cwnd;	 /* window getting none of it */
};

/* Per-flow controller state. */
struct cc_state {
	double cwnd;		  /* congestion window, packets (may be < 1) */
	uint64_t last_decrease_ns; /* when cwnd was last decreased */
	uint64_t rtt_ns;	  /* last delay sample (0: none yet) */
	uint64_t min_rtt_ns;	  /* lowest sample in the current window (0: none) */
	uint64_t min_rtt_at_ns;	  /* when the current window began */
	uint32_t retx_cnt;	  /* consecutive RTOs without an ACK in between */
	uint32_t pad;
	uint64_t increases;	  /* ACKs that grew the window */
	uint64_t decreases;	  /* multiplicative decreases (delay, loss, RTO) */
};

/* cc_cfg_default - the defaults of docs/wire.md: Swift, min RTT + 100 us target. */
void cc_cfg_default(struct cc_cfg *c);

/*
 * cc_cfg_check - 0 if @c is usable, else -EINVAL (logged, naming the
 * field): mode, windows positive and ordered (min <= init <= max), factors
 * in range (ai > 0, beta in (0, 1], max_mdf in (0, 1)), fs_min < fs_max.
 */
int cc_cfg_check(const struct cc_cfg *c);

/* cc_init - fresh state for a new flow: init_cwnd (fixed_cwnd in CC_FIXED). */
void cc_init(struct cc_state *s, const struct cc_cfg *c);

/*
 * cc_on_ack - @acked packets newly delivered (cumulatively or by SACK),
 * with delay sample @delay_ns (0: this ACK carried none; then only the
 * reset of the RTO counter happens). Swift: additive increase below the
 * target, multiplicative decrease above it (once per RTT).
 */
void cc_on_ack(struct cc_state *s, const struct cc_cfg *c, uint32_t acked,
	       uint64_t delay_ns, uint64_t now_ns);

/* cc_on_loss - fast retransmit detected loss: decrease by max_mdf, once per RTT. */
void cc_on_loss(struct cc_state *s, const struct cc_cfg *c, uint64_t now_ns);

/*
 * cc_on_rto - the retransmission timer expired: the first retx_reset - 1
 * times in a row, decrease by max_mdf (once per RTT); from then on, drop
 * to min_cwnd.
 */
void cc_on_rto(struct cc_state *s, const struct cc_cfg *c, uint64_t now_ns);

/* cc_target_ns - the current target delay: base (0 or min RTT) + target + flow scaling. */
uint64_t cc_target_ns(const struct cc_state *s, const struct cc_cfg *c);

/*
 * cc_pace_gap_ns - when cwnd < 1, the time between two packets
 * (@rtt_ns / cwnd); 0 when the window itself limits the sender.
 */
uint64_t cc_pace_gap_ns(const struct cc_state *s, uint64_t rtt_ns);

#endif /* MN_SERVERS_CC_H */
