/* SPDX-License-Identifier: MIT */
/*
 * mctl_proto: machnetctl's view of the protocol servers. It finds tenants
 * by their sockets (<runtime>/<NAME>.sock), asks each as an admin
 * (ipc/tenant.h: STATS, FLOWS) and prints tables or JSON. Single-threaded,
 * like machnetctl.
 */
#ifndef MN_TOOLS_MCTL_PROTO_H
#define MN_TOOLS_MCTL_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "tenant.h"

/* What one protocol server said, or why it said nothing. */
struct mctl_tenant {
	char name[32];
	int err;			    /* 0, or -errno: not reachable, refused */
	struct mn_tenant_stats st;	    /* valid when err == 0 */
	struct mn_tenant_flow_entry *flows; /* nflows entries (malloc'd), or NULL */
	uint32_t nflows;
	int flows_err;			    /* 0, or why the flow list is missing */
};

/*
 * mctl_tenants_query - find the tenants of @rundir (every NAME.sock except
 * nicd.sock, plus the @nextra names in @extra, e.g. those nicd knows) or
 * just @only when it is not NULL, and ask each for STATS and, with
 * @want_flows, every flow. Returns the number of entries in *@out (sorted
 * by name; free with mctl_tenants_free()), or -ENOMEM. A tenant that does
 * not answer is listed with its error.
 */
int mctl_tenants_query(const char *rundir, const char *only, const char (*extra)[32],
		       uint32_t nextra, bool want_flows, struct mctl_tenant **out);
void mctl_tenants_free(struct mctl_tenant *t, int n);

/* JSON: one array element per tenant (no surrounding brackets). */
void mctl_tenants_json(const struct mctl_tenant *t, int n, bool with_flows);
/* Tables: one summary line per tenant, then counters that are not zero. */
void mctl_tenants_table(const struct mctl_tenant *t, int n);
/* Tables: every flow of every tenant. */
void mctl_flows_table(const struct mctl_tenant *t, int n);

/*
 * mctl_cmd_flows - `machnetctl flows [NAME]`. Returns machnetctl's exit
 * status: 0; 3 (NAME, or every tenant, not running); 4 (refused: the
 * credentials); 1 (another error).
 */
int mctl_cmd_flows(const char *rundir, const char *only, bool json);

#endif /* MN_TOOLS_MCTL_PROTO_H */
