/* cfn.c: CloudFormation SignalResource, natively or through the operator's cfn-signal.
 *
 * Never sends a stack name CloudFormation's model refuses, never runs cfn-signal through a
 * shell or a PATH lookup, and never waits for it past the deadline: a child still running
 * then is killed with its process group. */
#include "kb/cfn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/aws.h"
#include "kb/log.h"
#include "kb/spawn.h"
#include "kb/xml.h"

/* SignalResource's UniqueId: 1 to 64 characters (botocore's model). */
#define CFN_UNIQUE_ID_MAX 64
/* CloudFormation: a stack name has at most 128 characters, a logical id 255. */
#define CFN_STACK_NAME_MAX 128
#define CFN_LOGICAL_ID_MAX 255
/* CloudFormation's ValidationError for a resource not waiting for signals (an instance launched
 * after the stack settled): "Stack arn:... is in CREATE_COMPLETE state and cannot be
 * signaled". cfn-signal prints the same message and exits non-zero. */
#define CFN_NOT_WAITING "cannot be signaled"

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
	if (ret < 0 && resp && resp->error_code && resp->error_message &&
	    strcmp(resp->error_code, "ValidationError") == 0 &&
	    strstr(resp->error_message, CFN_NOT_WAITING))
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

/* The line of the program's output that holds needle, cut out in place; NULL when none does.
 * The output is bounded by spawn_run, and a NUL the program printed ends the search there. */
static const char *line_with(struct spawn_result *res, const char *needle)
{
	char *hit = res->output ? strstr(res->output, needle) : NULL;
	char *start, *end;

	if (!hit)
		return NULL;
	start = hit;
	while (start > res->output && start[-1] != '\n')
		start--;
	end = strchr(hit, '\n');
	if (end) {
		*end = '\0';
		if (end > start && end[-1] == '\r')
			end[-1] = '\0';
	}
	return start;
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
	struct spawn_result res;
	const char *last;
	int ret;

	/* A relative path would be looked up in PATH or depend on the working directory. */
	if (!path || path[0] != '/')
		return kb_errorf(err, EINVAL, "cfn-signal path '%s' is not absolute",
				 path ? path : "");
	ret = cfn_check_args(stack, logical_id, unique_id, err);
	if (ret < 0)
		return ret;
	if (!region || !region[0])
		return kb_errorf(err, EINVAL, "cfn-signal needs a region");
	ret = spawn_run(argv, deadline, &res, err);
	if (ret < 0)
		return ret;
	if (res.output_len)
		log_debug("%s printed: %s", path, res.output);
	/* The answer SignalResource gives natively, printed by cfn-signal: the same -EALREADY. */
	if (res.exit_status != 0 && (last = line_with(&res, CFN_NOT_WAITING)) != NULL) {
		ret = kb_errorf(err, EALREADY, "%s: %s", path, last);
	} else if (res.exit_status != 0) {
		last = spawn_last_line(&res);
		ret = kb_errorf(err, EIO, "%s exited with status %d%s%s", path, res.exit_status,
				last[0] ? ": " : "", last);
	}
	spawn_result_clear(&res);
	return ret;
}
