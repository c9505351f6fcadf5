/* test_autoscaling.c: SetInstanceHealth and CompleteLifecycleAction send botocore's parameter
 * names, read Auto Scaling's answers and errors, and refuse what the model would refuse. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_stub.h"
#include "kb/autoscaling.h"
#include "kb/aws.h"
#include "kb/deadline.h"

#define ASG_NS "xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\""

static void health_and_lifecycle_send_the_models_parameters(void **state)
{
	const struct stub_reply replies[] = {
		{200, "<SetInstanceHealthResponse " ASG_NS "><ResponseMetadata><RequestId>a"
		      "</RequestId></ResponseMetadata></SetInstanceHealthResponse>", NULL},
		{200, "<SetInstanceHealthResponse " ASG_NS "/>", NULL},
		{200, "<CompleteLifecycleActionResponse " ASG_NS "><CompleteLifecycleActionResult/>"
		      "<ResponseMetadata><RequestId>b</RequestId></ResponseMetadata>"
		      "</CompleteLifecycleActionResponse>", NULL},
		{200, "<CompleteLifecycleActionResponse " ASG_NS "/>", NULL},
	};
	struct kb_error err = {{0}};
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, replies, 4);

	(void)state;
	assert_int_equal(autoscaling_set_instance_health(ctx, "i-0123456789abcdef0", false, false,
							 deadline_after_ms(10000), &err), 0);
	assert_int_equal(autoscaling_set_instance_health(ctx, "i-0123456789abcdef0", true, true,
							 deadline_after_ms(10000), &err), 0);
	assert_int_equal(autoscaling_complete_lifecycle_action(ctx, "kafka prod asg",
							       "kafka-launch/hook_1",
							       "i-0123456789abcdef0", false,
							       deadline_after_ms(10000), &err), 0);
	assert_int_equal(autoscaling_complete_lifecycle_action(ctx, "kafka", "launch",
							       "i-0123456789abcdef0", true,
							       deadline_after_ms(10000), &err), 0);
	assert_string_equal(err.msg, "");
	assert_string_equal(stub_body(s, 0),
			    "Action=SetInstanceHealth&Version=2011-01-01"
			    "&InstanceId=i-0123456789abcdef0&HealthStatus=Unhealthy"
			    "&ShouldRespectGracePeriod=false");
	assert_string_equal(stub_body(s, 1),
			    "Action=SetInstanceHealth&Version=2011-01-01"
			    "&InstanceId=i-0123456789abcdef0&HealthStatus=Healthy"
			    "&ShouldRespectGracePeriod=true");
	assert_string_equal(stub_body(s, 2),
			    "Action=CompleteLifecycleAction&Version=2011-01-01"
			    "&AutoScalingGroupName=kafka%20prod%20asg"
			    "&LifecycleHookName=kafka-launch%2Fhook_1"
			    "&InstanceId=i-0123456789abcdef0&LifecycleActionResult=ABANDON");
	assert_string_equal(stub_body(s, 3),
			    "Action=CompleteLifecycleAction&Version=2011-01-01"
			    "&AutoScalingGroupName=kafka&LifecycleHookName=launch"
			    "&InstanceId=i-0123456789abcdef0&LifecycleActionResult=CONTINUE");
	aws_ctx_free(ctx);
	stub_stop(s);
}

/* A lifecycle action no longer pending is -EALREADY (done before); the message stays. */
static void auto_scaling_errors_keep_code_and_message(void **state)
{
	const struct stub_reply replies[] = {
		{400, "<ErrorResponse " ASG_NS "><Error><Type>Sender</Type>"
		      "<Code>ValidationError</Code><Message>No active Lifecycle Action found with "
		      "instance ID i-0123456789abcdef0</Message></Error><RequestId>c</RequestId>"
		      "</ErrorResponse>", NULL},
		{403, "<ErrorResponse " ASG_NS "><Error><Type>Sender</Type>"
		      "<Code>AccessDenied</Code><Message>User is not authorized to perform: "
		      "autoscaling:SetInstanceHealth</Message></Error><RequestId>d</RequestId>"
		      "</ErrorResponse>", NULL},
		{200, "<SetInstanceHealthResult/>", NULL},
	};
	struct kb_error err = {{0}};
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, replies, 3);

	(void)state;
	assert_int_equal(autoscaling_complete_lifecycle_action(ctx, "kafka", "launch",
							       "i-0123456789abcdef0", true,
							       deadline_after_ms(10000), &err),
			 -EALREADY);
	assert_non_null(strstr(err.msg, "CONTINUE lifecycle action launch of kafka for "
					"i-0123456789abcdef0: CompleteLifecycleAction: "
					"ValidationError: No active Lifecycle Action found"));
	kb_error_clear(&err);
	assert_int_equal(autoscaling_set_instance_health(ctx, "i-0123456789abcdef0", false, true,
							 deadline_after_ms(10000), &err),
			 -KB_EDENIED);
	assert_non_null(strstr(err.msg, "set i-0123456789abcdef0 Unhealthy: SetInstanceHealth: "
					"AccessDenied"));
	kb_error_clear(&err);
	assert_int_equal(autoscaling_set_instance_health(ctx, "i-0123456789abcdef0", false, true,
							 deadline_after_ms(10000), &err),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "expected <SetInstanceHealthResponse>, got "
					"<SetInstanceHealthResult>"));
	aws_ctx_free(ctx);
	stub_stop(s);
}

static void values_the_model_refuses_are_not_sent(void **state)
{
	struct kb_error err = {{0}};
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, NULL, 0);

	(void)state;
	assert_int_equal(autoscaling_set_instance_health(ctx, "i-0123456789abcdef0123", false,
							 true, deadline_after_ms(10000), &err),
			 -EINVAL);
	assert_int_equal(autoscaling_set_instance_health(ctx, "", false, true,
							 deadline_after_ms(10000), &err), -EINVAL);
	assert_int_equal(autoscaling_complete_lifecycle_action(ctx, "kafka", "launch hook",
							       "i-1", true,
							       deadline_after_ms(10000), &err),
			 -EINVAL);
	assert_int_equal(autoscaling_complete_lifecycle_action(ctx, "", "launch", "i-1", true,
							       deadline_after_ms(10000), &err),
			 -EINVAL);
	assert_int_equal(stub_served(s), 0);
	aws_ctx_free(ctx);
	stub_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(health_and_lifecycle_send_the_models_parameters),
		cmocka_unit_test(auto_scaling_errors_keep_code_and_message),
		cmocka_unit_test(values_the_model_refuses_are_not_sent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
