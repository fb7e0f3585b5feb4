/* SPDX-License-Identifier: MIT */
/*
 * echo: the ICMP echo requests machnet-nicd has in flight for PING
 * (ipc/port.h), in a fixed table of ECHO_MAX slots. Pure bookkeeping: the
 * caller resolves, sends, answers and reads the clock; time is passed in
 * (ns, one monotonic clock), so tests are exact.
 *
 * A slot's life:
 *
 *   echo_add()  -> ECHO_ARP    waiting for the next hop's MAC; the deadline
 *                              is the caller's ARP limit
 *   echo_sent() -> ECHO_SENT   the request left with the table's identifier
 *                              and a fresh sequence number; the deadline is
 *                              now + the request's timeout_ms
 *   echo_free() -> ECHO_FREE   answered (reply, error or time-out), or its
 *                              owner went away (echo_drop_owner())
 *
 * Matching a reply: the identifier is the table's (nicd picks it per start,
 * so replies to an earlier nicd's requests match nothing), the sequence
 * number is a SENT slot's, and the reply comes from the address that slot
 * pinged. Sequence numbers run free modulo 2^16 and are never given to two
 * slots in flight at once; a reply to a slot already freed matches nothing.
 *
 * Thread-safety: none; nicd uses it from its one thread.
 */
#ifndef MN_DRIVERS_ECHO_H
#define MN_DRIVERS_ECHO_H

#include <stdint.h>

#include "port.h"

#define ECHO_MAX MN_PORT_PING_MAX_PENDING

enum echo_state {
	ECHO_FREE = 0,
	ECHO_ARP,  /* resolving the next hop */
	ECHO_SENT, /* request sent, waiting for the reply */
};

struct echo_slot {
	uint8_t state;	      /* enum echo_state */
	uint16_t seq;	      /* ECHO_SENT: the sequence number on the wire */
	int owner;	      /* the caller's: who asked (nicd: control client) */
	uint32_t tag;	      /* the caller's: e.g. the request id */
	struct mn_port_ping req;
	uint32_t next_hop;
	uint64_t sent_ns;     /* ECHO_SENT: when the request left */
	uint64_t deadline_ns; /* past it, the slot has failed */
};

struct echo_table {
	uint16_t ident;	   /* ICMP identifier of every request */
	uint16_t next_seq; /* the next sequence number to try */
	struct echo_slot slot[ECHO_MAX];
};

/* echo_init - an empty table whose requests carry @ident, numbered from
 * @first_seq. */
void echo_init(struct echo_table *t, uint16_t ident, uint16_t first_seq);

/*
 * echo_add - take a free slot for @req (copied), to be sent to @next_hop,
 * in ECHO_ARP with deadline @arp_deadline_ns. @owner and @tag are kept for
 * the caller. Returns the slot index (0..ECHO_MAX-1) or -EBUSY when every
 * slot is in use.
 */
int echo_add(struct echo_table *t, int owner, uint32_t tag, const struct mn_port_ping *req,
	     uint32_t next_hop, uint64_t arp_deadline_ns);

/*
 * echo_sent - slot @i (in use) is being sent now, at @now: it moves to
 * ECHO_SENT with a sequence number no other SENT slot holds and the
 * deadline @now + req.timeout_ms. Returns that sequence number.
 */
uint16_t echo_sent(struct echo_table *t, int i, uint64_t now);

/*
 * echo_match - the SENT slot an echo reply from @src_ip with @ident and
 * @seq answers. Returns its index, or -ENOENT.
 */
int echo_match(const struct echo_table *t, uint32_t src_ip, uint16_t ident, uint16_t seq);

/* echo_free - slot @i is done; out-of-range or free @i is ignored. */
void echo_free(struct echo_table *t, int i);

/*
 * echo_next_for_hop - the first slot at or after @from in ECHO_ARP on
 * @next_hop, or -1. For ARP answers and failures:
 *   for (i = echo_next_for_hop(t, 0, hop); i >= 0; i = echo_next_for_hop(t, i + 1, hop))
 */
int echo_next_for_hop(const struct echo_table *t, int from, uint32_t next_hop);

/* echo_next_expired - the first slot at or after @from, in use, whose
 * deadline is before @now, or -1. Iterate as echo_next_for_hop(). */
int echo_next_expired(const struct echo_table *t, int from, uint64_t now);

/* echo_drop_owner - free every slot of @owner; returns how many. */
unsigned int echo_drop_owner(struct echo_table *t, int owner);

/* echo_count - slots in @state (ECHO_FREE counts the free ones). */
unsigned int echo_count(const struct echo_table *t, enum echo_state state);

#endif /* MN_DRIVERS_ECHO_H */
