/* SPDX-License-Identifier: MIT */
/*
 * mn_conf: strict, typed INI configuration for the machnet servers.
 *
 * A program describes its configuration once, as a schema: sections, and in
 * each a table of keys, each key naming its type, where it lives in the
 * program's config struct (offsetof), its range or syntax, its command-line
 * option and a line of help. From that one table mn_conf
 *
 *   mn_conf_load()        reads an INI file over the struct,
 *   mn_conf_parse_args()  applies getopt_long options generated from it,
 *   mn_conf_usage_*()     prints the --help lines of the options and keys,
 *   mn_conf_check()       re-checks every key's range (structs set by hand),
 *   mn_conf_dump()        logs the effective values.
 *
 * The file is read with iniparser, but iniparser reports no line numbers,
 * silently merges a section or key given twice and accepts any name. So a
 * scanner of ours reads the file first, line by line, the way iniparser 4.1
 * does; it records every section and key with its line and refuses unknown
 * sections and keys, repeats, lines over MN_CONF_LINE_MAX characters, NUL
 * bytes and the constructs iniparser would mis-read (a comment after
 * [section], a trailing '\' continuation, "[]", "[a]b]"). Every refusal is
 * logged once, under the schema's component, naming what was found and
 * what was expected:
 *
 *   /etc/machnet/nicd.ini:7: [nicd] mtu = 70000: expected an integer in 576..9000
 *   --mtu 70000: expected an integer in 576..9000
 *
 * Section and key names are lowercased (iniparser does); values keep their
 * case. Loading and option parsing work on a copy of the struct, written
 * back only when everything was good.
 *
 * Two kinds of section: a plain one ("[nicd]") whose keys are fields of the
 * config struct itself, at most once per file; and a family ("[tenant.NAME]",
 * name_ok set), any number of them, each applied by the schema's hook into
 * whatever struct the program keeps per NAME (mn_conf_apply()).
 *
 * Thread-safety: none of these functions may run concurrently with each
 * other (iniparser's error callback and getopt's state are process-wide).
 * They are meant for start-up. Needs libiniparser: link the mnconf library
 * (conf_dep), which only the servers do.
 */
#ifndef MN_IPC_CONF_H
#define MN_IPC_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Longest line of a config file, newline included (iniparser's is 1022). */
#define MN_CONF_LINE_MAX 1000

/* Room for an "expected ..." text built by a parser. */
#define MN_CONF_WHY_MAX 256

/* The value of a MN_CONF_UID / MN_CONF_GID key meaning "any". */
#define MN_CONF_ANY_ID UINT32_MAX

/* Room for one formatted value (mn_conf_format()) of any built-in type. */
#define MN_CONF_VALUE_MAX 512

/* Element of MN_CONF_PORT_RANGE(S) fields (or a struct of this layout). */
struct mn_conf_port_range {
	uint16_t lo, hi; /* inclusive, 1 <= lo <= hi */
};

enum mn_conf_type {
	MN_CONF_UINT,	     /* unsigned of size 1, 2, 4 or 8: decimal digits in min..max */
	MN_CONF_STR,	     /* char[size]: text accepted by ok() (any when NULL) */
	MN_CONF_BOOL,	     /* bool: true/false, yes/no, on/off, 1/0 */
	MN_CONF_ENUM,	     /* int-sized enum: one of names[] (any case), value = index */
	MN_CONF_LOG,	     /* int, enum mn_log_level: err, warn, info, debug */
	MN_CONF_IPV4,	     /* uint32_t, host order, unicast; F_NONE: "none" or "" is 0 */
	MN_CONF_IP_PREFIXES, /* uint32_t[] + uint8_t[] at aux_off: "IP/LEN, ..." */
	MN_CONF_IP_LIST,     /* uint32_t[]: "IP, ..." */
	MN_CONF_PORT_RANGE,  /* struct mn_conf_port_range: "PORT" or "LO-HI" */
	MN_CONF_PORT_RANGES, /* struct mn_conf_port_range[]: "PORT, LO-HI, ..." */
	MN_CONF_UID,	     /* uint32_t (uid_t): a number, a user name, or any */
	MN_CONF_GID,	     /* uint32_t (gid_t): a number, a group name, or any */
	MN_CONF_MAC,	     /* uint8_t[6] + bool at aux_off set when given */
};

/* mn_conf_key.flags */
#define MN_CONF_F_REQUIRED 0x1u /* --help says "required" (the program checks it) */
#define MN_CONF_F_NONE 0x2u	/* IPV4: "none" or "" is accepted, stored as 0 */
#define MN_CONF_F_POW2 0x4u	/* UINT: a power of two */

/*
 * One key. Lists (IP_PREFIXES, IP_LIST, PORT_RANGES) hold at most
 * size / element-size items and keep their count in an unsigned int at
 * count_off; a list in a file replaces the current one, and on the command
 * line the first option replaces it and later ones add to it.
 */
struct mn_conf_key {
	const char *name;	  /* key in its section, lowercase: "mtu" */
	const char *opt;	  /* long option "mtu", or NULL: file only */
	const char *arg;	  /* the option's argument in --help: "N" */
	enum mn_conf_type type;
	unsigned int flags;	  /* MN_CONF_F_* */
	size_t off, size;	  /* the field (MN_CONF_AT); lists: the array */
	size_t aux_off;		  /* IP_PREFIXES: uint8_t[] prefix lengths; MAC: bool */
	size_t count_off;	  /* lists: unsigned int, number of items */
	unsigned long min, max;	  /* UINT: the range */
	unsigned long align;	  /* UINT: a multiple of this (0 or 1: any) */
	bool (*ok)(const char *); /* STR: validator; NULL: any text that fits */
	const char *expect;	  /* STR: what ok() wants; IP_LIST: what an item
				   * must be; MAC: what an unset one means */
	const char *const *names; /* ENUM: NULL-terminated, index = value */
	const char *help;	  /* one line of --help */
	const char *missing;	  /* non-NULL: a section without this key is
				   * refused, "missing key 'K': expected <missing>" */
};

/* .off and .size of field @f of struct type @T, for designated initializers. */
#define MN_CONF_AT(T, f) .off = offsetof(T, f), .size = sizeof(((T *)0)->f)

struct mn_conf_file;

struct mn_conf_section {
	const char *name;	      /* "nicd"; a family: its prefix, "tenant." */
	bool (*name_ok)(const char *); /* non-NULL: a family [<name>NAME], checks NAME */
	const char *name_expect;      /* family: what name_ok() wants */
	const struct mn_conf_key *keys;
	size_t nkeys;
	/*
	 * Family only: apply section @sec of @f to @cfg (the copy being
	 * loaded), typically mn_conf_apply() into a struct of the program's,
	 * then storing it. Returns 0 or -errno, having logged why.
	 */
	int (*apply)(void *cfg, const struct mn_conf_file *f, unsigned int sec);
};

/* An option that is not a key (e.g. -c FILE); it always takes an argument. */
struct mn_conf_opt {
	const char *name; /* long name: "config" */
	int short_name;	  /* 'c', or 0 */
};

struct mn_conf_schema {
	const char *comp;    /* log component of every message: "config" */
	const char *prog;    /* program name: --version, and --help without argv[0] */
	const char *version; /* --version prints "<prog> <version>" */
	const struct mn_conf_section *secs;
	size_t nsecs;
	const struct mn_conf_opt *opts; /* extra options, see mn_conf_parse_args() */
	size_t nopts;
	void (*usage)(FILE *f, const char *prog); /* --help */
};

/* ---- files ---------------------------------------------------------------- */

/*
 * mn_conf_load - read the INI file @path over @cfg (@size bytes).
 *
 * Scans the file (see above), loads it with iniparser, then applies, in the
 * order of @s's sections, the file's sections of that kind in file order:
 * a plain section's keys straight into the copy of @cfg, a family's through
 * its hook. Keys not in the file keep their values.
 *
 * Returns 0, or -errno with @cfg unchanged: -ENOENT / -EACCES / -EISDIR the
 * file is missing, unreadable or a directory; -EINVAL a bad line, unknown
 * or repeated section or key, or a bad value; -EIO; -ENOMEM. Logged.
 */
int mn_conf_load(const struct mn_conf_schema *s, const char *path, void *cfg, size_t size);

/*
 * mn_conf_apply - parse the keys of section @sec of @f into @obj, which has
 * the layout of that section's key table, in file order; then refuse the
 * section if a key with .missing is absent. For family hooks. Returns 0,
 * -EINVAL or -ENOMEM, logged ("file:line: [sec] key = value: expected ...").
 * @obj may be partly written on error.
 */
int mn_conf_apply(const struct mn_conf_file *f, unsigned int sec, void *obj);

/* The file's path, as given to mn_conf_load(). */
const char *mn_conf_file_path(const struct mn_conf_file *f);

/* Section @sec's name as read, lowercased ("tenant.alice"). */
const char *mn_conf_sec_name(const struct mn_conf_file *f, unsigned int sec);

/* A family section's NAME ("alice"); a plain section's name. */
const char *mn_conf_sec_instance(const struct mn_conf_file *f, unsigned int sec);

/* The line of section @sec's header. */
unsigned int mn_conf_sec_line(const struct mn_conf_file *f, unsigned int sec);

/* ---- command line ----------------------------------------------------------- */

/*
 * mn_conf_parse_args - one getopt_long pass over @argv, restarted from
 * argv[1]. The options are: each key with .opt of a plain section (with a
 * required argument), the schema's extra options, -h/--help (calls
 * s->usage(stdout, basename of argv[0])) and -V/--version. Parsing stops
 * at the first non-option; one left over is an error.
 *
 * @cfg:  key options are parsed into a copy of it (@size bytes), written
 *        back on success; NULL: they are only checked for syntax.
 * @vals: s->nopts slots that receive the extra options' arguments, each at
 *        most once ("--config given twice"); NULL: extra options skipped.
 *
 * Returns 0; 1 after --help or --version (the caller exits 0); -EINVAL an
 * unknown option, a missing or bad argument, a stray argument; -ENOMEM.
 * Logged ("--mtu 70000: expected an integer in 576..9000").
 */
int mn_conf_parse_args(const struct mn_conf_schema *s, void *cfg, size_t size, int argc,
		       char **argv, const char **vals);

/* ---- checks, help, dump --------------------------------------------------------- */

/*
 * mn_conf_check - re-check the keys of every plain section of @s in @cfg
 * that the parsers range-check (UINT, STR, ENUM, LOG, PORT_RANGE), for
 * structs filled by hand. Returns 0 or -EINVAL, logging the first bad one
 * ("mtu = 100: out of range or malformed").
 */
int mn_conf_check(const struct mn_conf_schema *s, const void *cfg);

/*
 * mn_conf_usage_options - one --help line per key option of the plain
 * sections of @s, in table order: "      --mtu N               help",
 * the help at column 28.
 */
void mn_conf_usage_options(FILE *f, const struct mn_conf_schema *s);

/*
 * mn_conf_usage_keys - one --help line per key of @sec: its range (UINT) or
 * "required" or its default, read from @defaults (NULL: none shown), and
 * its help.
 */
void mn_conf_usage_keys(FILE *f, const struct mn_conf_section *sec, const void *defaults);

/* mn_conf_dump - log "key = value" at info level for every key of every
 * plain section of @s. */
void mn_conf_dump(const struct mn_conf_schema *s, const void *cfg);

/* mn_conf_format - key @k of @obj as text, as a file would give it. */
void mn_conf_format(const struct mn_conf_key *k, const void *obj, char *buf, size_t len);

/* ---- value helpers ------------------------------------------------------------ */

/* Not 0.0.0.0, not multicast (224/4), not class E or broadcast (240/4). */
bool mn_conf_ipv4_unicast(uint32_t ip);

/* @ip (host order) as a dotted quad in @buf (16 bytes); returns @buf. */
const char *mn_conf_ipv4_str(uint32_t ip, char buf[16]);

#endif /* MN_IPC_CONF_H */
