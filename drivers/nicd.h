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
#include "ctl.h"
#include "dport.h"
#include "echo.h"
#include "neigh.h"
#include "port.h"
#include "port_table.h"
#include "tenant.h"

#define NICD_MAX_CLIENTS 128
#define NICD_MAX_PENDING 256 /* RESOLVE requests waiting for ARP */
/* Answers never wait: a client asks one thing at a time, so its socket
 * has room; one that lets answers pile up is closed instead of stalling
 * the data path, which runs in the same thread. */
#define NICD_CTL_TIMEOUT_MS 0
/* A client that has not said HELLO by then is closed: its slot is for
 * someone who will. */
#define NICD_HELLO_NS (5 * 1000000000ull)

struct nicd_client {
	int fd;		/* -1: free slot */
	uint32_t role;	/* MN_PORT_ROLE_*, 0 before HELLO */
	int tenant;	/* index of the tenant it registered, -1 */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	struct mn_ctl_rx rx; /* the request being received (never waited for) */
	uint64_t since_ns;   /* accepted at */
};

struct nicd_pending {
	bool used;
	int client;	/* index into clients */
	uint32_t req_id;
	uint32_t ip;
	uint32_t next_hop;
	uint64_t deadline_ns;
};

/* PING outcomes since start; kept here, not in STATS (whose layout has no
 * room), and logged when nicd stops. */
struct nicd_ping_stats {
	uint64_t requests;    /* PING requests accepted into the table */
	uint64_t echo_tx;     /* echo requests sent */
	uint64_t matched;     /* echo replies that answered a PING */
	uint64_t unmatched;   /* echo replies to us that matched none: dropped */
	uint64_t timeouts;    /* PINGs answered -ETIMEDOUT */
	uint64_t unreachable; /* PINGs answered -EHOSTUNREACH (no ARP answer) */
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
	struct echo_table echo;	     /* PINGs in flight */
	struct nicd_ping_stats ping_st;
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

/*
 * datapath.c: send an ICMP echo request to @dst_ip at @dst_mac from our
 * address on its subnet (@next_hop's subnet when routed), with @ident, @seq
 * and @dlen bytes of data, on queue 0. Returns 0 once the NIC took it,
 * -EMSGSIZE if it does not fit an mbuf, -ENOBUFS if no mbuf was free or
 * the NIC refused it (counted as tx_no_mbuf / tx_nic_full).
 */
int dp_send_icmp_echo(struct nicd *n, const uint8_t dst_mac[6], uint32_t dst_ip,
		      uint32_t next_hop, uint16_t ident, uint16_t seq, uint16_t dlen);

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

struct pkt_info;

/*
 * ping.c: PING requests (ipc/port.h), answered asynchronously like RESOLVE.
 * All run on nicd's one thread.
 */
/* Start a PING for client @ci: answers errors at once, else the request
 * waits in n->echo. Returns what sending an answer returned (0 or -errno:
 * the connection is then unusable). */
int ping_request(struct nicd *n, int ci, const struct mn_ctl_msg *m);
/* ARP answered for @ip: send the requests waiting for it. */
void ping_neigh_resolved(struct nicd *n, uint32_t ip, const uint8_t mac[6]);
/* ARP for @ip failed: answer the PINGs waiting for it -EHOSTUNREACH. */
void ping_neigh_failed(struct nicd *n, uint32_t ip);
/* An echo reply to one of our addresses, received at @now: answers its
 * PING and returns true, or counts it unmatched and returns false (the
 * caller drops it). */
bool ping_echo_reply(struct nicd *n, const struct pkt_info *pi, uint64_t now);
/* Answer PINGs past their deadline: -ETIMEDOUT, or -EHOSTUNREACH while
 * still resolving. */
void ping_tick(struct nicd *n, uint64_t now);
/* Client @ci is gone: forget its PINGs. */
void ping_forget_client(struct nicd *n, int ci);
/* Echo requests waiting for their reply (nicd then polls without sleeping,
 * so the round-trip time measures the wire, not its sleep). */
unsigned int ping_in_flight(const struct nicd *n);
/* Log the counters in n->ping_st (at exit). */
void ping_log_stats(const struct nicd *n);

#endif /* MN_DRIVERS_NICD_H */
