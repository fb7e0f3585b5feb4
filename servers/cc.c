/* SPDX-License-Identifier: MIT */
#include "cc.h"

#include <errno.h>
#include <math.h>

#include "log.h"

void cc_cfg_default(struct cc_cfg *c)
{
	*c = (struct cc_cfg){
		.mode = CC_SWIFT,
		.retx_reset = 3,
		.target_abs = 0,
		.min_rtt_win_ns = 10000000000ull, /* 10 s */
		.init_cwnd = 16.0,
		.min_cwnd = 0.01,
		.max_cwnd = 256.0,
		.fixed_cwnd = 64.0,
		.ai = 1.0,
		.beta = 0.8,
		.max_mdf = 0.5,
		.target_ns = 100000,
		.fs_range_ns = 100000,
		.fs_min_cwnd = 0.1,
		.fs_max_cwnd = 100.0,
	};
}

static int bad(const char *field, double v)
{
	mn_err("cc", "invalid congestion-control setting %s = %g", field, v);
	return -EINVAL;
}

int cc_cfg_check(const struct cc_cfg *c)
{
	if (c->mode != CC_SWIFT && c->mode != CC_FIXED)
		return bad("mode", c->mode);
	if (!(c->min_cwnd > 0) || !(c->max_cwnd >= 1) || c->min_cwnd > c->max_cwnd)
		return bad("min_cwnd/max_cwnd", c->min_cwnd);
	if (!(c->init_cwnd >= c->min_cwnd) || c->init_cwnd > c->max_cwnd)
		return bad("init_cwnd", c->init_cwnd);
	if (!(c->fixed_cwnd >= 1))
		return bad("fixed_cwnd", c->fixed_cwnd);
	if (!(c->ai > 0) || c->ai > 1e6)
		return bad("ai", c->ai);
	if (!(c->beta > 0) || c->beta > 1)
		return bad("beta", c->beta);
	if (!(c->max_mdf > 0) || !(c->max_mdf < 1))
		return bad("max_mdf", c->max_mdf);
	if (c->retx_reset < 1)
		return bad("retx_reset", c->retx_reset);
	if (!(c->fs_min_cwnd > 0) || !(c->fs_max_cwnd > c->fs_min_cwnd))
		return bad("fs_min_cwnd/fs_max_cwnd", c->fs_min_cwnd);
	if (c->target_ns == 0)
		return bad("target_ns", 0);
	if (c->target_abs > 1)
		return bad("target_abs", c->target_abs);
	if (!c->target_abs && c->min_rtt_win_ns == 0)
		return bad("min_rtt_win_ns", 0);
	return 0;
}

static void clamp(struct cc_state *s, const struct cc_cfg *c)
{
	if (s->cwnd < c->min_cwnd)
		s->cwnd = c->min_cwnd;
	if (s->cwnd > c->max_cwnd)
		s->cwnd = c->max_cwnd;
}

void cc_init(struct cc_state *s, const struct cc_cfg *c)
{
	*s = (struct cc_state){ .cwnd = c->mode == CC_FIXED ? c->fixed_cwnd : c->init_cwnd };
}

/*
 * Swift's flow scaling: a flow with a small window gets a larger target
 * (up to fs_range more), so that many flows sharing a bottleneck converge
 * to fairness instead of starving the ones that backed off first.
 *   target = base + clamp(alpha / sqrt(cwnd) + b, 0, fs_range)
 * with alpha, b chosen so that the extra is fs_range at fs_min_cwnd and 0
 * at fs_max_cwnd.
 */
uint64_t cc_target_ns(const struct cc_state *s, const struct cc_cfg *c)
{
	double lo = 1.0 / sqrt(c->fs_max_cwnd), hi = 1.0 / sqrt(c->fs_min_cwnd);
	uint64_t base = c->target_ns + (c->target_abs ? 0 : s->min_rtt_ns);
	double alpha, extra;

	if (c->fs_range_ns == 0)
		return base;
	alpha = (double)c->fs_range_ns / (hi - lo);
	extra = alpha / sqrt(s->cwnd) - alpha * lo;
	if (extra < 0)
		extra = 0;
	if (extra > (double)c->fs_range_ns)
		extra = (double)c->fs_range_ns;
	return base + (uint64_t)extra;
}

/* At most one decrease per RTT: the effect of the last one must show first. */
static int can_decrease(const struct cc_state *s, uint64_t now_ns)
{
	return s->last_decrease_ns == 0 || now_ns - s->last_decrease_ns >= s->rtt_ns;
}

static void decrease(struct cc_state *s, const struct cc_cfg *c, double factor,
		     uint64_t now_ns)
{
	s->cwnd *= factor;
	s->last_decrease_ns = now_ns ? now_ns : 1;
	s->decreases++;
	clamp(s, c);
}

void cc_on_ack(struct cc_state *s, const struct cc_cfg *c, uint32_t acked,
	       uint64_t delay_ns, uint64_t now_ns)
{
	uint64_t target;

	s->retx_cnt = 0;
	if (c->mode == CC_FIXED || delay_ns == 0)
		return;
	s->rtt_ns = delay_ns;
	/* The floor: the lowest sample, re-learned once per window so that a
	 * longer path (a VM moved) is taken as the new floor eventually. */
	if (s->min_rtt_ns == 0 || delay_ns < s->min_rtt_ns ||
	    now_ns - s->min_rtt_at_ns > c->min_rtt_win_ns) {
		if (s->min_rtt_ns == 0 || now_ns - s->min_rtt_at_ns > c->min_rtt_win_ns)
			s->min_rtt_at_ns = now_ns;
		s->min_rtt_ns = delay_ns;
	}
	target = cc_target_ns(s, c);
	if (delay_ns < target) {
		if (acked == 0)
			return;
		/* ai packets per window's worth of ACKs, i.e. per RTT. */
		if (s->cwnd >= 1)
			s->cwnd += c->ai * acked / s->cwnd;
		else
			s->cwnd += c->ai * acked;
		s->increases++;
		clamp(s, c);
	} else if (can_decrease(s, now_ns)) {
		double f = 1.0 - c->beta * (double)(delay_ns - target) / (double)delay_ns;

		if (f < 1.0 - c->max_mdf)
			f = 1.0 - c->max_mdf;
		decrease(s, c, f, now_ns);
	}
}

void cc_on_loss(struct cc_state *s, const struct cc_cfg *c, uint64_t now_ns)
{
	s->retx_cnt = 0;
	if (c->mode == CC_FIXED || !can_decrease(s, now_ns))
		return;
	decrease(s, c, 1.0 - c->max_mdf, now_ns);
}

void cc_on_rto(struct cc_state *s, const struct cc_cfg *c, uint64_t now_ns)
{
	if (c->mode == CC_FIXED)
		return;
	s->retx_cnt++;
	if (s->retx_cnt >= c->retx_reset) {
		s->cwnd = c->min_cwnd;
		s->last_decrease_ns = now_ns ? now_ns : 1;
		s->decreases++;
	} else if (can_decrease(s, now_ns)) {
		decrease(s, c, 1.0 - c->max_mdf, now_ns);
	}
}

uint64_t cc_pace_gap_ns(const struct cc_state *s, uint64_t rtt_ns)
{
	if (s->cwnd >= 1)
		return 0;
	return (uint64_t)((double)rtt_ns / s->cwnd);
}
