/* scratch.h: a private directory under /tmp for one unit test's files, removed whole
 * afterwards. Removal walks the tree itself (nftw), never through a shell. */
#ifndef KB_TEST_SCRATCH_H
#define KB_TEST_SCRATCH_H

#include <stddef.h>

/* Creates /tmp/kb-<name>-XXXXXX (mkdtemp) into dir; 0 or -errno. */
int scratch_dir_new(char *dir, size_t size, const char *name);

/* Removes dir and everything below it, not following symlinks; 0 or -errno. */
int scratch_dir_remove(const char *dir);

#endif
