/* SPDX-License-Identifier: MIT */
/*
 * mn_region: a shared-memory region with a self-describing header.
 *
 * Every byte two machnet processes share lives in a region. The creator
 * sizes it from a list of sections, backs it with hugetlbfs when huge pages
 * are free (memfd otherwise), writes the header and hands the fd to its peer
 * over a unix socket (ipc/ctl, SCM_RIGHTS). The peer maps the fd and checks
 * the header against fstat() and its own expectations before it touches
 * anything else.
 *
 *   offset 0                     512         4096
 *   +---------------------------+-----------+------------+------------+--
 *   | struct mn_region_hdr      | (unused)  | section 0  | section 1  |
 *   +---------------------------+-----------+------------+------------+--
 *   sections: 4096-aligned, in increasing offset order, never overlapping,
 *   each inside [4096, size).
 *
 * The header is written once by the creator before the fd leaves the
 * process; afterwards only `generation` changes. A mapper copies the header,
 * validates the copy and keeps using the copy, so a peer that scribbles over
 * the shared header later cannot move a section under it.
 *
 * Pointers never live in a region: each process maps it at its own address,
 * and everything inside is addressed by offset from the region base.
 */
#ifndef MN_IPC_REGION_H
#define MN_IPC_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Region sizes reach 1 TiB: all size arithmetic assumes a 64-bit size_t. */
_Static_assert(sizeof(size_t) == 8, "machnet needs a 64-bit build");

#define MN_REGION_MAGIC 0x4e4745524e4d4e4dULL /* "MNMNREGN" little-endian */

/*
 * ABI versioning rule: a mapper accepts a region whose major version equals
 * its own, whatever the minor. A minor bump may only give meaning to bytes
 * that were reserved (and zero) before, so older and newer peers of the same
 * major read each other's regions. Anything else is a major bump.
 */
#define MN_ABI_MAJOR 1
#define MN_ABI_MINOR 0

#define MN_REGION_HDR_SIZE 512u
#define MN_REGION_MAX_SECTIONS 16u
#define MN_REGION_ALIGN 4096u
/* Hard ceiling on a region, so size arithmetic never overflows. */
#define MN_REGION_MAX_SIZE (1ULL << 40)

/* What a region is for; a mapper names the kind it expects. */
enum mn_region_kind {
	MN_REGION_KIND_TEST = 1,    /* unit tests and benchmarks */
	MN_REGION_KIND_PORT = 2,    /* tenant port: proto server <-> nicd */
	MN_REGION_KIND_CHANNEL = 3, /* channel: application <-> proto server */
	MN_REGION_KIND_TENANT = 4,  /* tenant state that outlives a proto server */
	MN_REGION_KIND_MAX,
};

/* Header flags (set by the creator). */
#define MN_REGION_HDR_F_HUGETLB 0x1u /* backed by hugetlbfs pages */

struct mn_region_section {
	uint64_t off; /* (c) from region base, MN_REGION_ALIGN-aligned */
	uint64_t len; /* (c) bytes the section's user asked for */
	uint32_t tag; /* (c) what the section holds, meaning set by the kind */
	uint32_t reserved; /* zero */
};

/*
 * Shared header at offset 0. (c) = written by the creator before the fd is
 * handed out, read-only afterwards; (*) = either side may update, atomically.
 */
struct mn_region_hdr {
	uint64_t magic;		/* (c) MN_REGION_MAGIC */
	uint16_t abi_major;	/* (c) MN_ABI_MAJOR */
	uint16_t abi_minor;	/* (c) MN_ABI_MINOR */
	uint32_t kind;		/* (c) enum mn_region_kind */
	uint64_t size;		/* (c) total bytes == fstat(fd).st_size */
	uint32_t hdr_size;	/* (c) MN_REGION_HDR_SIZE */
	uint32_t nsections;	/* (c) <= MN_REGION_MAX_SECTIONS */
	uint32_t creator_pid;	/* (c) pid of the creating process */
	uint32_t flags;		/* (c) MN_REGION_HDR_F_* */
	uint64_t generation;	/* (*) bumped by whoever (re)adopts the region */
	uint8_t reserved0[16];	/* zero */
	struct mn_region_section sec[MN_REGION_MAX_SECTIONS]; /* (c) */
	uint8_t reserved1[MN_REGION_HDR_SIZE - 64 -
			  MN_REGION_MAX_SECTIONS * sizeof(struct mn_region_section)];
};

_Static_assert(sizeof(struct mn_region_section) == 24, "section layout is ABI");
_Static_assert(sizeof(struct mn_region_hdr) == MN_REGION_HDR_SIZE,
	       "region header layout is ABI");
_Static_assert(offsetof(struct mn_region_hdr, generation) == 40,
	       "region header layout is ABI");
_Static_assert(offsetof(struct mn_region_hdr, sec) == 64,
	       "region header layout is ABI");

/* What the creator asks for: the sections, in order. */
struct mn_region_spec {
	uint32_t kind;
	uint32_t nsections;
	struct {
		uint32_t tag;
		uint64_t len;
	} sec[MN_REGION_MAX_SECTIONS];
};

/* Creation flags. */
#define MN_REGION_F_NO_HUGE 0x1u      /* never try hugetlbfs */
#define MN_REGION_F_REQUIRE_HUGE 0x2u /* fail (-ENOMEM) rather than fall back */

/*
 * Process-local handle. `hdr` is a validated private copy: use it (and
 * mn_region_section()) rather than re-reading the shared header.
 */
struct mn_region {
	void *base;		/* where this process mapped it */
	size_t size;		/* mapped length */
	int fd;			/* owned by the handle; closed by unmap */
	bool hugetlb;		/* backing that was chosen */
	struct mn_region_hdr hdr; /* private, validated copy */
};

/*
 * mn_region_create - create, size, map and format a new region.
 * @r:     handle to fill; untouched on failure.
 * @name:  memfd name (shows in /proc/PID/fd, for debugging); not a path.
 * @spec:  kind and section lengths; sections are laid out in order, each
 *         4096-aligned, zero-filled.
 * @flags: MN_REGION_F_*.
 * 2 MiB huge pages are tried first (unless MN_REGION_F_NO_HUGE); if none are
 * free the region falls back to ordinary shared memory; the choice is stored
 * in r->hugetlb and in the header's flags, and logged at debug level.
 * Returns 0, or -EINVAL (bad spec: kind, no or too many sections, a length
 * of 0 or one that overflows MN_REGION_MAX_SIZE), -ENOMEM (no memory; or no
 * huge pages with MN_REGION_F_REQUIRE_HUGE), or another -errno from memfd,
 * ftruncate or mmap. Thread-safe.
 */
int mn_region_create(struct mn_region *r, const char *name,
		     const struct mn_region_spec *spec, unsigned int flags);

/*
 * mn_region_map - map a region received from another process and validate
 * its header.
 * @r:           handle to fill; on success it owns @fd.
 * @fd:          region fd; on failure it is NOT closed (caller's).
 * @expect_kind: the kind the caller needs.
 * Validation, each failure logged (rate-limited) naming the field and the
 * values:
 *   fd not sealed against shrinking with the seals frozen (F_SEAL_SHRINK and
 *   F_SEAL_SEAL) -EPERM;
 *   fstat size smaller than the header or above MN_REGION_MAX_SIZE -EINVAL;
 *   magic -EBADMSG; abi_major -EPROTONOSUPPORT; kind -EPROTOTYPE;
 *   hdr_size -EBADMSG; size different from fstat -EINVAL;
 *   nsections 0 or > max -EBADMSG; a section misaligned, empty, outside
 *   the region, or overlapping its predecessor -ERANGE.
 * Other -errno from fstat/mmap. Thread-safe.
 */
int mn_region_map(struct mn_region *r, int fd, uint32_t expect_kind);

/* Mapping flags. */
/* Refuse hugetlbfs-backed fds (-EPERM): a creator that punches a hole in a
 * hugetlbfs file can make our next access fault when no huge page is free
 * to refill it. Use it for regions created by a less trusted process. */
#define MN_REGION_MAP_F_NO_HUGE 0x1u

/* mn_region_map with MN_REGION_MAP_F_* @flags. */
int mn_region_map_flags(struct mn_region *r, int fd, uint32_t expect_kind,
			unsigned int flags);

/*
 * mn_region_validate_hdr - the checks of mn_region_map() on a header copy.
 * @hdr:       header copy to check.
 * @file_size: size the backing object really has.
 * Returns 0 or the -errno documented at mn_region_map(); logs on failure.
 */
int mn_region_validate_hdr(const struct mn_region_hdr *hdr, uint64_t file_size,
			   uint32_t expect_kind);

/* Unmap and close. Safe on a zeroed handle and twice in a row. */
void mn_region_unmap(struct mn_region *r);

/*
 * mn_region_section - base address and length of section @i.
 * Returns NULL (and leaves *len alone) if @i is out of range. Uses the
 * validated private header copy, never the shared one.
 */
void *mn_region_section(const struct mn_region *r, uint32_t i, uint64_t *len);

/*
 * mn_region_find - index of the first section tagged @tag, or -ENOENT.
 */
int mn_region_find(const struct mn_region *r, uint32_t tag);

/*
 * mn_region_bump_generation - atomically increment the shared generation
 * counter (an adopter does this so peers see the region changed hands).
 * Returns the new value. Thread- and process-safe.
 */
uint64_t mn_region_bump_generation(struct mn_region *r);

/* mn_region_generation - current shared generation (acquire load). */
uint64_t mn_region_generation(const struct mn_region *r);

/* Printable name of a kind ("port", "channel", ...), "unknown" otherwise. */
const char *mn_region_kind_name(uint32_t kind);

#endif /* MN_IPC_REGION_H */
