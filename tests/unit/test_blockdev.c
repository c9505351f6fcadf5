/* blockdev and the volume identity check, on regular files: what counts as blank, labels,
 * twin names, a lookup that finds nothing leaving no message behind, mkfs refused on
 * anything but a blank device before mkfs is even started, the check after mkfs,
 * meta.properties ownership. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kb/blockdev.h"
#include "kb/deadline.h"
#include "kb/volume.h"
#include "scratch.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	return scratch_dir_new(dir, sizeof(dir), "blockdev-test");
}

static int teardown(void **state)
{
	(void)state;
	return scratch_dir_remove(dir);
}

/* A sparse file of size bytes with data written at each offset in at (-1 ends the list). */
static char *image(const char *name, off_t size, const off_t *at)
{
	static char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	for (; at && *at >= 0; at++)
		assert_int_equal(pwrite(fd, "data", 4, *at), 4);
	close(fd);
	return path;
}

static enum blockdev_content probe(const char *path, char **what)
{
	struct blockdev_probe p;
	enum blockdev_content c;

	assert_int_equal(blockdev_probe(path, 0, &p, NULL), 0);
	c = p.content;
	if (what)
		*what = p.what ? strdup(p.what) : NULL;
	blockdev_probe_clear(&p);
	return c;
}

static void zeros_are_blank_and_data_at_either_end_is_not(void **state)
{
	const off_t first[] = {4096, -1}, last[] = {(64 << 20) - 100, -1};
	const off_t middle[] = {32 << 20, -1};
	char *what = NULL;

	(void)state;
	assert_int_equal(probe(image("zero", 64 << 20, NULL), NULL), BLOCKDEV_BLANK);
	assert_int_equal(probe(image("first", 64 << 20, first), &what), BLOCKDEV_OTHER);
	assert_non_null(strstr(what, "first MiB"));
	free(what);
	assert_int_equal(probe(image("last", 64 << 20, last), &what), BLOCKDEV_OTHER);
	assert_non_null(strstr(what, "last MiB"));
	free(what);
	/* The check reads both ends, not the whole device: a terabyte volume stays fast. */
	assert_int_equal(probe(image("middle", 64 << 20, middle), NULL), BLOCKDEV_BLANK);
	assert_int_equal(probe(image("tiny", 4096, NULL), NULL), BLOCKDEV_BLANK);
}

static void labels_fit_the_filesystem_or_fail(void **state)
{
	struct kb_error err = {{0}};
	char *label = NULL;

	(void)state;
	assert_int_equal(blockdev_label("xfs", 3, &label, NULL), 0);
	assert_string_equal(label, "kafka-3");
	free(label);
	assert_int_equal(blockdev_label("xfs", 999999, &label, NULL), 0);
	assert_string_equal(label, "kafka-999999");
	free(label);
	assert_int_equal(blockdev_label("xfs", 1000000, &label, &err), -KB_ECONFIG);
	assert_null(label);
	assert_non_null(strstr(err.msg, "12 characters"));
	assert_int_equal(blockdev_label("ext4", 1000000, &label, NULL), 0);
	free(label);
	assert_int_equal(blockdev_label("btrfs", 1, &label, NULL), -EINVAL);
}

static void twin_names(void **state)
{
	char *t;

	(void)state;
	assert_string_equal(t = blockdev_twin_name("sdg"), "xvdg");
	free(t);
	assert_string_equal(t = blockdev_twin_name("xvdg"), "sdg");
	free(t);
	assert_string_equal(t = blockdev_twin_name("sdba"), "xvdba");
	free(t);
	assert_null(blockdev_twin_name("nvme1n1"));
	assert_null(blockdev_twin_name("sd"));
}

static void lookup_of_nothing_is_enoent_without_a_message(void **state)
{
	struct blockdev_roots roots = {.dev_root = dir, .sysfs_root = dir};
	struct kb_error err = {{0}};
	char *path = NULL, *how = NULL;

	(void)state;
	assert_int_equal(blockdev_lookup(&roots, "vol-0abc", "/dev/sdg", &path, &how, &err),
			 -ENOENT);
	assert_string_equal(err.msg, "");
	assert_null(path);
	assert_int_equal(blockdev_lookup(&roots, "vol-0abc/../x", "/dev/sdg", &path, &how, &err),
			 -EINVAL);
	assert_int_equal(blockdev_lookup(&roots, "vol-", "/dev/sdg", &path, &how, &err),
			 -EINVAL);
}

/* One non-zero byte at each edge of the checked regions (1 MiB at each end) and of the reads
 * they are made of (64 KiB): each is data; the byte just outside them is not looked at. A
 * read that is all 0xff is data too. */
static void a_single_byte_at_any_edge_of_the_checked_ends_is_data(void **state)
{
	const off_t size = 64 << 20, mib = 1 << 20;
	const off_t data[] = {0, 65535, 65536, mib - 1, size - mib, size - mib + 65536, size - 1};
	const off_t outside[] = {mib, size - mib - 1};
	static char ff[65536];
	char path[160];
	int fd;

	(void)state;
	for (size_t i = 0; i < sizeof(data) / sizeof(data[0]) + 2; i++) {
		bool in = i < sizeof(data) / sizeof(data[0]);
		off_t at = in ? data[i] : outside[i - sizeof(data) / sizeof(data[0])];

		snprintf(path, sizeof(path), "%s/byte-%lld", dir, (long long)at);
		fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, size), 0);
		assert_int_equal(pwrite(fd, "\x01", 1, at), 1);
		close(fd);
		assert_int_equal(probe(path, NULL), in ? BLOCKDEV_OTHER : BLOCKDEV_BLANK);
	}
	/* Erased flash reads as 0xff: a whole read of it is data too. */
	snprintf(path, sizeof(path), "%s/erased", dir);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	memset(ff, 0xff, sizeof(ff));
	assert_int_equal(pwrite(fd, ff, sizeof(ff), 65536), (ssize_t)sizeof(ff));
	close(fd);
	assert_int_equal(probe(path, NULL), BLOCKDEV_OTHER);
}

static void mkfs_on_anything_but_blank_is_refused_before_mkfs_runs(void **state)
{
	const off_t first[] = {512, -1};
	char bin[160], marker[160], shim[200], *old_path = getenv("PATH");
	char *saved = old_path ? strdup(old_path) : NULL;
	const struct blockdev_probe shared = {.content = BLOCKDEV_BLANK, .exclusive = false};
	struct kb_error err = {{0}};
	FILE *f;

	(void)state;
	snprintf(bin, sizeof(bin), "%s/bin", dir);
	snprintf(marker, sizeof(marker), "%s/mkfs-ran", dir);
	snprintf(shim, sizeof(shim), "%s/mkfs.xfs", bin);
	assert_int_equal(mkdir(bin, 0755), 0);
	f = fopen(shim, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n/usr/bin/touch '%s'\n", marker);
	fclose(f);
	assert_int_equal(chmod(shim, 0755), 0);
	setenv("PATH", bin, 1);
	assert_int_equal(blockdev_mkfs(image("used", 64 << 20, first), "xfs", "kafka-1", NULL,
				       deadline_after_ms(5000), &err), -KB_EFORMAT);
	assert_non_null(strstr(err.msg, "refusing"));
	assert_int_equal(access(marker, F_OK), -1);
	/* a BLANK handed over from a shared open is no proof: the device is probed again */
	kb_error_clear(&err);
	assert_int_equal(blockdev_mkfs(image("used", 64 << 20, first), "xfs", "kafka-1", &shared,
				       deadline_after_ms(5000), &err), -KB_EFORMAT);
	assert_non_null(strstr(err.msg, "refusing"));
	assert_int_equal(access(marker, F_OK), -1);
	/* the same shim does run for a blank one: the refusal above was the probe's */
	assert_int_equal(blockdev_mkfs(image("blank", 64 << 20, NULL), "xfs", "kafka-1", NULL,
				       deadline_after_ms(5000), NULL), 0);
	assert_int_equal(access(marker, F_OK), 0);
	if (saved)
		setenv("PATH", saved, 1);
	free(saved);
}

/* blockdev_mkfs trusts a handed-over probe only when it says it held the device O_EXCL. */
static void probe_says_whether_it_held_the_device_exclusively(void **state)
{
	const char *path = image("zero", 1 << 20, NULL);
	struct blockdev_probe p;

	(void)state;
	assert_int_equal(blockdev_probe(path, BLOCKDEV_PROBE_EXCLUSIVE, &p, NULL), 0);
	assert_true(p.exclusive);
	blockdev_probe_clear(&p);
	assert_int_equal(blockdev_probe(path, 0, &p, NULL), 0);
	assert_false(p.exclusive);
	blockdev_probe_clear(&p);
}

static void run_mkfs(const char *program, const char *path)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "/sbin/%s -q %s '%s' >/dev/null 2>&1", program,
		 strcmp(program, "mkfs.ext4") == 0 ? "-F" : "", path);
	assert_int_equal(system(cmd), 0);
}

/* The check after mkfs reads one type's superblock only: it must still tell that type from
 * nothing and from the other type. */
static void verify_made_confirms_only_the_filesystem_asked_for(void **state)
{
	char xfs[128], ext4[128];
	struct kb_error err = {{0}};

	(void)state;
	strcpy(xfs, image("xfs", 320 << 20, NULL));
	assert_int_equal(blockdev_verify_made(xfs, "xfs", &err), -EIO);
	assert_non_null(strstr(err.msg, "does not read as xfs"));
	run_mkfs("mkfs.xfs", xfs);
	assert_int_equal(blockdev_verify_made(xfs, "xfs", NULL), 0);
	assert_int_equal(blockdev_verify_made(xfs, "ext4", NULL), -EIO);
	strcpy(ext4, image("ext4", 64 << 20, NULL));
	run_mkfs("mkfs.ext4", ext4);
	assert_int_equal(blockdev_verify_made(ext4, "ext4", NULL), 0);
	assert_int_equal(blockdev_verify_made(ext4, "xfs", NULL), -EIO);
}

static void write_meta(const char *text)
{
	char path[160];
	FILE *f;

	snprintf(path, sizeof(path), "%s/meta.properties", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void identity_check_reads_broker_id_and_node_id(void **state)
{
	struct kb_error err = {{0}};

	(void)state;
	assert_int_equal(volume_check_identity("/nonexistent-kb", 3, NULL), 0);
	write_meta("#comment\nversion=0\nbroker.id=3\n");
	assert_int_equal(volume_check_identity(dir, 3, NULL), 0);
	assert_int_equal(volume_check_identity(dir, 4, &err), -KB_EFOREIGN);
	assert_non_null(strstr(err.msg, "belongs to broker 3, not 4"));
	write_meta("node.id=4\nbroker.id=4\n");
	assert_int_equal(volume_check_identity(dir, 4, NULL), 0);
	write_meta("node.id=5\nbroker.id=4\n");
	assert_int_equal(volume_check_identity(dir, 4, NULL), -KB_EFOREIGN);
	write_meta("broker.id=4x\n");
	assert_int_equal(volume_check_identity(dir, 4, NULL), -KB_EFOREIGN);
	write_meta("broker.id=-1\n");
	assert_int_equal(volume_check_identity(dir, 4, NULL), -KB_EFOREIGN);
	write_meta("version=0\ncluster.id=abc\n");
	assert_int_equal(volume_check_identity(dir, 4, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(zeros_are_blank_and_data_at_either_end_is_not),
		cmocka_unit_test(a_single_byte_at_any_edge_of_the_checked_ends_is_data),
		cmocka_unit_test(labels_fit_the_filesystem_or_fail),
		cmocka_unit_test(twin_names),
		cmocka_unit_test(lookup_of_nothing_is_enoent_without_a_message),
		cmocka_unit_test(mkfs_on_anything_but_blank_is_refused_before_mkfs_runs),
		cmocka_unit_test(probe_says_whether_it_held_the_device_exclusively),
		cmocka_unit_test(verify_made_confirms_only_the_filesystem_asked_for),
		cmocka_unit_test(identity_check_reads_broker_id_and_node_id),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
