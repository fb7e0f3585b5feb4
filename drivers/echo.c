/* SPDX-License-Identifier: MIT */
#include "echo.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* Linear scans throughout: ECHO_MAX is 32, and pings are admin traffic. */

void echo_init(struct echo_table *t, uint16_t ident, uint16_t first_seq)
{
	memset(t, 0, sizeof(*t));
	t->ident = ident;
	t->next_seq = first_seq;
}

int echo_add(struct echo_table *t, int owner, uint32_t tag, const struct mn_port_ping *req,
	     uint32_t next_hop, uint64_t arp_deadline_ns)
{
	for (int i = 0; i < (int)ECHO_MAX; i++) {
		struct echo_slot *s = &t->slot[i];

		if (s->state != ECHO_FREE)
			continue;
		*s = (struct echo_slot){ .state = ECHO_ARP, .owner = owner, .tag = tag,
					 .req = *req, .next_hop = next_hop,
					 .deadline_ns = arp_deadline_ns };
		return i;
	}
	return -EBUSY;
}

static bool seq_in_flight(const struct echo_table *t, uint16_t seq)
{
	for (unsigned int i = 0; i < ECHO_MAX; i++)
		if (t->slot[i].state == ECHO_SENT && t->slot[i].seq == seq)
			return true;
	return false;
}

uint16_t echo_sent(struct echo_table *t, int i, uint64_t now)
{
	struct echo_slot *s = &t->slot[i];

	/* At most ECHO_MAX - 1 numbers are taken: this ends within ECHO_MAX tries. */
	while (seq_in_flight(t, t->next_seq))
		t->next_seq++;
	s->seq = t->next_seq++;
	s->state = ECHO_SENT;
	s->sent_ns = now;
	s->deadline_ns = now + s->req.timeout_ms * 1000000ull;
	return s->seq;
}

int echo_match(const struct echo_table *t, uint32_t src_ip, uint16_t ident, uint16_t seq)
{
	if (ident != t->ident)
		return -ENOENT;
	for (int i = 0; i < (int)ECHO_MAX; i++) {
		const struct echo_slot *s = &t->slot[i];

		if (s->state == ECHO_SENT && s->seq == seq && s->req.ip == src_ip)
			return i;
	}
	return -ENOENT;
}

void echo_free(struct echo_table *t, int i)
{
	if (i >= 0 && i < (int)ECHO_MAX)
		t->slot[i].state = ECHO_FREE;
}

int echo_next_for_hop(const struct echo_table *t, int from, uint32_t next_hop)
{
	for (int i = from < 0 ? 0 : from; i < (int)ECHO_MAX; i++)
		if (t->slot[i].state == ECHO_ARP && t->slot[i].next_hop == next_hop)
			return i;
	return -1;
}

int echo_next_expired(const struct echo_table *t, int from, uint64_t now)
{
	for (int i = from < 0 ? 0 : from; i < (int)ECHO_MAX; i++)
		if (t->slot[i].state != ECHO_FREE && now > t->slot[i].deadline_ns)
			return i;
	return -1;
}

unsigned int echo_drop_owner(struct echo_table *t, int owner)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < ECHO_MAX; i++) {
		if (t->slot[i].state != ECHO_FREE && t->slot[i].owner == owner) {
			t->slot[i].state = ECHO_FREE;
			n++;
		}
	}
	return n;
}

unsigned int echo_count(const struct echo_table *t, enum echo_state state)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < ECHO_MAX; i++)
		n += t->slot[i].state == state;
	return n;
}
