/* SPDX-License-Identifier: MIT */
/*
 * proto_cfg: the configuration of machnet-proto, the protocol server of one
 * tenant.
 *
 * Where values come from, later ones winning:
 *
 *   proto_cfg_defaults()   built-in defaults (docs/config-proto.md lists them)
 *   proto_cfg_load()       an INI file: -c FILE, or --tenant NAME meaning
 *                          /etc/machnet/tenants/NAME.ini
 *   proto_cfg_parse_args() command-line options, one per key
 *   proto_cfg_validate()   cross-field checks on the result
 *
 * proto_cfg_parse_cmdline() does all four in that order. The file has the
 * sections [tenant], [limits] and [transport], each at most once. Every
 * refusal is logged once with mn_err("config", ...), naming the file, line,
 * section, key, the value found and what was expected; the command line
 * names the option instead. The file syntax and its strictness are
 * ipc/conf's, the same as nicd.ini's.
 *
 * Thread-safety: none of these functions may run concurrently with each
 * other (iniparser's error callback and getopt's state are process-wide).
 * They are meant for start-up.
 */
#ifndef MN_SERVERS_PROTO_CONFIG_H
#define MN_SERVERS_PROTO_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "conf.h"

#define PROTO_NAME_MAX 32 /* tenant name incl. NUL; [a-z0-9_-], 1..31 chars */

/* --tenant NAME reads PROTO_TENANTS_DIR/NAME.ini. */
#define PROTO_TENANTS_DIR "/etc/machnet/tenants"

/* app_uid / app_gid value meaning "any application". */
#define PROTO_ANY_UID ((uid_t)-1)
#define PROTO_ANY_GID ((gid_t)-1)

/* Largest message the API carries (Machnet's limit). */
#define PROTO_MAX_MSG_SIZE (8u << 20)
/* Packets in flight per flow: the transport's tx window (tp_cfg_default()),
 * which a larger window or init_window could never use. */
#define PROTO_MAX_WINDOW 256

/* Largest message-buffer pool of one channel: channel_buffers * buffer_size. */
#define PROTO_CHANNEL_BYTES_MAX (1ull << 30)

enum proto_poll_mode {
	PROTO_POLL_BUSY,     /* spin forever; only with a core to spare */
	PROTO_POLL_YIELD,    /* sched_yield() when a loop found nothing */
	PROTO_POLL_ADAPTIVE, /* spin spin_us, then sleep up to sleep_max_us */
};

enum proto_cc {
	PROTO_CC_SWIFT, /* delay-based, Swift family: cwnd from the RTT vs target_delay_us */
	PROTO_CC_FIXED, /* a fixed window of `window` packets in flight per flow */
};

struct proto_cfg {
	/* [tenant] */
	char name[PROTO_NAME_MAX];  /* required; a [tenant.NAME] of nicd.ini */
	char runtime_dir[256];	    /* absolute; nicd.sock and <name>.sock ("/run/machnet") */
	uint32_t ip;		    /* host order, unicast; required (0 = unset) */
	struct mn_conf_port_range listen_ports;	   /* (5000-5999) */
	struct mn_conf_port_range ephemeral_ports; /* (40000-40999), disjoint from listen */
	uid_t app_uid;		    /* applications allowed to attach; PROTO_ANY_UID */
	gid_t app_gid;		    /* PROTO_ANY_GID */
	int log_level;		    /* enum mn_log_level (MN_LOG_INFO) */
	enum proto_poll_mode poll_mode; /* (adaptive) */
	uint32_t spin_us;	    /* adaptive: poll this long idle before sleeping (200) */
	uint32_t sleep_max_us;	    /* adaptive: longest sleep when idle (1000) */
	/* [limits] */
	uint32_t channels;	  /* attached channels at once (64) */
	uint32_t flows;		  /* flows at once, all channels together (1024) */
	uint32_t channel_buffers; /* message buffers per channel, power of two (4096) */
	uint32_t buffer_size;	  /* bytes per message buffer, its 16-byte header
				   * included; multiple of 64 (4096) */
	uint32_t max_msg_size;	  /* largest message, <= PROTO_MAX_MSG_SIZE (8 MiB) */
	uint32_t frames;	  /* frames of the nicd port, power of two (4096) */
	/* [transport] */
	enum proto_cc cc;	  /* (swift) */
	uint32_t window;	  /* fixed: packets in flight; swift: max cwnd (64) */
	uint32_t init_window;	  /* swift: first cwnd, <= window (8) */
	uint32_t rto_min_us;	  /* RTO floor (1000) */
	uint32_t rto_max_us;	  /* RTO ceiling, back-off stops here (1000000) */
	uint32_t rto_init_us;	  /* RTO before the first RTT sample (10000) */
	uint32_t max_retries;	  /* retransmissions of one packet before the flow fails (10) */
	uint32_t target_delay_us; /* swift: the RTT it steers to (100) */
	uint32_t keepalive_ms;	  /* probe an idle flow this often; 0 = never (1000) */
	uint32_t idle_timeout_ms; /* fail a flow silent this long; 0 = never (30000) */
};

/* Fill @c with the built-in defaults: no name, no ip. */
void proto_cfg_defaults(struct proto_cfg *c);

/*
 * proto_cfg_load - read the INI file @path over the current values of @c.
 *
 * Keys present in the file replace the values in @c. Unknown sections and
 * keys, a section or key given twice, and lines iniparser cannot parse are
 * refused. User and group names are resolved now (getpwnam_r/getgrnam_r).
 *
 * Returns 0, or -errno with @c unchanged: -ENOENT / -EACCES / -EISDIR the
 * file is missing, unreadable or not a file; -EINVAL a bad line, unknown
 * section or key, or a bad value; -ENOMEM. Every error is logged, e.g.
 *   "/etc/machnet/tenants/alice.ini:12: [limits] channels = 0: expected an integer in 1..1024"
 */
int proto_cfg_load(struct proto_cfg *c, const char *path);

/*
 * proto_cfg_parse_args - apply command-line options to @c (getopt_long,
 * restarted from argv[1] on each call). -c/--config and -t/--tenant are
 * accepted and skipped: proto_cfg_parse_cmdline handles them. --help and
 * --version print to stdout.
 *
 * Returns 0; 1 when --help or --version was printed (the caller exits 0);
 * -EINVAL for an unknown option, a missing or bad argument, or a stray
 * non-option argument, logged. On error @c is unchanged.
 */
int proto_cfg_parse_args(struct proto_cfg *c, int argc, char **argv);

/*
 * proto_cfg_parse_cmdline - the whole command line: defaults; then the
 * file: -c FILE if given, else PROTO_TENANTS_DIR/NAME.ini for --tenant NAME
 * (missing: an error), else none; then the other options; then
 * proto_cfg_validate(). --tenant NAME also presets [tenant] name, and the
 * result must name that tenant. --help/--version are answered before any
 * file is read, so they work with a broken config.
 *
 * Returns 0; 1 after --help/--version; -EINVAL (bad option, value or
 * combination) or the -errno of proto_cfg_load() (-ENOENT, -EACCES, ...).
 * Everything is logged or printed already.
 */
int proto_cfg_parse_cmdline(struct proto_cfg *c, int argc, char **argv);

/*
 * proto_cfg_parse_cmdline_at - proto_cfg_parse_cmdline() with @tenants_dir
 * in place of PROTO_TENANTS_DIR (tests, packagers).
 */
int proto_cfg_parse_cmdline_at(struct proto_cfg *c, int argc, char **argv,
			       const char *tenants_dir);

/*
 * proto_cfg_validate - cross-field checks: a valid name and a unicast ip are
 * set; listen_ports and ephemeral_ports are ranges inside 1..65535 that do
 * not overlap; channel_buffers * buffer_size <= PROTO_CHANNEL_BYTES_MAX and
 * max_msg_size <= half of it (one message never fills a channel);
 * init_window <= window; rto_min_us <= rto_init_us <= rto_max_us;
 * keepalive_ms < idle_timeout_ms unless either is 0. Also re-checks every
 * range the file and options enforce, so a struct filled by hand is held to
 * the same rules.
 *
 * Returns 0 or -EINVAL (the first problem found is logged).
 */
int proto_cfg_validate(const struct proto_cfg *c);

/* proto_cfg_usage - the --help text: every option and every key. */
void proto_cfg_usage(FILE *f, const char *prog);

/* proto_cfg_dump - log the effective configuration at info level, one
 * "key = value" line per key. */
void proto_cfg_dump(const struct proto_cfg *c);

/* "busy", "yield", "adaptive"; "?" for anything else. */
const char *proto_poll_mode_name(enum proto_poll_mode m);

/* "swift", "fixed"; "?" for anything else. */
const char *proto_cc_name(enum proto_cc cc);

#endif /* MN_SERVERS_PROTO_CONFIG_H */
