/* SPDX-License-Identifier: MIT */
/*
 * mn_conf: typed INI configuration (see conf.h).
 *
 * Loading a file is three steps. scan_file() reads it line by line, the way
 * iniparser 4.1's iniparser_line() does, recording every section and key
 * with its line and refusing what iniparser would accept silently. Then
 * iniparser loads it, and its entry count must equal what the scanner saw,
 * so the two readers cannot silently disagree. Last, the values are parsed
 * in file order, each error naming its line.
 *
 * Fields are reached through offsets into the program's struct and read and
 * written with memcpy, so no field is accessed through a type it was not
 * declared with.
 */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <iniparser.h>

#include "log.h"

_Static_assert(sizeof(uid_t) == sizeof(uint32_t) && sizeof(gid_t) == sizeof(uint32_t),
	       "MN_CONF_UID/GID fields are 32-bit");
_Static_assert(sizeof(struct mn_conf_port_range) == 4, "two uint16_t");

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int bad(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, MN_CONF_WHY_MAX, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- fields --------------------------------------------------------------- */

static void *at(void *obj, size_t off)
{
	return (char *)obj + off;
}

static const void *cat(const void *obj, size_t off)
{
	return (const char *)obj + off;
}

static unsigned long get_uint(const void *obj, const struct mn_conf_key *k)
{
	const void *p = cat(obj, k->off);
	uint64_t v64;
	uint32_t v32;
	uint16_t v16;
	uint8_t v8;

	switch (k->size) {
	case 1:
		memcpy(&v8, p, 1);
		return v8;
	case 2:
		memcpy(&v16, p, 2);
		return v16;
	case 4:
		memcpy(&v32, p, 4);
		return v32;
	default:
		memcpy(&v64, p, 8);
		return (unsigned long)v64;
	}
}

static void set_uint(void *obj, const struct mn_conf_key *k, unsigned long v)
{
	void *p = at(obj, k->off);
	uint64_t v64 = v;
	uint32_t v32 = (uint32_t)v;
	uint16_t v16 = (uint16_t)v;
	uint8_t v8 = (uint8_t)v;

	switch (k->size) {
	case 1:
		memcpy(p, &v8, 1);
		break;
	case 2:
		memcpy(p, &v16, 2);
		break;
	case 4:
		memcpy(p, &v32, 4);
		break;
	default:
		memcpy(p, &v64, 8);
		break;
	}
}

static int get_int(const void *obj, size_t off)
{
	int v;

	memcpy(&v, cat(obj, off), sizeof(v));
	return v;
}

static void set_int(void *obj, size_t off, int v)
{
	memcpy(at(obj, off), &v, sizeof(v));
}

static uint32_t get_u32(const void *obj, size_t off)
{
	uint32_t v;

	memcpy(&v, cat(obj, off), sizeof(v));
	return v;
}

static void set_u32(void *obj, size_t off, uint32_t v)
{
	memcpy(at(obj, off), &v, sizeof(v));
}

static unsigned int get_count(const void *obj, const struct mn_conf_key *k)
{
	unsigned int n;

	memcpy(&n, cat(obj, k->count_off), sizeof(n));
	return n;
}

static void set_count(void *obj, const struct mn_conf_key *k, unsigned int n)
{
	memcpy(at(obj, k->count_off), &n, sizeof(n));
}

static bool is_list(const struct mn_conf_key *k)
{
	return k->type == MN_CONF_IP_PREFIXES || k->type == MN_CONF_IP_LIST ||
	       k->type == MN_CONF_PORT_RANGES;
}

/* How many items list @k holds at most. */
static unsigned int list_cap(const struct mn_conf_key *k)
{
	size_t elem = k->type == MN_CONF_PORT_RANGES ? sizeof(struct mn_conf_port_range)
						      : sizeof(uint32_t);

	return (unsigned int)(k->size / elem);
}

static size_t enum_count(const struct mn_conf_key *k)
{
	size_t n = 0;

	while (k->names && k->names[n])
		n++;
	return n;
}

/* ---- value syntax --------------------------------------------------------- */

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

bool mn_conf_ipv4_unicast(uint32_t ip)
{
	return ip != 0 && (ip >> 28) < 14;
}

/* Dotted quad (inet_pton: no leading zeros, all four parts), unicast. */
static int parse_ipv4(const char *s, uint32_t *ip)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1 || !mn_conf_ipv4_unicast(ntohl(a.s_addr)))
		return -EINVAL;
	*ip = ntohl(a.s_addr);
	return 0;
}

const char *mn_conf_ipv4_str(uint32_t ip, char buf[16])
{
	struct in_addr a = { .s_addr = htonl(ip) };

	if (!inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN))
		snprintf(buf, INET_ADDRSTRLEN, "?");
	return buf;
}

static bool find_u32(const void *obj, size_t off, unsigned int n, uint32_t v)
{
	for (unsigned int i = 0; i < n; i++)
		if (get_u32(obj, off + i * sizeof(uint32_t)) == v)
			return true;
	return false;
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

/* "5000" or "5000-5999" (blanks allowed around '-'); cuts @item. */
static int parse_range(char *item, struct mn_conf_port_range *r)
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
		*id = MN_CONF_ANY_ID;
		return 0;
	}
	if (isdigit((unsigned char)val[0])) {
		if (parse_ulong(val, &v) || v >= MN_CONF_ANY_ID)
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

static int parse_bool(const char *val, bool *b)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(val, yes[i]) == 0) {
			*b = true;
			return 0;
		}
		if (strcasecmp(val, no[i]) == 0) {
			*b = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* "a, b or c" from a NULL-terminated list. */
static void join_or(const char *const *names, char *buf, size_t len)
{
	size_t n = 0, count = 0;

	while (names[count])
		count++;
	buf[0] = '\0';
	for (size_t i = 0; i < count && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s",
				      i == 0 ? "" : i + 1 == count ? " or " : ", ", names[i]);
}

static const char *const log_names[] = { "err", "warn", "info", "debug", NULL };

/* "576..9000", "16..1048576" with "a power of two", "a multiple of 64". */
static void uint_expect(const struct mn_conf_key *k, char *buf, size_t len)
{
	if (k->flags & MN_CONF_F_POW2)
		snprintf(buf, len, "a power of two in %lu..%lu", k->min, k->max);
	else if (k->align > 1)
		snprintf(buf, len, "a multiple of %lu in %lu..%lu", k->align, k->min, k->max);
	else
		snprintf(buf, len, "an integer in %lu..%lu", k->min, k->max);
}

static bool uint_ok(const struct mn_conf_key *k, unsigned long v)
{
	if (v < k->min || v > k->max)
		return false;
	if ((k->flags & MN_CONF_F_POW2) && (v == 0 || (v & (v - 1))))
		return false;
	return k->align <= 1 || v % k->align == 0;
}

/* ---- parsing one value ----------------------------------------------------- */

/* Append a comma list of "IP/LEN" to the list (the caller empties it first). */
static int parse_ip_prefixes(void *obj, const struct mn_conf_key *k, const char *val,
			     char *why)
{
	char *buf = strdup(val), *p = buf, *item;
	unsigned int n = get_count(obj, k), cap = list_cap(k);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (rc == 0 && (item = next_item(&p)) != NULL) {
		uint32_t ip = 0;
		uint8_t len = 0;

		rc = parse_ip_prefix(item, &ip, &len, why);
		if (rc == 0 && find_u32(obj, k->off, n, ip))
			rc = bad(why, "'%s': expected each address once", item);
		if (rc == 0 && n == cap)
			rc = bad(why, "expected at most %u addresses", cap);
		if (rc == 0) {
			set_u32(obj, k->off + n * sizeof(uint32_t), ip);
			memcpy(at(obj, k->aux_off + n), &len, 1);
			set_count(obj, k, ++n);
		}
	}
	free(buf);
	return rc;
}

/* Append a comma list of addresses. */
static int parse_ip_list(void *obj, const struct mn_conf_key *k, const char *val, char *why)
{
	char *buf = strdup(val), *p = buf, *item;
	unsigned int n = get_count(obj, k), cap = list_cap(k);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (rc == 0 && (item = next_item(&p)) != NULL) {
		uint32_t ip;

		if (parse_ipv4(item, &ip))
			rc = bad(why, "'%s': expected %s", item,
				 k->expect ? k->expect : "a unicast IPv4 address");
		else if (find_u32(obj, k->off, n, ip))
			rc = bad(why, "'%s': expected each address once", item);
		else if (n == cap)
			rc = bad(why, "expected at most %u addresses", cap);
		else {
			set_u32(obj, k->off + n * sizeof(uint32_t), ip);
			set_count(obj, k, ++n);
		}
	}
	free(buf);
	return rc;
}

#define RANGE_EXPECT "a port 1..65535 or a range LO-HI with 1 <= LO <= HI <= 65535"

/* Append a comma list of ports and ranges. */
static int parse_port_ranges(void *obj, const struct mn_conf_key *k, const char *val,
			     char *why)
{
	char *buf = strdup(val), *p = buf, *item;
	unsigned int n = get_count(obj, k), cap = list_cap(k);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (rc == 0 && (item = next_item(&p)) != NULL) {
		struct mn_conf_port_range r;
		char copy[32];

		snprintf(copy, sizeof(copy), "%s", item); /* item is cut by parse_range */
		if (parse_range(item, &r))
			rc = bad(why, "'%s': expected " RANGE_EXPECT, copy);
		else if (n == cap)
			rc = bad(why, "expected at most %u ports or ranges", cap);
		else {
			memcpy(at(obj, k->off + n * sizeof(r)), &r, sizeof(r));
			set_count(obj, k, ++n);
		}
	}
	free(buf);
	return rc;
}

static int parse_port_range(void *obj, const struct mn_conf_key *k, const char *val,
			    char *why)
{
	char *buf = strdup(val);
	struct mn_conf_port_range r;
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = parse_range(buf, &r);
	free(buf);
	if (rc)
		return bad(why, "expected " RANGE_EXPECT);
	memcpy(at(obj, k->off), &r, sizeof(r));
	return 0;
}

static int parse_enum(void *obj, const struct mn_conf_key *k, const char *val, char *why)
{
	char names[256];

	for (size_t i = 0; k->names && k->names[i]; i++) {
		if (strcasecmp(val, k->names[i]) == 0) {
			set_int(obj, k->off, (int)i);
			return 0;
		}
	}
	join_or(k->names, names, sizeof(names));
	return bad(why, "expected %s", names);
}

/* Does the field of @k have the size its type writes? (Catches table typos.) */
static bool size_ok(const struct mn_conf_key *k)
{
	switch (k->type) {
	case MN_CONF_UINT:
		return k->size == 1 || k->size == 2 || k->size == 4 || k->size == 8;
	case MN_CONF_STR:
		return k->size >= 1;
	case MN_CONF_BOOL:
		return k->size == sizeof(bool);
	case MN_CONF_ENUM:
	case MN_CONF_LOG:
		return k->size == sizeof(int);
	case MN_CONF_IPV4:
	case MN_CONF_UID:
	case MN_CONF_GID:
		return k->size == sizeof(uint32_t);
	case MN_CONF_PORT_RANGE:
		return k->size == sizeof(struct mn_conf_port_range);
	case MN_CONF_MAC:
		return k->size == 6;
	default:
		return list_cap(k) >= 1;
	}
}

/* Parse @val for key @k into @obj. 0, -EINVAL with @why filled, or -ENOMEM. */
static int parse_value(void *obj, const struct mn_conf_key *k, const char *val, char *why)
{
	char expect[128];
	unsigned long v;
	uint32_t u32 = 0;
	bool b;
	int lvl;

	if (!size_ok(k))
		return bad(why, "internal: field of %zu bytes for key type %d", k->size,
			   (int)k->type);
	switch (k->type) {
	case MN_CONF_UINT:
		if (parse_ulong(val, &v) || !uint_ok(k, v)) {
			uint_expect(k, expect, sizeof(expect));
			return bad(why, "expected %s", expect);
		}
		set_uint(obj, k, v);
		return 0;
	case MN_CONF_STR:
		if (strlen(val) >= k->size || (k->ok && !k->ok(val)))
			return bad(why, "expected %s, at most %zu characters",
				   k->expect ? k->expect : "text", k->size - 1);
		memcpy(at(obj, k->off), val, strlen(val) + 1);
		return 0;
	case MN_CONF_BOOL:
		if (parse_bool(val, &b))
			return bad(why, "expected true or false (or yes/no, on/off, 1/0)");
		memcpy(at(obj, k->off), &b, sizeof(b));
		return 0;
	case MN_CONF_ENUM:
		return parse_enum(obj, k, val, why);
	case MN_CONF_LOG:
		lvl = mn_log_level_parse(val);
		if (lvl < 0)
			return bad(why, "expected err, warn, info or debug");
		set_int(obj, k->off, lvl);
		return 0;
	case MN_CONF_IPV4:
		if ((k->flags & MN_CONF_F_NONE) &&
		    (val[0] == '\0' || strcasecmp(val, "none") == 0)) {
			set_u32(obj, k->off, 0);
			return 0;
		}
		if (parse_ipv4(val, &u32))
			return bad(why, "expected a unicast IPv4 address%s",
				   (k->flags & MN_CONF_F_NONE) ? ", or none" : "");
		set_u32(obj, k->off, u32);
		return 0;
	case MN_CONF_IP_PREFIXES:
		return parse_ip_prefixes(obj, k, val, why);
	case MN_CONF_IP_LIST:
		return parse_ip_list(obj, k, val, why);
	case MN_CONF_PORT_RANGE:
		return parse_port_range(obj, k, val, why);
	case MN_CONF_PORT_RANGES:
		return parse_port_ranges(obj, k, val, why);
	case MN_CONF_UID:
	case MN_CONF_GID:
		lvl = parse_id(val, k->type == MN_CONF_UID, &u32, why);
		if (lvl == 0)
			set_u32(obj, k->off, u32);
		return lvl;
	case MN_CONF_MAC:
		if (parse_mac(val, at(obj, k->off)))
			return bad(why, "expected a unicast MAC address as six hex pairs, "
					"e.g. 02:00:00:00:00:01");
		b = true;
		memcpy(at(obj, k->aux_off), &b, sizeof(b));
		return 0;
	}
	return bad(why, "internal: key type %d", (int)k->type);
}

/* ---- formatting ------------------------------------------------------------ */

static size_t fmt_range(char *buf, size_t len, const char *sep, struct mn_conf_port_range r)
{
	if (r.lo == r.hi)
		return (size_t)snprintf(buf, len, "%s%u", sep, r.lo);
	return (size_t)snprintf(buf, len, "%s%u-%u", sep, r.lo, r.hi);
}

static void format_list(const struct mn_conf_key *k, const void *obj, char *buf, size_t len)
{
	unsigned int n = get_count(obj, k), cap = list_cap(k);
	char ip[INET_ADDRSTRLEN];
	size_t used = 0;

	for (unsigned int i = 0; i < n && i < cap && used < len; i++) {
		const char *sep = i ? ", " : "";
		struct mn_conf_port_range r;
		uint8_t plen;

		switch (k->type) {
		case MN_CONF_IP_PREFIXES:
			memcpy(&plen, cat(obj, k->aux_off + i), 1);
			used += (size_t)snprintf(buf + used, len - used, "%s%s/%u", sep,
						 mn_conf_ipv4_str(get_u32(obj, k->off + i * 4), ip),
						 plen);
			break;
		case MN_CONF_IP_LIST:
			used += (size_t)snprintf(buf + used, len - used, "%s%s", sep,
						 mn_conf_ipv4_str(get_u32(obj, k->off + i * 4), ip));
			break;
		default:
			memcpy(&r, cat(obj, k->off + i * sizeof(r)), sizeof(r));
			used += fmt_range(buf + used, len - used, sep, r);
			break;
		}
	}
}

void mn_conf_format(const struct mn_conf_key *k, const void *obj, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];
	struct mn_conf_port_range r;
	const uint8_t *m;
	uint32_t id;
	bool b;
	int v;

	buf[0] = '\0';
	switch (k->type) {
	case MN_CONF_UINT:
		snprintf(buf, len, "%lu", get_uint(obj, k));
		break;
	case MN_CONF_STR:
		snprintf(buf, len, "%.*s", (int)k->size, (const char *)cat(obj, k->off));
		break;
	case MN_CONF_BOOL:
		memcpy(&b, cat(obj, k->off), sizeof(b));
		snprintf(buf, len, "%s", b ? "true" : "false");
		break;
	case MN_CONF_ENUM:
		v = get_int(obj, k->off);
		snprintf(buf, len, "%s",
			 v >= 0 && (size_t)v < enum_count(k) ? k->names[v] : "?");
		break;
	case MN_CONF_LOG:
		v = get_int(obj, k->off);
		snprintf(buf, len, "%s",
			 v >= 0 && (size_t)v < ARRAY_SIZE(log_names) - 1 ? log_names[v] : "?");
		break;
	case MN_CONF_IPV4:
		id = get_u32(obj, k->off);
		snprintf(buf, len, "%s",
			 id == 0 && (k->flags & MN_CONF_F_NONE) ? "none"
								: mn_conf_ipv4_str(id, ip));
		break;
	case MN_CONF_IP_PREFIXES:
	case MN_CONF_IP_LIST:
	case MN_CONF_PORT_RANGES:
		format_list(k, obj, buf, len);
		break;
	case MN_CONF_PORT_RANGE:
		memcpy(&r, cat(obj, k->off), sizeof(r));
		fmt_range(buf, len, "", r);
		break;
	case MN_CONF_UID:
	case MN_CONF_GID:
		id = get_u32(obj, k->off);
		if (id == MN_CONF_ANY_ID)
			snprintf(buf, len, "any");
		else
			snprintf(buf, len, "%u", id);
		break;
	case MN_CONF_MAC:
		memcpy(&b, cat(obj, k->aux_off), sizeof(b));
		m = cat(obj, k->off);
		if (b)
			snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
				 m[3], m[4], m[5]);
		else
			snprintf(buf, len, "%s", k->expect ? k->expect : "none");
		break;
	}
}

/* ---- the scanner ------------------------------------------------------------ */

struct ini_sec {
	char *name; /* lowercased, as iniparser stores it */
	unsigned int line;
	const struct mn_conf_section *def;
};

struct ini_key {
	unsigned int sec; /* index into secs */
	char *name;	  /* lowercased */
	unsigned int line;
	const struct mn_conf_key *def;
};

struct mn_conf_file {
	const struct mn_conf_schema *schema;
	const char *path;
	struct ini_sec *secs;
	unsigned int nsecs, cap_secs;
	struct ini_key *keys;
	unsigned int nkeys, cap_keys;
	dictionary *dict;
};

static void file_free(struct mn_conf_file *s)
{
	for (unsigned int i = 0; i < s->nsecs; i++)
		free(s->secs[i].name);
	for (unsigned int i = 0; i < s->nkeys; i++)
		free(s->keys[i].name);
	free(s->secs);
	free(s->keys);
	if (s->dict)
		iniparser_freedict(s->dict);
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

static const struct mn_conf_section *find_section(const struct mn_conf_schema *s,
						  const char *name)
{
	for (size_t i = 0; i < s->nsecs; i++) {
		const struct mn_conf_section *d = &s->secs[i];

		if (d->name_ok ? strncmp(name, d->name, strlen(d->name)) == 0
			       : strcmp(name, d->name) == 0)
			return d;
	}
	return NULL;
}

static const struct mn_conf_key *find_key(const struct mn_conf_section *d, const char *name)
{
	for (size_t i = 0; i < d->nkeys; i++)
		if (strcmp(d->keys[i].name, name) == 0)
			return &d->keys[i];
	return NULL;
}

/* "[nicd] or [tenant.NAME]": the sections a file may have. */
static void sections_text(const struct mn_conf_schema *s, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->nsecs && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s[%s%s]",
				      i == 0 ? "" : i + 1 == s->nsecs ? " or " : ", ",
				      s->secs[i].name, s->secs[i].name_ok ? "NAME" : "");
}

static void key_names(const struct mn_conf_section *d, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < d->nkeys && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", d->keys[i].name);
}

static int scan_section(struct mn_conf_file *s, char *name, unsigned int line)
{
	const char *comp = s->schema->comp;
	const struct mn_conf_section *d = find_section(s->schema, name);
	char secs[256];
	int rc;

	if (!d) {
		sections_text(s->schema, secs, sizeof(secs));
		mn_err(comp, "%s:%u: unknown section [%s]: expected %s", s->path, line, name,
		       secs);
		return -EINVAL;
	}
	if (d->name_ok && !d->name_ok(name + strlen(d->name))) {
		mn_err(comp, "%s:%u: [%s]: expected %s", s->path, line, name,
		       d->name_expect ? d->name_expect : "a valid name");
		return -EINVAL;
	}
	for (unsigned int i = 0; i < s->nsecs; i++) {
		if (strcmp(s->secs[i].name, name) == 0) {
			mn_err(comp, "%s:%u: [%s]: section given twice (first at line %u)",
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
	s->secs[s->nsecs].def = d;
	s->secs[s->nsecs++].line = line;
	return 0;
}

static int scan_key(struct mn_conf_file *s, char *name, unsigned int line)
{
	const char *comp = s->schema->comp;
	const struct mn_conf_key *k;
	const struct ini_sec *sec;
	char names[512];
	int rc;

	if (s->nsecs == 0) {
		sections_text(s->schema, names, sizeof(names));
		mn_err(comp, "%s:%u: key '%s' outside any section: expected %s before it",
		       s->path, line, name, names);
		return -EINVAL;
	}
	sec = &s->secs[s->nsecs - 1];
	k = find_key(sec->def, name);
	if (!k) {
		key_names(sec->def, names, sizeof(names));
		mn_err(comp, "%s:%u: [%s] %s: unknown key; expected one of: %s", s->path, line,
		       sec->name, name, names);
		return -EINVAL;
	}
	for (unsigned int i = 0; i < s->nkeys; i++) {
		if (s->keys[i].sec == s->nsecs - 1 && strcmp(s->keys[i].name, name) == 0) {
			mn_err(comp, "%s:%u: [%s] %s: key given twice (first at line %u)",
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
	s->keys[s->nkeys].def = k;
	s->keys[s->nkeys++].line = line;
	return 0;
}

/*
 * Classify one line as iniparser 4.1 would (iniparser_line()), but refuse
 * the forms it would accept and mis-read: "[]", "[a]b]", a comment after a
 * section header (iniparser: syntax error, without saying why), and lines
 * continued with a trailing backslash (-EAGAIN).
 */
static int scan_line(struct mn_conf_file *s, char *raw, unsigned int line)
{
	const char *comp = s->schema->comp;
	char *l = strip(raw, false), *eq;
	size_t len = strlen(l);
	char shown[80]; /* the line as found, for messages */
	char secs[256];

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
			mn_err(comp, "%s:%u: '%s': expected [SECTION] alone on its line "
				     "(no comment after it)", s->path, line, shown);
			return -EINVAL;
		}
		l[len - 1] = '\0';
		name = strip(l + 1, true);
		if (!*name || strpbrk(name, "[]:")) {
			sections_text(s->schema, secs, sizeof(secs));
			mn_err(comp, "%s:%u: '[%s]': expected %s", s->path, line, name, secs);
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
		mn_err(comp, "%s:%u: '%s': expected KEY = VALUE, [SECTION], or a comment "
			     "starting with ; or #", s->path, line, shown);
		return -EINVAL;
	}
	return scan_key(s, l, line);
}

static int scan_file(FILE *f, struct mn_conf_file *s)
{
	const char *comp = s->schema->comp;
	unsigned int line = 0;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	while (rc == 0 && (n = getline(&buf, &cap, f)) >= 0) {
		line++;
		if (memchr(buf, '\0', (size_t)n)) {
			mn_err(comp, "%s:%u: expected text, found a NUL byte", s->path, line);
			rc = -EINVAL;
		} else if (n > MN_CONF_LINE_MAX) {
			mn_err(comp, "%s:%u: expected lines of at most %d characters", s->path,
			       line, MN_CONF_LINE_MAX);
			rc = -EINVAL;
		} else {
			rc = scan_line(s, buf, line);
			if (rc == -EAGAIN) {
				mn_err(comp, "%s:%u: expected no '\\' at the end of a line "
					     "(continuation lines are not supported)",
				       s->path, line);
				rc = -EINVAL;
			}
		}
	}
	if (rc == 0 && ferror(f)) {
		rc = -EIO;
		mn_err(comp, "%s: read error", s->path);
	}
	free(buf);
	return rc;
}

/* ---- loading ----------------------------------------------------------------- */

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

static int load_dict(struct mn_conf_file *s)
{
	const char *comp = s->schema->comp;

	ini_msg[0] = '\0';
	iniparser_set_error_callback(ini_errback);
	s->dict = iniparser_load(s->path);
	iniparser_set_error_callback(NULL);
	for (char *p = ini_msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (!s->dict) {
		mn_err(comp, "%s: iniparser refused the file: %s", s->path,
		       ini_msg[0] ? ini_msg : "out of memory");
		return ini_msg[0] ? -EINVAL : -ENOMEM;
	}
	if ((unsigned int)s->dict->n != s->nsecs + s->nkeys) {
		mn_err(comp, "%s: iniparser read %d sections and keys where %u were "
			     "expected (file changed while being read?)",
		       s->path, s->dict->n, s->nsecs + s->nkeys);
		return -EINVAL;
	}
	return 0;
}

/* The value of key @k, or NULL (logged) if iniparser did not read it. */
static const char *value_of(const struct mn_conf_file *s, const struct ini_key *k)
{
	const char *sec = s->secs[k->sec].name;
	char entry[2 * MN_CONF_LINE_MAX + 2]; /* both names come from one line */
	const char *v = NULL;

	if ((size_t)snprintf(entry, sizeof(entry), "%s:%s", sec, k->name) < sizeof(entry))
		v = iniparser_getstring(s->dict, entry, NULL);
	if (!v)
		mn_err(s->schema->comp, "%s:%u: [%s] %s: iniparser did not read this key",
		       s->path, k->line, sec, k->name);
	return v;
}

int mn_conf_apply(const struct mn_conf_file *f, unsigned int sec, void *obj)
{
	const struct mn_conf_section *d = f->secs[sec].def;
	const char *comp = f->schema->comp;
	char why[MN_CONF_WHY_MAX];

	for (unsigned int i = 0; i < f->nkeys; i++) {
		const struct ini_key *k = &f->keys[i];
		const char *val;
		int rc;

		if (k->sec != sec)
			continue;
		val = value_of(f, k);
		if (!val)
			return -EINVAL;
		if (is_list(k->def))
			set_count(obj, k->def, 0); /* the file's list replaces the current one */
		rc = parse_value(obj, k->def, val, why);
		if (rc) {
			mn_err(comp, "%s:%u: [%s] %s = %s: %s", f->path, k->line,
			       f->secs[sec].name, k->name, val,
			       rc == -ENOMEM ? "out of memory" : why);
			return rc;
		}
	}
	for (size_t j = 0; j < d->nkeys; j++) {
		bool seen = false;

		if (!d->keys[j].missing)
			continue;
		for (unsigned int i = 0; i < f->nkeys && !seen; i++)
			seen = f->keys[i].sec == sec && f->keys[i].def == &d->keys[j];
		if (!seen) {
			mn_err(comp, "%s:%u: [%s]: missing key '%s': expected %s", f->path,
			       f->secs[sec].line, f->secs[sec].name, d->keys[j].name,
			       d->keys[j].missing);
			return -EINVAL;
		}
	}
	return 0;
}

const char *mn_conf_file_path(const struct mn_conf_file *f)
{
	return f->path;
}

const char *mn_conf_sec_name(const struct mn_conf_file *f, unsigned int sec)
{
	return f->secs[sec].name;
}

const char *mn_conf_sec_instance(const struct mn_conf_file *f, unsigned int sec)
{
	const struct ini_sec *s = &f->secs[sec];

	return s->def->name_ok ? s->name + strlen(s->def->name) : s->name;
}

unsigned int mn_conf_sec_line(const struct mn_conf_file *f, unsigned int sec)
{
	return f->secs[sec].line;
}

static FILE *open_config(const char *comp, const char *path, int *rc)
{
	struct stat st;
	FILE *f = fopen(path, "re");

	if (!f) {
		*rc = -errno;
		mn_err(comp, "%s: cannot open the config file: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0)
		st.st_mode = 0;
	if (!S_ISREG(st.st_mode)) {
		*rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		mn_err(comp, "%s: expected a regular file", path);
		fclose(f);
		return NULL;
	}
	return f;
}

/* Apply every section of @f to @cfg: schema order, then file order. */
static int apply_all(const struct mn_conf_file *f, void *cfg)
{
	const struct mn_conf_schema *s = f->schema;

	for (size_t d = 0; d < s->nsecs; d++) {
		for (unsigned int si = 0; si < f->nsecs; si++) {
			int rc;

			if (f->secs[si].def != &s->secs[d])
				continue;
			if (s->secs[d].apply)
				rc = s->secs[d].apply(cfg, f, si);
			else
				rc = mn_conf_apply(f, si, cfg);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int mn_conf_load(const struct mn_conf_schema *s, const char *path, void *cfg, size_t size)
{
	struct mn_conf_file file = { .schema = s, .path = path };
	void *tmp = NULL;
	FILE *f;
	int rc = 0;

	f = open_config(s->comp, path, &rc);
	if (!f)
		return rc;
	rc = scan_file(f, &file);
	fclose(f);
	if (rc)
		goto out;
	rc = load_dict(&file);
	if (rc)
		goto out;
	tmp = malloc(size);
	if (!tmp) {
		rc = -ENOMEM;
		mn_err(s->comp, "%s: out of memory", path);
		goto out;
	}
	memcpy(tmp, cfg, size);
	rc = apply_all(&file, tmp);
	if (rc == 0)
		memcpy(cfg, tmp, size);
out:
	free(tmp);
	file_free(&file);
	return rc;
}

/* ---- command line ---------------------------------------------------------- */

#define OPT_EXTRA_BASE 128 /* val of extra option j without a short name */
#define OPT_KEY_BASE 256   /* val of option key i (in options order) */
#define MAX_EXTRA_OPTS 16  /* "+:" + "x:" per extra + "hV" fit shorts[] */

/* The options of one pass, built from the schema. */
struct opt_set {
	struct option *opts;
	const struct mn_conf_key **keys; /* keys[i] has getopt val OPT_KEY_BASE + i */
	bool *replaced;			 /* list keys[i] already emptied by this pass */
	size_t nkeys;
	char shorts[64];
};

static void opt_set_free(struct opt_set *o)
{
	free(o->opts);
	free(o->keys);
	free(o->replaced);
}

static int opt_set_build(const struct mn_conf_schema *s, struct opt_set *o)
{
	size_t total = 0, n = 0, sn = 0;

	for (size_t d = 0; d < s->nsecs; d++)
		for (size_t i = 0; !s->secs[d].name_ok && i < s->secs[d].nkeys; i++)
			total += s->secs[d].keys[i].opt != NULL;
	if (s->nopts > MAX_EXTRA_OPTS) {
		mn_err(s->comp, "internal: %zu extra options, at most %d", s->nopts,
		       MAX_EXTRA_OPTS);
		return -EINVAL;
	}
	o->opts = calloc(total + s->nopts + 3, sizeof(*o->opts));
	o->keys = calloc(total + 1, sizeof(*o->keys));
	o->replaced = calloc(total + 1, sizeof(*o->replaced));
	if (!o->opts || !o->keys || !o->replaced) {
		mn_err(s->comp, "out of memory");
		return -ENOMEM;
	}
	sn += (size_t)snprintf(o->shorts, sizeof(o->shorts), "+:");
	for (size_t j = 0; j < s->nopts; j++) {
		int val = s->opts[j].short_name ? s->opts[j].short_name
						: OPT_EXTRA_BASE + (int)j;

		o->opts[n++] = (struct option){ s->opts[j].name, required_argument, NULL, val };
		if (s->opts[j].short_name)
			sn += (size_t)snprintf(o->shorts + sn, sizeof(o->shorts) - sn, "%c:",
					       s->opts[j].short_name);
	}
	for (size_t d = 0; d < s->nsecs; d++) {
		for (size_t i = 0; !s->secs[d].name_ok && i < s->secs[d].nkeys; i++) {
			if (!s->secs[d].keys[i].opt)
				continue;
			o->keys[o->nkeys] = &s->secs[d].keys[i];
			o->opts[n++] = (struct option){ s->secs[d].keys[i].opt, required_argument,
							NULL, OPT_KEY_BASE + (int)o->nkeys++ };
		}
	}
	o->opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	o->opts[n++] = (struct option){ "version", no_argument, NULL, 'V' };
	o->opts[n] = (struct option){ NULL, 0, NULL, 0 };
	snprintf(o->shorts + sn, sizeof(o->shorts) - sn, "hV");
	return 0;
}

/* Name the option getopt just refused. */
static void opt_error(const char *comp, int argc, char **argv, const char *what)
{
	const char *arg = optind >= 1 && optind <= argc ? argv[optind - 1] : "?";
	char shortname[3] = { '-', (char)optopt, '\0' };

	if (optopt > 0 && optopt < OPT_EXTRA_BASE && strncmp(arg, "--", 2) != 0)
		arg = shortname;
	mn_err(comp, "%s option '%s' (see --help)", what, arg);
}

static const char *prog_name(const struct mn_conf_schema *s, int argc, char **argv)
{
	const char *p;

	if (argc < 1 || !argv[0] || !argv[0][0])
		return s->prog;
	p = strrchr(argv[0], '/');
	return p ? p + 1 : argv[0];
}

/* An extra option (not a key): record its argument, once. */
static int extra_opt(const struct mn_conf_schema *s, int o, const char **vals)
{
	for (size_t j = 0; j < s->nopts; j++) {
		int val = s->opts[j].short_name ? s->opts[j].short_name
						: OPT_EXTRA_BASE + (int)j;

		if (val != o)
			continue;
		if (vals && vals[j]) {
			mn_err(s->comp, "--%s given twice ('%s', '%s')", s->opts[j].name, vals[j],
			       optarg);
			return -EINVAL;
		}
		if (vals)
			vals[j] = optarg;
		return 0;
	}
	return 1;
}

/* A key option: parse its argument into @cfg (when given). */
static int key_opt(const struct mn_conf_schema *s, struct opt_set *o, int v, void *cfg)
{
	const struct mn_conf_key *k;
	char why[MN_CONF_WHY_MAX];
	int rc;

	if (v < OPT_KEY_BASE || (size_t)(v - OPT_KEY_BASE) >= o->nkeys) {
		mn_err(s->comp, "internal: getopt returned %d", v);
		return -EINVAL;
	}
	if (!cfg)
		return 0;
	k = o->keys[v - OPT_KEY_BASE];
	if (is_list(k) && !o->replaced[v - OPT_KEY_BASE]) {
		set_count(cfg, k, 0); /* the first option replaces the file's list */
		o->replaced[v - OPT_KEY_BASE] = true;
	}
	rc = parse_value(cfg, k, optarg, why);
	if (rc)
		mn_err(s->comp, "--%s %s: %s", k->opt, optarg,
		       rc == -ENOMEM ? "out of memory" : why);
	return rc;
}

/* One getopt_long pass over argv into @cfg (or none). */
static int run_getopt(const struct mn_conf_schema *s, struct opt_set *o, void *cfg,
		      int argc, char **argv, const char **vals)
{
	int v, rc;

	optind = 0; /* glibc: restart from argv[1] and forget earlier state */
	opterr = 0;
	/* '+': stop at the first non-option; ':': report a missing argument. */
	while ((v = getopt_long(argc, argv, o->shorts, o->opts, NULL)) != -1) {
		switch (v) {
		case 'h':
			s->usage(stdout, prog_name(s, argc, argv));
			return 1;
		case 'V':
			printf("%s %s\n", s->prog, s->version);
			return 1;
		case ':':
			opt_error(s->comp, argc, argv, "missing argument for");
			return -EINVAL;
		case '?':
			opt_error(s->comp, argc, argv, "unknown or ambiguous");
			return -EINVAL;
		}
		rc = extra_opt(s, v, vals);
		if (rc == 1)
			rc = key_opt(s, o, v, cfg);
		if (rc)
			return rc;
	}
	if (optind < argc) {
		mn_err(s->comp, "unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

int mn_conf_parse_args(const struct mn_conf_schema *s, void *cfg, size_t size, int argc,
		       char **argv, const char **vals)
{
	struct opt_set o = { 0 };
	void *tmp = NULL;
	int rc;

	if (vals)
		for (size_t j = 0; j < s->nopts; j++)
			vals[j] = NULL;
	rc = opt_set_build(s, &o);
	if (rc)
		goto out;
	if (cfg) {
		tmp = malloc(size);
		if (!tmp) {
			rc = -ENOMEM;
			mn_err(s->comp, "out of memory");
			goto out;
		}
		memcpy(tmp, cfg, size);
	}
	rc = run_getopt(s, &o, tmp, argc, argv, vals);
	if (rc == 0 && cfg)
		memcpy(cfg, tmp, size);
out:
	free(tmp);
	opt_set_free(&o);
	return rc;
}

/* ---- checks, help, dump ------------------------------------------------------ */

static bool key_in_range(const struct mn_conf_key *k, const void *obj)
{
	struct mn_conf_port_range r;
	const char *str;

	switch (k->type) {
	case MN_CONF_UINT:
		return uint_ok(k, get_uint(obj, k));
	case MN_CONF_STR:
		str = cat(obj, k->off);
		return memchr(str, '\0', k->size) && (!k->ok || k->ok(str));
	case MN_CONF_ENUM:
		return get_int(obj, k->off) >= 0 && (size_t)get_int(obj, k->off) < enum_count(k);
	case MN_CONF_LOG:
		return get_int(obj, k->off) >= MN_LOG_ERR && get_int(obj, k->off) <= MN_LOG_DEBUG;
	case MN_CONF_PORT_RANGE:
		memcpy(&r, cat(obj, k->off), sizeof(r));
		return r.lo >= 1 && r.lo <= r.hi;
	default:
		return true; /* lists, addresses, ids: the program's cross-field checks */
	}
}

int mn_conf_check(const struct mn_conf_schema *s, const void *cfg)
{
	char val[MN_CONF_VALUE_MAX];

	for (size_t d = 0; d < s->nsecs; d++) {
		for (size_t i = 0; !s->secs[d].name_ok && i < s->secs[d].nkeys; i++) {
			const struct mn_conf_key *k = &s->secs[d].keys[i];

			if (key_in_range(k, cfg))
				continue;
			if (k->type == MN_CONF_STR && !memchr(cat(cfg, k->off), '\0', k->size))
				snprintf(val, sizeof(val), "(not terminated)");
			else
				mn_conf_format(k, cfg, val, sizeof(val));
			mn_err(s->comp, "%s = %s: out of range or malformed", k->name, val);
			return -EINVAL;
		}
	}
	return 0;
}

void mn_conf_usage_options(FILE *f, const struct mn_conf_schema *s)
{
	char optcol[64];

	for (size_t d = 0; d < s->nsecs; d++) {
		for (size_t i = 0; !s->secs[d].name_ok && i < s->secs[d].nkeys; i++) {
			const struct mn_conf_key *k = &s->secs[d].keys[i];

			if (!k->opt)
				continue;
			snprintf(optcol, sizeof(optcol), "--%s %s", k->opt, k->arg);
			if (strlen(optcol) <= 21)
				fprintf(f, "      %-21s %s\n", optcol, k->help);
			else
				fprintf(f, "      %s\n%28s%s\n", optcol, "", k->help);
			if (is_list(k))
				fprintf(f, "%28srepeatable; the first --%s replaces the file's list\n",
					"", k->opt);
		}
	}
}

void mn_conf_usage_keys(FILE *f, const struct mn_conf_section *sec, const void *defaults)
{
	char val[MN_CONF_VALUE_MAX], range[128];

	for (size_t i = 0; i < sec->nkeys; i++) {
		const struct mn_conf_key *k = &sec->keys[i];

		if (defaults)
			mn_conf_format(k, defaults, val, sizeof(val));
		else
			val[0] = '\0';
		if (k->type == MN_CONF_UINT) {
			snprintf(range, sizeof(range), "%lu..%lu%s", k->min, k->max,
				 (k->flags & MN_CONF_F_POW2) ? ", power of two" : "");
			if (k->align > 1)
				snprintf(range + strlen(range), sizeof(range) - strlen(range),
					 ", multiple of %lu", k->align);
			fprintf(f, "  %-15s %s, default %s: %s\n", k->name, range, val, k->help);
		} else if (k->flags & MN_CONF_F_REQUIRED) {
			fprintf(f, "  %-15s required: %s\n", k->name, k->help);
		} else {
			fprintf(f, "  %-15s default %s: %s\n", k->name, val[0] ? val : "empty",
				k->help);
		}
	}
}

void mn_conf_dump(const struct mn_conf_schema *s, const void *cfg)
{
	char val[MN_CONF_VALUE_MAX];

	for (size_t d = 0; d < s->nsecs; d++) {
		for (size_t i = 0; !s->secs[d].name_ok && i < s->secs[d].nkeys; i++) {
			mn_conf_format(&s->secs[d].keys[i], cfg, val, sizeof(val));
			mn_info(s->comp, "%s = %s", s->secs[d].keys[i].name, val);
		}
	}
}
