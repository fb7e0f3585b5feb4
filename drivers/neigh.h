/* SPDX-License-Identifier: MIT */
/*
 * neigh: machnet-nicd's ARP neighbour cache: IPv4 next hop -> MAC, with
 * resolution, expiry and refresh. The cache decides when an ARP request is
 * due; the caller builds and sends it. Time is always passed in (ns, from
 * one monotonic clock): nothing here reads a clock, so tests are exact.
 *
 * States and transitions (ttl, timeout, retry given to neigh_create()):
 *
 *   (none) --lookup--> INCOMPLETE   request now; tick re-sends every retry
 *   INCOMPLETE --learn--> REACHABLE
 *   INCOMPLETE --tick, timeout passed--> FAILED   on_fail(ip) once
 *   FAILED: lookups answer -EHOSTUNREACH for a hold-down of timeout, then
 *           the entry is dropped (tick) or restarted (lookup) -> INCOMPLETE
 *   REACHABLE --lookup, ttl passed since confirmed--> STALE   request now;
 *           tick re-sends every retry; the old MAC is still answered
 *   STALE / REACHABLE --learn--> REACHABLE (confirmed = now)
 *   STALE / REACHABLE --ttl + timeout passed since confirmed--> removed
 *           (a REACHABLE entry nobody looked up is not refreshed: an idle
 *           neighbour costs no ARP traffic)
 *
 * Only neigh_tick() moves an entry to FAILED, so on_fail() is called
 * exactly once per failed resolution; until the tick, a lookup of an
 * INCOMPLETE entry past its timeout still answers -EAGAIN.
 *
 * Capacity is fixed. A new entry takes a free slot, else evicts the entry
 * that is not INCOMPLETE with the oldest time stamp (confirmation for
 * REACHABLE/STALE, failure for FAILED); in-progress resolutions are never
 * evicted. Finding the victim scans the cache: O(capacity), only when full.
 *
 * Thread-safety: none; nicd uses it from its one thread. Callbacks must not
 * call back into the cache.
 */
#ifndef MN_DRIVERS_NEIGH_H
#define MN_DRIVERS_NEIGH_H

#include <stdbool.h>
#include <stdint.h>

#define NEIGH_MAX_CAPACITY 65536u

enum neigh_state {
	NEIGH_INCOMPLETE = 1, /* request sent, no answer yet */
	NEIGH_REACHABLE,      /* confirmed less than ttl ago */
	NEIGH_STALE,	      /* older than ttl, refresh requested */
	NEIGH_FAILED,	      /* no answer in timeout; hold-down */
};

struct neigh_cache;

/*
 * neigh_create - an empty cache of @capacity entries (1..NEIGH_MAX_CAPACITY).
 * @ttl_ns:     how long an answer is trusted before it is refreshed.
 * @timeout_ns: how long a resolution (or a refresh) may wait for an
 *              answer; also the hold-down of a failed entry.
 * @retry_ns:   interval between requests while waiting.
 * Returns 0 with *@c set, -EINVAL (a zero argument, capacity too large,
 * ttl + timeout beyond 64 bits) or -ENOMEM.
 */
int neigh_create(struct neigh_cache **c, unsigned int capacity, uint64_t ttl_ns,
		 uint64_t timeout_ns, uint64_t retry_ns);

/* Free the cache. NULL is fine. */
void neigh_destroy(struct neigh_cache *c);

/*
 * neigh_learn - @ip is at @mac, as of @now: from an ARP request or reply
 * of a host on our subnet (which ones to trust is the caller's decision).
 * Creates the entry if needed (evicting as above; dropped silently if
 * every entry is INCOMPLETE) and makes it REACHABLE. Ignores @ip 0 (RFC
 * 5227 probes) and a zero, broadcast or multicast @mac. Returns true if the
 * entry now holds @mac (false: ignored, or no entry could be made).
 */
bool neigh_learn(struct neigh_cache *c, uint32_t ip, const uint8_t mac[6], uint64_t now);

/*
 * neigh_lookup - the MAC of @ip.
 * @mac:          filled when 0 is returned (may be NULL).
 * @need_request: set true when the caller must send an ARP request for
 *                @ip now, false otherwise (may be NULL).
 * Returns
 *   0             @mac filled: REACHABLE, or STALE (still used while its
 *                 refresh runs; *@need_request true the first time);
 *   -EAGAIN       resolution in progress (an entry is created on the first
 *                 lookup, with *@need_request true; retries are the tick's);
 *   -EHOSTUNREACH resolution failed less than timeout ago;
 *   -ENOSPC       no entry exists, the cache is full and every entry is
 *                 INCOMPLETE.
 */
int neigh_lookup(struct neigh_cache *c, uint32_t ip, uint64_t now, uint8_t mac[6],
		 bool *need_request);

/*
 * neigh_peek - state of @ip (enum neigh_state) and its MAC (zeros while
 * INCOMPLETE or FAILED; @mac may be NULL), or -ENOENT. Changes nothing:
 * for send callbacks choosing unicast or broadcast, and for tests.
 */
int neigh_peek(const struct neigh_cache *c, uint32_t ip, uint8_t mac[6]);

/*
 * neigh_tick - periodic work at @now, every few ms:
 *   INCOMPLETE past timeout     -> FAILED, on_fail(ip, ctx);
 *   INCOMPLETE or STALE whose last request is retry old -> send(ip, ctx);
 *   STALE/REACHABLE past ttl + timeout since confirmed, FAILED past its
 *   hold-down                   -> removed.
 * @send and @on_fail may be NULL. Returns the number of entries that
 * became FAILED.
 */
unsigned int neigh_tick(struct neigh_cache *c, uint64_t now,
			void (*send)(uint32_t ip, void *ctx),
			void (*on_fail)(uint32_t ip, void *ctx), void *ctx);

/*
 * neigh_foreach - call @fn for each entry: its MAC (zeros if none), state
 * (enum neigh_state) and age at @now (since confirmation for REACHABLE and
 * STALE, since the state began for INCOMPLETE and FAILED). Returns the
 * number of entries, or -EINVAL if @fn is NULL. For the admin CLI.
 */
int neigh_foreach(const struct neigh_cache *c, uint64_t now,
		  void (*fn)(uint32_t ip, const uint8_t mac[6], int state, uint64_t age_ns,
			     void *ctx),
		  void *ctx);

/* neigh_count - entries in use. */
unsigned int neigh_count(const struct neigh_cache *c);

#endif /* MN_DRIVERS_NEIGH_H */
