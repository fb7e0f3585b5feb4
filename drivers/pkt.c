/* SPDX-License-Identifier: MIT */
#include "pkt.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* Field offsets, from the start of each header. */
#define ETH_DST 0
#define ETH_SRC 6
#define ETH_TYPE 12

#define ARP_HTYPE 0
#define ARP_PTYPE 2
#define ARP_HLEN 4
#define ARP_PLEN 5
#define ARP_OP 6
#define ARP_SHA 8
#define ARP_SPA 14
#define ARP_THA 18
#define ARP_TPA 24

#define IP_VIHL 0
#define IP_TOTLEN 2
#define IP_ID 4
#define IP_FRAG 6
#define IP_TTL 8
#define IP_PROTO 9
#define IP_CSUM 10
#define IP_SRC 12
#define IP_DST 16
#define IP_F_DF 0x4000u
#define IP_F_MF 0x2000u
#define IP_FRAG_OFF_MASK 0x1fffu

#define UDP_SPORT 0
#define UDP_DPORT 2
#define UDP_LEN 4
#define UDP_CSUM 6

#define ICMP_TYPE 0
#define ICMP_CODE 1
#define ICMP_CSUM 2
#define ICMP_ID 4
#define ICMP_SEQ 6
#define ICMP_ECHO_REPLY 0u
#define ICMP_ECHO_REQUEST 8u

/* Explicit network-order accessors: no alignment, no host-order guess. */
static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static uint32_t fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint32_t)sum;
}

/*
 * Sum native-order 32-bit loads and swap the folded result once at the end:
 * the ones'-complement sum is byte-order independent (RFC 1071 §2(B)), so
 * this equals the big-endian word sum without a swap per word. memcpy keeps
 * the loads legal at any alignment.
 */
uint16_t pkt_csum(const void *data, uint32_t len, uint32_t initial)
{
	const uint8_t *p = data;
	uint64_t sum = 0;
	uint32_t w32;
	uint16_t w16 = 0, be;

	for (; len >= 4; len -= 4, p += 4) {
		memcpy(&w32, p, 4);
		sum += w32;
	}
	if (len >= 2) {
		memcpy(&w16, p, 2);
		sum += w16;
		len -= 2;
		p += 2;
	}
	if (len) {
		uint8_t last[2] = { p[0], 0 };

		memcpy(&w16, last, 2);
		sum += w16;
	}
	/* Back to big-endian word order: read the folded sum's bytes as
	 * they lie in memory, most significant first. */
	w16 = (uint16_t)fold(sum);
	be = get16((const uint8_t *)&w16);
	return (uint16_t)fold((uint64_t)be + initial);
}

uint16_t pkt_ipv4_hdr_csum(const uint8_t *ip, uint32_t ihl_bytes)
{
	uint32_t sum;

	if (ihl_bytes < PKT_IPV4_HLEN)
		return 0;
	/* Skip the checksum field rather than zeroing it: @ip stays const. */
	sum = pkt_csum(ip, IP_CSUM, 0);
	sum = pkt_csum(ip + IP_SRC, ihl_bytes - IP_SRC, sum);
	return (uint16_t)~sum;
}

/* Partial sum of the IPv4 pseudo-header for UDP. */
static uint32_t pseudo_sum(const uint8_t *ip, uint32_t udp_len)
{
	return pkt_csum(ip + IP_SRC, 8, PKT_IPPROTO_UDP + udp_len);
}

uint16_t pkt_udp_csum(const uint8_t *ip, const uint8_t *udp, uint32_t udp_len)
{
	uint32_t sum;
	uint16_t c;

	if (udp_len < PKT_UDP_HLEN)
		return 0;
	sum = pkt_csum(udp, UDP_CSUM, pseudo_sum(ip, udp_len));
	sum = pkt_csum(udp + PKT_UDP_HLEN, udp_len - PKT_UDP_HLEN, sum);
	c = (uint16_t)~sum;
	return c ? c : 0xffff;
}

/* The sum over a region including its stored checksum is 0xffff iff the
 * checksum is right; for UDP, a stored 0xffff standing for a computed 0
 * passes too (0xffff + 0xffff folds to 0xffff). */
static bool udp_csum_ok(const uint8_t *ip, const uint8_t *udp, uint32_t udp_len)
{
	return pkt_csum(udp, udp_len, pseudo_sum(ip, udp_len)) == 0xffff;
}

/* ARP body at @a (>= 28 bytes): IPv4 over Ethernet, request or reply. */
static bool arp_valid(const uint8_t *a)
{
	uint16_t op = get16(a + ARP_OP);

	return get16(a + ARP_HTYPE) == 1 && get16(a + ARP_PTYPE) == PKT_ETHERTYPE_IPV4 &&
	       a[ARP_HLEN] == 6 && a[ARP_PLEN] == 4 &&
	       (op == PKT_ARP_OP_REQUEST || op == PKT_ARP_OP_REPLY);
}

static int drop(enum mn_drop *why, enum mn_drop reason)
{
	*why = reason;
	return 0;
}

static int parse_arp(const uint8_t *f, uint32_t len, struct pkt_info *pi,
		     enum mn_drop *why)
{
	const uint8_t *a = f + PKT_ETH_HLEN;

	if (len - PKT_ETH_HLEN < PKT_ARP_LEN || !arp_valid(a))
		return drop(why, MN_DROP_RX_BAD_ARP);
	pi->l3_off = PKT_ETH_HLEN;
	pi->src_ip = get32(a + ARP_SPA);
	pi->dst_ip = get32(a + ARP_TPA);
	return PKT_ARP;
}

static int parse_udp(const uint8_t *f, const uint8_t *ip, uint32_t l4_len, uint32_t flags,
		     struct pkt_info *pi, enum mn_drop *why)
{
	const uint8_t *udp = f + pi->l4_off;

	if (l4_len < PKT_UDP_HLEN || get16(udp + UDP_LEN) != l4_len)
		return drop(why, MN_DROP_RX_BAD_UDP);
	if ((flags & PKT_F_VERIFY_UDP_CSUM) && get16(udp + UDP_CSUM) != 0 &&
	    !udp_csum_ok(ip, udp, l4_len))
		return drop(why, MN_DROP_RX_UDP_CSUM);
	pi->src_port = get16(udp + UDP_SPORT);
	pi->dst_port = get16(udp + UDP_DPORT);
	pi->payload_off = (uint16_t)(pi->l4_off + PKT_UDP_HLEN);
	pi->payload_len = (uint16_t)(l4_len - PKT_UDP_HLEN);
	return PKT_UDP;
}

static int parse_icmp(const uint8_t *f, uint32_t l4_len, struct pkt_info *pi,
		      enum mn_drop *why)
{
	const uint8_t *icmp = f + pi->l4_off;

	if (l4_len < PKT_ICMP_HLEN ||
	    (icmp[ICMP_TYPE] != ICMP_ECHO_REQUEST && icmp[ICMP_TYPE] != ICMP_ECHO_REPLY) ||
	    icmp[ICMP_CODE] != 0 || pkt_csum(icmp, l4_len, 0) != 0xffff)
		return drop(why, MN_DROP_RX_BAD_ICMP);
	pi->payload_off = (uint16_t)(pi->l4_off + PKT_ICMP_HLEN);
	pi->payload_len = (uint16_t)(l4_len - PKT_ICMP_HLEN);
	pi->icmp_id = get16(icmp + ICMP_ID);
	pi->icmp_seq = get16(icmp + ICMP_SEQ);
	return icmp[ICMP_TYPE] == ICMP_ECHO_REQUEST ? PKT_ICMP_ECHO : PKT_ICMP_ECHO_REPLY;
}

/*
 * The IPv4 header at @ip with @avail bytes of frame behind it: returns its
 * length (IHL * 4) and sets *@tot to the total length, or returns 0 if
 * version, IHL or total length are impossible. Each field is read once and
 * the caller uses these copies: the frame may be in memory another process
 * can still write (a protocol server parses frames in the port region).
 */
static uint32_t ipv4_hdr_len(const uint8_t *ip, uint32_t avail, uint32_t *tot)
{
	uint32_t vihl, ihl;

	if (avail < PKT_IPV4_HLEN)
		return 0;
	vihl = ip[IP_VIHL];
	ihl = (vihl & 0xfu) * 4u;
	*tot = get16(ip + IP_TOTLEN);
	if (vihl >> 4 != 4 || ihl < PKT_IPV4_HLEN || ihl > avail || *tot < ihl || *tot > avail)
		return 0;
	return ihl;
}

static bool ipv4_is_fragment(const uint8_t *ip)
{
	return (get16(ip + IP_FRAG) & (IP_F_MF | IP_FRAG_OFF_MASK)) != 0;
}

static int parse_ipv4(const uint8_t *f, uint32_t len, uint32_t flags, struct pkt_info *pi,
		      enum mn_drop *why)
{
	const uint8_t *ip = f + PKT_ETH_HLEN;
	uint32_t tot, ihl = ipv4_hdr_len(ip, len - PKT_ETH_HLEN, &tot);

	if (!ihl)
		return drop(why, MN_DROP_RX_BAD_IP);
	if ((flags & PKT_F_VERIFY_IP_CSUM) && pkt_csum(ip, ihl, 0) != 0xffff)
		return drop(why, MN_DROP_RX_IP_CSUM);
	if (ipv4_is_fragment(ip))
		return drop(why, MN_DROP_RX_FRAGMENT);
	if (ip[IP_TTL] == 0)
		return drop(why, MN_DROP_RX_TTL);

	pi->l3_off = PKT_ETH_HLEN;
	pi->l4_off = (uint16_t)(PKT_ETH_HLEN + ihl);
	pi->ip_total_len = (uint16_t)tot;
	pi->ttl = ip[IP_TTL];
	pi->ip_proto = ip[IP_PROTO];
	pi->src_ip = get32(ip + IP_SRC);
	pi->dst_ip = get32(ip + IP_DST);

	switch (pi->ip_proto) {
	case PKT_IPPROTO_UDP:
		return parse_udp(f, ip, tot - ihl, flags, pi, why);
	case PKT_IPPROTO_ICMP:
		return parse_icmp(f, tot - ihl, pi, why);
	default:
		return drop(why, MN_DROP_RX_PROTO);
	}
}

int pkt_parse(const uint8_t *f, uint32_t len, uint32_t flags, struct pkt_info *pi,
	      enum mn_drop *why)
{
	memset(pi, 0, sizeof(*pi));
	if (len < PKT_ETH_HLEN)
		return drop(why, MN_DROP_RX_RUNT);
	memcpy(pi->dst_mac, f + ETH_DST, 6);
	memcpy(pi->src_mac, f + ETH_SRC, 6);
	pi->ethertype = get16(f + ETH_TYPE);

	switch (pi->ethertype) {
	case PKT_ETHERTYPE_IPV4:
		return parse_ipv4(f, len, flags, pi, why);
	case PKT_ETHERTYPE_ARP:
		return parse_arp(f, len, pi, why);
	default:
		return drop(why, MN_DROP_RX_ETHERTYPE);
	}
}

int pkt_arp_parse(const uint8_t *f, uint32_t len, struct pkt_arp *a)
{
	const uint8_t *body = f + PKT_ETH_HLEN;

	if (len < PKT_ETH_HLEN + PKT_ARP_LEN || get16(f + ETH_TYPE) != PKT_ETHERTYPE_ARP ||
	    !arp_valid(body))
		return -EBADMSG;
	a->op = get16(body + ARP_OP);
	memcpy(a->sha, body + ARP_SHA, 6);
	a->spa = get32(body + ARP_SPA);
	memcpy(a->tha, body + ARP_THA, 6);
	a->tpa = get32(body + ARP_TPA);
	return 0;
}

static void put_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(f + ETH_DST, dst, 6);
	memcpy(f + ETH_SRC, src, 6);
	put16(f + ETH_TYPE, type);
}

uint32_t pkt_build_arp(uint8_t *buf, uint32_t cap, uint16_t op, const uint8_t src_mac[6],
		       uint32_t src_ip, const uint8_t dst_mac[6], uint32_t dst_ip)
{
	static const uint8_t zero_mac[6];
	uint8_t *a = buf + PKT_ETH_HLEN;

	if (cap < PKT_ETH_MIN_FRAME || (op != PKT_ARP_OP_REQUEST && op != PKT_ARP_OP_REPLY) ||
	    (op == PKT_ARP_OP_REPLY && !dst_mac))
		return 0;
	memset(buf, 0, PKT_ETH_MIN_FRAME);
	put_eth(buf, dst_mac ? dst_mac : bcast_mac, src_mac, PKT_ETHERTYPE_ARP);
	put16(a + ARP_HTYPE, 1);
	put16(a + ARP_PTYPE, PKT_ETHERTYPE_IPV4);
	a[ARP_HLEN] = 6;
	a[ARP_PLEN] = 4;
	put16(a + ARP_OP, op);
	memcpy(a + ARP_SHA, src_mac, 6);
	put32(a + ARP_SPA, src_ip);
	memcpy(a + ARP_THA, op == PKT_ARP_OP_REPLY ? dst_mac : zero_mac, 6);
	put32(a + ARP_TPA, dst_ip);
	return PKT_ETH_MIN_FRAME;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for a 16-bit field m -> m'. */
static uint16_t csum_update16(uint16_t hc, uint16_t m, uint16_t m_new)
{
	uint64_t sum = (uint16_t)~hc + (uint64_t)(uint16_t)~m + m_new;

	return (uint16_t)~fold(sum);
}

uint32_t pkt_icmp_echo_reply(uint8_t *frame, uint32_t len, const struct pkt_info *pi,
			     const uint8_t our_mac[6])
{
	uint32_t end = (uint32_t)pi->l3_off + pi->ip_total_len;
	uint32_t ihl;
	uint8_t *ip, *icmp;
	uint16_t old_word;

	/* @pi is the caller's: check it describes bytes inside @len. */
	if (pi->ethertype != PKT_ETHERTYPE_IPV4 || pi->ip_proto != PKT_IPPROTO_ICMP ||
	    pi->l3_off < PKT_ETH_HLEN || pi->l4_off < pi->l3_off + PKT_IPV4_HLEN ||
	    end > len || (uint32_t)pi->l4_off + PKT_ICMP_HLEN > end)
		return 0;
	ip = frame + pi->l3_off;
	icmp = frame + pi->l4_off;
	ihl = (uint32_t)pi->l4_off - pi->l3_off;
	if (icmp[ICMP_TYPE] != ICMP_ECHO_REQUEST)
		return 0;

	put_eth(frame, pi->src_mac, our_mac, PKT_ETHERTYPE_IPV4);
	put32(ip + IP_SRC, pi->dst_ip);
	put32(ip + IP_DST, pi->src_ip);
	ip[IP_TTL] = PKT_TTL_DEFAULT;
	put16(ip + IP_CSUM, pkt_ipv4_hdr_csum(ip, ihl));

	/* Only the type/code word changes: update, don't re-sum the data. */
	old_word = get16(icmp + ICMP_TYPE);
	icmp[ICMP_TYPE] = ICMP_ECHO_REPLY;
	put16(icmp + ICMP_CSUM,
	      csum_update16(get16(icmp + ICMP_CSUM), old_word, get16(icmp + ICMP_TYPE)));
	return end;
}

void pkt_fill_csums(uint8_t *frame, const struct pkt_info *pi)
{
	uint8_t *ip = frame + pi->l3_off;
	uint8_t *udp = frame + pi->l4_off;
	uint32_t ihl = (uint32_t)pi->l4_off - pi->l3_off;

	put16(ip + IP_CSUM, pkt_ipv4_hdr_csum(ip, ihl));
	put16(udp + UDP_CSUM, pkt_udp_csum(ip, udp, (uint32_t)pi->ip_total_len - ihl));
}

/* An IPv4 header without options, checksum left 0 (filled last). */
static void put_ipv4(uint8_t *ip, uint8_t proto, uint32_t tot, uint32_t src_ip,
		     uint32_t dst_ip)
{
	ip[IP_VIHL] = 0x45;
	ip[IP_VIHL + 1] = 0; /* DSCP/ECN */
	put16(ip + IP_TOTLEN, (uint16_t)tot);
	put16(ip + IP_ID, 0);
	put16(ip + IP_FRAG, IP_F_DF);
	ip[IP_TTL] = PKT_TTL_DEFAULT;
	ip[IP_PROTO] = proto;
	put16(ip + IP_CSUM, 0);
	put32(ip + IP_SRC, src_ip);
	put32(ip + IP_DST, dst_ip);
}

uint32_t pkt_build_udp(uint8_t *buf, uint32_t cap, const uint8_t src_mac[6],
		       const uint8_t dst_mac[6], uint32_t src_ip, uint32_t dst_ip,
		       uint16_t sport, uint16_t dport, const void *payload, uint32_t plen)
{
	const uint32_t hdrs = PKT_IPV4_HLEN + PKT_UDP_HLEN;
	uint8_t *ip = buf + PKT_ETH_HLEN;
	uint8_t *udp = ip + PKT_IPV4_HLEN;
	uint32_t tot;

	if (plen > UINT16_MAX - hdrs || PKT_ETH_HLEN + hdrs + plen > cap)
		return 0;
	tot = hdrs + plen;

	put_eth(buf, dst_mac, src_mac, PKT_ETHERTYPE_IPV4);
	put_ipv4(ip, PKT_IPPROTO_UDP, tot, src_ip, dst_ip);

	put16(udp + UDP_SPORT, sport);
	put16(udp + UDP_DPORT, dport);
	put16(udp + UDP_LEN, (uint16_t)(PKT_UDP_HLEN + plen));
	if (plen)
		memcpy(udp + PKT_UDP_HLEN, payload, plen);

	put16(ip + IP_CSUM, pkt_ipv4_hdr_csum(ip, PKT_IPV4_HLEN));
	put16(udp + UDP_CSUM, pkt_udp_csum(ip, udp, PKT_UDP_HLEN + plen));
	return PKT_ETH_HLEN + tot;
}

uint32_t pkt_build_icmp_echo(uint8_t *buf, uint32_t cap, const uint8_t src_mac[6],
			     const uint8_t dst_mac[6], uint32_t src_ip, uint32_t dst_ip,
			     uint16_t ident, uint16_t seq, uint32_t dlen)
{
	const uint32_t hdrs = PKT_IPV4_HLEN + PKT_ICMP_HLEN;
	uint8_t *ip = buf + PKT_ETH_HLEN;
	uint8_t *icmp = ip + PKT_IPV4_HLEN;

	if (dlen > UINT16_MAX - hdrs || PKT_ETH_HLEN + hdrs + dlen > cap)
		return 0;
	put_eth(buf, dst_mac, src_mac, PKT_ETHERTYPE_IPV4);
	put_ipv4(ip, PKT_IPPROTO_ICMP, hdrs + dlen, src_ip, dst_ip);
	icmp[ICMP_TYPE] = ICMP_ECHO_REQUEST;
	icmp[ICMP_CODE] = 0;
	put16(icmp + ICMP_CSUM, 0);
	put16(icmp + ICMP_ID, ident);
	put16(icmp + ICMP_SEQ, seq);
	for (uint32_t i = 0; i < dlen; i++)
		icmp[PKT_ICMP_HLEN + i] = (uint8_t)i;

	put16(ip + IP_CSUM, pkt_ipv4_hdr_csum(ip, PKT_IPV4_HLEN));
	put16(icmp + ICMP_CSUM, (uint16_t)~pkt_csum(icmp, PKT_ICMP_HLEN + dlen, 0));
	return PKT_ETH_HLEN + hdrs + dlen;
}

static int refuse(enum mn_drop *why, enum mn_drop reason)
{
	*why = reason;
	return -1;
}

int pkt_tx_check(const uint8_t *f, uint32_t len, uint16_t mtu, const uint8_t port_mac[6],
		 struct pkt_info *pi, enum mn_drop *why)
{
	const uint8_t *ip = f + PKT_ETH_HLEN, *udp;
	uint32_t ihl, tot, end;

	memset(pi, 0, sizeof(*pi));
	if (len < PKT_ETH_HLEN + PKT_IPV4_HLEN + PKT_UDP_HLEN ||
	    get16(f + ETH_TYPE) != PKT_ETHERTYPE_IPV4)
		return refuse(why, MN_DROP_TX_BAD_FRAME);
	if (memcmp(f + ETH_SRC, port_mac, 6) != 0)
		return refuse(why, MN_DROP_TX_SRC_MAC);

	ihl = ipv4_hdr_len(ip, len - PKT_ETH_HLEN, &tot);
	if (!ihl)
		return refuse(why, MN_DROP_TX_BAD_FRAME);
	end = PKT_ETH_HLEN + tot;
	/* Padding only up to the minimum frame: anything longer would send
	 * bytes the headers do not account for. */
	if (len != end && !(end < PKT_ETH_MIN_FRAME && len <= PKT_ETH_MIN_FRAME))
		return refuse(why, MN_DROP_TX_BAD_FRAME);
	if (ip[IP_PROTO] != PKT_IPPROTO_UDP || ipv4_is_fragment(ip) || ip[IP_TTL] == 0)
		return refuse(why, MN_DROP_TX_BAD_FRAME);
	udp = ip + ihl;
	if (tot - ihl < PKT_UDP_HLEN || get16(udp + UDP_LEN) != tot - ihl)
		return refuse(why, MN_DROP_TX_BAD_FRAME);
	if (tot > mtu)
		return refuse(why, MN_DROP_TX_MTU);

	memcpy(pi->dst_mac, f + ETH_DST, 6);
	memcpy(pi->src_mac, f + ETH_SRC, 6);
	pi->ethertype = PKT_ETHERTYPE_IPV4;
	pi->l3_off = PKT_ETH_HLEN;
	pi->l4_off = (uint16_t)(PKT_ETH_HLEN + ihl);
	pi->src_ip = get32(ip + IP_SRC);
	pi->dst_ip = get32(ip + IP_DST);
	pi->ip_proto = PKT_IPPROTO_UDP;
	pi->ttl = ip[IP_TTL];
	pi->ip_total_len = (uint16_t)tot;
	pi->src_port = get16(udp + UDP_SPORT);
	pi->dst_port = get16(udp + UDP_DPORT);
	pi->payload_off = (uint16_t)(pi->l4_off + PKT_UDP_HLEN);
	pi->payload_len = (uint16_t)(tot - ihl - PKT_UDP_HLEN);
	return 0;
}
