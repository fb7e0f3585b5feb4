/* SPDX-License-Identifier: MIT */
/*
 * mn_chan: the channel, the ABI between a tenant's protocol server (p) and an
 * application linked with libmachnet (a).
 *
 * The protocol server creates a region of kind MN_REGION_KIND_CHANNEL for
 * each machnet_attach(), owns its message-buffer pool, and hands the fd
 * with two eventfds to the application in the ATTACH response on
 * <runtime>/<tenant>.sock (ipc/tenant.h). Four SPSC rings of struct
 * mn_chan_desc move messages and buffers:
 *
 *   tx    (a -> p)  messages to send: a chain of buffers each
 *   fill  (p -> a)  free buffers, one per descriptor, to build messages in
 *   rx    (p -> a)  received messages (chains) and flow events, in order
 *   free  (a -> p)  buffers given back: chains received on rx, unused fill
 *
 *   section tag                  contents
 *   MN_CHAN_TAG_CTRL             struct mn_chan_ctrl (status, wake-up flags)
 *   MN_CHAN_TAG_POOL             struct mn_pool_shm + buffers (ipc/pool.h)
 *   MN_CHAN_TAG(MN_CHAN_RING_*)  one ring each, mn_chan_ring_size(cap) bytes
 *
 *   tx, fill and free have capacity ctrl.ring_cap >= nbufs; rx has
 *   ctrl.rx_cap = 2 * ring_cap, so events never crowd out messages.
 *
 * Messages and chains. A message of len bytes (1 .. ctrl.max_msg_size) is
 * held by n = ceil(len / payload) buffers, payload = buf_size - 16, linked by
 * a 16-byte header at the start of each buffer (struct mn_chan_bufhdr):
 * `next` is the index of the following buffer (MN_CHAN_NIL in the last) and
 * `len` the data bytes after the header. Chains are dense: every buffer but
 * the last is full (len == payload), so message byte o lives in buffer
 * o / payload at offset 16 + o % payload. A descriptor names the first
 * buffer, n and len; whoever reads a chain checks every link against n, the
 * pool bounds and the dense rule, so a forged or looping chain ends after n
 * steps at most (and n <= ctrl.max_chain).
 *
 * Ownership (ipc/pool.h): the server owns the pool. It lends buffers on fill
 * (one each) and rx (whole chains) and takes them back from tx and free:
 * every index of a chain passes mn_pool_take(), so an index out of range,
 * a buffer the application does not hold, a double return or a loop is
 * refused and counted, and only that application's own message is lost. The
 * application bounds-checks every index it reads through its mn_pool_view
 * and never trusts a length it did not check; a buggy server can give it
 * garbage data, never an out-of-bounds access.
 *
 * Every tx, fill and free descriptor holds at least one buffer, and those
 * rings hold every buffer, so honest sides never find them full. rx holds at
 * most nbufs messages plus events; the server posts an event only when the
 * ring has room (mn_chan_srv_post() says so) and keeps it otherwise.
 *
 * Wake-ups (as ipc/port.h): ATTACH carries the region and two eventfds. The
 * application writes the kick eventfd after publishing on tx or free when
 * `srv_sleeping` is set; the server sets `srv_sleeping` (seq-cst) before it
 * re-checks tx and free and sleeps. The server writes the rx eventfd after
 * publishing on rx (or fill) while `app_wait` has the matching bit; the
 * application sets `app_wait` (seq-cst) before it re-checks rx and sleeps.
 * Either side's seq-cst store before its re-check and the other side's
 * seq-cst load after its publish guarantee that one of them sees the other:
 * no wake-up is lost. libmachnet keeps MN_CHAN_WAIT_RX set permanently
 * once the application asked for the channel's pollable fd.
 *
 * Who may touch what: (p) fields are written by the server only; the server
 * never reads them back to decide anything (it keeps private copies). (a)
 * fields are written by the application; the server reads only `app_wait`,
 * and any value there merely costs it an eventfd write. Ring slots follow
 * ipc/ring.h; buffers belong to whoever holds them per the ownership rules.
 *
 * Server restart (DESIGN.md §5) is a later step: `server_gen` and the
 * region header's generation change when a new server adopts the channel.
 */
#ifndef MN_IPC_CHANNEL_H
#define MN_IPC_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "pool.h"
#include "region.h"
#include "ring.h"

#define MN_CHAN_MAGIC 0x4e414843u /* "CHAN" */
#define MN_CHAN_NIL 0xffffffffu	  /* end of a chain; idx of an event */
#define MN_CHAN_BUFHDR_SIZE 16u
#define MN_CHAN_MAX_MSG (8u << 20) /* 8 MiB: the largest message of any channel */

enum mn_chan_ring {
	MN_CHAN_RING_TX = 1,   /* a -> p: messages to send */
	MN_CHAN_RING_FILL = 2, /* p -> a: free buffers */
	MN_CHAN_RING_RX = 3,   /* p -> a: received messages and events */
	MN_CHAN_RING_FREE = 4, /* a -> p: buffers given back */
};

#define MN_CHAN_TAG_POOL 0x300u
#define MN_CHAN_TAG_CTRL 0x301u
#define MN_CHAN_TAG(ring) (0x400u | (uint32_t)(ring))

/* Channel status (ctrl.status). */
enum mn_chan_status {
	MN_CHAN_ST_OPEN = 1,   /* serving */
	MN_CHAN_ST_CLOSED = 2, /* the server gave the channel up: status_reason */
	/* Other values are reserved; a reader treats them as CLOSED. */
};

/* ctrl.app_wait bits: what the application waits for. */
#define MN_CHAN_WAIT_RX 0x1u   /* write the rx eventfd after publishing on rx */
#define MN_CHAN_WAIT_FILL 0x2u /* write the rx eventfd after publishing on fill */

/*
 * The control block, three 128-byte blocks so that no two writers share a
 * cache line (nor an adjacent-line prefetch pair).
 */
struct mn_chan_ctrl {
	/* Block 0: (p), written before the fd leaves the server, except
	 * status/status_reason/server_gen, which change later. */
	uint32_t magic;		/* (p) MN_CHAN_MAGIC, stored last with release */
	uint32_t channel_id;	/* (p) id in ATTACH and in every request */
	uint32_t max_msg_size;	/* (p) 1..MN_CHAN_MAX_MSG bytes */
	uint32_t max_chain;	/* (p) ceil(max_msg_size / payload) <= nbufs */
	uint32_t ring_cap;	/* (p) capacity of tx, fill, free (>= nbufs) */
	uint32_t rx_cap;	/* (p) capacity of rx (2 * ring_cap) */
	uint32_t reserved0[2];
	uint64_t server_gen;	/* (p) the server's start count; see above */
	uint32_t status;	/* (p) enum mn_chan_status; store-release */
	int32_t status_reason;	/* (p) 0, or -errno once CLOSED */
	uint32_t reserved1[20];
	/* Block 1: the application's. */
	uint32_t app_wait;	/* (a) MN_CHAN_WAIT_* bits; seq-cst */
	uint32_t reserved2[31];
	/* Block 2: the server's. */
	uint32_t srv_sleeping;	/* (p) 1 while the server waits; seq-cst */
	uint32_t reserved3[31];
};
_Static_assert(sizeof(struct mn_chan_ctrl) == 384, "channel ctrl is ABI");
_Static_assert(offsetof(struct mn_chan_ctrl, server_gen) == 32, "channel ctrl is ABI");
_Static_assert(offsetof(struct mn_chan_ctrl, status) == 40, "channel ctrl is ABI");
_Static_assert(offsetof(struct mn_chan_ctrl, app_wait) == 128, "channel ctrl is ABI");
_Static_assert(offsetof(struct mn_chan_ctrl, srv_sleeping) == 256, "channel ctrl is ABI");

/* The header at the start of every buffer of a chain. */
struct mn_chan_bufhdr {
	uint32_t next;	   /* next buffer of the message, MN_CHAN_NIL in the last */
	uint32_t len;	   /* data bytes after the header: payload, or the rest */
	uint32_t reserved[2]; /* written zero, ignored by readers */
};
_Static_assert(sizeof(struct mn_chan_bufhdr) == MN_CHAN_BUFHDR_SIZE, "buffer header is ABI");

/*
 * A flow: the UDP 4-tuple, addresses and ports in host byte order, laid out
 * as Machnet's MachnetFlow_t. On tx and in events, src is the local end; on
 * rx messages, src is the sender (the remote end) and dst the local end, as
 * Machnet reports it (an application replies by swapping them).
 */
struct mn_chan_flow {
	uint32_t src_ip;
	uint32_t dst_ip;
	uint16_t src_port;
	uint16_t dst_port;
};
_Static_assert(sizeof(struct mn_chan_flow) == 12, "flow is ABI");

/* Descriptor types (mn_chan_desc.type). */
enum mn_chan_dtype {
	MN_CHAN_D_MSG = 1,	  /* tx, rx: a message (chain) */
	MN_CHAN_D_BUF = 2,	  /* fill: one free buffer; free: a chain given back */
	/* rx only: events, no buffers (idx MN_CHAN_NIL, nbufs 0, len 0). The
	 * flow has src = local end. */
	MN_CHAN_EV_CONNECTED = 16, /* an asynchronous CONNECT completed: status 0 */
	MN_CHAN_EV_ACCEPTED = 17,  /* a peer opened a flow to a listening port */
	MN_CHAN_EV_CLOSED = 18,	   /* the peer closed the flow (FIN): status 0 */
	MN_CHAN_EV_FAILED = 19,	   /* the flow failed: status -errno (below) */
	MN_CHAN_EV_TX_REFUSED = 20, /* a tx message was refused: status -errno,
				     * cookie and flow are the message's */
};

/*
 * Reasons in MN_CHAN_EV_FAILED / _TX_REFUSED status (negated errno):
 *   -ETIMEDOUT     retry limit reached, or keepalive / idle timeout
 *   -ECONNRESET    the peer reset the flow (RST), e.g. it restarted
 *   -ECONNREFUSED  nobody listens at the remote port (asynchronous connect)
 *   -EHOSTUNREACH  the next hop did not answer ARP
 *   -ENOTCONN      tx on a flow the server does not know (closed, failed)
 *   -EMSGSIZE      tx message larger than max_msg_size
 *   -EPROTO        tx descriptor or chain malformed (buffers kept as found)
 *   -ESHUTDOWN     the server is shutting down
 */

/* Descriptor flags (mn_chan_desc.flags). tx: the application's message
 * flags (MachnetMsgHdr_t.flags), passed through; the server ignores bits it
 * does not know. rx: 0. */

/* The descriptor (48 bytes) on every channel ring. */
struct mn_chan_desc {
	uint32_t idx;	 /* first buffer; first field, per ipc/pool.h */
	uint32_t nbufs;	 /* buffers in the chain (fill: 1; events: 0) */
	uint32_t len;	 /* message bytes (fill, free, events: 0) */
	uint16_t type;	 /* enum mn_chan_dtype */
	uint16_t flags;	 /* see above */
	struct mn_chan_flow flow; /* messages and events; else zero */
	int32_t status;	 /* events: 0 or -errno; else 0 */
	uint64_t cookie; /* tx: chosen by the application, echoed in
			  * TX_REFUSED; rx: the server's message id */
	uint64_t reserved; /* zero */
};
_Static_assert(sizeof(struct mn_chan_desc) == 48, "channel descriptor is ABI");
_Static_assert(offsetof(struct mn_chan_desc, idx) == 0, "descriptors start with the index");
_Static_assert(offsetof(struct mn_chan_desc, flow) == 16, "channel descriptor is ABI");
_Static_assert(offsetof(struct mn_chan_desc, cookie) == 32, "channel descriptor is ABI");

/* Bytes one ring takes in its section (a multiple of 64). */
#define mn_chan_ring_size(cap) \
	((MN_RING_HDR_SIZE + (size_t)(cap) * sizeof(struct mn_chan_desc) + 63) & ~(size_t)63)

/* fds sent with the ATTACH response, in this order. */
enum {
	MN_CHAN_FD_REGION = 0, /* the channel region */
	MN_CHAN_FD_KICK = 1,   /* eventfd a writes when srv_sleeping */
	MN_CHAN_FD_RX = 2,     /* eventfd p writes when app_wait asks */
	MN_CHAN_NFDS = 3,
};

/* Data bytes a buffer of @buf_size holds. */
static inline uint32_t mn_chan_payload(uint32_t buf_size)
{
	return buf_size - MN_CHAN_BUFHDR_SIZE;
}

/* Buffers a message of @len bytes needs (0 for @len 0, which is invalid). */
static inline uint32_t mn_chan_nbufs_for(uint64_t len, uint32_t payload)
{
	return (uint32_t)((len + payload - 1) / payload);
}

/* ------------------------------------------------------------------------
 * Chain helpers (channel.c), for both sides. @v bounds every access; the
 * server builds a view of its own pool for them. @idx lists the chain's
 * buffer indices in order, as validated by mn_chan_chain_walk() (application)
 * or mn_chan_srv_take_chain() (server), or as allocated. None of them is
 * thread-safe on the same chain.
 */

/*
 * mn_chan_chain_link - write the headers of a dense chain of @n buffers
 * holding @len bytes. Returns 0, or -EINVAL if @n != ceil(@len / payload)
 * or @len is 0, or -ERANGE if an index is outside the pool.
 */
int mn_chan_chain_link(const struct mn_pool_view *v, const uint32_t *idx, uint32_t n,
		       uint32_t len);

/*
 * mn_chan_chain_walk - read and validate a chain someone else built:
 * from @first, @n buffers, @len bytes, dense. Fills @idx[0..@n). Each header
 * is copied once, then checked: index inside the pool, len == payload (or
 * the rest, in the last), next != NIL before the last and == NIL in the
 * last. Stops after @n steps whatever the links say. The buffers' bytes stay
 * live: a peer can still change them, never move the walk out of bounds.
 * Returns 0; -EINVAL (@n or @len impossible: 0, or n != ceil(len/payload));
 * -ERANGE (an index outside the pool); -EBADMSG (a header breaks the rules).
 */
int mn_chan_chain_walk(const struct mn_pool_view *v, uint32_t first, uint32_t n,
		       uint32_t len, uint32_t *idx);

/*
 * mn_chan_chain_write / mn_chan_chain_read - copy @len bytes into / out of
 * message offset @off of the dense chain @idx[0..@n). Random access, for a
 * transport that segments or reassembles. Returns 0 or -ERANGE (@off + @len
 * beyond n * payload, or an index outside the pool).
 */
int mn_chan_chain_write(const struct mn_pool_view *v, const uint32_t *idx, uint32_t n,
			uint32_t off, const void *src, uint32_t len);
int mn_chan_chain_read(const struct mn_pool_view *v, const uint32_t *idx, uint32_t n,
		       uint32_t off, void *dst, uint32_t len);

/*
 * mn_chan_chain_from_iov - gather exactly @len bytes from @iov[0..@iovcnt)
 * into the chain @idx[0..@n) (which must be ceil(@len/payload) buffers) and
 * write its headers. Zero-length iovecs are skipped; bytes beyond @len in
 * the iovecs are not read. Returns 0; -EINVAL (the iovecs hold fewer than
 * @len bytes, or @n does not match @len); -ERANGE (index outside the pool).
 */
int mn_chan_chain_from_iov(const struct mn_pool_view *v, const uint32_t *idx, uint32_t n,
			   const struct iovec *iov, size_t iovcnt, uint32_t len);

/*
 * mn_chan_chain_to_iov - scatter the @len bytes of the chain @idx[0..@n)
 * into @iov[0..@iovcnt). Returns 0; -EMSGSIZE (the iovecs hold fewer than
 * @len bytes: nothing is copied); -EINVAL / -ERANGE as above.
 */
int mn_chan_chain_to_iov(const struct mn_pool_view *v, const uint32_t *idx, uint32_t n,
			 uint32_t len, const struct iovec *iov, size_t iovcnt);

/* Total bytes in @iov[0..@iovcnt), saturated at SIZE_MAX. */
size_t mn_chan_iov_len(const struct iovec *iov, size_t iovcnt);

/* ------------------------------------------------------------------------
 * Server side (p). One thread per channel handle.
 */

/* Geometry of a new channel, from the tenant's configuration. */
struct mn_chan_params {
	uint32_t channel_id;
	uint32_t nbufs;	       /* 2 .. 2^24 */
	uint32_t buf_size;     /* multiple of 64 in 64 .. 16 MiB */
	uint32_t max_msg_size; /* 1 .. MN_CHAN_MAX_MSG; ceil(/payload) <= nbufs */
	uint64_t server_gen;
	unsigned int region_flags; /* MN_REGION_F_* */
	/*
	 * Buffers the server reserves for receiving: never lent on fill, only
	 * allocated for reassembly (mn_chan_srv_chain_alloc()). 0: no split,
	 * send and receive share the whole pool. Otherwise max_chain ..
	 * nbufs - max_chain, so that a largest message fits on either side.
	 * See "Send and receive budgets" below.
	 */
	uint32_t recv_bufs;
};

/*
 * Send and receive budgets. With one shared pool, two applications that
 * both queue many large sends can fill both pools with their own unacked
 * messages: neither server can then reassemble what the other sends, and
 * neither send is ever acknowledged. With recv_bufs set the server counts
 * the buffers it lent on fill or holds for sending (send side, at most
 * nbufs - recv_bufs) apart from those it allocated for reassembly or lent
 * on rx (receive side, at most recv_bufs). A buffer counts for the side
 * that last gave it out, until it comes back on free or the server frees
 * it; a received chain an application sends on tx moves to the send side.
 * The receive side then always has room for one largest message once the
 * application has consumed what it received, whatever the sends do.
 */

struct mn_chan_srv_stats {
	uint64_t tx_msgs;     /* valid messages taken from tx */
	uint64_t tx_bytes;
	uint64_t rx_msgs;     /* messages delivered on rx */
	uint64_t rx_bytes;
	uint64_t events;      /* events posted on rx */
	uint64_t rx_full;     /* deliveries or events refused: rx full */
	uint64_t bad_desc;    /* tx/free descriptors with bad type or lengths */
	uint64_t bad_chain;   /* chains refused (index, ownership, header) */
	uint64_t freed;	      /* buffers taken back from free */
	uint64_t wakeups;     /* rx eventfd writes */
	uint64_t send_capped; /* times the send budget stopped refills (once per stop) */
	uint64_t recv_capped; /* reassembly allocations refused by the receive budget
			       * (or by the room kept for in-order messages) */
};

/* Which side of the budget a buffer counts for (mn_chan_srv.side). */
enum mn_chan_side { MN_CHAN_SIDE_NONE = 0, MN_CHAN_SIDE_SEND = 1, MN_CHAN_SIDE_RECV = 2 };

struct mn_chan_srv {
	struct mn_region reg;
	struct mn_chan_ctrl *ctrl;
	struct mn_pool pool;
	struct mn_pool_view view;   /* the same pool, for the chain helpers */
	struct mn_ring tx;	    /* we consume */
	struct mn_ring fill;	    /* we produce */
	struct mn_ring rx;	    /* we produce */
	struct mn_ring free;	    /* we consume */
	int kick_fd;		    /* we read it (poll it while sleeping) */
	int rx_fd;		    /* we write it */
	uint32_t id;
	uint32_t payload;
	uint32_t max_msg;
	uint32_t max_chain;
	uint32_t published;	    /* MN_CHAN_WAIT_* bits: what was published on
				     * rx/fill since the last mn_chan_srv_wake() */
	uint8_t *side;		    /* per buffer: enum mn_chan_side (private) */
	uint32_t held[3];	    /* buffers out per side (index MN_CHAN_SIDE_*) */
	uint32_t budget[3];	    /* the most each side may hold */
	bool send_stopped;	    /* the last refill hit the send budget */
	struct mn_chan_srv_stats st;
};

/*
 * mn_chan_srv_create - create, format and open the server side of a
 * channel: the region (memfd name "machnet-chan-<id>"), the pool with every
 * buffer free, the rings, and both eventfds (non-blocking, close-on-exec).
 * The ATTACH response sends reg.fd, kick_fd, rx_fd (MN_CHAN_FD_* order).
 * Returns 0, -EINVAL (geometry: nbufs, buf_size, max_msg_size), or -errno
 * from region creation, allocation or eventfd. On failure nothing is left.
 */
int mn_chan_srv_create(struct mn_chan_srv *s, const struct mn_chan_params *p);

/* Unmap, close the fds, free the private state. Safe on a zeroed handle
 * with fds -1, and twice. */
void mn_chan_srv_destroy(struct mn_chan_srv *s);

/*
 * mn_chan_srv_refill - top the fill ring up to @target buffers waiting (not
 * counting those the application already took), within the send budget
 * (a refill the budget cuts short is counted in st.send_capped). Returns
 * the number lent, or -EBADMSG (the ring's indices are corrupt).
 */
int mn_chan_srv_refill(struct mn_chan_srv *s, uint32_t target);

/*
 * mn_chan_srv_tx_take - take the next message from tx.
 * @d:   receives a copy of the descriptor.
 * @idx: receives the chain, room for max_chain indices.
 * Returns 1: a valid message: its buffers are now the server's (MN_BUF_OWNER)
 *            until mn_chan_srv_chain_free() or delivery;
 *         0: tx is empty;
 *   -EPROTO: a descriptor was consumed and refused (type, len, nbufs, chain:
 *            counted, logged rate-limited); *d is filled so the server can
 *            post MN_CHAN_EV_TX_REFUSED with its cookie. Buffers of the chain
 *            that were validly returned are freed; the rest stay lent;
 *  -EBADMSG: the ring's indices are corrupt (the channel is unusable).
 */
int mn_chan_srv_tx_take(struct mn_chan_srv *s, struct mn_chan_desc *d, uint32_t *idx);

/*
 * mn_chan_srv_take_chain - take back a chain the application handed over:
 * from @first, @n buffers (1..max_chain, or 1..nbufs when @len is 0);
 * each index passes mn_pool_take() before its header is read. With @len
 * > 0 the chain must also be dense for @len bytes and end in NIL; with
 * @len 0 (free ring) only the links of the first n-1 buffers are read.
 * Fills @idx[0..@n). On failure every buffer already taken is freed and the
 * rest stay lent. Returns 0; -EINVAL (@n), -ERANGE (an index outside the
 * pool), -EALREADY (a buffer the application does not hold: double return,
 * forgery or loop), -EBADMSG (a header breaks the rules). Counted in
 * st.bad_chain.
 */
int mn_chan_srv_take_chain(struct mn_chan_srv *s, uint32_t first, uint32_t n,
			   uint32_t len, uint32_t *idx);

/*
 * mn_chan_srv_free_poll - take back up to @max descriptors from free and
 * free their buffers. Bad ones are counted and skipped. Returns the number
 * of buffers freed, or -EBADMSG (corrupt ring).
 */
int mn_chan_srv_free_poll(struct mn_chan_srv *s, uint32_t max);

/* mn_chan_srv_chain_alloc flags. */
/* The message arrived ahead of one its flow must deliver first: allocate it
 * only if room for a largest message stays on the receive side, so that
 * messages held for later can never take the room of the one they wait
 * for (which would block the flow for good). */
#define MN_CHAN_ALLOC_AHEAD 0x1u

/*
 * mn_chan_srv_chain_alloc - allocate the buffers of a @len-byte message
 * (1..max_msg) for reassembly and link them (dense headers). Fills @idx
 * with ceil(@len/payload) indices, held by the server, counted on the
 * receive side. @flags: MN_CHAN_ALLOC_*. Returns that count, or -EMSGSIZE
 * (@len), -ENOBUFS (not enough free buffers, or the receive budget would
 * be exceeded, or with MN_CHAN_ALLOC_AHEAD less than max_chain would be
 * left: none taken; retry once the application has given received chains
 * back).
 */
int mn_chan_srv_chain_alloc(struct mn_chan_srv *s, uint32_t len, unsigned int flags,
			    uint32_t *idx);

/* mn_chan_srv_chain_free - free a chain the server holds (either side). */
void mn_chan_srv_chain_free(struct mn_chan_srv *s, const uint32_t *idx, uint32_t n);

/*
 * mn_chan_srv_deliver - lend the linked chain @idx[0..n) holding @len bytes
 * to the application as a received message on @flow (src = the sender).
 * Returns 1 (queued: the buffers are lent), 0 (rx full: nothing changed,
 * the chain is still the server's; counted), -EINVAL (n does not match
 * len, or a buffer is not the server's), -EBADMSG (corrupt ring).
 * Call mn_chan_srv_wake() after a batch.
 */
int mn_chan_srv_deliver(struct mn_chan_srv *s, const struct mn_chan_flow *flow,
			const uint32_t *idx, uint32_t n, uint32_t len, uint64_t cookie);

/*
 * mn_chan_srv_post - post an event (MN_CHAN_EV_*) about @flow (src = local
 * end) with @status (0 or -errno) and @cookie. Returns 1 (queued), 0 (rx
 * full: keep it and retry later; counted), -EINVAL (@type), -EBADMSG.
 */
int mn_chan_srv_post(struct mn_chan_srv *s, uint16_t type, const struct mn_chan_flow *flow,
		     int32_t status, uint64_t cookie);

/*
 * mn_chan_srv_wake - after publishing on rx or fill: write the rx eventfd if
 * the application waits for what was published. Cheap when nothing was
 * published since the last call.
 */
void mn_chan_srv_wake(struct mn_chan_srv *s);

/*
 * mn_chan_srv_sleep_prepare - before the server sleeps: raise srv_sleeping
 * (seq-cst) and re-check tx and free. Returns true if it may sleep (both
 * empty); false if work arrived (the flag is lowered again).
 * mn_chan_srv_sleep_done - after waking: lower the flag, drain the kick fd.
 */
bool mn_chan_srv_sleep_prepare(struct mn_chan_srv *s);
void mn_chan_srv_sleep_done(struct mn_chan_srv *s);

/* mn_chan_srv_recv_room - buffers the receive side may still allocate:
 * what its budget leaves, bounded by the free buffers. */
uint32_t mn_chan_srv_recv_room(const struct mn_chan_srv *s);

/* mn_chan_srv_pending - tx or free holds entries (fresh read). */
bool mn_chan_srv_pending(struct mn_chan_srv *s);

/*
 * mn_chan_srv_close - tell the application the channel is gone: status
 * CLOSED with @reason (-errno, e.g. -ESHUTDOWN), rx eventfd written
 * whatever app_wait says.
 */
void mn_chan_srv_close(struct mn_chan_srv *s, int32_t reason);

/* ------------------------------------------------------------------------
 * Application side (a). Functions marked (tx) use the tx and fill rings and
 * the buffer cache, (rx) the rx and free rings: one thread at a time per
 * group; the two groups may run concurrently. Only (rx) functions produce
 * on free, so the ring keeps a single producer.
 */

struct mn_chan_app_stats {
	uint64_t bad_fill;    /* fill descriptors refused (index, type) */
	uint64_t bad_rx;      /* rx descriptors or chains refused */
	uint64_t returned;    /* buffers given back on free */
};

struct mn_chan_app {
	struct mn_region reg;
	struct mn_chan_ctrl *ctrl;  /* live: read status and srv_sleeping only */
	struct mn_pool_view view;
	struct mn_ring tx;	    /* we produce */
	struct mn_ring fill;	    /* we consume */
	struct mn_ring rx;	    /* we consume */
	struct mn_ring free;	    /* we produce */
	int kick_fd;		    /* we write it */
	int rx_fd;		    /* we poll it */
	/* Validated copies of the geometry. */
	uint32_t id;
	uint32_t nbufs;
	uint32_t payload;
	uint32_t max_msg;
	uint32_t max_chain;
	uint64_t server_gen;
	/* (tx) buffers taken from fill, not yet sent: a LIFO. */
	uint32_t *cache;
	uint32_t ncache;
	uint32_t *tx_idx;	    /* (tx) scratch, max_chain */
	uint32_t *rx_idx;	    /* (rx) scratch, max_chain */
	struct mn_chan_app_stats st;
};

/* Spare room in the application's buffer cache array beyond the largest
 * message (the cache itself never holds more than max_chain + 32). */
#define MN_CHAN_APP_CACHE_MAX 256u

/*
 * mn_chan_app_map - map a channel from its ATTACH fds and validate
 * everything once: region header and kind, control block (magic, lengths
 * against the pool), pool header, each ring's geometry against its section.
 * On success the handle owns the three fds; on failure none is closed.
 * Returns 0; -EBADMSG (control block or geometry impossible), -ERANGE, or
 * any error of mn_region_map(), mn_pool_view_init(), mn_ring_attach();
 * -ENOMEM. Logs what it refused.
 */
int mn_chan_app_map(struct mn_chan_app *a, int region_fd, int kick_fd, int rx_fd);

/* Unmap and close. Safe on a zeroed handle with fds -1, and twice. */
void mn_chan_app_unmap(struct mn_chan_app *a);

/*
 * mn_chan_app_send - (tx) build a message of @len bytes from @iov in
 * buffers taken from the cache (refilled from fill) and queue it on tx.
 * Returns 0; -EINVAL (@len 0 or the iovecs hold fewer bytes), -EMSGSIZE
 * (@len > max_msg), -ENOBUFS (not enough buffers: the server has not given
 * enough back yet), -EAGAIN (tx full), -EBADMSG (corrupt ring), -ESHUTDOWN
 * (the channel is closed). On failure every buffer taken stays in the
 * cache: nothing leaks. Call mn_chan_app_kick() after a batch.
 */
int mn_chan_app_send(struct mn_chan_app *a, const struct mn_chan_flow *flow,
		     const struct iovec *iov, size_t iovcnt, uint32_t len,
		     uint16_t flags, uint64_t cookie);

/* mn_chan_app_kick - after publishing on tx or free: wake the server if it
 * sleeps. */
void mn_chan_app_kick(struct mn_chan_app *a);

/*
 * mn_chan_app_peek - (rx) copy the descriptor at the head of rx without
 * consuming it. Returns 1, 0 (empty) or -EBADMSG (corrupt ring).
 */
int mn_chan_app_peek(struct mn_chan_app *a, struct mn_chan_desc *d);

/*
 * mn_chan_app_recv - (rx) take the head of rx.
 * @d:   receives the descriptor (type says message or event).
 * @iov: where a message goes, @iovcnt entries.
 * Returns 1: an event (d->type >= 16) was consumed, or a message was
 *            copied into @iov, consumed and its chain given back on free;
 *         0: rx is empty;
 *  -EMSGSIZE: the head is a message longer than @iov holds: nothing is
 *            consumed (d->len says how long);
 *  -EPROTO:  the head was malformed (type, lengths, chain): consumed and
 *            dropped, its buffers given back; counted in st.bad_rx;
 *  -EBADMSG: corrupt ring.
 * Call mn_chan_app_kick() after a batch (buffers went on free).
 */
int mn_chan_app_recv(struct mn_chan_app *a, struct mn_chan_desc *d,
		     const struct iovec *iov, size_t iovcnt);

/*
 * mn_chan_app_flush_cache - (tx and rx: it produces on free, which is the
 * receive side's) give every cached buffer back on free, before detaching.
 * Returns the number given back.
 */
uint32_t mn_chan_app_flush_cache(struct mn_chan_app *a);

/* mn_chan_app_status - current status (MN_CHAN_ST_*, reserved -> CLOSED);
 * *reason (may be NULL) gets status_reason when CLOSED. */
uint32_t mn_chan_app_status(const struct mn_chan_app *a, int32_t *reason);

/* mn_chan_app_set_wait - store app_wait (seq-cst), pairs with the load in
 * mn_chan_srv_wake(). */
void mn_chan_app_set_wait(struct mn_chan_app *a, uint32_t bits);

/* mn_chan_app_rx_pending - entries waiting on rx (fresh read), or -EBADMSG. */
int mn_chan_app_rx_pending(struct mn_chan_app *a);

#endif /* MN_IPC_CHANNEL_H */
