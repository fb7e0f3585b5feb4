/* SPDX-License-Identifier: MIT */
/*
 * tnt: nicd's view of one tenant: its configuration, the protocol server
 * registered for it, and the port region that server handed over.
 */
#ifndef MN_DRIVERS_TENANT_H
#define MN_DRIVERS_TENANT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "pool.h"
#include "port.h"
#include "region.h"
#include "ring.h"

#define TNT_FILL_CACHE 64u
#define TNT_BURST 32u

struct tnt_queue {
	struct mn_ring fill; /* we consume */
	struct mn_ring rx;   /* we produce */
	struct mn_ring tx;   /* we consume */
	struct mn_ring comp; /* we produce */
	/* Fill descriptors taken but not used yet; lost (and reclaimed by
	 * the protocol server) if nicd dies. */
	struct mn_pkt_desc fill_cache[TNT_FILL_CACHE];
	uint32_t nfill;
	/* Received frames waiting to be published in one burst. */
	struct mn_pkt_desc rx_batch[TNT_BURST];
	uint32_t nrx;
};

struct tnt {
	const struct nicd_tenant_cfg *cfg;
	uint16_t id;	      /* index in the configuration = port table id */
	bool connected;	      /* a protocol server is registered */
	int fd;		      /* its control socket, -1 if none */
	pid_t pid;
	struct mn_region reg;
	struct mn_pool_view pool;
	struct mn_port_ctrl *ctrl;
	uint16_t nqueues;
	uint32_t frame_size;
	int kick_fd;	      /* eventfd the protocol server writes */
	int rx_fd;	      /* eventfd we write when it sleeps */
	struct tnt_queue q[MN_PORT_MAX_QUEUES];
	struct mn_port_counters c;
};

/*
 * tnt_attach - map and validate the port region of a REGISTER request and
 * attach to its rings.
 * @fds: region, kick and rx eventfds (MN_PORT_FD_*); never taken: @t
 *       keeps duplicates, the caller closes its own.
 * @nqueues_nicd: queues nicd runs; the request must ask for exactly that.
 * @frame_min: smallest frame size acceptable (MTU + Ethernet header).
 * @nframes_max: the configured limit.
 * @trusted: the protocol server runs as root; others may not hand over
 *           hugetlbfs-backed regions (a punched hole would fault in nicd).
 * Returns 0; -EINVAL (request fields), -EPROTO (region layout does not
 * match the request), or a region/ring/pool error. Logs why.
 */
int tnt_attach(struct tnt *t, const struct mn_port_register *req, const int *fds,
	       uint16_t nqueues_nicd, uint32_t frame_min, uint32_t nframes_max,
	       bool trusted);

/*
 * tnt_detach - forget the registration: unmap the region (first, so nothing
 * touches its memory afterwards) and close the eventfds. The control socket
 * is the caller's. Counters are kept.
 */
void tnt_detach(struct tnt *t);

/* Wake the protocol server if it sleeps (after publishing rx or comp). */
void tnt_wake(struct tnt *t);

#endif /* MN_DRIVERS_TENANT_H */
