/* scratch.c: see scratch.h. */
#define _XOPEN_SOURCE 700

#include "scratch.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

int scratch_dir_new(char *dir, size_t size, const char *name)
{
	int n = snprintf(dir, size, "/tmp/kb-%s-XXXXXX", name);

	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return mkdtemp(dir) ? 0 : -errno;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) == 0 ? 0 : -errno;
}

int scratch_dir_remove(const char *dir)
{
	/* Depth first, so a directory is empty when its turn comes. */
	return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
