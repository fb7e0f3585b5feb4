/* SPDX-License-Identifier: MIT */
/*
 * PING in machnet-nicd (ipc/port.h): one ICMP echo request per control
 * request, sent through the port like the other frames nicd originates
 * (ARP requests, echo replies), its reply matched in the receive path.
 * Asynchronous like RESOLVE: a request waits in n->echo (drivers/echo.h)
 * for ARP, then for its reply, and is answered from the receive path, the
 * ARP hooks or ping_tick().
 *
 * Time budget: resolving the next hop may take up to arp_timeout_ms (the
 * neighbour cache's own limit, answered -EHOSTUNREACH); timeout_ms starts
 * when the request leaves, so a time-out and an RTT are about the echo
 * alone.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "nicd.h"
#include "pkt.h"

#define IP_FMT "%u.%u.%u.%u"
#define IP_ARGS(ip) (ip) >> 24, ((ip) >> 16) & 255u, ((ip) >> 8) & 255u, (ip) & 255u

static int answer(struct nicd *n, int ci, uint32_t req_id, int32_t status,
		  const struct mn_port_pong *pong)
{
	return mn_ctl_send(n->clients[ci].fd, MN_PORT_T_PING, req_id, status, pong,
			   pong ? sizeof(*pong) : 0, NULL, 0, NICD_CTL_TIMEOUT_MS);
}

/* Answer slot @i with @status (and @pong when 0), count, and free it. */
static int finish(struct nicd *n, int i, int32_t status, const struct mn_port_pong *pong)
{
	const struct echo_slot *s = &n->echo.slot[i];
	int err;

	if (status == -ETIMEDOUT)
		n->ping_st.timeouts++;
	else if (status == -EHOSTUNREACH)
		n->ping_st.unreachable++;
	if (status < 0)
		mn_dbg("ping", "PING " IP_FMT " (seq %u) for pid %d: %s", IP_ARGS(s->req.ip),
		       s->req.seq, (int)n->clients[s->owner].pid, strerror(-status));
	err = answer(n, s->owner, s->tag, status, pong);
	echo_free(&n->echo, i);
	return err;
}

/* One client may not take every slot from the others. */
#define PING_PER_CLIENT 8u

static unsigned int pings_of(const struct nicd *n, int ci)
{
	unsigned int k = 0;

	for (unsigned int i = 0; i < ECHO_MAX; i++)
		k += n->echo.slot[i].state != ECHO_FREE && n->echo.slot[i].owner == ci;
	return k;
}

static bool own_ip(const struct nicd *n, uint32_t ip)
{
	for (unsigned int i = 0; i < n->cfg.nips; i++)
		if (n->cfg.ips[i] == ip)
			return true;
	return false;
}

/* 0.0.0.0/8, 127.0.0.0/8, multicast (224/4) and above, limited broadcast. */
static bool routable_unicast(uint32_t ip)
{
	return (ip >> 24) != 0 && (ip >> 24) != 127 && (ip >> 28) < 0xe;
}

/* Why @r cannot be served (logged with the values), or 0. */
static int check(const struct nicd *n, int ci, const struct mn_port_ping *r)
{
	char why[96] = "";
	int err = -EINVAL;

	if (r->reserved != 0) {
		snprintf(why, sizeof(why), "reserved field is %u, not 0 (a newer client?)",
			 r->reserved);
	} else if (r->timeout_ms < 1 || r->timeout_ms > MN_PORT_PING_MAX_TIMEOUT_MS) {
		snprintf(why, sizeof(why), "timeout %u ms is outside 1..%u", r->timeout_ms,
			 MN_PORT_PING_MAX_TIMEOUT_MS);
	} else if (!routable_unicast(r->ip) || own_ip(n, r->ip)) {
		snprintf(why, sizeof(why), "not a unicast address of another host");
	} else if (r->size + PKT_IPV4_HLEN + PKT_ICMP_HLEN > n->port.mtu) {
		err = -EMSGSIZE;
		snprintf(why, sizeof(why), "%u data bytes + 28 exceed the MTU %u", r->size,
			 n->port.mtu);
	} else if (nicd_next_hop(n, r->ip) == 0) {
		err = -ENETUNREACH;
		snprintf(why, sizeof(why), "no local subnet holds it and no gateway is configured");
	}
	if (!why[0])
		return 0;
	mn_warn_rl("ping", "PING " IP_FMT " from pid %d refused: %s", IP_ARGS(r->ip),
		   (int)n->clients[ci].pid, why);
	return err;
}

/* Send slot @i's request to @mac now; on failure answer it. */
static int send_echo(struct nicd *n, int i, const uint8_t mac[6])
{
	const struct echo_slot *s = &n->echo.slot[i];
	uint16_t seq = echo_sent(&n->echo, i, nicd_now_ns());
	int err = dp_send_icmp_echo(n, mac, s->req.ip, s->next_hop, n->echo.ident, seq,
				    s->req.size);

	if (err) {
		mn_warn_rl("ping", "echo request to " IP_FMT " not sent: %s", IP_ARGS(s->req.ip),
			   strerror(-err));
		return finish(n, i, err, NULL);
	}
	n->ping_st.echo_tx++;
	return 0;
}

/* Slot @i, just added: send now if the next hop is known, else wait for ARP. */
static int resolve_and_send(struct nicd *n, int i, uint64_t now)
{
	uint32_t hop = n->echo.slot[i].next_hop;
	bool need = false;
	uint8_t mac[6];
	int err = neigh_lookup(n->neigh, hop, now, mac, &need);

	if (need)
		dp_send_arp_request(n, hop);
	if (err == -EAGAIN)
		return 0;
	/* -ENOSPC: the cache is full of resolutions in progress; try later. */
	if (err)
		return finish(n, i, err == -ENOSPC ? -EBUSY : err, NULL);
	return send_echo(n, i, mac);
}

int ping_request(struct nicd *n, int ci, const struct mn_ctl_msg *m)
{
	uint64_t now = nicd_now_ns();
	struct mn_port_ping r;
	int i, err;

	memcpy(&r, m->payload, sizeof(r));
	err = check(n, ci, &r);
	if (err) {
		n->st.refused++;
		return answer(n, ci, m->hdr.req_id, err, NULL);
	}
	if (pings_of(n, ci) >= PING_PER_CLIENT) {
		mn_warn_rl("ping", "PING " IP_FMT " from pid %d refused: %u of its pings in flight already",
			   IP_ARGS(r.ip), (int)n->clients[ci].pid, PING_PER_CLIENT);
		n->st.refused++;
		return answer(n, ci, m->hdr.req_id, -EBUSY, NULL);
	}
	i = echo_add(&n->echo, ci, m->hdr.req_id, &r, nicd_next_hop(n, r.ip),
		     now + n->cfg.arp_timeout_ms * 1000000ull);
	if (i < 0) {
		mn_warn_rl("ping", "PING " IP_FMT " from pid %d refused: %u pings in flight already",
			   IP_ARGS(r.ip), (int)n->clients[ci].pid, ECHO_MAX);
		n->st.refused++;
		return answer(n, ci, m->hdr.req_id, -EBUSY, NULL);
	}
	n->ping_st.requests++;
	return resolve_and_send(n, i, now);
}

void ping_neigh_resolved(struct nicd *n, uint32_t ip, const uint8_t mac[6])
{
	for (int i = echo_next_for_hop(&n->echo, 0, ip); i >= 0;
	     i = echo_next_for_hop(&n->echo, i + 1, ip))
		send_echo(n, i, mac);
}

void ping_neigh_failed(struct nicd *n, uint32_t ip)
{
	for (int i = echo_next_for_hop(&n->echo, 0, ip); i >= 0;
	     i = echo_next_for_hop(&n->echo, i + 1, ip))
		finish(n, i, -EHOSTUNREACH, NULL);
}

bool ping_echo_reply(struct nicd *n, const struct pkt_info *pi, uint64_t now)
{
	int i = echo_match(&n->echo, pi->src_ip, pi->icmp_id, pi->icmp_seq);
	const struct echo_slot *s;
	struct mn_port_pong pong;

	if (i < 0) {
		n->ping_st.unmatched++;
		mn_dbg("ping", "echo reply from " IP_FMT " (id %u seq %u) answers no PING: dropped",
		       IP_ARGS(pi->src_ip), pi->icmp_id, pi->icmp_seq);
		return false;
	}
	s = &n->echo.slot[i];
	pong = (struct mn_port_pong){
		.ip = s->req.ip,
		.seq = s->req.seq,
		.rtt_ns = now > s->sent_ns ? now - s->sent_ns : 0,
		.next_hop = s->next_hop,
		.bytes = (uint16_t)(pi->ip_total_len - (pi->l4_off - pi->l3_off)),
		.ttl = pi->ttl,
		.icmp_id = n->echo.ident,
		.icmp_seq = s->seq,
	};
	n->ping_st.matched++;
	finish(n, i, 0, &pong);
	return true;
}

void ping_tick(struct nicd *n, uint64_t now)
{
	for (int i = echo_next_expired(&n->echo, 0, now); i >= 0;
	     i = echo_next_expired(&n->echo, i + 1, now))
		finish(n, i, n->echo.slot[i].state == ECHO_SENT ? -ETIMEDOUT : -EHOSTUNREACH, NULL);
}

void ping_forget_client(struct nicd *n, int ci)
{
	echo_drop_owner(&n->echo, ci);
}

unsigned int ping_in_flight(const struct nicd *n)
{
	return echo_count(&n->echo, ECHO_SENT);
}

void ping_log_stats(const struct nicd *n)
{
	const struct nicd_ping_stats *p = &n->ping_st;

	mn_info("ping", "%llu PING requests: %llu echo requests sent, %llu replies matched, "
		"%llu unmatched replies dropped, %llu timed out, %llu unreachable",
		(unsigned long long)p->requests, (unsigned long long)p->echo_tx,
		(unsigned long long)p->matched, (unsigned long long)p->unmatched,
		(unsigned long long)p->timeouts, (unsigned long long)p->unreachable);
}
