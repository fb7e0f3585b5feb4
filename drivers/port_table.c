/* SPDX-License-Identifier: MIT */
#include "port_table.h"

#include <errno.h>
#include <stdlib.h>

int pt_create(struct pt_table **t, const uint32_t *ips, unsigned int nips)
{
	struct pt_table *nt;
	uint16_t *owners;

	if (nips == 0 || nips > PT_MAX_IPS)
		return -EINVAL;
	for (unsigned int i = 0; i < nips; i++) {
		if (ips[i] == 0)
			return -EINVAL;
		for (unsigned int j = 0; j < i; j++)
			if (ips[j] == ips[i])
				return -EINVAL;
	}

	nt = calloc(1, sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	/* One block for all addresses: owner[0] is what pt_destroy() frees. */
	owners = calloc((size_t)nips * PT_NPORTS, sizeof(*owners));
	if (!owners) {
		free(nt);
		return -ENOMEM;
	}
	nt->nips = nips;
	for (unsigned int i = 0; i < nips; i++) {
		nt->ips[i] = ips[i];
		nt->owner[i] = owners + (size_t)i * PT_NPORTS;
	}
	*t = nt;
	return 0;
}

void pt_destroy(struct pt_table *t)
{
	if (!t)
		return;
	free(t->owner[0]);
	free(t);
}

static bool ip_allowed(const struct pt_allow *allow, uint32_t ip)
{
	for (unsigned int i = 0; i < allow->nips; i++)
		if (allow->ips[i] == ip)
			return true;
	return false;
}

/*
 * Whether the union of the allowed ranges covers [lo, hi]: walk from lo,
 * each step jumping past the furthest-reaching range that contains the
 * current port. O(nranges^2) at worst, on a control request.
 */
static bool ports_allowed(const struct pt_allow *allow, uint16_t lo, uint16_t hi)
{
	uint32_t p = lo;

	while (p <= hi) {
		uint32_t reach = 0;

		for (unsigned int i = 0; i < allow->nranges; i++) {
			uint32_t rlo = allow->ranges[i][0], rhi = allow->ranges[i][1];

			if (rlo <= p && p <= rhi && rhi + 1 > reach)
				reach = rhi + 1;
		}
		if (reach == 0)
			return false;
		p = reach;
	}
	return true;
}

static int check_args(const struct pt_table *t, uint16_t tenant, uint32_t ip, uint16_t lo,
		      uint16_t hi)
{
	if (lo > hi || lo == 0 || tenant >= PT_MAX_TENANTS)
		return -EINVAL;
	return pt_ip_slot(t, ip) < 0 ? -EADDRNOTAVAIL : 0;
}

int pt_claim(struct pt_table *t, uint16_t tenant, uint32_t ip, uint16_t lo, uint16_t hi,
	     const struct pt_allow *allow)
{
	const uint16_t mine = (uint16_t)(tenant + 1);
	uint16_t *owner;
	int err;

	if (!allow)
		return -EINVAL;
	err = check_args(t, tenant, ip, lo, hi);
	if (err)
		return err;
	if (!ip_allowed(allow, ip) || !ports_allowed(allow, lo, hi))
		return -EACCES;

	/* Two passes make it all-or-nothing: check every port, then write. */
	owner = t->owner[pt_ip_slot(t, ip)];
	for (uint32_t p = lo; p <= hi; p++)
		if (owner[p] != 0 && owner[p] != mine)
			return -EADDRINUSE;
	for (uint32_t p = lo; p <= hi; p++) {
		if (owner[p] == 0) {
			owner[p] = mine;
			t->nports[tenant]++;
		}
	}
	return 0;
}

int pt_release(struct pt_table *t, uint16_t tenant, uint32_t ip, uint16_t lo, uint16_t hi)
{
	const uint16_t mine = (uint16_t)(tenant + 1);
	uint16_t *owner;
	uint32_t n = 0;
	int err = check_args(t, tenant, ip, lo, hi);

	if (err)
		return err;
	owner = t->owner[pt_ip_slot(t, ip)];
	for (uint32_t p = lo; p <= hi; p++) {
		if (owner[p] == mine) {
			owner[p] = 0;
			n++;
		}
	}
	t->nports[tenant] -= n;
	return n ? 0 : -ENOENT;
}

unsigned int pt_release_all(struct pt_table *t, uint16_t tenant)
{
	const uint16_t mine = (uint16_t)(tenant + 1);
	unsigned int n = 0;

	if (tenant >= PT_MAX_TENANTS)
		return 0;
	for (unsigned int i = 0; i < t->nips && t->nports[tenant]; i++) {
		uint16_t *owner = t->owner[i];

		for (uint32_t p = 1; p < PT_NPORTS && t->nports[tenant]; p++) {
			if (owner[p] == mine) {
				owner[p] = 0;
				t->nports[tenant]--;
				n++;
			}
		}
	}
	return n;
}

bool pt_owns(const struct pt_table *t, uint16_t tenant, uint32_t ip, uint16_t port)
{
	return tenant < PT_MAX_TENANTS && pt_lookup(t, ip, port) == (int)tenant;
}

int pt_ip_index(const struct pt_table *t, uint32_t ip)
{
	return pt_ip_slot(t, ip);
}

unsigned int pt_count(const struct pt_table *t, uint16_t tenant)
{
	return tenant < PT_MAX_TENANTS ? t->nports[tenant] : 0;
}

int pt_foreach_claim(const struct pt_table *t,
		     void (*fn)(uint16_t tenant, uint32_t ip, uint16_t lo, uint16_t hi, void *ctx),
		     void *ctx)
{
	int calls = 0;

	if (!fn)
		return -EINVAL;
	for (unsigned int i = 0; i < t->nips; i++) {
		const uint16_t *owner = t->owner[i];
		uint32_t p = 1;

		while (p < PT_NPORTS) {
			uint32_t start = p;
			uint16_t who = owner[p];

			while (p < PT_NPORTS && owner[p] == who)
				p++;
			if (who) {
				fn((uint16_t)(who - 1), t->ips[i], (uint16_t)start, (uint16_t)(p - 1),
				   ctx);
				calls++;
			}
		}
	}
	return calls;
}
