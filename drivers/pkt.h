/* SPDX-License-Identifier: MIT */
/*
 * pkt: strict parsing and building of the frames machnet-nicd handles:
 * Ethernet II carrying ARP (IPv4 over Ethernet) or IPv4 with UDP or ICMP
 * echo. Pure C on byte buffers, no DPDK, so every rule is unit-tested.
 *
 * Byte order: every multi-byte field is read and written byte by byte in
 * network order; every value in a struct or argument here is host order.
 *
 * Bounds: no function reads or writes outside [buf, buf + len) (or cap);
 * the parsers are meant for bytes from the wire and from tenants, both
 * untrusted.
 *
 * What a frame must look like to pass pkt_parse(), and the drop reason
 * (enum mn_drop, ipc/port.h) when it does not, checked in this order:
 *
 *   Ethernet  shorter than 14 bytes                      MN_DROP_RX_RUNT
 *             ethertype not 0x0800 / 0x0806 (VLAN tags,
 *             802.3 length fields included)              MN_DROP_RX_ETHERTYPE
 *   ARP       fewer than 28 bytes after Ethernet; htype
 *             != 1, ptype != 0x0800, hlen != 6, plen != 4,
 *             op not 1 (request) or 2 (reply)             MN_DROP_RX_BAD_ARP
 *   IPv4      fewer than 20 bytes; version != 4; IHL < 5;
 *             IHL*4 beyond the frame; total length below
 *             IHL*4 or beyond the frame                   MN_DROP_RX_BAD_IP
 *             header checksum (PKT_F_VERIFY_IP_CSUM)      MN_DROP_RX_IP_CSUM
 *             MF set or fragment offset != 0              MN_DROP_RX_FRAGMENT
 *             TTL 0                                       MN_DROP_RX_TTL
 *             protocol not UDP (17) or ICMP (1)           MN_DROP_RX_PROTO
 *   UDP       UDP length < 8 or != total length - IHL*4   MN_DROP_RX_BAD_UDP
 *             checksum != 0 and wrong (PKT_F_VERIFY_UDP_CSUM)
 *                                                         MN_DROP_RX_UDP_CSUM
 *   ICMP      fewer than 8 bytes, type neither 8 (echo
 *             request) nor 0 (echo reply), code != 0, or
 *             wrong checksum (always checked: NICs do not
 *             verify ICMP)                                MN_DROP_RX_BAD_ICMP
 *
 * The IPv4 header checksum is checked before the fragment and TTL fields so
 * that a header damaged in flight counts as a checksum error, not as
 * whatever its damaged bits happen to say. Bytes after the IPv4 total
 * length (Ethernet padding of short frames) are allowed and ignored. A short
 * header is counted at its own layer (BAD_ARP, BAD_IP, BAD_UDP, BAD_ICMP);
 * MN_DROP_RX_RUNT is for frames without a whole Ethernet header. Whether the
 * destination MAC or IP is ours is the caller's decision
 * (MN_DROP_RX_NOT_OURS).
 *
 * Checksum convention: pkt_csum() returns the folded ones'-complement sum
 * of 16-bit big-endian words, NOT inverted; the value stored in a header is
 * its complement. A region that includes a correct checksum field sums to
 * 0xffff. pkt_ipv4_hdr_csum() and pkt_udp_csum() return the value to store
 * (already inverted, host order).
 *
 * Thread-safety: every function works only on its arguments; concurrent
 * calls on different buffers are safe.
 */
#ifndef MN_DRIVERS_PKT_H
#define MN_DRIVERS_PKT_H

#include <stdint.h>

#include "port.h"

#define PKT_ETH_HLEN 14u
#define PKT_ETH_MIN_FRAME 60u /* without FCS; the minimum we build */
#define PKT_ARP_LEN 28u	      /* ARP body for IPv4 over Ethernet */
#define PKT_IPV4_HLEN 20u     /* without options */
#define PKT_UDP_HLEN 8u
#define PKT_ICMP_HLEN 8u

#define PKT_ETHERTYPE_IPV4 0x0800u
#define PKT_ETHERTYPE_ARP 0x0806u
#define PKT_IPPROTO_ICMP 1u
#define PKT_IPPROTO_UDP 17u
#define PKT_ARP_OP_REQUEST 1u
#define PKT_ARP_OP_REPLY 2u
#define PKT_TTL_DEFAULT 64u

/* Largest UDP payload in a frame of IPv4 total length 1500. */
#define PKT_UDP_MAX_PAYLOAD_1500 1472u

/* What pkt_parse() found. Host order throughout. */
struct pkt_info {
	uint8_t dst_mac[6], src_mac[6];
	uint16_t ethertype;
	uint16_t l3_off, l4_off;	   /* offsets in the frame */
	uint32_t src_ip, dst_ip;	   /* IPv4; for ARP: sender, target */
	uint8_t ip_proto, ttl;
	uint16_t ip_total_len;
	uint16_t src_port, dst_port;	   /* UDP; 0 otherwise */
	uint16_t payload_off, payload_len; /* UDP payload; ICMP: echo data */
	uint16_t icmp_id, icmp_seq;	   /* ICMP echo identifier, sequence */
};

enum pkt_class {
	PKT_UDP = 1,	/* IPv4/UDP, all of struct pkt_info valid */
	PKT_ARP,	/* ARP; details from pkt_arp_parse() */
	PKT_ICMP_ECHO,	/* IPv4/ICMP echo request; l4_off is the ICMP header */
	PKT_ICMP_ECHO_REPLY, /* IPv4/ICMP echo reply; as PKT_ICMP_ECHO */
};

/* pkt_parse() flags: which checksums the NIC did not verify. */
#define PKT_F_VERIFY_IP_CSUM 0x1u
#define PKT_F_VERIFY_UDP_CSUM 0x2u

/* An ARP packet (IPv4 over Ethernet), host order. */
struct pkt_arp {
	uint16_t op;	 /* PKT_ARP_OP_REQUEST or PKT_ARP_OP_REPLY */
	uint8_t sha[6];	 /* sender MAC */
	uint32_t spa;	 /* sender IPv4 (0 in an RFC 5227 probe) */
	uint8_t tha[6];	 /* target MAC (zeros in most requests) */
	uint32_t tpa;	 /* target IPv4 */
};

/*
 * pkt_parse - validate a received frame and describe it.
 * @f, @len: the frame (no FCS).
 * @flags:   PKT_F_VERIFY_* for the checksums the NIC did not verify.
 * @pi:      filled in; on a drop its contents are unspecified.
 * @why:     set to the MN_DROP_RX_* reason on a drop; untouched otherwise.
 * Returns the enum pkt_class (> 0), or 0 if the frame must be dropped.
 * The rules and reasons are in the table at the top of this file.
 */
int pkt_parse(const uint8_t *f, uint32_t len, uint32_t flags, struct pkt_info *pi,
	      enum mn_drop *why);

/*
 * pkt_arp_parse - read the ARP packet in frame @f of @len bytes.
 * Returns 0 with @a filled, or -EBADMSG if the frame is not a valid ARP
 * frame by the rules of pkt_parse() (Ethernet header included).
 */
int pkt_arp_parse(const uint8_t *f, uint32_t len, struct pkt_arp *a);

/*
 * pkt_build_arp - write an ARP frame in @buf.
 * @op:      PKT_ARP_OP_REQUEST or PKT_ARP_OP_REPLY.
 * @dst_mac: Ethernet destination and, in a reply, the target MAC. NULL
 *           (requests only) means broadcast. A request's target MAC is
 *           always zeros, as Linux sends it, unicast refreshes included.
 * Returns the frame length (PKT_ETH_MIN_FRAME: padded with zeros), or 0 if
 * @cap is below that, @op is neither, or a reply has no @dst_mac.
 */
uint32_t pkt_build_arp(uint8_t *buf, uint32_t cap, uint16_t op, const uint8_t src_mac[6],
		       uint32_t src_ip, const uint8_t dst_mac[6], uint32_t dst_ip);

/*
 * pkt_icmp_echo_reply - turn an echo request into its reply, in place.
 * @frame, @len: the frame pkt_parse() classified PKT_ICMP_ECHO into @pi.
 * @our_mac:     the Ethernet source of the reply.
 * The reply goes back to the request's source MAC and IP, from its
 * destination IP, with type 0, TTL 64, the IPv4 header checksum recomputed
 * and the ICMP checksum updated incrementally (RFC 1624); identifier,
 * sequence number and data are kept. Returns the reply's length (Ethernet
 * header + IPv4 total length: padding of the request is cut; the NIC pads
 * short frames), or 0, with @frame untouched, if @pi does not describe an
 * echo request that fits in @len.
 */
uint32_t pkt_icmp_echo_reply(uint8_t *frame, uint32_t len, const struct pkt_info *pi,
			     const uint8_t our_mac[6]);

/*
 * pkt_csum - ones'-complement sum of @len bytes at @data as big-endian
 * 16-bit words (an odd last byte is padded with a zero), plus @initial (a
 * partial sum, e.g. of a pseudo-header; 0 for none), folded to 16 bits and
 * NOT inverted. Returns it in host order. RFC 1071.
 */
uint16_t pkt_csum(const void *data, uint32_t len, uint32_t initial);

/*
 * pkt_ipv4_hdr_csum - the header checksum to store (host order) for the
 * IPv4 header at @ip of @ihl_bytes (IHL * 4), computed as if its checksum
 * field were zero, whatever it holds.
 */
uint16_t pkt_ipv4_hdr_csum(const uint8_t *ip, uint32_t ihl_bytes);

/*
 * pkt_udp_csum - the UDP checksum to store (host order) for the datagram
 * at @udp of @udp_len bytes (>= 8, header included) in the IPv4 packet
 * whose header is at @ip (source and destination read from it). Computed
 * over the pseudo-header as if the checksum field were zero; a computed 0
 * is returned as 0xffff (0 on the wire means "no checksum"). Returns 0 if
 * @udp_len < 8.
 */
uint16_t pkt_udp_csum(const uint8_t *ip, const uint8_t *udp, uint32_t udp_len);

/*
 * pkt_fill_csums - write the IPv4 header and UDP checksums of the UDP frame
 * @frame described by @pi (from pkt_parse() or pkt_tx_check(), which
 * vouched for its lengths).
 */
void pkt_fill_csums(uint8_t *frame, const struct pkt_info *pi);

/*
 * pkt_build_udp - write an Ethernet/IPv4/UDP frame carrying @plen bytes of
 * @payload (may be NULL when @plen is 0): IHL 5, DF set, identification 0
 * (RFC 6864 allows it for atomic datagrams), TTL 64, both checksums filled.
 * Not padded to 60 bytes (the NIC pads). Returns the frame length
 * (42 + @plen), or 0 if it exceeds @cap or an IPv4 total length.
 */
uint32_t pkt_build_udp(uint8_t *buf, uint32_t cap, const uint8_t src_mac[6],
		       const uint8_t dst_mac[6], uint32_t src_ip, uint32_t dst_ip,
		       uint16_t sport, uint16_t dport, const void *payload, uint32_t plen);

/*
 * pkt_build_icmp_echo - write an Ethernet/IPv4/ICMP echo request frame
 * carrying @dlen bytes of echo data 0x00, 0x01, ... (byte i is i mod 256):
 * IHL 5, DF set, identification 0, TTL 64, type 8 code 0, @ident and @seq,
 * the IPv4 header and ICMP checksums computed here (NICs do not offload
 * ICMP). Not padded to 60 bytes (the NIC pads). Returns the frame length
 * (42 + @dlen), or 0 if it exceeds @cap or an IPv4 total length.
 */
uint32_t pkt_build_icmp_echo(uint8_t *buf, uint32_t cap, const uint8_t src_mac[6],
			     const uint8_t dst_mac[6], uint32_t src_ip, uint32_t dst_ip,
			     uint16_t ident, uint16_t seq, uint32_t dlen);

/*
 * pkt_tx_check - validate a frame a tenant asks to send.
 * @f, @len:   the frame.
 * @mtu:       largest IPv4 total length the port sends.
 * @port_mac:  the only Ethernet source allowed.
 * @pi:        filled in on success (as pkt_parse() fills it for PKT_UDP).
 * @why:       on refusal, one of
 *   MN_DROP_TX_BAD_FRAME  not Ethernet/IPv4/UDP, or malformed: version, IHL,
 *                         total length not matching the frame (the frame
 *                         may only carry padding up to 60 bytes), a
 *                         fragment, TTL 0, UDP length != total length -
 *                         IHL*4;
 *   MN_DROP_TX_SRC_MAC    Ethernet source is not @port_mac;
 *   MN_DROP_TX_MTU        IPv4 total length above @mtu.
 * Checksums are not checked: nicd fills them when the tenant asks it to.
 * Whether the source IP and port belong to the tenant is the port table's
 * question (MN_DROP_TX_SRC_IP). Returns 0 or -1.
 */
int pkt_tx_check(const uint8_t *f, uint32_t len, uint16_t mtu, const uint8_t port_mac[6],
		 struct pkt_info *pi, enum mn_drop *why);

#endif /* MN_DRIVERS_PKT_H */
