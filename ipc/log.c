/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum mn_log_level cur_level = MN_LOG_INFO;
static mn_log_sink_fn cur_sink;
static void *cur_sink_ctx;

static const char *const level_names[] = {
	[MN_LOG_ERR] = "ERROR",
	[MN_LOG_WARN] = "WARN",
	[MN_LOG_INFO] = "INFO",
	[MN_LOG_DEBUG] = "DEBUG",
};

void mn_log_set_level(enum mn_log_level level)
{
	if ((unsigned int)level > MN_LOG_DEBUG)
		level = MN_LOG_DEBUG;
	__atomic_store_n(&cur_level, level, __ATOMIC_RELAXED);
}

enum mn_log_level mn_log_get_level(void)
{
	return __atomic_load_n(&cur_level, __ATOMIC_RELAXED);
}

int mn_log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		enum mn_log_level level;
	} names[] = {
		{ "err", MN_LOG_ERR },	   { "error", MN_LOG_ERR },
		{ "warn", MN_LOG_WARN },   { "warning", MN_LOG_WARN },
		{ "info", MN_LOG_INFO },   { "debug", MN_LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return (int)names[i].level;
	return -EINVAL;
}

void mn_log_set_sink(mn_log_sink_fn sink, void *ctx)
{
	cur_sink = sink;
	cur_sink_ctx = ctx;
}

static size_t format_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, len - n, ".%06ldZ", ts.tv_nsec / 1000);
	return n < len ? n : len - 1;
}

void mn_vlog(enum mn_log_level level, const char *component, const char *fmt,
	     va_list ap)
{
	char msg[1024];
	char line[1200];
	int saved_errno = errno;
	int n;

	/* An out-of-range level is a caller bug; report it as an error. */
	if ((unsigned int)level > MN_LOG_DEBUG)
		level = MN_LOG_ERR;
	if (level > mn_log_get_level())
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (cur_sink) {
		cur_sink(level, component, msg, cur_sink_ctx);
	} else {
		size_t t = format_time(line, sizeof(line));

		n = snprintf(line + t, sizeof(line) - t, " %s %s: %s\n",
			     level_names[level], component, msg);
		if (n > 0) {
			size_t len = t + (size_t)n;

			if (len >= sizeof(line)) {
				len = sizeof(line) - 1;
				line[len - 1] = '\n';
			}
			/* One write() per line so concurrent writers don't interleave. */
			if (write(STDERR_FILENO, line, len) < 0) {
				/* nowhere left to report it */
			}
		}
	}
	errno = saved_errno;
}

void mn_log(enum mn_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mn_vlog(level, component, fmt, ap);
	va_end(ap);
}

static unsigned int rl_burst = MN_LOG_RL_BURST;

void mn_log_set_ratelimit(unsigned int burst)
{
	__atomic_store_n(&rl_burst, burst, __ATOMIC_RELAXED);
}

void mn_log_rl(struct mn_log_rl *rl, enum mn_log_level level, const char *component,
	       const char *fmt, ...)
{
	unsigned int burst = __atomic_load_n(&rl_burst, __ATOMIC_RELAXED);
	struct timespec ts;
	uint64_t now;
	va_list ap;

	if ((unsigned int)level <= MN_LOG_DEBUG && level > mn_log_get_level())
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (now - rl->window_ns >= 1000000000ull) {
		if (rl->suppressed)
			mn_log(level, component, "%u similar messages suppressed in the last second",
			       rl->suppressed);
		rl->window_ns = now;
		rl->count = 0;
		rl->suppressed = 0;
	}
	if (burst && rl->count >= burst) {
		rl->suppressed++;
		return;
	}
	rl->count++;
	va_start(ap, fmt);
	mn_vlog(level, component, fmt, ap);
	va_end(ap);
}
