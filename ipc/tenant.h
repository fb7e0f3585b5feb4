/* SPDX-License-Identifier: MIT */
/*
 * mn_tenant: control messages between an application (libmachnet, a) and
 * its tenant's protocol server (machnet-proto, p) on <runtime>/<tenant>.sock.
 *
 * Framing, HELLO and version negotiation are ipc/ctl.h's; the types below
 * start at MN_CTL_T_USER. All payload fields are little-endian, fixed width;
 * addresses and ports are in host order (the build refuses big-endian
 * hosts, so host order is little-endian). Reserved fields are sent as zero
 * and ignored on receipt.
 *
 * A connection serves one channel:
 *
 *   a: connect(<runtime>/<tenant>.sock)
 *   a <-> p: HELLO   (a: role MN_TENANT_ROLE_APP, name = the tenant it wants;
 *                     p: role MN_TENANT_ROLE_SERVER, name = its tenant)
 *   a -> p: ATTACH   p -> a: ATTACH + 3 fds (region, kick, rx; ipc/channel.h)
 *   a -> p: LISTEN / CONNECT / CLOSE / FLOW_STATS ... one at a time
 *   a -> p: DETACH, or just close(): the channel dies with the connection
 *
 * The server checks SO_PEERCRED at accept() against the tenant's allowed
 * uid/gid. A refused peer still gets its HELLO answered (so that it learns
 * the reason) and every request answered with status -EACCES; the server
 * may then close. A second ATTACH on one connection gets -EBUSY; a request
 * before ATTACH, or naming another channel_id, gets -EBADF.
 *
 * Requests and responses: the application sends one request and waits for
 * its response (same type and req_id) before the next; the server never
 * sends anything unasked, so a readable socket with no request outstanding
 * means the server hung up. A response with status < 0 carries no payload
 * and no fds; with status 0 it carries the payload in the table below,
 * checked with mn_ctl_check() against mn_tenant_resp_specs().
 *
 *   type        request payload              response payload (status 0)
 *   ATTACH      mn_tenant_attach             mn_tenant_attached + 3 fds
 *   DETACH      mn_tenant_chan               none
 *   LISTEN      mn_tenant_listen             none
 *   CONNECT     mn_tenant_connect            mn_tenant_connected
 *   CLOSE       mn_tenant_flow_req           none
 *   FLOW_STATS  mn_tenant_flow_req           mn_tenant_flow_stats
 *
 * An admin connection (HELLO role MN_TENANT_ROLE_ADMIN, name = the tenant;
 * machnetctl) attaches no channel. Its peer passes the same credential
 * check as applications (root always does), and it may send, one at a time:
 *
 *   type        request payload              response payload (status 0)
 *   STATS       none                         mn_tenant_stats
 *   FLOWS       mn_tenant_flows_req          mn_tenant_list_hdr + count *
 *                                            mn_tenant_flow_entry
 *
 * Application requests on an admin connection, and admin requests on an
 * application's, get -EBADF. The server keeps PROTO_ADMIN_CONNS connection
 * slots beyond its channel limit: an application HELLO beyond the limit
 * gets -EMFILE, a refused peer is closed after its first request (or 5 s),
 * and a peer that says no HELLO within 5 s is closed, so a tenant with
 * every channel in use can still be observed.
 *
 * After DETACH's response the server closes the connection; the channel's
 * flows are closed (FIN) and its region given up, as on a hang-up.
 *
 * Timing: every request but CONNECT is answered at once (well under a
 * millisecond of server work). CONNECT is answered when the handshake
 * completes or fails, within its timeout; never by polling.
 */
#ifndef MN_IPC_TENANT_H
#define MN_IPC_TENANT_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "ctl.h"

/* HELLO roles on <tenant>.sock. */
enum mn_tenant_role {
	MN_TENANT_ROLE_APP = 1,	   /* libmachnet; name = the tenant it wants */
	MN_TENANT_ROLE_SERVER = 2, /* machnet-proto; name = its tenant */
	MN_TENANT_ROLE_ADMIN = 3,  /* machnetctl: STATS, FLOWS */
};

enum mn_tenant_msg {
	MN_TENANT_T_ATTACH = MN_CTL_T_USER, /* 16 */
	MN_TENANT_T_DETACH,		    /* 17 */
	MN_TENANT_T_LISTEN,		    /* 18 */
	MN_TENANT_T_CONNECT,		    /* 19 */
	MN_TENANT_T_CLOSE,		    /* 20 */
	MN_TENANT_T_FLOW_STATS,		    /* 21 */
	MN_TENANT_T_STATS,		    /* 22: admin */
	MN_TENANT_T_FLOWS,		    /* 23: admin */
};

/*
 * ATTACH request. The server sizes the channel from the tenant's
 * configuration. Errors: -EACCES (credentials), -EBUSY (already attached on
 * this connection), -EMFILE (the tenant's channel limit), -ENOMEM (no
 * memory for the region), -ESHUTDOWN (the server is stopping).
 */
struct mn_tenant_attach {
	uint32_t flags;	      /* 0 */
	uint32_t reserved[3];
};
_Static_assert(sizeof(struct mn_tenant_attach) == 16, "attach is ABI");

/* ATTACH response; the geometry repeats what the region says, for logs. */
struct mn_tenant_attached {
	uint32_t channel_id;   /* names the channel in later requests */
	uint32_t nbufs;	       /* buffers in the channel's pool */
	uint32_t buf_size;     /* bytes per buffer, header included */
	uint32_t max_msg_size; /* largest message, either direction */
	uint64_t server_gen;   /* as ctrl.server_gen */
	uint32_t server_pid;
	uint32_t reserved;
};
_Static_assert(sizeof(struct mn_tenant_attached) == 32, "attached is ABI");

/* DETACH request: the channel. */
struct mn_tenant_chan {
	uint32_t channel_id;
	uint32_t reserved;
};
_Static_assert(sizeof(struct mn_tenant_chan) == 8, "chan is ABI");

/*
 * LISTEN request: deliver messages of flows that peers open to (ip, port)
 * on this channel. ip 0 means every address of the tenant. Errors:
 * -EADDRNOTAVAIL (ip is not the tenant's), -EADDRINUSE (another channel
 * listens there, or nicd refused the claim), -EINVAL (port 0), -EACCES
 * (port outside the tenant's configured ranges).
 */
struct mn_tenant_listen {
	uint32_t channel_id;
	uint32_t ip;
	uint16_t port;
	uint16_t reserved0;
	uint32_t reserved1;
};
_Static_assert(sizeof(struct mn_tenant_listen) == 16, "listen is ABI");

/* CONNECT flags. */
/* Answer at once with the chosen flow; the outcome follows on rx as
 * MN_CHAN_EV_CONNECTED or MN_CHAN_EV_FAILED. A server may refuse it with
 * -EOPNOTSUPP; libmachnet does not use it. */
#define MN_TENANT_CONNECT_F_ASYNC 0x1u

/*
 * CONNECT request: open a flow from local_ip (and local_port, 0 = an
 * ephemeral port the server picks) to remote_ip:remote_port and answer when
 * the handshake completes. Errors: -ETIMEDOUT (no answer within timeout_ms),
 * -ECONNREFUSED (the peer reset: nobody listens there), -EHOSTUNREACH (no
 * ARP answer), -EADDRNOTAVAIL (local_ip is not the tenant's), -EADDRINUSE
 * (local_port taken, or no ephemeral port left), -EMFILE (flow limit),
 * -EINVAL (remote_ip 0, remote_port 0, unknown flags).
 */
struct mn_tenant_connect {
	uint32_t channel_id;
	uint32_t local_ip;
	uint32_t remote_ip;
	uint16_t remote_port;
	uint16_t local_port;  /* 0: ephemeral */
	uint32_t timeout_ms;  /* 0: the server's default */
	uint32_t flags;	      /* MN_TENANT_CONNECT_F_* */
};
_Static_assert(sizeof(struct mn_tenant_connect) == 24, "connect is ABI");

/* CONNECT response: the flow, src = local end (as MachnetFlow_t). */
struct mn_tenant_connected {
	struct mn_chan_flow flow;
	uint32_t reserved;
};
_Static_assert(sizeof(struct mn_tenant_connected) == 16, "connected is ABI");

/*
 * CLOSE and FLOW_STATS request: a flow of this channel, src = local end
 * (either orientation is accepted: a server that finds no flow as given
 * tries it swapped, so the flow of a received message works too).
 * CLOSE: messages already queued are still delivered, then FIN; answered
 * without waiting for the peer. Errors (both): -ENOENT (no such flow on
 * this channel).
 */
struct mn_tenant_flow_req {
	uint32_t channel_id;
	uint32_t reserved0;
	struct mn_chan_flow flow;
	uint32_t reserved1;
};
_Static_assert(sizeof(struct mn_tenant_flow_req) == 24, "flow request is ABI");

/* Flow states in FLOW_STATS. */
enum mn_tenant_flow_state {
	MN_TENANT_FLOW_CONNECTING = 1,
	MN_TENANT_FLOW_ESTABLISHED = 2,
	MN_TENANT_FLOW_CLOSING = 3, /* FIN sent or received, not both acked */
	MN_TENANT_FLOW_CLOSED = 4,  /* closed both ways; lingers to re-ACK the peer */
	MN_TENANT_FLOW_FAILED = 5,  /* reserved: a failed flow is gone at once, and
				     * its channel got MN_CHAN_EV_FAILED */
};

/* FLOW_STATS response. Times in microseconds; 0 where not measured yet. */
struct mn_tenant_flow_stats {
	struct mn_chan_flow flow;   /* src = local end */
	uint32_t state;		    /* enum mn_tenant_flow_state */
	uint32_t srtt_us;	    /* smoothed RTT */
	uint32_t rttvar_us;	    /* RTT variation */
	uint32_t min_rtt_us;
	uint32_t rto_us;	    /* current retransmission timeout */
	uint32_t cwnd_bytes;	    /* congestion window */
	uint32_t peer_window_bytes; /* receive window the peer advertised */
	uint32_t inflight_bytes;    /* sent, not acknowledged */
	uint32_t reserved0;
	uint64_t tx_msgs;	    /* messages sent and acknowledged */
	uint64_t tx_bytes;
	uint64_t rx_msgs;	    /* messages delivered to the channel */
	uint64_t rx_bytes;
	uint64_t tx_pkts;	    /* data packets sent, retransmissions included */
	uint64_t rx_pkts;
	uint64_t retransmits;	    /* packets sent again, any cause */
	uint64_t fast_retransmits;  /* ... of which on SACK/dup-ack evidence */
	uint64_t timeouts;	    /* retransmission timer expirations */
	uint64_t age_ns;	    /* since the flow was created */
	uint64_t spurious_timeouts; /* of the timeouts, found spurious and undone */
	uint64_t reserved1[3];
};
_Static_assert(sizeof(struct mn_tenant_flow_stats) == 160, "flow stats are ABI");
_Static_assert(offsetof(struct mn_tenant_flow_stats, tx_msgs) == 48, "flow stats are ABI");

/*
 * STATS response (admin): the server and its counters since it started
 * (channel counters: summed over every channel, detached ones included).
 */
struct mn_tenant_stats {
	char name[32];		    /* the tenant, NUL-terminated */
	char version[16];	    /* machnet-proto's, NUL-terminated */
	uint32_t pid;
	uint32_t ip;		    /* the tenant's address, host order */
	uint64_t uptime_ns;
	uint64_t server_gen;
	uint32_t channels;	    /* attached now */
	uint32_t max_channels;	    /* limits.channels */
	uint32_t flows;		    /* flows now, any state */
	uint32_t max_flows;	    /* limits.flows */
	uint32_t nicd_connected;    /* 1 while registered with machnet-nicd */
	uint32_t reserved0;
	uint64_t nicd_reconnects;   /* registrations after the first */
	/* Transport (servers/transport.h, struct tp_stats). */
	uint64_t rx_pkts;	    /* transport packets received */
	uint64_t rx_no_flow;	    /* for no flow (answered with RST where due) */
	uint64_t rx_bad;	    /* malformed, bad connection id or state */
	uint64_t rst_sent;
	uint64_t tx_fail;	    /* packets the port could not take */
	uint64_t flows_opened;
	uint64_t flows_closed;
	uint64_t flows_failed;	    /* ended by an error: timeout, reset, ... */
	/* Between nicd and the transport. */
	uint64_t rx_not_udp;	    /* frames from nicd that were not UDP */
	uint64_t no_neigh;	    /* sends without a known next hop */
	uint64_t deliver_full;	    /* messages dropped: a channel's rx ring full */
	/* Channels (ipc/channel.h, struct mn_chan_srv_stats), summed over all. */
	uint64_t ch_tx_msgs;
	uint64_t ch_tx_bytes;
	uint64_t ch_rx_msgs;
	uint64_t ch_rx_bytes;
	uint64_t ch_rx_full;	    /* deliveries or events held back: rx full */
	uint64_t ch_bad_desc;	    /* malformed descriptors from applications */
	uint64_t ch_bad_chain;	    /* refused chains from applications */
	uint64_t ch_send_capped;    /* refills stopped by the send budget */
	uint64_t ch_recv_capped;    /* reassemblies refused by the receive budget */
	uint64_t syn_refused;	    /* SYNs answered with RST: no listener, no flow slot */
	uint64_t halfopen_dropped;  /* half-open flows that timed out or were reset */
	uint64_t nicd_bad_desc;	    /* descriptors from nicd that failed validation */
	uint64_t reserved1[5];
};
_Static_assert(sizeof(struct mn_tenant_stats) == 328, "tenant stats are ABI");
_Static_assert(offsetof(struct mn_tenant_stats, rx_pkts) == 104, "tenant stats are ABI");

/*
 * FLOWS request (admin): flows from slot @start on, at most @max (0: as
 * many as fit one message). The response's next_start continues the walk;
 * MN_TENANT_LIST_END when every slot was seen. Flows come and go between
 * requests: a walk sees each flow that lives through it exactly once.
 */
struct mn_tenant_flows_req {
	uint32_t start;
	uint32_t max;
	uint32_t reserved[2];
};
_Static_assert(sizeof(struct mn_tenant_flows_req) == 16, "flows request is ABI");

#define MN_TENANT_LIST_END 0xffffffffu

struct mn_tenant_list_hdr {
	uint32_t count;	     /* entries that follow */
	uint32_t next_start; /* for the next request, or MN_TENANT_LIST_END */
};
_Static_assert(sizeof(struct mn_tenant_list_hdr) == 8, "list header is ABI");

/* One flow: FLOW_STATS' figures and who owns it. */
struct mn_tenant_flow_entry {
	uint32_t channel_id; /* 0: not bound to a channel yet (accepted, no listener) */
	uint32_t app_pid;    /* the application holding the channel, 0 if none */
	struct mn_tenant_flow_stats st;
};
_Static_assert(sizeof(struct mn_tenant_flow_entry) == 168, "flow entry is ABI");

#define MN_TENANT_MAX_LIST_FLOWS \
	((MN_CTL_MAX_PAYLOAD - sizeof(struct mn_tenant_list_hdr)) / sizeof(struct mn_tenant_flow_entry))

/*
 * Validation tables for mn_ctl_check(): requests as the server receives
 * them, successful responses as the application receives them (check
 * status first: an error response has no payload and no fds).
 */
static inline const struct mn_ctl_spec *mn_tenant_req_specs(size_t *n)
{
	static const struct mn_ctl_spec specs[] = {
		{ MN_TENANT_T_ATTACH, sizeof(struct mn_tenant_attach),
		  sizeof(struct mn_tenant_attach), 0 },
		{ MN_TENANT_T_DETACH, sizeof(struct mn_tenant_chan),
		  sizeof(struct mn_tenant_chan), 0 },
		{ MN_TENANT_T_LISTEN, sizeof(struct mn_tenant_listen),
		  sizeof(struct mn_tenant_listen), 0 },
		{ MN_TENANT_T_CONNECT, sizeof(struct mn_tenant_connect),
		  sizeof(struct mn_tenant_connect), 0 },
		{ MN_TENANT_T_CLOSE, sizeof(struct mn_tenant_flow_req),
		  sizeof(struct mn_tenant_flow_req), 0 },
		{ MN_TENANT_T_FLOW_STATS, sizeof(struct mn_tenant_flow_req),
		  sizeof(struct mn_tenant_flow_req), 0 },
		{ MN_TENANT_T_STATS, 0, 0, 0 },
		{ MN_TENANT_T_FLOWS, sizeof(struct mn_tenant_flows_req),
		  sizeof(struct mn_tenant_flows_req), 0 },
		{ MN_CTL_T_PING, 0, 0, 0 },
	};

	*n = sizeof(specs) / sizeof(specs[0]);
	return specs;
}

static inline const struct mn_ctl_spec *mn_tenant_resp_specs(size_t *n)
{
	static const struct mn_ctl_spec specs[] = {
		{ MN_TENANT_T_ATTACH, sizeof(struct mn_tenant_attached),
		  sizeof(struct mn_tenant_attached), MN_CHAN_NFDS },
		{ MN_TENANT_T_DETACH, 0, 0, 0 },
		{ MN_TENANT_T_LISTEN, 0, 0, 0 },
		{ MN_TENANT_T_CONNECT, sizeof(struct mn_tenant_connected),
		  sizeof(struct mn_tenant_connected), 0 },
		{ MN_TENANT_T_CLOSE, 0, 0, 0 },
		{ MN_TENANT_T_FLOW_STATS, sizeof(struct mn_tenant_flow_stats),
		  sizeof(struct mn_tenant_flow_stats), 0 },
		{ MN_TENANT_T_STATS, sizeof(struct mn_tenant_stats),
		  sizeof(struct mn_tenant_stats), 0 },
		{ MN_TENANT_T_FLOWS, sizeof(struct mn_tenant_list_hdr),
		  sizeof(struct mn_tenant_list_hdr) +
			  MN_TENANT_MAX_LIST_FLOWS * sizeof(struct mn_tenant_flow_entry), 0 },
		{ MN_CTL_T_PING, 0, 0, 0 },
	};

	*n = sizeof(specs) / sizeof(specs[0]);
	return specs;
}

/* Printable name of a tenant message type ("attach", ...), NULL if none. */
static inline const char *mn_tenant_type_name(uint16_t type)
{
	static const char *const names[] = {
		"attach", "detach", "listen", "connect", "close", "flow_stats", "stats", "flows",
	};

	if (type < MN_TENANT_T_ATTACH || type > MN_TENANT_T_FLOWS)
		return NULL;
	return names[type - MN_TENANT_T_ATTACH];
}

#endif /* MN_IPC_TENANT_H */
