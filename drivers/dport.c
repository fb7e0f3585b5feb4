/* SPDX-License-Identifier: MIT */
#include "dport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>

#include "log.h"

#define MAX_EAL_ARGS 64
#define RX_DESC 1024
#define TX_DESC 1024
#define POOL_CACHE 256
/* Ethernet header + FCS-less frame: what the MTU adds up to on the wire. */
#define ETH_OVERHEAD 14u

static int add_arg(char **argv, int *argc, const char *s)
{
	if (*argc >= MAX_EAL_ARGS - 1)
		return -E2BIG;
	argv[(*argc)++] = strdup(s);
	return argv[*argc - 1] ? 0 : -ENOMEM;
}

/* A vdev names a driver ("net_af_xdp0,iface=..."); a PCI address does not. */
static bool is_vdev(const char *dev)
{
	return strncmp(dev, "net_", 4) == 0 || strncmp(dev, "eth_", 4) == 0;
}

static int build_eal_args(const struct nicd_cfg *cfg, const char *prog, char **argv)
{
	char extra[sizeof(cfg->eal_args)], *tok, *save = NULL;
	int argc = 0, err = 0;

	err |= add_arg(argv, &argc, prog);
	err |= add_arg(argv, &argc, "--file-prefix");
	err |= add_arg(argv, &argc, cfg->file_prefix);
	err |= add_arg(argv, &argc, "-l");
	err |= add_arg(argv, &argc, cfg->lcores);
	/* VA mode keeps af_xdp's UMEM contiguous in the process's view. */
	err |= add_arg(argv, &argc, "--iova-mode=va");
	if (is_vdev(cfg->device)) {
		err |= add_arg(argv, &argc, "--no-pci");
		err |= add_arg(argv, &argc, "--vdev");
	} else {
		err |= add_arg(argv, &argc, "-a");
	}
	err |= add_arg(argv, &argc, cfg->device);
	snprintf(extra, sizeof(extra), "%s", cfg->eal_args);
	for (tok = strtok_r(extra, " \t", &save); tok && !err;
	     tok = strtok_r(NULL, " \t", &save))
		err |= add_arg(argv, &argc, tok);
	if (err) {
		mn_err("dport", "too many EAL arguments (max %d): shorten eal_args", MAX_EAL_ARGS);
		return -E2BIG;
	}
	return argc;
}

/*
 * The EAL keeps pointers into its arguments until rte_eal_cleanup(), and it
 * rewrites the array it is given (argv[optind - 1] = argv[0]): it gets a
 * copy of the pointers, and the strings are freed from the original list.
 */
static char *eal_args[MAX_EAL_ARGS];
static char *eal_argv[MAX_EAL_ARGS];

static void free_eal_args(void)
{
	for (int i = 0; i < MAX_EAL_ARGS; i++) {
		free(eal_args[i]);
		eal_args[i] = eal_argv[i] = NULL;
	}
}

int dport_eal_init(const struct nicd_cfg *cfg, const char *prog)
{
	char **argv = eal_args;
	char line[1024] = "";
	int argc = build_eal_args(cfg, prog, argv), rc;

	if (argc < 0)
		return argc;
	for (int i = 1; i < argc; i++) {
		strncat(line, " ", sizeof(line) - strlen(line) - 1);
		strncat(line, argv[i], sizeof(line) - strlen(line) - 1);
	}
	mn_info("dport", "EAL arguments:%s", line);
	memcpy(eal_argv, eal_args, sizeof(eal_argv));
	rc = rte_eal_init(argc, eal_argv);
	if (rc < 0) {
		mn_err("dport", "rte_eal_init failed: %s (arguments:%s); check the device, hugepages or add --no-huge to eal_args",
		       rte_strerror(rte_errno), line);
		return -rte_errno ? -rte_errno : -EINVAL;
	}
	return 0;
}

static int find_port(const char *device, uint16_t *port_id)
{
	uint16_t pid;

	RTE_ETH_FOREACH_DEV(pid) {
		*port_id = pid;
		return 0;
	}
	mn_err("dport", "no Ethernet port appeared for device '%s': wrong interface name, or the device is in use",
	       device);
	return -ENODEV;
}

/*
 * The pool's objects must not straddle memory the af_xdp PMD cannot see:
 * with NO_IOVA_CONTIG (and VA mode) DPDK lays objects out without the holes
 * at 2 MiB boundaries that made TX silently vanish (LAB.md).
 */
static struct rte_mempool *create_pool(const struct nicd_cfg *cfg, uint32_t nmbufs)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	struct rte_mempool *mp;

	/* Names are per process (file prefix): a fixed one is enough. */
	(void)cfg;
	snprintf(name, sizeof(name), "nicd_mbufs");
	mp = rte_mempool_create_empty(name, nmbufs,
				      sizeof(struct rte_mbuf) + RTE_MBUF_DEFAULT_BUF_SIZE,
				      POOL_CACHE, sizeof(struct rte_pktmbuf_pool_private),
				      (int)rte_socket_id(), RTE_MEMPOOL_F_NO_IOVA_CONTIG);
	if (!mp)
		return NULL;
	if (rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), NULL) != 0)
		goto fail;
	rte_pktmbuf_pool_init(mp, NULL);
	if (rte_mempool_populate_default(mp) < 0)
		goto fail;
	rte_mempool_obj_iter(mp, rte_pktmbuf_init, NULL);
	return mp;
fail:
	rte_mempool_free(mp);
	return NULL;
}

static void choose_offloads(struct dport *p, const struct rte_eth_dev_info *di,
			    struct rte_eth_conf *conf)
{
	uint64_t rx = di->rx_offload_capa, tx = di->tx_offload_capa;

	p->rx_ip_csum = rx & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
	p->rx_udp_csum = rx & RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	p->tx_ip_csum = tx & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	p->tx_udp_csum = tx & RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	conf->rxmode.offloads = (p->rx_ip_csum ? RTE_ETH_RX_OFFLOAD_IPV4_CKSUM : 0) |
				(p->rx_udp_csum ? RTE_ETH_RX_OFFLOAD_UDP_CKSUM : 0);
	conf->txmode.offloads = (p->tx_ip_csum ? RTE_ETH_TX_OFFLOAD_IPV4_CKSUM : 0) |
				(p->tx_udp_csum ? RTE_ETH_TX_OFFLOAD_UDP_CKSUM : 0);
	p->rss = p->nqueues > 1 && (di->flow_type_rss_offloads & RTE_ETH_RSS_UDP);
	if (p->rss) {
		conf->rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf->rx_adv_conf.rss_conf.rss_hf =
			di->flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
	}
}

static int check_mtu(struct dport *p, const struct nicd_cfg *cfg,
		     const struct rte_eth_dev_info *di)
{
	uint32_t frame = cfg->mtu + ETH_OVERHEAD;

	p->frame_max = RTE_MBUF_DEFAULT_DATAROOM;
	if (cfg->mtu < di->min_mtu || cfg->mtu > di->max_mtu) {
		mn_err("dport", "mtu %u outside what %s supports (%u..%u): set mtu in [nicd]",
		       cfg->mtu, di->driver_name, di->min_mtu, di->max_mtu);
		return -EINVAL;
	}
	/* af_xdp copies a frame into one mbuf; LAB.md saw 1792 B as its limit. */
	if (frame > p->frame_max ||
	    (strstr(di->driver_name, "af_xdp") && frame > 1792)) {
		mn_err("dport", "mtu %u gives %u-byte frames, more than %s carries in one buffer: lower mtu",
		       cfg->mtu, frame, di->driver_name);
		return -EINVAL;
	}
	if (di->max_rx_pktlen && frame > di->max_rx_pktlen) {
		mn_err("dport", "mtu %u gives %u-byte frames, %s receives at most %u",
		       cfg->mtu, frame, di->driver_name, di->max_rx_pktlen);
		return -EINVAL;
	}
	p->mtu = cfg->mtu;
	return 0;
}

static int setup_queues(struct dport *p, const struct nicd_cfg *cfg,
			const struct rte_eth_dev_info *di)
{
	struct rte_eth_conf conf = { 0 };
	int rc;

	if (cfg->queues > di->max_rx_queues || cfg->queues > di->max_tx_queues) {
		mn_err("dport", "queues = %u but %s offers %u rx / %u tx queues: lower queues, or use one vdev per queue",
		       cfg->queues, di->driver_name, di->max_rx_queues, di->max_tx_queues);
		return -EINVAL;
	}
	p->nqueues = cfg->queues;
	choose_offloads(p, di, &conf);
	rc = rte_eth_dev_configure(p->port_id, p->nqueues, p->nqueues, &conf);
	if (rc < 0) {
		mn_err("dport", "rte_eth_dev_configure(%u queues): %s", p->nqueues, strerror(-rc));
		return rc;
	}
	if (p->mtu != 1500 && (rc = rte_eth_dev_set_mtu(p->port_id, p->mtu)) < 0) {
		mn_err("dport", "cannot set mtu %u: %s", p->mtu, strerror(-rc));
		return rc;
	}
	for (uint16_t q = 0; q < p->nqueues; q++) {
		rc = rte_eth_rx_queue_setup(p->port_id, q, RX_DESC, (unsigned int)rte_socket_id(),
					    NULL, p->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(p->port_id, q, TX_DESC,
						    (unsigned int)rte_socket_id(), NULL);
		if (rc < 0) {
			mn_err("dport", "queue %u setup: %s", q, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static void log_choices(const struct dport *p)
{
	mn_info("dport", "port %u: driver %s, mac %02x:%02x:%02x:%02x:%02x:%02x, mtu %u, %u queue(s), RSS %s",
		p->port_id, p->driver, p->mac[0], p->mac[1], p->mac[2], p->mac[3], p->mac[4],
		p->mac[5], p->mtu, p->nqueues, p->rss ? "on" : "off");
	mn_info("dport", "checksums: rx ip %s, rx udp %s, tx ip %s, tx udp %s",
		p->rx_ip_csum ? "NIC" : "software", p->rx_udp_csum ? "NIC" : "software",
		p->tx_ip_csum ? "NIC" : "software", p->tx_udp_csum ? "NIC" : "software");
}

int dport_open(struct dport *p, const struct nicd_cfg *cfg)
{
	struct rte_eth_dev_info di;
	struct rte_ether_addr mac;
	int rc;

	memset(p, 0, sizeof(*p));
	rc = find_port(cfg->device, &p->port_id);
	if (rc)
		return rc;
	rc = rte_eth_dev_info_get(p->port_id, &di);
	if (rc)
		return rc;
	snprintf(p->driver, sizeof(p->driver), "%s", di.driver_name);
	rc = check_mtu(p, cfg, &di);
	if (rc)
		return rc;
	p->pool = create_pool(cfg, 8192 * (uint32_t)cfg->queues);
	if (!p->pool) {
		mn_err("dport", "cannot create the mbuf pool: %s; reserve hugepages or add --no-huge -m 256 to eal_args",
		       rte_strerror(rte_errno));
		return -ENOMEM;
	}
	rc = setup_queues(p, cfg, &di);
	if (rc)
		goto fail;
	if (cfg->mac_set) {
		memcpy(mac.addr_bytes, cfg->mac, 6);
		rc = rte_eth_dev_default_mac_addr_set(p->port_id, &mac);
		if (rc < 0)
			mn_warn("dport", "cannot set the configured mac (%s): frames use it anyway",
				strerror(-rc));
		memcpy(p->mac, cfg->mac, 6);
	} else {
		rte_eth_macaddr_get(p->port_id, &mac);
		memcpy(p->mac, mac.addr_bytes, 6);
	}
	rc = rte_eth_dev_start(p->port_id);
	if (rc < 0) {
		mn_err("dport", "rte_eth_dev_start: %s", strerror(-rc));
		goto fail;
	}
	log_choices(p);
	return 0;
fail:
	rte_mempool_free(p->pool);
	p->pool = NULL;
	return rc;
}

int dport_stats(const struct dport *p, struct rte_eth_stats *st)
{
	return rte_eth_stats_get(p->port_id, st);
}

void dport_close(struct dport *p)
{
	if (p->pool) {
		rte_eth_dev_stop(p->port_id);
		rte_eth_dev_close(p->port_id);
		rte_mempool_free(p->pool);
		p->pool = NULL;
	}
	rte_eal_cleanup();
	free_eal_args();
}
