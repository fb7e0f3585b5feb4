/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for ipc/ctl: one test per behaviour of the contract in ctl.h.
 * Bad input is forged with raw write()/sendmsg() on one end of a socketpair.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "ctl.h"
#include "log.h"

#define T_USER_A (MN_CTL_T_USER + 1)
#define SHORT_MS 50

/* ---- log capture ---- */

static char last_log[1024];
static enum mn_log_level last_level;

static void capture_sink(enum mn_log_level level, const char *component,
			 const char *msg, void *ctx)
{
	(void)ctx;
	last_level = level;
	snprintf(last_log, sizeof(last_log), "%s: %s", component, msg);
}

static int group_setup(void **state)
{
	(void)state;
	mn_log_set_sink(capture_sink, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	mn_log_set_sink(NULL, NULL);
	return 0;
}

static int test_setup(void **state)
{
	(void)state;
	last_log[0] = '\0';
	return 0;
}

/* ---- helpers ---- */

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void close_pair(int sv[2])
{
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
}

static struct mn_ctl_hdr wire_hdr(uint32_t magic, uint16_t version, uint16_t type,
				  uint32_t len, uint32_t nfds)
{
	struct mn_ctl_hdr h = {
		.magic = htole32(magic),
		.version = htole16(version),
		.type = htole16(type),
		.len = htole32(len),
		.req_id = htole32(99),
		.status = 0,
		.nfds = htole32(nfds),
	};
	return h;
}

static void write_all(int fd, const void *buf, size_t len)
{
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

static void forge(int fd, uint32_t magic, uint16_t version, uint16_t type,
		  uint32_t len, uint32_t nfds)
{
	struct mn_ctl_hdr h = wire_hdr(magic, version, type, len, nfds);

	write_all(fd, &h, sizeof(h));
}

/* sendmsg @buf with @n fds attached, bypassing mn_ctl_send's checks. */
static void send_with_fds(int fd, const void *buf, size_t len, const int *fds,
			  unsigned int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 16)];
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	assert_true(n <= 16);
	memset(cbuf, 0, sizeof(cbuf));
	mh.msg_control = cbuf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int make_memfd(const char *tag)
{
	int fd = memfd_create(tag, MFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static int same_file(int a, int b)
{
	struct stat sa, sb;

	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static size_t pending_bytes(int fd)
{
	int n = -1;

	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return (size_t)n;
}

/*
 * One temp dir per test at most; the teardown removes it even when an
 * assertion ends the test early.
 */
struct tmpdir {
	char dir[64];
	char path[128];
};

static struct tmpdir tmp;

static struct tmpdir *tmpdir_make(void)
{
	snprintf(tmp.dir, sizeof(tmp.dir), "/tmp/mn-ctl-test-XXXXXX");
	assert_non_null(mkdtemp(tmp.dir));
	snprintf(tmp.path, sizeof(tmp.path), "%s/t.sock", tmp.dir);
	return &tmp;
}

static int test_teardown(void **state)
{
	(void)state;
	if (tmp.dir[0] != '\0') {
		unlink(tmp.path);
		rmdir(tmp.dir);
		tmp.dir[0] = '\0';
	}
	return 0;
}

/* ---- round trips ---- */

static void test_type_names(void **state)
{
	(void)state;
	assert_string_equal(mn_ctl_type_name(MN_CTL_T_HELLO), "hello");
	assert_string_equal(mn_ctl_type_name(MN_CTL_T_ERROR), "error");
	assert_string_equal(mn_ctl_type_name(MN_CTL_T_PING), "ping");
	assert_string_equal(mn_ctl_type_name(MN_CTL_T_USER), "user");
	assert_string_equal(mn_ctl_type_name(0xffff), "user");
	assert_string_equal(mn_ctl_type_name(7), "unknown");
}

static void test_roundtrip_without_payload(void **state)
{
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(mn_ctl_send(sv[0], MN_CTL_T_PING, 42, 0, NULL, 0, NULL, 0, 1000), 0);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), 0);
	assert_int_equal(m.hdr.magic, MN_CTL_MAGIC);
	assert_int_equal(m.hdr.version, MN_CTL_VERSION);
	assert_int_equal(m.hdr.type, MN_CTL_T_PING);
	assert_int_equal(m.hdr.req_id, 42);
	assert_int_equal(m.hdr.status, 0);
	assert_int_equal(m.hdr.len, 0);
	assert_int_equal(m.hdr.nfds, 0);
	assert_null(m.payload);
	assert_int_equal(m.nfds, 0);
	mn_ctl_msg_free(&m);
	close_pair(sv);
}

static void test_roundtrip_with_payload_and_status(void **state)
{
	static const char text[] = "tenant blue, port 4711";
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(mn_ctl_send(sv[0], T_USER_A, 0xdeadbeef, -ENOSPC, text,
				     sizeof(text), NULL, 0, 1000), 0);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), 0);
	assert_int_equal(m.hdr.type, T_USER_A);
	assert_int_equal(m.hdr.req_id, 0xdeadbeef);
	assert_int_equal(m.hdr.status, -ENOSPC);
	assert_int_equal(m.hdr.len, sizeof(text));
	assert_memory_equal(m.payload, text, sizeof(text));
	mn_ctl_msg_free(&m);
	close_pair(sv);
}

static void test_roundtrip_back_to_back_messages(void **state)
{
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(mn_ctl_send(sv[0], T_USER_A, i, 0, &i, sizeof(i),
					     NULL, 0, 1000), 0);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), 0);
		assert_int_equal(m.hdr.req_id, i);
		assert_memory_equal(m.payload, &i, sizeof(i));
		mn_ctl_msg_free(&m);
	}
	close_pair(sv);
}

struct bulk_reader {
	int fd;
	int rc;
	struct mn_ctl_msg msg;
};

static void *bulk_read(void *arg)
{
	struct bulk_reader *r = arg;

	r->rc = mn_ctl_recv(r->fd, &r->msg, 5000);
	return NULL;
}

/*
 * The max payload (and optionally an fd), through a tiny socket buffer when
 * @sndbuf > 0: many partial writes and reads, the fd on the first only.
 */
static void check_big_roundtrip(int sndbuf, int with_fd)
{
	struct bulk_reader r;
	pthread_t th;
	uint8_t *buf = malloc(MN_CTL_MAX_PAYLOAD);
	int sv[2], mfd = with_fd ? make_memfd("ctl-big") : -1;

	assert_non_null(buf);
	for (uint32_t i = 0; i < MN_CTL_MAX_PAYLOAD; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	pair(sv);
	if (sndbuf > 0)
		assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
					    sizeof(sndbuf)), 0);
	r.fd = sv[1];
	assert_int_equal(pthread_create(&th, NULL, bulk_read, &r), 0);
	assert_int_equal(mn_ctl_send(sv[0], T_USER_A, 1, 0, buf, MN_CTL_MAX_PAYLOAD,
				     &mfd, with_fd ? 1 : 0, 5000), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.msg.hdr.len, MN_CTL_MAX_PAYLOAD);
	assert_memory_equal(r.msg.payload, buf, MN_CTL_MAX_PAYLOAD);
	assert_int_equal(r.msg.nfds, with_fd ? 1 : 0);
	if (with_fd) {
		assert_true(same_file(mfd, r.msg.fds[0]));
		close(mfd);
	}
	mn_ctl_msg_free(&r.msg);
	free(buf);
	close_pair(sv);
}

static void test_roundtrip_max_payload(void **state)
{
	(void)state;
	check_big_roundtrip(0, 0);
}

static void test_send_loops_over_partial_writes(void **state)
{
	(void)state;
	check_big_roundtrip(4096, 0);
}

static void test_send_attaches_fds_to_first_chunk_only(void **state)
{
	(void)state;
	check_big_roundtrip(4096, 1);
}

struct trickle {
	int fd;
	const uint8_t *buf;
	size_t len;
};

static void *trickle_write(void *arg)
{
	struct trickle *t = arg;

	/* 7-byte pieces: the header and the payload both arrive in parts. */
	for (size_t off = 0; off < t->len; off += 7) {
		size_t n = t->len - off < 7 ? t->len - off : 7;

		if (write(t->fd, t->buf + off, n) != (ssize_t)n)
			break;
		usleep(2000);
	}
	return NULL;
}

static void test_recv_loops_over_partial_reads(void **state)
{
	uint8_t buf[MN_CTL_HDR_SIZE + 40];
	struct mn_ctl_hdr h = wire_hdr(MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, 40, 0);
	struct trickle t;
	struct mn_ctl_msg m;
	pthread_t th;
	int sv[2];

	(void)state;
	memcpy(buf, &h, sizeof(h));
	for (size_t i = 0; i < 40; i++)
		buf[MN_CTL_HDR_SIZE + i] = (uint8_t)i;
	pair(sv);
	t = (struct trickle){ sv[0], buf, sizeof(buf) };
	assert_int_equal(pthread_create(&th, NULL, trickle_write, &t), 0);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 5000), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(m.hdr.len, 40);
	assert_memory_equal(m.payload, buf + MN_CTL_HDR_SIZE, 40);
	mn_ctl_msg_free(&m);
	close_pair(sv);
}

/* ---- receiving without waiting (mn_ctl_recv_nb) ---- */

/*
 * A message (header with an fd, then 40 payload bytes) arrives one byte at
 * a time: every call before the last byte says "more", none waits, and the
 * message comes out whole with its fd; the next message is not touched.
 */
static void test_recv_nb_byte_by_byte_with_fd(void **state)
{
	struct mn_ctl_hdr h = wire_hdr(MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, 40, 1);
	uint8_t buf[MN_CTL_HDR_SIZE + 40];
	struct mn_ctl_rx r;
	struct mn_ctl_msg m;
	int sv[2], mfd, fds0 = count_fds();

	(void)state;
	pair(sv);
	mfd = make_memfd("ctl-nb");
	memcpy(buf, &h, sizeof(h));
	for (size_t i = 0; i < 40; i++)
		buf[MN_CTL_HDR_SIZE + i] = (uint8_t)(i * 3);
	mn_ctl_rx_init(&r);
	assert_int_equal(mn_ctl_recv_nb(sv[1], &r, &m), 0); /* nothing yet */
	send_with_fds(sv[0], buf, 1, &mfd, 1);
	for (size_t i = 1; i < sizeof(buf); i++) {
		long long t0 = now_ms();

		assert_int_equal(mn_ctl_recv_nb(sv[1], &r, &m), 0);
		assert_true(now_ms() - t0 < 100); /* never waits for the rest */
		write_all(sv[0], buf + i, 1);
	}
	forge(sv[0], MN_CTL_MAGIC, MN_CTL_VERSION, (T_USER_A + 1), 0, 0); /* the next one */
	assert_int_equal(mn_ctl_recv_nb(sv[1], &r, &m), 1);
	assert_int_equal(m.hdr.type, T_USER_A);
	assert_int_equal(m.hdr.len, 40);
	assert_memory_equal(m.payload, buf + MN_CTL_HDR_SIZE, 40);
	assert_int_equal(m.nfds, 1);
	assert_true(same_file(mfd, m.fds[0]));
	mn_ctl_msg_free(&m);
	assert_int_equal(mn_ctl_recv_nb(sv[1], &r, &m), 1);
	assert_int_equal(m.hdr.type, (T_USER_A + 1));
	assert_null(m.payload);
	mn_ctl_msg_free(&m);
	assert_int_equal(mn_ctl_recv_nb(sv[1], &r, &m), 0);
	close(mfd);
	close_pair(sv);
	assert_int_equal(count_fds(), fds0);
}

/* Hang-ups: between messages -EPIPE, inside one -ECONNABORTED with the
 * fds that came with it closed; a bad header fails at once. */
static void test_recv_nb_hangups_and_bad_header(void **state)
{
	struct mn_ctl_hdr h = wire_hdr(MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, 40, 1);
	struct mn_ctl_rx r;
	struct mn_ctl_msg m;
	int sv[2], mfd, fds0 = count_fds();

	(void)state;
	pair(sv);
	mn_ctl_rx_init(&r);
	close(sv[0]);
	assert_int_equal(mn_ctl_recv_nb(sv[1], &r, &m), -EPIPE);
	close(sv[1]);

	pair(sv);
	mfd = make_memfd("ctl-nb-half");
	send_with_fds(sv[0], &h, sizeof(h), &mfd, 1);
	write_all(sv[0], "0123456789", 10);
	assert_int_equal(mn_ctl_recv_nb(sv[1], &r, &m), 0);
	close(sv[0]);
	assert_int_equal(mn_ctl_recv_nb(sv[1], &r, &m), -ECONNABORTED);
	close(sv[1]);
	close(mfd);
	assert_int_equal(count_fds(), fds0); /* the received fd did not leak */

	pair(sv);
	forge(sv[0], 0xdeadbeef, MN_CTL_VERSION, T_USER_A, 0, 0);
	assert_int_equal(mn_ctl_recv_nb(sv[1], &r, &m), -EBADMSG);
	mn_ctl_rx_fini(&r); /* harmless after a failure */
	close_pair(sv);
	pair(sv);
	forge(sv[0], MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, MN_CTL_MAX_PAYLOAD + 1, 0);
	assert_int_equal(mn_ctl_recv_nb(sv[1], &r, &m), -EMSGSIZE);
	close_pair(sv);
}

/* With the send buffer reserved, a largest answer goes out whole without
 * waiting, twice, while the peer reads nothing (a server's zero timeout). */
static void test_reserved_sndbuf_takes_two_largest_answers(void **state)
{
	static uint8_t big[MN_CTL_MAX_PAYLOAD];
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(mn_ctl_reserve_sndbuf(sv[0]), 0);
	memset(big, 0x5a, sizeof(big));
	for (int i = 0; i < 2; i++)
		assert_int_equal(mn_ctl_send(sv[0], T_USER_A, (uint32_t)i, 0, big, sizeof(big),
					     NULL, 0, 0), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), 0);
		assert_int_equal(m.hdr.req_id, (uint32_t)i);
		assert_int_equal(m.hdr.len, MN_CTL_MAX_PAYLOAD);
		mn_ctl_msg_free(&m);
	}
	close_pair(sv);
}

/* ---- send-side limits and errors ---- */

static void test_send_refuses_payload_over_max(void **state)
{
	static char big[MN_CTL_MAX_PAYLOAD + 1];
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(mn_ctl_send(sv[0], T_USER_A, 1, 0, big, sizeof(big), NULL, 0,
				     1000), -EMSGSIZE);
	assert_int_equal(pending_bytes(sv[1]), 0);
	close_pair(sv);
}

static void test_send_refuses_too_many_fds(void **state)
{
	int fds[MN_CTL_MAX_FDS + 1] = { 0, 0, 0, 0, 0 };
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(mn_ctl_send(sv[0], T_USER_A, 1, 0, NULL, 0, fds,
				     MN_CTL_MAX_FDS + 1, 1000), -EMSGSIZE);
	assert_int_equal(pending_bytes(sv[1]), 0);
	close_pair(sv);
}

static void test_send_refuses_null_payload_with_length(void **state)
{
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(mn_ctl_send(sv[0], T_USER_A, 1, 0, NULL, 8, NULL, 0, 1000),
			 -EINVAL);
	assert_int_equal(mn_ctl_send(sv[0], T_USER_A, 1, 0, NULL, 0, NULL, 1, 1000),
			 -EINVAL);
	close_pair(sv);
}

static void test_send_times_out_when_peer_does_not_read(void **state)
{
	static char chunk[32768];
	int sndbuf = 4096, sv[2], rc, i;
	long long t0, dt;

	(void)state;
	pair(sv);
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
				    sizeof(sndbuf)), 0);
	t0 = now_ms();
	for (i = 0, rc = 0; i < 1000 && rc == 0; i++)
		rc = mn_ctl_send(sv[0], T_USER_A, 1, 0, chunk, sizeof(chunk), NULL, 0,
				 SHORT_MS);
	dt = now_ms() - t0;
	assert_int_equal(rc, -ETIMEDOUT);
	assert_true(dt < 10 * SHORT_MS + 1000);
	close_pair(sv);
}

static void test_send_to_closed_peer_is_epipe_without_sigpipe(void **state)
{
	int sv[2];

	(void)state;
	pair(sv);
	close(sv[1]);
	sv[1] = -1;
	/* SIGPIPE would kill the test process: surviving is the check. */
	assert_int_equal(mn_ctl_send(sv[0], MN_CTL_T_PING, 1, 0, NULL, 0, NULL, 0, 1000),
			 -EPIPE);
	close_pair(sv);
}

/* ---- receive-side validation ---- */

static void test_recv_rejects_payload_over_max_without_reading_it(void **state)
{
	static const char tail[100];
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	forge(sv[0], MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, MN_CTL_MAX_PAYLOAD + 1, 0);
	write_all(sv[0], tail, sizeof(tail));
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), -EMSGSIZE);
	assert_non_null(strstr(last_log, "65537"));
	assert_int_equal(pending_bytes(sv[1]), sizeof(tail));
	mn_ctl_msg_free(&m);
	close_pair(sv);
}

static void test_recv_rejects_bad_magic(void **state)
{
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	forge(sv[0], 0x50545448u /* "HTTP" */, MN_CTL_VERSION, T_USER_A, 0, 0);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), -EBADMSG);
	assert_non_null(strstr(last_log, "magic"));
	close_pair(sv);
}

static void test_recv_rejects_other_version_and_logs_both(void **state)
{
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	forge(sv[0], MN_CTL_MAGIC, 7, T_USER_A, 0, 0);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), -EPROTONOSUPPORT);
	assert_int_equal(last_level, MN_LOG_ERR);
	assert_non_null(strstr(last_log, "version 7"));
	assert_non_null(strstr(last_log, "we speak 1"));
	close_pair(sv);
}

static void test_recv_rejects_nfds_over_max(void **state)
{
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	forge(sv[0], MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, 0, MN_CTL_MAX_FDS + 1);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), -EMSGSIZE);
	close_pair(sv);
}

static void test_recv_half_header_then_close_is_aborted(void **state)
{
	struct mn_ctl_hdr h = wire_hdr(MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, 0, 0);
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	write_all(sv[0], &h, sizeof(h) / 2);
	close(sv[0]);
	sv[0] = -1;
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), -ECONNABORTED);
	assert_non_null(strstr(last_log, "12 of 24 header bytes"));
	close_pair(sv);
}

static void test_recv_half_payload_then_close_is_aborted(void **state)
{
	static const char half[50];
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	forge(sv[0], MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, 100, 0);
	write_all(sv[0], half, sizeof(half));
	close(sv[0]);
	sv[0] = -1;
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), -ECONNABORTED);
	assert_null(m.payload);
	mn_ctl_msg_free(&m);
	close_pair(sv);
}

static void test_recv_clean_close_is_epipe(void **state)
{
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	close(sv[0]);
	sv[0] = -1;
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), -EPIPE);
	close_pair(sv);
}

static void test_recv_times_out_when_nothing_arrives(void **state)
{
	struct mn_ctl_msg m;
	long long t0, dt;
	int sv[2];

	(void)state;
	pair(sv);
	t0 = now_ms();
	assert_int_equal(mn_ctl_recv(sv[1], &m, SHORT_MS), -ETIMEDOUT);
	dt = now_ms() - t0;
	assert_true(dt >= SHORT_MS - 1);
	assert_true(dt < 10 * SHORT_MS);
	close_pair(sv);
}

static void test_recv_times_out_on_partial_header(void **state)
{
	struct mn_ctl_hdr h = wire_hdr(MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, 0, 0);
	struct mn_ctl_msg m;
	long long t0;
	int sv[2];

	(void)state;
	pair(sv);
	write_all(sv[0], &h, 10);
	t0 = now_ms();
	assert_int_equal(mn_ctl_recv(sv[1], &m, SHORT_MS), -ETIMEDOUT);
	assert_true(now_ms() - t0 < 10 * SHORT_MS);
	close_pair(sv);
}

static void test_recv_zero_timeout_takes_a_waiting_message(void **state)
{
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 0), -ETIMEDOUT);
	assert_int_equal(mn_ctl_send(sv[0], MN_CTL_T_PING, 5, 0, NULL, 0, NULL, 0, 0), 0);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 0), 0);
	assert_int_equal(m.hdr.req_id, 5);
	mn_ctl_msg_free(&m);
	close_pair(sv);
}

/* ---- fd passing ---- */

static void test_fd_passing_same_object_and_cloexec(void **state)
{
	static const char note[] = "through the memfd";
	char back[sizeof(note)];
	struct mn_ctl_msg m;
	int sv[2], mfd, rfd;

	(void)state;
	pair(sv);
	mfd = make_memfd("ctl-test");
	assert_int_equal(mn_ctl_send(sv[0], T_USER_A, 1, 0, NULL, 0, &mfd, 1, 1000), 0);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), 0);
	assert_int_equal(m.nfds, 1);
	rfd = m.fds[0];
	assert_true(rfd >= 0 && rfd != mfd);
	assert_true(same_file(mfd, rfd));
	assert_true(fcntl(rfd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(pwrite(mfd, note, sizeof(note), 0), (ssize_t)sizeof(note));
	assert_int_equal(pread(rfd, back, sizeof(back), 0), (ssize_t)sizeof(back));
	assert_memory_equal(back, note, sizeof(note));
	mn_ctl_msg_free(&m);
	assert_int_equal(fcntl(rfd, F_GETFD), -1);
	close(mfd);
	close_pair(sv);
}

static void test_fd_passing_four_fds_with_payload(void **state)
{
	static const char text[] = "four regions";
	int fds[MN_CTL_MAX_FDS];
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	for (unsigned int i = 0; i < MN_CTL_MAX_FDS; i++)
		fds[i] = make_memfd("ctl-four");
	assert_int_equal(mn_ctl_send(sv[0], T_USER_A, 1, 0, text, sizeof(text), fds,
				     MN_CTL_MAX_FDS, 1000), 0);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), 0);
	assert_int_equal(m.nfds, MN_CTL_MAX_FDS);
	assert_int_equal(m.hdr.nfds, MN_CTL_MAX_FDS);
	assert_memory_equal(m.payload, text, sizeof(text));
	for (unsigned int i = 0; i < MN_CTL_MAX_FDS; i++) {
		assert_true(same_file(fds[i], m.fds[i]));
		assert_true(fcntl(m.fds[i], F_GETFD) & FD_CLOEXEC);
	}
	mn_ctl_msg_free(&m);
	for (unsigned int i = 0; i < MN_CTL_MAX_FDS; i++)
		close(fds[i]);
	close_pair(sv);
}

static void test_recv_declared_fd_missing_is_ebadf(void **state)
{
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	forge(sv[0], MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, 0, 1);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), -EBADF);
	assert_non_null(strstr(last_log, "declares 1 fds, only 0 arrived"));
	close_pair(sv);
}

/* Forge a header declaring @declared fds, send it with @sent memfds. */
static int recv_with_forged_fds(uint32_t declared, unsigned int sent)
{
	struct mn_ctl_hdr h = wire_hdr(MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, 0,
				       declared);
	struct mn_ctl_msg m;
	int fds[16], sv[2], before, rc;

	pair(sv);
	for (unsigned int i = 0; i < sent; i++)
		fds[i] = make_memfd("ctl-forged");
	send_with_fds(sv[0], &h, sizeof(h), fds, sent);
	for (unsigned int i = 0; i < sent; i++)
		close(fds[i]);
	/* The only references left are in flight: nothing may land in our table. */
	before = count_fds();
	rc = mn_ctl_recv(sv[1], &m, 1000);
	assert_int_equal(count_fds(), before);
	mn_ctl_msg_free(&m);
	close_pair(sv);
	return rc;
}

static void test_recv_undeclared_fds_are_closed(void **state)
{
	(void)state;
	assert_int_equal(recv_with_forged_fds(0, 2), -EBADMSG);
	assert_non_null(strstr(last_log, "2 fds arrived, header declares 0"));
}

static void test_recv_fewer_fds_than_declared_are_closed(void **state)
{
	(void)state;
	assert_int_equal(recv_with_forged_fds(3, 1), -EBADF);
}

static void test_recv_more_fds_than_max_are_closed(void **state)
{
	(void)state;
	/* The cmsg buffer holds MN_CTL_MAX_FDS: the kernel sets MSG_CTRUNC. */
	assert_int_equal(recv_with_forged_fds(MN_CTL_MAX_FDS, MN_CTL_MAX_FDS + 3),
			 -EBADMSG);
	assert_non_null(strstr(last_log, "MSG_CTRUNC"));
}

static void test_recv_fds_on_payload_bytes_are_closed(void **state)
{
	static const char payload[8];
	struct mn_ctl_msg m;
	int sv[2], mfd, before;

	(void)state;
	pair(sv);
	forge(sv[0], MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, sizeof(payload), 0);
	mfd = make_memfd("ctl-late");
	send_with_fds(sv[0], payload, sizeof(payload), &mfd, 1);
	close(mfd);
	before = count_fds();
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), -EBADMSG);
	assert_int_equal(count_fds(), before);
	close_pair(sv);
}

static void test_recv_fds_on_second_half_of_header(void **state)
{
	struct mn_ctl_hdr h = wire_hdr(MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, 0, 1);
	struct mn_ctl_msg m;
	int sv[2], mfd;

	(void)state;
	pair(sv);
	mfd = make_memfd("ctl-split");
	write_all(sv[0], &h, 8);
	send_with_fds(sv[0], (char *)&h + 8, sizeof(h) - 8, &mfd, 1);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), 0);
	assert_int_equal(m.nfds, 1);
	assert_true(same_file(mfd, m.fds[0]));
	mn_ctl_msg_free(&m);
	close(mfd);
	close_pair(sv);
}

static void test_recv_fds_spread_over_header_beyond_max_are_closed(void **state)
{
	struct mn_ctl_hdr h = wire_hdr(MN_CTL_MAGIC, MN_CTL_VERSION, T_USER_A, 0,
				       MN_CTL_MAX_FDS);
	struct mn_ctl_msg m;
	int fds[6], sv[2], before;

	(void)state;
	pair(sv);
	/* 3 + 3 fds on two halves of one header: each recvmsg fits, the sum does not. */
	for (unsigned int i = 0; i < 6; i++)
		fds[i] = make_memfd("ctl-spread");
	send_with_fds(sv[0], &h, 8, fds, 3);
	send_with_fds(sv[0], (char *)&h + 8, sizeof(h) - 8, fds + 3, 3);
	for (unsigned int i = 0; i < 6; i++)
		close(fds[i]);
	before = count_fds();
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), -EBADMSG);
	assert_non_null(strstr(last_log, "6 fds arrived, header declares 4"));
	assert_int_equal(count_fds(), before);
	close_pair(sv);
}

static void test_failed_recv_keeps_next_message_fds_in_socket(void **state)
{
	struct mn_ctl_msg m;
	int sv[2], mfd;

	(void)state;
	pair(sv);
	/* Exact reads: a bad header does not swallow the following message. */
	forge(sv[0], MN_CTL_MAGIC, 9, T_USER_A, 0, 0);
	mfd = make_memfd("ctl-next");
	assert_int_equal(mn_ctl_send(sv[0], T_USER_A, 2, 0, NULL, 0, &mfd, 1, 1000), 0);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), -EPROTONOSUPPORT);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), 0);
	assert_int_equal(m.nfds, 1);
	assert_true(same_file(mfd, m.fds[0]));
	mn_ctl_msg_free(&m);
	close(mfd);
	close_pair(sv);
}

static void test_take_fd_moves_ownership(void **state)
{
	struct mn_ctl_msg m;
	int sv[2], mfd, fd;

	(void)state;
	pair(sv);
	mfd = make_memfd("ctl-take");
	assert_int_equal(mn_ctl_send(sv[0], T_USER_A, 1, 0, NULL, 0, &mfd, 1, 1000), 0);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), 0);
	fd = mn_ctl_take_fd(&m, 0);
	assert_true(fd >= 0);
	assert_int_equal(mn_ctl_take_fd(&m, 0), -EBADF);
	assert_int_equal(mn_ctl_take_fd(&m, 1), -EBADF);
	assert_int_equal(mn_ctl_take_fd(&m, UINT_MAX), -EBADF);
	mn_ctl_msg_free(&m);
	/* Still ours after the message is gone. */
	assert_true(fcntl(fd, F_GETFD) >= 0);
	assert_true(same_file(mfd, fd));
	close(fd);
	close(mfd);
	close_pair(sv);
}

static void test_msg_free_twice_is_harmless(void **state)
{
	static const char text[] = "x";
	struct mn_ctl_msg m;
	int sv[2], mfd;

	(void)state;
	pair(sv);
	mfd = make_memfd("ctl-free");
	assert_int_equal(mn_ctl_send(sv[0], T_USER_A, 1, 0, text, sizeof(text), &mfd, 1,
				     1000), 0);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), 0);
	mn_ctl_msg_free(&m);
	assert_null(m.payload);
	assert_int_equal(m.fds[0], -1);
	mn_ctl_msg_free(&m);
	close(mfd);
	close_pair(sv);
}

/* ---- mn_ctl_check ---- */

static const struct mn_ctl_spec specs[] = {
	{ MN_CTL_T_PING, 0, 0, 0 },
	{ T_USER_A, 4, 16, 1 },
};

static struct mn_ctl_msg fake_msg(uint16_t type, uint32_t len, unsigned int nfds)
{
	struct mn_ctl_msg m = {
		.hdr = { .magic = MN_CTL_MAGIC, .version = MN_CTL_VERSION,
			 .type = type, .len = len, .nfds = nfds },
		.payload = NULL,
		.fds = { -1, -1, -1, -1 },
		.nfds = nfds,
	};
	return m;
}

static void test_check_accepts_matching_messages(void **state)
{
	struct mn_ctl_msg a = fake_msg(MN_CTL_T_PING, 0, 0);
	struct mn_ctl_msg b = fake_msg(T_USER_A, 4, 1);
	struct mn_ctl_msg c = fake_msg(T_USER_A, 16, 1);

	(void)state;
	assert_int_equal(mn_ctl_check(&a, specs, 2), 0);
	assert_int_equal(mn_ctl_check(&b, specs, 2), 0);
	assert_int_equal(mn_ctl_check(&c, specs, 2), 0);
}

static void test_check_unknown_type_is_enomsg(void **state)
{
	struct mn_ctl_msg a = fake_msg(MN_CTL_T_HELLO, 0, 0);

	(void)state;
	assert_int_equal(mn_ctl_check(&a, specs, 2), -ENOMSG);
	assert_non_null(strstr(last_log, "type 1"));
	assert_int_equal(mn_ctl_check(&a, specs, 0), -ENOMSG);
}

static void test_check_length_out_of_bounds_is_ebadmsg(void **state)
{
	struct mn_ctl_msg shorter = fake_msg(T_USER_A, 3, 1);
	struct mn_ctl_msg longer = fake_msg(T_USER_A, 17, 1);
	struct mn_ctl_msg ping = fake_msg(MN_CTL_T_PING, 1, 0);

	(void)state;
	assert_int_equal(mn_ctl_check(&shorter, specs, 2), -EBADMSG);
	assert_non_null(strstr(last_log, "3 payload bytes, expected 4..16"));
	assert_int_equal(mn_ctl_check(&longer, specs, 2), -EBADMSG);
	assert_int_equal(mn_ctl_check(&ping, specs, 2), -EBADMSG);
}

static void test_check_wrong_fd_count_is_ebadf(void **state)
{
	struct mn_ctl_msg none = fake_msg(T_USER_A, 8, 0);
	struct mn_ctl_msg two = fake_msg(T_USER_A, 8, 2);

	(void)state;
	assert_int_equal(mn_ctl_check(&none, specs, 2), -EBADF);
	assert_non_null(strstr(last_log, "0 fds, expected 1"));
	assert_int_equal(mn_ctl_check(&two, specs, 2), -EBADF);
}

/* ---- credentials, listen, connect ---- */

static void test_peer_cred_of_socketpair_is_self(void **state)
{
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(mn_ctl_peer_cred(sv[0], &pid, &uid, &gid), 0);
	assert_int_equal(pid, getpid());
	assert_int_equal(uid, getuid());
	assert_int_equal(gid, getgid());
	close_pair(sv);
}

static void test_peer_cred_of_non_socket_fails(void **state)
{
	pid_t pid;
	int mfd = make_memfd("ctl-cred");

	(void)state;
	assert_int_equal(mn_ctl_peer_cred(mfd, &pid, NULL, NULL), -ENOTSOCK);
	close(mfd);
}

static int accept_within(int lfd, int timeout_ms)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* Child: connect, ping, wait for the answer so the parent sees us alive. */
static void cred_child(const char *path)
{
	struct mn_ctl_msg m;
	int fd = mn_ctl_connect(path, 2000);

	if (fd < 0)
		_exit(2);
	if (mn_ctl_send(fd, MN_CTL_T_PING, 1, 0, NULL, 0, NULL, 0, 2000) < 0)
		_exit(3);
	if (mn_ctl_recv(fd, &m, 5000) < 0)
		_exit(4);
	mn_ctl_msg_free(&m);
	close(fd);
	_exit(0);
}

static void test_peer_cred_of_forked_child_via_listen(void **state)
{
	struct tmpdir *t;
	struct mn_ctl_msg m;
	pid_t child, pid;
	uid_t uid;
	gid_t gid;
	int lfd, cfd, status;

	(void)state;
	t = tmpdir_make();
	lfd = mn_ctl_listen(t->path, 0600);
	assert_true(lfd >= 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		cred_child(t->path);
	cfd = accept_within(lfd, 5000);
	assert_true(cfd >= 0);
	assert_int_equal(mn_ctl_peer_cred(cfd, &pid, &uid, &gid), 0);
	assert_int_equal(pid, child);
	assert_int_equal(uid, getuid());
	assert_int_equal(gid, getgid());
	assert_int_equal(mn_ctl_recv(cfd, &m, 5000), 0);
	assert_int_equal(m.hdr.type, MN_CTL_T_PING);
	mn_ctl_msg_free(&m);
	assert_int_equal(mn_ctl_send(cfd, MN_CTL_T_PING, 1, 0, NULL, 0, NULL, 0, 1000), 0);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(cfd);
	close(lfd);
}

static void test_listen_applies_mode_and_flags(void **state)
{
	struct tmpdir *t;
	struct stat st;
	int lfd;

	(void)state;
	t = tmpdir_make();
	lfd = mn_ctl_listen(t->path, 0660);
	assert_true(lfd >= 0);
	assert_int_equal(lstat(t->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
	close(lfd);
}

static void test_listen_replaces_stale_socket(void **state)
{
	struct tmpdir *t;
	int lfd, cfd, afd;

	(void)state;
	t = tmpdir_make();
	lfd = mn_ctl_listen(t->path, 0600);
	assert_true(lfd >= 0);
	close(lfd); /* a crashed server: the file stays, nobody accepts */
	assert_int_equal(access(t->path, F_OK), 0);
	lfd = mn_ctl_listen(t->path, 0600);
	assert_true(lfd >= 0);
	cfd = mn_ctl_connect(t->path, 1000);
	assert_true(cfd >= 0);
	afd = accept_within(lfd, 1000);
	assert_true(afd >= 0);
	close(afd);
	close(cfd);
	close(lfd);
}

static void test_listen_refuses_live_socket(void **state)
{
	struct tmpdir *t;
	int lfd, afd;

	(void)state;
	t = tmpdir_make();
	lfd = mn_ctl_listen(t->path, 0600);
	assert_true(lfd >= 0);
	assert_int_equal(mn_ctl_listen(t->path, 0600), -EADDRINUSE);
	assert_non_null(strstr(last_log, t->path));
	/* The live server is untouched: its file is still there and answers. */
	afd = accept_within(lfd, 1000); /* the probe connection */
	assert_true(afd >= 0);
	close(afd);
	afd = mn_ctl_connect(t->path, 1000);
	assert_true(afd >= 0);
	close(afd);
	close(lfd);
}

static void test_listen_refuses_to_replace_regular_file(void **state)
{
	struct tmpdir *t;
	int fd;

	(void)state;
	t = tmpdir_make();
	fd = open(t->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mn_ctl_listen(t->path, 0600), -EEXIST);
	assert_int_equal(access(t->path, F_OK), 0);
}

static void test_listen_and_connect_refuse_long_path(void **state)
{
	char path[200];

	(void)state;
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(mn_ctl_listen(path, 0600), -ENAMETOOLONG);
	assert_int_equal(mn_ctl_connect(path, 100), -ENAMETOOLONG);
}

static void test_connect_missing_path_is_enoent(void **state)
{
	struct tmpdir *t;

	(void)state;
	t = tmpdir_make();
	assert_int_equal(mn_ctl_connect(t->path, 100), -ENOENT);
}

static void test_connect_stale_socket_is_econnrefused(void **state)
{
	struct tmpdir *t;
	int lfd;

	(void)state;
	t = tmpdir_make();
	lfd = mn_ctl_listen(t->path, 0600);
	assert_true(lfd >= 0);
	close(lfd);
	assert_int_equal(mn_ctl_connect(t->path, 100), -ECONNREFUSED);
}

static void test_connect_returns_blocking_cloexec_fd(void **state)
{
	struct tmpdir *t;
	int lfd, cfd;

	(void)state;
	t = tmpdir_make();
	lfd = mn_ctl_listen(t->path, 0600);
	assert_true(lfd >= 0);
	cfd = mn_ctl_connect(t->path, 1000);
	assert_true(cfd >= 0);
	assert_true(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	assert_false(fcntl(cfd, F_GETFL) & O_NONBLOCK);
	close(cfd);
	close(lfd);
}

static void test_connect_times_out_on_full_backlog(void **state)
{
	struct tmpdir *t;
	int fds[256], n = 0, lfd, rc = 0;
	long long t0;

	(void)state;
	t = tmpdir_make();
	lfd = mn_ctl_listen(t->path, 0600);
	assert_true(lfd >= 0);
	/* Nobody accepts: fill the backlog until a zero-timeout connect fails. */
	while (n < 256) {
		rc = mn_ctl_connect(t->path, 0);
		if (rc < 0)
			break;
		fds[n++] = rc;
	}
	assert_int_equal(rc, -ETIMEDOUT);
	assert_true(n >= 64);
	t0 = now_ms();
	assert_int_equal(mn_ctl_connect(t->path, SHORT_MS), -ETIMEDOUT);
	assert_true(now_ms() - t0 >= SHORT_MS - 1);
	assert_true(now_ms() - t0 < 10 * SHORT_MS);
	while (n > 0)
		close(fds[--n]);
	close(lfd);
}

/* ---- hello ---- */

struct hello_side {
	int fd;
	uint32_t role;
	const char *name;
	struct mn_ctl_hello peer;
	int rc;
};

static void *hello_thread(void *arg)
{
	struct hello_side *s = arg;

	s->rc = mn_ctl_hello(s->fd, s->role, s->name, &s->peer, 5000);
	return NULL;
}

static void test_hello_agrees_on_version_1_and_exchanges_names(void **state)
{
	struct hello_side srv = { .role = 2, .name = "proto-blue" };
	struct mn_ctl_hello peer;
	pthread_t th;
	int sv[2];

	(void)state;
	pair(sv);
	srv.fd = sv[1];
	assert_int_equal(pthread_create(&th, NULL, hello_thread, &srv), 0);
	assert_int_equal(mn_ctl_hello(sv[0], 1, "app", &peer, 5000), 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(srv.rc, 1);
	assert_string_equal(peer.name, "proto-blue");
	assert_int_equal(peer.role, 2);
	assert_int_equal(peer.min_version, 1);
	assert_int_equal(peer.max_version, 1);
	assert_string_equal(srv.peer.name, "app");
	assert_int_equal(srv.peer.role, 1);
	close_pair(sv);
}

static void test_hello_sends_long_name_truncated_and_terminated(void **state)
{
	static const char longname[] = "a-tenant-name-that-is-much-longer-than-32";
	struct mn_ctl_hello wire;
	struct mn_ctl_msg m;
	int sv[2];

	(void)state;
	pair(sv);
	/* Nobody answers: our HELLO is on the wire, the exchange times out. */
	assert_int_equal(mn_ctl_hello(sv[0], 7, longname, NULL, 10), -ETIMEDOUT);
	assert_int_equal(mn_ctl_recv(sv[1], &m, 1000), 0);
	assert_int_equal(m.hdr.type, MN_CTL_T_HELLO);
	assert_int_equal(m.hdr.len, sizeof(wire));
	assert_int_equal(m.nfds, 0);
	memcpy(&wire, m.payload, sizeof(wire));
	assert_int_equal(le16toh(wire.min_version), MN_CTL_VERSION);
	assert_int_equal(le16toh(wire.max_version), MN_CTL_VERSION);
	assert_int_equal(le32toh(wire.role), 7);
	assert_int_equal(wire.name[MN_CTL_NAME_MAX - 1], '\0');
	assert_memory_equal(wire.name, longname, MN_CTL_NAME_MAX - 1);
	mn_ctl_msg_free(&m);
	close_pair(sv);
}

/* Queue a HELLO from a forged peer on @fd, then run our side on @other. */
static int hello_against(int fd, int other, const struct mn_ctl_hello *forged,
			 uint32_t len, struct mn_ctl_hello *peer)
{
	assert_int_equal(mn_ctl_send(fd, MN_CTL_T_HELLO, 0, 0, forged, len, NULL, 0,
				     1000), 0);
	return mn_ctl_hello(other, 1, "app", peer, 1000);
}

static void test_hello_forces_peer_name_terminated(void **state)
{
	struct mn_ctl_hello forged = { .min_version = 1, .max_version = 1, .role = 9 };
	struct mn_ctl_hello peer;
	int sv[2];

	(void)state;
	pair(sv);
	memset(forged.name, 'z', sizeof(forged.name));
	assert_int_equal(hello_against(sv[1], sv[0], &forged, sizeof(forged), &peer), 1);
	assert_int_equal(strlen(peer.name), MN_CTL_NAME_MAX - 1);
	assert_int_equal(peer.role, 9);
	close_pair(sv);
}

static void test_hello_picks_highest_common_version(void **state)
{
	/* A newer peer that still speaks 1: we settle on 1. */
	struct mn_ctl_hello forged = { .min_version = 1, .max_version = 5, .name = "new" };
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(hello_against(sv[1], sv[0], &forged, sizeof(forged), NULL), 1);
	close_pair(sv);
}

static void test_hello_no_common_version_logs_both_ranges(void **state)
{
	struct mn_ctl_hello forged = { .min_version = 2, .max_version = 3, .name = "newer" };
	struct mn_ctl_hello peer;
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(hello_against(sv[1], sv[0], &forged, sizeof(forged), &peer),
			 -EPROTONOSUPPORT);
	assert_non_null(strstr(last_log, "we speak 1..1"));
	assert_non_null(strstr(last_log, "speaks 2..3"));
	assert_string_equal(peer.name, "newer");
	close_pair(sv);
}

static void test_hello_rejects_inverted_range(void **state)
{
	struct mn_ctl_hello forged = { .min_version = 1, .max_version = 0 };
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(hello_against(sv[1], sv[0], &forged, sizeof(forged), NULL),
			 -EPROTONOSUPPORT);
	close_pair(sv);
}

static void test_hello_rejects_wrong_length(void **state)
{
	struct mn_ctl_hello forged = { .min_version = 1, .max_version = 1 };
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(hello_against(sv[1], sv[0], &forged, sizeof(forged) - 1, NULL),
			 -EBADMSG);
	close_pair(sv);
}

static void test_hello_rejects_other_first_message(void **state)
{
	struct mn_ctl_hello peer;
	int sv[2];

	(void)state;
	pair(sv);
	assert_int_equal(mn_ctl_send(sv[1], MN_CTL_T_PING, 0, 0, NULL, 0, NULL, 0, 1000), 0);
	assert_int_equal(mn_ctl_hello(sv[0], 1, "app", &peer, 1000), -ENOMSG);
	close_pair(sv);
}

static void test_hello_times_out_on_silent_peer(void **state)
{
	long long t0;
	int sv[2];

	(void)state;
	pair(sv);
	t0 = now_ms();
	assert_int_equal(mn_ctl_hello(sv[0], 1, "app", NULL, SHORT_MS), -ETIMEDOUT);
	assert_true(now_ms() - t0 < 10 * SHORT_MS);
	close_pair(sv);
}

/* ---- hostile streams ---- */

static uint32_t rng_state = 0x12345678u;

static uint32_t rng(void)
{
	/* xorshift32: reproducible, independent of libc's rand(). */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void fill_random(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)rng();
}

/*
 * Write @len bytes of @buf, optionally hang up, and receive: returns the
 * result, after checking it came back within 10x the timeout and leaked
 * nothing.
 */
static int recv_hostile(const uint8_t *buf, size_t len, int hang_up)
{
	struct mn_ctl_msg m;
	long long t0;
	int sv[2], rc;

	pair(sv);
	if (len > 0)
		write_all(sv[0], buf, len);
	if (hang_up) {
		close(sv[0]);
		sv[0] = -1;
	}
	t0 = now_ms();
	rc = mn_ctl_recv(sv[1], &m, 20);
	assert_true(now_ms() - t0 < 200);
	mn_ctl_msg_free(&m);
	close_pair(sv);
	return rc;
}

static void test_garbage_stream_never_crashes_or_hangs(void **state)
{
	uint8_t buf[256];

	(void)state;
	for (int i = 0; i < 200; i++) {
		size_t len = rng() % sizeof(buf);
		int rc;

		fill_random(buf, len);
		rc = recv_hostile(buf, len, i % 4 != 0);
		assert_true(rc < 0);
		assert_true(rc == -EBADMSG || rc == -ECONNABORTED || rc == -EPIPE ||
			    rc == -ETIMEDOUT);
	}
}

static void test_random_headers_after_valid_magic_are_handled(void **state)
{
	uint8_t buf[MN_CTL_HDR_SIZE + 64];
	int ok = 0;

	(void)state;
	for (int i = 0; i < 200; i++) {
		struct mn_ctl_hdr h;
		size_t len;
		int rc;

		fill_random(buf, sizeof(buf));
		memcpy(&h, buf, sizeof(h));
		h.magic = htole32(MN_CTL_MAGIC);
		h.version = htole16(MN_CTL_VERSION);
		/* Half the time a plausible length, so the payload path runs. */
		if (i % 2)
			h.len = htole32(le32toh(h.len) % 128);
		if (i % 3)
			h.nfds = 0;
		memcpy(buf, &h, sizeof(h));
		len = MN_CTL_HDR_SIZE + rng() % 65;
		rc = recv_hostile(buf, len, i % 5 != 0);
		/* Only a header that happens to be complete and consistent passes. */
		assert_true(rc <= 0);
		if (rc == 0)
			ok++;
	}
	assert_true(ok < 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
		T(test_type_names),
		T(test_roundtrip_without_payload),
		T(test_roundtrip_with_payload_and_status),
		T(test_roundtrip_back_to_back_messages),
		T(test_roundtrip_max_payload),
		T(test_send_loops_over_partial_writes),
		T(test_send_attaches_fds_to_first_chunk_only),
		T(test_recv_loops_over_partial_reads),
		T(test_recv_nb_byte_by_byte_with_fd),
		T(test_recv_nb_hangups_and_bad_header),
		T(test_reserved_sndbuf_takes_two_largest_answers),
		T(test_send_refuses_payload_over_max),
		T(test_send_refuses_too_many_fds),
		T(test_send_refuses_null_payload_with_length),
		T(test_send_times_out_when_peer_does_not_read),
		T(test_send_to_closed_peer_is_epipe_without_sigpipe),
		T(test_recv_rejects_payload_over_max_without_reading_it),
		T(test_recv_rejects_bad_magic),
		T(test_recv_rejects_other_version_and_logs_both),
		T(test_recv_rejects_nfds_over_max),
		T(test_recv_half_header_then_close_is_aborted),
		T(test_recv_half_payload_then_close_is_aborted),
		T(test_recv_clean_close_is_epipe),
		T(test_recv_times_out_when_nothing_arrives),
		T(test_recv_times_out_on_partial_header),
		T(test_recv_zero_timeout_takes_a_waiting_message),
		T(test_fd_passing_same_object_and_cloexec),
		T(test_fd_passing_four_fds_with_payload),
		T(test_recv_declared_fd_missing_is_ebadf),
		T(test_recv_undeclared_fds_are_closed),
		T(test_recv_fewer_fds_than_declared_are_closed),
		T(test_recv_more_fds_than_max_are_closed),
		T(test_recv_fds_on_payload_bytes_are_closed),
		T(test_recv_fds_on_second_half_of_header),
		T(test_recv_fds_spread_over_header_beyond_max_are_closed),
		T(test_failed_recv_keeps_next_message_fds_in_socket),
		T(test_take_fd_moves_ownership),
		T(test_msg_free_twice_is_harmless),
		T(test_check_accepts_matching_messages),
		T(test_check_unknown_type_is_enomsg),
		T(test_check_length_out_of_bounds_is_ebadmsg),
		T(test_check_wrong_fd_count_is_ebadf),
		T(test_peer_cred_of_socketpair_is_self),
		T(test_peer_cred_of_non_socket_fails),
		T(test_peer_cred_of_forked_child_via_listen),
		T(test_listen_applies_mode_and_flags),
		T(test_listen_replaces_stale_socket),
		T(test_listen_refuses_live_socket),
		T(test_listen_refuses_to_replace_regular_file),
		T(test_listen_and_connect_refuse_long_path),
		T(test_connect_missing_path_is_enoent),
		T(test_connect_stale_socket_is_econnrefused),
		T(test_connect_returns_blocking_cloexec_fd),
		T(test_connect_times_out_on_full_backlog),
		T(test_hello_agrees_on_version_1_and_exchanges_names),
		T(test_hello_sends_long_name_truncated_and_terminated),
		T(test_hello_forces_peer_name_terminated),
		T(test_hello_picks_highest_common_version),
		T(test_hello_no_common_version_logs_both_ranges),
		T(test_hello_rejects_inverted_range),
		T(test_hello_rejects_wrong_length),
		T(test_hello_rejects_other_first_message),
		T(test_hello_times_out_on_silent_peer),
		T(test_garbage_stream_never_crashes_or_hangs),
		T(test_random_headers_after_valid_magic_are_handled),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
