/* SPDX-License-Identifier: MIT */
/*
 * mn_ctl: control messages over unix stream sockets.
 *
 * Every message is a fixed 24-byte header followed by `len` payload bytes;
 * up to MN_CTL_MAX_FDS file descriptors travel with the header as
 * SCM_RIGHTS. All multi-byte fields are little-endian (the header is
 * converted explicitly; payload structs are declared with fixed-width types
 * and the build refuses big-endian hosts).
 *
 *   0        4        6        8        12       16       20       24
 *   +--------+--------+--------+--------+--------+--------+--------+
 *   | magic  |version | type   |  len   | req_id | status | nfds   |
 *   +--------+--------+--------+--------+--------+--------+--------+
 *     u32      u16      u16      u32      u32      i32      u32
 *
 * Requests carry status 0; a response echoes the request's req_id and type
 * and carries 0 or a negative errno in `status`. The receiver validates the
 * header (magic, version, length bound, fd count) before reading the
 * payload, and the payload against a per-type table (mn_ctl_check()).
 * A message that fails validation leaves the stream unusable: the caller
 * closes the connection.
 *
 * Versions: HELLO messages always travel with header version 1, whatever
 * the sender speaks, so that any two versions can meet and negotiate; every
 * later message uses the agreed version. Today only version 1 exists, so
 * mn_ctl_recv() accepts exactly MN_CTL_VERSION; the version that adds a
 * second must let mn_ctl_recv() accept version-1 HELLOs as well.
 */
#ifndef MN_IPC_CTL_H
#define MN_IPC_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "machnet control messages are little-endian; big-endian hosts are not supported"
#endif

#define MN_CTL_MAGIC 0x54434e4du /* "MNCT" */
#define MN_CTL_VERSION 1
#define MN_CTL_HDR_SIZE 24u
#define MN_CTL_MAX_PAYLOAD 65536u
#define MN_CTL_MAX_FDS 4u

struct mn_ctl_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t len;	 /* payload bytes after the header */
	uint32_t req_id; /* chosen by the requester, echoed in the response */
	int32_t status;	 /* 0 or -errno (responses) */
	uint32_t nfds;	 /* SCM_RIGHTS fds sent with this message */
};
_Static_assert(sizeof(struct mn_ctl_hdr) == MN_CTL_HDR_SIZE, "ctl header is ABI");

/* Message types shared by every control socket; users start at 16. */
enum mn_ctl_type {
	MN_CTL_T_HELLO = 1, /* payload struct mn_ctl_hello; first message both ways */
	MN_CTL_T_ERROR = 2, /* payload none; status says why */
	MN_CTL_T_PING = 3,  /* payload none; answered with PING, status 0 */
	MN_CTL_T_USER = 16,
};

#define MN_CTL_NAME_MAX 32

struct mn_ctl_hello {
	uint16_t min_version;	    /* oldest ctl version the sender speaks */
	uint16_t max_version;	    /* newest */
	uint32_t role;		    /* sender's role, defined by the user */
	char name[MN_CTL_NAME_MAX]; /* NUL-terminated, e.g. the tenant name */
};
_Static_assert(sizeof(struct mn_ctl_hello) == 40, "hello is ABI");

/* A received message. Owns its payload and fds until mn_ctl_msg_free(). */
struct mn_ctl_msg {
	struct mn_ctl_hdr hdr; /* host order, validated */
	void *payload;	       /* hdr.len bytes (malloc'd), NULL when 0 */
	int fds[MN_CTL_MAX_FDS];
	unsigned int nfds;
};

/* Per-type payload rule for mn_ctl_check(). */
struct mn_ctl_spec {
	uint16_t type;
	uint32_t min_len;
	uint32_t max_len;
	uint8_t nfds; /* exact fd count the type carries */
};

/*
 * mn_ctl_send - send one message, with optional fds.
 * @fd:         connected unix stream socket.
 * @type, @req_id, @status: header fields.
 * @payload:    @len bytes (<= MN_CTL_MAX_PAYLOAD); may be NULL when 0.
 * @fds:        @nfds (<= MN_CTL_MAX_FDS) descriptors to pass; not closed.
 * @timeout_ms: total time allowed for the message to leave; -1 waits forever.
 * Handles partial writes and EINTR; never raises SIGPIPE.
 * Returns 0; -EMSGSIZE (@len or @nfds too big), -EINVAL (@payload NULL with
 * @len > 0, or @fds NULL with @nfds > 0), -ETIMEDOUT, -EPIPE (peer gone),
 * other -errno from sendmsg/poll. After -ETIMEDOUT part of the message may
 * have left: close the connection. Thread-safe if callers serialise per
 * socket.
 */
int mn_ctl_send(int fd, uint16_t type, uint32_t req_id, int32_t status,
		const void *payload, uint32_t len, const int *fds,
		unsigned int nfds, int timeout_ms);

/*
 * mn_ctl_recv - receive one message.
 * @fd:         connected unix stream socket.
 * @msg:        filled on success; release with mn_ctl_msg_free().
 * @timeout_ms: total time allowed for the whole message; -1 waits forever.
 * Returns 0, or:
 *   -EPIPE        peer hung up cleanly before the first byte;
 *   -ECONNABORTED peer hung up in the middle of a message (short read);
 *   -ETIMEDOUT    no whole message in time;
 *   -EBADMSG      bad magic (garbage), or more fds than the header declares;
 *   -EPROTONOSUPPORT  the peer speaks another version (logged with both);
 *   -EMSGSIZE     len > MN_CTL_MAX_PAYLOAD or nfds > MN_CTL_MAX_FDS
 *                 (the payload is not read);
 *   -EBADF        the header declares fds that did not arrive;
 *   other -errno from recvmsg/poll.
 * On failure @msg owns nothing (mn_ctl_msg_free() on it is harmless).
 * Fds received in excess or with a failed message are closed, never leaked.
 * Received fds are close-on-exec. Thread-safe if callers serialise per socket.
 */
int mn_ctl_recv(int fd, struct mn_ctl_msg *msg, int timeout_ms);

/*
 * A message being received without ever waiting (mn_ctl_recv_nb), for a
 * server that must not let one slow or stalled peer hold up everything
 * else. The fields are private to ipc/ctl.c.
 */
struct mn_ctl_rx {
	struct mn_ctl_hdr wire;	 /* header bytes as they arrive */
	struct mn_ctl_hdr h;	 /* decoded and checked, once complete */
	uint8_t *payload;	 /* h.len bytes, allocated once the header is in */
	size_t got;		 /* header + payload bytes so far */
	int fds[MN_CTL_MAX_FDS];
	unsigned int nfds;	 /* kept in fds[] */
	unsigned int dropped;	 /* closed on arrival: beyond MN_CTL_MAX_FDS */
	bool ctrunc;		 /* the kernel dropped some */
};

/*
 * mn_ctl_reserve_sndbuf - make @fd's send buffer hold a largest message
 * (header + MN_CTL_MAX_PAYLOAD) at least twice over, so that a server
 * answering without waiting (mn_ctl_send() with timeout 0) never cuts an
 * answer short while its client follows the protocol. Tries SO_SNDBUFFORCE
 * (needs CAP_NET_ADMIN), then SO_SNDBUF. Returns 0, or -ENOBUFS when the
 * kernel granted less (net.core.wmem_max too low: logged with the values).
 */
int mn_ctl_reserve_sndbuf(int fd);

/* Start (or restart) @r empty. Call once before the first mn_ctl_recv_nb(). */
void mn_ctl_rx_init(struct mn_ctl_rx *r);

/* Free what a partial message holds (payload, fds) and start empty again. */
void mn_ctl_rx_fini(struct mn_ctl_rx *r);

/*
 * mn_ctl_recv_nb - read what the socket holds of the next message, without
 * waiting, and never beyond that message.
 * @fd:  connected unix stream socket (blocking or not: MSG_DONTWAIT).
 * @r:   the partial message of this connection (mn_ctl_rx_init()).
 * @msg: filled when a message is complete; release with mn_ctl_msg_free().
 * Returns 1 (@msg complete; @r starts the next), 0 (more bytes needed: call
 * again when the socket is readable), or what mn_ctl_recv() returns on
 * failure (but never -ETIMEDOUT); after a failure @r holds nothing and the
 * connection should be closed. Not thread-safe per @r.
 */
int mn_ctl_recv_nb(int fd, struct mn_ctl_rx *r, struct mn_ctl_msg *msg);

/*
 * Free the payload and close any fds still owned by @msg. Idempotent: a
 * second call (or one after a failed mn_ctl_recv()) does nothing.
 */
void mn_ctl_msg_free(struct mn_ctl_msg *msg);

/*
 * mn_ctl_take_fd - move fd number @i out of @msg (the message no longer
 * closes it). Returns the fd or -EBADF.
 */
int mn_ctl_take_fd(struct mn_ctl_msg *msg, unsigned int i);

/*
 * mn_ctl_check - validate a received message against a table of types.
 * Returns 0; -ENOMSG (type not in @specs), -EBADMSG (length outside the
 * type's bounds), -EBADF (fd count differs). Logs what was wrong.
 */
int mn_ctl_check(const struct mn_ctl_msg *msg, const struct mn_ctl_spec *specs,
		 size_t nspecs);

/*
 * mn_ctl_listen - create, bind and listen on a unix socket at @path.
 * A stale socket file (nobody accepting) is replaced; a live one gives
 * -EADDRINUSE. @mode is applied to the socket file (e.g. 0660) through the
 * umask at bind() time, never by a chmod that could follow a symlink; the
 * umask is process-wide, so call this at start-up, not beside threads that
 * create files.
 * Returns the listening fd (close-on-exec, non-blocking) or -errno
 * (-EADDRINUSE live socket, -EEXIST @path exists and is not a socket,
 * -ENAMETOOLONG path too long).
 */
int mn_ctl_listen(const char *path, mode_t mode);

/*
 * mn_ctl_connect - connect to the unix socket at @path within @timeout_ms.
 * Returns a connected, close-on-exec fd or -errno (-ENOENT no such socket,
 * -ECONNREFUSED nobody listening, -ENAMETOOLONG path too long).
 */
int mn_ctl_connect(const char *path, int timeout_ms);

/*
 * mn_ctl_peer_cred - credentials of the process at the other end of @fd
 * (SO_PEERCRED, taken at connect()). Returns 0 or -errno.
 */
int mn_ctl_peer_cred(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

/*
 * mn_ctl_hello - exchange HELLO messages on a fresh connection and agree on
 * a version: each side sends its range, and the result is the highest
 * version both speak.
 * @role, @name: this side's identity; @peer (may be NULL) receives the
 * other side's validated HELLO (name NUL-terminated).
 * @timeout_ms: total time for the whole exchange; -1 waits forever.
 * Returns the agreed version (> 0) or -EPROTONOSUPPORT (no common version;
 * logged with both ranges; @peer is filled), any error of mn_ctl_send or
 * mn_ctl_recv, or, when the peer's first message is not a well-formed HELLO,
 * an error of mn_ctl_check() (-ENOMSG, -EBADMSG, -EBADF).
 */
int mn_ctl_hello(int fd, uint32_t role, const char *name,
		 struct mn_ctl_hello *peer, int timeout_ms);

/* Printable name of a common type, "user" for >= MN_CTL_T_USER. */
const char *mn_ctl_type_name(uint16_t type);

#endif /* MN_IPC_CTL_H */
