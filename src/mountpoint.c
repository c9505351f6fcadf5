/* mountpoint.c: mountinfo parsing, mount options, mount(2). Never mounts over something else:
 * callers check mountpoint_at() first.
 *
 * mountinfo (proc(5)): "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root
 * rw,errors=continue": id, parent, major:minor, root, mount point, options, optional fields
 * up to "-", then type, source, superblock options. Paths escape space, tab, newline and
 * backslash as \ooo octal. */
#include "kb/mountpoint.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>

#include "kb/file.h"

int mountpoint_read(char **text, struct kb_error *err)
{
	size_t len;

	return file_read_all("/proc/self/mountinfo", text, &len, err);
}

/* Unescapes \ooo in place. */
static void unescape_octal(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* Splits one line (modified in place) into entry; false when malformed. */
static bool parse_line(char *line, struct mountpoint_entry *e)
{
	char *fields[32];
	size_t n = 0, dash = 0;
	char *save = NULL;

	for (char *tok = strtok_r(line, " ", &save); tok && n < 32;
	     tok = strtok_r(NULL, " ", &save))
		fields[n++] = tok;
	for (size_t i = 6; i < n; i++) {
		if (strcmp(fields[i], "-") == 0) {
			dash = i;
			break;
		}
	}
	if (dash == 0 || dash + 2 >= n ||
	    sscanf(fields[2], "%u:%u", &e->major, &e->minor) != 2)
		return false;
	e->root = fields[3];
	e->target = fields[4];
	e->fstype = fields[dash + 1];
	e->source = fields[dash + 2];
	unescape_octal(e->root);
	unescape_octal(e->target);
	unescape_octal(e->source);
	return true;
}

int mountpoint_parse(const char *text, mountpoint_fn fn, void *ctx)
{
	char *copy = strdup(text);
	char *save = NULL;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct mountpoint_entry e;

		if (!parse_line(line, &e))
			continue;
		ret = fn(&e, ctx);
		if (ret < 0)
			break;
	}
	free(copy);
	return ret;
}

void mountpoint_entry_clear(struct mountpoint_entry *entry)
{
	free(entry->root);
	free(entry->target);
	free(entry->fstype);
	free(entry->source);
	memset(entry, 0, sizeof(*entry));
}

static int entry_copy(struct mountpoint_entry *dst, const struct mountpoint_entry *src)
{
	struct mountpoint_entry e = {
		.major = src->major, .minor = src->minor, .root = strdup(src->root),
		.target = strdup(src->target), .fstype = strdup(src->fstype),
		.source = strdup(src->source),
	};

	if (!e.root || !e.target || !e.fstype || !e.source) {
		mountpoint_entry_clear(&e);
		return -ENOMEM;
	}
	mountpoint_entry_clear(dst);
	*dst = e;
	return 0;
}

struct match {
	const char *target; /* mountpoint_at */
	dev_t dev;          /* mountpoint_of_device */
	const char *except;
	bool last;          /* keep the last match rather than stop at the first */
	bool found;
	struct mountpoint_entry *out;
};

static int match_cb(const struct mountpoint_entry *e, void *ctx)
{
	struct match *m = ctx;
	int r;

	if (m->target && strcmp(e->target, m->target) != 0)
		return 0;
	if (!m->target && (makedev(e->major, e->minor) != m->dev ||
			   (m->except && strcmp(e->target, m->except) == 0)))
		return 0;
	r = entry_copy(m->out, e);
	if (r < 0)
		return r;
	m->found = true;
	return m->last ? 0 : -ECANCELED; /* stops the walk at the first match */
}

static int run_match(const char *text, struct match *m)
{
	int r;

	memset(m->out, 0, sizeof(*m->out));
	r = mountpoint_parse(text, match_cb, m);
	if (r < 0 && r != -ECANCELED) {
		mountpoint_entry_clear(m->out);
		return r;
	}
	return m->found ? 0 : -ENOENT;
}

int mountpoint_at(const char *text, const char *target, struct mountpoint_entry *out)
{
	struct match m = {.target = target, .last = true, .out = out};

	return run_match(text, &m);
}

int mountpoint_of_device(const char *text, dev_t dev, const char *except,
			 struct mountpoint_entry *out)
{
	struct match m = {.dev = dev, .except = except, .out = out};

	return run_match(text, &m);
}

struct mount_flag {
	const char *name;
	unsigned long flag;
	bool clear; /* the option turns the flag off ("rw", "atime") */
};

static const struct mount_flag mount_flags[] = {
	{"ro", MS_RDONLY, false},          {"rw", MS_RDONLY, true},
	{"noatime", MS_NOATIME, false},    {"atime", MS_NOATIME, true},
	{"nodiratime", MS_NODIRATIME, false}, {"diratime", MS_NODIRATIME, true},
	{"relatime", MS_RELATIME, false},  {"norelatime", MS_RELATIME, true},
	{"strictatime", MS_STRICTATIME, false}, {"nostrictatime", MS_STRICTATIME, true},
	{"lazytime", MS_LAZYTIME, false},  {"nolazytime", MS_LAZYTIME, true},
	{"nodev", MS_NODEV, false},        {"dev", MS_NODEV, true},
	{"nosuid", MS_NOSUID, false},      {"suid", MS_NOSUID, true},
	{"noexec", MS_NOEXEC, false},      {"exec", MS_NOEXEC, true},
	{"sync", MS_SYNCHRONOUS, false},   {"async", MS_SYNCHRONOUS, true},
	{"dirsync", MS_DIRSYNC, false},
	{"silent", MS_SILENT, false},      {"loud", MS_SILENT, true},
	{"iversion", MS_I_VERSION, false}, {"noiversion", MS_I_VERSION, true},
	{"defaults", 0, false},
};

/* Words mount(8) consumes from fstab; the kernel would refuse them as filesystem options. */
static const char *const fstab_only[] = {
	"auto", "noauto", "nofail", "_netdev", "user", "nouser", "users", "owner", "group", NULL,
};

/* Operations, not options: what a mount of a fresh filesystem must never be. */
static const char *const refused[] = {
	"remount", "bind", "rbind", "move", "shared", "rshared", "slave", "rslave",
	"private", "rprivate", "unbindable", "runbindable", NULL,
};

static bool in_list(const char *const *list, const char *word)
{
	for (; *list; list++) {
		if (strcmp(*list, word) == 0)
			return true;
	}
	return false;
}

static int data_append(char **data, const char *word)
{
	size_t old = *data ? strlen(*data) : 0;
	char *grown = realloc(*data, old + strlen(word) + 2);

	if (!grown)
		return -ENOMEM;
	if (old)
		grown[old++] = ',';
	strcpy(grown + old, word);
	*data = grown;
	return 0;
}

/* Sets or clears the flag of word; false when word is no flag. */
static bool apply_flag(const char *word, unsigned long *flags)
{
	for (size_t i = 0; i < sizeof(mount_flags) / sizeof(mount_flags[0]); i++) {
		if (strcmp(mount_flags[i].name, word) != 0)
			continue;
		if (mount_flags[i].clear)
			*flags &= ~mount_flags[i].flag;
		else
			*flags |= mount_flags[i].flag;
		return true;
	}
	return false;
}

int mountpoint_parse_options(const char *options, unsigned long *flags, char **data,
			     struct kb_error *err)
{
	char *copy = strdup(options ? options : "");
	char *save = NULL;
	int ret = 0;

	*flags = 0;
	*data = NULL;
	if (!copy)
		return kb_errorf(err, ENOMEM, "out of memory");
	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		if (apply_flag(w, flags) || in_list(fstab_only, w) || strncmp(w, "x-", 2) == 0)
			continue;
		if (in_list(refused, w)) {
			ret = kb_errorf(err, KB_ECONFIG, "mount option '%s' is an operation, not "
					"an option for mounting the volume", w);
			break;
		}
		if (data_append(data, w) < 0) {
			ret = kb_errorf(err, ENOMEM, "out of memory");
			break;
		}
	}
	free(copy);
	if (ret < 0) {
		free(*data);
		*data = NULL;
	}
	return ret;
}

int mountpoint_mount(const char *source, const char *target, const char *fstype,
		     const char *options, struct kb_error *err)
{
	unsigned long flags;
	char *data = NULL;
	int ret = mountpoint_parse_options(options, &flags, &data, err);

	if (ret < 0)
		return ret;
	if (mount(source, target, fstype, flags, data) < 0)
		ret = kb_errorf(err, errno, "mount %s (%s) on %s with '%s': %s", source, fstype,
				target, options, strerror(errno));
	free(data);
	return ret;
}

int mountpoint_unmount(const char *target, struct kb_error *err)
{
	if (umount2(target, UMOUNT_NOFOLLOW) < 0)
		return kb_errorf(err, errno, "unmount %s: %s", target, strerror(errno));
	return 0;
}
