/* test_cfn.c: SignalResource's exact request, its "not waiting" answer, the stack names sent,
 * and cfn-signal run without a shell, killed at the deadline. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_stub.h"
#include "kb/aws.h"
#include "kb/cfn.h"
#include "kb/deadline.h"
#include "kb/file.h"

#define STACK_ARN "arn:aws:cloudformation:us-east-1:123456789012:stack/kafka/" \
		  "0b5e6e40-1a2b-11ef-8c1d-0a1b2c3d4e5f"
#define STACK_ARN_FORM "arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack%2F" \
		       "kafka%2F0b5e6e40-1a2b-11ef-8c1d-0a1b2c3d4e5f"

static const char signal_ok[] =
	"<SignalResourceResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">"
	"<ResponseMetadata><RequestId>7f3e6b4c-0000-4000-8000-000000000000</RequestId>"
	"</ResponseMetadata></SignalResourceResponse>";

static char *fixture(const char *name)
{
	const char *src = getenv("KB_SOURCE_DIR");
	struct kb_error err = {{0}};
	char path[4096], *data = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/tests/data/ec2/%s", src ? src : ".", name);
	if (file_read_all(path, &data, &len, &err) < 0)
		fail_msg("%s", err.msg);
	return data;
}

static void signal_sends_the_four_parameters_and_reads_the_answer(void **state)
{
	const struct stub_reply replies[] = {{200, signal_ok, NULL}, {200, signal_ok, NULL}};
	struct kb_error err = {{0}};
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, replies, 2);

	(void)state;
	assert_int_equal(cfn_signal_resource(ctx, STACK_ARN, "BrokerGroup", "i-0123456789abcdef0",
					     true, deadline_after_ms(10000), &err), 0);
	assert_int_equal(cfn_signal_resource(ctx, "kafka-prod", "BrokerGroup",
					     "i-0123456789abcdef0", false,
					     deadline_after_ms(10000), &err), 0);
	assert_string_equal(stub_body(s, 0),
			    "Action=SignalResource&Version=2010-05-15&StackName=" STACK_ARN_FORM
			    "&LogicalResourceId=BrokerGroup&UniqueId=i-0123456789abcdef0"
			    "&Status=SUCCESS");
	assert_string_equal(stub_body(s, 1),
			    "Action=SignalResource&Version=2010-05-15&StackName=kafka-prod"
			    "&LogicalResourceId=BrokerGroup&UniqueId=i-0123456789abcdef0"
			    "&Status=FAILURE");
	assert_string_equal(err.msg, "");
	aws_ctx_free(ctx);
	stub_stop(s);
}

static void a_resource_not_waiting_is_ealready_and_other_errors_are_not(void **state)
{
	char *not_waiting = fixture("cfn-error-not-waiting.xml");
	const struct stub_reply replies[] = {
		{400, not_waiting, NULL},
		{400, "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">"
		      "<Error><Type>Sender</Type><Code>ValidationError</Code>"
		      "<Message>Stack with id kafka-prod does not exist</Message></Error>"
		      "<RequestId>b254</RequestId></ErrorResponse>", NULL},
		{403, "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">"
		      "<Error><Type>Sender</Type><Code>AccessDenied</Code>"
		      "<Message>not authorized to perform: cloudformation:SignalResource</Message>"
		      "</Error><RequestId>b255</RequestId></ErrorResponse>", NULL},
		{200, "<DescribeStacksResponse/>", NULL},
	};
	struct kb_error err = {{0}};
	struct stub *s;
	struct aws_ctx *ctx = stub_ctx(&s, replies, 4);

	(void)state;
	assert_int_equal(cfn_signal_resource(ctx, "kafka-prod", "BrokerGroup", "i-1", true,
					     deadline_after_ms(10000), &err), -EALREADY);
	assert_non_null(strstr(err.msg, "signal SUCCESS for BrokerGroup of stack kafka-prod: "
					"SignalResource: ValidationError: Stack arn:aws:"));
	assert_non_null(strstr(err.msg, "is in CREATE_COMPLETE state and cannot be signaled"));
	kb_error_clear(&err);
	assert_int_equal(cfn_signal_resource(ctx, "kafka-prod", "BrokerGroup", "i-1", true,
					     deadline_after_ms(10000), &err), -KB_EAWS);
	assert_non_null(strstr(err.msg, "Stack with id kafka-prod does not exist"));
	kb_error_clear(&err);
	assert_int_equal(cfn_signal_resource(ctx, "kafka-prod", "BrokerGroup", "i-1", false,
					     deadline_after_ms(10000), &err), -KB_EDENIED);
	kb_error_clear(&err);
	assert_int_equal(cfn_signal_resource(ctx, "kafka-prod", "BrokerGroup", "i-1", false,
					     deadline_after_ms(10000), &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "expected <SignalResourceResponse>, got "
					"<DescribeStacksResponse>"));
	aws_ctx_free(ctx);
	stub_stop(s);
	free(not_waiting);
}

static void only_names_and_arns_of_botocores_pattern_are_sent(void **state)
{
	static const char *const bad_stacks[] = {
		"", "1kafka", "kafka_prod", "kafka prod", "-kafka", "arn:aws-foo:cloudformation:x",
		"arn:awsx:cloudformation:x", "arn:aws:cloudformation:us-east-1:1:stack/a b/c",
		"arn:aws", "kafka\xc3\xa9", NULL /* 129 letters, below */,
	};
	static const char *const good_stacks[] = {
		"k", "kafka-prod-2", "arn:aws-us-gov:cloudformation:us-gov-west-1:1:stack/k/x",
		"arn:aws-cn:cloudformation:cn-north-1:1:stack/k/x", STACK_ARN,
	};
	struct stub_reply replies[6];
	struct kb_error err = {{0}};
	char id65[66], name129[130];
	struct stub *s;
	struct aws_ctx *ctx;

	(void)state;
	memset(name129, 'a', 129);
	name129[129] = '\0';
	for (size_t i = 0; i < 6; i++)
		replies[i] = (struct stub_reply){200, signal_ok, NULL};
	ctx = stub_ctx(&s, replies, 6);
	for (size_t i = 0; i < sizeof(bad_stacks) / sizeof(bad_stacks[0]); i++) {
		const char *stack = bad_stacks[i] ? bad_stacks[i] : name129;

		kb_error_clear(&err);
		if (cfn_signal_resource(ctx, stack, "BrokerGroup", "i-1", true,
					deadline_after_ms(10000), &err) != -EINVAL)
			fail_msg("stack '%s' was not refused", stack);
		assert_non_null(strstr(err.msg, "is neither a stack name nor a CloudFormation"));
	}
	memset(id65, 'i', 65);
	id65[65] = '\0';
	assert_int_equal(cfn_signal_resource(ctx, "kafka", "Broker-Group", "i-1", true,
					     deadline_after_ms(10000), &err), -EINVAL);
	assert_int_equal(cfn_signal_resource(ctx, "kafka", "BrokerGroup", id65, true,
					     deadline_after_ms(10000), &err), -EINVAL);
	assert_int_equal(cfn_signal_resource(ctx, "kafka", "BrokerGroup", "", true,
					     deadline_after_ms(10000), &err), -EINVAL);
	assert_int_equal(stub_served(s), 0);
	for (size_t i = 0; i < sizeof(good_stacks) / sizeof(good_stacks[0]); i++) {
		kb_error_clear(&err);
		if (cfn_signal_resource(ctx, good_stacks[i], "BrokerGroup", "i-1", true,
					deadline_after_ms(10000), &err) != 0)
			fail_msg("stack '%s' refused: %s", good_stacks[i], err.msg);
	}
	name129[128] = '\0';
	assert_int_equal(cfn_signal_resource(ctx, name129, "BrokerGroup", "i-1", true,
					     deadline_after_ms(10000), &err), 0);
	assert_int_equal(stub_served(s), 6);
	aws_ctx_free(ctx);
	stub_stop(s);
}

/* ---- cfn-signal ---- */

static char dir[64];

static const char script[] =
	"#!/bin/sh\n"
	"printf '%s\\n' \"$@\" > \"$0.args\"\n"
	"echo 'cfn-signal: starting'\n"
	"if [ -n \"$CFN_TEST_SLEEP\" ]; then sleep \"$CFN_TEST_SLEEP\" & echo $! > \"$0.child\";"
	" wait; fi\n"
	"if [ -n \"$CFN_TEST_MESSAGE\" ]; then echo \"$CFN_TEST_MESSAGE\" >&2; fi\n"
	"exit \"${CFN_TEST_EXIT:-0}\"\n";

static int make_script(void **state)
{
	char path[128];
	int fd;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kb-test-cfn-%d", (int)getpid());
	if (mkdir(dir, 0700) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/cfn-signal", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd < 0 || write(fd, script, sizeof(script) - 1) != (ssize_t)(sizeof(script) - 1))
		return -1;
	close(fd);
	snprintf(path, sizeof(path), "%s/not-executable", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, script, sizeof(script) - 1) != (ssize_t)(sizeof(script) - 1))
		return -1;
	close(fd);
	return 0;
}

static int remove_script(void **state)
{
	static const char *const files[] = {"cfn-signal", "cfn-signal.args", "cfn-signal.child",
					    "not-executable"};
	char path[128];

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
	unsetenv("CFN_TEST_SLEEP");
	unsetenv("CFN_TEST_EXIT");
	unsetenv("CFN_TEST_MESSAGE");
	return 0;
}

static char *read_side_file(const char *name)
{
	struct kb_error err = {{0}};
	char path[128], *data = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read_all(path, &data, &len, &err) < 0)
		fail_msg("%s", err.msg);
	return data;
}

static void cfn_signal_gets_its_documented_options_as_separate_arguments(void **state)
{
	struct kb_error err = {{0}};
	char path[128], *args;

	(void)state;
	snprintf(path, sizeof(path), "%s/cfn-signal", dir);
	assert_int_equal(cfn_signal_exec(path, STACK_ARN, "BrokerGroup", "eu-west-1",
					 "i-0123456789abcdef0", true, deadline_after_ms(10000),
					 &err), 0);
	args = read_side_file("cfn-signal.args");
	assert_string_equal(args, "--success\ntrue\n--stack\n" STACK_ARN "\n--resource\n"
				  "BrokerGroup\n--region\neu-west-1\n--id\ni-0123456789abcdef0\n");
	free(args);
	/* A stack name with shell syntax in it would be refused before any exec; a FAILURE
	 * goes out as --success false. */
	assert_int_equal(cfn_signal_exec(path, "kafka", "BrokerGroup", "eu-west-1", "i-1", false,
					 deadline_after_ms(10000), &err), 0);
	args = read_side_file("cfn-signal.args");
	assert_string_equal(args, "--success\nfalse\n--stack\nkafka\n--resource\nBrokerGroup\n"
				  "--region\neu-west-1\n--id\ni-1\n");
	free(args);
}

static void cfn_signal_failure_reports_status_and_last_line(void **state)
{
	struct kb_error err = {{0}};
	char path[128], expect[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/cfn-signal", dir);
	setenv("CFN_TEST_EXIT", "1", 1);
	setenv("CFN_TEST_MESSAGE", "ValidationError: Stack kafka is in CREATE_COMPLETE state", 1);
	assert_int_equal(cfn_signal_exec(path, "kafka", "BrokerGroup", "eu-west-1", "i-1", true,
					 deadline_after_ms(10000), &err), -EIO);
	snprintf(expect, sizeof(expect), "%s exited with status 1: ValidationError: Stack kafka "
		 "is in CREATE_COMPLETE state", path);
	assert_string_equal(err.msg, expect);
}

/* What cfn-signal prints when the stack settled before this instance booted: every
 * replacement gets it, so it is -EALREADY as natively, not a failed signal (exit 14). */
static void cfn_signal_not_waiting_is_ealready_like_the_native_call(void **state)
{
	struct kb_error err = {{0}};
	char path[128], expect[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/cfn-signal", dir);
	setenv("CFN_TEST_EXIT", "1", 1);
	setenv("CFN_TEST_MESSAGE", "ValidationError: Stack " STACK_ARN " is in CREATE_COMPLETE "
	       "state and cannot be signaled", 1);
	assert_int_equal(cfn_signal_exec(path, STACK_ARN, "BrokerGroup", "eu-west-1", "i-1",
					 false, deadline_after_ms(10000), &err), -EALREADY);
	snprintf(expect, sizeof(expect), "%s: ValidationError: Stack " STACK_ARN " is in "
		 "CREATE_COMPLETE state and cannot be signaled", path);
	assert_string_equal(err.msg, expect);
	/* Only a failed run says so: the same words from a run that exited 0 are a success. */
	kb_error_clear(&err);
	setenv("CFN_TEST_EXIT", "0", 1);
	assert_int_equal(cfn_signal_exec(path, STACK_ARN, "BrokerGroup", "eu-west-1", "i-1",
					 false, deadline_after_ms(10000), &err), 0);
	assert_string_equal(err.msg, "");
}

static void cfn_signal_is_killed_with_its_children_at_the_deadline(void **state)
{
	struct kb_error err = {{0}};
	char path[128], *child;
	int64_t start = deadline_now_ms(), took;
	pid_t grandchild;

	(void)state;
	snprintf(path, sizeof(path), "%s/cfn-signal", dir);
	setenv("CFN_TEST_SLEEP", "30", 1);
	assert_int_equal(cfn_signal_exec(path, "kafka", "BrokerGroup", "eu-west-1", "i-1", true,
					 deadline_after_ms(500), &err), -ETIMEDOUT);
	took = deadline_now_ms() - start;
	assert_true(took >= 450 && took < 3000);
	assert_non_null(strstr(err.msg, "did not finish before the deadline; killed"));
	child = read_side_file("cfn-signal.child");
	grandchild = (pid_t)atoi(child);
	free(child);
	assert_true(grandchild > 0);
	/* The sleep the script started died with it (it was reaped by init, or is a zombie
	 * about to be: either way it is not running). */
	for (int i = 0; i < 100 && kill(grandchild, 0) == 0; i++) {
		char stat_path[64], *stat = NULL;
		struct kb_error ignored = {{0}};
		size_t len;

		snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", (int)grandchild);
		if (file_read_all(stat_path, &stat, &len, &ignored) == 0 && strstr(stat, ") Z ")) {
			free(stat);
			break;
		}
		free(stat);
		usleep(10000);
		if (i == 99)
			fail_msg("the script's child %d survived the deadline", (int)grandchild);
	}
}

static void cfn_signal_path_must_be_absolute_existing_and_executable(void **state)
{
	struct kb_error err = {{0}};
	char path[128], expect[256];

	(void)state;
	assert_int_equal(cfn_signal_exec("cfn-signal", "kafka", "BrokerGroup", "eu-west-1", "i-1",
					 true, deadline_after_ms(10000), &err), -EINVAL);
	assert_string_equal(err.msg, "cfn-signal path 'cfn-signal' is not absolute");
	kb_error_clear(&err);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(cfn_signal_exec(path, "kafka", "BrokerGroup", "eu-west-1", "i-1", true,
					 deadline_after_ms(10000), &err), -ENOENT);
	snprintf(expect, sizeof(expect), "cannot run %s: No such file or directory", path);
	assert_string_equal(err.msg, expect);
	kb_error_clear(&err);
	snprintf(path, sizeof(path), "%s/not-executable", dir);
	assert_int_equal(cfn_signal_exec(path, "kafka", "BrokerGroup", "eu-west-1", "i-1", true,
					 deadline_after_ms(10000), &err), -EACCES);
	kb_error_clear(&err);
	snprintf(path, sizeof(path), "%s/cfn-signal", dir);
	assert_int_equal(cfn_signal_exec(path, "kafka;reboot", "BrokerGroup", "eu-west-1", "i-1",
					 true, deadline_after_ms(10000), &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(signal_sends_the_four_parameters_and_reads_the_answer),
		cmocka_unit_test(a_resource_not_waiting_is_ealready_and_other_errors_are_not),
		cmocka_unit_test(only_names_and_arns_of_botocores_pattern_are_sent),
		cmocka_unit_test_setup_teardown(
			cfn_signal_gets_its_documented_options_as_separate_arguments, make_script,
			remove_script),
		cmocka_unit_test_setup_teardown(cfn_signal_failure_reports_status_and_last_line,
						make_script, remove_script),
		cmocka_unit_test_setup_teardown(
			cfn_signal_not_waiting_is_ealready_like_the_native_call, make_script,
			remove_script),
		cmocka_unit_test_setup_teardown(
			cfn_signal_is_killed_with_its_children_at_the_deadline, make_script,
			remove_script),
		cmocka_unit_test_setup_teardown(
			cfn_signal_path_must_be_absolute_existing_and_executable, make_script,
			remove_script),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
