/* mountpoint: mountinfo parsing (escapes, optional fields, the topmost mount wins, bind mounts
 * of a subdirectory) and mount options turned into mount(2) flags and data. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>

#include <cmocka.h>

#include "kb/mountpoint.h"

static const char mountinfo[] =
	"22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	"60 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=4000k\n"
	"90 22 259:1 / /var/lib/kafka rw,noatime shared:40 - xfs /dev/nvme1n1 rw,inode64\n"
	"91 22 259:1 /sub /mnt/with\\040space rw - xfs /dev/nvme1n1 rw\n"
	"92 90 0:40 / /var/lib/kafka rw master:3 unbindable - tmpfs kb\\134tmp rw\n"
	"garbage line without the separator\n"
	"93 22 259:2 / /srv rw - ext4 /dev/nvme2n1 rw\n";

static void topmost_mount_at_a_path_wins(void **state)
{
	struct mountpoint_entry e = {0};

	(void)state;
	assert_int_equal(mountpoint_at(mountinfo, "/var/lib/kafka", &e), 0);
	assert_string_equal(e.fstype, "tmpfs");
	assert_string_equal(e.source, "kb\\tmp");
	assert_int_equal(e.major, 0);
	assert_int_equal(e.minor, 40);
	mountpoint_entry_clear(&e);
}

static void nothing_mounted_exactly_there_is_enoent(void **state)
{
	struct mountpoint_entry e = {0};

	(void)state;
	assert_int_equal(mountpoint_at(mountinfo, "/var/lib", &e), -ENOENT);
	assert_int_equal(mountpoint_at(mountinfo, "/var/lib/kafka/logs", &e), -ENOENT);
	assert_null(e.target);
}

static void escaped_paths_and_subdirectory_roots(void **state)
{
	struct mountpoint_entry e = {0};

	(void)state;
	assert_int_equal(mountpoint_at(mountinfo, "/mnt/with space", &e), 0);
	assert_string_equal(e.root, "/sub");
	assert_int_equal(e.major, 259);
	mountpoint_entry_clear(&e);
}

static void mounts_of_a_device_skip_the_excepted_path(void **state)
{
	struct mountpoint_entry e = {0};

	(void)state;
	assert_int_equal(mountpoint_of_device(mountinfo, makedev(259, 1), NULL, &e), 0);
	assert_string_equal(e.target, "/var/lib/kafka");
	mountpoint_entry_clear(&e);
	assert_int_equal(mountpoint_of_device(mountinfo, makedev(259, 1), "/var/lib/kafka", &e),
			 0);
	assert_string_equal(e.target, "/mnt/with space");
	mountpoint_entry_clear(&e);
	assert_int_equal(mountpoint_of_device(mountinfo, makedev(259, 9), NULL, &e), -ENOENT);
}

static void options_split_into_flags_and_data(void **state)
{
	unsigned long flags;
	char *data = NULL;

	(void)state;
	assert_int_equal(mountpoint_parse_options("noatime", &flags, &data, NULL), 0);
	assert_int_equal(flags, MS_NOATIME);
	assert_null(data);
	assert_int_equal(mountpoint_parse_options("defaults,ro,nodev,,inode64,nosuid,"
						  "logbufs=8,nofail,x-systemd.device-timeout=5,"
						  "rw,atime,noatime", &flags, &data, NULL), 0);
	assert_int_equal(flags, MS_NODEV | MS_NOSUID | MS_NOATIME);
	assert_string_equal(data, "inode64,logbufs=8");
	free(data);
	assert_int_equal(mountpoint_parse_options("", &flags, &data, NULL), 0);
	assert_int_equal(flags, 0);
	assert_null(data);
}

static void operations_are_refused(void **state)
{
	static const char *const refused[] = {"bind", "remount", "move", "rshared", "private"};
	struct kb_error err = {{0}};
	unsigned long flags;
	char *data = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char options[64];

		snprintf(options, sizeof(options), "noatime,%s,inode64", refused[i]);
		kb_error_clear(&err);
		assert_int_equal(mountpoint_parse_options(options, &flags, &data, &err),
				 -KB_ECONFIG);
		assert_null(data);
		assert_non_null(strstr(err.msg, refused[i]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(topmost_mount_at_a_path_wins),
		cmocka_unit_test(nothing_mounted_exactly_there_is_enoent),
		cmocka_unit_test(escaped_paths_and_subdirectory_roots),
		cmocka_unit_test(mounts_of_a_device_skip_the_excepted_path),
		cmocka_unit_test(options_split_into_flags_and_data),
		cmocka_unit_test(operations_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
