/* SPDX-License-Identifier: MIT */
/* Unit tests for ipc/log: level filtering and parsing, sinks, stderr format. */
#include "testutil.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int setup(void **state)
{
	(void)state;
	mn_log_set_level(MN_LOG_INFO);
	tu_log_capture();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_log_release();
	mn_log_set_level(MN_LOG_INFO);
	return 0;
}

/*
 * Run @fn with stderr redirected into a pipe and return what it wrote
 * (NUL-terminated, at most @len - 1 bytes). No cmocka assertion may fire
 * while stderr is redirected, so checks happen after the restore.
 */
static size_t capture_stderr(void (*fn)(void), char *buf, size_t len)
{
	int pfd[2], saved;
	size_t got = 0;
	ssize_t n;

	assert_int_equal(pipe(pfd), 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(pfd[1], STDERR_FILENO), STDERR_FILENO);
	close(pfd[1]);
	fn();
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	/* Every write end is closed now: read to EOF. */
	while (got < len - 1 && (n = read(pfd[0], buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	close(pfd[0]);
	buf[got] = '\0';
	return got;
}

static void test_default_level_is_info(void **state)
{
	(void)state;
	assert_int_equal(mn_log_get_level(), MN_LOG_INFO);
}

static void test_set_level_is_reported_by_get_level(void **state)
{
	(void)state;
	for (int l = MN_LOG_ERR; l <= MN_LOG_DEBUG; l++) {
		mn_log_set_level((enum mn_log_level)l);
		assert_int_equal(mn_log_get_level(), l);
	}
}

static void test_info_level_drops_debug(void **state)
{
	(void)state;
	mn_dbg("t", "hidden");
	assert_int_equal(tu_log.count, 0);
	mn_info("t", "shown");
	assert_int_equal(tu_log.count, 1);
	assert_string_equal(tu_log.msg, "shown");
}

static void test_warn_level_drops_info_keeps_warn_and_err(void **state)
{
	(void)state;
	mn_log_set_level(MN_LOG_WARN);
	mn_info("t", "hidden");
	mn_dbg("t", "hidden");
	assert_int_equal(tu_log.count, 0);
	mn_warn("t", "w");
	assert_int_equal(tu_log.count, 1);
	assert_int_equal(tu_log.level, MN_LOG_WARN);
	mn_err("t", "e");
	assert_int_equal(tu_log.count, 2);
	assert_int_equal(tu_log.level, MN_LOG_ERR);
}

static void test_err_level_keeps_only_errors(void **state)
{
	(void)state;
	mn_log_set_level(MN_LOG_ERR);
	mn_warn("t", "hidden");
	mn_info("t", "hidden");
	mn_dbg("t", "hidden");
	assert_int_equal(tu_log.count, 0);
	mn_err("t", "e");
	assert_int_equal(tu_log.count, 1);
}

static void test_debug_level_keeps_everything(void **state)
{
	(void)state;
	mn_log_set_level(MN_LOG_DEBUG);
	mn_err("t", "1");
	mn_warn("t", "2");
	mn_info("t", "3");
	mn_dbg("t", "4");
	assert_int_equal(tu_log.count, 4);
	assert_int_equal(tu_log.level, MN_LOG_DEBUG);
	assert_string_equal(tu_log.msg, "4");
}

static void test_parse_accepts_level_names(void **state)
{
	(void)state;
	assert_int_equal(mn_log_level_parse("err"), MN_LOG_ERR);
	assert_int_equal(mn_log_level_parse("error"), MN_LOG_ERR);
	assert_int_equal(mn_log_level_parse("warn"), MN_LOG_WARN);
	assert_int_equal(mn_log_level_parse("warning"), MN_LOG_WARN);
	assert_int_equal(mn_log_level_parse("info"), MN_LOG_INFO);
	assert_int_equal(mn_log_level_parse("debug"), MN_LOG_DEBUG);
}

static void test_parse_rejects_other_names(void **state)
{
	static const char *const bad[] = {
		"", "e", "errors", "inf", "information", "dbg", "trace",
		"fatal", "2", "debug ", " info", "warn\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(mn_log_level_parse(bad[i]), -EINVAL);
}

static void test_sink_receives_level_component_and_message(void **state)
{
	(void)state;
	mn_log(MN_LOG_WARN, "region", "fd %d has %s", 7, "no seals");
	assert_int_equal(tu_log.count, 1);
	assert_int_equal(tu_log.level, MN_LOG_WARN);
	assert_string_equal(tu_log.component, "region");
	/* Formatted, without time stamp or trailing newline. */
	assert_string_equal(tu_log.msg, "fd 7 has no seals");
}

struct ctx_probe {
	void *seen;
	int calls;
};

static void probe_sink(enum mn_log_level level, const char *component,
		       const char *msg, void *ctx)
{
	struct ctx_probe *p = ctx;

	(void)level;
	(void)component;
	(void)msg;
	p->seen = ctx;
	p->calls++;
}

static void test_sink_receives_its_ctx(void **state)
{
	struct ctx_probe p = { 0 };

	(void)state;
	mn_log_set_sink(probe_sink, &p);
	mn_info("t", "x");
	assert_int_equal(p.calls, 1);
	assert_ptr_equal(p.seen, &p);
}

static void vlog_helper(enum mn_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void vlog_helper(enum mn_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mn_vlog(level, "vcomp", fmt, ap);
	va_end(ap);
}

static void test_vlog_formats_like_log(void **state)
{
	(void)state;
	vlog_helper(MN_LOG_ERR, "%s=%u", "nsections", 17u);
	assert_int_equal(tu_log.count, 1);
	assert_string_equal(tu_log.component, "vcomp");
	assert_string_equal(tu_log.msg, "nsections=17");
	vlog_helper(MN_LOG_DEBUG, "hidden %d", 1);
	assert_int_equal(tu_log.count, 1);
}

static void log_one_error(void)
{
	mn_err("region", "bad magic %d", 42);
}

/* "2026-11-21T09:30:00.123456Z ERROR region: <message>\n" */
static void test_stderr_line_has_iso_time_level_and_component(void **state)
{
	static const char *const pattern =
		"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})"
		"\\.[0-9]{6}Z ERROR region: bad magic 42\n$";
	char out[2048];
	regmatch_t m[2];
	regex_t re;
	struct tm tm = { 0 };
	time_t t, now;

	(void)state;
	tu_log_release();
	capture_stderr(log_one_error, out, sizeof(out));
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED), 0);
	if (regexec(&re, out, 2, m, 0) != 0) {
		regfree(&re);
		fail_msg("stderr line \"%s\" does not match %s", out, pattern);
	}
	regfree(&re);
	/* The stamp is UTC and now, give or take a slow machine. */
	out[m[1].rm_eo] = '\0';
	assert_non_null(strptime(out + m[1].rm_so, "%Y-%m-%dT%H:%M:%S", &tm));
	t = timegm(&tm);
	now = time(NULL);
	assert_in_range(t, now - 60, now + 1);
}

static void log_each_level(void)
{
	mn_err("c", "e");
	mn_warn("c", "w");
	mn_info("c", "i");
	mn_dbg("c", "d");
}

static void test_stderr_names_each_level(void **state)
{
	char out[2048];

	(void)state;
	tu_log_release();
	mn_log_set_level(MN_LOG_DEBUG);
	capture_stderr(log_each_level, out, sizeof(out));
	assert_non_null(strstr(out, "Z ERROR c: e\n"));
	assert_non_null(strstr(out, "Z WARN c: w\n"));
	assert_non_null(strstr(out, "Z INFO c: i\n"));
	assert_non_null(strstr(out, "Z DEBUG c: d\n"));
}

static void test_stderr_respects_level(void **state)
{
	char out[2048];

	(void)state;
	tu_log_release();
	mn_log_set_level(MN_LOG_WARN);
	capture_stderr(log_each_level, out, sizeof(out));
	assert_non_null(strstr(out, " ERROR c: e\n"));
	assert_non_null(strstr(out, " WARN c: w\n"));
	assert_null(strstr(out, " INFO "));
	assert_null(strstr(out, " DEBUG "));
}

static void log_to_whatever(void)
{
	mn_info("c", "to stderr");
}

static void test_null_sink_restores_stderr(void **state)
{
	char out[2048];

	(void)state;
	mn_log_set_sink(NULL, NULL);
	capture_stderr(log_to_whatever, out, sizeof(out));
	assert_non_null(strstr(out, " INFO c: to stderr\n"));
	assert_int_equal(tu_log.count, 0);
}

static void test_sink_diverts_from_stderr(void **state)
{
	char out[2048];

	(void)state;
	capture_stderr(log_to_whatever, out, sizeof(out));
	assert_string_equal(out, "");
	assert_int_equal(tu_log.count, 1);
}

static void log_huge(void)
{
	char comp[400], msg[3000];

	memset(comp, 'c', sizeof(comp) - 1);
	comp[sizeof(comp) - 1] = '\0';
	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	mn_err(comp, "%s", msg);
}

/* An over-long message is cut, but still one line ending in a newline. */
static void test_stderr_long_message_stays_one_line(void **state)
{
	char out[8192];
	size_t n;

	(void)state;
	tu_log_release();
	n = capture_stderr(log_huge, out, sizeof(out));
	assert_true(n > 400);
	assert_int_equal(out[n - 1], '\n');
	assert_ptr_equal(strchr(out, '\n'), out + n - 1);
}

/* A macro, so each test has a call site (and rate-limit state) of its own. */
#define log_burst(n)                                               \
	do {                                                       \
		for (unsigned int i_ = 0; i_ < (n); i_++)          \
			mn_err_rl("test", "flood %u", i_);         \
	} while (0)

static void test_ratelimit_caps_lines_per_second(void **state)
{
	(void)state;
	mn_log_set_ratelimit(3);
	log_burst(50);
	assert_int_equal(tu_log.count, 3);
	assert_log_contains("flood 2");
	mn_log_set_ratelimit(0);
}

static void test_ratelimit_reports_suppressed_lines(void **state)
{
	(void)state;
	mn_log_set_ratelimit(2);
	for (int round = 0; round < 2; round++) {
		/* One call site: 12 lines, then the next second's line. */
		for (unsigned int i = 0; i < (round ? 1u : 12u); i++)
			mn_err_rl("test", "flood %u", i);
		if (round == 0) {
			assert_int_equal(tu_log.count, 2);
			usleep(1100000);
		}
	}
	/* The summary line, then the new second's own line. */
	assert_int_equal(tu_log.count, 4);
	assert_log_contains("flood 0");
	mn_log_set_ratelimit(0);
}

static void test_ratelimit_zero_means_unlimited(void **state)
{
	(void)state;
	mn_log_set_ratelimit(0);
	log_burst(40);
	assert_int_equal(tu_log.count, 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_level_is_info),
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_set_level_is_reported_by_get_level),
		T(test_info_level_drops_debug),
		T(test_warn_level_drops_info_keeps_warn_and_err),
		T(test_err_level_keeps_only_errors),
		T(test_debug_level_keeps_everything),
		T(test_parse_accepts_level_names),
		T(test_parse_rejects_other_names),
		T(test_sink_receives_level_component_and_message),
		T(test_sink_receives_its_ctx),
		T(test_vlog_formats_like_log),
		T(test_stderr_line_has_iso_time_level_and_component),
		T(test_stderr_names_each_level),
		T(test_stderr_respects_level),
		T(test_null_sink_restores_stderr),
		T(test_sink_diverts_from_stderr),
		T(test_stderr_long_message_stays_one_line),
		T(test_ratelimit_caps_lines_per_second),
		T(test_ratelimit_reports_suppressed_lines),
		T(test_ratelimit_zero_means_unlimited),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
