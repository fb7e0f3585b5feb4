/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for drivers/pkt: checksums against values computed by hand
 * (RFC 1071's example, a textbook IPv4 header, a UDP datagram summed on
 * paper) and against a byte-by-byte reference; build -> parse round trips;
 * one named case per drop reason and length boundary (a table, each row
 * its own cmocka test); ARP and ICMP echo (answering requests, building
 * the requests PING sends, classifying replies); the TX check's refusals; and
 * 100k random and mutated frames through the parsers.
 *
 * Every frame handed to a parser sits in a heap block of exactly its
 * length, so AddressSanitizer reports any read past `len`.
 */
#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "pkt.h"

#define BUF_CAP 2048u

static const uint8_t mac_a[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a };
static const uint8_t mac_b[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b };
static const uint8_t mac_bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t mac_zero[6];
#define IP_A 0x0a000001u /* 10.0.0.1 */
#define IP_B 0x0a000002u /* 10.0.0.2 */
#define VERIFY_ALL (PKT_F_VERIFY_IP_CSUM | PKT_F_VERIFY_UDP_CSUM)

/* Byte offsets in a frame with a 20-byte IPv4 header. */
#define O_ETYPE 12
#define O_IP 14
#define O_IP_TOTLEN (O_IP + 2)
#define O_IP_FRAG (O_IP + 6)
#define O_IP_TTL (O_IP + 8)
#define O_IP_PROTO (O_IP + 9)
#define O_IP_CSUM (O_IP + 10)
#define O_L4 34
#define O_UDP_LEN (O_L4 + 4)
#define O_UDP_CSUM (O_L4 + 6)
#define O_ARP 14

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Reference: one big-endian word at a time, no tricks. */
static uint16_t ref_csum(const uint8_t *p, uint32_t len, uint32_t initial)
{
	uint64_t s = initial;

	for (uint32_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Deterministic xorshift64*, so a failure repeats. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/*
 * Parse @len bytes of @src from a heap copy of exactly @len bytes.
 */
static int parse_exact(const uint8_t *src, uint32_t len, uint32_t flags, struct pkt_info *pi,
		       enum mn_drop *why)
{
	uint8_t *f = malloc(len ? len : 1);
	int ret;

	assert_non_null(f);
	memcpy(f, src, len);
	ret = pkt_parse(f, len, flags, pi, why);
	free(f);
	return ret;
}

static int tx_check_exact(const uint8_t *src, uint32_t len, uint16_t mtu, struct pkt_info *pi,
			  enum mn_drop *why)
{
	uint8_t *f = malloc(len ? len : 1);
	int ret;

	assert_non_null(f);
	memcpy(f, src, len);
	ret = pkt_tx_check(f, len, mtu, mac_a, pi, why);
	free(f);
	return ret;
}

static void fill_pattern(uint8_t *p, uint32_t n, uint32_t seed)
{
	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7u);
}

/* A valid UDP frame A -> B, 5000 -> 6000, @plen bytes of pattern. */
static uint32_t udp_frame(uint8_t *buf, uint32_t plen)
{
	uint8_t payload[BUF_CAP];
	uint32_t len;

	fill_pattern(payload, plen, plen);
	len = pkt_build_udp(buf, BUF_CAP, mac_a, mac_b, IP_A, IP_B, 5000, 6000,
			    plen ? payload : NULL, plen);
	assert_int_equal(len, 42 + plen);
	return len;
}

/* A valid ICMP echo request B -> A with @dlen bytes of data. */
static uint32_t icmp_echo_frame(uint8_t *buf, uint32_t dlen)
{
	uint32_t len = udp_frame(buf, dlen); /* same layout up to the IP header */
	uint8_t *icmp = buf + O_L4;

	memcpy(buf, mac_a, 6);
	memcpy(buf + 6, mac_b, 6);
	buf[O_IP_PROTO] = 1;
	buf[O_IP + 12 + 3] = 2; /* source 10.0.0.2 */
	buf[O_IP + 16 + 3] = 1; /* destination 10.0.0.1 */
	wr16(buf + O_IP_CSUM, pkt_ipv4_hdr_csum(buf + O_IP, 20));
	icmp[0] = 8; /* echo request */
	icmp[1] = 0;
	wr16(icmp + 2, 0);
	wr16(icmp + 4, 0x1234); /* identifier */
	wr16(icmp + 6, 0x0007); /* sequence */
	wr16(icmp + 2, (uint16_t)~ref_csum(icmp, 8 + dlen, 0));
	return len;
}

static uint32_t arp_frame(uint8_t *buf)
{
	uint32_t len = pkt_build_arp(buf, BUF_CAP, PKT_ARP_OP_REQUEST, mac_b, IP_B, NULL, IP_A);

	assert_int_equal(len, 60);
	return len;
}

/* Recompute the IPv4 header checksum after a mutation (if the IHL is sane). */
static void fix_ip_csum(uint8_t *f, uint32_t len)
{
	uint32_t ihl = (f[O_IP] & 0xfu) * 4u;

	if (ihl < 20 || O_IP + ihl > len)
		ihl = 20;
	wr16(f + O_IP_CSUM, pkt_ipv4_hdr_csum(f + O_IP, ihl));
}

/* ---- checksums ---------------------------------------------------------- */

static void test_csum_rfc1071_example(void **state)
{
	static const uint8_t rfc[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };

	(void)state;
	/* RFC 1071 §3: the folded sum is ddf2, the checksum its complement. */
	assert_int_equal(pkt_csum(rfc, sizeof(rfc), 0), 0xddf2);
	assert_int_equal((uint16_t)~pkt_csum(rfc, sizeof(rfc), 0), 0x220d);
}

static void test_csum_odd_length_pads_with_zero(void **state)
{
	static const uint8_t b[3] = { 0x12, 0x34, 0x56 };

	(void)state;
	assert_int_equal(pkt_csum(b, 3, 0), 0x1234 + 0x5600);
	assert_int_equal(pkt_csum(b, 0, 0), 0);
	assert_int_equal(pkt_csum(b, 1, 0), 0x1200);
}

static void test_csum_adds_initial_and_folds(void **state)
{
	static const uint8_t b[2] = { 0xff, 0xff };

	(void)state;
	assert_int_equal(pkt_csum(b, 2, 1), 0x0001); /* ffff + 1 = 1 0000 -> 0001 */
	assert_int_equal(pkt_csum(b, 0, 0x12345), 0x2346);
}

static void test_csum_matches_reference_at_every_length_and_alignment(void **state)
{
	uint8_t buf[1600];

	(void)state;
	for (uint32_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rnd();
	for (uint32_t off = 0; off < 8; off++)
		for (uint32_t len = 0; len + off <= sizeof(buf); len += (len < 80 ? 1 : 37))
			assert_int_equal(pkt_csum(buf + off, len, len * 977u),
					 ref_csum(buf + off, len, len * 977u));
}

static void test_ipv4_hdr_csum_textbook_header(void **state)
{
	/* 192.168.0.1 -> 192.168.0.199, total length 0x73, DF, TTL 64, UDP:
	 * the header checksum is b861. */
	uint8_t h[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			  0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };

	(void)state;
	assert_int_equal(pkt_ipv4_hdr_csum(h, 20), 0xb861);
	h[10] = 0x12; /* whatever the field holds, it counts as zero */
	h[11] = 0x34;
	assert_int_equal(pkt_ipv4_hdr_csum(h, 20), 0xb861);
	h[10] = 0xb8;
	h[11] = 0x61;
	assert_int_equal(pkt_csum(h, 20, 0), 0xffff);
}

static void test_udp_csum_hand_computed_datagram(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len;

	(void)state;
	/* 10.0.0.1:12345 -> 10.0.0.2:80 "abc": pseudo-header 141f + UDP f4f6
	 * = 1 0915 -> 0916, checksum f6e9; IPv4 header checksum 26cc. */
	len = pkt_build_udp(f, sizeof(f), mac_a, mac_b, IP_A, IP_B, 12345, 80, "abc", 3);
	assert_int_equal(len, 45);
	assert_int_equal(rd16(f + O_UDP_CSUM), 0xf6e9);
	assert_int_equal(rd16(f + O_IP_CSUM), 0x26cc);
	assert_int_equal(pkt_udp_csum(f + O_IP, f + O_L4, 11), 0xf6e9);
}

static void test_udp_csum_computed_zero_is_sent_as_ffff(void **state)
{
	uint8_t f[BUF_CAP];
	struct pkt_info pi;
	enum mn_drop why;
	uint32_t len;
	uint16_t c;

	(void)state;
	len = pkt_build_udp(f, sizeof(f), mac_a, mac_b, IP_A, IP_B, 1, 2, "\0\0", 2);
	c = rd16(f + O_UDP_CSUM);
	/* Make the data cancel the rest: the data word that makes the sum
	 * ffff (checksum 0) is the old checksum itself. */
	wr16(f + O_L4 + 8, c);
	assert_int_equal(pkt_udp_csum(f + O_IP, f + O_L4, len - O_L4), 0xffff);
	/* ... and a receiver verifying it accepts 0xffff as that zero. */
	wr16(f + O_UDP_CSUM, 0xffff);
	assert_int_equal(parse_exact(f, len, VERIFY_ALL, &pi, &why), PKT_UDP);
}

static void test_udp_csum_refuses_short_length(void **state)
{
	uint8_t f[BUF_CAP];

	(void)state;
	udp_frame(f, 0);
	assert_int_equal(pkt_udp_csum(f + O_IP, f + O_L4, 7), 0);
}

static void test_fill_csums_rewrites_both(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = udp_frame(f, 101);
	uint16_t ipc = rd16(f + O_IP_CSUM), udpc = rd16(f + O_UDP_CSUM);
	struct pkt_info pi;
	enum mn_drop why;

	(void)state;
	assert_int_equal(parse_exact(f, len, 0, &pi, &why), PKT_UDP);
	wr16(f + O_IP_CSUM, 0);
	wr16(f + O_UDP_CSUM, 0xdead);
	pkt_fill_csums(f, &pi);
	assert_int_equal(rd16(f + O_IP_CSUM), ipc);
	assert_int_equal(rd16(f + O_UDP_CSUM), udpc);
}

/* ---- build and parse ---------------------------------------------------- */

static void test_build_udp_round_trips_every_payload_0_to_1472(void **state)
{
	uint8_t f[BUF_CAP], payload[BUF_CAP];
	struct pkt_info pi;
	enum mn_drop why;

	(void)state;
	for (uint32_t plen = 0; plen <= PKT_UDP_MAX_PAYLOAD_1500; plen++) {
		uint32_t len = udp_frame(f, plen);

		fill_pattern(payload, plen, plen);
		assert_int_equal(parse_exact(f, len, VERIFY_ALL, &pi, &why), PKT_UDP);
		assert_memory_equal(pi.dst_mac, mac_b, 6);
		assert_memory_equal(pi.src_mac, mac_a, 6);
		assert_int_equal(pi.ethertype, 0x0800);
		assert_int_equal(pi.l3_off, 14);
		assert_int_equal(pi.l4_off, 34);
		assert_int_equal(pi.src_ip, IP_A);
		assert_int_equal(pi.dst_ip, IP_B);
		assert_int_equal(pi.ip_proto, 17);
		assert_int_equal(pi.ttl, 64);
		assert_int_equal(pi.ip_total_len, 28 + plen);
		assert_int_equal(pi.src_port, 5000);
		assert_int_equal(pi.dst_port, 6000);
		assert_int_equal(pi.payload_off, 42);
		assert_int_equal(pi.payload_len, plen);
		assert_memory_equal(f + pi.payload_off, payload, plen);
		assert_int_equal(rd16(f + O_IP_FRAG), 0x4000); /* DF, offset 0 */
		assert_int_equal(tx_check_exact(f, len, 1500, &pi, &why), 0);
	}
}

static void test_build_udp_refuses_small_cap_and_huge_payload(void **state)
{
	uint8_t f[64];

	(void)state;
	assert_int_equal(pkt_build_udp(f, 42, mac_a, mac_b, IP_A, IP_B, 1, 2, NULL, 0), 42);
	assert_int_equal(pkt_build_udp(f, 41, mac_a, mac_b, IP_A, IP_B, 1, 2, NULL, 0), 0);
	assert_int_equal(pkt_build_udp(f, 50, mac_a, mac_b, IP_A, IP_B, 1, 2, f, 9), 0);
	assert_int_equal(pkt_build_udp(f, UINT32_MAX, mac_a, mac_b, IP_A, IP_B, 1, 2, f,
				       65536 - 28),
			 0);
}

static void test_parse_accepts_trailing_padding(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = udp_frame(f, 5); /* 47 bytes: pad to 60 with junk */
	struct pkt_info pi;
	enum mn_drop why;

	(void)state;
	memset(f + len, 0xa5, 60 - len);
	assert_int_equal(parse_exact(f, 60, VERIFY_ALL, &pi, &why), PKT_UDP);
	assert_int_equal(pi.ip_total_len, 33);
	assert_int_equal(pi.payload_len, 5);
}

static void test_parse_accepts_ip_options(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = udp_frame(f, 21);
	struct pkt_info pi;
	enum mn_drop why;

	(void)state;
	/* Insert 4 bytes of NOP options; the UDP checksum does not change. */
	memmove(f + O_L4 + 4, f + O_L4, len - O_L4);
	memset(f + O_L4, 0x01, 4);
	len += 4;
	f[O_IP] = 0x46;
	wr16(f + O_IP_TOTLEN, (uint16_t)(rd16(f + O_IP_TOTLEN) + 4));
	fix_ip_csum(f, len);
	assert_int_equal(parse_exact(f, len, VERIFY_ALL, &pi, &why), PKT_UDP);
	assert_int_equal(pi.l4_off, 38);
	assert_int_equal(pi.payload_off, 46);
	assert_int_equal(pi.payload_len, 21);
	assert_int_equal(pi.dst_port, 6000);
}

static void test_parse_on_drop_sets_reason_and_returns_zero(void **state)
{
	uint8_t f[BUF_CAP];
	struct pkt_info pi;
	enum mn_drop why = MN_DROP_MAX;

	(void)state;
	udp_frame(f, 0);
	assert_int_equal(parse_exact(f, 13, 0, &pi, &why), 0);
	assert_int_equal(why, MN_DROP_RX_RUNT);
}

/* ---- ARP ---------------------------------------------------------------- */

static void test_arp_request_is_broadcast_with_zero_target_mac(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = arp_frame(f);
	struct pkt_arp a;
	struct pkt_info pi;
	enum mn_drop why;

	(void)state;
	assert_memory_equal(f, mac_bcast, 6);
	assert_memory_equal(f + 6, mac_b, 6);
	assert_int_equal(rd16(f + O_ETYPE), 0x0806);
	for (uint32_t i = 42; i < 60; i++)
		assert_int_equal(f[i], 0);
	assert_int_equal(pkt_arp_parse(f, len, &a), 0);
	assert_int_equal(a.op, PKT_ARP_OP_REQUEST);
	assert_memory_equal(a.sha, mac_b, 6);
	assert_int_equal(a.spa, IP_B);
	assert_memory_equal(a.tha, mac_zero, 6);
	assert_int_equal(a.tpa, IP_A);
	assert_int_equal(parse_exact(f, len, VERIFY_ALL, &pi, &why), PKT_ARP);
	assert_int_equal(pi.src_ip, IP_B);
	assert_int_equal(pi.dst_ip, IP_A);
}

static void test_arp_unicast_request_goes_to_given_mac(void **state)
{
	uint8_t f[BUF_CAP];
	struct pkt_arp a;

	(void)state;
	assert_int_equal(pkt_build_arp(f, 60, PKT_ARP_OP_REQUEST, mac_a, IP_A, mac_b, IP_B), 60);
	assert_memory_equal(f, mac_b, 6);
	assert_int_equal(pkt_arp_parse(f, 60, &a), 0);
	assert_memory_equal(a.tha, mac_zero, 6);
}

static void test_arp_reply_names_target(void **state)
{
	uint8_t f[BUF_CAP];
	struct pkt_arp a;

	(void)state;
	assert_int_equal(pkt_build_arp(f, BUF_CAP, PKT_ARP_OP_REPLY, mac_a, IP_A, mac_b, IP_B), 60);
	assert_memory_equal(f, mac_b, 6);
	assert_int_equal(pkt_arp_parse(f, 60, &a), 0);
	assert_int_equal(a.op, PKT_ARP_OP_REPLY);
	assert_memory_equal(a.sha, mac_a, 6);
	assert_int_equal(a.spa, IP_A);
	assert_memory_equal(a.tha, mac_b, 6);
	assert_int_equal(a.tpa, IP_B);
}

static void test_arp_build_refusals(void **state)
{
	uint8_t f[BUF_CAP];

	(void)state;
	assert_int_equal(pkt_build_arp(f, 59, PKT_ARP_OP_REQUEST, mac_a, IP_A, NULL, IP_B), 0);
	assert_int_equal(pkt_build_arp(f, BUF_CAP, 3, mac_a, IP_A, NULL, IP_B), 0);
	assert_int_equal(pkt_build_arp(f, BUF_CAP, PKT_ARP_OP_REPLY, mac_a, IP_A, NULL, IP_B), 0);
}

static void test_arp_parse_accepts_unpadded_42_bytes(void **state)
{
	uint8_t f[BUF_CAP];
	struct pkt_arp a;
	uint8_t *exact;

	(void)state;
	arp_frame(f);
	exact = malloc(42);
	assert_non_null(exact);
	memcpy(exact, f, 42);
	assert_int_equal(pkt_arp_parse(exact, 42, &a), 0);
	assert_int_equal(pkt_arp_parse(exact, 41, &a), -EBADMSG);
	free(exact);
}

static void test_arp_parse_refuses_ipv4_frame(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = udp_frame(f, 40);
	struct pkt_arp a;

	(void)state;
	assert_int_equal(pkt_arp_parse(f, len, &a), -EBADMSG);
	assert_int_equal(pkt_arp_parse(f, 10, &a), -EBADMSG);
}

/* ---- ICMP echo ---------------------------------------------------------- */

static void check_echo_reply(uint32_t dlen)
{
	uint8_t f[BUF_CAP], req[BUF_CAP];
	uint32_t len = icmp_echo_frame(f, dlen), rlen;
	struct pkt_info pi, pi2;
	enum mn_drop why;
	uint8_t *icmp = f + O_L4;
	uint16_t sent_csum;

	memcpy(req, f, len);
	assert_int_equal(parse_exact(f, len, VERIFY_ALL, &pi, &why), PKT_ICMP_ECHO);
	assert_int_equal(pi.l4_off, 34);
	assert_int_equal(pi.payload_len, dlen);
	rlen = pkt_icmp_echo_reply(f, len, &pi, mac_a);
	assert_int_equal(rlen, len);

	assert_memory_equal(f, mac_b, 6);     /* back to the requester */
	assert_memory_equal(f + 6, mac_a, 6); /* from us */
	assert_int_equal(rd32(f + O_IP + 12), IP_A);
	assert_int_equal(rd32(f + O_IP + 16), IP_B);
	assert_int_equal(f[O_IP_TTL], 64);
	assert_int_equal(pkt_csum(f + O_IP, 20, 0), 0xffff);
	assert_int_equal(icmp[0], 0);
	assert_int_equal(icmp[1], 0);
	assert_memory_equal(icmp + 4, req + O_L4 + 4, 4 + dlen); /* id, seq, data */
	/* Incremental update agrees with a full recomputation. */
	sent_csum = rd16(icmp + 2);
	wr16(icmp + 2, 0);
	assert_int_equal(sent_csum, (uint16_t)~ref_csum(icmp, 8 + dlen, 0));
	wr16(icmp + 2, sent_csum);
	/* A reply is classified as one (for PING), never answered. */
	assert_int_equal(parse_exact(f, rlen, VERIFY_ALL, &pi2, &why), PKT_ICMP_ECHO_REPLY);
	assert_int_equal(pi2.icmp_id, 0x1234);
	assert_int_equal(pi2.icmp_seq, 0x0007);
	assert_int_equal(pkt_icmp_echo_reply(f, rlen, &pi2, mac_b), 0);
}

static void test_echo_reply_from_request(void **state)
{
	(void)state;
	check_echo_reply(56);
}

static void test_echo_reply_odd_and_empty_data(void **state)
{
	(void)state;
	check_echo_reply(0);
	check_echo_reply(1);
	check_echo_reply(1471);
}

static void test_echo_reply_cuts_padding(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = icmp_echo_frame(f, 4); /* 46 bytes */
	struct pkt_info pi;
	enum mn_drop why;

	(void)state;
	memset(f + len, 0x77, 60 - len);
	assert_int_equal(parse_exact(f, 60, VERIFY_ALL, &pi, &why), PKT_ICMP_ECHO);
	assert_int_equal(pkt_icmp_echo_reply(f, 60, &pi, mac_a), len);
}

static void test_echo_reply_refuses_what_is_not_a_request(void **state)
{
	uint8_t f[BUF_CAP], copy[BUF_CAP];
	uint32_t len = icmp_echo_frame(f, 8);
	struct pkt_info pi, bad;
	enum mn_drop why;

	(void)state;
	assert_int_equal(parse_exact(f, len, VERIFY_ALL, &pi, &why), PKT_ICMP_ECHO);
	memcpy(copy, f, len);
	bad = pi;
	bad.ip_proto = 17;
	assert_int_equal(pkt_icmp_echo_reply(f, len, &bad, mac_a), 0);
	bad = pi;
	bad.ip_total_len = (uint16_t)(len - 13); /* beyond the frame */
	assert_int_equal(pkt_icmp_echo_reply(f, len, &bad, mac_a), 0);
	assert_int_equal(pkt_icmp_echo_reply(f, len - 1, &pi, mac_a), 0);
	assert_memory_equal(f, copy, len); /* untouched */
	assert_int_equal(pkt_icmp_echo_reply(f, len, &pi, mac_a), len);
	assert_int_equal(pkt_icmp_echo_reply(f, len, &pi, mac_a), 0); /* now a reply */
}

/* ---- ICMP echo requests nicd sends (PING) --------------------------------- */

/* Build a request of @dlen bytes and check every header field by hand. */
static void check_built_echo(uint32_t dlen)
{
	uint8_t f[BUF_CAP];
	uint32_t len = pkt_build_icmp_echo(f, BUF_CAP, mac_a, mac_b, IP_A, IP_B, 0xbeef,
					   (uint16_t)(dlen + 1), dlen);
	const uint8_t *ip = f + O_IP, *icmp = f + O_L4;
	struct pkt_info pi;
	enum mn_drop why = MN_DROP_MAX;

	assert_int_equal(len, 42 + dlen);
	assert_memory_equal(f, mac_b, 6);
	assert_memory_equal(f + 6, mac_a, 6);
	assert_int_equal(rd16(f + O_ETYPE), 0x0800);
	assert_int_equal(ip[0], 0x45);
	assert_int_equal(rd16(ip + 2), 28 + dlen);
	assert_int_equal(rd16(ip + 6), 0x4000); /* DF, not a fragment */
	assert_int_equal(ip[8], 64);
	assert_int_equal(ip[9], 1);
	assert_int_equal(rd32(ip + 12), IP_A);
	assert_int_equal(rd32(ip + 16), IP_B);
	assert_int_equal(ref_csum(ip, 20, 0), 0xffff);
	assert_int_equal(icmp[0], 8);
	assert_int_equal(icmp[1], 0);
	assert_int_equal(rd16(icmp + 4), 0xbeef);
	assert_int_equal(rd16(icmp + 6), dlen + 1);
	assert_int_equal(ref_csum(icmp, 8 + dlen, 0), 0xffff);
	for (uint32_t i = 0; i < dlen; i++)
		assert_int_equal(icmp[8 + i], (uint8_t)i);

	/* What the peer's parser (ours, here) makes of it. */
	assert_int_equal(parse_exact(f, len, VERIFY_ALL, &pi, &why), PKT_ICMP_ECHO);
	assert_int_equal(pi.src_ip, IP_A);
	assert_int_equal(pi.dst_ip, IP_B);
	assert_int_equal(pi.icmp_id, 0xbeef);
	assert_int_equal(pi.icmp_seq, dlen + 1);
	assert_int_equal(pi.payload_len, dlen);
}

static void test_build_icmp_echo_headers_and_data_at_sizes(void **state)
{
	static const uint32_t sizes[] = { 0, 1, 2, 3, 18, 56, 57, 1000, 1471, 1472 };

	(void)state;
	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_built_echo(sizes[i]);
}

/* Summed on paper: 0x0800 + 0x1234 + 0x0001 = 0x1a35, stored ~ = 0xe5ca;
 * IPv4 header of 10.0.0.1 -> 10.0.0.2, length 28, DF, TTL 64, ICMP:
 * 0x4500 + 0x001c + 0x4000 + 0x4001 + 0x0a00 + 0x0001 + 0x0a00 + 0x0002
 * = 0xd920, stored ~ = 0x26df. */
static void test_build_icmp_echo_checksums_by_hand(void **state)
{
	uint8_t f[64];

	(void)state;
	assert_int_equal(pkt_build_icmp_echo(f, sizeof(f), mac_a, mac_b, IP_A, IP_B, 0x1234, 1, 0),
			 42);
	assert_int_equal(rd16(f + O_L4 + 2), 0xe5ca);
	assert_int_equal(rd16(f + O_IP_CSUM), 0x26df);
}

/* The reply a peer makes of our request is a PKT_ICMP_ECHO_REPLY from it to
 * us, with our identifier and sequence. */
static void test_build_icmp_echo_reply_round_trip(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = pkt_build_icmp_echo(f, BUF_CAP, mac_a, mac_b, IP_A, IP_B, 0x4d4e, 0xfffe, 56);
	struct pkt_info pi;
	enum mn_drop why = MN_DROP_MAX;

	(void)state;
	assert_int_equal(parse_exact(f, len, VERIFY_ALL, &pi, &why), PKT_ICMP_ECHO);
	assert_int_equal(pkt_icmp_echo_reply(f, len, &pi, mac_b), len);
	assert_int_equal(parse_exact(f, len, VERIFY_ALL, &pi, &why), PKT_ICMP_ECHO_REPLY);
	assert_int_equal(pi.src_ip, IP_B);
	assert_int_equal(pi.dst_ip, IP_A);
	assert_memory_equal(pi.dst_mac, mac_a, 6);
	assert_int_equal(pi.icmp_id, 0x4d4e);
	assert_int_equal(pi.icmp_seq, 0xfffe);
	assert_int_equal(pi.payload_len, 56);
	assert_int_equal(pi.ttl, 64);
}

static void test_build_icmp_echo_refuses_small_cap_and_huge_data(void **state)
{
	uint8_t f[64];

	(void)state;
	memset(f, 0x5a, sizeof(f));
	assert_int_equal(pkt_build_icmp_echo(f, 41, mac_a, mac_b, IP_A, IP_B, 1, 1, 0), 0);
	assert_int_equal(pkt_build_icmp_echo(f, 50, mac_a, mac_b, IP_A, IP_B, 1, 1, 9), 0);
	for (unsigned int i = 0; i < sizeof(f); i++)
		assert_int_equal(f[i], 0x5a); /* nothing written on refusal */
	assert_int_equal(pkt_build_icmp_echo(f, 50, mac_a, mac_b, IP_A, IP_B, 1, 1, 8), 50);
	assert_int_equal(pkt_build_icmp_echo(f, UINT32_MAX, mac_a, mac_b, IP_A, IP_B, 1, 1,
					     65536 - 28),
			 0);
}

/* ---- malformed frames, one row each -------------------------------------- */

enum base { B_UDP, B_ICMP, B_ARP };

struct bad_case {
	const char *name;
	enum base base;
	void (*mutate)(uint8_t *f, uint32_t *len);
	uint32_t flags;
	int want_class;	    /* 0: dropped for want_why */
	enum mn_drop want_why;
};

static void m_len0(uint8_t *f, uint32_t *len) { (void)f; *len = 0; }
static void m_len13(uint8_t *f, uint32_t *len) { (void)f; *len = 13; }
static void m_len14(uint8_t *f, uint32_t *len) { (void)f; *len = 14; }
static void m_len33(uint8_t *f, uint32_t *len) { (void)f; *len = 33; }
static void m_len41(uint8_t *f, uint32_t *len) { (void)f; *len = 41; }
static void m_vlan(uint8_t *f, uint32_t *len) { (void)len; wr16(f + O_ETYPE, 0x8100); }
static void m_ipv6(uint8_t *f, uint32_t *len) { (void)len; wr16(f + O_ETYPE, 0x86dd); }
static void m_8023(uint8_t *f, uint32_t *len) { (void)len; wr16(f + O_ETYPE, 0x05dc); }

static void m_ip_version6(uint8_t *f, uint32_t *len)
{
	f[O_IP] = 0x65;
	fix_ip_csum(f, *len);
}

static void m_ihl4(uint8_t *f, uint32_t *len)
{
	f[O_IP] = 0x44;
	fix_ip_csum(f, *len);
}

static void m_ihl15_short(uint8_t *f, uint32_t *len)
{
	f[O_IP] = 0x4f; /* 60-byte header, frame has 49 bytes after Ethernet */
	fix_ip_csum(f, *len);
}

static void m_totlen_beyond(uint8_t *f, uint32_t *len)
{
	wr16(f + O_IP_TOTLEN, (uint16_t)(*len - 14 + 1));
	fix_ip_csum(f, *len);
}

static void m_totlen_below_ihl(uint8_t *f, uint32_t *len)
{
	wr16(f + O_IP_TOTLEN, 19);
	fix_ip_csum(f, *len);
}

static void m_mf(uint8_t *f, uint32_t *len)
{
	wr16(f + O_IP_FRAG, 0x2000);
	fix_ip_csum(f, *len);
}

static void m_frag_off(uint8_t *f, uint32_t *len)
{
	wr16(f + O_IP_FRAG, 0x4001); /* DF + offset 8 bytes: still a fragment */
	fix_ip_csum(f, *len);
}

static void m_ttl0(uint8_t *f, uint32_t *len)
{
	f[O_IP_TTL] = 0;
	fix_ip_csum(f, *len);
}

static void m_ttl1(uint8_t *f, uint32_t *len)
{
	f[O_IP_TTL] = 1;
	fix_ip_csum(f, *len);
}

static void m_ip_csum(uint8_t *f, uint32_t *len)
{
	(void)len;
	f[O_IP_CSUM] ^= 0x01;
}

static void m_proto_tcp(uint8_t *f, uint32_t *len)
{
	f[O_IP_PROTO] = 6;
	fix_ip_csum(f, *len);
}

static void m_udp_len_plus1(uint8_t *f, uint32_t *len)
{
	(void)len;
	wr16(f + O_UDP_LEN, (uint16_t)(rd16(f + O_UDP_LEN) + 1));
}

static void m_udp_len_minus1(uint8_t *f, uint32_t *len)
{
	(void)len;
	wr16(f + O_UDP_LEN, (uint16_t)(rd16(f + O_UDP_LEN) - 1));
}

/* IP payload of 7 bytes: no room for a UDP (or ICMP) header. */
static void m_l4_7_bytes(uint8_t *f, uint32_t *len)
{
	wr16(f + O_IP_TOTLEN, 27);
	wr16(f + O_UDP_LEN, 7);
	*len = 41;
	fix_ip_csum(f, *len);
}

static void m_udp_csum_zero(uint8_t *f, uint32_t *len)
{
	(void)len;
	wr16(f + O_UDP_CSUM, 0);
}

static void m_udp_csum_bad(uint8_t *f, uint32_t *len)
{
	(void)len;
	f[O_UDP_CSUM + 1] ^= 0x40;
}

static void m_udp_payload_flip(uint8_t *f, uint32_t *len)
{
	f[*len - 1] ^= 0x01;
}

static void m_icmp_reply(uint8_t *f, uint32_t *len)
{
	/* A valid echo reply (checksum fixed): still not ours to answer. */
	f[O_L4] = 0;
	wr16(f + O_L4 + 2, 0);
	wr16(f + O_L4 + 2, (uint16_t)~ref_csum(f + O_L4, *len - O_L4, 0));
}

static void m_icmp_unreach(uint8_t *f, uint32_t *len)
{
	/* Destination unreachable, checksum fixed: nicd takes only echo. */
	f[O_L4] = 3;
	wr16(f + O_L4 + 2, 0);
	wr16(f + O_L4 + 2, (uint16_t)~ref_csum(f + O_L4, *len - O_L4, 0));
}

static void m_icmp_code1(uint8_t *f, uint32_t *len)
{
	f[O_L4 + 1] = 1;
	wr16(f + O_L4 + 2, 0);
	wr16(f + O_L4 + 2, (uint16_t)~ref_csum(f + O_L4, *len - O_L4, 0));
}

static void m_icmp_csum(uint8_t *f, uint32_t *len)
{
	(void)len;
	f[O_L4 + 3] ^= 0x10;
}

static void m_arp_htype(uint8_t *f, uint32_t *len) { (void)len; wr16(f + O_ARP, 6); }
static void m_arp_ptype(uint8_t *f, uint32_t *len) { (void)len; wr16(f + O_ARP + 2, 0x86dd); }
static void m_arp_hlen(uint8_t *f, uint32_t *len) { (void)len; f[O_ARP + 4] = 8; }
static void m_arp_plen(uint8_t *f, uint32_t *len) { (void)len; f[O_ARP + 5] = 16; }
static void m_arp_op0(uint8_t *f, uint32_t *len) { (void)len; wr16(f + O_ARP + 6, 0); }
static void m_arp_op3(uint8_t *f, uint32_t *len) { (void)len; wr16(f + O_ARP + 6, 3); }

static void m_none(uint8_t *f, uint32_t *len)
{
	(void)f;
	(void)len;
}

static const struct bad_case bad_cases[] = {
	{ "parse_len_0_is_runt", B_UDP, m_len0, VERIFY_ALL, 0, MN_DROP_RX_RUNT },
	{ "parse_len_13_is_runt", B_UDP, m_len13, VERIFY_ALL, 0, MN_DROP_RX_RUNT },
	{ "parse_len_14_ipv4_is_bad_ip", B_UDP, m_len14, VERIFY_ALL, 0, MN_DROP_RX_BAD_IP },
	{ "parse_len_14_arp_is_bad_arp", B_ARP, m_len14, VERIFY_ALL, 0, MN_DROP_RX_BAD_ARP },
	{ "parse_ip_header_of_19_bytes_is_bad_ip", B_UDP, m_len33, VERIFY_ALL, 0,
	  MN_DROP_RX_BAD_IP },
	{ "parse_vlan_tag_is_ethertype", B_UDP, m_vlan, VERIFY_ALL, 0, MN_DROP_RX_ETHERTYPE },
	{ "parse_ipv6_is_ethertype", B_UDP, m_ipv6, VERIFY_ALL, 0, MN_DROP_RX_ETHERTYPE },
	{ "parse_8023_length_is_ethertype", B_UDP, m_8023, VERIFY_ALL, 0, MN_DROP_RX_ETHERTYPE },
	{ "parse_ip_version_6_is_bad_ip", B_UDP, m_ip_version6, VERIFY_ALL, 0,
	  MN_DROP_RX_BAD_IP },
	{ "parse_ihl_4_is_bad_ip", B_UDP, m_ihl4, VERIFY_ALL, 0, MN_DROP_RX_BAD_IP },
	{ "parse_ihl_15_beyond_short_frame_is_bad_ip", B_UDP, m_ihl15_short, VERIFY_ALL, 0,
	  MN_DROP_RX_BAD_IP },
	{ "parse_total_len_beyond_frame_is_bad_ip", B_UDP, m_totlen_beyond, VERIFY_ALL, 0,
	  MN_DROP_RX_BAD_IP },
	{ "parse_total_len_below_ihl_is_bad_ip", B_UDP, m_totlen_below_ihl, VERIFY_ALL, 0,
	  MN_DROP_RX_BAD_IP },
	{ "parse_mf_set_is_fragment", B_UDP, m_mf, VERIFY_ALL, 0, MN_DROP_RX_FRAGMENT },
	{ "parse_frag_offset_is_fragment", B_UDP, m_frag_off, VERIFY_ALL, 0,
	  MN_DROP_RX_FRAGMENT },
	{ "parse_ttl_0_is_ttl", B_UDP, m_ttl0, VERIFY_ALL, 0, MN_DROP_RX_TTL },
	{ "parse_ttl_1_is_accepted", B_UDP, m_ttl1, VERIFY_ALL, PKT_UDP, 0 },
	{ "parse_bad_ip_csum_ignored_without_flag", B_UDP, m_ip_csum, PKT_F_VERIFY_UDP_CSUM,
	  PKT_UDP, 0 },
	{ "parse_bad_ip_csum_caught_with_flag", B_UDP, m_ip_csum, PKT_F_VERIFY_IP_CSUM, 0,
	  MN_DROP_RX_IP_CSUM },
	{ "parse_tcp_is_proto", B_UDP, m_proto_tcp, VERIFY_ALL, 0, MN_DROP_RX_PROTO },
	{ "parse_udp_len_above_ip_payload_is_bad_udp", B_UDP, m_udp_len_plus1, VERIFY_ALL, 0,
	  MN_DROP_RX_BAD_UDP },
	{ "parse_udp_len_below_ip_payload_is_bad_udp", B_UDP, m_udp_len_minus1, VERIFY_ALL, 0,
	  MN_DROP_RX_BAD_UDP },
	{ "parse_udp_shorter_than_header_is_bad_udp", B_UDP, m_l4_7_bytes, VERIFY_ALL, 0,
	  MN_DROP_RX_BAD_UDP },
	{ "parse_udp_csum_0_accepted_with_flag", B_UDP, m_udp_csum_zero, VERIFY_ALL, PKT_UDP,
	  0 },
	{ "parse_bad_udp_csum_caught_with_flag", B_UDP, m_udp_csum_bad, VERIFY_ALL, 0,
	  MN_DROP_RX_UDP_CSUM },
	{ "parse_corrupt_udp_payload_caught_with_flag", B_UDP, m_udp_payload_flip,
	  PKT_F_VERIFY_UDP_CSUM, 0, MN_DROP_RX_UDP_CSUM },
	{ "parse_bad_udp_csum_ignored_without_flag", B_UDP, m_udp_csum_bad,
	  PKT_F_VERIFY_IP_CSUM, PKT_UDP, 0 },
	{ "parse_icmp_echo_request_accepted", B_ICMP, m_none, 0, PKT_ICMP_ECHO, 0 },
	{ "parse_icmp_echo_reply_accepted", B_ICMP, m_icmp_reply, VERIFY_ALL,
	  PKT_ICMP_ECHO_REPLY, 0 },
	{ "parse_icmp_type_3_is_bad_icmp", B_ICMP, m_icmp_unreach, VERIFY_ALL, 0,
	  MN_DROP_RX_BAD_ICMP },
	{ "parse_icmp_code_1_is_bad_icmp", B_ICMP, m_icmp_code1, VERIFY_ALL, 0,
	  MN_DROP_RX_BAD_ICMP },
	{ "parse_icmp_bad_csum_is_bad_icmp_without_flags", B_ICMP, m_icmp_csum, 0, 0,
	  MN_DROP_RX_BAD_ICMP },
	{ "parse_icmp_shorter_than_header_is_bad_icmp", B_ICMP, m_l4_7_bytes, VERIFY_ALL, 0,
	  MN_DROP_RX_BAD_ICMP },
	{ "parse_arp_request_accepted", B_ARP, m_none, VERIFY_ALL, PKT_ARP, 0 },
	{ "parse_arp_41_bytes_is_bad_arp", B_ARP, m_len41, VERIFY_ALL, 0, MN_DROP_RX_BAD_ARP },
	{ "parse_arp_htype_is_bad_arp", B_ARP, m_arp_htype, VERIFY_ALL, 0, MN_DROP_RX_BAD_ARP },
	{ "parse_arp_ptype_is_bad_arp", B_ARP, m_arp_ptype, VERIFY_ALL, 0, MN_DROP_RX_BAD_ARP },
	{ "parse_arp_hlen_is_bad_arp", B_ARP, m_arp_hlen, VERIFY_ALL, 0, MN_DROP_RX_BAD_ARP },
	{ "parse_arp_plen_is_bad_arp", B_ARP, m_arp_plen, VERIFY_ALL, 0, MN_DROP_RX_BAD_ARP },
	{ "parse_arp_op_0_is_bad_arp", B_ARP, m_arp_op0, VERIFY_ALL, 0, MN_DROP_RX_BAD_ARP },
	{ "parse_arp_op_3_is_bad_arp", B_ARP, m_arp_op3, VERIFY_ALL, 0, MN_DROP_RX_BAD_ARP },
};
#define N_BAD_CASES (sizeof(bad_cases) / sizeof(bad_cases[0]))

static void run_bad_case(void **state)
{
	const struct bad_case *c = *state;
	uint8_t f[BUF_CAP];
	uint32_t len;
	struct pkt_info pi;
	enum mn_drop why = MN_DROP_MAX;
	struct pkt_arp a;
	int got;

	switch (c->base) {
	case B_UDP:
		len = udp_frame(f, 21);
		break;
	case B_ICMP:
		len = icmp_echo_frame(f, 21);
		break;
	default:
		len = arp_frame(f);
		break;
	}
	c->mutate(f, &len);
	got = parse_exact(f, len, c->flags, &pi, &why);
	if (got != c->want_class || (got == 0 && why != c->want_why))
		fail_msg("%s: got class %d reason %d, want class %d reason %d", c->name, got,
			 (int)why, c->want_class, (int)c->want_why);
	/* pkt_arp_parse agrees with pkt_parse on ARP frames. */
	if (c->base == B_ARP)
		assert_int_equal(pkt_arp_parse(f, len, &a) == 0, got == PKT_ARP);
}

/* ---- TX check ----------------------------------------------------------- */

static void expect_tx(const uint8_t *f, uint32_t len, uint16_t mtu, int want,
		      enum mn_drop want_why)
{
	struct pkt_info pi;
	enum mn_drop why = MN_DROP_MAX;
	int got = tx_check_exact(f, len, mtu, &pi, &why);

	assert_int_equal(got, want);
	if (want)
		assert_int_equal(why, want_why);
}

static void test_tx_accepts_valid_frame_and_fills_info(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = udp_frame(f, 100);
	struct pkt_info pi;
	enum mn_drop why;

	(void)state;
	assert_int_equal(tx_check_exact(f, len, 1500, &pi, &why), 0);
	assert_int_equal(pi.src_ip, IP_A);
	assert_int_equal(pi.src_port, 5000);
	assert_int_equal(pi.dst_port, 6000);
	assert_int_equal(pi.ip_total_len, 128);
	assert_int_equal(pi.payload_len, 100);
}

static void test_tx_mtu_boundary(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = udp_frame(f, 1472);

	(void)state;
	expect_tx(f, len, 1500, 0, 0);
	expect_tx(f, len, 1499, -1, MN_DROP_TX_MTU);
	len = udp_frame(f, 1473);
	expect_tx(f, len, 1500, -1, MN_DROP_TX_MTU);
}

static void test_tx_refuses_foreign_source_mac(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = udp_frame(f, 10);

	(void)state;
	f[11] ^= 1;
	expect_tx(f, len, 1500, -1, MN_DROP_TX_SRC_MAC);
}

static void test_tx_refuses_short_and_non_ipv4(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = udp_frame(f, 0);

	(void)state;
	expect_tx(f, 0, 1500, -1, MN_DROP_TX_BAD_FRAME);
	expect_tx(f, 13, 1500, -1, MN_DROP_TX_BAD_FRAME);
	expect_tx(f, len - 1, 1500, -1, MN_DROP_TX_BAD_FRAME);
	len = pkt_build_arp(f, BUF_CAP, PKT_ARP_OP_REQUEST, mac_a, IP_A, NULL, IP_B);
	expect_tx(f, len, 1500, -1, MN_DROP_TX_BAD_FRAME);
}

static void test_tx_refuses_malformed_ip(void **state)
{
	uint8_t f[BUF_CAP], g[BUF_CAP];
	uint32_t len = udp_frame(f, 30);

	(void)state;
	memcpy(g, f, len);
	g[O_IP] = 0x65; /* version 6 */
	expect_tx(g, len, 1500, -1, MN_DROP_TX_BAD_FRAME);
	memcpy(g, f, len);
	g[O_IP] = 0x44; /* IHL 4 */
	expect_tx(g, len, 1500, -1, MN_DROP_TX_BAD_FRAME);
	memcpy(g, f, len);
	g[O_IP] = 0x4f; /* IHL 15 > what the frame holds */
	expect_tx(g, len, 1500, -1, MN_DROP_TX_BAD_FRAME);
	memcpy(g, f, len);
	g[O_IP_TTL] = 0;
	expect_tx(g, len, 1500, -1, MN_DROP_TX_BAD_FRAME);
	memcpy(g, f, len);
	g[O_IP_PROTO] = 1;
	expect_tx(g, len, 1500, -1, MN_DROP_TX_BAD_FRAME);
}

static void test_tx_refuses_fragments(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = udp_frame(f, 30);

	(void)state;
	wr16(f + O_IP_FRAG, 0x2000);
	expect_tx(f, len, 1500, -1, MN_DROP_TX_BAD_FRAME);
	wr16(f + O_IP_FRAG, 0x0001);
	expect_tx(f, len, 1500, -1, MN_DROP_TX_BAD_FRAME);
}

static void test_tx_refuses_inconsistent_lengths(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = udp_frame(f, 100);

	(void)state;
	expect_tx(f, len + 1, 1500, -1, MN_DROP_TX_BAD_FRAME); /* bytes beyond total */
	wr16(f + O_IP_TOTLEN, 129);
	expect_tx(f, len, 1500, -1, MN_DROP_TX_BAD_FRAME); /* total beyond frame */
	wr16(f + O_IP_TOTLEN, 128);
	wr16(f + O_UDP_LEN, 107);
	expect_tx(f, len, 1500, -1, MN_DROP_TX_BAD_FRAME);
	wr16(f + O_UDP_LEN, 7);
	expect_tx(f, len, 1500, -1, MN_DROP_TX_BAD_FRAME);
}

static void test_tx_allows_padding_only_to_60(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = udp_frame(f, 3); /* 45 bytes */

	(void)state;
	memset(f + len, 0, 20);
	expect_tx(f, 60, 1500, 0, 0);
	expect_tx(f, 52, 1500, 0, 0);
	expect_tx(f, 61, 1500, -1, MN_DROP_TX_BAD_FRAME);
}

static void test_tx_ignores_checksums(void **state)
{
	uint8_t f[BUF_CAP];
	uint32_t len = udp_frame(f, 10);

	(void)state;
	wr16(f + O_IP_CSUM, 0);
	wr16(f + O_UDP_CSUM, 0x1234);
	expect_tx(f, len, 1500, 0, 0);
}

/* ---- never crash --------------------------------------------------------- */

/* Run every entry point on a frame and check what an acceptance promises. */
static void hammer(const uint8_t *src, uint32_t len)
{
	uint8_t *f = malloc(len ? len : 1);
	struct pkt_info pi;
	struct pkt_arp a;
	enum mn_drop why = MN_DROP_MAX;
	int cls;

	assert_non_null(f);
	memcpy(f, src, len);
	cls = pkt_parse(f, len, VERIFY_ALL, &pi, &why);
	if (cls == 0) {
		assert_true(why < MN_DROP_MAX);
	} else if (cls == PKT_UDP || cls == PKT_ICMP_ECHO) {
		assert_true((uint32_t)pi.payload_off + pi.payload_len <= len);
		assert_true((uint32_t)pi.l3_off + pi.ip_total_len <= len);
	}
	(void)pkt_arp_parse(f, len, &a);
	if (cls == PKT_ICMP_ECHO)
		assert_int_not_equal(pkt_icmp_echo_reply(f, len, &pi, mac_a), 0);
	if (pkt_tx_check(f, len, 1500, mac_a, &pi, &why) == 0) {
		assert_true((uint32_t)pi.payload_off + pi.payload_len <= len);
		pkt_fill_csums(f, &pi);
		assert_int_equal(pkt_parse(f, len, VERIFY_ALL, &pi, &why), PKT_UDP);
	} else {
		assert_true(why == MN_DROP_TX_BAD_FRAME || why == MN_DROP_TX_SRC_MAC ||
			    why == MN_DROP_TX_MTU);
	}
	free(f);
}

static void test_random_frames_never_crash(void **state)
{
	uint8_t f[BUF_CAP];

	(void)state;
	for (int i = 0; i < 100000; i++) {
		uint32_t len = rnd() % 1600;

		for (uint32_t j = 0; j < len; j++)
			f[j] = (uint8_t)rnd();
		/* Steer most frames past the first checks so deeper code runs. */
		if (len >= 14 && (i & 3) != 0) {
			wr16(f + O_ETYPE, (i & 3) == 1 ? 0x0806 : 0x0800);
			memcpy(f + 6, mac_a, 6);
		}
		if (len >= 15 && (i & 3) >= 2)
			f[O_IP] = (uint8_t)(0x40 | (rnd() % 16));
		hammer(f, len);
	}
}

static void test_mutated_valid_frames_never_crash(void **state)
{
	uint8_t f[BUF_CAP];

	(void)state;
	for (int i = 0; i < 100000; i++) {
		uint32_t len;
		uint32_t flips = 1 + rnd() % 4;

		switch (i % 3) {
		case 0:
			len = udp_frame(f, rnd() % 200);
			break;
		case 1:
			len = icmp_echo_frame(f, rnd() % 200);
			break;
		default:
			len = arp_frame(f);
			break;
		}
		for (uint32_t k = 0; k < flips; k++)
			f[rnd() % len] = (uint8_t)rnd();
		if (rnd() % 4 == 0)
			len = rnd() % (len + 1);
		hammer(f, len);
	}
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_csum_rfc1071_example),
		cmocka_unit_test(test_csum_odd_length_pads_with_zero),
		cmocka_unit_test(test_csum_adds_initial_and_folds),
		cmocka_unit_test(test_csum_matches_reference_at_every_length_and_alignment),
		cmocka_unit_test(test_ipv4_hdr_csum_textbook_header),
		cmocka_unit_test(test_udp_csum_hand_computed_datagram),
		cmocka_unit_test(test_udp_csum_computed_zero_is_sent_as_ffff),
		cmocka_unit_test(test_udp_csum_refuses_short_length),
		cmocka_unit_test(test_fill_csums_rewrites_both),
		cmocka_unit_test(test_build_udp_round_trips_every_payload_0_to_1472),
		cmocka_unit_test(test_build_udp_refuses_small_cap_and_huge_payload),
		cmocka_unit_test(test_parse_accepts_trailing_padding),
		cmocka_unit_test(test_parse_accepts_ip_options),
		cmocka_unit_test(test_parse_on_drop_sets_reason_and_returns_zero),
		cmocka_unit_test(test_arp_request_is_broadcast_with_zero_target_mac),
		cmocka_unit_test(test_arp_unicast_request_goes_to_given_mac),
		cmocka_unit_test(test_arp_reply_names_target),
		cmocka_unit_test(test_arp_build_refusals),
		cmocka_unit_test(test_arp_parse_accepts_unpadded_42_bytes),
		cmocka_unit_test(test_arp_parse_refuses_ipv4_frame),
		cmocka_unit_test(test_echo_reply_from_request),
		cmocka_unit_test(test_echo_reply_odd_and_empty_data),
		cmocka_unit_test(test_echo_reply_cuts_padding),
		cmocka_unit_test(test_echo_reply_refuses_what_is_not_a_request),
		cmocka_unit_test(test_build_icmp_echo_headers_and_data_at_sizes),
		cmocka_unit_test(test_build_icmp_echo_checksums_by_hand),
		cmocka_unit_test(test_build_icmp_echo_reply_round_trip),
		cmocka_unit_test(test_build_icmp_echo_refuses_small_cap_and_huge_data),
		cmocka_unit_test(test_tx_accepts_valid_frame_and_fills_info),
		cmocka_unit_test(test_tx_mtu_boundary),
		cmocka_unit_test(test_tx_refuses_foreign_source_mac),
		cmocka_unit_test(test_tx_refuses_short_and_non_ipv4),
		cmocka_unit_test(test_tx_refuses_malformed_ip),
		cmocka_unit_test(test_tx_refuses_fragments),
		cmocka_unit_test(test_tx_refuses_inconsistent_lengths),
		cmocka_unit_test(test_tx_allows_padding_only_to_60),
		cmocka_unit_test(test_tx_ignores_checksums),
		cmocka_unit_test(test_random_frames_never_crash),
		cmocka_unit_test(test_mutated_valid_frames_never_crash),
	};
	const size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	struct CMUnitTest tests[sizeof(fixed) / sizeof(fixed[0]) + N_BAD_CASES];

	/* Each malformed-frame row runs as its own test, under its own name. */
	for (size_t i = 0; i < N_BAD_CASES; i++) {
		memset(&tests[i], 0, sizeof(tests[i]));
		tests[i].name = bad_cases[i].name;
		tests[i].test_func = run_bad_case;
		tests[i].initial_state = (void *)&bad_cases[i];
	}
	memcpy(&tests[N_BAD_CASES], fixed, sizeof(fixed));
	return _cmocka_run_group_tests("pkt", tests, N_BAD_CASES + nfixed, tu_group_setup,
				       tu_group_teardown);
}
