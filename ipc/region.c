/* SPDX-License-Identifier: MIT */
#include "region.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include "log.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26) /* log2(2 MiB) << MFD_HUGE_SHIFT */
#endif

#define HUGE_PAGE_SIZE (2ULL << 20)

/*
 * The size is part of the ABI: a peer that could shrink the file would make
 * our next access to the missing pages a SIGBUS. Creators seal it, mappers
 * insist on the seal.
 */
#define SIZE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static const char *const kind_names[MN_REGION_KIND_MAX] = {
	[MN_REGION_KIND_TEST] = "test",
	[MN_REGION_KIND_PORT] = "port",
	[MN_REGION_KIND_CHANNEL] = "channel",
	[MN_REGION_KIND_TENANT] = "tenant",
};

const char *mn_region_kind_name(uint32_t kind)
{
	if (kind < MN_REGION_KIND_MAX && kind_names[kind])
		return kind_names[kind];
	return "unknown";
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Lay the sections out in @hdr; returns the unrounded end, 0 if invalid. */
static uint64_t layout(struct mn_region_hdr *hdr, const struct mn_region_spec *spec)
{
	uint64_t off = align_up(MN_REGION_HDR_SIZE, MN_REGION_ALIGN);

	if (spec->kind == 0 || spec->kind >= MN_REGION_KIND_MAX ||
	    spec->nsections == 0 || spec->nsections > MN_REGION_MAX_SECTIONS)
		return 0;
	for (uint32_t i = 0; i < spec->nsections; i++) {
		uint64_t len = spec->sec[i].len;

		if (len == 0 || len > MN_REGION_MAX_SIZE ||
		    off + len > MN_REGION_MAX_SIZE)
			return 0;
		hdr->sec[i] = (struct mn_region_section){
			.off = off, .len = len, .tag = spec->sec[i].tag,
		};
		off = align_up(off + len, MN_REGION_ALIGN);
	}
	hdr->nsections = spec->nsections;
	hdr->kind = spec->kind;
	return off;
}

/*
 * One sealed memfd of @size bytes, mapped. With MFD_HUGETLB and MAP_SHARED
 * the huge pages are reserved at mmap() time, so a shortage shows up here
 * as ENOMEM instead of a SIGBUS on first touch. Returns 0 or -errno.
 */
static int map_memfd(const char *name, unsigned int mfd_flags, uint64_t size, int *fd_out,
		     void **base_out)
{
	void *base;
	int fd, err;

	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | mfd_flags);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) != 0 || fcntl(fd, F_ADD_SEALS, SIZE_SEALS) != 0)
		goto fail;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		goto fail;
	*fd_out = fd;
	*base_out = base;
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

/* Back @size bytes with hugetlbfs if we may and can, else plain memfd. */
static int back_and_map(const char *name, uint64_t *size, unsigned int flags,
			int *fd_out, void **base_out, bool *huge_out)
{
	uint64_t huge_size = align_up(*size, HUGE_PAGE_SIZE);
	int err;

	*huge_out = false;
	if (!(flags & MN_REGION_F_NO_HUGE)) {
		err = map_memfd(name, MFD_HUGETLB | MFD_HUGE_2MB, huge_size, fd_out, base_out);
		if (err == 0) {
			*size = huge_size;
			*huge_out = true;
			return 0;
		}
		if (flags & MN_REGION_F_REQUIRE_HUGE) {
			mn_err("region", "%s: no 2 MiB huge pages for %" PRIu64
			       " bytes (%s): reserve more in /proc/sys/vm/nr_hugepages",
			       name, huge_size, strerror(-err));
			return -ENOMEM;
		}
	}
	err = map_memfd(name, 0, *size, fd_out, base_out);
	if (err)
		mn_err("region", "%s: cannot back %" PRIu64 " bytes: %s", name, *size,
		       strerror(-err));
	return err;
}

int mn_region_create(struct mn_region *r, const char *name,
		     const struct mn_region_spec *spec, unsigned int flags)
{
	struct mn_region_hdr hdr = { 0 };
	uint64_t size = layout(&hdr, spec);
	void *base = NULL;
	bool huge = false;
	int fd = -1, err;

	if (size == 0) {
		mn_err("region", "%s: invalid spec: kind %" PRIu32 ", %" PRIu32
		       " sections (need a known kind, 1..%u sections, each 1 B..1 TiB in total)",
		       name, spec->kind, spec->nsections, MN_REGION_MAX_SECTIONS);
		return -EINVAL;
	}
	err = back_and_map(name, &size, flags, &fd, &base, &huge);
	if (err)
		return err;
	hdr.magic = MN_REGION_MAGIC;
	hdr.abi_major = MN_ABI_MAJOR;
	hdr.abi_minor = MN_ABI_MINOR;
	hdr.size = size;
	hdr.hdr_size = MN_REGION_HDR_SIZE;
	hdr.creator_pid = (uint32_t)getpid();
	hdr.flags = huge ? MN_REGION_HDR_F_HUGETLB : 0;
	hdr.generation = 1;
	memcpy(base, &hdr, sizeof(hdr));
	*r = (struct mn_region){
		.base = base, .size = size, .fd = fd, .hugetlb = huge, .hdr = hdr,
	};
	mn_dbg("region", "%s: %s region of %" PRIu64 " bytes on %s", name,
	       mn_region_kind_name(spec->kind), size, huge ? "hugetlbfs" : "memfd");
	return 0;
}

static int check_sections(const struct mn_region_hdr *h)
{
	uint64_t prev_end = h->hdr_size;

	for (uint32_t i = 0; i < h->nsections; i++) {
		const struct mn_region_section *s = &h->sec[i];

		if (s->off % MN_REGION_ALIGN != 0 || s->len == 0 ||
		    s->off < prev_end || s->off > h->size ||
		    s->len > h->size - s->off) {
			mn_err_rl("region", "section %" PRIu32 " (tag %" PRIu32 ") at offset %" PRIu64
			       " length %" PRIu64 " is misaligned, empty, outside the %" PRIu64
			       "-byte region or overlaps the previous one (ending at %" PRIu64 ")",
			       i, s->tag, s->off, s->len, h->size, prev_end);
			return -ERANGE;
		}
		prev_end = s->off + s->len;
	}
	return 0;
}

int mn_region_validate_hdr(const struct mn_region_hdr *h, uint64_t file_size,
			   uint32_t expect_kind)
{
	if (h->magic != MN_REGION_MAGIC) {
		mn_err_rl("region", "magic 0x%016" PRIx64 ", expected 0x%016llx: not a machnet region",
		       h->magic, MN_REGION_MAGIC);
		return -EBADMSG;
	}
	if (h->abi_major != MN_ABI_MAJOR) {
		mn_err_rl("region", "abi_major %u.%u, we speak %u.%u: upgrade the older side",
		       h->abi_major, h->abi_minor, MN_ABI_MAJOR, MN_ABI_MINOR);
		return -EPROTONOSUPPORT;
	}
	if (h->kind != expect_kind) {
		mn_err_rl("region", "kind %" PRIu32 " (%s), expected %" PRIu32 " (%s)", h->kind,
		       mn_region_kind_name(h->kind), expect_kind,
		       mn_region_kind_name(expect_kind));
		return -EPROTOTYPE;
	}
	if (h->hdr_size != MN_REGION_HDR_SIZE) {
		mn_err_rl("region", "hdr_size %" PRIu32 ", expected %u", h->hdr_size,
		       MN_REGION_HDR_SIZE);
		return -EBADMSG;
	}
	if (h->size != file_size) {
		mn_err_rl("region", "size %" PRIu64 " in header but the file has %" PRIu64 " bytes",
		       h->size, file_size);
		return -EINVAL;
	}
	if (h->nsections == 0 || h->nsections > MN_REGION_MAX_SECTIONS) {
		mn_err_rl("region", "nsections %" PRIu32 ", expected 1..%u", h->nsections,
		       MN_REGION_MAX_SECTIONS);
		return -EBADMSG;
	}
	return check_sections(h);
}

/*
 * Seals first, size second: once F_SEAL_SHRINK and F_SEAL_SEAL are on, the
 * size can no longer drop under the fstat() that follows (checking in the
 * other order left a window to shrink and then seal).
 */
static int check_fd(int fd, unsigned int flags, struct stat *st)
{
	struct statfs sfs;
	int seals = fcntl(fd, F_GET_SEALS), err;

	if (seals < 0 && errno != EINVAL) {
		err = -errno;
		mn_err_rl("region", "fd %d: %s", fd, strerror(errno));
		return err;
	}
	if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_SEAL)) != (F_SEAL_SHRINK | F_SEAL_SEAL)) {
		mn_err_rl("region", "fd %d is not sealed against shrinking, with the seals frozen (seals 0x%x): a peer could truncate it under us; create regions with mn_region_create()",
			  fd, seals < 0 ? 0 : seals);
		return -EPERM;
	}
	if (fstat(fd, st) != 0 || fstatfs(fd, &sfs) != 0) {
		err = -errno;
		mn_err_rl("region", "fstat of fd %d: %s", fd, strerror(errno));
		return err;
	}
	/* A hole punched in a hugetlbfs file faults (SIGBUS) when no huge page
	 * is free to refill it; shmem refills with zeros. */
	if ((flags & MN_REGION_MAP_F_NO_HUGE) && sfs.f_type == HUGETLBFS_MAGIC) {
		mn_err_rl("region", "fd %d is backed by hugetlbfs, refused from an untrusted creator (it could punch holes that fault here)",
			  fd);
		return -EPERM;
	}
	if ((uint64_t)st->st_size < MN_REGION_HDR_SIZE ||
	    (uint64_t)st->st_size > MN_REGION_MAX_SIZE) {
		mn_err_rl("region", "fd %d: file size %lld bytes, outside %u..%llu", fd,
			  (long long)st->st_size, MN_REGION_HDR_SIZE, MN_REGION_MAX_SIZE);
		return -EINVAL;
	}
	return 0;
}

int mn_region_map(struct mn_region *r, int fd, uint32_t expect_kind)
{
	return mn_region_map_flags(r, fd, expect_kind, 0);
}

int mn_region_map_flags(struct mn_region *r, int fd, uint32_t expect_kind,
			unsigned int flags)
{
	struct mn_region_hdr hdr;
	struct stat st;
	void *base;
	int err;

	err = check_fd(fd, flags, &st);
	if (err)
		return err;
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		err = -errno;
		mn_err_rl("region", "mmap of %lld bytes from fd %d: %s", (long long)st.st_size,
		       fd, strerror(errno));
		return err;
	}
	/* Validate a private copy: the peer may rewrite the shared one later. */
	memcpy(&hdr, base, sizeof(hdr));
	err = mn_region_validate_hdr(&hdr, (uint64_t)st.st_size, expect_kind);
	if (err) {
		munmap(base, (size_t)st.st_size);
		return err;
	}
	*r = (struct mn_region){
		.base = base,
		.size = (size_t)st.st_size,
		.fd = fd,
		.hugetlb = hdr.flags & MN_REGION_HDR_F_HUGETLB,
		.hdr = hdr,
	};
	return 0;
}

void mn_region_unmap(struct mn_region *r)
{
	if (r->base)
		munmap(r->base, r->size);
	if (r->base && r->fd >= 0)
		close(r->fd);
	*r = (struct mn_region){ .fd = -1 };
}

void *mn_region_section(const struct mn_region *r, uint32_t i, uint64_t *len)
{
	if (i >= r->hdr.nsections)
		return NULL;
	if (len)
		*len = r->hdr.sec[i].len;
	return (uint8_t *)r->base + r->hdr.sec[i].off;
}

int mn_region_find(const struct mn_region *r, uint32_t tag)
{
	for (uint32_t i = 0; i < r->hdr.nsections; i++)
		if (r->hdr.sec[i].tag == tag)
			return (int)i;
	return -ENOENT;
}

uint64_t mn_region_bump_generation(struct mn_region *r)
{
	struct mn_region_hdr *shared = r->base;

	/* Seq-cst: adopters on both sides must agree on one order of bumps. */
	return __atomic_add_fetch(&shared->generation, 1, __ATOMIC_SEQ_CST);
}

uint64_t mn_region_generation(const struct mn_region *r)
{
	const struct mn_region_hdr *shared = r->base;

	return __atomic_load_n(&shared->generation, __ATOMIC_ACQUIRE);
}
