/* volume_disk.c: the local half of the volume stage, from a volume id to a mounted, checked,
 * Kafka-owned log directory. Never formats a device that holds anything, never mounts over
 * something else, never goes on with a volume whose meta.properties names another broker.
 *
 * Order matters: the identity check reads meta.properties before anything on the volume is
 * changed (log_dir created, files chowned), and a foreign volume this run mounted is unmounted
 * again, so Kafka cannot start on another broker's data. */
#include "kb/volume.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "kb/blockdev.h"
#include "kb/file.h"
#include "kb/log.h"
#include "kb/mountpoint.h"
#include "kb/properties.h"

static const char *const identity_keys[] = {"broker.id", "node.id"};

static int check_identity_key(const struct properties *props, const char *path,
			      const char *key, int broker_id, struct kb_error *err)
{
	char *value = properties_get_new(props, key), *end;
	long id;
	int ret = 0;

	if (!value)
		return 0;
	errno = 0;
	id = strtol(value, &end, 10);
	if (errno || end == value || *end != '\0' || id < 0 || id > INT_MAX)
		ret = kb_errorf(err, KB_EFOREIGN, "cannot tell which broker this volume belongs "
				"to: %s has %s=%s", path, key, value);
	else if (id != broker_id)
		ret = kb_errorf(err, KB_EFOREIGN, "the volume belongs to broker %ld, not %d: %s "
				"has %s=%ld", id, broker_id, path, key, id);
	free(value);
	return ret;
}

int volume_check_identity(const char *log_dir, int broker_id, struct kb_error *err)
{
	struct kb_error scratch = {{0}};
	struct properties *props = NULL;
	char *path = NULL, *text = NULL;
	size_t len;
	int ret;

	if (asprintf(&path, "%s/meta.properties", log_dir) < 0)
		return kb_errorf(err, ENOMEM, "out of memory");
	ret = file_read_all(path, &text, &len, &scratch);
	if (ret == -ENOENT) {
		ret = 0;
		goto out;
	}
	if (ret < 0) {
		ret = kb_errorf(err, -ret, "%s", scratch.msg);
		goto out;
	}
	/* Kafka wrote it with java.util.Properties: read it as Java does. */
	props = properties_parse_new(text, len, &scratch);
	if (!props) {
		ret = kb_errorf(err, KB_EFOREIGN, "cannot tell which broker this volume belongs "
				"to: %s: %s", path, scratch.msg);
		goto out;
	}
	for (size_t i = 0; i < sizeof(identity_keys) / sizeof(identity_keys[0]) && ret == 0; i++)
		ret = check_identity_key(props, path, identity_keys[i], broker_id, err);
out:
	properties_free(props);
	free(text);
	free(path);
	return ret;
}

struct owner {
	uid_t uid;
	gid_t gid;
};

/* kafka_user: a name (getpwnam) or a numeric uid; a uid with no passwd entry gets the group
 * of the same number, as useradd would give it. */
static int resolve_owner(const char *user, struct owner *o, struct kb_error *err)
{
	size_t size = 16384;
	struct passwd pw, *found = NULL;
	char *buf = NULL, *end;
	unsigned long num;
	bool numeric;
	int r;

	errno = 0;
	num = strtoul(user, &end, 10);
	numeric = *user && *end == '\0' && errno == 0 && num < (uid_t)-1;
	for (;;) {
		char *grown = realloc(buf, size);

		if (!grown) {
			free(buf);
			return kb_errorf(err, ENOMEM, "out of memory");
		}
		buf = grown;
		r = numeric ? getpwuid_r((uid_t)num, &pw, buf, size, &found)
			    : getpwnam_r(user, &pw, buf, size, &found);
		if (r != ERANGE)
			break;
		size *= 2;
	}
	if (found) {
		o->uid = found->pw_uid;
		o->gid = found->pw_gid;
	} else if (numeric) {
		o->uid = (uid_t)num;
		o->gid = (gid_t)num;
	}
	free(buf);
	if (!found && !numeric)
		return kb_errorf(err, KB_ECONFIG, "kafka_user '%s' is no user on this machine%s%s",
				 user, r ? ": " : "", r ? strerror(r) : "");
	return 0;
}

/* nftw passes no context to its callback. */
static struct {
	struct owner to;
	unsigned long count;
	int error;
	char *failed;
} chown_walk;

static int chown_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_NS || type == FTW_DNR) {
		chown_walk.error = EACCES;
		chown_walk.failed = strdup(path);
		return 1;
	}
	if (st->st_uid == chown_walk.to.uid && st->st_gid == chown_walk.to.gid)
		return 0;
	/* lchown: a symlink is changed itself, never what it points to, in or out of the
	 * mount. */
	if (lchown(path, chown_walk.to.uid, chown_walk.to.gid) < 0) {
		chown_walk.error = errno;
		chown_walk.failed = strdup(path);
		return 1;
	}
	chown_walk.count++;
	return 0;
}

/* Depth first, so log_dir itself changes last: a walk cut short leaves it with its old
 * owner, and the next run walks again. FTW_PHYS: no symlink followed; FTW_MOUNT: no other
 * filesystem entered. */
static int chown_tree(const char *dir, const struct owner *to, unsigned long *count,
		      struct kb_error *err)
{
	int r, ret = 0;

	chown_walk.to = *to;
	chown_walk.count = 0;
	chown_walk.error = 0;
	chown_walk.failed = NULL;
	r = nftw(dir, chown_cb, 16, FTW_PHYS | FTW_MOUNT | FTW_DEPTH);
	if (r < 0)
		ret = kb_errorf(err, errno, "cannot walk %s: %s", dir, strerror(errno));
	else if (r > 0)
		ret = kb_errorf(err, chown_walk.error, "cannot give %s to %u:%u: %s",
				chown_walk.failed ? chown_walk.failed : dir, (unsigned)to->uid,
				(unsigned)to->gid, strerror(chown_walk.error));
	*count = chown_walk.count;
	free(chown_walk.failed);
	chown_walk.failed = NULL;
	return ret;
}

static int own_log_dir(struct kb_run *run, struct owner to)
{
	const struct kb_config *cfg = run->cfg;
	struct stat st;
	unsigned long count = 0;
	int ret;

	if (lstat(cfg->log_dir, &st) < 0) {
		if (errno != ENOENT)
			return kb_errorf(&run->err, errno, "cannot stat %s: %s", cfg->log_dir,
					 strerror(errno));
		if (run->mode == KB_MODE_PLAN) {
			kb_run_change(run, "create %s owned by %s", cfg->log_dir, cfg->kafka_user);
			return 0;
		}
		ret = file_mkdir_p(cfg->log_dir, 0755, &run->err);
		if (ret == 0 && lchown(cfg->log_dir, to.uid, to.gid) < 0)
			ret = kb_errorf(&run->err, errno, "cannot give %s to %s: %s", cfg->log_dir,
					cfg->kafka_user, strerror(errno));
		if (ret == 0)
			kb_run_change(run, "created %s owned by %s (%u:%u)", cfg->log_dir,
				      cfg->kafka_user, (unsigned)to.uid, (unsigned)to.gid);
		return ret;
	}
	if (!S_ISDIR(st.st_mode))
		return kb_errorf(&run->err, ENOTDIR, "log_dir %s exists and is no directory",
				 cfg->log_dir);
	if (st.st_uid == to.uid && st.st_gid == to.gid)
		return 0;
	if (run->mode == KB_MODE_PLAN) {
		kb_run_change(run, "give %s and everything in it to %s (%u:%u); it belongs to "
			      "%u:%u", cfg->log_dir, cfg->kafka_user, (unsigned)to.uid,
			      (unsigned)to.gid, (unsigned)st.st_uid, (unsigned)st.st_gid);
		return 0;
	}
	ret = chown_tree(cfg->log_dir, &to, &count, &run->err);
	if (count)
		kb_run_change(run, "chowned %lu files under %s to %s (%u:%u), were %u:%u", count,
			      cfg->log_dir, cfg->kafka_user, (unsigned)to.uid, (unsigned)to.gid,
			      (unsigned)st.st_uid, (unsigned)st.st_gid);
	return ret;
}

struct prepare {
	struct kb_run *run;
	const struct kb_config *cfg;
	const char *volume_id;
	char *dev;
	dev_t rdev;
	bool mounted;    /* at mount_point, from this device */
	bool we_mounted; /* by this run */
};

/* What is at mount_point now: this device (done), nothing, or something else (refused). */
static int mount_state(struct prepare *p)
{
	const char *mp = p->cfg->mount_point;
	struct kb_error *err = &p->run->err;
	struct mountpoint_entry e = {0};
	char *info = NULL, *canonical = realpath(mp, NULL);
	int ret = mountpoint_read(&info, err);

	if (ret < 0)
		goto out;
	if (canonical && mountpoint_at(info, canonical, &e) == 0) {
		if (makedev(e.major, e.minor) == p->rdev && strcmp(e.root, "/") == 0) {
			p->mounted = true;
			goto out;
		}
		ret = kb_errorf(err, EBUSY, "%s already has %s (%s%s%s) mounted: refusing to "
				"mount %s over it", mp, e.source, e.fstype,
				strcmp(e.root, "/") ? ", directory " : "",
				strcmp(e.root, "/") ? e.root : "", p->volume_id);
		goto out;
	}
	mountpoint_entry_clear(&e);
	if (mountpoint_of_device(info, p->rdev, NULL, &e) == 0)
		ret = kb_errorf(err, EBUSY, "%s (%s) is already mounted at %s: unmount it before "
				"it can be mounted at %s", p->dev, p->volume_id, e.target, mp);
out:
	mountpoint_entry_clear(&e);
	free(canonical);
	free(info);
	return ret;
}

static int format_blank(struct prepare *p, const char *fstype,
			const struct blockdev_probe *blank)
{
	struct kb_run *run = p->run;
	char *label = NULL;
	int ret = blockdev_label(fstype, run->broker_id, &label, &run->err);

	if (ret < 0)
		return ret;
	if (run->mode == KB_MODE_PLAN) {
		kb_run_change(run, "format %s (%s, blank) as %s labelled %s", p->dev,
			      p->volume_id, fstype, label);
		goto out;
	}
	ret = blockdev_mkfs(p->dev, fstype, label, blank, run->stage_deadline, &run->err);
	if (ret < 0)
		goto out;
	kb_run_change(run, "formatted %s (%s) as %s labelled %s", p->dev, p->volume_id, fstype,
		      label);
	ret = blockdev_verify_made(p->dev, fstype, &run->err);
out:
	free(label);
	return ret;
}

/* Exclusive when this run may format: a BLANK answer is then blockdev_mkfs's own check
 * right before mkfs, and the device is read once instead of twice. A device someone else
 * holds is probed shared, as a plan is: what it holds is still reported, and blockdev_mkfs,
 * given no exclusive probe, refuses it as in use. */
static int probe_to_decide(struct prepare *p, struct blockdev_probe *probe)
{
	struct kb_run *run = p->run;
	int ret;

	if (run->mode == KB_MODE_PLAN)
		return blockdev_probe(p->dev, 0, probe, &run->err);
	ret = blockdev_probe(p->dev, BLOCKDEV_PROBE_EXCLUSIVE, probe, &run->err);
	if (ret != -EBUSY)
		return ret;
	kb_error_clear(&run->err);
	return blockdev_probe(p->dev, 0, probe, &run->err);
}

/* Not mounted yet: probe, format only a blank device, mount. */
static int bring_up(struct prepare *p)
{
	struct kb_run *run = p->run;
	const struct kb_config *cfg = p->cfg;
	const char *fstype = cfg->filesystem == CONFIG_FS_EXT4 ? "ext4" : "xfs";
	struct blockdev_probe probe = {0};
	int ret = probe_to_decide(p, &probe);

	if (ret < 0)
		return ret;
	if (probe.content == BLOCKDEV_OTHER) {
		ret = kb_errorf(&run->err, KB_EFORMAT, "refusing to format or mount %s (%s): it "
				"holds %s. A volume that holds anything is never formatted: "
				"inspect it (blkid -p, wipefs --no-act) and clear it by hand only "
				"if its data is not needed", p->dev, p->volume_id, probe.what);
		goto out;
	}
	if (probe.content == BLOCKDEV_BLANK) {
		ret = format_blank(p, fstype, &probe);
		if (ret < 0)
			goto out;
	} else {
		fstype = probe.fstype;
		log_info("%s holds %s%s%s: mounting it as it is", p->dev, fstype,
			 probe.label ? " labelled " : "", probe.label ? probe.label : "");
	}
	if (run->mode == KB_MODE_PLAN) {
		kb_run_change(run, "mount %s (%s) at %s with %s", p->dev, fstype, cfg->mount_point,
			      cfg->mount_options);
		goto out;
	}
	ret = file_mkdir_p(cfg->mount_point, 0755, &run->err);
	if (ret == 0)
		ret = mountpoint_mount(p->dev, cfg->mount_point, fstype, cfg->mount_options,
				       &run->err);
	if (ret == 0) {
		p->we_mounted = true;
		kb_run_change(run, "mounted %s (%s, %s) at %s with %s", p->dev, p->volume_id,
			      fstype, cfg->mount_point, cfg->mount_options);
	}
out:
	blockdev_probe_clear(&probe);
	return ret;
}

/* The volume is another broker's: leave it as it was found, not where Kafka would use it. */
static void undo_mount(struct prepare *p)
{
	struct kb_error scratch = {{0}};

	if (!p->we_mounted)
		return;
	if (mountpoint_unmount(p->cfg->mount_point, &scratch) < 0)
		log_error("%s", scratch.msg);
	else
		kb_run_change(p->run, "unmounted %s again: it holds another broker's data",
			      p->cfg->mount_point);
}

int volume_prepare(struct kb_run *run, const char *volume_id, const char *requested)
{
	const struct kb_config *cfg = run->cfg;
	struct blockdev_roots roots = {.dev_root = cfg->dev_root, .sysfs_root = cfg->sysfs_root};
	struct prepare p = {.run = run, .cfg = cfg, .volume_id = volume_id};
	struct owner owner = {(uid_t)-1, (gid_t)-1};
	struct stat st;
	char *how = NULL;
	int ret;

	/* A kafka_user this machine does not know is a configuration error: found before
	 * anything changes. */
	ret = resolve_owner(cfg->kafka_user, &owner, &run->err);
	if (ret < 0)
		return ret;
	ret = blockdev_find(&roots, volume_id, requested, run->stage_deadline, &p.dev, &how,
			    &run->err);
	if (ret < 0)
		goto out;
	log_info("%s is %s (found by %s)", volume_id, p.dev, how ? how : "?");
	if (stat(p.dev, &st) < 0) {
		ret = kb_errorf(&run->err, errno, "cannot stat %s: %s", p.dev, strerror(errno));
		goto out;
	}
	p.rdev = st.st_rdev;
	ret = mount_state(&p);
	if (ret < 0)
		goto out;
	if (!p.mounted && run->prerequisite) {
		ret = kb_errorf(&run->err, ENOENT, "%s (%s) is not mounted at %s: run the volume "
				"stage first", volume_id, p.dev, cfg->mount_point);
		goto out;
	}
	if (!p.mounted) {
		ret = bring_up(&p);
		/* In plan mode nothing got mounted: nothing on the volume to read yet. */
		if (ret < 0 || run->mode == KB_MODE_PLAN)
			goto done;
	}
	ret = volume_check_identity(cfg->log_dir, run->broker_id, &run->err);
	if (ret < 0) {
		undo_mount(&p);
		goto out;
	}
	if (!run->prerequisite)
		ret = own_log_dir(run, owner);
done:
	if (ret == 0) {
		free(run->device);
		run->device = p.dev;
		p.dev = NULL;
	}
out:
	free(how);
	free(p.dev);
	return ret;
}
