/* test_aws.c: the policy parts of aws.c, without a network: AWS error documents as AWS
 * documents them, retry classification, backoff bounds, the retry quota, clock skew from the
 * Date header, and endpoint, region and credential resolution from the environment. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kb/deadline.h"
#include "kb/http.h"
#include "kb/log.h"
#include "kb/private/aws.h"

/* AWS-PROTOCOL.md section 4: EC2's error document, as AWS sends it. */
static const char ec2_error[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate "
	"the provided access credentials</Message></Error></Errors><RequestID>5b48c718-1111-2222-"
	"3333-444455556666</RequestID></Response>";

/* CloudFormation's (and Auto Scaling's), namespaced. */
static const char cfn_error[] =
	"<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><Error>"
	"<Type>Sender</Type>\n <Code>ValidationError</Code><Message>Stack with id foo does not "
	"exist</Message></Error><RequestId>b254-request</RequestId></ErrorResponse>";

static void ec2_error_document_gives_code_message_and_request_id(void **state)
{
	char *code, *message, *rid;

	(void)state;
	assert_int_equal(aws_parse_error(ec2_error, strlen(ec2_error), &code, &message, &rid), 0);
	assert_string_equal(code, "AuthFailure");
	assert_string_equal(message,
			    "AWS was not able to validate the provided access credentials");
	assert_string_equal(rid, "5b48c718-1111-2222-3333-444455556666");
	free(code);
	free(message);
	free(rid);
}

static void cloudformation_error_document_gives_code_message_and_request_id(void **state)
{
	char *code, *message, *rid;

	(void)state;
	assert_int_equal(aws_parse_error(cfn_error, strlen(cfn_error), &code, &message, &rid), 0);
	assert_string_equal(code, "ValidationError");
	assert_string_equal(message, "Stack with id foo does not exist");
	assert_string_equal(rid, "b254-request");
	free(code);
	free(message);
	free(rid);
}

static void non_error_documents_are_refused(void **state)
{
	static const char *const bodies[] = {
		"",
		"<html><body>503 Service Unavailable</body></html>",
		"<Response><Errors><Error><Message>no code</Message></Error></Errors></Response>",
		"<Response><Errors><Error><Code></Code></Error></Errors></Response>",
		"<DescribeVolumesResponse><requestId>x</requestId></DescribeVolumesResponse>",
		"<Response><Errors><Error><Code>Trunc",
		"{\"__type\":\"Throttling\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char *code = (char *)1, *message = (char *)1, *rid = (char *)1;

		assert_int_equal(aws_parse_error(bodies[i], strlen(bodies[i]), &code, &message,
						 &rid),
				 -EINVAL);
		assert_null(code);
		assert_null(message);
		assert_null(rid);
	}
}

static void documents_with_a_doctype_are_refused(void **state)
{
	static const char xxe[] =
		"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/hostname\">]>"
		"<Response><Errors><Error><Code>A&x;B</Code></Error></Errors></Response>";
	static const char plain[] =
		"<?xml version=\"1.0\"?>"
		"<Response><Errors><Error><Code>A&amp;B</Code></Error></Errors></Response>";
	char *code = NULL;

	(void)state;
	assert_int_equal(aws_parse_error(xxe, strlen(xxe), &code, NULL, NULL), -EINVAL);
	assert_null(code);
	assert_int_equal(aws_parse_error(plain, strlen(plain), &code, NULL, NULL), 0);
	assert_string_equal(code, "A&B");
	free(code);
}

static void retry_classification_follows_standard_mode(void **state)
{
	(void)state;
	assert_int_equal(aws_retry_classify(200, NULL, 0), AWS_RETRY_NONE);
	assert_int_equal(aws_retry_classify(503, "RequestLimitExceeded", 0), AWS_RETRY_THROTTLING);
	assert_int_equal(aws_retry_classify(400, "Throttling", 0), AWS_RETRY_THROTTLING);
	assert_int_equal(aws_retry_classify(400, "ThrottlingException", 0), AWS_RETRY_THROTTLING);
	assert_int_equal(aws_retry_classify(400, "RequestTimeout", 0), AWS_RETRY_TRANSIENT);
	for (long s = 500; s <= 504; s++)
		assert_int_equal(aws_retry_classify(s, NULL, 0),
				 s == 501 ? AWS_RETRY_NONE : AWS_RETRY_TRANSIENT);
	assert_int_equal(aws_retry_classify(500, "InternalError", 0), AWS_RETRY_TRANSIENT);
	assert_int_equal(aws_retry_classify(0, NULL, -ECONNREFUSED), AWS_RETRY_TRANSIENT);
	assert_int_equal(aws_retry_classify(0, NULL, -ECONNRESET), AWS_RETRY_TRANSIENT);
	assert_int_equal(aws_retry_classify(0, NULL, -ETIMEDOUT), AWS_RETRY_TIMEOUT);
	/* Final at once: client errors, IAM, a certificate nobody trusts. */
	assert_int_equal(aws_retry_classify(400, "InvalidParameterValue", 0), AWS_RETRY_NONE);
	assert_int_equal(aws_retry_classify(403, "UnauthorizedOperation", 0), AWS_RETRY_NONE);
	assert_int_equal(aws_retry_classify(400, "VolumeInUse", 0), AWS_RETRY_NONE);
	assert_int_equal(aws_retry_classify(412, "DryRunOperation", 0), AWS_RETRY_NONE);
	assert_int_equal(aws_retry_classify(0, NULL, -EKEYREJECTED), AWS_RETRY_NONE);
	assert_int_equal(aws_retry_classify(404, NULL, 0), AWS_RETRY_NONE);
}

static void backoff_is_full_jitter_capped_at_twenty_seconds(void **state)
{
	(void)state;
	assert_int_equal(http_backoff_ms(1, AWS_RETRY_BASE_MS, AWS_RETRY_CAP_MS, 0.0), 0);
	assert_int_equal(http_backoff_ms(1, AWS_RETRY_BASE_MS, AWS_RETRY_CAP_MS, 0.5), 500);
	assert_int_equal(http_backoff_ms(2, AWS_RETRY_BASE_MS, AWS_RETRY_CAP_MS, 0.5), 1000);
	assert_int_equal(http_backoff_ms(3, AWS_RETRY_BASE_MS, AWS_RETRY_CAP_MS, 0.999), 3996);
	assert_int_equal(http_backoff_ms(5, AWS_RETRY_BASE_MS, AWS_RETRY_CAP_MS, 0.999), 15984);
	assert_int_equal(http_backoff_ms(6, AWS_RETRY_BASE_MS, AWS_RETRY_CAP_MS, 0.999), 19980);
	assert_int_equal(http_backoff_ms(60, AWS_RETRY_BASE_MS, AWS_RETRY_CAP_MS, 0.999), 19980);
	for (int i = 0; i < 1000; i++) {
		double r = http_random01();

		assert_true(r >= 0.0 && r < 1.0);
	}
}

static void retry_quota_pays_five_or_ten_and_refunds_on_success(void **state)
{
	struct aws_retry_quota q;
	int retries = 0;

	(void)state;
	aws_quota_init(&q);
	assert_int_equal(q.tokens, 500);
	assert_true(aws_quota_acquire(&q, AWS_RETRY_THROTTLING));
	assert_int_equal(q.tokens, 495);
	assert_true(aws_quota_acquire(&q, AWS_RETRY_TIMEOUT));
	assert_int_equal(q.tokens, 485);
	aws_quota_success(&q); /* refunds the last retry's cost, as botocore */
	assert_int_equal(q.tokens, 495);
	aws_quota_success(&q); /* a first-try success: 1 */
	assert_int_equal(q.tokens, 496);
	aws_quota_success(&q);
	aws_quota_success(&q);
	aws_quota_success(&q);
	aws_quota_success(&q);
	aws_quota_success(&q);
	assert_int_equal(q.tokens, 500); /* capped */
	while (aws_quota_acquire(&q, AWS_RETRY_TRANSIENT))
		retries++;
	assert_int_equal(retries, 100);
	assert_int_equal(q.tokens, 0);
	assert_false(aws_quota_acquire(&q, AWS_RETRY_NONE));
}

static void clock_skew_needs_more_than_four_minutes(void **state)
{
	/* Wed, 15 Jan 2025 12:00:00 GMT */
	const int64_t server = 1736942400000;
	int64_t offset = 0;

	(void)state;
	assert_false(aws_date_skew_ms("Wed, 15 Jan 2025 12:00:00 GMT", server, &offset));
	assert_false(aws_date_skew_ms("Wed, 15 Jan 2025 12:00:00 GMT", server - 239000, &offset));
	assert_true(aws_date_skew_ms("Wed, 15 Jan 2025 12:00:00 GMT", server - 3600000, &offset));
	assert_int_equal(offset, 3600000);
	assert_true(aws_date_skew_ms("Wed, 15 Jan 2025 12:00:00 GMT", server + 241000, &offset));
	assert_int_equal(offset, -241000);
	assert_false(aws_date_skew_ms("15 Jan 2025 12:00:00", 0, &offset));
	assert_false(aws_date_skew_ms("Wed, 15 Foo 2025 12:00:00 GMT", 0, &offset));
	assert_false(aws_date_skew_ms(NULL, 0, &offset));
	assert_true(aws_code_is_clock_skew("RequestExpired"));
	assert_true(aws_code_is_clock_skew("SignatureDoesNotMatch"));
	assert_false(aws_code_is_clock_skew("Throttling"));
	assert_true(aws_code_is_credentials("AuthFailure"));
	assert_true(aws_code_is_credentials("ExpiredToken"));
	assert_false(aws_code_is_credentials("UnauthorizedOperation"));
}

static const char *const aws_env[] = {
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_CLOUDFORMATION",
	"AWS_ENDPOINT_URL_AUTO_SCALING", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_REGION",
	"AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_SECURITY_TOKEN", "AWS_MAX_ATTEMPTS", "AWS_CA_BUNDLE",
};

static int clean_env(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(aws_env) / sizeof(aws_env[0]); i++)
		unsetenv(aws_env[i]);
	return 0;
}

static int env_with_keys(void **state)
{
	clean_env(state);
	setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-test-key", 1);
	return 0;
}

static void expect_endpoint(enum aws_service s, const char *region, const char *url,
			    bool configured)
{
	struct kb_error err = {{0}};
	char *got = NULL;
	bool got_configured;

	assert_int_equal(aws_resolve_endpoint(s, region, &got, &got_configured, &err), 0);
	assert_string_equal(got, url);
	assert_int_equal(got_configured, configured);
	free(got);
}

static void endpoints_follow_the_sdk_precedence(void **state)
{
	(void)state;
	expect_endpoint(AWS_SERVICE_EC2, "us-east-1", "https://ec2.us-east-1.amazonaws.com", false);
	expect_endpoint(AWS_SERVICE_CLOUDFORMATION, "eu-west-1",
			"https://cloudformation.eu-west-1.amazonaws.com", false);
	expect_endpoint(AWS_SERVICE_AUTOSCALING, "ap-south-2",
			"https://autoscaling.ap-south-2.amazonaws.com", false);
	expect_endpoint(AWS_SERVICE_EC2, "cn-north-1", "https://ec2.cn-north-1.amazonaws.com.cn",
			false);
	setenv("AWS_ENDPOINT_URL", "http://10.0.0.1:4566", 1);
	expect_endpoint(AWS_SERVICE_EC2, "us-east-1", "http://10.0.0.1:4566", true);
	expect_endpoint(AWS_SERVICE_AUTOSCALING, "us-east-1", "http://10.0.0.1:4566", true);
	setenv("AWS_ENDPOINT_URL_EC2", "https://ec2.internal:8443", 1);
	setenv("AWS_ENDPOINT_URL_AUTO_SCALING", "https://asg.internal", 1);
	expect_endpoint(AWS_SERVICE_EC2, "us-east-1", "https://ec2.internal:8443", true);
	expect_endpoint(AWS_SERVICE_CLOUDFORMATION, "us-east-1", "http://10.0.0.1:4566", true);
	expect_endpoint(AWS_SERVICE_AUTOSCALING, "us-east-1", "https://asg.internal", true);
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE", 1);
	expect_endpoint(AWS_SERVICE_EC2, "us-east-1", "https://ec2.us-east-1.amazonaws.com", false);
	expect_endpoint(AWS_SERVICE_AUTOSCALING, "us-east-1",
			"https://autoscaling.us-east-1.amazonaws.com", false);
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false", 1);
	expect_endpoint(AWS_SERVICE_EC2, "us-east-1", "https://ec2.internal:8443", true);
	assert_string_equal(aws_service_name(AWS_SERVICE_EC2), "ec2");
	assert_string_equal(aws_service_name(AWS_SERVICE_CLOUDFORMATION), "cloudformation");
	assert_string_equal(aws_service_name(AWS_SERVICE_AUTOSCALING), "autoscaling");
}

static struct aws_ctx *new_ctx(const char *region, struct kb_error *err)
{
	struct aws_ctx_options opts = {.region = region};

	return aws_ctx_new(&opts, DEADLINE_NEVER, err);
}

static void region_is_explicit_then_aws_region_then_default_region(void **state)
{
	struct kb_error err = {{0}};
	struct aws_ctx *ctx;

	(void)state;
	ctx = new_ctx(NULL, &err);
	assert_null(ctx);
	assert_non_null(strstr(err.msg, "no AWS region"));
	setenv("AWS_DEFAULT_REGION", "eu-central-1", 1);
	ctx = new_ctx(NULL, &err);
	assert_string_equal(aws_ctx_region(ctx), "eu-central-1");
	aws_ctx_free(ctx);
	setenv("AWS_REGION", "us-west-2", 1);
	assert_string_equal(aws_env_region(), "us-west-2");
	ctx = new_ctx(NULL, &err);
	assert_string_equal(aws_ctx_region(ctx), "us-west-2");
	aws_ctx_free(ctx);
	ctx = new_ctx("ap-northeast-1", &err);
	assert_string_equal(aws_ctx_region(ctx), "ap-northeast-1");
	aws_ctx_free(ctx);
	kb_error_clear(&err);
	assert_null(new_ctx("us-east-1.evil.example/", &err));
	assert_non_null(strstr(err.msg, "not a region name"));
}

static void credentials_come_in_pairs_and_their_secrets_are_registered(void **state)
{
	struct kb_error err = {{0}};
	struct aws_ctx *ctx;
	char *line;

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
	ctx = new_ctx("us-east-1", &err);
	assert_null(ctx);
	assert_non_null(strstr(err.msg, "partial credentials"));
	setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzzzKEY", 1);
	setenv("AWS_SECURITY_TOKEN", "legacy-token-value-0123", 1);
	kb_error_clear(&err);
	ctx = new_ctx("us-east-1", &err);
	assert_non_null(ctx);
	aws_ctx_free(ctx);
	line = log_redact_new("k=wJalrXUtnFEMI/K7MDENG+bPxRfiCYzzzKEY t=legacy-token-value-0123");
	assert_string_equal(line, "k=" LOG_REDACTED " t=" LOG_REDACTED);
	free(line);
	log_clear_secrets();
}

static void max_attempts_from_environment_is_validated(void **state)
{
	struct kb_error err = {{0}};
	struct aws_ctx *ctx;

	(void)state;
	setenv("AWS_MAX_ATTEMPTS", "0", 1);
	assert_null(new_ctx("us-east-1", &err));
	assert_non_null(strstr(err.msg, "AWS_MAX_ATTEMPTS"));
	setenv("AWS_MAX_ATTEMPTS", "3", 1);
	ctx = new_ctx("us-east-1", &err);
	assert_non_null(ctx);
	aws_ctx_free(ctx);
}

static void params_keep_insertion_order(void **state)
{
	struct aws_params *p = aws_params_new("AttachVolume", "2016-11-15");
	char *body;

	(void)state;
	assert_int_equal(aws_params_add(p, "VolumeId", "vol-1"), 0);
	assert_int_equal(aws_params_add(p, "Device", "/dev/sdg"), 0);
	assert_int_equal(aws_params_addf(p, "true", "%s", "DryRun"), 0);
	body = aws_params_encode(p);
	assert_string_equal(body, "Action=AttachVolume&Version=2016-11-15&VolumeId=vol-1&"
				  "Device=%2Fdev%2Fsdg&DryRun=true");
	free(body);
	aws_params_free(p);
	aws_params_free(NULL);
	aws_response_free(NULL);
	aws_ctx_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ec2_error_document_gives_code_message_and_request_id),
		cmocka_unit_test(cloudformation_error_document_gives_code_message_and_request_id),
		cmocka_unit_test(non_error_documents_are_refused),
		cmocka_unit_test(documents_with_a_doctype_are_refused),
		cmocka_unit_test(retry_classification_follows_standard_mode),
		cmocka_unit_test(backoff_is_full_jitter_capped_at_twenty_seconds),
		cmocka_unit_test(retry_quota_pays_five_or_ten_and_refunds_on_success),
		cmocka_unit_test(clock_skew_needs_more_than_four_minutes),
		cmocka_unit_test_setup(endpoints_follow_the_sdk_precedence, clean_env),
		cmocka_unit_test_setup(region_is_explicit_then_aws_region_then_default_region,
				       env_with_keys),
		cmocka_unit_test_setup(credentials_come_in_pairs_and_their_secrets_are_registered,
				       clean_env),
		cmocka_unit_test_setup(max_attempts_from_environment_is_validated, env_with_keys),
		cmocka_unit_test(params_keep_insertion_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
