/* SPDX-License-Identifier: MIT */
#include "wire.h"

_Static_assert(WIRE_MSS_1500 == 1500 - 20 - 8 - WIRE_HDR_LEN, "MSS for a 1500 B MTU");

/* Field offsets: the table in docs/wire.md. */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 2,
	OFF_TYPE = 3,
	OFF_SRC_CONN = 4,
	OFF_DST_CONN = 8,
	OFF_SEQ = 12,
	OFF_ACK = 16,
	OFF_WND = 20,
	OFF_SACK = 24,
	OFF_MSG_ID = 32,
	OFF_MSG_LEN = 36,
	OFF_FRAG_OFF = 40,
	OFF_FLAGS = 44,
	OFF_PAYLOAD_LEN = 46,
	OFF_TS = 48,
	OFF_TS_ECHO = 56,
};
_Static_assert(OFF_TS_ECHO + 8 == WIRE_HDR_LEN, "header is 64 bytes");

/* Byte-by-byte big-endian access: no alignment or aliasing assumptions. */
static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

size_t wire_encode(const struct wire_hdr *h, void *buf)
{
	uint8_t *p = buf;

	put16(p + OFF_MAGIC, WIRE_MAGIC);
	p[OFF_VERSION] = WIRE_VERSION;
	p[OFF_TYPE] = h->type;
	put32(p + OFF_SRC_CONN, h->src_conn);
	put32(p + OFF_DST_CONN, h->dst_conn);
	put32(p + OFF_SEQ, h->seq);
	put32(p + OFF_ACK, h->ack);
	put32(p + OFF_WND, h->wnd);
	put64(p + OFF_SACK, h->sack);
	put32(p + OFF_MSG_ID, h->msg_id);
	put32(p + OFF_MSG_LEN, h->msg_len);
	put32(p + OFF_FRAG_OFF, h->frag_off);
	put16(p + OFF_FLAGS, h->flags);
	put16(p + OFF_PAYLOAD_LEN, h->payload_len);
	put64(p + OFF_TS, h->ts);
	put64(p + OFF_TS_ECHO, h->ts_echo);
	return WIRE_HDR_LEN;
}

/* DATA: a fragment of 1..msg_len bytes lying inside a message of at most 8 MiB. */
static int check_data(const struct wire_hdr *h, size_t payload_len)
{
	if (h->msg_len == 0 || h->msg_len > WIRE_MAX_MSG || payload_len == 0)
		return -WIRE_E_MSG;
	/* 64-bit sum: frag_off near 2^32 must not wrap past the check. */
	if ((uint64_t)h->frag_off + payload_len > h->msg_len)
		return -WIRE_E_MSG;
	return 0;
}

/* Everything but DATA: no payload, no message fields (RST: a reason). */
static int check_control(const struct wire_hdr *h, size_t payload_len)
{
	if (payload_len != 0 || h->msg_len != 0 || h->frag_off != 0)
		return -WIRE_E_FIELD;
	if (h->type == WIRE_RST)
		return h->msg_id != 0 ? 0 : -WIRE_E_FIELD;
	if (h->msg_id != 0)
		return -WIRE_E_FIELD;
	/* A SYN opens the exchange: nothing to acknowledge or echo yet. */
	if (h->type == WIRE_SYN && (h->ack != 0 || h->sack != 0 || (h->flags & WIRE_F_ECHO)))
		return -WIRE_E_FIELD;
	return 0;
}

/* Which connection ids each type must carry (docs/wire.md, "connection ids"). */
static int check_conn(const struct wire_hdr *h)
{
	switch (h->type) {
	case WIRE_SYN:
		return h->src_conn != 0 && h->dst_conn == 0 ? 0 : -WIRE_E_CONN;
	case WIRE_RST:
		/* src_conn is 0 when the refused packet was a SYN. */
		return h->dst_conn != 0 ? 0 : -WIRE_E_CONN;
	default:
		return h->src_conn != 0 && h->dst_conn != 0 ? 0 : -WIRE_E_CONN;
	}
}

int wire_check(const struct wire_hdr *h, size_t payload_len)
{
	int err;

	if (h->type < WIRE_SYN || h->type > WIRE_RST)
		return -WIRE_E_TYPE;
	if ((h->flags & ~WIRE_F_ALL) != 0 || (!(h->flags & WIRE_F_ECHO) && h->ts_echo != 0))
		return -WIRE_E_FLAGS;
	if (payload_len != h->payload_len || payload_len > WIRE_MAX_PAYLOAD)
		return -WIRE_E_LEN;
	err = check_conn(h);
	if (err)
		return err;
	if (h->type == WIRE_DATA)
		return check_data(h, payload_len);
	return check_control(h, payload_len);
}

int wire_decode(struct wire_hdr *h, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (len < WIRE_HDR_LEN)
		return -WIRE_E_SHORT;
	h->magic = get16(p + OFF_MAGIC);
	if (h->magic != WIRE_MAGIC)
		return -WIRE_E_MAGIC;
	h->version = p[OFF_VERSION];
	if (h->version != WIRE_VERSION)
		return -WIRE_E_VERSION;
	h->type = p[OFF_TYPE];
	h->src_conn = get32(p + OFF_SRC_CONN);
	h->dst_conn = get32(p + OFF_DST_CONN);
	h->seq = get32(p + OFF_SEQ);
	h->ack = get32(p + OFF_ACK);
	h->wnd = get32(p + OFF_WND);
	h->sack = get64(p + OFF_SACK);
	h->msg_id = get32(p + OFF_MSG_ID);
	h->msg_len = get32(p + OFF_MSG_LEN);
	h->frag_off = get32(p + OFF_FRAG_OFF);
	h->flags = get16(p + OFF_FLAGS);
	h->payload_len = get16(p + OFF_PAYLOAD_LEN);
	h->ts = get64(p + OFF_TS);
	h->ts_echo = get64(p + OFF_TS_ECHO);
	return wire_check(h, len - WIRE_HDR_LEN);
}

const char *wire_type_name(unsigned int type)
{
	static const char *const names[] = {
		[WIRE_SYN] = "SYN", [WIRE_SYNACK] = "SYN-ACK", [WIRE_DATA] = "DATA",
		[WIRE_ACK] = "ACK", [WIRE_FIN] = "FIN",	       [WIRE_RST] = "RST",
	};

	if (type < WIRE_SYN || type > WIRE_RST)
		return "?";
	return names[type];
}

const char *wire_err_name(int err)
{
	static const char *const names[WIRE_E_NR] = {
		[WIRE_OK] = "ok",	  [WIRE_E_SHORT] = "short",
		[WIRE_E_MAGIC] = "magic", [WIRE_E_VERSION] = "version",
		[WIRE_E_TYPE] = "type",	  [WIRE_E_FLAGS] = "flags",
		[WIRE_E_LEN] = "length",  [WIRE_E_CONN] = "conn-id",
		[WIRE_E_MSG] = "message", [WIRE_E_FIELD] = "field",
	};

	if (err < 0)
		err = -err;
	if (err >= WIRE_E_NR)
		return "?";
	return names[err];
}
