/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for drivers/config: machnet-nicd's defaults, INI file, command
 * line and cross-field checks. Every refusal is checked for its return code
 * and for the log line naming file, line, key and value.
 *
 * Config files are written into a mkdtemp() directory, one mkstemp() file
 * per write, and removed after each test. NICD_EXAMPLE (set by meson) names
 * dist/nicd.ini.example, which must load and validate.
 */
#include "testutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"

#define MAX_FILES 64

static char tmpdir[64];
static char files[MAX_FILES][128];
static unsigned int nfiles;

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/nicdcfg.XXXXXX");
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

/* Write @text to a new file in tmpdir; returns its path (valid until teardown). */
static const char *write_cfg(const char *text)
{
	char *path;
	size_t len = strlen(text);
	int fd;

	assert_true(nfiles < MAX_FILES);
	path = files[nfiles];
	snprintf(path, sizeof(files[0]), "%s/nicdXXXXXX", tmpdir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	nfiles++;
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return path;
}

/* Load @text over the defaults into @c. */
static int load_text(struct nicd_cfg *c, const char *text, const char **path)
{
	const char *p = write_cfg(text);

	if (path)
		*path = p;
	nicd_cfg_defaults(c);
	return nicd_cfg_load(c, p);
}

/* Lines 1..3 of most files: a valid [nicd] section. */
#define BASE "[nicd]\ndevice = net_null0\nip = 10.0.0.1/24\n"

/* The last log line names "path:line:" and contains @what. */
static void assert_logged_at(const char *path, unsigned int line, const char *what)
{
	char where[192];

	snprintf(where, sizeof(where), "%s:%u: ", path, line);
	assert_log_contains(where);
	assert_log_contains(what);
}

/*
 * "[nicd]" with @key = @value on line 2, then the device and ip lines of
 * BASE unless @key is one of them: refused, naming file, line 2, key and
 * value.
 */
static void assert_nicd_value_refused(const char *key, const char *value)
{
	char text[512], what[256];
	struct nicd_cfg c;
	const char *path;

	snprintf(text, sizeof(text), "[nicd]\n%s = %s\n%s%s", key, value,
		 strcmp(key, "device") ? "device = net_null0\n" : "",
		 strcmp(key, "ip") ? "ip = 10.0.0.1/24\n" : "");
	tu_log_reset();
	assert_int_equal(load_text(&c, text, &path), -EINVAL);
	snprintf(what, sizeof(what), "[nicd] %s = %s: ", key, value);
	assert_logged_at(path, 2, what);
	assert_log_contains("expected ");
}

/* BASE, then "[tenant.t1]" with @key = @value on line 5: refused likewise. */
static void assert_tenant_value_refused(const char *key, const char *value)
{
	char text[1024], what[512];
	const char *path;
	struct nicd_cfg c;

	/* The value is parsed before the section is checked for missing keys. */
	snprintf(text, sizeof(text), BASE "[tenant.t1]\n%s = %s\n", key, value);
	tu_log_reset();
	assert_int_equal(load_text(&c, text, &path), -EINVAL);
	snprintf(what, sizeof(what), "[tenant.t1] %s = %s: ", key, value);
	assert_logged_at(path, 5, what);
	assert_log_contains("expected ");
}

/* ---- defaults ------------------------------------------------------------ */

static void test_defaults(void **state)
{
	struct nicd_cfg c;

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	nicd_cfg_defaults(&c);
	assert_string_equal(c.device, "");
	assert_string_equal(c.eal_args, "");
	assert_string_equal(c.file_prefix, "machnet-nicd");
	assert_int_equal(c.nips, 0);
	assert_int_equal(c.gateway, 0);
	assert_false(c.mac_set);
	assert_int_equal(c.mtu, 1500);
	assert_int_equal(c.queues, 1);
	assert_string_equal(c.lcores, "0");
	assert_int_equal(c.poll_mode, NICD_POLL_ADAPTIVE);
	assert_int_equal(c.spin_us, 200);
	assert_int_equal(c.sleep_max_us, 1000);
	assert_string_equal(c.runtime_dir, "/run/machnet");
	assert_int_equal(c.log_level, MN_LOG_INFO);
	assert_int_equal(c.arp_ttl_s, 60);
	assert_int_equal(c.arp_timeout_ms, 1000);
	assert_int_equal(c.nframes_max, 65536);
	assert_int_equal(c.ntenants, 0);
}

static void test_defaults_alone_fail_validation_for_want_of_device(void **state)
{
	struct nicd_cfg c;

	(void)state;
	nicd_cfg_defaults(&c);
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("no device");
}

static void test_poll_mode_names(void **state)
{
	(void)state;
	assert_string_equal(nicd_poll_mode_name(NICD_POLL_BUSY), "busy");
	assert_string_equal(nicd_poll_mode_name(NICD_POLL_YIELD), "yield");
	assert_string_equal(nicd_poll_mode_name(NICD_POLL_ADAPTIVE), "adaptive");
	assert_string_equal(nicd_poll_mode_name((enum nicd_poll_mode)42), "?");
}

/* ---- a full file ----------------------------------------------------------- */

static const char full_file[] =
	"; machnet-nicd test configuration\n"
	"[nicd]\n"
	"device = net_af_xdp0,iface=veth0\n"
	"eal_args = --no-huge -m 256\n"
	"file_prefix = nicd-a\n"
	"ip = 10.0.0.1/24, 10.0.1.1/16      ; comma-separated list\n"
	"gateway = 10.0.0.254\n"
	"mac = 02:00:00:AB:cd:01\n"
	"mtu = 9000\n"
	"queues = 2\n"
	"lcores = 0-1,3\n"
	"poll_mode = yield\n"
	"spin_us = 10\n"
	"sleep_max_us = 2000\n"
	"runtime_dir = /run/machnet-a\n"
	"log_level = debug\n"
	"arp_ttl = 30\n"
	"arp_timeout_ms = 500\n"
	"nframes_max = 4096\n"
	"\n"
	"[tenant.alice]\n"
	"uid = 1000\n"
	"gid = 1001\n"
	"ip = 10.0.0.1\n"
	"ports = 5000-5999, 7000\n"
	"\n"
	"# second tenant\n"
	"[tenant.bob]\n"
	"uid = root\n"
	"ip = 10.0.0.1, 10.0.1.1\n"
	"ports = 6000 - 6099\n";

static void test_full_file_round_trips(void **state)
{
	const uint8_t mac[6] = { 0x02, 0, 0, 0xab, 0xcd, 0x01 };
	const struct nicd_tenant_cfg *a, *b;
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, full_file, NULL), 0);
	assert_string_equal(c.device, "net_af_xdp0,iface=veth0");
	assert_string_equal(c.eal_args, "--no-huge -m 256");
	assert_string_equal(c.file_prefix, "nicd-a");
	assert_int_equal(c.nips, 2);
	assert_int_equal(c.ips[0], 0x0a000001);
	assert_int_equal(c.prefix_len[0], 24);
	assert_int_equal(c.ips[1], 0x0a000101);
	assert_int_equal(c.prefix_len[1], 16);
	assert_int_equal(c.gateway, 0x0a0000fe);
	assert_true(c.mac_set);
	assert_memory_equal(c.mac, mac, 6);
	assert_int_equal(c.mtu, 9000);
	assert_int_equal(c.queues, 2);
	assert_string_equal(c.lcores, "0-1,3");
	assert_int_equal(c.poll_mode, NICD_POLL_YIELD);
	assert_int_equal(c.spin_us, 10);
	assert_int_equal(c.sleep_max_us, 2000);
	assert_string_equal(c.runtime_dir, "/run/machnet-a");
	assert_int_equal(c.log_level, MN_LOG_DEBUG);
	assert_int_equal(c.arp_ttl_s, 30);
	assert_int_equal(c.arp_timeout_ms, 500);
	assert_int_equal(c.nframes_max, 4096);

	assert_int_equal(c.ntenants, 2);
	a = &c.tenants[0];
	assert_string_equal(a->name, "alice");
	assert_int_equal(a->uid, 1000);
	assert_int_equal(a->gid, 1001);
	assert_int_equal(a->nips, 1);
	assert_int_equal(a->ips[0], 0x0a000001);
	assert_int_equal(a->nranges, 2);
	assert_int_equal(a->ranges[0].lo, 5000);
	assert_int_equal(a->ranges[0].hi, 5999);
	assert_int_equal(a->ranges[1].lo, 7000);
	assert_int_equal(a->ranges[1].hi, 7000);
	b = &c.tenants[1];
	assert_string_equal(b->name, "bob");
	assert_int_equal(b->uid, 0);
	assert_true(b->gid == NICD_ANY_GID); /* gid defaults to any */
	assert_int_equal(b->nips, 2);
	assert_int_equal(b->ranges[0].lo, 6000);
	assert_int_equal(b->ranges[0].hi, 6099);

	assert_int_equal(nicd_cfg_validate(&c), 0);
}

static void test_dist_example_loads_and_validates(void **state)
{
	const char *path = getenv("NICD_EXAMPLE");
	struct nicd_cfg c;

	(void)state;
	if (!path)
		skip();
	nicd_cfg_defaults(&c);
	assert_int_equal(nicd_cfg_load(&c, path), 0);
	assert_int_equal(nicd_cfg_validate(&c), 0);
	assert_true(c.ntenants >= 1);
}

static void test_names_are_lowercased(void **state)
{
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, "[NICD]\nMTU = 9000\n[Tenant.Alice]\nUID = any\n"
				       "IP = 10.0.0.1\nPorts = 1\n", NULL), 0);
	assert_int_equal(c.mtu, 9000);
	assert_int_equal(c.ntenants, 1);
	assert_string_equal(c.tenants[0].name, "alice");
}

static void test_quoted_value_and_empty_file_accepted(void **state)
{
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, "[nicd]\neal_args = \"--log-level=8 ; x\"\n", NULL), 0);
	assert_string_equal(c.eal_args, "--log-level=8 ; x");
	assert_int_equal(load_text(&c, "", NULL), 0);
	assert_int_equal(c.mtu, 1500);
}

static void test_file_loads_over_current_values(void **state)
{
	struct nicd_cfg c;
	const char *p = write_cfg("[nicd]\nmtu = 2000\n");

	(void)state;
	nicd_cfg_defaults(&c);
	c.queues = 4;
	assert_int_equal(nicd_cfg_load(&c, p), 0);
	assert_int_equal(c.mtu, 2000);
	assert_int_equal(c.queues, 4);
}

static void test_failed_load_leaves_cfg_unchanged(void **state)
{
	struct nicd_cfg c, before;
	/* Fails at the last line, after the [nicd] keys were parsed. */
	const char *p = write_cfg(BASE "mtu = 2000\n[tenant.a]\nuid = any\nip = 10.0.0.1\n"
				       "ports = 0\n");

	(void)state;
	nicd_cfg_defaults(&c);
	memcpy(&before, &c, sizeof(c));
	assert_int_equal(nicd_cfg_load(&c, p), -EINVAL);
	assert_memory_equal(&c, &before, sizeof(c));
}

/* ---- bad values in [nicd] -------------------------------------------------- */

static void test_bad_integer_message_names_file_line_key_value(void **state)
{
	char expect[256];
	struct nicd_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "mtu = 70000\n", &path), -EINVAL);
	snprintf(expect, sizeof(expect),
		 "%s:4: [nicd] mtu = 70000: expected an integer in 576..9000", path);
	assert_string_equal(tu_log.msg, expect);
	assert_string_equal(tu_log.component, "config");
	assert_int_equal(tu_log.level, MN_LOG_ERR);
}

static void test_non_integer_refused(void **state)
{
	(void)state;
	assert_nicd_value_refused("mtu", "15x0");
	assert_nicd_value_refused("mtu", "1500.0");
	assert_nicd_value_refused("mtu", "0x5dc");
	assert_nicd_value_refused("queues", "");
	assert_nicd_value_refused("queues", "one");
}

static void test_signed_integer_refused(void **state)
{
	(void)state;
	assert_nicd_value_refused("queues", "-1");
	assert_nicd_value_refused("queues", "+1");
	assert_nicd_value_refused("spin_us", "-0");
}

static void test_integer_overflow_refused(void **state)
{
	(void)state;
	assert_nicd_value_refused("nframes_max", "99999999999999999999999");
	assert_nicd_value_refused("spin_us", "4294967296");
}

/* Every integer key at its bounds: min and max accepted, outside refused. */
static void test_every_integer_key_range_enforced(void **state)
{
	static const struct {
		const char *key;
		unsigned long min, max;
	} keys[] = {
		{ "mtu", 576, 9000 },	       { "queues", 1, 8 },
		{ "spin_us", 0, 1000000 },     { "sleep_max_us", 1, 1000000 },
		{ "arp_ttl", 1, 86400 },       { "arp_timeout_ms", 1, 60000 },
		{ "nframes_max", 1, 1u << 24 },
	};
	char text[256], v[32];
	struct nicd_cfg c;

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(text, sizeof(text), BASE "%s = %lu\n", keys[i].key, keys[i].min);
		assert_int_equal(load_text(&c, text, NULL), 0);
		snprintf(text, sizeof(text), BASE "%s = %lu\n", keys[i].key, keys[i].max);
		assert_int_equal(load_text(&c, text, NULL), 0);
		assert_int_equal(nicd_cfg_validate(&c), 0);
		snprintf(v, sizeof(v), "%lu", keys[i].max + 1);
		assert_nicd_value_refused(keys[i].key, v);
		if (keys[i].min > 0) {
			snprintf(v, sizeof(v), "%lu", keys[i].min - 1);
			assert_nicd_value_refused(keys[i].key, v);
		}
	}
}

static void test_bad_ip_refused(void **state)
{
	(void)state;
	assert_nicd_value_refused("ip", "10.0.0.256/24");
	assert_nicd_value_refused("ip", "10.0.0/24");
	assert_nicd_value_refused("ip", "ten/24");
	assert_nicd_value_refused("ip", "0.0.0.0/24");
	assert_nicd_value_refused("ip", "224.0.0.1/24");
	assert_nicd_value_refused("ip", "255.255.255.255/24");
	assert_nicd_value_refused("ip", "10.0.0.1/24,,10.0.0.2/24");
	assert_nicd_value_refused("ip", "");
	assert_log_contains("expected ADDRESS/PREFIX");
}

static void test_bad_prefix_refused(void **state)
{
	(void)state;
	assert_nicd_value_refused("ip", "10.0.0.1");
	assert_nicd_value_refused("ip", "10.0.0.1/33");
	assert_nicd_value_refused("ip", "10.0.0.1/0");
	assert_nicd_value_refused("ip", "10.0.0.1/");
	assert_nicd_value_refused("ip", "10.0.0.1/2x");
	assert_log_contains("'10.0.0.1/2x': expected a prefix length 1..32");
}

static void test_ip_list_limits(void **state)
{
	(void)state;
	assert_nicd_value_refused("ip", "10.0.0.1/24, 10.0.0.1/16");
	assert_log_contains("each address once");
	assert_nicd_value_refused("ip", "10.0.0.1/24,10.0.0.2/24,10.0.0.3/24,10.0.0.4/24,"
				  "10.0.0.5/24,10.0.0.6/24,10.0.0.7/24,10.0.0.8/24,"
				  "10.0.0.9/24");
	assert_log_contains("at most 8 addresses");
}

static void test_bad_gateway_refused(void **state)
{
	struct nicd_cfg c;

	(void)state;
	assert_nicd_value_refused("gateway", "10.0.0");
	assert_nicd_value_refused("gateway", "10.0.0.1/24");
	assert_int_equal(load_text(&c, BASE "gateway = none\n", NULL), 0);
	assert_int_equal(c.gateway, 0);
}

static void test_bad_mac_refused(void **state)
{
	(void)state;
	assert_nicd_value_refused("mac", "02:00:00:00:00");
	assert_nicd_value_refused("mac", "02:00:00:00:00:01:02");
	assert_nicd_value_refused("mac", "02-00-00-00-00-01");
	assert_nicd_value_refused("mac", "02:00:00:00:00:0g");
	assert_nicd_value_refused("mac", "2:0:0:0:0:1");
	assert_nicd_value_refused("mac", "01:00:5e:00:00:01"); /* multicast */
	assert_nicd_value_refused("mac", "00:00:00:00:00:00");
}

static void test_bad_poll_mode_refused(void **state)
{
	struct nicd_cfg c;

	(void)state;
	assert_nicd_value_refused("poll_mode", "spin");
	assert_log_contains("expected busy, yield or adaptive");
	assert_int_equal(load_text(&c, BASE "poll_mode = busy\n", NULL), 0);
	assert_int_equal(c.poll_mode, NICD_POLL_BUSY);
}

static void test_bad_log_level_refused(void **state)
{
	struct nicd_cfg c;

	(void)state;
	assert_nicd_value_refused("log_level", "verbose");
	assert_log_contains("expected err, warn, info or debug");
	assert_int_equal(load_text(&c, BASE "log_level = warn\n", NULL), 0);
	assert_int_equal(c.log_level, MN_LOG_WARN);
}

static void test_bad_strings_refused(void **state)
{
	char longdir[128];

	(void)state;
	assert_nicd_value_refused("device", "net_null0 extra");
	assert_nicd_value_refused("device", "");
	assert_nicd_value_refused("file_prefix", "a/b");
	assert_nicd_value_refused("file_prefix", "");
	assert_nicd_value_refused("lcores", "0-");
	assert_nicd_value_refused("lcores", "3-1");
	assert_nicd_value_refused("lcores", "0,,1");
	assert_nicd_value_refused("lcores", "0,");
	assert_nicd_value_refused("runtime_dir", "run/machnet");
	memset(longdir, 'd', sizeof(longdir));
	longdir[0] = '/';
	longdir[71] = '\0'; /* 71 characters: one too many for a socket path */
	assert_nicd_value_refused("runtime_dir", longdir);
}

/* ---- file structure --------------------------------------------------------- */

static void test_unknown_key_refused_with_line(void **state)
{
	struct nicd_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "\n; comment\nmtuu = 1500\n", &path), -EINVAL);
	assert_logged_at(path, 6, "[nicd] mtuu: unknown key");
	assert_log_contains("mtu");
	assert_int_equal(load_text(&c, BASE "[tenant.a]\nport = 5000\n", &path), -EINVAL);
	assert_logged_at(path, 5, "[tenant.a] port: unknown key");
}

static void test_unknown_section_refused_with_line(void **state)
{
	struct nicd_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "[nic]\nmtu = 1500\n", &path), -EINVAL);
	assert_logged_at(path, 4, "unknown section [nic]");
	assert_int_equal(load_text(&c, BASE "[tenant]\n", &path), -EINVAL);
	assert_logged_at(path, 4, "unknown section [tenant]");
}

static void test_key_outside_section_refused(void **state)
{
	struct nicd_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, "; top\nmtu = 1500\n" BASE, &path), -EINVAL);
	assert_logged_at(path, 2, "outside any section");
}

static void test_repeated_key_refused(void **state)
{
	struct nicd_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "mtu = 1500\nMTU = 9000\n", &path), -EINVAL);
	assert_logged_at(path, 5, "[nicd] mtu: key given twice (first at line 4)");
}

static void test_repeated_section_refused(void **state)
{
	struct nicd_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "[nicd]\nmtu = 1500\n", &path), -EINVAL);
	assert_logged_at(path, 4, "[nicd]: section given twice (first at line 1)");
}

static void test_syntax_error_refused_with_line(void **state)
{
	struct nicd_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "mtu 1500\n", &path), -EINVAL);
	assert_logged_at(path, 4, "'mtu 1500': expected KEY = VALUE");
	assert_int_equal(load_text(&c, BASE "= 1500\n", &path), -EINVAL);
	assert_logged_at(path, 4, "expected KEY = VALUE");
	assert_int_equal(load_text(&c, BASE "[nicd\n", &path), -EINVAL);
	assert_logged_at(path, 4, "expected [SECTION]");
	assert_int_equal(load_text(&c, "[]\n", &path), -EINVAL);
	assert_logged_at(path, 1, "expected [nicd] or [tenant.NAME]");
	assert_int_equal(load_text(&c, "[nicd]x]\n", &path), -EINVAL);
	assert_logged_at(path, 1, "expected [nicd] or [tenant.NAME]");
}

static void test_comment_after_section_refused(void **state)
{
	struct nicd_cfg c;
	const char *path;

	(void)state;
	/* iniparser 4.1 calls this a syntax error without saying why. */
	assert_int_equal(load_text(&c, "[nicd]   ; the driver\nmtu = 1500\n", &path), -EINVAL);
	assert_logged_at(path, 1, "no comment after it");
}

static void test_continuation_line_refused(void **state)
{
	struct nicd_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "eal_args = -m 256 \\\n  --no-huge\n", &path),
			 -EINVAL);
	assert_logged_at(path, 4, "continuation lines are not supported");
	/* iniparser would join the next line into the comment. */
	assert_int_equal(load_text(&c, BASE "; old value \\\nmtu = 9000\n", &path), -EINVAL);
	assert_logged_at(path, 4, "continuation");
}

static void test_overlong_line_refused(void **state)
{
	char text[1200];
	struct nicd_cfg c;
	const char *path;

	(void)state;
	snprintf(text, sizeof(text), "[nicd]\neal_args = ");
	memset(text + strlen(text), 'x', 1050);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(load_text(&c, text, &path), -EINVAL);
	assert_logged_at(path, 2, "at most 1000 characters");
}

static void test_nul_byte_refused(void **state)
{
	static const char text[] = "[nicd]\nmtu = 15\0000\n";
	struct nicd_cfg c;
	char path[128];
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/nulXXXXXX", tmpdir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	nicd_cfg_defaults(&c);
	assert_int_equal(nicd_cfg_load(&c, path), -EINVAL);
	unlink(path);
	assert_logged_at(path, 2, "NUL byte");
}

static void test_missing_named_file_enoent(void **state)
{
	struct nicd_cfg c;
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/absent.ini", tmpdir);
	nicd_cfg_defaults(&c);
	assert_int_equal(nicd_cfg_load(&c, path), -ENOENT);
	assert_log_contains(path);
	assert_log_contains("No such file");
	assert_int_equal(nicd_cfg_parse_cmdline(&c, 3, (char *[]){ "nicd", "-c", path, NULL }),
			 -ENOENT);
}

static void test_unreadable_file_eacces(void **state)
{
	const char *path = write_cfg(BASE);
	struct nicd_cfg c;

	pid_t pid;
	int status;

	(void)state;
	assert_int_equal(chmod(path, 0), 0);
	if (geteuid() != 0) {
		nicd_cfg_defaults(&c);
		assert_int_equal(nicd_cfg_load(&c, path), -EACCES);
		assert_log_contains(path);
		return;
	}
	/* Root reads mode 000 files: try as nobody in a child. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(2);
		nicd_cfg_defaults(&c);
		_exit(nicd_cfg_load(&c, path) == -EACCES && strstr(tu_log.msg, path) ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_directory_refused(void **state)
{
	struct nicd_cfg c;

	(void)state;
	nicd_cfg_defaults(&c);
	assert_int_equal(nicd_cfg_load(&c, tmpdir), -EISDIR);
	assert_log_contains("expected a regular file");
}

/* ---- tenants ------------------------------------------------------------- */

static void test_tenant_uid_gid_numbers(void **state)
{
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, BASE "[tenant.a]\nuid = 1234\ngid = 0\nip = 10.0.0.1\n"
					    "ports = 1\n", NULL), 0);
	assert_int_equal(c.tenants[0].uid, 1234);
	assert_int_equal(c.tenants[0].gid, 0);
}

static void test_tenant_uid_gid_names(void **state)
{
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, BASE "[tenant.a]\nuid = root\ngid = root\nip = 10.0.0.1\n"
					    "ports = 1\n", NULL), 0);
	assert_int_equal(c.tenants[0].uid, 0);
	assert_int_equal(c.tenants[0].gid, 0);
}

static void test_tenant_uid_gid_any(void **state)
{
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, BASE "[tenant.a]\nuid = any\ngid = any\nip = 10.0.0.1\n"
					    "ports = 1\n", NULL), 0);
	assert_true(c.tenants[0].uid == NICD_ANY_UID);
	assert_true(c.tenants[0].gid == NICD_ANY_GID);
}

static void test_tenant_bad_uid_gid_refused(void **state)
{
	(void)state;
	assert_tenant_value_refused("uid", "no-such-user-here");
	assert_log_contains("user name known to this host");
	assert_tenant_value_refused("gid", "no-such-group-here");
	assert_log_contains("group name known to this host");
	assert_tenant_value_refused("uid", "4294967295"); /* that is "any" spelled as -1 */
	assert_tenant_value_refused("uid", "-1");
	assert_tenant_value_refused("uid", "12ab");
}

static void test_tenant_ports_list_and_ranges(void **state)
{
	struct nicd_cfg c;
	const struct nicd_tenant_cfg *t;

	(void)state;
	assert_int_equal(load_text(&c, BASE "[tenant.a]\nuid = any\nip = 10.0.0.1\n"
					    "ports = 1, 5000-5999,7000 ,65535, 100 - 200\n", NULL), 0);
	t = &c.tenants[0];
	assert_int_equal(t->nranges, 5);
	assert_int_equal(t->ranges[0].lo, 1);
	assert_int_equal(t->ranges[0].hi, 1);
	assert_int_equal(t->ranges[1].lo, 5000);
	assert_int_equal(t->ranges[1].hi, 5999);
	assert_int_equal(t->ranges[2].lo, 7000);
	assert_int_equal(t->ranges[2].hi, 7000);
	assert_int_equal(t->ranges[3].lo, 65535);
	assert_int_equal(t->ranges[4].lo, 100);
	assert_int_equal(t->ranges[4].hi, 200);
}

static void test_tenant_range_hi_below_lo_refused(void **state)
{
	(void)state;
	assert_tenant_value_refused("ports", "5999-5000");
	assert_log_contains("'5999-5000': expected a port 1..65535 or a range LO-HI");
}

static void test_tenant_port_zero_refused(void **state)
{
	(void)state;
	assert_tenant_value_refused("ports", "0");
	assert_tenant_value_refused("ports", "0-10");
}

static void test_tenant_port_above_65535_refused(void **state)
{
	(void)state;
	assert_tenant_value_refused("ports", "65536");
	assert_tenant_value_refused("ports", "60000-70000");
}

static void test_tenant_port_garbage_refused(void **state)
{
	(void)state;
	assert_tenant_value_refused("ports", "http");
	assert_tenant_value_refused("ports", "50x0");
	assert_tenant_value_refused("ports", "1-2-3");
	assert_tenant_value_refused("ports", "5000-");
	assert_tenant_value_refused("ports", "5000,");
	assert_tenant_value_refused("ports", "");
	assert_tenant_value_refused("ports", "+5");
}

static void test_tenant_too_many_ranges_refused(void **state)
{
	(void)state;
	assert_tenant_value_refused("ports", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17");
	assert_log_contains("at most 16 ports or ranges");
}

static void test_tenant_too_many_ips_refused(void **state)
{
	(void)state;
	assert_tenant_value_refused("ip", "10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5,"
					  "10.0.0.6,10.0.0.7,10.0.0.8,10.0.0.9");
	assert_log_contains("at most 8 addresses");
	assert_tenant_value_refused("ip", "10.0.0.1/24");
	assert_tenant_value_refused("ip", "10.0.0.1, 10.0.0.1");
}

static void test_too_many_tenants_refused(void **state)
{
	char *text = malloc(80 * (NICD_MAX_TENANTS + 1) + 64);
	struct nicd_cfg c;
	const char *path;
	size_t n;

	(void)state;
	assert_non_null(text);
	n = (size_t)sprintf(text, BASE);
	for (int i = 0; i <= NICD_MAX_TENANTS; i++)
		n += (size_t)sprintf(text + n, "[tenant.t%d]\nuid = any\nip = 10.0.0.1\nports = %d\n",
				     i, 1000 + i);
	assert_int_equal(load_text(&c, text, &path), -EINVAL);
	free(text);
	/* Tenant 64 (the 65th) starts at line 4 + 64 * 4. */
	assert_logged_at(path, 4 + NICD_MAX_TENANTS * 4, "[tenant.t64]: too many tenants");
}

static void test_exactly_max_tenants_accepted(void **state)
{
	char *text = malloc(80 * NICD_MAX_TENANTS + 64);
	struct nicd_cfg c;
	size_t n;

	(void)state;
	assert_non_null(text);
	n = (size_t)sprintf(text, BASE);
	for (int i = 0; i < NICD_MAX_TENANTS; i++)
		n += (size_t)sprintf(text + n, "[tenant.t%d]\nuid = any\nip = 10.0.0.1\nports = %d\n",
				     i, 1000 + i);
	assert_int_equal(load_text(&c, text, NULL), 0);
	free(text);
	assert_int_equal(c.ntenants, NICD_MAX_TENANTS);
	assert_int_equal(nicd_cfg_validate(&c), 0);
}

static void test_duplicate_tenant_refused(void **state)
{
	struct nicd_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "[tenant.a]\nuid = any\nip = 10.0.0.1\nports = 1\n"
					    "[tenant.A]\nuid = any\n", &path), -EINVAL);
	assert_logged_at(path, 8, "[tenant.a]: section given twice (first at line 4)");
}

static void test_invalid_tenant_name_refused(void **state)
{
	static const char *const names[] = {
		"tenant.", "tenant.a.b", "tenant.a b", "tenant.caf\xc3\xa9",
		"tenant.abcdefghijabcdefghijabcdefghij12", /* 32 characters */
	};
	char text[128];
	struct nicd_cfg c;
	const char *path;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(text, sizeof(text), BASE "[%s]\nuid = any\n", names[i]);
		assert_int_equal(load_text(&c, text, &path), -EINVAL);
		assert_logged_at(path, 4, "expected a tenant name of 1..31 characters");
		teardown(NULL);
	}
	/* 31 characters is fine. */
	assert_int_equal(load_text(&c, BASE "[tenant.abcdefghijabcdefghijabcdefghij1]\n"
					    "uid = any\nip = 10.0.0.1\nports = 1\n", NULL), 0);
}

static void test_tenant_missing_key_refused(void **state)
{
	struct nicd_cfg c;
	const char *path;

	(void)state;
	assert_int_equal(load_text(&c, BASE "[tenant.a]\nuid = any\nip = 10.0.0.1\n", &path),
			 -EINVAL);
	assert_logged_at(path, 4, "[tenant.a]: missing key 'ports'");
	assert_int_equal(load_text(&c, BASE "[tenant.a]\nip = 10.0.0.1\nports = 1\n", &path),
			 -EINVAL);
	assert_logged_at(path, 4, "[tenant.a]: missing key 'uid'");
}

static void test_tenant_ip_not_nicd_ip_refused(void **state)
{
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, BASE "[tenant.a]\nuid = any\nip = 10.0.0.2\nports = 1\n",
				   NULL), 0);
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("tenant a: ip 10.0.0.2: expected one of nicd's addresses (10.0.0.1/24)");
}

static void test_tenant_replaced_by_later_file(void **state)
{
	const char *p1 = write_cfg(BASE "[tenant.a]\nuid = 1\nip = 10.0.0.1\nports = 1\n"
				   "[tenant.b]\nuid = 2\nip = 10.0.0.1\nports = 2\n");
	const char *p2 = write_cfg("[tenant.a]\nuid = 3\nip = 10.0.0.1\nports = 3\n");
	struct nicd_cfg c;

	(void)state;
	nicd_cfg_defaults(&c);
	assert_int_equal(nicd_cfg_load(&c, p1), 0);
	assert_int_equal(nicd_cfg_load(&c, p2), 0);
	assert_int_equal(c.ntenants, 2);
	assert_string_equal(c.tenants[0].name, "a");
	assert_int_equal(c.tenants[0].uid, 3);
	assert_int_equal(c.tenants[0].ranges[0].lo, 3);
	assert_int_equal(c.tenants[1].uid, 2);
}

/* ---- nicd_cfg_validate ------------------------------------------------------- */

/* A valid config with two tenants on 10.0.0.1, built by hand. */
static void valid_cfg(struct nicd_cfg *c)
{
	nicd_cfg_defaults(c);
	snprintf(c->device, sizeof(c->device), "net_null0");
	c->ips[0] = 0x0a000001;
	c->prefix_len[0] = 24;
	c->ips[1] = 0x0a000101;
	c->prefix_len[1] = 24;
	c->nips = 2;
	c->ntenants = 2;
	for (unsigned int i = 0; i < 2; i++) {
		struct nicd_tenant_cfg *t = &c->tenants[i];

		snprintf(t->name, sizeof(t->name), "%c", 'a' + i);
		t->uid = NICD_ANY_UID;
		t->gid = NICD_ANY_GID;
		t->ips[0] = 0x0a000001;
		t->nips = 1;
		t->ranges[0] = (struct nicd_port_range){ (uint16_t)(5000 + 100 * i),
							 (uint16_t)(5010 + 100 * i) };
		t->nranges = 1;
	}
}

static void test_validate_accepts_valid(void **state)
{
	struct nicd_cfg c;

	(void)state;
	valid_cfg(&c);
	assert_int_equal(nicd_cfg_validate(&c), 0);
}

static void test_validate_missing_device(void **state)
{
	struct nicd_cfg c;

	(void)state;
	valid_cfg(&c);
	c.device[0] = '\0';
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("no device: set [nicd] device or --device");
}

static void test_validate_no_ip(void **state)
{
	struct nicd_cfg c;

	(void)state;
	valid_cfg(&c);
	c.nips = 0;
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("set [nicd] ip or --ip");
}

static void test_validate_gateway_outside_subnets(void **state)
{
	struct nicd_cfg c;

	(void)state;
	valid_cfg(&c);
	c.gateway = 0x0a000201; /* 10.0.2.1: neither 10.0.0.0/24 nor 10.0.1.0/24 */
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("gateway 10.0.2.1: expected an address inside one of nicd's subnets "
			    "(10.0.0.1/24, 10.0.1.1/24)");
	c.gateway = 0x0a0001fe; /* 10.0.1.254 */
	assert_int_equal(nicd_cfg_validate(&c), 0);
}

static void test_validate_gateway_is_own_address(void **state)
{
	struct nicd_cfg c;

	(void)state;
	valid_cfg(&c);
	c.gateway = 0x0a000001;
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("other than nicd's own");
}

static void test_validate_overlapping_tenants_refused(void **state)
{
	struct nicd_cfg c;

	(void)state;
	valid_cfg(&c);
	c.tenants[1].ranges[0] = (struct nicd_port_range){ 5005, 5020 };
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("tenants a and b may both claim 10.0.0.1:5005-5010");
	c.tenants[1].ranges[0] = (struct nicd_port_range){ 5010, 5010 };
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("tenants a and b may both claim 10.0.0.1:5010");
}

static void test_validate_same_ports_on_different_ips_accepted(void **state)
{
	struct nicd_cfg c;

	(void)state;
	valid_cfg(&c);
	c.tenants[1].ips[0] = 0x0a000101;
	c.tenants[1].ranges[0] = c.tenants[0].ranges[0];
	assert_int_equal(nicd_cfg_validate(&c), 0);
}

static void test_validate_overlap_found_from_file(void **state)
{
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(load_text(&c, BASE "[tenant.a]\nuid = any\nip = 10.0.0.1\n"
					    "ports = 5000-5999\n[tenant.b]\nuid = any\n"
					    "ip = 10.0.0.1\nports = 4000, 5999-6100\n", NULL), 0);
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("tenants a and b may both claim 10.0.0.1:5999");
}

static void test_validate_bad_tenant_by_hand(void **state)
{
	struct nicd_cfg c;

	(void)state;
	valid_cfg(&c);
	snprintf(c.tenants[1].name, sizeof(c.tenants[1].name), "a");
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("tenant a: defined twice");

	valid_cfg(&c);
	snprintf(c.tenants[1].name, sizeof(c.tenants[1].name), "B");
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("expected a name of 1..31 characters");

	valid_cfg(&c);
	c.tenants[0].ranges[0].lo = 0;
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("tenant a: ports 0-5010: expected 1 <= lo <= hi");

	valid_cfg(&c);
	c.tenants[0].ranges[0] = (struct nicd_port_range){ 10, 9 };
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);

	valid_cfg(&c);
	c.tenants[0].nranges = 0;
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
}

static void test_validate_rechecks_field_ranges(void **state)
{
	struct nicd_cfg c;

	(void)state;
	valid_cfg(&c);
	c.mtu = 100;
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("mtu = 100");
	valid_cfg(&c);
	c.queues = 9;
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	valid_cfg(&c);
	c.prefix_len[1] = 33;
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	valid_cfg(&c);
	c.ips[1] = c.ips[0];
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	valid_cfg(&c);
	memset(c.runtime_dir, 'x', sizeof(c.runtime_dir));
	assert_int_equal(nicd_cfg_validate(&c), -EINVAL);
	assert_log_contains("(not terminated)");
}

/* ---- command line ------------------------------------------------------------ */

#define ARGV(...) ((char *[]){ "machnet-nicd", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "machnet-nicd", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE_ARGS(c, ...) nicd_cfg_parse_args((c), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))
#define PARSE_CMDLINE(c, ...) \
	nicd_cfg_parse_cmdline_at((c), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), absent_default())

/* A default config path that does not exist. */
static const char *absent_default(void)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/no-default.ini", tmpdir);
	return path;
}

static void test_cmdline_overrides_file(void **state)
{
	const char *p = write_cfg(full_file);
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(PARSE_CMDLINE(&c, "-c", (char *)p, "--device", "0000:00:04.0",
				       "--mtu", "1400", "--queues=1", "--poll-mode", "busy",
				       "--gateway", "none", "--mac", "02:00:00:00:00:02",
				       "--eal-args", "--in-memory", "--file-prefix", "b",
				       "--lcores", "1", "--runtime-dir", "/tmp/mn",
				       "--log-level", "warn", "--spin-us", "0",
				       "--sleep-max-us", "5"),
			 0);
	assert_string_equal(c.device, "0000:00:04.0");
	assert_int_equal(c.mtu, 1400);
	assert_int_equal(c.queues, 1);
	assert_int_equal(c.poll_mode, NICD_POLL_BUSY);
	assert_int_equal(c.gateway, 0);
	assert_int_equal(c.mac[5], 2);
	assert_string_equal(c.eal_args, "--in-memory");
	assert_string_equal(c.file_prefix, "b");
	assert_string_equal(c.lcores, "1");
	assert_string_equal(c.runtime_dir, "/tmp/mn");
	assert_int_equal(c.log_level, MN_LOG_WARN);
	assert_int_equal(c.spin_us, 0);
	assert_int_equal(c.sleep_max_us, 5);
	/* What the command line does not name comes from the file. */
	assert_int_equal(c.arp_ttl_s, 30);
	assert_int_equal(c.nips, 2);
	assert_int_equal(c.ntenants, 2);
}

static void test_cmdline_ip_replaces_file_list_and_repeats(void **state)
{
	const char *p = write_cfg(BASE);
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(PARSE_CMDLINE(&c, "-c", (char *)p, "--ip", "10.1.0.1/16,10.2.0.1/16",
				       "--ip", "10.3.0.1/16"),
			 0);
	assert_int_equal(c.nips, 3);
	assert_int_equal(c.ips[0], 0x0a010001);
	assert_int_equal(c.ips[2], 0x0a030001);
}

static void test_cmdline_validates_result(void **state)
{
	const char *p = write_cfg(BASE "[tenant.a]\nuid = any\nip = 10.0.0.1\nports = 1\n");
	struct nicd_cfg c;

	(void)state;
	/* The file's tenant uses 10.0.0.1, which --ip takes away. */
	assert_int_equal(PARSE_CMDLINE(&c, "-c", (char *)p, "--ip", "10.9.0.1/16"), -EINVAL);
	assert_log_contains("tenant a: ip 10.0.0.1");
}

static void test_missing_default_file_accepted(void **state)
{
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(PARSE_CMDLINE(&c, "--device", "net_null0", "--ip", "10.0.0.1/24"), 0);
	assert_log_contains("no-default.ini: using the defaults");
	assert_string_equal(c.device, "net_null0");
	assert_int_equal(c.mtu, 1500);
}

static void test_present_default_file_read(void **state)
{
	const char *p = write_cfg(BASE "mtu = 1300\n");
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(nicd_cfg_parse_cmdline_at(&c, 1, ARGV(NULL), p), 0);
	assert_int_equal(c.mtu, 1300);
}

static void test_broken_default_file_refused(void **state)
{
	const char *p = write_cfg(BASE "mtu = huge\n");
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(nicd_cfg_parse_cmdline_at(&c, 1, ARGV(NULL), p), -EINVAL);
	assert_log_contains("mtu = huge");
}

/*
 * Run nicd_cfg_parse_cmdline_at(argv) with stdout in a pipe; the output
 * (less than a pipe's buffer) lands in @out. No assertion may fire while
 * stdout is redirected.
 */
static int cmdline_stdout(int argc, char **argv, char *out, size_t len)
{
	struct nicd_cfg c;
	int pfd[2], saved, rc;
	ssize_t n;
	size_t got = 0;

	assert_int_equal(pipe(pfd), 0);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(pfd[1], STDOUT_FILENO), STDOUT_FILENO);
	close(pfd[1]);
	rc = nicd_cfg_parse_cmdline_at(&c, argc, argv, absent_default());
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
	"--config",	"--device",    "--eal-args",	"--file-prefix", "--ip",
	"--gateway",	"--mac",       "--mtu",		"--queues",	 "--lcores",
	"--poll-mode",	"--spin-us",   "--sleep-max-us", "--runtime-dir", "--log-level",
	"--help",	"--version",
};

static void test_help_returns_1_and_lists_every_option(void **state)
{
	static char out[16384];

	(void)state;
	assert_int_equal(cmdline_stdout(ARGC("--help"), ARGV("--help"), out, sizeof(out)), 1);
	assert_non_null(strstr(out, "Usage: machnet-nicd"));
	for (size_t i = 0; i < sizeof(long_options) / sizeof(long_options[0]); i++)
		if (!strstr(out, long_options[i]))
			fail_msg("--help does not list %s", long_options[i]);
	assert_non_null(strstr(out, "-c, --config"));
	assert_non_null(strstr(out, "-h, --help"));
	assert_non_null(strstr(out, "-V, --version"));
}

static void test_usage_lists_every_file_key(void **state)
{
	static const char *const keys[] = {
		"device",	"eal_args", "file_prefix", "ip",	     "gateway",
		"mac",		"mtu",	    "queues",	   "lcores",	     "poll_mode",
		"spin_us",	"sleep_max_us", "runtime_dir", "log_level", "arp_ttl",
		"arp_timeout_ms", "nframes_max", "[tenant.NAME]", "uid", "gid", "ports",
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	nicd_cfg_usage(f, "nicd-test");
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(buf, "Usage: nicd-test"));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char needle[64];

		snprintf(needle, sizeof(needle), "\n  %s ", keys[i]);
		if (!strstr(buf, needle))
			fail_msg("usage does not list key %s", keys[i]);
	}
	assert_non_null(strstr(buf, "576..9000, default 1500"));
	free(buf);
}

static void test_help_works_with_broken_config(void **state)
{
	static char out[16384];
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/absent.ini", tmpdir);
	assert_int_equal(cmdline_stdout(ARGC("-c", path, "--mtu", "x", "-h"),
					ARGV("-c", path, "--mtu", "x", "-h"), out, sizeof(out)),
			 1);
	assert_non_null(strstr(out, "--device"));
}

static void test_version_returns_1(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(cmdline_stdout(ARGC("-V"), ARGV("-V"), out, sizeof(out)), 1);
	assert_int_equal(strncmp(out, "machnet-nicd ", 13), 0);
	assert_true(isdigit((unsigned char)out[13]));
	assert_non_null(strchr(out, '\n'));
	assert_int_equal(strchr(out, '\n')[1], '\0');
}

static void test_unknown_option_einval(void **state)
{
	struct nicd_cfg c;

	(void)state;
	nicd_cfg_defaults(&c);
	assert_int_equal(PARSE_ARGS(&c, "--mtu", "1400", "--bogus"), -EINVAL);
	assert_log_contains("unknown or ambiguous option '--bogus'");
	assert_int_equal(PARSE_ARGS(&c, "-x"), -EINVAL);
	assert_log_contains("option '-x'");
	assert_int_equal(PARSE_CMDLINE(&c, "--bogus=1"), -EINVAL);
	assert_log_contains("'--bogus=1'");
}

static void test_missing_option_argument_einval(void **state)
{
	struct nicd_cfg c;

	(void)state;
	nicd_cfg_defaults(&c);
	assert_int_equal(PARSE_ARGS(&c, "--mtu"), -EINVAL);
	assert_log_contains("missing argument for option '--mtu'");
	assert_int_equal(PARSE_CMDLINE(&c, "-c"), -EINVAL);
	assert_log_contains("missing argument for option '-c'");
}

static void test_bad_option_value_einval(void **state)
{
	struct nicd_cfg c;

	(void)state;
	nicd_cfg_defaults(&c);
	assert_int_equal(PARSE_ARGS(&c, "--mtu", "70000"), -EINVAL);
	assert_string_equal(tu_log.msg, "--mtu 70000: expected an integer in 576..9000");
	assert_int_equal(PARSE_ARGS(&c, "--ip", "10.0.0.1/40"), -EINVAL);
	assert_log_contains("--ip 10.0.0.1/40: '10.0.0.1/40': expected a prefix length");
	assert_int_equal(PARSE_ARGS(&c, "--poll-mode", "fast"), -EINVAL);
	assert_int_equal(PARSE_ARGS(&c, "--mac", "nope"), -EINVAL);
	assert_int_equal(PARSE_ARGS(&c, "--log-level", "loud"), -EINVAL);
}

static void test_stray_argument_einval(void **state)
{
	struct nicd_cfg c;

	(void)state;
	nicd_cfg_defaults(&c);
	assert_int_equal(PARSE_ARGS(&c, "--mtu", "1400", "extra"), -EINVAL);
	assert_log_contains("unexpected argument 'extra'");
}

static void test_config_given_twice_einval(void **state)
{
	const char *p = write_cfg(BASE);
	struct nicd_cfg c;

	(void)state;
	assert_int_equal(PARSE_CMDLINE(&c, "-c", (char *)p, "--config", (char *)p), -EINVAL);
	assert_log_contains("--config given twice");
}

static void test_parse_args_error_leaves_cfg_unchanged(void **state)
{
	struct nicd_cfg c, before;

	(void)state;
	nicd_cfg_defaults(&c);
	memcpy(&before, &c, sizeof(c));
	assert_int_equal(PARSE_ARGS(&c, "--mtu", "1400", "--ip", "10.0.0.1/24", "--queues", "0"),
			 -EINVAL);
	assert_memory_equal(&c, &before, sizeof(c));
}

static void test_parse_args_skips_config_option(void **state)
{
	struct nicd_cfg c;

	(void)state;
	nicd_cfg_defaults(&c);
	assert_int_equal(PARSE_ARGS(&c, "-c", "/nonexistent", "--mtu", "1400"), 0);
	assert_int_equal(c.mtu, 1400);
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
	struct nicd_cfg c;
	int rc;

	(void)state;
	rc = load_text(&c, full_file, NULL);
	assert_int_equal(rc, 0);
	memset(&d, 0, sizeof(d));
	mn_log_set_sink(dump_sink, &d);
	nicd_cfg_dump(&c);
	tu_log_capture();
	assert_int_equal(d.lines, 17 + 1 + 2); /* keys, tenant count, tenants */
	assert_non_null(strstr(d.text, "device = net_af_xdp0,iface=veth0\n"));
	assert_non_null(strstr(d.text, "ip = 10.0.0.1/24, 10.0.1.1/16\n"));
	assert_non_null(strstr(d.text, "mac = 02:00:00:ab:cd:01\n"));
	assert_non_null(strstr(d.text, "poll_mode = yield\n"));
	assert_non_null(strstr(d.text, "log_level = debug\n"));
	assert_non_null(strstr(d.text, "tenant alice: uid 1000, gid 1001, ip 10.0.0.1, "
				       "ports 5000-5999, 7000\n"));
	assert_non_null(strstr(d.text, "tenant bob: uid 0, gid any, ip 10.0.0.1, 10.0.1.1, "
				       "ports 6000-6099\n"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_defaults_alone_fail_validation_for_want_of_device),
		T(test_poll_mode_names),
		T(test_full_file_round_trips),
		T(test_dist_example_loads_and_validates),
		T(test_names_are_lowercased),
		T(test_quoted_value_and_empty_file_accepted),
		T(test_file_loads_over_current_values),
		T(test_failed_load_leaves_cfg_unchanged),
		T(test_bad_integer_message_names_file_line_key_value),
		T(test_non_integer_refused),
		T(test_signed_integer_refused),
		T(test_integer_overflow_refused),
		T(test_every_integer_key_range_enforced),
		T(test_bad_ip_refused),
		T(test_bad_prefix_refused),
		T(test_ip_list_limits),
		T(test_bad_gateway_refused),
		T(test_bad_mac_refused),
		T(test_bad_poll_mode_refused),
		T(test_bad_log_level_refused),
		T(test_bad_strings_refused),
		T(test_unknown_key_refused_with_line),
		T(test_unknown_section_refused_with_line),
		T(test_key_outside_section_refused),
		T(test_repeated_key_refused),
		T(test_repeated_section_refused),
		T(test_syntax_error_refused_with_line),
		T(test_comment_after_section_refused),
		T(test_continuation_line_refused),
		T(test_overlong_line_refused),
		T(test_nul_byte_refused),
		T(test_missing_named_file_enoent),
		T(test_unreadable_file_eacces),
		T(test_directory_refused),
		T(test_tenant_uid_gid_numbers),
		T(test_tenant_uid_gid_names),
		T(test_tenant_uid_gid_any),
		T(test_tenant_bad_uid_gid_refused),
		T(test_tenant_ports_list_and_ranges),
		T(test_tenant_range_hi_below_lo_refused),
		T(test_tenant_port_zero_refused),
		T(test_tenant_port_above_65535_refused),
		T(test_tenant_port_garbage_refused),
		T(test_tenant_too_many_ranges_refused),
		T(test_tenant_too_many_ips_refused),
		T(test_too_many_tenants_refused),
		T(test_exactly_max_tenants_accepted),
		T(test_duplicate_tenant_refused),
		T(test_invalid_tenant_name_refused),
		T(test_tenant_missing_key_refused),
		T(test_tenant_ip_not_nicd_ip_refused),
		T(test_tenant_replaced_by_later_file),
		T(test_validate_accepts_valid),
		T(test_validate_missing_device),
		T(test_validate_no_ip),
		T(test_validate_gateway_outside_subnets),
		T(test_validate_gateway_is_own_address),
		T(test_validate_overlapping_tenants_refused),
		T(test_validate_same_ports_on_different_ips_accepted),
		T(test_validate_overlap_found_from_file),
		T(test_validate_bad_tenant_by_hand),
		T(test_validate_rechecks_field_ranges),
		T(test_cmdline_overrides_file),
		T(test_cmdline_ip_replaces_file_list_and_repeats),
		T(test_cmdline_validates_result),
		T(test_missing_default_file_accepted),
		T(test_present_default_file_read),
		T(test_broken_default_file_refused),
		T(test_help_returns_1_and_lists_every_option),
		T(test_usage_lists_every_file_key),
		T(test_help_works_with_broken_config),
		T(test_version_returns_1),
		T(test_unknown_option_einval),
		T(test_missing_option_argument_einval),
		T(test_bad_option_value_einval),
		T(test_stray_argument_einval),
		T(test_config_given_twice_einval),
		T(test_parse_args_error_leaves_cfg_unchanged),
		T(test_parse_args_skips_config_option),
		T(test_dump_logs_every_item),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
