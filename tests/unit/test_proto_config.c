/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for servers/proto_config: machnet-proto's defaults, tenant
 * INI file, command line and cross-field checks. Every refusal is checked
 * for its return code and for the log line naming file, line, key and
 * value.
 *
 * Config files are written into a mkdtemp() directory, one mkstemp() file
 * per write (or NAME.ini for --tenant), and removed after each test.
 * PROTO_EXAMPLE (set by meson) names dist/tenant.ini.example, which must
 * load and validate.
 */
#include "testutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto_config.h"

#define MAX_FILES 64

static char tmpdir[64];
static char files[MAX_FILES][128];
static unsigned int nfiles;

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/protocfg.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return tu_group_setup(state);
}

static int group_teardown(void **state)
{
	rmdir(tmpdir);
	return tu_group_teardown(state);
}

static int setup(void **state)
{
	(void)state;
	tu_log_reset();
	return 0;
}

/* Remove every file the test wrote. */
static int teardown(void **state)
{
	(void)state;
	for (unsigned int i = 0; i < nfiles; i++)
		unlink(files[i]);
	nfiles = 0;
	return 0;
}

static void write_at(const char *path, const char *text)
{
	size_t len = strlen(text);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Write @text to a new file in tmpdir; returns its path (valid until teardown). */
static const char *write_cfg(const char *text)
{
	char *path;
	int fd;

	assert_true(nfiles < MAX_FILES);
	path = files[nfiles];
	snprintf(path, sizeof(files[0]), "%s/protoXXXXXX", tmpdir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	nfiles++;
	write_at(path, text);
	return path;
}

/* Write @text to tmpdir/NAME.ini, the file of --tenant NAME. */
static const char *write_tenant(const char *name, const char *text)
{
	char *path;

	assert_true(nfiles < MAX_FILES);
	path = files[nfiles++];
	snprintf(path, sizeof(files[0]), "%s/%s.ini", tmpdir, name);
	write_at(path, text);
	return path;
}

/* Load @text over the defaults into @c. */
static int load_text(struct proto_cfg *c, const char *text, const char **path)
{
	const char *p = write_cfg(text);

	if (path)
		*path = p;
	proto_cfg_defaults(c);
	return proto_cfg_load(c, p);
}

/* Lines 1..3 of most files: the two keys without defaults. */
#define BASE "[tenant]\nname = alice\nip = 10.0.0.1\n"

/* The last log line names "path:line:" and contains @what. */
static void assert_logged_at(const char *path, unsigned int line, const char *what)
{
	char where[192];

	snprintf(where, sizeof(where), "%s:%u: ", path, line);
	assert_log_contains(where);
	assert_log_contains(what);
}

/* The section each key lives in. */
static const char *section_of(const char *key)
{
	static const char *const limits[] = {
		"channels", "flows", "channel_buffers", "buffer_size", "max_msg_size", "frames",
	};
	static const char *const transport[] = {
		"cc",	       "window",      "init_window",	 "rto_min_us",	 "rto_max_us",
		"rto_init_us", "max_retries", "target_delay_us", "keepalive_ms", "idle_timeout_ms",
	};

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		if (strcmp(key, limits[i]) == 0)
			return "limits";
	for (size_t i = 0; i < sizeof(transport) / sizeof(transport[0]); i++)
		if (strcmp(key, transport[i]) == 0)
			return "transport";
	return "tenant";
}

/*
 * "[SECTION]" with @key = @value on line 2 (then name and ip in [tenant]
 * unless @key is one of them): refused, naming file, line 2, key and value.
 */
static void assert_value_refused(const char *key, const char *value)
{
	const char *sec = section_of(key);
	char text[1024], what[512];
	struct proto_cfg c;
	const char *path;

	if (strcmp(sec, "tenant") == 0)
		snprintf(text, sizeof(text), "[tenant]\n%s = %s\n%s%s", key, value,
			 strcmp(key, "name") ? "name = alice\n" : "",
			 strcmp(key, "ip") ? "ip = 10.0.0.1\n" : "");
	else
		snprintf(text, sizeof(text), "[%s]\n%s = %s\n" BASE, sec, key, value);
	tu_log_reset();
	assert_int_equal(load_text(&c, text, &path), -EINVAL);
	snprintf(what, sizeof(what), "[%s] %s = %s: ", sec, key, value);
	assert_logged_at(path, 2, what);
	assert_log_contains("expected ");
}

/* ---- defaults ------------------------------------------------------------ */

static void test_defaults(void **state)
{
	struct proto_cfg c;

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	proto_cfg_defaults(&c);
	assert_string_equal(c.name, "");
	assert_string_equal(c.runtime_dir, "/run/machnet");
	assert_int_equal(c.ip, 0);
	assert_int_equal(c.listen_ports.lo, 5000);
	assert_int_equal(c.listen_ports.hi, 5999);
	assert_int_equal(c.ephemeral_ports.lo, 40000);
	assert_int_equal(c.ephemeral_ports.hi, 40999);
	assert_true(c.app_uid == PROTO_ANY_UID);
	assert_true(c.app_gid == PROTO_ANY_GID);
	assert_int_equal(c.log_level, MN_LOG_INFO);
	assert_int_equal(c.poll_mode, PROTO_POLL_ADAPTIVE);
	assert_int_equal(c.spin_us, 200);
	assert_int_equal(c.sleep_max_us, 1000);
	assert_int_equal(c.channels, 64);
	assert_int_equal(c.flows, 1024);
	assert_int_equal(c.channel_buffers, 8192);
	assert_int_equal(c.buffer_size, 4096);
	assert_int_equal(c.max_msg_size, 8388608);
	assert_int_equal(c.frames, 4096);
	assert_int_equal(c.cc, PROTO_CC_SWIFT);
	assert_int_equal(c.window, 64);
	assert_int_equal(c.init_window, 8);
	assert_int_equal(c.rto_min_us, 1000);
	assert_int_equal(c.rto_max_us, 1000000);
	assert_int_equal(c.rto_init_us, 10000);
	assert_int_equal(c.max_retries, 15);
	assert_int_equal(c.target_delay_us, 100);
	assert_int_equal(c.keepalive_ms, 1000);
	assert_int_equal(c.idle_timeout_ms, 30000);
}

static void test_defaults_need_only_name_and_ip(void **state)
{
	struct proto_cfg c;

	(void)state;
	proto_cfg_defaults(&c);
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("no tenant name: set [tenant] name, --name or --tenant NAME");
	snprintf(c.name, sizeof(c.name), "alice");
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("no ip address: set [tenant] ip or --ip");
	c.ip = 0x0a000001;
	assert_int_equal(proto_cfg_validate(&c), 0);
}

static void test_enum_names(void **state)
{
	(void)state;
	assert_string_equal(proto_poll_mode_name(PROTO_POLL_BUSY), "busy");
	assert_string_equal(proto_poll_mode_name(PROTO_POLL_YIELD), "yield");
	assert_string_equal(proto_poll_mode_name(PROTO_POLL_ADAPTIVE), "adaptive");
	assert_string_equal(proto_poll_mode_name((enum proto_poll_mode)7), "?");
	assert_string_equal(proto_cc_name(PROTO_CC_SWIFT), "swift");
	assert_string_equal(proto_cc_name(PROTO_CC_FIXED), "fixed");
	assert_string_equal(proto_cc_name((enum proto_cc)-1), "?");
}

/* ---- a full file ----------------------------------------------------------- */

static const char full_file[] =
	"; machnet-proto test configuration\n"
	"[tenant]\n"
	"name = bob-2\n"
	"runtime_dir = /run/machnet-b\n"
	"ip = 10.0.1.7\n"
	"listen_ports = 6000 - 6099       ; blanks around '-' are fine\n"
	"ephemeral_ports = 50000-50999\n"
	"app_uid = 1000\n"
	"app_gid = root\n"
	"log_level = debug\n"
	"poll_mode = Busy\n"
	"spin_us = 0\n"
	"sleep_max_us = 500\n"
	"\n"
	"[limits]\n"
	"channels = 8\n"
	"flows = 100\n"
	"channel_buffers = 1024\n"
	"buffer_size = 1536\n"
	"max_msg_size = 65536\n"
	"frames = 2048\n"
	"\n"
	"# transport\n"
	"[transport]\n"
	"cc = fixed\n"
	"window = 32\n"
	"init_window = 32\n"
	"rto_min_us = 500\n"
	"rto_max_us = 2000000\n"
	"rto_init_us = 500\n"
	"max_retries = 20\n"
	"target_delay_us = 50\n"
	"keepalive_ms = 0\n"
	"idle_timeout_ms = 60000\n";

static void test_full_file_round_trips(void **state)
{
	struct proto_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, full_file, NULL), 0);
	assert_string_equal(c.name, "bob-2");
	assert_string_equal(c.runtime_dir, "/run/machnet-b");
	assert_int_equal(c.ip, 0x0a000107);
	assert_int_equal(c.listen_ports.lo, 6000);
	assert_int_equal(c.listen_ports.hi, 6099);
	assert_int_equal(c.ephemeral_ports.lo, 50000);
	assert_int_equal(c.ephemeral_ports.hi, 50999);
	assert_int_equal(c.app_uid, 1000);
	assert_int_equal(c.app_gid, 0);
	assert_int_equal(c.log_level, MN_LOG_DEBUG);
	assert_int_equal(c.poll_mode, PROTO_POLL_BUSY);
	assert_int_equal(c.spin_us, 0);
	assert_int_equal(c.sleep_max_us, 500);
	assert_int_equal(c.channels, 8);
	assert_int_equal(c.flows, 100);
	assert_int_equal(c.channel_buffers, 1024);
	assert_int_equal(c.buffer_size, 1536);
	assert_int_equal(c.max_msg_size, 65536);
	assert_int_equal(c.frames, 2048);
	assert_int_equal(c.cc, PROTO_CC_FIXED);
	assert_int_equal(c.window, 32);
	assert_int_equal(c.init_window, 32);
	assert_int_equal(c.rto_min_us, 500);
	assert_int_equal(c.rto_max_us, 2000000);
	assert_int_equal(c.rto_init_us, 500);
	assert_int_equal(c.max_retries, 20);
	assert_int_equal(c.target_delay_us, 50);
	assert_int_equal(c.keepalive_ms, 0);
	assert_int_equal(c.idle_timeout_ms, 60000);
	assert_int_equal(proto_cfg_validate(&c), 0);
}

static void test_dist_example_loads_and_validates(void **state)
{
	const char *path = getenv("PROTO_EXAMPLE");
	struct proto_cfg c, def;

	(void)state;
	if (!path)
		skip();
	proto_cfg_defaults(&c);
	assert_int_equal(proto_cfg_load(&c, path), 0);
	assert_int_equal(proto_cfg_validate(&c), 0);
	assert_string_equal(c.name, "alice");
	/* The example spells out every default. */
	proto_cfg_defaults(&def);
	memcpy(def.name, c.name, sizeof(def.name));
	def.ip = c.ip;
	assert_memory_equal(&c, &def, sizeof(c));
}

static void test_minimal_file_accepted(void **state)
{
	struct proto_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, BASE, NULL), 0);
	assert_string_equal(c.name, "alice");
	assert_int_equal(c.ip, 0x0a000001);
	assert_int_equal(proto_cfg_validate(&c), 0);
}

static void test_names_are_lowercased_values_are_not(void **state)
{
	struct proto_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, "[TENANT]\nName = alice\nIP = 10.0.0.1\n[Limits]\n"
				       "CHANNELS = 3\n[transport]\nCC = FIXED\n", NULL), 0);
	assert_int_equal(c.channels, 3);
	assert_int_equal(c.cc, PROTO_CC_FIXED);
	/* Tenant names are lowercase (nicd lowercases its section names). */
	assert_int_equal(load_text(&c, "[tenant]\nname = Alice\n", &path), -EINVAL);
	assert_logged_at(path, 2, "[tenant] name = Alice: expected a tenant name of 1..31");
}

static void test_file_loads_over_current_values(void **state)
{
	struct proto_cfg c;
	const char *p = write_cfg("[limits]\nflows = 7\n");

	(void)state;
	proto_cfg_defaults(&c);
	c.channels = 5;
	assert_int_equal(proto_cfg_load(&c, p), 0);
	assert_int_equal(c.flows, 7);
	assert_int_equal(c.channels, 5);
}

static void test_failed_load_leaves_cfg_unchanged(void **state)
{
	struct proto_cfg c, before;
	/* Fails at the last line, after earlier sections were parsed. */
	const char *p = write_cfg(BASE "[limits]\nchannels = 2\n[transport]\nwindow = 0\n");

	(void)state;
	proto_cfg_defaults(&c);
	memcpy(&before, &c, sizeof(c));
	assert_int_equal(proto_cfg_load(&c, p), -EINVAL);
	assert_logged_at(p, 7, "[transport] window = 0");
	assert_memory_equal(&c, &before, sizeof(c));
}

/* ---- bad values -------------------------------------------------------------- */

static void test_bad_integer_message_names_file_line_key_value(void **state)
{
	char expect[256];
	struct proto_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "[limits]\nchannels = 5000\n", &path), -EINVAL);
	snprintf(expect, sizeof(expect),
		 "%s:5: [limits] channels = 5000: expected an integer in 1..1024", path);
	assert_string_equal(tu_log.msg, expect);
	assert_string_equal(tu_log.component, "config");
	assert_int_equal(tu_log.level, MN_LOG_ERR);
}

static void test_non_integer_refused(void **state)
{
	(void)state;
	assert_value_refused("flows", "1x");
	assert_value_refused("flows", "1.5");
	assert_value_refused("flows", "0x10");
	assert_value_refused("flows", "");
	assert_value_refused("window", "-1");
	assert_value_refused("window", "+1");
	assert_value_refused("rto_min_us", "99999999999999999999999");
	assert_value_refused("max_retries", "4294967306"); /* 10 modulo 2^32 */
}

/* BASE, then @key = @v in its section. */
static void key_text(char *buf, size_t len, const char *key, unsigned long v)
{
	const char *sec = section_of(key);

	if (strcmp(sec, "tenant") == 0)
		snprintf(buf, len, BASE "%s = %lu\n", key, v);
	else
		snprintf(buf, len, BASE "[%s]\n%s = %lu\n", sec, key, v);
}

/* Every integer key at its bounds: min and max accepted, outside refused. */
static void test_every_integer_key_range_enforced(void **state)
{
	static const struct {
		const char *key;
		unsigned long min, max;
	} keys[] = {
		{ "spin_us", 0, 1000000 },	   { "sleep_max_us", 1, 1000000 },
		{ "channels", 1, 1024 },	   { "flows", 1, 65536 },
		{ "channel_buffers", 16, 1u << 20 }, { "buffer_size", 64, 1u << 20 },
		{ "max_msg_size", 1, 8u << 20 },   { "frames", 64, 1u << 24 },
		{ "window", 1, 256 },		   { "init_window", 1, 256 },
		{ "rto_min_us", 10, 60000000 },	   { "rto_max_us", 10, 60000000 },
		{ "rto_init_us", 10, 60000000 },   { "max_retries", 1, 1000 },
		{ "target_delay_us", 1, 1000000 }, { "keepalive_ms", 0, 3600000 },
		{ "idle_timeout_ms", 0, 86400000 },
	};
	char text[256], v[32];
	struct proto_cfg c;

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		/* Both bounds load (the cross-field checks are tested below). */
		key_text(text, sizeof(text), keys[i].key, keys[i].min);
		assert_int_equal(load_text(&c, text, NULL), 0);
		key_text(text, sizeof(text), keys[i].key, keys[i].max);
		assert_int_equal(load_text(&c, text, NULL), 0);
		snprintf(v, sizeof(v), "%lu", keys[i].max + 1);
		assert_value_refused(keys[i].key, v);
		if (keys[i].min > 0) {
			snprintf(v, sizeof(v), "%lu", keys[i].min - 1);
			assert_value_refused(keys[i].key, v);
		}
		teardown(NULL);
	}
}

static void test_power_of_two_and_multiple_of_64_enforced(void **state)
{
	struct proto_cfg c;

	(void)state;
	assert_value_refused("channel_buffers", "3000");
	assert_log_contains("expected a power of two in 16..1048576");
	assert_value_refused("frames", "100");
	assert_log_contains("expected a power of two in 64..16777216");
	assert_value_refused("buffer_size", "1000");
	assert_log_contains("expected a multiple of 64 in 64..1048576");
	assert_int_equal(load_text(&c, BASE "[limits]\nbuffer_size = 9024\n", NULL), 0);
	assert_int_equal(c.buffer_size, 9024);
}

static void test_bad_ip_refused(void **state)
{
	(void)state;
	assert_value_refused("ip", "10.0.0.256");
	assert_value_refused("ip", "10.0.0");
	assert_value_refused("ip", "10.0.0.1/24");
	assert_value_refused("ip", "0.0.0.0");
	assert_value_refused("ip", "224.0.0.1");
	assert_value_refused("ip", "255.255.255.255");
	assert_value_refused("ip", "10.0.0.1, 10.0.0.2");
	assert_value_refused("ip", "none");
	assert_value_refused("ip", "");
	assert_log_contains("expected a unicast IPv4 address");
}

static void test_port_ranges_parsed(void **state)
{
	struct proto_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, BASE "listen_ports = 7000\nephemeral_ports = 1-65535\n",
				   NULL), 0);
	assert_int_equal(c.listen_ports.lo, 7000);
	assert_int_equal(c.listen_ports.hi, 7000);
	assert_int_equal(c.ephemeral_ports.lo, 1);
	assert_int_equal(c.ephemeral_ports.hi, 65535);
}

static void test_bad_port_ranges_refused(void **state)
{
	static const char *const bad[] = {
		"0", "0-10", "65536", "60000-70000", "5999-5000", "http", "50x0", "1-2-3",
		"5000-", "-5000", "", "+5", "5000-5999, 7000", "5000,",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_value_refused("listen_ports", bad[i]);
		assert_log_contains("expected a port 1..65535 or a range LO-HI with "
				    "1 <= LO <= HI <= 65535");
		assert_value_refused("ephemeral_ports", bad[i]);
	}
}

static void test_app_uid_gid(void **state)
{
	struct proto_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, BASE "app_uid = 1234\napp_gid = 0\n", NULL), 0);
	assert_int_equal(c.app_uid, 1234);
	assert_int_equal(c.app_gid, 0);
	assert_int_equal(load_text(&c, BASE "app_uid = root\napp_gid = root\n", NULL), 0);
	assert_int_equal(c.app_uid, 0);
	assert_int_equal(c.app_gid, 0);
	assert_int_equal(load_text(&c, BASE "app_uid = 5\napp_uid2 = 1\n", NULL), -EINVAL);
	assert_int_equal(load_text(&c, BASE "app_uid = any\napp_gid = any\n", NULL), 0);
	assert_true(c.app_uid == PROTO_ANY_UID);
	assert_true(c.app_gid == PROTO_ANY_GID);
}

static void test_bad_app_uid_gid_refused(void **state)
{
	(void)state;
	assert_value_refused("app_uid", "no-such-user-here");
	assert_log_contains("user name known to this host");
	assert_value_refused("app_gid", "no-such-group-here");
	assert_log_contains("group name known to this host");
	assert_value_refused("app_uid", "4294967295");
	assert_value_refused("app_uid", "-1");
	assert_value_refused("app_gid", "12ab");
}

static void test_bad_enums_refused(void **state)
{
	struct proto_cfg c;

	(void)state;
	assert_value_refused("poll_mode", "spin");
	assert_log_contains("expected busy, yield or adaptive");
	assert_value_refused("cc", "cubic");
	assert_log_contains("expected swift or fixed");
	assert_value_refused("log_level", "verbose");
	assert_log_contains("expected err, warn, info or debug");
	assert_int_equal(load_text(&c, BASE "poll_mode = yield\nlog_level = WARNING\n", NULL), 0);
	assert_int_equal(c.poll_mode, PROTO_POLL_YIELD);
	assert_int_equal(c.log_level, MN_LOG_WARN);
}

static void test_bad_strings_refused(void **state)
{
	char longdir[128];

	(void)state;
	assert_value_refused("name", "");
	assert_value_refused("name", "a.b");
	assert_value_refused("name", "a b");
	assert_value_refused("name", "../etc");
	assert_value_refused("name", "abcdefghijabcdefghijabcdefghij12"); /* 32 */
	assert_log_contains("expected a tenant name of 1..31 characters from a-z 0-9 _ -");
	assert_value_refused("runtime_dir", "run/machnet");
	memset(longdir, 'd', sizeof(longdir));
	longdir[0] = '/';
	longdir[71] = '\0'; /* one too many for <dir>/<31 chars>.sock */
	assert_value_refused("runtime_dir", longdir);
	assert_log_contains("an absolute path of at most 70 characters");
}

static void test_longest_name_and_runtime_dir_accepted(void **state)
{
	char text[256], dir[71];
	struct proto_cfg c;

	(void)state;
	memset(dir, 'd', sizeof(dir));
	dir[0] = '/';
	dir[70] = '\0';
	snprintf(text, sizeof(text), "[tenant]\nname = abcdefghijabcdefghijabcdefghij1\n"
				     "ip = 10.0.0.1\nruntime_dir = %s\n", dir);
	assert_int_equal(load_text(&c, text, NULL), 0);
	assert_int_equal(proto_cfg_validate(&c), 0);
}

/* ---- file structure --------------------------------------------------------- */

static void test_unknown_key_refused_with_line(void **state)
{
	struct proto_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "\n; comment\nport = 5000\n", &path), -EINVAL);
	assert_logged_at(path, 6, "[tenant] port: unknown key; expected one of: name, "
				  "runtime_dir, ip, listen_ports");
	/* A key of another section is unknown here. */
	assert_int_equal(load_text(&c, BASE "[limits]\nwindow = 8\n", &path), -EINVAL);
	assert_logged_at(path, 5, "[limits] window: unknown key; expected one of: channels");
}

static void test_unknown_section_refused_with_line(void **state)
{
	struct proto_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "[limit]\nchannels = 1\n", &path), -EINVAL);
	assert_logged_at(path, 4, "unknown section [limit]: expected [tenant], [limits] or "
				  "[transport]");
	/* nicd.ini's sections are not a tenant file's. */
	assert_int_equal(load_text(&c, BASE "[tenant.alice]\n", &path), -EINVAL);
	assert_logged_at(path, 4, "unknown section [tenant.alice]");
	assert_int_equal(load_text(&c, "[nicd]\n", &path), -EINVAL);
	assert_logged_at(path, 1, "unknown section [nicd]");
}

static void test_key_outside_section_refused(void **state)
{
	struct proto_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, "; top\nname = alice\n" BASE, &path), -EINVAL);
	assert_logged_at(path, 2, "key 'name' outside any section: expected [tenant], [limits] "
				  "or [transport] before it");
}

static void test_repeated_key_and_section_refused(void **state)
{
	struct proto_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "NAME = bob\n", &path), -EINVAL);
	assert_logged_at(path, 4, "[tenant] name: key given twice (first at line 2)");
	assert_int_equal(load_text(&c, "[limits]\n" BASE "[Limits]\n", &path), -EINVAL);
	assert_logged_at(path, 5, "[limits]: section given twice (first at line 1)");
}

static void test_syntax_errors_refused_with_line(void **state)
{
	char text[1200];
	struct proto_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "flows 10\n", &path), -EINVAL);
	assert_logged_at(path, 4, "'flows 10': expected KEY = VALUE");
	assert_int_equal(load_text(&c, BASE "[limits\n", &path), -EINVAL);
	assert_logged_at(path, 4, "expected [SECTION]");
	assert_int_equal(load_text(&c, "[]\n", &path), -EINVAL);
	assert_logged_at(path, 1, "expected [tenant], [limits] or [transport]");
	assert_int_equal(load_text(&c, "[tenant]   ; who\nname = a\n", &path), -EINVAL);
	assert_logged_at(path, 1, "no comment after it");
	assert_int_equal(load_text(&c, BASE "; old \\\nflows = 9\n", &path), -EINVAL);
	assert_logged_at(path, 4, "continuation lines are not supported");
	snprintf(text, sizeof(text), "[tenant]\nruntime_dir = /");
	memset(text + strlen(text), 'x', 1050);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(load_text(&c, text, &path), -EINVAL);
	assert_logged_at(path, 2, "at most 1000 characters");
}

static void test_nul_byte_refused(void **state)
{
	static const char text[] = "[limits]\nflows = 1\0002\n";
	struct proto_cfg c;
	char path[128];
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/nulXXXXXX", tmpdir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	proto_cfg_defaults(&c);
	assert_int_equal(proto_cfg_load(&c, path), -EINVAL);
	unlink(path);
	assert_logged_at(path, 2, "NUL byte");
}

static void test_missing_file_and_directory_refused(void **state)
{
	struct proto_cfg c;
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/absent.ini", tmpdir);
	proto_cfg_defaults(&c);
	assert_int_equal(proto_cfg_load(&c, path), -ENOENT);
	assert_log_contains(path);
	assert_log_contains("No such file");
	assert_int_equal(proto_cfg_load(&c, tmpdir), -EISDIR);
	assert_log_contains("expected a regular file");
}

/* ---- cross-field checks ------------------------------------------------------- */

/* A valid config, built by hand. */
static void valid_cfg(struct proto_cfg *c)
{
	proto_cfg_defaults(c);
	snprintf(c->name, sizeof(c->name), "alice");
	c->ip = 0x0a000001;
}

static void test_validate_accepts_valid(void **state)
{
	struct proto_cfg c;

	(void)state;
	valid_cfg(&c);
	assert_int_equal(proto_cfg_validate(&c), 0);
}

static void test_validate_port_ranges_must_not_overlap(void **state)
{
	struct proto_cfg c;

	(void)state;
	valid_cfg(&c);
	c.ephemeral_ports = (struct mn_conf_port_range){ 5500, 6500 };
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("listen_ports 5000-5999 and ephemeral_ports 5500-6500 share "
			    "5500-5999: expected ranges that do not overlap");
	c.ephemeral_ports = (struct mn_conf_port_range){ 5999, 5999 };
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("listen_ports 5000-5999 and ephemeral_ports 5999 share 5999:");
	c.ephemeral_ports = (struct mn_conf_port_range){ 6000, 6000 };
	assert_int_equal(proto_cfg_validate(&c), 0);
	c.ephemeral_ports = (struct mn_conf_port_range){ 1, 4999 };
	assert_int_equal(proto_cfg_validate(&c), 0);
}

static void test_validate_overlap_found_from_file(void **state)
{
	struct proto_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, BASE "listen_ports = 40000-40010\n", NULL), 0);
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("share 40000-40010");
}

static void test_validate_rto_order(void **state)
{
	struct proto_cfg c;

	(void)state;
	valid_cfg(&c);
	c.rto_min_us = 20000; /* above rto_init_us 10000 */
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("rto_min_us = 20000, rto_init_us = 10000, rto_max_us = 1000000: "
			    "expected rto_min_us <= rto_init_us <= rto_max_us");
	valid_cfg(&c);
	c.rto_init_us = 2000000;
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	valid_cfg(&c);
	c.rto_min_us = c.rto_init_us = c.rto_max_us = 5000;
	assert_int_equal(proto_cfg_validate(&c), 0);
}

static void test_validate_init_window_within_window(void **state)
{
	struct proto_cfg c;

	(void)state;
	valid_cfg(&c);
	c.window = 4;
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("init_window = 8: expected at most window = 4");
	c.init_window = 4;
	assert_int_equal(proto_cfg_validate(&c), 0);
}

static void test_validate_channel_bytes_capped(void **state)
{
	struct proto_cfg c;

	(void)state;
	valid_cfg(&c);
	c.channel_buffers = 1u << 20;
	c.buffer_size = 2048; /* 2 GiB */
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("channel_buffers * buffer_size = 1048576 * 2048 = 2147483648 bytes "
			    "per channel: expected at most 1073741824 (1 GiB)");
	c.buffer_size = 1024; /* exactly 1 GiB */
	assert_int_equal(proto_cfg_validate(&c), 0);
}

static void test_validate_max_msg_fits_half_a_channel(void **state)
{
	struct proto_cfg c;

	(void)state;
	valid_cfg(&c);
	c.channel_buffers = 1024; /* 512 buffers of 4080 data bytes per half */
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("max_msg_size = 8388608 needs 2057 buffers of 4096 B (4080 B of data "
			    "each): expected at most half of channel_buffers = 1024");
	c.max_msg_size = 512 * 4080;
	assert_int_equal(proto_cfg_validate(&c), 0);
	c.max_msg_size = 512 * 4080 + 1;
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
}

static void test_validate_buffer_math_from_file(void **state)
{
	struct proto_cfg c;
	const char *p = write_cfg(BASE "[limits]\nchannel_buffers = 16\nbuffer_size = 64\n");

	(void)state;
	proto_cfg_defaults(&c);
	assert_int_equal(proto_cfg_parse_cmdline_at(&c, 3, (char *[]){ "p", "-c", (char *)p,
								       NULL }, tmpdir),
			 -EINVAL);
	assert_log_contains("max_msg_size = 8388608");
	assert_int_equal(proto_cfg_parse_cmdline_at(&c, 5, (char *[]){ "p", "-c", (char *)p,
								       "--max-msg-size", "385",
								       NULL }, tmpdir),
			 -EINVAL); /* 9 buffers of 48 data bytes: more than 16 / 2 */
	assert_int_equal(proto_cfg_parse_cmdline_at(&c, 5, (char *[]){ "p", "-c", (char *)p,
								       "--max-msg-size", "384",
								       NULL }, tmpdir),
			 0);
	assert_int_equal(c.max_msg_size, 384);
}

static void test_validate_keepalive_below_idle_timeout(void **state)
{
	struct proto_cfg c;

	(void)state;
	valid_cfg(&c);
	c.keepalive_ms = 30000;
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("keepalive_ms = 30000: expected less than idle_timeout_ms = 30000");
	c.idle_timeout_ms = 0; /* never times out: any keepalive */
	assert_int_equal(proto_cfg_validate(&c), 0);
	c.idle_timeout_ms = 100;
	c.keepalive_ms = 0; /* no keepalives */
	assert_int_equal(proto_cfg_validate(&c), 0);
}

static void test_validate_rechecks_field_ranges(void **state)
{
	struct proto_cfg c;

	(void)state;
	valid_cfg(&c);
	c.channels = 0;
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("channels = 0: out of range or malformed");
	valid_cfg(&c);
	c.channel_buffers = 4095;
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	valid_cfg(&c);
	c.buffer_size = 4097;
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	valid_cfg(&c);
	c.cc = (enum proto_cc)2;
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("cc = ?");
	valid_cfg(&c);
	c.listen_ports = (struct mn_conf_port_range){ 10, 9 };
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("listen_ports = 10-9");
	valid_cfg(&c);
	c.ip = 0xe0000001;
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("ip = 224.0.0.1: expected a unicast IPv4 address");
	valid_cfg(&c);
	snprintf(c.name, sizeof(c.name), "Alice");
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("name = Alice");
	valid_cfg(&c);
	memset(c.runtime_dir, 'x', sizeof(c.runtime_dir));
	assert_int_equal(proto_cfg_validate(&c), -EINVAL);
	assert_log_contains("(not terminated)");
}

/* ---- command line ------------------------------------------------------------ */

#define ARGV(...) ((char *[]){ "machnet-proto", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "machnet-proto", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE_ARGS(c, ...) proto_cfg_parse_args((c), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))
#define PARSE_CMDLINE(c, ...) \
	proto_cfg_parse_cmdline_at((c), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), tmpdir)

static void test_cmdline_overrides_file(void **state)
{
	const char *p = write_cfg(full_file);
	struct proto_cfg c;

	(void)state;
	assert_int_equal(PARSE_CMDLINE(&c, "-c", (char *)p, "--name", "carol", "--ip",
				       "192.168.1.2", "--runtime-dir", "/tmp/mn",
				       "--listen-ports", "100-199", "--ephemeral-ports=200-299",
				       "--app-uid", "7", "--app-gid", "any", "--log-level", "warn",
				       "--poll-mode", "yield", "--spin-us", "5", "--sleep-max-us",
				       "6", "--channels", "9", "--flows", "10", "--channel-buffers",
				       "64", "--buffer-size", "128", "--max-msg-size", "3584",
				       "--frames", "128", "--cc", "swift", "--window", "16",
				       "--init-window", "2", "--rto-min-us", "100", "--rto-max-us",
				       "300", "--rto-init-us", "200", "--max-retries", "3",
				       "--target-delay-us", "40", "--keepalive-ms", "50",
				       "--idle-timeout-ms", "60"),
			 0);
	assert_string_equal(c.name, "carol");
	assert_int_equal(c.ip, 0xc0a80102);
	assert_string_equal(c.runtime_dir, "/tmp/mn");
	assert_int_equal(c.listen_ports.lo, 100);
	assert_int_equal(c.listen_ports.hi, 199);
	assert_int_equal(c.ephemeral_ports.lo, 200);
	assert_int_equal(c.ephemeral_ports.hi, 299);
	assert_int_equal(c.app_uid, 7);
	assert_true(c.app_gid == PROTO_ANY_GID);
	assert_int_equal(c.log_level, MN_LOG_WARN);
	assert_int_equal(c.poll_mode, PROTO_POLL_YIELD);
	assert_int_equal(c.spin_us, 5);
	assert_int_equal(c.sleep_max_us, 6);
	assert_int_equal(c.channels, 9);
	assert_int_equal(c.flows, 10);
	assert_int_equal(c.channel_buffers, 64);
	assert_int_equal(c.buffer_size, 128);
	assert_int_equal(c.max_msg_size, 3584);
	assert_int_equal(c.frames, 128);
	assert_int_equal(c.cc, PROTO_CC_SWIFT);
	assert_int_equal(c.window, 16);
	assert_int_equal(c.init_window, 2);
	assert_int_equal(c.rto_min_us, 100);
	assert_int_equal(c.rto_max_us, 300);
	assert_int_equal(c.rto_init_us, 200);
	assert_int_equal(c.max_retries, 3);
	assert_int_equal(c.target_delay_us, 40);
	assert_int_equal(c.keepalive_ms, 50);
	assert_int_equal(c.idle_timeout_ms, 60);
}

static void test_cmdline_keeps_what_it_does_not_name(void **state)
{
	const char *p = write_cfg(full_file);
	struct proto_cfg c;

	(void)state;
	assert_int_equal(PARSE_CMDLINE(&c, "--config", (char *)p, "--flows", "5"), 0);
	assert_int_equal(c.flows, 5);
	assert_string_equal(c.name, "bob-2");
	assert_int_equal(c.buffer_size, 1536);
	assert_int_equal(c.cc, PROTO_CC_FIXED);
}

static void test_tenant_option_reads_its_file(void **state)
{
	struct proto_cfg c;

	(void)state;
	write_tenant("alice", BASE "[limits]\nflows = 77\n");
	assert_int_equal(PARSE_CMDLINE(&c, "--tenant", "alice"), 0);
	assert_string_equal(c.name, "alice");
	assert_int_equal(c.flows, 77);
	assert_int_equal(PARSE_CMDLINE(&c, "-t", "alice", "--flows", "78"), 0);
	assert_int_equal(c.flows, 78);
}

static void test_tenant_file_may_leave_out_the_name(void **state)
{
	struct proto_cfg c;

	(void)state;
	write_tenant("dave", "[tenant]\nip = 10.0.0.4\n");
	assert_int_equal(PARSE_CMDLINE(&c, "--tenant", "dave"), 0);
	assert_string_equal(c.name, "dave");
}

static void test_tenant_name_mismatch_refused(void **state)
{
	struct proto_cfg c;

	(void)state;
	write_tenant("erin", BASE); /* names alice */
	assert_int_equal(PARSE_CMDLINE(&c, "--tenant", "erin"), -EINVAL);
	assert_log_contains("--tenant erin: the configuration names tenant alice");
	write_tenant("frank", "[tenant]\nip = 10.0.0.4\n");
	assert_int_equal(PARSE_CMDLINE(&c, "--tenant", "frank", "--name", "gina"), -EINVAL);
	assert_log_contains("names tenant gina");
}

static void test_tenant_missing_file_enoent(void **state)
{
	char path[128];
	struct proto_cfg c;

	(void)state;
	snprintf(path, sizeof(path), "%s/nobody.ini", tmpdir);
	assert_int_equal(PARSE_CMDLINE(&c, "--tenant", "nobody"), -ENOENT);
	assert_log_contains(path);
	assert_log_contains("No such file");
	assert_int_equal(PARSE_CMDLINE(&c, "-c", path), -ENOENT);
}

static void test_tenant_bad_name_refused(void **state)
{
	struct proto_cfg c;

	(void)state;
	assert_int_equal(PARSE_CMDLINE(&c, "--tenant", "../../etc/passwd"), -EINVAL);
	assert_log_contains("--tenant ../../etc/passwd: expected a tenant name of 1..31");
	assert_int_equal(PARSE_CMDLINE(&c, "--tenant", "Alice"), -EINVAL);
	assert_int_equal(PARSE_CMDLINE(&c, "--tenant", ""), -EINVAL);
}

static void test_config_option_wins_over_tenant_file(void **state)
{
	const char *p = write_cfg(BASE "[limits]\nflows = 11\n");
	struct proto_cfg c;

	(void)state;
	write_tenant("alice", BASE "[limits]\nflows = 22\n");
	assert_int_equal(PARSE_CMDLINE(&c, "-t", "alice", "-c", (char *)p), 0);
	assert_int_equal(c.flows, 11);
}

static void test_no_file_needs_name_and_ip_options(void **state)
{
	struct proto_cfg c;

	(void)state;
	assert_int_equal(PARSE_CMDLINE(&c, "--name", "alice", "--ip", "10.0.0.1"), 0);
	assert_log_contains("no config file");
	assert_string_equal(c.name, "alice");
	assert_int_equal(c.channels, 64);
	assert_int_equal(proto_cfg_parse_cmdline_at(&c, 1, ARGV(NULL), tmpdir), -EINVAL);
	assert_log_contains("no tenant name");
	assert_int_equal(PARSE_CMDLINE(&c, "--name", "alice"), -EINVAL);
	assert_log_contains("no ip address");
}

static void test_cmdline_validates_result(void **state)
{
	const char *p = write_cfg(BASE);
	struct proto_cfg c;

	(void)state;
	/* The file's default listen range now overlaps the ephemeral one. */
	assert_int_equal(PARSE_CMDLINE(&c, "-c", (char *)p, "--ephemeral-ports", "5990-6010"),
			 -EINVAL);
	assert_log_contains("share 5990-5999");
}

static void test_broken_file_refused(void **state)
{
	const char *p = write_cfg(BASE "[limits]\nflows = many\n");
	struct proto_cfg c;

	(void)state;
	assert_int_equal(PARSE_CMDLINE(&c, "-c", (char *)p), -EINVAL);
	assert_logged_at(p, 5, "[limits] flows = many");
}

/*
 * Run proto_cfg_parse_cmdline_at(argv) with stdout in a pipe; the output
 * (less than a pipe's buffer) lands in @out. No assertion may fire while
 * stdout is redirected.
 */
static int cmdline_stdout(int argc, char **argv, char *out, size_t len)
{
	struct proto_cfg c;
	int pfd[2], saved, rc;
	ssize_t n;
	size_t got = 0;

	assert_int_equal(pipe(pfd), 0);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(pfd[1], STDOUT_FILENO), STDOUT_FILENO);
	close(pfd[1]);
	rc = proto_cfg_parse_cmdline_at(&c, argc, argv, tmpdir);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	while (got < len - 1 && (n = read(pfd[0], out + got, len - 1 - got)) > 0)
		got += (size_t)n;
	close(pfd[0]);
	out[got] = '\0';
	return rc;
}

static const char *const long_options[] = {
	"--config",	   "--tenant",	     "--name",		"--runtime-dir",
	"--ip",		   "--listen-ports", "--ephemeral-ports", "--app-uid",
	"--app-gid",	   "--log-level",    "--poll-mode",	"--spin-us",
	"--sleep-max-us",  "--channels",     "--flows",		"--channel-buffers",
	"--buffer-size",   "--max-msg-size", "--frames",	"--cc",
	"--window",	   "--init-window",  "--rto-min-us",	"--rto-max-us",
	"--rto-init-us",   "--max-retries",  "--target-delay-us", "--keepalive-ms",
	"--idle-timeout-ms", "--help",	     "--version",
};

static void test_help_returns_1_and_lists_every_option(void **state)
{
	static char out[16384];

	(void)state;
	assert_int_equal(cmdline_stdout(ARGC("--help"), ARGV("--help"), out, sizeof(out)), 1);
	assert_non_null(strstr(out, "Usage: machnet-proto"));
	for (size_t i = 0; i < sizeof(long_options) / sizeof(long_options[0]); i++) {
		char needle[64];

		/* Listed as an option: at the start of its help line. */
		snprintf(needle, sizeof(needle), "%s ", long_options[i]);
		if (!strstr(out, needle))
			fail_msg("--help does not list %s", long_options[i]);
	}
	assert_non_null(strstr(out, "-c, --config FILE"));
	assert_non_null(strstr(out, "-t, --tenant NAME"));
	assert_non_null(strstr(out, "-h, --help"));
	assert_non_null(strstr(out, "-V, --version"));
	/* An option too long for its column gets its help on the next line. */
	assert_non_null(strstr(out, "      --ephemeral-ports LO-HI\n"
				    "                            local UDP ports"));
}

static void test_usage_lists_every_file_key(void **state)
{
	static const char *const keys[] = {
		"[tenant]",	 "name",	"runtime_dir",	   "ip",	  "listen_ports",
		"ephemeral_ports", "app_uid",	"app_gid",	   "log_level",	  "poll_mode",
		"spin_us",	 "sleep_max_us", "[limits]",	   "channels",	  "flows",
		"channel_buffers", "buffer_size", "max_msg_size",  "frames",	  "[transport]",
		"cc",		 "window",	"init_window",	   "rto_min_us",  "rto_max_us",
		"rto_init_us",	 "max_retries", "target_delay_us", "keepalive_ms",
		"idle_timeout_ms",
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	proto_cfg_usage(f, "proto-test");
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(buf, "Usage: proto-test"));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char needle[64];

		snprintf(needle, sizeof(needle), "\n  %s%s", keys[i], keys[i][0] == '[' ? "\n" : " ");
		if (!strstr(buf, needle))
			fail_msg("usage does not list key %s", keys[i]);
	}
	assert_non_null(strstr(buf, "  name            required: "));
	assert_non_null(strstr(buf, "  channels        1..1024, default 64: "));
	assert_non_null(strstr(buf, "16..1048576, power of two, default 8192: "));
	assert_non_null(strstr(buf, "64..1048576, multiple of 64, default 4096: "));
	assert_non_null(strstr(buf, "  listen_ports    default 5000-5999: "));
	assert_non_null(strstr(buf, "  app_uid         default any: "));
	assert_non_null(strstr(buf, "  cc              default swift: "));
	free(buf);
}

static void test_help_works_with_broken_config(void **state)
{
	static char out[16384];
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/absent.ini", tmpdir);
	assert_int_equal(cmdline_stdout(ARGC("-c", path, "--flows", "x", "-t", "B/", "-h"),
					ARGV("-c", path, "--flows", "x", "-t", "B/", "-h"), out,
					sizeof(out)),
			 1);
	assert_non_null(strstr(out, "--flows"));
}

static void test_version_returns_1(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(cmdline_stdout(ARGC("--version"), ARGV("--version"), out, sizeof(out)),
			 1);
	assert_int_equal(strncmp(out, "machnet-proto ", 14), 0);
	assert_true(isdigit((unsigned char)out[14]));
	assert_non_null(strchr(out, '\n'));
	assert_int_equal(strchr(out, '\n')[1], '\0');
}

static void test_unknown_option_einval(void **state)
{
	struct proto_cfg c;

	(void)state;
	proto_cfg_defaults(&c);
	assert_int_equal(PARSE_ARGS(&c, "--flows", "4", "--mtu", "1500"), -EINVAL);
	assert_log_contains("unknown or ambiguous option '--mtu'");
	assert_int_equal(PARSE_ARGS(&c, "-x"), -EINVAL);
	assert_log_contains("option '-x'");
	/* --rto-m: --rto-min-us or --rto-max-us. */
	assert_int_equal(PARSE_CMDLINE(&c, "--rto-m", "5"), -EINVAL);
	assert_log_contains("'--rto-m'");
}

static void test_missing_option_argument_einval(void **state)
{
	struct proto_cfg c;

	(void)state;
	proto_cfg_defaults(&c);
	assert_int_equal(PARSE_ARGS(&c, "--window"), -EINVAL);
	assert_log_contains("missing argument for option '--window'");
	assert_int_equal(PARSE_CMDLINE(&c, "-t"), -EINVAL);
	assert_log_contains("missing argument for option '-t'");
}

static void test_bad_option_value_einval(void **state)
{
	struct proto_cfg c;

	(void)state;
	proto_cfg_defaults(&c);
	assert_int_equal(PARSE_ARGS(&c, "--channels", "0"), -EINVAL);
	assert_string_equal(tu_log.msg, "--channels 0: expected an integer in 1..1024");
	assert_int_equal(PARSE_ARGS(&c, "--frames", "1000"), -EINVAL);
	assert_string_equal(tu_log.msg, "--frames 1000: expected a power of two in 64..16777216");
	assert_int_equal(PARSE_ARGS(&c, "--listen-ports", "9-1"), -EINVAL);
	assert_log_contains("--listen-ports 9-1: expected a port");
	assert_int_equal(PARSE_ARGS(&c, "--cc", "reno"), -EINVAL);
	assert_int_equal(PARSE_ARGS(&c, "--ip", "1.2.3"), -EINVAL);
	assert_int_equal(PARSE_ARGS(&c, "--name", "x y"), -EINVAL);
	assert_int_equal(PARSE_ARGS(&c, "--app-uid", "no-such-user-here"), -EINVAL);
}

static void test_stray_argument_einval(void **state)
{
	struct proto_cfg c;

	(void)state;
	proto_cfg_defaults(&c);
	assert_int_equal(PARSE_ARGS(&c, "--flows", "4", "alice"), -EINVAL);
	assert_log_contains("unexpected argument 'alice'");
}

static void test_config_or_tenant_given_twice_einval(void **state)
{
	struct proto_cfg c;

	(void)state;
	assert_int_equal(PARSE_CMDLINE(&c, "-c", "a", "--config", "b"), -EINVAL);
	assert_log_contains("--config given twice ('a', 'b')");
	assert_int_equal(PARSE_CMDLINE(&c, "-t", "a", "--tenant=b"), -EINVAL);
	assert_log_contains("--tenant given twice ('a', 'b')");
}

static void test_parse_args_error_leaves_cfg_unchanged(void **state)
{
	struct proto_cfg c, before;

	(void)state;
	proto_cfg_defaults(&c);
	memcpy(&before, &c, sizeof(c));
	assert_int_equal(PARSE_ARGS(&c, "--flows", "4", "--name", "zed", "--window", "0"),
			 -EINVAL);
	assert_memory_equal(&c, &before, sizeof(c));
}

static void test_parse_args_skips_config_and_tenant(void **state)
{
	struct proto_cfg c;

	(void)state;
	proto_cfg_defaults(&c);
	assert_int_equal(PARSE_ARGS(&c, "-c", "/nonexistent", "-t", "x", "--flows", "4"), 0);
	assert_int_equal(c.flows, 4);
	assert_string_equal(c.name, "");
}

/* ---- dump ------------------------------------------------------------------- */

struct dump_capture {
	unsigned int lines;
	char text[8192];
	size_t len;
};

static void dump_sink(enum mn_log_level level, const char *component, const char *msg,
		      void *ctx)
{
	struct dump_capture *d = ctx;

	if (level != MN_LOG_INFO || strcmp(component, "config") != 0)
		return;
	d->lines++;
	d->len += (size_t)snprintf(d->text + d->len, sizeof(d->text) - d->len, "%s\n", msg);
	if (d->len >= sizeof(d->text))
		d->len = sizeof(d->text) - 1;
}

static void test_dump_logs_every_item(void **state)
{
	static struct dump_capture d;
	struct proto_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, full_file, NULL), 0);
	memset(&d, 0, sizeof(d));
	mn_log_set_sink(dump_sink, &d);
	proto_cfg_dump(&c);
	tu_log_capture();
	assert_int_equal(d.lines, 11 + 6 + 10);
	assert_non_null(strstr(d.text, "name = bob-2\n"));
	assert_non_null(strstr(d.text, "ip = 10.0.1.7\n"));
	assert_non_null(strstr(d.text, "listen_ports = 6000-6099\n"));
	assert_non_null(strstr(d.text, "app_uid = 1000\n"));
	assert_non_null(strstr(d.text, "app_gid = 0\n"));
	assert_non_null(strstr(d.text, "poll_mode = busy\n"));
	assert_non_null(strstr(d.text, "log_level = debug\n"));
	assert_non_null(strstr(d.text, "buffer_size = 1536\n"));
	assert_non_null(strstr(d.text, "cc = fixed\n"));
	assert_non_null(strstr(d.text, "idle_timeout_ms = 60000\n"));
}

/* ---- ipc/conf types machnet-proto does not use ----------------------------------- */

struct bool_cfg {
	bool on;
};

static void bool_usage(FILE *f, const char *prog)
{
	fprintf(f, "%s\n", prog);
}

static const struct mn_conf_key bool_keys[] = {
	{ .name = "on", .opt = "on", .arg = "BOOL", .type = MN_CONF_BOOL,
	  MN_CONF_AT(struct bool_cfg, on), .help = "a switch" },
};

static const struct mn_conf_section bool_secs[] = {
	{ .name = "s", .keys = bool_keys, .nkeys = 1 },
};

static const struct mn_conf_schema bool_schema = {
	.comp = "config", .prog = "t", .version = "0", .secs = bool_secs, .nsecs = 1,
	.usage = bool_usage,
};

static void test_conf_bool_key(void **state)
{
	static const char *const yes[] = { "true", "Yes", "ON", "1" };
	static const char *const no[] = { "false", "no", "Off", "0" };
	struct bool_cfg b = { false };
	char text[64], val[16];
	const char *path;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), "[s]\non = %s\n", yes[i]);
		path = write_cfg(text);
		assert_int_equal(mn_conf_load(&bool_schema, path, &b, sizeof(b)), 0);
		assert_true(b.on);
		snprintf(text, sizeof(text), "[s]\non = %s\n", no[i]);
		path = write_cfg(text);
		assert_int_equal(mn_conf_load(&bool_schema, path, &b, sizeof(b)), 0);
		assert_false(b.on);
	}
	path = write_cfg("[s]\non = maybe\n");
	assert_int_equal(mn_conf_load(&bool_schema, path, &b, sizeof(b)), -EINVAL);
	assert_logged_at(path, 2, "[s] on = maybe: expected true or false");
	assert_int_equal(mn_conf_parse_args(&bool_schema, &b, sizeof(b), 3,
					    (char *[]){ "t", "--on", "yes", NULL }, NULL),
			 0);
	assert_true(b.on);
	mn_conf_format(&bool_keys[0], &b, val, sizeof(val));
	assert_string_equal(val, "true");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_defaults_need_only_name_and_ip),
		T(test_enum_names),
		T(test_full_file_round_trips),
		T(test_dist_example_loads_and_validates),
		T(test_minimal_file_accepted),
		T(test_names_are_lowercased_values_are_not),
		T(test_file_loads_over_current_values),
		T(test_failed_load_leaves_cfg_unchanged),
		T(test_bad_integer_message_names_file_line_key_value),
		T(test_non_integer_refused),
		T(test_every_integer_key_range_enforced),
		T(test_power_of_two_and_multiple_of_64_enforced),
		T(test_bad_ip_refused),
		T(test_port_ranges_parsed),
		T(test_bad_port_ranges_refused),
		T(test_app_uid_gid),
		T(test_bad_app_uid_gid_refused),
		T(test_bad_enums_refused),
		T(test_bad_strings_refused),
		T(test_longest_name_and_runtime_dir_accepted),
		T(test_unknown_key_refused_with_line),
		T(test_unknown_section_refused_with_line),
		T(test_key_outside_section_refused),
		T(test_repeated_key_and_section_refused),
		T(test_syntax_errors_refused_with_line),
		T(test_nul_byte_refused),
		T(test_missing_file_and_directory_refused),
		T(test_validate_accepts_valid),
		T(test_validate_port_ranges_must_not_overlap),
		T(test_validate_overlap_found_from_file),
		T(test_validate_rto_order),
		T(test_validate_init_window_within_window),
		T(test_validate_channel_bytes_capped),
		T(test_validate_max_msg_fits_half_a_channel),
		T(test_validate_buffer_math_from_file),
		T(test_validate_keepalive_below_idle_timeout),
		T(test_validate_rechecks_field_ranges),
		T(test_cmdline_overrides_file),
		T(test_cmdline_keeps_what_it_does_not_name),
		T(test_tenant_option_reads_its_file),
		T(test_tenant_file_may_leave_out_the_name),
		T(test_tenant_name_mismatch_refused),
		T(test_tenant_missing_file_enoent),
		T(test_tenant_bad_name_refused),
		T(test_config_option_wins_over_tenant_file),
		T(test_no_file_needs_name_and_ip_options),
		T(test_cmdline_validates_result),
		T(test_broken_file_refused),
		T(test_help_returns_1_and_lists_every_option),
		T(test_usage_lists_every_file_key),
		T(test_help_works_with_broken_config),
		T(test_version_returns_1),
		T(test_unknown_option_einval),
		T(test_missing_option_argument_einval),
		T(test_bad_option_value_einval),
		T(test_stray_argument_einval),
		T(test_config_or_tenant_given_twice_einval),
		T(test_parse_args_error_leaves_cfg_unchanged),
		T(test_parse_args_skips_config_and_tenant),
		T(test_dump_logs_every_item),
		T(test_conf_bool_key),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
