/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the ipc unit tests: a log sink that keeps the last
 * message (so a test can check that a refusal names the field it refused),
 * and fd accounting through /proc/self/fd (so a test can check that a
 * failure path leaks nothing and a success path closes what it owns).
 *
 * Everything is static inline: each test is one translation unit and uses
 * only some of these.
 */
#ifndef MN_TESTS_UNIT_TESTUTIL_H
#define MN_TESTS_UNIT_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

struct tu_log_capture {
	unsigned int count;	 /* messages received since the last reset */
	enum mn_log_level level; /* of the last message */
	char component[64];
	char msg[1024];
};

static struct tu_log_capture tu_log __attribute__((unused));

static inline void tu_log_sink(enum mn_log_level level, const char *component,
			       const char *msg, void *ctx)
{
	struct tu_log_capture *c = ctx;

	c->count++;
	c->level = level;
	snprintf(c->component, sizeof(c->component), "%s", component);
	snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

/* Forget what was captured so far. */
static inline void tu_log_reset(void)
{
	memset(&tu_log, 0, sizeof(tu_log));
}

/* Route every log line into tu_log (and out of the test output). */
static inline void tu_log_capture(void)
{
	tu_log_reset();
	mn_log_set_sink(tu_log_sink, &tu_log);
	/* Tests check every message, however fast they come. */
	mn_log_set_ratelimit(0);
}

/* Back to stderr. */
static inline void tu_log_release(void)
{
	mn_log_set_sink(NULL, NULL);
}

/* The last captured message contains @needle. */
#define assert_log_contains(needle)                                              \
	do {                                                                     \
		if (tu_log.count == 0)                                           \
			fail_msg("nothing logged, expected \"%s\"", (needle));   \
		if (!strstr(tu_log.msg, (needle)))                               \
			fail_msg("last log \"%s: %s\" does not name \"%s\"",     \
				 tu_log.component, tu_log.msg, (needle));        \
	} while (0)

/* Group setup/teardown that capture the log for a whole test file. */
static inline int tu_group_setup(void **state)
{
	(void)state;
	tu_log_capture();
	return 0;
}

static inline int tu_group_teardown(void **state)
{
	(void)state;
	tu_log_release();
	return 0;
}

/* Open file descriptors of this process, not counting the one used to count. */
static inline int tu_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

static inline int tu_fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

#endif /* MN_TESTS_UNIT_TESTUTIL_H */
