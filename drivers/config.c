/* SPDX-License-Identifier: MIT */
/*
 * machnet-nicd configuration: defaults, INI file, command line, checks.
 *
 * The machinery (the line-numbered scanner over iniparser, typed keys,
 * getopt, --help lines, the dump) is ipc/conf; this file is the schema of
 * nicd.ini, the [tenant.NAME] sections, and the cross-field checks.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "ctl.h"
#include "log.h"
#include "port.h"

#ifndef MACHNET_VERSION
#define MACHNET_VERSION "0.1.0"
#endif

#define COMP "config"

_Static_assert(NICD_MAX_QUEUES == MN_PORT_MAX_QUEUES, "queues bound is the port ABI's");
_Static_assert(NICD_NAME_MAX == MN_CTL_NAME_MAX, "tenant names travel in HELLO");
_Static_assert(sizeof(struct nicd_port_range) == sizeof(struct mn_conf_port_range) &&
		       offsetof(struct nicd_port_range, lo) ==
			       offsetof(struct mn_conf_port_range, lo) &&
		       offsetof(struct nicd_port_range, hi) ==
			       offsetof(struct mn_conf_port_range, hi),
	       "tenant ranges are MN_CONF_PORT_RANGES");
_Static_assert(NICD_ANY_UID == MN_CONF_ANY_ID && NICD_ANY_GID == MN_CONF_ANY_ID,
	       "\"any\" is MN_CONF_ANY_ID");

/* <runtime_dir>/<tenant>.sock must fit sockaddr_un.sun_path with its NUL. */
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define RUNTIME_DIR_MAX (SUN_PATH_MAX - (1 + (NICD_NAME_MAX - 1) + sizeof(".sock") - 1))

#define TENANT_PREFIX "tenant."
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- value syntax ---------------------------------------------------- */

static uint32_t prefix_mask(unsigned int len)
{
	return len == 0 ? 0 : ~(uint32_t)0 << (32 - len);
}

static int find_ip(const uint32_t *ips, unsigned int n, uint32_t ip)
{
	for (unsigned int i = 0; i < n; i++)
		if (ips[i] == ip)
			return (int)i;
	return -1;
}

static bool tenant_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n >= NICD_NAME_MAX)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static bool device_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (isspace((unsigned char)*s))
			return false;
	return true;
}

static bool file_prefix_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				  "0123456789._-") == n;
}

/* A DPDK -l list: N or N-M items (N <= M < 1024) separated by ','. */
static bool lcores_ok(const char *s)
{
	for (;;) {
		unsigned long lo, hi;
		char *end;

		if (!isdigit((unsigned char)*s))
			return false;
		lo = strtoul(s, &end, 10);
		hi = lo;
		s = end;
		if (*s == '-') {
			s++;
			if (!isdigit((unsigned char)*s))
				return false;
			hi = strtoul(s, &end, 10);
			s = end;
		}
		if (lo > hi || hi >= 1024)
			return false;
		if (*s == '\0')
			return true;
		if (*s != ',')
			return false;
		s++;
	}
}

static bool runtime_dir_ok(const char *s)
{
	return s[0] == '/' && strlen(s) <= RUNTIME_DIR_MAX;
}

/* ---- the schema --------------------------------------------------------- */

static const char *const poll_names[] = {
	[NICD_POLL_BUSY] = "busy",
	[NICD_POLL_YIELD] = "yield",
	[NICD_POLL_ADAPTIVE] = "adaptive",
	NULL,
};

const char *nicd_poll_mode_name(enum nicd_poll_mode m)
{
	if ((unsigned int)m >= ARRAY_SIZE(poll_names) - 1)
		return "?";
	return poll_names[m];
}

#define NICD(f) MN_CONF_AT(struct nicd_cfg, f)

static const struct mn_conf_key nicd_keys[] = {
	{ .name = "device", .opt = "device", .arg = "DEV", .type = MN_CONF_STR,
	  .flags = MN_CONF_F_REQUIRED, NICD(device), .ok = device_ok,
	  .expect = "a PCI address (0000:00:04.0) or a vdev string (net_af_xdp0,iface=eth1) "
		    "without blanks",
	  .help = "the port: PCI address or DPDK vdev string" },
	{ .name = "eal_args", .opt = "eal-args", .arg = "ARGS", .type = MN_CONF_STR,
	  NICD(eal_args), .expect = "text",
	  .help = "extra DPDK EAL arguments, space separated" },
	{ .name = "file_prefix", .opt = "file-prefix", .arg = "NAME", .type = MN_CONF_STR,
	  NICD(file_prefix), .ok = file_prefix_ok, .expect = "characters from A-Z a-z 0-9 . _ -",
	  .help = "DPDK --file-prefix; unique per nicd on a host" },
	{ .name = "ip", .opt = "ip", .arg = "IP/LEN", .type = MN_CONF_IP_PREFIXES,
	  .flags = MN_CONF_F_REQUIRED, NICD(ips),
	  .aux_off = offsetof(struct nicd_cfg, prefix_len),
	  .count_off = offsetof(struct nicd_cfg, nips),
	  .help = "our IPv4 addresses with prefix lengths, comma-separated" },
	{ .name = "gateway", .opt = "gateway", .arg = "IP", .type = MN_CONF_IPV4,
	  .flags = MN_CONF_F_NONE, NICD(gateway),
	  .help = "default gateway inside one of the subnets, or none" },
	{ .name = "mac", .opt = "mac", .arg = "MAC", .type = MN_CONF_MAC, NICD(mac),
	  .aux_off = offsetof(struct nicd_cfg, mac_set), .expect = "the port's",
	  .help = "source MAC of every frame" },
	{ .name = "mtu", .opt = "mtu", .arg = "N", .type = MN_CONF_UINT, NICD(mtu), .min = 576,
	  .max = 9000, .help = "IPv4 MTU; the port must support it" },
	{ .name = "queues", .opt = "queues", .arg = "N", .type = MN_CONF_UINT, NICD(queues),
	  .min = 1, .max = NICD_MAX_QUEUES, .help = "NIC queue pairs" },
	{ .name = "lcores", .opt = "lcores", .arg = "LIST", .type = MN_CONF_STR, NICD(lcores),
	  .ok = lcores_ok, .expect = "a DPDK core list such as 0, 0-3 or 1,3-4",
	  .help = "DPDK -l core list" },
	{ .name = "poll_mode", .opt = "poll-mode", .arg = "MODE", .type = MN_CONF_ENUM,
	  NICD(poll_mode), .names = poll_names,
	  .help = "busy, yield or adaptive (spin, then sleep)" },
	{ .name = "spin_us", .opt = "spin-us", .arg = "US", .type = MN_CONF_UINT, NICD(spin_us),
	  .min = 0, .max = 1000000, .help = "adaptive: idle time spinning before sleeping" },
	{ .name = "sleep_max_us", .opt = "sleep-max-us", .arg = "US", .type = MN_CONF_UINT,
	  NICD(sleep_max_us), .min = 1, .max = 1000000,
	  .help = "adaptive: longest sleep when idle" },
	{ .name = "runtime_dir", .opt = "runtime-dir", .arg = "DIR", .type = MN_CONF_STR,
	  NICD(runtime_dir), .ok = runtime_dir_ok,
	  .expect = "an absolute path of at most 70 characters",
	  .help = "directory of nicd.sock and the tenants' sockets" },
	{ .name = "log_level", .opt = "log-level", .arg = "LEVEL", .type = MN_CONF_LOG,
	  NICD(log_level), .help = "err, warn, info or debug" },
	{ .name = "arp_ttl", .type = MN_CONF_UINT, NICD(arp_ttl_s), .min = 1, .max = 86400,
	  .help = "seconds a neighbour entry lives" },
	{ .name = "arp_timeout_ms", .type = MN_CONF_UINT, NICD(arp_timeout_ms), .min = 1,
	  .max = 60000, .help = "milliseconds before an ARP resolution gives up" },
	{ .name = "nframes_max", .type = MN_CONF_UINT, NICD(nframes_max), .min = 1,
	  .max = 1u << 24, .help = "largest frame pool a tenant may register" },
};

_Static_assert(RUNTIME_DIR_MAX == 70, "runtime_dir text above says 70");

#define TENANT(f) MN_CONF_AT(struct nicd_tenant_cfg, f)

static const struct mn_conf_key tenant_keys[] = {
	{ .name = "uid", .type = MN_CONF_UID, TENANT(uid),
	  .missing = "a user id, a user name, or any" },
	{ .name = "gid", .type = MN_CONF_GID, TENANT(gid) },
	{ .name = "ip", .type = MN_CONF_IP_LIST, TENANT(ips),
	  .count_off = offsetof(struct nicd_tenant_cfg, nips),
	  .expect = "a unicast IPv4 address (one of [nicd] ip, without prefix length)",
	  .missing = "the tenant's addresses, each one of [nicd] ip" },
	{ .name = "ports", .type = MN_CONF_PORT_RANGES, TENANT(ranges),
	  .count_off = offsetof(struct nicd_tenant_cfg, nranges),
	  .missing = "the UDP ports or ranges it may claim, e.g. 5000-5999" },
};

_Static_assert(NICD_NAME_MAX - 1 == 31, "tenant name text below says 31");

static int apply_tenant(void *cfg, const struct mn_conf_file *f, unsigned int sec);

static const struct mn_conf_section nicd_sections[] = {
	{ .name = "nicd", .keys = nicd_keys, .nkeys = ARRAY_SIZE(nicd_keys) },
	{ .name = TENANT_PREFIX, .name_ok = tenant_name_ok,
	  .name_expect = "a tenant name of 1..31 characters from a-z 0-9 _ - "
			 "(names are lowercased)",
	  .keys = tenant_keys, .nkeys = ARRAY_SIZE(tenant_keys), .apply = apply_tenant },
};

static const struct mn_conf_opt nicd_opts[] = {
	{ "config", 'c' },
};

static const struct mn_conf_schema nicd_schema = {
	.comp = COMP,
	.prog = "machnet-nicd",
	.version = MACHNET_VERSION,
	.secs = nicd_sections,
	.nsecs = ARRAY_SIZE(nicd_sections),
	.opts = nicd_opts,
	.nopts = ARRAY_SIZE(nicd_opts),
	.usage = nicd_cfg_usage,
};

static const struct mn_conf_key *find_key(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(nicd_keys); i++)
		if (strcmp(nicd_keys[i].name, name) == 0)
			return &nicd_keys[i];
	return NULL;
}

void nicd_cfg_defaults(struct nicd_cfg *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->file_prefix, sizeof(c->file_prefix), "machnet-nicd");
	c->mtu = 1500;
	c->queues = 1;
	snprintf(c->lcores, sizeof(c->lcores), "0");
	c->poll_mode = NICD_POLL_ADAPTIVE;
	c->spin_us = 200;
	c->sleep_max_us = 1000;
	snprintf(c->runtime_dir, sizeof(c->runtime_dir), "/run/machnet");
	c->log_level = MN_LOG_INFO;
	c->arp_ttl_s = 60;
	c->arp_timeout_ms = 1000;
	c->nframes_max = 65536;
}

/* ---- loading ------------------------------------------------------------- */

/*
 * [tenant.NAME]: parsed into a fresh tenant, which replaces a tenant of
 * that name already in @cfg (an earlier file), else is added.
 */
static int apply_tenant(void *cfg, const struct mn_conf_file *f, unsigned int sec)
{
	struct nicd_cfg *c = cfg;
	struct nicd_tenant_cfg t;
	unsigned int slot;
	int rc;

	memset(&t, 0, sizeof(t));
	snprintf(t.name, sizeof(t.name), "%s", mn_conf_sec_instance(f, sec));
	t.uid = NICD_ANY_UID;
	t.gid = NICD_ANY_GID;
	rc = mn_conf_apply(f, sec, &t);
	if (rc)
		return rc;
	for (slot = 0; slot < c->ntenants; slot++)
		if (strcmp(c->tenants[slot].name, t.name) == 0)
			break;
	if (slot == NICD_MAX_TENANTS) {
		mn_err(COMP, "%s:%u: [%s]: too many tenants: expected at most %d",
		       mn_conf_file_path(f), mn_conf_sec_line(f, sec), mn_conf_sec_name(f, sec),
		       NICD_MAX_TENANTS);
		return -EINVAL;
	}
	c->tenants[slot] = t;
	if (slot == c->ntenants)
		c->ntenants++;
	return 0;
}

int nicd_cfg_load(struct nicd_cfg *c, const char *path)
{
	return mn_conf_load(&nicd_schema, path, c, sizeof(*c));
}

/* ---- command line ---------------------------------------------------- */

int nicd_cfg_parse_args(struct nicd_cfg *c, int argc, char **argv)
{
	return mn_conf_parse_args(&nicd_schema, c, sizeof(*c), argc, argv, NULL);
}

int nicd_cfg_parse_cmdline_at(struct nicd_cfg *c, int argc, char **argv,
			      const char *default_path)
{
	const char *config[ARRAY_SIZE(nicd_opts)];
	int rc;

	nicd_cfg_defaults(c);
	/* First pass: --help, --version, --config and bad options only. */
	rc = mn_conf_parse_args(&nicd_schema, NULL, 0, argc, argv, config);
	if (rc)
		return rc;
	if (!config[0] && access(default_path, F_OK) != 0 && errno == ENOENT) {
		mn_info(COMP, "no %s: using the defaults and the command line", default_path);
	} else {
		rc = nicd_cfg_load(c, config[0] ? config[0] : default_path);
		if (rc)
			return rc;
	}
	rc = nicd_cfg_parse_args(c, argc, argv);
	if (rc)
		return rc;
	return nicd_cfg_validate(c);
}

int nicd_cfg_parse_cmdline(struct nicd_cfg *c, int argc, char **argv)
{
	return nicd_cfg_parse_cmdline_at(c, argc, argv, NICD_DEFAULT_CONFIG);
}

/* ---- cross-field checks ------------------------------------------------- */

/* The ranges and syntax the parsers enforce, for structs filled by hand. */
static int check_fields(const struct nicd_cfg *c)
{
	if (!memchr(c->device, '\0', sizeof(c->device)) || !c->device[0]) {
		mn_err(COMP, "no device: set [nicd] device or --device (a PCI address "
			     "or a vdev string such as net_af_xdp0,iface=eth1)");
		return -EINVAL;
	}
	return mn_conf_check(&nicd_schema, c);
}

static int check_addresses(const struct nicd_cfg *c)
{
	char a[INET_ADDRSTRLEN], list[256];
	const struct mn_conf_key *ipk = find_key("ip");
	bool in_subnet = false;

	if (c->nips == 0) {
		mn_err(COMP, "no ip address: set [nicd] ip or --ip (e.g. 10.0.0.1/24)");
		return -EINVAL;
	}
	if (c->nips > NICD_MAX_IPS) {
		mn_err(COMP, "%u ip addresses: expected at most %d", c->nips, NICD_MAX_IPS);
		return -EINVAL;
	}
	mn_conf_format(ipk, c, list, sizeof(list));
	for (unsigned int i = 0; i < c->nips; i++) {
		mn_conf_ipv4_str(c->ips[i], a);
		if (!mn_conf_ipv4_unicast(c->ips[i]) || c->prefix_len[i] < 1 ||
		    c->prefix_len[i] > 32 || find_ip(c->ips, i, c->ips[i]) >= 0) {
			mn_err(COMP, "ip = %s: %s/%u is not a unique unicast address with a "
				     "prefix length 1..32", list, a, c->prefix_len[i]);
			return -EINVAL;
		}
		if (c->gateway && ((c->gateway ^ c->ips[i]) & prefix_mask(c->prefix_len[i])) == 0)
			in_subnet = true;
	}
	if (c->gateway && (!in_subnet || find_ip(c->ips, c->nips, c->gateway) >= 0)) {
		mn_err(COMP, "gateway %s: expected an address inside one of nicd's subnets "
			     "(%s), other than nicd's own", mn_conf_ipv4_str(c->gateway, a), list);
		return -EINVAL;
	}
	return 0;
}

static int check_tenant(const struct nicd_cfg *c, unsigned int ti)
{
	const struct nicd_tenant_cfg *t = &c->tenants[ti];
	char a[INET_ADDRSTRLEN], list[256];

	if (!memchr(t->name, '\0', sizeof(t->name)) || !tenant_name_ok(t->name)) {
		mn_err(COMP, "tenant %u: expected a name of 1..%d characters from a-z 0-9 _ -",
		       ti, NICD_NAME_MAX - 1);
		return -EINVAL;
	}
	for (unsigned int j = 0; j < ti; j++) {
		if (strcmp(c->tenants[j].name, t->name) == 0) {
			mn_err(COMP, "tenant %s: defined twice", t->name);
			return -EINVAL;
		}
	}
	if (t->nips == 0 || t->nips > NICD_MAX_IPS || t->nranges == 0 ||
	    t->nranges > NICD_MAX_RANGES) {
		mn_err(COMP, "tenant %s: %u ips and %u port ranges: expected 1..%d and 1..%d",
		       t->name, t->nips, t->nranges, NICD_MAX_IPS, NICD_MAX_RANGES);
		return -EINVAL;
	}
	mn_conf_format(find_key("ip"), c, list, sizeof(list));
	for (unsigned int i = 0; i < t->nips; i++) {
		if (find_ip(c->ips, c->nips, t->ips[i]) < 0 || find_ip(t->ips, i, t->ips[i]) >= 0) {
			mn_err(COMP, "tenant %s: ip %s: expected one of nicd's addresses (%s), "
				     "each once", t->name, mn_conf_ipv4_str(t->ips[i], a), list);
			return -EINVAL;
		}
	}
	for (unsigned int i = 0; i < t->nranges; i++) {
		if (t->ranges[i].lo < 1 || t->ranges[i].lo > t->ranges[i].hi) {
			mn_err(COMP, "tenant %s: ports %u-%u: expected 1 <= lo <= hi", t->name,
			       t->ranges[i].lo, t->ranges[i].hi);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Two tenants allowed the same (ip, port) would race for it at claim time;
 * refuse that up front. O(T^2 * I^2 * R^2) in the worst case, a few million
 * comparisons at the limits, once at start-up.
 */
static int check_overlap(const struct nicd_tenant_cfg *a, const struct nicd_tenant_cfg *b)
{
	char ip[INET_ADDRSTRLEN];

	for (unsigned int i = 0; i < a->nips; i++) {
		if (find_ip(b->ips, b->nips, a->ips[i]) < 0)
			continue;
		for (unsigned int x = 0; x < a->nranges; x++) {
			for (unsigned int y = 0; y < b->nranges; y++) {
				unsigned int lo = a->ranges[x].lo > b->ranges[y].lo
							  ? a->ranges[x].lo : b->ranges[y].lo;
				unsigned int hi = a->ranges[x].hi < b->ranges[y].hi
							  ? a->ranges[x].hi : b->ranges[y].hi;

				if (lo > hi)
					continue;
				mn_conf_ipv4_str(a->ips[i], ip);
				if (lo == hi)
					mn_err(COMP, "tenants %s and %s may both claim %s:%u",
					       a->name, b->name, ip, lo);
				else
					mn_err(COMP, "tenants %s and %s may both claim %s:%u-%u",
					       a->name, b->name, ip, lo, hi);
				return -EINVAL;
			}
		}
	}
	return 0;
}

int nicd_cfg_validate(const struct nicd_cfg *c)
{
	if (check_fields(c) || check_addresses(c))
		return -EINVAL;
	if (c->ntenants > NICD_MAX_TENANTS) {
		mn_err(COMP, "%u tenants: expected at most %d", c->ntenants, NICD_MAX_TENANTS);
		return -EINVAL;
	}
	for (unsigned int i = 0; i < c->ntenants; i++)
		if (check_tenant(c, i))
			return -EINVAL;
	for (unsigned int i = 0; i < c->ntenants; i++)
		for (unsigned int j = i + 1; j < c->ntenants; j++)
			if (check_overlap(&c->tenants[i], &c->tenants[j]))
				return -EINVAL;
	return 0;
}

/* ---- help and dump ------------------------------------------------------- */

void nicd_cfg_usage(FILE *f, const char *prog)
{
	struct nicd_cfg *def = malloc(sizeof(*def));

	fprintf(f, "Usage: %s [OPTION]...\n"
		   "machnet-nicd, the NIC driver server: owns the NIC and moves frames between\n"
		   "it and the tenants' protocol servers.\n\n"
		   "Options (each overrides the [nicd] key of the same name in the file):\n"
		   "  -c, --config FILE         config file (default %s; a missing\n"
		   "                            default file is fine, a missing named one is not)\n",
		prog, NICD_DEFAULT_CONFIG);
	mn_conf_usage_options(f, &nicd_schema);
	fprintf(f, "  -h, --help                print this help and exit\n"
		   "  -V, --version             print the version and exit\n\n"
		   "Config file keys (docs/config-nicd.md has them all):\n"
		   "  [nicd]\n");
	if (def)
		nicd_cfg_defaults(def);
	mn_conf_usage_keys(f, &nicd_sections[0], def);
	fprintf(f, "  [tenant.NAME]   one per tenant; NAME: 1..%d of a-z 0-9 _ - (lowercased)\n"
		   "  uid             user allowed to connect: number, name or any (required)\n"
		   "  gid             group allowed to connect: number, name or any (default any)\n"
		   "  ip              addresses it may claim, each one of [nicd] ip (required)\n"
		   "  ports           UDP ports and LO-HI ranges it may claim, at most %d "
		   "(required)\n",
		NICD_NAME_MAX - 1, NICD_MAX_RANGES);
	free(def);
}

static void dump_tenant(const struct nicd_tenant_cfg *t)
{
	char val[ARRAY_SIZE(tenant_keys)][MN_CONF_VALUE_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(tenant_keys); i++)
		mn_conf_format(&tenant_keys[i], t, val[i], sizeof(val[i]));
	mn_info(COMP, "tenant %s: uid %s, gid %s, ip %s, ports %s", t->name, val[0], val[1],
		val[2], val[3]);
}

void nicd_cfg_dump(const struct nicd_cfg *c)
{
	mn_conf_dump(&nicd_schema, c);
	mn_info(COMP, "%u tenant%s", c->ntenants, c->ntenants == 1 ? "" : "s");
	for (unsigned int i = 0; i < c->ntenants && i < NICD_MAX_TENANTS; i++)
		dump_tenant(&c->tenants[i]);
}
