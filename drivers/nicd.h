/* SPDX-License-Identifier: MIT */
/*
 * machnet-nicd's process state, shared by its modules: the port, the
 * tenants, the port table, the neighbour cache, and the control clients.
 * One thread runs everything (datapath and control) in nicd_run().
 */
#ifndef MN_DRIVERS_NICD_H
#define MN_DRIVERS_NICD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "dport.h"
#include "neigh.h"
#include "port.h"
#include "port_table.h"
#include "tenant.h"

#define NICD_MAX_CLIENTS 128
#define NICD_MAX_PENDING 256 /* RESOLVE requests waiting for ARP */
#define NICD_CTL_TIMEOUT_MS 1000

struct nicd_client {
	int fd;		/* -1: free slot */
	uint32_t role;	/* MN_PORT_ROLE_*, 0 before HELLO */
	int tenant;	/* index of the tenant it registered, -1 */
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

struct nicd_pending {
	bool used;
	int client;	/* index into clients */
	uint32_t req_id;
	uint32_t ip;
	uint32_t next_hop;
	uint64_t deadline_ns;
};

struct nicd {
	struct nicd_cfg cfg;
	struct dport port;
	struct pt_table *pt;
	struct neigh_cache *neigh;
	struct tnt tenants[NICD_MAX_TENANTS];
	struct nicd_client clients[NICD_MAX_CLIENTS];
	struct nicd_pending pending[NICD_MAX_PENDING];
	struct mn_port_counters queue_c[MN_PORT_MAX_QUEUES];
	struct mn_port_stats_hdr st; /* global counters (st.port = totals) */
	int listen_fd;
	int epfd;
	uint32_t generation;
	uint64_t start_ns;
	volatile int stop;
};

/* Monotonic time in ns. */
uint64_t nicd_now_ns(void);

/* datapath.c: one pass over the NIC queues and every tenant; returns the
 * number of frames moved (0 = idle). */
unsigned int dp_poll(struct nicd *n);

/* datapath.c: send an ARP request for @ip (neighbour resolution). */
void dp_send_arp_request(struct nicd *n, uint32_t ip);

/* ctlsrv.c: control sockets. */
int csrv_open(struct nicd *n);
void csrv_close(struct nicd *n);
/* Handle control and wake-up events, waiting up to @timeout_ns (0 = don't
 * wait). Returns the number of events or -errno. */
int csrv_poll(struct nicd *n, int64_t timeout_ns);
/* ARP taught us @ip: answer RESOLVE requests waiting for it. */
void csrv_neigh_resolved(struct nicd *n, uint32_t ip, const uint8_t mac[6]);
/* Periodic work: ARP retries and RESOLVE time-outs. */
void csrv_tick(struct nicd *n);
/* Route: the next hop for @ip (itself on a local subnet, else the gateway),
 * 0 if unreachable. */
uint32_t nicd_next_hop(const struct nicd *n, uint32_t ip);

#endif /* MN_DRIVERS_NICD_H */
