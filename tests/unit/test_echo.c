/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for drivers/echo, the table of ICMP echo requests nicd has in
 * flight for PING: a slot's life (ARP -> SENT -> free), the deadline of
 * each state, what a reply must carry to match (identifier, sequence,
 * source), sequence numbers never shared in flight (wrap included), a full
 * table, per-hop and per-owner walks. Time is a plain number of ns.
 */
#include "testutil.h"

#include <errno.h>

#include "echo.h"

#define IDENT 0x4d4eu
#define IP(n) (0x0a4d0100u + (n)) /* 10.77.1.n */
#define MS 1000000ull

static struct echo_table tab;

static int setup(void **state)
{
	(void)state;
	echo_init(&tab, IDENT, 100);
	return 0;
}

static struct mn_port_ping req(uint32_t ip, uint32_t timeout_ms, uint32_t seq)
{
	return (struct mn_port_ping){ .ip = ip, .size = 56, .timeout_ms = timeout_ms, .seq = seq };
}

/* Add a ping to @ip (owner 1, tag = @ip) and send it at @now. */
static int add_sent(uint32_t ip, uint64_t now, uint16_t *seq)
{
	struct mn_port_ping r = req(ip, 50, 7);
	int i = echo_add(&tab, 1, ip, &r, ip, now + 1000 * MS);

	assert_true(i >= 0);
	*seq = echo_sent(&tab, i, now);
	return i;
}

static void test_add_keeps_request_owner_tag_and_arp_deadline(void **state)
{
	struct mn_port_ping r = req(IP(2), 250, 9);
	int i;

	(void)state;
	i = echo_add(&tab, 5, 77, &r, IP(254), 3000);
	assert_int_equal(i, 0);
	assert_int_equal(tab.slot[i].state, ECHO_ARP);
	assert_int_equal(tab.slot[i].owner, 5);
	assert_int_equal(tab.slot[i].tag, 77);
	assert_int_equal(tab.slot[i].next_hop, IP(254));
	assert_int_equal(tab.slot[i].req.seq, 9);
	assert_int_equal(tab.slot[i].deadline_ns, 3000);
	assert_int_equal(echo_count(&tab, ECHO_ARP), 1);
	assert_int_equal(echo_count(&tab, ECHO_FREE), ECHO_MAX - 1);
}

static void test_sent_numbers_from_first_seq_and_sets_reply_deadline(void **state)
{
	uint16_t s1, s2;
	int i;

	(void)state;
	i = add_sent(IP(2), 10 * MS, &s1);
	add_sent(IP(3), 11 * MS, &s2);
	assert_int_equal(s1, 100);
	assert_int_equal(s2, 101);
	assert_int_equal(tab.slot[i].state, ECHO_SENT);
	assert_int_equal(tab.slot[i].sent_ns, 10 * MS);
	assert_int_equal(tab.slot[i].deadline_ns, 60 * MS); /* 10 ms + timeout 50 ms */
}

static void test_reply_matches_only_with_ident_seq_and_source(void **state)
{
	uint16_t seq;
	int i;

	(void)state;
	i = add_sent(IP(2), 0, &seq);
	assert_int_equal(echo_match(&tab, IP(2), IDENT, seq), i);
	assert_int_equal(echo_match(&tab, IP(2), IDENT + 1, seq), -ENOENT);
	assert_int_equal(echo_match(&tab, IP(2), IDENT, (uint16_t)(seq + 1)), -ENOENT);
	assert_int_equal(echo_match(&tab, IP(3), IDENT, seq), -ENOENT);
}

static void test_waiting_for_arp_matches_no_reply(void **state)
{
	struct mn_port_ping r = req(IP(2), 50, 1);
	int i;

	(void)state;
	i = echo_add(&tab, 1, 0, &r, IP(2), 1000);
	assert_true(i >= 0);
	/* Its seq field is 0 until sent: a reply with seq 0 must not match. */
	assert_int_equal(echo_match(&tab, IP(2), IDENT, 0), -ENOENT);
	assert_int_equal(echo_match(&tab, IP(2), IDENT, tab.slot[i].seq), -ENOENT);
}

static void test_freed_slot_matches_no_late_reply(void **state)
{
	uint16_t seq;
	int i;

	(void)state;
	i = add_sent(IP(2), 0, &seq);
	echo_free(&tab, i);
	assert_int_equal(echo_match(&tab, IP(2), IDENT, seq), -ENOENT);
	assert_int_equal(echo_count(&tab, ECHO_FREE), ECHO_MAX);
	echo_free(&tab, -1);		/* ignored */
	echo_free(&tab, (int)ECHO_MAX); /* ignored */
}

static void test_full_table_is_busy_until_a_slot_frees(void **state)
{
	struct mn_port_ping r = req(IP(2), 50, 1);
	int last = -1;

	(void)state;
	for (unsigned int k = 0; k < ECHO_MAX; k++) {
		last = echo_add(&tab, (int)k, k, &r, IP(2), 1000);
		assert_int_equal(last, (int)k);
	}
	assert_int_equal(echo_add(&tab, 99, 0, &r, IP(2), 1000), -EBUSY);
	echo_free(&tab, 3);
	assert_int_equal(echo_add(&tab, 99, 0, &r, IP(2), 1000), 3);
	assert_int_equal(echo_add(&tab, 99, 0, &r, IP(2), 1000), -EBUSY);
}

/* Sequence numbers wrap at 2^16 and skip any still in flight. */
static void test_seq_wraps_and_never_repeats_in_flight(void **state)
{
	uint16_t held, s;

	(void)state;
	echo_init(&tab, IDENT, 0xfffe);
	add_sent(IP(2), 0, &held);
	assert_int_equal(held, 0xfffe);
	add_sent(IP(3), 0, &s);
	assert_int_equal(s, 0xffff);
	add_sent(IP(4), 0, &s);
	assert_int_equal(s, 0);
	/* Run the counter round with one more slot, freeing it each time,
	 * up to the numbers still held: 0xfffe, 0xffff and 0 are skipped. */
	for (;;) {
		int i = add_sent(IP(5), 0, &s);

		echo_free(&tab, i);
		if (s == 0xfffd)
			break;
	}
	add_sent(IP(5), 0, &s);
	assert_int_equal(s, 1);
	assert_int_equal(echo_match(&tab, IP(2), IDENT, held), 0); /* still the first */
}

static void test_every_slot_in_flight_has_its_own_seq(void **state)
{
	uint16_t seqs[ECHO_MAX];

	(void)state;
	for (unsigned int k = 0; k < ECHO_MAX; k++)
		add_sent(IP(2), 0, &seqs[k]);
	for (unsigned int a = 0; a < ECHO_MAX; a++) {
		assert_int_equal(echo_match(&tab, IP(2), IDENT, seqs[a]), (int)a);
		for (unsigned int b = a + 1; b < ECHO_MAX; b++)
			assert_int_not_equal(seqs[a], seqs[b]);
	}
}

static void test_next_for_hop_walks_arp_slots_of_that_hop_only(void **state)
{
	struct mn_port_ping r = req(IP(9), 50, 1);
	int found[ECHO_MAX], n = 0;

	(void)state;
	echo_add(&tab, 1, 0, &r, IP(254), 1000); /* 0: via the gateway */
	echo_add(&tab, 1, 0, &r, IP(9), 1000);	 /* 1: another hop */
	echo_add(&tab, 1, 0, &r, IP(254), 1000); /* 2 */
	echo_sent(&tab, echo_add(&tab, 1, 0, &r, IP(254), 1000), 0); /* 3: sent already */
	for (int i = echo_next_for_hop(&tab, 0, IP(254)); i >= 0;
	     i = echo_next_for_hop(&tab, i + 1, IP(254)))
		found[n++] = i;
	assert_int_equal(n, 2);
	assert_int_equal(found[0], 0);
	assert_int_equal(found[1], 2);
	assert_int_equal(echo_next_for_hop(&tab, 0, IP(77)), -1);
}

static void test_next_expired_uses_each_state_deadline(void **state)
{
	struct mn_port_ping r = req(IP(2), 50, 1);
	int arp, sent;

	(void)state;
	arp = echo_add(&tab, 1, 0, &r, IP(2), 20 * MS);
	sent = echo_add(&tab, 1, 0, &r, IP(2), 1000 * MS);
	echo_sent(&tab, sent, 5 * MS); /* reply due by 55 ms */
	assert_int_equal(echo_next_expired(&tab, 0, 20 * MS), -1); /* not past yet */
	assert_int_equal(echo_next_expired(&tab, 0, 20 * MS + 1), arp);
	assert_int_equal(echo_next_expired(&tab, arp + 1, 20 * MS + 1), -1);
	assert_int_equal(echo_next_expired(&tab, arp + 1, 55 * MS + 1), sent);
	echo_free(&tab, arp);
	echo_free(&tab, sent);
	assert_int_equal(echo_next_expired(&tab, 0, UINT64_MAX), -1);
}

static void test_drop_owner_frees_only_its_slots(void **state)
{
	struct mn_port_ping r = req(IP(2), 50, 1);

	(void)state;
	echo_add(&tab, 4, 0, &r, IP(2), 1000);
	echo_sent(&tab, echo_add(&tab, 4, 0, &r, IP(2), 1000), 0);
	echo_add(&tab, 5, 0, &r, IP(2), 1000);
	assert_int_equal(echo_drop_owner(&tab, 4), 2);
	assert_int_equal(echo_count(&tab, ECHO_FREE), ECHO_MAX - 1);
	assert_int_equal(tab.slot[2].owner, 5);
	assert_int_equal(echo_drop_owner(&tab, 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_add_keeps_request_owner_tag_and_arp_deadline, setup),
		cmocka_unit_test_setup(test_sent_numbers_from_first_seq_and_sets_reply_deadline, setup),
		cmocka_unit_test_setup(test_reply_matches_only_with_ident_seq_and_source, setup),
		cmocka_unit_test_setup(test_waiting_for_arp_matches_no_reply, setup),
		cmocka_unit_test_setup(test_freed_slot_matches_no_late_reply, setup),
		cmocka_unit_test_setup(test_full_table_is_busy_until_a_slot_frees, setup),
		cmocka_unit_test_setup(test_seq_wraps_and_never_repeats_in_flight, setup),
		cmocka_unit_test_setup(test_every_slot_in_flight_has_its_own_seq, setup),
		cmocka_unit_test_setup(test_next_for_hop_walks_arp_slots_of_that_hop_only, setup),
		cmocka_unit_test_setup(test_next_expired_uses_each_state_deadline, setup),
		cmocka_unit_test_setup(test_drop_owner_frees_only_its_slots, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
