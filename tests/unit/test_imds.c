/* test_imds.c: the instance credentials document (all four fields required, Code must be
 * Success, no secret in any error message) and the IMDS settings from the environment. The
 * token, 401, 404 and retry behaviour are in test_aws_transport.c, against a scripted
 * server. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kb/deadline.h"
#include "kb/error.h"
#include "kb/imds.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
#define TOKEN "IQoJb3JpZ2luX2VjSESSIONTOKEN+/="

static const char good[] = "{\"Code\":\"Success\",\"LastUpdated\":\"2012-04-26T16:39:16Z\","
			   "\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAEXAMPLE\","
			   "\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"" TOKEN "\","
			   "\"Expiration\":\"2017-05-17T15:09:54Z\"}";

static void good_document_gives_all_four_fields(void **state)
{
	struct imds_credentials c;
	struct kb_error err = {{0}};

	(void)state;
	assert_int_equal(imds_parse_credentials(good, strlen(good), &c, &err), 0);
	assert_string_equal(c.access_key_id, "ASIAEXAMPLE");
	assert_string_equal(c.secret_access_key, SECRET);
	assert_string_equal(c.token, TOKEN);
	assert_int_equal(c.expiration_wall_ms, 1495033794000LL);
	imds_credentials_clear(&c);
	assert_null(c.secret_access_key);
	imds_credentials_clear(NULL);
}

static void document_without_code_is_accepted_as_botocore_does(void **state)
{
	static const char moto[] = "{\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"" SECRET
				   "\",\"Token\":\"" TOKEN "\",\"Expiration\":"
				   "\"2030-01-01T00:00:00.000Z\"}";
	struct imds_credentials c;
	struct kb_error err = {{0}};

	(void)state;
	assert_int_equal(imds_parse_credentials(moto, strlen(moto), &c, &err), 0);
	assert_int_equal(c.expiration_wall_ms, 1893456000000LL);
	imds_credentials_clear(&c);
}

static void expect_refused(const char *doc, const char *reason)
{
	struct imds_credentials c;
	struct kb_error err = {{0}};

	assert_int_equal(imds_parse_credentials(doc, strlen(doc), &c, &err), -EINVAL);
	assert_null(c.access_key_id);
	assert_null(c.secret_access_key);
	assert_null(c.token);
	assert_non_null(strstr(err.msg, reason));
	assert_null(strstr(err.msg, SECRET));
	assert_null(strstr(err.msg, "wJal"));
	assert_null(strstr(err.msg, TOKEN));
}

static void each_missing_field_is_named(void **state)
{
	static const char *const fields[] = {"AccessKeyId", "SecretAccessKey", "Token",
					     "Expiration"};
	static const char *const values[] = {"ASIA1", SECRET, TOKEN, "2030-01-01T00:00:00Z"};

	(void)state;
	for (size_t skip = 0; skip < 4; skip++) {
		char doc[512] = "{";

		for (size_t i = 0; i < 4; i++) {
			if (i == skip)
				continue;
			strcat(doc, strlen(doc) > 1 ? "," : "");
			strcat(doc, "\"");
			strcat(doc, fields[i]);
			strcat(doc, "\":\"");
			strcat(doc, values[i]);
			strcat(doc, "\"");
		}
		strcat(doc, "}");
		expect_refused(doc, fields[skip]);
	}
}

static void code_other_than_success_is_an_error(void **state)
{
	(void)state;
	expect_refused("{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"EC2 cannot assume "
		       "the role\",\"LastUpdated\":\"2024-01-01T00:00:00Z\"}",
		       "AssumeRoleUnauthorizedAccess");
	expect_refused("{\"Code\":\"Failure\",\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"" SECRET
		       "\",\"Token\":\"" TOKEN "\",\"Expiration\":\"2030-01-01T00:00:00Z\"}",
		       "Code Failure");
	expect_refused("{\"Code\":7,\"AccessKeyId\":\"ASIA1\"}", "Code");
}

static void malformed_documents_never_echo_secrets(void **state)
{
	(void)state;
	/* jansson's message would quote the text near the error: here, the secret. */
	expect_refused("{\"SecretAccessKey\":\"" SECRET "\" \"Token\":\"" TOKEN "\"}", "not JSON");
	expect_refused("{\"SecretAccessKey\": " SECRET "}", "not JSON");
	expect_refused("[\"" SECRET "\"]", "not a JSON object");
	expect_refused("", "not JSON");
	expect_refused("{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\"}", "not JSON");
	expect_refused("{\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"" TOKEN
		       "\",\"Expiration\":\"tomorrow\"}",
		       "Expiration");
	expect_refused("{\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"" TOKEN
		       "\",\"Expiration\":\"2030-13-01T00:00:00Z\"}",
		       "Expiration");
	expect_refused("{\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"\",\"Token\":\"" TOKEN
		       "\",\"Expiration\":\"2030-01-01T00:00:00Z\"}",
		       "SecretAccessKey");
}

static void disabled_metadata_service_is_never_called(void **state)
{
	struct imds_options opts = {.endpoint = "http://127.0.0.1:9"};
	struct kb_error err = {{0}};
	struct imds_client *c;
	char *out = NULL;

	(void)state;
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	c = imds_client_new(&opts, &err);
	assert_non_null(c);
	assert_int_equal(imds_get(c, "meta-data/instance-id", DEADLINE_NEVER, &out, &err),
			 -KB_ECONFIG);
	assert_non_null(strstr(err.msg, "AWS_EC2_METADATA_DISABLED"));
	assert_null(out);
	imds_client_free(c);
	unsetenv("AWS_EC2_METADATA_DISABLED");
}

static void endpoint_mode_must_be_ipv4_or_ipv6(void **state)
{
	struct imds_options opts = {0};
	struct kb_error err = {{0}};
	struct imds_client *c;

	(void)state;
	unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ipv6", 1);
	c = imds_client_new(&opts, &err);
	assert_non_null(c);
	imds_client_free(c);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPX", 1);
	assert_null(imds_client_new(&opts, &err));
	assert_non_null(strstr(err.msg, "IPv4 or IPv6"));
	unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	imds_client_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_document_gives_all_four_fields),
		cmocka_unit_test(document_without_code_is_accepted_as_botocore_does),
		cmocka_unit_test(each_missing_field_is_named),
		cmocka_unit_test(code_other_than_success_is_an_error),
		cmocka_unit_test(malformed_documents_never_echo_secrets),
		cmocka_unit_test(disabled_metadata_service_is_never_called),
		cmocka_unit_test(endpoint_mode_must_be_ipv4_or_ipv6),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
