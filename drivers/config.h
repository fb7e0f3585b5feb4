/* SPDX-License-Identifier: MIT */
/*
 * nicd_cfg: the configuration of machnet-nicd, the NIC driver server.
 *
 * Where values come from, later ones winning:
 *
 *   nicd_cfg_defaults()   built-in defaults (docs/config-nicd.md lists them)
 *   nicd_cfg_load()       an INI file, /etc/machnet/nicd.ini unless -c FILE
 *   nicd_cfg_parse_args() command-line options (the common [nicd] keys)
 *   nicd_cfg_validate()   cross-field checks on the result
 *
 * nicd_cfg_parse_cmdline() does all four in that order. The file has one
 * [nicd] section and one [tenant.NAME] section per tenant; tenants come from
 * the file only. Every refusal is logged once with mn_err("config", ...),
 * naming the file, line, section, key, the value found and what was
 * expected; the command line names the option instead.
 *
 * Thread-safety: none of these functions may run concurrently with each
 * other (iniparser's error callback and getopt's state are process-wide).
 * They are meant for start-up.
 */
#ifndef MN_DRIVERS_CONFIG_H
#define MN_DRIVERS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define NICD_MAX_TENANTS 64
#define NICD_MAX_IPS 8
#define NICD_MAX_RANGES 16
#define NICD_MAX_QUEUES 8	/* == MN_PORT_MAX_QUEUES (checked in config.c) */
#define NICD_NAME_MAX 32	/* tenant name incl. NUL; [a-z0-9_-], 1..31 chars */

#define NICD_DEFAULT_CONFIG "/etc/machnet/nicd.ini"

/* uid/gid value meaning "any peer". */
#define NICD_ANY_UID ((uid_t)-1)
#define NICD_ANY_GID ((gid_t)-1)

struct nicd_port_range {
	uint16_t lo, hi; /* inclusive, 1 <= lo <= hi */
};

/* What one tenant (one protocol server) may do. */
struct nicd_tenant_cfg {
	char name[NICD_NAME_MAX]; /* lowercase: iniparser lowercases sections */
	uid_t uid;		  /* allowed peer uid; NICD_ANY_UID = any */
	gid_t gid;		  /* allowed peer gid; NICD_ANY_GID = any */
	uint32_t ips[NICD_MAX_IPS]; /* host order; each one of nicd's ips */
	unsigned int nips;	    /* >= 1 */
	struct nicd_port_range ranges[NICD_MAX_RANGES]; /* UDP ports it may claim */
	unsigned int nranges;				/* >= 1 */
};

enum nicd_poll_mode {
	NICD_POLL_BUSY,	    /* spin forever; only with a core to spare */
	NICD_POLL_YIELD,    /* sched_yield() when a loop found nothing */
	NICD_POLL_ADAPTIVE, /* spin spin_us, then sleep up to sleep_max_us */
};

struct nicd_cfg {
	char device[256];	/* PCI address "0000:00:04.0" or vdev
				 * "net_af_xdp0,iface=eth1" (required) */
	char eal_args[512];	/* extra EAL arguments, space separated ("") */
	char file_prefix[64];	/* DPDK --file-prefix ("machnet-nicd") */
	uint32_t ips[NICD_MAX_IPS];	  /* host order (required, >= 1) */
	uint8_t prefix_len[NICD_MAX_IPS]; /* 1..32, per ips[i] */
	unsigned int nips;
	uint32_t gateway;	/* host order; 0 = none; inside one of the subnets */
	uint8_t mac[6];		/* used when mac_set; else the port's own MAC */
	bool mac_set;
	uint16_t mtu;		/* IPv4 MTU, 576..9000 (1500) */
	uint16_t queues;	/* 1..NICD_MAX_QUEUES (1) */
	char lcores[64];	/* DPDK -l list ("0") */
	enum nicd_poll_mode poll_mode;	/* (adaptive) */
	uint32_t spin_us;	/* adaptive: poll (yielding) this long idle before sleeping (200) */
	uint32_t sleep_max_us;	/* adaptive: longest sleep when idle (1000) */
	char runtime_dir[256];	/* absolute; holds nicd.sock ("/run/machnet") */
	int log_level;		/* enum mn_log_level (MN_LOG_INFO) */
	uint32_t arp_ttl_s;	/* neighbour entry lifetime (60) */
	uint32_t arp_timeout_ms;/* resolution gives up after (1000) */
	uint32_t nframes_max;	/* largest frame pool a tenant may register (65536) */
	struct nicd_tenant_cfg tenants[NICD_MAX_TENANTS];
	unsigned int ntenants;
};

/* Fill @c with the built-in defaults: no device, no ip, no tenants. */
void nicd_cfg_defaults(struct nicd_cfg *c);

/*
 * nicd_cfg_load - read the INI file @path over the current values of @c.
 *
 * Keys present in the file replace the values in @c; [nicd] ip replaces the
 * whole list. A [tenant.NAME] section replaces a tenant of that name already
 * in @c, else adds one. Unknown sections and keys, a section or key given
 * twice, and lines iniparser cannot parse are refused, so typos are caught.
 * User and group names are resolved now (getpwnam_r/getgrnam_r).
 *
 * Returns 0, or -errno with @c unchanged: -ENOENT / -EACCES / -EISDIR the
 * file is missing, unreadable or not a file; -EINVAL a bad line, unknown
 * section or key, or a bad value; -ENOMEM. Every error is logged, e.g.
 *   "/etc/machnet/nicd.ini:7: [nicd] mtu = 70000: expected an integer in 576..9000"
 */
int nicd_cfg_load(struct nicd_cfg *c, const char *path);

/*
 * nicd_cfg_parse_args - apply command-line options to @c (getopt_long,
 * restarted from argv[1] on each call). -c/--config FILE is accepted and
 * skipped: the caller loads it first (nicd_cfg_parse_cmdline does). The
 * first --ip empties the list; each --ip adds a comma-separated list.
 * --help and --version print to stdout.
 *
 * Returns 0; 1 when --help or --version was printed (the caller exits 0);
 * -EINVAL for an unknown option, a missing or bad argument, or a stray
 * non-option argument, logged. On error @c is unchanged.
 */
int nicd_cfg_parse_args(struct nicd_cfg *c, int argc, char **argv);

/*
 * nicd_cfg_parse_cmdline - the whole command line: defaults, then the file
 * named by -c/--config (default NICD_DEFAULT_CONFIG: a missing default file
 * is fine, a missing named one is an error), then the other options, then
 * nicd_cfg_validate(). --help/--version are answered before any file is
 * read, so they work with a broken config.
 *
 * Returns 0; 1 after --help/--version; -EINVAL (bad option, value or
 * combination) or the -errno of nicd_cfg_load() (-ENOENT, -EACCES, ...).
 * Everything is logged or printed already.
 */
int nicd_cfg_parse_cmdline(struct nicd_cfg *c, int argc, char **argv);

/*
 * nicd_cfg_parse_cmdline_at - nicd_cfg_parse_cmdline() with @default_path
 * in place of NICD_DEFAULT_CONFIG (tests, packagers).
 */
int nicd_cfg_parse_cmdline_at(struct nicd_cfg *c, int argc, char **argv,
			      const char *default_path);

/*
 * nicd_cfg_validate - cross-field checks: a device is set; at least one ip,
 * none twice; the gateway lies inside one of the subnets and is not one of
 * ours; nicd.sock fits in a unix socket path under runtime_dir; each tenant
 * has a valid, unique name, at least one ip and one port range, ips that
 * are nicd's, ranges with 1 <= lo <= hi; no two tenants may claim the same
 * (ip, port). Also re-checks every range the file and options enforce, so a
 * struct filled by hand is held to the same rules.
 *
 * Returns 0 or -EINVAL (the first problem found is logged).
 */
int nicd_cfg_validate(const struct nicd_cfg *c);

/* nicd_cfg_usage - the --help text: every option and a summary of the keys. */
void nicd_cfg_usage(FILE *f, const char *prog);

/* nicd_cfg_dump - log the effective configuration at info level, one line
 * per item (one per tenant). */
void nicd_cfg_dump(const struct nicd_cfg *c);

/* "busy", "yield", "adaptive"; "?" for anything else. */
const char *nicd_poll_mode_name(enum nicd_poll_mode m);

#endif /* MN_DRIVERS_CONFIG_H */
