/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for servers/cc: configuration checks, Swift's additive
 * increase below the target, bounded multiplicative decrease above it (at
 * most once per RTT), loss and RTO reactions, windows below one packet
 * with pacing, flow-based target scaling, and the fixed-window mode.
 * (The transport tests check the same behaviour end to end on a link.)
 */
#include "testutil.h"

#include <errno.h>
#include <math.h>

#include "cc.h"

#define US 1000ull
#define MS 1000000ull

static struct cc_cfg swift(void)
{
	struct cc_cfg c;

	cc_cfg_default(&c);
	c.fs_range_ns = 0; /* a fixed, absolute target keeps the arithmetic readable */
	c.target_abs = 1;
	return c;
}

static void test_default_config_is_valid(void **state)
{
	struct cc_cfg c;

	(void)state;
	cc_cfg_default(&c);
	assert_int_equal(cc_cfg_check(&c), 0);
	assert_int_equal(c.mode, CC_SWIFT);
}

static void test_config_refuses_each_bad_field(void **state)
{
	struct cc_cfg c;

	(void)state;
#define BAD(stmt)                                                 \
	do {                                                      \
		cc_cfg_default(&c);                               \
		stmt;                                             \
		assert_int_equal(cc_cfg_check(&c), -EINVAL);      \
	} while (0)
	BAD(c.mode = 7);
	BAD(c.min_cwnd = 0);
	BAD(c.min_cwnd = -1);
	BAD(c.max_cwnd = 0.5);
	BAD(c.min_cwnd = 300);
	BAD(c.init_cwnd = 1000);
	BAD(c.init_cwnd = 0.001);
	BAD(c.fixed_cwnd = 0);
	BAD(c.ai = 0);
	BAD(c.beta = 0);
	BAD(c.beta = 1.5);
	BAD(c.max_mdf = 0);
	BAD(c.max_mdf = 1);
	BAD(c.retx_reset = 0);
	BAD(c.fs_min_cwnd = 200);
	BAD(c.target_ns = 0);
	BAD(c.ai = NAN);
#undef BAD
}

static void test_below_target_grows_by_ai_per_window(void **state)
{
	struct cc_cfg c = swift();
	struct cc_state s;

	(void)state;
	cc_init(&s, &c);
	assert_true(s.cwnd == c.init_cwnd);
	/* One window of ACKs below target: about +ai. */
	for (int i = 0; i < 16; i++)
		cc_on_ack(&s, &c, 1, 20 * US, (uint64_t)(i + 1) * US);
	assert_true(s.cwnd > 16.9 && s.cwnd < 17.0);
	assert_int_equal(s.decreases, 0);
}

static void test_above_target_decreases_once_per_rtt(void **state)
{
	struct cc_cfg c = swift();
	struct cc_state s;
	uint64_t now = 10 * MS;
	double before;

	(void)state;
	cc_init(&s, &c);
	/* delay = 2 * target: factor 1 - 0.8 * 0.5 = 0.6 */
	cc_on_ack(&s, &c, 1, 200 * US, now);
	assert_true(fabs(s.cwnd - 16 * 0.6) < 1e-9);
	before = s.cwnd;
	/* Within the same RTT: no second decrease. */
	cc_on_ack(&s, &c, 1, 200 * US, now + 100 * US);
	assert_true(s.cwnd == before);
	/* After an RTT: again. */
	cc_on_ack(&s, &c, 1, 200 * US, now + 200 * US);
	assert_true(s.cwnd < before);
	assert_int_equal(s.decreases, 2);
}

static void test_decrease_is_bounded_by_max_mdf(void **state)
{
	struct cc_cfg c = swift();
	struct cc_state s;

	(void)state;
	cc_init(&s, &c);
	/* Huge delay: 1 - 0.8 * ~1 = 0.2, but never below 1 - max_mdf = 0.5. */
	cc_on_ack(&s, &c, 1, 100 * MS, MS);
	assert_true(fabs(s.cwnd - 8.0) < 1e-9);
}

static void test_window_goes_below_one_and_paces(void **state)
{
	struct cc_cfg c = swift();
	struct cc_state s;
	uint64_t now = MS;

	(void)state;
	cc_init(&s, &c);
	for (int i = 0; i < 20; i++) {
		now += 10 * MS;
		cc_on_ack(&s, &c, 1, 5 * MS, now);
	}
	assert_true(s.cwnd < 1.0);
	assert_true(s.cwnd >= c.min_cwnd);
	assert_int_equal(cc_pace_gap_ns(&s, 50 * US), (uint64_t)((double)(50 * US) / s.cwnd));
	/* Below target again, a sub-packet window grows by ai per ACK. */
	s.cwnd = 0.5;
	cc_on_ack(&s, &c, 1, 10 * US, now + 1);
	assert_true(fabs(s.cwnd - 1.5) < 1e-9);
	assert_int_equal(cc_pace_gap_ns(&s, 50 * US), 0);
}

static void test_rto_halves_then_resets_to_min(void **state)
{
	struct cc_cfg c = swift();
	struct cc_state s;

	(void)state;
	cc_init(&s, &c);
	s.rtt_ns = 10 * US;
	cc_on_rto(&s, &c, 1 * MS);
	assert_true(fabs(s.cwnd - 8.0) < 1e-9);
	cc_on_rto(&s, &c, 2 * MS);
	assert_true(fabs(s.cwnd - 4.0) < 1e-9);
	cc_on_rto(&s, &c, 3 * MS); /* retx_reset = 3 in a row */
	assert_true(s.cwnd == c.min_cwnd);
	/* An ACK ends the streak. */
	cc_on_ack(&s, &c, 1, 10 * US, 4 * MS);
	assert_int_equal(s.retx_cnt, 0);
}

static void test_loss_decreases_once_per_rtt(void **state)
{
	struct cc_cfg c = swift();
	struct cc_state s;

	(void)state;
	cc_init(&s, &c);
	s.rtt_ns = 50 * US;
	cc_on_loss(&s, &c, 1 * MS);
	assert_true(fabs(s.cwnd - 8.0) < 1e-9);
	cc_on_loss(&s, &c, 1 * MS + 10 * US);
	assert_true(fabs(s.cwnd - 8.0) < 1e-9);
	cc_on_loss(&s, &c, 1 * MS + 60 * US);
	assert_true(fabs(s.cwnd - 4.0) < 1e-9);
}

static void test_window_stays_within_min_and_max(void **state)
{
	struct cc_cfg c = swift();
	struct cc_state s;

	(void)state;
	c.max_cwnd = 20;
	cc_init(&s, &c);
	for (int i = 0; i < 10000; i++)
		cc_on_ack(&s, &c, 4, 1 * US, (uint64_t)i);
	assert_true(s.cwnd == 20);
	for (int i = 0; i < 100; i++)
		cc_on_rto(&s, &c, (uint64_t)i * MS);
	assert_true(s.cwnd == c.min_cwnd);
}

static void test_flow_scaling_raises_target_for_small_windows(void **state)
{
	struct cc_cfg c;
	struct cc_state s;

	(void)state;
	cc_cfg_default(&c);
	c.target_abs = 1;
	cc_init(&s, &c);
	s.cwnd = c.fs_max_cwnd;
	assert_int_equal(cc_target_ns(&s, &c), c.target_ns);
	s.cwnd = 1000;
	assert_int_equal(cc_target_ns(&s, &c), c.target_ns);
	s.cwnd = c.fs_min_cwnd;
	assert_true(cc_target_ns(&s, &c) >= c.target_ns + c.fs_range_ns - 1);
	s.cwnd = c.min_cwnd;
	assert_int_equal(cc_target_ns(&s, &c), c.target_ns + c.fs_range_ns);
	s.cwnd = 10;
	assert_true(cc_target_ns(&s, &c) > c.target_ns &&
		    cc_target_ns(&s, &c) < c.target_ns + c.fs_range_ns);
}

static void test_relative_target_sits_above_min_rtt(void **state)
{
	struct cc_cfg c;
	struct cc_state s;
	double w;

	(void)state;
	cc_cfg_default(&c);
	c.fs_range_ns = 0;
	cc_init(&s, &c);
	/* A long path: 400 us is its floor, not congestion. */
	for (int i = 0; i < 32; i++)
		cc_on_ack(&s, &c, 1, 400 * US + (uint64_t)(i % 4) * 10 * US, (uint64_t)(i + 1) * MS);
	assert_int_equal(s.min_rtt_ns, 400 * US);
	assert_int_equal(cc_target_ns(&s, &c), 400 * US + c.target_ns);
	assert_int_equal(s.decreases, 0);
	assert_true(s.cwnd > c.init_cwnd);
	/* Queueing on top of it is. */
	w = s.cwnd;
	cc_on_ack(&s, &c, 1, 400 * US + 3 * c.target_ns, 40 * MS);
	assert_true(s.cwnd < w);
	/* After the window the floor is learned again (the path got longer). */
	cc_on_ack(&s, &c, 1, 900 * US, 40 * MS + c.min_rtt_win_ns + 1);
	assert_int_equal(s.min_rtt_ns, 900 * US);
	/* The paper's absolute target treats the same path as congested. */
	c.target_abs = 1;
	cc_init(&s, &c);
	cc_on_ack(&s, &c, 1, 400 * US, 1 * MS);
	assert_true(s.cwnd < c.init_cwnd);
}

static void test_fixed_mode_ignores_delay_loss_and_rto(void **state)
{
	struct cc_cfg c;
	struct cc_state s;

	(void)state;
	cc_cfg_default(&c);
	c.mode = CC_FIXED;
	c.fixed_cwnd = 32;
	cc_init(&s, &c);
	assert_true(s.cwnd == 32);
	cc_on_ack(&s, &c, 10, 50 * MS, 1 * MS);
	cc_on_ack(&s, &c, 10, 1 * US, 2 * MS);
	cc_on_loss(&s, &c, 3 * MS);
	for (int i = 0; i < 10; i++)
		cc_on_rto(&s, &c, (uint64_t)(4 + i) * MS);
	assert_true(s.cwnd == 32);
	assert_int_equal(cc_pace_gap_ns(&s, 10 * US), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_config_is_valid),
		cmocka_unit_test(test_config_refuses_each_bad_field),
		cmocka_unit_test(test_below_target_grows_by_ai_per_window),
		cmocka_unit_test(test_above_target_decreases_once_per_rtt),
		cmocka_unit_test(test_decrease_is_bounded_by_max_mdf),
		cmocka_unit_test(test_window_goes_below_one_and_paces),
		cmocka_unit_test(test_rto_halves_then_resets_to_min),
		cmocka_unit_test(test_loss_decreases_once_per_rtt),
		cmocka_unit_test(test_window_stays_within_min_and_max),
		cmocka_unit_test(test_flow_scaling_raises_target_for_small_windows),
		cmocka_unit_test(test_relative_target_sits_above_min_rtt),
		cmocka_unit_test(test_fixed_mode_ignores_delay_loss_and_rto),
	};

	return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
