/* file_write_atomic: the temporary files a killed writer left next to the target are removed
 * by the next write of that target, and nothing else is: not a live writer's, not another
 * target's, not a name that only looks alike. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kb/file.h"
#include "scratch.h"

/* A pid no process has: a child that exited and was reaped (reuse within the test is
 * improbable enough on a 4-million pid space; checked against kill() anyway). */
static long dead_pid(void)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return (long)pid;
}

static void touch(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("half of a file", f);
	assert_int_equal(fclose(f), 0);
}

static bool exists(const char *dir, const char *name)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

static void stale_temporaries_of_the_target_are_removed_by_the_next_write(void **state)
{
	struct file_write_options opts = {.mode = 0644, .uid = (uid_t)-1, .gid = (gid_t)-1};
	struct kb_error err = {{0}};
	char dir[256], target[512], dead[64], live[64], other[64], lookalike[64];
	char *data = NULL;
	size_t len;
	long pid = dead_pid();

	(void)state;
	assert_int_equal(scratch_dir_new(dir, sizeof(dir), "file"), 0);
	snprintf(target, sizeof(target), "%s/server.properties", dir);
	snprintf(dead, sizeof(dead), "server.properties.tmp.%ld", pid);
	snprintf(live, sizeof(live), "server.properties.tmp.%ld", (long)getppid());
	snprintf(other, sizeof(other), "status.json.tmp.%ld", pid);
	snprintf(lookalike, sizeof(lookalike), "server.properties.tmp.%ldx", pid);
	touch(dir, dead);
	touch(dir, live);
	touch(dir, other);
	touch(dir, lookalike);

	assert_int_equal(file_write_atomic(target, "broker.id=1\n", 12, &opts, &err), 0);

	assert_false(exists(dir, dead));
	assert_true(exists(dir, live));
	assert_true(exists(dir, other));
	assert_true(exists(dir, lookalike));
	assert_int_equal(file_read_all(target, &data, &len, &err), 0);
	assert_string_equal(data, "broker.id=1\n");
	free(data);
	assert_int_equal(scratch_dir_remove(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stale_temporaries_of_the_target_are_removed_by_the_next_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
