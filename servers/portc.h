/* SPDX-License-Identifier: MIT */
/*
 * portc: the protocol-server side of a tenant port (ipc/port.h): create the
 * port region, register it with machnet-nicd, claim ports, resolve next
 * hops, move frames, and survive nicd restarts.
 *
 * The port region belongs to this process and outlives nicd: when nicd
 * hangs up, portc_check() takes back every frame nicd held (except those
 * still in the rings), reconnects with back-off, re-registers the same
 * region and re-claims every port; the rings continue where they stand.
 *
 * Not thread-safe: one thread per port.
 */
#ifndef MN_SERVERS_PORTC_H
#define MN_SERVERS_PORTC_H

#include <stdbool.h>
#include <stdint.h>

#include "pool.h"
#include "port.h"
#include "region.h"
#include "ring.h"

struct portc_queue {
	struct mn_ring fill; /* we produce */
	struct mn_ring rx;   /* we consume */
	struct mn_ring tx;   /* we produce */
	struct mn_ring comp; /* we consume */
};

struct portc {
	char tenant[MN_CTL_NAME_MAX];
	char sock_path[256];
	struct mn_region reg;
	struct mn_pool pool;
	struct mn_port_ctrl *ctrl;
	struct portc_queue q[MN_PORT_MAX_QUEUES];
	uint16_t nqueues;
	uint32_t nframes;
	uint32_t frame_size;
	uint32_t fill_target; /* frames kept on each fill ring */
	int kick_fd;
	int rx_fd;
	int sock;	      /* -1 while disconnected */
	uint32_t req_id;
	struct mn_port_registered info; /* from the last REGISTER */
	struct mn_port_claim claims[MN_PORT_MAX_CLAIMS];
	unsigned int nclaims;
	uint64_t next_retry_ns;
	uint32_t backoff_ms;
	uint64_t reconnects;
	uint64_t bad_desc; /* descriptors from nicd that failed validation */
	uint64_t late_answers; /* answers to requests that had already timed out */
};

/*
 * portc_create - build the port region: @nqueues queues, @nframes frames
 * of @frame_size bytes (multiple of 64), rings that hold every frame.
 * Returns 0 or -errno. Does not connect.
 */
int portc_create(struct portc *p, const char *tenant, const char *runtime_dir,
		 uint16_t nqueues, uint32_t nframes, uint32_t frame_size);

/* Disconnect and free everything. */
void portc_destroy(struct portc *p);

/*
 * portc_connect - connect to nicd, HELLO, REGISTER, re-claim the claims
 * already made, and fill the fill rings. Returns 0 or -errno (-ENOENT /
 * -ECONNREFUSED: nicd not running; a negative status nicd answered).
 */
int portc_connect(struct portc *p, int timeout_ms);

/*
 * portc_check - call regularly: notices a nicd hang-up (reclaims frames,
 * then reconnects with back-off from 10 ms to 1 s) and handles nothing
 * else. Returns 1 if connected, 0 if not (yet), -errno on a local error.
 */
int portc_check(struct portc *p);

/*
 * portc_claim / portc_release - remembered across reconnects. A claim made
 * while nicd is unreachable returns -ENOTCONN but is kept and sent when the
 * port registers.
 */
int portc_claim(struct portc *p, uint32_t ip, uint16_t lo, uint16_t hi, int timeout_ms);
int portc_release(struct portc *p, uint32_t ip, uint16_t lo, uint16_t hi, int timeout_ms);

/* portc_resolve - MAC of the next hop towards @ip (waits for ARP). */
int portc_resolve(struct portc *p, uint32_t ip, uint8_t mac[6], int timeout_ms);

/*
 * portc_rx - up to @n received frames of queue @q. Each descriptor is
 * validated (index, offset, length); bad ones are dropped and counted.
 * The caller reads the frame with portc_frame() and gives it back with
 * portc_free(). Returns the number received or -EBADMSG (corrupt ring).
 */
int portc_rx(struct portc *p, uint16_t q, struct mn_pkt_desc *d, uint32_t n);

/* Frame bytes of a descriptor (validated by portc_rx or portc_alloc). */
static inline uint8_t *portc_frame(const struct portc *p, const struct mn_pkt_desc *d)
{
	return (uint8_t *)mn_pool_buf(&p->pool, d->idx) + d->off;
}

/* portc_alloc - a free frame for tx; -ENOBUFS when none. */
int portc_alloc(struct portc *p, struct mn_pkt_desc *d);

/* portc_free - give back a frame from portc_rx or portc_alloc. */
void portc_free(struct portc *p, const struct mn_pkt_desc *d);

/*
 * portc_tx - queue @n frames (from portc_alloc, len set) on queue @q and
 * wake nicd if it sleeps. Returns the number queued; the rest stay ours.
 */
int portc_tx(struct portc *p, uint16_t q, struct mn_pkt_desc *d, uint32_t n);

/*
 * portc_poll_comp - take back sent frames of queue @q and refill its fill
 * ring. Returns the number of completions; @refused counts those nicd
 * refused (MN_PKT_F_TX_REFUSED).
 */
int portc_poll_comp(struct portc *p, uint16_t q, uint32_t *refused);

/* portc_stats / portc_info - ask nicd (admin requests work here too). */
int portc_request(struct portc *p, uint16_t type, const void *req, uint32_t req_len,
		  void *resp, uint32_t resp_cap, uint32_t *resp_len, int timeout_ms);

#endif /* MN_SERVERS_PORTC_H */
