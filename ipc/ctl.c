/* SPDX-License-Identifier: MIT */
#include "ctl.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LISTEN_BACKLOG 64
/* Upper bound of the retry interval while a listener's backlog is full. */
#define CONNECT_BACKOFF_MAX_MS 64

/* CLOCK_MONOTONIC nanoseconds; NO_DEADLINE waits forever. */
#define NO_DEADLINE UINT64_MAX

/*
 * Room for one SCM_RIGHTS message of MN_CTL_MAX_FDS fds, suitably aligned.
 * More fds than that make the kernel set MSG_CTRUNC, which we refuse. A ctl
 * socket must not have SO_PASSCRED/SO_PASSPIDFD set: their cmsg would take
 * this room and every fd-carrying message would arrive truncated.
 */
union fd_cmsg {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int) * MN_CTL_MAX_FDS)];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t deadline_in(int timeout_ms)
{
	if (timeout_ms < 0)
		return NO_DEADLINE;
	return now_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* Milliseconds left for poll(): -1 forever, 0 expired, else rounded up. */
static int ms_left(uint64_t deadline)
{
	uint64_t now, ms;

	if (deadline == NO_DEADLINE)
		return -1;
	now = now_ns();
	if (now >= deadline)
		return 0;
	/* Round up, or the last sub-millisecond turns into a busy loop. */
	ms = (deadline - now + 999999u) / 1000000u;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/*
 * Wait until @fd reports @events (or an error/hang-up, which the following
 * sendmsg/recvmsg turns into the real errno). Callers try the I/O first, so
 * an expired deadline here means the I/O would block: -ETIMEDOUT.
 */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		int ms = ms_left(deadline);
		int n;

		if (ms == 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, ms);
		if (n > 0)
			return (p.revents & POLLNVAL) ? -EBADF : 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

const char *mn_ctl_type_name(uint16_t type)
{
	switch (type) {
	case MN_CTL_T_HELLO:
		return "hello";
	case MN_CTL_T_ERROR:
		return "error";
	case MN_CTL_T_PING:
		return "ping";
	default:
		return type >= MN_CTL_T_USER ? "user" : "unknown";
	}
}

/* ---- send ---- */

static void hdr_to_wire(struct mn_ctl_hdr *w, const struct mn_ctl_hdr *h)
{
	w->magic = htole32(h->magic);
	w->version = htole16(h->version);
	w->type = htole16(h->type);
	w->len = htole32(h->len);
	w->req_id = htole32(h->req_id);
	w->status = (int32_t)htole32((uint32_t)h->status);
	w->nfds = htole32(h->nfds);
}

static void hdr_from_wire(struct mn_ctl_hdr *h, const struct mn_ctl_hdr *w)
{
	h->magic = le32toh(w->magic);
	h->version = le16toh(w->version);
	h->type = le16toh(w->type);
	h->len = le32toh(w->len);
	h->req_id = le32toh(w->req_id);
	h->status = (int32_t)le32toh((uint32_t)w->status);
	h->nfds = le32toh(w->nfds);
}

/* Point @iov at what is left of header + payload after @sent bytes. */
static int iov_from(struct iovec iov[2], const struct mn_ctl_hdr *wire,
		    const void *payload, uint32_t len, size_t sent)
{
	int n = 0;

	if (sent < MN_CTL_HDR_SIZE)
		iov[n++] = (struct iovec){ (char *)wire + sent, MN_CTL_HDR_SIZE - sent };
	if (len > 0) {
		size_t off = sent > MN_CTL_HDR_SIZE ? sent - MN_CTL_HDR_SIZE : 0;

		iov[n++] = (struct iovec){ (char *)payload + off, len - off };
	}
	return n;
}

static void attach_fds(struct msghdr *mh, union fd_cmsg *cb, const int *fds,
		       unsigned int nfds)
{
	struct cmsghdr *c;

	memset(cb, 0, sizeof(*cb));
	mh->msg_control = cb->buf;
	mh->msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	c = CMSG_FIRSTHDR(mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
}

static int send_by(int fd, const struct mn_ctl_hdr *h, const void *payload,
		   const int *fds, uint64_t deadline)
{
	size_t total = MN_CTL_HDR_SIZE + h->len, sent = 0;
	struct mn_ctl_hdr wire;
	union fd_cmsg cb;

	hdr_to_wire(&wire, h);
	while (sent < total) {
		struct iovec iov[2];
		struct msghdr mh = { .msg_iov = iov };
		ssize_t n;
		int rc;

		mh.msg_iovlen = (size_t)iov_from(iov, &wire, payload, h->len, sent);
		/*
		 * The kernel ties SCM_RIGHTS to the first byte of this chunk;
		 * once any byte is out, the fds are out with it.
		 */
		if (sent == 0 && h->nfds > 0)
			attach_fds(&mh, &cb, fds, h->nfds);
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0) {
			sent += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc == -ETIMEDOUT && sent > 0)
			mn_warn("ctl", "%s message: deadline passed after %zu of %zu bytes; the stream is now unusable",
				mn_ctl_type_name(h->type), sent, total);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int check_send_args(const void *payload, uint32_t len, const int *fds,
			   unsigned int nfds)
{
	if (len > MN_CTL_MAX_PAYLOAD || nfds > MN_CTL_MAX_FDS) {
		mn_err("ctl", "refusing to send %" PRIu32 " payload bytes and %u fds: the limits are %u and %u",
		       len, nfds, MN_CTL_MAX_PAYLOAD, MN_CTL_MAX_FDS);
		return -EMSGSIZE;
	}
	if ((len > 0 && !payload) || (nfds > 0 && !fds)) {
		mn_err("ctl", "send: %" PRIu32 " payload bytes at %p, %u fds at %p",
		       len, payload, nfds, (const void *)fds);
		return -EINVAL;
	}
	return 0;
}

int mn_ctl_send(int fd, uint16_t type, uint32_t req_id, int32_t status,
		const void *payload, uint32_t len, const int *fds,
		unsigned int nfds, int timeout_ms)
{
	struct mn_ctl_hdr h = {
		.magic = MN_CTL_MAGIC,
		.version = MN_CTL_VERSION,
		.type = type,
		.len = len,
		.req_id = req_id,
		.status = status,
		.nfds = nfds,
	};
	int rc = check_send_args(payload, len, fds, nfds);

	if (rc < 0)
		return rc;
	return send_by(fd, &h, payload, fds, deadline_in(timeout_ms));
}

/* ---- receive ---- */

/* One message being received: where it comes from and the fds so far. */
struct rx {
	int sock;
	uint64_t deadline;
	int fds[MN_CTL_MAX_FDS];
	unsigned int nfds;	/* kept in fds[] */
	unsigned int dropped;	/* closed on arrival: no room in fds[] */
	bool ctrunc;		/* the kernel dropped some: count unknown */
};

static void rx_close_fds(struct rx *rx)
{
	for (unsigned int i = 0; i < rx->nfds; i++)
		close(rx->fds[i]);
	rx->nfds = 0;
}

/* Keep (or close, past MN_CTL_MAX_FDS) every fd that came with @mh. */
static void rx_collect(struct rx *rx, struct msghdr *mh)
{
	struct cmsghdr *c;

	if (mh->msg_flags & MSG_CTRUNC)
		rx->ctrunc = true;
	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (rx->nfds < MN_CTL_MAX_FDS) {
				rx->fds[rx->nfds++] = fd;
			} else {
				close(fd);
				rx->dropped++;
			}
		}
	}
}

/*
 * Read exactly @len bytes, never more: the next message (and its fds) stays
 * in the socket. fds arriving with any of these bytes are collected in @rx.
 * @what names the part for the log; @first makes EOF before any byte -EPIPE.
 */
static int rx_exact(struct rx *rx, void *buf, size_t len, const char *what,
		    bool first)
{
	size_t done = 0;

	while (done < len) {
		struct iovec iov = { (char *)buf + done, len - done };
		union fd_cmsg cb;
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = cb.buf,
			.msg_controllen = sizeof(cb.buf),
		};
		ssize_t n;
		int rc;

		/*
		 * MSG_DONTWAIT even on a blocking socket: poll() below is what
		 * waits, so the deadline holds.
		 */
		n = recvmsg(rx->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n > 0) {
			rx_collect(rx, &mh);
			done += (size_t)n;
			continue;
		}
		if (n == 0) {
			if (first && done == 0)
				return -EPIPE;
			mn_warn("ctl", "peer hung up after %zu of %zu %s bytes: message truncated",
				done, len, what);
			return -ECONNABORTED;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		rc = wait_fd(rx->sock, POLLIN, rx->deadline);
		if (rc == -ETIMEDOUT && (done > 0 || !first))
			mn_warn("ctl", "deadline passed with %zu of %zu %s bytes received",
				done, len, what);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int check_hdr(const struct mn_ctl_hdr *h)
{
	if (h->magic != MN_CTL_MAGIC) {
		mn_err("ctl", "bad magic 0x%08" PRIx32 ", expected 0x%08x: the peer does not speak the ctl protocol",
		       h->magic, MN_CTL_MAGIC);
		return -EBADMSG;
	}
	if (h->version != MN_CTL_VERSION) {
		mn_err("ctl", "peer speaks ctl version %u, we speak %u: upgrade the older side",
		       h->version, MN_CTL_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (h->len > MN_CTL_MAX_PAYLOAD) {
		mn_err("ctl", "%s message (type %u) declares %" PRIu32 " payload bytes, the limit is %u",
		       mn_ctl_type_name(h->type), h->type, h->len, MN_CTL_MAX_PAYLOAD);
		return -EMSGSIZE;
	}
	if (h->nfds > MN_CTL_MAX_FDS) {
		mn_err("ctl", "%s message (type %u) declares %" PRIu32 " fds, the limit is %u",
		       mn_ctl_type_name(h->type), h->type, h->nfds, MN_CTL_MAX_FDS);
		return -EMSGSIZE;
	}
	return 0;
}

/* Do the fds received so far match the @declared count? */
static int check_rx_fds(const struct rx *rx, uint32_t declared, const char *when)
{
	unsigned int got = rx->nfds + rx->dropped;

	if (rx->ctrunc) {
		mn_err("ctl", "%s: more fds arrived than the %u a message may carry (MSG_CTRUNC), header declares %" PRIu32,
		       when, MN_CTL_MAX_FDS, declared);
		return -EBADMSG;
	}
	if (got > declared) {
		mn_err("ctl", "%s: %u fds arrived, header declares %" PRIu32 ": closing them",
		       when, got, declared);
		return -EBADMSG;
	}
	if (got < declared) {
		mn_err("ctl", "%s: header declares %" PRIu32 " fds, only %u arrived",
		       when, declared, got);
		return -EBADF;
	}
	return 0;
}

static void msg_init(struct mn_ctl_msg *msg)
{
	memset(&msg->hdr, 0, sizeof(msg->hdr));
	msg->payload = NULL;
	for (unsigned int i = 0; i < MN_CTL_MAX_FDS; i++)
		msg->fds[i] = -1;
	msg->nfds = 0;
}

static int recv_by(int fd, struct mn_ctl_msg *msg, uint64_t deadline)
{
	struct rx rx = { .sock = fd, .deadline = deadline };
	struct mn_ctl_hdr wire, h;
	void *payload = NULL;
	int rc;

	msg_init(msg);
	rc = rx_exact(&rx, &wire, sizeof(wire), "header", true);
	if (rc < 0)
		goto err_fds;
	hdr_from_wire(&h, &wire);
	rc = check_hdr(&h);
	if (rc < 0)
		goto err_fds;
	rc = check_rx_fds(&rx, h.nfds, "header");
	if (rc < 0)
		goto err_fds;
	if (h.len > 0) {
		payload = malloc(h.len);
		if (!payload) {
			rc = -ENOMEM;
			goto err_fds;
		}
		rc = rx_exact(&rx, payload, h.len, "payload", false);
		if (rc < 0)
			goto err_payload;
		/* A well-formed sender ties its fds to the header's first byte. */
		rc = check_rx_fds(&rx, h.nfds, "payload");
		if (rc < 0)
			goto err_payload;
	}
	msg->hdr = h;
	msg->payload = payload;
	memcpy(msg->fds, rx.fds, sizeof(int) * rx.nfds);
	msg->nfds = rx.nfds;
	return 0;

err_payload:
	free(payload);
err_fds:
	rx_close_fds(&rx);
	return rc;
}

int mn_ctl_recv(int fd, struct mn_ctl_msg *msg, int timeout_ms)
{
	return recv_by(fd, msg, deadline_in(timeout_ms));
}

/* ---- servers that never wait ---- */

int mn_ctl_reserve_sndbuf(int fd)
{
	/* The kernel doubles what it is given (bookkeeping overhead). */
	int want = 2 * (int)(MN_CTL_HDR_SIZE + MN_CTL_MAX_PAYLOAD), got = 0;
	socklen_t len = sizeof(got);

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)) != 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &len) != 0 || got < 2 * want) {
		mn_warn_rl("ctl", "socket send buffer is %d bytes, wanted %d: large answers may be "
			   "cut off; raise net.core.wmem_max to at least %d", got, 2 * want, want);
		return -ENOBUFS;
	}
	return 0;
}

/* ---- receive without waiting ---- */

void mn_ctl_rx_init(struct mn_ctl_rx *r)
{
	memset(r, 0, sizeof(*r));
}

void mn_ctl_rx_fini(struct mn_ctl_rx *r)
{
	for (unsigned int i = 0; i < r->nfds; i++)
		close(r->fds[i]);
	free(r->payload);
	mn_ctl_rx_init(r);
}

/* One recvmsg() of at most @len bytes into @buf, fds into @r. */
static ssize_t rx_some(int fd, struct mn_ctl_rx *r, void *buf, size_t len)
{
	struct rx rx = { .sock = fd, .nfds = r->nfds, .dropped = r->dropped,
			 .ctrunc = r->ctrunc };
	struct iovec iov = { buf, len };
	union fd_cmsg cb;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cb.buf, .msg_controllen = sizeof(cb.buf),
	};
	ssize_t n;

	do
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		memcpy(rx.fds, r->fds, sizeof(r->fds));
		rx_collect(&rx, &mh);
		memcpy(r->fds, rx.fds, sizeof(r->fds));
		r->nfds = rx.nfds;
		r->dropped = rx.dropped;
		r->ctrunc = rx.ctrunc;
	}
	return n;
}

/* The header just completed: decode, check, make room for the payload. */
static int rx_header_done(struct mn_ctl_rx *r)
{
	struct rx rx = { .nfds = r->nfds, .dropped = r->dropped, .ctrunc = r->ctrunc };
	int rc;

	hdr_from_wire(&r->h, &r->wire);
	rc = check_hdr(&r->h);
	rc = rc ? rc : check_rx_fds(&rx, r->h.nfds, "header");
	if (rc == 0 && r->h.len > 0) {
		r->payload = malloc(r->h.len);
		if (!r->payload)
			rc = -ENOMEM;
	}
	return rc;
}

/* The message is whole: move it into @msg and start the next. */
static int rx_complete(struct mn_ctl_rx *r, struct mn_ctl_msg *msg)
{
	struct rx rx = { .nfds = r->nfds, .dropped = r->dropped, .ctrunc = r->ctrunc };
	int rc = check_rx_fds(&rx, r->h.nfds, "payload");

	if (rc < 0)
		return rc;
	msg_init(msg);
	msg->hdr = r->h;
	msg->payload = r->payload;
	memcpy(msg->fds, r->fds, sizeof(int) * r->nfds);
	msg->nfds = r->nfds;
	mn_ctl_rx_init(r); /* ownership moved: nothing to free */
	return 1;
}

int mn_ctl_recv_nb(int fd, struct mn_ctl_rx *r, struct mn_ctl_msg *msg)
{
	const size_t hlen = sizeof(r->wire);
	int rc;

	for (;;) {
		size_t total = r->got < hlen ? hlen : hlen + r->h.len;
		uint8_t *dst;
		ssize_t n;

		if (r->got == total) { /* whole (a header with no payload, at once) */
			rc = rx_complete(r, msg);
			if (rc < 0)
				goto fail;
			return rc;
		}
		dst = r->got < hlen ? (uint8_t *)&r->wire + r->got : r->payload + (r->got - hlen);
		n = rx_some(fd, r, dst, total - r->got);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0) {
			rc = -errno;
			goto fail;
		}
		if (n == 0) {
			rc = r->got == 0 ? -EPIPE : -ECONNABORTED;
			if (rc == -ECONNABORTED)
				mn_warn("ctl", "peer hung up after %zu of %zu bytes: message truncated",
					r->got, total);
			goto fail;
		}
		r->got += (size_t)n;
		if (r->got == hlen) {
			rc = rx_header_done(r);
			if (rc < 0)
				goto fail;
		}
	}

fail:
	mn_ctl_rx_fini(r);
	return rc;
}

void mn_ctl_msg_free(struct mn_ctl_msg *msg)
{
	unsigned int n = msg->nfds < MN_CTL_MAX_FDS ? msg->nfds : MN_CTL_MAX_FDS;

	/* Bounded by nfds, so a zeroed msg never closes fd 0. */
	for (unsigned int i = 0; i < n; i++)
		if (msg->fds[i] >= 0)
			close(msg->fds[i]);
	free(msg->payload);
	msg->payload = NULL;
	for (unsigned int i = 0; i < MN_CTL_MAX_FDS; i++)
		msg->fds[i] = -1;
	msg->nfds = 0;
}

int mn_ctl_take_fd(struct mn_ctl_msg *msg, unsigned int i)
{
	int fd;

	if (i >= msg->nfds || i >= MN_CTL_MAX_FDS || msg->fds[i] < 0)
		return -EBADF;
	fd = msg->fds[i];
	msg->fds[i] = -1;
	return fd;
}

int mn_ctl_check(const struct mn_ctl_msg *msg, const struct mn_ctl_spec *specs,
		 size_t nspecs)
{
	const struct mn_ctl_hdr *h = &msg->hdr;
	const struct mn_ctl_spec *s = NULL;

	for (size_t i = 0; i < nspecs && !s; i++)
		if (specs[i].type == h->type)
			s = &specs[i];
	if (!s) {
		mn_err("ctl", "unexpected message type %u (%s), req_id %" PRIu32,
		       h->type, mn_ctl_type_name(h->type), h->req_id);
		return -ENOMSG;
	}
	if (h->len < s->min_len || h->len > s->max_len) {
		mn_err("ctl", "%s message (type %u): %" PRIu32 " payload bytes, expected %" PRIu32 "..%" PRIu32,
		       mn_ctl_type_name(h->type), h->type, h->len, s->min_len, s->max_len);
		return -EBADMSG;
	}
	if (msg->nfds != s->nfds) {
		mn_err("ctl", "%s message (type %u): %u fds, expected %u",
		       mn_ctl_type_name(h->type), h->type, msg->nfds, s->nfds);
		return -EBADF;
	}
	return 0;
}

/* ---- sockets ---- */

static int unix_addr(const char *path, struct sockaddr_un *sa, socklen_t *salen)
{
	size_t n = strlen(path);

	/* An empty path would autobind an abstract address, not a file. */
	if (n == 0) {
		mn_err("ctl", "empty socket path");
		return -EINVAL;
	}
	if (n >= sizeof(sa->sun_path)) {
		mn_err("ctl", "socket path %s is %zu bytes long, the limit is %zu",
		       path, n, sizeof(sa->sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

/*
 * Make @path free for bind(): absent, or a socket nobody accepts on (left
 * by a crashed server), which we remove. A successful probe connect shows
 * up at the live server as a connection that closes at once.
 * Known limit: two servers starting on one path at the same moment can
 * both see it stale; that is a configuration error we do not lock against.
 */
static int clear_stale(const char *path, const struct sockaddr_un *sa,
		       socklen_t salen)
{
	struct stat st;
	int probe, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		mn_err("ctl", "%s exists and is not a socket (mode 0%o): refusing to replace it",
		       path, (unsigned int)st.st_mode);
		return -EEXIST;
	}
	/* Non-blocking: a live server with a full backlog answers EAGAIN. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe < 0)
		return -errno;
	rc = connect(probe, (const struct sockaddr *)sa, salen) < 0 ? -errno : 0;
	close(probe);
	switch (rc) {
	case 0:
	case -EAGAIN:
		mn_err("ctl", "%s: another process is accepting connections on it", path);
		return -EADDRINUSE;
	case -ECONNREFUSED:
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
		mn_info("ctl", "%s: replaced a stale socket nobody was accepting on", path);
		return 0;
	case -ENOENT:
		return 0;
	default:
		mn_err("ctl", "%s: cannot tell whether the socket is live: %s",
		       path, strerror(-rc));
		return rc;
	}
}

int mn_ctl_listen(const char *path, mode_t mode)
{
	struct sockaddr_un sa;
	socklen_t salen;
	mode_t old_mask;
	int fd, rc;

	rc = unix_addr(path, &sa, &salen);
	if (rc < 0)
		return rc;
	rc = clear_stale(path, &sa, salen);
	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/*
	 * The mode comes from the umask at bind() time: a chmod(path) after
	 * the fact would follow a symlink an attacker planted in a writable
	 * runtime directory. umask is process-wide, so listen at start-up,
	 * before other threads create files.
	 */
	old_mask = umask(~mode & 0777);
	rc = bind(fd, (const struct sockaddr *)&sa, salen) < 0 ? -errno : 0;
	umask(old_mask);
	if (rc < 0) {
		mn_err("ctl", "bind %s: %s", path, strerror(-rc));
		goto err_close;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		rc = -errno;
		mn_err("ctl", "listen %s: %s", path, strerror(-rc));
		goto err_unlink;
	}
	return fd;

err_unlink:
	unlink(path);
err_close:
	close(fd);
	return rc;
}

/* Finish a connect() that answered EINPROGRESS. */
static int wait_connected(int fd, uint64_t deadline)
{
	socklen_t len = sizeof(int);
	int err, rc;

	rc = wait_fd(fd, POLLOUT, deadline);
	if (rc < 0)
		return rc;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

/*
 * Unix sockets do not answer EINPROGRESS on Linux: connect() completes, or,
 * with the listener's backlog full, fails with EAGAIN and leaves nothing to
 * poll for. So a full backlog is retried with a short back-off until the
 * deadline; EINPROGRESS is still handled the portable way.
 */
static int connect_by(int fd, const struct sockaddr_un *sa, socklen_t salen,
		      uint64_t deadline)
{
	int backoff_ms = 1;

	for (;;) {
		int ms;

		if (connect(fd, (const struct sockaddr *)sa, salen) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EINPROGRESS)
			return wait_connected(fd, deadline);
		if (errno != EAGAIN)
			return -errno;
		ms = ms_left(deadline);
		if (ms == 0)
			return -ETIMEDOUT;
		poll(NULL, 0, ms > 0 && ms < backoff_ms ? ms : backoff_ms);
		if (backoff_ms < CONNECT_BACKOFF_MAX_MS)
			backoff_ms *= 2;
	}
}

static int set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int mn_ctl_connect(const char *path, int timeout_ms)
{
	uint64_t deadline = deadline_in(timeout_ms);
	struct sockaddr_un sa;
	socklen_t salen;
	int fd, rc;

	rc = unix_addr(path, &sa, &salen);
	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	rc = connect_by(fd, &sa, salen, deadline);
	if (rc < 0)
		goto err_close;
	/* Callers may use plain read()/write(); mn_ctl_* bound their own waits. */
	rc = set_blocking(fd);
	if (rc < 0)
		goto err_close;
	return fd;

err_close:
	close(fd);
	return rc;
}

int mn_ctl_peer_cred(int fd, pid_t *pid, uid_t *uid, gid_t *gid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (pid)
		*pid = cred.pid;
	if (uid)
		*uid = cred.uid;
	if (gid)
		*gid = cred.gid;
	return 0;
}

/* ---- hello ---- */

static const struct mn_ctl_spec hello_spec[] = {
	{ MN_CTL_T_HELLO, sizeof(struct mn_ctl_hello), sizeof(struct mn_ctl_hello), 0 },
};

/* Receive the peer's HELLO into @peer, host order, name NUL-terminated. */
static int recv_hello(int fd, struct mn_ctl_hello *peer, uint64_t deadline)
{
	struct mn_ctl_msg msg;
	int rc;

	rc = recv_by(fd, &msg, deadline);
	if (rc < 0)
		return rc;
	rc = mn_ctl_check(&msg, hello_spec, 1);
	if (rc < 0)
		goto out;
	if (msg.hdr.status != 0) {
		mn_err("ctl", "hello carries status %" PRId32 ", expected 0", msg.hdr.status);
		rc = -EBADMSG;
		goto out;
	}
	memcpy(peer, msg.payload, sizeof(*peer));
	peer->min_version = le16toh(peer->min_version);
	peer->max_version = le16toh(peer->max_version);
	peer->role = le32toh(peer->role);
	peer->name[MN_CTL_NAME_MAX - 1] = '\0';
out:
	mn_ctl_msg_free(&msg);
	return rc;
}

int mn_ctl_hello(int fd, uint32_t role, const char *name,
		 struct mn_ctl_hello *peer, int timeout_ms)
{
	uint64_t deadline = deadline_in(timeout_ms);
	struct mn_ctl_hello mine = {
		.min_version = htole16(MN_CTL_VERSION),
		.max_version = htole16(MN_CTL_VERSION),
		.role = htole32(role),
	};
	struct mn_ctl_hdr h = {
		.magic = MN_CTL_MAGIC,
		.version = MN_CTL_VERSION,
		.type = MN_CTL_T_HELLO,
		.len = sizeof(mine),
	};
	struct mn_ctl_hello theirs;
	unsigned int lo, hi;
	int rc;

	/* Truncate to fit; the zeroed tail keeps the name NUL-terminated. */
	if (name)
		memcpy(mine.name, name, strnlen(name, MN_CTL_NAME_MAX - 1));
	/* Both sides send first: a socket buffer always holds one HELLO. */
	rc = send_by(fd, &h, &mine, NULL, deadline);
	if (rc < 0)
		return rc;
	rc = recv_hello(fd, &theirs, deadline);
	if (rc < 0)
		return rc;
	if (peer)
		*peer = theirs;
	lo = theirs.min_version > MN_CTL_VERSION ? theirs.min_version : MN_CTL_VERSION;
	hi = theirs.max_version < MN_CTL_VERSION ? theirs.max_version : MN_CTL_VERSION;
	if (hi < lo) {
		mn_err("ctl", "no common ctl version: we speak %u..%u, peer \"%s\" (role %" PRIu32
		       ") speaks %u..%u: upgrade the older side",
		       MN_CTL_VERSION, MN_CTL_VERSION, theirs.name, theirs.role,
		       theirs.min_version, theirs.max_version);
		return -EPROTONOSUPPORT;
	}
	return (int)hi;
}
