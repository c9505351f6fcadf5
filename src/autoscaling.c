/* autoscaling.c: SetInstanceHealth and CompleteLifecycleAction (Query API, 2011-01-01), so a
 * group replaces a node that cannot become healthy. Parameter names and limits are those of
 * botocore's autoscaling/2011-01-01 model; nothing is sent that the model would refuse. */
#include "kb/autoscaling.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kb/aws.h"
#include "kb/xml.h"

/* botocore: XmlStringMaxLen19, ResourceName (1600), AsciiStringMaxLen255 [A-Za-z0-9\-_\/]+. */
#define ASG_INSTANCE_ID_MAX 19
#define ASG_GROUP_MAX 1600
#define ASG_HOOK_MAX 255

static bool asg_length_ok(const char *s, size_t max)
{
	return s && s[0] && strlen(s) <= max;
}

static bool asg_hook_ok(const char *hook)
{
	if (!asg_length_ok(hook, ASG_HOOK_MAX))
		return false;
	for (const char *p = hook; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '/'))
			return false;
	return true;
}

/* Sends the call and checks the answer's root element (<Action>Response, no result members
 * the caller needs). params is freed. what: context for the message. */
static int asg_call(struct aws_ctx *ctx, struct aws_params *params, bool failed,
		    const char *root, const char *what, int64_t deadline, struct kb_error *err)
{
	struct kb_error call_err = {{0}};
	struct aws_response *resp = NULL;
	int ret = 0;

	if (!params || failed)
		ret = kb_errorf(&call_err, ENOMEM, "out of memory");
	if (ret == 0)
		ret = aws_query(ctx, AWS_SERVICE_AUTOSCALING, params, deadline, &resp, &call_err);
	/* "No active Lifecycle Action found with instance ID i-...": the action was completed
	 * before (a reboot, a rerun) or timed out; either way nothing is pending any more. */
	if (ret < 0 && resp && resp->error_code && resp->error_message &&
	    strcmp(resp->error_code, "ValidationError") == 0 &&
	    strstr(resp->error_message, "No active Lifecycle Action found"))
		ret = -EALREADY;
	if (ret == 0)
		ret = xml_expect_root(resp->body, resp->body_len, root, &call_err);
	if (ret < 0)
		kb_errorf(err, ret, "%s: %s", what, call_err.msg);
	aws_response_free(resp);
	aws_params_free(params);
	return ret;
}

int autoscaling_set_instance_health(struct aws_ctx *ctx, const char *instance_id, bool healthy,
				    bool respect_grace_period, int64_t deadline,
				    struct kb_error *err)
{
	const char *health = healthy ? "Healthy" : "Unhealthy";
	struct aws_params *params;
	char what[128];
	bool failed;

	if (!asg_length_ok(instance_id, ASG_INSTANCE_ID_MAX))
		return kb_errorf(err, EINVAL, "set health of '%s': not an instance id",
				 instance_id ? instance_id : "");
	snprintf(what, sizeof(what), "set %s %s", instance_id, health);
	params = aws_params_new("SetInstanceHealth", AUTOSCALING_API_VERSION);
	failed = params && (aws_params_add(params, "InstanceId", instance_id) ||
			    aws_params_add(params, "HealthStatus", health) ||
			    aws_params_add(params, "ShouldRespectGracePeriod",
					   respect_grace_period ? "true" : "false"));
	return asg_call(ctx, params, failed, "SetInstanceHealthResponse", what, deadline, err);
}

int autoscaling_complete_lifecycle_action(struct aws_ctx *ctx, const char *group,
					  const char *hook, const char *instance_id,
					  bool result_continue, int64_t deadline,
					  struct kb_error *err)
{
	const char *result = result_continue ? "CONTINUE" : "ABANDON";
	struct aws_params *params;
	char what[512];
	bool failed;

	if (!asg_length_ok(group, ASG_GROUP_MAX) || !asg_hook_ok(hook) ||
	    !asg_length_ok(instance_id, ASG_INSTANCE_ID_MAX))
		return kb_errorf(err, EINVAL,
				 "complete lifecycle action: group '%s', hook '%s' or instance "
				 "'%s' is not valid", group ? group : "", hook ? hook : "",
				 instance_id ? instance_id : "");
	snprintf(what, sizeof(what), "%s lifecycle action %.200s of %.200s for %s", result, hook,
		 group, instance_id);
	params = aws_params_new("CompleteLifecycleAction", AUTOSCALING_API_VERSION);
	failed = params && (aws_params_add(params, "AutoScalingGroupName", group) ||
			    aws_params_add(params, "LifecycleHookName", hook) ||
			    aws_params_add(params, "InstanceId", instance_id) ||
			    aws_params_add(params, "LifecycleActionResult", result));
	return asg_call(ctx, params, failed, "CompleteLifecycleActionResponse", what, deadline,
			err);
}
