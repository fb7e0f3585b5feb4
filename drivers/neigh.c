/* SPDX-License-Identifier: MIT */
#include "neigh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX
#define STATE_FREE 0

/*
 * Entries live in a fixed array that never moves, so neigh_tick() and
 * neigh_foreach() can walk it while entries are removed; a chained hash of
 * indices finds them by address. Free entries form a list through `next`.
 */
struct neigh_entry {
	uint32_t ip;
	uint32_t next;	   /* next in hash chain, or in the free list */
	uint8_t state;	   /* enum neigh_state, STATE_FREE */
	uint8_t mac[6];
	uint64_t stamp;	   /* REACHABLE/STALE: confirmed; else: state began */
	uint64_t last_req; /* last request asked of the caller */
};

struct neigh_cache {
	uint64_t ttl, timeout, retry;
	uint32_t capacity, used;
	uint32_t nbuckets; /* power of two >= capacity */
	uint32_t free_head;
	uint32_t *bucket;
	struct neigh_entry *e;
};

/* Time elapsed from @then to @now; 0 if the caller's clock went back. */
static uint64_t since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static uint32_t hash(const struct neigh_cache *c, uint32_t ip)
{
	/* Fibonacci hashing: neighbours on one subnet differ in low bits. */
	return (uint32_t)(ip * 2654435761u) & (c->nbuckets - 1);
}

int neigh_create(struct neigh_cache **c, unsigned int capacity, uint64_t ttl_ns,
		 uint64_t timeout_ns, uint64_t retry_ns)
{
	struct neigh_cache *nc;

	if (capacity == 0 || capacity > NEIGH_MAX_CAPACITY || !ttl_ns || !timeout_ns ||
	    !retry_ns || ttl_ns > UINT64_MAX - timeout_ns)
		return -EINVAL;
	nc = calloc(1, sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	nc->ttl = ttl_ns;
	nc->timeout = timeout_ns;
	nc->retry = retry_ns;
	nc->capacity = capacity;
	nc->nbuckets = 1;
	while (nc->nbuckets < capacity)
		nc->nbuckets <<= 1;
	nc->bucket = malloc(nc->nbuckets * sizeof(*nc->bucket));
	nc->e = calloc(capacity, sizeof(*nc->e));
	if (!nc->bucket || !nc->e) {
		neigh_destroy(nc);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nc->nbuckets; i++)
		nc->bucket[i] = NIL;
	for (uint32_t i = 0; i < capacity; i++)
		nc->e[i].next = i + 1 < capacity ? i + 1 : NIL;
	nc->free_head = 0;
	*c = nc;
	return 0;
}

void neigh_destroy(struct neigh_cache *c)
{
	if (!c)
		return;
	free(c->bucket);
	free(c->e);
	free(c);
}

static struct neigh_entry *find(const struct neigh_cache *c, uint32_t ip)
{
	for (uint32_t i = c->bucket[hash(c, ip)]; i != NIL; i = c->e[i].next)
		if (c->e[i].ip == ip)
			return &c->e[i];
	return NULL;
}

static void remove_entry(struct neigh_cache *c, struct neigh_entry *victim)
{
	uint32_t idx = (uint32_t)(victim - c->e);
	uint32_t *link = &c->bucket[hash(c, victim->ip)];

	while (*link != idx)
		link = &c->e[*link].next;
	*link = victim->next;
	memset(victim, 0, sizeof(*victim));
	victim->next = c->free_head;
	c->free_head = idx;
	c->used--;
}

/* The non-INCOMPLETE entry with the oldest stamp, or NULL. */
static struct neigh_entry *oldest_evictable(struct neigh_cache *c)
{
	struct neigh_entry *best = NULL;

	for (uint32_t i = 0; i < c->capacity; i++) {
		struct neigh_entry *e = &c->e[i];

		if (e->state == STATE_FREE || e->state == NEIGH_INCOMPLETE)
			continue;
		if (!best || e->stamp < best->stamp)
			best = e;
	}
	return best;
}

/* A new entry for @ip (not present), zeroed; NULL if nothing can go. */
static struct neigh_entry *insert(struct neigh_cache *c, uint32_t ip)
{
	struct neigh_entry *e;
	uint32_t idx, b;

	if (c->free_head == NIL) {
		e = oldest_evictable(c);
		if (!e)
			return NULL;
		remove_entry(c, e);
	}
	idx = c->free_head;
	e = &c->e[idx];
	c->free_head = e->next;
	b = hash(c, ip);
	e->ip = ip;
	e->next = c->bucket[b];
	c->bucket[b] = idx;
	c->used++;
	return e;
}

static bool mac_usable(const uint8_t mac[6])
{
	static const uint8_t zero[6];

	/* The group bit covers broadcast and multicast. */
	return !(mac[0] & 1) && memcmp(mac, zero, 6) != 0;
}

bool neigh_learn(struct neigh_cache *c, uint32_t ip, const uint8_t mac[6], uint64_t now)
{
	struct neigh_entry *e;

	if (ip == 0 || !mac_usable(mac))
		return false;
	e = find(c, ip);
	if (!e)
		e = insert(c, ip);
	if (!e)
		return false;
	memcpy(e->mac, mac, 6);
	e->state = NEIGH_REACHABLE;
	e->stamp = now;
	return true;
}

/* (Re)start resolution in @e at @now. */
static void start_incomplete(struct neigh_entry *e, uint64_t now)
{
	memset(e->mac, 0, 6);
	e->state = NEIGH_INCOMPLETE;
	e->stamp = now;
	e->last_req = now;
}

int neigh_lookup(struct neigh_cache *c, uint32_t ip, uint64_t now, uint8_t mac[6],
		 bool *need_request)
{
	struct neigh_entry *e = find(c, ip);
	bool req = false;
	int ret = 0;

	if (e && (e->state == NEIGH_REACHABLE || e->state == NEIGH_STALE) &&
	    since(now, e->stamp) >= c->ttl + c->timeout) {
		remove_entry(c, e); /* expired: what it says is too old to use */
		e = NULL;
	}
	if (!e) {
		e = insert(c, ip);
		if (!e)
			return -ENOSPC;
		e->state = STATE_FREE; /* resolved just below */
	}

	switch (e->state) {
	case STATE_FREE:
		start_incomplete(e, now);
		req = true;
		ret = -EAGAIN;
		break;
	case NEIGH_INCOMPLETE:
		ret = -EAGAIN;
		break;
	case NEIGH_FAILED:
		if (since(now, e->stamp) < c->timeout) {
			ret = -EHOSTUNREACH;
		} else {
			start_incomplete(e, now);
			req = true;
			ret = -EAGAIN;
		}
		break;
	case NEIGH_REACHABLE:
		if (since(now, e->stamp) >= c->ttl) {
			e->state = NEIGH_STALE;
			e->last_req = now;
			req = true;
		}
		break;
	default: /* NEIGH_STALE: refresh already asked for */
		break;
	}
	if (ret == 0 && mac)
		memcpy(mac, e->mac, 6);
	if (need_request)
		*need_request = req;
	return ret;
}

int neigh_peek(const struct neigh_cache *c, uint32_t ip, uint8_t mac[6])
{
	const struct neigh_entry *e = find(c, ip);

	if (!e)
		return -ENOENT;
	if (mac)
		memcpy(mac, e->mac, 6);
	return e->state;
}

/* One entry's periodic step; returns true if it became FAILED. */
static bool tick_one(struct neigh_cache *c, struct neigh_entry *e, uint64_t now,
		     void (*send)(uint32_t ip, void *ctx), void *ctx)
{
	switch (e->state) {
	case NEIGH_INCOMPLETE:
		if (since(now, e->stamp) >= c->timeout) {
			e->state = NEIGH_FAILED;
			e->stamp = now;
			return true;
		}
		break;
	case NEIGH_FAILED:
		if (since(now, e->stamp) >= c->timeout)
			remove_entry(c, e);
		return false;
	case NEIGH_REACHABLE:
	case NEIGH_STALE:
		if (since(now, e->stamp) >= c->ttl + c->timeout) {
			remove_entry(c, e);
			return false;
		}
		if (e->state == NEIGH_REACHABLE)
			return false;
		break;
	default:
		return false;
	}
	/* INCOMPLETE or STALE, still waiting: time for another request? */
	if (since(now, e->last_req) >= c->retry) {
		e->last_req = now;
		if (send)
			send(e->ip, ctx);
	}
	return false;
}

unsigned int neigh_tick(struct neigh_cache *c, uint64_t now,
			void (*send)(uint32_t ip, void *ctx),
			void (*on_fail)(uint32_t ip, void *ctx), void *ctx)
{
	unsigned int failed = 0;

	for (uint32_t i = 0; i < c->capacity; i++) {
		struct neigh_entry *e = &c->e[i];

		if (e->state != STATE_FREE && tick_one(c, e, now, send, ctx)) {
			failed++;
			if (on_fail)
				on_fail(e->ip, ctx);
		}
	}
	return failed;
}

int neigh_foreach(const struct neigh_cache *c, uint64_t now,
		  void (*fn)(uint32_t ip, const uint8_t mac[6], int state, uint64_t age_ns,
			     void *ctx),
		  void *ctx)
{
	int n = 0;

	if (!fn)
		return -EINVAL;
	for (uint32_t i = 0; i < c->capacity; i++) {
		const struct neigh_entry *e = &c->e[i];

		if (e->state == STATE_FREE)
			continue;
		fn(e->ip, e->mac, e->state, since(now, e->stamp), ctx);
		n++;
	}
	return n;
}

unsigned int neigh_count(const struct neigh_cache *c)
{
	return c->used;
}
