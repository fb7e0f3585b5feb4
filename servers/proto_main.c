/* SPDX-License-Identifier: MIT */
/*
 * machnet-proto: one tenant's protocol server. It owns the tenant's port at
 * machnet-nicd (frames) and its applications' channels (messages), and runs
 * the transport between them. One thread; polling as nicd's (poll_mode).
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"

#define CTL_EVERY_NS 100000ull
#define SLEEP_MIN_NS 10000ull
#define NICD_WAIT_MS 2000

static struct proto *the_proto;

static void on_signal(int sig)
{
	if (!the_proto)
		return;
	if (sig == SIGUSR1)
		the_proto->dump = 1;
	else
		the_proto->stop = 1;
}

/* Raise every "I sleep" flag, then re-check: see ipc/port.h, ipc/channel.h. */
static bool may_sleep(struct proto *p)
{
	bool ok = true;

	if (p->port.ctrl)
		__atomic_store_n(&p->port.ctrl->proto_sleeping, 1, __ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < p->nconns && ok; i++)
		if (p->conns[i].attached && !mn_chan_srv_sleep_prepare(&p->conns[i].srv))
			ok = false;
	return ok && !pnet_pending(p);
}

static void woke(struct proto *p)
{
	if (p->port.ctrl)
		__atomic_store_n(&p->port.ctrl->proto_sleeping, 0, __ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < p->nconns; i++)
		if (p->conns[i].attached)
			mn_chan_srv_sleep_done(&p->conns[i].srv);
}

static void run(struct proto *p)
{
	uint64_t last_ctl = 0, idle_since = 0, sleep_ns = SLEEP_MIN_NS;
	uint64_t spin_ns = p->cfg.spin_us * 1000ull, sleep_max = p->cfg.sleep_max_us * 1000ull;

	while (!p->stop) {
		unsigned int work = pnet_poll(p);
		uint64_t now;

		if (p->dump) {
			p->dump = 0;
			pnet_dump(p);
		}
		now = proto_now_ns();

		if (now - last_ctl >= CTL_EVERY_NS) {
			pctl_poll(p, 0);
			last_ctl = now;
		}
		if (work) {
			idle_since = 0;
			sleep_ns = SLEEP_MIN_NS;
			continue;
		}
		switch (p->cfg.poll_mode) {
		case PROTO_POLL_BUSY:
			break;
		case PROTO_POLL_YIELD:
			sched_yield();
			break;
		case PROTO_POLL_ADAPTIVE:
			if (idle_since == 0)
				idle_since = now;
			if (now - idle_since < spin_ns) {
				sched_yield();
				break;
			}
			if (may_sleep(p)) {
				uint64_t due = pnet_next_deadline(p), t = sleep_ns;

				if (due != UINT64_MAX && due > now && due - now < t)
					t = due - now;
				pctl_poll(p, (int64_t)t);
			}
			woke(p);
			last_ctl = proto_now_ns();
			sleep_ns = sleep_ns * 2 > sleep_max ? sleep_max : sleep_ns * 2;
			break;
		}
	}
}

static int setup(struct proto *p)
{
	int err;

	p->start_ns = proto_now_ns();
	p->nconns = p->cfg.channels + PROTO_ADMIN_CONNS;
	if (getrandom(&p->server_gen, sizeof(p->server_gen), 0) != sizeof(p->server_gen))
		p->server_gen = p->start_ns;
	err = portc_create(&p->port, p->cfg.name, p->cfg.runtime_dir, 1, p->cfg.frames, 2048);
	if (err) {
		mn_err("proto", "cannot create the port region (%u frames): %s", p->cfg.frames,
		       strerror(-err));
		return err;
	}
	err = portc_connect(&p->port, NICD_WAIT_MS);
	if (err)
		/* nicd may start later, or restart: portc_check() keeps trying. */
		mn_warn("proto", "machnet-nicd not reachable at %s (%s): retrying in the background",
			p->port.sock_path, strerror(-err));
	err = pnet_open(p);
	return err ? err : pctl_open(p);
}

int main(int argc, char **argv)
{
	static struct proto p;
	struct sigaction sa = { .sa_handler = on_signal };
	int rc;

	rc = proto_cfg_parse_cmdline(&p.cfg, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	mn_log_set_level((enum mn_log_level)p.cfg.log_level);
	proto_cfg_dump(&p.cfg);
	the_proto = &p;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	p.listen_fd = p.epfd = -1;
	rc = setup(&p);
	if (rc == 0) {
		mn_info("proto", "tenant %s running: poll mode %s", p.cfg.name,
			proto_poll_mode_name(p.cfg.poll_mode));
		run(&p);
		mn_info("proto", "stopping");
	}
	if (p.conns)
		pctl_close(&p);
	pnet_close(&p);
	portc_destroy(&p.port);
	return rc == 0 ? 0 : 1;
}
