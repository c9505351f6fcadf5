/* file.h: whole-file reads and atomic replacement.
 *
 * file_write_atomic() is the only way kafka-bootstrap writes a file others read
 * (server.properties, the status file): temporary file in the same directory, write, fsync,
 * rename over the target, fsync of the directory. A crash leaves the old file or the new one,
 * never half of one; the temporary file it leaves ("<target>.tmp.<pid>") is removed by the next
 * write of that target once its pid is gone. */
#ifndef KB_FILE_H
#define KB_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kb/error.h"

/* Reads the whole file; *data is NUL-terminated (not counted in *len). -errno on failure
 * (-ENOENT when absent), with the message in err. */
int file_read_all(const char *path, char **data, size_t *len, struct kb_error *err);

struct file_write_options {
	mode_t mode;
	uid_t uid;     /* (uid_t)-1: leave as created */
	gid_t gid;     /* (gid_t)-1: leave as created */
	bool make_dir; /* create missing parent directories (mode 0755) */
};

int file_write_atomic(const char *path, const void *data, size_t len,
		      const struct file_write_options *opts, struct kb_error *err);

/* mkdir -p with mode for the directories it creates. */
int file_mkdir_p(const char *path, mode_t mode, struct kb_error *err);

#endif
