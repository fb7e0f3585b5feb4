/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for drivers/neigh: learning and lookup, resolution (one
 * request, then retries from the tick), time-out to FAILED with on_fail
 * called once, hold-down then retry, ttl -> STALE -> refresh, expiry,
 * eviction when full, -ENOSPC when every entry is still resolving, and a
 * fill/expire/refill cycle at full capacity. Time is a plain number here:
 * TTL 1000, TIMEOUT 300, RETRY 100 (units do not matter to the cache).
 */
#include "testutil.h"

#include <errno.h>
#include <stdbool.h>

#include "neigh.h"

#define TTL 1000u
#define TIMEOUT 300u
#define RETRY 100u
#define CAP 4u

#define IP(n) (0x0a000000u + (n)) /* 10.0.0.n */

static const uint8_t mac1[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t mac2[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const uint8_t zero_mac[6];

/* What the callbacks saw. */
struct calls {
	unsigned int sends, fails;
	uint32_t last_send, last_fail;
};

static void on_send(uint32_t ip, void *ctx)
{
	struct calls *c = ctx;

	c->sends++;
	c->last_send = ip;
}

static void on_fail(uint32_t ip, void *ctx)
{
	struct calls *c = ctx;

	c->fails++;
	c->last_fail = ip;
}

static int setup(void **state)
{
	struct neigh_cache *c = NULL;

	assert_int_equal(neigh_create(&c, CAP, TTL, TIMEOUT, RETRY), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	neigh_destroy(*state);
	return 0;
}

#define CACHE ((struct neigh_cache *)*state)

/* Lookup expecting @want; returns *need_request. */
static bool lookup(struct neigh_cache *c, uint32_t ip, uint64_t now, int want)
{
	uint8_t mac[6];
	bool need = !want; /* poison: must be written */

	assert_int_equal(neigh_lookup(c, ip, now, mac, &need), want);
	return need;
}

static unsigned int tick(struct neigh_cache *c, uint64_t now, struct calls *k)
{
	return neigh_tick(c, now, on_send, on_fail, k);
}

static void test_create_refuses_bad_arguments(void **state)
{
	struct neigh_cache *c = NULL;

	(void)state;
	assert_int_equal(neigh_create(&c, 0, TTL, TIMEOUT, RETRY), -EINVAL);
	assert_int_equal(neigh_create(&c, NEIGH_MAX_CAPACITY + 1, TTL, TIMEOUT, RETRY),
			 -EINVAL);
	assert_int_equal(neigh_create(&c, CAP, 0, TIMEOUT, RETRY), -EINVAL);
	assert_int_equal(neigh_create(&c, CAP, TTL, 0, RETRY), -EINVAL);
	assert_int_equal(neigh_create(&c, CAP, TTL, TIMEOUT, 0), -EINVAL);
	assert_int_equal(neigh_create(&c, CAP, UINT64_MAX, TIMEOUT, RETRY), -EINVAL);
	assert_null(c);
	neigh_destroy(NULL);
}

static void test_learn_then_lookup_returns_mac(void **state)
{
	uint8_t mac[6];
	bool need = true;

	assert_true(neigh_learn(CACHE, IP(1), mac1, 0));
	assert_int_equal(neigh_lookup(CACHE, IP(1), 10, mac, &need), 0);
	assert_memory_equal(mac, mac1, 6);
	assert_false(need);
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), NEIGH_REACHABLE);
}

static void test_learn_replaces_changed_mac(void **state)
{
	uint8_t mac[6];

	neigh_learn(CACHE, IP(1), mac1, 0);
	neigh_learn(CACHE, IP(1), mac2, 5);
	assert_int_equal(neigh_lookup(CACHE, IP(1), 10, mac, NULL), 0);
	assert_memory_equal(mac, mac2, 6);
	assert_int_equal(neigh_count(CACHE), 1);
}

static void test_learn_ignores_probe_and_group_macs(void **state)
{
	const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };

	assert_false(neigh_learn(CACHE, 0, mac1, 0)); /* RFC 5227 probe: sender 0.0.0.0 */
	assert_false(neigh_learn(CACHE, IP(1), bcast, 0));
	assert_false(neigh_learn(CACHE, IP(2), mcast, 0));
	assert_false(neigh_learn(CACHE, IP(3), zero_mac, 0));
	assert_int_equal(neigh_count(CACHE), 0);
}

static void test_unknown_lookup_starts_resolution_and_asks_once(void **state)
{
	uint8_t mac[6];

	assert_true(lookup(CACHE, IP(1), 0, -EAGAIN));
	assert_int_equal(neigh_peek(CACHE, IP(1), mac), NEIGH_INCOMPLETE);
	assert_memory_equal(mac, zero_mac, 6);
	assert_false(lookup(CACHE, IP(1), 1, -EAGAIN));
	assert_false(lookup(CACHE, IP(1), 99, -EAGAIN));
}

static void test_lookup_accepts_null_outputs(void **state)
{
	assert_int_equal(neigh_lookup(CACHE, IP(1), 0, NULL, NULL), -EAGAIN);
	neigh_learn(CACHE, IP(1), mac1, 1);
	assert_int_equal(neigh_lookup(CACHE, IP(1), 2, NULL, NULL), 0);
}

static void test_answer_completes_resolution(void **state)
{
	uint8_t mac[6];
	bool need;

	lookup(CACHE, IP(1), 0, -EAGAIN);
	neigh_learn(CACHE, IP(1), mac1, 50);
	assert_int_equal(neigh_lookup(CACHE, IP(1), 60, mac, &need), 0);
	assert_memory_equal(mac, mac1, 6);
	assert_false(need);
}

static void test_tick_resends_every_retry_interval(void **state)
{
	struct calls k = { 0 };

	lookup(CACHE, IP(1), 0, -EAGAIN); /* the caller sends the first */
	tick(CACHE, RETRY - 1, &k);
	assert_int_equal(k.sends, 0);
	tick(CACHE, RETRY, &k);
	assert_int_equal(k.sends, 1);
	assert_int_equal(k.last_send, IP(1));
	tick(CACHE, RETRY + 50, &k);
	assert_int_equal(k.sends, 1);
	tick(CACHE, 2 * RETRY, &k);
	assert_int_equal(k.sends, 2);
	assert_int_equal(k.fails, 0);
}

static void test_timeout_fails_once_and_calls_on_fail(void **state)
{
	struct calls k = { 0 };

	lookup(CACHE, IP(1), 0, -EAGAIN);
	assert_int_equal(tick(CACHE, TIMEOUT - 1, &k), 0);
	assert_int_equal(tick(CACHE, TIMEOUT, &k), 1);
	assert_int_equal(k.fails, 1);
	assert_int_equal(k.last_fail, IP(1));
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), NEIGH_FAILED);
	assert_int_equal(tick(CACHE, TIMEOUT + 1, &k), 0);
	assert_int_equal(tick(CACHE, TIMEOUT + RETRY, &k), 0);
	assert_int_equal(k.fails, 1);
}

static void test_no_request_is_sent_after_failure(void **state)
{
	struct calls k = { 0 };

	lookup(CACHE, IP(1), 0, -EAGAIN);
	tick(CACHE, TIMEOUT, &k);
	k.sends = 0;
	for (uint64_t t = TIMEOUT; t < 2 * TIMEOUT; t += 10)
		tick(CACHE, t, &k);
	assert_int_equal(k.sends, 0);
}

static void test_incomplete_past_timeout_waits_for_tick(void **state)
{
	/* Only the tick fails an entry, so on_fail is never skipped. */
	lookup(CACHE, IP(1), 0, -EAGAIN);
	assert_false(lookup(CACHE, IP(1), TIMEOUT + 5, -EAGAIN));
}

static void test_failed_is_unreachable_during_hold_down(void **state)
{
	struct calls k = { 0 };

	lookup(CACHE, IP(1), 0, -EAGAIN);
	tick(CACHE, TIMEOUT, &k);
	assert_false(lookup(CACHE, IP(1), TIMEOUT, -EHOSTUNREACH));
	assert_false(lookup(CACHE, IP(1), 2 * TIMEOUT - 1, -EHOSTUNREACH));
}

static void test_lookup_after_hold_down_retries(void **state)
{
	struct calls k = { 0 };

	lookup(CACHE, IP(1), 0, -EAGAIN);
	tick(CACHE, TIMEOUT, &k);
	assert_true(lookup(CACHE, IP(1), 2 * TIMEOUT, -EAGAIN));
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), NEIGH_INCOMPLETE);
	/* A full new attempt: it fails again only a timeout later. */
	assert_int_equal(tick(CACHE, 3 * TIMEOUT - 1, &k), 0);
	assert_int_equal(tick(CACHE, 3 * TIMEOUT, &k), 1);
	assert_int_equal(k.fails, 2);
}

static void test_tick_drops_failed_entry_after_hold_down(void **state)
{
	struct calls k = { 0 };

	lookup(CACHE, IP(1), 0, -EAGAIN);
	tick(CACHE, TIMEOUT, &k);
	tick(CACHE, 2 * TIMEOUT, &k);
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), -ENOENT);
	assert_true(lookup(CACHE, IP(1), 2 * TIMEOUT, -EAGAIN));
}

static void test_learn_rescues_failed_entry(void **state)
{
	struct calls k = { 0 };

	lookup(CACHE, IP(1), 0, -EAGAIN);
	tick(CACHE, TIMEOUT, &k);
	neigh_learn(CACHE, IP(1), mac1, TIMEOUT + 1); /* a late answer */
	assert_false(lookup(CACHE, IP(1), TIMEOUT + 2, 0));
}

static void test_ttl_makes_entry_stale_and_asks_refresh_once(void **state)
{
	uint8_t mac[6];
	bool need;

	neigh_learn(CACHE, IP(1), mac1, 0);
	assert_false(lookup(CACHE, IP(1), TTL - 1, 0));
	assert_int_equal(neigh_lookup(CACHE, IP(1), TTL, mac, &need), 0);
	assert_true(need);
	assert_memory_equal(mac, mac1, 6); /* still usable while refreshing */
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), NEIGH_STALE);
	assert_false(lookup(CACHE, IP(1), TTL + 1, 0));
}

static void test_stale_refresh_is_retried_by_tick(void **state)
{
	struct calls k = { 0 };

	neigh_learn(CACHE, IP(1), mac1, 0);
	lookup(CACHE, IP(1), TTL, 0);
	tick(CACHE, TTL + RETRY - 1, &k);
	assert_int_equal(k.sends, 0);
	tick(CACHE, TTL + RETRY, &k);
	assert_int_equal(k.sends, 1);
	assert_int_equal(k.last_send, IP(1));
}

static void test_refresh_answer_makes_entry_reachable_again(void **state)
{
	neigh_learn(CACHE, IP(1), mac1, 0);
	lookup(CACHE, IP(1), TTL, 0);
	neigh_learn(CACHE, IP(1), mac1, TTL + 50);
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), NEIGH_REACHABLE);
	assert_false(lookup(CACHE, IP(1), TTL + 60, 0));
	/* The new confirmation starts a new ttl. */
	assert_false(lookup(CACHE, IP(1), 2 * TTL + 49, 0));
	assert_true(lookup(CACHE, IP(1), 2 * TTL + 50, 0));
}

static void test_unanswered_stale_entry_is_removed(void **state)
{
	struct calls k = { 0 };

	neigh_learn(CACHE, IP(1), mac1, 0);
	lookup(CACHE, IP(1), TTL, 0);
	tick(CACHE, TTL + TIMEOUT - 1, &k);
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), NEIGH_STALE);
	assert_int_equal(tick(CACHE, TTL + TIMEOUT, &k), 0);
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), -ENOENT);
	assert_int_equal(k.fails, 0); /* removal, not a failed resolution */
}

static void test_lookup_past_expiry_restarts_resolution(void **state)
{
	/* No tick ran: the lookup itself refuses to hand out the old MAC. */
	neigh_learn(CACHE, IP(1), mac1, 0);
	assert_true(lookup(CACHE, IP(1), TTL + TIMEOUT, -EAGAIN));
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), NEIGH_INCOMPLETE);
}

static void test_idle_reachable_entry_is_not_refreshed_and_expires(void **state)
{
	struct calls k = { 0 };

	neigh_learn(CACHE, IP(1), mac1, 0);
	for (uint64_t t = 0; t < TTL + TIMEOUT; t += 10)
		tick(CACHE, t, &k);
	assert_int_equal(k.sends, 0);
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), NEIGH_REACHABLE);
	tick(CACHE, TTL + TIMEOUT, &k);
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), -ENOENT);
}

static void test_full_cache_evicts_oldest_resolved_entry(void **state)
{
	for (uint32_t i = 1; i <= CAP; i++)
		neigh_learn(CACHE, IP(i), mac1, 10 * i); /* IP(1) is the oldest */
	neigh_learn(CACHE, IP(2), mac1, 100);		 /* refreshed: now IP(3) is */
	neigh_learn(CACHE, IP(1), mac1, 101);
	assert_true(lookup(CACHE, IP(9), 200, -EAGAIN));
	assert_int_equal(neigh_count(CACHE), CAP);
	assert_int_equal(neigh_peek(CACHE, IP(3), NULL), -ENOENT);
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), NEIGH_REACHABLE);
	assert_int_equal(neigh_peek(CACHE, IP(2), NULL), NEIGH_REACHABLE);
	assert_int_equal(neigh_peek(CACHE, IP(4), NULL), NEIGH_REACHABLE);
	assert_int_equal(neigh_peek(CACHE, IP(9), NULL), NEIGH_INCOMPLETE);
}

static void test_eviction_spares_incomplete_entries(void **state)
{
	lookup(CACHE, IP(1), 0, -EAGAIN); /* oldest, but still resolving */
	for (uint32_t i = 2; i <= CAP; i++)
		neigh_learn(CACHE, IP(i), mac1, 10 * i);
	assert_true(lookup(CACHE, IP(9), 100, -EAGAIN));
	assert_int_equal(neigh_peek(CACHE, IP(1), NULL), NEIGH_INCOMPLETE);
	assert_int_equal(neigh_peek(CACHE, IP(2), NULL), -ENOENT);
}

static void test_all_incomplete_is_enospc(void **state)
{
	for (uint32_t i = 1; i <= CAP; i++)
		lookup(CACHE, IP(i), i, -EAGAIN);
	lookup(CACHE, IP(9), 10, -ENOSPC);
	assert_int_equal(neigh_peek(CACHE, IP(9), NULL), -ENOENT);
	/* An answer for a stranger is dropped too: nothing can make room. */
	neigh_learn(CACHE, IP(8), mac1, 11);
	assert_int_equal(neigh_peek(CACHE, IP(8), NULL), -ENOENT);
	/* Once one resolves, it can be evicted for the newcomer. */
	neigh_learn(CACHE, IP(2), mac1, 12);
	assert_true(lookup(CACHE, IP(9), 13, -EAGAIN));
	assert_int_equal(neigh_peek(CACHE, IP(2), NULL), -ENOENT);
}

struct listing {
	unsigned int n;
	uint32_t ip[CAP];
	int state[CAP];
	uint64_t age[CAP];
};

static void list_one(uint32_t ip, const uint8_t mac[6], int st, uint64_t age, void *ctx)
{
	struct listing *l = ctx;

	(void)mac;
	assert_true(l->n < CAP);
	l->ip[l->n] = ip;
	l->state[l->n] = st;
	l->age[l->n] = age;
	l->n++;
}

static int index_of(const struct listing *l, uint32_t ip)
{
	for (unsigned int i = 0; i < l->n; i++)
		if (l->ip[i] == ip)
			return (int)i;
	fail_msg("ip %#x not listed", ip);
	return -1;
}

static void test_foreach_lists_states_and_ages(void **state)
{
	struct listing l = { 0 };
	int i;

	neigh_learn(CACHE, IP(1), mac1, 100);
	lookup(CACHE, IP(2), 150, -EAGAIN);
	assert_int_equal(neigh_foreach(CACHE, 400, list_one, &l), 2);
	i = index_of(&l, IP(1));
	assert_int_equal(l.state[i], NEIGH_REACHABLE);
	assert_int_equal(l.age[i], 300);
	i = index_of(&l, IP(2));
	assert_int_equal(l.state[i], NEIGH_INCOMPLETE);
	assert_int_equal(l.age[i], 250);
	assert_int_equal(neigh_foreach(CACHE, 400, NULL, NULL), -EINVAL);
}

static void test_clock_going_back_is_age_zero(void **state)
{
	neigh_learn(CACHE, IP(1), mac1, 500);
	assert_false(lookup(CACHE, IP(1), 400, 0));
}

static void test_full_capacity_fill_expire_refill(void **state)
{
	struct neigh_cache *c = NULL;
	struct calls k = { 0 };
	const unsigned int cap = 1024;
	uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0 };

	(void)state;
	assert_int_equal(neigh_create(&c, cap, TTL, TIMEOUT, RETRY), 0);
	for (int round = 0; round < 3; round++) {
		uint64_t t0 = (uint64_t)round * 10 * TTL;

		/* Addresses that collide in low bits as well as in high ones. */
		for (uint32_t i = 0; i < cap; i++) {
			mac[4] = (uint8_t)(i >> 8);
			mac[5] = (uint8_t)i;
			neigh_learn(c, (i << 16) + (uint32_t)round + 1, mac, t0);
		}
		assert_int_equal(neigh_count(c), cap);
		for (uint32_t i = 0; i < cap; i++) {
			uint8_t got[6];

			assert_int_equal(neigh_lookup(c, (i << 16) + (uint32_t)round + 1, t0 + 1,
						      got, NULL),
					 0);
			assert_int_equal(got[4] << 8 | got[5], i);
		}
		tick(c, t0 + TTL + TIMEOUT, &k);
		assert_int_equal(neigh_count(c), 0);
	}
	assert_int_equal(k.sends, 0);
	neigh_destroy(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_refuses_bad_arguments),
		T(test_learn_then_lookup_returns_mac),
		T(test_learn_replaces_changed_mac),
		T(test_learn_ignores_probe_and_group_macs),
		T(test_unknown_lookup_starts_resolution_and_asks_once),
		T(test_lookup_accepts_null_outputs),
		T(test_answer_completes_resolution),
		T(test_tick_resends_every_retry_interval),
		T(test_timeout_fails_once_and_calls_on_fail),
		T(test_no_request_is_sent_after_failure),
		T(test_incomplete_past_timeout_waits_for_tick),
		T(test_failed_is_unreachable_during_hold_down),
		T(test_lookup_after_hold_down_retries),
		T(test_tick_drops_failed_entry_after_hold_down),
		T(test_learn_rescues_failed_entry),
		T(test_ttl_makes_entry_stale_and_asks_refresh_once),
		T(test_stale_refresh_is_retried_by_tick),
		T(test_refresh_answer_makes_entry_reachable_again),
		T(test_unanswered_stale_entry_is_removed),
		T(test_lookup_past_expiry_restarts_resolution),
		T(test_idle_reachable_entry_is_not_refreshed_and_expires),
		T(test_full_cache_evicts_oldest_resolved_entry),
		T(test_eviction_spares_incomplete_entries),
		T(test_all_incomplete_is_enospc),
		T(test_foreach_lists_states_and_ages),
		T(test_clock_going_back_is_age_zero),
		cmocka_unit_test(test_full_capacity_fill_expire_refill),
	};

	return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
