/* SPDX-License-Identifier: MIT */
/*
 * The data path of machnet-nicd: NIC rx -> tenants' rx rings (and ARP/ICMP
 * answered here), tenants' tx rings -> NIC. Copy mode: frames are copied
 * between DPDK mbufs and the tenants' frame pools, so a tenant's memory is
 * never handed to the NIC.
 */
#include <errno.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "log.h"
#include "nicd.h"
#include "pkt.h"

#define BURST 32u

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* A burst's worth of work that ends in one NIC tx call. */
struct txq {
	struct rte_mbuf *m[BURST * 2];
	uint16_t n;
};

static void drop(struct nicd *n, uint16_t q, struct tnt *t, enum mn_drop why)
{
	n->st.port.drops[why]++;
	n->queue_c[q].drops[why]++;
	if (t)
		t->c.drops[why]++;
}

static void count(struct mn_port_counters *c, bool rx, uint32_t bytes)
{
	if (rx) {
		c->rx_pkts++;
		c->rx_bytes += bytes;
	} else {
		c->tx_pkts++;
		c->tx_bytes += bytes;
	}
}

static bool our_ip(const struct nicd *n, uint32_t ip)
{
	for (unsigned int i = 0; i < n->cfg.nips; i++)
		if (n->cfg.ips[i] == ip)
			return true;
	return false;
}

/* Our address on the subnet of @ip, or the first one. */
static uint32_t src_ip_for(const struct nicd *n, uint32_t ip)
{
	for (unsigned int i = 0; i < n->cfg.nips; i++) {
		uint32_t mask = n->cfg.prefix_len[i] ? ~0u << (32 - n->cfg.prefix_len[i]) : 0;

		if ((n->cfg.ips[i] & mask) == (ip & mask))
			return n->cfg.ips[i];
	}
	return n->cfg.ips[0];
}

/* Send what the NIC takes; count and free the rest. Returns how many it took. */
static uint16_t nic_send(struct nicd *n, uint16_t q, struct rte_mbuf **m, uint16_t cnt,
			 struct tnt *t)
{
	uint16_t sent = 0;

	for (int tries = 0; sent < cnt && tries < 4; tries++)
		sent += rte_eth_tx_burst(n->port.port_id, q, m + sent, cnt - sent);
	for (uint16_t i = 0; i < sent; i++) {
		count(&n->st.port, false, rte_pktmbuf_data_len(m[i]));
		count(&n->queue_c[q], false, rte_pktmbuf_data_len(m[i]));
		if (t)
			count(&t->c, false, rte_pktmbuf_data_len(m[i]));
	}
	for (uint16_t i = sent; i < cnt; i++) {
		drop(n, q, t, MN_DROP_TX_NIC_FULL);
		rte_pktmbuf_free(m[i]);
	}
	return sent;
}

/* ---- rx ---------------------------------------------------------------- */

/* Send the reply built in @m's own buffer (@len bytes) with this burst. */
static void queue_reply(struct rte_mbuf *m, uint32_t len, struct txq *out)
{
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	m->ol_flags = 0;
	out->m[out->n++] = m;
}

static bool handle_arp(struct nicd *n, uint16_t q, struct rte_mbuf *m,
		       const uint8_t *f, uint32_t len, struct txq *out)
{
	struct pkt_arp a;
	uint8_t *buf;
	uint32_t rlen;

	if (pkt_arp_parse(f, len, &a) != 0) {
		drop(n, q, NULL, MN_DROP_RX_BAD_ARP);
		return false;
	}
	n->st.arp_rx++;
	/* Learn only from ARP meant for us, as Linux does: chatter between
	 * other hosts must not churn the cache. */
	if (a.spa != 0 && our_ip(n, a.tpa) && nicd_next_hop(n, a.spa) == a.spa &&
	    neigh_learn(n->neigh, a.spa, a.sha, nicd_now_ns()))
		/* Only a MAC the cache took (not zero, multicast, broadcast). */
		csrv_neigh_resolved(n, a.spa, a.sha);
	if (a.op != 1 || !our_ip(n, a.tpa))
		return false;
	/* Answer in the same mbuf: an ARP reply is never longer. */
	buf = rte_pktmbuf_mtod(m, uint8_t *);
	rlen = pkt_build_arp(buf, m->buf_len - m->data_off, 2, n->port.mac, a.tpa, a.sha, a.spa);
	if (rlen == 0)
		return false;
	queue_reply(m, rlen, out);
	n->st.arp_reply_tx++;
	return true;
}

static bool handle_icmp(struct nicd *n, struct rte_mbuf *m, uint8_t *f, uint32_t len,
			const struct pkt_info *pi, struct txq *out)
{
	uint32_t rlen;

	if (!our_ip(n, pi->dst_ip))
		return false;
	rlen = pkt_icmp_echo_reply(f, len, pi, n->port.mac);
	if (rlen == 0)
		return false;
	queue_reply(m, rlen, out);
	n->st.icmp_echo_tx++;
	return true;
}

static void rx_flush(struct nicd *n, struct tnt *t, uint16_t q)
{
	struct tnt_queue *tq = &t->q[q % t->nqueues];
	int put = mn_ring_enqueue_burst(&tq->rx, tq->rx_batch, tq->nrx);

	if (put < 0)
		put = 0; /* corrupt ring: counted by the ring; frames go back */
	for (uint32_t i = (uint32_t)put; i < tq->nrx; i++) {
		drop(n, q, t, MN_DROP_RX_RING_FULL);
		if (tq->nfill < TNT_FILL_CACHE)
			tq->fill_cache[tq->nfill++] = tq->rx_batch[i];
	}
	tq->nrx = 0;
	if (put > 0)
		tnt_wake(t);
}

static bool take_fill(struct tnt_queue *tq, struct mn_pkt_desc *d)
{
	if (tq->nfill == 0) {
		int got = mn_ring_dequeue_burst(&tq->fill, tq->fill_cache, TNT_FILL_CACHE);

		if (got <= 0)
			return false;
		tq->nfill = (uint32_t)got;
	}
	*d = tq->fill_cache[--tq->nfill];
	return true;
}

static void deliver(struct nicd *n, uint16_t q, struct tnt *t, const uint8_t *f,
		    uint32_t len)
{
	struct tnt_queue *tq = &t->q[q % t->nqueues];
	struct mn_pkt_desc d;
	void *buf;

	if (len > t->frame_size) {
		drop(n, q, t, MN_DROP_RX_TOO_BIG);
		return;
	}
	if (!take_fill(tq, &d)) {
		drop(n, q, t, MN_DROP_RX_NO_BUF);
		return;
	}
	buf = mn_pool_view_buf(&t->pool, d.idx, 0, len);
	if (!buf) {
		/* The descriptor is garbage: it never was a frame of ours. */
		drop(n, q, t, MN_DROP_RX_BAD_FILL);
		return;
	}
	memcpy(buf, f, len);
	d.len = len;
	d.off = 0;
	d.flags = MN_PKT_F_CSUM_OK;
	tq->rx_batch[tq->nrx++] = d;
	count(&t->c, true, len);
	if (tq->nrx == TNT_BURST)
		rx_flush(n, t, q);
}

static uint32_t rx_csum_flags(const struct rte_mbuf *m)
{
	uint32_t f = 0;

	if ((m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) != RTE_MBUF_F_RX_IP_CKSUM_GOOD)
		f |= PKT_F_VERIFY_IP_CSUM;
	if ((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) != RTE_MBUF_F_RX_L4_CKSUM_GOOD)
		f |= PKT_F_VERIFY_UDP_CSUM;
	return f;
}

/* Returns true if the mbuf was reused (queued on @out). */
static bool rx_one(struct nicd *n, uint16_t q, struct rte_mbuf *m, struct txq *out,
		   uint64_t *touched)
{
	uint8_t *f = rte_pktmbuf_mtod(m, uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(m);
	struct pkt_info pi;
	enum mn_drop why = MN_DROP_RX_RUNT;
	int cls, ti;

	count(&n->st.port, true, len);
	count(&n->queue_c[q], true, len);
	if (m->nb_segs > 1) {
		drop(n, q, NULL, MN_DROP_RX_TOO_BIG);
		return false;
	}
	cls = pkt_parse(f, len, rx_csum_flags(m), &pi, &why);
	if (cls <= 0) {
		drop(n, q, NULL, why);
		return false;
	}
	if (cls == PKT_ARP) {
		if (memcmp(pi.dst_mac, n->port.mac, 6) && memcmp(pi.dst_mac, bcast_mac, 6)) {
			drop(n, q, NULL, MN_DROP_RX_NOT_OURS);
			return false;
		}
		return handle_arp(n, q, m, f, len, out);
	}
	if (memcmp(pi.dst_mac, n->port.mac, 6) != 0 || !our_ip(n, pi.dst_ip)) {
		drop(n, q, NULL, MN_DROP_RX_NOT_OURS);
		return false;
	}
	if (cls == PKT_ICMP_ECHO)
		return handle_icmp(n, m, f, len, &pi, out);
	if (cls == PKT_ICMP_ECHO_REPLY) {
		if (!ping_echo_reply(n, &pi, nicd_now_ns()))
			drop(n, q, NULL, MN_DROP_RX_BAD_ICMP); /* to no PING in flight */
		return false;
	}
	ti = pt_lookup(n->pt, pi.dst_ip, pi.dst_port);
	if (ti < 0 || !n->tenants[ti].connected) {
		drop(n, q, NULL, MN_DROP_RX_NO_PORT);
		return false;
	}
	deliver(n, q, &n->tenants[ti], f, len);
	*touched |= 1ull << (ti % 64);
	return false;
}

static unsigned int rx_queue(struct nicd *n, uint16_t q, struct txq *out)
{
	struct rte_mbuf *m[BURST], *done[BURST];
	uint16_t nb = rte_eth_rx_burst(n->port.port_id, q, m, BURST), ndone = 0;
	uint64_t touched = 0;

	for (uint16_t i = 0; i < nb; i++)
		if (!rx_one(n, q, m[i], out, &touched))
			done[ndone++] = m[i];
	if (ndone)
		rte_pktmbuf_free_bulk(done, ndone);
	for (unsigned int ti = 0; touched && ti < n->cfg.ntenants; ti++) {
		struct tnt *t = &n->tenants[ti];

		if ((touched & (1ull << (ti % 64))) && t->connected && t->q[q % t->nqueues].nrx)
			rx_flush(n, t, q);
	}
	return nb;
}

/* ---- tx ---------------------------------------------------------------- */

static void tx_csum(struct nicd *n, struct rte_mbuf *m, uint8_t *f, const struct pkt_info *pi)
{
	/* The NIC can't: do it here. Either way the frame leaves complete. */
	if (!n->port.tx_ip_csum || !n->port.tx_udp_csum) {
		pkt_fill_csums(f, pi);
		return;
	}
	m->l2_len = pi->l3_off;
	m->l3_len = (uint16_t)(pi->l4_off - pi->l3_off);
	m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
	f[pi->l3_off + 10] = f[pi->l3_off + 11] = 0;
	{
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + pi->l3_off);
		uint16_t ph = rte_ipv4_phdr_cksum(ip, m->ol_flags);

		memcpy(f + pi->l4_off + 6, &ph, 2);
	}
}

/* Validate one descriptor and copy its frame into @m. Returns 0 or a drop. */
static int tx_prepare(struct nicd *n, struct tnt *t, const struct mn_pkt_desc *d,
		      struct rte_mbuf *m)
{
	const uint8_t *frame = mn_pool_view_buf(&t->pool, d->idx, d->off, d->len);
	enum mn_drop why = MN_DROP_TX_BAD_FRAME;
	struct pkt_info pi;
	uint8_t *dst;

	if (!frame || d->len == 0)
		return MN_DROP_TX_BAD_DESC;
	dst = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)RTE_MIN(d->len, UINT16_MAX));
	if (!dst || d->len > UINT16_MAX)
		return MN_DROP_TX_MTU;
	/* Copy first, then check the copy: the tenant can't change it under us. */
	memcpy(dst, frame, d->len);
	if (pkt_tx_check(dst, d->len, n->port.mtu, n->port.mac, &pi, &why) != 0)
		return why;
	if (!pt_owns(n->pt, t->id, pi.src_ip, pi.src_port))
		return MN_DROP_TX_SRC_IP;
	if (d->flags & MN_PKT_F_TX_CSUM)
		tx_csum(n, m, dst, &pi);
	return -1;
}

static unsigned int tx_tenant(struct nicd *n, struct tnt *t, uint16_t q)
{
	struct tnt_queue *tq = &t->q[q];
	struct mn_pkt_desc d[BURST];
	struct rte_mbuf *m[BURST];
	uint16_t nsend = 0;
	int nd = mn_ring_dequeue_burst(&tq->tx, d, BURST), put;

	if (nd <= 0)
		return 0;
	if (rte_pktmbuf_alloc_bulk(n->port.pool, m, (unsigned int)nd) != 0) {
		for (int i = 0; i < nd; i++) {
			drop(n, q, t, MN_DROP_TX_NO_MBUF);
			d[i].flags = MN_PKT_F_TX_REFUSED;
		}
		goto complete;
	}
	for (int i = 0; i < nd; i++) {
		int why = tx_prepare(n, t, &d[i], m[nsend]);

		if (why >= 0) {
			drop(n, q, t, (enum mn_drop)why);
			rte_pktmbuf_reset(m[nsend]);
			d[i].flags = MN_PKT_F_TX_REFUSED;
			continue;
		}
		d[i].flags = 0;
		nsend++;
	}
	if (nsend < nd)
		rte_pktmbuf_free_bulk(m + nsend, (unsigned int)(nd - nsend));
	if (nsend)
		nic_send(n, q, m, nsend, t);
complete:
	/* Copy mode: the tenant's frames are free again as soon as copied. */
	put = mn_ring_enqueue_burst(&tq->comp, d, (uint32_t)nd);
	for (int i = put < 0 ? 0 : put; i < nd; i++)
		drop(n, q, t, MN_DROP_TX_COMP_FULL);
	if (put > 0)
		tnt_wake(t);
	return (unsigned int)nd;
}

unsigned int dp_poll(struct nicd *n)
{
	unsigned int moved = 0;

	for (uint16_t q = 0; q < n->port.nqueues; q++) {
		struct txq out = { .n = 0 };

		moved += rx_queue(n, q, &out);
		if (out.n)
			nic_send(n, q, out.m, out.n, NULL);
		for (unsigned int ti = 0; ti < n->cfg.ntenants; ti++)
			if (n->tenants[ti].connected)
				moved += tx_tenant(n, &n->tenants[ti], q);
	}
	return moved;
}

void dp_send_arp_request(struct nicd *n, uint32_t ip)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(n->port.pool);
	uint8_t *buf;
	uint32_t len;

	if (!m) {
		drop(n, 0, NULL, MN_DROP_TX_NO_MBUF);
		return;
	}
	buf = (uint8_t *)rte_pktmbuf_append(m, 64);
	len = buf ? pkt_build_arp(buf, 64, 1, n->port.mac, src_ip_for(n, ip), NULL, ip) : 0;
	if (len == 0) {
		rte_pktmbuf_free(m);
		return;
	}
	rte_pktmbuf_trim(m, (uint16_t)(64 - len));
	n->st.arp_req_tx++;
	nic_send(n, 0, &m, 1, NULL);
}

int dp_send_icmp_echo(struct nicd *n, const uint8_t dst_mac[6], uint32_t dst_ip,
		      uint32_t next_hop, uint16_t ident, uint16_t seq, uint16_t dlen)
{
	uint32_t len = PKT_ETH_HLEN + PKT_IPV4_HLEN + PKT_ICMP_HLEN + (uint32_t)dlen;
	struct rte_mbuf *m = rte_pktmbuf_alloc(n->port.pool);
	uint8_t *buf;

	if (!m) {
		drop(n, 0, NULL, MN_DROP_TX_NO_MBUF);
		return -ENOBUFS;
	}
	buf = len <= UINT16_MAX ? (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len) : NULL;
	if (!buf || pkt_build_icmp_echo(buf, len, n->port.mac, dst_mac, src_ip_for(n, next_hop),
					dst_ip, ident, seq, dlen) != len) {
		rte_pktmbuf_free(m);
		return -EMSGSIZE;
	}
	return nic_send(n, 0, &m, 1, NULL) == 1 ? 0 : -ENOBUFS;
}
