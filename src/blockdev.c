/* blockdev.c: find the block device of an EBS volume, tell what it holds, format it only when
 * it holds nothing. Never writes to a device that carries a signature or unnamed data.
 *
 * Device names on EC2 (AWS-PROTOCOL.md section 8): Nitro exposes every EBS volume as NVMe,
 * numbered in probe order (unstable across boots), with the volume id without its dash as the
 * controller serial, and udev adds /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol<hex>.
 * Xen shows the requested /dev/sdX as /dev/xvdX. So: the serial, by link or by sysfs, before
 * any name; and whatever a link or a name resolves to, an NVMe device is ours only when its
 * own serial says so. */
#include "kb/blockdev.h"

#include <blkid/blkid.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kb/deadline.h"
#include "kb/file.h"
#include "kb/log.h"
#include "kb/spawn.h"

#define BYID_PREFIX "disk/by-id/nvme-Amazon_Elastic_Block_Store_"

/* asprintf that yields NULL on failure (asprintf leaves its pointer undefined then). */
__attribute__((format(printf, 1, 2))) static char *fmt_new(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

/* "vol-0abc" -> "vol0abc" (the NVMe serial); NULL for anything that is not vol-<hex>. */
static char *volume_serial(const char *volume_id)
{
	const char *hex = volume_id + 4;
	char *serial;

	if (strncmp(volume_id, "vol-", 4) != 0 || *hex == '\0')
		return NULL;
	for (const char *p = hex; *p; p++) {
		if (!isxdigit((unsigned char)*p))
			return NULL;
	}
	serial = fmt_new("vol%s", hex);
	if (!serial)
		return NULL;
	return serial;
}

/* Follows links; -ENOENT when the name or its target is absent (a link udev made before the
 * node, or a stale one), -ENOTBLK with a message when it is not a block device. */
static int resolve_block(const char *name, char **path, struct kb_error *err)
{
	struct stat st;
	char *real = realpath(name, NULL);

	if (!real)
		return errno == ENOENT || errno == ENOTDIR ? -ENOENT
			: kb_errorf(err, errno, "cannot resolve %s: %s", name, strerror(errno));
	if (stat(real, &st) < 0) {
		int e = errno;

		free(real);
		return e == ENOENT ? -ENOENT
			: kb_errorf(err, e, "cannot stat %s: %s", name, strerror(e));
	}
	if (!S_ISBLK(st.st_mode)) {
		kb_errorf(err, ENOTBLK, "%s resolves to %s, which is not a block device", name,
			  real);
		free(real);
		return -ENOTBLK;
	}
	*path = real;
	return 0;
}

/* sysfs prints serials padded with spaces plus a newline: compare trimmed. */
static bool serial_file_matches(const char *file, const char *serial, bool *readable)
{
	struct kb_error scratch = {{0}};
	char *text = NULL, *start, *end;
	size_t len;
	bool match;

	*readable = false;
	if (file_read_all(file, &text, &len, &scratch) < 0)
		return false;
	*readable = true;
	start = text;
	end = text + strlen(text);
	while (start < end && isspace((unsigned char)*start))
		start++;
	while (end > start && isspace((unsigned char)end[-1]))
		end--;
	match = (size_t)(end - start) == strlen(serial) &&
		memcmp(start, serial, (size_t)(end - start)) == 0;
	free(text);
	return match;
}

/* The device node dev_root/<name>, when it exists and is a block device. */
static int node_in_dev(const struct blockdev_roots *roots, const char *name, char **path,
		       struct kb_error *err)
{
	char *node;
	int ret;

	node = fmt_new("%s/%s", roots->dev_root, name);
	if (!node)
		return kb_errorf(err, ENOMEM, "out of memory");
	ret = resolve_block(node, path, err);
	free(node);
	return ret;
}

/* /sys/block/nvmeXnY/device is the controller, or the subsystem under native multipath: both
 * carry the serial. */
static int find_in_sys_block(const struct blockdev_roots *roots, const char *serial,
			     char **path, char **how, struct kb_error *err)
{
	char *dir_path = NULL;
	DIR *dir;
	struct dirent *de;
	int ret = -ENOENT;

	dir_path = fmt_new("%s/block", roots->sysfs_root);
	if (!dir_path)
		return kb_errorf(err, ENOMEM, "out of memory");
	dir = opendir(dir_path);
	while (dir && ret == -ENOENT && (de = readdir(dir)) != NULL) {
		char *file = NULL;
		bool readable;

		if (strncmp(de->d_name, "nvme", 4) != 0)
			continue;
		file = fmt_new("%s/%s/device/serial", dir_path, de->d_name);
		if (!file) {
			ret = kb_errorf(err, ENOMEM, "out of memory");
			break;
		}
		if (serial_file_matches(file, serial, &readable)) {
			ret = node_in_dev(roots, de->d_name, path, err);
			if (ret == 0)
			*how = fmt_new("NVMe serial %s in %s", serial, file);
		}
		free(file);
	}
	if (dir)
		closedir(dir);
	free(dir_path);
	return ret;
}

/* Namespaces of one controller: /sys/class/nvme/nvmeN/nvmeNn1. */
static int find_namespace(const struct blockdev_roots *roots, const char *ctrl_dir,
			  char **path, struct kb_error *err)
{
	DIR *dir = opendir(ctrl_dir);
	struct dirent *de;
	int ret = -ENOENT;

	while (dir && ret == -ENOENT && (de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, "nvme", 4) == 0 && strchr(de->d_name + 4, 'n'))
			ret = node_in_dev(roots, de->d_name, path, err);
	}
	if (dir)
		closedir(dir);
	return ret;
}

static int find_in_class_nvme(const struct blockdev_roots *roots, const char *serial,
			      char **path, char **how, struct kb_error *err)
{
	char *dir_path = NULL;
	DIR *dir;
	struct dirent *de;
	int ret = -ENOENT;

	dir_path = fmt_new("%s/class/nvme", roots->sysfs_root);
	if (!dir_path)
		return kb_errorf(err, ENOMEM, "out of memory");
	dir = opendir(dir_path);
	while (dir && ret == -ENOENT && (de = readdir(dir)) != NULL) {
		char *ctrl = NULL, *file = NULL;
		bool readable;

		if (de->d_name[0] == '.')
			continue;
		ctrl = fmt_new("%s/%s", dir_path, de->d_name);
		file = fmt_new("%s/%s/serial", dir_path, de->d_name);
		if (!ctrl || !file) {
			free(ctrl);
			free(file);
			ret = kb_errorf(err, ENOMEM, "out of memory");
			break;
		}
		if (serial_file_matches(file, serial, &readable)) {
			ret = find_namespace(roots, ctrl, path, err);
			if (ret == 0)
			*how = fmt_new("NVMe serial %s in %s", serial, file);
		}
		free(file);
		free(ctrl);
	}
	if (dir)
		closedir(dir);
	free(dir_path);
	return ret;
}

char *blockdev_twin_name(const char *name)
{
	if (strncmp(name, "sd", 2) == 0 && name[2] != '\0')
		return fmt_new("xvd%s", name + 2);
	if (strncmp(name, "xvd", 3) == 0 && name[3] != '\0')
		return fmt_new("sd%s", name + 3);
	return NULL;
}

/* A device is another volume's when it is an NVMe namespace (it carries a serial in sysfs, or
 * is named nvme*) whose serial is not ours. On Nitro udev links /dev/sdX to whichever volume
 * last asked for sdX, and a by-id link it has not removed yet (the volume detached, its
 * nvmeXn1 index reused) names the wrong device: the serial is the only proof. */
static bool belongs_to_other_volume(const struct blockdev_roots *roots, const char *real,
				    const char *serial)
{
	const char *base = strrchr(real, '/');
	char *file = NULL;
	bool readable = false, match;

	base = base ? base + 1 : real;
	file = fmt_new("%s/block/%s/device/serial", roots->sysfs_root, base);
	if (!file)
		return true; /* unproven is not ours: the wait goes on */
	match = serial_file_matches(file, serial, &readable);
	free(file);
	if (!readable)
		return strncmp(base, "nvme", 4) == 0;
	return !match;
}

/* A candidate that fails the serial check was not found: blockdev_find waits on. */
static int check_serial(const struct blockdev_roots *roots, const char *serial, int ret,
			char **path, char **how)
{
	if (ret != 0 || !belongs_to_other_volume(roots, *path, serial))
		return ret;
	log_warn("%s resolves to %s, an NVMe device whose serial is not %s: not this volume's",
		 *how ? *how : "a candidate", *path, serial);
	free(*path);
	free(*how);
	*path = NULL;
	*how = NULL;
	return -ENOENT;
}

static int find_by_name(const struct blockdev_roots *roots, const char *serial,
			const char *requested, char **path, char **how, struct kb_error *err)
{
	const char *name = strncmp(requested, "/dev/", 5) == 0 ? requested + 5 : requested;
	char *twin = blockdev_twin_name(name);
	const char *names[2] = {name, twin};
	int ret = -ENOENT;

	for (int i = 0; i < 2 && ret == -ENOENT; i++) {
		if (!names[i])
			continue;
		ret = node_in_dev(roots, names[i], path, err);
		if (ret == 0)
			*how = fmt_new("device name %s/%s", roots->dev_root, names[i]);
		ret = check_serial(roots, serial, ret, path, how);
	}
	free(twin);
	return ret;
}

int blockdev_lookup(const struct blockdev_roots *roots, const char *volume_id,
		    const char *requested, char **path, char **how, struct kb_error *err)
{
	static const char *const suffixes[] = {"", "-ns-1"};
	char *serial = volume_serial(volume_id);
	int ret = -ENOENT;

	*path = NULL;
	*how = NULL;
	if (!serial)
		return kb_errorf(err, EINVAL, "'%s' is not an EBS volume id (vol-<hex>)",
				 volume_id);
	for (size_t i = 0; i < 2 && ret == -ENOENT; i++) {
		char *link = fmt_new("%s/" BYID_PREFIX "%s%s", roots->dev_root, serial,
				     suffixes[i]);

		if (!link) {
			ret = kb_errorf(err, ENOMEM, "out of memory");
			break;
		}
		ret = resolve_block(link, path, err);
		if (ret == 0)
			*how = fmt_new("link %s", link);
		ret = check_serial(roots, serial, ret, path, how);
		free(link);
	}
	if (ret == -ENOENT)
		ret = check_serial(roots, serial, find_in_sys_block(roots, serial, path, how, err),
				   path, how);
	if (ret == -ENOENT)
		ret = check_serial(roots, serial, find_in_class_nvme(roots, serial, path, how, err),
				   path, how);
	if (ret == -ENOENT)
		ret = find_by_name(roots, serial, requested, path, how, err);
	free(serial);
	return ret;
}

/* Watches what udev and devtmpfs change when a volume appears: the /dev root (the node) and
 * disk/by-id (the link), whichever exist. Adding a watch again is harmless (same descriptor),
 * so this runs before every look: a directory created since the last one is watched before
 * it is read, and nothing created in it can slip between. Best effort: the poll remains. */
static void watch_dev_tree(int ifd, const struct blockdev_roots *roots)
{
	static const char *const subdirs[] = {"", "/disk", "/disk/by-id"};

	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		char *dir = fmt_new("%s%s", roots->dev_root, subdirs[i]);

		/* A missing directory is fine: its parent's watch reports its creation. */
		if (dir)
			(void)inotify_add_watch(ifd, dir, IN_CREATE | IN_MOVED_TO | IN_ATTRIB);
		free(dir);
	}
}

/* Sleeps until an inotify event or ms passed, then drains the queue. */
static void wait_for_change(int ifd, int64_t ms)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd pfd = {.fd = ifd, .events = POLLIN};

	if (ifd < 0) {
		deadline_sleep_ms(deadline_after_ms(ms), ms);
		return;
	}
	if (poll(&pfd, 1, (int)ms) > 0) {
		while (read(ifd, buf, sizeof(buf)) > 0)
			;
	}
}

int blockdev_find(const struct blockdev_roots *roots, const char *volume_id,
		  const char *requested, int64_t deadline, char **path, char **how,
		  struct kb_error *err)
{
	int64_t interval = 50;
	bool watching = false;
	int ifd = -1;
	int ret;

	for (;;) {
		if (ifd >= 0)
			watch_dev_tree(ifd, roots);
		ret = blockdev_lookup(roots, volume_id, requested, path, how, err);
		if (ret != -ENOENT)
			break;
		if (deadline_passed(deadline)) {
			ret = kb_errorf(err, KB_ETIMEOUT,
					"no block device for %s appeared before the deadline "
					"(looked for %s/" BYID_PREFIX "vol..., an NVMe serial "
					"under %s, and %s/%s and its twin)",
					volume_id, roots->dev_root, roots->sysfs_root,
					roots->dev_root,
					strncmp(requested, "/dev/", 5) == 0 ? requested + 5
									     : requested);
			break;
		}
		if (!watching) {
			/* Not there at the first look: watch, then look again at once. */
			watching = true;
			ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
			if (ifd >= 0)
				continue;
			log_debug("inotify unavailable (%s): polling for the device",
				  strerror(errno));
		}
		wait_for_change(ifd, deadline_min(interval, deadline_remaining_ms(deadline)));
		/* sysfs sends no notifications: keep polling, but not busily. */
		interval = interval * 2 > 1000 ? 1000 : interval * 2;
	}
	if (ifd >= 0)
		close(ifd);
	return ret;
}

void blockdev_probe_clear(struct blockdev_probe *probe)
{
	free(probe->fstype);
	free(probe->label);
	free(probe->uuid);
	free(probe->what);
	memset(probe, 0, sizeof(*probe));
}

static char *probe_value(blkid_probe pr, const char *name)
{
	const char *value = NULL;

	if (blkid_probe_lookup_value(pr, name, &value, NULL) < 0 || !value)
		return NULL;
	return strdup(value);
}

/* Every prober, and the partition tables (GPT forced, so a GPT whose only intact header is
 * the backup at the end is found); or, given only_type, that type's superblock alone: no
 * other prober, no partition table, no end of the device read. */
static blkid_probe probe_new(int fd, const char *only_type)
{
	char *only[] = {(char *)only_type, NULL};
	blkid_probe pr = blkid_new_probe();

	if (!pr)
		return NULL;
	if (blkid_probe_set_device(pr, fd, 0, 0) < 0 ||
	    blkid_probe_enable_superblocks(pr, 1) < 0 ||
	    blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE |
						      BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID |
						      BLKID_SUBLKS_MAGIC |
						      BLKID_SUBLKS_BADCSUM) < 0 ||
	    (only_type && blkid_probe_filter_superblocks_type(pr, BLKID_FLTR_ONLYIN, only) < 0) ||
	    blkid_probe_enable_partitions(pr, only_type ? 0 : 1) < 0 ||
	    (!only_type && blkid_probe_set_partitions_flags(pr, BLKID_PARTS_FORCE_GPT |
							    BLKID_PARTS_MAGIC) < 0)) {
		blkid_free_probe(pr);
		return NULL;
	}
	return pr;
}

/* Appends name to a comma-separated list. */
static int list_add(char **list, const char *name)
{
	char *grown = fmt_new("%s%s%s", *list ? *list : "", *list ? ", " : "", name);
	if (!grown)
		return -ENOMEM;
	free(*list);
	*list = grown;
	return 0;
}

/* safeprobe said "ambivalent": walk every chain to name all the signatures it saw. */
static char *list_signatures(int fd)
{
	blkid_probe pr = probe_new(fd, NULL);
	char *list = NULL;

	while (pr && blkid_do_probe(pr) == 0) {
		const char *type = NULL, *pttype = NULL;
		int r = 0;

		if (blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0 && type)
			r = list_add(&list, type);
		else if (blkid_probe_lookup_value(pr, "PTTYPE", &pttype, NULL) == 0 && pttype)
			r = list_add(&list, pttype);
		if (r < 0)
			break;
	}
	blkid_free_probe(pr);
	return list;
}

/* How many bytes at each end must read as zeros for "blank": covers every signature libblkid
 * knows of and the first allocation structures of common filesystems it may not know. */
#define BLANK_CHECK_BYTES (1024 * 1024)

/* Every byte of buf zero: the first is, and each equals the next (memcmp is vectorised; a
 * byte loop over the 2 MiB of a blank check cost the boot 2 ms of CPU). */
static bool all_zero(const char *buf, size_t n)
{
	return n == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, n - 1) == 0);
}

/* 1 when [off, off + len) reads as zeros, 0 when not, negative errno. */
static int region_is_zero(int fd, int64_t off, size_t len)
{
	char *buf = malloc(65536);
	int ret = 1;

	if (!buf)
		return -ENOMEM;
	while (len > 0 && ret == 1) {
		size_t chunk = len > 65536 ? 65536 : len;
		ssize_t n = pread(fd, buf, chunk, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		if (!all_zero(buf, (size_t)n))
			ret = 0;
		off += n;
		len -= (size_t)n;
	}
	free(buf);
	return ret;
}

/* libblkid found nothing: blank only if both ends are zeros too. A volume someone ran
 * wipefs on, or one holding a format libblkid does not know, still holds data. */
static int classify_unsigned(int fd, int64_t size, const char *path, struct blockdev_probe *out,
			     struct kb_error *err)
{
	size_t len = size < BLANK_CHECK_BYTES ? (size_t)size : BLANK_CHECK_BYTES;
	int head = region_is_zero(fd, 0, len);
	int tail = head == 1 ? region_is_zero(fd, size - (int64_t)len, len) : head;

	if (head < 0 || tail < 0)
		return kb_errorf(err, -(head < 0 ? head : tail), "cannot read %s: %s", path,
				 strerror(-(head < 0 ? head : tail)));
	if (head == 1 && tail == 1) {
		out->content = BLOCKDEV_BLANK;
		return 0;
	}
	out->content = BLOCKDEV_OTHER;
	out->what = fmt_new("no signature libblkid knows, but data in its %s MiB",
			    head == 0 ? "first" : "last");
	return 0;
}

static int classify_found(blkid_probe pr, struct blockdev_probe *out)
{
	char *pttype = probe_value(pr, "PTTYPE");
	char *type = probe_value(pr, "TYPE");
	char *usage = probe_value(pr, "USAGE");
	char *offset = probe_value(pr, "SBMAGIC_OFFSET");
	bool badcsum = blkid_probe_has_value(pr, "SBBADCSUM");

	out->content = BLOCKDEV_OTHER;
	if (pttype) {
		out->what = fmt_new("a partition table (%s)", pttype);
	} else if (type && usage && strcmp(usage, "filesystem") == 0 && !badcsum) {
		out->content = BLOCKDEV_FILESYSTEM;
		out->fstype = type;
		type = NULL;
		out->label = probe_value(pr, "LABEL");
		out->uuid = probe_value(pr, "UUID");
	} else if (type) {
		out->what = fmt_new("a %s signature (%s%s)%s%s", type,
				    usage ? usage : "unknown use", badcsum ? ", bad checksum" : "",
				    offset ? " at offset " : "", offset ? offset : "");
	} else {
		out->what = fmt_new("a signature libblkid cannot name");
	}
	free(pttype);
	free(type);
	free(usage);
	free(offset);
	return out->content == BLOCKDEV_FILESYSTEM && !out->fstype ? -ENOMEM : 0;
}

int blockdev_probe(const char *path, unsigned flags, struct blockdev_probe *out,
		   struct kb_error *err)
{
	int oflags = O_RDONLY | O_CLOEXEC | ((flags & BLOCKDEV_PROBE_EXCLUSIVE) ? O_EXCL : 0);
	blkid_probe pr = NULL;
	int fd, r, ret = 0;

	memset(out, 0, sizeof(*out));
	fd = open(path, oflags);
	if (fd < 0 && errno == EBUSY)
		return kb_errorf(err, EBUSY, "%s is in use (mounted, an md or device-mapper "
				 "member, or opened exclusively by another program)", path);
	if (fd < 0)
		return kb_errorf(err, errno, "cannot open %s: %s", path, strerror(errno));
	out->exclusive = (flags & BLOCKDEV_PROBE_EXCLUSIVE) != 0;
	pr = probe_new(fd, NULL);
	if (!pr) {
		ret = kb_errorf(err, ENOMEM, "cannot set up libblkid for %s", path);
		goto out;
	}
	r = blkid_do_safeprobe(pr);
	if (r == 1) {
		ret = classify_unsigned(fd, blkid_probe_get_size(pr), path, out, err);
	} else if (r == 0) {
		ret = classify_found(pr, out);
	} else if (r == -2) {
		char *list = list_signatures(fd);

		out->content = BLOCKDEV_OTHER;
		out->what = fmt_new("several signatures at once (%s)",
				    list ? list : "libblkid could not list them");
		free(list);
	} else {
		ret = kb_errorf(err, EIO, "libblkid could not probe %s", path);
	}
	if (ret == 0 && out->content == BLOCKDEV_OTHER && !out->what)
		ret = kb_errorf(err, ENOMEM, "out of memory");
out:
	if (ret < 0)
		blockdev_probe_clear(out);
	blkid_free_probe(pr);
	close(fd);
	return ret;
}

int blockdev_verify_made(const char *path, const char *fstype, struct kb_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	blkid_probe pr = NULL;
	char *type = NULL, *usage = NULL;
	int ret = 0;

	if (fd < 0)
		return kb_errorf(err, errno, "cannot open %s: %s", path, strerror(errno));
	pr = probe_new(fd, fstype);
	if (!pr) {
		ret = kb_errorf(err, ENOMEM, "cannot set up libblkid for %s", path);
		goto out;
	}
	if (blkid_do_safeprobe(pr) == 0) {
		type = probe_value(pr, "TYPE");
		usage = probe_value(pr, "USAGE");
	}
	if (!type || strcmp(type, fstype) != 0 || !usage || strcmp(usage, "filesystem") != 0 ||
	    blkid_probe_has_value(pr, "SBBADCSUM"))
		ret = kb_errorf(err, EIO, "after mkfs.%s, %s does not read as %s", fstype, path,
				fstype);
out:
	free(type);
	free(usage);
	blkid_free_probe(pr);
	close(fd);
	return ret;
}

struct fs_kind {
	const char *fstype;
	const char *program;
	size_t label_max; /* mkfs.xfs refuses longer labels; ext4's field holds 16 bytes */
};

static const struct fs_kind fs_kinds[] = {
	{"xfs", "mkfs.xfs", 12},
	{"ext4", "mkfs.ext4", 16},
};

static const struct fs_kind *fs_kind_lookup(const char *fstype)
{
	for (size_t i = 0; i < sizeof(fs_kinds) / sizeof(fs_kinds[0]); i++) {
		if (strcmp(fs_kinds[i].fstype, fstype) == 0)
			return &fs_kinds[i];
	}
	return NULL;
}

int blockdev_label(const char *fstype, int broker_id, char **label, struct kb_error *err)
{
	const struct fs_kind *kind = fs_kind_lookup(fstype);

	*label = NULL;
	if (!kind)
		return kb_errorf(err, EINVAL, "kafka-bootstrap does not create %s filesystems",
				 fstype);
	*label = fmt_new("kafka-%d", broker_id);
	if (!*label)
		return kb_errorf(err, ENOMEM, "out of memory");
	if (strlen(*label) > kind->label_max) {
		kb_errorf(err, KB_ECONFIG, "label %s for broker %d is longer than the %zu "
			  "characters a %s label holds", *label, broker_id, kind->label_max,
			  fstype);
		free(*label);
		*label = NULL;
		return -KB_ECONFIG;
	}
	return 0;
}

int blockdev_mkfs(const char *path, const char *fstype, const char *label,
		  const struct blockdev_probe *checked, int64_t deadline, struct kb_error *err)
{
	const struct fs_kind *kind = fs_kind_lookup(fstype);
	char *argv[] = {NULL, "-L", (char *)label, "--", (char *)path, NULL};
	struct blockdev_probe probe = {0};
	struct spawn_result res = {0};
	int ret = 0;

	if (!kind)
		return kb_errorf(err, EINVAL, "kafka-bootstrap does not create %s filesystems",
				 fstype);
	argv[0] = (char *)kind->program;
	/* The check closest to the write: whatever looked blank before may not be now, and the
	 * exclusive open proves nothing mounted or assembled it meanwhile. mkfs opens it O_EXCL
	 * itself, so ours must be closed before it runs; without a force flag it also refuses
	 * any signature it finds on its own. A caller that has just taken that very probe
	 * hands it over: probing again would read the device a second time (2-3 ms of CPU)
	 * for the same answer. */
	if (checked && checked->exclusive && checked->content == BLOCKDEV_BLANK)
		probe.content = BLOCKDEV_BLANK;
	else
		ret = blockdev_probe(path, BLOCKDEV_PROBE_EXCLUSIVE, &probe, err);
	if (ret < 0)
		return ret;
	if (probe.content != BLOCKDEV_BLANK) {
		ret = kb_errorf(err, KB_EFORMAT, "refusing to create %s on %s: it holds %s",
				fstype, path,
				probe.content == BLOCKDEV_FILESYSTEM ? probe.fstype : probe.what);
		blockdev_probe_clear(&probe);
		return ret;
	}
	log_info("creating %s labelled %s on %s", fstype, label, path);
	ret = spawn_run(argv, deadline, &res, err);
	if (ret < 0)
		return ret;
	log_debug("%s output: %s", kind->program, res.output ? res.output : "");
	if (res.exit_status != 0)
		ret = kb_errorf(err, EIO, "%s -L %s %s failed (exit %d): %s", kind->program, label,
				path, res.exit_status, spawn_last_line(&res));
	spawn_result_clear(&res);
	return ret;
}
