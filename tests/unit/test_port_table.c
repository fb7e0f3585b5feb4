/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for drivers/port_table: creation refusals, claims and their
 * refusals in the documented order, conflicts between tenants, idempotent
 * re-claims, all-or-nothing on a partial conflict, allowances made of
 * several ranges, release, release_all, boundaries (port 1 and 65535),
 * non-local addresses, and the range iteration for the admin CLI.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>

#include "port_table.h"

#define IP1 0x0a000001u /* 10.0.0.1 */
#define IP2 0x0a000002u /* 10.0.0.2 */
#define IP3 0xc0a80001u /* 192.168.0.1 */
#define FOREIGN 0x08080808u

static const uint32_t local_ips[] = { IP1, IP2, IP3 };

/* Tenant allowances: everything on every local address; or a slice. */
static const uint16_t all_ports[][2] = { { 1, 65535 } };
static const struct pt_allow allow_all = { local_ips, 3, all_ports, 1 };

static const uint32_t ip1_only[] = { IP1 };
static const uint16_t slices[][2] = { { 1000, 1999 }, { 2000, 2099 }, { 5000, 5000 },
				      { 1500, 2500 } };
static const struct pt_allow allow_slices = { ip1_only, 1, slices, 4 };

static int setup(void **state)
{
	struct pt_table *t = NULL;

	assert_int_equal(pt_create(&t, local_ips, 3), 0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	pt_destroy(*state);
	return 0;
}

#define TABLE ((struct pt_table *)*state)

static void test_create_refuses_bad_address_lists(void **state)
{
	struct pt_table *t = NULL;
	const uint32_t dup[] = { IP1, IP2, IP1 };
	const uint32_t zero[] = { IP1, 0 };
	const uint32_t nine[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };

	(void)state;
	assert_int_equal(pt_create(&t, local_ips, 0), -EINVAL);
	assert_int_equal(pt_create(&t, nine, 9), -EINVAL);
	assert_int_equal(pt_create(&t, dup, 3), -EINVAL);
	assert_int_equal(pt_create(&t, zero, 2), -EINVAL);
	assert_null(t);
	assert_int_equal(pt_create(&t, nine, 8), 0);
	assert_int_equal(pt_ip_index(t, 8), 7);
	pt_destroy(t);
	pt_destroy(NULL);
}

static void test_new_table_is_empty(void **state)
{
	assert_int_equal(pt_lookup(TABLE, IP1, 1), -1);
	assert_int_equal(pt_lookup(TABLE, IP3, 65535), -1);
	assert_int_equal(pt_count(TABLE, 0), 0);
}

static void test_ip_index_of_local_and_foreign(void **state)
{
	assert_int_equal(pt_ip_index(TABLE, IP1), 0);
	assert_int_equal(pt_ip_index(TABLE, IP2), 1);
	assert_int_equal(pt_ip_index(TABLE, IP3), 2);
	assert_int_equal(pt_ip_index(TABLE, FOREIGN), -1);
}

static void test_claim_single_port_then_lookup(void **state)
{
	assert_int_equal(pt_claim(TABLE, 3, IP1, 7000, 7000, &allow_all), 0);
	assert_int_equal(pt_lookup(TABLE, IP1, 7000), 3);
	assert_int_equal(pt_lookup(TABLE, IP1, 6999), -1);
	assert_int_equal(pt_lookup(TABLE, IP1, 7001), -1);
	assert_int_equal(pt_lookup(TABLE, IP2, 7000), -1); /* other address */
	assert_true(pt_owns(TABLE, 3, IP1, 7000));
	assert_false(pt_owns(TABLE, 4, IP1, 7000));
	assert_int_equal(pt_count(TABLE, 3), 1);
}

static void test_claim_range_covers_both_ends(void **state)
{
	assert_int_equal(pt_claim(TABLE, 0, IP2, 100, 199, &allow_all), 0);
	assert_int_equal(pt_lookup(TABLE, IP2, 99), -1);
	assert_int_equal(pt_lookup(TABLE, IP2, 100), 0);
	assert_int_equal(pt_lookup(TABLE, IP2, 150), 0);
	assert_int_equal(pt_lookup(TABLE, IP2, 199), 0);
	assert_int_equal(pt_lookup(TABLE, IP2, 200), -1);
	assert_int_equal(pt_count(TABLE, 0), 100);
}

static void test_claim_port_65535_and_port_1(void **state)
{
	assert_int_equal(pt_claim(TABLE, 1, IP3, 65535, 65535, &allow_all), 0);
	assert_int_equal(pt_claim(TABLE, 2, IP3, 1, 1, &allow_all), 0);
	assert_int_equal(pt_lookup(TABLE, IP3, 65535), 1);
	assert_int_equal(pt_lookup(TABLE, IP3, 65534), -1);
	assert_int_equal(pt_lookup(TABLE, IP3, 1), 2);
	assert_int_equal(pt_lookup(TABLE, IP3, 0), -1);
}

static void test_claim_whole_port_space(void **state)
{
	assert_int_equal(pt_claim(TABLE, 9, IP1, 1, 65535, &allow_all), 0);
	assert_int_equal(pt_count(TABLE, 9), 65535);
	assert_int_equal(pt_lookup(TABLE, IP1, 65535), 9);
	assert_int_equal(pt_release_all(TABLE, 9), 65535);
	assert_int_equal(pt_lookup(TABLE, IP1, 65535), -1);
}

static void test_claim_refuses_invalid_arguments(void **state)
{
	assert_int_equal(pt_claim(TABLE, 0, IP1, 200, 100, &allow_all), -EINVAL);
	assert_int_equal(pt_claim(TABLE, 0, IP1, 0, 10, &allow_all), -EINVAL);
	assert_int_equal(pt_claim(TABLE, PT_MAX_TENANTS, IP1, 10, 10, &allow_all), -EINVAL);
	assert_int_equal(pt_claim(TABLE, UINT16_MAX, IP1, 10, 10, &allow_all), -EINVAL);
	assert_int_equal(pt_claim(TABLE, 0, IP1, 10, 10, NULL), -EINVAL);
	assert_int_equal(pt_lookup(TABLE, IP1, 10), -1);
}

static void test_claim_on_foreign_address_is_addrnotavail(void **state)
{
	const uint32_t ips[] = { FOREIGN };
	const struct pt_allow allow = { ips, 1, all_ports, 1 };

	/* Not local beats not allowed: the allowance even names it. */
	assert_int_equal(pt_claim(TABLE, 0, FOREIGN, 10, 10, &allow), -EADDRNOTAVAIL);
	assert_int_equal(pt_lookup(TABLE, FOREIGN, 10), -1);
}

static void test_claim_outside_allowed_addresses_is_eacces(void **state)
{
	assert_int_equal(pt_claim(TABLE, 0, IP2, 1000, 1000, &allow_slices), -EACCES);
	assert_int_equal(pt_lookup(TABLE, IP2, 1000), -1);
}

static void test_claim_inside_overlapping_allowed_ranges(void **state)
{
	/* 1000-1999, 2000-2099 and 1500-2500 together cover 1000-2500. */
	assert_int_equal(pt_claim(TABLE, 0, IP1, 1000, 2500, &allow_slices), 0);
	assert_int_equal(pt_claim(TABLE, 0, IP1, 5000, 5000, &allow_slices), 0);
	assert_int_equal(pt_count(TABLE, 0), 1502);
}

static void test_claim_crossing_allowed_edge_is_eacces(void **state)
{
	assert_int_equal(pt_claim(TABLE, 0, IP1, 999, 1000, &allow_slices), -EACCES);
	assert_int_equal(pt_claim(TABLE, 0, IP1, 2500, 2501, &allow_slices), -EACCES);
	assert_int_equal(pt_claim(TABLE, 0, IP1, 4999, 5000, &allow_slices), -EACCES);
	assert_int_equal(pt_claim(TABLE, 0, IP1, 2000, 5000, &allow_slices), -EACCES);
	assert_int_equal(pt_lookup(TABLE, IP1, 1000), -1);
	assert_int_equal(pt_lookup(TABLE, IP1, 5000), -1);
	assert_int_equal(pt_count(TABLE, 0), 0);
}

static void test_claim_with_empty_allowance_is_eacces(void **state)
{
	const struct pt_allow none = { local_ips, 3, NULL, 0 };

	assert_int_equal(pt_claim(TABLE, 0, IP1, 10, 10, &none), -EACCES);
}

static void test_allowance_up_to_65535_is_honoured(void **state)
{
	const uint16_t top[][2] = { { 65000, 65535 } };
	const struct pt_allow allow = { local_ips, 3, top, 1 };

	assert_int_equal(pt_claim(TABLE, 0, IP1, 65000, 65535, &allow), 0);
	assert_int_equal(pt_claim(TABLE, 0, IP1, 64999, 65535, &allow), -EACCES);
}

static void test_claim_conflict_between_tenants(void **state)
{
	assert_int_equal(pt_claim(TABLE, 1, IP1, 8000, 8009, &allow_all), 0);
	assert_int_equal(pt_claim(TABLE, 2, IP1, 8005, 8005, &allow_all), -EADDRINUSE);
	assert_int_equal(pt_lookup(TABLE, IP1, 8005), 1);
	/* Same port on another address is a different port. */
	assert_int_equal(pt_claim(TABLE, 2, IP2, 8005, 8005, &allow_all), 0);
}

static void test_claim_partial_conflict_changes_nothing(void **state)
{
	assert_int_equal(pt_claim(TABLE, 1, IP1, 9005, 9005, &allow_all), 0);
	assert_int_equal(pt_claim(TABLE, 2, IP1, 9000, 9010, &allow_all), -EADDRINUSE);
	for (uint32_t p = 9000; p <= 9010; p++)
		assert_int_equal(pt_lookup(TABLE, IP1, (uint16_t)p), p == 9005 ? 1 : -1);
	assert_int_equal(pt_count(TABLE, 2), 0);
	assert_int_equal(pt_count(TABLE, 1), 1);
}

static void test_reclaim_of_own_ports_is_idempotent(void **state)
{
	assert_int_equal(pt_claim(TABLE, 4, IP1, 100, 110, &allow_all), 0);
	assert_int_equal(pt_claim(TABLE, 4, IP1, 100, 110, &allow_all), 0);
	assert_int_equal(pt_count(TABLE, 4), 11);
	/* Extending over its own ports counts only the new ones. */
	assert_int_equal(pt_claim(TABLE, 4, IP1, 105, 120, &allow_all), 0);
	assert_int_equal(pt_count(TABLE, 4), 21);
	assert_int_equal(pt_lookup(TABLE, IP1, 120), 4);
}

static void test_tenant_0_and_highest_id_are_distinct(void **state)
{
	const uint16_t top = PT_MAX_TENANTS - 1;

	assert_int_equal(pt_claim(TABLE, 0, IP1, 10, 10, &allow_all), 0);
	assert_int_equal(pt_claim(TABLE, top, IP1, 11, 11, &allow_all), 0);
	assert_int_equal(pt_lookup(TABLE, IP1, 10), 0);
	assert_int_equal(pt_lookup(TABLE, IP1, 11), top);
	assert_true(pt_owns(TABLE, top, IP1, 11));
	assert_false(pt_owns(TABLE, top, IP1, 10));
}

static void test_owns_is_false_for_foreign_address_and_bad_tenant(void **state)
{
	assert_int_equal(pt_claim(TABLE, 0, IP1, 10, 10, &allow_all), 0);
	assert_false(pt_owns(TABLE, 0, FOREIGN, 10));
	assert_false(pt_owns(TABLE, PT_MAX_TENANTS, IP1, 10));
	assert_false(pt_owns(TABLE, 0, IP1, 0));
}

static void test_release_own_ports(void **state)
{
	assert_int_equal(pt_claim(TABLE, 1, IP1, 100, 199, &allow_all), 0);
	assert_int_equal(pt_release(TABLE, 1, IP1, 150, 159), 0);
	assert_int_equal(pt_lookup(TABLE, IP1, 149), 1);
	assert_int_equal(pt_lookup(TABLE, IP1, 150), -1);
	assert_int_equal(pt_lookup(TABLE, IP1, 159), -1);
	assert_int_equal(pt_lookup(TABLE, IP1, 160), 1);
	assert_int_equal(pt_count(TABLE, 1), 90);
	/* Released ports can go to someone else. */
	assert_int_equal(pt_claim(TABLE, 2, IP1, 150, 159, &allow_all), 0);
}

static void test_release_leaves_other_tenants_ports(void **state)
{
	assert_int_equal(pt_claim(TABLE, 1, IP1, 100, 104, &allow_all), 0);
	assert_int_equal(pt_claim(TABLE, 2, IP1, 105, 109, &allow_all), 0);
	assert_int_equal(pt_release(TABLE, 1, IP1, 100, 109), 0);
	assert_int_equal(pt_count(TABLE, 1), 0);
	assert_int_equal(pt_lookup(TABLE, IP1, 105), 2);
	assert_int_equal(pt_count(TABLE, 2), 5);
}

static void test_release_of_nothing_owned_is_enoent(void **state)
{
	assert_int_equal(pt_claim(TABLE, 1, IP1, 100, 100, &allow_all), 0);
	assert_int_equal(pt_release(TABLE, 2, IP1, 100, 100), -ENOENT);
	assert_int_equal(pt_release(TABLE, 1, IP1, 101, 200), -ENOENT);
	assert_int_equal(pt_release(TABLE, 1, IP2, 100, 100), -ENOENT);
	assert_int_equal(pt_lookup(TABLE, IP1, 100), 1);
}

static void test_release_refuses_invalid_arguments(void **state)
{
	assert_int_equal(pt_release(TABLE, 1, IP1, 10, 9), -EINVAL);
	assert_int_equal(pt_release(TABLE, 1, IP1, 0, 9), -EINVAL);
	assert_int_equal(pt_release(TABLE, PT_MAX_TENANTS, IP1, 1, 9), -EINVAL);
	assert_int_equal(pt_release(TABLE, 1, FOREIGN, 1, 9), -EADDRNOTAVAIL);
}

static void test_release_all_frees_every_address(void **state)
{
	assert_int_equal(pt_claim(TABLE, 5, IP1, 1, 10, &allow_all), 0);
	assert_int_equal(pt_claim(TABLE, 5, IP2, 65530, 65535, &allow_all), 0);
	assert_int_equal(pt_claim(TABLE, 5, IP3, 3000, 3000, &allow_all), 0);
	assert_int_equal(pt_claim(TABLE, 6, IP1, 11, 20, &allow_all), 0);
	assert_int_equal(pt_release_all(TABLE, 5), 17);
	assert_int_equal(pt_count(TABLE, 5), 0);
	assert_int_equal(pt_lookup(TABLE, IP1, 1), -1);
	assert_int_equal(pt_lookup(TABLE, IP2, 65535), -1);
	assert_int_equal(pt_lookup(TABLE, IP3, 3000), -1);
	assert_int_equal(pt_lookup(TABLE, IP1, 11), 6);
	assert_int_equal(pt_count(TABLE, 6), 10);
}

static void test_release_all_of_tenant_without_ports_is_zero(void **state)
{
	assert_int_equal(pt_release_all(TABLE, 7), 0);
	assert_int_equal(pt_release_all(TABLE, PT_MAX_TENANTS), 0);
}

struct seen {
	unsigned int n;
	uint16_t tenant[8], lo[8], hi[8];
	uint32_t ip[8];
};

static void collect(uint16_t tenant, uint32_t ip, uint16_t lo, uint16_t hi, void *ctx)
{
	struct seen *s = ctx;

	assert_true(s->n < 8);
	s->tenant[s->n] = tenant;
	s->ip[s->n] = ip;
	s->lo[s->n] = lo;
	s->hi[s->n] = hi;
	s->n++;
}

static void test_foreach_claim_reports_maximal_runs(void **state)
{
	struct seen s = { 0 };

	assert_int_equal(pt_claim(TABLE, 1, IP1, 100, 109, &allow_all), 0);
	assert_int_equal(pt_claim(TABLE, 1, IP1, 110, 119, &allow_all), 0); /* adjacent */
	assert_int_equal(pt_claim(TABLE, 2, IP1, 120, 120, &allow_all), 0);
	assert_int_equal(pt_claim(TABLE, 1, IP1, 65535, 65535, &allow_all), 0);
	assert_int_equal(pt_claim(TABLE, 3, IP3, 1, 1, &allow_all), 0);
	assert_int_equal(pt_foreach_claim(TABLE, collect, &s), 4);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.tenant[0], 1);
	assert_int_equal(s.ip[0], IP1);
	assert_int_equal(s.lo[0], 100);
	assert_int_equal(s.hi[0], 119);
	assert_int_equal(s.tenant[1], 2);
	assert_int_equal(s.lo[1], 120);
	assert_int_equal(s.hi[1], 120);
	assert_int_equal(s.lo[2], 65535);
	assert_int_equal(s.hi[2], 65535);
	assert_int_equal(s.tenant[3], 3);
	assert_int_equal(s.ip[3], IP3);
	assert_int_equal(s.lo[3], 1);
	assert_int_equal(pt_foreach_claim(TABLE, NULL, NULL), -EINVAL);
}

static void test_foreach_claim_on_empty_table_calls_nothing(void **state)
{
	struct seen s = { 0 };

	assert_int_equal(pt_foreach_claim(TABLE, collect, &s), 0);
	assert_int_equal(s.n, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_refuses_bad_address_lists),
		T(test_new_table_is_empty),
		T(test_ip_index_of_local_and_foreign),
		T(test_claim_single_port_then_lookup),
		T(test_claim_range_covers_both_ends),
		T(test_claim_port_65535_and_port_1),
		T(test_claim_whole_port_space),
		T(test_claim_refuses_invalid_arguments),
		T(test_claim_on_foreign_address_is_addrnotavail),
		T(test_claim_outside_allowed_addresses_is_eacces),
		T(test_claim_inside_overlapping_allowed_ranges),
		T(test_claim_crossing_allowed_edge_is_eacces),
		T(test_claim_with_empty_allowance_is_eacces),
		T(test_allowance_up_to_65535_is_honoured),
		T(test_claim_conflict_between_tenants),
		T(test_claim_partial_conflict_changes_nothing),
		T(test_reclaim_of_own_ports_is_idempotent),
		T(test_tenant_0_and_highest_id_are_distinct),
		T(test_owns_is_false_for_foreign_address_and_bad_tenant),
		T(test_release_own_ports),
		T(test_release_leaves_other_tenants_ports),
		T(test_release_of_nothing_owned_is_enoent),
		T(test_release_refuses_invalid_arguments),
		T(test_release_all_frees_every_address),
		T(test_release_all_of_tenant_without_ports_is_zero),
		T(test_foreach_claim_reports_maximal_runs),
		T(test_foreach_claim_on_empty_table_calls_nothing),
	};

	return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
