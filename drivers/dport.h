/* SPDX-License-Identifier: MIT */
/*
 * dport: the DPDK side of machnet-nicd: EAL start-up, one Ethernet port
 * configured to what the device offers, and its mbuf pool.
 */
#ifndef MN_DRIVERS_DPORT_H
#define MN_DRIVERS_DPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct rte_mempool;

struct dport {
	uint16_t port_id;
	uint16_t nqueues;
	uint16_t mtu;		 /* IPv4 MTU in force */
	uint8_t mac[6];
	bool rx_ip_csum;	 /* the NIC verifies IPv4 header checksums */
	bool rx_udp_csum;	 /* ... and UDP checksums */
	bool tx_ip_csum;	 /* the NIC fills IPv4 header checksums */
	bool tx_udp_csum;	 /* ... and UDP checksums */
	bool rss;
	uint32_t frame_max;	 /* largest frame an mbuf holds in one segment */
	char driver[64];
	struct rte_mempool *pool;
};

/*
 * dport_eal_init - start DPDK's EAL from the configuration: --file-prefix,
 * -l lcores, the device (--vdev for a vdev string, -a for a PCI address),
 * --iova-mode=va, then the extra EAL arguments.
 * Returns 0 or -errno (logged with the arguments used).
 */
int dport_eal_init(const struct nicd_cfg *cfg, const char *prog);

/*
 * dport_open - configure and start the port: queues, RSS only when more
 * than one queue and the device offers it, checksum offloads when offered
 * (software otherwise), MTU checked against the device, a mempool that
 * cannot hit the af_xdp UMEM-hole trap (LAB.md). Logs every choice.
 * Returns 0 or -errno (logged).
 */
int dport_open(struct dport *p, const struct nicd_cfg *cfg);

struct rte_eth_stats;
/* Device counters (rte_eth_stats_get). Returns 0 or -errno. */
int dport_stats(const struct dport *p, struct rte_eth_stats *st);

/* Stop and close the port, free the pool, clean up the EAL. */
void dport_close(struct dport *p);

#endif /* MN_DRIVERS_DPORT_H */
