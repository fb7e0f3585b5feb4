/* SPDX-License-Identifier: MIT */
/*
 * pt: the port table of machnet-nicd: which tenant owns which (local IPv4
 * address, UDP port). RX looks up (dst IP, dst port) of every received
 * datagram; TX asks whether the tenant owns (src IP, src port) of every
 * frame it sends; the control plane claims and releases ranges.
 *
 * Layout: one flat array of 65536 uint16_t per local address (128 KiB
 * each, at most PT_MAX_IPS of them), holding tenant id + 1, 0 = free. A
 * lookup is a short scan of at most PT_MAX_IPS addresses (one compare with
 * one address) and one load, with no allocation and no lock.
 *
 * Port 0 is never claimed, so it never has an owner.
 *
 * Limits: claims are counted in ports per tenant, not in ranges; the limit
 * on ranges per tenant (MN_PORT_MAX_CLAIMS) is the caller's to enforce.
 *
 * Thread-safety: none. nicd calls everything from its one thread; a caller
 * with several threads serialises writers and readers itself.
 */
#ifndef MN_DRIVERS_PORT_TABLE_H
#define MN_DRIVERS_PORT_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#define PT_MAX_IPS 8u
#define PT_MAX_TENANTS 4096u /* tenant ids 0..PT_MAX_TENANTS-1 */
#define PT_NPORTS 65536u

/*
 * Exposed only so that pt_lookup() can be inline; use the functions.
 */
struct pt_table {
	unsigned int nips;
	uint32_t ips[PT_MAX_IPS];	     /* host order, distinct, never 0 */
	uint16_t *owner[PT_MAX_IPS];	     /* [port] = tenant + 1, 0 = free */
	uint32_t nports[PT_MAX_TENANTS];     /* ports each tenant holds */
};

/* What a tenant may claim (from its config): every claimed port must lie in
 * one of @ranges ({lo, hi} inclusive, may overlap) on one of @ips. */
struct pt_allow {
	const uint32_t *ips;
	unsigned int nips;
	const uint16_t (*ranges)[2];
	unsigned int nranges;
};

/*
 * pt_create - a table for the local addresses @ips[0..@nips) (host order).
 * Returns 0 with *@t set, -EINVAL (nips 0 or > PT_MAX_IPS, an address 0
 * or repeated) or -ENOMEM. All ports start free.
 */
int pt_create(struct pt_table **t, const uint32_t *ips, unsigned int nips);

/* Free the table. NULL is fine. */
void pt_destroy(struct pt_table *t);

/*
 * pt_claim - give ports [@lo, @hi] on @ip to @tenant, all or none.
 * Returns 0 (re-claiming ports the tenant already owns is fine);
 * -EINVAL        @lo > @hi, @lo == 0, @tenant >= PT_MAX_TENANTS, @allow NULL;
 * -EADDRNOTAVAIL @ip is not local;
 * -EACCES        @ip not in @allow, or a port of the range in none of its
 *                ranges;
 * -EADDRINUSE    a port of the range belongs to another tenant.
 * Checked in that order; on error the table is unchanged.
 */
int pt_claim(struct pt_table *t, uint16_t tenant, uint32_t ip, uint16_t lo, uint16_t hi,
	     const struct pt_allow *allow);

/*
 * pt_release - free the ports of [@lo, @hi] on @ip that @tenant owns;
 * others' ports and free ports in the range are left alone.
 * Returns 0 (at least one released), -EINVAL (as pt_claim),
 * -EADDRNOTAVAIL (@ip not local) or -ENOENT (it owned none of them).
 */
int pt_release(struct pt_table *t, uint16_t tenant, uint32_t ip, uint16_t lo, uint16_t hi);

/*
 * pt_release_all - free every port @tenant owns (its control socket hung
 * up). Returns the number released. Scans at most PT_MAX_IPS x 65536
 * entries (about 1 MiB, well under a millisecond) and stops once the
 * tenant's count reaches zero: fine for an event that happens on a
 * disconnect, and free for a tenant that holds nothing.
 */
unsigned int pt_release_all(struct pt_table *t, uint16_t tenant);

/* Slot of local address @ip, or -1. */
static inline int pt_ip_slot(const struct pt_table *t, uint32_t ip)
{
	for (unsigned int i = 0; i < t->nips; i++)
		if (t->ips[i] == ip)
			return (int)i;
	return -1;
}

/*
 * pt_lookup - the tenant owning (@ip, @port), or -1 (free, or @ip not
 * local). The RX hot path: inline, no allocation, one load once the
 * address is found.
 */
static inline int pt_lookup(const struct pt_table *t, uint32_t ip, uint16_t port)
{
	int s = pt_ip_slot(t, ip);

	return s < 0 ? -1 : (int)t->owner[s][port] - 1;
}

/* pt_owns - whether @tenant owns (@ip, @port). The TX check. */
bool pt_owns(const struct pt_table *t, uint16_t tenant, uint32_t ip, uint16_t port);

/* pt_ip_index - index of @ip among the table's addresses, -1 if not local. */
int pt_ip_index(const struct pt_table *t, uint32_t ip);

/* pt_count - the number of ports @tenant holds (0 if out of range). */
unsigned int pt_count(const struct pt_table *t, uint16_t tenant);

/*
 * pt_foreach_claim - call @fn once per maximal run of consecutive ports
 * with the same owner, by address (in creation order) then port. @fn must
 * not change the table. Returns the number of calls, or -EINVAL if @fn is
 * NULL. Scans the whole table: for the admin CLI, not the datapath.
 */
int pt_foreach_claim(const struct pt_table *t,
		     void (*fn)(uint16_t tenant, uint32_t ip, uint16_t lo, uint16_t hi, void *ctx),
		     void *ctx);

#endif /* MN_DRIVERS_PORT_TABLE_H */
