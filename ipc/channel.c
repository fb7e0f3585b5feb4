/* SPDX-License-Identifier: MIT */
#include "channel.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

#define BURST 32u

/* ------------------------------------------------------------------------
 * Chains
 */

static uint32_t view_payload(const struct mn_pool_view *v)
{
	return mn_chan_payload(v->buf_size);
}

/* A chain of @n buffers can hold exactly @len bytes, densely. */
static bool chain_shape_ok(uint32_t payload, uint32_t n, uint64_t len)
{
	return len >= 1 && n >= 1 && n == mn_chan_nbufs_for(len, payload);
}

/* Data bytes of buffer @i of a dense chain of @n buffers holding @len. */
static uint32_t chain_buf_len(uint32_t payload, uint32_t i, uint32_t n, uint32_t len)
{
	return i + 1 < n ? payload : len - (n - 1) * payload;
}

static struct mn_chan_bufhdr *buf_hdr(const struct mn_pool_view *v, uint32_t idx)
{
	return mn_pool_view_buf(v, idx, 0, MN_CHAN_BUFHDR_SIZE);
}

int mn_chan_chain_link(const struct mn_pool_view *v, const uint32_t *idx, uint32_t n,
		       uint32_t len)
{
	uint32_t payload = view_payload(v);

	if (!chain_shape_ok(payload, n, len))
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		struct mn_chan_bufhdr *h = buf_hdr(v, idx[i]);
		struct mn_chan_bufhdr w = {
			.next = i + 1 < n ? idx[i + 1] : MN_CHAN_NIL,
			.len = chain_buf_len(payload, i, n, len),
		};

		if (!h)
			return -ERANGE;
		memcpy(h, &w, sizeof(w));
	}
	return 0;
}

int mn_chan_chain_walk(const struct mn_pool_view *v, uint32_t first, uint32_t n,
		       uint32_t len, uint32_t *idx)
{
	uint32_t payload = view_payload(v), cur = first;

	if (!chain_shape_ok(payload, n, len))
		return -EINVAL;
	/* At most n steps whatever the links say: a loop cannot hang us. */
	for (uint32_t i = 0; i < n; i++) {
		const struct mn_chan_bufhdr *h = buf_hdr(v, cur);
		uint32_t next, blen;

		if (!h)
			return -ERANGE;
		/* One read of each field: the writer may change them under us,
		 * and every decision below uses these copies only. */
		next = __atomic_load_n(&h->next, __ATOMIC_RELAXED);
		blen = __atomic_load_n(&h->len, __ATOMIC_RELAXED);
		idx[i] = cur;
		if (blen != chain_buf_len(payload, i, n, len))
			return -EBADMSG;
		if ((i + 1 < n) == (next == MN_CHAN_NIL))
			return -EBADMSG;
		cur = next;
	}
	return 0;
}

/* Copy between a flat range and message bytes [off, off + len) of a chain. */
static int chain_copy(const struct mn_pool_view *v, const uint32_t *idx, uint32_t n,
		      uint32_t off, uint8_t *flat, uint32_t len, bool to_chain)
{
	uint32_t payload = view_payload(v);

	if ((uint64_t)off + len > (uint64_t)n * payload)
		return -ERANGE;
	while (len) {
		uint32_t i = off / payload, at = off % payload;
		uint32_t k = payload - at < len ? payload - at : len;
		uint8_t *p = mn_pool_view_buf(v, idx[i], MN_CHAN_BUFHDR_SIZE + at, k);

		if (!p)
			return -ERANGE;
		if (to_chain)
			memcpy(p, flat, k);
		else
			memcpy(flat, p, k);
		flat += k;
		off += k;
		len -= k;
	}
	return 0;
}

int mn_chan_chain_write(const struct mn_pool_view *v, const uint32_t *idx, uint32_t n,
			uint32_t off, const void *src, uint32_t len)
{
	return chain_copy(v, idx, n, off, (uint8_t *)(uintptr_t)src, len, true);
}

int mn_chan_chain_read(const struct mn_pool_view *v, const uint32_t *idx, uint32_t n,
		       uint32_t off, void *dst, uint32_t len)
{
	return chain_copy(v, idx, n, off, dst, len, false);
}

size_t mn_chan_iov_len(const struct iovec *iov, size_t iovcnt)
{
	size_t total = 0;

	for (size_t i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > SIZE_MAX - total)
			return SIZE_MAX;
		total += iov[i].iov_len;
	}
	return total;
}

/* Walk @iov for @len bytes, copying each piece to or from the chain. */
static int chain_iov(const struct mn_pool_view *v, const uint32_t *idx, uint32_t n,
		     uint32_t len, const struct iovec *iov, size_t iovcnt, bool to_chain)
{
	uint32_t off = 0;

	for (size_t i = 0; i < iovcnt && off < len; i++) {
		uint32_t k = iov[i].iov_len < len - off ? (uint32_t)iov[i].iov_len : len - off;
		int err;

		if (k == 0)
			continue;
		err = chain_copy(v, idx, n, off, iov[i].iov_base, k, to_chain);
		if (err)
			return err;
		off += k;
	}
	return 0;
}

int mn_chan_chain_from_iov(const struct mn_pool_view *v, const uint32_t *idx, uint32_t n,
			   const struct iovec *iov, size_t iovcnt, uint32_t len)
{
	int err;

	if (mn_chan_iov_len(iov, iovcnt) < len)
		return -EINVAL;
	err = mn_chan_chain_link(v, idx, n, len);
	return err ? err : chain_iov(v, idx, n, len, iov, iovcnt, true);
}

int mn_chan_chain_to_iov(const struct mn_pool_view *v, const uint32_t *idx, uint32_t n,
			 uint32_t len, const struct iovec *iov, size_t iovcnt)
{
	if (!chain_shape_ok(view_payload(v), n, len))
		return -EINVAL;
	if (mn_chan_iov_len(iov, iovcnt) < len)
		return -EMSGSIZE;
	return chain_iov(v, idx, n, len, iov, iovcnt, false);
}

/* ------------------------------------------------------------------------
 * Server side
 */

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 2;

	while (p < v)
		p <<= 1;
	return p;
}

static int check_params(const struct mn_chan_params *p)
{
	uint32_t max_chain;

	if (p->nbufs < 2 || p->nbufs > MN_POOL_MAX_BUFS ||
	    mn_pool_memsize(p->nbufs, p->buf_size) == 0) {
		mn_err("chan", "cannot lay out %" PRIu32 " buffers of %" PRIu32
		       " B: need 2..2^24 buffers of a multiple of 64 in 64..16 MiB",
		       p->nbufs, p->buf_size);
		return -EINVAL;
	}
	if (p->max_msg_size == 0 || p->max_msg_size > MN_CHAN_MAX_MSG) {
		mn_err("chan", "max message size %" PRIu32 " outside 1..%u", p->max_msg_size,
		       MN_CHAN_MAX_MSG);
		return -EINVAL;
	}
	max_chain = mn_chan_nbufs_for(p->max_msg_size, mn_chan_payload(p->buf_size));
	if (max_chain > p->nbufs) {
		mn_err("chan", "a message of %" PRIu32 " B needs %" PRIu32
		       " buffers of %" PRIu32 " B; the pool has %" PRIu32,
		       p->max_msg_size, max_chain, p->buf_size, p->nbufs);
		return -EINVAL;
	}
	if (p->recv_bufs && (p->recv_bufs < max_chain || p->recv_bufs > p->nbufs ||
			     p->nbufs - p->recv_bufs < max_chain)) {
		mn_err("chan", "%" PRIu32 " of %" PRIu32 " buffers reserved for receiving: a "
		       "message of %" PRIu32 " B needs %" PRIu32 " on each side; need "
		       "%" PRIu32 " .. %" PRIu32, p->recv_bufs, p->nbufs, p->max_msg_size,
		       max_chain, max_chain, p->nbufs - max_chain);
		return -EINVAL;
	}
	return 0;
}

/* ---- send and receive budgets (private bookkeeping per buffer) ---- */

static void side_set(struct mn_chan_srv *s, uint32_t idx, enum mn_chan_side side)
{
	uint8_t *cur = &s->side[idx];

	s->held[*cur]--;
	*cur = (uint8_t)side;
	s->held[side]++;
}

/* Free a buffer the server holds: it leaves whichever side held it. An
 * index the pool refuses (a bug of ours) changes no count. */
static void buf_free(struct mn_chan_srv *s, uint32_t idx)
{
	if (mn_pool_free(&s->pool, idx) == 0)
		side_set(s, idx, MN_CHAN_SIDE_NONE);
}

static uint32_t side_room(const struct mn_chan_srv *s, enum mn_chan_side side)
{
	return s->held[side] < s->budget[side] ? s->budget[side] - s->held[side] : 0;
}

uint32_t mn_chan_srv_recv_room(const struct mn_chan_srv *s)
{
	uint32_t room = side_room(s, MN_CHAN_SIDE_RECV), nfree = mn_pool_nfree(&s->pool);

	return room < nfree ? room : nfree;
}

static int srv_layout(struct mn_chan_srv *s, const struct mn_chan_params *p, uint32_t cap)
{
	struct mn_region_spec spec = {
		.kind = MN_REGION_KIND_CHANNEL,
		.nsections = 6,
		.sec = {
			{ MN_CHAN_TAG_CTRL, sizeof(struct mn_chan_ctrl) },
			{ MN_CHAN_TAG_POOL, mn_pool_memsize(p->nbufs, p->buf_size) },
			{ MN_CHAN_TAG(MN_CHAN_RING_TX), mn_chan_ring_size(cap) },
			{ MN_CHAN_TAG(MN_CHAN_RING_FILL), mn_chan_ring_size(cap) },
			{ MN_CHAN_TAG(MN_CHAN_RING_RX), mn_chan_ring_size(2 * cap) },
			{ MN_CHAN_TAG(MN_CHAN_RING_FREE), mn_chan_ring_size(cap) },
		},
	};
	char name[64];

	snprintf(name, sizeof(name), "machnet-chan-%" PRIu32, p->channel_id);
	return mn_region_create(&s->reg, name, &spec, p->region_flags);
}

/* Sections 2..5 hold the rings in enum mn_chan_ring order. */
static int ring_open(struct mn_region *reg, uint32_t sec, struct mn_ring *r, uint32_t cap,
		     enum mn_ring_role role, bool format)
{
	uint64_t len;
	void *mem = mn_region_section(reg, sec, &len);
	int err = 0;

	if (!mem)
		return -ERANGE;
	if (format)
		err = mn_ring_format(mem, len, cap, sizeof(struct mn_chan_desc));
	return err ? err : mn_ring_attach(r, mem, len, sizeof(struct mn_chan_desc), role);
}

static int srv_format(struct mn_chan_srv *s, const struct mn_chan_params *p, uint32_t cap)
{
	struct mn_ring *rings[4] = { &s->tx, &s->fill, &s->rx, &s->free };
	const enum mn_ring_role roles[4] = { MN_RING_CONSUMER, MN_RING_PRODUCER,
					     MN_RING_PRODUCER, MN_RING_CONSUMER };
	uint64_t len;
	void *pool;
	int err;

	s->ctrl = mn_region_section(&s->reg, 0, NULL);
	pool = mn_region_section(&s->reg, 1, &len);
	err = mn_pool_format(pool, len, p->nbufs, p->buf_size);
	err = err ? err : mn_pool_init(&s->pool, pool, len);
	err = err ? err : mn_pool_view_init(&s->view, pool, len);
	for (uint32_t k = 0; k < 4 && !err; k++)
		err = ring_open(&s->reg, 2 + k, rings[k], k == 2 ? 2 * cap : cap, roles[k], true);
	if (err)
		return err;
	s->ctrl->channel_id = p->channel_id;
	s->ctrl->max_msg_size = p->max_msg_size;
	s->ctrl->max_chain = s->max_chain;
	s->ctrl->ring_cap = cap;
	s->ctrl->rx_cap = 2 * cap;
	s->ctrl->server_gen = p->server_gen;
	s->ctrl->status = MN_CHAN_ST_OPEN;
	/* Magic last: pairs with the load-acquire in app_read_ctrl(). */
	__atomic_store_n(&s->ctrl->magic, MN_CHAN_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

int mn_chan_srv_create(struct mn_chan_srv *s, const struct mn_chan_params *p)
{
	uint32_t cap;
	int err = check_params(p);

	memset(s, 0, sizeof(*s));
	s->kick_fd = s->rx_fd = -1;
	if (err)
		return err;
	cap = pow2_at_least(p->nbufs);
	s->id = p->channel_id;
	s->payload = mn_chan_payload(p->buf_size);
	s->max_msg = p->max_msg_size;
	s->max_chain = mn_chan_nbufs_for(p->max_msg_size, s->payload);
	s->side = calloc(p->nbufs, sizeof(*s->side));
	if (!s->side)
		return -ENOMEM;
	s->held[MN_CHAN_SIDE_NONE] = p->nbufs;
	s->budget[MN_CHAN_SIDE_SEND] = p->recv_bufs ? p->nbufs - p->recv_bufs : p->nbufs;
	s->budget[MN_CHAN_SIDE_RECV] = p->recv_bufs ? p->recv_bufs : p->nbufs;
	err = srv_layout(s, p, cap);
	if (err)
		goto fail_side;
	err = srv_format(s, p, cap);
	if (err)
		goto fail_region;
	s->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->kick_fd < 0)
		goto fail_errno;
	s->rx_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->rx_fd < 0)
		goto fail_kick;
	return 0;

fail_kick:
	err = -errno;
	close(s->kick_fd);
	goto fail_region;
fail_errno:
	err = -errno;
fail_region:
	mn_pool_fini(&s->pool);
	mn_region_unmap(&s->reg);
fail_side:
	free(s->side);
	memset(s, 0, sizeof(*s));
	s->kick_fd = s->rx_fd = -1;
	return err;
}

void mn_chan_srv_destroy(struct mn_chan_srv *s)
{
	free(s->side);
	mn_pool_fini(&s->pool);
	mn_region_unmap(&s->reg);
	if (s->kick_fd >= 0)
		close(s->kick_fd);
	if (s->rx_fd >= 0)
		close(s->rx_fd);
	memset(s, 0, sizeof(*s));
	s->kick_fd = s->rx_fd = -1;
}

int mn_chan_srv_refill(struct mn_chan_srv *s, uint32_t target)
{
	struct mn_chan_desc d[BURST];
	uint32_t first, pending;
	int lent = 0, err;

	err = mn_ring_pending(&s->fill, &first, &pending);
	if (err)
		return err;
	while (pending + (uint32_t)lent < target) {
		uint32_t n = 0;
		int put;

		while (n < BURST && pending + (uint32_t)lent + n < target) {
			int idx;

			if (side_room(s, MN_CHAN_SIDE_SEND) == 0) {
				/* Once per stop, not once per poll pass. */
				s->st.send_capped += !s->send_stopped;
				s->send_stopped = true;
				break;
			}
			s->send_stopped = false;
			idx = mn_pool_alloc(&s->pool);
			if (idx < 0)
				break;
			side_set(s, (uint32_t)idx, MN_CHAN_SIDE_SEND);
			mn_pool_lend(&s->pool, (uint32_t)idx);
			d[n++] = (struct mn_chan_desc){ .idx = (uint32_t)idx, .nbufs = 1,
							.type = MN_CHAN_D_BUF };
		}
		if (n == 0)
			break;
		put = mn_ring_enqueue_burst(&s->fill, d, n);
		/* Not queued (only if the peer tampered with the ring): ours again. */
		for (uint32_t i = put < 0 ? 0 : (uint32_t)put; i < n; i++) {
			mn_pool_take(&s->pool, d[i].idx);
			buf_free(s, d[i].idx);
		}
		if (put < 0)
			return put;
		lent += put;
		if ((uint32_t)put < n)
			break;
	}
	if (lent)
		s->published |= MN_CHAN_WAIT_FILL;
	return lent;
}

/*
 * Take back the chain from @first, @n buffers. @len > 0: a message, dense,
 * NIL-terminated. @len == 0: buffers given back, only the links between
 * them matter. With @idx NULL each buffer is freed as soon as its link is
 * read (free ring); otherwise they are kept, listed in @idx, and freed again
 * if the chain turns out bad.
 */
static int take_chain(struct mn_chan_srv *s, uint32_t first, uint32_t n, uint32_t len,
		      uint32_t *idx)
{
	uint32_t cur = first, taken = 0;
	int err = 0;

	if (n == 0 || n > (len ? s->max_chain : s->pool.nbufs) ||
	    (len && n != mn_chan_nbufs_for(len, s->payload))) {
		err = -EINVAL;
		goto bad;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct mn_chan_bufhdr *h;
		uint32_t next, blen;

		/* Ownership first: a forged index, a buffer returned twice or
		 * a loop back into this chain all stop here. */
		err = mn_pool_take(&s->pool, cur);
		if (err)
			goto bad;
		if (idx)
			idx[taken] = cur;
		taken++;
		if (len == 0 && i + 1 == n) {
			if (!idx)
				buf_free(s, cur);
			break;
		}
		h = buf_hdr(&s->view, cur);
		next = __atomic_load_n(&h->next, __ATOMIC_RELAXED);
		blen = __atomic_load_n(&h->len, __ATOMIC_RELAXED);
		if (!idx)
			buf_free(s, cur);
		if ((len && blen != chain_buf_len(s->payload, i, n, len)) ||
		    (i + 1 < n && next == MN_CHAN_NIL) || (len && i + 1 == n && next != MN_CHAN_NIL)) {
			err = -EBADMSG;
			goto bad;
		}
		cur = next;
	}
	return 0;

bad:
	for (uint32_t i = 0; idx && i < taken; i++)
		buf_free(s, idx[i]);
	s->st.bad_chain++;
	mn_warn_rl("chan", "channel %" PRIu32 ": refused a chain from buffer %" PRIu32
		   " (%" PRIu32 " buffers, %" PRIu32 " B): %s at buffer %" PRIu32 " (step %" PRIu32 ")",
		   s->id, first, n, len, strerror(-err), cur, taken);
	return err;
}

int mn_chan_srv_take_chain(struct mn_chan_srv *s, uint32_t first, uint32_t n,
			   uint32_t len, uint32_t *idx)
{
	return take_chain(s, first, n, len, idx);
}

int mn_chan_srv_tx_take(struct mn_chan_srv *s, struct mn_chan_desc *d, uint32_t *idx)
{
	int r = mn_ring_dequeue(&s->tx, d);

	if (r <= 0)
		return r;
	if (d->type != MN_CHAN_D_MSG || d->len == 0 || d->len > s->max_msg) {
		s->st.bad_desc++;
		mn_warn_rl("chan", "channel %" PRIu32 ": tx descriptor of type %u, %" PRIu32
			   " B (max %" PRIu32 "): refused", s->id, d->type, d->len, s->max_msg);
		return d->type == MN_CHAN_D_MSG && d->len > s->max_msg ? -EMSGSIZE : -EPROTO;
	}
	if (take_chain(s, d->idx, d->nbufs, d->len, idx) != 0)
		return -EPROTO;
	/* Until it is acknowledged, a message counts against the send side,
	 * even one made of buffers received earlier. */
	for (uint32_t i = 0; i < d->nbufs; i++)
		side_set(s, idx[i], MN_CHAN_SIDE_SEND);
	s->st.tx_msgs++;
	s->st.tx_bytes += d->len;
	return 1;
}

int mn_chan_srv_free_poll(struct mn_chan_srv *s, uint32_t max)
{
	struct mn_chan_desc d[BURST];
	int freed = 0;

	while (max > 0) {
		int got = mn_ring_dequeue_burst(&s->free, d, max < BURST ? max : BURST);

		if (got < 0)
			return freed ? freed : got;
		if (got == 0)
			break;
		max -= (uint32_t)got;
		for (int i = 0; i < got; i++) {
			if (d[i].type != MN_CHAN_D_BUF && d[i].type != MN_CHAN_D_MSG) {
				s->st.bad_desc++;
				continue;
			}
			if (take_chain(s, d[i].idx, d[i].nbufs, 0, NULL) == 0) {
				freed += (int)d[i].nbufs;
				s->st.freed += d[i].nbufs;
			}
		}
	}
	return freed;
}

int mn_chan_srv_chain_alloc(struct mn_chan_srv *s, uint32_t len, unsigned int flags,
			    uint32_t *idx)
{
	uint32_t n, keep;

	if (len == 0 || len > s->max_msg)
		return -EMSGSIZE;
	n = mn_chan_nbufs_for(len, s->payload);
	keep = flags & MN_CHAN_ALLOC_AHEAD ? s->max_chain : 0;
	if (side_room(s, MN_CHAN_SIDE_RECV) < n + keep) {
		s->st.recv_capped++;
		return -ENOBUFS;
	}
	if (mn_pool_nfree(&s->pool) < n) {
		s->pool.stats.alloc_fail++;
		return -ENOBUFS;
	}
	for (uint32_t i = 0; i < n; i++) {
		idx[i] = (uint32_t)mn_pool_alloc(&s->pool);
		side_set(s, idx[i], MN_CHAN_SIDE_RECV);
	}
	mn_chan_chain_link(&s->view, idx, n, len);
	return (int)n;
}

void mn_chan_srv_chain_free(struct mn_chan_srv *s, const uint32_t *idx, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		buf_free(s, idx[i]);
}

int mn_chan_srv_deliver(struct mn_chan_srv *s, const struct mn_chan_flow *flow,
			const uint32_t *idx, uint32_t n, uint32_t len, uint64_t cookie)
{
	struct mn_chan_desc d = {
		.idx = idx[0], .nbufs = n, .len = len, .type = MN_CHAN_D_MSG,
		.flow = *flow, .cookie = cookie,
	};
	int put;

	if (len == 0 || len > s->max_msg || !chain_shape_ok(s->payload, n, len))
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++)
		if (mn_pool_state(&s->pool, idx[i]) != MN_BUF_OWNER)
			return -EINVAL;
	/* Rewrite the links: the application could reach these buffers'
	 * bytes while they were ours, and its reader must find them right. */
	mn_chan_chain_link(&s->view, idx, n, len);
	/* Lend before publishing: once the descriptor is visible the
	 * application may give the chain back at once. */
	for (uint32_t i = 0; i < n; i++)
		mn_pool_lend(&s->pool, idx[i]);
	put = mn_ring_enqueue(&s->rx, &d);
	if (put != 1) {
		for (uint32_t i = 0; i < n; i++)
			mn_pool_take(&s->pool, idx[i]);
		if (put == 0)
			s->st.rx_full++;
		return put;
	}
	s->published |= MN_CHAN_WAIT_RX;
	s->st.rx_msgs++;
	s->st.rx_bytes += len;
	return 1;
}

int mn_chan_srv_post(struct mn_chan_srv *s, uint16_t type, const struct mn_chan_flow *flow,
		     int32_t status, uint64_t cookie)
{
	struct mn_chan_desc d = {
		.idx = MN_CHAN_NIL, .type = type, .flow = *flow, .status = status,
		.cookie = cookie,
	};
	int put;

	if (type < MN_CHAN_EV_CONNECTED || type > MN_CHAN_EV_TX_REFUSED)
		return -EINVAL;
	put = mn_ring_enqueue(&s->rx, &d);
	if (put == 0)
		s->st.rx_full++;
	if (put == 1) {
		s->published |= MN_CHAN_WAIT_RX;
		s->st.events++;
	}
	return put;
}

static void poke(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated; the reader wakes anyway. */
	}
}

void mn_chan_srv_wake(struct mn_chan_srv *s)
{
	uint32_t wait;

	if (!s->published)
		return;
	/* Seq-cst pairs with the application's store of app_wait before it
	 * re-checks rx (mn_chan_app_set_wait()): one of us sees the other. */
	wait = __atomic_load_n(&s->ctrl->app_wait, __ATOMIC_SEQ_CST);
	if (wait & s->published) {
		poke(s->rx_fd);
		s->st.wakeups++;
	}
	s->published = 0;
}

bool mn_chan_srv_pending(struct mn_chan_srv *s)
{
	/* A corrupt ring counts as pending: the caller looks and finds out. */
	return mn_ring_count(&s->tx) != 0 || mn_ring_count(&s->free) != 0;
}

bool mn_chan_srv_sleep_prepare(struct mn_chan_srv *s)
{
	/* Seq-cst pairs with the application's load of srv_sleeping after it
	 * publishes on tx or free (mn_chan_app_kick()). */
	__atomic_store_n(&s->ctrl->srv_sleeping, 1, __ATOMIC_SEQ_CST);
	if (mn_chan_srv_pending(s)) {
		__atomic_store_n(&s->ctrl->srv_sleeping, 0, __ATOMIC_SEQ_CST);
		return false;
	}
	return true;
}

void mn_chan_srv_sleep_done(struct mn_chan_srv *s)
{
	uint64_t v;

	__atomic_store_n(&s->ctrl->srv_sleeping, 0, __ATOMIC_SEQ_CST);
	if (read(s->kick_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nobody kicked. */
	}
}

void mn_chan_srv_close(struct mn_chan_srv *s, int32_t reason)
{
	s->ctrl->status_reason = reason;
	/* Release pairs with the load-acquire in mn_chan_app_status(): the
	 * reason is visible once CLOSED is. */
	__atomic_store_n(&s->ctrl->status, MN_CHAN_ST_CLOSED, __ATOMIC_RELEASE);
	poke(s->rx_fd);
}

/* ------------------------------------------------------------------------
 * Application side
 */

#define FILL_BATCH 32u

static int app_sections(struct mn_chan_app *a, void **ctrl, void **pool, uint64_t *pool_len)
{
	uint64_t ctrl_len;
	int ci = mn_region_find(&a->reg, MN_CHAN_TAG_CTRL);
	int pi = mn_region_find(&a->reg, MN_CHAN_TAG_POOL);

	if (ci < 0 || pi < 0) {
		mn_err("chan", "channel region lacks its %s section",
		       ci < 0 ? "control" : "pool");
		return -EBADMSG;
	}
	*ctrl = mn_region_section(&a->reg, (uint32_t)ci, &ctrl_len);
	*pool = mn_region_section(&a->reg, (uint32_t)pi, pool_len);
	if (ctrl_len < sizeof(struct mn_chan_ctrl)) {
		mn_err("chan", "control section of %" PRIu64 " B, need %zu", ctrl_len,
		       sizeof(struct mn_chan_ctrl));
		return -ERANGE;
	}
	return 0;
}

/* Copy the creator's part of the control block once; check the copy. */
static int app_read_ctrl(struct mn_chan_app *a)
{
	const struct mn_chan_ctrl *c = a->ctrl;
	/* Acquire pairs with the store-release of magic in srv_format(). */
	uint32_t magic = __atomic_load_n(&c->magic, __ATOMIC_ACQUIRE);

	a->id = __atomic_load_n(&c->channel_id, __ATOMIC_RELAXED);
	a->max_msg = __atomic_load_n(&c->max_msg_size, __ATOMIC_RELAXED);
	a->max_chain = __atomic_load_n(&c->max_chain, __ATOMIC_RELAXED);
	a->server_gen = __atomic_load_n(&c->server_gen, __ATOMIC_RELAXED);
	if (magic != MN_CHAN_MAGIC) {
		mn_err("chan", "control block magic 0x%08" PRIx32 ", expected 0x%08x", magic,
		       MN_CHAN_MAGIC);
		return -EBADMSG;
	}
	if (a->max_msg == 0 || a->max_msg > MN_CHAN_MAX_MSG ||
	    a->max_chain != mn_chan_nbufs_for(a->max_msg, a->payload) ||
	    a->max_chain > a->nbufs) {
		mn_err("chan", "impossible limits: messages of %" PRIu32 " B in %" PRIu32
		       " buffers (pool of %" PRIu32 " x %" PRIu32 " B data)",
		       a->max_msg, a->max_chain, a->nbufs, a->payload);
		return -EBADMSG;
	}
	return 0;
}

static int app_rings(struct mn_chan_app *a)
{
	struct mn_ring *rings[4] = { &a->tx, &a->fill, &a->rx, &a->free };
	const enum mn_ring_role roles[4] = { MN_RING_PRODUCER, MN_RING_CONSUMER,
					     MN_RING_CONSUMER, MN_RING_PRODUCER };

	for (uint32_t k = 0; k < 4; k++) {
		int i = mn_region_find(&a->reg, MN_CHAN_TAG(k + 1));
		int err;

		if (i < 0) {
			mn_err("chan", "channel region lacks ring %" PRIu32, k + 1);
			return -EBADMSG;
		}
		err = ring_open(&a->reg, (uint32_t)i, rings[k], 0, roles[k], false);
		if (err)
			return err;
	}
	return 0;
}

static uint32_t cache_cap(const struct mn_chan_app *a)
{
	return a->max_chain + MN_CHAN_APP_CACHE_MAX + FILL_BATCH;
}

int mn_chan_app_map(struct mn_chan_app *a, int region_fd, int kick_fd, int rx_fd)
{
	uint64_t pool_len;
	void *ctrl, *pool;
	int err;

	memset(a, 0, sizeof(*a));
	a->kick_fd = a->rx_fd = -1;
	err = mn_region_map(&a->reg, region_fd, MN_REGION_KIND_CHANNEL);
	if (err)
		return err;
	err = app_sections(a, &ctrl, &pool, &pool_len);
	if (err)
		goto fail;
	a->ctrl = ctrl;
	err = mn_pool_view_init(&a->view, pool, pool_len);
	if (err)
		goto fail;
	a->nbufs = a->view.nbufs;
	a->payload = mn_chan_payload(a->view.buf_size);
	err = app_read_ctrl(a);
	err = err ? err : app_rings(a);
	if (err)
		goto fail;
	a->cache = malloc((size_t)cache_cap(a) * sizeof(*a->cache));
	a->tx_idx = malloc((size_t)a->max_chain * sizeof(*a->tx_idx));
	a->rx_idx = malloc((size_t)a->max_chain * sizeof(*a->rx_idx));
	if (!a->cache || !a->tx_idx || !a->rx_idx) {
		err = -ENOMEM;
		goto fail_mem;
	}
	a->kick_fd = kick_fd;
	a->rx_fd = rx_fd;
	return 0;

fail_mem:
	free(a->cache);
	free(a->tx_idx);
	free(a->rx_idx);
fail:
	/* The caller keeps region_fd: take it back from the handle. */
	a->reg.fd = -1;
	mn_region_unmap(&a->reg);
	memset(a, 0, sizeof(*a));
	a->kick_fd = a->rx_fd = -1;
	return err;
}

void mn_chan_app_unmap(struct mn_chan_app *a)
{
	mn_region_unmap(&a->reg);
	if (a->kick_fd >= 0)
		close(a->kick_fd);
	if (a->rx_fd >= 0)
		close(a->rx_fd);
	free(a->cache);
	free(a->tx_idx);
	free(a->rx_idx);
	memset(a, 0, sizeof(*a));
	a->kick_fd = a->rx_fd = -1;
}

uint32_t mn_chan_app_status(const struct mn_chan_app *a, int32_t *reason)
{
	/* Acquire pairs with the store-release in mn_chan_srv_close(). */
	uint32_t st = __atomic_load_n(&a->ctrl->status, __ATOMIC_ACQUIRE);

	if (st == MN_CHAN_ST_OPEN)
		return st;
	if (reason)
		*reason = __atomic_load_n(&a->ctrl->status_reason, __ATOMIC_RELAXED);
	return MN_CHAN_ST_CLOSED;
}

void mn_chan_app_set_wait(struct mn_chan_app *a, uint32_t bits)
{
	/* Seq-cst pairs with the server's load of app_wait after it publishes
	 * (mn_chan_srv_wake()). */
	__atomic_store_n(&a->ctrl->app_wait, bits, __ATOMIC_SEQ_CST);
}

void mn_chan_app_kick(struct mn_chan_app *a)
{
	/* Seq-cst pairs with the server's store of srv_sleeping before it
	 * re-checks tx and free (mn_chan_srv_sleep_prepare()). */
	if (__atomic_load_n(&a->ctrl->srv_sleeping, __ATOMIC_SEQ_CST))
		poke(a->kick_fd);
}

/* Give @n buffers back on free, one descriptor each. */
static void app_give_back(struct mn_chan_app *a, const uint32_t *idx, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct mn_chan_desc d = { .idx = idx[i], .nbufs = 1, .type = MN_CHAN_D_BUF };

		/* free holds every buffer: full only if the server broke it. */
		if (mn_ring_enqueue(&a->free, &d) == 1)
			a->st.returned++;
	}
}

/* Move up to @want valid buffers from fill into the cache. */
static void app_take_fill(struct mn_chan_app *a, uint32_t want)
{
	struct mn_chan_desc d[BURST];
	uint32_t room = cache_cap(a) - a->ncache;

	want = want < room ? want : room;
	while (want > 0) {
		int got = mn_ring_dequeue_burst(&a->fill, d, want < BURST ? want : BURST);

		if (got <= 0)
			return;
		want -= (uint32_t)got;
		for (int i = 0; i < got; i++) {
			if (d[i].type != MN_CHAN_D_BUF || d[i].idx >= a->nbufs) {
				a->st.bad_fill++;
				continue;
			}
			a->cache[a->ncache++] = d[i].idx;
		}
	}
}

/* Take @n buffers from the cache into @idx, all or none. */
static int app_get_bufs(struct mn_chan_app *a, uint32_t n, uint32_t *idx)
{
	if (a->ncache < n)
		app_take_fill(a, n - a->ncache + FILL_BATCH);
	if (a->ncache < n)
		return -ENOBUFS;
	for (uint32_t i = 0; i < n; i++)
		idx[i] = a->cache[--a->ncache];
	return 0;
}

/*
 * Undo app_get_bufs(). No trimming here: the free ring belongs to the
 * receive side (one producer), and the cache needs none: app_get_bufs()
 * tops it up only when short, to at most n + FILL_BATCH, so it never holds
 * more than max_chain + FILL_BATCH buffers.
 */
static void app_put_bufs(struct mn_chan_app *a, const uint32_t *idx, uint32_t n)
{
	for (uint32_t i = n; i-- > 0;)
		a->cache[a->ncache++] = idx[i];
}

int mn_chan_app_send(struct mn_chan_app *a, const struct mn_chan_flow *flow,
		     const struct iovec *iov, size_t iovcnt, uint32_t len,
		     uint16_t flags, uint64_t cookie)
{
	struct mn_chan_desc d = {
		.nbufs = 0, .len = len, .type = MN_CHAN_D_MSG, .flags = flags,
		.flow = *flow, .cookie = cookie,
	};
	int err;

	if (mn_chan_app_status(a, NULL) != MN_CHAN_ST_OPEN)
		return -ESHUTDOWN;
	if (len == 0)
		return -EINVAL;
	if (len > a->max_msg)
		return -EMSGSIZE;
	if (mn_chan_iov_len(iov, iovcnt) < len)
		return -EINVAL;
	d.nbufs = mn_chan_nbufs_for(len, a->payload);
	err = app_get_bufs(a, d.nbufs, a->tx_idx);
	if (err)
		return err;
	err = mn_chan_chain_from_iov(&a->view, a->tx_idx, d.nbufs, iov, iovcnt, len);
	if (err == 0) {
		d.idx = a->tx_idx[0];
		err = mn_ring_enqueue(&a->tx, &d);
		err = err == 1 ? 0 : err == 0 ? -EAGAIN : err;
	}
	if (err)
		app_put_bufs(a, a->tx_idx, d.nbufs);
	return err;
}

uint32_t mn_chan_app_flush_cache(struct mn_chan_app *a)
{
	uint32_t n = a->ncache;

	app_give_back(a, a->cache, n);
	a->ncache = 0;
	return n;
}

int mn_chan_app_peek(struct mn_chan_app *a, struct mn_chan_desc *d)
{
	struct mn_ring *r = &a->rx;
	/* Acquire pairs with the store-release of prod_tail in
	 * mn_ring_enqueue_burst(): the slot is written before we see it. */
	uint32_t prod = __atomic_load_n(&r->shm->prod_tail, __ATOMIC_ACQUIRE);

	if (prod - r->pos > r->capacity)
		return mn_ring__corrupt(r, "prod_tail", r->pos, prod);
	if (prod == r->pos)
		return 0;
	/* Slots in [cons_head, prod_tail) are ours to read until we consume. */
	memcpy(d, mn_ring_slot(r, r->pos), sizeof(*d));
	return 1;
}

int mn_chan_app_rx_pending(struct mn_chan_app *a)
{
	uint32_t prod = __atomic_load_n(&a->rx.shm->prod_tail, __ATOMIC_ACQUIRE);

	if (prod - a->rx.pos > a->rx.capacity)
		return mn_ring__corrupt(&a->rx, "prod_tail", a->rx.pos, prod);
	return (int)(prod - a->rx.pos);
}

/* Consume the head of rx that mn_chan_app_peek() showed. */
static int app_consume(struct mn_chan_app *a)
{
	struct mn_chan_desc scratch;
	int r = mn_ring_dequeue(&a->rx, &scratch);

	return r == 1 ? 0 : r < 0 ? r : -EBADMSG;
}

/* Give a received chain back; the server validates it. */
static void app_free_chain(struct mn_chan_app *a, uint32_t first, uint32_t n)
{
	struct mn_chan_desc d = { .idx = first, .nbufs = n, .type = MN_CHAN_D_BUF };

	if (mn_ring_enqueue(&a->free, &d) == 1)
		a->st.returned += n;
}

static int app_bad_rx(struct mn_chan_app *a, const struct mn_chan_desc *d, const char *why)
{
	a->st.bad_rx++;
	mn_warn_rl("chan", "channel %" PRIu32 ": dropped an rx descriptor (type %u, buffer %"
		   PRIu32 ", %" PRIu32 " buffers, %" PRIu32 " B): %s",
		   a->id, d->type, d->idx, d->nbufs, d->len, why);
	return -EPROTO;
}

int mn_chan_app_recv(struct mn_chan_app *a, struct mn_chan_desc *d,
		     const struct iovec *iov, size_t iovcnt)
{
	int r = mn_chan_app_peek(a, d), err;

	if (r <= 0)
		return r;
	if (d->type >= MN_CHAN_EV_CONNECTED) {
		err = app_consume(a);
		return err ? err : 1;
	}
	if (d->type != MN_CHAN_D_MSG || d->len == 0 || d->len > a->max_msg ||
	    d->nbufs != mn_chan_nbufs_for(d->len, a->payload)) {
		err = app_consume(a);
		return err ? err : app_bad_rx(a, d, "type or lengths");
	}
	if (mn_chan_iov_len(iov, iovcnt) < d->len)
		return -EMSGSIZE;
	err = mn_chan_chain_walk(&a->view, d->idx, d->nbufs, d->len, a->rx_idx);
	if (err == 0)
		err = mn_chan_chain_to_iov(&a->view, a->rx_idx, d->nbufs, d->len, iov, iovcnt);
	r = app_consume(a);
	if (r)
		return r;
	app_free_chain(a, d->idx, d->nbufs);
	return err ? app_bad_rx(a, d, strerror(-err)) : 1;
}
