/* SPDX-License-Identifier: MIT */
/*
 * machnet-nicd configuration: defaults, INI file, command line, checks.
 *
 * iniparser reads the values, but it reports no line numbers, silently
 * merges a section or key given twice, and accepts any section or key. So
 * a small scanner (scan_file) reads the file first, line by line, the way
 * iniparser does: it records every section and key with its line, and
 * refuses syntax iniparser would mis-read, unknown names and repeats. The
 * values are then applied in file order, each error naming its line.
 * Afterwards the dictionary's entry count must equal what the scanner saw,
 * so the two readers cannot silently disagree.
 *
 * Everything is parsed into a copy of the caller's struct, which is
 * committed only when the whole file (or command line) was good.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <iniparser.h>

#include "ctl.h"
#include "log.h"
#include "port.h"

#ifndef MACHNET_VERSION
#define MACHNET_VERSION "0.1.0"
#endif

#define COMP "config"

_Static_assert(NICD_MAX_QUEUES == MN_PORT_MAX_QUEUES, "queues bound is the port ABI's");
_Static_assert(NICD_NAME_MAX == MN_CTL_NAME_MAX, "tenant names travel in HELLO");

/* "expected ..." texts are built here before the caller adds the context. */
#define WHY_MAX 256

/* Longest logical line we accept; iniparser's own limit is 1022. */
#define LINE_MAX_CHARS 1000

/* <runtime_dir>/<tenant>.sock must fit sockaddr_un.sun_path with its NUL. */
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define RUNTIME_DIR_MAX (SUN_PATH_MAX - (1 + (NICD_NAME_MAX - 1) + sizeof(".sock") - 1))

#define TENANT_PREFIX "tenant."
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int bad(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, WHY_MAX, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- value syntax ---------------------------------------------------- */

/* Decimal digits only: no sign, no blanks, no base prefix, no overflow. */
static int parse_ulong(const char *s, unsigned long *out)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

/* Not 0.0.0.0, not multicast (224/4), not class E or broadcast (240/4). */
static bool ip_unicast(uint32_t ip)
{
	return ip != 0 && (ip >> 28) < 14;
}

/* Dotted quad (inet_pton: no leading zeros, all four parts), unicast. */
static int parse_ipv4(const char *s, uint32_t *ip)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1 || !ip_unicast(ntohl(a.s_addr)))
		return -EINVAL;
	*ip = ntohl(a.s_addr);
	return 0;
}

static const char *fmt_ip(uint32_t ip, char buf[INET_ADDRSTRLEN])
{
	struct in_addr a = { .s_addr = htonl(ip) };

	if (!inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN))
		snprintf(buf, INET_ADDRSTRLEN, "?");
	return buf;
}

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

/*
 * Split the comma-separated list at *p in place: returns the next item with
 * surrounding blanks removed (possibly ""), or NULL after the last one.
 * Unlike strtok, an empty item is returned, so "a,,b" can be refused.
 */
static char *next_item(char **p)
{
	char *s = *p, *e, *comma;

	if (!s)
		return NULL;
	comma = strchr(s, ',');
	if (comma) {
		*comma = '\0';
		*p = comma + 1;
	} else {
		*p = NULL;
	}
	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* "10.0.0.1/24" */
static int parse_ip_prefix(const char *item, uint32_t *ip, uint8_t *len, char *why)
{
	const char *slash = strchr(item, '/');
	char addr[INET_ADDRSTRLEN];
	unsigned long plen;

	if (!slash)
		return bad(why, "'%s': expected ADDRESS/PREFIX, e.g. 10.0.0.1/24", item);
	if ((size_t)(slash - item) >= sizeof(addr))
		return bad(why, "'%s': expected a unicast IPv4 address before '/'", item);
	memcpy(addr, item, (size_t)(slash - item));
	addr[slash - item] = '\0';
	if (parse_ipv4(addr, ip))
		return bad(why, "'%s': expected a unicast IPv4 address before '/'", item);
	if (parse_ulong(slash + 1, &plen) || plen < 1 || plen > 32)
		return bad(why, "'%s': expected a prefix length 1..32 after '/'", item);
	*len = (uint8_t)plen;
	return 0;
}

/* Six hex pairs separated by ':'; unicast and not all-zero. */
static int parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t m[6];

	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		const char *p = s + 3 * i;

		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]))
			return -EINVAL;
		if (i < 5 && p[2] != ':')
			return -EINVAL;
		m[i] = (uint8_t)strtoul((char[3]){ p[0], p[1], '\0' }, NULL, 16);
	}
	if ((m[0] & 1) || !(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
		return -EINVAL;
	memcpy(mac, m, 6);
	return 0;
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

/* ---- [nicd] keys --------------------------------------------------------- */

enum key_type {
	KT_UINT,    /* uint16_t or uint32_t (size), min..max */
	KT_STR,	    /* char[size], str_ok() */
	KT_IPS,	    /* ips[] + prefix_len[] */
	KT_GATEWAY, /* uint32_t, 0 = none */
	KT_MAC,	    /* mac[] + mac_set */
	KT_POLL,    /* enum nicd_poll_mode */
	KT_LOG,	    /* int, enum mn_log_level */
};

struct nicd_key {
	const char *name;   /* key in [nicd] */
	const char *opt;    /* long option, or NULL: file only */
	const char *arg;    /* the option's argument in --help */
	enum key_type type;
	size_t off, size;
	unsigned long min, max;	     /* KT_UINT */
	bool (*str_ok)(const char *); /* KT_STR; NULL: any text */
	const char *expect;	     /* KT_STR: what str_ok wants */
	const char *help;
};

#define FIELD(f) offsetof(struct nicd_cfg, f), sizeof(((struct nicd_cfg *)0)->f)

static const struct nicd_key nicd_keys[] = {
	{ "device", "device", "DEV", KT_STR, FIELD(device), 0, 0, device_ok,
	  "a PCI address (0000:00:04.0) or a vdev string (net_af_xdp0,iface=eth1) without blanks",
	  "the port: PCI address or DPDK vdev string" },
	{ "eal_args", "eal-args", "ARGS", KT_STR, FIELD(eal_args), 0, 0, NULL, "text",
	  "extra DPDK EAL arguments, space separated" },
	{ "file_prefix", "file-prefix", "NAME", KT_STR, FIELD(file_prefix), 0, 0,
	  file_prefix_ok, "characters from A-Z a-z 0-9 . _ -",
	  "DPDK --file-prefix; unique per nicd on a host" },
	{ "ip", "ip", "IP/LEN", KT_IPS, 0, 0, 0, 0, NULL, NULL,
	  "our IPv4 addresses with prefix lengths, comma-separated" },
	{ "gateway", "gateway", "IP", KT_GATEWAY, FIELD(gateway), 0, 0, NULL, NULL,
	  "default gateway inside one of the subnets, or none" },
	{ "mac", "mac", "MAC", KT_MAC, 0, 0, 0, 0, NULL, NULL,
	  "source MAC of every frame" },
	{ "mtu", "mtu", "N", KT_UINT, FIELD(mtu), 576, 9000, NULL, NULL,
	  "IPv4 MTU; the port must support it" },
	{ "queues", "queues", "N", KT_UINT, FIELD(queues), 1, NICD_MAX_QUEUES, NULL, NULL,
	  "NIC queue pairs" },
	{ "lcores", "lcores", "LIST", KT_STR, FIELD(lcores), 0, 0, lcores_ok,
	  "a DPDK core list such as 0, 0-3 or 1,3-4",
	  "DPDK -l core list" },
	{ "poll_mode", "poll-mode", "MODE", KT_POLL, FIELD(poll_mode), 0, 0, NULL, NULL,
	  "busy, yield or adaptive (spin, then sleep)" },
	{ "spin_us", "spin-us", "US", KT_UINT, FIELD(spin_us), 0, 1000000, NULL, NULL,
	  "adaptive: idle time spinning before sleeping" },
	{ "sleep_max_us", "sleep-max-us", "US", KT_UINT, FIELD(sleep_max_us), 1, 1000000,
	  NULL, NULL, "adaptive: longest sleep when idle" },
	{ "runtime_dir", "runtime-dir", "DIR", KT_STR, FIELD(runtime_dir), 0, 0,
	  runtime_dir_ok, "an absolute path of at most 70 characters",
	  "directory of nicd.sock and the tenants' sockets" },
	{ "log_level", "log-level", "LEVEL", KT_LOG, FIELD(log_level), 0, 0, NULL, NULL,
	  "err, warn, info or debug" },
	{ "arp_ttl", NULL, NULL, KT_UINT, FIELD(arp_ttl_s), 1, 86400, NULL, NULL,
	  "seconds a neighbour entry lives" },
	{ "arp_timeout_ms", NULL, NULL, KT_UINT, FIELD(arp_timeout_ms), 1, 60000, NULL, NULL,
	  "milliseconds before an ARP resolution gives up" },
	{ "nframes_max", NULL, NULL, KT_UINT, FIELD(nframes_max), 1, 1u << 24, NULL, NULL,
	  "largest frame pool a tenant may register" },
};

_Static_assert(RUNTIME_DIR_MAX == 70, "runtime_dir text above says 70");

static const struct nicd_key *find_key(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(nicd_keys); i++)
		if (strcmp(nicd_keys[i].name, name) == 0)
			return &nicd_keys[i];
	return NULL;
}

static const char *const poll_names[] = {
	[NICD_POLL_BUSY] = "busy",
	[NICD_POLL_YIELD] = "yield",
	[NICD_POLL_ADAPTIVE] = "adaptive",
};

const char *nicd_poll_mode_name(enum nicd_poll_mode m)
{
	if ((unsigned int)m >= ARRAY_SIZE(poll_names))
		return "?";
	return poll_names[m];
}

static const char *const log_names[] = { "err", "warn", "info", "debug" };

/* Append a comma list of "IP/LEN" to c->ips (the caller empties it first). */
static int parse_ip_list(struct nicd_cfg *c, const char *val, char *why)
{
	char *buf = strdup(val), *p = buf, *item;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (rc == 0 && (item = next_item(&p)) != NULL) {
		uint32_t ip = 0;
		uint8_t len = 0;

		rc = parse_ip_prefix(item, &ip, &len, why);
		if (rc == 0 && find_ip(c->ips, c->nips, ip) >= 0)
			rc = bad(why, "'%s': expected each address once", item);
		if (rc == 0 && c->nips == NICD_MAX_IPS)
			rc = bad(why, "expected at most %d addresses", NICD_MAX_IPS);
		if (rc == 0) {
			c->ips[c->nips] = ip;
			c->prefix_len[c->nips++] = len;
		}
	}
	free(buf);
	return rc;
}

static void *field(struct nicd_cfg *c, const struct nicd_key *k)
{
	return (char *)c + k->off;
}

static const void *cfield(const struct nicd_cfg *c, const struct nicd_key *k)
{
	return (const char *)c + k->off;
}

static unsigned long get_uint(const struct nicd_cfg *c, const struct nicd_key *k)
{
	if (k->size == sizeof(uint16_t))
		return *(const uint16_t *)cfield(c, k);
	return *(const uint32_t *)cfield(c, k);
}

/* Parse @val for key @k into @c. 0, -EINVAL with @why filled, or -ENOMEM. */
static int parse_key(struct nicd_cfg *c, const struct nicd_key *k, const char *val,
		     char *why)
{
	unsigned long v;
	int lvl;

	switch (k->type) {
	case KT_UINT:
		if (parse_ulong(val, &v) || v < k->min || v > k->max)
			return bad(why, "expected an integer in %lu..%lu", k->min, k->max);
		if (k->size == sizeof(uint16_t))
			*(uint16_t *)field(c, k) = (uint16_t)v;
		else
			*(uint32_t *)field(c, k) = (uint32_t)v;
		return 0;
	case KT_STR:
		if (strlen(val) >= k->size || (k->str_ok && !k->str_ok(val)))
			return bad(why, "expected %s, at most %zu characters", k->expect,
				   k->size - 1);
		memcpy(field(c, k), val, strlen(val) + 1);
		return 0;
	case KT_IPS:
		return parse_ip_list(c, val, why);
	case KT_GATEWAY:
		if (val[0] == '\0' || strcasecmp(val, "none") == 0) {
			c->gateway = 0;
			return 0;
		}
		if (parse_ipv4(val, &c->gateway))
			return bad(why, "expected a unicast IPv4 address, or none");
		return 0;
	case KT_MAC:
		if (parse_mac(val, c->mac))
			return bad(why, "expected a unicast MAC address as six hex pairs, "
					"e.g. 02:00:00:00:00:01");
		c->mac_set = true;
		return 0;
	case KT_POLL:
		for (size_t i = 0; i < ARRAY_SIZE(poll_names); i++) {
			if (strcasecmp(val, poll_names[i]) == 0) {
				c->poll_mode = (enum nicd_poll_mode)i;
				return 0;
			}
		}
		return bad(why, "expected busy, yield or adaptive");
	case KT_LOG:
		lvl = mn_log_level_parse(val);
		if (lvl < 0)
			return bad(why, "expected err, warn, info or debug");
		c->log_level = lvl;
		return 0;
	}
	return bad(why, "internal: key type %d", (int)k->type);
}

/* Render key @k of @c for --help and nicd_cfg_dump(). */
static void format_key(const struct nicd_cfg *c, const struct nicd_key *k, char *buf,
		       size_t len)
{
	char ip[INET_ADDRSTRLEN];
	size_t n = 0;

	buf[0] = '\0';
	switch (k->type) {
	case KT_UINT:
		snprintf(buf, len, "%lu", get_uint(c, k));
		break;
	case KT_STR:
		snprintf(buf, len, "%s", (const char *)cfield(c, k));
		break;
	case KT_IPS:
		for (unsigned int i = 0; i < c->nips && i < NICD_MAX_IPS && n < len; i++)
			n += (size_t)snprintf(buf + n, len - n, "%s%s/%u", i ? ", " : "",
					      fmt_ip(c->ips[i], ip), c->prefix_len[i]);
		break;
	case KT_GATEWAY:
		snprintf(buf, len, "%s", c->gateway ? fmt_ip(c->gateway, ip) : "none");
		break;
	case KT_MAC:
		if (c->mac_set)
			snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", c->mac[0],
				 c->mac[1], c->mac[2], c->mac[3], c->mac[4], c->mac[5]);
		else
			snprintf(buf, len, "the port's");
		break;
	case KT_POLL:
		snprintf(buf, len, "%s", nicd_poll_mode_name(c->poll_mode));
		break;
	case KT_LOG:
		snprintf(buf, len, "%s",
			 c->log_level >= 0 && (size_t)c->log_level < ARRAY_SIZE(log_names)
				 ? log_names[c->log_level]
				 : "?");
		break;
	}
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

/* ---- [tenant.NAME] keys ----------------------------------------------- */

/* Look a user or group name up; ERANGE means the buffer was too small. */
static int lookup_id(const char *name, bool user, uint32_t *id)
{
	size_t len = 4096;
	int rc;

	for (;;) {
		char *buf = malloc(len);
		struct passwd pw, *pwp = NULL;
		struct group gr, *grp = NULL;

		if (!buf)
			return -ENOMEM;
		if (user) {
			rc = getpwnam_r(name, &pw, buf, len, &pwp);
			if (rc == 0 && pwp)
				*id = (uint32_t)pwp->pw_uid;
		} else {
			rc = getgrnam_r(name, &gr, buf, len, &grp);
			if (rc == 0 && grp)
				*id = (uint32_t)grp->gr_gid;
		}
		free(buf);
		if (rc == ERANGE && len < (1u << 20)) {
			len *= 2;
			continue;
		}
		if (rc)
			return -rc;
		return (user ? pwp != NULL : grp != NULL) ? 0 : -ENOENT;
	}
}

/* "any", a number, or a name known to this host. */
static int parse_id(const char *val, bool user, uint32_t *id, char *why)
{
	const char *what = user ? "user" : "group";
	unsigned long v;
	int rc;

	if (strcmp(val, "any") == 0) {
		*id = UINT32_MAX;
		return 0;
	}
	if (isdigit((unsigned char)val[0])) {
		if (parse_ulong(val, &v) || v >= UINT32_MAX)
			return bad(why, "expected a %s id below 4294967295, a %s name or any",
				   what, what);
		*id = (uint32_t)v;
		return 0;
	}
	rc = lookup_id(val, user, id);
	if (rc == -ENOENT)
		return bad(why, "expected a %s id, a %s name known to this host, or any",
			   what, what);
	if (rc)
		return bad(why, "expected a %s name; looking it up failed: %s", what,
			   strerror(-rc));
	return 0;
}

static int tenant_uid(struct nicd_tenant_cfg *t, const char *val, char *why)
{
	uint32_t id;
	int rc = parse_id(val, true, &id, why);

	if (rc == 0)
		t->uid = (uid_t)id;
	return rc;
}

static int tenant_gid(struct nicd_tenant_cfg *t, const char *val, char *why)
{
	uint32_t id;
	int rc = parse_id(val, false, &id, why);

	if (rc == 0)
		t->gid = (gid_t)id;
	return rc;
}

static int tenant_ips(struct nicd_tenant_cfg *t, const char *val, char *why)
{
	char *buf = strdup(val), *p = buf, *item;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	t->nips = 0;
	while (rc == 0 && (item = next_item(&p)) != NULL) {
		uint32_t ip;

		if (parse_ipv4(item, &ip))
			rc = bad(why, "'%s': expected a unicast IPv4 address (one of [nicd] ip, "
				      "without prefix length)", item);
		else if (find_ip(t->ips, t->nips, ip) >= 0)
			rc = bad(why, "'%s': expected each address once", item);
		else if (t->nips == NICD_MAX_IPS)
			rc = bad(why, "expected at most %d addresses", NICD_MAX_IPS);
		else
			t->ips[t->nips++] = ip;
	}
	free(buf);
	return rc;
}

/* "5000" or "5000-5999" (blanks allowed around '-'). */
static int parse_range(char *item, struct nicd_port_range *r)
{
	char *dash = strchr(item, '-'), *hi = item, *e;
	unsigned long lo_v, hi_v;

	if (dash) {
		*dash = '\0';
		hi = dash + 1;
		for (e = dash; e > item && isspace((unsigned char)e[-1]);)
			*--e = '\0';
		while (isspace((unsigned char)*hi))
			hi++;
	}
	if (parse_ulong(item, &lo_v) || parse_ulong(hi, &hi_v))
		return -EINVAL;
	if (lo_v < 1 || hi_v > 65535 || lo_v > hi_v)
		return -EINVAL;
	r->lo = (uint16_t)lo_v;
	r->hi = (uint16_t)hi_v;
	return 0;
}

static int tenant_ports(struct nicd_tenant_cfg *t, const char *val, char *why)
{
	char *buf = strdup(val), *p = buf, *item;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	t->nranges = 0;
	while (rc == 0 && (item = next_item(&p)) != NULL) {
		char copy[32];
		struct nicd_port_range r;

		snprintf(copy, sizeof(copy), "%s", item); /* item is cut by parse_range */
		if (parse_range(item, &r))
			rc = bad(why, "'%s': expected a port 1..65535 or a range LO-HI with "
				      "1 <= LO <= HI <= 65535", copy);
		else if (t->nranges == NICD_MAX_RANGES)
			rc = bad(why, "expected at most %d ports or ranges", NICD_MAX_RANGES);
		else
			t->ranges[t->nranges++] = r;
	}
	free(buf);
	return rc;
}

struct tenant_key {
	const char *name;
	int (*parse)(struct nicd_tenant_cfg *t, const char *val, char *why);
	const char *missing; /* required: what to say when absent; NULL: optional */
};

static const struct tenant_key tenant_keys[] = {
	{ "uid", tenant_uid, "a user id, a user name, or any" },
	{ "gid", tenant_gid, NULL },
	{ "ip", tenant_ips, "the tenant's addresses, each one of [nicd] ip" },
	{ "ports", tenant_ports, "the UDP ports or ranges it may claim, e.g. 5000-5999" },
};

static const struct tenant_key *find_tenant_key(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(tenant_keys); i++)
		if (strcmp(tenant_keys[i].name, name) == 0)
			return &tenant_keys[i];
	return NULL;
}

/* ---- the scanner ------------------------------------------------------ */

struct ini_sec {
	char *name; /* lowercased, as iniparser stores it */
	unsigned int line;
};

struct ini_key {
	unsigned int sec; /* index into secs */
	char *name;	  /* lowercased */
	unsigned int line;
};

struct ini_scan {
	const char *path;
	struct ini_sec *secs;
	unsigned int nsecs, cap_secs;
	struct ini_key *keys;
	unsigned int nkeys, cap_keys;
};

static void scan_free(struct ini_scan *s)
{
	for (unsigned int i = 0; i < s->nsecs; i++)
		free(s->secs[i].name);
	for (unsigned int i = 0; i < s->nkeys; i++)
		free(s->keys[i].name);
	free(s->secs);
	free(s->keys);
}

/* Grow *arr (of *cap elements of @size) so that one more fits. */
static int grow(void **arr, unsigned int n, unsigned int *cap, size_t size)
{
	unsigned int ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	p = reallocarray(*arr, ncap, size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* Strip blanks at both ends, in place, and lowercase like iniparser does. */
static char *strip(char *s, bool lower)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	if (lower)
		for (char *p = s; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return s;
}

static bool is_tenant_section(const char *name)
{
	return strncmp(name, TENANT_PREFIX, strlen(TENANT_PREFIX)) == 0;
}

static void nicd_key_names(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(nicd_keys) && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "",
				      nicd_keys[i].name);
}

static int scan_section(struct ini_scan *s, char *name, unsigned int line)
{
	int rc;

	if (strcmp(name, "nicd") != 0 && !is_tenant_section(name)) {
		mn_err(COMP, "%s:%u: unknown section [%s]: expected [nicd] or [tenant.NAME]",
		       s->path, line, name);
		return -EINVAL;
	}
	if (is_tenant_section(name) && !tenant_name_ok(name + strlen(TENANT_PREFIX))) {
		mn_err(COMP, "%s:%u: [%s]: expected a tenant name of 1..%d characters from "
			     "a-z 0-9 _ - (names are lowercased)",
		       s->path, line, name, NICD_NAME_MAX - 1);
		return -EINVAL;
	}
	for (unsigned int i = 0; i < s->nsecs; i++) {
		if (strcmp(s->secs[i].name, name) == 0) {
			mn_err(COMP, "%s:%u: [%s]: section given twice (first at line %u)",
			       s->path, line, name, s->secs[i].line);
			return -EINVAL;
		}
	}
	rc = grow((void **)&s->secs, s->nsecs, &s->cap_secs, sizeof(*s->secs));
	if (rc)
		return rc;
	s->secs[s->nsecs].name = strdup(name);
	if (!s->secs[s->nsecs].name)
		return -ENOMEM;
	s->secs[s->nsecs++].line = line;
	return 0;
}

static int scan_key(struct ini_scan *s, char *name, unsigned int line)
{
	const struct ini_sec *sec;
	char names[256];
	int rc;

	if (s->nsecs == 0) {
		mn_err(COMP, "%s:%u: key '%s' outside any section: expected [nicd] or "
			     "[tenant.NAME] before it", s->path, line, name);
		return -EINVAL;
	}
	sec = &s->secs[s->nsecs - 1];
	if (is_tenant_section(sec->name) ? !find_tenant_key(name) : !find_key(name)) {
		if (is_tenant_section(sec->name))
			snprintf(names, sizeof(names), "uid, gid, ip, ports");
		else
			nicd_key_names(names, sizeof(names));
		mn_err(COMP, "%s:%u: [%s] %s: unknown key; expected one of: %s", s->path,
		       line, sec->name, name, names);
		return -EINVAL;
	}
	for (unsigned int i = 0; i < s->nkeys; i++) {
		if (s->keys[i].sec == s->nsecs - 1 && strcmp(s->keys[i].name, name) == 0) {
			mn_err(COMP, "%s:%u: [%s] %s: key given twice (first at line %u)",
			       s->path, line, sec->name, name, s->keys[i].line);
			return -EINVAL;
		}
	}
	rc = grow((void **)&s->keys, s->nkeys, &s->cap_keys, sizeof(*s->keys));
	if (rc)
		return rc;
	s->keys[s->nkeys].name = strdup(name);
	if (!s->keys[s->nkeys].name)
		return -ENOMEM;
	s->keys[s->nkeys].sec = s->nsecs - 1;
	s->keys[s->nkeys++].line = line;
	return 0;
}

/*
 * Classify one line as iniparser 4.1 would (iniparser_line()), but refuse
 * the forms it would accept and mis-read: "[]", "[a]b]", a comment after a
 * section header (iniparser: syntax error, without saying why), and lines
 * continued with a trailing backslash.
 */
static int scan_line(struct ini_scan *s, char *raw, unsigned int line)
{
	char *l = strip(raw, false), *eq;
	size_t len = strlen(l);
	char shown[80]; /* the line as found, for messages */

	snprintf(shown, sizeof(shown), "%s", l);
	if (len >= sizeof(shown))
		memcpy(shown + sizeof(shown) - 4, "...", 4);

	if (len == 0 || l[0] == '#' || l[0] == ';')
		return l[len ? len - 1 : 0] == '\\' ? -EAGAIN : 0;
	if (l[len - 1] == '\\')
		return -EAGAIN;
	if (l[0] == '[') {
		char *name;

		if (l[len - 1] != ']') {
			mn_err(COMP, "%s:%u: '%s': expected [SECTION] alone on its line "
				     "(no comment after it)", s->path, line, shown);
			return -EINVAL;
		}
		l[len - 1] = '\0';
		name = strip(l + 1, true);
		if (!*name || strpbrk(name, "[]:")) {
			mn_err(COMP, "%s:%u: '[%s]': expected [nicd] or [tenant.NAME]",
			       s->path, line, name);
			return -EINVAL;
		}
		return scan_section(s, name, line);
	}
	eq = strchr(l, '=');
	if (eq) {
		*eq = '\0';
		l = strip(l, true);
	}
	if (!eq || !*l) {
		mn_err(COMP, "%s:%u: '%s': expected KEY = VALUE, [SECTION], or a comment "
			     "starting with ; or #", s->path, line, shown);
		return -EINVAL;
	}
	return scan_key(s, l, line);
}

static int scan_file(FILE *f, struct ini_scan *s)
{
	unsigned int line = 0;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	while (rc == 0 && (n = getline(&buf, &cap, f)) >= 0) {
		line++;
		if (memchr(buf, '\0', (size_t)n)) {
			mn_err(COMP, "%s:%u: expected text, found a NUL byte", s->path, line);
			rc = -EINVAL;
		} else if (n > LINE_MAX_CHARS) {
			mn_err(COMP, "%s:%u: expected lines of at most %d characters",
			       s->path, line, LINE_MAX_CHARS);
			rc = -EINVAL;
		} else {
			rc = scan_line(s, buf, line);
			if (rc == -EAGAIN) {
				mn_err(COMP, "%s:%u: expected no '\\' at the end of a line "
					     "(continuation lines are not supported)",
				       s->path, line);
				rc = -EINVAL;
			}
		}
	}
	if (rc == 0 && ferror(f)) {
		rc = -EIO;
		mn_err(COMP, "%s: read error", s->path);
	}
	free(buf);
	return rc;
}

/* ---- loading ------------------------------------------------------------- */

/* iniparser's messages go to our log, not straight to stderr. */
static char ini_msg[512];

static int ini_errback(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int ini_errback(const char *fmt, ...)
{
	size_t n = strlen(ini_msg);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ini_msg + n, sizeof(ini_msg) - n, fmt, ap);
	va_end(ap);
	return 0;
}

static dictionary *load_dict(const struct ini_scan *s, int *rc)
{
	dictionary *d;

	ini_msg[0] = '\0';
	iniparser_set_error_callback(ini_errback);
	d = iniparser_load(s->path);
	iniparser_set_error_callback(NULL);
	for (char *p = ini_msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (!d) {
		*rc = ini_msg[0] ? -EINVAL : -ENOMEM;
		mn_err(COMP, "%s: iniparser refused the file: %s", s->path,
		       ini_msg[0] ? ini_msg : "out of memory");
		return NULL;
	}
	if ((unsigned int)d->n != s->nsecs + s->nkeys) {
		mn_err(COMP, "%s: iniparser read %d sections and keys where %u were "
			     "expected (file changed while being read?)",
		       s->path, d->n, s->nsecs + s->nkeys);
		iniparser_freedict(d);
		*rc = -EINVAL;
		return NULL;
	}
	return d;
}

/* The value of key @k, or NULL (logged) if iniparser did not read it. */
static const char *value_of(const struct ini_scan *s, const dictionary *d,
			    const struct ini_key *k)
{
	const char *sec = s->secs[k->sec].name;
	const char *v = NULL;
	char entry[128];

	if ((size_t)snprintf(entry, sizeof(entry), "%s:%s", sec, k->name) < sizeof(entry))
		v = iniparser_getstring(d, entry, NULL);
	if (!v)
		mn_err(COMP, "%s:%u: [%s] %s: iniparser did not read this key", s->path,
		       k->line, sec, k->name);
	return v;
}

static void log_bad_value(const struct ini_scan *s, const struct ini_key *k,
			  const char *val, const char *why, int rc)
{
	if (rc == -ENOMEM)
		why = "out of memory";
	mn_err(COMP, "%s:%u: [%s] %s = %s: %s", s->path, k->line, s->secs[k->sec].name,
	       k->name, val, why);
}

static int apply_nicd(struct nicd_cfg *c, const struct ini_scan *s, const dictionary *d)
{
	char why[WHY_MAX];

	for (unsigned int i = 0; i < s->nkeys; i++) {
		const struct ini_key *k = &s->keys[i];
		const struct nicd_key *nk;
		const char *val;
		int rc;

		if (strcmp(s->secs[k->sec].name, "nicd") != 0)
			continue;
		nk = find_key(k->name);
		val = value_of(s, d, k);
		if (!val)
			return -EINVAL;
		if (nk->type == KT_IPS)
			c->nips = 0; /* the file's list replaces the current one */
		rc = parse_key(c, nk, val, why);
		if (rc) {
			log_bad_value(s, k, val, why, rc);
			return rc;
		}
	}
	return 0;
}

/* Parse section @si of @s into @t. */
static int read_tenant(struct nicd_tenant_cfg *t, const struct ini_scan *s,
		       const dictionary *d, unsigned int si)
{
	const struct ini_sec *sec = &s->secs[si];
	bool seen[ARRAY_SIZE(tenant_keys)] = { false };
	char why[WHY_MAX];

	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", sec->name + strlen(TENANT_PREFIX));
	t->uid = NICD_ANY_UID;
	t->gid = NICD_ANY_GID;
	for (unsigned int i = 0; i < s->nkeys; i++) {
		const struct ini_key *k = &s->keys[i];
		const struct tenant_key *tk;
		const char *val;
		int rc;

		if (k->sec != si)
			continue;
		tk = find_tenant_key(k->name);
		seen[tk - tenant_keys] = true;
		val = value_of(s, d, k);
		if (!val)
			return -EINVAL;
		rc = tk->parse(t, val, why);
		if (rc) {
			log_bad_value(s, k, val, why, rc);
			return rc;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(tenant_keys); i++) {
		if (!seen[i] && tenant_keys[i].missing) {
			mn_err(COMP, "%s:%u: [%s]: missing key '%s': expected %s", s->path,
			       sec->line, sec->name, tenant_keys[i].name,
			       tenant_keys[i].missing);
			return -EINVAL;
		}
	}
	return 0;
}

static int apply_tenants(struct nicd_cfg *c, const struct ini_scan *s, const dictionary *d)
{
	for (unsigned int si = 0; si < s->nsecs; si++) {
		struct nicd_tenant_cfg t;
		unsigned int slot;
		int rc;

		if (!is_tenant_section(s->secs[si].name))
			continue;
		rc = read_tenant(&t, s, d, si);
		if (rc)
			return rc;
		/* A tenant already in c (an earlier file) is replaced. */
		for (slot = 0; slot < c->ntenants; slot++)
			if (strcmp(c->tenants[slot].name, t.name) == 0)
				break;
		if (slot == NICD_MAX_TENANTS) {
			mn_err(COMP, "%s:%u: [%s]: too many tenants: expected at most %d",
			       s->path, s->secs[si].line, s->secs[si].name, NICD_MAX_TENANTS);
			return -EINVAL;
		}
		c->tenants[slot] = t;
		if (slot == c->ntenants)
			c->ntenants++;
	}
	return 0;
}

static FILE *open_config(const char *path, int *rc)
{
	struct stat st;
	FILE *f = fopen(path, "re");

	if (!f) {
		*rc = -errno;
		mn_err(COMP, "%s: cannot open the config file: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		*rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		mn_err(COMP, "%s: expected a regular file", path);
		fclose(f);
		return NULL;
	}
	return f;
}

int nicd_cfg_load(struct nicd_cfg *c, const char *path)
{
	struct ini_scan scan = { .path = path };
	struct nicd_cfg *tmp = NULL;
	dictionary *d = NULL;
	FILE *f;
	int rc = 0;

	f = open_config(path, &rc);
	if (!f)
		return rc;
	rc = scan_file(f, &scan);
	fclose(f);
	if (rc)
		goto out;
	d = load_dict(&scan, &rc);
	if (!d)
		goto out;
	tmp = malloc(sizeof(*tmp));
	if (!tmp) {
		rc = -ENOMEM;
		mn_err(COMP, "%s: out of memory", path);
		goto out;
	}
	memcpy(tmp, c, sizeof(*tmp));
	rc = apply_nicd(tmp, &scan, d);
	if (rc == 0)
		rc = apply_tenants(tmp, &scan, d);
	if (rc == 0)
		memcpy(c, tmp, sizeof(*c));
out:
	free(tmp);
	if (d)
		iniparser_freedict(d);
	scan_free(&scan);
	return rc;
}

/* ---- command line ---------------------------------------------------- */

#define OPT_KEY_BASE 256 /* getopt val of nicd_keys[i] is OPT_KEY_BASE + i */
#define NOPTS (ARRAY_SIZE(nicd_keys) + 4)

static void build_options(struct option *o)
{
	size_t n = 0;

	o[n++] = (struct option){ "config", required_argument, NULL, 'c' };
	for (size_t i = 0; i < ARRAY_SIZE(nicd_keys); i++)
		if (nicd_keys[i].opt)
			o[n++] = (struct option){ nicd_keys[i].opt, required_argument, NULL,
						  OPT_KEY_BASE + (int)i };
	o[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	o[n++] = (struct option){ "version", no_argument, NULL, 'V' };
	o[n] = (struct option){ NULL, 0, NULL, 0 };
}

/* Name the option getopt just refused. */
static void opt_error(int argc, char **argv, const char *what)
{
	const char *arg = optind >= 1 && optind <= argc ? argv[optind - 1] : "?";
	char shortname[3] = { '-', (char)optopt, '\0' };

	if (optopt > 0 && optopt < OPT_KEY_BASE && strncmp(arg, "--", 2) != 0)
		arg = shortname;
	mn_err(COMP, "%s option '%s' (see --help)", what, arg);
}

static const char *prog_name(int argc, char **argv)
{
	const char *p;

	if (argc < 1 || !argv[0] || !argv[0][0])
		return "machnet-nicd";
	p = strrchr(argv[0], '/');
	return p ? p + 1 : argv[0];
}

/*
 * One getopt_long pass over argv. With @c, option values are parsed into
 * it; with @config, -c/--config is recorded there (once). Returns 0, 1 after
 * --help/--version, or -EINVAL/-ENOMEM (logged).
 */
static int run_getopt(struct nicd_cfg *c, int argc, char **argv, const char **config)
{
	struct option opts[NOPTS];
	bool ips_replaced = false;
	char why[WHY_MAX];
	int o, rc;

	build_options(opts);
	optind = 0; /* glibc: restart from argv[1] and forget earlier state */
	opterr = 0;
	/* '+': stop at the first non-option; ':': report a missing argument. */
	while ((o = getopt_long(argc, argv, "+:c:hV", opts, NULL)) != -1) {
		const struct nicd_key *k;

		switch (o) {
		case 'h':
			nicd_cfg_usage(stdout, prog_name(argc, argv));
			return 1;
		case 'V':
			printf("machnet-nicd %s\n", MACHNET_VERSION);
			return 1;
		case 'c':
			if (config && *config) {
				mn_err(COMP, "--config given twice ('%s', '%s')", *config, optarg);
				return -EINVAL;
			}
			if (config)
				*config = optarg;
			continue;
		case ':':
			opt_error(argc, argv, "missing argument for");
			return -EINVAL;
		case '?':
			opt_error(argc, argv, "unknown or ambiguous");
			return -EINVAL;
		}
		if (o < OPT_KEY_BASE || (size_t)(o - OPT_KEY_BASE) >= ARRAY_SIZE(nicd_keys)) {
			mn_err(COMP, "internal: getopt returned %d", o);
			return -EINVAL;
		}
		if (!c)
			continue;
		k = &nicd_keys[o - OPT_KEY_BASE];
		if (k->type == KT_IPS && !ips_replaced) {
			c->nips = 0; /* the first --ip replaces the file's list */
			ips_replaced = true;
		}
		rc = parse_key(c, k, optarg, why);
		if (rc) {
			mn_err(COMP, "--%s %s: %s", k->opt, optarg,
			       rc == -ENOMEM ? "out of memory" : why);
			return rc;
		}
	}
	if (optind < argc) {
		mn_err(COMP, "unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

int nicd_cfg_parse_args(struct nicd_cfg *c, int argc, char **argv)
{
	struct nicd_cfg *tmp = malloc(sizeof(*tmp));
	int rc;

	if (!tmp) {
		mn_err(COMP, "out of memory");
		return -ENOMEM;
	}
	memcpy(tmp, c, sizeof(*tmp));
	rc = run_getopt(tmp, argc, argv, NULL);
	if (rc == 0)
		memcpy(c, tmp, sizeof(*c));
	free(tmp);
	return rc;
}

int nicd_cfg_parse_cmdline_at(struct nicd_cfg *c, int argc, char **argv,
			      const char *default_path)
{
	const char *config = NULL;
	int rc;

	nicd_cfg_defaults(c);
	/* First pass: --help, --version, --config and bad options only. */
	rc = run_getopt(NULL, argc, argv, &config);
	if (rc)
		return rc;
	if (!config && access(default_path, F_OK) != 0 && errno == ENOENT) {
		mn_info(COMP, "no %s: using the defaults and the command line", default_path);
	} else {
		rc = nicd_cfg_load(c, config ? config : default_path);
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
	char val[256];

	if (!memchr(c->device, '\0', sizeof(c->device)) || !c->device[0]) {
		mn_err(COMP, "no device: set [nicd] device or --device (a PCI address "
			     "or a vdev string such as net_af_xdp0,iface=eth1)");
		return -EINVAL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(nicd_keys); i++) {
		const struct nicd_key *k = &nicd_keys[i];
		bool ok = true;

		if (k->type == KT_UINT) {
			ok = get_uint(c, k) >= k->min && get_uint(c, k) <= k->max;
		} else if (k->type == KT_STR) {
			const char *s = cfield(c, k);

			ok = memchr(s, '\0', k->size) && (!k->str_ok || k->str_ok(s));
		} else if (k->type == KT_POLL) {
			ok = (unsigned int)c->poll_mode < ARRAY_SIZE(poll_names);
		} else if (k->type == KT_LOG) {
			ok = c->log_level >= MN_LOG_ERR && c->log_level <= MN_LOG_DEBUG;
		}
		if (!ok) {
			if (k->type == KT_STR && !memchr(cfield(c, k), '\0', k->size))
				snprintf(val, sizeof(val), "(not terminated)");
			else
				format_key(c, k, val, sizeof(val));
			mn_err(COMP, "%s = %s: out of range or malformed", k->name, val);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_addresses(const struct nicd_cfg *c)
{
	char a[INET_ADDRSTRLEN], list[256];
	const struct nicd_key *ipk = find_key("ip");
	bool in_subnet = false;

	if (c->nips == 0) {
		mn_err(COMP, "no ip address: set [nicd] ip or --ip (e.g. 10.0.0.1/24)");
		return -EINVAL;
	}
	if (c->nips > NICD_MAX_IPS) {
		mn_err(COMP, "%u ip addresses: expected at most %d", c->nips, NICD_MAX_IPS);
		return -EINVAL;
	}
	format_key(c, ipk, list, sizeof(list));
	for (unsigned int i = 0; i < c->nips; i++) {
		fmt_ip(c->ips[i], a);
		if (!ip_unicast(c->ips[i]) || c->prefix_len[i] < 1 ||
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
			     "(%s), other than nicd's own", fmt_ip(c->gateway, a), list);
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
	format_key(c, find_key("ip"), list, sizeof(list));
	for (unsigned int i = 0; i < t->nips; i++) {
		if (find_ip(c->ips, c->nips, t->ips[i]) < 0 || find_ip(t->ips, i, t->ips[i]) >= 0) {
			mn_err(COMP, "tenant %s: ip %s: expected one of nicd's addresses (%s), "
				     "each once", t->name, fmt_ip(t->ips[i], a), list);
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
				fmt_ip(a->ips[i], ip);
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
	char optcol[40], val[256];

	fprintf(f, "Usage: %s [OPTION]...\n"
		   "machnet-nicd, the NIC driver server: owns the NIC and moves frames between\n"
		   "it and the tenants' protocol servers.\n\n"
		   "Options (each overrides the [nicd] key of the same name in the file):\n"
		   "  -c, --config FILE         config file (default %s; a missing\n"
		   "                            default file is fine, a missing named one is not)\n",
		prog, NICD_DEFAULT_CONFIG);
	for (size_t i = 0; i < ARRAY_SIZE(nicd_keys); i++) {
		const struct nicd_key *k = &nicd_keys[i];

		if (!k->opt)
			continue;
		snprintf(optcol, sizeof(optcol), "--%s %s", k->opt, k->arg);
		fprintf(f, "      %-21s %s\n", optcol, k->help);
		if (k->type == KT_IPS)
			fprintf(f, "%28s%s\n", "", "repeatable; the first --ip replaces the file's list");
	}
	fprintf(f, "  -h, --help                print this help and exit\n"
		   "  -V, --version             print the version and exit\n\n"
		   "Config file keys (docs/config-nicd.md has them all):\n"
		   "  [nicd]\n");
	if (def)
		nicd_cfg_defaults(def);
	for (size_t i = 0; i < ARRAY_SIZE(nicd_keys); i++) {
		const struct nicd_key *k = &nicd_keys[i];

		if (def)
			format_key(def, k, val, sizeof(val));
		else
			val[0] = '\0';
		if (k->type == KT_UINT)
			fprintf(f, "  %-15s %lu..%lu, default %s: %s\n", k->name, k->min, k->max,
				val, k->help);
		else if (k->type == KT_IPS || k == find_key("device"))
			fprintf(f, "  %-15s required: %s\n", k->name, k->help);
		else
			fprintf(f, "  %-15s default %s: %s\n", k->name, val[0] ? val : "empty",
				k->help);
	}
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
	char ips[NICD_MAX_IPS * (INET_ADDRSTRLEN + 2)], ports[NICD_MAX_RANGES * 13];
	char ip[INET_ADDRSTRLEN], uid[16], gid[16];
	size_t n = 0;

	ips[0] = ports[0] = '\0';
	for (unsigned int i = 0; i < t->nips && i < NICD_MAX_IPS && n < sizeof(ips); i++)
		n += (size_t)snprintf(ips + n, sizeof(ips) - n, "%s%s", i ? ", " : "",
				      fmt_ip(t->ips[i], ip));
	n = 0;
	for (unsigned int i = 0; i < t->nranges && i < NICD_MAX_RANGES && n < sizeof(ports);
	     i++) {
		const struct nicd_port_range *r = &t->ranges[i];

		if (r->lo == r->hi)
			n += (size_t)snprintf(ports + n, sizeof(ports) - n, "%s%u",
					      i ? ", " : "", r->lo);
		else
			n += (size_t)snprintf(ports + n, sizeof(ports) - n, "%s%u-%u",
					      i ? ", " : "", r->lo, r->hi);
	}
	if (t->uid == NICD_ANY_UID)
		snprintf(uid, sizeof(uid), "any");
	else
		snprintf(uid, sizeof(uid), "%u", (unsigned int)t->uid);
	if (t->gid == NICD_ANY_GID)
		snprintf(gid, sizeof(gid), "any");
	else
		snprintf(gid, sizeof(gid), "%u", (unsigned int)t->gid);
	mn_info(COMP, "tenant %s: uid %s, gid %s, ip %s, ports %s", t->name, uid, gid, ips,
		ports);
}

void nicd_cfg_dump(const struct nicd_cfg *c)
{
	char val[512];

	for (size_t i = 0; i < ARRAY_SIZE(nicd_keys); i++) {
		format_key(c, &nicd_keys[i], val, sizeof(val));
		mn_info(COMP, "%s = %s", nicd_keys[i].name, val);
	}
	mn_info(COMP, "%u tenant%s", c->ntenants, c->ntenants == 1 ? "" : "s");
	for (unsigned int i = 0; i < c->ntenants && i < NICD_MAX_TENANTS; i++)
		dump_tenant(&c->tenants[i]);
}
