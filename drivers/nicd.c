/* SPDX-License-Identifier: MIT */
/*
 * machnet-nicd: the NIC driver server. One thread polls the NIC and every
 * tenant's rings, and serves the control socket in between.
 *
 * Polling (poll_mode):
 *   busy      never sleeps; for a core of its own.
 *   yield     sched_yield() when a pass found nothing; shares a core.
 *   adaptive  polls, yielding between passes, for spin_us after the last
 *             work (a reply to what we just sent usually comes within a
 *             cross-CPU wake-up, 35-45 us here), then sleeps in
 *             epoll on the control sockets and the tenants' kick eventfds,
 *             with a timeout doubling from 10 us to sleep_max_us, because
 *             the vNIC backends give no rx interrupts (LAB: af_xdp and
 *             af_packet answer -ENOTSUP): the first frame after a long idle
 *             waits up to sleep_max_us.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "nicd.h"

#define CTL_EVERY_NS 100000ull /* serve control sockets at least this often */
#define SLEEP_MIN_NS 10000ull

static struct nicd *the_nicd;

static void on_signal(int sig)
{
	(void)sig;
	if (the_nicd)
		the_nicd->stop = 1;
}

static void set_sleeping(struct nicd *n, uint32_t v)
{
	for (unsigned int i = 0; i < n->cfg.ntenants; i++)
		if (n->tenants[i].connected)
			/* Seq-cst pairs with the protocol server's load of
			 * nicd_sleeping after it publishes tx (ipc/port.h). */
			__atomic_store_n(&n->tenants[i].ctrl->nicd_sleeping, v, __ATOMIC_SEQ_CST);
}

static bool tx_pending(struct nicd *n)
{
	for (unsigned int i = 0; i < n->cfg.ntenants; i++) {
		struct tnt *t = &n->tenants[i];

		for (uint16_t q = 0; t->connected && q < t->nqueues; q++)
			if (mn_ring_count(&t->q[q].tx) != 0)
				return true;
	}
	return false;
}

static void sleep_once(struct nicd *n, uint64_t ns)
{
	set_sleeping(n, 1);
	/* Re-check after raising the flag: a tx published before the flag was
	 * visible would otherwise wait a whole sleep. */
	if (!tx_pending(n)) {
		csrv_poll(n, (int64_t)ns);
		n->st.wakeups++;
	}
	set_sleeping(n, 0);
}

static void run(struct nicd *n)
{
	uint64_t last_ctl = 0, last_tick = 0, idle_since = 0, sleep_ns = SLEEP_MIN_NS;
	uint64_t spin_ns = n->cfg.spin_us * 1000ull, sleep_max = n->cfg.sleep_max_us * 1000ull;

	while (!n->stop) {
		unsigned int moved = dp_poll(n);
		uint64_t now = nicd_now_ns();

		if (now - last_ctl >= CTL_EVERY_NS) {
			csrv_poll(n, 0);
			last_ctl = now;
		}
		/* Apart from the control check: adaptive sleeps serve the sockets
		 * and leave last_ctl fresh, so an idle nicd never got here, and
		 * ARP retries and RESOLVE time-outs waited for traffic. */
		if (now - last_tick >= 1000000ull) {
			csrv_tick(n);
			last_tick = now;
		}
		if (moved) {
			idle_since = 0;
			sleep_ns = SLEEP_MIN_NS;
			continue;
		}
		switch (n->cfg.poll_mode) {
		case NICD_POLL_BUSY:
			break;
		case NICD_POLL_YIELD:
			sched_yield();
			break;
		case NICD_POLL_ADAPTIVE:
			if (idle_since == 0)
				idle_since = now;
			/* A ping in flight keeps nicd polling: its RTT is the
			 * wire's, not our sleep's (up to sleep_max_us). */
			if (now - idle_since < spin_ns || ping_in_flight(n)) {
				sched_yield();
				break;
			}
			sleep_once(n, sleep_ns);
			last_ctl = nicd_now_ns();
			sleep_ns = sleep_ns * 2 > sleep_max ? sleep_max : sleep_ns * 2;
			break;
		}
	}
}

static int setup(struct nicd *n, const char *prog)
{
	int err;

	n->start_ns = nicd_now_ns();
	if (getrandom(&n->generation, sizeof(n->generation), 0) != sizeof(n->generation))
		n->generation = (uint32_t)n->start_ns;
	/* Per start, so replies to an earlier nicd's pings match nothing. */
	echo_init(&n->echo, (uint16_t)(n->generation >> 16), (uint16_t)n->generation);
	for (unsigned int i = 0; i < n->cfg.ntenants; i++)
		n->tenants[i] = (struct tnt){ .cfg = &n->cfg.tenants[i], .id = (uint16_t)i,
					      .fd = -1, .kick_fd = -1, .rx_fd = -1 };
	err = dport_eal_init(&n->cfg, prog);
	if (err)
		return err;
	err = dport_open(&n->port, &n->cfg);
	if (err)
		return err;
	err = pt_create(&n->pt, n->cfg.ips, n->cfg.nips);
	if (err)
		return err;
	err = neigh_create(&n->neigh, 1024, n->cfg.arp_ttl_s * 1000000000ull,
			   n->cfg.arp_timeout_ms * 1000000ull, 200000000ull);
	if (err)
		return err;
	return csrv_open(n);
}

int main(int argc, char **argv)
{
	static struct nicd n;
	struct sigaction sa = { .sa_handler = on_signal };
	int rc;

	rc = nicd_cfg_parse_cmdline(&n.cfg, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	mn_log_set_level((enum mn_log_level)n.cfg.log_level);
	nicd_cfg_dump(&n.cfg);
	the_nicd = &n;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = setup(&n, argv[0]);
	if (rc == 0) {
		mn_info("nicd", "running: poll mode %s, generation %08" PRIx32,
			nicd_poll_mode_name(n.cfg.poll_mode), n.generation);
		run(&n);
		mn_info("nicd", "stopping");
		ping_log_stats(&n);
		csrv_close(&n);
	}
	if (n.neigh)
		neigh_destroy(n.neigh);
	if (n.pt)
		pt_destroy(n.pt);
	dport_close(&n.port);
	return rc == 0 ? 0 : 1;
}
