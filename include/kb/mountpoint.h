/* mountpoint.h: what is mounted where (/proc/self/mountinfo, parsed), mount options turned
 * into mount(2) flags and data, and mount(2) itself. The product never runs mount(8) or
 * findmnt. */
#ifndef KB_MOUNTPOINT_H
#define KB_MOUNTPOINT_H

#include <sys/types.h>

#include "kb/error.h"

struct mountpoint_entry {
	unsigned major, minor; /* st_dev of the mounted filesystem = st_rdev of its device */
	char *root;            /* the directory of the filesystem mounted there: "/" when whole */
	char *target;          /* where it is mounted, unescaped */
	char *fstype;
	char *source;
};

/* Reads /proc/self/mountinfo (the calling process's mount namespace). */
int mountpoint_read(char **text, struct kb_error *err);

/* Calls fn for each well-formed line of mountinfo text, in order (later mounts come later);
 * a negative return from fn stops the walk and is returned. */
typedef int (*mountpoint_fn)(const struct mountpoint_entry *entry, void *ctx);
int mountpoint_parse(const char *text, mountpoint_fn fn, void *ctx);

/* The mount visible at target (a canonical path): the last one listed there. Copied into out;
 * -ENOENT when nothing is mounted exactly there. */
int mountpoint_at(const char *text, const char *target, struct mountpoint_entry *out);
/* A mount of the device dev (its st_rdev) anywhere but at except (NULL: anywhere); -ENOENT
 * when none. */
int mountpoint_of_device(const char *text, dev_t dev, const char *except,
			 struct mountpoint_entry *out);
void mountpoint_entry_clear(struct mountpoint_entry *entry);

/* "noatime,nodev,inode64" -> MS_NOATIME | MS_NODEV and data "inode64" (newly allocated, NULL
 * when empty). fstab-only words (nofail, noauto, _netdev, x-*) are dropped; operations that
 * are not options (remount, bind, move, propagation) are -KB_ECONFIG. */
int mountpoint_parse_options(const char *options, unsigned long *flags, char **data,
			     struct kb_error *err);

/* mount(2) of source at target with the given options. */
int mountpoint_mount(const char *source, const char *target, const char *fstype,
		     const char *options, struct kb_error *err);
int mountpoint_unmount(const char *target, struct kb_error *err);

#endif
