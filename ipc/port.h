/* SPDX-License-Identifier: MIT */
/*
 * mn_port: the tenant port, the ABI between a protocol server (p) and the
 * NIC driver server machnet-nicd (d).
 *
 * The protocol server creates a region of kind MN_REGION_KIND_PORT, owns its
 * frame pool, and hands the fd to nicd with MN_PORT_T_REGISTER on
 * <runtime>/nicd.sock. Per queue q there are four SPSC rings of struct
 * mn_pkt_desc, modelled on AF_XDP:
 *
 *   fill  (p -> d)  empty frames nicd may receive into
 *   rx    (d -> p)  received frames
 *   tx    (p -> d)  frames to send
 *   comp  (d -> p)  sent frames, returned
 *
 *   section tag                  contents
 *   MN_PORT_TAG_CTRL             struct mn_port_ctrl (wake-up flags)
 *   MN_PORT_TAG_POOL             struct mn_pool_shm + frames (ipc/pool.h)
 *   MN_PORT_TAG(MN_PORT_RING_*)  nqueues rings of that kind, back to back:
 *                                ring q at q * mn_port_ring_size(ring_cap)
 *
 * All rings have the same capacity, ring_cap >= nframes.
 *
 * Every ring can hold every frame, so nicd never finds rx or comp full
 * unless the protocol server stops consuming; then it drops and counts.
 * Frames are owned per ipc/pool.h: the protocol server lends them on fill
 * and tx and takes them back from rx and comp, validating every index; nicd
 * bounds-checks every descriptor through its mn_pool_view.
 *
 * Wake-ups (adaptive polling, modelled on AF_XDP's need_wakeup): REGISTER
 * carries two eventfds besides the region. Before nicd sleeps it sets
 * `nicd_sleeping` and re-checks the tx rings; a protocol server that
 * enqueues tx and then sees the flag writes the kick eventfd. The same
 * handshake runs the other way with `proto_sleeping` and the rx eventfd.
 */
#ifndef MN_IPC_PORT_H
#define MN_IPC_PORT_H

#include <stdint.h>

#include "ctl.h"
#include "ring.h"

#define MN_PORT_MAX_QUEUES 8u
#define MN_PORT_MAX_CLAIMS 64u /* per tenant */

enum mn_port_ring {
	MN_PORT_RING_FILL = 1,
	MN_PORT_RING_RX = 2,
	MN_PORT_RING_TX = 3,
	MN_PORT_RING_COMP = 4,
};

#define MN_PORT_TAG_CTRL 0x101u
#define MN_PORT_TAG_POOL 0x100u
#define MN_PORT_TAG(ring) (0x200u | (uint32_t)(ring))

/*
 * Wake-up flags. Each side stores its own flag with seq-cst ordering before
 * re-checking its rings, and the other side loads it (seq-cst) after
 * publishing ring entries: one of the two always sees the other's store, so
 * a wake-up is never lost.
 */
struct mn_port_ctrl {
	uint32_t nicd_sleeping;	 /* (d) 1 while nicd waits in epoll */
	uint32_t reserved0[15];
	uint32_t proto_sleeping; /* (p) 1 while the protocol server waits */
	uint32_t reserved1[15];
};
_Static_assert(sizeof(struct mn_port_ctrl) == 128, "port ctrl is ABI");

/* A frame descriptor (16 bytes) on every port ring. */
struct mn_pkt_desc {
	uint32_t idx;	 /* frame index in the pool; first, per ipc/pool.h */
	uint32_t len;	 /* frame bytes (fill: 0) */
	uint16_t off;	 /* where the frame starts in the buffer */
	uint16_t flags;	 /* MN_PKT_F_* */
	uint32_t cookie; /* opaque to nicd, returned as given on comp */
};
_Static_assert(sizeof(struct mn_pkt_desc) == 16, "port descriptor is ABI");

/* rx: nicd verified (or the NIC did) the IPv4 and UDP checksums. */
#define MN_PKT_F_CSUM_OK 0x1u
/* tx: nicd fills in the IPv4 and UDP checksums (in software if need be). */
#define MN_PKT_F_TX_CSUM 0x2u
/* comp: the frame was refused, not sent (see the tenant's tx drop counters). */
#define MN_PKT_F_TX_REFUSED 0x4u

/* Control messages on nicd.sock (ipc/ctl types). Append only: the values
 * are ABI (REGISTER 16 ... NEIGH 23, PING 24). */
enum mn_port_msg {
	MN_PORT_T_REGISTER = MN_CTL_T_USER, /* p->d, 3 fds: region, kick, rx */
	MN_PORT_T_CLAIM,		    /* p->d: claim an (ip, port range) */
	MN_PORT_T_RELEASE,		    /* p->d: release a claim */
	MN_PORT_T_RESOLVE,		    /* p->d: MAC of a next hop */
	MN_PORT_T_STATS,		    /* any->d: counters */
	MN_PORT_T_INFO,			    /* any->d: device, addresses, mode */
	MN_PORT_T_PORTS,		    /* any->d: every port claim */
	MN_PORT_T_NEIGH,		    /* any->d: the ARP neighbour cache */
	MN_PORT_T_PING,			    /* any->d: one ICMP echo through the port */
};
_Static_assert(MN_PORT_T_NEIGH == 23 && MN_PORT_T_PING == 24, "message types are ABI: append only");

/* Bytes one ring of a port takes in its section (a multiple of 64). */
#define mn_port_ring_size(cap) \
	((MN_RING_HDR_SIZE + (size_t)(cap) * sizeof(struct mn_pkt_desc) + 63) & ~(size_t)63)

/* fds sent with REGISTER, in this order. */
enum {
	MN_PORT_FD_REGION = 0, /* the port region */
	MN_PORT_FD_KICK = 1,   /* eventfd p writes when nicd_sleeping */
	MN_PORT_FD_RX = 2,     /* eventfd d writes when proto_sleeping */
	MN_PORT_NFDS = 3,
};

/* HELLO roles on nicd.sock. */
enum mn_port_role {
	MN_PORT_ROLE_PROTO = 1, /* a protocol server, name = tenant */
	MN_PORT_ROLE_ADMIN = 2, /* machnetctl: stats and info only */
};

struct mn_port_register {
	uint16_t nqueues;     /* 1..MN_PORT_MAX_QUEUES, <= nicd's queues */
	uint16_t reserved0;
	uint32_t nframes;     /* frames in the pool */
	uint32_t frame_size;  /* bytes per frame */
	uint32_t ring_cap;    /* capacity of every ring, >= nframes */
};
_Static_assert(sizeof(struct mn_port_register) == 16, "register is ABI");

/* REGISTER response payload. */
struct mn_port_registered {
	uint8_t mac[6];	      /* the port's MAC: the source of every frame */
	uint16_t mtu;	      /* largest IPv4 packet nicd sends or accepts */
	uint16_t nqueues;     /* queues nicd serves for this tenant */
	uint16_t tx_csum;     /* 1: nicd fills checksums when asked */
	uint32_t generation;  /* random per nicd start: changes on each restart */
};
_Static_assert(sizeof(struct mn_port_registered) == 16, "registered is ABI");

/* CLAIM / RELEASE payload; addresses and ports in host order. */
struct mn_port_claim {
	uint32_t ip;
	uint16_t port_lo;
	uint16_t port_hi; /* inclusive */
};
_Static_assert(sizeof(struct mn_port_claim) == 8, "claim is ABI");

/* RESOLVE request: {ip}; response: struct mn_port_neigh (status 0) or
 * status -EHOSTUNREACH when ARP got no answer in time. */
struct mn_port_resolve {
	uint32_t ip; /* destination; nicd picks the gateway if off-subnet */
};
struct mn_port_neigh {
	uint32_t ip;	  /* the destination asked for */
	uint32_t next_hop;
	uint8_t mac[6];	  /* of next_hop */
	uint16_t reserved;
};
_Static_assert(sizeof(struct mn_port_neigh) == 16, "neigh is ABI");

/*
 * PING request: nicd sends one ICMP echo request from its own address on
 * the target's subnet (ARP first if need be, gateway rules as RESOLVE) and
 * answers with struct mn_port_pong when the echo reply arrives. Errors
 * (status, no payload):
 *   -EINVAL        size, timeout_ms or reserved out of range, or @ip is 0,
 *                  255.255.255.255, multicast, loopback or one of nicd's own
 *                  addresses (a subnet's broadcast address is not known
 *                  here: it fails ARP, -EHOSTUNREACH);
 *   -EMSGSIZE      size + 28 exceeds nicd's MTU;
 *   -ENETUNREACH   no local subnet holds @ip and no gateway is set;
 *   -EHOSTUNREACH  the next hop did not answer ARP (within arp_timeout_ms);
 *   -EBUSY         32 pings in flight, or 8 of this client's;
 *   -ETIMEDOUT     no echo reply within timeout_ms after the request left;
 *   -ENOBUFS       nicd could not send the request (mbufs, NIC queue full).
 * A ping in flight is forgotten when its connection closes. Each request is
 * one echo: the caller paces a series.
 */
#define MN_PORT_PING_MAX_SIZE 65507u	   /* echo data bytes (the MTU limits further) */
#define MN_PORT_PING_MAX_TIMEOUT_MS 10000u
#define MN_PORT_PING_MAX_PENDING 32u	   /* pings in flight in nicd, all clients */

struct mn_port_ping {
	uint32_t ip;	     /* destination, host order */
	uint16_t size;	     /* echo data bytes, 0..MN_PORT_PING_MAX_SIZE */
	uint16_t reserved;   /* 0 */
	uint32_t timeout_ms; /* 1..MN_PORT_PING_MAX_TIMEOUT_MS, from when it left */
	uint32_t seq;	     /* the caller's, returned in the answer */
};
_Static_assert(sizeof(struct mn_port_ping) == 16, "ping is ABI");

/* PING response payload (status 0). */
struct mn_port_pong {
	uint32_t ip;	   /* who replied: the request's ip */
	uint32_t seq;	   /* the request's */
	uint64_t rtt_ns;   /* request handed to the NIC -> reply parsed by nicd */
	uint32_t next_hop; /* where the request was sent (ip or the gateway) */
	uint16_t bytes;	   /* ICMP bytes in the reply: 8 + echo data */
	uint8_t ttl;	   /* IPv4 TTL of the reply */
	uint8_t reserved0;
	uint16_t icmp_id;  /* identifier and sequence nicd used on the wire */
	uint16_t icmp_seq;
	uint32_t reserved1;
};
_Static_assert(sizeof(struct mn_port_pong) == 32, "pong is ABI");

/* Why a frame was not delivered (rx) or not sent (tx). Stable numbers. */
enum mn_drop {
	MN_DROP_RX_RUNT = 0,	     /* shorter than its headers claim */
	MN_DROP_RX_NOT_OURS,	     /* unicast to another MAC or IP */
	MN_DROP_RX_ETHERTYPE,	     /* not IPv4 or ARP */
	MN_DROP_RX_BAD_IP,	     /* version, IHL, total length */
	MN_DROP_RX_IP_CSUM,	     /* IPv4 header checksum */
	MN_DROP_RX_FRAGMENT,	     /* IPv4 fragments are not reassembled */
	MN_DROP_RX_TTL,		     /* TTL 0 */
	MN_DROP_RX_PROTO,	     /* not UDP, ICMP */
	MN_DROP_RX_BAD_UDP,	     /* UDP length */
	MN_DROP_RX_UDP_CSUM,	     /* UDP checksum */
	MN_DROP_RX_BAD_ARP,	     /* malformed ARP */
	MN_DROP_RX_BAD_ICMP,	     /* malformed ICMP, not an echo request, or an
					 echo reply to no PING in flight */
	MN_DROP_RX_NO_PORT,	     /* no tenant claimed (dst ip, dst port) */
	MN_DROP_RX_NO_BUF,	     /* tenant's fill ring empty */
	MN_DROP_RX_RING_FULL,	     /* tenant's rx ring full */
	MN_DROP_RX_TOO_BIG,	     /* frame larger than the tenant's frames */
	MN_DROP_RX_BAD_FILL,	     /* tenant's fill descriptor out of bounds */
	MN_DROP_TX_BAD_DESC,	     /* index, offset or length out of bounds */
	MN_DROP_TX_BAD_FRAME,	     /* headers malformed or inconsistent */
	MN_DROP_TX_SRC_MAC,	     /* Ethernet source is not the port's */
	MN_DROP_TX_SRC_IP,	     /* IPv4 source/UDP port not claimed by it */
	MN_DROP_TX_MTU,		     /* larger than the MTU */
	MN_DROP_TX_NO_MBUF,	     /* nicd's mbuf pool empty */
	MN_DROP_TX_NIC_FULL,	     /* the NIC refused the burst */
	MN_DROP_TX_COMP_FULL,	     /* completion ring full (frame kept by nicd) */
	MN_DROP_MAX,
};

static inline const char *mn_drop_name(unsigned int why)
{
	static const char *const names[MN_DROP_MAX] = {
		"rx_runt", "rx_not_ours", "rx_ethertype", "rx_bad_ip", "rx_ip_csum",
		"rx_fragment", "rx_ttl", "rx_proto", "rx_bad_udp", "rx_udp_csum",
		"rx_bad_arp", "rx_bad_icmp", "rx_no_port", "rx_no_buf", "rx_ring_full",
		"rx_too_big", "rx_bad_fill", "tx_bad_desc", "tx_bad_frame", "tx_src_mac", "tx_src_ip",
		"tx_mtu", "tx_no_mbuf", "tx_nic_full", "tx_comp_full",
	};

	return why < MN_DROP_MAX ? names[why] : "unknown";
}

/* Packet and byte counters with drops by reason. */
struct mn_port_counters {
	uint64_t rx_pkts;
	uint64_t rx_bytes;
	uint64_t tx_pkts;
	uint64_t tx_bytes;
	uint64_t drops[MN_DROP_MAX];
};
_Static_assert(sizeof(struct mn_port_counters) == 32 + 8 * MN_DROP_MAX,
	       "counters are ABI");

/*
 * STATS response payload:
 *   struct mn_port_stats_hdr
 *   struct mn_port_counters    per queue   [nqueues]
 *   struct mn_port_tenant_stats per tenant [ntenants] (configured tenants)
 */
struct mn_port_stats_hdr {
	uint32_t nqueues;
	uint32_t ntenants;
	uint64_t uptime_ns;
	uint64_t nic_ipackets;	 /* from the device (rte_eth_stats) */
	uint64_t nic_opackets;
	uint64_t nic_ibytes;
	uint64_t nic_obytes;
	uint64_t nic_imissed;
	uint64_t nic_ierrors;
	uint64_t nic_oerrors;
	uint64_t nic_rx_nombuf;
	uint64_t arp_rx;	 /* ARP packets received */
	uint64_t arp_req_tx;	 /* ARP requests sent (resolution) */
	uint64_t arp_reply_tx;	 /* ARP replies sent for our addresses */
	uint64_t icmp_echo_tx;	 /* ICMP echo replies sent */
	uint64_t resolve_fail;	 /* RESOLVE answered with an error */
	uint64_t registrations;	 /* successful REGISTERs since start */
	uint64_t refused;	 /* connections or requests refused */
	uint64_t wakeups;	 /* adaptive mode: returns from sleep */
	struct mn_port_counters port; /* everything, incl. not-for-a-tenant */
};
_Static_assert(sizeof(struct mn_port_stats_hdr) == 144 + sizeof(struct mn_port_counters),
	       "stats header is ABI");

struct mn_port_tenant_stats {
	char name[32];
	uint32_t connected; /* 1 if its protocol server is registered */
	uint32_t nclaims;   /* ports claimed */
	uint32_t pid;	    /* of the registered protocol server */
	uint32_t reserved;
	struct mn_port_counters c;
};
_Static_assert(sizeof(struct mn_port_tenant_stats) == 48 + sizeof(struct mn_port_counters),
	       "tenant stats are ABI");

/* INFO response payload: what nicd runs on. Strings NUL-terminated. */
struct mn_port_info {
	char version[16];
	char driver[32];
	char device[128];
	uint8_t mac[6];
	uint16_t mtu;
	uint16_t nqueues;
	uint16_t poll_mode;	  /* 0 busy, 1 yield, 2 adaptive */
	uint32_t nips;
	uint32_t ips[8];	  /* host order */
	uint8_t prefix_len[8];
	uint32_t gateway;
	uint32_t generation;
	uint32_t pid;
	uint32_t reserved;
	uint64_t uptime_ns;
};
_Static_assert(sizeof(struct mn_port_info) == 256, "info is ABI");

/*
 * PORTS and NEIGH response payloads: struct mn_port_list_hdr, then count
 * entries (struct mn_port_claim_entry, struct mn_port_neigh_entry). The
 * list is cut to fit one message; MN_PORT_LIST_F_TRUNCATED says so.
 */
#define MN_PORT_LIST_F_TRUNCATED 0x1u

struct mn_port_list_hdr {
	uint32_t count; /* entries that follow */
	uint32_t flags; /* MN_PORT_LIST_F_* */
};
_Static_assert(sizeof(struct mn_port_list_hdr) == 8, "list header is ABI");

/* One maximal run of consecutive ports with the same owner. */
struct mn_port_claim_entry {
	char tenant[32]; /* NUL-terminated */
	uint32_t ip;	 /* host order */
	uint16_t port_lo;
	uint16_t port_hi; /* inclusive */
};
_Static_assert(sizeof(struct mn_port_claim_entry) == 40, "claim entry is ABI");

/* One neighbour cache entry. */
struct mn_port_neigh_entry {
	uint32_t ip;	/* host order */
	uint8_t mac[6]; /* zeros while incomplete or failed */
	uint16_t state; /* 1 incomplete, 2 reachable, 3 stale, 4 failed */
	uint64_t age_ms; /* since confirmed (reachable, stale) or since the state began */
};
_Static_assert(sizeof(struct mn_port_neigh_entry) == 24, "neigh entry is ABI");

#define MN_PORT_MAX_LIST_CLAIMS \
	((MN_CTL_MAX_PAYLOAD - sizeof(struct mn_port_list_hdr)) / sizeof(struct mn_port_claim_entry))
#define MN_PORT_MAX_LIST_NEIGH \
	((MN_CTL_MAX_PAYLOAD - sizeof(struct mn_port_list_hdr)) / sizeof(struct mn_port_neigh_entry))

#endif /* MN_IPC_PORT_H */
