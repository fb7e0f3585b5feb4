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
#include <stdint.h>

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
 * call; the level and sink are read without locking. Not async-signal-safe:
 * never call it from a signal handler.
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

/*
 * Rate-limited logging for messages a peer can trigger at will (a refused
 * region, a malformed control message): at most MN_LOG_RL_BURST lines per
 * call site per second; the rest are counted and reported as one line
 * ("N similar messages suppressed") when the next second's first line goes
 * out. The per-site state is a static without locking: with several
 * threads the counts are approximate, never unsafe.
 */
#define MN_LOG_RL_BURST 10u

struct mn_log_rl {
	uint64_t window_ns;
	uint32_t count;
	uint32_t suppressed;
};

/* Lines per call site per second for the _rl variants (default
 * MN_LOG_RL_BURST); 0 turns rate limiting off (tests). */
void mn_log_set_ratelimit(unsigned int burst);

void mn_log_rl(struct mn_log_rl *rl, enum mn_log_level level, const char *component,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define mn_err_rl(comp, ...)                                          \
	do {                                                          \
		static struct mn_log_rl mn_rl_;                       \
		mn_log_rl(&mn_rl_, MN_LOG_ERR, comp, __VA_ARGS__);    \
	} while (0)
#define mn_warn_rl(comp, ...)                                         \
	do {                                                          \
		static struct mn_log_rl mn_rl_;                       \
		mn_log_rl(&mn_rl_, MN_LOG_WARN, comp, __VA_ARGS__);   \
	} while (0)

#define mn_err(comp, ...) mn_log(MN_LOG_ERR, comp, __VA_ARGS__)
#define mn_warn(comp, ...) mn_log(MN_LOG_WARN, comp, __VA_ARGS__)
#define mn_info(comp, ...) mn_log(MN_LOG_INFO, comp, __VA_ARGS__)
#define mn_dbg(comp, ...) mn_log(MN_LOG_DEBUG, comp, __VA_ARGS__)

#endif /* MN_IPC_LOG_H */
