/* SPDX-License-Identifier: MIT */
/*
 * machnet-proto configuration: defaults, the tenant's INI file, command
 * line, cross-field checks. The machinery is ipc/conf; this file is the
 * schema of /etc/machnet/tenants/<name>.ini and the checks between keys.
 */
#include "proto_config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "channel.h"
#include "ctl.h"
#include "log.h"

#ifndef MACHNET_VERSION
#define MACHNET_VERSION "0.1.0"
#endif

#define COMP "config"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(PROTO_NAME_MAX == MN_CTL_NAME_MAX, "tenant names travel in HELLO");
_Static_assert(PROTO_ANY_UID == MN_CONF_ANY_ID && PROTO_ANY_GID == MN_CONF_ANY_ID,
	       "\"any\" is MN_CONF_ANY_ID");

/* <runtime_dir>/<name>.sock must fit sockaddr_un.sun_path with its NUL. */
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define RUNTIME_DIR_MAX (SUN_PATH_MAX - (1 + (PROTO_NAME_MAX - 1) + sizeof(".sock") - 1))
_Static_assert(RUNTIME_DIR_MAX == 70, "runtime_dir text below says 70");
_Static_assert(PROTO_NAME_MAX - 1 == 31, "name texts below say 31");

#define NAME_EXPECT "a tenant name of 1..31 characters from a-z 0-9 _ -"

/* Same rule as nicd's [tenant.NAME]: the name is given in HELLO. */
static bool tenant_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n >= PROTO_NAME_MAX)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static bool runtime_dir_ok(const char *s)
{
	return s[0] == '/' && strlen(s) <= RUNTIME_DIR_MAX;
}

/* ---- the schema ------------------------------------------------------------ */

static const char *const poll_names[] = {
	[PROTO_POLL_BUSY] = "busy",
	[PROTO_POLL_YIELD] = "yield",
	[PROTO_POLL_ADAPTIVE] = "adaptive",
	NULL,
};

static const char *const cc_names[] = {
	[PROTO_CC_SWIFT] = "swift",
	[PROTO_CC_FIXED] = "fixed",
	NULL,
};

const char *proto_poll_mode_name(enum proto_poll_mode m)
{
	return (unsigned int)m < ARRAY_SIZE(poll_names) - 1 ? poll_names[m] : "?";
}

const char *proto_cc_name(enum proto_cc cc)
{
	return (unsigned int)cc < ARRAY_SIZE(cc_names) - 1 ? cc_names[cc] : "?";
}

#define P(f) MN_CONF_AT(struct proto_cfg, f)

static const struct mn_conf_key tenant_keys[] = {
	{ .name = "name", .opt = "name", .arg = "NAME", .type = MN_CONF_STR,
	  .flags = MN_CONF_F_REQUIRED, P(name), .ok = tenant_name_ok,
	  .expect = NAME_EXPECT " (lowercase)",
	  .help = "the tenant: a [tenant.NAME] of nicd.ini" },
	{ .name = "runtime_dir", .opt = "runtime-dir", .arg = "DIR", .type = MN_CONF_STR,
	  P(runtime_dir), .ok = runtime_dir_ok,
	  .expect = "an absolute path of at most 70 characters",
	  .help = "directory of nicd.sock and <name>.sock" },
	{ .name = "ip", .opt = "ip", .arg = "IP", .type = MN_CONF_IPV4,
	  .flags = MN_CONF_F_REQUIRED, P(ip),
	  .help = "the tenant's IPv4 address, one of its ip in nicd.ini" },
	{ .name = "listen_ports", .opt = "listen-ports", .arg = "LO-HI",
	  .type = MN_CONF_PORT_RANGE, P(listen_ports),
	  .help = "UDP ports applications may listen on" },
	{ .name = "ephemeral_ports", .opt = "ephemeral-ports", .arg = "LO-HI",
	  .type = MN_CONF_PORT_RANGE, P(ephemeral_ports),
	  .help = "local UDP ports of outgoing flows" },
	{ .name = "app_uid", .opt = "app-uid", .arg = "USER", .type = MN_CONF_UID, P(app_uid),
	  .help = "applications allowed to attach: uid, user name or any" },
	{ .name = "app_gid", .opt = "app-gid", .arg = "GROUP", .type = MN_CONF_GID, P(app_gid),
	  .help = "applications allowed to attach: gid, group name or any" },
	{ .name = "log_level", .opt = "log-level", .arg = "LEVEL", .type = MN_CONF_LOG,
	  P(log_level), .help = "err, warn, info or debug" },
	{ .name = "poll_mode", .opt = "poll-mode", .arg = "MODE", .type = MN_CONF_ENUM,
	  P(poll_mode), .names = poll_names, .help = "busy, yield or adaptive (spin, then sleep)" },
	{ .name = "spin_us", .opt = "spin-us", .arg = "US", .type = MN_CONF_UINT, P(spin_us),
	  .min = 0, .max = 1000000, .help = "adaptive: idle time spinning before sleeping" },
	{ .name = "sleep_max_us", .opt = "sleep-max-us", .arg = "US", .type = MN_CONF_UINT,
	  P(sleep_max_us), .min = 1, .max = 1000000, .help = "adaptive: longest sleep when idle" },
};

static const struct mn_conf_key limits_keys[] = {
	{ .name = "channels", .opt = "channels", .arg = "N", .type = MN_CONF_UINT, P(channels),
	  .min = 1, .max = 1024, .help = "channels (attached application contexts) at once" },
	{ .name = "flows", .opt = "flows", .arg = "N", .type = MN_CONF_UINT, P(flows), .min = 1,
	  .max = 65536, .help = "flows at once, all channels together" },
	{ .name = "channel_buffers", .opt = "channel-buffers", .arg = "N", .type = MN_CONF_UINT,
	  .flags = MN_CONF_F_POW2, P(channel_buffers), .min = 16, .max = 1u << 20,
	  .help = "message buffers per channel" },
	{ .name = "buffer_size", .opt = "buffer-size", .arg = "BYTES", .type = MN_CONF_UINT,
	  P(buffer_size), .min = 64, .max = 1u << 20, .align = 64,
	  .help = "bytes per message buffer" },
	{ .name = "max_msg_size", .opt = "max-msg-size", .arg = "BYTES", .type = MN_CONF_UINT,
	  P(max_msg_size), .min = 1, .max = PROTO_MAX_MSG_SIZE,
	  .help = "largest message, at most half a channel's buffers" },
	{ .name = "frames", .opt = "frames", .arg = "N", .type = MN_CONF_UINT,
	  .flags = MN_CONF_F_POW2, P(frames), .min = 64, .max = 1u << 24,
	  .help = "frames of the nicd port (nicd's nframes_max allows them)" },
};

static const struct mn_conf_key transport_keys[] = {
	{ .name = "cc", .opt = "cc", .arg = "MODE", .type = MN_CONF_ENUM, P(cc),
	  .names = cc_names, .help = "congestion control: swift or fixed" },
	{ .name = "window", .opt = "window", .arg = "PKTS", .type = MN_CONF_UINT, P(window),
	  .min = 1, .max = PROTO_MAX_WINDOW, .help = "fixed: packets in flight per flow; swift: max cwnd" },
	{ .name = "init_window", .opt = "init-window", .arg = "PKTS", .type = MN_CONF_UINT,
	  P(init_window), .min = 1, .max = PROTO_MAX_WINDOW, .help = "swift: first cwnd, <= window" },
	{ .name = "rto_min_us", .opt = "rto-min-us", .arg = "US", .type = MN_CONF_UINT,
	  P(rto_min_us), .min = 10, .max = 60000000, .help = "lowest retransmission timeout" },
	{ .name = "rto_max_us", .opt = "rto-max-us", .arg = "US", .type = MN_CONF_UINT,
	  P(rto_max_us), .min = 10, .max = 60000000,
	  .help = "highest retransmission timeout (back-off stops)" },
	{ .name = "rto_init_us", .opt = "rto-init-us", .arg = "US", .type = MN_CONF_UINT,
	  P(rto_init_us), .min = 10, .max = 60000000,
	  .help = "retransmission timeout before an RTT sample" },
	{ .name = "max_retries", .opt = "max-retries", .arg = "N", .type = MN_CONF_UINT,
	  P(max_retries), .min = 1, .max = 1000,
	  .help = "retransmissions of a packet before the flow fails" },
	{ .name = "target_delay_us", .opt = "target-delay-us", .arg = "US", .type = MN_CONF_UINT,
	  P(target_delay_us), .min = 1, .max = 1000000, .help = "swift: the RTT it steers to" },
	{ .name = "keepalive_ms", .opt = "keepalive-ms", .arg = "MS", .type = MN_CONF_UINT,
	  P(keepalive_ms), .min = 0, .max = 3600000, .help = "probe an idle flow this often; 0: never" },
	{ .name = "idle_timeout_ms", .opt = "idle-timeout-ms", .arg = "MS", .type = MN_CONF_UINT,
	  P(idle_timeout_ms), .min = 0, .max = 86400000,
	  .help = "fail a flow that heard nothing this long; 0: never" },
};

static const struct mn_conf_section proto_sections[] = {
	{ .name = "tenant", .keys = tenant_keys, .nkeys = ARRAY_SIZE(tenant_keys) },
	{ .name = "limits", .keys = limits_keys, .nkeys = ARRAY_SIZE(limits_keys) },
	{ .name = "transport", .keys = transport_keys, .nkeys = ARRAY_SIZE(transport_keys) },
};

enum { OPT_CONFIG, OPT_TENANT, NOPTS };

static const struct mn_conf_opt proto_opts[NOPTS] = {
	[OPT_CONFIG] = { "config", 'c' },
	[OPT_TENANT] = { "tenant", 't' },
};

static const struct mn_conf_schema proto_schema = {
	.comp = COMP,
	.prog = "machnet-proto",
	.version = MACHNET_VERSION,
	.secs = proto_sections,
	.nsecs = ARRAY_SIZE(proto_sections),
	.opts = proto_opts,
	.nopts = NOPTS,
	.usage = proto_cfg_usage,
};

void proto_cfg_defaults(struct proto_cfg *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->runtime_dir, sizeof(c->runtime_dir), "/run/machnet");
	c->listen_ports = (struct mn_conf_port_range){ 5000, 5999 };
	c->ephemeral_ports = (struct mn_conf_port_range){ 40000, 40999 };
	c->app_uid = PROTO_ANY_UID;
	c->app_gid = PROTO_ANY_GID;
	c->log_level = MN_LOG_INFO;
	c->poll_mode = PROTO_POLL_ADAPTIVE;
	c->spin_us = 200;
	c->sleep_max_us = 1000;
	c->channels = 64;
	c->flows = 1024;
	c->channel_buffers = 8192;
	c->buffer_size = 4096;
	c->max_msg_size = PROTO_MAX_MSG_SIZE;
	c->frames = 4096;
	c->cc = PROTO_CC_SWIFT;
	c->window = 64;
	c->init_window = 8;
	c->rto_min_us = 1000;
	c->rto_max_us = 1000000;
	c->rto_init_us = 10000;
	c->max_retries = 15;
	c->target_delay_us = 100;
	c->keepalive_ms = 1000;
	c->idle_timeout_ms = 30000;
}

/* ---- file and command line ------------------------------------------------------ */

int proto_cfg_load(struct proto_cfg *c, const char *path)
{
	return mn_conf_load(&proto_schema, path, c, sizeof(*c));
}

int proto_cfg_parse_args(struct proto_cfg *c, int argc, char **argv)
{
	return mn_conf_parse_args(&proto_schema, c, sizeof(*c), argc, argv, NULL);
}

/*
 * The file to read: -c FILE, else <tenants_dir>/NAME.ini for --tenant NAME,
 * else none (""). --tenant also presets the name.
 */
static int pick_file(struct proto_cfg *c, const char **vals, const char *tenants_dir,
		     char *path, size_t len)
{
	const char *tenant = vals[OPT_TENANT];

	path[0] = '\0';
	if (tenant && !tenant_name_ok(tenant)) {
		mn_err(COMP, "--tenant %s: expected " NAME_EXPECT, tenant);
		return -EINVAL;
	}
	if (tenant)
		snprintf(c->name, sizeof(c->name), "%s", tenant);
	if (vals[OPT_CONFIG]) {
		snprintf(path, len, "%s", vals[OPT_CONFIG]);
	} else if (tenant &&
		   (size_t)snprintf(path, len, "%s/%s.ini", tenants_dir, tenant) >= len) {
		mn_err(COMP, "--tenant %s: the path %s/%s.ini is too long", tenant, tenants_dir,
		       tenant);
		return -ENAMETOOLONG;
	}
	return 0;
}

int proto_cfg_parse_cmdline_at(struct proto_cfg *c, int argc, char **argv,
			       const char *tenants_dir)
{
	const char *vals[NOPTS];
	char path[PATH_MAX];
	int rc;

	proto_cfg_defaults(c);
	/* First pass: --help, --version, --config, --tenant and bad options only. */
	rc = mn_conf_parse_args(&proto_schema, NULL, 0, argc, argv, vals);
	if (rc)
		return rc;
	rc = pick_file(c, vals, tenants_dir, path, sizeof(path));
	if (rc)
		return rc;
	if (path[0]) {
		rc = proto_cfg_load(c, path);
		if (rc)
			return rc;
	} else {
		mn_info(COMP, "no config file (-c FILE or --tenant NAME): using the defaults "
			      "and the command line");
	}
	rc = proto_cfg_parse_args(c, argc, argv);
	if (rc)
		return rc;
	if (vals[OPT_TENANT] && strcmp(c->name, vals[OPT_TENANT]) != 0) {
		mn_err(COMP, "--tenant %s: the configuration names tenant %s ([tenant] name "
			     "or --name): expected the same", vals[OPT_TENANT], c->name);
		return -EINVAL;
	}
	return proto_cfg_validate(c);
}

int proto_cfg_parse_cmdline(struct proto_cfg *c, int argc, char **argv)
{
	return proto_cfg_parse_cmdline_at(c, argc, argv, PROTO_TENANTS_DIR);
}

/* ---- cross-field checks ------------------------------------------------------- */

static int check_identity(const struct proto_cfg *c)
{
	char a[16];

	if (memchr(c->name, '\0', sizeof(c->name)) && !c->name[0]) {
		mn_err(COMP, "no tenant name: set [tenant] name, --name or --tenant NAME");
		return -EINVAL;
	}
	if (c->ip == 0) {
		mn_err(COMP, "no ip address: set [tenant] ip or --ip (the tenant's address, "
			     "e.g. 10.0.0.1)");
		return -EINVAL;
	}
	if (!mn_conf_ipv4_unicast(c->ip)) {
		mn_err(COMP, "ip = %s: expected a unicast IPv4 address",
		       mn_conf_ipv4_str(c->ip, a));
		return -EINVAL;
	}
	return 0;
}

/* "5000" or "5000-5999". */
static const char *range_str(unsigned int lo, unsigned int hi, char buf[12])
{
	if (lo == hi)
		snprintf(buf, 12, "%u", lo);
	else
		snprintf(buf, 12, "%u-%u", lo, hi);
	return buf;
}

static int check_ports(const struct proto_cfg *c)
{
	const struct mn_conf_port_range *l = &c->listen_ports, *e = &c->ephemeral_ports;
	unsigned int lo = l->lo > e->lo ? l->lo : e->lo;
	unsigned int hi = l->hi < e->hi ? l->hi : e->hi;
	char a[12], b[12], both[12];

	if (lo > hi)
		return 0;
	mn_err(COMP, "listen_ports %s and ephemeral_ports %s share %s: expected ranges that "
		     "do not overlap", range_str(l->lo, l->hi, a), range_str(e->lo, e->hi, b),
	       range_str(lo, hi, both));
	return -EINVAL;
}

static int check_limits(const struct proto_cfg *c)
{
	unsigned long long bytes = (unsigned long long)c->channel_buffers * c->buffer_size;

	if (bytes > PROTO_CHANNEL_BYTES_MAX) {
		mn_err(COMP, "channel_buffers * buffer_size = %u * %u = %llu bytes per channel: "
			     "expected at most %llu (1 GiB)", c->channel_buffers, c->buffer_size,
		       bytes, PROTO_CHANNEL_BYTES_MAX);
		return -EINVAL;
	}
	/* Half the pool is reserved for receiving (ipc/channel.h, budgets):
	 * a largest message must fit in either half. */
	if (mn_chan_nbufs_for(c->max_msg_size, mn_chan_payload(c->buffer_size)) >
	    c->channel_buffers / 2) {
		mn_err(COMP, "max_msg_size = %u needs %u buffers of %u B (%u B of data each): "
			     "expected at most half of channel_buffers = %u, so that one "
			     "message fits in each of the send and receive halves; raise "
			     "channel_buffers or buffer_size, or lower max_msg_size",
		       c->max_msg_size, mn_chan_nbufs_for(c->max_msg_size, mn_chan_payload(c->buffer_size)),
		       c->buffer_size, mn_chan_payload(c->buffer_size), c->channel_buffers);
		return -EINVAL;
	}
	return 0;
}

static int check_transport(const struct proto_cfg *c)
{
	if (c->init_window > c->window) {
		mn_err(COMP, "init_window = %u: expected at most window = %u", c->init_window,
		       c->window);
		return -EINVAL;
	}
	if (c->rto_min_us > c->rto_init_us || c->rto_init_us > c->rto_max_us) {
		mn_err(COMP, "rto_min_us = %u, rto_init_us = %u, rto_max_us = %u: expected "
			     "rto_min_us <= rto_init_us <= rto_max_us", c->rto_min_us,
		       c->rto_init_us, c->rto_max_us);
		return -EINVAL;
	}
	if (c->keepalive_ms && c->idle_timeout_ms && c->keepalive_ms >= c->idle_timeout_ms) {
		mn_err(COMP, "keepalive_ms = %u: expected less than idle_timeout_ms = %u "
			     "(or 0 in either to turn it off)", c->keepalive_ms,
		       c->idle_timeout_ms);
		return -EINVAL;
	}
	return 0;
}

int proto_cfg_validate(const struct proto_cfg *c)
{
	if (check_identity(c) || mn_conf_check(&proto_schema, c))
		return -EINVAL;
	if (check_ports(c) || check_limits(c) || check_transport(c))
		return -EINVAL;
	return 0;
}

/* ---- help and dump ------------------------------------------------------------ */

void proto_cfg_usage(FILE *f, const char *prog)
{
	struct proto_cfg *def = malloc(sizeof(*def));

	fprintf(f, "Usage: %s [OPTION]...\n"
		   "machnet-proto, the protocol server of one tenant: runs the transport (flows,\n"
		   "reliability, congestion control) for the tenant's applications and sends\n"
		   "its packets through machnet-nicd.\n\n"
		   "Options (each overrides the key of the same name in the file):\n"
		   "  -c, --config FILE         config file (default: the one of --tenant)\n"
		   "  -t, --tenant NAME         the tenant: read %s/NAME.ini\n"
		   "                            unless -c is given; the name must be NAME\n",
		prog, PROTO_TENANTS_DIR);
	mn_conf_usage_options(f, &proto_schema);
	fprintf(f, "  -h, --help                print this help and exit\n"
		   "  -V, --version             print the version and exit\n\n"
		   "Without -c or --tenant no file is read: --name and --ip are needed.\n\n"
		   "Config file keys (docs/config-proto.md has them all):\n");
	if (def)
		proto_cfg_defaults(def);
	for (size_t i = 0; i < ARRAY_SIZE(proto_sections); i++) {
		fprintf(f, "  [%s]\n", proto_sections[i].name);
		mn_conf_usage_keys(f, &proto_sections[i], def);
	}
	fprintf(f, "Cross-field rules: listen_ports and ephemeral_ports do not overlap;\n"
		   "channel_buffers * buffer_size <= 1 GiB; max_msg_size fits in\n"
		   "channel_buffers / 2 buffers (of buffer_size - 16 data bytes);\n"
		   "init_window <= window; rto_min_us <= rto_init_us <= rto_max_us;\n"
		   "keepalive_ms < idle_timeout_ms (unless either is 0).\n");
	free(def);
}

void proto_cfg_dump(const struct proto_cfg *c)
{
	mn_conf_dump(&proto_schema, c);
}
