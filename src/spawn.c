/* spawn.c: run one program by argv, never through a shell, and wait for it within a deadline.
 *
 * posix_spawnp rather than fork+exec: glibc reports a missing program to the caller (it
 * spawns with CLONE_VFORK), and nothing runs between fork and exec that would have to be
 * async-signal-safe in a process that also hosts the ZooKeeper client's threads. The child
 * gets its own process group, so a kill at the deadline also reaches what it started (a
 * cfn-signal script's python), and no descriptor of ours beyond stdio: a library may have
 * opened one without O_CLOEXEC (libcurl 7.88's wakeup socketpair does). */
#include "kb/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kb/deadline.h"

extern char **environ;

/* Enough for any mkfs or cfn-signal report; a runaway program cannot grow us past it. */
#define SPAWN_OUTPUT_MAX (1024 * 1024)

static int append_output(struct spawn_result *res, const char *buf, size_t n)
{
	char *grown;

	if (res->output_len + n > SPAWN_OUTPUT_MAX)
		n = SPAWN_OUTPUT_MAX - res->output_len;
	if (n == 0)
		return 0;
	grown = realloc(res->output, res->output_len + n + 1);
	if (!grown)
		return -ENOMEM;
	memcpy(grown + res->output_len, buf, n);
	res->output = grown;
	res->output_len += n;
	res->output[res->output_len] = '\0';
	return 0;
}

/* Reads until end of file or the deadline; -ETIMEDOUT when the deadline came first. */
static int collect_output(int fd, int64_t deadline, struct spawn_result *res)
{
	char buf[4096];

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = deadline_remaining_ms(deadline);
		int timeout = left > 60000 ? 60000 : (int)left;
		ssize_t n;
		int r;

		if (left == 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		if (append_output(res, buf, (size_t)n) < 0)
			return -ENOMEM;
	}
}

static int wait_child(pid_t pid, int *exit_status)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (WIFEXITED(status))
		*exit_status = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		*exit_status = 128 + WTERMSIG(status);
	else
		*exit_status = 255;
	return 0;
}

int spawn_run(char *const argv[], int64_t deadline, struct spawn_result *out,
	      struct kb_error *err)
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	int pipefd[2] = {-1, -1};
	pid_t pid = -1;
	int ret, r;

	memset(out, 0, sizeof(*out));
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return kb_errorf(err, errno, "cannot run %s: pipe: %s", argv[0], strerror(errno));
	r = posix_spawn_file_actions_init(&actions);
	if (r != 0) {
		ret = kb_errorf(err, r, "cannot run %s: %s", argv[0], strerror(r));
		goto out_pipe;
	}
	r = posix_spawnattr_init(&attr);
	if (r != 0) {
		posix_spawn_file_actions_destroy(&actions);
		ret = kb_errorf(err, r, "cannot run %s: %s", argv[0], strerror(r));
		goto out_pipe;
	}
	r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	if (r == 0)
		r = posix_spawnattr_setpgroup(&attr, 0);
	if (r == 0)
		r = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	if (r == 0)
		r = posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
	if (r == 0)
		r = posix_spawn_file_actions_adddup2(&actions, pipefd[1], 2);
	if (r == 0)
		r = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
	if (r == 0)
		r = posix_spawnp(&pid, argv[0], &actions, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&actions);
	if (r != 0) {
		ret = kb_errorf(err, r, "cannot run %s: %s", argv[0], strerror(r));
		goto out_pipe;
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	ret = collect_output(pipefd[0], deadline, out);
	if (ret == -ETIMEDOUT) {
		/* Ignored on purpose: the group may have exited on its own in between. */
		(void)kill(-pid, SIGKILL);
		kb_errorf(err, ETIMEDOUT, "%s did not finish before the deadline; killed",
			  argv[0]);
	} else if (ret < 0) {
		(void)kill(-pid, SIGKILL);
		kb_errorf(err, -ret, "reading the output of %s: %s", argv[0], strerror(-ret));
	}
	r = wait_child(pid, &out->exit_status);
	if (r < 0 && ret == 0)
		ret = kb_errorf(err, -r, "waiting for %s: %s", argv[0], strerror(-r));
	if (ret < 0)
		spawn_result_clear(out);
out_pipe:
	close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	return ret;
}

void spawn_result_clear(struct spawn_result *res)
{
	free(res->output);
	memset(res, 0, sizeof(*res));
}

const char *spawn_last_line(struct spawn_result *res)
{
	char *end, *start;

	if (!res->output)
		return "";
	end = res->output + res->output_len;
	while (end > res->output && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	*end = '\0';
	res->output_len = (size_t)(end - res->output);
	start = end;
	while (start > res->output && start[-1] != '\n')
		start--;
	return start;
}
