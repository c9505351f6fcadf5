/* blockdev.h: the block device behind an EBS volume id, what it holds, and a new filesystem
 * on it only when it holds nothing at all.
 *
 * No AWS in here: callers pass a volume id and the device name requested at attach time; the
 * /dev and /sys roots are parameters so tests point them at trees they build. The one rule
 * this module exists to keep: it never writes to a device that carries any signature, or any
 * data it cannot name. */
#ifndef KB_BLOCKDEV_H
#define KB_BLOCKDEV_H

#include <stdbool.h>
#include <stdint.h>

#include "kb/error.h"

struct blockdev_roots {
	const char *dev_root;   /* "/dev" */
	const char *sysfs_root; /* "/sys" */
};

/* One look, no waiting: dev_root/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol<hex>, then an
 * NVMe device whose serial is vol<hex>, then the requested name ("/dev/sdg") and its Xen twin
 * ("/dev/xvdg"). Whatever a rule finds, an NVMe namespace whose sysfs serial is not this
 * volume's is passed over (a stale link, a reused name). *path is the resolved device
 * (symlinks followed), *how says which rule found it; both newly allocated. -ENOENT (and no
 * message) when nothing is there yet; -ENOTBLK when a candidate resolves to something that is
 * not a block device; -EINVAL for a malformed id. */
int blockdev_lookup(const struct blockdev_roots *roots, const char *volume_id,
		    const char *requested, char **path, char **how, struct kb_error *err);
/* blockdev_lookup until it finds the device or the deadline passes (-KB_ETIMEOUT). Woken by
 * inotify on the /dev tree where the kernel supports it, and by a short poll anyway, since
 * sysfs sends no notifications. */
int blockdev_find(const struct blockdev_roots *roots, const char *volume_id,
		  const char *requested, int64_t deadline, char **path, char **how,
		  struct kb_error *err);

/* "sdg" <-> "xvdg"; NULL for any other name (newly allocated). */
char *blockdev_twin_name(const char *name);

enum blockdev_content {
	BLOCKDEV_BLANK,      /* no signature, and zeros at both ends */
	BLOCKDEV_FILESYSTEM, /* one mountable filesystem, nothing else */
	BLOCKDEV_OTHER,      /* anything else: never written, never mounted */
};

struct blockdev_probe {
	enum blockdev_content content;
	char *fstype; /* FILESYSTEM: "xfs", "ext4" */
	char *label;  /* FILESYSTEM, may be NULL */
	char *uuid;   /* FILESYSTEM, may be NULL */
	char *what;   /* OTHER: what was found, for the operator ("partition table gpt") */
	bool exclusive; /* probed while this process held the device open O_EXCL */
};

enum {
	/* Open with O_EXCL: fails with -EBUSY when the device is mounted, part of an md array or
	 * a device-mapper target, or opened exclusively by anyone else. */
	BLOCKDEV_PROBE_EXCLUSIVE = 1 << 0,
};

/* Probes the whole device with libblkid: superblocks and partition tables (GPT forced even
 * without a protective MBR, so a GPT whose only intact header is the backup at the end is
 * found), signatures at the end (md 1.0, GPT backup), bad checksums and ambivalent results.
 * Works on regular files too (tests). */
int blockdev_probe(const char *path, unsigned flags, struct blockdev_probe *out,
		   struct kb_error *err);
void blockdev_probe_clear(struct blockdev_probe *probe);

/* After our mkfs: 0 when path reads as a filesystem of type fstype (its superblock found,
 * checksum good). Reads that one type's superblock only, not the whole device as
 * blockdev_probe does: the device probed blank just before, what is left to prove is that
 * mkfs made what it was asked to. -EIO with a message when it does not. */
int blockdev_verify_made(const char *path, const char *fstype, struct kb_error *err);

/* The label for broker id's filesystem: "kafka-<id>". -KB_ECONFIG when fstype's label limit
 * (XFS 12 characters, ext4 16) cannot hold it, -EINVAL for an fstype we do not create. */
int blockdev_label(const char *fstype, int broker_id, char **label, struct kb_error *err);

/* Creates fstype ("xfs" or "ext4") labelled label on path by exec'ing mkfs.<fstype> found in
 * PATH, never with a force flag, only on a device probed BLANK through an exclusive open
 * immediately before: checked, when it is the caller's probe of path taken just now and it
 * says so (BLANK, exclusive); otherwise (NULL included) path is probed here, exclusively.
 * Anything but BLANK is -KB_EFORMAT and nothing is written. */
int blockdev_mkfs(const char *path, const char *fstype, const char *label,
		  const struct blockdev_probe *checked, int64_t deadline, struct kb_error *err);

#endif
