/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for ipc/region: creation and layout, every refusal of
 * mn_region_map() (each forged into a real region's shared header), the
 * private header copy, the generation counter, hugepage backing.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "region.h"

#define MiB(x) ((uint64_t)(x) << 20)

/* Three sections of odd lengths: offsets 4096, 8192, 16384; size 24576. */
static const struct mn_region_spec spec3 = {
	.kind = MN_REGION_KIND_TEST,
	.nsections = 3,
	.sec = { { .tag = 10, .len = 100 }, { .tag = 11, .len = 8192 },
		 { .tag = 12, .len = 5000 } },
};

static void create3(struct mn_region *r)
{
	assert_int_equal(mn_region_create(r, "ut-region", &spec3, MN_REGION_F_NO_HUGE), 0);
}

static struct mn_region_hdr *shared_hdr(const struct mn_region *r)
{
	return r->base;
}

/*
 * Map a dup of @r's fd. On failure check that map left the fd open (it is
 * the caller's then) and close it.
 */
static int map_dup(struct mn_region *m, const struct mn_region *r, uint32_t kind)
{
	int fd = dup(r->fd);
	int rc;

	assert_true(fd >= 0);
	rc = mn_region_map(m, fd, kind);
	if (rc != 0) {
		assert_true(tu_fd_is_open(fd));
		close(fd);
	} else {
		assert_int_equal(m->fd, fd);
	}
	return rc;
}

/* The handle is left byte-for-byte as it was when a call fails. */
static void poison(struct mn_region *r, struct mn_region *copy)
{
	memset(r, 0xa5, sizeof(*r));
	memcpy(copy, r, sizeof(*r));
}

static void check_sections(const struct mn_region *r, const struct mn_region_spec *spec)
{
	uintptr_t prev_end = (uintptr_t)r->base + MN_REGION_HDR_SIZE;

	assert_int_equal(r->hdr.nsections, spec->nsections);
	for (uint32_t i = 0; i < spec->nsections; i++) {
		uint64_t len = 0;
		uint8_t *p = mn_region_section(r, i, &len);

		assert_non_null(p);
		assert_int_equal(len, spec->sec[i].len);
		assert_int_equal(((uintptr_t)p - (uintptr_t)r->base) % MN_REGION_ALIGN, 0);
		assert_true((uintptr_t)p >= prev_end);
		assert_true((uintptr_t)p + len <= (uintptr_t)r->base + r->size);
		for (uint64_t b = 0; b < len; b++)
			if (p[b] != 0)
				fail_msg("section %u byte %llu is 0x%02x, not zero", i,
					 (unsigned long long)b, p[b]);
		assert_int_equal(mn_region_find(r, spec->sec[i].tag), (int)i);
		prev_end = (uintptr_t)p + len;
	}
}

/* ---- creation ---------------------------------------------------------- */

static void test_create_one_section(void **state)
{
	struct mn_region_spec spec = {
		.kind = MN_REGION_KIND_TEST, .nsections = 1, .sec = { { .tag = 7, .len = 1 } },
	};
	struct mn_region r;

	(void)state;
	assert_int_equal(mn_region_create(&r, "ut-one", &spec, MN_REGION_F_NO_HUGE), 0);
	check_sections(&r, &spec);
	assert_int_equal(r.size, 2 * MN_REGION_ALIGN);
	mn_region_unmap(&r);
}

static void test_create_sixteen_sections(void **state)
{
	struct mn_region_spec spec = { .kind = MN_REGION_KIND_CHANNEL, .nsections = 16 };
	struct mn_region r;

	(void)state;
	for (uint32_t i = 0; i < 16; i++) {
		spec.sec[i].tag = 100 + i;
		spec.sec[i].len = 1 + i * 3001; /* some exact pages, most not */
	}
	spec.sec[5].len = MN_REGION_ALIGN;
	assert_int_equal(mn_region_create(&r, "ut-sixteen", &spec, MN_REGION_F_NO_HUGE), 0);
	check_sections(&r, &spec);
	mn_region_unmap(&r);
}

static void test_create_writes_shared_header(void **state)
{
	struct mn_region r;
	struct stat st;
	const struct mn_region_hdr *h;

	(void)state;
	create3(&r);
	h = shared_hdr(&r);
	assert_int_equal(fstat(r.fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, r.size);
	assert_int_equal(h->magic, MN_REGION_MAGIC);
	assert_int_equal(h->abi_major, MN_ABI_MAJOR);
	assert_int_equal(h->abi_minor, MN_ABI_MINOR);
	assert_int_equal(h->kind, MN_REGION_KIND_TEST);
	assert_int_equal(h->size, r.size);
	assert_int_equal(h->hdr_size, MN_REGION_HDR_SIZE);
	assert_int_equal(h->nsections, 3);
	assert_int_equal(h->creator_pid, (uint32_t)getpid());
	/* The private copy is what was shared. */
	assert_memory_equal(&r.hdr, h, sizeof(*h));
	assert_int_equal(mn_region_validate_hdr(&r.hdr, r.size, MN_REGION_KIND_TEST), 0);
	mn_region_unmap(&r);
}

static void test_create_seals_size(void **state)
{
	struct mn_region r;
	int seals;

	(void)state;
	create3(&r);
	seals = fcntl(r.fd, F_GET_SEALS);
	assert_true(seals >= 0);
	assert_true(seals & F_SEAL_SHRINK);
	assert_true(seals & F_SEAL_GROW);
	assert_int_not_equal(ftruncate(r.fd, 0), 0);
	assert_int_not_equal(ftruncate(r.fd, (off_t)r.size * 2), 0);
	mn_region_unmap(&r);
}

static void test_find_unknown_tag_returns_enoent(void **state)
{
	struct mn_region r;

	(void)state;
	create3(&r);
	assert_int_equal(mn_region_find(&r, 99), -ENOENT);
	mn_region_unmap(&r);
}

static void test_find_returns_first_of_duplicate_tags(void **state)
{
	struct mn_region_spec spec = {
		.kind = MN_REGION_KIND_TEST, .nsections = 3,
		.sec = { { .tag = 1, .len = 8 }, { .tag = 2, .len = 8 }, { .tag = 2, .len = 8 } },
	};
	struct mn_region r;

	(void)state;
	assert_int_equal(mn_region_create(&r, "ut-dup", &spec, MN_REGION_F_NO_HUGE), 0);
	assert_int_equal(mn_region_find(&r, 2), 1);
	mn_region_unmap(&r);
}

static void test_section_out_of_range_is_null_and_keeps_len(void **state)
{
	struct mn_region r;
	uint64_t len = 12345;

	(void)state;
	create3(&r);
	assert_null(mn_region_section(&r, 3, &len));
	assert_null(mn_region_section(&r, UINT32_MAX, &len));
	assert_int_equal(len, 12345);
	assert_non_null(mn_region_section(&r, 2, NULL));
	mn_region_unmap(&r);
}

static void test_create_no_huge_uses_memfd(void **state)
{
	struct mn_region r;

	(void)state;
	create3(&r);
	assert_false(r.hugetlb);
	assert_int_equal(r.hdr.flags & MN_REGION_HDR_F_HUGETLB, 0);
	assert_int_equal(r.size % MN_REGION_ALIGN, 0);
	mn_region_unmap(&r);
}

/* Refusals of mn_region_create: -EINVAL, handle untouched, no fd left. */
static void expect_create_einval(const struct mn_region_spec *spec)
{
	struct mn_region r, copy;
	int fds = tu_count_fds();

	poison(&r, &copy);
	tu_log_reset();
	assert_int_equal(mn_region_create(&r, "ut-bad", spec, MN_REGION_F_NO_HUGE), -EINVAL);
	assert_memory_equal(&r, &copy, sizeof(r));
	assert_int_equal(tu_count_fds(), fds);
	assert_int_equal(tu_log.level, MN_LOG_ERR);
	assert_log_contains("invalid spec");
}

static void test_create_rejects_kind_zero(void **state)
{
	struct mn_region_spec spec = { .kind = 0, .nsections = 1, .sec = { { 1, 64 } } };

	(void)state;
	expect_create_einval(&spec);
}

static void test_create_rejects_kind_too_big(void **state)
{
	struct mn_region_spec spec = {
		.kind = MN_REGION_KIND_MAX, .nsections = 1, .sec = { { 1, 64 } },
	};

	(void)state;
	expect_create_einval(&spec);
	spec.kind = UINT32_MAX;
	expect_create_einval(&spec);
}

static void test_create_rejects_zero_sections(void **state)
{
	struct mn_region_spec spec = { .kind = MN_REGION_KIND_TEST, .nsections = 0 };

	(void)state;
	expect_create_einval(&spec);
}

static void test_create_rejects_seventeen_sections(void **state)
{
	struct mn_region_spec spec = { .kind = MN_REGION_KIND_TEST, .nsections = 16 };

	(void)state;
	for (uint32_t i = 0; i < 16; i++)
		spec.sec[i].len = 64;
	spec.nsections = MN_REGION_MAX_SECTIONS + 1;
	expect_create_einval(&spec);
}

static void test_create_rejects_zero_length_section(void **state)
{
	struct mn_region_spec spec = {
		.kind = MN_REGION_KIND_TEST, .nsections = 3,
		.sec = { { 1, 64 }, { 2, 0 }, { 3, 64 } },
	};

	(void)state;
	expect_create_einval(&spec);
}

static void test_create_rejects_huge_length(void **state)
{
	struct mn_region_spec spec = {
		.kind = MN_REGION_KIND_TEST, .nsections = 1, .sec = { { 1, MN_REGION_MAX_SIZE } },
	};

	(void)state;
	expect_create_einval(&spec); /* the header page pushes it over */
	spec.sec[0].len = UINT64_MAX;
	expect_create_einval(&spec);
	spec.sec[0].len = UINT64_MAX - MN_REGION_ALIGN + 2; /* wraps if added naively */
	expect_create_einval(&spec);
}

static void test_create_rejects_sections_summing_past_max(void **state)
{
	struct mn_region_spec spec = {
		.kind = MN_REGION_KIND_TEST, .nsections = 2,
		.sec = { { 1, MN_REGION_MAX_SIZE / 2 }, { 2, MN_REGION_MAX_SIZE / 2 } },
	};

	(void)state;
	expect_create_einval(&spec);
}

/* ---- hugepages (whichever case this machine is in) --------------------- */

static unsigned long read_ulong(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned long v = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%lu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* Free 2 MiB pages not already promised to someone else. */
static unsigned long available_hugepages(void)
{
	unsigned long f = read_ulong("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
	unsigned long r = read_ulong("/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages");

	return f > r ? f - r : 0;
}

/* One section larger than all free huge pages: hugetlbfs cannot back it. */
static struct mn_region_spec spec_beyond_free_hugepages(void)
{
	struct mn_region_spec s = { .kind = MN_REGION_KIND_TEST, .nsections = 1 };

	s.sec[0].tag = 1;
	s.sec[0].len = (uint64_t)(available_hugepages() + 1) * MiB(2);
	return s;
}

static void test_create_uses_hugepages_when_free(void **state)
{
	struct mn_region r, m;

	(void)state;
	if (available_hugepages() == 0)
		skip();
	assert_int_equal(mn_region_create(&r, "ut-huge", &spec3, 0), 0);
	if (!r.hugetlb && available_hugepages() == 0) {
		/* Another process took the last free pages since we looked. */
		mn_region_unmap(&r);
		skip();
	}
	assert_true(r.hugetlb);
	assert_int_equal(r.size % MiB(2), 0);
	assert_int_equal(r.hdr.size, r.size);
	assert_true(r.hdr.flags & MN_REGION_HDR_F_HUGETLB);
	check_sections(&r, &spec3);
	assert_int_equal(map_dup(&m, &r, MN_REGION_KIND_TEST), 0);
	assert_true(m.hugetlb);
	mn_region_unmap(&m);
	mn_region_unmap(&r);
}

static void test_map_no_huge_refuses_hugetlbfs_fd(void **state)
{
	struct mn_region r, m;
	int fd;

	(void)state;
	if (available_hugepages() == 0)
		skip();
	assert_int_equal(mn_region_create(&r, "ut-huge-untrusted", &spec3, 0), 0);
	if (!r.hugetlb) {
		mn_region_unmap(&r);
		skip(); /* someone took the free pages since we looked */
	}
	fd = dup(r.fd);
	tu_log_reset();
	assert_int_equal(mn_region_map_flags(&m, fd, MN_REGION_KIND_TEST, MN_REGION_MAP_F_NO_HUGE),
			 -EPERM);
	assert_log_contains("hugetlbfs");
	assert_true(tu_fd_is_open(fd));
	/* Trusted callers still take it. */
	assert_int_equal(mn_region_map(&m, fd, MN_REGION_KIND_TEST), 0);
	mn_region_unmap(&m);
	mn_region_unmap(&r);
}

static void test_map_no_huge_accepts_memfd(void **state)
{
	struct mn_region r, m;

	(void)state;
	assert_int_equal(mn_region_create(&r, "ut-plain", &spec3, MN_REGION_F_NO_HUGE), 0);
	assert_int_equal(mn_region_map_flags(&m, dup(r.fd), MN_REGION_KIND_TEST,
					     MN_REGION_MAP_F_NO_HUGE), 0);
	mn_region_unmap(&m);
	mn_region_unmap(&r);
}

static void test_require_huge_fails_without_hugepages(void **state)
{
	struct mn_region_spec big = spec_beyond_free_hugepages();
	struct mn_region r, copy;
	int fds = tu_count_fds();
	int rc;

	(void)state;
	poison(&r, &copy);
	tu_log_reset();
	rc = mn_region_create(&r, "ut-nohuge", &big, MN_REGION_F_REQUIRE_HUGE);
	if (rc == 0 && r.hugetlb) {
		/* Someone reserved more huge pages since we looked. */
		mn_region_unmap(&r);
		skip();
	}
	assert_int_equal(rc, -ENOMEM);
	assert_memory_equal(&r, &copy, sizeof(r));
	assert_int_equal(tu_count_fds(), fds);
	assert_log_contains("huge");
}

static void test_create_falls_back_without_hugepages(void **state)
{
	struct mn_region_spec big = spec_beyond_free_hugepages();
	struct mn_region r;

	(void)state;
	assert_int_equal(mn_region_create(&r, "ut-fallback", &big, 0), 0);
	if (r.hugetlb) {
		/* Someone reserved more huge pages since we looked. */
		mn_region_unmap(&r);
		skip();
	}
	assert_false(r.hugetlb);
	assert_int_equal(r.hdr.flags & MN_REGION_HDR_F_HUGETLB, 0);
	check_sections(&r, &big);
	mn_region_unmap(&r);
}

/* ---- mapping ----------------------------------------------------------- */

static void test_map_dup_sees_same_bytes(void **state)
{
	struct mn_region r, m;
	uint8_t *rs, *ms;
	uint64_t len;

	(void)state;
	create3(&r);
	assert_int_equal(map_dup(&m, &r, MN_REGION_KIND_TEST), 0);
	assert_int_equal(m.size, r.size);
	assert_false(m.hugetlb);
	assert_memory_equal(&m.hdr, &r.hdr, sizeof(r.hdr));
	rs = mn_region_section(&r, 1, &len);
	ms = mn_region_section(&m, 1, &len);
	assert_ptr_not_equal(rs, ms);
	rs[0] = 0x11;
	rs[len - 1] = 0x22;
	assert_int_equal(ms[0], 0x11);
	assert_int_equal(ms[len - 1], 0x22);
	ms[17] = 0x33;
	assert_int_equal(rs[17], 0x33);
	mn_region_unmap(&m);
	mn_region_unmap(&r);
}

/* Child: map the inherited fd, check and answer. Exit codes say what failed. */
static int child_map(int fd)
{
	struct mn_region m;
	uint8_t *p;
	uint64_t len;

	if (mn_region_map(&m, fd, MN_REGION_KIND_TEST) != 0)
		return 1;
	p = mn_region_section(&m, 2, &len);
	if (!p || len != spec3.sec[2].len || p[0] != 0xab || p[len - 1] != 0xcd)
		return 2;
	if (m.hdr.creator_pid != (uint32_t)getppid())
		return 3;
	p[1] = 0x5a;
	if (mn_region_bump_generation(&m) != 2)
		return 4;
	mn_region_unmap(&m);
	if (tu_fd_is_open(fd))
		return 5;
	return 0;
}

static void test_map_in_forked_child(void **state)
{
	struct mn_region r;
	uint8_t *p;
	uint64_t len;
	int status;
	pid_t pid;

	(void)state;
	create3(&r);
	p = mn_region_section(&r, 2, &len);
	p[0] = 0xab;
	p[len - 1] = 0xcd;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_map(r.fd));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(p[1], 0x5a);
	assert_int_equal(mn_region_generation(&r), 2);
	mn_region_unmap(&r);
}

static void test_map_accepts_other_abi_minor(void **state)
{
	struct mn_region r, m;

	(void)state;
	create3(&r);
	shared_hdr(&r)->abi_minor = MN_ABI_MINOR + 7;
	assert_int_equal(map_dup(&m, &r, MN_REGION_KIND_TEST), 0);
	assert_int_equal(m.hdr.abi_minor, MN_ABI_MINOR + 7);
	mn_region_unmap(&m);
	mn_region_unmap(&r);
}

/* A fresh memfd of the region's size holding a copy of its valid header. */
static int memfd_with_header(const struct mn_region *r, unsigned int mfd_flags,
			     unsigned int seals)
{
	int fd = memfd_create("ut-forged", MFD_CLOEXEC | mfd_flags);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)r->size), 0);
	assert_int_equal(pwrite(fd, &r->hdr, sizeof(r->hdr), 0), (ssize_t)sizeof(r->hdr));
	if (seals)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

static void expect_map_refused(int fd, int err, const char *field)
{
	struct mn_region m, copy;

	poison(&m, &copy);
	tu_log_reset();
	assert_int_equal(mn_region_map(&m, fd, MN_REGION_KIND_TEST), err);
	assert_memory_equal(&m, &copy, sizeof(m));
	assert_true(tu_fd_is_open(fd));
	assert_int_equal(tu_log.level, MN_LOG_ERR);
	assert_log_contains(field);
}

static void test_map_rejects_unsealed_fd(void **state)
{
	struct mn_region r;
	int fd;

	(void)state;
	create3(&r);
	fd = memfd_with_header(&r, 0, 0);
	expect_map_refused(fd, -EPERM, "sealed");
	close(fd);
	mn_region_unmap(&r);
}

static void test_map_rejects_fd_sealed_without_shrink(void **state)
{
	struct mn_region r;
	int fd;

	(void)state;
	create3(&r);
	fd = memfd_with_header(&r, MFD_ALLOW_SEALING, F_SEAL_GROW | F_SEAL_SEAL);
	expect_map_refused(fd, -EPERM, "sealed");
	close(fd);
	mn_region_unmap(&r);
}

static void test_map_rejects_fd_with_seals_not_frozen(void **state)
{
	struct mn_region r;
	int fd;

	(void)state;
	create3(&r);
	/* Without F_SEAL_SEAL the peer could still add seals: refused. */
	fd = memfd_with_header(&r, MFD_ALLOW_SEALING, F_SEAL_SHRINK);
	expect_map_refused(fd, -EPERM, "sealed");
	close(fd);
	mn_region_unmap(&r);
}

static void test_map_accepts_foreign_fd_sealed_against_shrink(void **state)
{
	struct mn_region r, m;
	int fd;

	(void)state;
	create3(&r);
	fd = memfd_with_header(&r, MFD_ALLOW_SEALING, F_SEAL_SHRINK | F_SEAL_SEAL);
	assert_int_equal(mn_region_map(&m, fd, MN_REGION_KIND_TEST), 0);
	assert_memory_equal(&m.hdr, &r.hdr, sizeof(r.hdr));
	mn_region_unmap(&m);
	assert_false(tu_fd_is_open(fd));
	mn_region_unmap(&r);
}

static void test_map_rejects_file_smaller_than_header(void **state)
{
	int fd = memfd_create("ut-small", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, MN_REGION_HDR_SIZE - 1), 0);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
	expect_map_refused(fd, -EINVAL, "size");
	close(fd);
}

static void test_map_rejects_empty_file(void **state)
{
	int fd = memfd_create("ut-empty", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
	expect_map_refused(fd, -EINVAL, "size");
	close(fd);
}

static void test_map_rejects_file_larger_than_max(void **state)
{
	int fd = memfd_create("ut-big", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	(void)state;
	assert_true(fd >= 0);
	/* Sparse: no memory is used, and map must refuse before mmap. */
	if (ftruncate(fd, (off_t)(MN_REGION_MAX_SIZE + MN_REGION_ALIGN)) != 0) {
		close(fd);
		skip();
	}
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
	expect_map_refused(fd, -EINVAL, "size");
	close(fd);
}

static void test_map_rejects_closed_fd(void **state)
{
	struct mn_region m, copy;
	int fd = dup(STDIN_FILENO);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	poison(&m, &copy);
	assert_int_equal(mn_region_map(&m, fd, MN_REGION_KIND_TEST), -EBADF);
	assert_memory_equal(&m, &copy, sizeof(m));
}

/*
 * Forge one field of a real region's shared header, then map a dup of its
 * fd: the refusal carries @err and its log line names @field.
 */
static void expect_forged_refusal(void (*forge)(struct mn_region_hdr *, uint64_t size),
				  int err, const char *field)
{
	struct mn_region r;
	int fd;

	create3(&r);
	forge(shared_hdr(&r), r.size);
	fd = dup(r.fd);
	assert_true(fd >= 0);
	expect_map_refused(fd, err, field);
	close(fd);
	/* The same verdict from the header check alone. */
	tu_log_reset();
	assert_int_equal(mn_region_validate_hdr(shared_hdr(&r), r.size, MN_REGION_KIND_TEST),
			 err);
	assert_log_contains(field);
	mn_region_unmap(&r);
}

static void forge_magic(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->magic ^= 1;
}

static void test_map_rejects_wrong_magic(void **state)
{
	(void)state;
	expect_forged_refusal(forge_magic, -EBADMSG, "magic");
}

static void forge_abi_major(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->abi_major = MN_ABI_MAJOR + 1;
}

static void test_map_rejects_other_abi_major(void **state)
{
	(void)state;
	expect_forged_refusal(forge_abi_major, -EPROTONOSUPPORT, "abi_major");
}

static void forge_abi_major_zero(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->abi_major = 0;
}

static void test_map_rejects_older_abi_major(void **state)
{
	(void)state;
	expect_forged_refusal(forge_abi_major_zero, -EPROTONOSUPPORT, "abi_major");
}

static void forge_kind(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->kind = MN_REGION_KIND_PORT;
}

static void test_map_rejects_wrong_kind(void **state)
{
	struct mn_region r, m;

	(void)state;
	expect_forged_refusal(forge_kind, -EPROTOTYPE, "kind");
	/* And, unforged, a mapper that expects another kind. */
	create3(&r);
	tu_log_reset();
	assert_int_equal(map_dup(&m, &r, MN_REGION_KIND_CHANNEL), -EPROTOTYPE);
	assert_log_contains("kind");
	mn_region_unmap(&r);
}

static void forge_hdr_size(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->hdr_size = 2 * MN_REGION_HDR_SIZE;
}

static void test_map_rejects_wrong_hdr_size(void **state)
{
	(void)state;
	expect_forged_refusal(forge_hdr_size, -EBADMSG, "hdr_size");
}

static void forge_size_bigger(struct mn_region_hdr *h, uint64_t size)
{
	h->size = size + MN_REGION_ALIGN;
}

static void test_map_rejects_header_size_above_file_size(void **state)
{
	(void)state;
	expect_forged_refusal(forge_size_bigger, -EINVAL, "size");
}

static void forge_size_smaller(struct mn_region_hdr *h, uint64_t size)
{
	h->size = size - MN_REGION_ALIGN;
}

static void test_map_rejects_header_size_below_file_size(void **state)
{
	(void)state;
	expect_forged_refusal(forge_size_smaller, -EINVAL, "size");
}

static void forge_nsections_zero(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->nsections = 0;
}

static void test_map_rejects_zero_sections(void **state)
{
	(void)state;
	expect_forged_refusal(forge_nsections_zero, -EBADMSG, "nsections");
}

static void forge_nsections_17(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->nsections = MN_REGION_MAX_SECTIONS + 1;
}

static void test_map_rejects_seventeen_sections(void **state)
{
	(void)state;
	expect_forged_refusal(forge_nsections_17, -EBADMSG, "nsections");
}

static void forge_section_misaligned(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->sec[1].off += 8;
}

static void test_map_rejects_misaligned_section(void **state)
{
	(void)state;
	expect_forged_refusal(forge_section_misaligned, -ERANGE, "section 1");
}

static void forge_section_past_end(struct mn_region_hdr *h, uint64_t size)
{
	h->sec[2].len = size - h->sec[2].off + 1;
}

static void test_map_rejects_section_running_past_end(void **state)
{
	(void)state;
	expect_forged_refusal(forge_section_past_end, -ERANGE, "section 2");
}

static void forge_section_beyond_end(struct mn_region_hdr *h, uint64_t size)
{
	h->sec[2].off = size + MN_REGION_ALIGN;
}

static void test_map_rejects_section_starting_beyond_end(void **state)
{
	(void)state;
	expect_forged_refusal(forge_section_beyond_end, -ERANGE, "section 2");
}

static void forge_section_len_wraps(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->sec[2].len = UINT64_MAX - h->sec[2].off + 1; /* off + len == 0 mod 2^64 */
}

static void test_map_rejects_section_length_that_wraps(void **state)
{
	(void)state;
	expect_forged_refusal(forge_section_len_wraps, -ERANGE, "section 2");
}

static void forge_section_overlaps_start(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->sec[1].off = h->sec[0].off;
}

static void test_map_rejects_section_overlapping_previous(void **state)
{
	(void)state;
	expect_forged_refusal(forge_section_overlaps_start, -ERANGE, "section 1");
}

static void forge_section_overlaps_tail(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->sec[0].len = h->sec[1].off - h->sec[0].off + 1;
}

static void test_map_rejects_previous_section_running_into_next(void **state)
{
	(void)state;
	expect_forged_refusal(forge_section_overlaps_tail, -ERANGE, "section 1");
}

static void forge_section_in_header(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->sec[0].off = 0;
}

static void test_map_rejects_section_over_header(void **state)
{
	(void)state;
	expect_forged_refusal(forge_section_in_header, -ERANGE, "section 0");
}

static void forge_section_zero_len(struct mn_region_hdr *h, uint64_t size)
{
	(void)size;
	h->sec[1].len = 0;
}

static void test_map_rejects_zero_length_section(void **state)
{
	(void)state;
	expect_forged_refusal(forge_section_zero_len, -ERANGE, "section 1");
}

static void test_map_keeps_private_header_copy(void **state)
{
	struct mn_region r, m;
	struct mn_region_hdr *h;
	uint64_t len0, len1, len;
	uint8_t *s0, *s1;

	(void)state;
	create3(&r);
	assert_int_equal(map_dup(&m, &r, MN_REGION_KIND_TEST), 0);
	s0 = mn_region_section(&m, 0, &len0);
	s1 = mn_region_section(&m, 1, &len1);
	/* The peer rewrites the shared header after we validated it. */
	h = shared_hdr(&r);
	h->nsections = 1;
	h->sec[0].off = 0;
	h->sec[0].len = UINT64_MAX;
	h->sec[1].off = MN_REGION_MAX_SIZE;
	h->sec[1].tag = 99;
	assert_ptr_equal(mn_region_section(&m, 0, &len), s0);
	assert_int_equal(len, len0);
	assert_ptr_equal(mn_region_section(&m, 1, &len), s1);
	assert_int_equal(len, len1);
	assert_non_null(mn_region_section(&m, 2, &len));
	assert_int_equal(mn_region_find(&m, 11), 1);
	assert_int_equal(mn_region_find(&m, 99), -ENOENT);
	mn_region_unmap(&m);
	mn_region_unmap(&r);
}

/* ---- generation, unmap, names ------------------------------------------ */

static void test_generation_starts_at_one(void **state)
{
	struct mn_region r;

	(void)state;
	create3(&r);
	assert_int_equal(mn_region_generation(&r), 1);
	mn_region_unmap(&r);
}

static void test_generation_bumps_from_two_handles_add_up(void **state)
{
	struct mn_region r, m;

	(void)state;
	create3(&r);
	assert_int_equal(map_dup(&m, &r, MN_REGION_KIND_TEST), 0);
	assert_int_equal(mn_region_bump_generation(&r), 2);
	assert_int_equal(mn_region_bump_generation(&m), 3);
	for (int i = 0; i < 5; i++) {
		mn_region_bump_generation(&r);
		mn_region_bump_generation(&m);
	}
	assert_int_equal(mn_region_generation(&r), 13);
	assert_int_equal(mn_region_generation(&m), 13);
	mn_region_unmap(&m);
	mn_region_unmap(&r);
}

static void test_unmap_closes_fd_and_is_safe_twice(void **state)
{
	struct mn_region r;
	int fds = tu_count_fds();
	int fd;

	(void)state;
	create3(&r);
	fd = r.fd;
	assert_int_equal(tu_count_fds(), fds + 1);
	mn_region_unmap(&r);
	assert_false(tu_fd_is_open(fd));
	assert_int_equal(tu_count_fds(), fds);
	assert_null(r.base);
	mn_region_unmap(&r);
	assert_int_equal(tu_count_fds(), fds);
}

static void test_unmap_zeroed_handle_is_safe(void **state)
{
	struct mn_region r = { 0 };
	int stdin_open = tu_fd_is_open(STDIN_FILENO);

	(void)state;
	mn_region_unmap(&r);
	/* A zeroed handle's fd 0 is not the region's to close. */
	assert_int_equal(tu_fd_is_open(STDIN_FILENO), stdin_open);
	assert_null(r.base);
	assert_int_equal(r.fd, -1);
}

static void test_kind_names(void **state)
{
	(void)state;
	assert_string_equal(mn_region_kind_name(MN_REGION_KIND_TEST), "test");
	assert_string_equal(mn_region_kind_name(MN_REGION_KIND_PORT), "port");
	assert_string_equal(mn_region_kind_name(MN_REGION_KIND_CHANNEL), "channel");
	assert_string_equal(mn_region_kind_name(MN_REGION_KIND_TENANT), "tenant");
	assert_string_equal(mn_region_kind_name(0), "unknown");
	assert_string_equal(mn_region_kind_name(MN_REGION_KIND_MAX), "unknown");
	assert_string_equal(mn_region_kind_name(UINT32_MAX), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_one_section),
		cmocka_unit_test(test_create_sixteen_sections),
		cmocka_unit_test(test_create_writes_shared_header),
		cmocka_unit_test(test_create_seals_size),
		cmocka_unit_test(test_find_unknown_tag_returns_enoent),
		cmocka_unit_test(test_find_returns_first_of_duplicate_tags),
		cmocka_unit_test(test_section_out_of_range_is_null_and_keeps_len),
		cmocka_unit_test(test_create_no_huge_uses_memfd),
		cmocka_unit_test(test_create_rejects_kind_zero),
		cmocka_unit_test(test_create_rejects_kind_too_big),
		cmocka_unit_test(test_create_rejects_zero_sections),
		cmocka_unit_test(test_create_rejects_seventeen_sections),
		cmocka_unit_test(test_create_rejects_zero_length_section),
		cmocka_unit_test(test_create_rejects_huge_length),
		cmocka_unit_test(test_create_rejects_sections_summing_past_max),
		cmocka_unit_test(test_create_uses_hugepages_when_free),
		cmocka_unit_test(test_map_no_huge_refuses_hugetlbfs_fd),
		cmocka_unit_test(test_map_no_huge_accepts_memfd),
		cmocka_unit_test(test_require_huge_fails_without_hugepages),
		cmocka_unit_test(test_create_falls_back_without_hugepages),
		cmocka_unit_test(test_map_dup_sees_same_bytes),
		cmocka_unit_test(test_map_in_forked_child),
		cmocka_unit_test(test_map_accepts_other_abi_minor),
		cmocka_unit_test(test_map_rejects_unsealed_fd),
		cmocka_unit_test(test_map_rejects_fd_sealed_without_shrink),
		cmocka_unit_test(test_map_rejects_fd_with_seals_not_frozen),
		cmocka_unit_test(test_map_accepts_foreign_fd_sealed_against_shrink),
		cmocka_unit_test(test_map_rejects_file_smaller_than_header),
		cmocka_unit_test(test_map_rejects_empty_file),
		cmocka_unit_test(test_map_rejects_file_larger_than_max),
		cmocka_unit_test(test_map_rejects_closed_fd),
		cmocka_unit_test(test_map_rejects_wrong_magic),
		cmocka_unit_test(test_map_rejects_other_abi_major),
		cmocka_unit_test(test_map_rejects_older_abi_major),
		cmocka_unit_test(test_map_rejects_wrong_kind),
		cmocka_unit_test(test_map_rejects_wrong_hdr_size),
		cmocka_unit_test(test_map_rejects_header_size_above_file_size),
		cmocka_unit_test(test_map_rejects_header_size_below_file_size),
		cmocka_unit_test(test_map_rejects_zero_sections),
		cmocka_unit_test(test_map_rejects_seventeen_sections),
		cmocka_unit_test(test_map_rejects_misaligned_section),
		cmocka_unit_test(test_map_rejects_section_running_past_end),
		cmocka_unit_test(test_map_rejects_section_starting_beyond_end),
		cmocka_unit_test(test_map_rejects_section_length_that_wraps),
		cmocka_unit_test(test_map_rejects_section_overlapping_previous),
		cmocka_unit_test(test_map_rejects_previous_section_running_into_next),
		cmocka_unit_test(test_map_rejects_section_over_header),
		cmocka_unit_test(test_map_rejects_zero_length_section),
		cmocka_unit_test(test_map_keeps_private_header_copy),
		cmocka_unit_test(test_generation_starts_at_one),
		cmocka_unit_test(test_generation_bumps_from_two_handles_add_up),
		cmocka_unit_test(test_unmap_closes_fd_and_is_safe_twice),
		cmocka_unit_test(test_unmap_zeroed_handle_is_safe),
		cmocka_unit_test(test_kind_names),
	};

	return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
