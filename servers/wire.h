/* SPDX-License-Identifier: MIT */
/*
 * wire: the machnet transport header (version 1), its encoder and its
 * strict decoder. Pure C on byte buffers: no I/O, no allocation.
 *
 * The header follows the UDP header; everything after it is payload.
 * All fields are network byte order on the wire and host order in
 * struct wire_hdr. docs/wire.md is the contract; this is its code.
 *
 *    0               1               2               3
 *    +-------------------------------+---------------+---------------+
 *  0 |            magic              |    version    |     type      |
 *  4 |                          src_conn                             |
 *  8 |                          dst_conn                             |
 * 12 |                             seq                               |
 * 16 |                             ack                               |
 * 20 |                             wnd                               |
 * 24 |                             sack                              |
 * 28 |                       (64 bits)                               |
 * 32 |                            msg_id                             |
 * 36 |                            msg_len                            |
 * 40 |                           frag_off                            |
 * 44 |            flags              |          payload_len          |
 * 48 |                              ts                               |
 * 52 |                       (64 bits)                               |
 * 56 |                            ts_echo                            |
 * 60 |                       (64 bits)                               |
 *    +---------------------------------------------------------------+
 *
 * Thread-safety: all functions are pure (reentrant).
 */
#ifndef MN_SERVERS_WIRE_H
#define MN_SERVERS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC 0x4d4eu  /* "MN" */
#define WIRE_VERSION 1u     /* the only version this code speaks */
#define WIRE_HDR_LEN 64u
#define WIRE_MAX_MSG (8u << 20)       /* largest message: 8 MiB */
#define WIRE_MAX_UDP_PAYLOAD 65507u   /* 65535 - 20 (IPv4) - 8 (UDP) */
#define WIRE_MAX_PAYLOAD (WIRE_MAX_UDP_PAYLOAD - WIRE_HDR_LEN)
#define WIRE_SACK_BITS 64u
/* Payload per packet that fits a 1500-byte MTU: 1500 - 20 - 8 - 64. */
#define WIRE_MSS_1500 1408u

enum wire_type {
	WIRE_SYN = 1,
	WIRE_SYNACK = 2,
	WIRE_DATA = 3,
	WIRE_ACK = 4,
	WIRE_FIN = 5,
	WIRE_RST = 6,
};

/* flags */
#define WIRE_F_ECHO 0x0001u   /* ts_echo holds an echoed timestamp */
#define WIRE_F_ACKREQ 0x0002u /* answer with an ACK now (probes, keepalive) */
#define WIRE_F_RETX 0x0004u   /* a retransmission (informational) */
#define WIRE_F_ALL (WIRE_F_ECHO | WIRE_F_ACKREQ | WIRE_F_RETX)

/* Why an RST was sent: carried in msg_id of an RST. */
enum wire_rst_reason {
	WIRE_RST_NO_CONN = 1,	   /* no flow with that connection id */
	WIRE_RST_NO_LISTENER = 2,  /* SYN to an address nobody listens on */
	WIRE_RST_NO_RESOURCES = 3, /* SYN refused: no free flow slot */
	WIRE_RST_ABORT = 4,	   /* the application aborted the flow */
	WIRE_RST_PROTO = 5,	   /* the peer broke the protocol */
	WIRE_RST_MSG_REFUSED = 6,  /* a message the receiver can never take */
	WIRE_RST_TIMEOUT = 7,	   /* the sender gave up on the flow */
};

/* Decoder verdicts (wire_decode returns their negation). */
enum wire_err {
	WIRE_OK = 0,
	WIRE_E_SHORT = 1,   /* fewer than WIRE_HDR_LEN bytes */
	WIRE_E_MAGIC = 2,   /* magic is not WIRE_MAGIC */
	WIRE_E_VERSION = 3, /* version is not WIRE_VERSION */
	WIRE_E_TYPE = 4,    /* type not one of enum wire_type */
	WIRE_E_FLAGS = 5,   /* unknown flag bits, or ECHO clear with ts_echo != 0 */
	WIRE_E_LEN = 6,     /* payload_len != bytes after the header */
	WIRE_E_CONN = 7,    /* connection ids not allowed for the type */
	WIRE_E_MSG = 8,     /* DATA: msg_len / frag_off / payload_len inconsistent */
	WIRE_E_FIELD = 9,   /* a field that must be zero for the type is not */
	WIRE_E_NR = 10,
};

/* The header in host byte order. */
struct wire_hdr {
	uint16_t magic;
	uint8_t version;
	uint8_t type;	      /* enum wire_type */
	uint32_t src_conn;    /* sender's connection id */
	uint32_t dst_conn;    /* receiver's connection id (0 in a SYN) */
	uint32_t seq;	      /* packet sequence number */
	uint32_t ack;	      /* cumulative: next sequence number expected */
	uint32_t wnd;	      /* receive window, packets from ack */
	uint64_t sack;	      /* bit i: packet ack + 1 + i was received */
	uint32_t msg_id;      /* DATA: message number; RST: enum wire_rst_reason */
	uint32_t msg_len;     /* DATA: bytes in the whole message */
	uint32_t frag_off;    /* DATA: offset of this payload in the message */
	uint16_t flags;	      /* WIRE_F_* */
	uint16_t payload_len; /* bytes after the header */
	uint64_t ts;	      /* sender's clock when sent, ns */
	uint64_t ts_echo;     /* ts of the packet this one answers (WIRE_F_ECHO) */
};

/*
 * wire_encode - write @h as WIRE_HDR_LEN bytes in network order at @buf
 * (which must have room for them). magic and version are written as
 * WIRE_MAGIC / WIRE_VERSION whatever @h says. Does not validate: the
 * transport builds only valid headers, and the unit tests decode
 * everything it sends. Returns WIRE_HDR_LEN.
 */
size_t wire_encode(const struct wire_hdr *h, void *buf);

/*
 * wire_decode - parse and validate the transport header at the start of
 * @buf, a UDP payload of @len bytes (the UDP length minus 8; bytes after
 * the UDP length are not the caller's to pass). Never reads outside
 * [buf, buf + len). On success @h holds the header and the payload is
 * the h->payload_len bytes at buf + WIRE_HDR_LEN.
 * Returns 0 or -enum wire_err; @h is undefined on error. Checks, in order:
 * length, magic, version, type, flags, payload_len == len - 64, then the
 * per-type rules of docs/wire.md (connection ids, message fields, fields
 * that must be zero).
 */
int wire_decode(struct wire_hdr *h, const void *buf, size_t len);

/*
 * wire_check - the per-type rules of wire_decode() applied to a host-order
 * header whose payload is @payload_len bytes (used by the decoder, and by
 * tests on what the transport builds). Returns 0 or -enum wire_err.
 */
int wire_check(const struct wire_hdr *h, size_t payload_len);

/* Short names for logs and stats: "SYN", ... and "short", "magic", ... */
const char *wire_type_name(unsigned int type);
const char *wire_err_name(int err);

#endif /* MN_SERVERS_WIRE_H */
