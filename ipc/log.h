/* SPDX-License-Identifier: MIT */
/*
 * mn_log: the one log format of every machnet process.
 *
 *   2026-11-21T09:30:00.123456Z ERROR region: <message>
 *
 * Lines go to stderr (journald picks them up under systemd) unless a sink is
 * installed; libmachnet and the unit tests install their own sink.
 */
#ifndef MN_IPC_LOG_H
#define MN_IPC_LOG_H

#include <stdarg.h>

enum mn_log_level {
	MN_LOG_ERR = 0,
	MN_LOG_WARN = 1,
	MN_LOG_INFO = 2,
	MN_LOG_DEBUG = 3,
};

/*
 * A sink receives every message at or below the current level, already
 * formatted without the time stamp or trailing newline.
 */
typedef void (*mn_log_sink_fn)(enum mn_log_level level, const char *component,
			       const char *msg, void *ctx);

/*
 * mn_log - log one message.
 * @level:     severity; messages above the level set by mn_log_set_level()
 *             are discarded before formatting.
 * @component: short name of the module ("region", "ring", "nicd", ...).
 * @fmt:       printf format; no trailing newline.
 * Thread-safe: each message is written with one write() (stderr) or one sink
 * call; the level and sink are read without locking.
 */
void mn_log(enum mn_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* mn_vlog - as mn_log() with a va_list. */
void mn_vlog(enum mn_log_level level, const char *component, const char *fmt,
	     va_list ap) __attribute__((format(printf, 3, 0)));

/* Set the most verbose level that is still emitted (default MN_LOG_INFO). */
void mn_log_set_level(enum mn_log_level level);

/* Current level. */
enum mn_log_level mn_log_get_level(void);

/*
 * Parse "err", "warn", "info" or "debug" (also "error", "warning").
 * Returns the level, or -EINVAL for anything else.
 */
int mn_log_level_parse(const char *name);

/*
 * Replace the stderr writer by @sink (NULL restores stderr). Call before
 * other threads log; not synchronised with concurrent mn_log() calls.
 */
void mn_log_set_sink(mn_log_sink_fn sink, void *ctx);

#define mn_err(comp, ...) mn_log(MN_LOG_ERR, comp, __VA_ARGS__)
#define mn_warn(comp, ...) mn_log(MN_LOG_WARN, comp, __VA_ARGS__)
#define mn_info(comp, ...) mn_log(MN_LOG_INFO, comp, __VA_ARGS__)
#define mn_dbg(comp, ...) mn_log(MN_LOG_DEBUG, comp, __VA_ARGS__)

#endif /* MN_IPC_LOG_H */
