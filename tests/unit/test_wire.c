/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for servers/wire: the exact byte layout, a round trip of every
 * type, each decoder refusal (table-driven), boundaries, and a fuzz pass
 * over random and mutated headers (decode never reads out of bounds, and
 * whatever it accepts re-encodes to the same bytes).
 */
#include "testutil.h"

#include <stdlib.h>

#include "wire.h"

/* A valid header of @type with every field set to something recognisable. */
static struct wire_hdr valid_hdr(uint8_t type)
{
	struct wire_hdr h = {
		.magic = WIRE_MAGIC,
		.version = WIRE_VERSION,
		.type = type,
		.src_conn = 0x11223344,
		.dst_conn = 0x55667788,
		.seq = 0x99aabbcc,
		.ack = 0xddeeff00,
		.wnd = 256,
		.sack = 0x0102030405060708ull,
		.flags = WIRE_F_ECHO,
		.ts = 0x1112131415161718ull,
		.ts_echo = 0x2122232425262728ull,
	};

	switch (type) {
	case WIRE_SYN:
		h.dst_conn = 0;
		h.ack = 0;
		h.sack = 0;
		h.flags = 0;
		h.ts_echo = 0;
		break;
	case WIRE_DATA:
		h.msg_id = 7;
		h.msg_len = 5000;
		h.frag_off = 1408;
		h.payload_len = 1408;
		break;
	case WIRE_RST:
		h.msg_id = WIRE_RST_NO_CONN;
		break;
	default:
		break;
	}
	return h;
}

/* Encode @h followed by its payload (filled with a pattern) into @buf. */
static size_t build(const struct wire_hdr *h, uint8_t *buf)
{
	wire_encode(h, buf);
	for (uint32_t i = 0; i < h->payload_len; i++)
		buf[WIRE_HDR_LEN + i] = (uint8_t)(i * 7);
	return WIRE_HDR_LEN + h->payload_len;
}

static void test_layout_is_network_order_at_documented_offsets(void **state)
{
	struct wire_hdr h = valid_hdr(WIRE_DATA);
	uint8_t b[WIRE_HDR_LEN];
	static const uint8_t want[WIRE_HDR_LEN] = {
		0x4d, 0x4e, 0x01, 0x03,				/* magic, version, type */
		0x11, 0x22, 0x33, 0x44,				/* src_conn */
		0x55, 0x66, 0x77, 0x88,				/* dst_conn */
		0x99, 0xaa, 0xbb, 0xcc,				/* seq */
		0xdd, 0xee, 0xff, 0x00,				/* ack */
		0x00, 0x00, 0x01, 0x00,				/* wnd */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* sack */
		0x00, 0x00, 0x00, 0x07,				/* msg_id */
		0x00, 0x00, 0x13, 0x88,				/* msg_len 5000 */
		0x00, 0x00, 0x05, 0x80,				/* frag_off 1408 */
		0x00, 0x01, 0x05, 0x80,				/* flags, payload_len */
		0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* ts */
		0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, /* ts_echo */
	};

	(void)state;
	assert_int_equal(wire_encode(&h, b), WIRE_HDR_LEN);
	assert_memory_equal(b, want, WIRE_HDR_LEN);
}

static void test_round_trip_every_type(void **state)
{
	static uint8_t buf[WIRE_HDR_LEN + 2048];

	(void)state;
	for (uint8_t type = WIRE_SYN; type <= WIRE_RST; type++) {
		struct wire_hdr h = valid_hdr(type), d;
		size_t len = build(&h, buf);

		assert_int_equal(wire_check(&h, h.payload_len), 0);
		assert_int_equal(wire_decode(&d, buf, len), 0);
		assert_memory_equal(&d, &h, sizeof(h));
		assert_string_not_equal(wire_type_name(type), "?");
	}
}

static void test_encode_forces_magic_and_version(void **state)
{
	struct wire_hdr h = valid_hdr(WIRE_ACK), d;
	uint8_t b[WIRE_HDR_LEN];

	(void)state;
	h.magic = 0;
	h.version = 9;
	wire_encode(&h, b);
	assert_int_equal(wire_decode(&d, b, sizeof(b)), 0);
	assert_int_equal(d.magic, WIRE_MAGIC);
	assert_int_equal(d.version, WIRE_VERSION);
}

/* One refusal: start from a valid header of @type, break it, expect @err. */
struct bad_case {
	const char *what;
	uint8_t type;
	void (*mutate)(struct wire_hdr *h);
	int extra_len; /* bytes added to (or taken from) the UDP payload */
	int err;
};

static void m_none(struct wire_hdr *h) { (void)h; }
static void m_type0(struct wire_hdr *h) { h->type = 0; }
static void m_type7(struct wire_hdr *h) { h->type = 7; }
static void m_type255(struct wire_hdr *h) { h->type = 255; }
static void m_flag_unknown(struct wire_hdr *h) { h->flags |= 0x8000; }
static void m_flag_bit3(struct wire_hdr *h) { h->flags |= 0x0008; }
static void m_echo_without_flag(struct wire_hdr *h) { h->flags &= (uint16_t)~WIRE_F_ECHO; }
static void m_src0(struct wire_hdr *h) { h->src_conn = 0; }
static void m_dst0(struct wire_hdr *h) { h->dst_conn = 0; }
static void m_dst1(struct wire_hdr *h) { h->dst_conn = 1; }
static void m_msg_len0(struct wire_hdr *h) { h->msg_len = 0; }
static void m_msg_len_big(struct wire_hdr *h) { h->msg_len = WIRE_MAX_MSG + 1; h->frag_off = 0; }
static void m_frag_past_end(struct wire_hdr *h) { h->frag_off = h->msg_len - h->payload_len + 1; }
static void m_frag_wraps(struct wire_hdr *h) { h->frag_off = UINT32_MAX - 10; }
static void m_payload0(struct wire_hdr *h) { h->payload_len = 0; }
static void m_msg_len1(struct wire_hdr *h) { h->msg_len = 1; }
static void m_frag1(struct wire_hdr *h) { h->frag_off = 1; }
static void m_msg_id1(struct wire_hdr *h) { h->msg_id = 1; }
static void m_msg_id0(struct wire_hdr *h) { h->msg_id = 0; }
static void m_ack1(struct wire_hdr *h) { h->ack = 1; }
static void m_sack1(struct wire_hdr *h) { h->sack = 1; }
static void m_syn_echo(struct wire_hdr *h) { h->flags |= WIRE_F_ECHO; h->ts_echo = 5; }
static void m_payload5(struct wire_hdr *h) { h->payload_len = 5; }

static const struct bad_case bad_cases[] = {
	{ "type 0", WIRE_ACK, m_type0, 0, -WIRE_E_TYPE },
	{ "type 7", WIRE_ACK, m_type7, 0, -WIRE_E_TYPE },
	{ "type 255", WIRE_ACK, m_type255, 0, -WIRE_E_TYPE },
	{ "unknown flag 0x8000", WIRE_ACK, m_flag_unknown, 0, -WIRE_E_FLAGS },
	{ "unknown flag 0x0008", WIRE_DATA, m_flag_bit3, 0, -WIRE_E_FLAGS },
	{ "ts_echo without ECHO", WIRE_ACK, m_echo_without_flag, 0, -WIRE_E_FLAGS },
	{ "payload_len < UDP", WIRE_DATA, m_none, 1, -WIRE_E_LEN },
	{ "payload_len > UDP", WIRE_DATA, m_none, -1, -WIRE_E_LEN },
	{ "ACK with trailing byte", WIRE_ACK, m_none, 1, -WIRE_E_LEN },
	{ "SYN src_conn 0", WIRE_SYN, m_src0, 0, -WIRE_E_CONN },
	{ "SYN dst_conn set", WIRE_SYN, m_dst1, 0, -WIRE_E_CONN },
	{ "SYN-ACK dst_conn 0", WIRE_SYNACK, m_dst0, 0, -WIRE_E_CONN },
	{ "SYN-ACK src_conn 0", WIRE_SYNACK, m_src0, 0, -WIRE_E_CONN },
	{ "DATA src_conn 0", WIRE_DATA, m_src0, 0, -WIRE_E_CONN },
	{ "DATA dst_conn 0", WIRE_DATA, m_dst0, 0, -WIRE_E_CONN },
	{ "ACK dst_conn 0", WIRE_ACK, m_dst0, 0, -WIRE_E_CONN },
	{ "FIN src_conn 0", WIRE_FIN, m_src0, 0, -WIRE_E_CONN },
	{ "RST dst_conn 0", WIRE_RST, m_dst0, 0, -WIRE_E_CONN },
	{ "DATA msg_len 0", WIRE_DATA, m_msg_len0, 0, -WIRE_E_MSG },
	{ "DATA msg_len 8 MiB + 1", WIRE_DATA, m_msg_len_big, 0, -WIRE_E_MSG },
	{ "DATA fragment past the end", WIRE_DATA, m_frag_past_end, 0, -WIRE_E_MSG },
	{ "DATA frag_off + len wraps 2^32", WIRE_DATA, m_frag_wraps, 0, -WIRE_E_MSG },
	{ "DATA without payload", WIRE_DATA, m_payload0, 0, -WIRE_E_MSG },
	{ "ACK with msg_len", WIRE_ACK, m_msg_len1, 0, -WIRE_E_FIELD },
	{ "FIN with frag_off", WIRE_FIN, m_frag1, 0, -WIRE_E_FIELD },
	{ "ACK with msg_id", WIRE_ACK, m_msg_id1, 0, -WIRE_E_FIELD },
	{ "SYN-ACK with msg_id", WIRE_SYNACK, m_msg_id1, 0, -WIRE_E_FIELD },
	{ "RST without reason", WIRE_RST, m_msg_id0, 0, -WIRE_E_FIELD },
	{ "SYN with ack", WIRE_SYN, m_ack1, 0, -WIRE_E_FIELD },
	{ "SYN with sack", WIRE_SYN, m_sack1, 0, -WIRE_E_FIELD },
	{ "SYN with echo", WIRE_SYN, m_syn_echo, 0, -WIRE_E_FIELD },
	{ "FIN with payload", WIRE_FIN, m_payload5, 0, -WIRE_E_FIELD },
};

static void test_decode_refuses_each_broken_field(void **state)
{
	static uint8_t buf[WIRE_HDR_LEN + 4096];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct wire_hdr h = valid_hdr(c->type), d;
		size_t len;
		int err;

		c->mutate(&h);
		len = build(&h, buf);
		len = (size_t)((long)len + c->extra_len);
		err = wire_decode(&d, buf, len);
		if (err != c->err)
			fail_msg("%s: decode returned %d (%s), expected %d (%s)", c->what, err,
				 wire_err_name(err), c->err, wire_err_name(c->err));
	}
}

static void test_decode_refuses_short_bad_magic_and_version(void **state)
{
	uint8_t b[WIRE_HDR_LEN];
	struct wire_hdr h = valid_hdr(WIRE_ACK), d;

	(void)state;
	wire_encode(&h, b);
	for (size_t len = 0; len < WIRE_HDR_LEN; len++)
		assert_int_equal(wire_decode(&d, b, len), -WIRE_E_SHORT);
	b[0] ^= 0x80;
	assert_int_equal(wire_decode(&d, b, sizeof(b)), -WIRE_E_MAGIC);
	b[0] ^= 0x80;
	b[2] = 2;
	assert_int_equal(wire_decode(&d, b, sizeof(b)), -WIRE_E_VERSION);
	b[2] = 0;
	assert_int_equal(wire_decode(&d, b, sizeof(b)), -WIRE_E_VERSION);
	assert_string_equal(wire_err_name(-WIRE_E_VERSION), "version");
	assert_string_equal(wire_err_name(99), "?");
}

static void test_decode_accepts_boundaries(void **state)
{
	static uint8_t buf[WIRE_HDR_LEN + WIRE_MSS_1500];
	struct wire_hdr h = valid_hdr(WIRE_DATA), d;

	(void)state;
	/* Last fragment of the largest message. */
	h.msg_len = WIRE_MAX_MSG;
	h.payload_len = WIRE_MSS_1500;
	h.frag_off = WIRE_MAX_MSG - WIRE_MSS_1500;
	assert_int_equal(wire_decode(&d, buf, build(&h, buf)), 0);
	/* A 1-byte message. */
	h.msg_len = 1;
	h.payload_len = 1;
	h.frag_off = 0;
	assert_int_equal(wire_decode(&d, buf, build(&h, buf)), 0);
	/* An RST answering a SYN has no source conn id; any reason goes. */
	h = valid_hdr(WIRE_RST);
	h.src_conn = 0;
	h.msg_id = 200;
	assert_int_equal(wire_decode(&d, buf, build(&h, buf)), 0);
}

static uint64_t rnd_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/*
 * Random and mutated input, each in a buffer of exactly its length (ASan
 * catches a read past it). Whatever decodes re-encodes to the same bytes.
 */
static void test_fuzz_decode(void **state)
{
	unsigned int accepted = 0;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		size_t len;
		uint8_t *b;
		struct wire_hdr h, d;

		if (i % 2) {
			h = valid_hdr((uint8_t)(WIRE_SYN + rnd() % 6));
			if (h.type == WIRE_DATA) {
				h.payload_len = (uint16_t)(1 + rnd() % 64);
				h.msg_len = (uint32_t)(h.payload_len + rnd() % 100);
				h.frag_off = 0;
			}
			len = WIRE_HDR_LEN + h.payload_len;
			b = malloc(len);
			assert_non_null(b);
			wire_encode(&h, b);
			memset(b + WIRE_HDR_LEN, 0xab, h.payload_len);
			for (int n = (int)(rnd() % 4); n >= 0; n--)
				b[rnd() % len] ^= (uint8_t)(1 + rnd() % 255);
			if (rnd() % 8 == 0)
				len = rnd() % (len + 1);
		} else {
			len = rnd() % 160;
			b = malloc(len ? len : 1);
			assert_non_null(b);
			for (size_t k = 0; k < len; k++)
				b[k] = (uint8_t)rnd();
			if (len >= 4 && rnd() % 2) { /* get past magic and version */
				b[0] = 0x4d;
				b[1] = 0x4e;
				b[2] = 1;
				b[3] = (uint8_t)(1 + rnd() % 6);
			}
		}
		if (wire_decode(&d, b, len) == 0) {
			uint8_t again[WIRE_HDR_LEN];

			accepted++;
			assert_int_equal(len, WIRE_HDR_LEN + d.payload_len);
			wire_encode(&d, again);
			assert_memory_equal(again, b, WIRE_HDR_LEN);
		}
		free(b);
	}
	/* The mutations must not all be fatal, or the pass proves little. */
	assert_true(accepted > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_is_network_order_at_documented_offsets),
		cmocka_unit_test(test_round_trip_every_type),
		cmocka_unit_test(test_encode_forces_magic_and_version),
		cmocka_unit_test(test_decode_refuses_each_broken_field),
		cmocka_unit_test(test_decode_refuses_short_bad_magic_and_version),
		cmocka_unit_test(test_decode_accepts_boundaries),
		cmocka_unit_test(test_fuzz_decode),
	};

	return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
