/* cfn.c: CloudFormation SignalResource, natively or through the operator's cfn-signal.
 *
 * Never sends a stack name CloudFormation's model refuses, never runs cfn-signal through a
 * shell or a PATH lookup, and never waits for it past the deadline: a child still running
 * then is killed with its process group. */
#include "kb/cfn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kb/aws.h"
#include "kb/deadline.h"
#include "kb/log.h"
#include "kb/xml.h"

/* What cfn-signal printed that is kept for the error message and the log. */
#define CFN_OUTPUT_MAX (64u << 10)
/* SignalResource's UniqueId: 1 to 64 characters (botocore's model). */
#define CFN_UNIQUE_ID_MAX 64
/* CloudFormation: a stack name has at most 128 characters, a logical id 255. */
#define CFN_STACK_NAME_MAX 128
#define CFN_LOGICAL_ID_MAX 255

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

/* Every character alphanumeric or one of extra. */
static bool only(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!is_alnum(*s) && !strchr(extra, *s))
			return false;
	return true;
}

/* botocore's StackNameOrId pattern, matched whole:
 * ([a-zA-Z][-a-zA-Z0-9]*)|(arn:\b(aws|aws-us-gov|aws-cn)\b:[-a-zA-Z0-9:/._+]*) */
static bool cfn_stack_valid(const char *stack)
{
	static const char *const arn_prefixes[] = {"arn:aws:", "arn:aws-us-gov:", "arn:aws-cn:"};

	if (is_alpha(stack[0]) && strlen(stack) <= CFN_STACK_NAME_MAX && only(stack + 1, "-"))
		return true;
	for (size_t i = 0; i < sizeof(arn_prefixes) / sizeof(arn_prefixes[0]); i++) {
		size_t n = strlen(arn_prefixes[i]);

		if (strncmp(stack, arn_prefixes[i], n) == 0)
			return only(stack + n, "-:/._+");
	}
	return false;
}

static int cfn_check_args(const char *stack, const char *logical_id, const char *unique_id,
			  struct kb_error *err)
{
	size_t n;

	if (!stack || !cfn_stack_valid(stack))
		return kb_errorf(err, EINVAL,
				 "'%s' is neither a stack name nor a CloudFormation stack ARN",
				 stack ? stack : "");
	if (!logical_id || !logical_id[0] || strlen(logical_id) > CFN_LOGICAL_ID_MAX ||
	    !only(logical_id, ""))
		return kb_errorf(err, EINVAL,
				 "'%s' is not a CloudFormation logical id (letters and digits)",
				 logical_id ? logical_id : "");
	n = unique_id ? strlen(unique_id) : 0;
	if (n == 0 || n > CFN_UNIQUE_ID_MAX)
		return kb_errorf(err, EINVAL, "signal id '%s' must have 1 to %d characters",
				 unique_id ? unique_id : "", CFN_UNIQUE_ID_MAX);
	return 0;
}

int cfn_signal_resource(struct aws_ctx *ctx, const char *stack, const char *logical_id,
			const char *unique_id, bool success, int64_t deadline,
			struct kb_error *err)
{
	const char *status = success ? "SUCCESS" : "FAILURE";
	struct kb_error call_err = {{0}};
	struct aws_response *resp = NULL;
	struct aws_params *params = NULL;
	int ret;

	ret = cfn_check_args(stack, logical_id, unique_id, &call_err);
	if (ret == 0) {
		params = aws_params_new("SignalResource", CFN_API_VERSION);
		if (!params || aws_params_add(params, "StackName", stack) ||
		    aws_params_add(params, "LogicalResourceId", logical_id) ||
		    aws_params_add(params, "UniqueId", unique_id) ||
		    aws_params_add(params, "Status", status))
			ret = kb_errorf(&call_err, ENOMEM, "out of memory");
	}
	if (ret == 0)
		ret = aws_query(ctx, AWS_SERVICE_CLOUDFORMATION, params, deadline, &resp,
				&call_err);
	/* A resource that is not waiting for signals (an instance launched after the stack
	 * settled): "Stack arn:... is in CREATE_COMPLETE state and cannot be signaled". */
	if (ret < 0 && resp && resp->error_code && resp->error_message &&
	    strcmp(resp->error_code, "ValidationError") == 0 &&
	    strstr(resp->error_message, "cannot be signaled"))
		ret = -EALREADY;
	if (ret == 0)
		ret = xml_expect_root(resp->body, resp->body_len, "SignalResourceResponse",
				      &call_err);
	if (ret < 0)
		kb_errorf(err, ret, "signal %s for %s of stack %s: %s", status,
			  logical_id ? logical_id : "", stack ? stack : "", call_err.msg);
	aws_response_free(resp);
	aws_params_free(params);
	return ret;
}

/* ---- cfn-signal ------------------------------------------------------------------------ */

/* The child's side of the fork: only async-signal-safe calls. Its stdout and stderr go to
 * out_fd; an execve failure is reported as errno on status_fd (close-on-exec, so a successful
 * execve reports nothing). */
static void cfn_child(const char *path, char *const argv[], int out_fd, int status_fd)
{
	int e, devnull;

	/* Its own process group, so a deadline kill reaches whatever it started too. */
	setpgid(0, 0);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(out_fd, STDERR_FILENO) < 0)
		goto fail;
	/* Nothing of ours beyond stdio: descriptors opened without O_CLOEXEC by a library. */
	close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
	execve(path, argv, environ);
fail:
	e = errno;
	if (write(status_fd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

struct cfn_output {
	char *buf;
	size_t len;
};

/* Keeps the last CFN_OUTPUT_MAX bytes: the end of a traceback says what went wrong. */
static int cfn_output_add(struct cfn_output *out, const char *data, size_t n)
{
	char *grown;

	if (n >= CFN_OUTPUT_MAX) {
		data += n - CFN_OUTPUT_MAX;
		n = CFN_OUTPUT_MAX;
	}
	if (out->len + n > CFN_OUTPUT_MAX) {
		size_t drop = out->len + n - CFN_OUTPUT_MAX;

		memmove(out->buf, out->buf + drop, out->len - drop);
		out->len -= drop;
	}
	grown = realloc(out->buf, out->len + n + 1);
	if (!grown)
		return -ENOMEM;
	out->buf = grown;
	memcpy(out->buf + out->len, data, n);
	out->len += n;
	out->buf[out->len] = '\0';
	return 0;
}

/* The last non-empty line of what the child printed, in place. */
static const char *cfn_output_last_line(struct cfn_output *out)
{
	char *end, *start;

	if (!out->buf)
		return "";
	end = out->buf + out->len;
	while (end > out->buf && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		*--end = '\0';
	start = end;
	while (start > out->buf && start[-1] != '\n')
		start--;
	return start;
}

static int poll_timeout(int64_t deadline)
{
	int64_t left = deadline_remaining_ms(deadline);

	return left > INT_MAX ? INT_MAX : (int)left;
}

/* Reads the child's output until it closes it; -ETIMEDOUT when the deadline comes first. */
static int cfn_collect(int fd, int64_t deadline, struct cfn_output *out)
{
	char chunk[4096];

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;
		int ready;

		if (deadline_passed(deadline))
			return -ETIMEDOUT;
		ready = poll(&pfd, 1, poll_timeout(deadline));
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0)
			return -errno;
		if (ready == 0)
			continue;
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		if (cfn_output_add(out, chunk, (size_t)n) < 0)
			return -ENOMEM;
	}
}

/* The child's exit status; it is killed (with its group) when the deadline passes first. */
static int cfn_reap(pid_t pid, bool kill_now, int64_t deadline, int *status)
{
	for (;;) {
		pid_t got;

		if (kill_now || deadline_passed(deadline)) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			return -ETIMEDOUT;
		}
		got = waitpid(pid, status, WNOHANG);
		if (got == pid)
			return 0;
		if (got < 0 && errno != EINTR)
			return -errno;
		deadline_sleep_ms(deadline, 5);
	}
}

/* 0, or the child's execve errno (positive), read from the status pipe. */
static int cfn_exec_errno(int fd)
{
	int e = 0;
	ssize_t n;

	do
		n = read(fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(e) ? e : 0;
}

static int cfn_result(const char *path, int ret, int status, int exec_errno,
		      struct cfn_output *out, struct kb_error *err)
{
	const char *last = cfn_output_last_line(out);

	if (out->len)
		log_debug("%s printed: %s", path, out->buf);
	if (exec_errno)
		return kb_errorf(err, exec_errno, "cannot run %s: %s", path, strerror(exec_errno));
	if (ret == -ETIMEDOUT)
		return kb_errorf(err, ETIMEDOUT, "%s did not finish before the deadline; killed",
				 path);
	if (ret < 0)
		return kb_errorf(err, -ret, "waiting for %s: %s", path, strerror(-ret));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		return kb_errorf(err, EIO, "%s exited with status %d%s%s", path,
				 WEXITSTATUS(status), last[0] ? ": " : "", last);
	return kb_errorf(err, EIO, "%s killed by signal %d%s%s", path, WTERMSIG(status),
			 last[0] ? ": " : "", last);
}

int cfn_signal_exec(const char *path, const char *stack, const char *logical_id,
		    const char *region, const char *unique_id, bool success, int64_t deadline,
		    struct kb_error *err)
{
	char *const argv[] = {
		(char *)path, "--success", success ? "true" : "false", "--stack", (char *)stack,
		"--resource", (char *)logical_id, "--region", (char *)region, "--id",
		(char *)unique_id, NULL,
	};
	int out_pipe[2] = {-1, -1}, status_pipe[2] = {-1, -1};
	struct cfn_output out = {NULL, 0};
	int ret, reaped, status = 0, exec_errno;
	pid_t pid;

	/* execve takes the path as it is: a relative one would depend on the working directory. */
	if (!path || path[0] != '/')
		return kb_errorf(err, EINVAL, "cfn-signal path '%s' is not absolute",
				 path ? path : "");
	ret = cfn_check_args(stack, logical_id, unique_id, err);
	if (ret < 0)
		return ret;
	if (!region || !region[0])
		return kb_errorf(err, EINVAL, "cfn-signal needs a region");
	if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(status_pipe, O_CLOEXEC) < 0) {
		ret = kb_errorf(err, errno, "cannot run %s: pipe: %s", path, strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		ret = kb_errorf(err, errno, "cannot run %s: fork: %s", path, strerror(errno));
		goto out;
	}
	if (pid == 0)
		cfn_child(path, argv, out_pipe[1], status_pipe[1]);
	/* Also from this side, so a kill at the deadline cannot race the child's own setpgid
	 * (EACCES once it has exec'd, when its own call has long been made). */
	setpgid(pid, pid);
	close(out_pipe[1]);
	close(status_pipe[1]);
	out_pipe[1] = status_pipe[1] = -1;
	/* Returns at execve (the pipe closes) or at the child's report of its failure. */
	exec_errno = cfn_exec_errno(status_pipe[0]);
	ret = exec_errno ? 0 : cfn_collect(out_pipe[0], deadline, &out);
	reaped = cfn_reap(pid, ret < 0, deadline, &status);
	if (ret == 0)
		ret = reaped;
	ret = cfn_result(path, ret, status, exec_errno, &out, err);
out:
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (status_pipe[i] >= 0)
			close(status_pipe[i]);
	}
	free(out.buf);
	return ret;
}
