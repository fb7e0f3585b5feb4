/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libmachnet against a mock protocol server.
 *
 * The mock runs in a thread of this process: it listens on
 * <tmpdir>/mocktenant.sock, answers HELLO, ATTACH, LISTEN, CONNECT, CLOSE,
 * FLOW_STATS and DETACH, builds each channel with the server-side helpers of
 * ipc/channel.h, and loops every message back on its channel with the flow
 * reversed, as a peer echoing it would. A message starting with "FAIL"
 * makes it post a flow-failed event instead. The test can pause it (it then
 * stops consuming tx, free and refilling fill) and inspect its pools under
 * its lock.
 */
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "ctl.h"
#include "machnet.h"
#include "tenant.h"

#define TENANT "mocktenant"
#define MOCK_NBUFS 4096u
#define MOCK_BUF_SIZE 4096u
#define MOCK_FILL_TARGET 3072u
#define MOCK_MAX_CHANS 8
#define MOCK_MAX_FLOWS 64
#define REFUSED_PORT 9	 /* CONNECT to this remote port: ECONNREFUSED */
#define BUSY_PORT 1	 /* LISTEN on this port: EADDRINUSE */

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

struct mock_chan {
	int sock;		/* -1: slot free */
	bool attached;
	struct mn_chan_srv s;
	uint32_t *idx;
};

struct mock {
	char dir[64];
	char path[128];
	int lsock;
	int stopfd;
	pthread_t thr;
	pthread_mutex_t lock;
	int stop;
	int paused;
	int deny;		/* answer every request with -EACCES */
	struct mock_chan ch[MOCK_MAX_CHANS];
	uint32_t next_id;
	uint16_t next_port;
	struct mn_chan_flow flows[MOCK_MAX_FLOWS];
	unsigned int nflows;
	unsigned int listens, detaches;
};

static struct mock mock;

/* ---- the mock server ---- */

static void mock_chan_drop(struct mock_chan *mc)
{
	if (mc->attached) {
		mn_chan_srv_destroy(&mc->s);
		free(mc->idx);
	}
	if (mc->sock >= 0)
		close(mc->sock);
	memset(mc, 0, sizeof(*mc));
	mc->sock = -1;
}

static int find_flow(const struct mn_chan_flow *f)
{
	for (unsigned int i = 0; i < mock.nflows; i++) {
		const struct mn_chan_flow *g = &mock.flows[i];

		if ((g->src_ip == f->src_ip && g->dst_ip == f->dst_ip && g->src_port == f->src_port &&
		     g->dst_port == f->dst_port) ||
		    (g->src_ip == f->dst_ip && g->dst_ip == f->src_ip && g->src_port == f->dst_port &&
		     g->dst_port == f->src_port))
			return (int)i;
	}
	return -1;
}

static int mock_attach(struct mock_chan *mc, struct mn_tenant_attached *out)
{
	struct mn_chan_params p = {
		.channel_id = ++mock.next_id, .nbufs = MOCK_NBUFS, .buf_size = MOCK_BUF_SIZE,
		.max_msg_size = MACHNET_MSG_MAX_LEN, .server_gen = 1,
		.region_flags = MN_REGION_F_NO_HUGE,
	};
	int err;

	if (mc->attached)
		return -EBUSY;
	err = mn_chan_srv_create(&mc->s, &p);
	if (err)
		return err;
	mc->idx = calloc(mc->s.max_chain, sizeof(*mc->idx));
	mc->attached = true;
	mn_chan_srv_refill(&mc->s, MOCK_FILL_TARGET);
	*out = (struct mn_tenant_attached){
		.channel_id = p.channel_id, .nbufs = p.nbufs, .buf_size = p.buf_size,
		.max_msg_size = p.max_msg_size, .server_gen = 1, .server_pid = (uint32_t)getpid(),
	};
	return 0;
}

static int mock_connect(const struct mn_tenant_connect *req, struct mn_tenant_connected *out)
{
	if (req->remote_port == REFUSED_PORT)
		return -ECONNREFUSED;
	if (mock.nflows == MOCK_MAX_FLOWS)
		return -EMFILE;
	out->flow = (struct mn_chan_flow){ req->local_ip, req->remote_ip, mock.next_port++,
					   req->remote_port };
	mock.flows[mock.nflows++] = out->flow;
	return 0;
}

static int mock_flow_req(uint16_t type, const struct mn_tenant_flow_req *req,
			 struct mn_tenant_flow_stats *st)
{
	int i = find_flow(&req->flow);

	if (i < 0)
		return -ENOENT;
	if (type == MN_TENANT_T_CLOSE) {
		mock.flows[i] = mock.flows[--mock.nflows];
		return 0;
	}
	*st = (struct mn_tenant_flow_stats){
		.flow = mock.flows[i], .state = MN_TENANT_FLOW_ESTABLISHED, .srtt_us = 42,
		.cwnd_bytes = 65536, .tx_msgs = 7, .retransmits = 1, .age_ns = 123,
	};
	return 0;
}

/* Answer one request; false when the connection must go. */
static bool mock_serve(struct mock_chan *mc)
{
	union {
		struct mn_tenant_attached attached;
		struct mn_tenant_connected connected;
		struct mn_tenant_flow_stats stats;
	} out;
	uint32_t out_len = 0;
	struct mn_ctl_msg m;
	size_t nspecs;
	const struct mn_ctl_spec *specs = mn_tenant_req_specs(&nspecs);
	int fds[MN_CHAN_NFDS], nfds = 0, st;
	bool keep = true;

	if (mn_ctl_recv(mc->sock, &m, 1000) != 0)
		return false;
	st = mn_ctl_check(&m, specs, nspecs);
	if (st == 0 && __atomic_load_n(&mock.deny, __ATOMIC_RELAXED))
		st = -EACCES;
	if (st == 0 && m.hdr.type != MN_TENANT_T_ATTACH && m.hdr.type != MN_CTL_T_PING &&
	    (!mc->attached || *(const uint32_t *)m.payload != mc->s.id))
		st = -EBADF;
	if (st == 0) {
		switch (m.hdr.type) {
		case MN_TENANT_T_ATTACH:
			st = mock_attach(mc, &out.attached);
			out_len = sizeof(out.attached);
			fds[0] = mc->s.reg.fd;
			fds[1] = mc->s.kick_fd;
			fds[2] = mc->s.rx_fd;
			nfds = st ? 0 : MN_CHAN_NFDS;
			break;
		case MN_TENANT_T_LISTEN:
			mock.listens++;
			st = ((const struct mn_tenant_listen *)m.payload)->port == BUSY_PORT ?
				     -EADDRINUSE : 0;
			break;
		case MN_TENANT_T_CONNECT:
			st = mock_connect(m.payload, &out.connected);
			out_len = sizeof(out.connected);
			break;
		case MN_TENANT_T_CLOSE:
		case MN_TENANT_T_FLOW_STATS:
			st = mock_flow_req(m.hdr.type, m.payload, &out.stats);
			out_len = m.hdr.type == MN_TENANT_T_FLOW_STATS ? sizeof(out.stats) : 0;
			break;
		case MN_TENANT_T_DETACH:
			mock.detaches++;
			keep = false;
			break;
		}
	}
	mn_ctl_send(mc->sock, m.hdr.type, m.hdr.req_id, st, st ? NULL : &out, st ? 0 : out_len,
		    fds, (unsigned int)nfds, 1000);
	mn_ctl_msg_free(&m);
	return keep;
}

static void mock_accept(void)
{
	int fd = accept4(mock.lsock, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < MOCK_MAX_CHANS; i++) {
		if (mock.ch[i].sock < 0) {
			if (mn_ctl_hello(fd, MN_TENANT_ROLE_SERVER, TENANT, NULL, 1000) < 0)
				break;
			mock.ch[i].sock = fd;
			return;
		}
	}
	close(fd);
}

/* Loop every message back, reversed; "FAIL..." posts a flow failure. */
static void mock_data(struct mock_chan *mc)
{
	struct mn_chan_desc d;
	int r;

	while ((r = mn_chan_srv_tx_take(&mc->s, &d, mc->idx)) != 0) {
		char head[4] = { 0 };
		struct mn_chan_flow back = { d.flow.dst_ip, d.flow.src_ip, d.flow.dst_port,
					     d.flow.src_port };

		if (r == -EBADMSG)
			break;
		if (r < 0) {
			mn_chan_srv_post(&mc->s, MN_CHAN_EV_TX_REFUSED, &d.flow, r, d.cookie);
			continue;
		}
		mn_chan_chain_read(&mc->s.view, mc->idx, d.nbufs, 0, head, d.len < 4 ? d.len : 4);
		if (memcmp(head, "FAIL", 4) == 0) {
			mn_chan_srv_chain_free(&mc->s, mc->idx, d.nbufs);
			mn_chan_srv_post(&mc->s, MN_CHAN_EV_FAILED, &d.flow, -ETIMEDOUT, 0);
		} else if (mn_chan_srv_deliver(&mc->s, &back, mc->idx, d.nbufs, d.len, d.cookie) != 1) {
			mn_chan_srv_chain_free(&mc->s, mc->idx, d.nbufs);
		}
	}
	mn_chan_srv_free_poll(&mc->s, UINT32_MAX);
	mn_chan_srv_refill(&mc->s, MOCK_FILL_TARGET);
	mn_chan_srv_wake(&mc->s);
}

/* One round: new connections, requests, data. Returns the poll set size. */
static nfds_t mock_round(struct pollfd *p, struct mock_chan **who, bool *may_sleep)
{
	nfds_t n = 2;

	p[0] = (struct pollfd){ .fd = mock.lsock, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = mock.stopfd, .events = POLLIN };
	*may_sleep = true;
	for (int i = 0; i < MOCK_MAX_CHANS; i++) {
		struct mock_chan *mc = &mock.ch[i];
		struct pollfd q = { .fd = mc->sock, .events = POLLIN };

		if (mc->sock < 0)
			continue;
		if (poll(&q, 1, 0) == 1 && !mock_serve(mc)) {
			mock_chan_drop(mc);
			continue;
		}
		if (mc->attached) {
			if (!__atomic_load_n(&mock.paused, __ATOMIC_RELAXED)) {
				mock_data(mc);
				if (!mn_chan_srv_sleep_prepare(&mc->s))
					*may_sleep = false;
			}
			who[n] = mc;
			p[n++] = (struct pollfd){ .fd = mc->s.kick_fd, .events = POLLIN };
		}
		who[n] = NULL;
		p[n++] = (struct pollfd){ .fd = mc->sock, .events = POLLIN };
	}
	return n;
}

static void *mock_main(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&mock.stop, __ATOMIC_RELAXED)) {
		struct pollfd p[2 + 2 * MOCK_MAX_CHANS];
		struct mock_chan *who[2 + 2 * MOCK_MAX_CHANS];
		bool may_sleep;
		nfds_t n;

		pthread_mutex_lock(&mock.lock);
		n = mock_round(p, who, &may_sleep);
		pthread_mutex_unlock(&mock.lock);
		poll(p, n, may_sleep ? 50 : 0);
		pthread_mutex_lock(&mock.lock);
		if (p[0].revents)
			mock_accept();
		for (nfds_t i = 2; i < n; i++)
			if (who[i] && who[i]->attached)
				mn_chan_srv_sleep_done(&who[i]->s);
		pthread_mutex_unlock(&mock.lock);
	}
	return NULL;
}

static void mock_start(void)
{
	snprintf(mock.dir, sizeof(mock.dir), "/tmp/mn-libtest-XXXXXX");
	assert_non_null(mkdtemp(mock.dir));
	snprintf(mock.path, sizeof(mock.path), "%s/%s.sock", mock.dir, TENANT);
	mock.lsock = mn_ctl_listen(mock.path, 0600);
	assert_true(mock.lsock >= 0);
	mock.stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&mock.lock, NULL);
	mock.next_port = 50000;
	for (int i = 0; i < MOCK_MAX_CHANS; i++)
		mock.ch[i].sock = -1;
	assert_int_equal(pthread_create(&mock.thr, NULL, mock_main, NULL), 0);
	setenv("MACHNET_RUNTIME_DIR", mock.dir, 1);
	setenv("MACHNET_TENANT", TENANT, 1);
}

static void mock_stop(void)
{
	uint64_t one = 1;

	__atomic_store_n(&mock.stop, 1, __ATOMIC_RELAXED);
	assert_int_equal(write(mock.stopfd, &one, sizeof(one)), sizeof(one));
	pthread_join(mock.thr, NULL);
	for (int i = 0; i < MOCK_MAX_CHANS; i++)
		mock_chan_drop(&mock.ch[i]);
	close(mock.lsock);
	close(mock.stopfd);
	unlink(mock.path);
	rmdir(mock.dir);
}

static struct mock_chan *mock_find(uint32_t id)
{
	for (int i = 0; i < MOCK_MAX_CHANS; i++)
		if (mock.ch[i].attached && mock.ch[i].s.id == id)
			return &mock.ch[i];
	return NULL;
}

/* ---- helpers ---- */

static int group_setup(void **state)
{
	tu_group_setup(state);
	mock_start();
	return 0;
}

static int group_teardown(void **state)
{
	mock_stop();
	return tu_group_teardown(state);
}

static int setup(void **state)
{
	void *ch = machnet_attach();

	assert_non_null(ch);
	*state = ch;
	return 0;
}

static int teardown(void **state)
{
	assert_int_equal(machnet_detach(*state), 0);
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void fill_pattern(uint8_t *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed + (i >> 12));
}

static const MachnetFlow_t FLOW = { IP(10, 0, 0, 1), IP(10, 0, 0, 2), 40000, 7000 };

static void assert_reversed(const MachnetFlow_t *got, const MachnetFlow_t *sent)
{
	assert_int_equal(got->src_ip, sent->dst_ip);
	assert_int_equal(got->dst_ip, sent->src_ip);
	assert_int_equal(got->src_port, sent->dst_port);
	assert_int_equal(got->dst_port, sent->src_port);
}

static uint32_t chan_id(void *ch)
{
	struct MachnetChannelCounters c;

	assert_int_equal(machnet_channel_counters(ch, &c), 0);
	return c.channel_id;
}

/* Buffers in a ring's pending descriptors (fill: 1 each; chains: nbufs). */
static uint32_t ring_bufs(struct mn_ring *r)
{
	uint32_t first, count, n = 0;

	assert_int_equal(mn_ring_pending(r, &first, &count), 0);
	for (uint32_t i = 0; i < count; i++) {
		struct mn_chan_desc d;

		memcpy(&d, mn_ring_slot(r, first + i), sizeof(d));
		n += d.nbufs;
	}
	return n;
}

/*
 * Every buffer the server lent is somewhere: on fill, in a message on tx
 * or rx, being given back on free, or in the library's cache.
 */
static void assert_buffers_accounted(void *ch)
{
	struct MachnetChannelCounters c;
	struct mock_chan *mc;
	uint32_t lent, where;

	assert_int_equal(machnet_channel_counters(ch, &c), 0);
	pthread_mutex_lock(&mock.lock);
	mc = mock_find(c.channel_id);
	assert_non_null(mc);
	lent = mn_pool_nlent(&mc->s.pool);
	where = ring_bufs(&mc->s.fill) + ring_bufs(&mc->s.tx) + ring_bufs(&mc->s.rx) +
		ring_bufs(&mc->s.free) + c.bufs_cached;
	pthread_mutex_unlock(&mock.lock);
	assert_int_equal(lent, where);
}

static ssize_t recv_wait(void *ch, void *buf, size_t len, MachnetFlow_t *flow)
{
	uint64_t end = now_ms() + 10000;
	ssize_t r;

	do
		r = machnet_recv_timeout(ch, buf, len, flow, 1000);
	while (r == 0 && now_ms() < end);
	return r;
}

/* ---- tests ---- */

static void test_no_server(void **state)
{
	char dir[] = "/tmp/mn-libtest-empty-XXXXXX";

	(void)state;
	assert_non_null(mkdtemp(dir));
	setenv("MACHNET_RUNTIME_DIR", dir, 1);
	errno = 0;
	assert_int_equal(machnet_init(), -1);
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_null(machnet_attach());
	assert_int_equal(errno, ENOENT);
	setenv("MACHNET_RUNTIME_DIR", mock.dir, 1);
	rmdir(dir);
}

static void test_bad_tenant(void **state)
{
	const char *bad[] = { "../etc", ".hidden", "a/b", "x y",
			      "0123456789012345678901234567890123" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("MACHNET_TENANT", bad[i], 1);
		errno = 0;
		assert_int_equal(machnet_init(), -1);
		assert_int_equal(errno, EINVAL);
		assert_null(machnet_attach());
		assert_int_equal(errno, EINVAL);
	}
	/* Another tenant's name at our socket path: refused. */
	setenv("MACHNET_TENANT", TENANT, 1);
}

static void test_init_attach_detach(void **state)
{
	struct MachnetChannelCounters c;
	unsigned int detaches;
	void *ch;

	(void)state;
	assert_int_equal(machnet_init(), 0);
	assert_int_equal(machnet_init(), 0);
	ch = machnet_attach();
	assert_non_null(ch);
	assert_int_equal(machnet_channel_counters(ch, &c), 0);
	assert_int_equal(c.nbufs, MOCK_NBUFS);
	assert_int_equal(c.buf_size, MOCK_BUF_SIZE);
	assert_int_equal(c.max_msg_size, MACHNET_MSG_MAX_LEN);
	pthread_mutex_lock(&mock.lock);
	detaches = mock.detaches;
	pthread_mutex_unlock(&mock.lock);
	assert_int_equal(machnet_detach(ch), 0);
	pthread_mutex_lock(&mock.lock);
	assert_int_equal(mock.detaches, detaches + 1);
	pthread_mutex_unlock(&mock.lock);
}

static void test_attach_denied(void **state)
{
	(void)state;
	__atomic_store_n(&mock.deny, 1, __ATOMIC_RELAXED);
	errno = 0;
	assert_null(machnet_attach());
	assert_int_equal(errno, EACCES);
	__atomic_store_n(&mock.deny, 0, __ATOMIC_RELAXED);
}

/* Send, retrying while the server has not yet handed enough buffers back
 * (ENOBUFS is the non-blocking send's "try again"). */
static int send_retry(void *ch, MachnetFlow_t flow, const void *buf, size_t len)
{
	uint64_t end = now_ms() + 10000;
	int r;

	while ((r = machnet_send(ch, flow, buf, len)) != 0 && errno == ENOBUFS && now_ms() < end)
		usleep(100);
	return r;
}

static void roundtrip(void *ch, size_t size, unsigned int seed)
{
	uint8_t *in = malloc(size), *out = malloc(size + 1);
	MachnetFlow_t got;

	assert_non_null(in);
	assert_non_null(out);
	fill_pattern(in, size, seed);
	assert_int_equal(send_retry(ch, FLOW, in, size), 0);
	memset(out, 0, size + 1);
	assert_int_equal(recv_wait(ch, out, size + 1, &got), (ssize_t)size);
	assert_memory_equal(in, out, size);
	assert_reversed(&got, &FLOW);
	free(in);
	free(out);
}

static void test_roundtrip_sizes(void **state)
{
	const size_t sizes[] = { 1, 1024, 64 * 1024, MACHNET_MSG_MAX_LEN };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		roundtrip(*state, sizes[i], (unsigned int)i);
	/* Twice more at 8 MiB: buffers come back and are reused. */
	roundtrip(*state, MACHNET_MSG_MAX_LEN, 7);
	roundtrip(*state, MACHNET_MSG_MAX_LEN - 1, 8);
	assert_buffers_accounted(*state);
}

static void test_sendmsg_iovecs(void **state)
{
	uint8_t in[10000], out[10000];
	MachnetIovec_t tx[4] = { { in, 1 }, { in + 1, 0 }, { in + 1, 4999 }, { in + 5000, 5000 } };
	MachnetIovec_t rx[3] = { { out, 3 }, { out + 3, 4093 }, { out + 4096, sizeof(out) - 4096 } };
	MachnetMsgHdr_t h = { .msg_size = sizeof(in), .flow_info = FLOW, .msg_iov = tx,
			      .msg_iovlen = 4 };
	MachnetMsgHdr_t r = { .msg_iov = rx, .msg_iovlen = 3 };
	uint64_t end = now_ms() + 10000;
	int got;

	fill_pattern(in, sizeof(in), 11);
	assert_int_equal(machnet_sendmsg(*state, &h), 0);
	do
		got = machnet_recvmsg_timeout(*state, &r, 1000);
	while (got == 0 && now_ms() < end);
	assert_int_equal(got, 1);
	assert_int_equal(r.msg_size, sizeof(in));
	assert_memory_equal(in, out, sizeof(in));
	assert_reversed(&r.flow_info, &FLOW);
	/* Fewer bytes in the iovecs than msg_size: refused. */
	h.msg_size = sizeof(in) + 1;
	errno = 0;
	assert_int_equal(machnet_sendmsg(*state, &h), -1);
	assert_int_equal(errno, EINVAL);
}

static void test_sendmmsg(void **state)
{
	enum { N = 8 };
	static uint8_t in[N][3000];
	uint8_t out[3000];
	MachnetIovec_t iov[N];
	MachnetMsgHdr_t h[N];

	for (int i = 0; i < N; i++) {
		size_t len = 100 + (size_t)i * 350;

		fill_pattern(in[i], len, (unsigned int)i);
		iov[i] = (MachnetIovec_t){ in[i], len };
		h[i] = (MachnetMsgHdr_t){ .msg_size = (uint32_t)len, .flow_info = FLOW,
					  .msg_iov = &iov[i], .msg_iovlen = 1 };
	}
	assert_int_equal(machnet_sendmmsg(*state, h, N), N);
	for (int i = 0; i < N; i++) {
		MachnetFlow_t got;

		assert_int_equal(recv_wait(*state, out, sizeof(out), &got), (ssize_t)iov[i].len);
		assert_memory_equal(in[i], out, iov[i].len);
	}
	/* The third has an empty message: two go, errno says why the third not. */
	h[2].msg_size = 0;
	errno = 0;
	assert_int_equal(machnet_sendmmsg(*state, h, N), 2);
	assert_int_equal(errno, EINVAL);
	for (int i = 0; i < 2; i++)
		assert_int_equal(recv_wait(*state, out, sizeof(out), NULL), (ssize_t)iov[i].len);
	assert_int_equal(machnet_sendmmsg(*state, h, 0), 0);
	assert_int_equal(machnet_sendmmsg(*state, h, -1), -1);
	assert_int_equal(errno, EINVAL);
}

static void test_recv_too_small(void **state)
{
	uint8_t in[1000], out[1000];
	MachnetFlow_t got;
	ssize_t r;
	uint64_t end = now_ms() + 10000;

	fill_pattern(in, sizeof(in), 12);
	assert_int_equal(machnet_send(*state, FLOW, in, sizeof(in)), 0);
	do {
		errno = 0;
		r = machnet_recv_timeout(*state, out, sizeof(out) - 1, &got, 1000);
	} while (r == 0 && now_ms() < end);
	assert_int_equal(r, -1);
	assert_int_equal(errno, EMSGSIZE);
	/* Still there, as many times as we ask. */
	assert_int_equal(machnet_recv(*state, out, 10, &got), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(machnet_recv(*state, out, sizeof(out), &got), (ssize_t)sizeof(in));
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(machnet_recv(*state, out, sizeof(out), &got), 0);
}

static void test_recv_nothing_pending(void **state)
{
	uint8_t out[100];
	MachnetMsgHdr_t h = { .msg_iov = &(MachnetIovec_t){ out, sizeof(out) }, .msg_iovlen = 1 };

	assert_int_equal(machnet_recv(*state, out, sizeof(out), NULL), 0);
	assert_int_equal(machnet_recvmsg(*state, &h), 0);
	assert_int_equal(machnet_recv_timeout(*state, out, sizeof(out), NULL, 0), 0);
}

static uint64_t thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_recv_timeout_expires(void **state)
{
	uint8_t out[100];
	uint64_t t0 = now_ms(), cpu0 = thread_cpu_ms();

	assert_int_equal(machnet_recv_timeout(*state, out, sizeof(out), NULL, 300), 0);
	/* Not early; an upper bound would only measure the machine's load. */
	assert_true(now_ms() - t0 >= 250);
	/* Asleep, not spinning: a spinning wait burns the whole 300 ms. */
	assert_true(thread_cpu_ms() - cpu0 < 100);
}

struct late_send {
	void *ch;
	unsigned int delay_ms;
};

static void *late_sender(void *arg)
{
	struct late_send *ls = arg;

	usleep(ls->delay_ms * 1000u);
	assert_int_equal(machnet_send(ls->ch, FLOW, "wake up", 7), 0);
	return NULL;
}

static void test_recv_timeout_wakes(void **state)
{
	struct late_send ls = { *state, 100 };
	char out[16];
	pthread_t t;
	uint64_t t0 = now_ms();

	assert_int_equal(pthread_create(&t, NULL, late_sender, &ls), 0);
	assert_int_equal(machnet_recv_timeout(*state, out, sizeof(out), NULL, 20000), 7);
	assert_memory_equal(out, "wake up", 7);
	/* Woken by the message, long before the timeout. */
	assert_true(now_ms() - t0 < 15000);
	pthread_join(t, NULL);
}

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static void test_channel_fd(void **state)
{
	int fd = machnet_channel_fd(*state);
	char out[64];

	assert_true(fd >= 0);
	assert_int_equal(machnet_channel_fd(*state), fd);
	assert_int_equal(machnet_recv(*state, out, sizeof(out), NULL), 0);
	assert_false(readable(fd, 0));
	assert_int_equal(machnet_send(*state, FLOW, "one", 3), 0);
	assert_int_equal(machnet_send(*state, FLOW, "two", 3), 0);
	assert_true(readable(fd, 10000));
	assert_int_equal(recv_wait(*state, out, sizeof(out), NULL), 3);
	/* The second may not be there yet; once it is, the fd says so. */
	assert_true(readable(fd, 10000));
	assert_int_equal(recv_wait(*state, out, sizeof(out), NULL), 3);
	assert_int_equal(machnet_recv(*state, out, sizeof(out), NULL), 0);
	assert_false(readable(fd, 0));
	/* A flow event makes it readable too. */
	assert_int_equal(machnet_send(*state, FLOW, "FAIL", 4), 0);
	assert_true(readable(fd, 10000));
	assert_int_equal(machnet_recv(*state, out, sizeof(out), NULL), 0);
	assert_int_equal(machnet_flow_error(*state, NULL, NULL), 1);
	assert_false(readable(fd, 0));
}

static void test_flow_error(void **state)
{
	MachnetFlow_t flow, failed;
	int reason = 0;
	char out[64];
	uint64_t t0;

	assert_int_equal(machnet_flow_error(*state, &failed, &reason), 0);
	assert_int_equal(machnet_connect(*state, "10.0.0.1", "10.0.0.9", 7000, &flow), 0);
	assert_int_equal(machnet_send(*state, flow, "FAIL please", 11), 0);
	/* A blocked receiver returns early when the event arrives. */
	t0 = now_ms();
	assert_int_equal(machnet_recv_timeout(*state, out, sizeof(out), NULL, 20000), 0);
	assert_true(now_ms() - t0 < 15000);
	assert_int_equal(machnet_flow_error(*state, &failed, &reason), 1);
	assert_memory_equal(&failed, &flow, sizeof(flow));
	assert_int_equal(reason, ETIMEDOUT);
	assert_int_equal(machnet_flow_error(*state, &failed, &reason), 0);
	/* Without a receive in between, machnet_flow_error() finds it itself. */
	assert_int_equal(machnet_send(*state, flow, "FAIL again", 10), 0);
	{
		uint64_t end = now_ms() + 10000;
		int r;

		while ((r = machnet_flow_error(*state, &failed, &reason)) == 0 && now_ms() < end)
			usleep(1000);
		assert_int_equal(r, 1);
	}
	assert_int_equal(machnet_close(*state, flow), 0);
}

/*
 * The server stops consuming: sends fail with ENOBUFS once the buffers it
 * lent run out; no buffer is lost; when it resumes every message arrives.
 */
static void test_send_stalled_no_leak(void **state)
{
	enum { SIZE = 64 * 1024 };
	static uint8_t in[SIZE], out[SIZE];
	struct MachnetChannelCounters c0, c1;
	int sent = 0, r;

	__atomic_store_n(&mock.paused, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&mock.lock); /* the mock finishes its round */
	pthread_mutex_unlock(&mock.lock);
	assert_int_equal(machnet_channel_counters(*state, &c0), 0);
	for (;;) {
		memcpy(in, &sent, sizeof(sent));
		errno = 0;
		r = machnet_send(*state, FLOW, in, SIZE);
		if (r != 0)
			break;
		sent++;
		assert_true(sent < 10000);
	}
	assert_int_equal(r, -1);
	assert_true(errno == ENOBUFS || errno == EAGAIN);
	assert_true(sent > 10);
	assert_int_equal(machnet_channel_counters(*state, &c1), 0);
	assert_int_equal(c1.tx_refused, c0.tx_refused + 1);
	assert_buffers_accounted(*state);
	/* A second failure changes nothing either. */
	assert_int_equal(machnet_send(*state, FLOW, in, SIZE), -1);
	assert_buffers_accounted(*state);

	__atomic_store_n(&mock.paused, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < sent; i++) {
		int seq;

		assert_int_equal(recv_wait(*state, out, sizeof(out), NULL), SIZE);
		memcpy(&seq, out, sizeof(seq));
		assert_int_equal(seq, i);
	}
	/* And sending works again. */
	assert_int_equal(send_retry(*state, FLOW, in, SIZE), 0);
	assert_int_equal(recv_wait(*state, out, sizeof(out), NULL), SIZE);
	pthread_mutex_lock(&mock.lock);
	pthread_mutex_unlock(&mock.lock);
	assert_buffers_accounted(*state);
}

static void test_control_requests(void **state)
{
	struct MachnetFlowStats st;
	MachnetFlow_t flow, rev;

	assert_int_equal(machnet_listen(*state, "10.0.0.1", 7000), 0);
	errno = 0;
	assert_int_equal(machnet_listen(*state, "10.0.0.1", BUSY_PORT), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(machnet_listen(*state, "not an ip", 7000), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(machnet_listen(*state, "10.0.0.1", 0), -1);
	assert_int_equal(errno, EINVAL);

	assert_int_equal(machnet_connect(*state, "10.0.0.1", "10.0.0.2", 8000, &flow), 0);
	assert_int_equal(flow.src_ip, IP(10, 0, 0, 1));
	assert_int_equal(flow.dst_ip, IP(10, 0, 0, 2));
	assert_int_equal(flow.dst_port, 8000);
	assert_true(flow.src_port >= 50000);
	assert_int_equal(machnet_flow_stats(*state, flow, &st), 0);
	assert_memory_equal(&st.flow, &flow, sizeof(flow));
	assert_int_equal(st.state, MACHNET_FLOW_ESTABLISHED);
	assert_int_equal(st.srtt_us, 42);
	assert_int_equal(st.retransmits, 1);
	/* The flow as a received message shows it works as well. */
	rev = (MachnetFlow_t){ flow.dst_ip, flow.src_ip, flow.dst_port, flow.src_port };
	assert_int_equal(machnet_close(*state, rev), 0);
	errno = 0;
	assert_int_equal(machnet_close(*state, flow), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(machnet_flow_stats(*state, flow, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_connect_errors(void **state)
{
	MachnetFlow_t flow;

	errno = 0;
	assert_int_equal(machnet_connect(*state, "10.0.0.1", "10.0.0.2", REFUSED_PORT, &flow), -1);
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(machnet_connect(*state, "10.0.0.1", "10.0.0.300", 80, &flow), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(machnet_connect(*state, "10.0.0.1", "10.0.0.2", 80, NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(machnet_connect(*state, "10.0.0.1", "0.0.0.0", 80, &flow), -1);
	assert_int_equal(errno, EINVAL);
	/* The channel still works. */
	assert_int_equal(machnet_connect(*state, "10.0.0.1", "10.0.0.2", 80, &flow), 0);
	assert_int_equal(machnet_close(*state, flow), 0);
}

/* The server closes the channel, then goes away. */
static void test_server_closes(void **state)
{
	void *ch = machnet_attach();
	struct mock_chan *mc;
	char out[16];

	(void)state;
	assert_non_null(ch);
	assert_int_equal(machnet_send(ch, FLOW, "before", 6), 0);
	assert_int_equal(recv_wait(ch, out, sizeof(out), NULL), 6);
	pthread_mutex_lock(&mock.lock);
	mc = mock_find(chan_id(ch));
	assert_non_null(mc);
	mn_chan_srv_close(&mc->s, -ESHUTDOWN);
	pthread_mutex_unlock(&mock.lock);
	errno = 0;
	assert_int_equal(machnet_send(ch, FLOW, "after", 5), -1);
	assert_int_equal(errno, ESHUTDOWN);
	assert_int_equal(machnet_recv(ch, out, sizeof(out), NULL), -1);
	assert_int_equal(errno, ESHUTDOWN);
	/* The pollable fd says so too. */
	assert_true(readable(machnet_channel_fd(ch), 0));
	assert_int_equal(machnet_detach(ch), 0);

	/* Hang-up without a word (a crash): a blocked receiver learns of it. */
	ch = machnet_attach();
	assert_non_null(ch);
	pthread_mutex_lock(&mock.lock);
	mc = mock_find(chan_id(ch));
	assert_non_null(mc);
	shutdown(mc->sock, SHUT_RDWR);
	pthread_mutex_unlock(&mock.lock);
	errno = 0;
	assert_int_equal(machnet_recv_timeout(ch, out, sizeof(out), NULL, 10000), -1);
	assert_int_equal(errno, ECONNRESET);
	assert_int_equal(machnet_send(ch, FLOW, "x", 1), -1);
	assert_int_equal(errno, ECONNRESET);
	assert_int_equal(machnet_listen(ch, "10.0.0.1", 7000), -1);
	assert_int_equal(errno, ECONNRESET);
	assert_int_equal(machnet_detach(ch), 0);
}

static void test_bad_handles(void **state)
{
	MachnetFlow_t f = FLOW;
	struct MachnetFlowStats st;
	struct MachnetChannelCounters cn;
	MachnetMsgHdr_t h = { 0 };
	char b[4];
	int junk[64] = { 0 };

	(void)state;
	errno = 0;
	assert_int_equal(machnet_send(NULL, f, "x", 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(machnet_sendmsg(junk, &h), -1);
	assert_int_equal(machnet_sendmmsg(NULL, &h, 1), -1);
	assert_int_equal(machnet_recv(NULL, b, sizeof(b), &f), -1);
	assert_int_equal(machnet_recvmsg(junk, &h), -1);
	assert_int_equal(machnet_recv_timeout(NULL, b, sizeof(b), &f, 10), -1);
	assert_int_equal(machnet_recvmsg_timeout(NULL, &h, 10), -1);
	assert_int_equal(machnet_listen(NULL, "10.0.0.1", 1), -1);
	assert_int_equal(machnet_connect(NULL, "10.0.0.1", "10.0.0.2", 1, &f), -1);
	assert_int_equal(machnet_close(NULL, f), -1);
	assert_int_equal(machnet_flow_stats(junk, f, &st), -1);
	assert_int_equal(machnet_flow_error(NULL, &f, NULL), -1);
	assert_int_equal(machnet_channel_fd(NULL), -1);
	assert_int_equal(machnet_channel_counters(NULL, &cn), -1);
	assert_int_equal(machnet_detach(NULL), -1);
	assert_int_equal(machnet_detach(junk), -1);
	assert_int_equal(errno, EINVAL);
}

/* Message i of the concurrent test: its size, and its bytes from a seed. */
static size_t conc_size(int i)
{
	static const size_t sizes[] = { 1, 700, 4080, 4081, 70000, 1u << 20, 3u << 20 };

	return sizes[(size_t)i % (sizeof(sizes) / sizeof(sizes[0]))];
}

#define CONC_N 120

static void *conc_sender(void *ch)
{
	static uint8_t buf[3u << 20];

	for (int i = 0; i < CONC_N; i++) {
		fill_pattern(buf, conc_size(i), (unsigned int)i);
		memcpy(buf, &i, conc_size(i) < sizeof(i) ? conc_size(i) : sizeof(i));
		if (send_retry(ch, FLOW, buf, conc_size(i)) != 0)
			return (void *)1;
	}
	return NULL;
}

/* One thread sends (often finding no buffers), another receives, at once:
 * every message arrives whole and in order, and no buffer is lost. */
static void test_concurrent_send_recv(void **state)
{
	static uint8_t out[3u << 20], want[3u << 20];
	pthread_t t;
	void *ret;

	assert_int_equal(pthread_create(&t, NULL, conc_sender, *state), 0);
	for (int i = 0; i < CONC_N; i++) {
		size_t n = conc_size(i);

		assert_int_equal(recv_wait(*state, out, sizeof(out), NULL), (ssize_t)n);
		fill_pattern(want, n, (unsigned int)i);
		memcpy(want, &i, n < sizeof(i) ? n : sizeof(i));
		assert_memory_equal(want, out, n);
	}
	pthread_join(t, &ret);
	assert_null(ret);
	pthread_mutex_lock(&mock.lock);
	pthread_mutex_unlock(&mock.lock);
	assert_buffers_accounted(*state);
}

/* Two channels of one process are independent. */
static void test_two_channels(void **state)
{
	void *other = machnet_attach();
	char out[16];

	assert_non_null(other);
	assert_int_not_equal(chan_id(*state), chan_id(other));
	assert_int_equal(machnet_send(other, FLOW, "other", 5), 0);
	assert_int_equal(machnet_send(*state, FLOW, "mine", 4), 0);
	assert_int_equal(recv_wait(*state, out, sizeof(out), NULL), 4);
	assert_memory_equal(out, "mine", 4);
	assert_int_equal(recv_wait(other, out, sizeof(out), NULL), 5);
	assert_memory_equal(out, "other", 5);
	assert_int_equal(machnet_detach(other), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_server),
		cmocka_unit_test(test_bad_tenant),
		cmocka_unit_test(test_init_attach_detach),
		cmocka_unit_test(test_attach_denied),
		cmocka_unit_test_setup_teardown(test_roundtrip_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sendmsg_iovecs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sendmmsg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recv_too_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recv_nothing_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recv_timeout_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recv_timeout_wakes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_channel_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flow_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_stalled_no_leak, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_errors, setup, teardown),
		cmocka_unit_test(test_server_closes),
		cmocka_unit_test(test_bad_handles),
		cmocka_unit_test_setup_teardown(test_two_channels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_send_recv, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
