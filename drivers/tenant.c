/* SPDX-License-Identifier: MIT */
#include "tenant.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int check_request(const struct tnt *t, const struct mn_port_register *req,
			 uint16_t nqueues_nicd, uint32_t frame_min, uint32_t nframes_max)
{
	if (req->nqueues != nqueues_nicd) {
		mn_err("tenant", "%s: registers %u queues, nicd runs %u: configure the same number",
		       t->cfg->name, req->nqueues, nqueues_nicd);
		return -EINVAL;
	}
	if (req->nframes == 0 || req->nframes > nframes_max) {
		mn_err("tenant", "%s: %" PRIu32 " frames, allowed 1..%" PRIu32 " (nframes_max)",
		       t->cfg->name, req->nframes, nframes_max);
		return -EINVAL;
	}
	if (req->frame_size < frame_min || req->frame_size > UINT16_MAX) {
		mn_err("tenant", "%s: frame size %" PRIu32 ", need %" PRIu32 "..65535 for the MTU",
		       t->cfg->name, req->frame_size, frame_min);
		return -EINVAL;
	}
	if (req->ring_cap < req->nframes) {
		mn_err("tenant", "%s: rings of %" PRIu32 " cannot hold all %" PRIu32 " frames",
		       t->cfg->name, req->ring_cap, req->nframes);
		return -EINVAL;
	}
	return 0;
}

static void *section(struct tnt *t, uint32_t tag, uint64_t *len)
{
	int i = mn_region_find(&t->reg, tag);

	if (i < 0) {
		mn_err("tenant", "%s: port region has no section tagged 0x%" PRIx32,
		       t->cfg->name, tag);
		return NULL;
	}
	return mn_region_section(&t->reg, (uint32_t)i, len);
}

static int attach_ring(struct tnt *t, struct mn_ring *r, enum mn_port_ring kind,
		       uint16_t q, uint32_t cap, enum mn_ring_role role)
{
	size_t size = mn_port_ring_size(cap);
	uint64_t len;
	uint8_t *mem = section(t, MN_PORT_TAG(kind), &len);
	int err;

	if (!mem)
		return -EPROTO;
	if (len < (uint64_t)(q + 1) * size) {
		mn_err("tenant", "%s: ring section %d holds %" PRIu64 " bytes, queue %u needs %zu",
		       t->cfg->name, (int)kind, len, q, (size_t)(q + 1) * size);
		return -EPROTO;
	}
	err = mn_ring_attach(r, mem + (size_t)q * size, size, sizeof(struct mn_pkt_desc), role);
	if (err)
		return err;
	if (mn_ring_capacity(r) != cap) {
		mn_err("tenant", "%s: ring %d/%u has capacity %" PRIu32 ", registered %" PRIu32,
		       t->cfg->name, (int)kind, q, mn_ring_capacity(r), cap);
		return -EPROTO;
	}
	return 0;
}

static int attach_layout(struct tnt *t, const struct mn_port_register *req)
{
	uint64_t len;
	void *mem;
	int err;

	mem = section(t, MN_PORT_TAG_CTRL, &len);
	if (!mem || len < sizeof(struct mn_port_ctrl))
		return -EPROTO;
	t->ctrl = mem;
	mem = section(t, MN_PORT_TAG_POOL, &len);
	if (!mem)
		return -EPROTO;
	err = mn_pool_view_init(&t->pool, mem, len);
	if (err)
		return err;
	if (t->pool.nbufs != req->nframes || t->pool.buf_size != req->frame_size) {
		mn_err("tenant", "%s: pool holds %" PRIu32 " x %" PRIu32 " B, registered %" PRIu32 " x %" PRIu32,
		       t->cfg->name, t->pool.nbufs, t->pool.buf_size, req->nframes, req->frame_size);
		return -EPROTO;
	}
	for (uint16_t q = 0; q < req->nqueues && !err; q++) {
		struct tnt_queue *tq = &t->q[q];

		err = attach_ring(t, &tq->fill, MN_PORT_RING_FILL, q, req->ring_cap,
				  MN_RING_CONSUMER);
		err = err ? err : attach_ring(t, &tq->rx, MN_PORT_RING_RX, q, req->ring_cap,
					      MN_RING_PRODUCER);
		err = err ? err : attach_ring(t, &tq->tx, MN_PORT_RING_TX, q, req->ring_cap,
					      MN_RING_CONSUMER);
		err = err ? err : attach_ring(t, &tq->comp, MN_PORT_RING_COMP, q, req->ring_cap,
					      MN_RING_PRODUCER);
		tq->nfill = 0;
		tq->nrx = 0;
	}
	return err;
}

int tnt_attach(struct tnt *t, const struct mn_port_register *req, const int *fds,
	       uint16_t nqueues_nicd, uint32_t frame_min, uint32_t nframes_max,
	       bool trusted)
{
	int err, rfd, kick, rx;

	err = check_request(t, req, nqueues_nicd, frame_min, nframes_max);
	if (err)
		return err;
	rfd = dup(fds[MN_PORT_FD_REGION]);
	if (rfd < 0)
		return -errno;
	err = mn_region_map_flags(&t->reg, rfd, MN_REGION_KIND_PORT,
				  trusted ? 0 : MN_REGION_MAP_F_NO_HUGE);
	if (err)
		goto fail_fd;
	err = attach_layout(t, req);
	if (err)
		goto fail_map;
	kick = dup(fds[MN_PORT_FD_KICK]);
	if (kick < 0) {
		err = -errno;
		goto fail_map;
	}
	rx = dup(fds[MN_PORT_FD_RX]);
	if (rx < 0) {
		err = -errno;
		goto fail_kick;
	}
	t->nqueues = req->nqueues;
	t->frame_size = req->frame_size;
	t->kick_fd = kick;
	t->rx_fd = rx;
	t->connected = true;
	return 0;

fail_kick:
	close(kick);
fail_map:
	mn_region_unmap(&t->reg); /* closes rfd */
	return err;
fail_fd:
	close(rfd);
	return err;
}

void tnt_detach(struct tnt *t)
{
	if (!t->connected)
		return;
	/* Unmap first: nothing may touch the tenant's memory after this. */
	mn_region_unmap(&t->reg);
	close(t->kick_fd);
	close(t->rx_fd);
	t->kick_fd = t->rx_fd = -1;
	t->ctrl = NULL;
	t->connected = false;
	t->nqueues = 0;
	memset(t->q, 0, sizeof(t->q));
}

void tnt_wake(struct tnt *t)
{
	uint64_t one = 1;

	/* Seq-cst pairs with the protocol server's store of proto_sleeping
	 * before it re-checks its rings (see ipc/port.h). */
	if (__atomic_load_n(&t->ctrl->proto_sleeping, __ATOMIC_SEQ_CST) &&
	    write(t->rx_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, it will wake anyway. */
	}
}
