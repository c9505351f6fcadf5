/* Logging: levels, the journald priority prefix, and that no secret reaches a line, whether
 * registered or only recognisable by the name in front of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kb/log.h"

/* Runs fn with stderr redirected to a file; returns what was written (caller frees). */
static char *capture(void (*fn)(void))
{
	char path[] = "/tmp/kb-log-test-XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(STDERR_FILENO);
	char *text = calloc(1, 65536);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0 && text);
	dup2(fd, STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, text, 65535);
	assert_true(n >= 0);
	close(fd);
	unlink(path);
	return text;
}

static void log_levels(void)
{
	log_error("an error");
	log_warn("a warning");
	log_info("some info");
	log_debug("a debug line");
}

static void lines_below_the_level_are_dropped(void **state)
{
	char *out;

	(void)state;
	unsetenv("JOURNAL_STREAM");
	log_init(LOG_LEVEL_WARN);
	out = capture(log_levels);
	assert_non_null(strstr(out, "error an error\n"));
	assert_non_null(strstr(out, "warn  a warning\n"));
	assert_null(strstr(out, "some info"));
	assert_null(strstr(out, "debug line"));
	free(out);
}

static void under_journald_each_line_carries_its_priority(void **state)
{
	char *out;

	(void)state;
	setenv("JOURNAL_STREAM", "8:12345", 1);
	log_init(LOG_LEVEL_DEBUG);
	out = capture(log_levels);
	assert_string_equal(out, "<3>an error\n<4>a warning\n<6>some info\n<7>a debug line\n");
	free(out);
	unsetenv("JOURNAL_STREAM");
}

static void multi_line(void)
{
	log_info("first\nsecond");
}

static void every_line_of_a_message_is_prefixed(void **state)
{
	char *out;

	(void)state;
	setenv("JOURNAL_STREAM", "8:1", 1);
	log_init(LOG_LEVEL_INFO);
	out = capture(multi_line);
	assert_string_equal(out, "<6>first\n<6>second\n");
	free(out);
	unsetenv("JOURNAL_STREAM");
}

struct case_ {
	const char *input;
	const char *secret; /* must not appear in the output */
	const char *kept;   /* must still appear */
};

/* Secrets the logger was never told about, recognised by what precedes them. */
static const struct case_ unregistered[] = {
	{"X-Amz-Security-Token: IQoJb3JpZ2luX2VjEXAMPLE/+=", "IQoJb3JpZ2luX2VjEXAMPLE",
	 "X-Amz-Security-Token: [REDACTED]"},
	{"Action=X&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE&Version=1", "FwoGZXIvYXdzEXAMPLE",
	 "&Version=1"},
	{"{\"Code\":\"Success\",\"SecretAccessKey\" : \"wJalrXUtnFEMI/K7MDENG\",\"Token\":"
	 "\"tok\\\"en-value\",\"Expiration\":\"2030-01-01T00:00:00Z\"}",
	 "wJalrXUtnFEMI", "\"Expiration\":\"2030-01-01T00:00:00Z\""},
	{"{\"Token\":\"tok\\\"en-value\"}", "en-value", "\"Token\":\"[REDACTED]\""},
	{"Authorization: AWS4-HMAC-SHA256 Credential=AKID/20250115/us-east-1/ec2/aws4_request, "
	 "SignedHeaders=host, Signature=4aa71e18ed7673ed71b81a8c", "4aa71e18ed76",
	 "Credential=AKID/20250115"},
	{"env AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENG AWS_REGION=us-east-1", "wJalrXUtnFEMI",
	 "AWS_REGION=us-east-1"},
	{"zoo_add_auth digest:kafka:pa55w0rd-zk", "pa55w0rd-zk", "zoo_add_auth digest:"},
	{"X-aws-ec2-metadata-token: AQAEAExampleToken==", "AQAEAExampleToken", "token: [REDACTED]"},
};

static void unregistered_secrets_are_masked_by_name(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(unregistered) / sizeof(unregistered[0]); i++) {
		char *out = log_redact_new(unregistered[i].input);

		assert_non_null(out);
		if (strstr(out, unregistered[i].secret) || !strstr(out, unregistered[i].kept))
			fail_msg("input: %s\noutput: %s", unregistered[i].input, out);
		free(out);
	}
}

static void registered_secrets_are_masked_anywhere(void **state)
{
	char *out;

	(void)state;
	log_add_secret("s3cr3t-value-XYZ");
	log_add_secret("s3cr3t-value-XYZ-longer");
	log_add_secret("abc"); /* too short to mask without garbling text */
	out = log_redact_new("a s3cr3t-value-XYZ-longer b s3cr3t-value-XYZ c abc");
	assert_string_equal(out, "a [REDACTED] b [REDACTED] c abc");
	free(out);
	log_clear_secrets();
	out = log_redact_new("s3cr3t-value-XYZ");
	assert_string_equal(out, "s3cr3t-value-XYZ");
	free(out);
}

static void secret_line(void)
{
	log_error("calling with key %s", "AKIAEXAMPLE/wJalrXUtnFEMI-registered");
}

static void log_lines_are_redacted_before_they_are_written(void **state)
{
	char *out;

	(void)state;
	log_init(LOG_LEVEL_DEBUG);
	log_add_secret("wJalrXUtnFEMI-registered");
	out = capture(secret_line);
	assert_null(strstr(out, "wJalrXUtnFEMI"));
	assert_non_null(strstr(out, "AKIAEXAMPLE/[REDACTED]"));
	free(out);
	log_clear_secrets();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lines_below_the_level_are_dropped),
		cmocka_unit_test(under_journald_each_line_carries_its_priority),
		cmocka_unit_test(every_line_of_a_message_is_prefixed),
		cmocka_unit_test(unregistered_secrets_are_masked_by_name),
		cmocka_unit_test(registered_secrets_are_masked_anywhere),
		cmocka_unit_test(log_lines_are_redacted_before_they_are_written),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
