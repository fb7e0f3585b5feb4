/* SPDX-License-Identifier: MIT */
/*
 * machnet-proto's process state, shared by its modules:
 *   proto_main.c  start-up, the poll loop, signals
 *   proto_ctl.c   <runtime>/<tenant>.sock: applications, channels, LISTEN
 *   proto_net.c   frames <-> transport: the nicd port, neighbours, flows
 * One thread runs everything.
 */
#ifndef MN_SERVERS_PROTO_H
#define MN_SERVERS_PROTO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "channel.h"
#include "ctl.h"
#include "portc.h"
#include "proto_config.h"
#include "tenant.h"

#define PROTO_MAX_LISTENS 256
#define PROTO_MAX_NEIGH 256
#define PROTO_CTL_TIMEOUT_MS 1000
/* A CONNECT with timeout_ms 0 waits this long for the handshake. */
#define PROTO_CONNECT_MS 5000u
/* Answers to applications and machnetctl never wait: a peer asks one thing
 * at a time, so its socket always has room; one that lets answers pile up
 * is closed rather than allowed to stall the data path. */
#define PROTO_REPLY_TIMEOUT_MS 0
/* A connection that has not said HELLO (or that the credential check
 * refused) by then is closed: its slot is for someone who will. */
#define PROTO_HELLO_NS (5 * 1000000000ull)
/* Connection slots beyond limits.channels: machnetctl can always get in. */
#define PROTO_ADMIN_CONNS 4

/* One application connection; it serves at most one channel. */
struct proto_conn {
	int fd;		    /* -1: free slot */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool hello;	    /* HELLO answered */
	bool admin;	    /* HELLO role ADMIN: STATS and FLOWS only */
	bool allowed;	    /* credentials match the tenant's app_uid/app_gid */
	bool attached;	    /* srv is live */
	uint32_t channel_id;
	struct mn_chan_srv srv;
	uint32_t *idx;	    /* scratch chain, max_chain entries */
	/* A CONNECT waiting for its handshake: answered from proto_net. */
	bool connect_pending;
	uint32_t connect_req_id;
	struct mn_ctl_rx rx; /* the request being received (never waited for) */
	uint64_t since_ns;   /* accepted at */
};

struct proto_listen {
	bool used;
	uint32_t ip;
	uint16_t port;
	int conn;	    /* index into conns */
};

struct proto_neigh {
	uint32_t ip;
	uint8_t mac[6];
	bool valid;
};

struct proto_net; /* proto_net.c: transport state and flows */

struct proto {
	struct proto_cfg cfg;
	struct portc port;
	struct proto_conn *conns;	/* nconns entries */
	uint32_t nconns;		/* cfg.channels + PROTO_ADMIN_CONNS */
	uint32_t nattached;		/* channels attached now (<= cfg.channels) */
	struct mn_chan_srv_stats gone;	/* counters of channels detached since start */
	struct proto_listen listens[PROTO_MAX_LISTENS];
	struct proto_neigh neigh[PROTO_MAX_NEIGH];
	struct proto_net *net;
	int listen_fd;
	int epfd;
	uint32_t next_channel_id;
	uint64_t server_gen;
	uint64_t start_ns;
	uint64_t reaped_ns;		/* last look for silent connections */
	volatile int stop;
	volatile int dump;	/* SIGUSR1: log counters at the next pass */
};

uint64_t proto_now_ns(void);

/* proto_ctl.c */
int pctl_open(struct proto *p);
void pctl_close(struct proto *p);
/* Serve control and wake-up events, waiting up to @timeout_ns. */
int pctl_poll(struct proto *p, int64_t timeout_ns);
/* The channel listening on (ip, port), or -1. */
int pctl_listener(const struct proto *p, uint32_t ip, uint16_t port);
/* Answer a pending CONNECT of connection @ci: 0 with @flow, or -errno. */
void pctl_connect_done(struct proto *p, int ci, int status, const struct mn_chan_flow *flow);

/* proto_net.c */
int pnet_open(struct proto *p);
void pnet_close(struct proto *p);
/* One pass: nicd rx -> transport, channels' tx -> transport, timers,
 * completions. Returns the work done (0 = idle). */
unsigned int pnet_poll(struct proto *p);
/* Requests from applications. */
int pnet_connect(struct proto *p, int ci, const struct mn_tenant_connect *req,
		 struct mn_chan_flow *flow);
int pnet_close_flow(struct proto *p, int ci, const struct mn_chan_flow *flow);
int pnet_flow_stats(struct proto *p, int ci, const struct mn_chan_flow *flow,
		    struct mn_tenant_flow_stats *out);
/* A channel is going away: close (FIN) its flows, forget it. */
void pnet_channel_gone(struct proto *p, int ci);
/* Whether the port has frames queued or a timer is about due (before
 * sleeping; the channels are checked by their own sleep handshake). */
bool pnet_pending(struct proto *p);
/* The transport's next timer (monotonic ns; UINT64_MAX: none). */
uint64_t pnet_next_deadline(struct proto *p);
/* Buffers to keep on a channel's fill ring. */
uint32_t pnet_fill_target(const struct mn_chan_srv *s);
/* Top up a channel's fill ring, within the channel's send budget. */
void pnet_refill(struct mn_chan_srv *s);
/* Admin requests: the transport's and glue counters into @out (the rest
 * of it is proto_ctl's), and flows from slot @start (at most @max entries,
 * *@next the slot to continue from or MN_TENANT_LIST_END). */
void pnet_stats(struct proto *p, struct mn_tenant_stats *out);
uint32_t pnet_flows(struct proto *p, uint32_t start, uint32_t max,
		    struct mn_tenant_flow_entry *out, uint32_t *next);
/* Log the transport's counters and every flow's figures (SIGUSR1). */
void pnet_dump(struct proto *p);
/* Accept connections to (ip, port) (ip 0: any of ours). */
int pnet_listen(struct proto *p, uint32_t ip, uint16_t port);

#endif /* MN_SERVERS_PROTO_H */
