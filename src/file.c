/* file.c: whole-file reads and crash-safe replacement (see file.h). */
#include "kb/file.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_read_all(const char *path, char **data, size_t *len, struct kb_error *err)
{
	char *buf = NULL;
	size_t used = 0, cap = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = 0;

	*data = NULL;
	*len = 0;
	if (fd < 0)
		return kb_errorf(err, errno, "cannot read %s: %s", path, strerror(errno));
	for (;;) {
		ssize_t n;

		if (used + 4096 + 1 > cap) {
			char *grown = realloc(buf, cap ? cap * 2 : 8192);

			if (!grown) {
				ret = kb_errorf(err, ENOMEM, "reading %s: out of memory", path);
				goto out;
			}
			buf = grown;
			cap = cap ? cap * 2 : 8192;
		}
		n = read(fd, buf + used, cap - used - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = kb_errorf(err, errno, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	*data = buf;
	*len = used;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}

int file_mkdir_p(const char *path, mode_t mode, struct kb_error *err)
{
	char *copy = strdup(path);
	int ret = 0;

	if (!copy)
		return kb_errorf(err, ENOMEM, "out of memory");
	for (char *p = copy + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			ret = kb_errorf(err, errno, "cannot create directory %s: %s", copy,
					strerror(errno));
			break;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	free(copy);
	return ret;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A writer killed between creating its temporary file and the rename leaves
 * "<target>.tmp.<pid>" behind, one more per killed run. Those of the same target whose
 * process is gone are removed. Never harmful: a writer still alive in another pid namespace
 * would only see its rename fail, the target whole either way. */
static void remove_stale_temporaries(const char *dir, const char *path)
{
	const char *base = strrchr(path, '/');
	size_t base_len;
	struct dirent *e;
	DIR *d = opendir(dir);

	base = base ? base + 1 : path;
	base_len = strlen(base);
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		const char *pid_text;
		char *end;
		long pid;

		if (strncmp(e->d_name, base, base_len) != 0 ||
		    strncmp(e->d_name + base_len, ".tmp.", strlen(".tmp.")) != 0)
			continue;
		pid_text = e->d_name + base_len + strlen(".tmp.");
		if (!isdigit((unsigned char)pid_text[0]))
			continue;
		errno = 0;
		pid = strtol(pid_text, &end, 10);
		if (*end != '\0' || errno || pid <= 0 || pid == (long)getpid() ||
		    pid > INT_MAX || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		(void)unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

int file_write_atomic(const char *path, const void *data, size_t len,
		      const struct file_write_options *opts, struct kb_error *err)
{
	char *dir_copy = strdup(path);
	char *tmp = NULL;
	const char *dir;
	int fd = -1, dir_fd = -1;
	int ret = 0;

	if (!dir_copy)
		return kb_errorf(err, ENOMEM, "out of memory");
	dir = dirname(dir_copy);
	if (opts->make_dir) {
		ret = file_mkdir_p(dir, 0755, err);
		if (ret < 0)
			goto out;
	}
	remove_stale_temporaries(dir, path);
	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
		tmp = NULL;
		ret = kb_errorf(err, ENOMEM, "out of memory");
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, opts->mode);
	if (fd < 0) {
		ret = kb_errorf(err, errno, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	/* open() applied the umask; the mode must be exactly what was asked. */
	if (fchmod(fd, opts->mode) < 0 ||
	    ((opts->uid != (uid_t)-1 || opts->gid != (gid_t)-1) &&
	     fchown(fd, opts->uid, opts->gid) < 0)) {
		ret = kb_errorf(err, errno, "cannot set mode or owner of %s: %s", tmp,
				strerror(errno));
		goto out;
	}
	ret = write_all(fd, data, len);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (ret < 0) {
		ret = kb_errorf(err, -ret, "cannot write %s: %s", tmp, strerror(-ret));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		ret = kb_errorf(err, errno, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		ret = kb_errorf(err, errno, "cannot rename %s to %s: %s", tmp, path,
				strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	/* The rename is durable only once the directory entry is. */
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0 || fsync(dir_fd) < 0)
		ret = kb_errorf(err, errno, "cannot sync directory %s: %s", dir, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	if (dir_fd >= 0)
		close(dir_fd);
	free(tmp);
	free(dir_copy);
	return ret;
}
