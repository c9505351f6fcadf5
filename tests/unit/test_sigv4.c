/* test_sigv4.c: the worked example of AWS-PROTOCOL.md section 2 step by step, the Query body
 * encoding, and signatures over values with space, ':', '/', '+', '~' and UTF-8 checked
 * against botocore; one flipped byte anywhere must change the signature. (AWS's own suite
 * runs case by case from tests/sigv4/.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kb/private/aws.h"
#include "kb/private/sigv4.h"

/* AWS-PROTOCOL.md section 2, checked there against botocore and plain HMAC. */
#define EX_BODY                                                                           \
	"Action=DescribeNetworkInterfaces&Version=2016-11-15&Filter.1.Name=tag%3Akafka-broker-" \
	"id&Filter.1.Value.1=3"
#define EX_TIME 1736942400 /* 2025-01-15T12:00:00Z */
#define FORM "application/x-www-form-urlencoded; charset=utf-8"

static const struct sigv4_credentials ex_creds = {
	"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "IQoJb3JpZ2luX2VjEXAMPLETOKEN"};

static const struct sigv4_header ex_headers[] = {
	{"Host", "ec2.us-east-1.amazonaws.com"},
	{"Content-Type", FORM},
};

static struct sigv4_request ex_request(const char *body)
{
	return (struct sigv4_request){.method = "POST", .path = "/", .normalize_path = true,
				      .headers = ex_headers, .header_count = 2, .payload = body,
				      .payload_len = strlen(body)};
}

static struct sigv4_config ex_config(const struct sigv4_credentials *creds)
{
	return (struct sigv4_config){.region = "us-east-1", .service = "ec2", .time_s = EX_TIME,
				     .creds = creds};
}

static void worked_example_matches_each_step(void **state)
{
	struct sigv4_request req = ex_request(EX_BODY);
	struct sigv4_config cfg = ex_config(&ex_creds);
	struct sigv4_state st = {0};
	char key_hex[65];

	(void)state;
	assert_int_equal(sigv4_build_canonical_request(&st, &req, &cfg), 0);
	assert_string_equal(st.canonical_request,
			    "POST\n/\n\n"
			    "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
			    "host:ec2.us-east-1.amazonaws.com\n"
			    "x-amz-date:20250115T120000Z\n"
			    "x-amz-security-token:IQoJb3JpZ2luX2VjEXAMPLETOKEN\n\n"
			    "content-type;host;x-amz-date;x-amz-security-token\n"
			    "0826a1780ef5734ed3766548e04f78980afc6460ac3909c7977fb82222f2d815");
	assert_int_equal(sigv4_build_string_to_sign(&st, &cfg), 0);
	assert_string_equal(st.string_to_sign,
			    "AWS4-HMAC-SHA256\n20250115T120000Z\n20250115/us-east-1/ec2/aws4_request\n"
			    "373636d2694bca6695f887b32c40fd7ee70c030bc7a4b169eeb5fb544ffb6e10");
	assert_int_equal(sigv4_derive_signing_key(&st, &cfg), 0);
	for (int i = 0; i < 32; i++)
		snprintf(key_hex + 2 * i, 3, "%02x", st.signing_key[i]);
	assert_string_equal(key_hex,
			    "48c286e19bbaf69a5487fc6a5630d1bcc45bcc8cbe8bd74573885f70c4679d12");
	assert_int_equal(sigv4_compute_signature(&st), 0);
	assert_int_equal(sigv4_build_authorization(&st, &cfg), 0);
	assert_string_equal(
		st.authorization,
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250115/us-east-1/ec2/aws4_request, "
		"SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
		"Signature=4aa71e18ed7673ed71b81a8c6a835de06766a87ee818f289c0a126a16f7a538c");
	assert_string_equal(st.amz_date, "20250115T120000Z");
	sigv4_state_clear(&st);
}

static void worked_example_body_comes_from_params(void **state)
{
	struct aws_params *p = aws_params_new("DescribeNetworkInterfaces", "2016-11-15");
	char *body;

	(void)state;
	assert_non_null(p);
	assert_int_equal(aws_params_addf(p, "tag:kafka-broker-id", "Filter.%d.Name", 1), 0);
	assert_int_equal(aws_params_addf(p, "3", "Filter.%d.Value.%d", 1, 1), 0);
	body = aws_params_encode(p);
	assert_string_equal(body, EX_BODY);
	free(body);
	aws_params_free(p);
}

/* Values botocore's Query serializer and signer meet in practice, plus UTF-8. Expected body:
 * urllib.parse.quote(v, safe='-_.~'); expected signature: botocore 1.29 SigV4Auth over that
 * body (tests/sigv4/README.md). */
#define SPECIAL_VALUE "a b:c/d+e~f \xc3\xa9\xe2\x82\xac \xf0\x9f\x99\x82"
#define SPECIAL_BODY                                                                     \
	"Action=DescribeTags&Version=2016-11-15&Filter.1.Name=tag%3Akafka%20broker%2Fid&"   \
	"Filter.1.Value.1=a%20b%3Ac%2Fd%2Be~f%20%C3%A9%E2%82%AC%20%F0%9F%99%82"
#define SPECIAL_AUTHZ                                                                     \
	"AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20260228/eu-west-1/ec2/aws4_request, "     \
	"SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "                \
	"Signature=527b4b705e9a04ae0cc4f319557511dcc479ac2b35f006b3554455770b315c80"
#define SPECIAL_TIME 1772323199 /* 2026-02-28T23:59:59Z */

static const struct sigv4_credentials special_creds = {
	"ASIAEXAMPLE", "se cret:/+~\xc3\xa9", "FwoGZXIvYXdzEBY+/token/with+slash="};

static const struct sigv4_header special_headers[] = {
	{"Host", "127.0.0.1:8443"},
	{"Content-Type", FORM},
};

static char *special_body(void)
{
	struct aws_params *p = aws_params_new("DescribeTags", "2016-11-15");
	char *body;

	assert_non_null(p);
	assert_int_equal(aws_params_add(p, "Filter.1.Name", "tag:kafka broker/id"), 0);
	assert_int_equal(aws_params_add(p, "Filter.1.Value.1", SPECIAL_VALUE), 0);
	body = aws_params_encode(p);
	aws_params_free(p);
	return body;
}

static char *sign_special(const char *body, const struct sigv4_credentials *creds,
			  int64_t time_s)
{
	struct sigv4_request req = {.method = "POST", .path = "/", .normalize_path = true,
				    .headers = special_headers, .header_count = 2,
				    .payload = body, .payload_len = strlen(body)};
	struct sigv4_config cfg = {.region = "eu-west-1", .service = "ec2", .time_s = time_s,
				   .creds = creds};
	struct sigv4_state st = {0};
	struct kb_error err = {{0}};
	char *authz;

	assert_int_equal(sigv4_sign(&st, &req, &cfg, &err), 0);
	authz = strdup(st.authorization);
	sigv4_state_clear(&st);
	return authz;
}

static void special_values_sign_as_botocore_does(void **state)
{
	char *body = special_body();
	char *authz;

	(void)state;
	assert_string_equal(body, SPECIAL_BODY);
	authz = sign_special(body, &special_creds, SPECIAL_TIME);
	assert_string_equal(authz, SPECIAL_AUTHZ);
	free(authz);
	free(body);
}

static void flip(char *s, size_t i)
{
	s[i] ^= 0x01;
}

static void one_flipped_byte_changes_the_signature(void **state)
{
	char *body = special_body();
	char *secret = strdup(special_creds.secret_access_key);
	char *token = strdup(special_creds.session_token);
	char *akid = strdup(special_creds.access_key_id);
	struct sigv4_credentials creds = {akid, secret, token};
	char *authz;

	(void)state;
	/* The body: in the encoded UTF-8 tail, in the middle, at the first byte. */
	for (size_t i = 0; i < strlen(body); i += strlen(body) / 7 + 1) {
		flip(body, i);
		authz = sign_special(body, &special_creds, SPECIAL_TIME);
		assert_string_not_equal(authz, SPECIAL_AUTHZ);
		free(authz);
		flip(body, i);
	}
	flip(secret, strlen(secret) - 1);
	authz = sign_special(body, &creds, SPECIAL_TIME);
	assert_string_not_equal(authz, SPECIAL_AUTHZ);
	free(authz);
	flip(secret, strlen(secret) - 1);
	flip(token, 7);
	authz = sign_special(body, &creds, SPECIAL_TIME);
	assert_string_not_equal(authz, SPECIAL_AUTHZ);
	free(authz);
	flip(token, 7);
	authz = sign_special(body, &creds, SPECIAL_TIME + 1);
	assert_string_not_equal(authz, SPECIAL_AUTHZ);
	free(authz);
	/* Restored, it matches again: the checks above compare what they mean to. */
	authz = sign_special(body, &creds, SPECIAL_TIME);
	assert_string_equal(authz, SPECIAL_AUTHZ);
	free(authz);
	free(akid);
	free(secret);
	free(token);
	free(body);
}

static void uri_encode_passes_only_unreserved_bytes(void **state)
{
	char all[256];
	char *enc;
	size_t plain = 0, escaped = 0;

	(void)state;
	for (int i = 0; i < 255; i++)
		all[i] = (char)(i + 1);
	enc = sigv4_uri_encode(all, 255, false);
	for (const char *p = enc; *p;) {
		if (*p == '%') {
			assert_true(strchr("0123456789ABCDEF", p[1]) && strchr("0123456789ABCDEF", p[2]));
			escaped++;
			p += 3;
		} else {
			assert_true(strchr("-_.~", *p) || (*p >= '0' && *p <= '9') ||
				    (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'));
			plain++;
			p++;
		}
	}
	assert_int_equal(plain, 66);
	assert_int_equal(escaped, 255 - 66);
	free(enc);
	enc = sigv4_uri_encode("/a b/", 5, true);
	assert_string_equal(enc, "/a%20b/");
	free(enc);
	enc = sigv4_uri_encode("/a b/", 5, false);
	assert_string_equal(enc, "%2Fa%20b%2F");
	free(enc);
}

static void normalize_path_removes_dots_and_empty_segments(void **state)
{
	static const char *const cases[][2] = {
		{"/", "/"},           {"//", "/"},          {"/./", "/"},
		{"/example/..", "/"}, {"/a/b/../..", "/"},  {"/./example", "/example"},
		{"//example//", "/example/"}, {"/a/../b/", "/b/"}, {"/..", "/"},
		{"/a/./b/c/../d", "/a/b/d"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = sigv4_normalize_path(cases[i][0]);

		assert_string_equal(out, cases[i][1]);
		free(out);
	}
}

static void header_values_are_trimmed_folded_and_merged(void **state)
{
	static const struct sigv4_header headers[] = {
		{"Host", "example.amazonaws.com"},
		{"My-Header", "  a \t b\n   c  "},
		{"my-header", "second"},
		{"X-Amz-Date", "ignored: the signer sets it"},
	};
	struct sigv4_request req = {.method = "GET", .path = "", .normalize_path = true,
				    .headers = headers, .header_count = 4};
	struct sigv4_credentials creds = {"AKID", "secret", NULL};
	struct sigv4_config cfg = {.region = "us-east-1", .service = "service",
				   .time_s = EX_TIME, .creds = &creds};
	struct sigv4_state st = {0};

	(void)state;
	assert_int_equal(sigv4_build_canonical_request(&st, &req, &cfg), 0);
	assert_string_equal(st.canonical_request,
			    "GET\n/\n\nhost:example.amazonaws.com\nmy-header:a b c,second\n"
			    "x-amz-date:20250115T120000Z\n\nhost;my-header;x-amz-date\n"
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sigv4_state_clear(&st);
}

static void clear_wipes_the_signing_key(void **state)
{
	struct sigv4_request req = ex_request(EX_BODY);
	struct sigv4_config cfg = ex_config(&ex_creds);
	struct sigv4_state st = {0};
	struct kb_error err = {{0}};
	unsigned char zero[32] = {0};

	(void)state;
	assert_int_equal(sigv4_sign(&st, &req, &cfg, &err), 0);
	assert_memory_not_equal(st.signing_key, zero, 32);
	sigv4_state_clear(&st);
	assert_memory_equal(st.signing_key, zero, 32);
	assert_null(st.authorization);
	sigv4_state_clear(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(worked_example_matches_each_step),
		cmocka_unit_test(worked_example_body_comes_from_params),
		cmocka_unit_test(special_values_sign_as_botocore_does),
		cmocka_unit_test(one_flipped_byte_changes_the_signature),
		cmocka_unit_test(uri_encode_passes_only_unreserved_bytes),
		cmocka_unit_test(normalize_path_removes_dots_and_empty_segments),
		cmocka_unit_test(header_values_are_trimmed_folded_and_merged),
		cmocka_unit_test(clear_wipes_the_signing_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
