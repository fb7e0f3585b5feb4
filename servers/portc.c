/* SPDX-License-Identifier: MIT */
#include "portc.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"

#define BACKOFF_MIN_MS 10u
#define BACKOFF_MAX_MS 1000u
#define BURST 32u

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int layout(struct portc *p, uint16_t nqueues, uint32_t nframes, uint32_t frame_size)
{
	size_t rings = (size_t)nqueues * mn_port_ring_size(nframes);
	struct mn_region_spec spec = {
		.kind = MN_REGION_KIND_PORT,
		.nsections = 6,
		.sec = {
			{ MN_PORT_TAG_CTRL, sizeof(struct mn_port_ctrl) },
			{ MN_PORT_TAG_POOL, mn_pool_memsize(nframes, frame_size) },
			{ MN_PORT_TAG(MN_PORT_RING_FILL), rings },
			{ MN_PORT_TAG(MN_PORT_RING_RX), rings },
			{ MN_PORT_TAG(MN_PORT_RING_TX), rings },
			{ MN_PORT_TAG(MN_PORT_RING_COMP), rings },
		},
	};
	char name[64];

	if (spec.sec[1].len == 0 || mn_ring_memsize(nframes, sizeof(struct mn_pkt_desc)) == 0) {
		mn_err("portc", "cannot lay out %" PRIu32 " frames of %" PRIu32
		       " B: need a power of two >= 2 frames of a multiple of 64 B", nframes, frame_size);
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "machnet-port-%s", p->tenant);
	/* nicd takes hugetlbfs regions only from root (see tnt_attach). */
	return mn_region_create(&p->reg, name, &spec, geteuid() == 0 ? 0 : MN_REGION_F_NO_HUGE);
}

static int format(struct portc *p)
{
	size_t size = mn_port_ring_size(p->nframes);
	uint64_t len;
	uint8_t *mem;
	int err;

	p->ctrl = mn_region_section(&p->reg, 0, NULL);
	mem = mn_region_section(&p->reg, 1, &len);
	err = mn_pool_format(mem, len, p->nframes, p->frame_size);
	err = err ? err : mn_pool_init(&p->pool, mem, len);
	for (uint16_t q = 0; q < p->nqueues && !err; q++) {
		struct mn_ring *r[4] = { &p->q[q].fill, &p->q[q].rx, &p->q[q].tx, &p->q[q].comp };
		enum mn_ring_role role[4] = { MN_RING_PRODUCER, MN_RING_CONSUMER,
					      MN_RING_PRODUCER, MN_RING_CONSUMER };

		for (int k = 0; k < 4 && !err; k++) {
			uint8_t *ring = (uint8_t *)mn_region_section(&p->reg, 2 + (uint32_t)k, NULL) +
					(size_t)q * size;

			err = mn_ring_format(ring, size, p->nframes, sizeof(struct mn_pkt_desc));
			err = err ? err : mn_ring_attach(r[k], ring, size,
							 sizeof(struct mn_pkt_desc), role[k]);
		}
	}
	return err;
}

int portc_create(struct portc *p, const char *tenant, const char *runtime_dir,
		 uint16_t nqueues, uint32_t nframes, uint32_t frame_size)
{
	int err;

	memset(p, 0, sizeof(*p));
	p->sock = p->kick_fd = p->rx_fd = -1;
	if (nqueues == 0 || nqueues > MN_PORT_MAX_QUEUES)
		return -EINVAL;
	snprintf(p->tenant, sizeof(p->tenant), "%s", tenant);
	snprintf(p->sock_path, sizeof(p->sock_path), "%s/nicd.sock", runtime_dir);
	p->nqueues = nqueues;
	p->nframes = nframes;
	p->frame_size = frame_size;
	p->fill_target = nframes / (2u * nqueues);
	err = layout(p, nqueues, nframes, frame_size);
	if (err)
		return err;
	err = format(p);
	if (err)
		goto fail_region;
	p->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->rx_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->kick_fd < 0 || p->rx_fd < 0) {
		err = -errno;
		goto fail_fds;
	}
	p->backoff_ms = BACKOFF_MIN_MS;
	return 0;

fail_fds:
	if (p->kick_fd >= 0)
		close(p->kick_fd);
	if (p->rx_fd >= 0)
		close(p->rx_fd);
	mn_pool_fini(&p->pool);
fail_region:
	mn_region_unmap(&p->reg);
	return err;
}

void portc_destroy(struct portc *p)
{
	if (p->sock >= 0)
		close(p->sock);
	if (p->kick_fd >= 0)
		close(p->kick_fd);
	if (p->rx_fd >= 0)
		close(p->rx_fd);
	mn_pool_fini(&p->pool);
	mn_region_unmap(&p->reg);
	p->sock = p->kick_fd = p->rx_fd = -1;
}

static void late_answer(struct portc *p, struct mn_ctl_msg *m)
{
	p->late_answers++;
	mn_warn_rl("portc", "%s: nicd answered request %" PRIu32 " (type %u) after it had timed "
		   "out: dropped", p->tenant, m->hdr.req_id, m->hdr.type);
	mn_ctl_msg_free(m);
}

/*
 * nicd never writes unasked, except a late answer to a request that timed
 * out: take that off the socket. Returns 0 if that was all, or -errno when
 * the socket is at its end (nicd hung up) or out of step.
 */
static int drain_late_answers(struct portc *p)
{
	struct mn_ctl_msg m;
	ssize_t n;
	char c;

	while ((n = recv(p->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT)) > 0) {
		int err = mn_ctl_recv(p->sock, &m, 10);

		if (err)
			return err;
		if ((int32_t)(p->req_id - m.hdr.req_id) < 0) {
			mn_ctl_msg_free(&m);
			return -EPROTO; /* an answer to nothing we asked */
		}
		late_answer(p, &m);
	}
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -EPIPE;
}

/* One request, one response with the same req_id and type. */
int portc_request(struct portc *p, uint16_t type, const void *req, uint32_t req_len,
		  void *resp, uint32_t resp_cap, uint32_t *resp_len, int timeout_ms)
{
	uint32_t id = ++p->req_id;
	struct mn_ctl_msg m;
	int err;

	if (p->sock < 0)
		return -ENOTCONN;
	err = mn_ctl_send(p->sock, type, id, 0, req, req_len, NULL, 0, timeout_ms);
	if (err)
		return err;
	err = mn_ctl_recv(p->sock, &m, timeout_ms);
	/* An answer to an earlier request that timed out (nicd answers
	 * everything, if late): skip it. */
	while (err == 0 && (int32_t)(id - m.hdr.req_id) > 0) {
		late_answer(p, &m);
		err = mn_ctl_recv(p->sock, &m, timeout_ms);
	}
	if (err)
		return err;
	if (m.hdr.req_id != id || m.hdr.type != type) {
		mn_err("portc", "nicd answered request %" PRIu32 " type %u with %" PRIu32 " type %u",
		       id, type, m.hdr.req_id, m.hdr.type);
		err = -EPROTO;
	} else if (m.hdr.status < 0) {
		err = m.hdr.status;
	} else if (resp && m.hdr.len > resp_cap) {
		err = -EMSGSIZE;
	} else {
		if (resp && m.hdr.len)
			memcpy(resp, m.payload, m.hdr.len);
		if (resp_len)
			*resp_len = m.hdr.len;
	}
	mn_ctl_msg_free(&m);
	return err;
}

static int send_claim(struct portc *p, uint16_t type, const struct mn_port_claim *c, int tmo)
{
	return portc_request(p, type, c, sizeof(*c), NULL, 0, NULL, tmo);
}

static void refill(struct portc *p, uint16_t q)
{
	struct mn_pkt_desc d[BURST];
	uint32_t first, pending, n = 0;

	if (mn_ring_pending(&p->q[q].fill, &first, &pending) != 0)
		return;
	while (pending + n < p->fill_target && n < BURST) {
		int idx = mn_pool_alloc(&p->pool);

		if (idx < 0)
			break;
		mn_pool_lend(&p->pool, (uint32_t)idx);
		d[n++] = (struct mn_pkt_desc){ .idx = (uint32_t)idx };
	}
	/* Rings hold every frame: this always fits. */
	if (n)
		mn_ring_enqueue_burst(&p->q[q].fill, d, n);
}

static int do_register(struct portc *p, int tmo)
{
	struct mn_port_register req = {
		.nqueues = p->nqueues, .nframes = p->nframes, .frame_size = p->frame_size,
		.ring_cap = p->nframes,
	};
	int fds[MN_PORT_NFDS] = { p->reg.fd, p->kick_fd, p->rx_fd };
	uint32_t id = ++p->req_id, len = 0;
	struct mn_ctl_msg m;
	int err;

	err = mn_ctl_send(p->sock, MN_PORT_T_REGISTER, id, 0, &req, sizeof(req), fds,
			  MN_PORT_NFDS, tmo);
	err = err ? err : mn_ctl_recv(p->sock, &m, tmo);
	if (err)
		return err;
	if (m.hdr.type != MN_PORT_T_REGISTER || m.hdr.req_id != id)
		err = -EPROTO;
	else if (m.hdr.status < 0)
		err = m.hdr.status;
	else if ((len = m.hdr.len) != sizeof(p->info))
		err = -EPROTO;
	else
		memcpy(&p->info, m.payload, sizeof(p->info));
	mn_ctl_msg_free(&m);
	if (err)
		mn_err("portc", "%s: REGISTER refused by nicd: %s", p->tenant, strerror(-err));
	return err;
}

int portc_connect(struct portc *p, int timeout_ms)
{
	struct mn_ctl_hello peer;
	int err;

	p->sock = mn_ctl_connect(p->sock_path, timeout_ms);
	if (p->sock < 0) {
		err = p->sock;
		p->sock = -1;
		return err;
	}
	err = mn_ctl_hello(p->sock, MN_PORT_ROLE_PROTO, p->tenant, &peer, timeout_ms);
	err = err < 0 ? err : do_register(p, timeout_ms);
	for (unsigned int i = 0; i < p->nclaims && !err; i++)
		err = send_claim(p, MN_PORT_T_CLAIM, &p->claims[i], timeout_ms);
	if (err < 0) {
		close(p->sock);
		p->sock = -1;
		return err;
	}
	for (uint16_t q = 0; q < p->nqueues; q++)
		refill(p, q);
	p->backoff_ms = BACKOFF_MIN_MS;
	return 0;
}

/* nicd is gone: everything it held that is not in a ring comes back. */
static void on_hangup(struct portc *p)
{
	struct mn_ring *rings[4 * MN_PORT_MAX_QUEUES];
	unsigned int nr = 0;
	int n;

	close(p->sock);
	p->sock = -1;
	for (uint16_t q = 0; q < p->nqueues; q++) {
		rings[nr++] = &p->q[q].fill;
		rings[nr++] = &p->q[q].rx;
		rings[nr++] = &p->q[q].tx;
		rings[nr++] = &p->q[q].comp;
	}
	n = mn_pool_reclaim(&p->pool, rings, nr);
	mn_warn("portc", "%s: nicd hung up; %d frames reclaimed, reconnecting", p->tenant, n);
	p->next_retry_ns = now_ns();
}

int portc_check(struct portc *p)
{
	struct pollfd pfd = { .fd = p->sock, .events = POLLIN };
	uint64_t now;
	int err;

	if (p->sock >= 0) {
		/* Readable: a late answer, or nicd hung up (only then may its
		 * frames be reclaimed). */
		if (poll(&pfd, 1, 0) == 0 || drain_late_answers(p) == 0)
			return 1;
		on_hangup(p);
	}
	now = now_ns();
	if (now < p->next_retry_ns)
		return 0;
	err = portc_connect(p, 1000);
	if (err == 0) {
		p->reconnects++;
		mn_info("portc", "%s: registered again with nicd (generation %08" PRIx32 ")",
			p->tenant, p->info.generation);
		return 1;
	}
	p->next_retry_ns = now + p->backoff_ms * 1000000ull;
	p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
	return 0;
}

int portc_claim(struct portc *p, uint32_t ip, uint16_t lo, uint16_t hi, int timeout_ms)
{
	struct mn_port_claim c = { ip, lo, hi };
	int err;

	if (p->nclaims == MN_PORT_MAX_CLAIMS)
		return -ENOSPC;
	err = send_claim(p, MN_PORT_T_CLAIM, &c, timeout_ms);
	/* Disconnected: remembered all the same, and claimed at the next
	 * (re)registration, so a server started before nicd gets its ports. */
	if (err == 0 || err == -ENOTCONN)
		p->claims[p->nclaims++] = c;
	return err;
}

int portc_release(struct portc *p, uint32_t ip, uint16_t lo, uint16_t hi, int timeout_ms)
{
	struct mn_port_claim c = { ip, lo, hi };
	int err = send_claim(p, MN_PORT_T_RELEASE, &c, timeout_ms);

	for (unsigned int i = 0; err == 0 && i < p->nclaims; i++) {
		if (memcmp(&p->claims[i], &c, sizeof(c)) == 0) {
			p->claims[i] = p->claims[--p->nclaims];
			break;
		}
	}
	return err;
}

int portc_resolve(struct portc *p, uint32_t ip, uint8_t mac[6], int timeout_ms)
{
	struct mn_port_resolve r = { ip };
	struct mn_port_neigh out;
	uint32_t len = 0;
	int err = portc_request(p, MN_PORT_T_RESOLVE, &r, sizeof(r), &out, sizeof(out), &len,
				timeout_ms);

	if (err == 0 && len != sizeof(out))
		err = -EPROTO;
	if (err == 0)
		memcpy(mac, out.mac, 6);
	return err;
}

/* A descriptor from nicd is trusted only after the pool takes it back. */
static bool take_back(struct portc *p, const struct mn_pkt_desc *d, bool check_len)
{
	if (mn_pool_take(&p->pool, d->idx) != 0) {
		p->bad_desc++;
		return false;
	}
	if (check_len && ((uint32_t)d->off + d->len > p->frame_size || d->len == 0)) {
		p->bad_desc++;
		mn_pool_free(&p->pool, d->idx);
		return false;
	}
	return true;
}

int portc_rx(struct portc *p, uint16_t q, struct mn_pkt_desc *d, uint32_t n)
{
	int got = mn_ring_dequeue_burst(&p->q[q].rx, d, n), kept = 0;

	for (int i = 0; i < got; i++)
		if (take_back(p, &d[i], true))
			d[kept++] = d[i];
	if (got > 0)
		refill(p, q);
	return got < 0 ? got : kept;
}

int portc_alloc(struct portc *p, struct mn_pkt_desc *d)
{
	int idx = mn_pool_alloc(&p->pool);

	if (idx < 0)
		return idx;
	*d = (struct mn_pkt_desc){ .idx = (uint32_t)idx };
	return 0;
}

void portc_free(struct portc *p, const struct mn_pkt_desc *d)
{
	mn_pool_free(&p->pool, d->idx);
}

int portc_tx(struct portc *p, uint16_t q, struct mn_pkt_desc *d, uint32_t n)
{
	uint64_t one = 1;
	int put;

	for (uint32_t i = 0; i < n; i++)
		mn_pool_lend(&p->pool, d[i].idx);
	put = mn_ring_enqueue_burst(&p->q[q].tx, d, n);
	for (uint32_t i = put < 0 ? 0 : (uint32_t)put; i < n; i++)
		mn_pool_take(&p->pool, d[i].idx); /* not queued: still ours */
	/* Seq-cst pairs with nicd's store of nicd_sleeping before it re-checks
	 * the tx rings (ipc/port.h): one of us sees the other. */
	if (put > 0 && __atomic_load_n(&p->ctrl->nicd_sleeping, __ATOMIC_SEQ_CST) &&
	    write(p->kick_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: already kicked. */
	}
	return put;
}

int portc_poll_comp(struct portc *p, uint16_t q, uint32_t *refused)
{
	struct mn_pkt_desc d[BURST];
	int got = mn_ring_dequeue_burst(&p->q[q].comp, d, BURST);

	for (int i = 0; i < got; i++) {
		if (!take_back(p, &d[i], false))
			continue;
		if ((d[i].flags & MN_PKT_F_TX_REFUSED) && refused)
			(*refused)++;
		mn_pool_free(&p->pool, d[i].idx);
	}
	refill(p, q);
	return got;
}
