/* SPDX-License-Identifier: MIT */
/*
 * machnet.h - the application API of machnet (libmachnet.so).
 *
 * The first nine functions, the three types and their return conventions
 * are Machnet's (microsoft/machnet, src/ext/machnet.h): an application
 * written for Machnet builds against this header unchanged, from C or C++.
 * The rest are additions, all prefixed machnet_.
 *
 * Model. machnet_attach() opens a channel to the tenant's protocol server
 * (machnet-proto): shared-memory rings and message buffers, plus a unix
 * socket for control requests. A channel carries any number of flows; a
 * flow is a UDP 4-tuple (MachnetFlow_t) along which whole messages of 1 B
 * to 8 MiB are delivered reliably and in order. Sending copies the message
 * into the channel and returns at once; receiving copies the next message
 * out. Nothing on the data path enters the kernel, except an eventfd write
 * to wake a sleeping server or receiver.
 *
 * Environment:
 *   MACHNET_TENANT       tenant to attach to (default "default"): the
 *                        channel comes from <runtime dir>/<tenant>.sock.
 *                        1..31 characters of [A-Za-z0-9._-], not starting
 *                        with '.'.
 *   MACHNET_RUNTIME_DIR  runtime directory (default "/run/machnet").
 *   MACHNET_LOG_LEVEL    err, warn, info or debug: what the library logs to
 *                        stderr (default: the ipc default, info).
 * They are read by machnet_init() and by every machnet_attach().
 *
 * Errors: every function that returns -1 (or NULL) sets errno; the values
 * each can set are listed with it. EINVAL also means a NULL channel handle
 * (a detached one is caught on a best-effort basis only: do not use it).
 * Functions never print on success.
 *
 * Threads: every function may be called from any thread, concurrently on
 * the same channel, except machnet_detach(), which must not race with any
 * other call on that channel. Senders serialise with senders, receivers with
 * receivers and control requests with control requests, each on its own
 * lock: a sending thread and a receiving thread never wait for each other.
 *
 * Byte order: addresses and ports in MachnetFlow_t and in the arguments
 * below are in host byte order; IP addresses in strings are dotted quads.
 */
#ifndef MACHNET_H_
#define MACHNET_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest message, in bytes (Machnet's value; a tenant may set it lower). */
#define MACHNET_MSG_MAX_LEN (8u * 1024u * 1024u)

#define MACHNET_DEFAULT_TENANT "default"
#define MACHNET_DEFAULT_RUNTIME_DIR "/run/machnet"

/* Time machnet_connect() allows the handshake. */
#define MACHNET_CONNECT_TIMEOUT_MS 5000

/*
 * A flow: the UDP 4-tuple, host byte order. As returned by machnet_connect()
 * src is the local end and dst the remote one; a received message reports
 * src = the sender, dst = the local end, so a reply swaps them.
 */
typedef struct MachnetFlow {
	uint32_t src_ip;
	uint32_t dst_ip;
	uint16_t src_port;
	uint16_t dst_port;
} MachnetFlow_t;

/* One piece of a scattered message, like struct iovec. */
typedef struct MachnetIovec {
	void *base;
	size_t len;
} MachnetIovec_t;

/*
 * A message, like struct msghdr. Send: msg_size bytes are gathered from
 * msg_iov[0..msg_iovlen) (which must hold at least that many), to
 * flow_info; flags are passed to the server, which ignores the bits it does
 * not know. Receive: the message is scattered into msg_iov; msg_size,
 * flow_info and flags (0) are set.
 */
typedef struct MachnetMsgHdr {
	uint32_t msg_size;
	MachnetFlow_t flow_info;
	MachnetIovec_t *msg_iov;
	size_t msg_iovlen;
	uint16_t flags;
} MachnetMsgHdr_t;

/* Flow states in struct MachnetFlowStats. */
enum MachnetFlowState {
	MACHNET_FLOW_CONNECTING = 1,
	MACHNET_FLOW_ESTABLISHED = 2,
	MACHNET_FLOW_CLOSING = 3,
	MACHNET_FLOW_CLOSED = 4,
	MACHNET_FLOW_FAILED = 5,
};

/* Per-flow figures from the protocol server (machnet_flow_stats()).
 * Times in microseconds, 0 where not measured yet. */
struct MachnetFlowStats {
	MachnetFlow_t flow;	    /* src = local end */
	uint32_t state;		    /* enum MachnetFlowState */
	uint32_t srtt_us;	    /* smoothed round-trip time */
	uint32_t rttvar_us;	    /* its variation */
	uint32_t min_rtt_us;
	uint32_t rto_us;	    /* retransmission timeout */
	uint32_t cwnd_bytes;	    /* congestion window */
	uint32_t peer_window_bytes; /* receive window the peer advertised */
	uint32_t inflight_bytes;    /* sent, not yet acknowledged */
	uint64_t tx_msgs;	    /* messages sent and acknowledged */
	uint64_t tx_bytes;
	uint64_t rx_msgs;	    /* messages received */
	uint64_t rx_bytes;
	uint64_t tx_pkts;	    /* data packets, retransmissions included */
	uint64_t rx_pkts;
	uint64_t retransmits;	    /* packets sent again, any cause */
	uint64_t fast_retransmits;  /* of which on SACK / duplicate-ack evidence */
	uint64_t timeouts;	    /* retransmission timer expirations */
	uint64_t age_ns;	    /* since the flow was created */
};

/* What the library saw on one channel (machnet_channel_counters()). */
struct MachnetChannelCounters {
	uint32_t channel_id;
	uint32_t nbufs;		 /* buffers in the channel */
	uint32_t buf_size;	 /* bytes per buffer, 16 of them header */
	uint32_t max_msg_size;	 /* largest message this channel takes */
	uint32_t bufs_cached;	 /* buffers the library holds for sending */
	uint32_t reserved;
	uint64_t tx_msgs;	 /* messages handed to the server */
	uint64_t tx_bytes;
	uint64_t tx_refused;	 /* send calls that returned -1 */
	uint64_t rx_msgs;	 /* messages received */
	uint64_t rx_bytes;
	uint64_t flow_events;	 /* flow events (failed, closed, ...) seen */
	uint64_t events_dropped; /* flow errors lost: the queue was full */
	uint64_t bad_from_server; /* malformed descriptors or chains dropped */
};

/*
 * machnet_init - check that the tenant's protocol server answers.
 * Reads the environment, connects to <runtime dir>/<tenant>.sock and
 * exchanges HELLO. Optional: machnet_attach() works without it. Idempotent.
 * Returns 0, or -1 with errno: EINVAL (MACHNET_TENANT invalid),
 * ENAMETOOLONG (socket path too long), ENOENT / ECONNREFUSED (no server
 * running for the tenant), EPROTO (the peer is not that tenant's server),
 * EPROTONOSUPPORT (no common protocol version), ETIMEDOUT.
 */
int machnet_init(void);

/*
 * machnet_attach - open a new channel.
 * Returns an opaque channel handle, or NULL with errno: those of
 * machnet_init(), EACCES (this uid/gid may not use the tenant), EMFILE (the
 * tenant's channel limit), ENOMEM, ESHUTDOWN (the server is stopping),
 * EBADMSG, ERANGE, EPROTOTYPE, EPERM or EPROTONOSUPPORT (the channel the
 * server sent is malformed, unsealed or of another ABI version: refused
 * before use).
 */
void *machnet_attach(void);

/*
 * machnet_listen - receive on this channel the messages of flows that peers
 * open to @local_ip:@port. Answered in well under a millisecond.
 * Returns 0, or -1 with errno: EINVAL (bad channel or address, port 0),
 * EADDRNOTAVAIL (@local_ip is not the tenant's), EADDRINUSE (already
 * listened on), EACCES (port outside the tenant's ranges), ENOTCONN /
 * ECONNRESET (the server is gone), ETIMEDOUT.
 */
int machnet_listen(void *channel_ctx, const char *local_ip, uint16_t port);

/*
 * machnet_connect - open a flow from @local_ip (an ephemeral port the
 * server picks) to @remote_ip:@remote_port; blocks until the handshake
 * completes (milliseconds) or fails (MACHNET_CONNECT_TIMEOUT_MS at most).
 * On success *@flow is the new flow (src = local end).
 * Returns 0, or -1 with errno: EINVAL (bad channel, address, port 0,
 * @flow NULL), ETIMEDOUT (no answer from the peer), ECONNREFUSED (the peer
 * has no listener there), EHOSTUNREACH (no ARP answer), EADDRNOTAVAIL,
 * EADDRINUSE (no ephemeral port left), EMFILE (flow limit), ENOTCONN /
 * ECONNRESET (the server is gone).
 */
int machnet_connect(void *channel_ctx, const char *local_ip, const char *remote_ip,
		    uint16_t remote_port, MachnetFlow_t *flow);

/*
 * machnet_send - queue one message of @len bytes from @buf on @flow.
 * Returns at once; delivery is reliable unless the flow fails
 * (machnet_flow_error()). Returns 0, or -1 with errno, and then nothing was
 * queued and no buffer is lost: EINVAL (bad channel, @len 0, @buf NULL),
 * EMSGSIZE (@len above the channel's max_msg_size), ENOBUFS (no free
 * buffers now: the server has not taken the earlier messages yet; retry),
 * EAGAIN (the send ring is full; retry), ESHUTDOWN (the server closed the
 * channel), ECONNRESET (the server is gone), EBADMSG (shared memory corrupt).
 */
int machnet_send(const void *channel_ctx, MachnetFlow_t flow, const void *buf, size_t len);

/*
 * machnet_sendmsg - as machnet_send(), the message gathered from
 * @msghdr->msg_iov (msg_size bytes, to flow_info). Returns 0 or -1 (errno
 * as machnet_send(); EINVAL also when the iovecs hold fewer than msg_size
 * bytes).
 */
int machnet_sendmsg(const void *channel_ctx, const MachnetMsgHdr_t *msghdr);

/*
 * machnet_sendmmsg - send @vlen messages in order, stopping at the first
 * that cannot be sent. Returns the number sent (0..@vlen; when less than
 * @vlen, errno says why the next one was not), or -1 with errno EINVAL (bad
 * channel, @vlen < 0, @msghdr_iovec NULL with @vlen > 0).
 */
int machnet_sendmmsg(const void *channel_ctx, const MachnetMsgHdr_t *msghdr_iovec, int vlen);

/*
 * machnet_recv - receive the next message into @buf (@len bytes); never
 * blocks. On success *@flow (may be NULL) is the message's flow (src = the
 * sender). Returns the message size (> 0), 0 if no message is pending
 * (flow events met on the way are recorded for machnet_flow_error()), or -1
 * with errno: EMSGSIZE (the next message is longer than @len: it stays
 * queued; receive it with a larger buffer), EINVAL (bad channel, @buf NULL
 * with @len > 0), EPROTO (the next message was malformed by the server:
 * dropped), ESHUTDOWN / ECONNRESET (nothing pending and the server closed
 * the channel / is gone), EBADMSG (shared memory corrupt).
 */
ssize_t machnet_recv(const void *channel_ctx, void *buf, size_t len, MachnetFlow_t *flow);

/*
 * machnet_recvmsg - as machnet_recv(), scattering into @msghdr->msg_iov and
 * setting msg_size, flow_info and flags. Returns 1 (a message), 0 (none
 * pending) or -1 (errno as machnet_recv()).
 */
int machnet_recvmsg(const void *channel_ctx, MachnetMsgHdr_t *msghdr);

/* ---- additions ---------------------------------------------------------- */

/*
 * machnet_recv_timeout - as machnet_recv(), but waits up to @timeout_ms
 * (-1: forever; 0: not at all) for a message, sleeping (not spinning) until
 * the server signals one. Returns early with 0 when a flow event arrives,
 * so a caller waiting on a flow learns at once that it failed
 * (machnet_flow_error()). A signal does not end the wait (no EINTR).
 * Returns the size, 0 (timeout, or a flow event) or -1 (errno as
 * machnet_recv()).
 */
ssize_t machnet_recv_timeout(const void *channel_ctx, void *buf, size_t len,
			     MachnetFlow_t *flow, int timeout_ms);

/* machnet_recvmsg_timeout - machnet_recvmsg() with a timeout as above:
 * 1, 0 or -1. */
int machnet_recvmsg_timeout(const void *channel_ctx, MachnetMsgHdr_t *msghdr, int timeout_ms);

/*
 * machnet_channel_fd - a file descriptor for poll/epoll/select: readable
 * while a message or a flow event is pending, and when the server closes
 * the channel (until a receive reports it). Read events with machnet_recv*() and machnet_flow_error(); never
 * read() the fd itself. The fd belongs to the channel: do not close it; it
 * is closed by machnet_detach(). After the first call the server signals
 * every delivery (one eventfd write per batch), which costs it a little.
 * Returns the fd, or -1 with errno EINVAL (bad channel).
 */
int machnet_channel_fd(const void *channel_ctx);

/*
 * machnet_flow_error - the next flow of this channel that failed or ended,
 * oldest first. Flow events travel in order with the messages; those queued
 * behind messages not yet received are seen once the messages are taken.
 * On 1, *@flow is the flow (src = local end) and *@reason a positive errno:
 *   ETIMEDOUT     the peer stopped answering (retry limit, idle timeout)
 *   ECONNRESET    the peer reset the flow (it restarted, or closed abruptly)
 *   ECONNABORTED  the flow was aborted: the application at one end went away
 *   EPIPE         the peer closed the flow (orderly)
 *   EHOSTUNREACH  the peer's address did not resolve
 *   ENOTCONN      a message was sent on a flow the server does not know
 *   EMSGSIZE, EPROTO  a message was refused by the server
 *   ESHUTDOWN     the server is shutting down
 * Either pointer may be NULL. Returns 1 (one reported and removed), 0
 * (none), or -1 with errno EINVAL (bad channel).
 */
int machnet_flow_error(const void *channel_ctx, MachnetFlow_t *flow, int *reason);

/*
 * machnet_close - close a flow: messages already sent are still delivered,
 * then the peer learns of the close. Either orientation of the flow is
 * accepted (as connected, or as received). Returns 0, or -1 with errno:
 * EINVAL (bad channel), ENOENT (no such flow on this channel), ENOTCONN /
 * ECONNRESET (the server is gone), ETIMEDOUT.
 */
int machnet_close(const void *channel_ctx, MachnetFlow_t flow);

/*
 * machnet_flow_stats - per-flow figures from the server into *@stats.
 * Returns 0, or -1 with errno: EINVAL (bad channel, @stats NULL), ENOENT
 * (no such flow), ENOTCONN / ECONNRESET, ETIMEDOUT.
 */
int machnet_flow_stats(const void *channel_ctx, MachnetFlow_t flow,
		       struct MachnetFlowStats *stats);

/*
 * machnet_channel_counters - what the library counted on this channel.
 * Returns 0 or -1 with errno EINVAL (bad channel, @c NULL).
 */
int machnet_channel_counters(const void *channel_ctx, struct MachnetChannelCounters *c);

/*
 * machnet_detach - give the channel back: the server closes its flows and
 * frees its memory; the handle and its fd become invalid. Messages not yet
 * received are lost; messages already sent are still delivered. Must not
 * race with other calls on the same channel. Returns 0, or -1 with errno
 * EINVAL (bad channel; nothing done).
 */
int machnet_detach(void *channel_ctx);

#ifdef __cplusplus
}
#endif

#endif /* MACHNET_H_ */
