/* SPDX-License-Identifier: MIT */
/*
 * mctl: what machnetctl's modules (machnetctl.c, mctl_proto.c) share: the
 * exit statuses scripts rely on, the control-socket timeout, and small
 * formatting helpers. Header-only; nothing here keeps state.
 */
#ifndef MN_TOOLS_MCTL_H
#define MN_TOOLS_MCTL_H

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define MCTL_TIMEOUT_MS 2000 /* one control request and its answer */

/* Exit statuses (machnetctl --help lists them). */
#define EXIT_ERR 1   /* a server answered with an error, or a start failed */
#define EXIT_USAGE 2 /* bad arguments */
#define EXIT_DOWN 3  /* the server is not running */
#define EXIT_PERM 4  /* permission denied */

/* The exit status for a failed connect or request (-errno). */
static inline int mctl_exit_for(int err)
{
	if (err == -ENOENT || err == -ECONNREFUSED)
		return EXIT_DOWN;
	if (err == -EACCES || err == -EPERM)
		return EXIT_PERM;
	return EXIT_ERR;
}

/* Dotted quad of a host-order IPv4 address into @buf (16 bytes suffice). */
static inline void mctl_ip_str(uint32_t ip, char *buf, size_t len)
{
	struct in_addr a = { htonl(ip) };

	inet_ntop(AF_INET, &a, buf, (socklen_t)len);
}

/* A server's string of @len bytes, in place: NUL-terminated, and anything
 * not printable ASCII, '"' or '\\' replaced with '?', so that it is safe in
 * a table and inside JSON quotes. */
static inline void mctl_printable(char *str, size_t len)
{
	str[len - 1] = '\0';
	for (char *c = str; *c; c++)
		if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\')
			*c = '?';
}

#endif /* MN_TOOLS_MCTL_H */
